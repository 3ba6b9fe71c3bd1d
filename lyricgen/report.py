"""A finished sweep -> results table and loss-curve plots: `python -m lyricgen.report outputs/multirun/<time>`.

Reads the TensorBoard events of every run under the directory and writes report.md, results.csv and PNG
plots next to them.
"""

import argparse
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lyricgen import UserError

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt

BLOCK = 50  # steps averaged into one point of a curve: batch-1 losses are too noisy to read one by one
SPIKE_JUMP = 0.5  # nats above the median of the preceding blocks that make a spike
SPIKE_HISTORY = 5  # preceding blocks that define "normal"
NOT_SHOWN = ("experiment=", "hydra.", "threads=", "trainer.enable_progress_bar=")  # overrides that change no result


def block_means(values: np.ndarray, block: int = BLOCK) -> np.ndarray:
    """Means of consecutive blocks of `block` values (a shorter last block included)."""
    values = np.asarray(values, dtype=float)
    return np.array([values[i : i + block].mean() for i in range(0, len(values), block)])


def count_spikes(losses: np.ndarray, block: int = BLOCK, jump: float = SPIKE_JUMP, history: int = SPIKE_HISTORY) -> int:
    """Loss spikes: block means more than `jump` nats above the median of the `history` blocks before them.
    A spike that lasts several blocks counts once."""
    losses = np.asarray(losses, dtype=float)
    means = block_means(losses[np.isfinite(losses)], block)
    spikes, in_spike = 0, False
    for i in range(history, len(means)):
        is_spike = bool(means[i] > np.median(means[i - history : i]) + jump)
        spikes += is_spike and not in_spike
        in_spike = is_spike
    return spikes


def has_diverged(losses: np.ndarray, marked: bool) -> bool:
    """A run diverged if its guard marked it or any logged loss is non-finite."""
    return marked or not bool(np.isfinite(np.asarray(losses, dtype=float)).all())


@dataclass
class RunResult:
    run: str
    experiment: str
    overrides: str
    final_train_loss: float  # mean of the last BLOCK steps
    val_loss: float
    val_bpc: float
    steps: int
    wall_s: float
    chars_per_s: float
    spikes: int
    max_grad_norm: float
    diverged: bool
    sample: str


def run_dirs(root: Path) -> list[Path]:
    """Every directory under `root` (itself included) that holds TensorBoard event files."""
    return sorted({path.parent for path in root.rglob("events.out.tfevents.*")})


def hydra_choices(run: Path) -> tuple[str, str]:
    """(experiment, the command line's overrides) from the run's .hydra files."""
    hydra_file, overrides_file = run / ".hydra" / "hydra.yaml", run / ".hydra" / "overrides.yaml"
    experiment = "-"
    if hydra_file.is_file():
        experiment = yaml.safe_load(hydra_file.read_text())["hydra"]["runtime"]["choices"].get("experiment") or "-"
    overrides = yaml.safe_load(overrides_file.read_text()) if overrides_file.is_file() else []
    shown = [item for item in overrides or [] if not item.startswith(NOT_SHOWN)]
    return experiment, " ".join(shown)


def read_run(run: Path, root: Path) -> tuple[RunResult, np.ndarray, np.ndarray]:
    """The run's result row, and its train/loss curve (steps, values)."""
    events = EventAccumulator(str(run), size_guidance={"scalars": 0, "tensors": 0}).Reload()
    tags = set(events.Tags()["scalars"])

    def series(tag: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        points = events.Scalars(tag) if tag in tags else []
        return tuple(np.array([getattr(p, field) for p in points]) for field in ("step", "value", "wall_time"))

    steps, losses, times = series("train/loss")
    _, val_losses, _ = series("val/loss")
    _, grad_norms, _ = series("train/grad_norm")
    _, speeds, _ = series("perf/chars_per_s")
    samples = events.Tensors("sample/text_summary") if "sample/text_summary" in events.Tags()["tensors"] else []
    sample = samples[-1].tensor_proto.string_val[0].decode() if samples else ""
    experiment, overrides = hydra_choices(run)
    val_loss = float(val_losses[-1]) if len(val_losses) else math.nan
    result = RunResult(
        run=str(run.relative_to(root)) if run != root else ".",
        experiment=experiment,
        overrides=overrides,
        final_train_loss=float(block_means(losses)[-1]) if len(losses) else math.nan,
        val_loss=val_loss,
        val_bpc=val_loss / math.log(2),
        steps=int(steps.max()) + 1 if len(steps) else 0,
        wall_s=float(times[-1] - times[0]) if len(times) else 0.0,
        chars_per_s=float(np.median(speeds)) if len(speeds) else math.nan,
        spikes=count_spikes(losses),
        max_grad_norm=float(np.nanmax(grad_norms)) if len(grad_norms) else math.nan,
        diverged=has_diverged(losses, "train/diverged" in tags),
        sample=sample.replace("\n    ", "\n").strip()[:200],  # the logged sample is indented as Markdown code
    )
    return result, steps, losses


def plot_curves(curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str, path: Path) -> None:
    figure, axes = plt.subplots(figsize=(8, 4.5))
    for label, (steps, losses) in curves.items():
        axes.plot(block_means(steps), block_means(losses), label=label, linewidth=1.2)
    axes.set(title=title, xlabel="iteration", ylabel=f"train loss (nats/char, mean of {BLOCK})")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def markdown_table(table: pd.DataFrame) -> str:
    shown = table.drop(columns=["sample"]).round(3)
    lines = ["| " + " | ".join(shown.columns) + " |", "|" + "---|" * len(shown.columns)]
    lines += ["| " + " | ".join(str(value) for value in row) + " |" for row in shown.itertuples(index=False)]
    return "\n".join(lines)


def write_report(root: Path) -> Path:
    """Write results.csv, report.md and loss_*.png into `root`; return the report's path."""
    if not root.is_dir():
        raise UserError(f"no such directory: {root} (give the sweep's directory, e.g. outputs/multirun/<time>)")
    runs = run_dirs(root)
    if not runs:
        raise UserError(f"no runs under {root}: it holds no TensorBoard event files")
    rows, curves = [], {}
    for run in runs:
        result, steps, losses = read_run(run, root)
        rows.append(asdict(result))
        label = f"{result.experiment} {result.overrides}" if result.experiment != "-" else result.run
        curves.setdefault(result.experiment, {})[label] = (steps, losses)
    table = pd.DataFrame(rows)
    table.to_csv(root / "results.csv", index=False)
    plots = []
    for experiment, runs_curves in curves.items():
        plots.append(f"loss_{experiment}.png")
        plot_curves(runs_curves, f"experiment {experiment}", root / plots[-1])
    overlay = {label: curve for group in curves.values() for label, curve in group.items()}
    plot_curves(overlay, "all runs", root / "loss_all.png")
    samples = "\n".join(f"**{row['run']}**\n\n```\n{row['sample']}\n```\n" for row in rows)
    images = "\n".join(f"![{name}]({name})" for name in ["loss_all.png", *plots])
    report = root / "report.md"
    report.write_text(
        f"# Results: {root}\n\n{markdown_table(table)}\n\n"
        f"spikes: {BLOCK}-step mean train loss more than {SPIKE_JUMP} nats above the median of the "
        f"{SPIKE_HISTORY} blocks before it.\n\n{images}\n\n## Samples\n\n{samples}"
    )
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lyricgen.report", description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path, help="a sweep or run directory, e.g. outputs/multirun/<time>")
    args = parser.parse_args(argv)
    try:
        report = write_report(args.directory)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    print(f"wrote {report}, {report.parent / 'results.csv'} and the loss_*.png plots")
    print(pd.read_csv(report.parent / "results.csv").drop(columns=["sample"]).to_string(index=False))


if __name__ == "__main__":
    main()
