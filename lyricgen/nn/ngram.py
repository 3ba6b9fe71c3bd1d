"""A character n-gram memory of the training text, to interpolate with the network's predictions.

A char-RNN trained for minutes on a small corpus generalises well but does not memorise which 5- to
11-character contexts of the training text are followed by what; exact counts do. Mixing the two
predictions, p = (1 - weight) * p_network + weight * p_memory, is the classic cure (RNN + n-gram
interpolation, Mikolov 2011; kNN-LM, Khandelwal et al. 2020, used weight 0.25): measured in
docs/time-to-quality.md. The memory is rebuilt from the prepared training ids in about a second and is
never saved in a checkpoint: `val/loss` stays the network's own, and `val/loss_with_memory` is the mixture's.

Smoothing is interpolated absolute discounting: for a context of k characters (k = 0 .. order - 1)
p_k(x) = max(count(context, x) - discount, 0) / count(context)
         + discount * kinds(context) / count(context) * p_{k-1}(x),
starting from the uniform distribution and ending at the longest context seen in training.
"""

from dataclasses import dataclass

import torch

Tensor = torch.Tensor


@dataclass
class Level:
    """The contexts of one length k. A context is named by its index here; `keys` (sorted) spell each
    as (index of its last k - 1 characters at level k - 1) * vocab + (its k-th character back).
    `totals`/`kinds`: how many characters followed each context, and how many distinct ones;
    `pairs` (sorted): context index * vocab + next character, seen `pair_counts` times."""

    keys: Tensor
    totals: Tensor
    kinds: Tensor
    pairs: Tensor
    pair_counts: Tensor


class NGramMemory:
    """Counts of every context of up to `order - 1` characters in `ids` (1-D), and the next-character
    probabilities they give."""

    def __init__(self, ids: Tensor, vocab_size: int, order: int, discount: float = 0.75):
        if order < 1:
            raise ValueError(f"order={order}: an n-gram memory needs order >= 1")
        if not 0 < discount < 1:
            raise ValueError(f"discount={discount}: use a value between 0 and 1")
        self.vocab_size, self.order, self.discount = vocab_size, order, discount
        ids = ids.long()
        context = torch.zeros(len(ids), dtype=torch.long)  # position i's context index (none yet: the empty one)
        self.levels = [self.count(torch.zeros(1, dtype=torch.long), context, ids)]
        for length in range(1, min(order, len(ids))):
            # positions i >= length have `length` characters before them; the new one is ids[i - length]
            keys, context = torch.unique(context[1:] * vocab_size + ids[: len(ids) - length], return_inverse=True)
            self.levels.append(self.count(keys, context, ids[length:]))

    def count(self, keys: Tensor, context: Tensor, next_ids: Tensor) -> Level:
        """A Level from each position's context index and the character that followed it."""
        pairs, pair_counts = torch.unique(context * self.vocab_size + next_ids, return_counts=True)
        pair_context = pairs // self.vocab_size
        totals = torch.zeros(len(keys), dtype=torch.long).index_add_(0, pair_context, pair_counts)
        kinds = torch.bincount(pair_context, minlength=len(keys))
        return Level(keys, totals.int(), kinds.int(), pairs, pair_counts.int())  # counts: half the memory

    def probabilities(self, inputs: Tensor, candidates: Tensor) -> Tensor:
        """inputs (batch, seq): windows of ids; candidates (batch, seq, m): characters that may follow each
        position. Returns their probabilities (batch, seq, m) given each position's characters so far in
        its window (up to order - 1 of them): the memory sees what a fresh-state network sees."""
        inputs = inputs.long()
        probs = torch.full(candidates.shape, 1 / self.vocab_size, dtype=torch.float64)
        context = torch.zeros_like(inputs)
        seen = torch.ones_like(inputs, dtype=torch.bool)
        for length, level in enumerate(self.levels[: inputs.size(1) + 1]):  # no context is longer than a window
            if length:
                context, seen = self.extend(level, context, seen, inputs, length)
            probs = torch.where(seen.unsqueeze(-1), self.smooth(level, context, candidates, probs), probs)
        return probs

    def extend(self, level: Level, context: Tensor, seen: Tensor, inputs: Tensor, length: int) -> tuple:
        """Each position's context one character longer: its index at `level`, and whether training had it."""
        back = torch.zeros_like(inputs)  # the character `length` places back (position t - length + 1)
        back[:, length - 1 :] = inputs[:, : inputs.size(1) - length + 1]
        seen = seen.clone()
        seen[:, : length - 1] = False  # the window holds fewer characters than that
        key = context * self.vocab_size + back
        index = torch.searchsorted(level.keys, key).clamp_(max=len(level.keys) - 1)
        seen &= level.keys[index] == key
        return torch.where(seen, index, 0), seen

    def smooth(self, level: Level, context: Tensor, candidates: Tensor, lower: Tensor) -> Tensor:
        """This level's discounted counts, with `lower` (the shorter context's probabilities) filling the
        mass the discount set aside."""
        pair = context.unsqueeze(-1) * self.vocab_size + candidates
        index = torch.searchsorted(level.pairs, pair).clamp_(max=len(level.pairs) - 1)
        counts = torch.where(level.pairs[index] == pair, level.pair_counts[index], 0)
        totals = level.totals[context].unsqueeze(-1).double()
        kinds = level.kinds[context].unsqueeze(-1).double()
        return (counts - self.discount).clamp_(min=0) / totals + self.discount * kinds / totals * lower


@dataclass
class Mixture:
    """The network's next-character distribution mixed with a memory's: (1 - weight) * p_network + weight *
    p_memory."""

    memory: NGramMemory
    weight: float

    def loss(self, inputs: Tensor, logits: Tensor, targets: Tensor) -> Tensor:
        """Mean cross-entropy of the mixture on windows: inputs, targets (batch, seq), logits (batch, seq, vocab)."""
        targets = targets.long().unsqueeze(-1)
        network = logits.double().softmax(-1).gather(-1, targets)
        memory = self.memory.probabilities(inputs.cpu(), targets.cpu()).to(network.device)  # counts stay on the CPU
        return -((1 - self.weight) * network + self.weight * memory).log().mean().float()

    def next_log_probs(self, logits: Tensor, recent: Tensor) -> Tensor:
        """Log-probabilities (batch, vocab) of every next character, from the network's logits (batch, vocab)
        and each row's latest characters `recent` (batch, n): what generation samples from."""
        candidates = torch.arange(self.memory.vocab_size).expand(*recent.shape, -1)
        memory = self.memory.probabilities(recent.cpu(), candidates)[:, -1].to(logits.device)
        return ((1 - self.weight) * logits.double().softmax(-1) + self.weight * memory).log()

    @property
    def context(self) -> int:
        """How many latest characters the memory reads."""
        return max(1, self.memory.order - 1)


def memory_mixture(
    ids: Tensor, vocab_size: int, order: int, weight: float, discount: float, max_chars: int
) -> Mixture | None:
    """A run's mixture (conf/config.yaml's memory), counted on its first `max_chars` training ids (a big
    corpus's memory stays bounded); None when memory.order is 0. `ids` may also be a big corpus's
    lyricgen.data.idcache.FileIds, of which only that prefix is read."""
    if not order:
        return None
    prefix = ids[:max_chars]
    prefix = prefix if isinstance(prefix, Tensor) else prefix.read()
    return Mixture(NGramMemory(prefix, vocab_size, order, discount), weight)
