"""Training throughput: lyricgen (Lightning) vs two references, side by side in one process.

Run: `make bench` or `python benchmarks/train_speed.py`. For each model, rounds alternate
skeleton, raw, lyricgen, skeleton, raw, lyricgen, ...; each number is the median over rounds of
characters per second after warm-up, and ratios are taken between medians of the same process.

References (in references.py, never used by the package):
- skeleton: the homework style the paper used, one model call per character, batch 1;
- raw: a plain PyTorch loop over the same CharRNN and the same batches as lyricgen.
At the paper's batch 1, RNN and GRU rows also measure lyricgen with its Python recurrence loops
(LYRICGEN_COMPILED=0) beside the compiled ones (lyricgen.nn.compiled).
"""

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from common import RESULTS, write_result
from references import SkeletonRNN, raw_steps, skeleton_steps

from lyricgen.data.windows import RandomWindows
from lyricgen.nn import compiled
from lyricgen.nn.charrnn import CharRNN
from lyricgen.training.callbacks import FinishAtLastStep, StepMetrics
from lyricgen.training.fit import adam_module, tune_process

MEASURES = (
    "lyricgen/nn",
    "lyricgen/training",
    "lyricgen/data",
    "conf",
    "benchmarks/train_speed.py",
)  # the code these numbers depend on (benchmarks/stale.py)

VOCAB = 90
MODELS = {
    "lyricgen default: LSTM 2x256, embedding": dict(
        cell="lstm", num_layers=2, hidden_size=256, input="embedding", dropout=0.3
    ),
    "paper baseline: RNN 1x100 tanh": dict(cell="rnn", num_layers=1, hidden_size=100),
    "paper best: RNN 4x100 ReLU, dropout 0.2": dict(
        cell="rnn", num_layers=4, hidden_size=100, nonlinearity="relu", dropout=0.2
    ),
    "GRU 1x100": dict(cell="gru", num_layers=1, hidden_size=100),
    "LSTM 2x512": dict(cell="lstm", num_layers=2, hidden_size=512),
}
BATCHES = {
    "batch 1 x 200 (the paper's)": (1, 200),
    "batch 32 x 128 (lyricgen's default)": (32, 128),
    "batch 64 x 200": (64, 200),
}
ROUNDS = 5
SCRATCH = Path(tempfile.gettempdir()) / "lyricgen-bench"  # the Trainer's event files and checkpoint
SECONDS_PER_WINDOW = 1.5  # how long each measured window runs, roughly


class StepTimer(L.Callback):
    """Times the steps after warm-up inside one Trainer.fit."""

    def __init__(self, warmup: int):
        self.warmup, self.start, self.steps = warmup, 0.0, 0

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.global_step == self.warmup:
            self.start = time.perf_counter()
        self.steps = trainer.global_step - self.warmup


def lyricgen_rate(
    options: dict,
    ids: torch.Tensor,
    batch: int,
    seq_len: int,
    steps: int,
    accelerator: str = "cpu",
    precision: str = "32-true",
) -> float:
    """chars/s of the real Trainer + LyricLM at the default trainer settings (logging every step, clipping)."""
    model = adam_module("".join(chr(32 + i) for i in range(VOCAB)), options, lr=0.001)
    warmup = 3
    timer = StepTimer(warmup)
    trainer = L.Trainer(
        max_steps=warmup + steps,
        default_root_dir=SCRATCH,  # where FinishAtLastStep saves last.ckpt
        logger=L.pytorch.loggers.TensorBoardLogger(SCRATCH, name="", version=""),
        callbacks=[timer, StepMetrics(), FinishAtLastStep()],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=50,
        gradient_clip_val=1.0,
        limit_val_batches=0,
        accelerator=accelerator,
        devices=1,
        precision=precision,
    )
    loader = torch.utils.data.DataLoader(RandomWindows(ids, batch, seq_len, seed=0), batch_size=None)
    trainer.fit(model, train_dataloaders=loader)
    return timer.steps * batch * seq_len / (time.perf_counter() - timer.start)


def steps_for(seconds_per_step: float) -> int:
    return max(3, int(SECONDS_PER_WINDOW / seconds_per_step))


def flops_per_char(options: dict) -> float:
    """Multiply-adds x 2 x 3 (forward + backward) of the recurrent stack and the decoder per character."""
    gates = {"rnn": 1, "gru": 3, "lstm": 4}[options["cell"]]
    hidden, layers = options["hidden_size"], options["num_layers"]
    first_input = 64 if options.get("input") == "embedding" else VOCAB  # embed_dim's default, or one-hot
    recurrent = gates * hidden * ((first_input + hidden) + (layers - 1) * 2 * hidden)
    return 6.0 * (recurrent + hidden * VOCAB)


def matmul_gflops(size: int = 1024, repeats: int = 20) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def measure(name: str, options: dict, ids: torch.Tensor) -> list[dict]:
    _, seconds = skeleton_steps(SkeletonRNN(VOCAB, **options), ids, 1)  # one probe step sizes its windows
    skeleton_steps_per_window = steps_for(seconds)
    rows = []
    for batch_name, (batch, seq_len) in BATCHES.items():
        model = CharRNN(VOCAB, **options)
        probe = time.perf_counter()
        raw_steps(model, ids, batch, seq_len, 2)
        steps = steps_for((time.perf_counter() - probe) / 2)
        rates = {"skeleton": [], "raw": [], "lyricgen": []}
        both_loops = batch == 1 and options["cell"] != "lstm" and compiled.recurrence() is not None
        for _ in range(ROUNDS):  # the skeleton runs at its batch 1 beside every batch size
            skeleton_chars, seconds = skeleton_steps(SkeletonRNN(VOCAB, **options), ids, skeleton_steps_per_window)
            rates["skeleton"].append(skeleton_chars / seconds)
            raw_chars, seconds = raw_steps(model, ids, batch, seq_len, steps)
            rates["raw"].append(raw_chars / seconds)
            rates["lyricgen"].append(lyricgen_rate(options, ids, batch, seq_len, steps))
            if both_loops:
                os.environ[compiled.SWITCH] = "0"
                rates.setdefault("lyricgen_python_loops", []).append(lyricgen_rate(options, ids, batch, seq_len, steps))
                del os.environ[compiled.SWITCH]
        medians = {key: statistics.median(values) for key, values in rates.items()}
        row = {"model": name, "batch": batch_name, **{f"{key}_chars_per_s": round(v) for key, v in medians.items()}}
        if both_loops:
            row["compiled_vs_python_loops"] = round(medians["lyricgen"] / medians["lyricgen_python_loops"], 3)
        row["lyricgen_vs_raw"] = round(medians["lyricgen"] / medians["raw"], 3)
        row["lyricgen_vs_skeleton"] = round(medians["lyricgen"] / medians["skeleton"], 1)
        row["gflops"] = round(medians["lyricgen"] * flops_per_char(options) / 1e9, 2)
        print(row, flush=True)
        rows.append(row)
    return rows


PAPER_MODELS = [name for name in MODELS if name.startswith(("paper", "GRU"))]
DEFAULT_MODEL, LARGE_MODEL = "lyricgen default: LSTM 2x256, embedding", "LSTM 2x512"
PAPER_BATCH, DEFAULT_BATCH, BIG_BATCH = BATCHES


TARGETS = [  # the issue's: (what, row key, minimum, models, batch)
    ("50x the skeleton at batch 64 (the paper's models)", "lyricgen_vs_skeleton", 50, PAPER_MODELS, BIG_BATCH),
    ("5x the skeleton at the paper's batch 1", "lyricgen_vs_skeleton", 5, list(MODELS), PAPER_BATCH),
    (
        "15x the skeleton at the paper's batch 1 (the paper's models)",
        "lyricgen_vs_skeleton",
        15,
        PAPER_MODELS,
        PAPER_BATCH,
    ),
    ("Lightning within 10% of raw at the default config", "lyricgen_vs_raw", 0.9, [DEFAULT_MODEL], DEFAULT_BATCH),
    ("LSTM 2x512 at 50% of matmul GFLOP/s or more", "fraction_of_matmul", 0.5, [LARGE_MODEL], DEFAULT_BATCH),
]


def targets(rows: list[dict]) -> list[dict]:
    """Each target with the values it concerns and whether all of them meet it."""
    results = []
    for name, key, minimum, models, batch in TARGETS:
        values = {row["model"]: row[key] for row in rows if row["model"] in models and row["batch"] == batch}
        results.append({"target": name, "values": values, "met": all(v >= minimum for v in values.values())})
    return results


def main(threads: int = 1) -> None:
    # One thread: these small models gain little from a second one and lose to a neighbour on the core;
    # sweeps run one thread per process. `python train_speed.py 2` measures two.
    torch.set_num_threads(threads)
    tune_process()  # as lyricgen.train does; the references run in this process too
    torch.manual_seed(0)
    ids = torch.randint(VOCAB, (200_000,), dtype=torch.uint8)
    peak = statistics.median(matmul_gflops() for _ in range(5))
    print(f"dense matmul: {peak:.1f} GFLOP/s at {torch.get_num_threads()} threads")
    rows = [row for name, options in MODELS.items() for row in measure(name, options, ids)]
    for row in rows:
        row["fraction_of_matmul"] = round(row["gflops"] / peak, 3)
    checks = targets(rows)
    write_result(
        "train", {"matmul_gflops": round(peak, 1), "rounds": ROUNDS, "rows": rows, "targets": checks}, MEASURES
    )
    summary_title = f"Training chars/s, {threads} thread(s); dense matmul {peak:.0f} GFLOP/s\n\n"
    lines = ["| model | batch | skeleton | raw | lyricgen | vs skeleton | vs raw | of matmul |", "|" + "---|" * 8]
    for row in rows:
        cells = [row["model"], row["batch"], row["skeleton_chars_per_s"], row["raw_chars_per_s"]]
        cells += [row["lyricgen_chars_per_s"], row["lyricgen_vs_skeleton"], row["lyricgen_vs_raw"]]
        cells += [f"{row['fraction_of_matmul']:.0%}"]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    lines.append("")
    for row in rows:
        if "compiled_vs_python_loops" in row:
            lines.append(
                f"- {row['model']}, {row['batch']}: the compiled recurrence loops {row['compiled_vs_python_loops']}x "
                f"the Python loops ({row['lyricgen_python_loops_chars_per_s']:,} chars/s with those)"
            )
    for check in checks:
        values = ", ".join(f"{model.split(':')[0]} {value}" for model, value in check["values"].items())
        lines.append(f"- {'met' if check['met'] else 'NOT met'}: {check['target']} ({values})")
    summary = "\n".join(lines)
    (RESULTS / "train.md").write_text(summary_title + summary + "\n")
    print(summary)


if __name__ == "__main__":
    main(*map(int, sys.argv[1:]))
