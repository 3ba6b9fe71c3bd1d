"""End-to-end: the real Trainer, real Hydra composition, real event files and checkpoints."""

import json
import math
from pathlib import Path

import pytest
import torch
from conftest import curve, error_line, run_module, run_modules
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lyricgen.nn.checkpoints import load_checkpoint
from lyricgen.nn.sampling import sample_text
from lyricgen.rundir import RunDir
from lyricgen.training.fit import fit_run


def test_loss_falls_on_a_learnable_text(compose_config, tmp_path):
    cfg = compose_config("trainer.max_steps=150", "trainer.val_check_interval=150", "optim.lr=0.02")
    val_loss = fit_run(cfg, tmp_path / "run")
    uniform = math.log(len(set("oh baby baby\nrock and roll all night\nla la la la\nyeah yeah yeah\n")))
    assert val_loss < 0.5 * uniform


def test_same_config_gives_the_same_curve(compose_config, tmp_path):
    cfg = compose_config("model.dropout=0.1", "model.num_layers=2", "trainer.max_steps=12")
    assert fit_run(cfg, tmp_path / "a") == fit_run(cfg, tmp_path / "b")
    assert curve(tmp_path / "a") == curve(tmp_path / "b") and len(curve(tmp_path / "a")) == 12
    assert curve(tmp_path / "a", "train/grad_norm") == curve(tmp_path / "b", "train/grad_norm")
    other_seed = compose_config("model.dropout=0.1", "model.num_layers=2", "trainer.max_steps=12", "seed=1")
    fit_run(other_seed, tmp_path / "c")
    assert curve(tmp_path / "c") != curve(tmp_path / "a")


def test_checkpoint_alone_generates_text(compose_config, toy_corpus, tmp_path):
    fit_run(compose_config(), tmp_path / "run")
    toy_corpus.unlink()  # no corpus, no config: the checkpoint must carry everything
    for name in ("best.ckpt", "last.ckpt"):
        path = tmp_path / "run" / "checkpoints" / name
        torch.load(path, weights_only=True)  # plain values only: loads without unpickling code
        model, vocab = load_checkpoint(path)
        text = sample_text(model, vocab, length=40, seed=1)
        assert len(text) == 40 and set(text) <= set(vocab)
        assert text == sample_text(model, vocab, length=40, seed=1)


def test_paper_baseline_composes_from_groups(compose_config):
    cfg = compose_config("model=rnn", "optim=adam", "data.batch_size=1", "data.seq_len=200", tiny=False)
    paper = ("rnn", 1, 100, "tanh", "onehot")  # the paper's baseline: 1 layer of 100 tanh units, one-hot input
    model = cfg.model
    assert (model.cell, model.num_layers, model.hidden_size, model.nonlinearity, model.input) == paper
    assert cfg.optim.lr == 0.005
    assert (cfg.data.batch_size, cfg.data.seq_len) == (1, 200)
    assert cfg.data.source == "songs_poems"


def test_command_line_run_writes_events_checkpoints_and_a_sample(tiny_overrides, tmp_path):
    run_dir = tmp_path / "run"
    result = run_module("lyricgen.train", *tiny_overrides, f"hydra.run.dir={run_dir}", "model=gru", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"run dir: {run_dir}" in result.stdout
    assert "bits/char" in result.stdout and "sample:" in result.stdout
    assert "with the 12-gram memory of the training text (weight 0.25): val loss" in result.stdout
    assert result.stdout.startswith("model: CharRNN (cell=gru, num_layers=1, hidden_size=16, input=onehot), ")

    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "tensors": 0}).Reload()
    scalars = events.Tags()["scalars"]
    for tag in ("train/loss", "train/grad_norm", "val/loss", "val/bpc", "perf/chars_per_s", "val/loss_with_memory"):
        assert tag in scalars, tag
    # the toy text repeats its lines: after 6 steps the memory of it predicts better than the network
    assert events.Scalars("val/loss_with_memory")[-1].value < events.Scalars("val/loss")[-1].value
    assert [e.step for e in events.Scalars("train/loss")] == list(range(6))
    assert [e.step for e in events.Scalars("val/loss")] == [2, 5]  # after the 3rd and 6th step
    assert "sample/text_summary" in events.Tags()["tensors"]
    assert "_hparams_/session_start_info" in events.PluginTagToContent("hparams")  # TensorBoard's HPARAMS tab
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert (run_dir / "checkpoints" / "best.ckpt").is_file()
    assert "cell: gru" in (run_dir / "hparams.yaml").read_text()


@pytest.mark.slow
def test_multirun_sweep_makes_one_run_dir_per_value(tiny_overrides, tmp_path):
    sweep_dir = tmp_path / "sweep"
    result = run_module(
        "lyricgen.train", "-m", *tiny_overrides, f"hydra.sweep.dir={sweep_dir}", "model.num_layers=1,2", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    runs = sorted(path.name for path in sweep_dir.iterdir() if path.is_dir() and not path.name.startswith("."))
    assert len(runs) == 2
    assert "model.num_layers=1" in runs[0].split(",") and "model.num_layers=2" in runs[1].split(",")
    assert "data.path" not in runs[0]  # paths would nest directories
    for run in runs:
        assert list((sweep_dir / run).glob("events.out.tfevents.*"))
        assert (sweep_dir / run / "checkpoints" / "last.ckpt").is_file()


BAD_INPUT = [
    (["data.path=/nonexistent/lyrics.txt"], "corpus file not found: /nonexistent/lyrics.txt"),
    (["data.path={empty}"], "corpus file is empty"),
    (["data.path={short}"], "corpus too short"),
    (["model=transformer"], "model=transformer is not an option: use one of default, gru, lstm, rnn"),
    (["model.colour=red"], "model.colour is not a key of the config"),
]


@pytest.mark.slow
def test_bad_input_exits_with_one_clear_line_and_leaves_no_run_behind(tiny_overrides, tmp_path):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "short.txt").write_text("la la la\n")
    commands = [
        (
            "lyricgen.train",
            *tiny_overrides,
            *(o.format(empty=tmp_path / "empty.txt", short=tmp_path / "short.txt") for o in overrides),
            f"hydra.run.dir={tmp_path}/run{index}",
        )
        for index, (overrides, _) in enumerate(BAD_INPUT)
    ]
    for index, (result, (_, message)) in enumerate(zip(run_modules(commands, tmp_path), BAD_INPUT, strict=True)):
        assert message in error_line(result)
        assert not (tmp_path / f"run{index}").exists()  # a run that never started leaves nothing behind


@pytest.mark.slow
def test_a_failed_run_removes_only_what_it_wrote(tiny_overrides, tmp_path):
    """hydra.run.dir may name a folder that holds the user's own files: they stay."""
    (tmp_path / "short.txt").write_text("la la la\n")
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    args = [*tiny_overrides, f"data.path={tmp_path / 'short.txt'}", f"hydra.run.dir={folder}"]
    assert "corpus too short" in error_line(run_module("lyricgen.train", *args, cwd=tmp_path))
    assert (folder / "notes.txt").read_text() == "keep me"


def test_long_sweep_directory_names_stay_unique_within_file_system_limits():
    from lyricgen.hydra.resolvers import dirname

    assert dirname("model.num_layers=2") == "model.num_layers=2"
    long_a, long_b = "a=1," * 100 + "x=1", "a=1," * 100 + "x=2"
    assert len(dirname(long_a).encode()) <= 200 and dirname(long_a) != dirname(long_b)


@pytest.mark.slow
def test_one_key_places_every_output_and_tags_are_recorded(tiny_overrides, tmp_path):
    out = tmp_path / "elsewhere"
    overrides = [item for item in tiny_overrides if not item.startswith("data.prepared_dir")]  # the default
    result = run_module("lyricgen.train", *overrides, f"paths.output_dir={out}", "tags=[baseline,rock]", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (run,) = (out / "runs").iterdir()
    assert list((out / "prepared").glob("ids-*")) and not (tmp_path / "outputs").exists()
    assert "tags:\n- baseline\n- rock" in (run / "config.yaml").read_text()
    events = EventAccumulator(str(run)).Reload()
    assert "_hparams_/session_start_info" in events.PluginTagToContent("hparams")
    sweep = run_module("lyricgen.train", "-m", *overrides, f"paths.output_dir={out}", "seed=0,1", cwd=tmp_path)
    assert sweep.returncode == 0, sweep.stderr
    (sweep_dir,) = (out / "multirun").iterdir()
    runs = sorted(path.name for path in sweep_dir.iterdir() if path.is_dir())
    assert len(runs) == 2 and "seed=0" in runs[0].split(",") and "seed=1" in runs[1].split(",")


def test_sweepers_get_the_best_validation_loss(compose_config, tmp_path):
    best = fit_run(
        compose_config("trainer.max_steps=40", "trainer.val_check_interval=5", "optim.lr=0.3"), tmp_path / "r"
    )
    logged = [value for _, value in curve(tmp_path / "r", "val/loss")]
    assert len(logged) == 8 and best == pytest.approx(min(logged))


@pytest.mark.slow
def test_shakespeare_cpu_runs_on_the_shared_corpus(compose_config, shared_data, tmp_path):
    quick = ["trainer.max_steps=4", "trainer.val_check_interval=2", "data.val_chars=2000", "model.hidden_size=32"]
    cfg = compose_config(
        "experiment=shakespeare_cpu", *quick, f"data.path={shared_data / 'tinyshakespeare.txt'}", tiny=False
    )
    assert (cfg.data.val_fraction, cfg.trainer.precision, cfg.optim.schedule) == (0.1, "bf16-mixed", "wsd")
    assert 0 < fit_run(cfg, tmp_path / "run") < uniform_loss(tmp_path / "run")


def uniform_loss(run: Path) -> float:
    """The loss of a model that knows nothing: every character of the run's vocabulary equally likely."""
    return math.log(json.loads(RunDir(run).data.read_text())["vocabulary"])


def test_a_public_domain_songbook_with_non_ascii_text_trains(compose_config, shared_data, tmp_path):
    cfg = compose_config(f"data.path={shared_data / 'pg1279_burns_poems_and_songs.txt'}", "data.seq_len=64")
    assert 0 < fit_run(cfg, tmp_path / "run") < uniform_loss(tmp_path / "run")  # it learned something


def test_bf16_runs_where_the_cpu_has_it_and_in_float32_elsewhere(compose_config, tmp_path, capsys):
    from lyricgen.provenance import cpu
    from lyricgen.training.fit import build_trainer, cpu_precision

    assert cpu_precision("bf16-mixed", ["avx2", "avx512_bf16"]) == ("bf16-mixed", None)
    precision, note = cpu_precision("bf16-mixed", ["avx2", "fma"])  # an AVX2-only CPU, as most laptops
    assert precision == "32-true" and note.startswith("note: this CPU has no native bf16")
    assert cpu_precision("32-true", []) == ("32-true", None)
    trainer = build_trainer(compose_config("trainer.precision=bf16-mixed"), tmp_path / "run")
    native = bool({"avx512_bf16", "amx_bf16", "bf16"} & set(cpu()[1]))  # this machine takes one of the two paths
    assert trainer.precision == ("bf16-mixed" if native else "32-true")
    assert ("no native bf16" in capsys.readouterr().err) != native


def test_the_first_screen_shows_what_a_user_needs_once(tiny_overrides, tmp_path):
    """Run directory, model, progress, result and sample: no advertisement, no warning a user cannot act on,
    no line twice (Lightning's own lines once, not again through the job's log)."""
    bar = "trainer.enable_progress_bar=true"
    result = run_module("lyricgen.train", *tiny_overrides, bar, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    screen = result.stdout + result.stderr
    for noise in ("Tip:", "litlogger", "GPU available", "TPU available", "FLOPs", "LeafSpec", "Epoch 0/-2", "srun"):
        assert noise not in screen, noise
    assert result.stderr == "" and "steps" in result.stdout and "model: CharRNN" in result.stdout
    lines = [line for line in result.stdout.splitlines() if line.strip() and "sample" not in line]
    summary = lines[lines.index(next(line for line in lines if line.startswith("run dir:"))) :][:2]
    assert len(summary) == 2 and summary[1].startswith("val loss ")
