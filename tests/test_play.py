"""The lyrics playground as a person uses it: the real server (python -m lyricgen.play) driven in a real
headless Chromium through Selenium. Skipped, with the reason, where the browser or the extra is missing."""

import math
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest
from conftest import TINY, error_line, run_module

from lyricgen.training.fit import fit_run
from lyricgen.training.generation import GenerateConfig, generate

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
SCREENSHOT = os.environ.get("LYRICGEN_SCREENSHOT")  # where to save the page (docs/play.png is one, taken so)


def test_without_gradio_the_playground_says_how_to_install_it(tmp_path):
    no_gradio = "import sys; sys.modules['gradio'] = None; from lyricgen.play import main; main([])"
    result = subprocess.run([sys.executable, "-c", no_gradio], cwd=tmp_path, capture_output=True, text=True)
    assert error_line(result) == "error: the playground needs Gradio: pip install -e '.[play]' (make play installs it)"


def test_its_options_are_checked_and_listed(tmp_path):
    assert "port=7860" in run_module("lyricgen.play", "--help", cwd=tmp_path).stdout
    assert "prot" in error_line(run_module("lyricgen.play", "prot=1", cwd=tmp_path))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory):
    """(browser, work dir, run dir): a browser on a running playground whose outputs/ holds one run
    conditioned on the songbooks."""
    pytest.importorskip("gradio", reason="the play extra is not installed (pip install -e '.[play]')")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the dev extra has it)")
    if CHROMIUM is None or DRIVER is None:
        pytest.skip("Chromium is not installed (apt-get install chromium chromium-driver; .ci/run does)")
    from hydra import compose, initialize_config_dir

    from lyricgen.config import CONF_DIR

    work = tmp_path_factory.mktemp("play")
    overrides = [*TINY, "data=songbooks", "model.condition=source", "memory.max_chars=100000"]
    with initialize_config_dir(str(CONF_DIR), version_base=None):
        cfg = compose("config", overrides=[*overrides, f"data.prepared_dir={work / 'prepared'}"])
    run = work / "outputs" / "runs" / "tiny"
    fit_run(cfg, run)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "lyricgen.play", f"port={port}"],
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1100"):
        options.add_argument(argument)
    browser = webdriver.Chrome(service=webdriver.ChromeService(DRIVER), options=options)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                browser.get(f"http://127.0.0.1:{port}/")
                if browser.find_elements("css selector", "#generate"):
                    break
            except Exception:  # the server is still starting
                pass
            time.sleep(0.5)
        yield browser, work, run
    finally:
        browser.quit()
        server.terminate()
        server.wait(timeout=30)


def typed(browser, selector: str, text: str) -> None:
    field = browser.find_element("css selector", selector)
    field.clear()
    field.send_keys(text)


def value(browser, selector: str) -> str:
    return browser.find_element("css selector", selector).get_attribute("value")


def written(browser, characters: int, timeout: float = 60) -> tuple[str, float]:
    """Press generate; (the sample once it has `characters` characters, seconds to its first new one)."""
    started = time.monotonic()
    browser.find_element("css selector", "#generate").click()
    first = None
    while time.monotonic() - started < timeout:
        text = value(browser, "#output textarea")
        if first is None and len(text) > len(value(browser, "#prime textarea")):
            first = time.monotonic() - started
        if len(text) >= characters:
            return text, first
        time.sleep(0.02)
    raise AssertionError(f"the page wrote {len(text)} of {characters} characters in {timeout} s")


@pytest.mark.slow
def test_the_page_writes_what_lyricgen_generate_writes_and_shows_bad_input(page, monkeypatch):
    browser, work, run = page
    deadline = time.monotonic() + 60  # the genres appear once the page has loaded the run's model
    while not browser.find_elements("css selector", "#genre input"):
        assert time.monotonic() < deadline, "the run's genres never appeared"
        time.sleep(0.1)
    genre = browser.find_element("css selector", "#genre input")
    assert value(browser, "#genre input") == "bundle_of_ballads"  # the run's labels, the first chosen
    genre.clear()
    genre.send_keys("cowboy\n")
    typed(browser, "#prime textarea", "Git along")
    typed(browser, "#seed input", "3")
    typed(browser, "#length input", "80")
    typed(browser, "#temperature input[type=number]", "0.9")
    text, _ = written(browser, len("Git along") + 80)
    same = GenerateConfig(ckpt=str(run), genre="cowboy", prime="Git along", length=80, seed=3, temperature=0.9)
    monkeypatch.chdir(work)  # generate finds the run's memory as the page does
    assert [text] == generate(same)
    command = value(browser, "#command textarea")
    settings = "genre=cowboy 'prime=Git along' temperature=0.9 length=80 seed=3"
    assert command == f"python -m lyricgen.generate ckpt=outputs/runs/tiny {settings}"
    text, first = written(browser, len("Git along") + 80)  # the model is loaded now: how fast it starts
    print(f"first character after {first:.3f} s")
    deadline = time.monotonic() + 30  # the finished sample's scorecard, beneath it
    while "real words" not in browser.find_element("css selector", "#scorecard").text:
        assert time.monotonic() < deadline, "no scorecard under the sample"
        time.sleep(0.1)
    if SCREENSHOT:
        browser.save_screenshot(SCREENSHOT)
    typed(browser, "#prime textarea", "Git \u2603 along")
    deadline, clicked = time.monotonic() + 30, -math.inf
    while "outside the model's vocabulary" not in browser.find_element("css selector", "#status").text:
        assert time.monotonic() < deadline, "no error shown in the page"
        if time.monotonic() - clicked > 3:  # a click while the last sample's final update is pending is dropped
            browser.find_element("css selector", "#generate").click()
            clicked = time.monotonic()
        time.sleep(0.1)


@pytest.mark.slow
def test_the_compare_tab_writes_temperatures_side_by_side(page, monkeypatch):
    browser, work, run = page
    browser.find_element("xpath", "//button[@role='tab' and normalize-space()='compare']").click()
    typed(browser, "#prime textarea", "Oh")
    typed(browser, "#length input", "80")
    typed(browser, "#seed input", "3")
    typed(browser, "#values textarea", "0.5, 1.5")
    browser.find_element("css selector", "#compare").click()
    deadline = time.monotonic() + 60
    while not value(browser, "#column1 textarea"):
        assert time.monotonic() < deadline, "no samples side by side"
        time.sleep(0.1)
    monkeypatch.chdir(work)
    for column, temperature in (("#column0", 0.5), ("#column1", 1.5)):
        genre = value(browser, "#genre input")
        cfg = GenerateConfig(ckpt=str(run), genre=genre, prime="Oh", length=80, seed=3, temperature=temperature)
        assert value(browser, f"{column} textarea") == f"temperature {temperature}:\n\n{generate(cfg)[0]}"
    assert value(browser, "#column2 textarea") == ""
    table = browser.find_element("css selector", "#compare_scorecards").text  # a scorecard column per sample
    assert "real words" in table and "0.5" in table and "1.5" in table
