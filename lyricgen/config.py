"""The schema of a run's config: types, choices and ranges, checked before any data is read (the values
themselves live in conf/ alone).

Hydra composes plain YAML; `validate(cfg)` merges it into these dataclasses so that
`model.num_layers=two`, `model.dropout=1.5`, `model.cell=transformer` or `optim.lr=-1` stop the run with one
line naming the key, the bad value and what is allowed.
"""

import ast
import functools
import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lyricgen import UserError

# The configs: conf/ at the top of a checkout (the source), lyricgen/conf/ inside an installed wheel.
_PACKAGED = Path(__file__).resolve().parent / "conf"
CONF_DIR = _PACKAGED if _PACKAGED.is_dir() else Path(__file__).resolve().parents[1] / "conf"

# The allowed values of the choice keys. The modules that implement them import these (this module needs
# only omegaconf, so checking a config never loads torch, Lightning or pandas).
CHARRNN = "lyricgen.nn.CharRNN"  # model._target_ of lyricgen's own network (lyricgen.nn.networks)
CELLS = ("rnn", "gru", "lstm")  # model.cell
INPUTS = ("onehot", "embedding")  # model.input
NONLINEARITIES = ("tanh", "relu")  # model.nonlinearity (rnn cell)
SOURCES = ("songs_poems", "songbooks", "text", "lyrics_csv")  # data.source
ASCII_MODES = ("strip", "transliterate", "keep")  # data.ascii
SCHEDULES = ("constant", "cosine", "step", "wsd")  # optim.schedule
OPTIMISERS = ("torch.optim.Adam", "torch.optim.AdamW", "torch.optim.SGD", "torch.optim.RMSprop")  # conf/optim/'s
CONDITIONS = ("genre", "source")  # model.condition: a lyrics CSV's genres, or each text's file (its source)


def labelled_by_file(source: str, files: object) -> bool:
    """Whether a corpus's texts carry their file's label: the songbooks (a book each), data.files."""
    return source == "songbooks" or (source == "text" and bool(files))


CONDITION_ON = ("input", "state", "both")  # model.condition_on


def choices(name: str, values: Iterable[str]) -> type[Enum]:
    """An Enum of the allowed values, taken from where they are implemented, so OmegaConf can name them."""
    return Enum(name, {value: value for value in values}, type=str)


Cell = choices("Cell", CELLS)
Nonlinearity = choices("Nonlinearity", NONLINEARITIES)
InputMode = choices("InputMode", INPUTS)
Source = choices("Source", SOURCES)
AsciiMode = choices("AsciiMode", ASCII_MODES)
Schedule = choices("Schedule", SCHEDULES)
Condition = choices("Condition", CONDITIONS)
ConditionOn = choices("ConditionOn", CONDITION_ON)


def require(condition: bool, key: str, value: object, allowed: str) -> None:
    if not condition:
        raise UserError(f"{key}={value} is invalid: {allowed}")


# The schema holds types, choices and ranges; the values live in conf/ alone. Keys every run has are
# MISSING here (the YAML must give them); keys of one data source only are None when another source is used.


@dataclass
class ModelSchema:
    """CharRNN's options; a plugged-in network's (another model._target_) are its own to check."""

    _target_: str = MISSING
    cell: Cell = MISSING
    num_layers: int = MISSING
    hidden_size: int = MISSING
    dropout: float = MISSING
    input_dropout: float = MISSING
    nonlinearity: Nonlinearity = MISSING
    input: InputMode = MISSING
    embed_dim: int = MISSING
    condition: Condition | None = MISSING
    condition_on: ConditionOn = MISSING
    label_dim: int = MISSING
    label_dropout: float = MISSING

    def __post_init__(self) -> None:
        for key in ("num_layers", "hidden_size", "embed_dim", "label_dim"):
            require(getattr(self, key) >= 1, f"model.{key}", getattr(self, key), "use an integer >= 1")
        for key in ("dropout", "input_dropout", "label_dropout"):
            require(0 <= getattr(self, key) < 1, f"model.{key}", getattr(self, key), "use a probability in [0, 1)")


@dataclass
class OptimSchema:
    """lyricgen's own optim keys, and the ranges of the built-in optimisers' arguments where a run sets them;
    an optimiser's other arguments are its own to check when it is made (lyricgen.training.module)."""

    _target_: str = MISSING
    _partial_: bool = True
    lr: float = MISSING
    schedule: Schedule = MISSING
    warmup_steps: int = MISSING
    activation_reg: float = MISSING
    temporal_activation_reg: float = MISSING
    betas: list[float] | None = None
    weight_decay: float | None = None
    momentum: float | None = None

    def __post_init__(self) -> None:
        for key in ("activation_reg", "temporal_activation_reg"):
            require(getattr(self, key) >= 0, f"optim.{key}", getattr(self, key), "use a value >= 0")
        require(self.warmup_steps >= 0, "optim.warmup_steps", self.warmup_steps, "use an integer >= 0")
        require(self.lr > 0, "optim.lr", self.lr, "use a learning rate > 0")
        betas_ok = self.betas is None or (len(self.betas) == 2 and all(0 <= beta < 1 for beta in self.betas))
        require(betas_ok, "optim.betas", self.betas, "use two values in [0, 1)")
        for key in ("weight_decay", "momentum"):
            value = getattr(self, key)
            require(value is None or value >= 0, f"optim.{key}", value, "use a value >= 0")


@dataclass
class DataSchema:
    source: Source = MISSING
    batch_size: int = MISSING
    seq_len: int = MISSING
    val_fraction: float = MISSING
    test_fraction: float = MISSING
    val_chars: int = MISSING
    train_chars: int | None = MISSING
    hygiene: bool = MISSING
    dedup: bool = MISSING
    prepared_dir: str = MISSING
    path: str | None = None  # data=text
    files: dict[str, str] | None = None  # data=text, several labelled files
    csv: str | None = None  # data=lyrics_csv, and its options below
    genres: list[str] | None = None
    languages: list[str] | None = None
    ascii: AsciiMode | None = None
    separator: str | None = None

    def __post_init__(self) -> None:
        require(self.batch_size >= 1, "data.batch_size", self.batch_size, "use an integer >= 1")
        require(self.seq_len >= 1, "data.seq_len", self.seq_len, "use an integer >= 1")
        require(0 < self.val_fraction < 1, "data.val_fraction", self.val_fraction, "use a fraction in (0, 1)")
        held_out = self.val_fraction + self.test_fraction
        test_ok = self.test_fraction >= 0 and held_out < 1
        require(test_ok, "data.test_fraction", self.test_fraction, "use 0, or a fraction that leaves text to train on")
        require(self.val_chars > self.seq_len, "data.val_chars", self.val_chars, "use more than data.seq_len")
        too_few = self.train_chars is not None and self.train_chars <= self.seq_len
        require(not too_few, "data.train_chars", self.train_chars, "use more than data.seq_len, or null for all")
        self.check_inputs()

    def check_inputs(self) -> None:
        """The files a data source reads exist (relative paths resolve from where the command runs)."""
        if self.source == Source.lyrics_csv:
            if self.csv in (None, MISSING):
                raise UserError("data.csv is not set: give the lyrics CSV, data.csv=/path/to/train.csv")
            if not Path(self.csv).expanduser().is_file():
                raise UserError(f"lyrics CSV not found: data.csv={self.csv} (give the Kaggle train.csv)")
        if self.source == Source.text:
            if self.path is None and not self.files:
                raise UserError(
                    "data.path is not set: give a text file, data.path=... (or data.files='{a: a.txt, ...}')"
                )
            for key, path in [("data.path", self.path)] + [
                (f"data.files.{k}", v) for k, v in (self.files or {}).items()
            ]:
                if path is not None and not Path(path).expanduser().is_file():
                    raise UserError(
                        f"corpus file not found: {path} ({key}: a UTF-8 text file, relative to where you run)"
                    )


@dataclass
class PathsSchema:
    output_dir: str = MISSING


@dataclass
class ExtrasSchema:
    print_config: bool = MISSING


@dataclass
class CheckpointSchema:
    every_n_steps: int = MISSING

    def __post_init__(self) -> None:
        require(self.every_n_steps >= 1, "checkpoint.every_n_steps", self.every_n_steps, "use an integer >= 1")


@dataclass
class GuardSchema:
    ratio: float = MISSING
    steps: int = MISSING

    def __post_init__(self) -> None:
        require(self.ratio > 1, "guard.ratio", self.ratio, "use a multiple of ln(vocabulary size) > 1")
        require(self.steps >= 1, "guard.steps", self.steps, "use an integer >= 1")


@dataclass
class SpikesSchema:
    grad_ratio: float = MISSING
    loss_jump: float = MISSING

    def __post_init__(self) -> None:
        require(self.grad_ratio > 1, "spikes.grad_ratio", self.grad_ratio, "use a ratio > 1")
        require(self.loss_jump > 0, "spikes.loss_jump", self.loss_jump, "use a number of nats > 0")


@dataclass
class MemorySchema:
    order: int = MISSING
    weight: float = MISSING
    discount: float = MISSING
    max_chars: int = MISSING

    def __post_init__(self) -> None:
        require(self.order >= 0, "memory.order", self.order, "use an integer >= 0 (0 turns the memory off)")
        require(0 < self.weight < 1, "memory.weight", self.weight, "use a share in (0, 1)")
        require(0 < self.discount < 1, "memory.discount", self.discount, "use a value in (0, 1)")
        require(self.max_chars >= 1, "memory.max_chars", self.max_chars, "use an integer >= 1")


@dataclass
class RunSchema:
    model: dict[str, Any] = MISSING  # ModelSchema for CharRNN (validate)
    optim: dict[str, Any] = MISSING  # OptimSchema's keys, and the optimiser's own arguments (validate)
    data: DataSchema = MISSING
    checkpoint: CheckpointSchema = MISSING
    paths: PathsSchema = MISSING
    extras: ExtrasSchema = MISSING
    tags: list[str] = MISSING
    logger: dict[str, Any] = MISSING  # Lightning loggers, checked when they are made
    callbacks: dict[str, Any] = MISSING  # name: {_target_: a Lightning callback class, its arguments}
    guard: GuardSchema = MISSING
    spikes: SpikesSchema = MISSING
    memory: MemorySchema = MISSING
    trainer: dict[str, Any] = field(default_factory=dict)  # any lightning.Trainer argument
    scale: float = MISSING
    seed: int = MISSING
    threads: int | None = MISSING
    sample_length: int = MISSING
    resume: str | None = MISSING
    init_from: str | None = MISSING
    ckpt_path: str | None = MISSING
    run_format: int = MISSING

    def __post_init__(self) -> None:
        max_steps = self.trainer.get("max_steps", 1)
        interval = self.trainer.get("val_check_interval", 1)
        clip = self.trainer.get("gradient_clip_val")
        require(isinstance(max_steps, int) and max_steps >= 1, "trainer.max_steps", max_steps, "use an integer >= 1")
        require(isinstance(interval, int) and interval >= 1, "trainer.val_check_interval", interval, "an integer >= 1")
        require(clip is None or clip > 0, "trainer.gradient_clip_val", clip, "use a norm > 0, or null for no clipping")
        require(self.seed >= 0, "seed", self.seed, "use an integer >= 0")
        condition, source = self.model.get("condition"), self.data.source
        genre_ok = condition != "genre" or source == "lyrics_csv"
        require(genre_ok, "model.condition", "genre", "genres come from a lyrics CSV: add data=lyrics_csv data.csv=...")
        source_ok = condition != "source" or labelled_by_file(source, self.data.files)
        require(
            source_ok,
            "model.condition",
            "source",
            "label texts by file: data=songbooks, or data=text data.files='{a: a.txt, b: b.txt}'",
        )
        require(self.scale > 0, "scale", self.scale, "use a factor > 0")
        require(self.threads is None or self.threads >= 1, "threads", self.threads, "use an integer >= 1, or null")


OWNED_TRAINER_KEYS = ("default_root_dir", "callbacks", "plugins", "enable_checkpointing")  # lyricgen sets these


# An annotation a config value is not checked against (Any, Accelerator, timedelta, Iterable[Logger], ...):
# Lightning checks such a value when the Trainer is made.
ANY = "any"
PLAIN_TYPES = {"int": int, "float": float, "bool": bool, "str": str, "list": list, "dict": dict}


def annotation(node: ast.expr) -> tuple:
    """The values an annotation's syntax tree allows, read without running it, as its alternatives: plain
    types, None, a Literal's values as a frozenset, or ANY; Optional, Union and `|` become alternatives."""
    if isinstance(node, ast.Constant) and node.value is None:
        return (None,)
    if isinstance(node, ast.Name):
        return (PLAIN_TYPES.get(node.id, ANY),)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return annotation(node.left) + annotation(node.right)
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
        inner = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if node.value.id == "Literal":
            return (frozenset(item.value for item in inner if isinstance(item, ast.Constant)),)
        if node.value.id in ("Optional", "Union"):
            return sum((annotation(item) for item in inner), (None,) if node.value.id == "Optional" else ())
        return (PLAIN_TYPES.get(node.value.id, ANY),)
    return (ANY,)


@functools.cache
def trainer_arguments() -> dict[str, tuple]:
    """{name: the values it allows (annotation())} of lightning.Trainer's arguments, read from its source's
    syntax tree without importing Lightning (seconds), so that a misspelt trainer key is refused at once.
    Empty without Lightning."""
    spec = importlib.util.find_spec("lightning")
    if spec is None or spec.origin is None:
        return {}
    source = Path(spec.origin).parent / "pytorch" / "trainer" / "trainer.py"
    tree = ast.parse(source.read_text())
    trainer = next(node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "Trainer")
    init = next(node for node in trainer.body if isinstance(node, ast.FunctionDef) and node.name == "__init__")
    return {arg.arg: annotation(arg.annotation) for arg in init.args.kwonlyargs if arg.annotation is not None}


def fits(value: object, allowed: tuple) -> bool:
    """Whether a plain config value is one of the alternatives annotation() read."""
    return any(fits_one(value, alternative) for alternative in allowed)


def fits_one(value: object, alternative: object) -> bool:
    if alternative == ANY:
        return True
    if alternative is None:
        return value is None
    if isinstance(alternative, frozenset):
        return not isinstance(value, list | dict) and value in alternative
    if isinstance(value, bool):  # YAML's true is no number of steps
        return alternative is bool
    return isinstance(value, int | float if alternative is float else alternative)


def spelled(allowed: tuple) -> str:
    """The alternatives as a user reads them: int | None | 'auto' | 'cpu'."""
    names = []
    for alternative in allowed:
        if isinstance(alternative, frozenset):
            names += sorted(repr(value) for value in alternative)
        else:
            names.append(getattr(alternative, "__name__", str(alternative)))
    return " | ".join(dict.fromkeys(names))


def check_trainer(options: dict) -> None:
    """Each trainer.* key an argument of lightning.Trainer with a value of its type, or one line naming it."""
    known = trainer_arguments()
    for key, value in options.items():
        if key in OWNED_TRAINER_KEYS:
            raise UserError(f"trainer.{key} is set by lyricgen itself: drop it (run directory, checkpoints, callbacks)")
        if known and key not in known:
            raise UserError(f"trainer.{key} is not an argument of lightning.Trainer: check its spelling")
        if key in known and not fits(value, known[key]):
            takes = spelled(known[key])
            raise UserError(f"trainer.{key}={value} is not a valid {key}: lightning.Trainer takes {takes}")
        if key == "logger" and value not in (True, False, None):
            raise UserError(f"trainer.logger={value} is invalid: use false for no logging (TensorBoard is the default)")


def validate(cfg: DictConfig) -> None:
    """Raise UserError with one line if any value of `cfg` is of the wrong type, choice or range."""
    check_schema(RunSchema, cfg)
    if cfg.model.get("_target_", CHARRNN) == CHARRNN:
        check_schema(ModelSchema, cfg.model, "model.")
    else:
        require(
            cfg.model.get("condition") in (None, *CONDITIONS),
            "model.condition",
            cfg.model.get("condition"),
            f"use null or one of {', '.join(CONDITIONS)}",
        )
    own = {field.name for field in fields(OptimSchema)}
    check_schema(OptimSchema, OmegaConf.masked_copy(cfg.optim, [key for key in cfg.optim if key in own]), "optim.")
    check_trainer(OmegaConf.to_container(cfg.trainer, resolve=True))


def check_schema(schema: type, cfg: DictConfig, prefix: str = "") -> None:
    try:
        OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), cfg))
    except OmegaConfBaseException as err:
        message = str(err).splitlines()[0]
        raise UserError(f"{prefix}{err.full_key}: {message}" if getattr(err, "full_key", None) else message) from None
