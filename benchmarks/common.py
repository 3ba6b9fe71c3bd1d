"""Helpers shared by the benchmarks: fixed threads, machine facts, medians, JSON results with provenance."""

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from lyricgen.provenance import narrowed, provenance

RESULTS = Path(__file__).parent / "results"
# The code as this benchmark starts and imports it: what its figures measure, whatever changes meanwhile.
STARTED = provenance(["."])


def machine() -> dict:
    """What the numbers were measured on."""
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "mkl": torch.backends.mkl.is_available(),
    }


def median_rate(work: Callable[[], int], windows: int = 5, warmup: int = 1) -> float:
    """Median over `windows` calls of units/second, where `work()` returns the units it processed."""
    for _ in range(warmup):
        work()
    rates = []
    for _ in range(windows):
        start = time.perf_counter()
        units = work()
        rates.append(units / (time.perf_counter() - start))
    return statistics.median(rates)


def write_result(name: str, result: dict, measures: tuple[str, ...]) -> Path:
    """results/<name>.json: `result` with the machine's threads and libraries and its provenance (commit,
    CPU, command, and `measures`: the paths of the code the numbers depend on, for benchmarks/stale.py)."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    record = {"provenance": narrowed(STARTED, measures), "machine": machine(), **result}
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path
