"""Sampling text from any network that keeps lyricgen's contract (lyricgen.nn.networks): the prime runs
through the network once, then each new character costs one step on the carried state.

from lyricgen.nn import load_checkpoint, sample_text
model, vocab = load_checkpoint("outputs/runs/<time>/checkpoints/best.ckpt")
print(sample_text(model, vocab, prime="I want", length=300, seed=1))
"""

import math
import warnings
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

import torch
from torch import nn

from lyricgen import UserError, charset
from lyricgen.nn.networks import device_of, evaluating, label_tensor, null_label

if TYPE_CHECKING:  # the memory is optional: generating without one needs no n-gram code
    from lyricgen.nn.ngram import Mixture

# Printed once when oneDNN is toggled (one_step_kernels); it concerns Intel GPUs only.
warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN")


MAX_SEED = 2**63 - 1  # torch generators take a 64-bit seed


def check_sampling(
    temperature: float, top_k: int | None, length: int, guidance: float = 1.0, seed: int | None = None
) -> None:
    """One line for a sampling setting no sampler can use, before anything is sampled: the one check that
    lyricgen.generate, the Python API (sample_text, generate_steps) and the playground share."""
    if isinstance(temperature, bool) or not (math.isfinite(temperature) and temperature >= 0):
        raise UserError(f"temperature={temperature} is invalid: use a finite number >= 0 (0 picks the likeliest)")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise UserError(f"top_k={top_k} is invalid: use an integer >= 1, or leave it out to sample among all")
    if isinstance(length, bool) or not isinstance(length, int) or length < 0:
        raise UserError(f"length={length} is invalid: use a whole number of characters >= 0")
    if isinstance(guidance, bool) or not (math.isfinite(guidance) and guidance >= 0):
        raise UserError(f"guidance={guidance} is invalid: use a finite number >= 0 (1: the label as trained)")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED):
        raise UserError(f"seed={seed} is invalid: use a whole number from 0 to {MAX_SEED}")


@torch.no_grad()
def generate_steps(
    model: nn.Module,
    prime: torch.Tensor,
    length: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
    label: int | None = None,
    memory: "Mixture | None" = None,
    guidance: float = 1.0,
) -> Iterator[torch.Tensor]:
    """Yield `length` next ids, one (batch,) tensor at a time, continuing each row of `prime`; a
    conditioned model writes in `label` (an index into model.labels; None: without one, for a model with
    a null label), with `guidance` (guided_logits); with a `memory` (lyricgen.nn.ngram) the characters
    come from the network's predictions mixed with it. temperature=0 is greedy."""
    check_sampling(temperature, top_k, length, guidance)
    check_guidance(model, label, guidance)
    with evaluating(model):
        logits, hidden = guided_logits(model, prime, None, label, guidance)
        recent = prime
        for position in range(length):
            scores = logits[:, -1] if memory is None else memory.next_log_probs(logits[:, -1], recent)
            next_id = sample_next(scores, temperature, top_k, generator)
            yield next_id
            if position < length - 1:  # no step past the last character
                step = next_id.unsqueeze(1)
                if memory is not None:
                    recent = torch.cat([recent, step], dim=1)[:, -memory.context :]
                with one_step_kernels():
                    logits, hidden = guided_logits(model, step, hidden, label, guidance)


def guided_logits(
    model: nn.Module, ids: torch.Tensor, hidden: object, label: int | None, guidance: float = 1.0
) -> tuple[torch.Tensor, object]:
    """The network's logits for `ids` (batch, seq) written in `label`, and the state to carry on from.
    With guidance g != 1 (classifier-free guidance), the rows run twice in one batch, in the label and in
    the null label, and the logits are unconditional + g x (conditional - unconditional): g=0 is the
    unconditional model, g=1 the conditional one, g>1 leans further towards what sets the label apart."""
    if guidance == 1:
        return model(ids, hidden, labels=label_tensor(model, label, ids))
    labels = torch.cat([label_tensor(model, label, ids), label_tensor(model, None, ids)])
    logits, hidden = model(torch.cat([ids, ids]), hidden, labels=labels)
    conditional, unconditional = logits.chunk(2)
    return torch.lerp(unconditional, conditional, guidance), hidden  # exact at g=0 and g=1


def check_guidance(model: nn.Module, label: int | None, guidance: float) -> None:
    """One line for guidance the model cannot give: it needs a label and a null label to steer from."""
    if guidance == 1:
        return
    if null_label(model) is None:
        raise UserError(
            f"guidance={guidance} needs a model trained with label dropout (model.label_dropout > 0, with "
            "model.condition): it steers away from the unlabelled text such a model also learns"
        )
    if label is None:
        raise UserError(f"guidance={guidance} steers towards a label: add genre=<one of {', '.join(model.labels)}>")


def generate(model: nn.Module, prime: torch.Tensor, length: int, *args: object, **kwargs: object) -> torch.Tensor:
    """(batch, length) ids continuing each row of `prime`; arguments as for generate_steps."""
    steps = list(generate_steps(model, prime, length, *args, **kwargs))
    return torch.stack(steps, dim=1) if steps else prime[:, :0]


def one_step_kernels() -> AbstractContextManager:
    """oneDNN's LSTM wins on whole sequences (training) but loses to torch's native kernel one step at a
    time, which is how generation runs."""
    return torch.backends.mkldnn.flags(enabled=False)


def sample_next(
    logits: torch.Tensor, temperature: float, top_k: int | None, generator: torch.Generator | None
) -> torch.Tensor:
    """One id per row of logits (batch, vocab), by temperature and optional top-k."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits.float() / temperature
    if not torch.isfinite(logits).all():
        raise UserError("the model's outputs are not finite: its training diverged")
    if top_k:
        kth_best = logits.topk(min(top_k, logits.size(-1)), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth_best, -math.inf)
    probs = logits.softmax(dim=-1)
    return torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(1).to(logits.device)


def label_index(model: nn.Module, genre: str | None) -> int | None:
    """The index of the label asked for; a conditioned model needs one unless it has a null label (it
    was trained with label dropout), another takes none."""
    labels = model.labels
    if genre is None and labels and null_label(model) is None:
        raise UserError(f"this model writes in a genre: add genre=<one of {', '.join(labels)}>")
    if genre is not None and not labels:
        raise UserError(f"genre={genre}: this model was trained without labels (model.condition): drop genre")
    if genre is not None and genre not in labels:
        raise UserError(f"genre={genre} is not one of this model's: {', '.join(labels)}")
    return None if genre is None else labels.index(genre)


def default_prime(vocab: str) -> str:
    """A line break, as if starting a new song; any character for a text that has none."""
    return "\n" if "\n" in vocab else vocab[0]


def sample_text(model: nn.Module, vocab: str, prime: str | None = None, **options: object) -> str:
    """Text generated after `prime` (default: a line break); `options` as sample_texts takes them."""
    return sample_texts(model, vocab, 1, prime, **options)[0]


def sample_texts(
    model: nn.Module,
    vocab: str,
    count: int,
    prime: str | None = None,
    length: int = 300,
    temperature: float = 0.8,
    top_k: int | None = None,
    seed: int = 0,
    label: int | None = None,
    memory: "Mixture | None" = None,
    guidance: float = 1.0,
) -> list[str]:
    """`count` texts generated together as one batch after `prime` (default: a line break), reproducible
    from `seed` without touching the global RNG; in `label` (an index into model.labels) for a conditioned
    model, with `guidance` (guided_logits); from the mixture with a `memory` (lyricgen.nn.ngram). Returns
    the continuations only."""
    check_sampling(temperature, top_k, length, guidance, seed)
    prime = default_prime(vocab) if prime is None else prime
    prime_ids = charset.encode(prime, vocab).long().unsqueeze(0).to(device_of(model)).expand(count, -1)
    generator = torch.Generator().manual_seed(seed)
    ids = generate(model, prime_ids, length, temperature, top_k, generator, label, memory, guidance)
    return [charset.decode(row, vocab) for row in ids]
