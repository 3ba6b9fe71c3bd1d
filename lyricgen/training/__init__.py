"""Training: the LightningModule (objective, optimiser, guard), the callbacks, one run's fit, scoring a
checkpoint, and the run's n-gram memory rebuilt for generation and evaluation."""
