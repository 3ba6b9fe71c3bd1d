"""TensorBoard is the page users look at: a real `tensorboard` server over a finished run serves its curves,
hyperparameters and text samples through its HTTP API."""

import json
import math
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import curve

pytestmark = pytest.mark.slow


@pytest.fixture
def server(trained_run):
    """The base URL of a TensorBoard server on 127.0.0.1 over the trained run (its own free port)."""
    tensorboard = Path(sys.executable).parent / "tensorboard"
    command = [str(tensorboard), "--logdir", str(trained_run), "--host", "127.0.0.1", "--port", "0"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        for line in process.stderr:  # "TensorBoard 2.x at http://127.0.0.1:PORT/ (Press CTRL+C to quit)"
            if match := re.search(r"http://127\.0\.0\.1:\d+", line):
                url = match.group(0)
                break
        assert url, "tensorboard did not start"
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def get(url: str, body: dict | None = None) -> object:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def loaded(server: str, timeout: float = 60) -> dict:
    """The scalar tags, once the server has read the event files (it loads them in the background)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tags = get(f"{server}/data/plugin/scalars/tags").get(".", {})
        if "val/bpc" in tags:
            return tags
        time.sleep(0.5)
    raise AssertionError("tensorboard did not load the run's scalars")


def test_a_tensorboard_server_shows_curves_hparams_and_samples(server, trained_run):
    assert {"train/loss", "train/grad_norm", "train/lr", "val/loss", "val/bpc"} <= set(loaded(server))
    served = get(f"{server}/data/plugin/scalars/scalars?run=.&tag=train/loss")
    assert [(step, value) for _, step, value in served] == curve(trained_run)
    assert len(served) == 60  # every step
    bpc = [value for _, _, value in get(f"{server}/data/plugin/scalars/scalars?run=.&tag=val/bpc")]
    loss = [value for _, _, value in get(f"{server}/data/plugin/scalars/scalars?run=.&tag=val/loss")]
    assert bpc == pytest.approx([value / math.log(2) for value in loss])
    experiment = get(f"{server}/data/plugin/hparams/experiment", {"experimentName": ""})
    assert {"val/loss", "val/bpc"} <= {info["name"]["tag"] for info in experiment["metricInfos"]}
    statuses = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]
    query = {"experimentName": "", "allowedStatuses": statuses, "colParams": [], "startIndex": 0, "sliceSize": 10}
    (group,) = get(f"{server}/data/plugin/hparams/session_groups", query)["sessionGroups"]
    assert (group["hparams"]["model.cell"], group["hparams"]["model.hidden_size"]) == ("lstm", 16)
    samples = get(f"{server}/data/plugin/text/text?run=.&tag=sample/text_summary")
    assert samples and all("<pre><code>" in sample["text"] for sample in samples)
    real_words = get(f"{server}/data/plugin/scalars/scalars?run=.&tag=sample/real_words")
    scored = json.loads((trained_run / "samples.json").read_text())  # the same scorecard, for the report
    assert [value for _, _, value in real_words][-1] == pytest.approx(scored["scorecards"]["sample"]["real_words"])
    assert scored["step"] == real_words[-1][1] and len(samples) == len(real_words)  # a scorecard per sample shown
