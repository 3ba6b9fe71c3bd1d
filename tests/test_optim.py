"""The optimiser comes from the config: conf/optim/'s options build the class they name with their
arguments, any `_target_` works, a wrong argument is one line, and a run of any of them resumes."""

import pytest
import torch
from conftest import run_module

from lyricgen import UserError
from lyricgen.training.fit import build_module

OPTIONS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD, "rmsprop": torch.optim.RMSprop}


@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_each_option_builds_its_optimiser_with_its_arguments(compose_config, option):
    cfg = compose_config(f"optim={option}", "optim.schedule=constant", "optim.lr=0.0123")
    optimizer = build_module(cfg, "abc", []).configure_optimizers()
    assert type(optimizer) is OPTIONS[option]
    group = optimizer.param_groups[0]
    arguments = {key: value for key, value in cfg.optim.items() if key not in ("_target_", "_partial_", "schedule")}
    arguments = {key: value for key, value in arguments.items() if key in group}
    assert group["lr"] == 0.0123 and len(arguments) >= 3
    assert {key: group[key] for key in arguments} == {
        key: tuple(value) if key == "betas" else value for key, value in arguments.items()
    }


def test_any_optimiser_class_works_and_a_wrong_argument_is_one_line(compose_config):
    nadam = compose_config("optim=adamw", "optim._target_=torch.optim.NAdam", "optim.schedule=constant")
    with pytest.raises(UserError, match=r"NAdam .*'fused' \(leave it out: ~optim.fused\)"):
        build_module(nadam, "abc", []).configure_optimizers()
    nadam = compose_config("optim=adamw", "optim._target_=torch.optim.NAdam", "~optim.fused", "optim.schedule=constant")
    assert type(build_module(nadam, "abc", []).configure_optimizers()) is torch.optim.NAdam
    adagrad = compose_config("optim=sgd", "optim._target_=torch.optim.Adagrad", "optim.schedule=constant")
    with pytest.raises(UserError, match=r"optim._target_=torch.optim.Adagrad .*momentum"):
        build_module(adagrad, "abc", []).configure_optimizers()
    missing = compose_config("optim=sgd", "optim._target_=torch.optim.Nothing", "optim.schedule=constant")
    with pytest.raises(UserError, match=r"optim._target_=torch.optim.Nothing"):
        build_module(missing, "abc", []).configure_optimizers()


@pytest.mark.slow
def test_a_run_with_sgd_trains_and_resumes_with_its_momentum(tiny_overrides, tmp_path):
    run_dir = tmp_path / "run"
    first = run_module("lyricgen.train", *tiny_overrides, "optim=sgd", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    saved = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    assert saved["global_step"] == 6
    assert all("momentum_buffer" in state for state in saved["optimizer_states"][0]["state"].values())
    resumed = run_module("lyricgen.train", f"resume={run_dir}", "trainer.max_steps=9", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    again = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    assert again["global_step"] == 9 and again["hyper_parameters"]["optimizer"]["_target_"] == "torch.optim.SGD"
