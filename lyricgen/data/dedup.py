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
from typing import NamedTuple

import numpy as np
import pandas as pd

SHINGLE_WORDS = 8  # words per shingle: long enough that unrelated songs rarely share one
BANDS, ROWS = 16, 4  # 64 hashes; a pair at Jaccard 0.5 meets in some band with probability 0.64, at 0.7 0.98
THRESHOLD = 0.5  # estimated Jaccard similarity from which a candidate is a duplicate
BLOCK_SONGS = 512  # songs whose shingles are hashed at once (~64 x 100k shingles, ~50 MB, at ~200 words a song)
_NOT_WORD = re.compile(r"[^a-z0-9\s]+")


def normalised_words(song: str) -> list[str]:
    """The song's words, lower-cased, without punctuation: "Don't STOP!" -> ["dont", "stop"]."""
    return _NOT_WORD.sub("", song.lower()).split()


def shingle_hashes(lengths: np.ndarray, word_hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(a 64-bit hash of each run of SHINGLE_WORDS consecutive words within a song, the index of each song's
    first shingle) for songs of `lengths` words whose word hashes are concatenated; a song shorter than a
    shingle has one, of all its words; an empty song one of nothing."""
    ends = np.cumsum(lengths)
    starts = ends - lengths
    counts = np.maximum(1, lengths - SHINGLE_WORDS + 1)
    positions = np.repeat(starts, counts) + (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts))
    song_ends = np.repeat(ends, counts)
    padded = np.concatenate([word_hashes, np.zeros(SHINGLE_WORDS, dtype=np.uint64)])
    shingles = np.zeros(len(positions), dtype=np.uint64)
    with np.errstate(over="ignore"):  # wrapping multiplication is the point
        for offset in range(SHINGLE_WORDS):
            inside = positions + offset < song_ends  # a shingle never reaches into the next song
            shingles = shingles * np.uint64(1_000_003) + np.where(inside, padded[positions + offset], 0)
    return shingles, np.cumsum(counts) - counts


class Fingerprint(NamedTuple):
    digest: bytes  # of the normalised text: equal for exact duplicates
    signature: np.ndarray  # BANDS x ROWS min-hashes of its shingles


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

    def fingerprints(self, songs: list[str]) -> list[Fingerprint]:
        """Each song's fingerprint, computed for all of them at once (numpy over every shingle of the batch):
        multiply-shift hashing, the high 32 bits of a*x + b in 64-bit arithmetic (Dietzfelbinger et al. 1997)."""
        words = [normalised_words(song) for song in songs]
        digests = [hashlib.blake2b(" ".join(each).encode(), digest_size=16).digest() for each in words]
        lengths = np.array([len(each) for each in words], dtype=np.int64)
        every_word = np.array([word for each in words for word in each], dtype=object)
        word_hashes = pd.util.hash_array(every_word) if len(every_word) else np.zeros(0, dtype=np.uint64)
        shingles, firsts = shingle_hashes(lengths, word_hashes)
        signatures = np.empty((len(songs), BANDS * ROWS), dtype=np.uint32)
        for first in range(0, len(songs), BLOCK_SONGS):  # bounded memory: a block's hashes at a time
            last = min(first + BLOCK_SONGS, len(songs))
            begin, end = firsts[first], firsts[last] if last < len(songs) else len(shingles)
            with np.errstate(over="ignore"):
                hashed = (self.multipliers * shingles[begin:end] + self.offsets) >> np.uint64(32)
            signatures[first:last] = np.minimum.reduceat(hashed, firsts[first:last] - begin, axis=1).T
        return [Fingerprint(digest, signature) for digest, signature in zip(digests, signatures, strict=True)]

    def match(self, fingerprint: Fingerprint) -> tuple[int | None, str | None]:
        """(the earlier song this one duplicates, "exact" or "near"), or (None, None) for a new song."""
        if fingerprint.digest in self.exact:
            return self.exact[fingerprint.digest], "exact"
        for band, key in zip(self.bands, fingerprint.signature.reshape(BANDS, ROWS), strict=True):
            candidate = band.get(key.tobytes())
            if candidate is not None and np.mean(self.signatures[candidate] == fingerprint.signature) >= THRESHOLD:
                return candidate, "near"
        return None, None

    def add(self, fingerprint: Fingerprint, split: str) -> None:
        """Remember a song that is no duplicate, and the split it went to."""
        song_id = len(self.splits)
        self.exact[fingerprint.digest] = song_id
        for band, key in zip(self.bands, fingerprint.signature.reshape(BANDS, ROWS), strict=True):
            band.setdefault(key.tobytes(), song_id)
        self.signatures.append(fingerprint.signature)
        self.splits.append(split)
