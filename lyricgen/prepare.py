"""Prepare a lyrics CSV: `python -m lyricgen.prepare data=lyrics_csv data.csv=~/data/train.csv`.

Cleans, deduplicates and splits the Kaggle train.csv (or any CSV of its schema) into the cached text a
training run reads (lyricgen.data.lyrics_csv does the work), and prints where it went and its counts. The
command line is checked before pandas is imported.
"""

import hydra
from omegaconf import DictConfig

from lyricgen import UserError, one_line_errors
from lyricgen.config import CONF_DIR, validate
from lyricgen.hydra.cli import run_checked


@hydra.main(version_base=None, config_path=str(CONF_DIR), config_name="prepare")
@one_line_errors
def run(cfg: DictConfig) -> None:
    """The Hydra task: prepare the CSV, print where and its counts."""
    if cfg.data.source != "lyrics_csv":
        raise UserError("prepare works on a lyrics CSV: add data=lyrics_csv data.csv=/path/to/train.csv")
    validate(cfg)
    from lyricgen.data.lyrics_csv import options_from_config, prepare  # pandas: once the command line has passed

    options = options_from_config(cfg.data, cfg.data.val_fraction, cfg.data.hygiene, cfg.data.test_fraction)
    out = prepare(cfg.data.csv, options, cfg.data.prepared_dir)
    print(f"prepared: {out}")
    print((out / "stats.json").read_text(), end="")


def main() -> None:
    """`python -m lyricgen.prepare` and `lyricgen-prepare`: the command line checked, then the preparation."""
    run_checked("prepare", run)


if __name__ == "__main__":
    main()
