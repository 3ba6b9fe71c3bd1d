import inspect

import pytest
import torch
import torch.nn.functional as F
from conftest import CONF_DIR
from omegaconf import OmegaConf

from lyricgen.nn.charrnn import CharRNN, sequence_loss
from lyricgen.nn.sampling import generate, sample_next
from lyricgen.training.fit import adam_module
from lyricgen.training.module import LyricLM

VOCAB = 30


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("input_mode", ["onehot", "embedding"])
def test_forward_shapes(cell, input_mode):
    model = CharRNN(VOCAB, cell=cell, num_layers=2, hidden_size=8, dropout=0.2, input=input_mode, embed_dim=5)
    logits, hidden = model(torch.randint(VOCAB, (3, 11)))
    assert logits.shape == (3, 11, VOCAB)
    state = hidden[0] if cell == "lstm" else hidden
    assert state.shape == (2, 3, 8)


def test_relu_nonlinearity_is_the_one_the_rnn_computes():
    """A ReLU RNN's states are never negative, a tanh RNN's are: the option reaches the computation."""
    torch.manual_seed(0)
    ids = torch.randint(VOCAB, (3, 11))
    states = {name: CharRNN(VOCAB, cell="rnn", num_layers=2, nonlinearity=name)(ids)[1] for name in ("relu", "tanh")}
    assert (states["relu"] >= 0).all() and (states["tanh"] < 0).any()


def test_generation_carries_state_exactly_like_rerunning_the_prefix():
    torch.manual_seed(0)
    model = CharRNN(VOCAB, cell="gru", num_layers=2, hidden_size=16)
    prime = torch.randint(VOCAB, (2, 5))
    generated = generate(model, prime, length=12, temperature=0)
    assert generated.shape == (2, 12)
    # Greedy decoding that re-runs the whole prefix for every character must agree with the O(1) path.
    sequence = prime
    for _ in range(12):
        logits, _ = model(sequence)
        sequence = torch.cat([sequence, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(sequence[:, 5:], generated)


def test_sampling_is_reproducible_and_top_k_restricts_choices():
    model = CharRNN(VOCAB, hidden_size=16)
    prime = torch.zeros(4, 3, dtype=torch.long)

    def sample(seed, top_k=None):
        return generate(model, prime, 50, temperature=1.0, top_k=top_k, generator=torch.Generator().manual_seed(seed))

    assert torch.equal(sample(1), sample(1))
    assert not torch.equal(sample(1), sample(2))
    assert torch.equal(sample(3, top_k=1), generate(model, prime, 50, temperature=0))


def test_gradient_norm_is_kept_before_clipping_and_reused_to_clip():
    module = adam_module("abcd", {"hidden_size": 4}, lr=0.1)
    optimizer = module.configure_optimizers()

    def clip(value):
        for parameter in module.parameters():
            parameter.grad = torch.full_like(parameter, 3.0)
        module.configure_gradient_clipping(optimizer, gradient_clip_val=value, gradient_clip_algorithm="norm")
        return torch.nn.utils.get_total_norm([p.grad for p in module.parameters()])

    unclipped = clip(None)
    assert unclipped > 10 and module.grad_norm == unclipped
    assert clip(1.0) == pytest.approx(1.0, rel=1e-4)
    assert module.grad_norm == unclipped  # kept as it was before clipping


def test_sequence_loss_reads_time_major_logits_as_plain_cross_entropy():
    torch.manual_seed(0)
    time_major = torch.randn(7, 3, 5, dtype=torch.double, requires_grad=True)  # how the CPU kernels lay them out
    logits = time_major.transpose(0, 1)  # (batch, seq, vocab) view, not contiguous
    targets = torch.randint(5, (3, 7))
    assert not logits.is_contiguous()
    expected = F.cross_entropy(logits.contiguous().reshape(-1, 5), targets.reshape(-1))
    actual = sequence_loss(logits, targets)
    torch.testing.assert_close(actual, expected, rtol=1e-12, atol=0)
    (actual_grad,) = torch.autograd.grad(actual, time_major)
    (expected_grad,) = torch.autograd.grad(expected, time_major)
    torch.testing.assert_close(actual_grad, expected_grad, rtol=1e-12, atol=1e-15)


def test_top_k_sampling_follows_the_renormalised_softmax_of_the_k_best():
    logits = torch.tensor([[2.0, 1.0, 0.5, 0.0, -1.0, 3.0]])
    temperature, k, draws = 0.7, 3, 40_000
    generator = torch.Generator().manual_seed(0)
    ids = torch.cat([sample_next(logits, temperature, k, generator) for _ in range(draws)])
    frequencies = torch.bincount(ids, minlength=6).double() / draws
    best = logits[0].topk(k).indices
    expected = torch.zeros(6, dtype=torch.double)
    expected[best] = (logits[0, best] / temperature).double().softmax(0)
    assert frequencies[expected == 0].sum() == 0  # nothing outside the k best
    torch.testing.assert_close(frequencies, expected, atol=0.01, rtol=0)  # 4 standard errors at 40k draws


def yaml(path: str) -> dict:
    return OmegaConf.to_container(OmegaConf.load(CONF_DIR / path))


def constructor_defaults(function) -> dict:
    return {
        name: parameter.default
        for name, parameter in inspect.signature(function).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }


def test_the_networks_python_defaults_agree_with_the_yaml():
    """CharRNN keeps defaults of its own (a notebook builds one without conf/); they are conf/model/rnn.yaml's.
    LyricLM has none: a run's values come from its config alone."""
    network, model_yaml = constructor_defaults(CharRNN), yaml("model/rnn.yaml")
    assert network.pop("labels") == () and model_yaml.pop("condition") is None  # labels come from the data
    assert model_yaml.pop("_target_") == "lyricgen.nn.CharRNN"
    assert network == model_yaml
    assert constructor_defaults(LyricLM) == {}


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])  # rnn and gru train through lyricgen.nn.kernels on a CPU
@pytest.mark.parametrize("input_mode", ["onehot", "embedding"])
def test_input_dropout_masks_inputs_while_training_only(cell, input_mode):
    torch.manual_seed(0)
    plain = CharRNN(VOCAB, cell=cell, num_layers=2, hidden_size=8, input=input_mode, embed_dim=5)
    dropped = CharRNN(VOCAB, cell=cell, num_layers=2, hidden_size=8, input=input_mode, embed_dim=5, input_dropout=0.5)
    dropped.load_state_dict(plain.state_dict())
    ids = torch.randint(VOCAB, (3, 11))
    assert torch.equal(dropped.eval()(ids)[0], plain.eval()(ids)[0])
    assert not torch.allclose(dropped.train()(ids)[0], plain.train()(ids)[0])  # no other dropout: inputs masked
