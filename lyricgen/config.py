"""The schema of a run's config (types, choices and ranges, checked before any data is read) and the
resolvers the YAML files use.

Hydra composes plain YAML; `validate(cfg)` merges it into these dataclasses so that
`model.num_layers=two`, `model.dropout=1.5`, `model.cell=transformer` or `optim.lr=-1` stop the run with one
line naming the key, the bad value and what is allowed.
"""

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lyricgen import UserError
from lyricgen.corpus import SOURCES
from lyricgen.model import CELLS, INPUTS, NONLINEARITIES
from lyricgen.prepare import ASCII_MODES


def choices(name: str, values: Iterable[str]) -> type[Enum]:
    """An Enum of the allowed values, taken from where they are implemented, so OmegaConf can name them."""
    return Enum(name, {value: value for value in values}, type=str)


Cell = choices("Cell", CELLS)
Nonlinearity = choices("Nonlinearity", NONLINEARITIES)
InputMode = choices("InputMode", INPUTS)
Source = choices("Source", SOURCES)
AsciiMode = choices("AsciiMode", ASCII_MODES)


def scaled(iterations: int, *, _root_: DictConfig) -> int:
    """${scaled:N} in a config: N iterations times the run's `scale` (make reproduce SCALE=0.1)."""
    return max(1, round(iterations * _root_.scale))


def resume_dir(resume: str | None, ckpt_path: str | None, fresh: str) -> str:
    """${resume_dir:...} for hydra.run.dir: a resumed run continues in its own directory."""
    if resume:
        return resume
    return str(Path(ckpt_path).parent.parent) if ckpt_path else fresh


def sqlite_in(directory: str, name: str) -> str:
    """${sqlite_in:DIR,FILE}: an SQLite URL for DIR/FILE, DIR created first (Optuna opens it before any job
    has made the sweep directory)."""
    Path(directory).mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{Path(directory).resolve() / name}"


def dirname(name: str, limit: int = 200) -> str:
    """${dirname:...}: a run directory name within file-system limits (255 bytes); a longer one keeps its
    start and ends in a hash of the whole, so names stay unique."""
    if len(name.encode()) <= limit:
        return name
    digest = hashlib.blake2b(name.encode(), digest_size=4).hexdigest()
    return f"{name.encode()[: limit - 13].decode(errors='ignore')}...{digest}"


OmegaConf.register_new_resolver("scaled", scaled, replace=True)
OmegaConf.register_new_resolver("dirname", dirname, replace=True)
OmegaConf.register_new_resolver("sqlite_in", sqlite_in, replace=True)
OmegaConf.register_new_resolver("resume_dir", resume_dir, replace=True)


def require(condition: bool, key: str, value: object, allowed: str) -> None:
    if not condition:
        raise UserError(f"{key}={value} is invalid: {allowed}")


@dataclass
class ModelSchema:
    cell: Cell = Cell.rnn
    num_layers: int = 1
    hidden_size: int = 100
    dropout: float = 0.0
    nonlinearity: Nonlinearity = Nonlinearity.tanh
    input: InputMode = InputMode.onehot
    embed_dim: int = 64

    def __post_init__(self) -> None:
        require(self.num_layers >= 1, "model.num_layers", self.num_layers, "use an integer >= 1")
        require(self.hidden_size >= 1, "model.hidden_size", self.hidden_size, "use an integer >= 1")
        require(self.embed_dim >= 1, "model.embed_dim", self.embed_dim, "use an integer >= 1")
        require(0 <= self.dropout < 1, "model.dropout", self.dropout, "use a probability in [0, 1)")


@dataclass
class OptimSchema:
    lr: float = 0.005
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        require(self.lr > 0, "optim.lr", self.lr, "use a learning rate > 0")
        betas_ok = len(self.betas) == 2 and all(0 <= beta < 1 for beta in self.betas)
        require(betas_ok, "optim.betas", self.betas, "use two values in [0, 1)")
        require(self.weight_decay >= 0, "optim.weight_decay", self.weight_decay, "use a value >= 0")


@dataclass
class DataSchema:
    source: Source = Source.songs_poems
    batch_size: int = 32
    seq_len: int = 128
    val_fraction: float = 0.05
    val_chars: int = 100_000
    path: str | None = None  # data=text
    csv: str | None = None  # data=lyrics_csv, and its options below
    genres: list[str] = field(default_factory=lambda: ["Rock"])
    languages: list[str] = field(default_factory=lambda: ["en"])
    ascii: AsciiMode = AsciiMode.strip
    separator: str = "\n\n"
    prepared_dir: str = "outputs/prepared"

    def __post_init__(self) -> None:
        require(self.batch_size >= 1, "data.batch_size", self.batch_size, "use an integer >= 1")
        require(self.seq_len >= 1, "data.seq_len", self.seq_len, "use an integer >= 1")
        require(0 < self.val_fraction < 1, "data.val_fraction", self.val_fraction, "use a fraction in (0, 1)")
        require(self.val_chars > self.seq_len, "data.val_chars", self.val_chars, "use more than data.seq_len")


@dataclass
class CheckpointSchema:
    every_n_steps: int = 100

    def __post_init__(self) -> None:
        require(self.every_n_steps >= 1, "checkpoint.every_n_steps", self.every_n_steps, "use an integer >= 1")


@dataclass
class RunSchema:
    model: ModelSchema = field(default_factory=ModelSchema)
    optim: OptimSchema = field(default_factory=OptimSchema)
    data: DataSchema = field(default_factory=DataSchema)
    checkpoint: CheckpointSchema = field(default_factory=CheckpointSchema)
    trainer: dict[str, Any] = field(default_factory=dict)  # any lightning.Trainer argument
    scale: float = 1.0
    seed: int = 0
    threads: int | None = None
    sample_length: int = 300
    resume: str | None = None
    ckpt_path: str | None = None

    def __post_init__(self) -> None:
        max_steps = self.trainer.get("max_steps", 1)
        interval = self.trainer.get("val_check_interval", 1)
        clip = self.trainer.get("gradient_clip_val")
        require(isinstance(max_steps, int) and max_steps >= 1, "trainer.max_steps", max_steps, "use an integer >= 1")
        require(isinstance(interval, int) and interval >= 1, "trainer.val_check_interval", interval, "an integer >= 1")
        require(clip is None or clip > 0, "trainer.gradient_clip_val", clip, "use a norm > 0, or null for no clipping")
        require(self.seed >= 0, "seed", self.seed, "use an integer >= 0")
        require(self.scale > 0, "scale", self.scale, "use a factor > 0")
        require(self.threads is None or self.threads >= 1, "threads", self.threads, "use an integer >= 1, or null")


def validate(cfg: DictConfig) -> None:
    """Raise UserError with one line if any value of `cfg` is of the wrong type, choice or range."""
    try:
        OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(RunSchema), cfg))
    except OmegaConfBaseException as err:
        message = str(err).splitlines()[0]
        raise UserError(f"{err.full_key}: {message}" if getattr(err, "full_key", None) else message) from None
