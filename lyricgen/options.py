"""The one command-line grammar of lyricgen's commands: `key=value`, nested keys dotted (paths.output_dir=runs),
`--help` listing every option with its default and meaning, and a misspelt key answered with the closest
real one. The Hydra commands (train, evaluate, prepare) take the same form through Hydra's override
parser (lyricgen.hydra.cli); the others describe their options as a dataclass of `option(...)` fields and
read them with `parsed`. Needs only omegaconf, so a command's mistakes are reported before anything heavy
is imported.
"""

import difflib
from collections.abc import Iterator
from dataclasses import MISSING, field, fields, is_dataclass
from typing import TypeVar

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lyricgen import UserError

HELP_FLAGS = ("--help", "-h", "help")
T = TypeVar("T")


def option(default: object, meaning: str) -> object:
    """A command-line option: its default and its one-line meaning, which --help prints."""
    return field(default=default, metadata={"help": meaning})


def required(meaning: str) -> object:
    """An option the command cannot run without (a run directory, say): --help shows it as `???`."""
    return field(default=MISSING, metadata={"help": meaning})


def options(schema: type, prefix: str = "") -> list[tuple[str, object, str]]:
    """(name, default, meaning) of every option, nested ones dotted (paths.output_dir); "???" for a required one."""
    table = []
    for entry in fields(schema):
        if is_dataclass(entry.type):
            table += options(entry.type, f"{prefix}{entry.name}.")
            continue
        if entry.default_factory is not MISSING:
            default = entry.default_factory()
        else:
            default = "???" if entry.default is MISSING else entry.default
        table.append((f"{prefix}{entry.name}", default, entry.metadata["help"]))
    return table


def as_typed(value: object) -> str:
    """A value as it is typed on a command line: YAML's null, true and false; a line break as \\n."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return value.encode("unicode_escape").decode() if isinstance(value, str) else str(value)


def typed_line_breaks(text: str) -> str:
    """A string as a command line types it, read back: `\\n` a line break and `\\t` a tab (as_typed's
    spelling), since neither the shell nor Hydra's overrides make one."""
    return text.replace("\\n", "\n").replace("\\t", "\t")


def flatten(tree: dict, prefix: str = "") -> Iterator[tuple[str, object]]:
    """("model.cell", "gru"), ... for every leaf of a nested dict."""
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def closest(key: str, candidates: list[str]) -> list[str]:
    """The candidates nearest to a misspelt key, those under the same parent first."""
    parent = key.rpartition(".")[0]
    siblings = [name for name in candidates if name.rpartition(".")[0] == parent]
    return difflib.get_close_matches(key, siblings, n=1, cutoff=0.5) or difflib.get_close_matches(
        key, candidates, n=1, cutoff=0.6
    )


def did_you_mean(key: str, candidates: list[str]) -> str:
    near = closest(key, candidates)
    if near:
        return f"did you mean {near[0]}?"
    parent = key.rpartition(".")[0]
    siblings = [name.rpartition(".")[2] for name in candidates if name.rpartition(".")[0] == parent]
    return f"the keys of {parent} are {', '.join(siblings)}" if parent and siblings else "see --help for the keys"


def help_text(schema: type, command: str, summary: str) -> str:
    """`python -m lyricgen.<command> --help`: what it does, its usage and every option with its default and meaning."""
    shown = [(f"{name}={as_typed(default)}", meaning) for name, default, meaning in options(schema)]
    width = max(len(text) for text, _ in shown)
    lines = [f"  {text:<{width}}  {meaning}" for text, meaning in shown]
    usage = f"usage: python -m lyricgen.{command} [key=value ...]"
    return f"python -m lyricgen.{command}: {summary}\n\n{usage}\n\noptions (default shown):\n" + "\n".join(lines)


def check_keys(schema: type, argv: list[str]) -> None:
    """One line for an argument that is not key=value or names no option, with the closest option."""
    names = [name for name, _, _ in options(schema)]
    for arg in argv:
        key, equals, _ = arg.partition("=")
        if not equals or not key:
            raise UserError(f"{arg!r} is not key=value: every option is given as key=value (see --help)")
        if key not in names:
            raise UserError(f"{key} is not a key: {did_you_mean(key, names)}")


def parsed(schema: type[T], argv: list[str], raw: tuple[str, ...] = ()) -> T:
    """key=value arguments over a schema's typed defaults; a wrong key, a wrong type or a missing required
    option is one line. The `raw` keys are taken as typed (a prime or a path: YAML would read "yes" as true)."""
    check_keys(schema, argv)
    typed = [arg for arg in argv if arg.partition("=")[0] not in raw]
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), dotlist(typed))
        for arg in argv:
            key, _, value = arg.partition("=")
            if key in raw:
                OmegaConf.update(merged, key, value)
        for name, default, meaning in options(schema):
            if default == "???" and OmegaConf.select(merged, name, throw_on_missing=False) is None:
                raise UserError(f"{name}= is required: {meaning}")
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as err:
        key = f"{err.full_key}: " if getattr(err, "full_key", None) else ""
        raise UserError(f"{key}{str(err).splitlines()[0]} (see --help for the options and their types)") from None


def dotlist(argv: list[str]) -> DictConfig:
    """key=value arguments as a config, each value read as YAML; a value YAML cannot read is one line."""
    try:
        return OmegaConf.from_dotlist(argv)
    except yaml.YAMLError:
        wrong = next((arg for arg in argv if not yaml_reads(arg.partition("=")[2])), " ".join(argv))
        raise UserError(f"{wrong}: the value cannot be read (quote it, or close its brackets)") from None


def yaml_reads(value: str) -> bool:
    try:
        yaml.safe_load(value)
        return True
    except yaml.YAMLError:
        return False


def wants_help(argv: list[str]) -> bool:
    return bool(set(HELP_FLAGS) & set(argv))
