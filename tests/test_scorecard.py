"""The lyrics scorecard counts what it says on hand-made songs whose words, rhymes and repeats are known, and
`python -m lyricgen.score` scores a run's samples (or a file) beside its held-out songs."""

import json

import pytest
from conftest import run_module

from lyricgen.quality.scorecard import TrainingSpans, pieces_of, rhymes, score, stanzas, wasserstein

SONG = """I walk the lonely night
Under the silver light
My heart is full of fire
And all I want is you

I walk the lonely night
Under the silver light
Blorf zanthy quib"""


def test_a_hand_made_song_scores_what_it_holds():
    card = vars(score([SONG]))
    assert stanzas(SONG)[1] == ["I walk the lonely night", "Under the silver light", "Blorf zanthy quib"]
    assert card["real_words"] == pytest.approx(30 / 33, abs=1e-4)  # blorf, zanthy and quib are no words
    assert card["rhyme_share"] == pytest.approx(2 / 5)  # light/night twice; fire, you, quib rhyme with nothing
    assert card["repeated_lines"] == pytest.approx(4 / 7)  # the first two lines come back: a chorus
    assert card["lines_per_stanza"] == 3.5 and card["pieces"] == 1
    assert card["distinct_2"] == pytest.approx(24 / 32)  # 33 words, 32 pairs; the repeated lines' 8 repeat


def test_rhymes_by_sound_and_by_spelling_never_a_word_with_itself():
    assert rhymes("night", "light") and rhymes("fire", "higher") and rhymes("through", "blue")
    assert not rhymes("night", "night") and not rhymes("love", "move")  # eye rhymes differ in sound
    assert rhymes("blorf", "smorf")  # unknown to CMUdict: by spelling from the last vowel on


def test_copied_text_and_line_lengths_are_measured():
    training = TrainingSpans("I walk the lonely night\nUnder the silver light\n")
    copied = score([SONG], training).copied  # both copies of the first two lines, each with its line break
    assert copied == pytest.approx(2 * len("I walk the lonely night\nUnder the silver light\n") / len(SONG))
    assert score(["la la la\nla"], training).as_dict()["copied"] == 0
    assert wasserstein([10, 20], [10, 20]) == 0 and wasserstein([10, 10], [30, 30]) == 20
    assert pieces_of("a\nbb\nccc\ndddd\n", 6, 5) == ["a\nbb", "ccc", "dddd"]


@pytest.mark.slow
def test_the_command_scores_a_runs_samples_and_a_file_beside_its_held_out_songs(compose_config, tmp_path):
    from lyricgen.training.fit import fit_run

    trained_run = tmp_path / "run"
    fit_run(compose_config(), trained_run)  # its corpus at hand: the held-out songs are scored beside the samples
    result = run_module(
        "lyricgen.score", f"ckpt={trained_run}", "samples=3", "length=80", "json=card.json", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    cards = json.loads((tmp_path / "card.json").read_text())
    assert cards["scored"]["pieces"] == 3 and cards["held_out"]["pieces"] >= 1
    assert "| real_words |" in result.stdout and 0 <= cards["scored"]["real_words"] <= 1
    (tmp_path / "mine.txt").write_text(SONG + "\n\n" + SONG)
    mine = run_module("lyricgen.score", f"ckpt={trained_run}", "file=mine.txt", "length=400", "samples=2", cwd=tmp_path)
    assert mine.returncode == 0 and "| repeated_lines |" in mine.stdout, mine.stderr
    bad = run_module("lyricgen.score", f"ckpt={trained_run}", "length=10", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.startswith("error: samples must be >= 1 and length >= 50")


@pytest.mark.slow
def test_a_conditioned_models_labels_are_judged_and_samples_take_real_songs_forms(compose_config, tmp_path):
    from lyricgen.training.fit import fit_run

    files = {"rock": "oh baby baby\nrock and roll all night\n\n" * 80, "folk": "la la la la\nyeah yeah yeah\n\n" * 80}
    for label, text in files.items():
        (tmp_path / f"{label}.txt").write_text(text)
    labelled = "data.files={" + ", ".join(f"{label}: {tmp_path / label}.txt" for label in files) + "}"
    trained_run = tmp_path / "run"
    fit_run(compose_config(labelled, "model.condition=source", "data.val_fraction=0.2"), trained_run)
    args = [f"ckpt={trained_run}", "genre=rock", "form=real", "samples=2", "length=80", "json=card.json"]
    result = run_module("lyricgen.score", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    cards = json.loads((tmp_path / "card.json").read_text())
    assert set(cards["judge"]) == {"rock", "folk"}  # each label's samples and held-out songs, judged
    assert cards["judge"]["rock"]["held_out"] == 1 and cards["judge"]["folk"]["held_out"] == 1  # they differ
    assert all(0 <= shares["samples"] <= 1 for shares in cards["judge"].values())
    assert cards["scored"]["lines_per_stanza"] == 2  # in the held-out pieces' form: stanzas of two lines
