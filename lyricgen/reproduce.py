"""Run the paper's protocol — every experiment, corpus and seed — then report:
`python -m lyricgen.reproduce out=outputs/reproduce/full jobs=2` (what `make reproduce JOBS=2` runs).

All runs not yet ended go into one `python -m lyricgen.train -m` sweep (`hydra/sweeper=listed` over
`<out>/jobs.yaml`, `hydra/launcher=stacked`): runs of one shape train stacked in one process with one
thread whatever their group (lengths, learning rates, dropout, clipping and corpora may differ), `jobs`
stacks at a time. Each run is in `<out>/<name>/seed=<s>/`, the sweep's output in `<out>/sweep.log`. The
protocol can be stopped and started again: a run that ended (finished or diverged) is kept, an
interrupted one continues from its last checkpoint, a missing one starts. `<out>/provenance.json` records
the command, machine, commit and wall time of the call, and the commit each group trained at
(lyricgen.provenance).
"""

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from omegaconf import OmegaConf

from lyricgen import UserError, one_line_errors
from lyricgen.atomic import write_atomically
from lyricgen.config import CONF_DIR
from lyricgen.data import standin
from lyricgen.options import help_text, option, parsed, required, wants_help
from lyricgen.provenance import provenance
from lyricgen.rundir import RunDir

PROTOCOLS = CONF_DIR / "protocol"
ENDINGS = ("finished", "diverged")  # a diverged run is a result too, and is not run again
# the code the protocol's numbers depend on: a later change to any of these makes them stale
MEASURES = ("conf", "lyricgen/config.py", "lyricgen/data", "lyricgen/nn", "lyricgen/training", "lyricgen/train.py")
MEASURES += ("lyricgen/hydra", "lyricgen/reproduce.py")


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
        raise UserError(f"only= names no group of {path.name}: {unknown}")
    return [
        Run(group["name"], seed, group["corpus"], tuple(group["args"]))
        for group in groups
        if not only or group["name"] in only
        for seed in (seeds if seeds is not None else group["seeds"])
    ]


def job(run: Run, out: Path, csvs: dict[str, Path]) -> list[str]:
    """One run's overrides in the protocol's listed sweep: its group's args, its corpus and seed, its directory."""
    corpus = ["data=lyrics_csv", f"data.csv='{csvs[run.corpus]}'", f"data.prepared_dir='{out / 'prepared'}'"]
    return [*run.args, *corpus, f"seed={run.seed}", f"hydra.sweep.subdir='{run.directory(out).relative_to(out)}'"]


def command(out: Path, jobs: int, scale: float, extra: list[str]) -> list[str]:
    """The one `python -m lyricgen.train -m` of the runs listed in <out>/jobs.yaml: runs of one shape stacked
    across groups, `jobs` stacks at a time; a run already in its directory continues from its last checkpoint."""
    listed = ["hydra/sweeper=listed", f"hydra.sweeper.jobs='{out / 'jobs.yaml'}'", f"hydra.sweep.dir='{out}'"]
    stacked = ["hydra/launcher=stacked", f"hydra.launcher.n_jobs={jobs}"]
    quiet = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
    settings = [f"scale={scale}", "threads=1", *quiet, *extra]
    return [sys.executable, "-m", "lyricgen.train", "-m", *listed, *stacked, *settings]


def has_ended(run: Run, out: Path) -> bool:
    """Finished, or diverged: a run that needs nothing more."""
    status = RunDir(run.directory(out)).status
    return status.is_file() and json.loads(status.read_text()).get("ended", False)


def record_ends(runs: list[Run], out: Path, returncode: int, seconds: float) -> None:
    """How each run ended, as the run said (status.json), and when its process ended: exit code, wall time."""
    for run in runs:
        status_file = RunDir(run.directory(out)).status
        status = json.loads(status_file.read_text()) if status_file.is_file() else {}
        status |= {"returncode": returncode, "ended": status.get("state") in ENDINGS, "seconds": seconds}
        if status_file.parent.is_dir():
            status_file.write_text(json.dumps(status))


def record_provenance(out: Path, groups: list[str], record: dict, seconds: float) -> None:
    """<out>/provenance.json: the `record` (command, machine, commit) of the last call and its wall time, and
    under "groups" the commit each group trained at (a protocol continued across commits says so)."""
    path = out / "provenance.json"
    trained = json.loads(path.read_text()).get("groups", {}) if path.is_file() else {}
    trained |= {group: {key: record[key] for key in ("commit", "dirty", "date")} for group in groups}
    text = json.dumps({"provenance": record | {"seconds": seconds}, "groups": trained}, indent=2) + "\n"
    write_atomically(path, lambda partial: partial.write_text(text))


def reproduce(runs: list[Run], out: Path, jobs: int, scale: float, extra: list[str]) -> int:
    """Run what has not ended yet in one listed sweep, `jobs` stacks at a time; return how many of them did
    not end (see their train.log): the next call continues them."""
    out = out.resolve()  # runs record their corpus paths: absolute ones work from anywhere
    csvs = standin.build(out / "corpora")
    pending = [run for run in runs if not has_ended(run, out)]
    groups = list(dict.fromkeys(run.name for run in pending))
    print(
        f"{len(runs) - len(pending)} of {len(runs)} runs already ended; running {len(pending)} of {len(groups)} groups"
    )
    if not pending:
        return 0
    write_atomically(
        out / "jobs.yaml", lambda partial: partial.write_text(yaml.safe_dump([job(run, out, csvs) for run in pending]))
    )
    started, code = time.time(), provenance(MEASURES)  # the code as the sweep's process starts and loads it
    with (out / "sweep.log").open("a") as output:
        returncode = subprocess.run(command(out, jobs, scale, extra), stdout=output, stderr=output).returncode
    seconds = round(time.time() - started, 1)
    record_ends(pending, out, returncode, seconds)
    record_provenance(out, groups, code, seconds)
    print(f"{len(pending)} runs: exit {returncode} after {seconds:.0f} s", flush=True)
    return sum(not has_ended(run, out) for run in pending)


SUMMARY = "the paper's protocol: every group, corpus and seed, `jobs` at a time; run it again to continue"


@dataclass
class ReproduceConfig:
    out: str = required("the protocol's directory; the same command again continues it")
    protocol: str = option("paper", "conf/protocol/<name>.yaml, or a .yaml file")
    jobs: int = option(1, "stacks (or unstackable runs) at a time, one process and thread each")
    scale: float = option(1.0, "fraction of every run's iterations")
    seeds: list[int] | None = field(
        default=None, metadata={"help": "every group's seeds instead of its own: seeds=[0,1]"}
    )
    only: list[str] | None = field(default=None, metadata={"help": "only these groups: only=[baseline,baseline_tab]"})
    train: list[str] = field(
        default_factory=list, metadata={"help": "training overrides for every run: train=[trainer=gpu]"}
    )


@one_line_errors
def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if wants_help(argv):
        print(help_text(ReproduceConfig, "reproduce", SUMMARY))
        return
    cfg = parsed(ReproduceConfig, argv, raw=("out", "protocol"))
    if cfg.jobs < 1 or cfg.scale <= 0:
        raise UserError("jobs= must be at least 1 and scale= above 0")
    runs = load_protocol(cfg.protocol, cfg.seeds, cfg.only)
    failed = reproduce(runs, Path(cfg.out), cfg.jobs, cfg.scale, cfg.train)
    if failed:
        raise UserError(f"{failed} runs failed: see their train.log; run the same command again to retry", 1)


if __name__ == "__main__":
    main()
