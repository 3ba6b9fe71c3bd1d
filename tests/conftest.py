"""Shared fixtures: the real config composed through Hydra's compose API, shrunk to run in seconds."""

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import lyricgen.hydra  # noqa: F401  (registers the resolvers the YAML files use)

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"
SHARED_DATA = ROOT.parent / "shared" / "data"  # public-domain corpora beside the checkout (CI has them)

# A learnable toy: a few lyric lines repeated, so a tiny model's loss must fall well below uniform.
TOY_LYRICS = "oh baby baby\nrock and roll all night\nla la la la\nyeah yeah yeah\n\n" * 60

TINY = [
    "model=lstm",
    "model.hidden_size=16",
    "data.batch_size=4",
    "data.seq_len=16",
    "trainer.max_steps=6",
    "trainer.val_check_interval=3",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "sample_length=20",
]


@pytest.fixture
def toy_corpus(tmp_path: Path) -> Path:
    path = tmp_path / "toy.txt"
    path.write_text(TOY_LYRICS, encoding="utf-8")
    return path


@pytest.fixture
def tiny_overrides(toy_corpus: Path) -> list[str]:
    """Overrides for a seconds-long run on the toy corpus (its encoded-ids cache beside it)."""
    return [*TINY, "data=text", f"data.path={toy_corpus}", f"data.prepared_dir={toy_corpus.parent / 'prepared'}"]


@pytest.fixture
def compose_config(tiny_overrides: list[str], tmp_path: Path) -> Callable[..., DictConfig]:
    """compose_config("optim.lr=0.01", ...) -> the real composed config, with tiny settings underneath
    unless tiny=False."""

    def _compose(*overrides: str, tiny: bool = True) -> DictConfig:
        cache = f"data.prepared_dir={tmp_path / 'prepared'}"  # never into the repository's outputs/
        with initialize_config_dir(str(CONF_DIR), version_base=None):
            return compose("config", overrides=[*(tiny_overrides if tiny else []), cache, *overrides])

    return _compose


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory with checkpoints from a few seconds of training on the toy lyrics, made once."""
    from lyricgen.training.fit import fit_run

    root = tmp_path_factory.mktemp("trained")
    corpus_file = root / "toy.txt"
    corpus_file.write_text(TOY_LYRICS, encoding="utf-8")
    overrides = [*TINY, "data=text", f"data.path={corpus_file}", f"data.prepared_dir={root / 'prepared'}"]
    overrides += ["trainer.max_steps=60", "optim.lr=0.02", "optim.schedule=constant"]  # 60 steps: no time to decay
    with initialize_config_dir(str(CONF_DIR), version_base=None):
        fit_run(compose("config", overrides=overrides), root / "run")
    corpus_file.unlink()  # whatever uses the run must work from its checkpoints alone
    return root / "run"


def run_module(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run `python -m <module> args...` the way a user types it."""
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def run_modules(commands: list[tuple[str, ...]], cwd: Path, at_once: int = 4) -> list[subprocess.CompletedProcess]:
    """run_module for each (module, *args), `at_once` at a time: most of a short command is importing,
    which overlaps well."""
    with ThreadPoolExecutor(min(at_once, len(commands))) as pool:
        return list(pool.map(lambda command: run_module(*command, cwd=cwd), commands))


def curve(run_dir: Path, tag: str = "train/loss") -> list[tuple[int, float]]:
    """(step, value) of every point a run logged under `tag` in its TensorBoard events; [] if none."""
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0}).Reload()
    return [(event.step, event.value) for event in events.Scalars(tag)] if tag in events.Tags()["scalars"] else []


def stopped_midway(command: list[str], run_dir: Path, stop: signal.Signals, **popen: object) -> subprocess.Popen:
    """Start a training command, wait until its run has written its first last.ckpt, then send `stop`
    (SIGKILL for a power loss, SIGTERM for a preemption, SIGINT for Ctrl-C); the caller waits on it."""
    process = subprocess.Popen(command, **popen)
    last = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 120
    while not last.is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(stop)
    return process


def error_line(result: subprocess.CompletedProcess, exit_code: int = 2) -> str:
    """The one line a refused command prints on stderr; fails unless it is exactly one line, the exit code
    is `exit_code` and there is no traceback."""
    assert result.returncode == exit_code, (result.returncode, result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
    return lines[0]


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs the public-domain corpora in {SHARED_DATA} (present in CI, not in a user's clone)")
    return SHARED_DATA
