"""Checkpoints written by earlier versions still load, resume-free: a tiny one committed in
tests/fixtures/ (the only place a checkpoint may be committed) generates the text it generated then."""

from pathlib import Path

from lyricgen.nn import load_checkpoint
from lyricgen.training.generation import GenerateConfig, generate

FIXTURES = Path(__file__).parent / "fixtures"
# Written by commit 1eadffe: python -m lyricgen.train model=rnn model.hidden_size=8 data=text (toy lyrics)
# data.batch_size=4 data.seq_len=16 trainer.max_steps=4; and what its generate printed, prime=oh length=40 seed=3.
RNN8 = FIXTURES / "rnn8-1eadffe.ckpt"
RNN8_TEXT = "oh\nttll\ngr clnobhrdicaredkabntd  yyldh\nder"


def test_a_checkpoint_of_an_earlier_version_loads_and_generates_the_same_text():
    model, vocab = load_checkpoint(RNN8)
    assert (type(model.rnn).__name__, model.rnn.num_layers, model.rnn.hidden_size) == ("RNN", 1, 8)
    assert set("oh baby rock") <= set(vocab)
    (text,) = generate(GenerateConfig(ckpt=str(RNN8), prime="oh", length=40, seed=3))
    assert text == RNN8_TEXT
