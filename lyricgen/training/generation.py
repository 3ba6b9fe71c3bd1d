"""Writing from a trained run, as generate, score and the playground do it: the options they share
(GenerateConfig), the checkpoint loaded with its run's n-gram memory, and the text as it grows (free
samples, or a song in a form). Needs only a checkpoint and the network's code; the memory needs the run's
training text, read only when asked for."""

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn

from lyricgen import UserError, charset
from lyricgen.nn.checkpoints import find_checkpoint, load_checkpoint, pick_device
from lyricgen.nn.forms import check_wrap, most_characters, parse_form, write_song
from lyricgen.nn.networks import device_of
from lyricgen.nn.sampling import check_sampling, default_prime, generate_steps, label_index
from lyricgen.options import option
from lyricgen.rundir import RunDir, run_network

if TYPE_CHECKING:
    from lyricgen.nn.ngram import Mixture


@dataclass
class Paths:
    output_dir: str = option("outputs", "where ckpt=latest looks (the training runs' paths.output_dir)")


@dataclass
class GenerateConfig:
    ckpt: str = option("latest", "a .ckpt file, a run directory, or latest (the newest run under paths.output_dir)")
    prime: str = option("\n", "text the samples continue, taken literally")
    genre: str | None = option(None, "a conditioned model's label to write in (a genre, or a data.files source)")
    guidance: float = option(1.0, "with genre=, for a model with label dropout: >1 writes the genre more strongly")
    length: int = option(500, "characters generated after the prime")
    temperature: float = option(0.8, "> 0; lower is more conservative; 0 is greedy; [0.5,1.0]: a sample for each")
    greedy: bool = option(False, "always pick the most likely character (same as temperature=0)")
    top_k: int | None = option(None, "sample only among the k most likely characters")
    num_samples: int = option(1, "samples generated together, as one batch")
    seed: int = option(0, "same seed, same text")
    stream: bool = option(False, "print characters as they are produced (one sample)")
    device: str = option("auto", "cpu | cuda | auto")
    unknown: str = option("error", "prime characters outside the vocabulary: error | skip")
    with_memory: bool = option(True, "mix in the run's n-gram memory, as training's sample does (needs its text)")
    form: str | None = option(
        None, "write a song: stanzas in order, e.g. verse,chorus,verse,chorus,bridge:none,chorus (length unused)"
    )
    rhyme: str = option("AABB", "with form=: the scheme of a stanza that names none (AABB, ABAB, ABCB, none)")
    lines: int = option(4, "with form=: lines of a stanza whose scheme is none")
    wrap: int = option(60, "with form=: a line longer than this ends at its next space (0: at its line break only)")
    network: str | None = option(None, "a plugged-in network class to trust (its run's config.yaml names it too)")
    paths: Paths = field(default_factory=Paths)


def clean_prime(prime: str, vocab: str, unknown: str) -> str:
    missing = sorted(set(prime) - set(vocab))
    if not missing:
        return prime
    if unknown != "skip":
        raise UserError(
            f"prime has characters outside the model's vocabulary: {missing!r} (remove them or add unknown=skip)"
        )
    print(f"warning: dropping prime characters outside the vocabulary: {missing!r}", file=sys.stderr)
    return "".join(char for char in prime if char in vocab)


def check(cfg: GenerateConfig) -> None:
    """One line for settings no sampler can use (the sampling ones: lyricgen.nn.sampling.check_sampling)."""
    check_sampling(cfg.temperature, cfg.top_k, cfg.length, cfg.guidance, cfg.seed)
    if cfg.num_samples < 1:
        raise UserError(f"num_samples={cfg.num_samples} is invalid: use an integer >= 1")
    if cfg.stream and cfg.num_samples != 1:
        raise UserError("stream=true prints one sample as it is produced: set num_samples=1")
    if cfg.form is not None:
        parse_form(cfg.form, cfg.rhyme, cfg.lines)
        check_wrap(cfg.wrap)
        if cfg.num_samples != 1:
            raise UserError("form= writes one song at a time: set num_samples=1 (another seed= writes another song)")
    if cfg.unknown not in ("error", "skip"):
        raise UserError(f"unknown={cfg.unknown} is not an option: use unknown=error or unknown=skip")


def characters_asked(cfg: GenerateConfig) -> int:
    """The most characters the settings can write, prime included (a form's songs at their longest)."""
    written = most_characters(parse_form(cfg.form, cfg.rhyme, cfg.lines)) if cfg.form else cfg.length
    return len(cfg.prime) + written * cfg.num_samples


def load(cfg: GenerateConfig, trust_run: bool = True) -> tuple[nn.Module, str, "Mixture | None"]:
    """The checkpoint's network (on cfg.device), its vocabulary, and its run's n-gram memory when asked
    for and at hand. `trust_run`: import the network class the run's config.yaml names (a shared
    playground does not: its runs' files may come from anyone)."""
    path = find_checkpoint(cfg.ckpt, cfg.paths.output_dir)
    trusted = [cfg.network, run_network(RunDir.of_checkpoint(path).path) if trust_run else None]
    model, vocab = load_checkpoint(path, pick_device(cfg.device), trusted)
    memory = None
    if cfg.with_memory:  # imported here: reading a corpus pulls in pandas and hydra, which plain sampling does without
        from lyricgen.training.ngram_memory import run_ngram_memory

        memory = run_ngram_memory(RunDir.of_checkpoint(path).path, vocab, bool(model.labels))
    return model, vocab, memory


def sampled(cfg: GenerateConfig, model: nn.Module, vocab: str, memory: "Mixture | None") -> Iterator[list[str]]:
    """Each sample's text as it is produced: the primes first, then each sample's next character."""
    check(cfg)
    label = label_index(model, cfg.genre)
    prime = clean_prime(cfg.prime, vocab, cfg.unknown) or default_prime(vocab)
    prime_ids = charset.encode(prime, vocab).long().to(device_of(model)).expand(cfg.num_samples, -1)
    generator = torch.Generator().manual_seed(cfg.seed)
    temperature = 0.0 if cfg.greedy else cfg.temperature
    yield [prime] * cfg.num_samples
    if cfg.form is not None:
        stanzas = parse_form(cfg.form, cfg.rhyme, cfg.lines)
        settings = {"label": label, "memory": memory, "guidance": cfg.guidance, "wrap": cfg.wrap}
        for piece in write_song(model, vocab, stanzas, prime, generator, temperature, cfg.top_k, **settings):
            yield [piece]
        return
    steps = generate_steps(model, prime_ids, cfg.length, temperature, cfg.top_k, generator, label, memory, cfg.guidance)
    for next_ids in steps:
        yield [vocab[int(index)] for index in next_ids]


def generate(cfg: GenerateConfig) -> list[str]:
    """Samples (prime + continuation), printed as they are produced when cfg.stream."""
    check(cfg)
    parts: list[list[str]] = [[] for _ in range(cfg.num_samples)]
    for pieces in sampled(cfg, *load(cfg)):
        for part, piece in zip(parts, pieces, strict=True):
            part.append(piece)
        if cfg.stream:
            print(pieces[0], end="", flush=True)
    if cfg.stream:
        print()
    return ["".join(part) for part in parts]
