"""Beyond one process: DDP on 2 CPU processes, SLURM arrays through submitit's local executor, Optuna."""

import pytest
import torch
import yaml
from conftest import CONF_DIR, run_module
from hydra import compose, initialize_config_dir

from lyricgen.data.windows import RandomWindows
from lyricgen.nn.checkpoints import read_checkpoint


def test_ranks_sample_disjoint_shards_deterministically():
    # The first half of the text holds ids 0..99, the second 100..199: a window's ids tell its shard.
    ids = torch.cat([torch.arange(500) % 100, 100 + torch.arange(500) % 100]).to(torch.uint8)
    ranks = [RandomWindows(ids, 8, 10, seed=0, rank=rank, world_size=2) for rank in (0, 1)]
    (inputs_0, targets_0), (inputs_1, targets_1) = ranks[0].batch(3), ranks[1].batch(3)
    assert int(torch.cat([inputs_0, targets_0]).max()) < 100
    assert int(torch.cat([inputs_1, targets_1]).min()) >= 100
    assert torch.equal(inputs_1, ranks[1].batch(3)[0])  # deterministic per (seed, rank, step)
    assert not torch.equal(inputs_1 - 100, inputs_0)  # each rank draws its own offsets, not rank 0's shifted


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_trains_both_ranks_into_one_checkpoint(tiny_overrides, tmp_path):
    run_dir = tmp_path / "run"
    ddp = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.precision=32-true", "threads=1"]
    result = run_module("lyricgen.train", *tiny_overrides, *ddp, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "GLOBAL_RANK: 0, MEMBER: 1/2" in output and "GLOBAL_RANK: 1, MEMBER: 2/2" in output
    assert result.stdout.count("run dir:") == 1  # only rank 0 writes the summary
    assert sorted(path.name for path in (run_dir / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert read_checkpoint(run_dir / "checkpoints" / "last.ckpt")["global_step"] == 6
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 1


def test_slurm_launcher_config_composes():
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="needs pip install -e .[scale]")
    with initialize_config_dir(str(CONF_DIR), version_base=None):
        cfg = compose(
            "config", overrides=["hydra/launcher=slurm", "hydra.launcher.partition=gpu"], return_hydra_config=True
        )
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.partition, launcher.gpus_per_node, launcher.timeout_min) == ("gpu", 1, 240)


@pytest.mark.slow
def test_a_sweep_runs_as_submitit_jobs(tiny_overrides, tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="needs pip install -e .[scale]")
    sweep = tmp_path / "sweep"
    args = ["-m", *tiny_overrides, "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5", "threads=1"]
    result = run_module("lyricgen.train", *args, "model.num_layers=1,2", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    runs = sorted(path for path in sweep.iterdir() if path.is_dir() and not path.name.startswith("."))
    assert len(runs) == 2 and all((run / "checkpoints" / "last.ckpt").is_file() for run in runs)
    assert list((sweep / ".submitit").glob("*/*_result.pkl"))  # the jobs really went through submitit


@pytest.mark.slow
def test_optuna_search_runs_trials_and_resumes(tiny_overrides, tmp_path):
    optuna = pytest.importorskip("optuna", reason="needs pip install -e .[scale]")
    sweep = tmp_path / "search"
    args = [*tiny_overrides, "hparams_search=optuna", f"hydra.sweep.dir={sweep}"]
    result = run_module("lyricgen.train", *args, "hydra.sweeper.n_trials=3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert 0 < best["best_value"] < 5 and {"optim.lr", "model.cell"} <= set(best["best_params"])
    study = optuna.load_study(study_name="lyricgen", storage=f"sqlite:///{sweep / 'optuna.db'}")
    assert len(study.trials) == 3
    result = run_module("lyricgen.train", *args, "hydra.sweeper.n_trials=2", cwd=tmp_path)  # the same search, resumed
    assert result.returncode == 0, result.stderr
    study = optuna.load_study(study_name="lyricgen", storage=f"sqlite:///{sweep / 'optuna.db'}")
    assert len(study.trials) == 5
    assert len([path for path in sweep.iterdir() if "_trial_" in path.name]) == 5  # no trial overwrote another


@pytest.mark.slow
def test_ddp_inside_a_sweep_runs_each_job_once_as_ddp_spawn(tiny_overrides, tmp_path):
    sweep = tmp_path / "sweep"
    ddp = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.precision=32-true", "threads=1"]
    args = ["-m", *tiny_overrides, *ddp, "model.hidden_size=16,24", f"hydra.sweep.dir={sweep}"]
    result = run_module("lyricgen.train", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("runs as ddp_spawn inside a -m sweep") == 2
    runs = [path for path in sweep.iterdir() if path.is_dir() and not path.name.startswith(".")]
    assert len(runs) == 2  # not relaunched: ddp would have re-run the whole sweep in its workers
    for run in runs:
        assert read_checkpoint(run / "checkpoints" / "last.ckpt")["global_step"] == 6
