"""A network of the user's own, defined in this file, trains through `python -m lyricgen.train` from a
config file of its own, conditioned on labels, and generates; its checkpoint holds its import path and
plain options, loads with weights_only=True, and loads only where the user names the class."""

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch
from conftest import TINY, TOY_LYRICS, error_line
from torch import nn

from lyricgen import UserError
from lyricgen.nn import load_checkpoint

TARGET = "test_plugin_network.CountingGRU"  # importable by the subprocesses: this folder is on their PYTHONPATH


class CountingGRU(nn.Module):
    """The contract (lyricgen.nn.networks) and nothing more: no CharRNN part, no `run`."""

    def __init__(self, vocab_size: int, labels: Sequence[str] = (), width: int = 8):
        super().__init__()
        self.labels = list(labels)
        self.embedding = nn.Embedding(vocab_size, width)
        self.label_embedding = nn.Embedding(max(1, len(self.labels)), width)
        self.gru = nn.GRU(width, width, batch_first=True)
        self.decoder = nn.Linear(width, vocab_size)

    def forward(self, ids: torch.Tensor, hidden: torch.Tensor | None = None, labels: torch.Tensor | None = None):
        inputs = self.embedding(ids) + (0 if labels is None else self.label_embedding(labels))
        output, hidden = self.gru(inputs, hidden)
        return self.decoder(output), hidden


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = os.environ | {"PYTHONPATH": str(Path(__file__).parent)}
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def plugged_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("plugin")
    (work / "conf" / "model").mkdir(parents=True)
    (work / "conf" / "model" / "counting_gru.yaml").write_text(f"_target_: {TARGET}\nwidth: 8\ncondition: source\n")
    (work / "a.txt").write_text(TOY_LYRICS)
    (work / "b.txt").write_text(TOY_LYRICS.upper())
    result = run(
        "lyricgen.train",
        f"hydra.searchpath=[file://{work / 'conf'}]",
        "model=counting_gru",
        "model.width=12",
        "data=text",
        "data.files={a: a.txt, b: b.txt}",
        *[option for option in TINY if not option.startswith("model")],
        "hydra.run.dir=outputs/run",
        cwd=work,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return work / "outputs" / "run"


@pytest.mark.slow
def test_a_network_defined_here_trains_and_generates_through_the_commands(plugged_run):
    checkpoint = torch.load(plugged_run / "checkpoints" / "last.ckpt", weights_only=True)  # plain values only
    assert checkpoint["hyper_parameters"]["network"] == {
        "_target_": TARGET,
        "width": 12,
        "labels": ["a", "b"],
    }
    work = plugged_run.parents[1]
    result = run("lyricgen.generate", "ckpt=outputs/run", "genre=b", "length=40", "prime=OH", cwd=work)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("OH") and len(result.stdout.rstrip("\n")) >= 42
    sys.path.insert(0, str(Path(__file__).parent))
    model, vocab = load_checkpoint(plugged_run / "checkpoints" / "last.ckpt", trusted=[TARGET])
    assert type(model).__name__ == "CountingGRU" and model.gru.hidden_size == 12 and set("OHoh") <= set(vocab)


@pytest.mark.slow
def test_a_plugged_in_class_loads_only_where_the_user_names_it(plugged_run, tmp_path):
    (plugged_run / "config.yaml").rename(tmp_path / "config.yaml")  # a checkpoint alone, as downloaded
    try:
        with pytest.raises(UserError, match="lyricgen imports it only when you name it"):
            load_checkpoint(plugged_run / "checkpoints" / "last.ckpt")
        refused = run("lyricgen.generate", "ckpt=outputs/run", "genre=a", cwd=plugged_run.parents[1])
        assert TARGET in error_line(refused)
        named = run("lyricgen.generate", "ckpt=outputs/run", "genre=a", f"network={TARGET}", cwd=plugged_run.parents[1])
        assert named.returncode == 0, named.stderr[-2000:]
    finally:
        (tmp_path / "config.yaml").rename(plugged_run / "config.yaml")


def test_a_config_naming_a_missing_class_or_option_is_one_line_and_leaves_no_run(tmp_path):
    (tmp_path / "conf" / "model").mkdir(parents=True)
    (tmp_path / "conf" / "model" / "mine.yaml").write_text("_target_: nowhere.Net\ncondition: null\n")
    searchpath = f"hydra.searchpath=[file://{tmp_path / 'conf'}]"
    tiny = [option for option in TINY if not option.startswith("model")]
    missing = run("lyricgen.train", searchpath, "model=mine", *tiny, cwd=tmp_path)
    assert "model._target_=nowhere.Net cannot be imported" in error_line(missing)
    assert not (tmp_path / "outputs" / "runs").exists() or not any((tmp_path / "outputs" / "runs").iterdir())
    misspelt = run("lyricgen.train", searchpath, "model=mien", cwd=tmp_path)
    assert error_line(misspelt) == "error: model=mien is not an option: use one of default, gru, lstm, mine, rnn"
