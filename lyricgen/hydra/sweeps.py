"""Sweeps: which jobs a `-m` sweep runs (ListedSweeper: a list of unlike runs), and what it says when it
ends (SweepSummary)."""

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.types import Override
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from lyricgen import UserError


class SweepSummary(Callback):
    """One line for each run that did not finish (diverged, or out of SLURM requeues), read from the runs'
    status.json, and a count. Its jobs' own error lines go to their logs when a launcher runs them elsewhere
    (SLURM); this brings them back to the terminal that started the sweep. A Hydra callback
    (conf/config.yaml's hydra.callbacks)."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        endings = {path.parent: json.loads(path.read_text()) for path in sorted(sweep_dir.glob("**/status.json"))}
        if not endings:
            return
        for run_dir, ending in endings.items():
            if ending.get("state") != "finished":
                print(f"error: {run_dir}: {ending.get('message')}", file=sys.stderr)
        counts = Counter(ending.get("state") for ending in endings.values())
        print(
            f"sweep {sweep_dir}: " + ", ".join(f"{n} {state}" for state, n in sorted(counts.items())), file=sys.stderr
        )


class ListedSweeper(BasicSweeper):
    """`-m hydra/sweeper=listed hydra.sweeper.jobs=<file.yaml>`: the sweep's jobs are the runs the file lists,
    each a list of overrides (e.g. `[experiment=paper_best, seed=0, hydra.sweep.subdir=best/seed=0]`), with
    the command line's overrides on top of each (a value swept there multiplies the list). Unlike runs go
    in one sweep, so that hydra/launcher=stacked stacks those of one shape (lyricgen.reproduce does)."""

    def __init__(self, jobs: str | None = None, max_batch_size: int | None = None) -> None:
        super().__init__(max_batch_size=max_batch_size, params=None)
        self.jobs = listed_jobs(jobs)

    def split_arguments(self, overrides: list[Override], max_batch_size: int | None) -> list[list[list[str]]]:
        """The listed jobs, each followed by every job of the command line's own sweep."""
        (swept,) = BasicSweeper.split_arguments(overrides, None)
        jobs = [[*listed, *own] for listed in self.jobs for own in swept]
        return list(BasicSweeper.split_overrides_to_chunks(jobs, max_batch_size))


def listed_jobs(path: str | None) -> list[list[str]]:
    """A jobs file's runs: a YAML list of lists of overrides."""
    if path is None:
        raise UserError(
            "hydra/sweeper=listed needs its jobs: hydra.sweeper.jobs=<a .yaml file listing each run's overrides>"
        )
    if not Path(path).is_file():
        raise UserError(f"hydra.sweeper.jobs={path}: no such file")
    jobs = yaml.safe_load(Path(path).read_text())
    if not (isinstance(jobs, list) and jobs and all(isinstance(job, list) for job in jobs)):
        raise UserError(f"{path}: list each run's overrides, one list per run: - [experiment=paper_best, seed=0]")
    return [[str(override) for override in job] for job in jobs]
