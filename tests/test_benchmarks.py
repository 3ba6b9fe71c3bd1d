"""The benchmarks' measuring sticks must keep working: CI runs no benchmark, so these run their pieces small."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))
from references import SkeletonRNN, raw_steps, skeleton_steps
from train_speed import BATCHES, MODELS, TARGETS, VOCAB, targets

from lyricgen.model import CharRNN

TINY = {"cell": "gru", "num_layers": 2, "hidden_size": 8, "dropout": 0.2}


def trains_every_parameter(model: torch.nn.Module, loop) -> bool:
    before = [p.detach().clone() for p in model.parameters()]
    loop(model)
    return all(not torch.equal(old, new) for old, new in zip(before, model.parameters(), strict=True))


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_reference_loops_train_every_parameter(cell):
    ids = torch.randint(VOCAB, (5_000,), dtype=torch.uint8)
    options = {**TINY, "cell": cell}
    assert trains_every_parameter(SkeletonRNN(VOCAB, **options), lambda model: skeleton_steps(model, ids, 2))
    raw = lambda model: raw_steps(model, ids, batch=3, seq_len=20, steps=2)  # noqa: E731
    assert trains_every_parameter(CharRNN(VOCAB, **options), raw)


def test_targets_report_a_miss():
    good = {"lyricgen_vs_skeleton": 60.0, "lyricgen_vs_raw": 0.95, "fraction_of_matmul": 0.9}
    rows = [{"model": model, "batch": batch, **good} for model in MODELS for batch in BATCHES]
    assert all(check["met"] for check in targets(rows)) and len(targets(rows)) == len(TARGETS)
    rows[-1]["fraction_of_matmul"] = 0.1  # LSTM 2x512 at batch 64 is not what that target checks
    rows[-2]["fraction_of_matmul"] = 0.1  # ... at batch 32 x 128 is
    assert [check["met"] for check in targets(rows)] == [True, True, True, False]
