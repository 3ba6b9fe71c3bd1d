"""CharRNN, the network, and LyricLM, the LightningModule that trains it: side by side in one file."""

import math
import time
import warnings
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import TensorBoardLogger
from torch import nn

from lyricgen import Diverged, UserError, corpus, kernels

# Printed once when oneDNN is toggled (one_step_kernels); it concerns Intel GPUs only.
warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN")

CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
INPUTS = ("onehot", "embedding")
NONLINEARITIES = ("tanh", "relu")


class CharRNN(nn.Module):
    """Characters in, next-character logits out: input encoding -> recurrent stack -> linear decoder.

    On a CPU, RNN and GRU stacks run through lyricgen.kernels (one autograd node per layer: ~3x the speed
    of nn.RNN/nn.GRU at batch 1, 1.1-1.4x at batch 64); LSTMs, and every cell on a GPU, run as one
    nn.LSTM/GRU/RNN call over (batch, seq). Dropout sits between layers and on the top layer's output, as
    in karpathy/char-rnn, so it regularises a 1-layer model too.
    """

    def __init__(
        self,
        vocab_size: int,
        cell: str = "rnn",
        num_layers: int = 1,
        hidden_size: int = 100,
        dropout: float = 0.0,
        nonlinearity: str = "tanh",
        input: str = "onehot",
        embed_dim: int = 64,
    ):
        super().__init__()
        self.vocab_size = vocab_size
        self.embedding = nn.Embedding(vocab_size, embed_dim) if input == "embedding" else None
        cell_options = {"nonlinearity": nonlinearity} if cell == "rnn" else {}
        self.rnn = CELLS[cell](
            embed_dim if self.embedding else vocab_size,
            hidden_size,
            num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,  # nn.RNN warns about dropout with a single layer
            **cell_options,
        )
        self.dropout = dropout
        self.decoder = nn.Linear(hidden_size, vocab_size)

    def encode_input(self, ids: torch.Tensor) -> torch.Tensor:
        if self.embedding is None:  # the paper's one-hot input
            return F.one_hot(ids, self.vocab_size).to(self.decoder.weight.dtype)
        return self.embedding(ids)

    def forward(self, ids: torch.Tensor, hidden: torch.Tensor | tuple | None = None) -> tuple[torch.Tensor, object]:
        """ids (batch, seq) -> logits (batch, seq, vocab) and the final hidden state."""
        if self.runs_on_cpu_kernels(ids):
            ids = ids.t()  # time-major: each step's rows are contiguous
            inputs = ids if self.embedding is None else self.embedding(ids)  # one-hot as indices: a lookup
            output, hidden = kernels.recurrent_stack(self.rnn, inputs, hidden)
            return self.decoder(kernels.dropout(output, self.dropout, self.training)).transpose(0, 1), hidden
        output, hidden = self.rnn(self.encode_input(ids), hidden)
        return self.decoder(kernels.dropout(output, self.dropout, self.training)), hidden

    def runs_on_cpu_kernels(self, ids: torch.Tensor) -> bool:
        """RNN and GRU sequences on a CPU, in full precision (CPU autocast would hand the kernels mixed
        dtypes). A single step (generation) stays one nn.RNN/GRU call: the kernels' per-layer setup costs
        more than they save there (the paper's best model generated at 2,400 instead of 4,300 chars/s)."""
        return (
            ids.size(1) > 1
            and ids.device.type == "cpu"
            and isinstance(self.rnn, nn.RNN | nn.GRU)
            and not torch.is_autocast_enabled("cpu")
            and self.decoder.weight.dtype in (torch.float32, torch.float64)
        )

    @torch.no_grad()
    def generate_steps(
        self,
        prime: torch.Tensor,
        length: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Iterator[torch.Tensor]:
        """Yield `length` next ids, one (batch,) tensor at a time, continuing each row of `prime`.

        The prime runs through the network once; each new character then costs one recurrent step on the
        carried hidden state. temperature=0 picks the most likely character (greedy).
        """
        was_training = self.training
        self.eval()
        try:
            logits, hidden = self(prime)
            for position in range(length):
                next_id = sample_next(logits[:, -1], temperature, top_k, generator)
                yield next_id
                if position < length - 1:  # no step past the last character
                    with one_step_kernels():
                        logits, hidden = self(next_id.unsqueeze(1), hidden)
        finally:
            self.train(was_training)

    def generate(self, prime: torch.Tensor, length: int, *args: object, **kwargs: object) -> torch.Tensor:
        """(batch, length) ids continuing each row of `prime`; arguments as for generate_steps."""
        steps = list(self.generate_steps(prime, length, *args, **kwargs))
        return torch.stack(steps, dim=1) if steps else prime[:, :0]


def one_step_kernels() -> AbstractContextManager:
    """oneDNN's LSTM wins on whole sequences (training) but is ~2x slower than torch's native kernel for
    one step at a time (measured: 430 vs 187 us for a 2-layer LSTM 256 on one CPU thread)."""
    return torch.backends.mkldnn.flags(enabled=False)


def sample_next(
    logits: torch.Tensor, temperature: float, top_k: int | None, generator: torch.Generator | None
) -> torch.Tensor:
    """One id per row of logits (batch, vocab), by temperature and optional top-k."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits.float() / temperature
    if not torch.isfinite(logits).all():
        raise UserError("the model's outputs are not finite: its training diverged")
    if top_k:
        kth_best = logits.topk(min(top_k, logits.size(-1)), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth_best, -math.inf)
    probs = logits.softmax(dim=-1)
    return torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(1).to(logits.device)


def sequence_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over every position of logits (batch, seq, vocab) and targets (batch, seq).
    The CPU kernels' logits are a (batch, seq) view of time-major memory: flattening them time-major
    avoids copying them (and their gradient) back to batch-major order."""
    if not logits.is_contiguous() and logits.transpose(0, 1).is_contiguous():
        logits, targets = logits.transpose(0, 1), targets.t()
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))


def read_checkpoint(path: str | Path) -> dict:
    """A checkpoint's contents, loaded with weights_only so that a checkpoint file can never run code;
    whatever goes wrong (missing, corrupt, refused pickle) is one UserError line."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch reports corrupt files and refused pickles with many exception types
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"cannot load checkpoint {path}: {first_line}") from None


class LyricLM(L.LightningModule):
    """Trains a CharRNN with cross-entropy and Adam; its hyperparameters (vocabulary included) are plain
    values, so a checkpoint alone is enough to generate text."""

    def __init__(
        self,
        vocab: str,
        cell: str = "rnn",
        num_layers: int = 1,
        hidden_size: int = 100,
        dropout: float = 0.0,
        nonlinearity: str = "tanh",
        input: str = "onehot",
        embed_dim: int = 64,
        lr: float = 0.005,
        betas: tuple[float, float] = (0.9, 0.999),
        weight_decay: float = 0.0,
        sample_length: int = 200,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.model = CharRNN(len(vocab), cell, num_layers, hidden_size, dropout, nonlinearity, input, embed_dim)
        self._timer = (0, time.perf_counter())  # (step, time) at the last throughput measurement
        self._last_finite_loss = torch.tensor(math.nan)  # for the message if training diverges
        self._pending: list[tuple[int, dict[str, torch.Tensor]]] = []  # (step, metrics) not yet written
        self._chars_per_step = 0

    def loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        inputs, targets = batch
        logits, _ = self.model(inputs)
        return sequence_loss(logits, targets)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.loss(batch)
        if not torch.isfinite(loss):
            self.stop_diverged(f"loss is {loss.item()}")
        self._last_finite_loss = loss.detach()
        self._pending.append((self.global_step, {"train/loss": self._last_finite_loss}))
        return loss

    def configure_gradient_clipping(
        self,
        optimizer: torch.optim.Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """Lightning calls this after backward on every step, clipping or not: the gradient norm is computed
        once here, logged before clipping (so the paper's exploding gradients show in full), checked, and
        reused to clip by norm (Lightning's own clipping would compute it again)."""
        grads = [p.grad for p in self.parameters() if p.grad is not None]
        grad_norm = torch.nn.utils.get_total_norm(grads)
        if not torch.isfinite(grad_norm):
            self.stop_diverged(f"gradient norm is {grad_norm.item()}")
        self._pending[-1][1]["train/grad_norm"] = grad_norm
        if not gradient_clip_val:
            return
        if gradient_clip_algorithm == "value":
            super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)
        else:
            torch.nn.utils.clip_grads_with_norm_(self.parameters(), gradient_clip_val, grad_norm)

    def stop_diverged(self, what: str) -> None:
        """Mark the run as diverged in its logs and stop before the weights are updated with non-finite
        values, so the last checkpoint stays the last good state."""
        last_loss = float(self._last_finite_loss)
        message = (
            f"training diverged at step {self.global_step}: {what} (last finite loss {last_loss:.4f}, "
            f"lr {self.hparams.lr}); lower optim.lr or set trainer.gradient_clip_val"
        )
        self.write_step_metrics()
        if isinstance(self.logger, TensorBoardLogger):
            self.logger.experiment.add_scalar("train/diverged", 1.0, self.global_step)
            self.logger.experiment.add_text("status", message, self.global_step)
            self.logger.experiment.flush()
        raise Diverged(message)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # Dropout draws from the global RNG: restoring it makes a resumed run bit-identical.
        checkpoint["torch_rng_state"] = torch.get_rng_state()
        self.write_step_metrics()  # the curve on disk reaches at least the checkpoint a resumed run starts from
        if self.logger:
            self.logger.save()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if "torch_rng_state" in checkpoint:
            torch.set_rng_state(checkpoint["torch_rng_state"])

    def on_train_batch_end(self, outputs: object, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._chars_per_step = batch[1].numel()
        if self.trainer.should_stop or self.global_step % self.trainer.log_every_n_steps == 0:
            if self._pending:
                self.log("train/loss", self._pending[-1][1]["train/loss"], prog_bar=True, logger=False)
            self.write_step_metrics()

    def write_step_metrics(self) -> None:
        """Write the buffered per-step metrics, each at its own step, and the throughput since the last write.

        Buffering, instead of self.log at every step, saves ~3 ms of Lightning bookkeeping a step: 10-15% of
        a batch-1 step of the paper's models.
        """
        if not self._pending:
            return
        step, now = self.global_step, time.perf_counter()
        last_step, last_time = self._timer
        if self.logger:
            for pending_step, metrics in self._pending:
                self.logger.log_metrics({name: float(value) for name, value in metrics.items()}, pending_step)
            if step > last_step:
                chars_per_s = (step - last_step) * self._chars_per_step / (now - last_time)
                self.logger.log_metrics({"perf/chars_per_s": chars_per_s}, self._pending[-1][0])
        self._pending.clear()
        self._timer = (step, now)

    def on_train_start(self) -> None:
        self._timer = (self.global_step, time.perf_counter())

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        loss = self.loss(batch)
        windows = len(batch[0])  # weight each batch by its size: the epoch mean is the mean over characters
        self.log("val/loss", loss, prog_bar=True, batch_size=windows, sync_dist=True)  # averaged over DDP ranks
        self.log("val/bpc", loss / math.log(2), batch_size=windows, sync_dist=True)

    def on_validation_epoch_end(self) -> None:
        if (
            self.trainer.sanity_checking
            or not self.trainer.is_global_zero
            or not isinstance(self.logger, TensorBoardLogger)
        ):
            return
        try:
            text = self.sample(length=self.hparams.sample_length, seed=self.global_step)
        except UserError as err:  # a sample is not worth stopping training for; the loss curve tells
            text = f"(no sample: {err})"
        indented = "    " + text.replace("\n", "\n    ")  # a Markdown code block keeps the line breaks
        self.logger.experiment.add_text("sample", indented, self.global_step)

    def sample(
        self,
        prime: str | None = None,
        length: int = 300,
        temperature: float = 0.8,
        top_k: int | None = None,
        seed: int = 0,
    ) -> str:
        """Text generated after `prime` (default: a line break), reproducible from `seed` without touching
        the global RNG."""
        prime = self.default_prime() if prime is None else prime
        prime_ids = corpus.encode(prime, self.hparams.vocab).long().unsqueeze(0).to(self.device)
        generator = torch.Generator().manual_seed(seed)
        new_ids = self.model.generate(prime_ids, length, temperature, top_k, generator)
        return corpus.decode(new_ids[0], self.hparams.vocab)

    def default_prime(self) -> str:
        """A line break, as if starting a new song; any character for a text that has none."""
        return "\n" if "\n" in self.hparams.vocab else self.hparams.vocab[0]

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(
            self.parameters(),
            lr=self.hparams.lr,
            betas=tuple(self.hparams.betas),
            weight_decay=self.hparams.weight_decay,
        )
