import math
import os
import re
import time

import pytest
from conftest import run_module

from lyricgen import UserError, charset
from lyricgen.generate import parse_args
from lyricgen.nn.checkpoints import find_checkpoint, load_checkpoint
from lyricgen.nn.sampling import sample_text
from lyricgen.training.fit import fit_run
from lyricgen.training.generation import GenerateConfig, generate


def sample(run, **options):
    return generate(GenerateConfig(**{"ckpt": str(run), "length": 60, **options}))


def test_same_seed_same_text_and_batches_of_samples(trained_run):
    first = sample(trained_run, seed=3, num_samples=4, prime="la ")
    assert first == sample(trained_run, seed=3, num_samples=4, prime="la ")
    assert first != sample(trained_run, seed=4, num_samples=4, prime="la ")
    assert len(first) == 4 and all(text.startswith("la ") and len(text) == 63 for text in first)
    assert len(set(first)) > 1  # each row of the batch samples on its own


def test_the_runs_memory_is_mixed_in_while_its_training_text_is_at_hand(compose_config, tmp_path, capsys):
    run = tmp_path / "run"
    fit_run(compose_config("trainer.max_steps=3"), run)
    mixed, alone = sample(run, greedy=True), sample(run, greedy=True, with_memory=False)
    assert mixed != alone  # three steps of training: the memory of the toy lyrics leads
    assert "note: no n-gram memory" not in capsys.readouterr().err
    (run.parent / "toy.txt").unlink()
    (run.parent / "prepared").rename(tmp_path / "elsewhere")  # no text, no cache: the network alone, with a note
    assert sample(run, greedy=True) == alone
    assert "note: no n-gram memory, its training text is not at hand: " in capsys.readouterr().err


def test_greedy_takes_the_most_likely_character_each_time(trained_run):
    model, vocab = load_checkpoint(trained_run / "checkpoints" / "best.ckpt")
    text = "la "  # the most likely next character, by running the whole text through the model each time
    for _ in range(20):
        logits, _ = model(charset.encode(text, vocab).long().unsqueeze(0))
        text += vocab[int(logits[0, -1].argmax())]
    greedy = sample(trained_run, greedy=True, prime="la ", length=20, num_samples=2)
    assert greedy == [text, text]
    assert sample(trained_run, temperature=1e-6, prime="la ", length=20, seed=9)[0] == text


def test_learned_text_comes_back_without_the_corpus(trained_run):
    text = sample(trained_run, greedy=True, prime="rock and ", length=12)[0]
    assert text.startswith("rock and ro")  # the toy lyrics say "rock and roll all night"


def test_prime_outside_the_vocabulary(trained_run, capsys):
    with pytest.raises(UserError, match=r"\['Z', 'Q'\]|\['Q', 'Z'\]"):
        sample(trained_run, prime="ZQ la")
    assert sample(trained_run, prime="ZQ la", unknown="skip")[0].startswith(" la")
    assert "dropping" in capsys.readouterr().err


def test_checkpoint_resolution(trained_run, tmp_path):
    assert find_checkpoint(str(trained_run)).name == "best.ckpt"
    outputs = trained_run.parent
    assert find_checkpoint("latest", outputs) == trained_run / "checkpoints" / "best.ckpt"
    newer = tmp_path / "outputs" / "runs" / "newer" / "checkpoints"
    newer.mkdir(parents=True)
    (newer / "last.ckpt").write_bytes((trained_run / "checkpoints" / "last.ckpt").read_bytes())
    os.utime(newer, (time.time() + 10, time.time() + 10))
    assert find_checkpoint("latest", tmp_path / "outputs") == newer / "last.ckpt"
    with pytest.raises(UserError, match="no checkpoints under"):
        find_checkpoint("latest", tmp_path / "empty")


def test_a_corrupt_checkpoint_is_refused(tmp_path):  # a malicious one: tests/test_robustness.py
    corrupt = tmp_path / "corrupt.ckpt"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="cannot load checkpoint"):
        load_checkpoint(corrupt)


def test_typed_options():
    (cfg,) = parse_args(["length=7", "top_k=3", "prime=I want", "greedy=true"])
    assert (cfg.length, cfg.top_k, cfg.prime, cfg.greedy) == (7, 3, "I want", True)
    assert parse_args(["prime=@yes: [no"])[0].prime == "@yes: [no"  # the prime is raw text, never parsed
    assert [cfg.temperature for cfg in parse_args(["temperature=[0.5,1.0]", "length=3"])] == [0.5, 1.0]
    with pytest.raises(UserError, match="length"):
        parse_args(["length=long"])
    with pytest.raises(UserError, match="colour"):
        parse_args(["colour=red"])


def test_command_line_as_a_user_types_it(trained_run, tmp_path):
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    result = run_module("lyricgen.generate", f"ckpt={ckpt}", "prime=oh ", "length=40", "seed=1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("oh ") and len(result.stdout.rstrip("\n")) >= 40
    streamed = run_module(
        "lyricgen.generate", f"ckpt={ckpt}", "prime=oh ", "length=40", "seed=1", "stream=true", cwd=tmp_path
    )
    assert streamed.stdout == result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ckpt=/nonexistent/last.ckpt"], "checkpoint not found: /nonexistent/last.ckpt"),
        (["ckpt=latest", "paths.output_dir=nowhere"], "no checkpoints under nowhere/"),
        (["prime=@@"], "outside the model's vocabulary"),
        (["temperature=hot"], "temperature"),
    ],
)
def test_bad_input_exits_with_one_clear_line(trained_run, tmp_path, args, message):
    args = [f"ckpt={trained_run}", *args]
    result = run_module("lyricgen.generate", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_help_lists_every_option_and_several_temperatures_give_labelled_samples(trained_run, tmp_path):
    shown = run_module("lyricgen.generate", "--help", cwd=tmp_path)
    assert shown.returncode == 0 and "\nusage: python -m lyricgen.generate [key=value ...]\n" in shown.stdout
    for option in ("ckpt", "prime", "temperature", "with_memory", "paths.output_dir"):
        assert f"\n  {option}=" in shown.stdout, option
    result = run_module(
        "lyricgen.generate", f"ckpt={trained_run}", "temperature=[0,0.8]", "length=30", "prime=la ", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    greedy, sampled = result.stdout.split("=== temperature 0.8 ===\n")
    assert greedy.startswith("=== temperature 0.0 ===\nla ")
    # exact, whitespace included: a greedy text may end in a space (stripping both sides once hid only one's)
    assert greedy == f"=== temperature 0.0 ===\n{sample(trained_run, greedy=True, prime='la ', length=30)[0]}\n"
    assert sampled == f"{sample(trained_run, temperature=0.8, prime='la ', length=30)[0]}\n"


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"top_k": -5}, "top_k=-5 is invalid: use an integer >= 1"),
        ({"top_k": 0}, "top_k=0 is invalid"),
        ({"temperature": math.nan}, "temperature=nan is invalid: use a finite number >= 0"),
        ({"temperature": math.inf}, "temperature=inf is invalid"),
        ({"temperature": -0.5}, "temperature=-0.5 is invalid"),
        ({"length": -3}, "length=-3 is invalid"),
        ({"seed": -1}, "seed=-1 is invalid"),
        ({"seed": 2**64}, "is invalid: use a whole number from 0 to"),
        ({"guidance": math.inf}, "guidance=inf is invalid"),
        ({"num_samples": 0}, "num_samples=0 is invalid"),
    ],
)
def test_bad_sampling_settings_are_one_line_before_anything_is_sampled(trained_run, setting, message):
    """The same check for the command line, the Python API and the playground: lyricgen.nn.sampling."""
    with pytest.raises(UserError, match=re.escape(message)):
        sample(trained_run, **setting)
    model, vocab = load_checkpoint(trained_run / "checkpoints" / "best.ckpt")
    api = {key: value for key, value in setting.items() if key != "num_samples"}
    if api:
        with pytest.raises(UserError, match=re.escape(message)):
            sample_text(model, vocab, **api)
