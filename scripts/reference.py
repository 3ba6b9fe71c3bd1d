"""docs/training.md's table of every group and key, written from conf/'s comments (what --help prints):
`make docs` writes it, `python scripts/reference.py --check` exits 1 where the page differs."""

import sys
from pathlib import Path

from lyricgen.hydra.cli import reference_markdown

PAGE = Path(__file__).resolve().parents[1] / "docs" / "training.md"
START, END = "<!-- reference: written by scripts/reference.py from conf/ -->", "<!-- /reference -->"


def written(page: str) -> str:
    before, rest = page.split(START, 1)
    return f"{before}{START}\n{reference_markdown()}{rest[rest.index(END) :]}"


if __name__ == "__main__":
    page = PAGE.read_text()
    if sys.argv[1:] == ["--check"]:
        sys.exit(0 if written(page) == page else "docs/training.md's reference differs from conf/: run make docs")
    PAGE.write_text(written(page))
