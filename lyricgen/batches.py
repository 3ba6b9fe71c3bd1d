"""The exact batch of any step of a run, as text: `python -m lyricgen.batches <run dir> 9972 11075`.

A run's batch at step s depends only on its corpus, seed and s (lyricgen.data.RandomWindows), so the
windows behind a loss spike can be read back long after the run, without having recorded them.
"""

import argparse
from pathlib import Path

from lyricgen import one_line_errors
from lyricgen.config import load_run_config
from lyricgen.data.windows import LyricsDataModule, RandomWindows, window_texts


def windows_at(run_dir: str | Path, steps: list[int]) -> dict[int, list[str]]:
    """The text of each window (inputs and the last target) of the batches at `steps` (rank 0's)."""
    cfg = load_run_config(run_dir)
    data = LyricsDataModule(**cfg.data, seed=cfg.seed)
    data.setup("fit")
    windows = RandomWindows(data.train_ids, cfg.data.batch_size, cfg.data.seq_len, cfg.seed)
    batches = {step: windows.batch(step) for step in steps}
    return {step: window_texts(inputs, targets, data.vocab) for step, (inputs, targets, *_) in batches.items()}


@one_line_errors
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lyricgen.batches", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a run directory (it holds config.yaml)")
    parser.add_argument("steps", type=int, nargs="+", help="steps, counted from 0 as in TensorBoard")
    args = parser.parse_args(argv)
    for step, windows in windows_at(args.run_dir, args.steps).items():
        for index, text in enumerate(windows):
            print(f"=== step {step}, window {index} ===\n{text}")


if __name__ == "__main__":
    main()
