"""One model for six songbooks against one without labels and six single-book models, at equal steps.

Run: `python benchmarks/genres.py [steps] [seeds]` (default 1500 steps, seeds 0,1), from the repository
root or anywhere; needs the six songbooks in ../shared/data. Two runs at a time, one thread each. Writes
docs/genres/genres.json and docs/genres/genres.md:

1. per-label validation bits per character of the conditioned model (model.condition=source), the same
   model trained without labels on the same mixture, and one model per label with steps/6 steps each;
   the conditioned model also with condition_on=state and both (first seed only), to choose how;
2. controllability: samples per label, each scored under every label with the model's own likelihood;
   how often the label asked for scores best (chance: 1/6);
3. a sample per label.
"""

import json
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from omegaconf import OmegaConf

from lyricgen import charset
from lyricgen.data import idcache
from lyricgen.nn.checkpoints import load_checkpoint
from lyricgen.nn.sampling import sample_text
from lyricgen.training.scoring import label_scores, mean_loss

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
BOOKS = {
    "burns": "pg1279_burns_poems_and_songs.txt",
    "cowboy": "pg21300_cowboy_songs.txt",
    "minstrel": "pg22089_liberty_minstrel.txt",
    "english": "pg22223_english_songs_and_ballads.txt",
    "elizabethan": "pg27129_elizabethan_song_lyrics.txt",
    "ballads": "pg2831_bundle_of_ballads.txt",
}
OUT = ROOT / "docs" / "genres"
SAMPLES_PER_LABEL = 20
SAMPLE_LENGTH = 300


def files_override() -> str:
    return "data.files={" + ", ".join(f"{label}: {SHARED / name}" for label, name in BOOKS.items()) + "}"


def runs(steps: int, seeds: list[int]) -> dict[str, list[str]]:
    """Run name -> training overrides."""
    common = ["threads=1", "trainer.enable_progress_bar=false", f"trainer.val_check_interval={steps}"]
    planned = {}
    for seed in seeds:
        mixture = [*common, "data=text", files_override(), f"seed={seed}", f"trainer.max_steps={steps}"]
        planned[f"conditioned/seed={seed}"] = [*mixture, "model.condition=source"]
        planned[f"unconditioned/seed={seed}"] = mixture
        for label, name in BOOKS.items():
            single = [*common, "data=text", f"data.path={SHARED / name}", f"seed={seed}"]
            planned[f"single_{label}/seed={seed}"] = [*single, f"trainer.max_steps={steps // len(BOOKS)}"]
    for how in ("state", "both"):
        planned[f"conditioned_{how}/seed={seeds[0]}"] = [
            *planned[f"conditioned/seed={seeds[0]}"],
            f"model.condition_on={how}",
        ]
    return planned


def train(run_dir: Path, overrides: list[str], prepared: Path) -> None:
    if (run_dir / "checkpoints" / "best.ckpt").is_file():
        return  # done by an earlier call: the script continues where it stopped
    command = [sys.executable, "-m", "lyricgen.train", *overrides, f"hydra.run.dir='{run_dir}'"]
    command.append(f"data.prepared_dir={prepared}")
    subprocess.run(command, check=True, cwd=ROOT, capture_output=True)
    print(f"trained {run_dir}", flush=True)


def mixture_val(prepared: Path) -> tuple:
    """The labelled mixture's validation split: (ids, vocabulary, labels, label names)."""
    files = {label: str(SHARED / name) for label, name in BOOKS.items()}
    encoded = idcache.encoded_corpus("text", 0.05, True, prepared, labelled=True, files=files)
    return encoded.val.read(), encoded.vocab, encoded.label_ids["val"].read(), encoded.labels


def per_label_bpc(work: Path, name: str, val: tuple, seq_len: int) -> dict[str, float]:
    """Each label's validation bpc; for the single-book models, each from its own book's model."""
    if name.startswith("single"):
        seed = name.split("/")[1]
        scored = {}
        for label in BOOKS:
            model, vocab = load_checkpoint(work / f"single_{label}" / seed / "checkpoints" / "best.ckpt")
            scored[label] = label_scores(model, vocab, val, seq_len, drop=True)[label]["bpc"]
        return scored
    model, vocab = load_checkpoint(work / name / "checkpoints" / "best.ckpt")
    return {label: entry["bpc"] for label, entry in label_scores(model, vocab, val, seq_len, drop=False).items()}


def controllability(checkpoint: Path, seq_len: int) -> tuple[float, dict[str, float], dict[str, str]]:
    """(share of samples whose own label scores best, that share per label, one sample per label)."""
    model, vocab = load_checkpoint(checkpoint)
    hits, examples = {}, {}
    for asked, label in enumerate(model.labels):
        correct = 0
        for seed in range(SAMPLES_PER_LABEL):
            text = "\n" + sample_text(model, vocab, length=SAMPLE_LENGTH, seed=seed, label=asked)
            ids = charset.encode(text, vocab)
            losses = [mean_loss(model, ids, len(ids) - 1, index)[0] for index in range(len(model.labels))]
            correct += losses.index(min(losses)) == asked
            examples.setdefault(label, text.strip("\n"))
        hits[label] = correct / SAMPLES_PER_LABEL
    return statistics.mean(hits.values()), hits, examples


def main(steps: int = 1500, seeds: str = "0,1") -> None:
    seed_list = [int(seed) for seed in seeds.split(",")]
    work = ROOT / "outputs" / "genres"
    prepared = work / "prepared"
    planned = runs(steps, seed_list)
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda item: train(work / item[0], item[1], prepared), planned.items()))
    seq_len = OmegaConf.load(ROOT / "conf" / "config.yaml").data.seq_len
    val = mixture_val(prepared)
    kinds = [*sorted({name.split("/")[0] for name in planned if not name.startswith("single_")}), "single"]
    table = {}
    for kind in kinds:
        for seed in seed_list:
            name = f"{kind}/seed={seed}"
            if kind == "single" or name in planned:
                table.setdefault(kind, {})[seed] = per_label_bpc(work, name, val, seq_len)
    control = {}
    for seed in seed_list:
        control[seed] = controllability(work / f"conditioned/seed={seed}" / "checkpoints" / "best.ckpt", seq_len)
    result = {"steps": steps, "seeds": seed_list, "per_label_bpc": table, "controllability": control}
    result["machine"] = "this repository's 2-core CPU, one thread per run, two runs at a time"
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "genres.json").write_text(json.dumps(result, indent=2) + "\n")
    (OUT / "genres.md").write_text(markdown(result))
    print(markdown(result))


def markdown(result: dict) -> str:
    labels = list(BOOKS)
    lines = [
        f"Validation bits per character by label, default model, {result['steps']} steps (single-book models: "
        f"{result['steps'] // len(BOOKS)} each), seeds {result['seeds']}: mean (min-max over seeds).",
        "",
        "| model | " + " | ".join(labels) + " | mean |",
        "|---|" + "---|" * (len(labels) + 1),
    ]
    for kind, by_seed in result["per_label_bpc"].items():
        cells = []
        for label in [*labels, None]:
            values = [statistics.mean(s.values()) if label is None else s[label] for s in by_seed.values()]
            cells.append(f"{statistics.mean(values):.3f} ({min(values):.3f}-{max(values):.3f})")
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    lines += ["", "Controllability: share of samples whose asked-for label scores best (chance 1/6):", ""]
    for seed, (overall, hits, _) in result["controllability"].items():
        per = ", ".join(f"{label} {share:.2f}" for label, share in hits.items())
        lines.append(f"- seed {seed}: {overall:.2f} ({per})")
    first = next(iter(result["controllability"].values()))
    lines += ["", "Samples (seed 0, temperature 0.8):", ""]
    for label, text in first[2].items():
        lines += [f"**{label}**", "", "    " + text.replace("\n", "\n    "), ""]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(*(int(arg) if i == 0 else arg for i, arg in enumerate(sys.argv[1:])))
