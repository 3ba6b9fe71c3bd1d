"""The paper's experiments as configs: faithful to the paper, one factor per ablation, and each one runs."""

import pytest
from conftest import CONF_DIR, TOY_LYRICS
from omegaconf import OmegaConf

from lyricgen import Diverged
from lyricgen.training.fit import fit_run

EXPERIMENTS = sorted(path.stem for path in (CONF_DIR / "experiment").glob("*.yaml"))


def test_paper_experiments_are_faithful(compose_config):
    baseline = compose_config("experiment=paper_baseline", tiny=False)
    assert (baseline.data.batch_size, baseline.data.seq_len) == (1, 200)
    assert (baseline.model.cell, baseline.model.num_layers, baseline.model.hidden_size) == ("rnn", 1, 100)
    assert (baseline.model.nonlinearity, baseline.model.input, baseline.model.dropout) == ("tanh", "onehot", 0.0)
    assert (baseline.optim.lr, baseline.trainer.max_steps, baseline.trainer.gradient_clip_val) == (0.005, 20000, None)
    best = compose_config("experiment=paper_best", tiny=False)
    assert (best.model.num_layers, best.model.dropout, best.model.nonlinearity, best.optim.lr) == (
        4,
        0.2,
        "relu",
        0.001,
    )
    assert compose_config("experiment=paper_gru", tiny=False).trainer.max_steps == 30000
    assert compose_config("experiment=paper_deep16", tiny=False).model.num_layers == 16
    assert compose_config("experiment=paper_high_lr", tiny=False).optim.lr > best.optim.lr
    assert compose_config("experiment=paper_50k", "scale=0.1", tiny=False).trainer.max_steps == 5000


@pytest.mark.parametrize("ablation", [name for name in EXPERIMENTS if name.startswith("ablation_")])
def test_each_ablation_changes_one_factor_of_the_baseline(compose_config, ablation):
    baseline = compose_config("experiment=paper_baseline", tiny=False)
    changed = compose_config(f"experiment={ablation}", tiny=False)
    differences = [
        f"{group}.{key}"
        for group in ("model", "optim", "data", "trainer")
        for key in baseline[group]
        if baseline[group][key] != changed[group][key]
    ]
    assert len(differences) == 1, differences


@pytest.mark.slow
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_each_experiment_runs_end_to_end_at_a_tiny_scale(compose_config, experiment, tmp_path):
    """Every preset as `make reproduce SCALE=...` runs it: its iterations come from ${scaled:N}, resolved
    only when the Trainer is built (composing alone would not find a preset that cannot start)."""
    corpus = tmp_path / "lyrics.txt"
    corpus.write_text(TOY_LYRICS * 4)  # long enough for the paper's 200-character windows
    data = ["data=text", f"data.path={corpus}", "data.val_chars=1000", "trainer.enable_progress_bar=false"]
    cfg = compose_config(
        f"experiment={experiment}", "scale=0.0003", *data, "trainer.enable_model_summary=false", tiny=False
    )
    assert OmegaConf.to_container(cfg.trainer, resolve=True)["max_steps"] <= 15
    if experiment == "paper_high_lr":  # the experiment that shows divergence
        with pytest.raises(Diverged, match="training diverged at step 1"):
            fit_run(cfg, tmp_path / "run")
        return
    fit_run(cfg, tmp_path / "run")
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()
