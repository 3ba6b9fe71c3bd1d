"""Where a measured figure comes from, written into every results file: the commit and whether the code it
measures had uncommitted changes, the date, the machine (CPU model, cores, the instruction sets that decide
its speed), torch's version and the exact command. `python -m lyricgen.stale` reads them back and lists the
results whose code changed since.

A results file names the paths of the code it measures (`measures`): a later commit touching one of them
makes its figures stale.
"""

import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the checkout lyricgen runs from (its git repository)
INSTRUCTION_SETS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "asimd", "sve", "bf16")
NATIVE_BF16 = ("avx512_bf16", "amx_bf16", "bf16")  # x86's and Arm's bf16 arithmetic: what bf16 presets need on a CPU


def git(*args: str) -> str:
    """A git command's output in the checkout, or "" where there is no git or no repository."""
    try:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.rstrip("\n")  # porcelain lines begin with a space that must stay


def cpu() -> tuple[str, list[str]]:
    """The CPU's model name and which of INSTRUCTION_SETS it has (from /proc/cpuinfo where there is one)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine(), []
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    return fields.get("model name", platform.machine()), [name for name in INSTRUCTION_SETS if name in flags]


def command_line() -> str:
    """The command as typed: `python -m lyricgen.reproduce ...` or `python benchmarks/x.py ...`."""
    return shlex.join(["python", *sys.orig_argv[1:]])


def narrowed(record: dict, measures: Sequence[str]) -> dict:
    """A record taken of the whole checkout (at a program's start, say) for the code one result measures."""
    dirty = [line for line in record["dirty"] if line[3:].startswith(tuple(measures))]
    return record | {"dirty": dirty, "measures": list(measures)}


def provenance(measures: Sequence[str], command: str | None = None) -> dict:
    """The record a results file carries. `measures`: the paths (relative to the checkout) of the code
    its figures depend on; uncommitted changes to them are listed under `dirty`."""
    model, instruction_sets = cpu()
    return {
        "commit": git("rev-parse", "HEAD") or "unknown",
        "dirty": git("status", "--porcelain", "--", *measures).splitlines(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu": model,
        "instruction_sets": instruction_sets,
        "cores": os.cpu_count(),
        "torch": metadata.version("torch"),
        "command": command or command_line(),
        "measures": list(measures),
    }
