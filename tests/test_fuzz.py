"""Fuzz the corpus and CSV readers: every input either loads or raises one UserError, never a traceback."""

import string
import tempfile
from pathlib import Path

import pytest
from conftest import CONF_DIR, run_modules
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from lyricgen import UserError, charset
from lyricgen.config import validate
from lyricgen.data import corpus
from lyricgen.data.lyrics_csv import EXPECTED_COLUMNS, default_options, prepare
from lyricgen.options import flatten

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def loads_or_refuses(load) -> None:
    try:
        load()
    except UserError as err:
        assert str(err) and "\n" not in str(err).strip()


@FUZZ
@given(content=st.one_of(st.binary(max_size=2000), st.text(max_size=2000).map(str.encode)))
def test_text_corpus_reader(content):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "corpus.txt"
        path.write_bytes(content)

        def load():
            train_text, val_text, *_ = corpus.load_split("text", 0.1, path=str(path))
            vocab = charset.build_vocab(train_text)
            charset.encode(train_text, vocab)
            charset.encode(val_text, vocab, drop_unknown=True)

        loads_or_refuses(load)


@settings(FUZZ, max_examples=10)
@given(piece=st.text(alphabet=string.ascii_letters + " \t\u00e9\u2019", max_size=30), repeat=st.integers(1, 20_000))
def test_huge_lines(piece, repeat):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "corpus.txt"
        path.write_text(piece * repeat)  # one line of up to 600k characters
        loads_or_refuses(lambda: corpus.load_split("text", 0.05, path=str(path)))


column_names = st.lists(st.sampled_from([*EXPECTED_COLUMNS, "Track_id", "Song year", "", "Lyrics "]), max_size=7)
cells = st.text(alphabet=string.printable + "\u00e9\u2019\u65e5", max_size=40)


@st.composite
def csv_files(draw) -> str:
    """CSV-like text: headers with missing, extra or duplicate columns; quoted, multi-line, ragged rows."""
    header = draw(column_names)
    rows = draw(st.lists(st.lists(cells, max_size=len(header) + 2), max_size=8))
    quote = draw(st.booleans())
    render = (lambda cell: '"' + cell.replace('"', '""') + '"') if quote else (lambda cell: cell)
    return "\n".join(",".join(map(render, row)) for row in [header, *rows])


@FUZZ
@given(content=st.one_of(csv_files(), st.binary(max_size=500).map(lambda b: b.decode("latin-1"))))
def test_lyrics_csv_reader(content):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.csv"
        path.write_bytes(content.encode("utf-8", "surrogatepass"))
        options = default_options(genres=tuple({"Rock", *content.split(",")[:3]}), ascii="keep")
        loads_or_refuses(lambda: prepare(path, options, Path(tmp) / "prepared"))


def schema_keys() -> list[str]:
    """Every leaf key of the default run config that the schema types (trainer.* is checked by Lightning)."""
    with initialize_config_dir(str(CONF_DIR), version_base=None):
        cfg = OmegaConf.to_container(compose("config", overrides=["data=lyrics_csv", f"data.csv={__file__}"]))
    cfg.pop("hydra", None)
    return [key for key, _ in flatten(cfg) if not key.startswith(("trainer.", "hydra."))]


WRONG_VALUES = st.sampled_from(["abc", "-7", "0", "1.5e9", "[1,2]", "{a: 1}", "null", "true", "''", "-0.5", "ttt"])


@pytest.mark.slow
@FUZZ
@given(key=st.sampled_from(schema_keys()), value=WRONG_VALUES)
def test_every_schema_key_takes_a_value_or_refuses_it_in_one_line(key, value):
    with initialize_config_dir(str(CONF_DIR), version_base=None):
        try:
            cfg = compose("config", overrides=["data=lyrics_csv", f"data.csv={__file__}", f"{key}={value}"])
        except ConfigCompositionException:
            return  # Hydra itself refuses it (a mapping for a list): its own message, no traceback
    try:
        validate(cfg)
    except UserError as err:
        message = str(err)
        assert message and "\n" not in message and key.split(".")[-1] in message


COMMAND_LINE_MISTAKES = [
    ("lyricgen.train", ["model.hidden_size=big"], "model.hidden_size"),
    ("lyricgen.train", ["guard.ratio=0.5"], "guard.ratio"),
    ("lyricgen.train", ["data.hygiene=maybe"], "data.hygiene"),
    ("lyricgen.train", ["seed=-1"], "seed"),
    ("lyricgen.train", ["resume=/nonexistent"], "nothing to resume"),
    ("lyricgen.train", ["+trainer.max_epochs=abc"], "trainer.max_epochs"),
    ("lyricgen.generate", ["length=long"], "length"),
    ("lyricgen.generate", ["colour=red"], "colour"),
    ("lyricgen.generate", ["ckpt=/nonexistent.ckpt"], "checkpoint not found"),
    ("lyricgen.generate", ["ckpt={corrupt}"], "cannot load checkpoint"),
    ("lyricgen.prepare", ["data=lyrics_csv", "data.csv={corrupt}"], "is not"),
    ("lyricgen.prepare", ["data=lyrics_csv", f"data.csv={__file__}", "data.val_fraction=2"], "data.val_fraction"),
    ("lyricgen.report", ["dir={missing}"], "no such directory"),
    ("lyricgen.report", ["directory=runs"], "did you mean dir?"),
    ("lyricgen.batches", ["run={corrupt}", "steps=[3]"], "not a lyricgen run directory"),
    ("lyricgen.batches", ["run={corrupt}"], "steps= names no step"),
    ("lyricgen.reproduce", ["out=out", "protocol=nope"], "no protocol nope"),
    ("lyricgen.reproduce", ["protocol=paper"], "out= is required"),
    ("lyricgen.reproduce", ["out=out", "--jobs", "2"], "is not key=value"),
    ("lyricgen.standin", ["out=x", "fracton=0.1"], "did you mean fraction?"),
    ("lyricgen.reproduce", ["out=x", "train=[a"], "the value cannot be read"),
    ("lyricgen.generate", ["temperature=[0.5,"], "the value cannot be read"),
    ("lyricgen.evaluate", ["ckpt={corrupt}"], "cannot load checkpoint"),
]


@pytest.mark.slow
def test_command_line_mistakes_end_in_one_line(tmp_path):
    corrupt = tmp_path / "corrupt"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    commands = [
        (module, *(arg.format(corrupt=corrupt, missing=tmp_path / "missing") for arg in args))
        for module, args, _ in COMMAND_LINE_MISTAKES
    ]
    for result, (module, _, names) in zip(run_modules(commands, tmp_path), COMMAND_LINE_MISTAKES, strict=True):
        assert result.returncode != 0 and "Traceback" not in result.stderr, (module, result.stderr)
        (line,) = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        assert names in line and result.stderr.strip().endswith(line)
