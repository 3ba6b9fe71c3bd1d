"""A run made by an earlier lyricgen loads as today's config through the migrations of lyricgen.rundir, with
the behaviour it was trained with, and continues with resume=."""

import shutil

import pytest
import torch
import yaml
from conftest import CONF_DIR, run_module

from lyricgen import UserError
from lyricgen.config import validate
from lyricgen.rundir import MIGRATIONS, RunDir, load_run_config
from lyricgen.training.fit import fit_run

FORMAT = yaml.safe_load((CONF_DIR / "config.yaml").read_text())["run_format"]


def made_before_formats(saved: dict) -> dict:
    """A config as a run saved it before run formats were recorded: no format, the optimiser implied (Adam),
    the keys added since then absent, callbacks a list."""
    old = {key: value for key, value in saved.items() if key not in ("run_format", "guard", "spikes", "memory")}
    old["optim"] = {key: value for key, value in saved["optim"].items() if key in ("lr", "betas", "weight_decay")}
    old["data"] = {key: value for key, value in saved["data"].items() if key not in ("hygiene", "dedup")}
    old["model"] = {key: value for key, value in saved["model"].items() if key not in ("_target_", "input_dropout")}
    old["callbacks"] = []
    return old


def test_each_format_has_its_migration():
    assert len(MIGRATIONS) == FORMAT


def test_a_run_made_before_formats_loads_with_the_behaviour_it_had(compose_config, tmp_path):
    run = tmp_path / "old"
    fit_run(compose_config("optim=adam"), run)
    today = yaml.safe_load(RunDir(run).config.read_text())
    RunDir(run).config.write_text(yaml.safe_dump(made_before_formats(today)))
    loaded = load_run_config(run)
    validate(loaded)
    assert loaded.run_format == FORMAT
    assert loaded.optim._target_ == "torch.optim.Adam" and loaded.optim.schedule == "constant"
    assert loaded.optim.lr == today["optim"]["lr"] and not loaded.optim.decoupled_weight_decay
    assert not loaded.data.hygiene and not loaded.data.dedup and loaded.model.input_dropout == 0.0
    assert loaded.guard == today["guard"] and loaded.callbacks == {}
    resumed = run_module("lyricgen.train", f"resume={run}", "trainer.max_steps=8", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert torch.load(RunDir(run).last, weights_only=False)["global_step"] == 8


def test_a_run_from_a_newer_lyricgen_is_refused_in_one_line(trained_run, tmp_path):
    run = tmp_path / "new"
    shutil.copytree(trained_run, run)
    saved = yaml.safe_load(RunDir(run).config.read_text())
    RunDir(run).config.write_text(yaml.safe_dump(saved | {"run_format": FORMAT + 1}))
    with pytest.raises(UserError, match=f"made by a newer lyricgen \\(run format {FORMAT + 1}\\)"):
        load_run_config(run)
