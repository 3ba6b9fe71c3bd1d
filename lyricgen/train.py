"""Train a char-RNN from a composed Hydra config: `python -m lyricgen.train model=gru optim.lr=0.001`."""

import math
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.plugins.io import TorchCheckpointIO
from omegaconf import DictConfig, OmegaConf
from torch.utils.tensorboard.summary import hparams

from lyricgen import UserError
from lyricgen.data import LyricsDataModule
from lyricgen.model import LyricLM

# Batches are sampled in-process in microseconds: DataLoader workers would only add overhead.
warnings.filterwarnings("ignore", message=".*does not have many workers.*")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write each checkpoint to a temporary file and rename it into place, so a crash mid-save leaves the
    previous checkpoint intact."""

    def save_checkpoint(self, checkpoint: dict, path: str | Path, storage_options: object = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        torch.save(checkpoint, partial)
        os.replace(partial, path)


class ValidateAtLastStep(Callback):
    """Validate (and so checkpoint) at the final step, even when max_steps is not a multiple of
    val_check_interval: asking to stop is what makes Lightning run one more validation."""

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.global_step >= trainer.max_steps:
            trainer.should_stop = True


def build_trainer(cfg: DictConfig, out_dir: Path) -> L.Trainer:
    checkpoints = ModelCheckpoint(
        dirpath=out_dir / "checkpoints",
        filename="best",
        monitor="val/loss",
        save_last=True,
        enable_version_counter=False,
    )
    return L.Trainer(
        default_root_dir=out_dir,
        logger=TensorBoardLogger(out_dir, name="", version="", default_hp_metric=False),
        callbacks=[checkpoints, ValidateAtLastStep()],
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


def log_run_config(logger: TensorBoardLogger, cfg: DictConfig) -> None:
    """Put every config value in TensorBoard's HPARAMS tab, linked to the validation curves, so a sweep's
    runs can be compared by what was varied (without writing fake metric points)."""
    flat = flatten(OmegaConf.to_container(cfg, resolve=True))
    params = {key: value if isinstance(value, int | float | str | bool) else str(value) for key, value in flat}
    for summary in hparams(params, {"val/loss": 0.0, "val/bpc": 0.0}):
        logger.experiment._get_file_writer().add_summary(summary)


def train(cfg: DictConfig, out_dir: Path) -> float:
    """Train one run into `out_dir`; return its final validation loss (what sweepers minimise)."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    L.seed_everything(cfg.seed, verbose=False)
    datamodule = LyricsDataModule(**cfg.data, seed=cfg.seed)
    datamodule.setup("fit")  # the model's size depends on the vocabulary
    plain = OmegaConf.to_container  # hyperparameters must be plain values for weights_only checkpoint loading
    model = LyricLM(vocab=datamodule.vocab, **plain(cfg.model), **plain(cfg.optim))
    trainer = build_trainer(cfg, out_dir)
    log_run_config(trainer.logger, cfg)
    trainer.fit(model, datamodule=datamodule)
    val_loss = float(trainer.callback_metrics["val/loss"])
    print(f"\nrun dir: {out_dir}")
    bits = val_loss / math.log(2)
    print(f"val loss {val_loss:.4f} nats/char, {bits:.4f} bits/char after {trainer.global_step} steps")
    print(f"sample:\n{model.sample(length=cfg.sample_length, seed=cfg.seed)}")
    return val_loss


@hydra.main(version_base=None, config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    try:
        return train(cfg, Path(HydraConfig.get().runtime.output_dir))
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
