"""`prepare` throughput (MB/s) and peak memory on a generated CSV shaped like the Kaggle train.csv.

Run: `python benchmarks/prepare_speed.py [MB]` (default 300 MB, ~290k rows like the real file). The CSV is
generated in a temporary directory: multi-line quoted lyrics with commas, quotes and non-ASCII text,
ten genres and several languages in the real file's proportions.
"""

import csv
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


def song(rng: random.Random) -> str:
    """~1 KB of lyrics: verses of lines, a comma, a quote, a curly apostrophe, CRLF line ends."""
    lines = [" ".join(rng.choices(WORDS, k=rng.randint(4, 9))) for _ in range(rng.randint(16, 30))]
    lines[0] += ', "yeah"'
    lines[1] += " don\u2019t stop"
    return "\r\n".join(lines[:8]) + "\r\n\r\n" + "\r\n".join(lines[8:])


def write_csv(path: Path, megabytes: int) -> int:
    rng = random.Random(0)
    songs = [song(rng) for _ in range(3000)]  # a pool: generating every row afresh would dominate the time
    rows = 0
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["Artist", "Song", "Genre", "Language", "Lyrics"])
        while file.tell() < megabytes * 1e6:
            writer.writerows(
                (f"artist {rows + i}", f"song {rows + i}", rng.choice(GENRES), rng.choice(LANGUAGES), rng.choice(songs))
                for i in range(10_000)
            )
            rows += 10_000
    return rows


# Run in a fresh interpreter that reports its own peak RSS: VmHWM, since ru_maxrss survives exec and would
# include the benchmark's own pages from before the fork.
PREPARE = """
import re, sys
from pathlib import Path
from lyricgen.prepare import PrepareOptions, prepare
prepare(sys.argv[1], PrepareOptions(), sys.argv[2])
print(int(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text())[1]) / 1024)
"""


def main(megabytes: int = 300) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.csv"
        rows = write_csv(path, megabytes)
        size_mb = path.stat().st_size / 1e6
        start = time.perf_counter()
        child = subprocess.run([sys.executable, "-c", PREPARE, str(path), tmp], check=True, capture_output=True)
        seconds = time.perf_counter() - start
        peak_mb = float(child.stdout)
    result = {"csv_mb": round(size_mb, 1), "rows": rows, "seconds": round(seconds, 2)}
    result |= {"mb_per_s": round(size_mb / seconds, 1), "peak_rss_mb": round(peak_mb, 1)}
    print(f"prepare: {size_mb:.0f} MB, {rows:,} rows in {seconds:.1f} s = {result['mb_per_s']} MB/s")
    print(f"peak RSS {peak_mb:.0f} MB")
    print(f"wrote {write_result('prepare', result)}")


if __name__ == "__main__":
    main(*map(int, sys.argv[1:]))
