"""One run: a composed config -> a LyricsDataModule, a LyricLM and a Lightning Trainer -> Trainer.fit, into
one run directory. `python -m lyricgen.train` (lyricgen.train) is the command around it."""

import ctypes
import io
import json
import logging
import math
import sys
import warnings
from pathlib import Path

import hydra.utils
import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch.utils.tensorboard.summary import hparams

from lyricgen import UserError, provenance
from lyricgen.atomic import write_atomically
from lyricgen.config import CONF_DIR
from lyricgen.data.windows import LyricsDataModule
from lyricgen.nn.checkpoints import find_checkpoint, read_checkpoint, warm_start
from lyricgen.nn.networks import network_spec
from lyricgen.nn.ngram import memory_mixture
from lyricgen.nn.sampling import sample_text
from lyricgen.options import flatten
from lyricgen.rundir import RunDir
from lyricgen.training.callbacks import (
    CheckpointOnSignal,
    FinishAtLastStep,
    RNGState,
    SpikeForensics,
    StepMetrics,
    TextSamples,
    progress_bar,
    sample_tags,
    tensorboard,
)
from lyricgen.training.module import OWN_OPTIM_KEYS, LyricLM, build_optimizer

# Batches are sampled in-process in microseconds: DataLoader workers would only add overhead.
warnings.filterwarnings("ignore", message=".*does not have many workers.*")


def serialised(checkpoint: dict) -> memoryview:
    """torch.save into memory: written to disk in one call, a full disk or a size limit then surfaces as
    the OSError that says so (torch's own file writer reports it as "unexpected pos")."""
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    return buffer.getbuffer()


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write each checkpoint to a temporary file and rename it into place, so a crash mid-save leaves the
    previous checkpoint intact."""

    def save_checkpoint(self, checkpoint: dict, path: str | Path, storage_options: object = None) -> None:
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            write_atomically(Path(path), lambda partial: partial.write_bytes(serialised(checkpoint)))
        except OSError as err:  # disk full, file too large, read-only: stop, and say what is kept
            raise UserError(
                f"cannot save checkpoint {path}: {err.strerror or err}; the previous checkpoint is kept "
                "(free some space or move the run, then resume it)"
            ) from None

    def load_checkpoint(self, path: str | Path, map_location: object = None, weights_only: bool | None = None) -> dict:
        """Never unpickle code: checkpoints hold plain values and tensors only."""
        return read_checkpoint(path)


def trainer_options(cfg: DictConfig) -> dict:
    """cfg.trainer as Trainer arguments, interpolations such as ${scaled:N} resolved (config.validate has
    checked each name and type), and bf16 on a CPU without it run in float32 (cpu_precision)."""
    options = OmegaConf.to_container(cfg.trainer, resolve=True)
    on_cpu = options.get("accelerator") == "cpu" or (
        options.get("accelerator") == "auto" and not torch.cuda.is_available()
    )
    if on_cpu and "precision" in options:
        options["precision"], note = cpu_precision(str(options["precision"]), provenance.cpu()[1])
        if note:
            print(note, file=sys.stderr)
    return options


def cpu_precision(precision: str, instruction_sets: list[str]) -> tuple[str, str | None]:
    """The precision a CPU runs: bf16 where it has native bf16 arithmetic (oneDNN needs it: without it
    bf16 kernels fail or crawl), float32 elsewhere, with one line saying so."""
    if not precision.startswith("bf16") or set(instruction_sets) & set(provenance.NATIVE_BF16):
        return precision, None
    native = " or ".join(provenance.NATIVE_BF16)
    return "32-true", f"note: this CPU has no native bf16 ({native}): trainer.precision={precision} runs as 32-true"


def build_trainer(cfg: DictConfig, out_dir: Path, resume_step: int = 0) -> L.Trainer:
    best = ModelCheckpoint(
        dirpath=RunDir(out_dir).checkpoints, filename="best", monitor="val/loss", enable_version_counter=False
    )
    last = ModelCheckpoint(  # last.ckpt every checkpoint.every_n_steps: the most work a crash can cost
        dirpath=RunDir(out_dir).checkpoints,
        every_n_train_steps=cfg.checkpoint.every_n_steps,
        save_top_k=0,
        save_last=True,
        enable_version_counter=False,  # always last.ckpt: a resumed run overwrites it, never adds last-v1.ckpt
    )
    options = trainer_options(cfg)
    # purge_step drops events that a killed run wrote after its last checkpoint, so the curve continues.
    board = TensorBoardLogger(out_dir, name="", version="", default_hp_metric=False, purge_step=resume_step or None)
    loggers = [board, *built_from_specs(cfg.logger.extra, f"logger={cfg.logger.name}", save_dir=str(out_dir))]
    if options.pop("logger", True) is False:
        loggers = False
    callbacks = [
        best,
        last,
        StepMetrics(),
        TextSamples(cfg.sample_length, RunDir(out_dir)),
        SpikeForensics(cfg.spikes.grad_ratio, cfg.spikes.loss_jump),
        RNGState(),
        FinishAtLastStep(),
        CheckpointOnSignal(),
        *progress_bar(options.get("enable_progress_bar", True)),
        *built_from_specs(cfg.callbacks, "callbacks"),  # the user's choice comes last
    ]
    try:
        return L.Trainer(
            default_root_dir=out_dir, logger=loggers, callbacks=callbacks, plugins=[AtomicCheckpointIO()], **options
        )
    except (TypeError, ValueError, MisconfigurationException) as err:
        raise UserError(f"trainer: {str(err).strip().splitlines()[0]}") from None


def built_from_specs(specs: ListConfig | DictConfig, key: str, **extra: object) -> list:
    """Objects made from config entries with a _target_ (hydra.utils.instantiate), a list or a dict by
    name; a missing package or a wrong argument is one line naming the config key."""
    made = []
    named = specs.items() if OmegaConf.is_dict(specs) else ((None, spec) for spec in specs)
    for name, spec in named:
        try:
            made.append(hydra.utils.instantiate(spec, **extra))
        except Exception as err:  # Hydra wraps import and argument errors of every kind
            cause = err
            while cause.__cause__ is not None:  # the import or argument error under Hydra's wrappers
                cause = cause.__cause__
            raise UserError(
                f"{key if name is None else f'{key}.{name}'}: cannot make {spec.get('_target_')}: "
                f"{str(cause).strip().splitlines()[0]}"
            ) from None
    return made


@rank_zero_only
def log_run_config(logger: TensorBoardLogger | None, cfg: DictConfig) -> None:
    """Put every config value in TensorBoard's HPARAMS tab, linked to the validation curves, so a sweep's
    runs can be compared by what was varied (without writing fake metric points). Other loggers (and no
    logger, or fast_dev_run's) get nothing."""
    if logger is None:
        return
    flat = flatten(OmegaConf.to_container(cfg, resolve=True))
    params = {key: value if isinstance(value, int | float | str | bool) else str(value) for key, value in flat}
    for summary in hparams(params, {"val/loss": 0.0, "val/bpc": 0.0}):
        logger.experiment._get_file_writer().add_summary(summary)


def fit_run(cfg: DictConfig, out_dir: Path, ckpt_path: Path | None = None) -> float:
    """Train one run into `out_dir`, from scratch or continuing `ckpt_path`; return its best validation
    loss, the one best.ckpt holds (what sweepers minimise)."""
    resume_step = start_of(cfg, out_dir, ckpt_path)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    tune_process()
    quiet_lightning()
    datamodule, model = build_run(cfg, ckpt_path, out_dir)
    trainer = build_trainer(cfg, out_dir, resume_step)
    if trainer.is_global_zero:
        print(model_line(model), flush=True)
    log_run_config(tensorboard(trainer), cfg)
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    val_loss = float(trainer.callback_metrics["val/loss"])
    best = trainer.checkpoint_callback.best_model_score  # under ddp_spawn it stays in the workers
    if trainer.is_global_zero:  # under DDP the other ranks stay quiet
        with_memory = trainer.callback_metrics.get("val/loss_with_memory")
        losses = (val_loss, None if with_memory is None else float(with_memory))
        print_summary(model, out_dir, losses, trainer.global_step, cfg)
    return val_loss if best is None else min(val_loss, float(best))


def model_line(model: LyricLM) -> str:
    """The model in one line: its class, its shape and its size."""
    spec = model.hparams.network
    shape = ", ".join(f"{key}={spec[key]}" for key in ("cell", "num_layers", "hidden_size", "input") if key in spec)
    parameters = sum(parameter.numel() for parameter in model.parameters())
    return f"model: {spec['_target_'].rsplit('.', 1)[-1]} ({shape}), {parameters:,} parameters"


def start_of(cfg: DictConfig, out_dir: Path, ckpt_path: Path | None) -> int:
    """The step the run starts from (0, or its checkpoint's), once it is known to have steps left; its
    config.yaml written (what `resume=` continues with)."""
    resume_step = start_step(cfg, out_dir, ckpt_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    if rank_zero_only.rank == 0:  # under DDP one rank writes it
        write_atomically(RunDir(out_dir).config, lambda partial: partial.write_text(OmegaConf.to_yaml(cfg)))
    return resume_step


def start_step(cfg: DictConfig, out_dir: Path, ckpt_path: Path | None) -> int:
    """The step a run starts from: 0, or its checkpoint's if it has steps left (one line otherwise)."""
    resume_step = resumable_step(ckpt_path) if ckpt_path else 0  # a checkpoint that cannot be read: said first
    if resume_step >= cfg.trainer.max_steps:
        raise UserError(
            f"{out_dir} already ran its {resume_step} steps (trainer.max_steps={cfg.trainer.max_steps}): "
            f"to train it longer, add trainer.max_steps=<more than {resume_step}>"
        )
    return resume_step


def build_run(cfg: DictConfig, ckpt_path: Path | None, out_dir: Path) -> tuple[LyricsDataModule, LyricLM]:
    """The run's data and module, seeded: the same config builds the same initial weights, and leaves the
    global RNG (dropout's) in the same state, whether the run trains alone or stacked. What the run reads
    (its sizes and the validation text's fingerprint) goes into its data.json."""
    L.seed_everything(cfg.seed, verbose=False)
    datamodule = LyricsDataModule(**cfg.data, seed=cfg.seed, labelled=cfg.model.condition is not None)
    datamodule.setup("fit")  # the model's size depends on the vocabulary (and the labels)
    model = build_module(cfg, datamodule.vocab, datamodule.labels)
    build_optimizer(model.hparams.optimizer, model.parameters())  # a wrong optim.* key: said before anything runs
    model.ngram_memory = memory_mixture(datamodule.train_ids, len(datamodule.vocab), **cfg.memory)
    if cfg.init_from and ckpt_path is None:  # a resumed run's weights come from its own checkpoint
        start_from_checkpoint(model, cfg)
    if rank_zero_only.rank == 0:  # once the run has everything it needs to start
        record = json.dumps(datamodule.summary(), indent=2) + "\n"
        write_atomically(RunDir(out_dir).data, lambda partial: partial.write_text(record))
    return datamodule, model


def build_module(cfg: DictConfig, vocab: str, labels: list[str]) -> LyricLM:
    # hyperparameters must be plain values (no DictConfig) for weights_only checkpoint loading
    guard = {"guard_ratio": cfg.guard.ratio, "guard_steps": cfg.guard.steps}
    network = network_spec(OmegaConf.to_container(cfg.model), labels)
    optim = OmegaConf.to_container(cfg.optim)
    own = {key: optim.pop(key) for key in OWN_OPTIM_KEYS}  # the rest is the optimiser's: its class and arguments
    return LyricLM(vocab=vocab, network=network, optimizer=optim, **own, **guard)


def adam_module(vocab: str, network: dict, **settings: object) -> LyricLM:
    """A LyricLM outside a run (a notebook, a test, a benchmark): conf/optim/adam.yaml's Adam, conf/config.yaml's
    schedule keys and guard, with `settings` on top (lr=0.01, weight_decay=0.1, activation_reg=2.0, ...)."""
    run = OmegaConf.load(CONF_DIR / "config.yaml")
    optimizer = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "optim" / "adam.yaml"))
    own = {key: settings.pop(key, run.optim[key]) for key in OWN_OPTIM_KEYS}
    guard = {"guard_ratio": run.guard.ratio, "guard_steps": run.guard.steps}
    return LyricLM(vocab=vocab, network=network, optimizer=optimizer | settings, **own, **guard)


def start_from_checkpoint(module: LyricLM, cfg: DictConfig) -> None:
    """init_from: the weights of another run's checkpoint (fine-tuning); the optimiser starts fresh."""
    path = find_checkpoint(cfg.init_from, cfg.paths.output_dir)
    new = warm_start(module.model, module.hparams.vocab, module.hparams.network, path)
    fresh = f"; {len(new)} characters it lacks start from fresh rows: {new!r}" if new else ""
    print(f"init_from: weights of {path}{fresh}", file=sys.stderr)


def print_summary(
    model: LyricLM, out_dir: Path, val_losses: tuple[float, float | None], steps: int, cfg: DictConfig
) -> None:
    """The run's directory, its final validation loss after the steps it ran (the network's, and with the
    memory mixed in), and a sample (from the mixture, when there is a memory). (Under ddp_spawn the main
    process's trainer has not stepped: it reports the configured max_steps.)"""
    print(f"\nrun dir: {out_dir}")
    network, with_memory = val_losses
    steps = steps or cfg.trainer.max_steps
    print(f"val loss {network:.4f} nats/char, {network / math.log(2):.4f} bits/char after {steps} steps")
    if with_memory is not None:
        print(
            f"with the {cfg.memory.order}-gram memory of the training text (weight {cfg.memory.weight}): "
            f"val loss {with_memory:.4f} nats/char, {with_memory / math.log(2):.4f} bits/char"
        )
    for tag, label in sample_tags(model.model.labels):
        text = sample_text(
            model.model,
            model.hparams.vocab,
            length=cfg.sample_length,
            seed=cfg.seed,
            label=label,
            memory=model.ngram_memory,
        )
        print(f"{tag}:\n{text}")


def resumable_step(ckpt_path: Path) -> int:
    """The step a training checkpoint was saved at (loaded safely, before any data is read)."""
    step = read_checkpoint(ckpt_path).get("global_step")
    if not isinstance(step, int):
        raise UserError(f"{ckpt_path} is not a training checkpoint (it has no global_step)")
    return step


# Lightning's lines a lyricgen run has nothing to act on: an advertisement, the absence of accelerators on a
# CPU run, the stop at max_steps that the summary reports, and hints meant for other setups.
UNACTIONABLE_LINES = ("💡 Tip:", "GPU available: False", "TPU available: False", "`Trainer.fit` stopped: `max_steps=")
UNACTIONABLE_WARNINGS = (".*isinstance\\(treespec, LeafSpec\\).*", "The `srun` command is available on your system")


class Unactionable(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(UNACTIONABLE_LINES)


def quiet_lightning() -> None:
    """The first screen of a run shows what its user needs once (run directory, model, progress, result,
    sample): Lightning's unactionable lines and warnings are left out (its log file keeps the rest)."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        chosen = logging.getLogger(name)
        if not any(isinstance(existing, Unactionable) for existing in chosen.filters):
            chosen.addFilter(Unactionable())
    for message in UNACTIONABLE_WARNINGS:
        warnings.filterwarnings("ignore", message=message)


def tune_process() -> None:
    """Two process-wide CPU settings that training steps gain from. Only the entry points (training,
    benchmarks) call this, not the library, as they also set the thread count.

    - Subnormal floats flush to zero: gradients that fade through many time steps reach the subnormal
      range (below 1e-38), where every multiply involving them takes a slow microcode path.
    - glibc keeps large freed blocks: a training step frees and re-allocates the same multi-megabyte
      activation buffers every time; by default glibc unmaps them, and the next step pays a page fault per
      4 KiB to get them back (docs/speed.md).
    """
    torch.set_flush_denormal(True)
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (e.g. musl): nothing to tune
        return
    mmap_threshold, trim_threshold = -3, -1  # mallopt's M_MMAP_THRESHOLD, M_TRIM_THRESHOLD
    libc.mallopt(mmap_threshold, 32 * 2**20)  # glibc's largest: blocks up to 32 MiB come from the heap
    libc.mallopt(trim_threshold, 2**30)  # and freed heap memory stays for the next step
