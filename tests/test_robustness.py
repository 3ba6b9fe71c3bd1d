"""Never lose a run: validated configs, the divergence guard, exact resume after SIGKILL, safe loading."""

import csv
import json
import math
import os
import pickle
import resource
import signal
import subprocess
import sys

import lightning as L
import numpy as np
import pytest
import torch
from conftest import curve, error_line, run_module, run_modules, stopped_midway
from lightning.pytorch.plugins.precision import MixedPrecision
from torch.utils.data import DataLoader

from lyricgen import Diverged, UserError
from lyricgen.data.windows import RandomWindows
from lyricgen.nn.checkpoints import read_checkpoint
from lyricgen.training.fit import adam_module, fit_run
from lyricgen.training.module import LyricLM

# A 4-layer ReLU RNN at lr 1.5 without clipping: finite after one step, non-finite gradients at the second.
DIVERGING = ["model=rnn", "model.nonlinearity=relu", "model.num_layers=4", "trainer.gradient_clip_val=null"]


INVALID_VALUES = [
    ("model.num_layers=two", "model.num_layers: Value 'two' of type 'str' could not be converted to Integer"),
    ("model.dropout=1.5", "model.dropout=1.5 is invalid: use a probability in [0, 1)"),
    ("model.input_dropout=1", "model.input_dropout=1.0 is invalid: use a probability in [0, 1)"),
    ("model.cell=transformer", "model.cell: Invalid value 'transformer', expected one of [rnn, gru, lstm]"),
    ("optim.lr=-1", "optim.lr=-1.0 is invalid: use a learning rate > 0"),
    ("trainer.max_steps=0", "trainer.max_steps=0 is invalid: use an integer >= 1"),
    ("memory.weight=1", "memory.weight=1.0 is invalid: use a share in (0, 1)"),
]


@pytest.mark.slow
def test_invalid_values_stop_before_any_data_is_read(tiny_overrides, tmp_path):
    # The corpus is empty: if validation came after loading, the error would be about the text.
    (tmp_path / "empty.txt").write_text("")
    corpus = f"data.path={tmp_path / 'empty.txt'}"
    commands = [
        ("lyricgen.train", *tiny_overrides, corpus, override, f"hydra.run.dir={tmp_path}/{i}")
        for i, (override, _) in enumerate(INVALID_VALUES)
    ]
    for result, (_, message) in zip(run_modules(commands, tmp_path), INVALID_VALUES, strict=True):
        assert error_line(result) == f"error: {message}"


@pytest.mark.slow
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
    assert dict(curve(run_dir, "train/diverged")) == {1: 1.0}


@pytest.mark.slow
def test_a_sweep_goes_on_past_a_diverged_run(tiny_overrides, tmp_path):
    sweep = tmp_path / "sweep"
    args = ["-m", *tiny_overrides, *DIVERGING, "optim.lr=0.01,1.5", f"hydra.sweep.dir={sweep}"]
    result = run_module("lyricgen.train", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "training diverged" in result.stderr
    (good,) = sweep.glob("*optim.lr=0.01*")
    (bad,) = sweep.glob("*optim.lr=1.5*")
    assert (good / "checkpoints" / "last.ckpt").is_file() and curve(good, "val/loss")
    assert curve(bad, "train/diverged") and not curve(good, "train/diverged")
    assert json.loads((bad / "status.json").read_text())["state"] == "diverged"  # what the sweep's end reads
    assert result.stderr.strip().splitlines()[-1] == f"sweep {sweep}: 1 diverged, 1 finished"


@pytest.mark.slow
def test_resume_after_sigkill_is_bit_identical(tiny_overrides, compose_config, tmp_path):
    # Dropout makes the run depend on the global RNG too, not only on the window sampler.
    model = ["model.num_layers=2", "model.dropout=0.3", "checkpoint.every_n_steps=10", "trainer.val_check_interval=15"]
    reference = compose_config(*model, "trainer.max_steps=50")
    fit_run(reference, tmp_path / "reference")

    run_dir = tmp_path / "killed"
    args = [*tiny_overrides, *model, "trainer.max_steps=100000", f"hydra.run.dir={run_dir}"]
    process = stopped_midway([sys.executable, "-m", "lyricgen.train", *args], run_dir, signal.SIGKILL, cwd=tmp_path)
    last = run_dir / "checkpoints" / "last.ckpt"  # SIGKILL: no clean-up, like a power loss
    assert process.wait() == -signal.SIGKILL
    killed_at = read_checkpoint(last)["global_step"]
    assert 10 <= killed_at < 50

    result = run_module("lyricgen.train", f"resume={run_dir}", "trainer.max_steps=50", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    expected = dict(curve(tmp_path / "reference", "train/loss"))
    resumed = dict(curve(run_dir, "train/loss"))
    assert sorted(resumed) == list(range(50))  # one continuous curve: the killed run's extra steps purged
    assert resumed == expected  # every step, bit for bit
    assert read_checkpoint(last)["global_step"] == 50


@pytest.mark.slow
def test_resume_refuses_changes_it_could_not_honour(trained_run, tmp_path):
    result = run_module("lyricgen.train", f"resume={trained_run}", "optim.lr=0.5", cwd=tmp_path)
    assert result.returncode == 2
    assert "a resumed run keeps its config: drop ['optim.lr=0.5']" in result.stderr
    result = run_module("lyricgen.train", f"resume={tmp_path}/nowhere", cwd=tmp_path)
    assert result.returncode == 2 and "nothing to resume" in result.stderr


@pytest.mark.slow
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
    from lyricgen.training.fit import AtomicCheckpointIO

    path = tmp_path / "checkpoints" / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"global_step": 1, "state_dict": {"w": torch.ones(2)}}, path)
    with pytest.raises(Exception):  # noqa: B017  (what torch raises for an unpicklable object varies)
        io.save_checkpoint({"global_step": 2, "broken": lambda: None}, path)
    assert read_checkpoint(path)["global_step"] == 1
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]  # no partial file left behind


@pytest.mark.slow
def test_a_finite_blow_up_is_divergence_too(tmp_path):
    # The command: without the smoothed-loss guard it exits 0 with "val loss 7989345.0000".
    run_dir = tmp_path / "run"
    args = ["model=rnn", "model.hidden_size=32", "data.batch_size=8", "data.seq_len=32", "optim.lr=1000000"]
    args += ["trainer.max_steps=400", "trainer.gradient_clip_val=null", "trainer.enable_progress_bar=false"]
    result = run_module("lyricgen.train", *args, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: training diverged at step ") and "x ln(vocabulary)" in line
    assert curve(run_dir, "train/diverged")
    from lyricgen.report import write_report

    write_report(run_dir)
    assert next(csv.DictReader((run_dir / "results.csv").open()))["diverged"] == "True"


def guard(vocab_size: int = 90) -> LyricLM:
    return adam_module("".join(chr(32 + i) for i in range(vocab_size)), {"hidden_size": 4}, lr=0.001)


def test_the_guard_lets_the_papers_loss_spikes_pass_and_stops_a_blow_up():
    module, rng = guard(), np.random.default_rng(0)  # ln(90) = 4.5, as on the rock lyrics
    losses = rng.normal(2.0, 0.35, 20_000)
    losses[5000:5050] = rng.normal(3.4, 0.5, 50)  # a 50-step mean of 3.4 nats ...
    losses[[5010, 12000, 17700]] = 8.1  # ... and single steps of 8.1
    losses[9000:9200] = 4.4  # a long stretch near a uniform guess
    for loss in losses:
        module.check_loss(float(loss))
    with pytest.raises(Diverged, match=r"averaged over ~50 steps, is .* above 2.0 x ln\(vocabulary\) = 9.000"):
        for loss in np.full(100, 50.0):  # a finite blow-up: loss 50 for a few dozen steps
            module.check_loss(float(loss))
    with pytest.raises(Diverged, match="loss is nan"):
        guard().check_loss(math.nan)


def test_steps_a_grad_scaler_skips_are_not_divergence():
    torch.manual_seed(0)
    ids = torch.randint(20, (5_000,), dtype=torch.uint8)
    module = adam_module("abcdefghijklmnopqrst", {"hidden_size": 16, "input": "embedding"}, lr=0.01)
    # fp16 gradients of a loss scaled by 2**40 overflow: the scaler skips steps and halves its scale
    precision = MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu", init_scale=2.0**40))
    trainer = L.Trainer(
        max_steps=40, plugins=[precision], logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, gradient_clip_val=1.0, limit_val_batches=0,
    )  # fmt: skip
    trainer.fit(module, train_dataloaders=DataLoader(RandomWindows(ids, 4, 16, seed=0), batch_size=None))
    assert trainer.global_step == 40 and 10 < module.skipped_steps < 40
    assert precision.scaler.get_scale() < 2.0**30


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_ctrl_c_save_the_current_step_and_resume_bit_identically(
    stop, compose_config, tiny_overrides, tmp_path
):
    model = ["model.num_layers=2", "model.dropout=0.3", "checkpoint.every_n_steps=7", "trainer.val_check_interval=15"]
    fit_run(compose_config(*model, "trainer.max_steps=50"), tmp_path / "reference")
    run_dir = tmp_path / "stopped"
    args = [*tiny_overrides, *model, "trainer.max_steps=100000", f"hydra.run.dir={run_dir}"]
    command = [sys.executable, "-m", "lyricgen.train", *args]
    process = stopped_midway(command, run_dir, stop, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    last = run_dir / "checkpoints" / "last.ckpt"
    assert process.wait(timeout=60) == 128 + stop
    line = process.stderr.read().strip().splitlines()[-1]
    step = read_checkpoint(last)["global_step"]
    assert line == (
        f"error: stopped by {stop.name} after step {step}: saved {last}; "
        f"continue with: python -m lyricgen.train resume={run_dir}"
    )
    assert 7 <= step < 50
    result = run_module("lyricgen.train", f"resume={run_dir}", "trainer.max_steps=50", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert dict(curve(run_dir, "train/loss")) == dict(curve(tmp_path / "reference", "train/loss"))


@pytest.mark.slow
def test_a_requeued_job_continues_its_run_and_another_run_is_refused(compose_config, tiny_overrides, tmp_path):
    """SLURM requeues a preempted job by running its command again, into the same run directory."""
    model = ["model.num_layers=2", "model.dropout=0.3", "checkpoint.every_n_steps=7", "trainer.val_check_interval=15"]
    fit_run(compose_config(*model, "trainer.max_steps=50"), tmp_path / "reference")
    run_dir = tmp_path / "job"
    command = [sys.executable, "-m", "lyricgen.train", *tiny_overrides, *model, "trainer.max_steps=50"]
    command.append(f"hydra.run.dir={run_dir}")
    process = stopped_midway(command, run_dir, signal.SIGTERM, cwd=tmp_path, stderr=subprocess.DEVNULL)  # preemption
    last = run_dir / "checkpoints" / "last.ckpt"
    assert process.wait(timeout=60) == 128 + signal.SIGTERM and read_checkpoint(last)["global_step"] < 50
    again = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"note: {run_dir} already holds this run: continuing it" in again.stderr
    assert dict(curve(run_dir, "train/loss")) == dict(curve(tmp_path / "reference", "train/loss"))
    other = subprocess.run([*command, "optim.lr=0.5"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert other.returncode == 2 and other.stderr.strip().splitlines() == [
        f"error: {run_dir} already holds another run (optim.lr differ): choose another hydra.run.dir, "
        f"or continue that run with resume={run_dir}"
    ]


@pytest.mark.slow
def test_a_checkpoint_that_cannot_be_written_stops_in_one_line_and_keeps_the_previous(compose_config, tmp_path):
    run_dir = tmp_path / "run"
    fit_run(compose_config(), run_dir)  # 6 steps
    before = (run_dir / "checkpoints" / "last.ckpt").read_bytes()
    limit = len(before) // 2  # files may not grow past half a checkpoint: the next save fails
    result = subprocess.run(
        [sys.executable, "-m", "lyricgen.train", f"resume={run_dir}", "trainer.max_steps=12"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)),
    )  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: cannot save checkpoint {run_dir / 'checkpoints'}/") and "File too large" in line
    assert "the previous checkpoint is kept" in line
    assert (run_dir / "checkpoints" / "last.ckpt").read_bytes() == before
    assert read_checkpoint(run_dir / "checkpoints" / "last.ckpt")["global_step"] == 6


@pytest.mark.slow
def test_documented_commands_end_in_one_line_not_a_traceback(trained_run, tiny_overrides, tmp_path):
    working = ["+trainer.fast_dev_run=true", "+trainer.logger=false"]
    refused = [
        ("+trainer.colour=1", "error: trainer.colour is not an argument of lightning.Trainer"),
        ("+trainer.max_epochs=abc", "error: trainer.max_epochs=abc is not a valid max_epochs"),
        ("+trainer.callbacks=[]", "error: trainer.callbacks is set by lyricgen itself"),
    ]
    commands = [("lyricgen.train", f"resume={trained_run}")]
    commands += [
        ("lyricgen.train", *tiny_overrides, extra, f"hydra.run.dir={tmp_path / str(i)}")
        for i, extra in enumerate([*working, *(extra for extra, _ in refused)])
    ]
    finished, *results = run_modules(commands, tmp_path)
    assert finished.returncode == 2 and "Traceback" not in finished.stderr
    assert (
        f"{trained_run} already ran its 60 steps" in finished.stderr
        and "trainer.max_steps=<more than 60>" in finished.stderr
    )
    for result in results[: len(working)]:
        assert result.returncode == 0, result.stderr
    for result, (_, message) in zip(results[len(working) :], refused, strict=True):
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert result.stderr.strip().splitlines()[-1].startswith(message)


@pytest.mark.slow
def test_a_resume_keeps_the_runs_own_hydra_record(compose_config, tiny_overrides, tmp_path):
    run_dir = tmp_path / "run"
    first = run_module("lyricgen.train", *tiny_overrides, "model=gru", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    record = (run_dir / ".hydra" / "overrides.yaml").read_text()
    resumed = run_module("lyricgen.train", f"resume={run_dir}", "trainer.max_steps=9", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert (run_dir / ".hydra" / "overrides.yaml").read_text() == record and "model=gru" in record
