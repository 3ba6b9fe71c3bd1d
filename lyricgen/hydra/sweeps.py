"""What a `-m` sweep says when it ends: one line for each run that did not finish (diverged, or out of
SLURM requeues), read from the runs' status.json, and a count. Its jobs' own error lines go to their
logs when a launcher runs them elsewhere (SLURM); this brings them back to the terminal that started the
sweep. A Hydra callback (conf/config.yaml's hydra.callbacks)."""

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class SweepSummary(Callback):
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
