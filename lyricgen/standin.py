"""Write the public stand-in for the paper's data: `python -m lyricgen.standin outputs/standin`
(lyricgen.data.standin builds it: the built-in songs as a Kaggle-schema CSV, clean and with tablature)."""

import argparse
from pathlib import Path

from lyricgen import one_line_errors
from lyricgen.data.standin import build


@one_line_errors
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lyricgen.standin", description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, help="where songs_poems.csv and songs_poems_tab.csv go")
    parser.add_argument("--fraction", type=float, default=0.01, help="share of all characters that is tablature")
    parser.add_argument("--songs", type=int, default=3, help="training songs that carry it")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for name, path in build(args.out_dir, args.fraction, args.songs, args.seed).items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
