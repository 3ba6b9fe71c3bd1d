"""Ecosystem plug-ins: the logger= and debug= groups and callbacks from config, run for real."""

import csv

import pytest
from conftest import run_module
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def run(tiny_overrides, tmp_path, *extra, name="run"):
    """A run with the tiny settings, less the step counts when a debug option sets its own, into tmp_path/name."""
    if any(item.startswith("debug=") for item in extra):
        tiny_overrides = [item for item in tiny_overrides if not item.startswith(("trainer.max_steps", "trainer.val_"))]
    result = run_module("lyricgen.train", *tiny_overrides, *extra, f"hydra.run.dir={tmp_path / name}", cwd=tmp_path)
    return result, tmp_path / name


@pytest.mark.slow
def test_csv_logger_writes_every_step_beside_tensorboard(tiny_overrides, tmp_path):
    result, run_dir = run(tiny_overrides, tmp_path, "logger=csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    assert sorted(int(row["step"]) for row in rows if row["train/loss"]) == list(range(6))
    assert len([row for row in rows if row["val/loss"]]) == 2
    assert "train/loss" in EventAccumulator(str(run_dir)).Reload().Tags()["scalars"]  # TensorBoard still


@pytest.mark.slow
def test_a_logger_whose_package_is_missing_is_one_line(tiny_overrides, tmp_path):
    pytest.importorskip("lightning")
    try:
        import wandb  # noqa: F401

        pytest.skip("wandb is installed here")
    except ImportError:
        pass
    result, _ = run(tiny_overrides, tmp_path, "logger=wandb")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: logger=wandb: cannot make ")


@pytest.mark.slow
def test_callbacks_by_name_and_the_users_own_join_lyricgens(tiny_overrides, tmp_path):
    chosen = ["callbacks=[lr_monitor,early_stopping]", "callbacks.early_stopping.patience=1"]
    result, run_dir = run(tiny_overrides, tmp_path, *chosen, "trainer.log_every_n_steps=1", "trainer.max_steps=30")
    assert result.returncode == 0, result.stderr
    scalars = EventAccumulator(str(run_dir)).Reload().Tags()["scalars"]
    assert "lr-Adam" in scalars and "train/loss" in scalars  # theirs and ours
    own = "+callbacks.mine={_target_: lightning.pytorch.callbacks.LearningRateMonitor, logging_interval: step}"
    result, run_dir = run(tiny_overrides, tmp_path, own, "trainer.log_every_n_steps=1", name="own")
    assert result.returncode == 0, result.stderr
    assert "lr-Adam" in EventAccumulator(str(run_dir)).Reload().Tags()["scalars"]
    result, _ = run(tiny_overrides, tmp_path, "+callbacks.mine={_target_: nowhere.Callback}", name="missing")
    assert result.returncode == 2
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line == "error: callbacks.mine: cannot make nowhere.Callback: No module named 'nowhere'"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("debug", "check"),
    [
        ("fdr", lambda result, run_dir: "Running in `fast_dev_run` mode" in result.stderr + result.stdout),
        ("limit", lambda result, run_dir: "after 20 steps" in result.stdout),
        (
            "profiler trainer.max_steps=6",
            lambda result, run_dir: "FIT Profiler Report" in result.stdout + result.stderr,
        ),
    ],
)
def test_debug_options_run(tiny_overrides, tmp_path, debug, check):
    result, run_dir = run(tiny_overrides, tmp_path, *f"debug={debug}".split())
    assert result.returncode == 0, result.stderr
    assert check(result, run_dir)


@pytest.mark.slow
def test_debug_overfit_drives_the_training_loss_near_zero(tiny_overrides, tmp_path):
    result, run_dir = run(tiny_overrides, tmp_path, "debug=overfit", "model.hidden_size=128", "data.seq_len=64")
    assert result.returncode == 0, result.stderr
    losses = [
        event.value
        for event in EventAccumulator(str(run_dir), size_guidance={"scalars": 0}).Reload().Scalars("train/loss")
    ]
    assert len(losses) == 300 and sum(losses[-20:]) / 20 < 0.25 < losses[0]
