"""A public stand-in for the paper's data: the built-in songs as a Kaggle-schema CSV, with or without
synthetic guitar tablature pasted into a few training songs, the way scraped rock lyrics carry it.

`python -m lyricgen.standin out=outputs/standin` writes `songs_poems.csv` (clean) and `songs_poems_tab.csv`
(the same songs, ~1% of the characters tablature, in 3 songs). Both go through `lyricgen.prepare` like
the real train.csv (`data=lyrics_csv data.csv=...`), so they split into the same validation songs: the
tablature goes into training songs only, and both corpora are scored on identical validation text.
Everything is drawn from one seeded generator: the same arguments give byte-identical files.
"""

import random
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from lyricgen.atomic import write_atomically
from lyricgen.config import CONF_DIR
from lyricgen.data import corpus, lyrics_csv

STRINGS = "eBGDAE"  # a guitar's strings, high to low, as tablature labels its lines
TECHNIQUES = "hpb/\\~r"  # hammer-on, pull-off, bend, slides, vibrato, release
SECTION_NAMES = ("Intro", "Solo", "Riff", "Outro", "Main riff", "Bridge riff")


def tablature_block(rng: random.Random) -> str:
    """One six-line tablature block (`e|---5h7---|` ...): a few notes per beat on random strings."""
    beats = rng.randint(8, 22)
    columns = [[] for _ in STRINGS]
    for _ in range(beats):
        string = rng.randrange(len(STRINGS))
        fret = str(rng.randint(0, 22))
        if rng.random() < 0.25:
            fret += rng.choice(TECHNIQUES) + str(rng.randint(0, 22))
        for index, column in enumerate(columns):
            column.append(fret.ljust(len(fret) + 1, "-") if index == string else "-" * (len(fret) + 1))
    lines = [f"{name}|-{''.join(column)}|" for name, column in zip(STRINGS, columns, strict=True)]
    return "\n".join(lines)


def tablature_section(rng: random.Random) -> str:
    """A named section of one to three blocks, separated by blank lines, as tab sites lay them out."""
    blocks = [tablature_block(rng) for _ in range(rng.randint(1, 3))]
    return f"{rng.choice(SECTION_NAMES)}:\n" + "\n\n".join(blocks)


ARTIST = "fortune songs-poems"


def title(index: int) -> str:
    return f"piece {index}"


def training_songs(count: int, val_fraction: float, test_fraction: float) -> list[int]:
    """The indices of the stand-in's songs that preparing it puts into training (lyrics_csv.song_side)."""
    sides = (
        lyrics_csv.song_side(lyrics_csv.song_key(ARTIST, title(i), ""), val_fraction, test_fraction)
        for i in range(count)
    )
    return [i for i, side in enumerate(sides) if side == "train"]


def inject_tablature(songs: list[str], fraction: float, num_songs: int, training: list[int], seed: int) -> list[str]:
    """`songs` with tablature sections inserted between the lines of `num_songs` of the `training` songs
    until tablature makes up `fraction` of all characters. Held-out songs are never touched."""
    rng = random.Random(seed)
    chosen = rng.sample(training, num_songs)
    target = fraction * sum(map(len, songs)) / (1 - fraction)
    sections: dict[int, list[str]] = {i: [] for i in chosen}
    added = 0
    while added < target:  # round robin: every chosen song carries some
        section = tablature_section(rng)
        sections[chosen[sum(map(len, sections.values())) % num_songs]].append(section)
        added += len(section) + 2
    result = list(songs)
    for index, inserts in sections.items():
        lines = songs[index].split("\n")
        for section in inserts:
            lines.insert(rng.randint(0, len(lines)), f"\n{section}\n")
        result[index] = "\n".join(lines)
    return result


def write_lyrics_csv(songs: list[str], path: Path) -> None:
    """Songs as rows of the Kaggle train.csv schema (all English rock), written atomically."""
    rows = [(ARTIST, title(i), "Rock", "en", song) for i, song in enumerate(songs)]
    table = pd.DataFrame(rows, columns=lyrics_csv.EXPECTED_COLUMNS)
    write_atomically(path, lambda partial: table.to_csv(partial, index=False))


def build(out_dir: str | Path, fraction: float = 0.01, num_songs: int = 3, seed: int = 0) -> dict[str, Path]:
    """Write the clean and the tablature CSVs into `out_dir` (kept if already there: their modification
    time keys the prepared cache) and return their paths by name."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    songs = corpus.builtin_songs_poems()
    data = OmegaConf.load(CONF_DIR / "config.yaml").data  # the split training will make
    training = training_songs(len(songs), data.val_fraction, data.test_fraction)
    paths = {"clean": out_dir / "songs_poems.csv", "tab": out_dir / "songs_poems_tab.csv"}
    if not paths["clean"].is_file():
        write_lyrics_csv(songs, paths["clean"])
    if not paths["tab"].is_file():
        write_lyrics_csv(inject_tablature(songs, fraction, num_songs, training, seed), paths["tab"])
    return paths
