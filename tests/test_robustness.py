"""Never lose a run: validated configs, the divergence guard, exact resume after SIGKILL, safe loading."""

import os
import pickle
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import run_module
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lyricgen import UserError
from lyricgen.model import read_checkpoint
from lyricgen.train import train

# A 4-layer ReLU RNN at lr 1.5 without clipping: finite after one step, non-finite gradients at the second.
DIVERGING = ["model=rnn", "model.nonlinearity=relu", "model.num_layers=4", "trainer.gradient_clip_val=null"]


def scalars(run_dir, tag):
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0}).Reload()
    return {event.step: event.value for event in events.Scalars(tag)} if tag in events.Tags()["scalars"] else {}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.num_layers=two", "model.num_layers: Value 'two' of type 'str' could not be converted to Integer"),
        ("model.dropout=1.5", "model.dropout=1.5 is invalid: use a probability in [0, 1)"),
        ("model.cell=transformer", "model.cell: Invalid value 'transformer', expected one of [rnn, gru, lstm]"),
        ("optim.lr=-1", "optim.lr=-1.0 is invalid: use a learning rate > 0"),
        ("trainer.max_steps=0", "trainer.max_steps=0 is invalid: use an integer >= 1"),
    ],
)
def test_invalid_values_stop_before_any_data_is_read(tiny_overrides, tmp_path, override, message):
    # The corpus does not exist: if validation came after loading, the error would be about the file.
    args = [*tiny_overrides, "data.path=/nonexistent.txt", override, f"hydra.run.dir={tmp_path}/run"]
    result = run_module("lyricgen.train", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == f"error: {message}"
    assert "Traceback" not in result.stderr


def test_divergence_stops_with_one_line_and_keeps_the_last_good_checkpoint(tiny_overrides, tmp_path):
    run_dir = tmp_path / "run"
    args = [*tiny_overrides, *DIVERGING, "optim.lr=1.5", "checkpoint.every_n_steps=1", f"hydra.run.dir={run_dir}"]
    result = run_module("lyricgen.train", *args, cwd=tmp_path)
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: training diverged at step 1: ")
    assert "lr 1.5); lower optim.lr or set trainer.gradient_clip_val" in line
    assert "Traceback" not in result.stderr
    last = read_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert last["global_step"] == 1
    assert all(torch.isfinite(tensor).all() for tensor in last["state_dict"].values())
    assert scalars(run_dir, "train/diverged") == {1: 1.0}


@pytest.mark.slow
def test_a_sweep_goes_on_past_a_diverged_run(tiny_overrides, tmp_path):
    sweep = tmp_path / "sweep"
    args = ["-m", *tiny_overrides, *DIVERGING, "optim.lr=0.01,1.5", f"hydra.sweep.dir={sweep}"]
    result = run_module("lyricgen.train", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "training diverged" in result.stderr
    (good,) = sweep.glob("*optim.lr=0.01*")
    (bad,) = sweep.glob("*optim.lr=1.5*")
    assert (good / "checkpoints" / "last.ckpt").is_file() and scalars(good, "val/loss")
    assert scalars(bad, "train/diverged") and not scalars(good, "train/diverged")


@pytest.mark.slow
def test_resume_after_sigkill_is_bit_identical(tiny_overrides, compose_config, tmp_path):
    # Dropout makes the run depend on the global RNG too, not only on the window sampler.
    model = ["model.num_layers=2", "model.dropout=0.3", "checkpoint.every_n_steps=10", "trainer.val_check_interval=15"]
    reference = compose_config(*model, "trainer.max_steps=50")
    train(reference, tmp_path / "reference")

    run_dir = tmp_path / "killed"
    args = [*tiny_overrides, *model, "trainer.max_steps=100000", f"hydra.run.dir={run_dir}"]
    process = subprocess.Popen([sys.executable, "-m", "lyricgen.train", *args], cwd=tmp_path)
    last = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 120
    while not last.is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)  # no clean-up: like a power loss
    assert process.wait() == -signal.SIGKILL
    killed_at = read_checkpoint(last)["global_step"]
    assert 10 <= killed_at < 50

    result = run_module("lyricgen.train", f"resume={run_dir}", "trainer.max_steps=50", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    expected = scalars(tmp_path / "reference", "train/loss")
    resumed = scalars(run_dir, "train/loss")
    assert sorted(resumed) == list(range(50))  # one continuous curve: the killed run's extra steps purged
    assert resumed == expected  # every step, bit for bit
    assert read_checkpoint(last)["global_step"] == 50


def test_resume_refuses_changes_it_could_not_honour(trained_run, tmp_path):
    result = run_module("lyricgen.train", f"resume={trained_run}", "optim.lr=0.5", cwd=tmp_path)
    assert result.returncode == 2
    assert "a resumed run keeps its config: drop ['optim.lr=0.5']" in result.stderr
    result = run_module("lyricgen.train", f"resume={tmp_path}/nowhere", cwd=tmp_path)
    assert result.returncode == 2 and "nothing to resume" in result.stderr


def test_a_malicious_checkpoint_is_refused(trained_run, tmp_path):
    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "config.yaml").write_bytes((trained_run / "config.yaml").read_bytes())
    malicious = run_dir / "checkpoints" / "last.ckpt"
    torch.save({"global_step": Exploit()}, malicious, pickle_module=pickle)
    with pytest.raises(UserError, match="cannot load checkpoint"):
        read_checkpoint(malicious)
    result = run_module("lyricgen.train", f"ckpt_path={malicious}", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"cannot load checkpoint {malicious}: Weights only load failed" in result.stderr
    assert not (tmp_path / "pwned").exists()


def test_a_failed_checkpoint_save_leaves_the_previous_one_intact(tmp_path):
    from lyricgen.train import AtomicCheckpointIO

    path = tmp_path / "checkpoints" / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"global_step": 1, "state_dict": {"w": torch.ones(2)}}, path)
    with pytest.raises(Exception):  # noqa: B017  (what torch raises for an unpicklable object varies)
        io.save_checkpoint({"global_step": 2, "broken": lambda: None}, path)
    assert read_checkpoint(path)["global_step"] == 1
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]  # no partial file left behind
