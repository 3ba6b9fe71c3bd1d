"""Time to quality: validation loss against wall-clock seconds from process start, lyricgen against a small
causal transformer, on Tiny Shakespeare (the last 10% held out), and `make train` on the built-in corpus.

Run: `python benchmarks/time_to_quality.py [minutes ...]` (default: 2 5 10; `--make-train`: only `make train`).
For each budget it runs, one
after the other, `python -m lyricgen.train experiment=shakespeare_cpu` with the steps (and dropout and penalties)
that fit the budget and the reference transformer (references.py: nanoGPT's "baby GPT" and its optimiser and
schedule) with the iterations that fit it; then `python -m lyricgen.train` as `make train` runs it. Every clock starts
when the benchmark launches the process, so start-up counts. A run's result at a budget is its best
validation loss measured before the budget ran out. Needs ../shared/data/tinyshakespeare.txt. Writes
results/time_to_quality.{json,md,png} (the races) and results/make_train.{json,md}, each with its provenance.
"""

import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import matplotlib
from common import RESULTS, write_result
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parents[1]
SHAKESPEARE = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"
# Steps (lyricgen) and iterations (transformer) that fit each budget on this repository's 2-core CPU,
# start-up and evaluations included; each schedule decays over its own budget. Longer runs see the text
# more often and gain from more dropout; AWD-LSTM's activation penalties speed up every budget, at the
# strengths measured for each (docs/time-to-quality.md): lyricgen's steps (divisible by 5: validation every
# fifth) and overrides.
LYRICGEN_RUNS = {
    2: (800, ("model.dropout=0.05", "optim.activation_reg=0.5", "optim.temporal_activation_reg=0.25")),
    5: (2000, ("model.dropout=0.1", "optim.activation_reg=0.5", "optim.temporal_activation_reg=0.25")),
    10: (4100, ("model.dropout=0.25", "optim.activation_reg=2", "optim.temporal_activation_reg=1")),
}
TRANSFORMER_ITERS = {2: 2300, 5: 6400, 10: 11800}  # ~47 ms each with its evaluations, ~5 s to start
GOALS = {2: 1.50, 5: 1.45, 10: 1.42}  # val loss (nats/char) to reach within each budget (minutes)
MAKE_TRAIN_GOAL = (180.0, 2.50)  # `make train`: seconds, bits/char
# the code these numbers depend on (benchmarks/stale.py)
MEASURES = ("lyricgen", "conf", "benchmarks/time_to_quality.py")
Curve = list[tuple[float, int, float]]  # (seconds from process start, step, val loss)


def lyricgen_curve(args: list[str], run_dir: Path) -> tuple[Curve, str]:
    """Run `python -m lyricgen.train args` into run_dir: its val/loss points timed from process start, and
    what it printed."""
    start = time.time()
    command = [
        sys.executable,
        "-m",
        "lyricgen.train",
        *args,
        "trainer.enable_progress_bar=false",
        f"hydra.run.dir={run_dir}",
    ]
    printed = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0}).Reload()
    return [(round(e.wall_time - start, 1), e.step + 1, e.value) for e in events.Scalars("val/loss")], printed


def transformer_curve(iters: int) -> Curve:
    """The reference transformer's evaluations, timed from process start."""
    start = time.time()
    command = [sys.executable, "references.py", str(SHAKESPEARE), str(iters), str(max(iters // 5, 1))]
    lines = subprocess.run(command, cwd=Path(__file__).parent, check=True, capture_output=True, text=True).stdout
    points = [json.loads(line) for line in lines.splitlines()]
    return [(round(p["time"] - start, 1), p["step"], p["val_loss"]) for p in points]


def best_within(curves: list[Curve], seconds: float) -> float | None:
    """The best validation loss any of the curves measured within `seconds` from process start (None: none
    did): what the best of those configurations gives for that budget."""
    return min((loss for curve in curves for at, _, loss in curve if at <= seconds), default=None)


def race(minutes: int, run_dir: Path) -> dict:
    """Both systems' curves at one budget."""
    steps, overrides = LYRICGEN_RUNS[minutes]
    args = ["experiment=shakespeare_cpu", f"trainer.max_steps={steps}", f"trainer.val_check_interval={steps // 5}"]
    curves = {
        "lyricgen": lyricgen_curve([*args, *overrides], run_dir)[0],
        "transformer": transformer_curve(TRANSFORMER_ITERS[minutes]),
    }
    best = {name: best_within([curve], minutes * 60) for name, curve in curves.items()}
    print(f"{minutes} min: lyricgen {best['lyricgen']}, transformer {best['transformer']}", flush=True)
    return {"minutes": minutes, "curves": curves}


def make_train(run_dir: Path) -> dict:
    """`make train`'s command: seconds from process start to its end, its final bits/char (the network's
    with the n-gram memory mixed in, and alone) and what it printed (the summary and the sample)."""
    start = time.time()
    curve, printed = lyricgen_curve([], run_dir)
    seconds = round(time.time() - start, 1)
    network, with_memory = summary_bits(printed)
    return {
        "seconds": seconds,
        "bits_per_char": network if with_memory is None else with_memory,
        "network_bits_per_char": network,
        "val_loss_curve": curve,
        "printed": printed.strip(),
    }


def summary_bits(printed: str) -> tuple[float, float | None]:
    """The bits/char a run's summary printed: the network's, and with the n-gram memory (None without one)."""
    network, *with_memory = (float(bits) for bits in re.findall(r"([\d.]+) bits/char", printed.split("sample:")[0]))
    return network, with_memory[0] if with_memory else None


def best_by_minute(races: list[dict]) -> list[tuple[int, float | None, float | None]]:
    """(minute, lyricgen, transformer) for every whole minute up to the longest budget: each system's best
    validation loss within it, over all its runs (the best configuration for that budget)."""
    curves = {name: [r["curves"][name] for r in races] for name in ("lyricgen", "transformer")}
    longest = max(r["minutes"] for r in races)
    return [
        (m, best_within(curves["lyricgen"], m * 60), best_within(curves["transformer"], m * 60))
        for m in range(1, longest + 1)
    ]


def verdicts(by_minute: list[tuple[int, float | None, float | None]]) -> list[str]:
    """One line per goal of the time-to-quality race: met or MISSED, with the measured values."""
    lines = [
        f"{'met' if reached(ours, GOALS[minute]) else 'MISSED'}: <= {GOALS[minute]} within {minute} min ({ours})"
        for minute, ours, _ in by_minute
        if minute in GOALS
    ]
    behind = [f"{m} min: {ours} vs {theirs}" for m, ours, theirs in by_minute if not ahead(ours, theirs)]
    lines.append(
        f"MISSED: ahead of the transformer at {'; '.join(behind)}"
        if behind
        else "met: ahead of the transformer at every minute"
    )
    return lines


def make_train_verdict(train: dict) -> str:
    """`make train`'s goal: met or MISSED, with the measured values."""
    seconds, bits = MAKE_TRAIN_GOAL
    met = train["seconds"] <= seconds and train["bits_per_char"] <= bits
    alone = train["network_bits_per_char"]
    memory = f" with its n-gram memory, {alone} for the network alone," if alone != train["bits_per_char"] else ""
    return (
        f"{'met' if met else 'MISSED'}: make train <= {bits} bits/char within {seconds:.0f} s "
        f"({train['bits_per_char']} bits/char{memory} in {train['seconds']} s from process start)"
    )


def reached(loss: float | None, goal: float) -> bool:
    return loss is not None and loss <= goal


def ahead(ours: float | None, theirs: float | None) -> bool:
    return ours is not None and (theirs is None or ours < theirs)


def plot(races: list[dict], path: Path) -> None:
    figure, axes = plt.subplots(figsize=(8, 4.5))
    for number, result in enumerate(races, 1):
        shade = 0.3 + 0.7 * number / len(races)  # longer budgets darker
        for name, color in (("lyricgen", "tab:blue"), ("transformer", "tab:orange")):
            seconds, _, losses = zip(*result["curves"][name], strict=True)
            label = f"{name}, {result['minutes']}-min schedule"
            axes.plot(seconds, losses, marker="o", markersize=3, color=color, alpha=shade, label=label)
    for minutes, goal in GOALS.items():
        axes.scatter(minutes * 60, goal, marker="x", color="black", zorder=3)
    axes.set(xlabel="wall-clock seconds from process start", ylabel="validation loss (nats/char)", ylim=(1.35, 2.3))
    axes.set_title("Tiny Shakespeare on 2 CPU cores: lyricgen vs a baby-GPT transformer (x: goals)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def write_races(budgets: list[int], tmp: Path) -> None:
    """The races at these budgets: results/time_to_quality.{json,md,png}."""
    if not SHAKESPEARE.is_file():
        sys.exit(f"time_to_quality: {SHAKESPEARE} is missing (Tiny Shakespeare, beside the repository in shared/)")
    races = [race(minutes, tmp / f"shakespeare-{minutes}") for minutes in budgets]
    by_minute = best_by_minute(races)
    lines = verdicts(by_minute)
    write_result("time_to_quality", {"races": races, "best_by_minute": by_minute, "verdicts": lines}, MEASURES)
    table = ["| within (min) | lyricgen | transformer |", "|---|---|---|"]
    table += [f"| {minute} | {ours} | {theirs} |" for minute, ours, theirs in by_minute]
    intro = (
        "Best Tiny Shakespeare validation loss (nats/char) within each budget, clock from process start, over "
        f"each system's runs (budgets {budgets} min, each with its schedule fitted to it), this 2-core CPU"
    )
    text = [intro, "", *table, "", *(f"- {line}" for line in lines)]
    (RESULTS / "time_to_quality.md").write_text("\n".join(text) + "\n")
    plot(races, RESULTS / "time_to_quality.png")
    print("\n".join(lines))


def write_make_train(tmp: Path) -> None:
    """`make train` measured: results/make_train.{json,md}."""
    train = make_train(tmp / "make-train")
    line = make_train_verdict(train)
    write_result("make_train", {"make_train": train, "verdict": line}, MEASURES)
    (RESULTS / "make_train.md").write_text(f"- {line}\n\n```\n{train['printed']}\n```\n")
    print(line)


def main(budgets: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if budgets:
            write_races(budgets, Path(tmp))
        write_make_train(Path(tmp))


if __name__ == "__main__":
    # `--make-train`: measure `make train` alone (after a change of the default model)
    main([] if sys.argv[1:] == ["--make-train"] else [int(arg) for arg in sys.argv[1:]] or [2, 5, 10])
