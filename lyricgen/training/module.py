"""LyricLM, the LightningModule: the objective, the optimiser and the divergence guard around a CharRNN.
Logging, samples and checkpoint extras are callbacks (lyricgen.training.callbacks)."""

import math
import re
from collections.abc import Iterable
from functools import partial
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F

from lyricgen import Diverged, UserError
from lyricgen.config import SCHEDULES
from lyricgen.nn.charrnn import sequence_loss
from lyricgen.nn.networks import build_network
from lyricgen.nn.ngram import Mixture


def of_trainer(name: str) -> property:
    """A RunLoop property read from the Trainer's attribute `name`."""
    return property(lambda loop: getattr(loop.trainer, name))


class RunLoop:
    """What LyricLM and its run's records (lyricgen.training.callbacks) read of the loop that trains it: the
    step and length, the loggers, the optimiser and the run's directory. A solo run's come from its Trainer;
    a stacked member's loop (lyricgen.training.stacked) takes the step from the stack's Trainer and the rest,
    its length included, from the member."""

    max_steps = of_trainer("max_steps")
    should_stop = of_trainer("should_stop")
    log_every_n_steps = of_trainer("log_every_n_steps")
    loggers = of_trainer("loggers")
    is_global_zero = of_trainer("is_global_zero")
    sanity_checking = of_trainer("sanity_checking")

    def __init__(self, trainer: L.Trainer | None):
        self.trainer = trainer  # None: a module outside any loop (a test, a notebook) is at step 0

    @property
    def step(self) -> int:
        return self.trainer.global_step if self.trainer is not None else 0

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self.trainer.optimizers[0]

    @property
    def run_dir(self) -> Path:
        return Path(self.trainer.default_root_dir)

    @property
    def scaler(self) -> torch.amp.GradScaler | None:
        """Mixed precision's loss scaler, under which a non-finite gradient is a skipped step."""
        return getattr(self.trainer.precision_plugin, "scaler", None) if self.trainer is not None else None


OWN_OPTIM_KEYS = ("schedule", "warmup_steps", "activation_reg", "temporal_activation_reg")  # optim.*: lyricgen's


class LyricLM(L.LightningModule):
    """Trains a network (a CharRNN, or any class keeping lyricgen.nn.networks' contract) with cross-entropy
    and the optimiser its config names (conf/optim/). Its hyperparameters (vocabulary and network spec
    included) are plain values, so a checkpoint alone is enough to generate text (lyricgen.nn.load_checkpoint).

    The guard stops training when the loss or the gradient norm is not finite, or when the training loss,
    smoothed over `guard_steps` steps, exceeds `guard_ratio` times ln(vocabulary size) — the loss of a
    uniform guess — a model that far behind guessing has diverged even while its numbers stay finite.
    One bad step cannot trip it: the paper's single-step loss spikes, whose smoothed loss stays below the
    bar, pass. Under a GradScaler (fp16) a non-finite gradient is a skipped step, not divergence.
    """

    def __init__(
        self,
        vocab: str,
        network: dict,
        optimizer: dict,
        schedule: str,
        warmup_steps: int,
        activation_reg: float,
        temporal_activation_reg: float,
        guard_ratio: float,
        guard_steps: int,
    ):
        """`network`: the network's spec (lyricgen.nn.networks.network_spec): its class and options.
        `optimizer`: the optimiser's class (`_target_`) and arguments, as conf/optim/ gives them. The values
        come from the run's config (conf/), which is where their defaults live."""
        super().__init__()
        self.save_hyperparameters()
        self.model = build_network(len(vocab), network, trusted=[network.get("_target_")])
        if (activation_reg or temporal_activation_reg) and not hasattr(self.model, "run"):
            raise UserError("optim.activation_reg needs the network's run() (lyricgen.nn.networks): set it to 0")
        self.grad_norm = torch.tensor(math.nan)  # this step's, before clipping: read by the step metrics
        self.step_loss = torch.tensor(math.nan)  # this step's cross-entropy, without penalties: read by them too
        self.skipped_steps = 0  # steps a GradScaler skipped for non-finite gradients
        self.smoothed_loss = self.last_finite_loss = math.nan
        self.diverge_above = guard_ratio * math.log(max(len(vocab), 2))
        self.ngram_memory: Mixture | None = (
            None  # the training text's n-gram memory (lyricgen.nn.ngram), set by lyricgen.training.fit
        )
        self.member_loop: RunLoop | None = None  # set when it trains as a member of a stack

    def run_loop(self) -> "RunLoop":
        """The loop that trains this run, as it and its records read it: its own Trainer's, or a stack's
        member loop (train_in)."""
        if self.member_loop is not None:
            return self.member_loop
        try:
            return RunLoop(self.trainer)
        except RuntimeError:  # not attached to a Trainer
            return RunLoop(None)

    def train_in(self, loop: "RunLoop") -> None:
        """Train as a member of a stack (lyricgen.training.stacked): the stack's Trainer steps, `loop` says
        what this run's own Trainer would."""
        self.member_loop = loop

    def forward(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """The network's logits for a batch: (inputs, targets), and each input's label for a conditioned model."""
        inputs, _, *labels = batch
        return self.model(inputs, labels=labels[0] if labels else None)[0]

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        if self.hparams.activation_reg or self.hparams.temporal_activation_reg:
            inputs, _, *labels = batch
            logits, _, outputs = self.model.run(inputs, labels=labels[0] if labels else None)
            penalty = self.activation_penalty(*outputs)
        else:
            logits, penalty = self(batch), 0.0
        loss = sequence_loss(logits, batch[1])
        self.step_loss = loss.detach()
        self.check_loss(float(self.step_loss))
        return loss + penalty

    def activation_penalty(self, output: torch.Tensor, dropped: torch.Tensor) -> torch.Tensor | float:
        """AWD-LSTM's activation regularisation (Merity et al. 2017) on the top layer's outputs (batch, seq,
        hidden): activation_reg x the mean square of the dropped-out outputs keeps them small, and
        temporal_activation_reg x the mean square of their change from one character to the next keeps them
        slow. On Tiny Shakespeare it speeds up learning (docs/time-to-quality.md)."""
        penalty = 0.0
        if self.hparams.activation_reg:
            penalty = penalty + self.hparams.activation_reg * dropped.pow(2).mean()
        if self.hparams.temporal_activation_reg:
            change = output[:, 1:] - output[:, :-1]
            penalty = penalty + self.hparams.temporal_activation_reg * change.pow(2).mean()
        return penalty

    def check_loss(self, loss: float) -> None:
        """The guard's loss test: non-finite at once, or its running mean far above a uniform guess."""
        if not math.isfinite(loss):
            raise self.diverged(f"loss is {loss}")
        self.last_finite_loss = loss
        weight = 1 / self.hparams.guard_steps
        previous = self.smoothed_loss
        self.smoothed_loss = loss if math.isnan(previous) else previous + weight * (loss - previous)
        if self.smoothed_loss > self.diverge_above:
            raise self.diverged(
                f"the training loss, averaged over ~{self.hparams.guard_steps} steps, is {self.smoothed_loss:.4g} "
                f"nats: above {self.hparams.guard_ratio} x ln(vocabulary) = {self.diverge_above:.3f}"
            )

    def configure_gradient_clipping(
        self,
        optimizer: torch.optim.Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """Lightning calls this after backward on every step, clipping or not: the gradient norm is computed
        once here, kept before clipping (so the paper's exploding gradients show in full), checked, and
        reused to clip by norm (Lightning's own clipping would compute it again)."""
        grads = [p.grad for p in self.parameters() if p.grad is not None]
        self.grad_norm = torch.nn.utils.get_total_norm(grads)
        if not torch.isfinite(self.grad_norm):
            if self.run_loop().scaler is not None:
                self.skipped_steps += 1  # the scaler skips this step and lowers its scale
                return
            raise self.diverged(f"gradient norm is {self.grad_norm.item()}")
        if not gradient_clip_val:
            return
        if gradient_clip_algorithm == "value":
            torch.nn.utils.clip_grad_value_(self.parameters(), gradient_clip_val)
        else:
            torch.nn.utils.clip_grads_with_norm_(self.parameters(), gradient_clip_val, self.grad_norm)

    def diverged(self, what: str) -> Diverged:
        """Raised before the weights take the bad update, so the last checkpoint stays the last good state."""
        return Diverged(
            f"training diverged at step {self.run_loop().step}: {what} (last finite loss {self.last_finite_loss:.4f}, "
            f"lr {self.hparams.optimizer.get('lr')}); "
            "lower optim.lr or set trainer.gradient_clip_val"
        )

    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        logits, targets = self(batch), batch[1]
        if len(batch) == 3:  # a labelled batch: each character's loss, once, for the overall and per-label means
            per_char = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), reduction="none")
            loss = per_char.mean()
            self.log_per_label(per_char, batch[2].reshape(-1))
        else:
            loss = sequence_loss(logits, targets)
        self.log_loss("val/loss", "val/bpc", loss, len(batch[0]))
        if self.ngram_memory is not None:
            with_memory = self.ngram_memory.loss(batch[0], logits, targets)
            self.log_loss("val/loss_with_memory", "val/bpc_with_memory", with_memory, len(batch[0]))

    def log_loss(self, loss_name: str, bpc_name: str, loss: torch.Tensor, windows: int) -> None:
        """A validation loss in nats and in bits per character, each batch weighted by its windows: the epoch
        mean is the mean over characters (and over DDP ranks)."""
        self.log(loss_name, loss, prog_bar=loss_name == "val/loss", batch_size=windows, sync_dist=True)
        self.log(bpc_name, loss / math.log(2), batch_size=windows, sync_dist=True)

    def log_per_label(self, per_char: torch.Tensor, labels: torch.Tensor) -> None:
        """val/loss/<label> and val/bpc/<label>: each label's characters' mean, weighted by their count."""
        for index, name in enumerate(self.model.labels):
            chosen = per_char[labels == index]
            if len(chosen):
                self.log(f"val/loss/{name}", chosen.mean(), batch_size=len(chosen), sync_dist=True)
                self.log(f"val/bpc/{name}", chosen.mean() / math.log(2), batch_size=len(chosen), sync_dist=True)

    def configure_optimizers(self) -> torch.optim.Optimizer | dict:
        optimizer = build_optimizer(self.hparams.optimizer, self.parameters())
        schedule, warmup_steps = self.hparams.schedule, self.hparams.warmup_steps
        if schedule == "constant" and not warmup_steps:  # the paper's: no scheduler at all
            return optimizer
        factor = partial(lr_factor, schedule, warmup_steps, self.run_loop().max_steps)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def build_optimizer(spec: dict, parameters: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """The optimiser a config names (`_target_`, `_partial_` and its arguments, Hydra's instantiate
    convention) over `parameters`; an argument it does not take, or a class that cannot be imported, is one
    line naming the key."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    try:
        return instantiate({**spec, "_partial_": True})(parameters)
    except (InstantiationException, TypeError, ValueError) as err:
        lines = str(err).strip().splitlines() or [type(err).__name__]
        message = lines[-1].split(", set env var HYDRA_FULL_ERROR")[0]  # Hydra's hint names no key of ours
        unexpected = re.search(r"unexpected keyword argument '(\w+)'", message)
        remedy = f" (leave it out: ~optim.{unexpected[1]})" if unexpected else ""
        raise UserError(f"optim._target_={spec['_target_']} cannot be made from optim.*: {message}{remedy}") from None


FINAL_LR_FRACTION = 0.1  # where cosine ends, and the second drop of step: nanoGPT's min_lr = lr / 10


def lr_factor(schedule: str, warmup_steps: int, total_steps: int, step: int) -> float:
    """The learning rate at `step` as a fraction of optim.lr: a linear warm-up from lr/warmup_steps over
    `warmup_steps`, then constant, cosine (down to lr/10 at the last step), step (lr/sqrt(10) from half
    of the remaining steps, lr/10 from three quarters) or wsd (warm-up, stable, decay: constant for half
    of the remaining steps, then linearly down to zero at the last)."""
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}")
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    if schedule == "cosine":
        return FINAL_LR_FRACTION + (1 - FINAL_LR_FRACTION) * (1 + math.cos(math.pi * progress)) / 2
    if schedule == "step":
        return FINAL_LR_FRACTION ** ((progress >= 0.5) / 2 + (progress >= 0.75) / 2)
    if schedule == "wsd":
        return min(1.0, 2 * (1 - progress))
    return 1.0
