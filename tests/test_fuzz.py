"""Fuzz the corpus and CSV readers: every input either loads or raises one UserError, never a traceback."""

import string
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lyricgen import UserError, charset, corpus
from lyricgen.prepare import EXPECTED_COLUMNS, PrepareOptions, prepare

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
            train_text, val_text = corpus.load_split("text", 0.1, path=str(path))
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
        options = PrepareOptions(genres=tuple({"Rock", *content.split(",")[:3]}), ascii="keep")
        loads_or_refuses(lambda: prepare(path, options, Path(tmp) / "prepared"))
