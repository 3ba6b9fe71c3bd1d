"""Stacked runs (hydra/launcher=stacked): a -m sweep's same-shape jobs trained in one process, each run
still indistinguishable in form from its solo run, and equal to it in numbers up to float rounding."""

import json
import re
import signal
import subprocess
import sys

import pytest
import torch
import yaml
from conftest import ROOT, TOY_LYRICS, curve, run_module, run_modules, stopped_midway
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lyricgen.hydra.launcher import plan, stack_key
from lyricgen.nn.charrnn import CharRNN, sequence_loss
from lyricgen.nn.stacked import member_losses, stacked_logits

STACKED = "hydra/launcher=stacked"
CELLS = ("model.cell=rnn,gru,lstm",)


def sweep_args(corpus, *extra: str, seeds: str = "0,1", dropout: str = "0.0,0.3") -> list[str]:
    """A small batch-1 sweep on the toy lyrics: jobs of one shape that differ in seed and dropout (4 by
    default), with checkpoints and validations on the way."""
    return [
        "-m",
        "model=rnn",
        "model.num_layers=2",
        "model.hidden_size=24",
        f"seed={seeds}",
        f"model.dropout={dropout}",
        "optim.lr=0.003",
        "data=text",
        f"data.path={corpus}",
        f"data.prepared_dir={corpus.parent / 'prepared'}",
        "data.batch_size=1",
        "data.seq_len=32",
        "data.val_chars=2000",
        "trainer.max_steps=30",
        "trainer.val_check_interval=10",
        "checkpoint.every_n_steps=10",
        "trainer.enable_progress_bar=false",
        "threads=1",
        "sample_length=40",
        *extra,
    ]


def job_dirs(sweep):
    return sorted(path.parent for path in sweep.glob("*/config.yaml"))


def tags(run_dir) -> set[str]:
    """Every scalar and text tag of a run's TensorBoard events."""
    found = EventAccumulator(str(run_dir)).Reload().Tags()
    return set(found["scalars"]) | set(found["tensors"])


def weights(run_dir, name: str = "last") -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / f"{name}.ckpt", weights_only=False)["state_dict"]


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory) -> tuple:
    """The same 6-job sweep stacked and alone (a stack of 2 for each cell, rnn with relu, whose members
    differ in clipping; LSTMs stack when asked), made once: (stacked result, solo result, their sweep
    directories)."""
    root = tmp_path_factory.mktemp("sweeps")
    corpus = root / "toy.txt"
    corpus.write_text(TOY_LYRICS, encoding="utf-8")
    args = sweep_args(
        corpus, *CELLS, "model.nonlinearity=relu", "trainer.gradient_clip_val=0.5,null", seeds="1", dropout="0.3"
    )
    stack_lstms = "hydra.launcher.max_batch_size.lstm=1"
    stacked = run_module("lyricgen.train", *args, STACKED, stack_lstms, f"hydra.sweep.dir={root / 'stacked'}", cwd=ROOT)
    solo = run_module("lyricgen.train", *args, f"hydra.sweep.dir={root / 'solo'}", cwd=ROOT)
    assert stacked.returncode == 0 and solo.returncode == 0, stacked.stderr[-3000:] + solo.stderr[-3000:]
    return stacked, solo, root / "stacked", root / "solo"


@pytest.mark.slow
def test_stacked_members_train_as_their_solo_runs(sweeps):
    """Curves step by step, validation and final weights of each member against its solo run. The stacked
    network computes each member's loss and gradients exactly as alone (the unit test below), but a whole
    run is not bit for bit: some sums (a gradient norm over a gradient laid out otherwise in memory,
    validation's means) round differently in the last bits, and Adam, which divides each update by its
    gradient's running scale, lets a near-zero gradient element carry such a difference into a weight.
    Over 30 steps at lr 0.003 losses agree to 1e-5 and weights to 1e-4 (measured: ~5e-7 and ~2e-5)."""
    stacked, solo, stacked_dir, solo_dir = sweeps
    assert stacked.stderr.count("[stacked launcher] 2 stacked") == 3
    pairs = list(zip(job_dirs(stacked_dir), job_dirs(solo_dir), strict=True))
    assert len(pairs) == 6
    for stacked_run, solo_run in pairs:
        assert stacked_run.name == solo_run.name
        for tag in ("train/loss", "val/loss", "val/loss_with_memory", "train/lr"):
            ours, theirs = curve(stacked_run, tag), curve(solo_run, tag)
            assert [step for step, _ in ours] == [step for step, _ in theirs], (stacked_run.name, tag)
            assert [v for _, v in ours] == pytest.approx([v for _, v in theirs], abs=1e-5), (stacked_run.name, tag)
        grad_norms = [value for _, value in curve(stacked_run, "train/grad_norm")]
        assert grad_norms == pytest.approx([value for _, value in curve(solo_run, "train/grad_norm")], rel=1e-4)
        own, alone = weights(stacked_run), weights(solo_run)
        assert own.keys() == alone.keys()
        for name in own:
            assert torch.allclose(own[name], alone[name], atol=1e-4), name
        assert json.loads((stacked_run / "status.json").read_text())["state"] == "finished"
    assert stacked.stdout.count("run dir:") == solo.stdout.count("run dir:") == 6


@pytest.mark.slow
def test_a_stacked_run_is_a_run_like_any_other(sweeps):
    """The same files, checkpoint keys, TensorBoard tags and Hydra records as a solo run; generate and
    evaluate read it, report shows the stacked sweep as it shows the solo one, and resume= continues a
    member alone."""
    _, _, stacked_dir, solo_dir = sweeps
    member, alone = job_dirs(stacked_dir)[0], job_dirs(solo_dir)[0]

    def listing(run_dir):
        return sorted(str(path.relative_to(run_dir)) for path in run_dir.rglob("*") if "tfevents" not in path.name)

    assert listing(member) == listing(alone)
    ours, theirs = (torch.load(d / "checkpoints" / "last.ckpt", weights_only=False) for d in (member, alone))
    assert ours.keys() == theirs.keys() and ours["global_step"] == theirs["global_step"] == 30
    assert ours["hyper_parameters"] == theirs["hyper_parameters"]
    assert ours["callbacks"].keys() == theirs["callbacks"].keys()
    assert ours["optimizer_states"][0]["state"].keys() == theirs["optimizer_states"][0]["state"].keys()
    assert torch.equal(ours["torch_rng_state"], theirs["torch_rng_state"])  # the same dropout draws, in order
    assert ours["lr_schedulers"] == theirs["lr_schedulers"]
    assert tags(member) == tags(alone)
    readers = [("lyricgen.generate", f"ckpt='{member}'", "length=30"), ("lyricgen.evaluate", f"ckpt='{member}'")]
    readers += [("lyricgen.report", f"dir={sweep}") for sweep in (stacked_dir, solo_dir)]
    for result in run_modules(readers, cwd=ROOT):
        assert result.returncode == 0, result.stderr[-3000:]

    def form(sweep) -> str:  # the report without its numbers and its sweep's path
        return re.sub(r"\d+(\.\d+)?", "N", (sweep / "report.md").read_text().replace(str(sweep), "<sweep>"))

    assert form(stacked_dir) == form(solo_dir)
    resumed = run_module("lyricgen.train", f"resume='{member}'", "trainer.max_steps=40", cwd=ROOT)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert [step for step, _ in curve(member)] == list(range(40))


@pytest.mark.slow
def test_a_diverging_member_stops_alone_and_what_cannot_stack_runs_alone(toy_corpus, tmp_path):
    """rnn jobs stack (one of them diverges: it stops, the other finishes); LSTM jobs run one by one."""
    args = sweep_args(toy_corpus, "model.cell=rnn,lstm", "optim.lr=0.01,1000", seeds="0", dropout="0.0")
    result = run_module("lyricgen.train", *args, STACKED, f"hydra.sweep.dir={tmp_path}", cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "[stacked launcher] 2 stacked" in result.stderr and result.stderr.count("[stacked launcher] alone") == 2
    assert "2 diverged, 2 finished" in result.stderr
    for run_dir in job_dirs(tmp_path):
        status = json.loads((run_dir / "status.json").read_text())
        diverged = "optim.lr=1000" in run_dir.name
        assert status["state"] == ("diverged" if diverged else "finished"), run_dir.name
        steps = [step for step, _ in curve(run_dir)]
        assert (steps[-1] < 29) if diverged else steps == list(range(30))
        if diverged:
            assert "train/diverged" in tags(run_dir)


@pytest.mark.slow
def test_a_stopped_stacked_sweep_resumes_where_it_stopped(toy_corpus, tmp_path):
    """SIGTERM mid-way: every member saves last.ckpt at the step under way and the line says how to go on;
    the same command again continues each member and ends exactly where an uninterrupted stack ends (the
    same arithmetic in the same order). SIGKILL leaves the periodic last.ckpt, which resumes the same way."""
    args = sweep_args(toy_corpus, "trainer.max_steps=300", "checkpoint.every_n_steps=25", dropout="0.2")
    command = [sys.executable, "-m", "lyricgen.train", *args, STACKED, f"hydra.sweep.dir={tmp_path / 'stopped'}"]
    popen = {"cwd": ROOT, "stderr": subprocess.PIPE, "text": True}
    process = stopped_midway(command, tmp_path / "stopped" / "seed=1", signal.SIGTERM, **popen)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    sweep = (tmp_path / "stopped").resolve()
    assert (
        "stopped by SIGTERM" in stderr and f"continue them with the same command and hydra.sweep.dir={sweep}" in stderr
    )
    saved = {
        torch.load(d / "checkpoints" / "last.ckpt", weights_only=False)["global_step"]
        for d in job_dirs(tmp_path / "stopped")
    }
    assert len(saved) == 1 and 25 <= saved.pop() < 300  # every member at the step the signal came
    again = run_module("lyricgen.train", *args, STACKED, f"hydra.sweep.dir={tmp_path / 'stopped'}", cwd=ROOT)
    whole = run_module("lyricgen.train", *args, STACKED, f"hydra.sweep.dir={tmp_path / 'whole'}", cwd=ROOT)
    assert again.returncode == 0 and whole.returncode == 0, again.stderr[-3000:] + whole.stderr[-3000:]
    assert again.stderr.count("continuing it from its last checkpoint") == 2
    for seed in (0, 1):
        resumed, uninterrupted = tmp_path / "stopped" / f"seed={seed}", tmp_path / "whole" / f"seed={seed}"
        assert curve(resumed) == curve(uninterrupted)
        assert [step for step, _ in curve(resumed)] == list(range(300))
        pairs = zip(weights(resumed).values(), weights(uninterrupted).values(), strict=True)
        assert all(torch.equal(a, b) for a, b in pairs)


@pytest.mark.slow
def test_unlike_runs_of_one_shape_stack_across_a_listed_sweep_each_as_its_solo_run(toy_corpus, tmp_path):
    """A listed sweep (hydra/sweeper=listed) of runs that differ in length, learning rate, dropout, clipping
    and corpus (one with more characters): one stack, each member equal to its solo run (as above: losses
    1e-5, weights 1e-4), and a member that reaches its last step leaves the stack there, finished, with its
    last.ckpt at that step."""
    other = tmp_path / "other.txt"
    other.write_text("hey! ho?\n" + "\n".join(reversed(TOY_LYRICS.splitlines())), encoding="utf-8")  # 3 more characters
    jobs = tmp_path / "jobs.yaml"
    listed = [
        ["seed=0", "trainer.max_steps=30", "model.dropout=0.3", "hydra.sweep.subdir=long"],
        ["seed=1", "trainer.max_steps=20", "optim.lr=0.01", f"data.path='{other}'", "hydra.sweep.subdir=other"],
        ["seed=2", "trainer.max_steps=10", "trainer.gradient_clip_val=0.5", "hydra.sweep.subdir=short"],
    ]
    jobs.write_text(yaml.safe_dump(listed))
    args = [arg for arg in sweep_args(toy_corpus) if not arg.startswith(("seed=", "model.dropout=", "trainer.max_"))]
    args += ["hydra/sweeper=listed", f"hydra.sweeper.jobs={jobs}"]
    stacked = run_module("lyricgen.train", *args, STACKED, f"hydra.sweep.dir={tmp_path / 'stacked'}", cwd=ROOT)
    solo = run_module("lyricgen.train", *args, f"hydra.sweep.dir={tmp_path / 'solo'}", cwd=ROOT)
    assert stacked.returncode == 0 and solo.returncode == 0, stacked.stderr[-3000:] + solo.stderr[-3000:]
    assert stacked.stderr.count("[stacked launcher] 3 stacked") == 1
    for name, steps in (("long", 30), ("other", 20), ("short", 10)):
        ours, theirs = tmp_path / "stacked" / name, tmp_path / "solo" / name
        for tag in ("train/loss", "val/loss", "train/lr"):
            assert [step for step, _ in curve(ours, tag)] == [step for step, _ in curve(theirs, tag)], (name, tag)
            assert [v for _, v in curve(ours, tag)] == pytest.approx([v for _, v in curve(theirs, tag)], abs=1e-5)
        assert len(curve(ours)) == steps
        checkpoint = torch.load(ours / "checkpoints" / "last.ckpt", weights_only=False)
        assert checkpoint["global_step"] == steps
        alone = weights(theirs)
        for key, value in checkpoint["state_dict"].items():
            assert torch.allclose(value, alone[key], atol=1e-4), (name, key)
        assert json.loads((ours / "status.json").read_text())["state"] == "finished"


def test_a_listed_sweep_without_its_list_says_how_to_give_it(toy_corpus, tmp_path):
    args = sweep_args(toy_corpus, "hydra/sweeper=listed", f"hydra.sweep.dir={tmp_path}")
    result = run_module("lyricgen.train", *args, cwd=ROOT)
    assert result.returncode != 0 and "hydra.sweeper.jobs=<a .yaml file" in result.stderr, result.stderr[-3000:]
    assert "Traceback" not in result.stderr


def test_the_plan_groups_same_shape_jobs(compose_config):
    paper = ["model=rnn", "data.batch_size=1"]
    configs = [
        compose_config(*paper, "seed=0"),
        compose_config(*paper, "seed=1", "optim.lr=0.1", "model.dropout=0.3", "trainer.gradient_clip_val=null"),
        compose_config(*paper, "model.hidden_size=32"),  # another shape
        compose_config("model=lstm", "data.batch_size=1"),  # LSTMs do not stack by default
        compose_config(*paper, "seed=2"),
        compose_config("model=rnn", "data.batch_size=32"),  # above the rnn cell's max_batch_size
        compose_config(*paper, "trainer.max_steps=99999"),  # another length: the same stack, first
        compose_config(*paper, "seed=3"),
        compose_config("model=gru", "data.batch_size=1", "seed=0"),  # another cell: a stack of its own
        compose_config("model=gru", "data.batch_size=1", "seed=1"),
    ]
    limits = OmegaConf.load(ROOT / "conf" / "hydra" / "launcher" / "stacked.yaml").max_batch_size
    # five jobs of one shape in two stacks of even sizes, the longest job in the first
    assert plan(configs, max_members=3, max_batch_size=limits) == [[6, 0], [1, 4, 7], [2], [3], [5], [8, 9]]
    larger = {**limits, "rnn": 32}
    assert plan(configs, max_members=8, max_batch_size=larger) == [[6, 0, 1, 4, 7], [2], [3], [5], [8, 9]]
    assert stack_key(compose_config(*paper, "model.input=embedding"), limits) is None
    assert stack_key(compose_config(*paper, "+trainer.accumulate_grad_batches=2"), limits) is None
    sgd = stack_key(compose_config(*paper, "optim=sgd"), limits)
    assert sgd == stack_key(compose_config(*paper), limits)  # another of PyTorch's optimisers: the same stack
    assert stack_key(compose_config(*paper, "optim=adamw", "optim._target_=torch.optim.NAdam"), limits) is None


@pytest.mark.parametrize("cell,nonlinearity", [("rnn", "tanh"), ("rnn", "relu"), ("gru", "tanh"), ("lstm", "tanh")])
def test_the_stacked_network_gives_each_member_its_own_loss_gradient_and_dropout(cell, nonlinearity):
    """With each member's dropout generator started where its solo run's global RNG stands, member k of
    the stack computes what CharRNN k computes alone (for an LSTM: nn.LSTM), dropout masks included: the
    loss exactly, the gradients to float rounding (torch's batched and single matmuls take different
    kernels for some shapes, which round differently in the last bit; nn.LSTM's backward is another
    algorithm altogether)."""
    torch.manual_seed(0)
    vocab = 11
    members = [
        CharRNN(vocab, cell=cell, num_layers=3, hidden_size=24, nonlinearity=nonlinearity, dropout=p)
        for p in (0.2, 0, 0.5)
    ]
    assert_each_member_as_alone(members, torch.randint(vocab, (3, 2, 17)))


@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_members_with_other_vocabularies_stack_each_as_alone(cell):
    """A member whose corpus has fewer characters (a smaller one-hot input and decoder) stacks with the
    others: padded to the largest vocabulary, it still computes what it computes alone."""
    torch.manual_seed(0)
    members = [CharRNN(vocab, cell=cell, num_layers=2, hidden_size=24, dropout=0.2) for vocab in (11, 8, 9)]
    assert_each_member_as_alone(members, torch.randint(8, (3, 2, 17)))


def assert_each_member_as_alone(members: list[CharRNN], ids: torch.Tensor) -> None:
    """Member k's loss (exactly) and gradients (to 1e-7) in the stack against CharRNN k alone on ids[k], each
    member's dropout generator started where its solo run's global RNG stands."""
    starts = [torch.Generator().manual_seed(seed) for seed in range(len(members))]
    generators = [torch.Generator().set_state(start.get_state()) for start in starts]
    losses = member_losses(stacked_logits(members, ids[..., :-1], generators), ids[..., 1:])
    losses.sum().backward()
    stacked_grads = [[p.grad.clone() for p in member.parameters()] for member in members]
    for index, member in enumerate(members):
        member.zero_grad()
        torch.set_rng_state(starts[index].get_state())  # a solo run's dropout draws from the global RNG
        alone = sequence_loss(member(ids[index, :, :-1])[0], ids[index, :, 1:])
        alone.backward()
        assert torch.equal(losses[index].detach(), alone.detach())
        for stacked_grad, param in zip(stacked_grads[index], member.parameters(), strict=True):
            assert torch.allclose(stacked_grad, param.grad, rtol=0, atol=1e-7), index


def test_a_job_that_fails_in_a_parallel_worker_stops_the_sweep_with_its_line(toy_corpus, tmp_path):
    args = sweep_args(toy_corpus, "model.hidden_size=16,24", "hydra.launcher.n_jobs=2", seeds="0", dropout="0.0")
    missing = [arg if not arg.startswith("data.path=") else f"data.path={tmp_path / 'missing.txt'}" for arg in args]
    result = run_module("lyricgen.train", *missing, STACKED, f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=ROOT)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "error: " in result.stderr and "missing.txt" in result.stderr and "Traceback" not in result.stderr


def test_a_batch_limit_not_given_per_cell_is_refused_with_how_to_give_it(toy_corpus, tmp_path):
    args = sweep_args(toy_corpus, "hydra.launcher.max_batch_size=4", seeds="0", dropout="0.0")
    result = run_module("lyricgen.train", *args, STACKED, f"hydra.sweep.dir={tmp_path}", cwd=ROOT)
    assert result.returncode != 0 and "hydra.launcher.max_batch_size.rnn=4" in result.stderr, result.stderr[-3000:]
    assert not list(tmp_path.glob("*/config.yaml"))  # refused before any job started


@pytest.mark.slow
def test_members_with_other_optimisers_train_as_their_solo_runs(toy_corpus, tmp_path):
    """A stack whose members use SGD, RMSprop and AdamW: each member's curve is its solo run's."""
    args = sweep_args(toy_corpus, "optim=sgd,rmsprop,adamw", seeds="0", dropout="0.0")
    stacked = run_module("lyricgen.train", *args, STACKED, f"hydra.sweep.dir={tmp_path / 'stacked'}", cwd=ROOT)
    solo = run_module("lyricgen.train", *args, f"hydra.sweep.dir={tmp_path / 'solo'}", cwd=ROOT)
    assert stacked.returncode == 0 and solo.returncode == 0, stacked.stderr[-3000:] + solo.stderr[-3000:]
    assert "[stacked launcher] 3 stacked" in stacked.stderr
    pairs = list(zip(job_dirs(tmp_path / "stacked"), job_dirs(tmp_path / "solo"), strict=True))
    assert [run.name for run, _ in pairs] == ["optim=adamw", "optim=rmsprop", "optim=sgd"]
    for stacked_run, solo_run in pairs:
        ours, theirs = curve(stacked_run), curve(solo_run)
        assert [v for _, v in ours] == pytest.approx([v for _, v in theirs], abs=1e-5), stacked_run.name
