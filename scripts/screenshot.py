"""The README's picture of the playground: a trained run writing a song in a form, its scorecard beneath.

Run: `python scripts/screenshot.py [RUN] [PICTURE]` (default: outputs/lyrics/songs_poems-seed0, the first
run benchmarks/lyrics.py trains with make train's command, and docs/play.png). Serves the playground on
a free port, drives it in headless Chromium (chromium and chromium-driver, as tests/test_play.py does),
writes the song of benchmarks/lyrics.py's results with its seed, and saves the page once the scorecard
is shown; PICTURE's .json beside it records the commit, command and settings.
"""

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from selenium import webdriver

from lyricgen.provenance import provenance

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from lyrics import SONG_FORM  # noqa: E402 (the benchmark's song, so picture and results show one form)

SEED = "1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def opened(port: int) -> webdriver.Chrome:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):  # named, so that Selenium never fetches a browser of its own
        raise SystemExit("needs Chromium and its driver: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1300,1500"):
        options.add_argument(argument)
    browser = webdriver.Chrome(service=webdriver.ChromeService(driver), options=options)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            browser.get(f"http://127.0.0.1:{port}/")
            if browser.find_elements("css selector", "#generate"):
                return browser
        except Exception:  # the server is still starting
            pass
        time.sleep(0.5)
    raise SystemExit("the playground did not open within 90 s")


def typed(browser: webdriver.Chrome, selector: str, text: str) -> None:
    field = browser.find_element("css selector", selector)
    field.clear()
    field.send_keys(text)


def main(run: Path, picture: Path) -> None:
    record = provenance(["lyricgen", "scripts/screenshot.py"])
    shown = ROOT / "outputs" / "picture"  # the run alone under the page's outputs: the list offers it first
    shutil.rmtree(shown, ignore_errors=True)
    shutil.copytree(run, shown / run.name)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "lyricgen.play", f"port={port}", f"paths.output_dir={shown.relative_to(ROOT)}"], cwd=ROOT
    )
    browser = opened(port)
    try:
        typed(browser, "#form textarea", SONG_FORM)
        typed(browser, "#seed input", SEED)
        browser.find_element("css selector", "#generate").click()
        deadline = time.monotonic() + 120
        while "real words" not in browser.find_element("css selector", "#scorecard").text:
            if time.monotonic() > deadline:
                raise SystemExit("no scorecard shown within 120 s")
            time.sleep(0.2)
        browser.save_screenshot(str(picture))
        command = browser.find_element("css selector", "#command textarea").get_attribute("value")
    finally:
        browser.quit()
        server.terminate()
        server.wait(timeout=30)
    settings = {"run": str(run.relative_to(ROOT)), "form": SONG_FORM, "seed": SEED, "sample_command": command}
    picture.with_suffix(".json").write_text(json.dumps({"provenance": record, **settings}, indent=2) + "\n")
    print(f"wrote {picture}: {command}")


if __name__ == "__main__":
    arguments = sys.argv[1:]
    main(
        (ROOT / (arguments[0] if arguments else "outputs/lyrics/songs_poems-seed0")).resolve(),
        ROOT / (arguments[1] if len(arguments) > 1 else "docs/play.png"),
    )
