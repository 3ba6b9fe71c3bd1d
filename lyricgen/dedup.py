"""Exact and near-duplicate songs, found in one pass over a corpus in time and memory linear in its songs.

Scraped lyrics repeat themselves: a song listed twice, a cover with the same words, a live version with a
verse changed. A copy on each side of the train/validation split makes validation loss look better than
it is, and most of all with the n-gram memory, which can recall it word for word.

- Exact: the same text once case, punctuation and spacing are ignored (a hash of the normalised text).
- Near: MinHash over the song's 8-word shingles with locality-sensitive hashing (Broder 1997; Leskovec,
  Rajaraman and Ullman, *Mining of Massive Datasets*, ch. 3): songs whose signatures agree in one band
  of rows are candidates, and a candidate whose signatures agree in at least `threshold` of their
  positions (an estimate of the shingles' Jaccard similarity) is a near duplicate. No pair of songs is
  compared unless a band brings them together.
"""

import hashlib
import re

import numpy as np
import pandas as pd

SHINGLE_WORDS = 8  # words per shingle: long enough that unrelated songs rarely share one
BANDS, ROWS = 16, 4  # 64 hashes; a pair at Jaccard 0.5 meets in some band with probability 0.64, at 0.7 0.98
THRESHOLD = 0.5  # estimated Jaccard similarity from which a candidate is a duplicate
_NOT_WORD = re.compile(r"[^a-z0-9\s]+")


def normalised_words(song: str) -> list[str]:
    """The song's words, lower-cased, without punctuation: "Don't STOP!" -> ["dont", "stop"]."""
    return _NOT_WORD.sub("", song.lower()).split()


def shingle_hashes(words: list[str]) -> np.ndarray:
    """A 64-bit hash of each run of SHINGLE_WORDS consecutive words (one run for a shorter song)."""
    if not words:
        return np.zeros(1, dtype=np.uint64)
    word_hashes = pd.util.hash_array(np.array(words, dtype=object))  # deterministic across processes
    count = max(1, len(words) - SHINGLE_WORDS + 1)
    shingles = np.zeros(count, dtype=np.uint64)
    with np.errstate(over="ignore"):  # wrapping multiplication is the point
        for offset in range(min(SHINGLE_WORDS, len(words))):
            shingles = shingles * np.uint64(1_000_003) + word_hashes[offset : offset + count]
    return shingles


class SongIndex:
    """The songs seen so far: which one a new song duplicates, and in which split each original went."""

    def __init__(self, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.multipliers = rng.integers(1, 1 << 63, size=(BANDS * ROWS, 1), dtype=np.uint64) | np.uint64(1)  # odd
        self.offsets = rng.integers(0, 1 << 63, size=(BANDS * ROWS, 1), dtype=np.uint64)
        self.exact: dict[bytes, int] = {}
        self.bands: list[dict[bytes, int]] = [{} for _ in range(BANDS)]
        self.signatures: list[np.ndarray] = []
        self.splits: list[str] = []

    def signature(self, words: list[str]) -> np.ndarray:
        """BANDS x ROWS min-hashes of the song's shingles, one per hash function: multiply-shift hashing,
        the high 32 bits of a*x + b in 64-bit arithmetic (Dietzfelbinger et al. 1997)."""
        with np.errstate(over="ignore"):
            hashed = (self.multipliers * shingle_hashes(words) + self.offsets) >> np.uint64(32)
        return hashed.min(axis=1).astype(np.uint32)

    def match(self, song: str) -> tuple[int | None, str | None, tuple]:
        """(the earlier song this one duplicates, "exact" or "near", the keys to add it by); (None, None,
        keys) for a song not seen before."""
        words = normalised_words(song)
        digest = hashlib.blake2b(" ".join(words).encode(), digest_size=16).digest()
        if digest in self.exact:
            return self.exact[digest], "exact", ()
        signature = self.signature(words)
        keys = (digest, signature)
        band_keys = signature.reshape(BANDS, ROWS)
        for band, key in zip(self.bands, band_keys, strict=True):
            candidate = band.get(key.tobytes())
            if candidate is not None and np.mean(self.signatures[candidate] == signature) >= THRESHOLD:
                return candidate, "near", keys
        return None, None, keys

    def add(self, keys: tuple, split: str) -> None:
        """Remember a song that is no duplicate (by match's keys) and the split it went to."""
        digest, signature = keys
        song_id = len(self.splits)
        self.exact[digest] = song_id
        for band, key in zip(self.bands, signature.reshape(BANDS, ROWS), strict=True):
            band.setdefault(key.tobytes(), song_id)
        self.signatures.append(signature)
        self.splits.append(split)
