"""The character set of a model: text <-> compact id tensors. Needs only numpy and torch, so that generation
and notebooks can use it without the corpus machinery."""

from collections.abc import Iterator

import numpy as np
import torch

from lyricgen import UserError

CHUNK = 1 << 22  # characters of non-ASCII text converted at a time: bounded memory, whatever the text's size
CODEPOINTS = 0x110000  # every Unicode code point: the size of a lookup table that maps any character


def build_vocab(text: str) -> str:
    """The vocabulary is the sorted string of distinct characters: plain data, safe in any checkpoint.
    Counted over code points a chunk at a time (a set of a 100 MB string's characters takes seconds)."""
    present = np.zeros(CODEPOINTS, dtype=bool)
    for codes in chunks(text):
        if codes.dtype == np.uint32:
            present[codes] = True
        else:  # one counting pass over narrow codes beats a scattered write per character
            counts = np.bincount(codes)
            present[: len(counts)] |= counts > 0
    return "".join(map(chr, np.flatnonzero(present).tolist()))


def chunks(text: str) -> Iterator[np.ndarray]:
    """The text's code points, CHUNK at a time, in the narrowest type that holds them: the bytes of ASCII
    text (uint8), UTF-16 units when a chunk has no character beyond U+FFFF (uint16: half the memory
    traffic of UTF-32, and a 64K-entry corner of the lookup tables), else UTF-32 (uint32)."""
    ascii_text = text.isascii()
    for start in range(0, len(text), CHUNK):
        piece = text[start : start + CHUNK]
        if ascii_text:
            yield np.frombuffer(piece.encode("ascii"), dtype=np.uint8)
            continue
        units = np.frombuffer(piece.encode("utf-16-le"), dtype=np.uint16)
        if len(units) == len(piece):  # no surrogate pairs: each unit is a code point
            yield units
        else:
            yield np.frombuffer(piece.encode("utf-32-le"), dtype=np.uint32)


def id_dtype(vocab: str) -> np.dtype:
    return np.dtype(np.uint8 if len(vocab) <= 256 else np.int32)


def encode(text: str, vocab: str, drop_unknown: bool = False) -> torch.Tensor:
    """Map text to a compact id tensor (uint8 for vocabularies up to 256 characters).

    Characters outside `vocab` raise, or are dropped with `drop_unknown` (held-out text may contain a
    character the training text never showed the model). A lookup table over code points maps each
    chunk: for ASCII text the bytes and the ids are all the memory it takes (2x the text).
    """
    lookup = np.full(CODEPOINTS, -1, dtype=np.int32)
    lookup[[ord(char) for char in vocab]] = np.arange(len(vocab), dtype=np.int32)
    out, filled = np.empty(len(text), dtype=id_dtype(vocab)), 0
    narrow = {}  # the table cut to a chunk type's range, in the ids' type: np.take then writes ids directly
    for codes in chunks(text):
        wide = codes.dtype == np.uint32
        table = lookup if wide else lookup[: np.iinfo(codes.dtype).max + 1]
        present = np.unique(codes) if wide else np.flatnonzero(np.bincount(codes))  # bincount: one cheap pass
        unknown = present[table[present] < 0]
        if len(unknown):
            if not drop_unknown:
                raise UserError(f"characters not in the vocabulary: {sorted(set(map(chr, unknown)))!r}")
            codes = codes[table[codes] >= 0]
        cast = narrow.setdefault(codes.dtype, table.astype(out.dtype))
        np.take(cast, codes, out=out[filled : filled + len(codes)])
        filled += len(codes)
    return torch.from_numpy(out[:filled])


def decode(ids: torch.Tensor | list[int], vocab: str) -> str:
    return "".join(vocab[i] for i in torch.as_tensor(ids).tolist())
