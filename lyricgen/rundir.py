"""The layout of a run directory, known in one place: where a run writes its checkpoints, its resolved
config, its spike forensics and evaluations, and how a checkpoint leads back to its run.

    outputs/runs/<time>/
      checkpoints/best.ckpt, last.ckpt   the best by val/loss, and the latest
      config.yaml                        the resolved config: what resume= continues with
      .hydra/                            Hydra's record of the command (hydra.yaml, overrides.yaml)
      spikes.jsonl                       every loss or gradient spike with the text of its batch
      data.json                          what it trained and validated on: sizes and the validation
                                         text's fingerprint (equal fingerprints, equal validation text)
      status.json                        how it ended: finished, diverged, not requeued (and its
                                         process's exit code and time, under lyricgen.reproduce)
      samples.json                       the samples of its latest validation, scored on the lyrics
                                         scorecard (lyricgen.quality): what the report's rows show
      evaluation-<split or file>.json    lyricgen.evaluate's numbers
      events.out.tfevents.*, hparams.yaml  TensorBoard's
"""

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from lyricgen import UserError
from lyricgen.atomic import write_atomically
from lyricgen.config import CHARRNN, CONF_DIR

HYDRA_SUBDIR = ".hydra"  # hydra.output_subdir of a run


@dataclass(frozen=True)
class RunDir:
    path: Path

    @classmethod
    def of_checkpoint(cls, checkpoint: str | Path) -> "RunDir":
        """The run a checkpoint of `checkpoints/` belongs to."""
        return cls(Path(checkpoint).parent.parent)

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def last(self) -> Path:
        return self.checkpoints / "last.ckpt"

    @property
    def best(self) -> Path:
        return self.checkpoints / "best.ckpt"

    @property
    def config(self) -> Path:
        return self.path / "config.yaml"

    @property
    def hydra(self) -> Path:
        return self.path / HYDRA_SUBDIR

    @property
    def spikes(self) -> Path:
        return self.path / "spikes.jsonl"

    @property
    def data(self) -> Path:
        return self.path / "data.json"

    @property
    def status(self) -> Path:
        return self.path / "status.json"

    @property
    def samples(self) -> Path:
        return self.path / "samples.json"

    def evaluation(self, name: str) -> Path:
        return self.path / f"evaluation-{name}.json"

    def record_ending(self, state: str, message: str) -> None:
        """How the run ended, in its status.json (one rank writes it): what a sweep's summary reads."""
        if int(os.environ.get("SLURM_PROCID", os.environ.get("RANK", "0"))) == 0 and self.path.is_dir():
            write_atomically(
                self.status, lambda partial: partial.write_text(json.dumps({"state": state, "message": message}))
            )


# A run's saved config.yaml records the format it was written in (run_format, conf/config.yaml). Loading an
# older run applies each migration from its format on, so a run made by any earlier lyricgen loads as today's
# config with the behaviour it was trained with. A change to the config's keys adds a migration here and
# raises run_format in conf/config.yaml.


def keys_added_before_formats(saved: DictConfig, today: DictConfig) -> DictConfig:
    """Format 0 -> 1: runs saved before formats were recorded. Keys added since they were made take the
    behaviour those runs had (no hygiene, no deduplication, no test split, a constant schedule, an
    unconditioned network); the keys that watch or score a run without changing its training (guard,
    forensics, n-gram memory, logging) take today's values."""
    added = {"data": {"hygiene": False, "dedup": False, "train_chars": None, "test_fraction": 0.0}, "init_from": None}
    added["model"] = {"_target_": CHARRNN, "condition": None, "condition_on": "input", "label_dim": 16}
    added["model"] |= {"label_dropout": 0.0, "input_dropout": 0.0}
    added["optim"] = {"schedule": "constant", "warmup_steps": 0, "decoupled_weight_decay": False}
    added["optim"] |= {"activation_reg": 0.0, "temporal_activation_reg": 0.0}
    added |= {key: today[key] for key in ("guard", "spikes", "paths", "memory", "extras")}
    added |= {"tags": [], "callbacks": {}, "logger": {"name": "tensorboard", "extra": []}}
    if OmegaConf.is_list(saved.get("callbacks")):  # callbacks were a list before they were named
        saved.callbacks = {f"callback{index}": spec for index, spec in enumerate(saved.callbacks)}
    return OmegaConf.merge(added, saved)


def adam_named(saved: DictConfig, today: DictConfig) -> DictConfig:
    """Format 1 -> 2: the optimiser became the config's choice (optim._target_); runs before trained with Adam."""
    saved.optim = OmegaConf.merge({"_target_": "torch.optim.Adam", "_partial_": True}, saved.optim)
    return saved


MIGRATIONS: list[Callable[[DictConfig, DictConfig], DictConfig]] = [keys_added_before_formats, adam_named]


def load_run_config(run_dir: str | Path) -> DictConfig:
    """The resolved config a run saved in its directory, migrated to today's format."""
    path = RunDir(Path(run_dir)).config
    if not path.is_file():
        raise UserError(f"{run_dir} is not a lyricgen run directory: it has no {path.name}")
    saved, today = OmegaConf.load(path), OmegaConf.load(CONF_DIR / "config.yaml")
    made_in = saved.get("run_format", 0)
    if made_in > today.run_format:
        raise UserError(f"{run_dir} was made by a newer lyricgen (run format {made_in}): update lyricgen to load it")
    for migrate in MIGRATIONS[made_in:]:
        saved = migrate(saved, today)
    saved.run_format = today.run_format
    return saved


def run_network(run_dir: str | Path) -> str | None:
    """The network class (model._target_) a run's saved config names: the user's own choice, so loading
    that run's checkpoints may import it (lyricgen.nn.networks). None without a saved config."""
    path = RunDir(Path(run_dir)).config
    return OmegaConf.select(OmegaConf.load(path), "model._target_") if path.is_file() else None
