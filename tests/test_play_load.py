"""The playground shared: several visitors at once on the real server (loopback), each getting exactly
lyricgen.generate's text and their own download; a cancelled request letting go of the CPU; the shared
mode's limits; and the page's handlers fuzzed. The full-size load is benchmarks/play_load.py."""

import math
import os
import pickle
import sys
from pathlib import Path

import pytest
import torch
from conftest import TINY, TOY_LYRICS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
pytest.importorskip("gradio", reason="the play extra is not installed (pip install -e '.[play]')")
from play_load import cancelled_cpu, serve, under_load

from lyricgen import UserError
from lyricgen.play import NOT_OFFERED, Budget, PlayConfig, Playground
from lyricgen.quality.scorecard import score, summary
from lyricgen.training.fit import fit_run
from lyricgen.training.generation import GenerateConfig, generate

RUN = "outputs/runs/tiny"


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder whose outputs/ holds one tiny run, its training text beside it (for its memory)."""
    from hydra import compose, initialize_config_dir

    from lyricgen.config import CONF_DIR

    work = tmp_path_factory.mktemp("shared")
    (work / "toy.txt").write_text(TOY_LYRICS, encoding="utf-8")
    overrides = [*TINY, "data=text", f"data.path={work / 'toy.txt'}", f"data.prepared_dir={work / 'prepared'}"]
    with initialize_config_dir(str(CONF_DIR), version_base=None):
        fit_run(compose("config", overrides=overrides), work / RUN)
    return work


@pytest.mark.slow
def test_visitors_at_once_each_get_generates_text_and_their_own_download(work):
    """4 visitors, 5 requests each, two visitors sharing seeds, a bad request among each one's: no error, no
    text other than lyricgen.generate's, no download of another's, every bad input one line."""
    result = under_load(work, RUN, visitors=4, each=5)
    assert result["requests"] == 20 and result["problems"] == []
    assert result["first_char_s"]["max"] < 30


@pytest.mark.slow
def test_a_cancelled_request_lets_go_of_the_cpu(work):
    result = cancelled_cpu(work, RUN)
    assert result["cancelled_at_chars"] < 4900  # it was still writing when cancelled
    assert result["released_within_s"] is not None and result["released_within_s"] <= 0.5


@pytest.mark.slow
def test_a_password_keeps_the_shared_page_closed(work):
    from gradio_client import Client

    server, url = serve(work, "shared=true", "auth=band:secret")
    try:
        assert "shared at" in (line := server.stdout.readline()) and "visitors with the password" in line
        with pytest.raises(Exception, match=r"(?i)login|auth|401|403"):
            Client(url, verbose=False).predict(RUN, "", None, "\n", 0.8, None, 10, 0, True, "", api_name="/write")
        client = Client(url, auth=("band", "secret"), verbose=False)
        text, _, status, _, _ = client.predict(RUN, "", None, "\n", 0.8, None, 10, 0, True, "", api_name="/write")
        assert status == "" and len(text) == 11
    finally:
        server.terminate()
        server.wait(timeout=30)


def shared_ground(work: Path, tmp_path: Path, **options: object) -> Playground:
    play = PlayConfig(host="0.0.0.0", **options)
    play.paths.output_dir = str(work / "outputs")
    return Playground(play, tmp_path)


def written(ground: Playground, *fields: object, visitor: str = "a") -> tuple:
    return list(ground.write(visitor, *fields))[-1]


@pytest.mark.slow
def test_a_sample_comes_with_its_scorecard_and_a_song_form_is_written_as_generate_writes_it(work, tmp_path):
    ground = shared_ground(work, tmp_path, shared=False)
    run = str(work / RUN)
    form = "verse:AABB,chorus,verse,chorus"
    text, command, status, _, card = written(ground, run, "", None, "\n", 0.8, None, 10, 3, True, form)
    assert status == "" and f"form={form}" in command
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(work)  # generate finds the run's memory as the page does
        assert [text] == generate(GenerateConfig(ckpt=run, seed=3, form=form))
    assert card == summary(score([text[1:]]).as_dict())  # the song's scorecard, without the prime
    assert card.startswith("real words ") and "rhymed lines" in card
    *columns, compare_status, table = ground.compare("a", "temperature", "0.5, 1.5", run, "", None, "\n", 0.8, None,
                                                     10, 3, True, form)  # fmt: skip
    assert compare_status == "" and table.splitlines()[0] == "| temperature | 0.5 | 1.5 |"
    assert "| real words |" in table and columns[1].startswith("temperature 1.5:")


def test_a_shared_page_offers_only_its_runs_and_trusts_no_foreign_code(work, tmp_path):
    ground = shared_ground(work, tmp_path)
    run = str(work / RUN)
    assert written(ground, run, "", None, "\n", 0.8, None, 10, 0, True)[2] == ""  # a run from the list writes
    box_off = "**error:** the checkpoint path box is off on a shared playground: choose a run from the list"
    assert written(ground, run, str(work / RUN), None, "\n", 0.8, None, 10, 0, True)[2] == box_off
    opened = shared_ground(work, tmp_path, allow=[str(work / "allowed")])
    for outside in ("/etc/passwd", "/no/such/file.ckpt", str(work / "toy.txt"), f"{work}/outputs/../toy.txt"):
        assert written(opened, run, outside, None, "\n", 0.8, None, 10, 0, True)[2] == f"**error:** {NOT_OFFERED}"
    foreign = foreign_run(work, "foreign")
    status = written(ground, str(foreign), "", None, "\n", 0.8, None, 10, 0, True)[2]
    assert "os.Evil, not lyricgen's" in status and "\n" not in status
    assert ground.access.memory_allowed(str(work / RUN / "checkpoints" / "best.ckpt")) is False  # toy.txt: outside


def foreign_run(work: Path, name: str) -> Path:
    """A run whose checkpoint and config name a network class outside lyricgen (os.Evil)."""
    foreign = work / "outputs" / "runs" / name
    (foreign / "checkpoints").mkdir(parents=True, exist_ok=True)
    checkpoint = torch.load(work / RUN / "checkpoints" / "best.ckpt", weights_only=False)
    checkpoint["hyper_parameters"]["network"]["_target_"] = "os.Evil"
    torch.save(checkpoint, foreign / "checkpoints" / "best.ckpt")
    config = (work / RUN / "config.yaml").read_text().replace("lyricgen.nn.CharRNN", "os.Evil")
    (foreign / "config.yaml").write_text(config)
    return foreign


def test_each_visitor_has_a_budget_a_minute_and_each_request_a_size(work, tmp_path):
    ground = shared_ground(work, tmp_path, chars_per_minute=50, max_chars=40)
    run = str(work / RUN)
    assert "at most 40 a request" in written(ground, run, "", None, "\n", 0.8, None, 45, 0, True)[2]
    assert written(ground, run, "", None, "\n", 0.8, None, 30, 0, True)[2] == ""
    assert "allows 50 a visitor" in written(ground, run, "", None, "\n", 0.8, None, 30, 0, True)[2]
    assert written(ground, run, "", None, "\n", 0.8, None, 30, 0, True, visitor="b")[2] == ""  # another visitor
    budget = Budget(10)
    budget.spend("x", 10)
    with pytest.raises(UserError):
        budget.spend("x", 1)


FIELD = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=False),
)


@pytest.mark.slow  # 1,000 examples, ~40 s
@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    path=st.sampled_from(["", "/etc/passwd", "../../etc/shadow", RUN, "\x00", "~/.ssh/id_rsa", "evil", "foreign"]),
    genre=st.one_of(st.none(), st.text(max_size=10)),
    prime=st.text(max_size=200),
    temperature=FIELD,
    top_k=FIELD,
    length=st.one_of(FIELD, st.integers(0, 40)),
    seed=FIELD,
    by=st.sampled_from(["temperature", "genre", "colour"]),
    values=st.text(max_size=30),
    form=st.one_of(
        st.just(""), st.text(max_size=20), st.sampled_from(["verse,chorus,verse,chorus", "chorus:A.,chorus"])
    ),
)
def test_the_pages_handlers_answer_any_input_with_text_or_one_line(
    work, tmp_path_factory, path, genre, prime, temperature, top_k, length, seed, by, values, form
):
    """Any field, any value: a sample or one error line; nothing outside the offered folders is loaded or
    served, no module outside lyricgen is imported, and the page answers the next request."""
    ground = fuzzed_ground(work, tmp_path_factory)
    run = str(work / RUN)
    inside = {"evil": work / "evil.ckpt", "foreign": work / "outputs" / "runs" / "foreign-fuzz"}  # offered folders
    path = str(inside.get(path, path))  # a pickle's payload; a run whose checkpoint names a foreign class
    fields = (run, path, genre, prime, temperature, top_k, length, seed, True, form)
    text, command, status, download, _ = written(ground, *fields)
    assert bool(status) != bool(text)
    if status:
        assert status.startswith("**error:** ") and "\n" not in status and text == "" and download is None
    else:
        assert Path(download).is_relative_to(ground.downloads) and command.startswith("python -m lyricgen.generate")
    *columns, compare_status, _ = ground.compare("a", by, values, *fields)
    assert "\n" not in compare_status and len(columns) == 4
    assert written(ground, run, "", None, "\n", 0.8, None, 5, 0, True)[2] == ""  # still answering
    assert not (work / "pwned").exists()


GROUNDS: dict = {}


def fuzzed_ground(work: Path, tmp_path_factory: pytest.TempPathFactory) -> Playground:
    """One shared playground for every fuzzed example (its models stay loaded, as a server's do)."""
    if "ground" not in GROUNDS:

        class Exploit:
            def __reduce__(self) -> tuple:
                return (os.system, (f"touch {work / 'pwned'}",))

        torch.save({"state_dict": Exploit()}, work / "evil.ckpt", pickle_module=pickle)
        foreign_run(work, "foreign-fuzz")
        GROUNDS["ground"] = shared_ground(work, tmp_path_factory.mktemp("downloads"), allow=[str(work)], max_chars=300)
    return GROUNDS["ground"]


def test_page_numbers_that_are_not_whole_are_one_line(work, tmp_path):
    ground = shared_ground(work, tmp_path)
    run = str(work / RUN)
    for length in (math.nan, math.inf, 2.5, "x", None):
        status = written(ground, run, "", None, "\n", 0.8, None, length, 0, True)[2]
        assert status.startswith(f"**error:** length={length} is invalid"), status
