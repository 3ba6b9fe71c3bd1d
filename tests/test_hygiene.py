"""Lyrics hygiene (tablature and chord charts out, lyrics kept) and the stand-in corpus that carries them."""

import json

import pandas as pd
import pytest
from conftest import run_module

from lyricgen.data import hygiene, lyrics_csv, standin
from lyricgen.data.lyrics_csv import default_options

REAL_TAB = """Solo:
e|-------------------------|-----------------|
B|-----15b17r15-13---------|-----------------|
G|-14-------------14-12----|---12h14p12------|
D|-------------------------|-----------14----|
A|-------------------------|-----------------|
E-------------------------|-----------------|
|---15--13-15-15b17b15r13-|"""
CHORDS = ["G   D   Em   C", "Am F C G", "Dsus4 D Cadd9"]
LYRICS_WITH_DASHES_AND_BARS = [
    "Rock - and - roll, all night",
    "A B C, easy as 1 2 3",
    "A B C",
    "| I'm on my way |",
    "----------",
    "- - - -",
    "Oh-oh-oh-oh, yeah",
    "2-4-6-8 motorway",
    "G",
    "Solo:",
    "I'm gonna C G A...",
]


def test_tablature_and_chord_lines_are_found_and_lyrics_are_kept():
    tab_lines = REAL_TAB.splitlines()[1:]
    assert [hygiene.kind_of(line) for line in tab_lines] == ["tablature"] * len(tab_lines)
    assert [hygiene.kind_of(line) for line in CHORDS] == ["chords"] * len(CHORDS)
    assert [hygiene.kind_of(line) for line in LYRICS_WITH_DASHES_AND_BARS] == [None] * len(LYRICS_WITH_DASHES_AND_BARS)


def test_clean_song_drops_the_lines_counts_them_and_folds_the_gap():
    song = "First verse line\n\n" + REAL_TAB + "\n\nG   D   Em   C\nSecond verse line"
    cleaned, removed = hygiene.clean_song(song)
    assert cleaned == "First verse line\n\nSolo:\n\nSecond verse line"
    assert removed.as_dict() == {
        "tablature": {"lines": 7, "chars": sum(len(line) + 1 for line in REAL_TAB.splitlines()[1:]), "songs": 1},
        "chords": {"lines": 1, "chars": len("G   D   Em   C") + 1, "songs": 1},
    }
    untouched = "\n".join(LYRICS_WITH_DASHES_AND_BARS)
    assert hygiene.clean_song(untouched)[0] == untouched


def test_the_public_songbooks_lose_nothing(shared_data):
    for path in shared_data.glob("*.txt"):
        lines = path.read_text(encoding="utf-8").splitlines()
        assert [line for line in lines if hygiene.kind_of(line)] == [], path.name


@pytest.fixture(scope="module")
def standin_csvs(tmp_path_factory):
    return standin.build(tmp_path_factory.mktemp("standin"))


def test_standin_injects_about_one_percent_tablature_into_three_training_songs(standin_csvs, tmp_path):
    clean, tab = (pd.read_csv(standin_csvs[name])["Lyrics"] for name in ("clean", "tab"))
    touched = [i for i in range(len(clean)) if clean[i] != tab[i]]
    assert len(touched) == 3 and set(touched) <= set(standin.training_songs(len(clean), 0.05, 0.0))
    share = 1 - clean.str.len().sum() / tab.str.len().sum()
    assert 0.009 < share < 0.013
    again = standin.build(tmp_path)  # another folder, the same bytes
    assert again["tab"].read_bytes() == standin_csvs["tab"].read_bytes()


def test_prepare_hygiene_removes_the_injected_tablature_and_counts_it(standin_csvs, tmp_path):
    paper = lyrics_csv.prepare(standin_csvs["tab"], default_options(hygiene=False), tmp_path)
    cleaned = lyrics_csv.prepare(standin_csvs["tab"], default_options(hygiene=True), tmp_path)
    clean = lyrics_csv.prepare(standin_csvs["clean"], default_options(hygiene=True), tmp_path)
    stats = json.loads((cleaned / "stats.json").read_text())
    assert stats["hygiene_removed"]["tablature"]["songs"] == 3 and stats["hygiene_removed"]["tablature"]["lines"] > 30
    assert json.loads((paper / "stats.json").read_text())["hygiene_removed"] == "off"
    assert any(hygiene.is_tablature(line) for line in (paper / "train.txt").read_text().splitlines())
    left = set((cleaned / "train.txt").read_text().splitlines()) - set((clean / "train.txt").read_text().splitlines())
    assert left <= {f"{name}:" for name in standin.SECTION_NAMES}  # only the section labels stay
    assert (cleaned / "val.txt").read_text() == (clean / "val.txt").read_text() == (paper / "val.txt").read_text()


@pytest.mark.slow
def test_text_files_get_the_same_cleaning(tmp_path):
    corpus_file = tmp_path / "lyrics.txt"
    corpus_file.write_text(("la la la\nrock on\n\n" + REAL_TAB + "\n\n") * 30)
    args = ["data=text", f"data.path={corpus_file}", "model=rnn", "model.hidden_size=8", "trainer.max_steps=2"]
    args += ["trainer.val_check_interval=2", "data.seq_len=16", f"hydra.run.dir={tmp_path / 'run'}"]
    result = run_module("lyricgen.train", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "hygiene: dropped 210 tablature lines" in result.stderr
    result = run_module(
        "lyricgen.train", *args, "data.hygiene=false", f"hydra.run.dir={tmp_path / 'run2'}", cwd=tmp_path
    )
    assert result.returncode == 0 and "hygiene" not in result.stderr
