"""Run the paper's protocol — every experiment, corpus and seed — `jobs` at a time, then report:
`python -m lyricgen.reproduce outputs/reproduce/full --jobs 2` (what `make reproduce JOBS=2` runs).

Each run is its own `python -m lyricgen.train` process with one thread, in `<out>/<name>/seed=<s>/`, its
output in `train.log` there. The protocol can be stopped and started again: a run that ended (finished
or diverged) is kept, an interrupted one resumes from its last checkpoint, a missing one starts.
"""

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from lyricgen import UserError, one_line_errors
from lyricgen.config import CONF_DIR
from lyricgen.data import standin
from lyricgen.rundir import RunDir

PROTOCOLS = CONF_DIR / "protocol"
DIVERGED_LINE = "error: training diverged"  # a diverged run (exit 1) is a result too, and is not run again


@dataclass(frozen=True)
class Run:
    name: str
    seed: int
    corpus: str
    args: tuple[str, ...]

    def directory(self, out: Path) -> Path:
        return out / self.name / f"seed={self.seed}"


def load_protocol(name_or_path: str, seeds: list[int] | None = None, only: list[str] | None = None) -> list[Run]:
    """The runs of a protocol file (conf/protocol/<name>.yaml, or a path), in order; `seeds` replaces
    every group's seed list, `only` keeps the named groups."""
    path = Path(name_or_path) if name_or_path.endswith(".yaml") else PROTOCOLS / f"{name_or_path}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in PROTOCOLS.glob("*.yaml")))
        raise UserError(f"no protocol {name_or_path}: give a .yaml file or one of {known}")
    groups = OmegaConf.to_container(OmegaConf.load(path))["runs"]
    unknown = sorted(set(only or []) - {group["name"] for group in groups})
    if unknown:
        raise UserError(f"--only names no group of {path.name}: {unknown}")
    return [
        Run(group["name"], seed, group["corpus"], tuple(group["args"]))
        for group in groups
        if not only or group["name"] in only
        for seed in (seeds if seeds is not None else group["seeds"])
    ]


def command(run: Run, out: Path, csvs: dict[str, Path], scale: float, extra: list[str]) -> list[str]:
    """The `python -m lyricgen.train` command line of one run: fresh, or resumed where it stopped."""
    run_dir = run.directory(out)
    if RunDir(run_dir).last.is_file():
        return [sys.executable, "-m", "lyricgen.train", f"resume='{run_dir}'"]
    corpus = ["data=lyrics_csv", f"data.csv='{csvs[run.corpus]}'", f"data.prepared_dir='{out / 'prepared'}'"]
    quiet = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
    settings = [f"seed={run.seed}", f"scale={scale}", "threads=1", f"hydra.run.dir='{run_dir}'"]
    return [sys.executable, "-m", "lyricgen.train", *run.args, *corpus, *settings, *quiet, *extra]


def has_ended(run: Run, out: Path) -> bool:
    """Finished, or diverged: a run that needs nothing more."""
    status = RunDir(run.directory(out)).status
    return status.is_file() and json.loads(status.read_text())["ended"]


def ended(returncode: int, log: Path) -> bool:
    return returncode == 0 or (returncode == 1 and DIVERGED_LINE in log.read_text())


def execute(run: Run, out: Path, csvs: dict[str, Path], scale: float, extra: list[str]) -> bool:
    """Run one run as its own process, record how it ended, and return whether it ended (finished or
    diverged): a run that did not is retried by the next call of the protocol."""
    run_dir = run.directory(out)
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    log = run_dir / "train.log"
    with log.open("a") as output:
        returncode = subprocess.run(command(run, out, csvs, scale, extra), stdout=output, stderr=output).returncode
    status_file = RunDir(run_dir).status
    status = json.loads(status_file.read_text()) if status_file.is_file() else {}  # what the run said of its end
    status |= {"returncode": returncode, "ended": ended(returncode, log), "seconds": round(time.time() - started, 1)}
    status_file.write_text(json.dumps(status))  # and when its process ended: exit code, wall time
    print(f"{run.name} seed={run.seed}: exit {returncode} after {status['seconds']:.0f} s", flush=True)
    return status["ended"]


def reproduce(runs: list[Run], out: Path, jobs: int, scale: float, extra: list[str]) -> int:
    """Run what has not ended yet, `jobs` at a time; return how many of them failed (see their train.log)."""
    out = out.resolve()  # runs record their corpus paths: absolute ones work from anywhere
    csvs = standin.build(out / "corpora")
    pending = [run for run in runs if not has_ended(run, out)]
    print(f"{len(runs) - len(pending)} of {len(runs)} runs already ended; running {len(pending)}, {jobs} at a time")
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return sum(not ok for ok in pool.map(lambda run: execute(run, out, csvs, scale, extra), pending))


@one_line_errors
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lyricgen.reproduce", description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the protocol's directory; run again to continue it")
    parser.add_argument("--protocol", default="paper", help="conf/protocol/<name>.yaml or a .yaml path")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time, one thread each")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of every run's iterations")
    parser.add_argument("--seeds", type=lambda text: [int(s) for s in text.split(",")], help="e.g. 0,1: every group")
    parser.add_argument("--only", type=lambda text: text.split(","), help="e.g. baseline,baseline_tab")
    parser.add_argument("overrides", nargs="*", help="extra training overrides for every run, e.g. trainer=gpu")
    args = parser.parse_intermixed_args(argv)  # overrides may follow the options, as `make reproduce ARGS=` puts them
    runs = load_protocol(args.protocol, args.seeds, args.only)
    failed = reproduce(runs, args.out, args.jobs, args.scale, args.overrides)
    if failed:
        raise UserError(f"{failed} runs failed: see their train.log; run the same command again to retry", 1)


if __name__ == "__main__":
    main()
