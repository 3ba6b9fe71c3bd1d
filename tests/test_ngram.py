"""The n-gram memory: counts against a plain Python count, the mixture's loss, and generation from it."""

import math
import random
from collections import Counter, defaultdict

import pytest
import torch

from lyricgen.nn.charrnn import CharRNN
from lyricgen.nn.ngram import Mixture, NGramMemory, memory_mixture
from lyricgen.nn.sampling import sample_text


def counted_probability(text: list[int], vocab_size: int, order: int, context: list[int], char: int) -> float:
    """Interpolated absolute discounting spelled out with dictionaries (discount 0.75): the reference."""
    counts = defaultdict(Counter)
    for i, next_char in enumerate(text):
        for length in range(min(order, i + 1)):
            counts[tuple(text[i - length : i])][next_char] += 1
    probability = 1 / vocab_size
    for length in range(min(order, len(context) + 1)):
        seen = counts.get(tuple(context[len(context) - length :]))
        if not seen:
            break
        total = sum(seen.values())
        probability = max(seen[char] - 0.75, 0) / total + 0.75 * len(seen) / total * probability
    return probability


def test_probabilities_match_a_plain_count_and_sum_to_one():
    rng = random.Random(0)
    vocab_size, order = 5, 4
    text = [rng.choice([0, 1, 1, 2, 2, 2, 3]) for _ in range(400)]  # character 4 never occurs
    memory = NGramMemory(torch.tensor(text), vocab_size, order)
    windows = torch.tensor([[rng.randrange(vocab_size) for _ in range(7)] for _ in range(3)])
    everything = torch.arange(vocab_size).expand(3, 7, vocab_size)
    probs = memory.probabilities(windows, everything)
    assert torch.allclose(probs.sum(-1), torch.ones(3, 7, dtype=torch.float64))
    for row in range(3):
        for position in range(7):
            context = windows[row, : position + 1].tolist()  # what the window holds up to this position
            for char in range(vocab_size):
                expected = counted_probability(text, vocab_size, order, context, char)
                assert probs[row, position, char].item() == pytest.approx(expected, rel=1e-12), (context, char)


def test_the_mixture_loss_mixes_the_two_predictions():
    text = torch.tensor([0, 1, 2] * 50)
    mixture = Mixture(NGramMemory(text, 3, order=3), weight=0.25)
    inputs, targets = text[:-1].view(1, -1), text[1:].view(1, -1)
    logits = torch.zeros(1, inputs.size(1), 3)  # a network that guesses uniformly
    memory = mixture.memory.probabilities(inputs, targets.unsqueeze(-1)).squeeze(-1)
    expected = -(0.75 / 3 + 0.25 * memory).log().mean()
    assert mixture.loss(inputs, logits, targets).item() == pytest.approx(expected.item(), rel=1e-6)
    assert mixture.loss(inputs, logits, targets) < math.log(3)  # the memory knows the text's cycle


def test_generation_follows_the_memory_of_the_training_text():
    text = torch.tensor([0, 1, 2, 3] * 40)
    torch.manual_seed(0)
    network = CharRNN(4, cell="gru", hidden_size=8)  # untrained: only the memory knows the cycle
    mixture = memory_mixture(text, 4, order=4, weight=0.99, discount=0.75, max_chars=1000)
    generated = sample_text(network, "abcd", prime="ab", length=12, temperature=0, memory=mixture)
    assert generated == "cdabcdabcdab"
    assert sample_text(network, "abcd", prime="ab", length=12, temperature=0) != generated


def test_the_memory_counts_at_most_max_chars_and_order_0_turns_it_off():
    text = torch.tensor([0, 1] * 100)
    assert memory_mixture(text, 2, order=0, weight=0.25, discount=0.75, max_chars=50) is None
    mixture = memory_mixture(text, 2, order=3, weight=0.25, discount=0.75, max_chars=50)
    assert int(mixture.memory.levels[0].totals[0]) == 50
