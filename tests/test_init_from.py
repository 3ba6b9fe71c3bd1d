"""init_from: a new run starts from another run's weights (fine-tuning), on text with other characters."""

import pytest
import torch
from conftest import curve

from lyricgen import UserError
from lyricgen.nn.charrnn import CharRNN
from lyricgen.nn.checkpoints import vocabulary_axes, warm_start
from lyricgen.training.fit import fit_run


@pytest.mark.parametrize("input_mode", ["onehot", "embedding"])
def test_rows_are_copied_by_character_and_new_characters_keep_fresh_rows(trained_run, input_mode):
    old = CharRNN(5, cell="gru", hidden_size=8, input=input_mode)
    path = trained_run.parent / f"old-{input_mode}.ckpt"
    hyper = {"vocab": "abcde", "cell": "gru", "hidden_size": 8, "input": input_mode}
    torch.save({"hyper_parameters": hyper, "state_dict": {f"model.{k}": v for k, v in old.state_dict().items()}}, path)
    torch.manual_seed(1)
    new = CharRNN(4, cell="gru", hidden_size=8, input=input_mode, dropout=0.5)  # dropout may differ
    fresh = {name: tensor.clone() for name, tensor in new.state_dict().items()}
    assert warm_start(new, "xdba", {"cell": "gru", "hidden_size": 8, "input": input_mode}, path) == "x"
    for name, axis in vocabulary_axes(new).items():
        got, had = new.state_dict()[name], old.state_dict()[name]
        for new_row, old_row in ((1, 3), (2, 1), (3, 0)):  # d, b, a
            assert torch.equal(got.select(axis, new_row), had.select(axis, old_row))
        assert torch.equal(got.select(axis, 0), fresh[name].select(axis, 0))  # x: not in the checkpoint
    assert torch.equal(new.rnn.weight_hh_l0, old.rnn.weight_hh_l0)


def test_a_fine_tuned_run_starts_where_the_checkpoint_left_off(trained_run, compose_config, tmp_path):
    text = tmp_path / "louder.txt"
    text.write_text("OH BABY BABY!\noh baby baby\nrock and roll all night\nla la la la\nyeah yeah yeah\n\n" * 40)
    data = [f"data.path={text}", "trainer.max_steps=3", "model.hidden_size=16"]
    fit_run(compose_config(*data), tmp_path / "scratch")
    fit_run(compose_config(*data, f"init_from={trained_run}"), tmp_path / "tuned")
    scratch, tuned = curve(tmp_path / "scratch"), curve(tmp_path / "tuned")
    assert [step for step, _ in tuned] == [0, 1, 2]  # a new run: its own steps, a fresh optimiser
    assert tuned[0][1] < scratch[0][1] - 0.5  # it knows the lower-case lyrics already


def test_another_network_is_refused_in_one_line(trained_run, compose_config, tmp_path):
    with pytest.raises(UserError, match=r"cell=lstm \(this run: gru\)"):
        fit_run(compose_config("model=gru", "model.hidden_size=16", f"init_from={trained_run}"), tmp_path / "a")
    with pytest.raises(UserError, match=r"hidden_size=16 \(this run: 32\)"):
        fit_run(compose_config("model.hidden_size=32", f"init_from={trained_run}"), tmp_path / "b")
    with pytest.raises(UserError, match="checkpoint not found"):
        fit_run(compose_config(f"init_from={tmp_path / 'nowhere'}"), tmp_path / "c")
