"""Finished runs -> tables, plots and spike episodes: `python -m lyricgen.report dir=outputs/multirun/<time>`.

Reads the TensorBoard events (and spikes.jsonl) of every run under the directory and writes report.md,
results.csv (a row per run), groups.csv (a row per group of seeds) and PNG plots next to them. Runs that
differ only by their seed form a group: `<name>/seed=<s>` (lyricgen.reproduce) or a sweep's
`...,seed=<s>` directories.
"""

import json
import math
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import yaml
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lyricgen import UserError, one_line_errors
from lyricgen.config import CONF_DIR
from lyricgen.data import hygiene
from lyricgen.options import help_text, parsed, required, wants_help
from lyricgen.rundir import RunDir, load_run_config
from lyricgen.training.spikes import BLOCK, HISTORY, GradNormal

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt

LOSS_JUMP = 0.3  # nats of a block mean above normal that start a loss spike; back within half of it ends it
GRAD_GAP = 500  # gradient spikes closer than this many steps are one episode
WINDOWS_SHOWN = 3  # spike episodes per run whose text the report shows
NOT_SHOWN = ("experiment=", "hydra.", "threads=", "trainer.enable_progress_bar=")  # overrides that change no result
SCORED = ("real_words", "rhyme_share", "repeated_lines", "line_chars_mean", "lines_per_stanza")  # scorecard columns
SEED_PART = re.compile(r"(^|,)seed=\d+(?=,|$)")


def block_means(values: np.ndarray, block: int = BLOCK) -> np.ndarray:
    """Means of consecutive blocks of `block` values (a shorter last block included)."""
    values = np.asarray(values, dtype=float)
    return np.array([values[i : i + block].mean() for i in range(0, len(values), block)])


@dataclass
class Episode:
    start: int  # first step
    end: int  # step after the last (the run's length if it never recovered)
    peak_step: int
    peak: float  # largest 50-step mean loss, or largest gradient norm
    recovered: bool


def loss_episodes(losses: np.ndarray, block: int = BLOCK, jump: float = LOSS_JUMP) -> list[Episode]:
    """Separate loss spikes: a block mean more than `jump` nats above the median of the last HISTORY
    normal blocks starts one; it lasts until a block comes back within jump/2 of that level. A run that
    never comes back has one last, unrecovered episode. Blocks inside an episode never become "normal",
    so a run that stays high is not forgiven by its own plateau."""
    means = block_means(np.asarray(losses, dtype=float)[np.isfinite(losses)], block)
    normal, episodes, i = list(means[:HISTORY]), [], HISTORY
    while i < len(means):
        level = float(np.median(normal[-HISTORY:]))
        if means[i] <= level + jump:
            normal.append(means[i])
            i += 1
            continue
        start = i
        while i < len(means) and means[i] > level + jump / 2:
            i += 1
        peak = start + int(np.argmax(means[start:i]))
        episodes.append(Episode(start * block, i * block, peak * block, float(means[peak]), i < len(means)))
    return episodes


def grad_episodes(grad_norms: np.ndarray, ratio: float, gap: int = GRAD_GAP) -> list[Episode]:
    """Gradient spikes as the run's forensics name them (lyricgen.training.spikes), replayed over the
    logged norms; spikes closer than `gap` steps form one episode."""
    norms = np.asarray(grad_norms, dtype=float)
    normal, spikes = GradNormal(), []
    for step, norm in enumerate(norms.tolist()):
        if normal.is_spike(norm, ratio):
            spikes.append(step)
        normal.add(norm)
    episodes: list[Episode] = []
    for step in spikes:
        if episodes and step - episodes[-1].end < gap:
            episodes[-1].end = step + 1
        else:
            episodes.append(Episode(step, step + 1, step, 0.0, True))
    for episode in episodes:
        episode.peak_step = episode.start + int(np.argmax(norms[episode.start : episode.end]))
        episode.peak = float(norms[episode.peak_step])
    return episodes


def has_diverged(losses: np.ndarray, marked: bool) -> bool:
    """A run diverged if its guard marked it or any logged loss is non-finite."""
    return marked or not bool(np.isfinite(np.asarray(losses, dtype=float)).all())


@dataclass
class RunResult:
    run: str
    group: str
    experiment: str
    overrides: str
    final_train_loss: float  # mean of the last BLOCK steps
    val_loss: float
    val_bpc: float
    val_bpc_by_label: str  # a conditioned model's val/bpc/<label>: "label bpc, ..." ("" for others)
    steps: int
    wall_s: float
    chars_per_s: float
    loss_spikes: int
    unrecovered: bool  # its last loss spike never came back
    grad_spikes: int
    grad_spikes_on_tablature: int  # episodes whose peak step's batch holds a line of guitar tablature
    max_grad_norm: float
    diverged: bool
    real_words: float  # the lyrics scorecard of its last validation's samples (samples.json; mean over labels)
    rhyme_share: float
    repeated_lines: float
    line_chars_mean: float
    lines_per_stanza: float
    sample: str


def run_dirs(root: Path) -> list[Path]:
    """Every directory under `root` (itself included) that holds TensorBoard event files."""
    return sorted({path.parent for path in root.rglob("events.out.tfevents.*")})


def group_of(run: str) -> str:
    """The run's name without its seed: `best/seed=2` -> `best`, `lr=0.1,seed=0` -> `lr=0.1`."""
    parent, _, leaf = run.rpartition("/")
    leaf = SEED_PART.sub("", leaf).strip(",")
    return "/".join(part for part in (parent, leaf) if part) or "."


def hydra_choices(run: Path) -> tuple[str, str]:
    """(experiment, the command line's overrides) from the run's .hydra files."""
    hydra_file, overrides_file = RunDir(run).hydra / "hydra.yaml", RunDir(run).hydra / "overrides.yaml"
    experiment = "-"
    if hydra_file.is_file():
        experiment = yaml.safe_load(hydra_file.read_text())["hydra"]["runtime"]["choices"].get("experiment") or "-"
    overrides = yaml.safe_load(overrides_file.read_text()) if overrides_file.is_file() else []
    shown = [item for item in overrides or [] if not item.startswith(NOT_SHOWN)]
    return experiment, " ".join(shown)


def read_run(run: Path, root: Path) -> tuple[RunResult, dict]:
    """The run's result row, and its curves (steps, losses, grad norms) and spike episodes."""
    events = EventAccumulator(str(run), size_guidance={"scalars": 0, "tensors": 0}).Reload()
    tags = set(events.Tags()["scalars"])

    def series(tag: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        points = events.Scalars(tag) if tag in tags else []
        return tuple(np.array([getattr(p, field) for p in points]) for field in ("step", "value", "wall_time"))

    steps, losses, times = series("train/loss")
    val_steps, val_losses, _ = series("val/loss")
    _, grad_norms, _ = series("train/grad_norm")
    _, speeds, _ = series("perf/chars_per_s")
    sample_tags = sorted(tag for tag in events.Tags()["tensors"] if tag.startswith("sample"))  # sample/<label>/...
    samples = events.Tensors(sample_tags[0]) if sample_tags else []
    sample = samples[-1].tensor_proto.string_val[0].decode() if samples else ""
    experiment, overrides = hydra_choices(run)
    val_loss = float(val_losses[-1]) if len(val_losses) else math.nan
    by_loss, by_grad = loss_episodes(losses), grad_episodes(grad_norms, grad_ratio(run))
    name = str(run.relative_to(root)) if run != root else "."
    result = RunResult(
        run=name,
        group=group_of(name),
        experiment=experiment,
        overrides=overrides,
        final_train_loss=float(block_means(losses)[-1]) if len(losses) else math.nan,
        val_loss=val_loss,
        val_bpc=val_loss / math.log(2),
        val_bpc_by_label=", ".join(
            f"{tag.removeprefix('val/bpc/')} {series(tag)[1][-1]:.4f}"
            for tag in sorted(tags)
            if tag.startswith("val/bpc/")
        ),
        steps=int(steps.max()) + 1 if len(steps) else 0,
        wall_s=float(times[-1] - times[0]) if len(times) else 0.0,
        chars_per_s=float(np.median(speeds)) if len(speeds) else math.nan,
        loss_spikes=len(by_loss),
        unrecovered=bool(by_loss and not by_loss[-1].recovered),
        grad_spikes=len(by_grad),
        grad_spikes_on_tablature=0,  # filled in from the batches' text (write_report)
        max_grad_norm=float(np.nanmax(grad_norms)) if len(grad_norms) else math.nan,
        diverged=has_diverged(losses, "train/diverged" in tags),
        **sample_scores(run),
        sample=sample.replace("\n    ", "\n").strip()[:200],  # the logged sample is indented as Markdown code
    )
    return result, {"steps": steps, "losses": losses, "val": (val_steps, val_losses), "by_grad": by_grad}


def grad_ratio(run: Path) -> float:
    """The run's own spikes.grad_ratio, so that the report names the steps its live forensics named (today's
    default for a directory of events without a saved config)."""
    config = load_run_config(run) if RunDir(run).config.is_file() else OmegaConf.load(CONF_DIR / "config.yaml")
    return float(config.spikes.grad_ratio)


def sample_scores(run: Path) -> dict[str, float]:
    """SCORED of the run's samples.json (its last validation's samples on the lyrics scorecard), averaged
    over a conditioned model's labels; NaN for a run that has none."""
    path = RunDir(run).samples
    cards = list(json.loads(path.read_text())["scorecards"].values()) if path.is_file() else []
    return {name: float(np.nanmean([card[name] for card in cards])) if cards else math.nan for name in SCORED}


def recorded_windows(run: Path, steps: list[int]) -> dict[int, list[str]]:
    """The text of the batches at `steps`: from spikes.jsonl where the run recorded them, else rebuilt
    from the run's config, seed and step (lyricgen.data.windows)."""
    recorded = {}
    spikes = RunDir(run).spikes
    if spikes.is_file():
        for line in spikes.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            recorded[entry["step"]] = entry["windows"]
    missing = [step for step in steps if step not in recorded]
    if missing:
        from lyricgen.data.windows import windows_at  # loads the corpus: only when the run did not record them

        recorded |= windows_at(run, missing)
    return {step: recorded[step] for step in steps}


def has_tablature(windows: list[str]) -> bool:
    return any(hygiene.is_tablature(line) for window in windows for line in window.splitlines())


def spike_section(result: RunResult, episodes: list[Episode], windows: dict[int, list[str]]) -> str:
    """Markdown: the run's largest gradient-spike episodes and the text of the batch at each peak."""
    largest = sorted(episodes, key=lambda episode: -episode.peak)[:WINDOWS_SHOWN]
    if not largest:
        return ""
    parts = [f"### {result.run}\n"]
    for episode in largest:
        text = "\n---\n".join(windows[episode.peak_step])
        parts.append(
            f"Steps {episode.start}-{episode.end - 1}: gradient norm {episode.peak:.3g} at step {episode.peak_step}; "
            f"its batch:\n\n```\n{text}\n```\n"
        )
    return "\n".join(parts)


def summarise_groups(table: pd.DataFrame) -> pd.DataFrame:
    """One row per group of seeds: mean, spread and extremes of what varies by seed."""
    rows = []
    for group, runs in table.groupby("group", sort=False):
        val = runs["val_loss"].dropna()
        rows.append(
            {
                "group": group,
                "seeds": len(runs),
                "val_loss_mean": val.mean(),
                "val_loss_sd": val.std(ddof=1) if len(val) > 1 else math.nan,  # one seed has no spread: "-" shown
                "val_loss_min": val.min(),
                "val_loss_max": val.max(),
                "runs_with_loss_spikes": int((runs["loss_spikes"] > 0).sum()),
                "loss_spikes_per_run": " ".join(map(str, runs["loss_spikes"])),
                "runs_with_grad_spikes": int((runs["grad_spikes"] > 0).sum()),
                "grad_spikes_on_tablature": f"{runs['grad_spikes_on_tablature'].sum()} of {runs['grad_spikes'].sum()}",
                "max_grad_norm_min": runs["max_grad_norm"].min(),
                "max_grad_norm_max": runs["max_grad_norm"].max(),
                "unrecovered": int(runs["unrecovered"].sum()),
                "diverged": int(runs["diverged"].sum()),
                "steps": int(runs["steps"].max()),
                **{f"{name}_{kind}": value for name in SCORED for kind, value in spread(runs[name]).items()},
            }
        )
    return pd.DataFrame(rows)


def spread(values: pd.Series) -> dict[str, float]:
    """Mean and standard deviation over seeds (NaN sd for one seed)."""
    values = values.dropna()
    return {"mean": values.mean(), "sd": values.std(ddof=1) if len(values) > 1 else math.nan}


def plot_curves(curves: dict[str, list[dict]], title: str, path: Path) -> None:
    """Every run's training curve (50-step means) beside its validation curve, one colour per group, so
    every seed shows."""
    figure, (train_axes, val_axes) = plt.subplots(1, 2, figsize=(12, 4.5))
    for colour, (label, runs) in enumerate(curves.items()):
        for index, curve in enumerate(runs):
            style = {"color": f"C{colour % 10}", "linewidth": 0.9, "alpha": 0.8}
            legend = f"{label} ({len(runs)} runs)" if index == 0 else None
            train_axes.plot(block_means(curve["steps"]), block_means(curve["losses"]), label=legend, **style)
            val_axes.plot(*curve["val"], marker=".", **style)
    train_axes.set(title=f"{title}: training", xlabel="iteration", ylabel=f"train loss (nats/char, mean of {BLOCK})")
    val_axes.set(title=f"{title}: validation", xlabel="iteration", ylabel="val loss (nats/char)")
    for axes in (train_axes, val_axes):
        axes.grid(alpha=0.3)
    train_axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def markdown_table(table: pd.DataFrame) -> str:
    shown = table.drop(columns=[column for column in ("sample",) if column in table]).round(3).astype(object)
    shown = shown.where(shown.notna(), "-")  # a one-seed group has no spread
    lines = ["| " + " | ".join(shown.columns) + " |", "|" + "---|" * len(shown.columns)]
    lines += ["| " + " | ".join(str(value) for value in row) + " |" for row in shown.itertuples(index=False)]
    return "\n".join(lines)


def plot_name(group: str) -> str:
    return "loss_" + re.sub(r"[^A-Za-z0-9_.=-]+", "_", group).strip("_") + ".png"


def write_report(root: Path) -> Path:
    """Write results.csv, groups.csv, report.md and loss_*.png into `root`; return the report's path."""
    if not root.is_dir():
        raise UserError(f"no such directory: {root} (give the sweep's directory, e.g. outputs/multirun/<time>)")
    runs = run_dirs(root)
    if not runs:
        raise UserError(f"no runs under {root}: it holds no TensorBoard event files")
    rows, curves, spike_texts = [], {}, []
    for run in runs:
        result, curve = read_run(run, root)
        windows = recorded_windows(run, [episode.peak_step for episode in curve["by_grad"]]) if curve["by_grad"] else {}
        result.grad_spikes_on_tablature = sum(has_tablature(text) for text in windows.values())
        rows.append(asdict(result))
        curves.setdefault(result.group, []).append(curve)
        spike_texts.append(spike_section(result, curve["by_grad"], windows))
    table = pd.DataFrame(rows)
    groups = summarise_groups(table)
    table.to_csv(root / "results.csv", index=False)
    groups.to_csv(root / "groups.csv", index=False)
    plots = [plot_name(group) for group in curves]
    for group, name in zip(curves, plots, strict=True):
        plot_curves({group: curves[group]}, f"{group}: every seed", root / name)
    plot_curves(curves, "all runs", root / "loss_all.png")
    spikes = "\n".join(text for text in spike_texts if text) or "No run had a gradient spike.\n"
    samples = "\n".join(f"**{row['run']}**\n\n```\n{row['sample']}\n```\n" for row in rows)
    images = "\n".join(f"![{name}]({name})" for name in ["loss_all.png", *plots])
    report = root / "report.md"
    report.write_text(
        f"# Results: {root}\n\n## Groups (runs that differ only by seed)\n\n{markdown_table(groups)}\n\n"
        f"## Runs\n\n{markdown_table(table)}\n\n"
        f"Loss spikes: separate episodes of a {BLOCK}-step mean train loss more than {LOSS_JUMP} nats above the "
        f"median of the {HISTORY} normal blocks before it, each lasting until the loss is back within half of "
        f"that; unrecovered: the last never came back. Gradient spikes: episodes of gradient norms (before "
        f"clipping) above the run's spikes.grad_ratio times the median of the {HISTORY * BLOCK} steps before, "
        f"gaps under "
        f"{GRAD_GAP} steps joined; on tablature: the batch at the episode's peak holds a line of tablature "
        f"(lyricgen.data.hygiene). Samples: the scorecard (lyricgen.quality.scorecard) of the samples each run "
        f"wrote at its last validation: real words (share of words in CMUdict), rhyme share (line ends rhyming "
        f"with one of the two before), repeated lines (lines recurring in their sample), characters a line and "
        f"lines a stanza.\n\n{images}\n\n## What set off the largest gradient spikes\n\n{spikes}\n"
        f"## Samples\n\n{samples}"
    )
    return report


@dataclass
class ReportConfig:
    dir: str = required("a sweep or run directory, e.g. outputs/multirun/<time>")


@one_line_errors
def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if wants_help(argv):
        print(help_text(ReportConfig, "report", "finished runs -> tables, plots and spike episodes"))
        return
    report = write_report(Path(parsed(ReportConfig, argv, raw=("dir",)).dir))
    print(f"wrote {report}, results.csv, groups.csv and the loss_*.png plots beside it")
    print(pd.read_csv(report.parent / "groups.csv").to_string(index=False, na_rep="-"))


if __name__ == "__main__":
    main()
