"""Validation loss against wall-clock time on Tiny Shakespeare, for a time budget on this CPU.

Run: `python benchmarks/time_to_quality.py [minutes] [experiment]` (default: 10 minutes, the default model
with Shakespeare's split, i.e. experiment=shakespeare_cpu with a longer time limit). Needs
../shared/data/tinyshakespeare.txt. Writes results/time_to_quality.json and .png.
"""

import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib
from common import RESULTS, write_result
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parents[1]
NANOGPT_BABY_GPT = (3 * 60, 1.88)  # (seconds, val loss): nanoGPT's CPU "baby GPT" on Tiny Shakespeare


def main(minutes: float = 10, experiment: str = "shakespeare_cpu") -> None:
    with tempfile.TemporaryDirectory() as tmp:
        limit = f"00:00:{int(minutes):02d}:{int(minutes % 1 * 60):02d}"
        args = [f"experiment={experiment}", f"trainer.max_time={limit}", "trainer.enable_progress_bar=false"]
        command = [sys.executable, "-m", "lyricgen.train", *args, f"hydra.run.dir={tmp}/run"]
        subprocess.run(command, cwd=ROOT, check=True)
        events = EventAccumulator(f"{tmp}/run", size_guidance={"scalars": 0}).Reload()
        start = events.Scalars("train/loss")[0].wall_time
        curve = [(round(e.wall_time - start, 1), e.step + 1, round(e.value, 4)) for e in events.Scalars("val/loss")]
    seconds, _, losses = zip(*curve, strict=True)
    at_anchor = min((loss for second, _, loss in curve if second <= NANOGPT_BABY_GPT[0]), default=None)
    result = {"experiment": experiment, "minutes": minutes, "curve_seconds_steps_val_loss": curve}
    result |= {"best_val_loss": min(losses), "best_val_loss_within_3_min": at_anchor, "anchor": NANOGPT_BABY_GPT}
    write_result("time_to_quality", result)
    figure, axes = plt.subplots(figsize=(7, 4))
    axes.plot(seconds, losses, marker="o", markersize=3, label=f"lyricgen {experiment} (2 CPU cores)")
    axes.scatter(*NANOGPT_BABY_GPT, color="red", zorder=3, label="nanoGPT baby GPT, laptop CPU (published)")
    axes.set(xlabel="wall-clock seconds", ylabel="validation loss (nats/char)", title="Tiny Shakespeare")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(RESULTS / "time_to_quality.png", dpi=110)
    print(f"best val loss {min(losses)}; within 3 minutes {at_anchor} (anchor {NANOGPT_BABY_GPT[1]})")


if __name__ == "__main__":
    main(*(float(arg) if i == 0 else arg for i, arg in enumerate(sys.argv[1:])))
