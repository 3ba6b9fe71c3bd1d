"""Train a char-RNN from a composed Hydra config: `python -m lyricgen.train model=gru optim.lr=0.001`."""

import math
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf
from torch.utils.tensorboard.summary import hparams

from lyricgen import Diverged, UserError, kernels
from lyricgen.atomic import write_atomically
from lyricgen.config import validate
from lyricgen.data import LyricsDataModule
from lyricgen.model import LyricLM, read_checkpoint

RUN_CONFIG = "config.yaml"  # the run's resolved config, saved in its directory
RESUMABLE_KEYS = ("trainer.", "checkpoint.", "threads", "sample_length")  # what a resumed run may change

# Batches are sampled in-process in microseconds: DataLoader workers would only add overhead.
warnings.filterwarnings("ignore", message=".*does not have many workers.*")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write each checkpoint to a temporary file and rename it into place, so a crash mid-save leaves the
    previous checkpoint intact."""

    def save_checkpoint(self, checkpoint: dict, path: str | Path, storage_options: object = None) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        write_atomically(Path(path), lambda partial: torch.save(checkpoint, partial))

    def load_checkpoint(self, path: str | Path, map_location: object = None, weights_only: bool | None = None) -> dict:
        """Never unpickle code: checkpoints hold plain values and tensors only."""
        return read_checkpoint(path)


class FinishAtLastStep(Callback):
    """Validate at the final step, even when max_steps is not a multiple of val_check_interval (asking to
    stop is what makes Lightning run one more validation), then save the final state as last.ckpt,
    whatever checkpoint.every_n_steps. Both happen inside the training processes, also under ddp_spawn."""

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.global_step >= trainer.max_steps:
            trainer.should_stop = True

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        trainer.save_checkpoint(Path(trainer.default_root_dir) / "checkpoints" / "last.ckpt", weights_only=False)


def build_trainer(cfg: DictConfig, out_dir: Path, resume_step: int = 0) -> L.Trainer:
    best = ModelCheckpoint(
        dirpath=out_dir / "checkpoints", filename="best", monitor="val/loss", enable_version_counter=False
    )
    last = ModelCheckpoint(  # last.ckpt every checkpoint.every_n_steps: the most work a crash can cost
        dirpath=out_dir / "checkpoints",
        every_n_train_steps=cfg.checkpoint.every_n_steps,
        save_top_k=0,
        save_last=True,
        enable_version_counter=False,  # always last.ckpt: a resumed run overwrites it, never adds last-v1.ckpt
    )
    # purge_step drops events that a killed run wrote after its last checkpoint, so the curve continues.
    logger = TensorBoardLogger(out_dir, name="", version="", default_hp_metric=False, purge_step=resume_step or None)
    return L.Trainer(
        default_root_dir=out_dir,
        logger=logger,
        callbacks=[best, last, FinishAtLastStep()],
        plugins=[AtomicCheckpointIO()],
        **cfg.trainer,
    )


def flatten(tree: dict, prefix: str = "") -> Iterator[tuple[str, object]]:
    """("model.cell", "gru"), ... for every leaf of a nested dict."""
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


@rank_zero_only
def log_run_config(logger: TensorBoardLogger, cfg: DictConfig) -> None:
    """Put every config value in TensorBoard's HPARAMS tab, linked to the validation curves, so a sweep's
    runs can be compared by what was varied (without writing fake metric points)."""
    flat = flatten(OmegaConf.to_container(cfg, resolve=True))
    params = {key: value if isinstance(value, int | float | str | bool) else str(value) for key, value in flat}
    for summary in hparams(params, {"val/loss": 0.0, "val/bpc": 0.0}):
        logger.experiment._get_file_writer().add_summary(summary)


def train(cfg: DictConfig, out_dir: Path, ckpt_path: Path | None = None) -> float:
    """Train one run into `out_dir`, from scratch or continuing `ckpt_path`; return its final validation
    loss (what sweepers minimise)."""
    validate(cfg)
    resume_step = resumable_step(ckpt_path) if ckpt_path else 0
    out_dir.mkdir(parents=True, exist_ok=True)
    if rank_zero_only.rank == 0:  # what `resume=` continues with; under DDP one rank writes it
        write_atomically(out_dir / RUN_CONFIG, lambda partial: partial.write_text(OmegaConf.to_yaml(cfg)))
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    kernels.tune_process()
    L.seed_everything(cfg.seed, verbose=False)
    datamodule = LyricsDataModule(**cfg.data, seed=cfg.seed)
    datamodule.setup("fit")  # the model's size depends on the vocabulary
    plain = OmegaConf.to_container  # hyperparameters must be plain values for weights_only checkpoint loading
    model = LyricLM(vocab=datamodule.vocab, **plain(cfg.model), **plain(cfg.optim))
    trainer = build_trainer(cfg, out_dir, resume_step)
    log_run_config(trainer.logger, cfg)
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    val_loss = float(trainer.callback_metrics["val/loss"])
    if trainer.is_global_zero:  # under DDP the other ranks stay quiet
        print_summary(model, out_dir, val_loss, cfg)
    return val_loss


def print_summary(model: LyricLM, out_dir: Path, val_loss: float, cfg: DictConfig) -> None:
    print(f"\nrun dir: {out_dir}")
    bits = val_loss / math.log(2)  # (a finished fit has run max_steps; ddp_spawn leaves no step count here)
    print(f"val loss {val_loss:.4f} nats/char, {bits:.4f} bits/char after {cfg.trainer.max_steps} steps")
    print(f"sample:\n{model.sample(length=cfg.sample_length, seed=cfg.seed)}")


def resumable_step(ckpt_path: Path) -> int:
    """The step a training checkpoint was saved at (loaded safely, before any data is read)."""
    step = read_checkpoint(ckpt_path).get("global_step")
    if not isinstance(step, int):
        raise UserError(f"{ckpt_path} is not a training checkpoint (it has no global_step)")
    return step


def resumed_run(cfg: DictConfig, overrides: list[str]) -> tuple[DictConfig, Path, Path]:
    """(config, run dir, checkpoint) to continue: the run's own config, with the command line's key=value
    overrides (e.g. trainer.max_steps=5000) on top."""
    ckpt_path = Path(cfg.ckpt_path) if cfg.ckpt_path else Path(cfg.resume) / "checkpoints" / "last.ckpt"
    run_dir = Path(cfg.resume) if cfg.resume else ckpt_path.parent.parent
    if not ckpt_path.is_file():
        raise UserError(f"nothing to resume: {ckpt_path} does not exist (resume=<run dir> or ckpt_path=<.ckpt>)")
    if not (run_dir / RUN_CONFIG).is_file():
        raise UserError(f"{run_dir} is not a lyricgen run directory: it has no {RUN_CONFIG}")
    changes = [item for item in overrides if item.split("=")[0].lstrip("+~") not in ("resume", "ckpt_path")]
    # The model, data and optimiser state come back from the checkpoint: changing their config would be
    # silently ignored (Adam's saved lr wins) or break the restore.
    refused = [item for item in changes if not item.lstrip("+~").startswith(RESUMABLE_KEYS)]
    if refused:
        raise UserError(f"a resumed run keeps its config: drop {refused} (only {', '.join(RESUMABLE_KEYS)} can change)")
    resumed = OmegaConf.merge(OmegaConf.load(run_dir / RUN_CONFIG), OmegaConf.from_dotlist(changes))
    return resumed, run_dir, ckpt_path


@hydra.main(version_base=None, config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode == RunMode.MULTIRUN and cfg.trainer.get("strategy") == "ddp":
        # Lightning's ddp re-runs sys.argv in its child processes, which would relaunch the whole sweep.
        print("note: trainer.strategy=ddp runs as ddp_spawn inside a -m sweep", file=sys.stderr)
        cfg.trainer.strategy = "ddp_spawn"
    try:
        if cfg.resume or cfg.ckpt_path:
            cfg, out_dir, ckpt_path = resumed_run(cfg, list(hydra_cfg.overrides.task))
            return train(cfg, out_dir, ckpt_path)
        return train(cfg, Path(hydra_cfg.runtime.output_dir))
    except Diverged as err:
        print(f"error: {err}", file=sys.stderr)
        if hydra_cfg.mode == RunMode.MULTIRUN:
            return math.inf  # the sweep goes on with its other runs
        sys.exit(1)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
