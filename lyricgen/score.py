"""Lyrics scored against real songs: `python -m lyricgen.score ckpt=latest samples=10 length=600`.

Samples from a checkpoint (generate's sampling, seeds seed, seed+1, ...; songs in a form with form=, or each in
the form of the held-out piece it is compared with, form=real), or a file's text (file=), beside the
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
from lyricgen.options import as_typed, help_text, option, parsed, wants_help
from lyricgen.training.generation import GenerateConfig, Paths, load, sampled

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
    genre: str | None = option(None, "a conditioned model's label to write the scored samples in")
    with_memory: bool = option(True, "sample with the run's n-gram memory, as generate does")
    form: str | None = option(
        None, "write the samples as songs in this form (generate's form=); real: each in the form of a held-out piece"
    )
    rhyme: str = option("AABB", "with form=: the scheme of a stanza that names none (generate's rhyme=)")
    json: str | None = option(None, "also write the scorecards to this JSON file")
    paths: Paths = field(default_factory=Paths)


def parse_args(argv: list[str]) -> ScoreConfig:
    cfg = parsed(ScoreConfig, argv)
    if cfg.samples < 1 or cfg.length < 50:
        raise UserError("samples must be >= 1 and length >= 50 characters (a piece needs lines to score)")
    return cfg


def scored_texts(cfg: ScoreConfig) -> tuple[list[str], list[str], str]:
    """(the texts scored, the run's held-out songs cut alike, its training text)."""
    from lyricgen.data.encoded import split_text
    from lyricgen.nn.checkpoints import find_checkpoint
    from lyricgen.quality.scorecard import pieces_of
    from lyricgen.rundir import RunDir, load_run_config

    path = find_checkpoint(cfg.ckpt, cfg.paths.output_dir)
    data = load_run_config(RunDir.of_checkpoint(path).path).data
    held_out, training = split_text(data, "val"), split_text(data, "train", limit=TRAINING_CHARS)
    real = pieces_of(held_out, cfg.length, max(cfg.samples, 10))
    if cfg.file:
        text = Path(cfg.file).expanduser()
        if not text.is_file():
            raise UserError(f"file not found: {text} (give file= a text file of lyrics)")
        return pieces_of(text.read_text(encoding="utf-8"), cfg.length, cfg.samples), real, training
    return samples(cfg, str(path), cfg.genre, real), real, training


def samples(cfg: ScoreConfig, path: str, genre: str | None, real: list[str]) -> list[str]:
    """cfg.samples samples of the checkpoint at `path` in `genre`, seeds cfg.seed, cfg.seed+1, ...; with
    form=real, the i-th in the form of the i-th `real` piece."""
    from lyricgen.quality.scorecard import form_of

    base = GenerateConfig(
        ckpt=path, length=cfg.length, temperature=cfg.temperature, with_memory=cfg.with_memory, rhyme=cfg.rhyme,
        genre=genre,
    )  # fmt: skip
    model = load(base)
    texts = []
    for i in range(cfg.samples):
        form = form_of(real[i % len(real)]) if cfg.form == "real" else cfg.form
        written = sampled(replace(base, seed=cfg.seed + i, form=form), *model)
        texts.append("".join(part[0] for part in written).strip("\n"))
    return texts


def judged(cfg: ScoreConfig) -> dict[str, dict] | None:
    """For a model conditioned on labels: an independent genre judge (lyricgen.quality.judge, fitted on the
    run's training split) and how often it names each label for that label's samples and held-out pieces;
    None for another model."""
    from lyricgen.data.encoded import label_texts
    from lyricgen.nn.checkpoints import find_checkpoint
    from lyricgen.quality.judge import NgramJudge
    from lyricgen.quality.scorecard import pieces_of
    from lyricgen.rundir import RunDir, load_run_config

    path = find_checkpoint(cfg.ckpt, cfg.paths.output_dir)
    labels = load(GenerateConfig(ckpt=str(path), with_memory=False))[0].labels
    if not labels or cfg.file:
        return None
    data = load_run_config(RunDir.of_checkpoint(path).path).data
    judge = NgramJudge(label_texts(data, "train", limit=TRAINING_CHARS))
    held_out = label_texts(data, "val")
    found = {}
    for label in labels:
        real = pieces_of(held_out.get(label, ""), cfg.length, cfg.samples)
        written = samples(cfg, str(path), label, real or [""])
        found[label] = {
            "samples": judge.accuracy(written, label),
            "held_out": judge.accuracy(real, label) if real else None,
        }
    return found


def scorecards(scored: list[str], real: list[str], training: str) -> dict[str, dict]:
    from lyricgen.quality.scorecard import TrainingSpans, score

    spans = TrainingSpans(training)
    return {"scored": score(scored, spans, real).as_dict(), "held_out": score(real, spans, real).as_dict()}


def table(cards: dict[str, dict]) -> str:
    names = list(cards["scored"])
    lines = ["| | scored | held-out songs |", "|---|---|---|"]
    lines += [f"| {name} | {as_typed(cards['scored'][name])} | {as_typed(cards['held_out'][name])} |" for name in names]
    return "\n".join(lines)


def judge_table(judge: dict[str, dict]) -> str:
    lines = ["| label | judged so: its samples | judged so: its held-out songs |", "|---|---|---|"]
    lines += [
        f"| {label} | {as_typed(shares['samples'])} | {as_typed(shares['held_out'])} |"
        for label, shares in judge.items()
    ]
    return "\n".join(lines)


@one_line_errors
def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if wants_help(argv):
        print(help_text(ScoreConfig, "score", "a run's samples and its held-out songs on one lyrics scorecard"))
        return
    cfg = parse_args(argv)
    cards = scorecards(*scored_texts(cfg))
    print(table(cards))
    judge = judged(cfg)
    if judge is not None:
        cards["judge"] = judge
        print("\n" + judge_table(judge))
    if cfg.json:
        text = json.dumps(cards, indent=2) + "\n"
        write_atomically(Path(cfg.json), lambda partial: partial.write_text(text))


if __name__ == "__main__":
    main()
