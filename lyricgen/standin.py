"""Write the public stand-in for the paper's data: `python -m lyricgen.standin out=outputs/standin`
(lyricgen.data.standin builds it: the built-in songs as a Kaggle-schema CSV, clean and with tablature)."""

import sys
from dataclasses import dataclass

from lyricgen import one_line_errors
from lyricgen.options import help_text, option, parsed, required, wants_help

SUMMARY = "the built-in songs as a Kaggle-schema lyrics CSV, clean and with synthetic tablature"


@dataclass
class StandinConfig:
    out: str = required("where songs_poems.csv and songs_poems_tab.csv go")
    fraction: float = option(0.01, "share of all characters that is tablature")
    songs: int = option(3, "training songs that carry it")
    seed: int = option(0, "where the tablature goes")


@one_line_errors
def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if wants_help(argv):
        print(help_text(StandinConfig, "standin", SUMMARY))
        return
    cfg = parsed(StandinConfig, argv, raw=("out",))
    from lyricgen.data.standin import build  # pandas: once the command line is sound

    for name, path in build(cfg.out, cfg.fraction, cfg.songs, cfg.seed).items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
