"""lyricgen.evaluate: a checkpoint's loss on a corpus's validation or test split, or on a text file."""

import json

import pytest
from conftest import CONF_DIR, TINY, TOY_LYRICS, run_module
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lyricgen import UserError
from lyricgen.data.encoded import split_ids
from lyricgen.training.fit import fit_run
from lyricgen.training.ngram_memory import run_ngram_memory
from lyricgen.training.scoring import evaluate


@pytest.fixture(scope="module")
def run_with_test_split(tmp_path_factory):
    """A run trained on the toy lyrics with a test split held out, and its best validation loss."""
    root = tmp_path_factory.mktemp("evaluate")
    (root / "toy.txt").write_text(TOY_LYRICS)
    data = ["data=text", f"data.path={root / 'toy.txt'}", f"data.prepared_dir={root / 'prepared'}"]
    overrides = [*TINY, *data, "data.test_fraction=0.1", "trainer.max_steps=12", "optim.lr=0.02"]
    with initialize_config_dir(str(CONF_DIR), version_base=None):
        best = fit_run(compose("config", overrides=overrides), root / "run")
    return root / "run", best


def evaluated(*overrides: str) -> dict:
    with initialize_config_dir(str(CONF_DIR), version_base=None):
        return evaluate(compose("evaluate", overrides=list(overrides)), overrides)


@pytest.mark.slow
def test_the_command_scores_the_validation_split_as_training_did(run_with_test_split, tmp_path):
    run, best = run_with_test_split
    result = run_module("lyricgen.evaluate", f"ckpt={run}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    val = json.loads((run / "evaluation-val.json").read_text())
    assert result.stdout.startswith("val split of data=text: ") and "bits/char" in result.stdout
    assert val["loss"] == pytest.approx(best, rel=1e-5)  # the very windows validation scored
    card = val["scorecard"]  # the samples' lyrics scorecard beside the validation text's, cut alike
    assert card["samples"]["pieces"] == 10 and card["scored_text"]["real_words"] > card["samples"]["real_words"]
    assert card["scored_text"]["line_length_distance"] == 0  # the real pieces against themselves
    other = tmp_path / "other.txt"  # data=... on the command line: that corpus's split instead of the run's
    other.write_text("la la la la\nyeah yeah yeah\n" * 200)
    args = [f"ckpt={run}", "data=text", f"data.path={other}", f"out={tmp_path / 'other.json'}"]
    assert run_module("lyricgen.evaluate", *args, cwd=tmp_path).returncode == 0
    assert json.loads((tmp_path / "other.json").read_text())["characters"] == 256  # 270 held out, windows of 128
    assert (tmp_path / "outputs" / "prepared").is_dir() and not list(tmp_path.glob("$*"))  # the cache's real path


def test_the_test_split_is_the_text_held_out_from_both(run_with_test_split):
    run, _ = run_with_test_split
    test, val = evaluated(f"ckpt={run}", "split=test"), evaluated(f"ckpt={run}")
    held_out = int(len(TOY_LYRICS) * (1 - 0.05)) - int(len(TOY_LYRICS) * (1 - (0.05 + 0.1)))  # [train|test|val]
    assert test["characters"] == (held_out - 1) // 16 * 16 and test["loss"] != val["loss"]
    assert test["bpc"] == pytest.approx(test["loss"] / 0.6931471805599453)


def test_the_memory_mixture_scores_as_validation_did(run_with_test_split):
    run, _ = run_with_test_split
    last = evaluated(f"ckpt={run / 'checkpoints' / 'last.ckpt'}")
    logged = EventAccumulator(str(run), size_guidance={"scalars": 0}).Reload().Scalars("val/loss_with_memory")
    assert last["loss_with_memory"] == pytest.approx(logged[-1].value, rel=1e-5)
    assert last["bpc_with_memory"] == pytest.approx(last["loss_with_memory"] / 0.6931471805599453)
    assert "loss_with_memory" not in evaluated(f"ckpt={run}", "with_memory=false")


def test_a_runs_memory_reads_only_the_training_characters_it_counts(run_with_test_split, tmp_path):
    config = OmegaConf.load(run_with_test_split[0] / "config.yaml")
    whole = len(split_ids(config.data, "train", labelled=False)[0])
    assert len(split_ids(config.data, "train", labelled=False, limit=100)[0]) == 100  # the prefix alone is read
    for max_chars, train_chars, counted in ((100, None, 100), (100, 50, 50), (10**9, None, whole)):
        config.memory.max_chars, config.data.train_chars = max_chars, train_chars
        OmegaConf.save(config, tmp_path / "config.yaml")
        mixture = run_ngram_memory(tmp_path, "".join(sorted(set(TOY_LYRICS))), labelled=False)
        assert int(mixture.memory.levels[0].totals[0]) == counted


def test_a_text_file_is_scored_whole(run_with_test_split, tmp_path):
    run, _ = run_with_test_split
    (tmp_path / "lines.txt").write_text("la la la la\n" * 10)
    assert evaluated(f"ckpt={run}", f"text={tmp_path / 'lines.txt'}")["characters"] == (120 - 1) // 16 * 16


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["split=train"], "split=train is not a split"),
        (["text=unknown.txt"], "unknown.txt"),
        (["ckpt=nowhere"], "checkpoint not found"),
    ],
)
def test_bad_requests_are_one_line(run_with_test_split, args, message):
    with pytest.raises(UserError, match=message):
        evaluated(f"ckpt={run_with_test_split[0]}", *args)


def test_no_test_split_and_unseen_characters_are_refused(run_with_test_split, trained_run, tmp_path):
    corpus = [f"ckpt={run_with_test_split[0]}", "data=text", f"data.path={run_with_test_split[0].parent / 'toy.txt'}"]
    with pytest.raises(UserError, match=r"no test split: train with data\.test_fraction"):
        evaluated(*corpus, f"data.prepared_dir={tmp_path}", "split=test")
    (tmp_path / "shout.txt").write_text("OH BABY BABY\n" * 40)
    with pytest.raises(UserError, match="vocabulary lacks: 'ABHOY'"):
        evaluated(f"ckpt={trained_run}", f"text={tmp_path / 'shout.txt'}")
