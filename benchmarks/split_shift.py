"""Why the reproduction's numbers moved between two commits: train the paper's baseline (seed 0, full
length) at each commit, then score each run's model on its own validation songs, on the other commit's,
and on the songs both hold out. A shift that comes from which songs are held out shows as equal scores on
the common songs.

Run: `python benchmarks/split_shift.py [BEFORE AFTER]` (default: 2bf9712 3e57c3c, the commits on either
side of the change the bisect found). Each commit is checked out as a git worktree under a temporary
folder and trained with this checkout's Python environment, two at a time, one thread each (~2 minutes).
Writes docs/reproduce-shift/shift.json and shift.md.
"""

import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from lyricgen.nn.checkpoints import load_checkpoint
from lyricgen.provenance import provenance
from lyricgen.training.scoring import mean_loss

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "reproduce-shift"
SEPARATOR = "\n\n"  # between songs of a prepared split (conf/data/lyrics_csv.yaml's separator)
MEASURES = ("benchmarks/split_shift.py",)  # the numbers are the two commits' own: only this script can change them


def train_at(commit: str, work: Path) -> Path:
    """The baseline's seed 0 at full length, trained by `commit`'s code: its protocol directory."""
    tree, out = work / f"tree-{commit}", work / f"protocol-{commit}"
    subprocess.run(["git", "worktree", "add", "-f", "--detach", str(tree), commit], cwd=ROOT, check=True)
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "lyricgen.reproduce", str(out), "--only", "baseline", "--seeds", "0"]
    subprocess.run(command, cwd=work, env=env, check=True, capture_output=True)
    subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=True)
    return out


def held_out_songs(protocol: Path) -> list[str]:
    (val,) = protocol.glob("prepared/songs_poems-*/val.txt")
    return val.read_text(encoding="utf-8").split(SEPARATOR)


def score(protocol: Path, songs: list[str]) -> dict:
    model, vocab = load_checkpoint(protocol / "baseline" / "seed=0" / "checkpoints" / "last.ckpt")
    ids = torch.tensor([vocab.index(c) for c in SEPARATOR.join(songs) if c in vocab])
    return mean_loss(model, ids, 200)


def main(before: str, after: str) -> None:
    code = provenance(MEASURES)
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(2) as pool:
        runs = dict(zip((before, after), pool.map(lambda c: train_at(c, Path(tmp)), (before, after)), strict=True))
        songs = {commit: held_out_songs(protocol) for commit, protocol in runs.items()}
        common = [song for song in songs[before] if song in set(songs[after])]
        held_out = {**{f"{commit}'s validation songs": held for commit, held in songs.items()}, "both": common}
        scores = {
            f"model of {commit}": {name: score(protocol, held) for name, held in held_out.items()}
            for commit, protocol in runs.items()
        }
    counts = {name: len(held) for name, held in held_out.items()}
    result = {"provenance": code, "commits": [before, after], "songs": counts, "val_loss": scores}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "shift.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["| model | " + " | ".join(f"{name} ({counts[name]} songs)" for name in held_out) + " |"]
    lines += ["|---|" + "---|" * len(held_out)]
    for model, by_set in scores.items():
        lines.append(f"| {model} | " + " | ".join(f"{each['loss']:.4f}" for each in by_set.values()) + " |")
    (OUT / "shift.md").write_text(
        "Validation loss (nats/char), paper baseline, seed 0, 20k iterations:\n\n" + "\n".join(lines) + "\n"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main(*(sys.argv[1:3] or ["2bf9712", "3e57c3c"]))
