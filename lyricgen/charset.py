"""The character set of a model: text <-> compact id tensors. Needs only numpy and torch, so that generation
and notebooks can use it without the corpus machinery."""

import numpy as np
import torch

from lyricgen import UserError


def build_vocab(text: str) -> str:
    """The vocabulary is the sorted string of distinct characters: plain data, safe in any checkpoint."""
    return "".join(sorted(set(text)))


def _codepoints(text: str) -> np.ndarray:
    if text.isascii():  # the common case, 4x less memory than UTF-32
        return np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def encode(text: str, vocab: str, drop_unknown: bool = False) -> torch.Tensor:
    """Map text to a compact id tensor (uint8 for vocabularies up to 256 characters).

    Characters outside `vocab` raise, or are dropped with `drop_unknown` (held-out text may contain a
    character the training text never showed the model).
    """
    codes = _codepoints(text)
    vocab_codes = _codepoints(vocab or "\0")  # a placeholder keeps the lookup valid; it matches nothing below
    ids = np.searchsorted(vocab_codes, codes).clip(max=len(vocab_codes) - 1)
    known = (vocab_codes[ids] == codes) & bool(vocab)
    if not known.all():
        if not drop_unknown:
            unknown = sorted({chr(c) for c in codes[~known]})
            raise UserError(f"characters not in the vocabulary: {unknown!r}")
        ids = ids[known]
    dtype = np.uint8 if len(vocab) <= 256 else np.int32
    return torch.from_numpy(ids.astype(dtype))


def decode(ids: torch.Tensor | list[int], vocab: str) -> str:
    return "".join(vocab[i] for i in torch.as_tensor(ids).tolist())
