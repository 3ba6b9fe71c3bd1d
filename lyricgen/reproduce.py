"""Run the paper's protocol — every experiment, corpus and seed — `jobs` at a time, then report:
`python -m lyricgen.reproduce out=outputs/reproduce/full jobs=2` (what `make reproduce JOBS=2` runs).

Each group's seeds train stacked in one process with one thread (`python -m lyricgen.train -m
hydra/launcher=stacked seed=...`: runs of one shape share every batch-1 step), each run in
`<out>/<name>/seed=<s>/`, the group's output in `<out>/<name>/sweep.log`. The protocol can be stopped
and started again: a run that ended (finished or diverged) is kept, an interrupted one continues from
its last checkpoint, a missing one starts. `<out>/provenance.json` records the command, machine and
commit of each group's training (lyricgen.provenance).
"""

import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

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
RECORDING = threading.Lock()  # groups finish in parallel threads; one writes the record at a time


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


def command(name: str, runs: list[Run], out: Path, csvs: dict[str, Path], scale: float, extra: list[str]) -> list[str]:
    """The `python -m lyricgen.train -m` command of one group's runs (one corpus and args, several seeds):
    stacked in one process; a run already in its directory continues from its last checkpoint."""
    first = runs[0]
    seeds = ",".join(str(run.seed) for run in runs)
    corpus = ["data=lyrics_csv", f"data.csv='{csvs[first.corpus]}'", f"data.prepared_dir='{out / 'prepared'}'"]
    quiet = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
    where = [f"hydra.sweep.dir='{out / name}'", "hydra.sweep.subdir='seed=${seed}'"]
    settings = [f"seed={seeds}", f"scale={scale}", "threads=1", *where]
    stacked = ["-m", "hydra/launcher=stacked"]
    return [sys.executable, "-m", "lyricgen.train", *stacked, *first.args, *corpus, *settings, *quiet, *extra]


def has_ended(run: Run, out: Path) -> bool:
    """Finished, or diverged: a run that needs nothing more."""
    status = RunDir(run.directory(out)).status
    return status.is_file() and json.loads(status.read_text()).get("ended", False)


def execute(name: str, runs: list[Run], out: Path, csvs: dict[str, Path], scale: float, extra: list[str]) -> int:
    """Train one group's runs in one process, record how each ended, and return how many did not end
    (finished or diverged): those are continued by the next call of the protocol."""
    (out / name).mkdir(parents=True, exist_ok=True)
    started, code = time.time(), provenance(MEASURES)  # the code as the group's process starts and loads it
    line = command(name, runs, out, csvs, scale, extra)
    with (out / name / "sweep.log").open("a") as output:
        returncode = subprocess.run(line, stdout=output, stderr=output).returncode
    seconds = round(time.time() - started, 1)
    for run in runs:
        status_file = RunDir(run.directory(out)).status
        status = json.loads(status_file.read_text()) if status_file.is_file() else {}  # what the run said of its end
        status |= {"returncode": returncode, "ended": status.get("state") in ENDINGS, "seconds": seconds}
        if status_file.parent.is_dir():
            status_file.write_text(json.dumps(status))  # and when its process ended: exit code, wall time
    seeds = ",".join(str(run.seed) for run in runs)
    print(f"{name} seed={seeds}: exit {returncode} after {seconds:.0f} s", flush=True)
    record_provenance(out, name, code)
    return sum(not has_ended(run, out) for run in runs)


def record_provenance(out: Path, group: str, record: dict) -> None:
    """<out>/provenance.json: the `record` (command, machine, commit) of the group that ended last, and under
    "groups" the commit each group trained at (a protocol continued across commits says so)."""
    path = out / "provenance.json"
    with RECORDING:
        groups = json.loads(path.read_text()).get("groups", {}) if path.is_file() else {}
        groups[group] = {key: record[key] for key in ("commit", "dirty", "date")}
        text = json.dumps({"provenance": record, "groups": groups}, indent=2) + "\n"
        write_atomically(path, lambda partial: partial.write_text(text))


def reproduce(runs: list[Run], out: Path, jobs: int, scale: float, extra: list[str]) -> int:
    """Run what has not ended yet, `jobs` at a time; return how many of them failed (see their train.log)."""
    out = out.resolve()  # runs record their corpus paths: absolute ones work from anywhere
    csvs = standin.build(out / "corpora")
    pending = [run for run in runs if not has_ended(run, out)]
    groups: dict[str, list[Run]] = {}
    for run in pending:
        groups.setdefault(run.name, []).append(run)
    print(
        f"{len(runs) - len(pending)} of {len(runs)} runs already ended; running {len(pending)} in {len(groups)} "
        f"groups, {jobs} at a time"
    )
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return sum(pool.map(lambda item: execute(*item, out, csvs, scale, extra), groups.items()))


SUMMARY = "the paper's protocol: every group, corpus and seed, `jobs` at a time; run it again to continue"


@dataclass
class ReproduceConfig:
    out: str = required("the protocol's directory; the same command again continues it")
    protocol: str = option("paper", "conf/protocol/<name>.yaml, or a .yaml file")
    jobs: int = option(1, "groups at a time, one process and thread each")
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
