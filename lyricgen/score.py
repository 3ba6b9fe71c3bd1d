"""Lyrics scored against real songs: `python -m lyricgen.score ckpt=latest samples=10 length=600`.

Samples from a checkpoint (generate's sampling, seeds seed, seed+1, ...), or a file's text (file=), beside the
held-out songs of the run's corpus cut to the same length, on one scorecard (lyricgen.quality.scorecard):
real words, line lengths and stanzas, rhymes, repeated lines, distinct word pairs, text copied from the
training split. Prints the table; json= writes it to a file too.
"""

import json
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from lyricgen import UserError, one_line_errors
from lyricgen.atomic import write_atomically
from lyricgen.config import as_typed
from lyricgen.generate import GenerateConfig, Paths, help_text, load, option, parsed, sampled

# copied text is looked for in the training split's first this many characters: its 30-character spans are
# held in memory (~100 MB a million), so a corpus of any size is scored in bounded memory
TRAINING_CHARS = 2_000_000


@dataclass
class ScoreConfig:
    ckpt: str = option("latest", "the run whose samples and held-out songs are scored (a .ckpt, a run dir, latest)")
    file: str | None = option(None, "score this text file's lyrics instead of samples (cut into pieces of length)")
    samples: int = option(10, "samples scored (seeds seed, seed+1, ...), and held-out pieces beside them")
    length: int = option(600, "characters of each sample, and of each held-out piece")
    temperature: float = option(0.8, "the samples' temperature")
    seed: int = option(0, "the first sample's seed")
    with_memory: bool = option(True, "sample with the run's n-gram memory, as generate does")
    json: str | None = option(None, "also write the scorecards to this JSON file")
    paths: Paths = field(default_factory=Paths)


def parse_args(argv: list[str]) -> ScoreConfig:
    cfg = parsed(ScoreConfig, argv)
    if cfg.samples < 1 or cfg.length < 50:
        raise UserError("samples must be >= 1 and length >= 50 characters (a piece needs lines to score)")
    return cfg


def scored_texts(cfg: ScoreConfig) -> tuple[list[str], list[str], str]:
    """(the texts scored, the run's held-out songs cut alike, its training text)."""
    from lyricgen.config import load_run_config
    from lyricgen.data.encoded import split_text
    from lyricgen.nn.checkpoints import find_checkpoint
    from lyricgen.quality.scorecard import pieces_of
    from lyricgen.rundir import RunDir

    path = find_checkpoint(cfg.ckpt, cfg.paths.output_dir)
    data = load_run_config(RunDir.of_checkpoint(path).path).data
    held_out, training = split_text(data, "val"), split_text(data, "train", limit=TRAINING_CHARS)
    if cfg.file:
        text = Path(cfg.file).expanduser()
        if not text.is_file():
            raise UserError(f"file not found: {text} (give file= a text file of lyrics)")
        scored = pieces_of(text.read_text(encoding="utf-8"), cfg.length, cfg.samples)
    else:
        base = GenerateConfig(
            ckpt=str(path), length=cfg.length, temperature=cfg.temperature, with_memory=cfg.with_memory
        )
        model = load(base)
        scored = [
            "".join(part[0] for part in sampled(replace(base, seed=cfg.seed + i), *model)).strip("\n")
            for i in range(cfg.samples)
        ]
    return scored, pieces_of(held_out, cfg.length, max(cfg.samples, 10)), training


def scorecards(scored: list[str], real: list[str], training: str) -> dict[str, dict]:
    from lyricgen.quality.scorecard import TrainingSpans, score

    spans = TrainingSpans(training)
    return {"scored": score(scored, spans, real).as_dict(), "held_out": score(real, spans, real).as_dict()}


def table(cards: dict[str, dict]) -> str:
    names = list(cards["scored"])
    lines = ["| | scored | held-out songs |", "|---|---|---|"]
    lines += [f"| {name} | {as_typed(cards['scored'][name])} | {as_typed(cards['held_out'][name])} |" for name in names]
    return "\n".join(lines)


@one_line_errors
def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if {"--help", "-h", "help"} & set(argv):
        print(help_text(ScoreConfig, "score"))
        return
    cfg = parse_args(argv)
    cards = scorecards(*scored_texts(cfg))
    print(table(cards))
    if cfg.json:
        text = json.dumps(cards, indent=2) + "\n"
        write_atomically(Path(cfg.json), lambda partial: partial.write_text(text))


if __name__ == "__main__":
    main()
