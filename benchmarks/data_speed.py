"""How corpus size costs start-up time and memory: encode speed, and real training runs on corpora of 1, 10
and 100 MB (the six songbooks of ../shared/data repeated), cold (the first run builds the encoded-ids
cache) and warm (every later run, rank and sweep job maps it), as one process and as two DDP ranks (gloo).

Run: `python benchmarks/data_speed.py [sizes in MB ...]`. Writes results/data.json and results/data.md.
Memory is the peak over the run of the whole process tree, sampled every 20 ms: RSS (what `top` shows;
pages of the mapped ids count in every process that touched them) and PSS (shared pages split between
the processes sharing them: what the machine really holds).
"""

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import RESULTS, write_result

from lyricgen import charset

MEASURES = (
    "lyricgen/data",
    "lyricgen/charset.py",
    "benchmarks/data_speed.py",
)  # the code these numbers depend on (benchmarks/stale.py)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
RUN = ["trainer.max_steps=20", "trainer.val_check_interval=20", "trainer.enable_progress_bar=false"]
RUN += ["trainer.enable_model_summary=false", "threads=1", "sample_length=1"]
# Without the n-gram memory: its counts grow with the text up to memory.max_chars (docs/measurements.md), in
# every rank, and would hide what this measures, the encoded ids' cost, which should not grow with the corpus.
RUN += ["memory.order=0"]
DDP = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.precision=32-true"]


def songbook_corpus(megabytes: int, folder: Path) -> Path:
    """The six public-domain songbooks repeated (and cut) to `megabytes` of UTF-8 text."""
    books = "".join(path.read_text(encoding="utf-8") for path in sorted(SHARED.glob("pg*.txt")))
    path = folder / f"songbooks_{megabytes}mb.txt"
    target = megabytes * 1_000_000
    with path.open("w", encoding="utf-8") as file:
        written = 0
        while written < target:
            piece = books[: target - written]
            file.write(piece)
            written += len(piece.encode("utf-8"))
    return path


def tree(root: int) -> list[int]:
    """`root` and its descendants."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    found, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        found += frontier
    return found


def memory_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in kB, or zeros if it has gone."""
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    except OSError:
        return 0, 0
    values = {line.split(":")[0]: int(line.split()[1]) for line in rollup[1:] if line.split()[-1] == "kB"}
    return values.get("Rss", 0), values.get("Pss", 0)


def measured_run(args: list[str], cwd: Path) -> dict:
    """Wall time and the peak RSS/PSS (MB) of the process tree of one `python -m lyricgen.train` run."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "lyricgen.train", *args], cwd=cwd, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    peak_rss = peak_pss = 0
    while process.poll() is None:
        totals = [memory_kb(pid) for pid in tree(process.pid)]
        peak_rss = max(peak_rss, sum(rss for rss, _ in totals))
        peak_pss = max(peak_pss, sum(pss for _, pss in totals))
        time.sleep(0.02)
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"run failed: {process.stderr.read()[-2000:]}")
    return {"wall_s": round(wall, 2), "peak_rss_mb": round(peak_rss / 1024), "peak_pss_mb": round(peak_pss / 1024)}


def encode_rates(path: Path) -> tuple[float, float]:
    """MB/s of building the vocabulary and of encoding the whole text with it (in this process)."""
    text = path.read_text(encoding="utf-8")
    megabytes = len(text.encode("utf-8")) / 1e6
    started = time.perf_counter()
    vocab = charset.build_vocab(text)
    built = time.perf_counter()
    charset.encode(text, vocab)
    return round(megabytes / (built - started), 1), round(megabytes / (time.perf_counter() - built), 1)


def measure(megabytes: int, work: Path) -> dict:
    corpus = songbook_corpus(megabytes, work)
    cache = work / f"cache_{megabytes}"
    base = ["data=text", f"data.path={corpus}", f"data.prepared_dir={cache}"]
    row = {"mb": megabytes}
    row["vocab_mb_per_s"], row["encode_mb_per_s"] = encode_rates(corpus)
    row["cold"] = measured_run([*base, *RUN, f"hydra.run.dir={work / f'cold_{megabytes}'}"], work)
    row["warm"] = measured_run([*base, *RUN, f"hydra.run.dir={work / f'warm_{megabytes}'}"], work)
    row["ddp_warm"] = measured_run([*base, *DDP, *RUN, f"hydra.run.dir={work / f'ddp_{megabytes}'}"], work)
    row["ids_mb"] = round(sum(path.stat().st_size for path in cache.glob("ids-*/*.ids")) / 1e6, 1)
    shutil.rmtree(cache)
    corpus.unlink()
    print(row, flush=True)
    return row


def markdown(rows: list[dict]) -> str:
    lines = [
        "| corpus | vocabulary, encode | cold: wall, peak RSS | warm: wall, peak RSS, PSS "
        "| 2 DDP ranks, warm: wall, RSS, PSS |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        cold, warm, ddp = row["cold"], row["warm"], row["ddp_warm"]
        lines.append(
            f"| {row['mb']} MB | {row['vocab_mb_per_s']}, {row['encode_mb_per_s']} MB/s "
            f"| {cold['wall_s']} s, {cold['peak_rss_mb']} MB | "
            f"{warm['wall_s']} s, {warm['peak_rss_mb']} MB, {warm['peak_pss_mb']} MB | "
            f"{ddp['wall_s']} s, {ddp['peak_rss_mb']} MB, {ddp['peak_pss_mb']} MB |"
        )
    first, last = rows[0], rows[-1]
    lines += [
        "",
        f"Goals at {last['mb']} MB against {first['mb']} MB: warm start-up overhead "
        f"{last['warm']['wall_s'] - first['warm']['wall_s']:+.1f} s (goal <= 2 s); one process's peak RSS "
        f"{last['warm']['peak_rss_mb'] - first['warm']['peak_rss_mb']:+d} MB (goal <= 800 MB); two DDP ranks' "
        f"combined RSS {last['ddp_warm']['peak_rss_mb'] - first['ddp_warm']['peak_rss_mb']:+d} MB against "
        f"{last['ids_mb']} MB of ids (goal: less than one copy).",
        "",
        f"Every run's overrides: `{' '.join(RUN)}` (the n-gram memory off: its cost is bounded by memory.max_chars).",
    ]
    return "\n".join(lines) + "\n"


def main(sizes: list[int]) -> None:
    torch.set_num_threads(1)
    if not SHARED.is_dir():
        print(f"needs the songbooks in {SHARED}: measured nothing")
        return
    with tempfile.TemporaryDirectory() as folder:
        rows = [measure(megabytes, Path(folder)) for megabytes in sizes]
    write_result("data", {"runs": rows, "run_overrides": RUN}, MEASURES)
    (RESULTS / "data.md").write_text(markdown(rows))
    print(markdown(rows))


if __name__ == "__main__":
    main([int(size) for size in sys.argv[1:]] or [1, 10, 100])
