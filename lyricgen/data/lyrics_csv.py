"""Lyrics CSV -> clean, deduplicated train/validation/test text files with counts: the paper's data step,
at full scale (`python -m lyricgen.prepare` is its command).

Streams the Kaggle *Multi-Lingual Lyrics for Genre Classification* train.csv in chunks (bounded memory),
keeps the configured genres and languages, cleans the lyrics, drops duplicate songs and holds out songs by a
hash of their artist and title (song_side), so filtering, dedup or new songs never move another song across
the split. The result is cached by input and options: training on the same CSV with the same options
reuses it.
"""

import dataclasses
import hashlib
import json
import shutil
import tempfile
import time
import unicodedata
import warnings
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from lyricgen import UserError
from lyricgen.atomic import publish_dir
from lyricgen.config import CONF_DIR
from lyricgen.data import hygiene
from lyricgen.data.dedup import SongIndex, normalised_words
from lyricgen.options import typed_line_breaks

EXPECTED_COLUMNS = ["Artist", "Song", "Genre", "Language", "Lyrics"]
REQUIRED_COLUMNS = ["Genre", "Language", "Lyrics"]
CHUNK_ROWS = 10_000  # rows parsed at a time: memory stays bounded whatever the file's size
PREPARED_VERSION = 5  # bump when cleaning or splitting changes, so old caches are not reused

# Typographic characters that have a plain-ASCII spelling (NFKD alone would drop them).
_TYPOGRAPHY = str.maketrans(
    {
        **dict.fromkeys("\u2018\u2019\u201a\u2032", "'"),  # curly single quotes, prime
        **dict.fromkeys("\u201c\u201d\u201e\u2033", '"'),  # curly double quotes, double prime
        **dict.fromkeys("\u2013\u2014", "-"),  # en and em dashes
        **dict.fromkeys("\u2028\u2029", "\n"),  # line and paragraph separators
        "\u00a0": " ",  # no-break space
        "\u2026": "...",  # ellipsis
    }
)


@dataclass(frozen=True)
class PrepareOptions:
    """What preparing a CSV depends on: conf/data/lyrics_csv.yaml's keys and the shared data keys
    (their defaults and meanings are there; options_from_config reads them)."""

    genres: tuple[str, ...]  # kept genres, spelled as in the dataset
    languages: tuple[str, ...]  # kept languages, spelled as in the dataset
    ascii: str  # strip (the paper's) | transliterate | keep
    separator: str  # written between songs
    val_fraction: float  # share of songs held out for validation (by song_side)
    test_fraction: float  # share held out for a test split
    hygiene: bool  # drop tablature and chord-chart lines (lyricgen.data.hygiene)
    dedup: bool  # keep one copy of exact and near-duplicate songs (lyricgen.data.dedup)


SPLITS = ("train", "val", "test")


def song_key(artist: object, title: object, lyrics: str) -> str:
    """What identifies a song across versions of a corpus: its artist and title, or its normalised words
    where the CSV names neither (cleaning and hygiene change the text, never the name)."""
    if isinstance(artist, str) and isinstance(title, str) and (artist.strip() or title.strip()):
        return f"{artist.strip().lower()}\t{title.strip().lower()}"
    return " ".join(normalised_words(lyrics))


def song_side(key: str, val_fraction: float, test_fraction: float) -> str:
    """The split a song goes to, from a stable hash of its key alone: a point in [0, 1) below val_fraction
    is validation, the next test_fraction is test. No other song, and no filtering, can move it."""
    point = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") / 2**64
    if point < val_fraction:
        return "val"
    return "test" if point < val_fraction + test_fraction else "train"


def split_fingerprint(keys: list[str]) -> str:
    """A short hash of a split's song keys, in any order: equal fingerprints, equal held-out songs."""
    return hashlib.blake2b("\n".join(sorted(keys)).encode(), digest_size=6).hexdigest()


def transliterate(text: str) -> str:
    """Curly quotes to straight, é to e, … to ...; whatever has no ASCII spelling is dropped."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_TYPOGRAPHY))
    return decomposed.encode("ascii", "ignore").decode("ascii")


def clean_lyrics(lyrics: pd.Series, ascii_mode: str) -> pd.Series:
    text = lyrics.str.replace("\r\n", "\n", regex=False).str.replace("\r", "\n", regex=False)
    if ascii_mode == "strip":
        text = text.map(lambda song: song.encode("ascii", "ignore").decode("ascii"))
    elif ascii_mode == "transliterate":
        text = text.map(transliterate)
    return text.str.strip()


def file_digest(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with path.open("rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def cache_dir(csv: Path, options: PrepareOptions, prepared_root: Path) -> Path:
    """Where the prepared files of this input and these options live. The input is identified by its
    path, size and modification time (hashing hundreds of MB at every training start would be slow); the
    content hash is recorded in the stats."""
    stat = csv.stat()
    key = json.dumps([PREPARED_VERSION, str(csv.resolve()), stat.st_size, stat.st_mtime_ns, asdict(options)])
    return prepared_root / f"{csv.stem}-{hashlib.blake2b(key.encode(), digest_size=6).hexdigest()}"


def check_columns(csv: Path) -> None:
    try:
        header = pd.read_csv(csv, nrows=0)
    except UnicodeDecodeError:
        raise UserError(f"{csv} is not a UTF-8 CSV file (give data.csv the Kaggle train.csv)") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise UserError(f"{csv} is not a readable CSV file ({str(err).strip()})") from None
    found = [str(column) for column in header.columns]
    missing = [column for column in REQUIRED_COLUMNS if column not in found]
    if missing:
        raise UserError(
            f"{csv} lacks columns {missing}: found {found}, expected {EXPECTED_COLUMNS} "
            "(the Kaggle train.csv; its test.csv has no Language column)"
        )


def read_chunks(csv: Path, malformed: Counter) -> Iterator[pd.DataFrame]:
    """The CSV in chunks of rows; rows with too many fields are skipped and counted in malformed["rows"]."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", pd.errors.ParserWarning)
        try:
            reader = pd.read_csv(csv, chunksize=CHUNK_ROWS, dtype=str, on_bad_lines="warn")
            for chunk in reader:
                malformed["rows"] += sum(str(w.message).count("Skipping line") for w in caught)
                caught.clear()
                yield chunk
        except UnicodeDecodeError:
            raise UserError(f"{csv} is not a UTF-8 CSV file (give data.csv the Kaggle train.csv)") from None
        except pd.errors.ParserError as err:
            raise UserError(f"{csv} could not be parsed as CSV: {str(err).strip()}") from None


class SongWriter:
    """Appends songs to an open text file with the separator between them, and each song's genre, language
    and length to <split>.songs.tsv beside it (a song's length counts the separator before it: the labels
    of a genre-conditioned model give the separator to the song it opens)."""

    def __init__(self, path: Path, separator: str):
        self.file = path.open("w", encoding="utf-8", newline="\n")
        self.index = path.with_suffix(".songs.tsv").open("w", encoding="utf-8", newline="\n")
        self.separator, self.songs = separator, 0

    def write(self, songs: list[str], genres: list[str], languages: list[str]) -> None:
        if not songs:
            return
        if self.songs:
            self.file.write(self.separator)
        self.file.write(self.separator.join(songs))
        lengths = [len(song) + (len(self.separator) if self.songs or i else 0) for i, song in enumerate(songs)]
        rows = zip(genres, languages, lengths, strict=True)
        self.index.writelines(f"{genre}\t{language}\t{length}\n" for genre, language, length in rows)
        self.songs += len(songs)

    def close(self) -> None:
        self.file.close()
        self.index.close()


def most_common(values: Counter) -> str:
    """The 20 most common values, quoted and escaped: a value with a line break keeps the error on one line."""
    return ", ".join(repr(name) for name, _ in values.most_common(20))


def no_songs_error(csv: Path, options: PrepareOptions, stats: "PrepareStats") -> UserError:
    dropped = stats.dropped
    if stats.rows_read == dropped["genre"]:
        present = most_common(stats.genres_seen)
        return UserError(f"no rows of {csv} have a genre in {list(options.genres)}; genres present: {present}")
    if stats.rows_read == dropped["genre"] + dropped["language"]:
        present = most_common(stats.languages_seen_in_genres)
        return UserError(
            f"no rows of {csv} with genres {list(options.genres)} have a language in {list(options.languages)}; "
            f"their languages: {present}"
        )
    return UserError(f"no songs left in {csv}: every kept row has empty lyrics after cleaning ({stats.counts()})")


def split_of_each(
    songs: list[str], keys: list[str], index: SongIndex, options: PrepareOptions, found: Counter
) -> list[str | None]:
    """Each song's split, or None for a duplicate to drop. A song new to the corpus goes where its key's
    hash says (song_side); a duplicate of an earlier song is dropped (options.dedup) or kept in its
    original's split, so that no song is ever on both sides. `found` counts the duplicates by kind."""
    splits: list[str | None] = []
    for key, fingerprint in zip(keys, index.fingerprints(songs), strict=True):
        original, kind = index.match(fingerprint)
        if original is None:
            split = song_side(key, options.val_fraction, options.test_fraction)
            index.add(fingerprint, split)
        else:
            found[kind] += 1
            split = None if options.dedup else index.splits[original]
        splits.append(split)
    return splits


@dataclass
class PrepareStats:
    """What a prepare pass counts as the CSV's chunks stream by; counts() is the layout of its stats.json."""

    rows_read: int = 0
    rows_kept: int = 0
    dropped: Counter = field(default_factory=lambda: Counter(genre=0, language=0, empty_lyrics=0))
    chars_before_cleaning: int = 0
    chars_after_cleaning: int = 0
    genres_seen: Counter = field(default_factory=Counter)
    languages_seen_in_genres: Counter = field(default_factory=Counter)
    distinct: set[str] = field(default_factory=set)
    held_out_keys: dict[str, list[str]] = field(default_factory=lambda: {"val": [], "test": []})  # the fingerprint's
    malformed: Counter = field(default_factory=Counter)
    removed: hygiene.Removed = field(default_factory=hygiene.Removed)
    duplicates: Counter = field(default_factory=Counter)

    def filtered(self, chunk: pd.DataFrame, options: PrepareOptions) -> pd.DataFrame:
        """The chunk's rows of the asked genres and languages that have lyrics, counting what is dropped."""
        self.rows_read += len(chunk)
        self.genres_seen.update(chunk["Genre"].dropna())
        in_genre = chunk[chunk["Genre"].isin(options.genres)]
        self.languages_seen_in_genres.update(in_genre["Language"].dropna())
        kept = in_genre[in_genre["Language"].isin(options.languages)]
        with_lyrics = kept.dropna(subset=["Lyrics"])
        dropped = {"genre": len(chunk) - len(in_genre), "language": len(in_genre) - len(kept)}
        self.dropped.update(**dropped, empty_lyrics=len(kept) - len(with_lyrics))
        return with_lyrics

    def cleaned(self, rows: pd.DataFrame, songs: list[str]) -> pd.DataFrame:
        """`rows` with their cleaned `songs`, the empty ones dropped and counted."""
        cleaned = rows.assign(Lyrics=pd.Series(songs, index=rows.index, dtype=object))
        cleaned = cleaned[cleaned["Lyrics"].str.strip() != ""]
        self.dropped.update(empty_lyrics=len(rows) - len(cleaned))
        self.chars_before_cleaning += int(rows["Lyrics"].str.len().sum())
        self.chars_after_cleaning += int(cleaned["Lyrics"].str.len().sum())
        return cleaned

    def counts(self, hygiene_on: bool = True, dedup: bool = True) -> dict:
        return {
            "rows_read": self.rows_read,
            "rows_kept": self.rows_kept,
            "rows_dropped": dict(self.dropped),
            "malformed_rows_skipped": self.malformed["rows"],
            "chars_before_cleaning": self.chars_before_cleaning,
            "chars_after_cleaning": self.chars_after_cleaning,
            "hygiene_removed": self.removed.as_dict() if hygiene_on else "off",
            "duplicates": {"exact": self.duplicates["exact"], "near": self.duplicates["near"], "removed": dedup},
        }


def write_prepared(csv: Path, options: PrepareOptions, out: Path) -> dict:
    """Stream `csv` into out/train.txt, val.txt and test.txt and return the counts."""
    started = time.perf_counter()
    stats, index = PrepareStats(), SongIndex()
    writers = {split: SongWriter(out / f"{split}.txt", options.separator) for split in SPLITS}
    try:
        for chunk in read_chunks(csv, stats.malformed):
            with_lyrics = stats.filtered(chunk, options)
            songs = clean_lyrics(with_lyrics["Lyrics"], options.ascii).tolist()
            if options.hygiene:
                songs, removed_here = hygiene.clean_each(songs)
                stats.removed.add(removed_here)
            rows = stats.cleaned(with_lyrics, songs)
            artists, titles = (rows.get(column, [None] * len(rows)) for column in ("Artist", "Song"))
            keys = [song_key(*row) for row in zip(artists, titles, rows["Lyrics"], strict=True)]
            splits = split_of_each(rows["Lyrics"].tolist(), keys, index, options, stats.duplicates)
            rows = rows.assign(split=splits, key=keys)
            rows = rows[rows["split"].notna()]
            stats.distinct.update(*map(set, rows["Lyrics"]))
            for split, writer in writers.items():
                chosen = rows[rows["split"] == split]
                writer.write(chosen["Lyrics"].tolist(), chosen["Genre"].tolist(), chosen["Language"].tolist())
                if split in stats.held_out_keys:
                    stats.held_out_keys[split] += chosen["key"].tolist()
            stats.rows_kept += len(rows)
    finally:
        for writer in writers.values():
            writer.close()
    if not stats.rows_kept:
        raise no_songs_error(csv, options, stats)
    seconds = time.perf_counter() - started
    return stats.counts(options.hygiene, options.dedup) | {
        "songs": stats.rows_kept,
        **{f"{split}_songs": writer.songs for split, writer in writers.items()},
        "split_fingerprint": {split: split_fingerprint(keys) for split, keys in stats.held_out_keys.items()},
        "distinct_chars": len(stats.distinct),
        "input": str(csv),
        "input_blake2b": file_digest(csv),
        "options": asdict(options),
        "seconds": round(seconds, 3),
        "mb_per_s": round(csv.stat().st_size / 1e6 / seconds, 1),
    }


def prepare(csv: str | Path, options: PrepareOptions, prepared_root: str | Path = "outputs/prepared") -> Path:
    """The directory holding train.txt, val.txt, test.txt and stats.json for this CSV and options, made if needed.

    Written into a temporary directory and renamed into place: an interrupted run never leaves a
    half-written cache that a later run would trust.
    """
    csv = Path(csv).expanduser()
    if not csv.is_file():
        raise UserError(f"lyrics CSV not found: {csv} (set data.csv to the Kaggle train.csv)")
    target = cache_dir(csv, options, Path(prepared_root))
    if (target / "stats.json").is_file():
        return target
    check_columns(csv)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        stats = write_prepared(csv, options, work)
        (work / "stats.json").write_text(json.dumps(stats, indent=2) + "\n")
        publish_dir(work, target, done="stats.json")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def options_from_config(data: Mapping, val_fraction: float, hygiene: bool, test_fraction: float) -> PrepareOptions:
    """PrepareOptions from the data config (data=lyrics_csv)."""
    return PrepareOptions(
        genres=tuple(data["genres"]),
        languages=tuple(data["languages"]),
        ascii=data["ascii"],
        separator=typed_line_breaks(data["separator"]),
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        hygiene=hygiene,
        dedup=data["dedup"],
    )


def default_options(**changes: object) -> PrepareOptions:
    """conf/'s defaults (the shared data keys and conf/data/lyrics_csv.yaml) with `changes`: for preparing a
    CSV outside a run (benchmarks, tests)."""
    shared, own = (OmegaConf.load(path) for path in (CONF_DIR / "config.yaml", CONF_DIR / "data" / "lyrics_csv.yaml"))
    data = OmegaConf.merge(shared.data, own)
    return dataclasses.replace(
        options_from_config(data, data.val_fraction, data.hygiene, data.test_fraction), **changes
    )
