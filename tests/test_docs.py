"""The README and docs/ as promises: every command in their shell blocks runs, the way a user types it.

Each fenced bash block runs in a clean working directory of its own (its commands in order, so a block
may train and then generate), with tiny-size overrides appended to each command (few steps, a tiny
model). A command that cannot run here carries `# needs: <what>` in the doc and is reported as skipped
with that reason; a line `error: ...` under a command is the one-line error it must print. Placeholders
stand for things a user has: `outputs/runs/<time>` a finished run, `~/data/train.csv` the Kaggle file
(here a small CSV of its schema), `one_artist.txt`, `a.txt` and `b.txt` text files.

The keys, group options and files the docs name must exist too.
"""

import re
import shlex
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import CONF_DIR, ROOT, SHARED_DATA
from hydra import compose, initialize_config_dir

from lyricgen.config import trainer_arguments
from lyricgen.hydra.cli import all_keys

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMAND = re.compile(r"^(python -m lyricgen\.\w+|lyricgen-\w+|make)(\s|$)")
NEEDS = re.compile(r"#\s*needs:\s*(?P<what>.+)$")
FIXTURE_TIME = "2026-01-01_00-00-00"  # the <time> of the finished run and sweep every workspace holds
# make targets that do not finish quickly, or that are the suite itself, with why they are not run here
MAKE_NOT_RUN = {
    "test": "the test suite itself",
    "test-fast": "part of the test suite itself",
    "lint": "CI runs it before the suite",
    "bench": "the benchmarks take up to an hour; their results are in benchmarks/results",
    "tensorboard": "a server that runs until stopped (tests/test_tensorboard.py serves a run)",
    "play": "a server that runs until stopped (tests/test_play.py drives it in a browser)",
    "figures": "it rewrites the checkout's README and docs: tests/test_figures.py runs its --check instead",
    "stale": "a report whose answer changes with every commit: tests/test_figures.py tests it on a repository",
}
TINY = {  # key: value, appended to a training command that does not set the key itself
    "model.hidden_size": "16",
    "data.batch_size": "4",
    "data.seq_len": "32",
    "data.val_chars": "2000",
    "trainer.max_steps": "4",
    "trainer.val_check_interval": "2",
    "trainer.enable_progress_bar": "false",
    "trainer.enable_model_summary": "false",
    "memory.max_chars": "50000",
    "sample_length": "20",
    "threads": "1",
}
TINY_SCALE = "0.0002"  # the experiments' ${scaled:N}: 20,000 iterations -> 4


@dataclass(frozen=True)
class DocCommand:
    doc: str
    line: int
    block: int  # commands of one block run in order, in one working directory
    text: str
    needs: str | None  # why it cannot run here, from `# needs: ...`
    error: str | None  # the one-line error the doc shows under it

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"


def shell_blocks(path: Path) -> list[list[tuple[int, str]]]:
    """The fenced bash blocks of a Markdown file, as (line number, line) lists; continued lines joined."""
    blocks, current, inside = [], None, False
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fence = line.strip().startswith("```")
        if fence and not inside:
            inside, current = True, ([] if line.strip() in ("```bash", "```sh", "```shell") else None)
        elif fence:
            inside = False
            if current is not None:
                blocks.append(current)
        elif current is not None:
            if current and current[-1][1].endswith("\\"):
                current[-1] = (current[-1][0], current[-1][1][:-1].rstrip() + " " + line.strip())
            else:
                current.append((number, line.strip()))
    return blocks


def doc_commands() -> list[DocCommand]:
    commands = []
    for path in DOCS:
        name = str(path.relative_to(ROOT))
        for index, block in enumerate(shell_blocks(path)):
            for position, (number, line) in enumerate(block):
                if not COMMAND.match(line):
                    continue
                following = block[position + 1][1] if position + 1 < len(block) else ""
                needs = NEEDS.search(line)
                error = following if following.startswith("error: ") else None
                commands.append(DocCommand(name, number, index, line, needs["what"].strip() if needs else None, error))
    return commands


COMMANDS = doc_commands()


def without_comment(command: str) -> str:
    """The command without its trailing `# ...` comment (a # inside quotes stays)."""
    quoted, result = None, []
    for index, char in enumerate(command):
        if char in "'\"" and quoted in (None, char):
            quoted = None if quoted else char
        if char == "#" and quoted is None and (index == 0 or command[index - 1] == " "):
            break
        result.append(char)
    return "".join(result).strip()


def set_key(tokens: list[str], key: str, value: str) -> list[str]:
    """The tokens with `key=value`: an existing setting of the key rewritten, else appended."""
    found = [i for i, token in enumerate(tokens) if token.lstrip("+").split("=", 1)[0] == key]
    if found:
        tokens[found[0]] = f"{key}={value}"
        return tokens
    return [*tokens, f"{key}={value}"]


class Workspace:
    """A clean working directory with what a user of the docs has: a finished run, a sweep, text files
    and the Kaggle-schema CSV; `../shared/data` where this checkout has it."""

    def __init__(self, base: Path, where: Path):
        shutil.copytree(base / "work", where / "work", symlinks=True)
        if (base / "shared").exists():
            (where / "shared").symlink_to((base / "shared").resolve())
        self.cwd = where / "work"
        self.resumes = 0

    def command_line(self, command: str) -> list[str]:
        """The doc's command as arguments, placeholders filled in and tiny-size overrides appended."""
        text = without_comment(command)
        text = text.replace("~/data/train.csv", "kaggle/train.csv").replace(
            "data.csv=train.csv", "data.csv=kaggle/train.csv"
        )
        text = text.replace("<time>", FIXTURE_TIME)
        tokens = shlex.split(text)
        program = tokens[:3] if tokens[0] == "python" else tokens[:1]
        args = tokens[len(program) :]
        if program[0] == "make":
            return ["make", "-s", "-C", str(ROOT), *self.make_args(args)]
        module = program[-1].removeprefix("lyricgen.").removeprefix("lyricgen-")
        if module == "train" and "--help" not in args:
            args = self.train_args(args)
        if module == "reproduce":
            args += [f"scale={TINY_SCALE}", "seeds=[0]", "only=[baseline]", "train=[data.val_chars=2000]"]
        return [sys.executable, "-m", f"lyricgen.{module}", *args]

    def train_args(self, args: list[str]) -> list[str]:
        keys = {arg.lstrip("+~").split("=", 1)[0] for arg in args}
        if keys & {"resume", "ckpt_path"}:  # the finished run trained 4 steps: each resume trains 2 more
            self.resumes += 1
            return set_key(args, "trainer.max_steps", str(4 + 2 * self.resumes))
        if "hydra.sweeper.n_trials" in keys:
            args = set_key(args, "hydra.sweeper.n_trials", "2")
        if "trainer.max_steps" in keys:
            args = set_key(args, "trainer.max_steps", TINY["trainer.max_steps"])
        if "hydra.searchpath" in keys:  # a network of the user's own: its model keys are its own
            keys |= {key for key in TINY if key.startswith("model.")}
        experiment = any(arg.startswith("experiment=") for arg in args)
        # an experiment's length comes from scale=; its batch and window are the experiment (a sweep of one
        # stacks at its batch 1)
        steps = ("trainer.max_steps", "trainer.val_check_interval", "data.batch_size", "data.seq_len")
        tiny = [
            f"{key}={value}" for key, value in TINY.items() if key not in keys and not (experiment and key in steps)
        ]
        return [*args, *tiny, *([f"scale={TINY_SCALE}"] if experiment else [])]

    def make_args(self, args: list[str]) -> list[str]:
        target = args[0]
        if target == "train":
            tiny = " ".join(f"{key}={value}" for key, value in TINY.items())
            return [*args, f"ARGS={tiny} paths.output_dir={self.cwd / 'outputs'}"]
        if target == "reproduce":
            out = self.cwd / "outputs" / "reproduce"
            return [
                *args,
                f"SCALE={TINY_SCALE}",
                "SEEDS=0",
                "ONLY=baseline",
                f"REPRODUCE_DIR={out}",
                "ARGS=data.val_chars=2000",
            ]
        return args

    def run(self, command: DocCommand) -> subprocess.CompletedProcess:
        line = self.command_line(command.text)
        return subprocess.run(line, cwd=self.cwd, capture_output=True, text=True, timeout=600)


def not_run(command: DocCommand) -> str | None:
    """Why a command is not run here, or None."""
    if command.needs:
        return f"needs {command.needs}"
    words = command.text.split()
    if words[0] == "make" and words[1] in MAKE_NOT_RUN:
        return MAKE_NOT_RUN[words[1]]
    if "../shared/data" in command.text and not SHARED_DATA.is_dir():
        return f"needs the public-domain corpora in {SHARED_DATA}"
    return None


def kaggle_schema_csv(path: Path) -> None:
    """A small CSV of the Kaggle train.csv's schema: the built-in songs as English Rock, Metal and Pop."""
    import pandas as pd

    from lyricgen.data.corpus import builtin_songs_poems
    from lyricgen.data.lyrics_csv import EXPECTED_COLUMNS

    songs = builtin_songs_poems()[:300]
    genres = ["Rock", "Metal", "Pop"]
    rows = [("artist", f"song {i}", genres[i % 3], "en", song) for i, song in enumerate(songs)]
    path.parent.mkdir(parents=True)
    pd.DataFrame(rows, columns=EXPECTED_COLUMNS).to_csv(path, index=False)


def tiny_run(*args: str, cwd: Path) -> None:
    tiny = [f"{key}={value}" for key, value in TINY.items()]
    result = subprocess.run(
        [sys.executable, "-m", "lyricgen.train", *args, *tiny], cwd=cwd, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess]:
    """Every runnable command's result, each block in a workspace of its own, two blocks at a time."""
    from lyricgen.data.corpus import builtin_songs_poems

    base = tmp_path_factory.mktemp("docs")
    work = base / "work"
    work.mkdir()
    if SHARED_DATA.is_dir():
        (base / "shared").symlink_to(SHARED_DATA.parent)
    text = "\n\n".join(builtin_songs_poems())
    (work / "one_artist.txt").write_text(text[:30_000])
    (work / "a.txt").write_text(text[30_000:60_000])
    (work / "b.txt").write_text(text[60_000:90_000])
    kaggle_schema_csv(work / "kaggle" / "train.csv")
    shutil.copytree(ROOT / "examples", work / "examples")  # what a clone of the repository has
    with ThreadPoolExecutor(2) as pool:
        made = [
            pool.submit(tiny_run, f"hydra.run.dir=outputs/runs/{FIXTURE_TIME}", "data.test_fraction=0.05", cwd=work),
            pool.submit(tiny_run, "-m", "seed=0,1", f"hydra.sweep.dir=outputs/multirun/{FIXTURE_TIME}", cwd=work),
        ]
        for future in made:
            future.result()
    blocks: dict[tuple[str, int], list[DocCommand]] = {}
    for command in COMMANDS:
        if not_run(command) is None:
            blocks.setdefault((command.doc, command.block), []).append(command)

    def run_block(key: tuple[str, int], commands: list[DocCommand]) -> list[tuple[str, subprocess.CompletedProcess]]:
        where = base / f"{key[0].replace('/', '_')}-{key[1]}"
        where.mkdir()
        workspace = Workspace(base, where)
        return [(command.id, workspace.run(command)) for command in commands]

    with ThreadPoolExecutor(2) as pool:
        ran = pool.map(lambda item: run_block(*item), blocks.items())
        return {command_id: result for block in ran for command_id, result in block}


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS, ids=[command.id for command in COMMANDS])
def test_every_documented_command_runs(command: DocCommand, results: dict) -> None:
    reason = not_run(command)
    if reason:
        pytest.skip(f"{command.text.split('#')[0].strip()}: {reason}")
    result = results[command.id]
    if command.error:
        assert result.returncode == 2 and result.stderr.strip() == command.error, result.stderr[-2000:]
    else:
        assert result.returncode == 0, f"{command.text}\n{result.stdout[-1500:]}\n{result.stderr[-3000:]}"


def test_the_docs_show_commands_and_mark_the_ones_that_cannot_run_here():
    assert len(COMMANDS) >= 40
    assert {command.doc for command in COMMANDS} >= {"README.md", "docs/training.md", "docs/generation.md"}
    assert any(command.needs for command in COMMANDS) and any(command.error for command in COMMANDS)


# --- what the docs name must exist ---

GROUPS = {folder.name for folder in CONF_DIR.iterdir() if folder.is_dir()} - {"hydra", "protocol"}
KEY = re.compile(
    r"^\+?(?P<key>(?:model|optim|data|trainer|memory|guard|spikes|paths|checkpoint|logger)(?:\.\w+)+)(?:=|$)"
)
OPTION = re.compile(r"^(?P<group>\w+)=(?P<option>[A-Za-z_][\w.]*)$")
LINK = re.compile(r"\]\((?P<target>[^)#\s]+)(?:#[^)]*)?\)")
NOT_KEYS = re.compile(r"\.(?:py|yaml|md|csv|json|jsonl|png|txt|ckpt)$")  # spikes.jsonl, model.py: files
SHOWN_AS_MISTAKES = {"model.num_layer", "trainer.colour"}  # misspelt on purpose, to show the one-line error
FILE = re.compile(r"^(?:conf|lyricgen|benchmarks|docs|tests|examples)/[\w./-]+\.(?:py|yaml|md|csv|json|png)$")
EXAMPLE_CONF = ROOT / "examples" / "conf"  # the plugged-in network the docs show: its options count too


def config_keys() -> set[str]:
    """Every dotted key of the run config under each data source (lyricgen.hydra.cli's own list of them), and
    with the example network."""
    keys = set()
    example = [f"hydra.searchpath=[file://{EXAMPLE_CONF}]", "model=tiny_gru"]
    with initialize_config_dir(str(CONF_DIR), version_base=None):
        for overrides in ([], ["data=text"], ["data=lyrics_csv"], ["optim=sgd"], ["optim=rmsprop"], example):
            keys |= set(all_keys(compose("config", overrides=overrides)))
    return keys | {f"trainer.{name}" for name in trainer_arguments()} | {"data.files"}


def named_things(path: Path) -> list[str]:
    """Backticked spans and the words of shell commands in a Markdown file."""
    text = path.read_text()
    spans = re.findall(r"`([^`\n]+)`", text)
    words = [word for block in shell_blocks(path) for _, line in block for word in without_comment(line).split()]
    return [part for span in spans for part in span.split()] + words


@pytest.mark.parametrize("doc", DOCS, ids=[str(doc.relative_to(ROOT)) for doc in DOCS])
def test_the_docs_name_only_keys_options_and_files_that_exist(doc: Path) -> None:
    keys, missing = config_keys(), []
    for thing in named_things(doc):
        thing = thing.strip("'\",;:()")
        key, option = KEY.match(thing), OPTION.match(thing)
        if key and key["key"] not in keys | SHOWN_AS_MISTAKES and not NOT_KEYS.search(thing):
            missing.append(f"key {key['key']}")
        if (
            option
            and option["group"] in GROUPS
            and not any(
                (conf / option["group"] / f"{option['option']}.yaml").is_file() for conf in (CONF_DIR, EXAMPLE_CONF)
            )
        ):
            missing.append(f"option {thing}")
        if FILE.match(thing) and not (ROOT / thing).exists():
            missing.append(f"file {thing}")
    for link in LINK.finditer(doc.read_text()):
        target = link["target"]
        if not target.startswith(("http://", "https://")) and not (doc.parent / target).exists():
            missing.append(f"link {target}")
    assert not missing, missing
