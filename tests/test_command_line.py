"""The first hour of a new user: mistakes on the command line, --help, sweep names and the sample a run
shows, each as the user meets it (`python -m lyricgen.X` in a subprocess)."""

import re
import subprocess
import sys

import pandas as pd
import pytest
from conftest import CONF_DIR, error_line, run_module, run_modules
from hydra import compose, initialize_config_dir


@pytest.mark.parametrize(
    ("module", "args", "message"),
    [
        ("lyricgen.train", ["data=lyrics_csv"], "error: data.csv is not set: give the lyrics CSV"),
        ("lyricgen.prepare", ["data=lyrics_csv"], "error: data.csv is not set: give the lyrics CSV"),
        ("lyricgen.train", ["model.num_layer=2"], "did you mean model.num_layers?"),
        ("lyricgen.train", ["-m", "optim.lrr=0.1,0.2"], "did you mean optim.lr?"),
        ("lyricgen.train", ["~model.colour"], "model.colour is not a key of the config"),
        ("lyricgen.train", ["+model.num_layers=2"], "model.num_layers is already a key: set it without the +"),
        ("lyricgen.evaluate", ["ckpt_path=run/last.ckpt"], "ckpt_path is not an option of python -m lyricgen.evaluate"),
        ("lyricgen.evaluate", ["ckpt_path=run/last.ckpt"], "did you mean ckpt?"),
        ("lyricgen.evaluate", ["model=gru"], "model= does not apply to python -m lyricgen.evaluate"),
        ("lyricgen.prepare", ["optim.lr=0.1"], "optim.lr is not an option of python -m lyricgen.prepare"),
        ("lyricgen.train", ["+trainer.colour=1"], "trainer.colour is not an argument of lightning.Trainer"),
        ("lyricgen.train", ["trainer.max_steps=many"], "trainer.max_steps=many is invalid: use an integer >= 1"),
    ],
)
def test_a_mistake_on_the_command_line_is_one_line_naming_what_was_meant(tmp_path, module, args, message):
    assert message in error_line(run_module(module, *args, cwd=tmp_path))
    assert not (tmp_path / "outputs").exists()  # nothing was started


# Runs the command in-process and prints which heavy packages it had imported when it stopped.
PROBE = """
import runpy, sys
sys.argv = [{module!r}, *sys.argv[1:]]
try:
    runpy.run_module({module!r}, run_name="__main__")
except SystemExit:
    pass
print(sorted({{name.split(".")[0] for name in sys.modules}} & {{"torch", "lightning", "pandas"}}))
"""


@pytest.mark.parametrize(
    ("module", "args"),
    [
        ("lyricgen.train", ["+trainer.colour=1"]),
        ("lyricgen.train", ["data=text", "data.path=missing.txt"]),
        ("lyricgen.train", ["model.num_layers=two"]),
        ("lyricgen.evaluate", ["splt=test"]),
    ],
)
def test_mistakes_are_found_before_anything_heavy_is_imported(tmp_path, module, args):
    probe = PROBE.format(module=module)
    result = subprocess.run([sys.executable, "-c", probe, *args], cwd=tmp_path, capture_output=True, text=True)
    assert result.stderr.startswith("error: ") and result.stdout.strip() == "[]", (result.stdout, result.stderr)


def help_of(module: str, tmp_path) -> str:
    result = run_module(module, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_help_says_what_each_group_and_key_means(tmp_path):
    text = help_of("lyricgen.train", tmp_path)
    assert text.startswith("python -m lyricgen.train: train a character-level language model")
    assert "  model=default|gru|lstm|rnn  (default default): " in text
    assert "protocol" not in text  # not a group of a run
    keys = [line for line in text.split("keys (default shown):\n")[1].splitlines() if line.startswith("  ")]
    assert any(line.split()[0] == "model.num_layers=2" for line in keys)
    assert any(line.split()[:2] == ["data.csv=???", "(data=lyrics_csv)"] for line in keys)  # another option's key
    assert "  hydra/launcher=basic|stacked|slurm|submitit_local" in text
    meanings = [
        re.sub(r"^\(\S+\)", "", line.split(maxsplit=1)[1] if len(line.split()) > 1 else "").strip() for line in keys
    ]
    undescribed = [line.split()[0] for line, meaning in zip(keys, meanings, strict=True) if not meaning]
    assert not undescribed, f"keys without a comment in conf/: {undescribed}"
    assert "units per layer" in next(line for line in keys if line.split()[0] == "model.hidden_size=256")


def test_every_key_of_every_option_in_conf_is_in_help_and_the_training_guide(tmp_path):
    """conf/ against both: each group option and each key of config.yaml and of every option file (the
    presets aside) appears in --help and in docs/training.md's reference, which is what conf/ says."""
    from omegaconf import OmegaConf

    from lyricgen.hydra.cli import PRESETS, config_groups, option_files, prefix_of
    from lyricgen.options import flatten

    text, guide = help_of("lyricgen.train", tmp_path), (CONF_DIR.parent / "docs" / "training.md").read_text()
    top = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "config.yaml"))
    keys = {key for key, _ in flatten({key: value for key, value in top.items() if key != "hydra"})}
    for group, options in option_files().items():
        for path in options.values():
            tree = {
                key: value for key, value in OmegaConf.to_container(OmegaConf.load(path)).items() if key != "defaults"
            }
            keys |= {key for key, _ in flatten(tree, prefix_of(group))}
    keys -= {"defaults", "callbacks"}  # the defaults list; callbacks' options bring its keys
    assert len(keys) > 80
    for key in sorted(keys):
        assert f"\n  {key}=" in text, f"--help lacks {key}"
        assert f"| `{key}` |" in guide, f"docs/training.md lacks {key}"
    for group, options in config_groups().items():
        assert all(f"`{option}`" in guide for option in options) and f"| `{group}` |" in guide
    assert group not in PRESETS or "experiment=" in text
    check = subprocess.run([sys.executable, str(CONF_DIR.parent / "scripts" / "reference.py"), "--check"])
    assert check.returncode == 0, "docs/training.md's reference is not what conf/ says: run make docs"


COMMANDS = ("train", "evaluate", "prepare", "generate", "score", "play", "report", "reproduce", "batches", "standin")


@pytest.mark.slow
def test_every_command_has_one_grammar_one_help_and_one_did_you_mean(tmp_path):
    """Each command: `--help` opens with what it does and its key=value usage; a misspelt key gets the
    closest real one, in one line, before anything runs."""
    helps = run_modules([(f"lyricgen.{command}", "--help") for command in COMMANDS], cwd=tmp_path)
    misspelt = {"train": "sead=1", "evaluate": "splt=val", "prepare": "data.val_fracton=0.1", "generate": "lenght=9"}
    misspelt |= {"score": "sampels=3", "play": "prot=1", "report": "dri=x", "reproduce": "jbs=2"}
    misspelt |= {"batches": "stesp=[1]", "standin": "fracton=0.1"}
    mistakes = run_modules([(f"lyricgen.{command}", misspelt[command]) for command in COMMANDS], cwd=tmp_path)
    for command, shown, mistake in zip(COMMANDS, helps, mistakes, strict=True):
        lines = shown.stdout.splitlines()
        assert shown.returncode == 0 and lines[0].startswith(f"python -m lyricgen.{command}: "), command
        assert lines[2].startswith(f"usage: python -m lyricgen.{command} ["), command
        assert "[key=value ...]" in lines[2], command
        assert mistake.returncode == 2 and "did you mean" in error_line(mistake), (command, mistake.stderr[-500:])
    assert not (tmp_path / "outputs").exists()


def test_evaluate_and_prepare_help_show_only_what_applies_to_them(tmp_path):
    evaluate, prepare = (help_of(module, tmp_path) for module in ("lyricgen.evaluate", "lyricgen.prepare"))
    for text in (evaluate, prepare):
        assert "  data=lyrics_csv|songbooks|songs_poems|text" in text
        assert not re.search(r"\n  (model|optim|trainer|memory)[.=]", text)
    assert "\n  ckpt=latest " in evaluate and "\n  ckpt=" not in prepare


def test_the_overfit_check_turns_every_dropout_off():
    with initialize_config_dir(str(CONF_DIR), version_base=None):
        cfg = compose("config", overrides=["debug=overfit"])
    assert cfg.model.dropout == 0 and cfg.model.input_dropout == 0


@pytest.mark.slow
def test_a_sweep_is_named_by_what_it_varies_and_reported_with_validation_curves(tiny_overrides, tmp_path):
    sweep = run_module(
        "lyricgen.train", "-m", *tiny_overrides, "model=rnn,gru", "trainer.max_steps=4", "threads=1", cwd=tmp_path
    )
    assert sweep.returncode == 0, sweep.stderr
    (sweep_dir,) = (tmp_path / "outputs" / "multirun").iterdir()
    assert sorted(path.name for path in sweep_dir.iterdir() if path.is_dir()) == ["model=gru", "model=rnn"]
    report = run_module("lyricgen.report", f"dir={sweep_dir}", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    groups = pd.read_csv(sweep_dir / "groups.csv")
    assert sorted(groups["group"]) == ["model=gru", "model=rnn"]
    text = (sweep_dir / "report.md").read_text()
    assert "No run had a gradient spike." in text and "| nan |" not in text
    assert "nan" not in report.stdout and " - " in report.stdout.splitlines()[-1]  # one seed has no spread: "-"


@pytest.mark.slow
def test_generate_gives_by_default_the_sample_that_training_printed(tiny_overrides, tmp_path):
    run_dir = tmp_path / "run"
    trained = run_module("lyricgen.train", *tiny_overrides, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    printed = trained.stdout.split("sample:\n", 1)[1][:-1]  # print's own line break dropped
    ckpt = run_dir / "checkpoints" / "last.ckpt"  # the weights training ended with
    (with_memory, alone) = run_modules(
        [
            ("lyricgen.generate", f"ckpt={ckpt}", f"length={len(printed)}"),
            ("lyricgen.generate", f"ckpt={ckpt}", f"length={len(printed)}", "with_memory=false"),
        ],
        tmp_path,
    )
    assert with_memory.returncode == 0, with_memory.stderr
    assert with_memory.stdout == f"\n{printed}\n"  # the prime (a line break) and the same continuation
    assert alone.stdout != with_memory.stdout


@pytest.mark.slow
def test_the_composed_config_can_be_printed_as_the_run_starts(tiny_overrides, tmp_path):
    result = run_module(
        "lyricgen.train", *tiny_overrides, "extras.print_config=true", "model.hidden_size=24", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert (
        "model:\n  _target_: lyricgen.nn.CharRNN\n  cell: lstm\n  num_layers: 1\n  hidden_size: 24\n" in result.stdout
    )


def test_a_sweep_with_cfg_job_prints_its_first_jobs_config_without_running(tmp_path):
    result = run_module("lyricgen.train", "-m", "seed=3,4", "model.hidden_size=24", "--cfg", "job", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "\nseed: 3\n" in result.stdout and "  hidden_size: 24\n" in result.stdout
    assert "first value" in result.stderr and not (tmp_path / "outputs").exists()
