"""When does a genre label help, and does guidance make a genre recognisable to someone else?

Run: `python benchmarks/genres.py [steps] [seeds]` (default 1000 steps, seeds 0,1,2) from anywhere; needs only
the songbooks that ship with lyricgen. Two runs at a time, one thread each; a second call continues where
the first stopped. Writes docs/genres/genres.json and docs/genres/genres.md.

Two labelled corpora:
- songbooks: data=songbooks, one label per book: labels that carry much style (layout, dialect, era);
- genres, a stand-in for real genres: the same books' songs regrouped into three "genres" of two books
  each, and a share of songs given a wrong genre (WRONG_SHARE): labels over subsets of one collection
  that carry less style than a book, and some errors, as real genre labels do.

Three models of each, the default model at equal steps: unconditioned, conditioned (model.condition=source)
and conditioned with label dropout. Measured, seed by seed:
1. each label's validation bits per character (the unconditioned model scored label by label too);
2. an independent judge (lyricgen.quality.judge: naive Bayes over character n-grams, fitted on each label's training
   text): its accuracy on held-out pieces of each label (its ceiling) and on samples of each label, for
   the label-dropout model at each guidance in GUIDANCE (0: its unconditional model, 1: plain conditional);
3. what guidance costs: each label's validation bits per character under guidance.
"""

import json
import random
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from omegaconf import OmegaConf

from lyricgen import charset
from lyricgen.data import corpus, idcache
from lyricgen.nn.checkpoints import load_checkpoint
from lyricgen.nn.sampling import generate
from lyricgen.provenance import provenance
from lyricgen.quality.judge import NgramJudge
from lyricgen.training.scoring import label_scores

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "outputs" / "genres"
OUT = ROOT / "docs" / "genres"
# the code these numbers depend on (benchmarks/stale.py)
MEASURES = ("lyricgen", "conf", "benchmarks/genres.py", "lyricgen/quality/judge.py")
GENRES = {  # stand-in genre -> the songbooks whose songs it holds
    "scottish": ("burns", "bundle_of_ballads"),
    "english": ("english_ballads", "elizabethan"),
    "american": ("cowboy", "liberty_minstrel"),
}
WRONG_SHARE = 0.2  # of the stand-in's songs, given one of the other genres at random
SONG_CHARS = 1500  # the stand-in's "songs": runs of whole paragraphs of about this many characters
LABEL_DROPOUT = 0.2  # the label-dropout model's share of windows trained without their label
MODELS = {
    "unconditioned": [],
    "conditioned": ["model.condition=source"],
    "label_dropout": ["model.condition=source", f"model.label_dropout={LABEL_DROPOUT}"],
}
GUIDANCE = (0.0, 0.5, 1.0, 2.0, 4.0)
PIECE_CHARS = 300  # judged pieces: samples and held-out text alike
PIECES = 40  # held-out pieces and samples judged per label
TEMPERATURE = 0.8


def songs(text: str) -> list[str]:
    """Whole paragraphs, gathered into pieces of at least SONG_CHARS characters; a shorter last piece
    (the end of a book) is left out."""
    pieces, current = [], ""
    for paragraph in text.split("\n\n"):
        current += paragraph + "\n\n"
        if len(current) >= SONG_CHARS:
            pieces.append(current)
            current = ""
    return pieces


def standin_songs(books: dict[str, str]) -> dict[str, list[tuple[str, str]]]:
    """Genre -> its (song, book) pairs: each book's songs under the genre that holds the book, a
    WRONG_SHARE of them under another genre at random, each genre's songs shuffled (so both books reach
    its held-out tail). Seeded: the same stand-in every time."""
    rng = random.Random(0)
    by_genre: dict[str, list[tuple[str, str]]] = {genre: [] for genre in GENRES}
    for genre, members in GENRES.items():
        for book in members:
            for song in songs(books[book]):
                wrong = rng.random() < WRONG_SHARE
                by_genre[rng.choice([g for g in GENRES if g != genre]) if wrong else genre].append((song, book))
    for pairs in by_genre.values():
        rng.shuffle(pairs)
    return by_genre


def write_standin(folder: Path) -> dict[str, str]:
    """The stand-in's files, one per genre: genre -> path."""
    books = {label: corpus.read_text_file(path)[0] for label, path in corpus.input_files("songbooks", {}).items()}
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for genre, pairs in standin_songs(books).items():
        files[genre] = str(folder / f"{genre}.txt")
        Path(files[genre]).write_text("".join(song for song, _ in pairs))
    return files


def corpora() -> dict[str, dict]:
    """Corpus name -> (its data overrides, its encoded_corpus options)."""
    files = write_standin(WORK / "standin")
    files_override = "data.files={" + ", ".join(f"{genre}: {path}" for genre, path in files.items()) + "}"
    return {
        "songbooks": {"overrides": ["data=songbooks"], "source": {"source": "songbooks"}},
        "genres": {"overrides": ["data=text", files_override], "source": {"source": "text", "files": files}},
    }


def train(run_dir: Path, overrides: list[str]) -> None:
    if (run_dir / "checkpoints" / "best.ckpt").is_file():
        return  # done by an earlier call: the script continues where it stopped
    command = [sys.executable, "-m", "lyricgen.train", *overrides, f"hydra.run.dir='{run_dir}'"]
    subprocess.run(command, check=True, cwd=ROOT, capture_output=True)
    print(f"trained {run_dir}", flush=True)


def planned_runs(steps: int, seeds: list[int], data: dict[str, dict]) -> dict[Path, list[str]]:
    common = ["threads=1", "trainer.enable_progress_bar=false", f"trainer.val_check_interval={steps}"]
    common += [f"trainer.max_steps={steps}", "memory.order=0", f"data.prepared_dir={WORK / 'prepared'}"]
    return {
        WORK / name / model / f"seed={seed}": [*common, *spec["overrides"], *extra, f"seed={seed}"]
        for name, spec in data.items()
        for model, extra in MODELS.items()
        for seed in seeds
    }


def split_text(source: dict, split: str) -> tuple:
    """A split of a labelled corpus: (ids, vocabulary, each character's label, label names)."""
    prepared = WORK / "prepared"
    encoded = idcache.encoded_corpus(val_fraction=0.05, hygiene=True, prepared_dir=prepared, labelled=True, **source)
    return getattr(encoded, split).read(), encoded.vocab, encoded.label_ids[split].read(), encoded.labels


def texts_by_label(split: tuple) -> dict[str, str]:
    ids, vocab, label_ids, labels = split
    return {label: charset.decode(ids[label_ids == index], vocab) for index, label in enumerate(labels)}


def pieces(text: str) -> list[str]:
    return [text[start : start + PIECE_CHARS] for start in range(0, len(text) - PIECE_CHARS, PIECE_CHARS)][:PIECES]


def samples(model: torch.nn.Module, vocab: str, label: str, guidance: float) -> list[str]:
    """PIECES samples of PIECE_CHARS characters in `label`, after a line break, generated as one batch."""
    prime = charset.encode("\n", vocab).long().expand(PIECES, 1)
    generator = torch.Generator().manual_seed(0)
    ids = generate(model, prime, PIECE_CHARS, TEMPERATURE, None, generator, model.labels.index(label), None, guidance)
    return [charset.decode(row, vocab) for row in ids]


def bpc_by_label(model: torch.nn.Module, vocab: str, val: tuple, seq_len: int, guidance: float = 1.0) -> dict:
    scored = label_scores(model, vocab, val, seq_len, drop=False, guidance=guidance)
    return {label: entry["bpc"] for label, entry in scored.items()}


def measure(name: str, spec: dict, seeds: list[int], seq_len: int) -> dict:
    val = split_text(spec["source"], "val")
    judge = NgramJudge(texts_by_label(split_text(spec["source"], "train")))
    held_out = texts_by_label(val)
    ceiling = {label: judge.accuracy(pieces(held_out[label]), label) for label in val[3]}
    result = {"labels": val[3], "judge_on_held_out": ceiling}
    result["bpc"], result["guided_bpc"], result["judge_on_samples"] = {}, {}, {}
    for seed in seeds:
        for model in MODELS:
            trained = load_checkpoint(WORK / name / model / f"seed={seed}" / "checkpoints" / "best.ckpt")
            result["bpc"].setdefault(model, {})[seed] = bpc_by_label(*trained, val, seq_len)
        guided = load_checkpoint(WORK / name / "label_dropout" / f"seed={seed}" / "checkpoints" / "best.ckpt")
        for g in GUIDANCE:
            result["guided_bpc"].setdefault(str(g), {})[seed] = bpc_by_label(*guided, val, seq_len, g)
            judged = {label: judge.accuracy(samples(*guided, label, g), label) for label in val[3]}
            result["judge_on_samples"].setdefault(str(g), {})[seed] = judged
        print(f"measured {name} seed {seed}", flush=True)
    return result


def main(steps: int = 1000, seeds: str = "0,1,2") -> None:
    code = provenance(MEASURES)  # as the runs start: what they measure, whatever changes meanwhile
    seed_list = [int(seed) for seed in seeds.split(",")]
    data = corpora()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda item: train(*item), planned_runs(steps, seed_list, data).items()))
    seq_len = OmegaConf.load(ROOT / "conf" / "config.yaml").data.seq_len
    result = {"steps": steps, "seeds": seed_list, "label_dropout": LABEL_DROPOUT, "wrong_share": WRONG_SHARE}
    result["machine"] = "this repository's 2-core CPU, one thread per run, two runs at a time"
    result["corpora"] = {name: measure(name, spec, seed_list, seq_len) for name, spec in data.items()}
    OUT.mkdir(parents=True, exist_ok=True)
    record = {"provenance": code, **result}
    (OUT / "genres.json").write_text(json.dumps(record, indent=2) + "\n")
    (OUT / "genres.md").write_text(markdown(result))
    print(markdown(result))


def spread(values: list[float]) -> str:
    return f"{statistics.mean(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def table(by_row: dict[str, dict], labels: list[str], header: str) -> list[str]:
    """Rows of per-seed {label: value}: each label's mean (min-max over seeds), and the mean over labels."""
    lines = [f"| {header} | " + " | ".join(labels) + " | mean |", "|---|" + "---|" * (len(labels) + 1)]
    for row, by_seed in by_row.items():
        cells = [spread([seeded[label] for seeded in by_seed.values()]) for label in labels]
        cells.append(spread([statistics.mean(seeded.values()) for seeded in by_seed.values()]))
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return lines


def markdown(result: dict) -> str:
    lines = [
        f"The default model, {result['steps']} steps, seeds {result['seeds']}; {result['machine']}. "
        "Each cell: mean (min-max over seeds).",
    ]
    for name, measured in result["corpora"].items():
        labels = measured["labels"]
        lines += ["", f"## {name}", "", "Validation bits per character by label:", ""]
        lines += table(measured["bpc"], labels, "model")
        lines += ["", "The label-dropout model's validation bits per character by guidance (g=0: unconditional):", ""]
        lines += table({f"g={g}": by_seed for g, by_seed in measured["guided_bpc"].items()}, labels, "guidance")
        ceiling = {"held-out songs": {0: measured["judge_on_held_out"]}}
        judged = ceiling | {f"samples, g={g}": by_seed for g, by_seed in measured["judge_on_samples"].items()}
        lines += ["", f"The judge's accuracy (chance: 1/{len(labels)}) on {PIECE_CHARS}-character pieces:", ""]
        lines += table(judged, labels, "pieces")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(*(int(arg) if i == 0 else arg for i, arg in enumerate(sys.argv[1:])))
