"""Songs with a form: stanzas in order with their lines, the chorus sung again word for word, rhymes where
the scheme asks, from the CLI, the Python API and the playground; without a form, generation is unchanged."""

import itertools

import pytest
import torch
from conftest import error_line, run_module

from lyricgen import UserError
from lyricgen.nn import load_checkpoint
from lyricgen.nn.forms import WordEnding, parse_form, song_text
from lyricgen.quality.scorecard import Words, form_of, known_words, rhymes, rhyming_words, stanzas, words
from lyricgen.training.generation import GenerateConfig, generate

FORM = "verse:ABAB,chorus:AABB,verse:ABCB,chorus,bridge:none,chorus"


def last_words(stanza: list[str]) -> list[str]:
    return [(words(line) or [""])[-1] for line in stanza]


@pytest.fixture(scope="module")
def song(trained_run) -> str:
    model, vocab = load_checkpoint(trained_run / "checkpoints" / "best.ckpt")
    return song_text(model, vocab, FORM, seed=5)


def test_a_form_is_parsed_with_its_schemes_and_refused_in_one_line():
    verse, chorus, bridge = parse_form("verse:ABAB, chorus , bridge:none", rhyme="AABB", lines=3)
    assert (verse.scheme, chorus.scheme, bridge.scheme) == ("ABAB", "AABB", "...")
    assert chorus.repeated and not verse.repeated
    for form, wrong in [
        ("verse,", "'' is not a stanza"),
        ("verse:abab", "capital letter per line"),
        ("2nd", "not a stanza"),
    ]:
        with pytest.raises(UserError, match=wrong):
            parse_form(form)
    with pytest.raises(UserError, match="takes one scheme"):
        parse_form("chorus:AABB,chorus:ABAB")


def test_the_song_has_its_stanzas_lines_and_chorus(song):
    parts = stanzas(song)
    assert [len(part) for part in parts] == [4, 4, 4, 4, 4, 4]  # every stanza as many lines as its scheme
    assert parts[1] == parts[3] == parts[5]  # the chorus, sung again word for word
    assert parts[0] != parts[2]  # a verse is written anew
    assert song.strip("\n").count("\n\n") == 5  # stanzas parted by one blank line, as real songs are


def test_lines_rhyme_where_the_scheme_asks(song, trained_run):
    """A 60-step model writes gibberish, but its line ends are sampled among words that rhyme: every pair
    the scheme names rhymes, unless no rhyme of the first line's word is spelled with the model's letters."""
    _, vocab = load_checkpoint(trained_run / "checkpoints" / "best.ckpt")
    verse, chorus, second_verse, _, bridge, _ = (last_words(part) for part in stanzas(song))
    pairs = [(verse[0], verse[2]), (verse[1], verse[3]), (chorus[0], chorus[1]), (chorus[2], chorus[3])]
    pairs += [(second_verse[1], second_verse[3])]
    unspelled = [first for first, _ in pairs if not WordEnding(vocab, rhyming_words(first)).words.sorted]
    assert all(rhymes(first, second) or first in unspelled for first, second in pairs), pairs
    assert sum(rhymes(first, second) for first, second in pairs) >= 3  # most of them can be rhymed, and are
    assert not all(rhymes(first, second) for first, second in itertools.pairwise(bridge))  # none asked


def test_a_word_ending_leaves_only_spellings_of_its_words():
    vocab = "\n ,bghilnrtx"
    ending = WordEnding(vocab, Words(["light", "night", "bright"]))
    scores = torch.zeros(1, len(vocab))

    def open_after(text: str) -> str:
        kept = ending(scores, text)
        return "" if kept is None else "".join(vocab[i] for i in (kept[0] == 0).nonzero().flatten().tolist())

    assert open_after("") == "bln"  # first letters of the words only
    assert open_after("nigh") == "t"
    assert open_after("night") == "\n,"  # a whole word: the line may end, or take a mark first
    assert open_after("night,") == "\n"
    assert open_after("x") == ""  # no word begins so: nothing left (the line stays as it came)


def test_same_seed_same_song_and_free_text_unchanged(trained_run):
    cfg = GenerateConfig(ckpt=str(trained_run), form="verse,chorus,verse,chorus", seed=2)
    assert generate(cfg) == generate(cfg)
    assert generate(cfg) != generate(GenerateConfig(ckpt=str(trained_run), form=cfg.form, seed=3))
    model, vocab = load_checkpoint(trained_run / "checkpoints" / "best.ckpt")
    free = GenerateConfig(ckpt=str(trained_run), seed=2, length=80, with_memory=False)
    from lyricgen.nn.sampling import sample_text

    assert generate(free) == ["\n" + sample_text(model, vocab, length=80, seed=2)]


def test_lines_that_lead_a_rhyme_end_on_a_word_cmudict_knows(song):
    verse = last_words(stanzas(song)[0])
    assert verse[0] in known_words() and verse[1] in known_words()  # A and B: later lines rhyme with them


@pytest.mark.slow
def test_generate_writes_a_form_from_the_command_line(trained_run, tmp_path):
    result = run_module("lyricgen.generate", f"ckpt={trained_run}", "form=verse:AABB,chorus,verse,chorus", cwd=tmp_path)
    parts = stanzas(result.stdout)
    assert result.returncode == 0 and len(parts) == 4 and parts[1] == parts[3]
    bad = run_module("lyricgen.generate", f"ckpt={trained_run}", "form=verse:abab", cwd=tmp_path)
    assert "rhyme scheme 'abab' is invalid" in error_line(bad)
    many = run_module("lyricgen.generate", f"ckpt={trained_run}", "form=verse", "num_samples=2", cwd=tmp_path)
    assert "form= writes one song at a time" in error_line(many)


def test_a_real_songs_form_is_read_in_the_grammar_form_takes():
    song = "I walk the lonely night\nUnder the silver light\nMy heart is full of fire\nAnd all I want is you"
    chorus = "Oh baby baby\nrock and roll all night"
    verse = "My heart is full of fire\nI walk the lonely night\nUnder the silver light"
    form = form_of(f"{song}\n\n{chorus}\n\n{verse}\n\n{chorus}\n\nWe sing\nWe ring\n\n{verse}")
    assert form == "verse:AA..,chorus:..,refrain:.AA,chorus:..,verse:AA,refrain:.AA"  # each sung again, named
    assert [stanza.scheme for stanza in parse_form(form)] == ["AA..", "..", ".AA", "..", "AA", ".AA"]


def test_long_lines_wrap_at_their_next_space(trained_run):
    model, vocab = load_checkpoint(trained_run / "checkpoints" / "best.ckpt")
    for wrap in (8, 20):
        song = song_text(model, vocab, "verse:none,verse:none", seed=1, lines=6, wrap=wrap)
        spaces = [index for line in song.splitlines() for index, char in enumerate(line) if char == " "]
        assert spaces and max(spaces) < wrap  # no space once a line has `wrap` characters: it ended there
    with pytest.raises(UserError, match="wrap=-1 is invalid"):
        song_text(model, vocab, "verse", wrap=-1)
