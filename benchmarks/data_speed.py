"""Corpus load + encode throughput (MB/s) and the cost of sampling a batch against a training step.

Run: `python benchmarks/data_speed.py`. Uses the corpora in ../shared/data (2.2 MB of songbooks and Tiny
Shakespeare) when present, else the built-in corpus.
"""

import time
from pathlib import Path

import torch
from common import median_rate, write_result
from references import raw_steps

from lyricgen import charset, corpus
from lyricgen.data import RandomWindows
from lyricgen.model import CharRNN

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def load_and_encode(path: Path | None) -> int:
    """Bytes of text loaded, split and encoded."""
    train_text, val_text = (
        corpus.load_split("text", 0.05, path=str(path)) if path else corpus.load_split("songs_poems", 0.05)
    )
    vocab = charset.build_vocab(train_text)
    charset.encode(train_text, vocab)
    charset.encode(val_text, vocab, drop_unknown=True)
    return len(train_text) + len(val_text)


def main() -> None:
    torch.set_num_threads(2)
    files = sorted(SHARED.glob("*.txt")) if SHARED.is_dir() else [None]
    rates = {}
    for path in files:
        name = path.name if path else "built-in songs_poems"
        rates[name] = round(median_rate(lambda path=path: load_and_encode(path)) / 1e6, 1)
        print(f"load + encode {name}: {rates[name]} MB/s")
    ids = torch.randint(90, (1_000_000,), dtype=torch.uint8)
    sampling = {}
    for batch, seq_len in ((1, 200), (32, 128)):
        windows = RandomWindows(ids, batch, seq_len, seed=0)
        start = time.perf_counter()
        for step in range(2000):
            windows.batch(step)
        sample_s = (time.perf_counter() - start) / 2000
        model = CharRNN(90, cell="lstm", num_layers=2, hidden_size=256, input="embedding", dropout=0.3)
        step_s = raw_steps(model, ids, batch, seq_len, 20)[1] / 20
        share = sample_s / step_s
        sampling[f"{batch}x{seq_len}"] = {"sample_us": round(sample_s * 1e6, 1), "share_of_step": round(share, 4)}
        print(f"batch {batch}x{seq_len}: sampling {sample_s * 1e6:.0f} us = {share:.2%} of a default-model step")
    write_result("data", {"load_encode_mb_per_s": rates, "batch_sampling": sampling})


if __name__ == "__main__":
    main()
