"""What the Hydra commands (train, evaluate, prepare) do with their command line before anything heavy is
imported: every group option and key is checked against the composed config (a misspelt key gets the
closest real ones, in one line), a command refuses keys that do not apply to it, `--help` is written from
the comments in conf/, and a `-m` sweep names its run directories by what it varies.

Hydra alone would report a misspelt key in seven lines, with a hint (`+key=`) that leads to a second
error, and only after the command's module has imported everything it needs.
"""

import functools
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from lyricgen import UserError
from lyricgen.config import CONF_DIR, validate
from lyricgen.options import as_typed, did_you_mean, flatten

_ABSENT = object()
MULTIRUN_FLAGS = ("-m", "--multirun")
CFG_FLAGS = ("--cfg", "-c")
EXCLUDE_KEYS = "hydra.job.config.override_dirname.exclude_keys"


@functools.cache
def own_keys(config_name: str) -> list[str]:
    """The top-level keys a command's YAML file adds (read once: every key of a command line asks)."""
    return [key for key in OmegaConf.load(CONF_DIR / f"{config_name}.yaml") if key not in ("defaults", "hydra")]


@dataclass(frozen=True)
class Command:
    """A Hydra command: its config file, what it does, and (for the commands that score or prepare data
    rather than train) the groups and keys that apply to it; None: all of them."""

    name: str
    config: str
    summary: str
    groups: tuple[str, ...] | None = None
    key_prefixes: tuple[str, ...] | None = None  # e.g. "data." for every data key

    def own_keys(self) -> list[str]:
        """The keys its own YAML file adds beside the training config's (evaluate's ckpt, split, ...)."""
        return [] if self.config == "config" else own_keys(self.config)

    def applies(self, key: str) -> bool:
        if self.key_prefixes is None:
            return True
        return key in self.own_keys() or key.startswith(self.key_prefixes)


COMMANDS = {
    command.name: command
    for command in (
        Command("train", "config", "train a character-level language model; -m sweeps over comma-separated values"),
        Command(
            "evaluate",
            "evaluate",
            "a checkpoint's loss and bits per character on held-out text",
            groups=("data",),
            key_prefixes=("data.", "paths."),
        ),
        Command(
            "prepare",
            "prepare",
            "a lyrics CSV -> clean, split, cached text with counts",
            groups=("data",),
            key_prefixes=("data.", "paths."),
        ),
    )
}


SEARCHPATH = "hydra.searchpath"  # more config folders: a user's own options of lyricgen's groups (model/mynet.yaml)


def config_groups(search_dirs: list[Path] = ()) -> dict[str, list[str]]:
    """{group: its options} for the groups of conf/ and of the searchpath's folders (hydra's own aside)."""
    groups: dict[str, set[str]] = {}
    for root in (CONF_DIR, *search_dirs):
        for folder in sorted(root.iterdir()) if root.is_dir() else []:
            if folder.is_dir() and folder.name not in ("hydra", "protocol"):
                groups.setdefault(folder.name, set()).update(path.stem for path in folder.glob("*.yaml"))
    return {group: sorted(options) for group, options in sorted(groups.items())}


def search_dirs(overrides: list[Override]) -> list[Path]:
    """The file:// folders of a hydra.searchpath override (pkg:// ones are Hydra's to find)."""
    given = [override.value() for override in overrides if override.key_or_group == SEARCHPATH]
    return [
        Path(entry.removeprefix("file://")) for entry in (given[-1] if given else []) if entry.startswith("file://")
    ]


def parsed(tokens: list[str]) -> list[Override]:
    try:
        return OverridesParser.create().parse_overrides(tokens)
    except HydraException as err:
        raise UserError(f"{str(err).strip().splitlines()[0]} (overrides are key=value or group=option)") from None


def first_value(override: Override) -> str:
    """The override with its first value where it sweeps (`model=rnn,gru` -> `model=rnn`)."""
    if not override.is_sweep_override():
        return override.input_line
    value = next(override.sweep_string_iterator())
    return f"{override.get_key_element()}={value}"


def all_keys(cfg: DictConfig) -> list[str]:
    """Every dotted key of the config, inner nodes and leaves (hydra's own aside)."""
    keys = []
    for key, _ in flatten(OmegaConf.to_container(cfg, resolve=False)):
        parts = key.split(".")
        keys += [".".join(parts[: depth + 1]) for depth in range(len(parts))]
    return sorted({key for key in keys if not key.startswith("hydra")})


def check_group(command: Command, override: Override, groups: dict[str, list[str]]) -> None:
    group = override.key_or_group
    if command.groups is not None and group not in command.groups:
        raise UserError(
            f"{group}= does not apply to python -m lyricgen.{command.name}: its groups are {', '.join(command.groups)}"
        )
    if override.is_delete():
        return
    values = list(override.sweep_string_iterator()) if override.is_sweep_override() else [override.value()]
    chosen = [item for value in values for item in (value if isinstance(value, list) else [value])]  # [a,b]: both
    for value in chosen:
        if value not in groups[group] and value not in (None, "null"):
            raise UserError(f"{group}={value} is not an option: use one of {', '.join(groups[group])}")


def check_key(command: Command, override: Override, cfg: DictConfig, keys: list[str]) -> None:
    key = override.key_or_group
    if not command.applies(key):
        options = [name for name in keys if command.applies(name)]
        raise UserError(
            f"{key} is not an option of python -m lyricgen.{command.name}: {did_you_mean(key, options)} "
            f"(its options: {', '.join([*command.own_keys(), *(prefix + '*' for prefix in command.key_prefixes)])})"
        )
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(cfg, parent, default=_ABSENT) if parent else cfg
    exists = OmegaConf.is_dict(node) and leaf in list(node.keys())  # keys() holds those still ??? too; `in` not
    if override.is_add() and exists:
        raise UserError(f"{key} is already a key: set it without the + ({key}={override.get_value_string()})")
    if not exists and not (override.is_add() or override.is_force_add()):
        raise UserError(f"{key} is not a key of the config: {did_you_mean(key, keys)}")


def compose_command(command: Command, overrides: list[str], with_hydra: bool = False) -> DictConfig:
    """The command's config under `overrides` (a hydra.searchpath among them included)."""
    try:
        with initialize_config_dir(str(CONF_DIR), version_base=None):
            return compose(command.config, overrides=overrides, return_hydra_config=with_hydra)
    except (HydraException, OmegaConfBaseException) as err:
        raise UserError(str(err).strip().splitlines()[0]) from None


def with_first_values(cfg: DictConfig, overrides: list[Override]) -> DictConfig:
    """The composed config with the key overrides applied (each swept key at its first value), as Hydra
    applies them after the groups, without composing again; Hydra's own section left out."""
    applied = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])
    with open_dict(applied):
        for override in overrides:
            key = override.key_or_group
            if override.is_delete():
                parent, _, leaf = key.rpartition(".")
                node = OmegaConf.select(applied, parent) if parent else applied
                node.pop(leaf, None)
                continue
            value = next(override.sweep_iterator()) if override.is_sweep_override() else override.value()
            OmegaConf.update(applied, key, value, merge=True, force_add=True)
    return applied


def check_command_line(name: str, argv: list[str]) -> list[str]:
    """Raise UserError (one line) for a group option, key or value the command line gets wrong; return the
    arguments to hand to Hydra (for a sweep, with its constant overrides left out of run-directory names)."""
    command = COMMANDS[name]
    if any(flag in argv for flag in ("--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd")):
        return argv  # the user's own configs: Hydra checks them
    overrides = parsed([arg for arg in argv if ("=" in arg and not arg.startswith("-")) or arg.startswith("~")])
    groups = config_groups(search_dirs(overrides))
    ours = [override for override in overrides if not override.is_hydra_override()]
    searchpath = [override.input_line for override in overrides if override.key_or_group == SEARCHPATH]
    choices = [override for override in ours if override.key_or_group in groups]
    for override in choices:
        check_group(command, override, groups)
    multirun = any(flag in argv for flag in MULTIRUN_FLAGS)
    cfg = compose_command(command, [*searchpath, *(first_value(override) for override in choices)], with_hydra=multirun)
    keys = all_keys(cfg)
    for override in ours:
        if override not in choices:
            check_key(command, override, cfg, keys)
    if command.name == "train":  # types, choices and ranges too, before Hydra makes a run directory
        values = [override for override in ours if override not in choices]
        validate(with_first_values(cfg, values))
    if multirun and any(flag in argv for flag in CFG_FLAGS):  # Hydra takes only one of -m and --cfg
        print("note: --cfg shows one job of the sweep: each swept key at its first value", file=sys.stderr)
        by_line = {override.input_line: first_value(override) for override in overrides}
        return [by_line.get(arg, arg) for arg in argv if arg not in MULTIRUN_FLAGS]
    if multirun and not any(override.key_or_group == EXCLUDE_KEYS for override in overrides):
        swept = {override.key_or_group for override in ours if override.is_sweep_override()}
        constants = [override.key_or_group for override in ours if override.key_or_group not in swept]
        excluded = [*OmegaConf.select(cfg, EXCLUDE_KEYS), *constants]
        first = next((i for i, arg in enumerate(argv) if "=" in arg and not arg.startswith("-")), len(argv))
        # among the other overrides: argparse takes one run of them, so one placed after a flag's value is refused
        argv = [*argv[:first], f"{EXCLUDE_KEYS}=[{','.join(dict.fromkeys(excluded))}]", *argv[first:]]
    return argv


# --help: written from conf/'s comments, so what a key means is said once, beside its default.

_KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>\w+):(?P<value>[^#]*?)\s*(?:#\s*(?P<comment>.*))?$")
_MORE_COMMENT = re.compile(r"^\s+#\s*(?P<comment>.*)$")  # a comment continued on the next line, under it
_GROUP_LINE = re.compile(r"^\s*-\s*(?:override\s+/)?(?P<group>\w+):\s*(?P<option>\S+)\s*(?:#\s*(?P<comment>.*))?$")


def key_comments(path: Path, prefix: str = "") -> dict[str, str]:
    """{dotted key: its comment, continuation lines joined} for each commented key of a YAML file."""
    found: dict[str, str] = {}
    parents: list[tuple[int, str]] = []
    last = None
    for line in path.read_text().splitlines():
        more = _MORE_COMMENT.match(line)
        if more and last:
            found[last] += " " + more["comment"].strip()
            continue
        match = _KEY_LINE.match(line)
        last = None
        if not match or match["key"] == "defaults":
            continue
        indent = len(match["indent"])
        parents = [(depth, name) for depth, name in parents if depth < indent]
        dotted = prefix + ".".join([name for _, name in parents] + [match["key"]])
        if not match["value"].strip():
            parents.append((indent, match["key"]))
        if match["comment"]:
            found[dotted], last = match["comment"].strip(), dotted
    return found


PRESETS = ("experiment", "debug", "hparams_search")  # groups whose keys belong to the other groups
LAUNCHERS = {  # hydra/launcher: Hydra's own basic one, conf/hydra/launcher/'s, and submitit's local one
    "basic": "one run after another (Hydra's)",
    "stacked": "same-shape runs trained together in one process",
    "slurm": "SLURM array jobs, one job per run",
    "submitit_local": "local processes through submitit",
}


def defaults_list() -> dict[str, tuple[str, str]]:
    """{group: (its default option, the comment of its line)} from conf/config.yaml's defaults list."""
    described = {}
    for line in (CONF_DIR / "config.yaml").read_text().splitlines():
        match = _GROUP_LINE.match(line)
        if match:
            described[match["group"]] = (match["option"], match["comment"] or "")
    return described


def option_files() -> dict[str, dict[str, Path]]:
    """{group: {option: its file}} for the groups whose options add keys, the default option first."""
    defaults = defaults_list()
    files = {}
    for group in config_groups():
        if group not in PRESETS:
            paths = {path.stem: path for path in sorted((CONF_DIR / group).glob("*.yaml"))}
            first = defaults.get(group, ("", ""))[0]
            files[group] = dict(sorted(paths.items(), key=lambda item: item[0] != first))
    files["hydra/launcher"] = {path.stem: path for path in sorted((CONF_DIR / "hydra" / "launcher").glob("*.yaml"))}
    return files


def prefix_of(group: str) -> str:
    return group.replace("/", ".") + "."


def comments() -> dict[str, str]:
    """Every key's comment: from conf/config.yaml and the command files, then from each group's files, the
    default option's first (the meaning of the value --help shows), then the others'."""
    found: dict[str, str] = {}
    for path in sorted(CONF_DIR.glob("*.yaml")):
        found = key_comments(path) | found
    for group, options in option_files().items():
        for path in options.values():
            found = key_comments(path, prefix_of(group)) | found
    return found


def other_option_keys(command: Command, composed_keys: set[str]) -> list[tuple[str, str, object]]:
    """(key, the option that brings it, its value there) for the keys only other options of a group add."""
    found: dict[str, tuple[str, object]] = {}
    for group, options in option_files().items():
        if group != "hydra/launcher" and command.groups is not None and group not in command.groups:
            continue
        for option, path in options.items():
            tree = {
                key: value for key, value in OmegaConf.to_container(OmegaConf.load(path)).items() if key != "defaults"
            }
            for key, value in flatten(tree, prefix_of(group)):
                if key not in composed_keys and key not in found:
                    found[key] = (f"{group}={option}", value)
    return [(key, option, value) for key, (option, value) in found.items()]


def group_lines(command: Command) -> list[str]:
    """Each group with its options and the comment of its line in the defaults list."""
    described = defaults_list()
    lines = []
    for group, options in config_groups().items():
        if command.groups is None or group in command.groups:
            default, comment = described.get(group, ("-", ""))
            lines.append(f"  {group}={'|'.join(options)}  (default {default}): {comment}")
    if command.name == "train":
        launchers = " | ".join(f"{name} ({what})" for name, what in LAUNCHERS.items())
        lines.append(f"  hydra/launcher={'|'.join(LAUNCHERS)}  (default basic, with -m): {launchers}")
    return lines


def help_text(name: str, cfg: DictConfig) -> str:
    """The text of `python -m lyricgen.<name> --help`, with the values of `cfg` (the composed config, the
    command line's overrides included) as the defaults shown, then the keys other options bring."""
    command = COMMANDS[name]
    meaning = comments()
    keys = [
        (key, as_typed(value))
        for key, value in flatten(OmegaConf.to_container(cfg, resolve=False))
        if not key.startswith("hydra") and command.applies(key)
    ]
    others = [(key, as_typed(value), option) for key, option, value in other_option_keys(command, {k for k, _ in keys})]
    width = max(len(f"{key}={value}") for key, value, *_ in [*keys, *others])
    sweep = "  [-m]" if command.name == "train" else ""
    return "\n".join(
        [
            f"python -m lyricgen.{name}: {command.summary}",
            "",
            f"usage: python -m lyricgen.{name} [group=option ...] [key=value ...]{sweep}",
            "",
            "groups:",
            *group_lines(command),
            "",
            "keys (default shown):",
            *(f"  {f'{key}={value}':<{width}}  {meaning.get(key, '')}".rstrip() for key, value in keys),
            "",
            "keys of other options (with the option that brings them, and its value):",
            *(
                f"  {f'{key}={value}':<{width}}  ({option}) {meaning.get(key, '')}".rstrip()
                for key, value, option in others
            ),
        ]
    )


def cell(text: str) -> str:
    """Text for a Markdown table's cell: its pipes escaped."""
    return text.replace("|", "\\|")


def reference_markdown() -> str:
    """docs/training.md's reference: every group with its options, every key with its default (or the option
    that brings it) and its meaning, from conf/'s comments, as --help prints them."""
    command, meaning = COMMANDS["train"], comments()
    described = defaults_list()
    lines = ["| group | options | default | what |", "|---|---|---|---|"]
    for group, options in config_groups().items():
        default, comment = described.get(group, ("-", ""))
        lines.append(f"| `{group}` | {', '.join(f'`{o}`' for o in options)} | `{default}` | {cell(comment)} |")
    launchers = "; ".join(f"`{name}`: {what}" for name, what in LAUNCHERS.items())
    lines.append(f"| `hydra/launcher` (with `-m`) | {', '.join(f'`{o}`' for o in LAUNCHERS)} | `basic` | {launchers} |")
    cfg = compose_command(command, [])
    keys = [
        (key, as_typed(value), "") for key, value in flatten(OmegaConf.to_container(cfg)) if not key.startswith("hydra")
    ]
    others = other_option_keys(command, {key for key, *_ in keys})
    keys += [(key, as_typed(value), f" with `{option}`") for key, option, value in others]
    lines += ["", "| key | default | what |", "|---|---|---|"]
    lines += [f"| `{key}` | `{cell(value)}`{where} | {cell(meaning.get(key, ''))} |" for key, value, where in keys]
    return "\n".join(lines) + "\n"


def _help_resolver(name: str, *, _root_: DictConfig) -> str:
    """${lyricgen_help:<command>}: hydra.help.template (hydra/help), resolved when Hydra prints --help."""
    return help_text(name, _root_).replace("$", "$$")  # Hydra fills its help template with string.Template


OmegaConf.register_new_resolver("lyricgen_help", _help_resolver, replace=True)


def run_checked(name: str, hydra_main: object) -> None:
    """The entry point of a Hydra command: check its command line, then hand it to Hydra."""
    try:
        sys.argv[1:] = check_command_line(name, sys.argv[1:])
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    hydra_main()
