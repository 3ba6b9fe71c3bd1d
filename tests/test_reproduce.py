"""The protocol runner (`make reproduce JOBS=2`): runs of one shape stacked across groups, two stacks at a
time, resumable, on the stand-in corpora; then the report groups the seeds."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

pytestmark = pytest.mark.slow

TINY_RUN = ["model=rnn", "model.hidden_size=8", "data.batch_size=2", "data.seq_len=16", "trainer.max_steps=4"]
TINY_RUN += ["trainer.val_check_interval=2", "data.val_chars=2000", "sample_length=10"]


def reproduce(out, protocol, *args):
    train = f"train=[{','.join(TINY_RUN)}]"
    command = [sys.executable, "-m", "lyricgen.reproduce", f"out={out}", f"protocol={protocol}", *args, train]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_a_protocol_runs_two_at_a_time_continues_where_it_stopped_and_reports(tmp_path):
    protocol = tmp_path / "tiny.yaml"
    protocol.write_text(
        "runs:\n"
        "  - {name: plain, corpus: clean, seeds: [0], args: [model.nonlinearity=tanh]}\n"
        "  - {name: tab, corpus: tab, seeds: [0], args: [model.nonlinearity=relu]}\n"
    )
    out = tmp_path / "protocol"
    first = reproduce(out, protocol, "jobs=2")
    assert first.returncode == 0, first.stderr
    assert "0 of 2 runs already ended; running 2 of 2 groups" in first.stdout
    for group in ("plain", "tab"):
        run_dir = out / group / "seed=0"
        assert json.loads((run_dir / "status.json").read_text())["ended"]
        assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert "|-" in (out / "corpora" / "songs_poems_tab.csv").read_text()  # the tab corpus carries tablature
    record = json.loads((out / "provenance.json").read_text())
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent)
    assert record["provenance"]["commit"] == head.stdout.strip() and "lyricgen/nn" in record["provenance"]["measures"]
    assert record["provenance"]["command"].startswith("python -m lyricgen.reproduce ")
    assert sorted(record["groups"]) == ["plain", "tab"]
    (out / "tab" / "seed=0" / "status.json").unlink()  # as if the machine stopped before this run ended
    again = reproduce(out, protocol, "jobs=2")
    assert "1 of 2 runs already ended; running 1" in again.stdout
    report = subprocess.run([sys.executable, "-m", "lyricgen.report", f"dir={out}"], capture_output=True, text=True)
    assert report.returncode == 0, report.stderr
    groups = pd.read_csv(out / "groups.csv")
    assert sorted(groups["group"]) == ["plain", "tab"] and (groups["steps"] == 4).all()


def test_make_reproduce_runs_the_paper_protocol_at_a_tiny_scale(tmp_path):
    """`make reproduce` as the README shows it, one seed of every group at a tiny SCALE: every preset the
    protocol names starts, trains and is reported."""
    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "paper"
    tiny = "data.val_chars=2000 sample_length=10"
    command = ["make", "-s", "reproduce", "SCALE=0.0002", "SEEDS=0", f"REPRODUCE_DIR={out}", f"ARGS={tiny}"]
    result = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    groups = pd.read_csv(out / "groups.csv")
    protocol = yaml.safe_load((root / "conf" / "protocol" / "paper.yaml").read_text())["runs"]
    assert sorted(groups["group"]) == sorted(group["name"] for group in protocol)
    assert (groups["seeds"] == 1).all()
    assert groups.loc[groups["group"] == "high_lr", "diverged"].item() == 1  # the paper's non-finite run
    assert (groups.loc[groups["group"] != "high_lr", "diverged"] == 0).all()
