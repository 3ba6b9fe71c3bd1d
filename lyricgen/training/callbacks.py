"""What a training run records besides its weights, as Lightning callbacks: per-step metrics, text samples,
spike forensics, the RNG state in checkpoints, a final checkpoint, and a checkpoint when interrupted."""

import importlib.util
import json
import math
import signal
import sys
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, RichProgressBar
from lightning.pytorch.loggers import TensorBoardLogger

from lyricgen import Diverged, Interrupted, NotRequeued, UserError
from lyricgen.atomic import write_atomically
from lyricgen.data.windows import window_texts
from lyricgen.nn.sampling import sample_texts
from lyricgen.quality.scorecard import score
from lyricgen.rundir import RunDir
from lyricgen.training.module import LyricLM, RunLoop
from lyricgen.training.spikes import BLOCK, HISTORY, GradNormal

SCORED = 4  # samples written (as one batch) and scored at each validation
SCALARS = (
    "real_words",
    "line_chars_mean",
    "line_chars_sd",
    "lines_per_stanza",
    "rhyme_share",
    "repeated_lines",
    "distinct_2",
)
Batch = tuple[torch.Tensor, ...]  # inputs, targets, and for a conditioned run each character's label


def tensorboard(loop: RunLoop) -> TensorBoardLogger | None:
    """The run's TensorBoard logger, for what only TensorBoard can show (text); None under other loggers."""
    return next((logger for logger in loop.loggers if isinstance(logger, TensorBoardLogger)), None)


def add_text(loop: RunLoop, tag: str, text: str) -> None:
    """Text in TensorBoard's TEXT tab; indented as a Markdown code block so line breaks survive."""
    board = tensorboard(loop)
    if board is not None and loop.is_global_zero:
        board.experiment.add_text(tag, "    " + text.replace("\n", "\n    "), loop.step)


class StepMetrics(Callback):
    """train/loss (the cross-entropy, without optim's activation penalties), train/grad_norm (before
    clipping) and train/lr of EVERY step, and perf/chars_per_s.

    Buffered and written every `log_every_n_steps` steps, each value at its own step: self.log at every
    step costs milliseconds of Lightning bookkeeping, a noticeable share of a batch-1 step of the paper's
    models (docs/speed.md). The buffer
    is flushed before each checkpoint (the curve on disk reaches at least the step a resumed run starts
    from) and when training fails, which marks a diverged run with train/diverged.
    """

    def __init__(self, progress_bar: bool = True) -> None:
        """progress_bar: show train/loss in Lightning's progress bar (a stacked run's members have none)."""
        self.progress_bar = progress_bar
        self.pending: list[tuple[int, torch.Tensor, torch.Tensor, float]] = []  # (step, loss, grad norm, lr)
        self.timer = (0, time.perf_counter())  # (step, time) at the last write
        self.chars_per_step = 0
        self.lr = math.nan

    def on_train_start(self, trainer: L.Trainer, pl_module: LyricLM) -> None:
        self.timer = (pl_module.run_loop().step, time.perf_counter())

    def on_before_optimizer_step(
        self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        self.lr = optimizer.param_groups[0]["lr"]  # this step's: a scheduler steps before on_train_batch_end

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: LyricLM, outputs: dict, batch: Batch, batch_idx: int
    ) -> None:
        loop = pl_module.run_loop()
        self.pending.append((loop.step - 1, pl_module.step_loss, pl_module.grad_norm, self.lr))
        self.chars_per_step = batch[1].numel()
        if loop.should_stop or loop.step % loop.log_every_n_steps == 0:
            if self.progress_bar:
                pl_module.log("train/loss", self.pending[-1][1], prog_bar=True, logger=False)
            self.write(loop)

    def write(self, loop: RunLoop) -> None:
        if not self.pending:
            return
        step, now = loop.step, time.perf_counter()
        last_step, last_time = self.timer
        for logger in loop.loggers:
            for pending_step, loss, grad_norm, lr in self.pending:
                metrics = {"train/loss": float(loss), "train/grad_norm": float(grad_norm), "train/lr": lr}
                logger.log_metrics(metrics, pending_step)
            if step > last_step:
                chars_per_s = (step - last_step) * self.chars_per_step / (now - last_time)
                logger.log_metrics({"perf/chars_per_s": chars_per_s}, self.pending[-1][0])
        self.pending.clear()
        self.timer = (step, now)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: LyricLM, checkpoint: dict) -> None:
        loop = pl_module.run_loop()
        self.write(loop)
        for logger in loop.loggers:
            logger.save()

    def on_exception(self, trainer: L.Trainer, pl_module: LyricLM, exception: BaseException) -> None:
        loop = pl_module.run_loop()
        self.write(loop)
        if isinstance(exception, Diverged):
            for logger in loop.loggers:
                logger.log_metrics({"train/diverged": 1.0}, loop.step)
            add_text(loop, "status", str(exception))
        for logger in loop.loggers:
            logger.save()


class TextSamples(Callback):
    """Samples at every validation, `length` characters long: the first in TensorBoard's TEXT tab, all
    SCORED of them on the lyrics scorecard as sample/* scalars and in the run's samples.json (one set per
    label, sample/<label>, for a conditioned model). What a reader meets, next to the loss that does not
    measure it."""

    def __init__(self, length: int, run_dir: RunDir):
        self.length, self.run_dir = length, run_dir

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: LyricLM) -> None:
        loop = pl_module.run_loop()
        if loop.sanity_checking or tensorboard(loop) is None or not loop.is_global_zero:
            return
        cards = {}
        for tag, label in sample_tags(pl_module.model.labels):
            try:
                texts = sample_texts(
                    pl_module.model, pl_module.hparams.vocab, SCORED, length=self.length, seed=loop.step,
                    label=label,
                )  # fmt: skip
            except UserError as err:  # a sample is not worth stopping training for; the loss curve tells
                add_text(loop, tag, f"(no sample: {err})")
                continue
            add_text(loop, tag, texts[0])
            cards[tag] = score(texts).as_dict()
            scalars = {f"{tag}/{name}": cards[tag][name] for name in SCALARS if math.isfinite(cards[tag][name])}
            for logger in loop.loggers:
                logger.log_metrics(scalars, loop.step)
        record = {"step": loop.step, "samples": SCORED, "length": self.length, "scorecards": cards}
        write_atomically(self.run_dir.samples, lambda partial: partial.write_text(json.dumps(record, indent=2)))


def sample_tags(labels: list[str]) -> list[tuple[str, int | None]]:
    """(tag, label index) of the samples to show: one, or one per label of a conditioned model."""
    return [(f"sample/{name}", index) for index, name in enumerate(labels)] or [("sample", None)]


class SpikeForensics(Callback):
    """Steps whose gradient norm (before clipping) or loss jumps far above their recent history, with the
    text of the batch that set them off: one JSON line each in `<run dir>/spikes.jsonl`, and TensorBoard text.

    A gradient spike is what lyricgen.training.spikes defines (the report names the same steps): a norm
    above `grad_ratio` times the normal one. A loss jump is a loss `loss_jump` nats above its running mean
    over the last ~BLOCK x HISTORY steps. Nothing is recorded while those first steps come in, as the loss
    is still falling fast.
    """

    def __init__(self, grad_ratio: float, loss_jump: float, max_records: int = 1000):
        self.grad_ratio, self.loss_jump, self.max_records = grad_ratio, loss_jump, max_records
        self.normal_grad = GradNormal()
        self.history = BLOCK * HISTORY
        self.mean_loss = 0.0
        self.seen = self.recorded = 0

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: LyricLM, outputs: dict, batch: Batch, batch_idx: int
    ) -> None:
        loss, grad_norm = pl_module.last_finite_loss, float(pl_module.grad_norm)  # the guard's, already synced
        if not (math.isfinite(loss) and math.isfinite(grad_norm) and grad_norm > 0):
            return  # a step the GradScaler skipped
        if self.seen >= self.history and self.is_spike(loss, grad_norm) and self.recorded < self.max_records:
            self.record(pl_module.run_loop(), pl_module, batch, loss, grad_norm)
        weight = 1 / min(self.seen + 1, self.history)  # a plain mean until `history` steps are in
        self.mean_loss = loss if self.seen == 0 else self.mean_loss + weight * (loss - self.mean_loss)
        self.normal_grad.add(grad_norm)
        self.seen += 1

    def is_spike(self, loss: float, grad_norm: float) -> bool:
        return self.normal_grad.is_spike(grad_norm, self.grad_ratio) or loss > self.mean_loss + self.loss_jump

    def record(self, loop: RunLoop, pl_module: LyricLM, batch: Batch, loss: float, grad_norm: float) -> None:
        entry = {
            "step": loop.step - 1,
            "loss": loss,
            "grad_norm": grad_norm,
            "lr": loop.optimizer.param_groups[0]["lr"],
            "typical_loss": self.mean_loss,
            "typical_grad_norm": self.normal_grad.level(),
            "windows": window_texts(*batch[:2], pl_module.hparams.vocab),
        }
        if loop.is_global_zero:
            with RunDir(loop.run_dir).spikes.open("a", encoding="utf-8") as file:
                file.write(json.dumps(entry) + "\n")
            add_text(
                loop,
                "spike",
                f"step {entry['step']}: loss {loss:.3f}, grad norm {grad_norm:.3g}\n\n"
                + "\n---\n".join(entry["windows"]),
            )
        self.recorded += 1


class RNGState(Callback):
    """Dropout draws from the global RNG: keeping its state in the checkpoint makes a resumed run
    bit-identical to an uninterrupted one."""

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        checkpoint["torch_rng_state"] = torch.get_rng_state()

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        if "torch_rng_state" in checkpoint:
            torch.set_rng_state(checkpoint["torch_rng_state"])


def last_checkpoint(trainer: L.Trainer) -> Path:
    return RunDir(Path(trainer.default_root_dir)).last


class FinishAtLastStep(Callback):
    """Validate at the final step, even when max_steps is not a multiple of val_check_interval (asking to
    stop is what makes Lightning run one more validation), then save the final state as last.ckpt,
    whatever checkpoint.every_n_steps. Both happen inside the training processes, also under ddp_spawn."""

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.global_step >= trainer.max_steps:
            trainer.should_stop = True

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        trainer.save_checkpoint(last_checkpoint(trainer), weights_only=False)


class CheckpointOnSignal(Callback):
    """Ctrl-C (SIGINT), a cluster's SIGTERM, or submitit's SIGUSR2 (a SLURM preemption or time limit under
    hydra/launcher=slurm): finish the step under way and save last.ckpt at it. After SIGINT or SIGTERM the
    run then stops with Interrupted, whose message says how to resume. SIGUSR2 is then handed on to the
    handler submitit installed, which requeues the job and exits: the requeued job continues from this
    checkpoint instead of from the last periodic one (submitit alone would exit mid-step, losing up to
    checkpoint.every_n_steps steps). Lightning's own SIGTERM handling stops without saving; this replaces
    it for the length of the fit."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)
    REQUEUE = signal.SIGUSR2  # submitit's: taken only where a Python handler (submitit's) is installed for it

    def __init__(self, how_to_continue: str | None = None) -> None:
        """how_to_continue: what the stop's message tells (default: resume= the run's directory)."""
        self.how_to_continue = how_to_continue
        self.received: int | None = None
        self.previous: dict[int, object] = {}

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        handled = [*self.SIGNALS, *([self.REQUEUE] if callable(signal.getsignal(self.REQUEUE)) else [])]
        try:
            self.previous = {signum: signal.signal(signum, self.note) for signum in handled}
        except ValueError:  # not the main thread (e.g. inside a threaded launcher): keep Lightning's handling
            self.previous = {}

    def note(self, signum: int, frame: object) -> None:
        if self.received != self.REQUEUE:  # a requeue asked for stays asked for (SLURM's SIGTERM follows it)
            self.received = signum

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        if self.received is None:
            return
        path = last_checkpoint(trainer)
        trainer.save_checkpoint(path, weights_only=False)
        name = signal.Signals(self.received).name
        stopped = f"stopped by {name} after step {trainer.global_step}: saved {path}"
        resume = self.how_to_continue or f"continue with: python -m lyricgen.train resume={trainer.default_root_dir}"
        if self.received == self.REQUEUE:
            requeue = self.previous[self.REQUEUE]
            self.teardown(trainer, trainer.lightning_module, "fit")
            print(f"note: {stopped}; the cluster's requeue takes over", file=sys.stderr, flush=True)  # in the job's log
            try:
                requeue(self.REQUEUE, None)  # submitit: requeue the job and exit (on rank 0; the others return)
            except Exception as err:  # submitit's UncompletedJobError: no requeue left
                raise NotRequeued(f"{stopped}; {err} ({resume})", 128 + self.received) from None
            raise Interrupted(f"{stopped}; rank 0 requeues the job", 128 + self.received)
        raise Interrupted(f"{stopped}; {resume}", exit_code=128 + self.received)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous = {}


class StepsProgressBar(RichProgressBar):
    """Lightning's rich progress bar, named by what it counts: a run is one endless epoch that max_steps
    ends, which Lightning's own label shows as "Epoch 0/-2"."""

    def _get_train_description(self, current_epoch: int) -> str:
        return "steps"


def progress_bar(enabled: bool) -> list[Callback]:
    """The progress bar of a run: the rich one where rich is installed (Lightning's text one otherwise)."""
    return [StepsProgressBar()] if enabled and importlib.util.find_spec("rich") else []
