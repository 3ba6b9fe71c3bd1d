"""The lyrics CSV step on fixtures that mirror the Kaggle train.csv schema."""

import json
import os

import pandas as pd
import pytest
from conftest import TINY, run_module

from lyricgen import UserError
from lyricgen.data.corpus import load_split
from lyricgen.data.lyrics_csv import EXPECTED_COLUMNS, default_options, prepare, song_key, song_side
from lyricgen.training.fit import fit_run

ROCK_EN = 40  # kept songs, "song 0" to "song 39" by "artist a"


def sides(artist: str, count: int, val_fraction: float = 0.05, test_fraction: float = 0.0) -> dict[str, list[int]]:
    """Which of the songs f"song {i}" by `artist` each split holds, by their names' hash."""
    found = {"train": [], "val": [], "test": []}
    for i in range(count):
        found[song_side(song_key(artist, f"song {i}", ""), val_fraction, test_fraction)].append(i)
    return found


HELD_OUT = sides("artist a", ROCK_EN)["val"]


def rock_song(i: int) -> str:
    return f'Verse {i}, "loud" and café\r\nwe\u2019re rockin\u2019 all night\r\n\r\nChorus {i}: yeah, yeah'


@pytest.fixture
def lyrics_csv(tmp_path):
    rows = [("artist a", f"song {i}", "Rock", "en", rock_song(i)) for i in range(ROCK_EN)]
    rows += [
        ("artist b", "pop song", "Pop", "en", "baby baby\noh"),
        ("artist c", "metal song", "Metal", "en", "scream"),
        ("artista", "canção", "Rock", "pt", "coração\nsaudade"),
        ("artist d", "no lyrics", "Rock", "en", None),
        ("artist e", "only accents", "Rock", "en", "日本語"),  # empty once non-ASCII is stripped
        ("artist f", "missing genre", None, "en", "words"),
    ]
    path = tmp_path / "train.csv"
    pd.DataFrame(rows, columns=EXPECTED_COLUMNS).to_csv(path, index=False)
    with path.open("a") as file:
        file.write('artist g,broken,Rock,en,"lyrics",extra,fields\n')  # malformed: too many fields
    return path


def stats_of(prepared):
    return json.loads((prepared / "stats.json").read_text())


def test_paper_defaults_keep_english_rock_as_clean_ascii(lyrics_csv, tmp_path):
    prepared = prepare(lyrics_csv, default_options(), tmp_path / "prepared")
    stats = stats_of(prepared)
    assert stats["rows_read"] == ROCK_EN + 6
    assert stats["rows_kept"] == stats["songs"] == ROCK_EN
    assert stats["rows_dropped"] == {"genre": 3, "language": 1, "empty_lyrics": 2}
    assert stats["malformed_rows_skipped"] == 1
    assert (stats["train_songs"], stats["val_songs"]) == (ROCK_EN - len(HELD_OUT), len(HELD_OUT)) and HELD_OUT
    assert stats["chars_after_cleaning"] < stats["chars_before_cleaning"]
    train_text = (prepared / "train.txt").read_text()
    val_text = (prepared / "val.txt").read_text()
    assert train_text.isascii() and "\r" not in train_text
    assert 'Verse 0, "loud" and caf\nwere rockin all night\n\nChorus 0: yeah, yeah' in train_text
    # Whole songs are held out, the ones their names' hash holds out, and no line of them is in training.
    assert val_text.count("Verse ") == len(HELD_OUT) and all(f"Verse {i}," in val_text for i in HELD_OUT)
    assert not any(f"Verse {i}," in train_text or f"Chorus {i}:" in train_text for i in HELD_OUT)
    assert stats["test_songs"] == 0 and (prepared / "test.txt").read_text() == ""


def test_a_test_split_holds_out_other_whole_songs(lyrics_csv, tmp_path):
    prepared = prepare(lyrics_csv, default_options(test_fraction=0.1), tmp_path / "prepared")
    stats = stats_of(prepared)
    expected = sides("artist a", ROCK_EN, test_fraction=0.1)
    assert expected["val"] == HELD_OUT and len(expected["test"]) >= 2
    assert [stats[f"{split}_songs"] for split in ("train", "val", "test")] == [len(expected[s]) for s in expected]
    texts = {split: (prepared / f"{split}.txt").read_text() for split in expected}
    for split, songs in expected.items():
        for i in songs:
            assert [f"Verse {i}," in text for text in texts.values()] == [name == split for name in texts], (i, split)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("transliterate", "Verse 0, \"loud\" and cafe\nwe're rockin' all night"),
        ("keep", "and café\nwe\u2019re rockin\u2019"),
    ],
)
def test_ascii_modes(lyrics_csv, tmp_path, mode, expected):
    prepared = prepare(lyrics_csv, default_options(ascii=mode), tmp_path / "prepared")
    assert expected in (prepared / "train.txt").read_text()


def test_genre_and_language_lists_match_exactly(lyrics_csv, tmp_path):
    options = default_options(genres=("Rock", "Metal", "Pop"), languages=("en", "pt"), ascii="keep")
    stats = stats_of(prepare(lyrics_csv, options, tmp_path / "prepared"))
    assert stats["rows_kept"] == ROCK_EN + 3 + 1  # + Pop, Metal, Rock/pt; "日本語" is kept with ascii=keep
    with pytest.raises(UserError, match="no rows"):  # spelled as the dataset spells it, or nothing matches
        prepare(lyrics_csv, default_options(genres=("rock",)), tmp_path / "prepared")


def test_prepared_text_is_reused_until_input_or_options_change(lyrics_csv, tmp_path):
    root = tmp_path / "prepared"
    first = prepare(lyrics_csv, default_options(), root)
    written = (first / "train.txt").stat().st_mtime_ns
    assert prepare(lyrics_csv, default_options(), root) == first
    assert (first / "train.txt").stat().st_mtime_ns == written
    assert prepare(lyrics_csv, default_options(separator="\n<|song|>\n"), root) != first
    with lyrics_csv.open("a") as file:
        file.write("artist h,new song,Rock,en,new words\n")
    os.utime(lyrics_csv, ns=(written + 10**9, written + 10**9))
    changed = prepare(lyrics_csv, default_options(), root)
    assert changed != first and stats_of(changed)["rows_kept"] == ROCK_EN + 1
    assert not [path for path in root.iterdir() if path.name.startswith(".")]  # no temporary leftovers


@pytest.mark.parametrize(
    ("content", "options", "message"),
    [
        (None, {}, "lyrics CSV not found"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", {}, "not a UTF-8 CSV"),
        ("", {}, "not a readable CSV"),
        ("Song,Song year,Artist,Genre,Lyrics,Track_id\nx,2001,y,Rock,la,1\n", {}, "lacks columns ['Language']"),
        (None, {"genres": ("Polka",)}, "genres present: 'Rock', 'Pop', 'Metal'"),
        (None, {"languages": ("fr",)}, "their languages: 'en', 'pt'"),
    ],
)
def test_bad_input_is_one_clear_error(lyrics_csv, tmp_path, content, options, message):
    path = lyrics_csv
    if content is not None or not options:
        path = tmp_path / "other.csv"
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif content is not None:
            path.write_text(content)
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace("]", r"\]")):
        prepare(path, default_options(**options), tmp_path / "prepared")


def test_training_prepares_then_holds_out_whole_songs(compose_config, lyrics_csv, tmp_path):
    prepared_dir = tmp_path / "prepared"
    overrides = ["data=lyrics_csv", f"data.csv={lyrics_csv}", f"data.prepared_dir={prepared_dir}"]
    fit_run(compose_config(*TINY, *overrides, tiny=False), tmp_path / "run")
    train_text, val_text, *_ = load_split(
        "lyrics_csv",
        0.05,
        csv=str(lyrics_csv),
        genres=["Rock"],
        languages=["en"],
        ascii="strip",
        separator="\n\n",
        dedup=True,
        prepared_dir=str(prepared_dir),
    )
    prepared = [path for path in prepared_dir.iterdir() if not path.name.startswith("ids-")]  # encoded ids beside it
    assert len(prepared) == 1  # training's preparation was reused, not repeated
    assert f"Verse {HELD_OUT[0]}," in val_text and f"Verse {HELD_OUT[0]}," not in train_text
    fit_run(compose_config(*TINY, *overrides, "seed=1", tiny=False), tmp_path / "other seed")
    fit_run(compose_config(*TINY, *overrides, "data.val_fraction=0.2", tiny=False), tmp_path / "other split")
    records = [json.loads((tmp_path / run / "data.json").read_text()) for run in ("run", "other seed", "other split")]
    fingerprints = [record["val_fingerprint"] for record in records]
    assert fingerprints[0] == fingerprints[1] != fingerprints[2]  # the run records what it was scored on


def test_command_line_prepare(lyrics_csv, tmp_path):
    args = ["data=lyrics_csv", f"data.csv={lyrics_csv}", f"data.prepared_dir={tmp_path / 'prepared'}"]
    result = run_module("lyricgen.prepare", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert '"rows_kept": 40' in result.stdout and "prepared:" in result.stdout
    assert sorted(path.name for path in tmp_path.iterdir()) == ["prepared", "train.csv"]  # no run dir, no log

    result = run_module("lyricgen.prepare", "data=lyrics_csv", f"data.csv={tmp_path / 'nope.csv'}", cwd=tmp_path)
    assert result.returncode == 2
    assert "lyrics CSV not found" in result.stderr and "Traceback" not in result.stderr

    result = run_module("lyricgen.prepare", *args, "data.ascii=ebcdic", cwd=tmp_path)  # checked by the schema
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (
        result.stderr.strip()
        == "error: data.ascii: Invalid value 'ebcdic', expected one of [strip, transliterate, keep]"
    )


def test_a_genre_with_a_line_break_keeps_the_error_on_one_line(tmp_path):
    csv = tmp_path / "train.csv"
    csv.write_text('"Genre","Language","Lyrics"\n"\n0","en","words"\n')  # found by hypothesis
    with pytest.raises(UserError) as caught:
        prepare(csv, default_options(), tmp_path / "prepared")
    assert "\n" not in str(caught.value) and "'\\n0'" in str(caught.value)


def song_of_words(rng, verses: int = 4) -> str:
    """A song of random words: verses of four lines and a chorus after each, as lyrics repeat themselves."""
    words = ["love", "night", "road", "fire", "heart", "rain", "home", "dream", "light", "dark", "soul", "gold"]
    line = lambda: " ".join(rng.choice(words) for _ in range(6)).capitalize()  # noqa: E731
    chorus = "\n".join(line() for _ in range(2))
    return "\n\n".join("\n".join(line() for _ in range(4)) + "\n\n" + chorus for _ in range(verses))


def one_verse_changed(song: str, rng) -> str:
    verses = song.split("\n\n")
    verses[2] = "\n".join(f"Brand new words for line {i} of the verse" for i in range(4))
    return "\n\n".join(verses)


PLANTED = {  # how each planted copy differs from its original
    "exact": lambda song, rng: song,
    "re-cased": lambda song, rng: song.upper(),
    "re-punctuated": lambda song, rng: song.replace(" ", ", ", 3).replace("\n", "!\n"),
    "one verse changed": one_verse_changed,
}


@pytest.fixture
def csv_with_copies(tmp_path):
    """60 distinct rock songs, and for 4 of them (2 held out for validation, 2 in training) a copy of each
    kind placed 10 songs later, under another name."""
    import random

    rng = random.Random(0)
    songs = [song_of_words(rng) for _ in range(60)]
    copied = [22, 44, 19, 39]  # copies of the held-out 22 and 44 must never reach training
    assert {22, 44} <= set(sides("a", 60)["val"]) and not {19, 39} & set(sides("a", 60)["val"])
    rows = []
    for i, song in enumerate(songs):
        rows.append(("a", f"song {i}", "Rock", "en", song))
        if i - 10 in copied:
            for kind, make in PLANTED.items():
                rows.append(("b", f"copy of {i - 10} ({kind})", "Rock", "en", make(songs[i - 10], rng)))
    path = tmp_path / "train.csv"
    pd.DataFrame(rows, columns=EXPECTED_COLUMNS).to_csv(path, index=False)
    return path, songs, copied


def first_line_counts(prepared, line: str) -> dict[str, int]:
    return {split: (prepared / f"{split}.txt").read_text().lower().count(line.lower()) for split in ("train", "val")}


def test_exact_and_near_duplicates_are_removed_and_counted(csv_with_copies, tmp_path):
    path, songs, copied = csv_with_copies
    stats = stats_of(prepared := prepare(path, default_options(), tmp_path / "prepared"))
    assert stats["duplicates"] == {"exact": 3 * len(copied), "near": len(copied), "removed": True}
    assert stats["songs"] == 60 and stats["val_songs"] == len(sides("a", 60)["val"])
    for index in copied:
        first_line = songs[index].splitlines()[1]  # unchanged in every copy (the third verse is the one changed)
        counts = first_line_counts(prepared, first_line)
        assert sum(counts.values()) == 1, (index, counts)


def test_kept_duplicates_stay_on_their_originals_side(csv_with_copies, tmp_path):
    path, songs, copied = csv_with_copies
    stats = stats_of(prepared := prepare(path, default_options(dedup=False), tmp_path / "prepared"))
    assert stats["duplicates"] == {"exact": 3 * len(copied), "near": len(copied), "removed": False}
    assert stats["songs"] == 60 + 4 * len(copied)
    for index in copied:
        counts = first_line_counts(prepared, songs[index].splitlines()[1])
        held_out = index in sides("a", 60)["val"]
        assert counts == ({"train": 0, "val": 5} if held_out else {"train": 5, "val": 0}), (index, counts)


def test_different_songs_are_not_duplicates():
    import random

    from lyricgen.data.dedup import SongIndex

    rng, index = random.Random(1), SongIndex()
    songs = [song_of_words(rng) for _ in range(300)] + ["", "la la", "la la la la la la la la la"]
    for fingerprint in index.fingerprints(songs):
        original, kind = index.match(fingerprint)
        assert original is None, kind
        index.add(fingerprint, "train")
    assert [index.match(fingerprint)[1] for fingerprint in index.fingerprints(["LA LA!", songs[5]])] == ["exact"] * 2


def songs_by_split(prepared) -> dict[str, set[str]]:
    return {split: set((prepared / f"{split}.txt").read_text().split("\n\n\n")) - {""} for split in ("train", "val")}


def test_dropping_or_adding_songs_moves_no_other_song_across_the_split(tmp_path):
    """Each song's side follows from its own name: filtering changes only the songs it touches."""
    import random

    rng = random.Random(3)
    rows = [("a", f"song {i}", "Rock", "en", song_of_words(rng, verses=1)) for i in range(200)]
    options = default_options(separator="\n\n\n")

    def prepared_from(chosen: list, name: str):
        pd.DataFrame(chosen, columns=EXPECTED_COLUMNS).to_csv(tmp_path / f"{name}.csv", index=False)
        return prepare(tmp_path / f"{name}.csv", options, tmp_path / "prepared")

    every = prepared_from(rows, "every")
    dropped = prepared_from([row for i, row in enumerate(rows) if i % 7], "fewer")  # every 7th song filtered out
    grown = prepared_from([*rows, ("z", "new song", "Rock", "en", "brand new words")], "more")
    kept = {row[4] for i, row in enumerate(rows) if i % 7}
    for split, songs in songs_by_split(every).items():
        assert songs & kept == songs_by_split(dropped)[split], split
        assert songs <= songs_by_split(grown)[split], split
    fingerprints = [stats_of(path)["split_fingerprint"]["val"] for path in (every, dropped)]
    held_out_dropped = any(i % 7 == 0 for i in sides("a", 200)["val"])
    assert (fingerprints[0] != fingerprints[1]) == held_out_dropped and len(fingerprints[0]) == 12
