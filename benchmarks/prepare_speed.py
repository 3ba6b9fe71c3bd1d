"""`prepare` throughput (MB/s) and peak memory on a generated CSV shaped like the Kaggle train.csv.

Run: `python benchmarks/prepare_speed.py [MB]` (default 300 MB, ~290k rows like the real file). The CSV is
generated in a temporary directory: multi-line quoted lyrics with commas, quotes and non-ASCII text,
ten genres and several languages in the real file's proportions.
"""

import csv
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import write_result

GENRES = ["Rock"] * 37 + ["Pop"] * 30 + ["Metal"] * 7 + ["Indie", "Folk", "R&B", "Hip-Hop", "Country", "Jazz"] * 4
LANGUAGES = ["en"] * 8 + ["pt", "es"]
WORDS = [
    "love",
    "night",
    "baby",
    "heart",
    "fire",
    "rock",
    "roll",
    "road",
    "home",
    "never",
    "gonna",
    "dream",
    "light",
    "dark",
    "rain",
    "soul",
    "café",
    "naïve",
]


def line(rng: random.Random) -> str:
    return " ".join(rng.choices(WORDS, k=rng.randint(4, 9)))


def song(rng: random.Random, lines: list[str]) -> str:
    """~1 KB of lyrics from a pool of lines: verses, a comma, a quote, a curly apostrophe, CRLF line ends."""
    chosen = rng.choices(lines, k=rng.randint(16, 30))
    chosen[0] += ', "yeah"'
    chosen[1] += " don\u2019t stop"
    return "\r\n".join(chosen[:8]) + "\r\n\r\n" + "\r\n".join(chosen[8:])


REPEATED = 0.013  # share of rows that repeat an earlier song, as measured in real rows of the Kaggle schema


def write_csv(path: Path, megabytes: int) -> int:
    """Distinct songs (drawn from a pool of lines: generating every word afresh would dominate the time),
    and REPEATED of the rows a copy of an earlier one."""
    rng = random.Random(0)
    lines = [line(rng) for _ in range(20_000)]
    recent: list[str] = []
    rows = 0
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["Artist", "Song", "Genre", "Language", "Lyrics"])
        while file.tell() < megabytes * 1e6:
            batch = [
                rng.choice(recent) if recent and rng.random() < REPEATED else song(rng, lines) for _ in range(10_000)
            ]
            recent = batch[:1000]
            writer.writerows(
                (f"artist {rows + i}", f"song {rows + i}", rng.choice(GENRES), rng.choice(LANGUAGES), lyrics)
                for i, lyrics in enumerate(batch)
            )
            rows += 10_000
    return rows


# the code these numbers depend on (benchmarks/stale.py)
MEASURES = ("lyricgen/data", "lyricgen/prepare.py", "benchmarks/prepare_speed.py")

# Run in a fresh interpreter that reports its own peak RSS: VmHWM, since ru_maxrss survives exec and would
# include the benchmark's own pages from before the fork.
PREPARE = """
import json, re, sys
from pathlib import Path
from lyricgen.data.lyrics_csv import default_options, prepare

prepared = prepare(sys.argv[1], default_options(dedup=sys.argv[3] == "dedup"), sys.argv[2])
stats = json.loads((prepared / "stats.json").read_text())
peak = int(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text())[1]) / 1024
print(json.dumps({"peak_rss_mb": peak, "songs": stats["songs"], "duplicates": stats["duplicates"]}))
"""


def main(megabytes: int = 300) -> None:
    """Prepare the same CSV with and without deduplication, alternately, each in a fresh process."""
    result: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.csv"
        rows = write_csv(path, megabytes)
        size_mb = path.stat().st_size / 1e6
        result |= {"csv_mb": round(size_mb, 1), "rows": rows}
        for mode in ("keep", "dedup", "keep", "dedup"):  # side by side; the second of each is kept
            start = time.perf_counter()
            command = [sys.executable, "-c", PREPARE, str(path), f"{tmp}/{mode}-{time.time_ns()}", mode]
            child = json.loads(subprocess.run(command, check=True, capture_output=True).stdout)
            seconds = time.perf_counter() - start
            result[mode] = {"seconds": round(seconds, 2), "mb_per_s": round(size_mb / seconds, 1)} | child
    for mode in ("keep", "dedup"):
        run = result[mode]
        print(
            f"prepare ({mode}): {size_mb:.0f} MB, {rows:,} rows in {run['seconds']:.1f} s = {run['mb_per_s']} MB/s, "
            f"peak RSS {run['peak_rss_mb']:.0f} MB, {run['songs']:,} songs, duplicates {run['duplicates']}"
        )
    print(f"wrote {write_result('prepare', result, MEASURES)}")


if __name__ == "__main__":
    main(*map(int, sys.argv[1:]))
