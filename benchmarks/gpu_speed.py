"""Throughput on a CUDA GPU: training (lyricgen's trainer=gpu, bf16-mixed, beside a raw PyTorch loop under
the same autocast, rounds alternating) and generation.

Run: `python benchmarks/gpu_speed.py` on a machine with CUDA (`make bench` runs it; without a GPU it says
so and measures nothing). On a GPU nn.LSTM/GRU/RNN run as cuDNN calls: lyricgen's CPU kernels are not used.
"""

import statistics
import time

import torch
from common import RESULTS, write_result
from references import raw_steps
from train_speed import MODELS, VOCAB, lyricgen_rate

from lyricgen.nn.charrnn import CharRNN
from lyricgen.nn.sampling import generate

MEASURES = (
    "lyricgen/nn",
    "lyricgen/training",
    "lyricgen/data",
    "conf",
    "benchmarks/gpu_speed.py",
)  # the code these numbers depend on (benchmarks/stale.py)

BATCHES = {"batch 1 x 200 (the paper's)": (1, 200), "batch 64 x 200": (64, 200), "batch 1024 x 200": (1024, 200)}
ROUNDS = 3
SECONDS_PER_WINDOW = 1.0
SAMPLES = (1, 16, 256)
LENGTH = 500


def training_rows() -> list[dict]:
    ids = torch.randint(VOCAB, (2_000_000,), dtype=torch.uint8)
    rows = []
    for name, options in MODELS.items():
        for batch_name, (batch, seq_len) in BATCHES.items():
            model = CharRNN(VOCAB, **options).cuda()
            raw_steps(model, ids, batch, seq_len, 3, bf16=True)  # warm-up: cuDNN plans, allocator
            probe_chars, probe_seconds = raw_steps(model, ids, batch, seq_len, 3, bf16=True)
            steps = max(3, int(SECONDS_PER_WINDOW * probe_chars / probe_seconds / (batch * seq_len)))
            rates = {"raw": [], "lyricgen": []}
            for _ in range(ROUNDS):
                chars, seconds = raw_steps(model, ids, batch, seq_len, steps, bf16=True)
                rates["raw"].append(chars / seconds)
                rates["lyricgen"].append(lyricgen_rate(options, ids, batch, seq_len, steps, "gpu", "bf16-mixed"))
            medians = {key: statistics.median(values) for key, values in rates.items()}
            row = {"model": name, "batch": batch_name, **{f"{k}_chars_per_s": round(v) for k, v in medians.items()}}
            row["lyricgen_vs_raw"] = round(medians["lyricgen"] / medians["raw"], 3)
            print(row, flush=True)
            rows.append(row)
    return rows


def generation_rows() -> list[dict]:
    rows = []
    for name in ("lyricgen default: LSTM 2x256, embedding", "paper best: RNN 4x100 ReLU, dropout 0.2"):
        model = CharRNN(VOCAB, **MODELS[name]).cuda()
        for samples in SAMPLES:
            prime = torch.zeros(samples, 1, dtype=torch.long, device="cuda")
            rates = []
            for _ in range(4):  # the first is warm-up
                start = time.perf_counter()
                generate(model, prime, LENGTH, temperature=0.8, generator=torch.Generator().manual_seed(0))
                torch.cuda.synchronize()
                rates.append(samples * LENGTH / (time.perf_counter() - start))
            row = {"model": name, "samples": samples, "chars_per_s": round(statistics.median(rates[1:]))}
            print(row, flush=True)
            rows.append(row)
    return rows


def main() -> None:
    if not torch.cuda.is_available():
        print("gpu_speed: no CUDA device here, nothing measured")
        return
    device = torch.cuda.get_device_name()
    training, generation = training_rows(), generation_rows()
    write_result("gpu", {"device": device, "rounds": ROUNDS, "training": training, "generation": generation}, MEASURES)
    lines = [f"On {device} (torch {torch.__version__}): training chars/s, bf16-mixed", ""]
    lines += ["| model | batch | raw | lyricgen | vs raw |", "|---|---|---|---|---|"]
    for row in training:
        cells = [
            row["model"],
            row["batch"],
            row["raw_chars_per_s"],
            row["lyricgen_chars_per_s"],
            row["lyricgen_vs_raw"],
        ]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    lines += ["", f"Generation chars/s ({LENGTH} characters, temperature 0.8)", "", "| model | samples | chars/s |"]
    lines += ["|---|---|---|"] + [f"| {r['model']} | {r['samples']} | {r['chars_per_s']} |" for r in generation]
    (RESULTS / "gpu.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
