"""The CPU kernels must compute exactly what nn.RNN / nn.GRU compute, gradients included, and their compiled
loops exactly what their Python loops compute."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lyricgen.nn import compiled, kernels
from lyricgen.nn.charrnn import CharRNN
from lyricgen.nn.stacked import member_losses, stacked_logits

CELLS = {
    "rnn tanh": lambda *shape: nn.RNN(*shape),
    "rnn relu": lambda *shape: nn.RNN(*shape, nonlinearity="relu"),
    "gru": lambda *shape: nn.GRU(*shape),
}


def outputs_and_gradients(run, rnn: nn.Module, inputs: torch.Tensor, hidden: torch.Tensor | None) -> list:
    """Outputs, final state and the gradients of a random projection of both w.r.t. weights and inputs."""
    output, final = run(inputs, hidden)
    generator = torch.Generator().manual_seed(1)
    projection = (output * torch.randn(output.shape, generator=generator, dtype=output.dtype)).sum()
    projection = projection + (final * torch.randn(final.shape, generator=generator, dtype=final.dtype)).sum()
    wrt = [*rnn.parameters(), *(t for t in (inputs, hidden) if t is not None and t.requires_grad)]
    return [output, final, *torch.autograd.grad(projection, wrt)]


def assert_all_close(actual: list, expected: list) -> None:
    for got, want in zip(actual, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("num_layers", [1, 3])
def test_recurrent_stack_matches_torch_in_value_and_gradient(cell, num_layers):
    torch.manual_seed(0)
    rnn = CELLS[cell](5, 7, num_layers).double()
    inputs = torch.randn(11, 4, 5, dtype=torch.double, requires_grad=True)
    hidden = torch.randn(num_layers, 4, 7, dtype=torch.double, requires_grad=True)
    expected = outputs_and_gradients(rnn, rnn, inputs, hidden)
    actual = outputs_and_gradients(lambda *args: kernels.recurrent_stack(rnn, *args), rnn, inputs, hidden)
    assert_all_close(actual, expected)


def test_gru_backward_in_blocks_of_steps_matches_torch():
    torch.manual_seed(0)
    rnn = nn.GRU(5, 100).double()  # batch 70 x hidden 100: factors in blocks of 10 of the 25 steps
    inputs = torch.randn(25, 70, 5, dtype=torch.double, requires_grad=True)
    expected = outputs_and_gradients(rnn, rnn, inputs, None)
    actual = outputs_and_gradients(lambda *args: kernels.recurrent_stack(rnn, *args), rnn, inputs, None)
    assert_all_close(actual, expected)


@pytest.mark.parametrize("cell", CELLS)
def test_one_hot_indices_match_one_hot_vectors(cell):
    torch.manual_seed(0)
    rnn = CELLS[cell](6, 8, 2).double()
    ids = torch.randint(6, (9, 3))
    expected = outputs_and_gradients(rnn, rnn, F.one_hot(ids, 6).double(), None)
    actual = outputs_and_gradients(lambda *args: kernels.recurrent_stack(rnn, *args), rnn, ids, None)
    assert_all_close(actual, expected)


def autograd_nodes(tensor: torch.Tensor) -> set[str]:
    """The names of every node in the graph that produced `tensor`."""
    seen, stack = set(), [tensor.grad_fn]
    while stack:
        node = stack.pop()
        if node is not None and node not in seen:
            seen.add(node)
            stack.extend(next_node for next_node, _ in node.next_functions)
    return {type(node).__name__ for node in seen}


@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_char_rnn_on_cpu_runs_the_kernels_and_agrees_with_torch(cell):
    torch.manual_seed(0)
    model = CharRNN(20, cell=cell, num_layers=2, hidden_size=12, dropout=0.5).eval()
    ids = torch.randint(20, (3, 10))
    logits, hidden = model(ids)
    kernel_node = {"rnn": "ElmanLayerBackward", "gru": "GRULayerBackward"}[cell]
    assert kernel_node in autograd_nodes(logits)
    reference_output, reference_hidden = model.rnn(F.one_hot(ids, 20).float())
    torch.testing.assert_close(logits, model.decoder(reference_output))
    torch.testing.assert_close(hidden, reference_hidden)
    one_step, _ = model(ids[:, :1])  # generation's single steps stay one nn.RNN/GRU call
    assert kernel_node not in autograd_nodes(one_step)


def test_lstm_keeps_torch_kernels():
    logits, _ = CharRNN(20, cell="lstm", num_layers=2, hidden_size=8)(torch.zeros(2, 5, dtype=torch.long))
    assert not {"ElmanLayerBackward", "GRULayerBackward"} & autograd_nodes(logits)


def test_dropout_keeps_the_expectation_and_drops_the_requested_fraction():
    torch.manual_seed(0)
    x = torch.ones(200_000)
    dropped = kernels.dropout(x, 0.3, training=True)
    assert abs((dropped == 0).float().mean().item() - 0.3) < 0.005
    assert abs(dropped.mean().item() - 1.0) < 0.01
    values = dropped.unique().tolist()
    assert values[0] == 0.0 and values[1:] == [pytest.approx(1 / 0.7, rel=1e-4)]


def test_dropout_is_the_identity_in_eval_and_follows_the_seed():
    x = torch.randn(50, 40)
    assert torch.equal(kernels.dropout(x, 0.5, training=False), x)
    torch.manual_seed(3)
    first = kernels.dropout(x, 0.5, training=True)
    torch.manual_seed(3)
    assert torch.equal(first, kernels.dropout(x, 0.5, training=True))
    odd_size = kernels.dropout(torch.ones(3, 7), 0.5, training=True)  # not a multiple of 4 mask elements
    assert odd_size.shape == (3, 7) and set(odd_size.unique().tolist()) <= {0.0, 2.0}


def test_dropout_gradient_is_the_mask():
    x = torch.randn(30, 20, requires_grad=True)
    torch.manual_seed(0)
    y = kernels.dropout(x, 0.25, training=True)
    (grad,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(grad, y.detach() / x.detach())


def reference_with_the_same_masks(model: CharRNN, ids: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
    """CharRNN's training forward rebuilt from single-layer nn.RNN/nn.GRU calls, time-major, drawing its
    dropout masks with kernels.dropout in the order the model should: between layers, then on the top
    output. With the same RNG state it must equal the model wherever the model drops what it should."""
    rnn, x = model.rnn, F.one_hot(ids.t(), model.vocab_size).double()
    for layer in range(rnn.num_layers):
        if layer:
            x = kernels.dropout(x, rnn.dropout, training=True)
        x, _ = single_layer(rnn, layer)(x, hidden[layer : layer + 1])
    return model.decoder(kernels.dropout(x, model.dropout, training=True)).transpose(0, 1)


def single_layer(rnn: nn.RNN | nn.GRU, layer: int) -> nn.Module:
    """Layer `layer` of `rnn` as a module of its own, sharing its weights."""
    options = {"nonlinearity": rnn.nonlinearity} if isinstance(rnn, nn.RNN) else {}
    with torch.random.fork_rng():  # creating a module draws its initial weights: leave the masks' RNG alone
        single = type(rnn)(rnn.all_weights[layer][0].size(1), rnn.hidden_size, **options).double()
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        setattr(single, f"{name}_l0", getattr(rnn, f"{name}_l{layer}"))
    return single


@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_kernels_in_training_mode_apply_dropout_between_layers_and_on_the_output(cell):
    torch.manual_seed(0)
    model = CharRNN(9, cell=cell, num_layers=3, hidden_size=10, dropout=0.4, nonlinearity="relu").double().train()
    ids, hidden = torch.randint(9, (4, 13)), torch.randn(3, 4, 10, dtype=torch.double)

    def logits_and_gradients(forward):
        torch.manual_seed(7)  # the same masks for both
        logits = forward()
        projection = (
            logits * torch.randn(logits.shape, dtype=torch.double, generator=torch.Generator().manual_seed(1))
        ).sum()
        return [logits, *torch.autograd.grad(projection, list(model.parameters()))]

    actual = logits_and_gradients(lambda: model(ids, hidden)[0])
    expected = logits_and_gradients(lambda: reference_with_the_same_masks(model, ids, hidden))
    assert_all_close(actual, expected)
    model.eval()
    assert not torch.allclose(model(ids, hidden)[0], actual[0])  # and dropout did drop something


def test_gru_sigmoid_form_at_batch_16_with_one_hot_input_and_a_given_state():
    torch.manual_seed(0)
    model = CharRNN(11, cell="gru", num_layers=2, hidden_size=9).double().eval()
    ids = torch.randint(11, (16, 12))  # batch >= 16: tanh computed as 2 sigmoid(2x) - 1
    hidden = torch.randn(2, 16, 9, dtype=torch.double, requires_grad=True)
    kernel_logits, kernel_final = model(ids, hidden)
    assert "GRULayerBackward" in autograd_nodes(kernel_logits)
    output, final = model.rnn(F.one_hot(ids, 11).double(), hidden)
    reference_logits = model.decoder(output)
    assert_all_close([kernel_logits, kernel_final], [reference_logits, final])
    weights = [*model.parameters(), hidden]
    actual = torch.autograd.grad(kernel_logits.square().sum() + kernel_final.sum(), weights)
    expected = torch.autograd.grad(reference_logits.square().sum() + final.sum(), weights)
    assert_all_close(list(actual), list(expected))


NOT_BUILT = "the compiled recurrence is not built here (no C++ compiler when make install ran)"


@pytest.mark.skipif(not compiled.built_path().is_file(), reason=NOT_BUILT)
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("batch", [1, 70])  # GRU at 70: the backward's factors in blocks of steps
def test_the_compiled_loops_give_the_python_loops_bits(cell, batch, monkeypatch):
    torch.manual_seed(0)
    rnn = CELLS[cell](5, 100, 2)
    inputs = torch.randn(25, batch, 5, requires_grad=True)

    def run(switch: str) -> list:
        monkeypatch.setenv(compiled.SWITCH, switch)
        return outputs_and_gradients(lambda *args: kernels.recurrent_stack(rnn, *args), rnn, inputs, None)

    for got, want in zip(run("1"), run("0"), strict=True):
        assert torch.equal(got, want)


@pytest.mark.skipif(not compiled.built_path().is_file(), reason=NOT_BUILT)
@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_stacked_members_get_the_same_bits_from_the_compiled_loops(cell, monkeypatch):
    ids = torch.randint(11, (3, 2, 17))

    def run(switch: str) -> list:
        monkeypatch.setenv(compiled.SWITCH, switch)
        torch.manual_seed(0)
        members = [CharRNN(11, cell=cell, num_layers=2, hidden_size=24, dropout=0.2) for _ in range(3)]
        generators = [torch.Generator().manual_seed(seed) for seed in range(3)]
        losses = member_losses(stacked_logits(members, ids[..., :-1], generators), ids[..., 1:])
        return [losses, *torch.autograd.grad(losses.sum(), [p for member in members for p in member.parameters()])]

    for got, want in zip(run("1"), run("0"), strict=True):
        assert torch.equal(got, want)
