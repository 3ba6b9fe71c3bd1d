"""Sample lyrics from a checkpoint: `python -m lyricgen.generate ckpt=latest prime="I want" length=500`.

Needs only the checkpoint: the vocabulary and hyperparameters travel inside it.
"""

import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lyricgen import UserError, charset, one_line_errors
from lyricgen.model import default_prime, load_checkpoint


@dataclass
class GenerateConfig:
    ckpt: str = "latest"  # a .ckpt file, a run directory, or "latest" (newest run under outputs_dir)
    prime: str = "\n"  # text the samples continue
    length: int = 500  # characters generated after the prime
    temperature: float = 0.8  # > 0; lower is more conservative; 0 is greedy
    greedy: bool = False  # always pick the most likely character (same as temperature=0)
    top_k: int | None = None  # sample only among the k most likely characters
    num_samples: int = 1  # samples generated together, as one batch
    seed: int = 0  # same seed, same text
    stream: bool = False  # print characters as they are produced (one sample)
    device: str = "auto"  # cpu | cuda | auto
    unknown: str = "error"  # prime characters outside the vocabulary: error | skip
    outputs_dir: str = "outputs"  # where ckpt=latest looks


def find_checkpoint(ckpt: str, outputs_dir: str | Path = "outputs") -> Path:
    """Resolve a .ckpt file, a run directory (its best checkpoint, else its last) or "latest"."""
    if ckpt == "latest":
        runs = [path.parent.parent for path in Path(outputs_dir).glob("**/checkpoints/*.ckpt")]
        if not runs:
            raise UserError(f"no checkpoints under {outputs_dir}/: train a model first, or pass ckpt=<file>")
        return find_checkpoint(str(max(runs, key=lambda run: (run / "checkpoints").stat().st_mtime)))
    path = Path(ckpt).expanduser()
    if path.is_dir():
        candidates = [path / "checkpoints" / name for name in ("best.ckpt", "last.ckpt")]
        path = next((candidate for candidate in candidates if candidate.is_file()), path / "checkpoints/last.ckpt")
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path} (pass ckpt=<.ckpt file | run dir | latest>)")
    return path


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


def generate(cfg: GenerateConfig) -> list[str]:
    """Samples (prime + continuation), printed as they are produced when cfg.stream."""
    if cfg.temperature < 0 or cfg.length < 0 or cfg.num_samples < 1:
        raise UserError("temperature and length must be >= 0 and num_samples >= 1")
    if cfg.stream and cfg.num_samples != 1:
        raise UserError("stream=true prints one sample as it is produced: set num_samples=1")
    if cfg.unknown not in ("error", "skip"):
        raise UserError(f"unknown={cfg.unknown} is not an option: use unknown=error or unknown=skip")
    device = ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device
    model, vocab = load_checkpoint(find_checkpoint(cfg.ckpt, cfg.outputs_dir), device)
    prime = clean_prime(cfg.prime, vocab, cfg.unknown) or default_prime(vocab)
    prime_ids = charset.encode(prime, vocab).long().to(device).expand(cfg.num_samples, -1)
    generator = torch.Generator().manual_seed(cfg.seed)
    temperature = 0.0 if cfg.greedy else cfg.temperature
    steps = model.generate_steps(prime_ids, cfg.length, temperature, cfg.top_k, generator)
    new_ids = []
    if cfg.stream:
        print(prime, end="", flush=True)
    for next_ids in steps:
        new_ids.append(next_ids)
        if cfg.stream:
            print(vocab[int(next_ids[0])], end="", flush=True)
    if cfg.stream:
        print()
    columns = torch.stack(new_ids, dim=1) if new_ids else prime_ids[:, :0]
    return [prime + charset.decode(row, vocab) for row in columns]


def parse_args(argv: list[str]) -> GenerateConfig:
    """key=value arguments over the typed defaults; a wrong key or type is a one-line error.
    The prime is taken as raw text: YAML would turn "yes" into True and refuse "@"."""
    primes = [arg.removeprefix("prime=") for arg in argv if arg.startswith("prime=")]
    options = [arg for arg in argv if not arg.startswith("prime=")]
    try:
        merged = OmegaConf.merge(OmegaConf.structured(GenerateConfig), OmegaConf.from_dotlist(options))
        if primes:
            merged.prime = primes[-1]
    except OmegaConfBaseException as err:
        raise UserError(
            f"{str(err).splitlines()[0]} (options: {', '.join(GenerateConfig.__dataclass_fields__)})"
        ) from None
    return OmegaConf.to_object(merged)


@one_line_errors
def main(argv: list[str] | None = None) -> None:
    cfg = parse_args(sys.argv[1:] if argv is None else argv)
    samples = generate(cfg)
    if not cfg.stream:
        print("\n\n----------\n\n".join(samples))


if __name__ == "__main__":
    main()
