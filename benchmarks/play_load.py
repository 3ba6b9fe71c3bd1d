"""Many visitors at once on the real playground: `python -m lyricgen.play` on loopback, N visitors (each
its own gradio_client session) asking for streamed samples with mixed settings, bad ones among them.
Every answer is checked against lyricgen.generate's text for the same settings and seed, every download
against its own request; the server's memory is sampled throughout; a cancelled request's CPU is timed.

Run: `python benchmarks/play_load.py [visitors] [requests each]` (default 16 20, and 4 for the first-character
percentiles at 4 visitors). Trains a small model first (the default LSTM at 200 steps, ~1 minute). Writes
benchmarks/results/play_load.json and play_load.md. tests/test_play_load.py runs the same at a small size.
"""

import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from common import RESULTS, write_result

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")  # gradio_client's hub library would report usage

from lyricgen.training.generation import GenerateConfig, load, sampled

# the code these numbers depend on (benchmarks/stale.py)
MEASURES = (
    "lyricgen/play.py",
    "lyricgen/generate.py",
    "lyricgen/training/generation.py",
    "lyricgen/nn",
    "benchmarks/play_load.py",
)
PRIMES = ["\n", "The ", "I want ", "la la", "rock "]
LONG = 4900  # characters of the request cancelled mid-way (within max_chars)
BAD = [  # (what a page may send, the line it must answer with)
    ({"top_k": -5}, "top_k=-5 is invalid"),
    ({"length": -3}, "length=-3 is invalid"),
    ({"prime": "snow \u2603 man"}, "outside the model's vocabulary"),
    ({"prime": "la " * 2000}, "characters asked for: this page writes at most"),
    ({"length": 999_999}, "characters asked for: this page writes at most"),
]


@dataclass
class Asked:
    """One request: the page's ten fields, and what must come back (a text, or an error line)."""

    fields: tuple
    error: str | None = None
    settings: GenerateConfig | None = None


@dataclass
class Answered:
    first_char_s: float | None = None
    problems: list[str] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(work: Path, *options: str, timeout: float = 90) -> tuple[subprocess.Popen, str]:
    """The playground in `work` (its outputs/ holds the runs), and its address once it answers."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "lyricgen.play", f"port={port}", *options], cwd=work, stdout=subprocess.PIPE, text=True
    )
    url, deadline = f"http://127.0.0.1:{port}/", time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):  # the page, or its login page
                return server, url
        except OSError:  # still starting
            time.sleep(0.5)
    server.kill()
    raise RuntimeError(f"the playground did not answer at {url} within {timeout} s")


def plan(run: str, visitors: int, each: int, vocab: str, seed: int = 0) -> list[list[Asked]]:
    """Each visitor's requests: mixed settings (two visitors share seeds, so their downloads would collide
    if they were not kept apart), every fifth one bad; primes the model's `vocab` can spell."""
    rng = random.Random(seed)
    primes = [prime for prime in PRIMES if set(prime) <= set(vocab)]
    plans = []
    for visitor in range(visitors):
        asked = []
        for number in range(each):
            settings = {
                "prime": rng.choice(primes),
                "temperature": rng.choice([0.0, 0.5, 0.8, 1.2]),
                "top_k": rng.choice([None, 5, 20]),
                "length": rng.randint(60, 120),
                "seed": (visitor // 2) * 100 + number,
            }
            bad = BAD[(visitor + number) % len(BAD)] if number % 5 == 4 else None
            settings |= bad[0] if bad else {}
            fields = (run, "", None, settings["prime"], settings["temperature"], settings["top_k"],
                      settings["length"], settings["seed"], True, "")  # fmt: skip
            cfg = None if bad else GenerateConfig(ckpt=run, **settings)
            asked.append(Asked(fields, bad[1] if bad else None, cfg))
        plans.append(asked)
    return plans


def visit(url: str, asked: list[Asked], expected: dict) -> list[Answered]:
    """One visitor asking in turn, each answer checked: its text, its command, its own download."""
    from gradio_client import Client

    client, answers = Client(url, verbose=False), []
    for request in asked:
        answer, started = Answered(), time.monotonic()
        job = client.submit(*request.fields, api_name="/write")
        try:
            for text, *_ in job:
                if answer.first_char_s is None and len(text) > len(request.fields[3]):
                    answer.first_char_s = time.monotonic() - started
            text, command, status, download, _ = job.result()
        except Exception as err:  # the server failed this request: counted, and the visitor goes on
            answers.append(Answered(problems=[f"no answer to {request.fields}: {err}"]))
            continue
        if request.error is not None:
            if request.error not in status or text or "\n" in status.strip():
                answer.problems.append(f"bad input {request.fields} answered {status!r}")
        elif status or text != expected[request.fields]:
            answer.problems.append(f"differs from lyricgen.generate: {request.fields} ({status})")
        elif Path(download).read_text(encoding="utf-8") != f"{text}\n\n# {command}\n":
            answer.problems.append(f"crossed download: {request.fields}")
        answers.append(answer)
    return answers


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))) / 1024


def cpu_s(pid: int) -> float:
    """The process's CPU seconds (user and system) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def under_load(work: Path, run: str, visitors: int, each: int) -> dict:
    """`visitors` at once against a fresh server: first-character times, problems, memory over time."""
    from lyricgen.nn.checkpoints import find_checkpoint, load_checkpoint

    plans = plan(run, visitors, each, load_checkpoint(find_checkpoint(str(work / run)))[1])
    wanted = {request.fields: request.settings for asked in plans for request in asked if request.settings}
    here = Path.cwd()
    os.chdir(work)  # generate finds the run's memory as the server does, from where it runs
    try:
        model = load(next(iter(wanted.values())))  # generate's loading and sampling, the model loaded once
        expected = {fields: "".join(part[0] for part in sampled(cfg, *model)) for fields, cfg in wanted.items()}
    finally:
        os.chdir(here)
    server, url = serve(work, f"concurrency={visitors}")
    memory, stop = [], threading.Event()

    def sample_memory() -> None:
        while not stop.wait(0.5):
            memory.append(rss_mb(server.pid))

    sampler = threading.Thread(target=sample_memory)
    sampler.start()
    started = time.monotonic()
    try:
        results: list[list[Answered]] = [[] for _ in plans]
        threads = [threading.Thread(target=lambda i=i: results[i].extend(visit(url, plans[i], expected)))
                   for i in range(visitors)]  # fmt: skip
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        stop.set()
        sampler.join()
        server.terminate()
        server.wait(timeout=30)
    answers = [answer for visitor in results for answer in visitor]
    firsts = sorted(answer.first_char_s for answer in answers if answer.first_char_s is not None)
    warm = memory[len(memory) // 4 :] or memory  # after warm-up: the models loaded, the caches filled
    return {
        "visitors": visitors,
        "requests": len(answers),
        "seconds": round(time.monotonic() - started, 1),
        "problems": [problem for answer in answers for problem in answer.problems],
        "first_char_s": {"p50": percentile(firsts, 0.5), "p95": percentile(firsts, 0.95), "max": round(firsts[-1], 3)},
        "rss_mb": {"after_warm_up": round(warm[0], 1), "max": round(max(warm), 1), "last": round(warm[-1], 1)},
    }


def percentile(values: list[float], share: float) -> float:
    return round(values[min(len(values) - 1, int(share * len(values)))], 3)


def cancelled_cpu(work: Path, run: str) -> dict:
    """A long request cancelled mid-way: how long the server's CPU keeps working on it afterwards."""
    from gradio_client import Client

    server, url = serve(work)
    try:
        client = Client(url, verbose=False)
        client.predict(run, "", None, "\n", 0.8, None, 20, 0, True, "", api_name="/write")  # the model loaded
        job = client.submit(run, "", None, "\n", 0.8, None, LONG, 0, True, "", api_name="/write")
        deadline = time.monotonic() + 60
        while not job.outputs() and time.monotonic() < deadline:  # writing (the first part is out)
            time.sleep(0.05)
        time.sleep(1.0)
        job.cancel()
        written = len(job.outputs()[-1][0]) if job.outputs() else 0
        cancelled = time.monotonic()
        before, released = cpu_s(server.pid), None
        while time.monotonic() - cancelled < 5:  # released: the CPU stops counting for 0.3 s in a row
            time.sleep(0.3)
            after = cpu_s(server.pid)
            if after - before < 0.03:
                released = round(time.monotonic() - cancelled - 0.3, 2)
                break
            before = after
        return {"released_within_s": released, "cancelled_at_chars": written, "asked_chars": LONG}
    finally:
        server.terminate()
        server.wait(timeout=30)


def train(work: Path, steps: int) -> str:
    """A default model trained for `steps` on the built-in corpus, into work/outputs/runs/load."""
    run = "outputs/runs/load"
    quiet = ["trainer.enable_progress_bar=false", f"hydra.run.dir={run}"]
    command = [sys.executable, "-m", "lyricgen.train", f"trainer.max_steps={steps}", *quiet]
    subprocess.run(command, cwd=work, check=True, capture_output=True)
    return run


def main(visitors: int = 16, each: int = 20) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        run = train(work, 200)
        few, many = under_load(work, run, 4, each), under_load(work, run, visitors, each)
        cancel = cancelled_cpu(work, run)
    result = {"model": "default LSTM 2x256, 200 steps, built-in corpus", "at_4": few, f"at_{visitors}": many}
    result["cancelled"] = cancel
    write_result("play_load", result, MEASURES)
    lines = [
        "| visitors | requests | problems | first character p50 / p95 / max (s) "
        "| server RSS after warm-up / max / last (MB) |",
        "|---|---|---|---|---|",
    ]
    for row in (few, many):
        first, rss = row["first_char_s"], row["rss_mb"]
        times = f"{first['p50']} / {first['p95']} / {first['max']}"
        memory = f"{rss['after_warm_up']} / {rss['max']} / {rss['last']}"
        lines.append(f"| {row['visitors']} | {row['requests']} | {len(row['problems'])} | {times} | {memory} |")
    lines.append(
        f"\nA cancelled 4,900-character request: the server's CPU released within {cancel['released_within_s']} s"
    )
    (RESULTS / "play_load.md").write_text("\n".join(lines) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:3]))
