"""The optimiser: learning-rate schedules (optim.schedule, optim.warmup_steps) as it sees them and as logged,
and its weight decay (optim.weight_decay, optim.decoupled_weight_decay)."""

import pytest
import torch
from conftest import curve

from lyricgen import UserError
from lyricgen.config import validate
from lyricgen.training.fit import adam_module, fit_run
from lyricgen.training.module import LyricLM, lr_factor


def test_warmup_rises_linearly_then_each_schedule_takes_over():
    assert [lr_factor("constant", 4, 100, step) for step in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    assert lr_factor("constant", 0, 100, 99) == 1.0
    assert lr_factor("cosine", 0, 100, 0) == 1.0
    assert lr_factor("cosine", 0, 100, 50) == pytest.approx(0.55)  # halfway between 1 and the final 0.1
    assert lr_factor("cosine", 0, 100, 100) == pytest.approx(0.1)
    assert [lr_factor("step", 0, 100, step) for step in (49, 50, 74, 75)] == pytest.approx(
        [1.0, 0.1**0.5, 0.1**0.5, 0.1]
    )
    assert [lr_factor("wsd", 0, 100, step) for step in (0, 50, 75, 99, 100)] == pytest.approx([1, 1, 0.5, 0.02, 0])
    assert lr_factor("cosine", 10, 110, 60) == pytest.approx(0.55)  # the decay spans the steps after warm-up


@pytest.mark.parametrize("schedule", ["cosine", "step", "wsd"])
def test_the_optimiser_follows_the_schedule_and_train_lr_logs_it(compose_config, tmp_path, schedule):
    cfg = compose_config(f"optim.schedule={schedule}", "optim.warmup_steps=2", "optim.lr=0.01", "trainer.max_steps=8")
    fit_run(cfg, tmp_path / "run")
    logged = curve(tmp_path / "run", "train/lr")
    expected = [(step, 0.01 * lr_factor(schedule, 2, 8, step)) for step in range(8)]
    assert [step for step, _ in logged] == [step for step, _ in expected]
    assert [lr for _, lr in logged] == pytest.approx([lr for _, lr in expected], rel=1e-6)
    assert len({round(lr, 9) for _, lr in logged}) > 2  # it moved


def test_the_papers_optimiser_keeps_the_rate_constant_and_the_default_decays_it(compose_config, tmp_path):
    fit_run(compose_config("optim=adam", "optim.lr=0.01"), tmp_path / "paper")
    logged = [lr for _, lr in curve(tmp_path / "paper", "train/lr")]
    assert len(logged) == 6 and logged == pytest.approx([0.01] * 6)
    fit_run(compose_config("optim.lr=0.01"), tmp_path / "default")  # optim=default: wsd decay
    logged = [lr for _, lr in curve(tmp_path / "default", "train/lr")]
    assert logged == pytest.approx([0.01 * lr_factor("wsd", 0, 6, step) for step in range(6)]) and logged[-1] < 0.01


def test_an_unknown_schedule_is_refused_in_one_line(compose_config):
    with pytest.raises(UserError, match=r"optim\.schedule"):
        validate(compose_config("optim.schedule=linear"))


@pytest.mark.parametrize("decoupled", [False, True])
def test_decoupled_weight_decay_shrinks_the_weights_by_lr_times_decay_and_l2_does_not(decoupled):
    module = adam_module("ab", {"hidden_size": 4}, lr=0.01, weight_decay=0.1, decoupled_weight_decay=decoupled)
    optimizer = module.configure_optimizers()
    before = [parameter.detach().clone() for parameter in module.parameters()]
    for parameter in module.parameters():
        parameter.grad = torch.zeros_like(parameter)  # only the decay moves the weights
    optimizer.step()
    pairs = zip(module.parameters(), before, strict=True)
    shrunk = all(torch.allclose(parameter, old * (1 - 0.01 * 0.1)) for parameter, old in pairs)
    assert shrunk == decoupled  # Adam's L2 term is rescaled by Adam into a step of ~lr, not a shrink


def penalty_of(module: LyricLM, ids: torch.Tensor) -> float:
    """What training_step adds to the cross-entropy for these windows (ids: inputs then targets)."""
    loss = module.training_step((ids[:, :-1], ids[:, 1:]), 0)
    return float(loss.detach() - module.step_loss)


@pytest.mark.parametrize("cell", ["lstm", "gru"])  # nn.LSTM, and the GRU's time-major CPU kernels
def test_activation_penalties_are_the_mean_squares_of_the_outputs_and_of_their_change(cell):
    torch.manual_seed(0)
    ids = torch.randint(0, 3, (2, 9))
    network = {"cell": cell, "hidden_size": 5, "dropout": 0.5}  # AR reads the dropped-out outputs, TAR the outputs
    plain = adam_module("abc", network, lr=0.01)
    assert penalty_of(plain, ids) == 0.0
    module = adam_module("abc", network, lr=0.01, activation_reg=2.0, temporal_activation_reg=3.0)
    module.load_state_dict(plain.state_dict())
    dropped = []  # what the decoder reads in the training step: the top layer's outputs after dropout
    module.model.decoder.register_forward_pre_hook(lambda decoder, args: dropped.append(args[0].detach()))
    penalty = penalty_of(module, ids)
    captured = []  # the top layer's outputs as nn.LSTM/nn.GRU compute them, batch first
    module.model.rnn.register_forward_hook(lambda rnn, args, result: captured.append(result[0].detach()))
    with torch.no_grad():
        module.model.rnn(module.model.encode_input(ids[:, :-1]))
    (output,), (dropped_output,) = captured, dropped
    expected = 2.0 * dropped_output.pow(2).mean() + 3.0 * (output[:, 1:] - output[:, :-1]).pow(2).mean()
    assert penalty == pytest.approx(float(expected), rel=1e-5)


def test_activation_penalties_change_the_updates_but_train_loss_logs_the_cross_entropy(compose_config, tmp_path):
    penalties = ("optim.activation_reg=2", "optim.temporal_activation_reg=1")
    fit_run(compose_config("trainer.max_steps=6"), tmp_path / "plain")
    fit_run(compose_config("trainer.max_steps=6", *penalties), tmp_path / "penalised")
    plain, penalised = curve(tmp_path / "plain"), curve(tmp_path / "penalised")
    assert plain[0] == penalised[0]  # the same weights and batch at the first step: the same cross-entropy
    assert plain[-1] != penalised[-1]  # the penalties moved the weights differently


def test_a_negative_activation_penalty_is_refused_in_one_line(compose_config):
    with pytest.raises(UserError, match=r"optim\.temporal_activation_reg"):
        validate(compose_config("optim.temporal_activation_reg=-1"))
