"""Encoded corpora, cached once on disk and memory-mapped by every process that trains on them.

The training ids of a 100 MB corpus are 100 MB of uint8: a rerun, each DDP rank and each sweep job maps
the same file instead of reading, cleaning and encoding the text again, and the operating system keeps
one copy of its pages for all of them. The cache is keyed by what the ids depend on (the source, its
files' path, size and modification time, the split and cleaning options), written into a temporary
folder and renamed into place; a folder whose files do not match their recorded sizes is rebuilt.
"""

import hashlib
import json
import mmap
import shutil
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from lyricgen import charset, corpus
from lyricgen.atomic import publish_dir

CACHE_VERSION = 1  # bump when encoding or splitting changes, so old caches are not reused
META = "meta.json"


@dataclass
class Encoded:
    vocab: str
    train: torch.Tensor  # memory-mapped ids of the training text
    val: torch.Tensor  # ids of the validation text


def file_identity(path: str | Path) -> list:
    """A file as the cache knows it: resolved path, size and modification time (hashing a 100 MB corpus at
    every start would cost more than what the cache saves)."""
    path = Path(path).expanduser().resolve()
    stat = path.stat()
    return [str(path), stat.st_size, stat.st_mtime_ns]


def identity(source: str, val_fraction: float, hygiene: bool, options: dict) -> list:
    """Everything the encoded ids depend on. A missing input file is left for load_split to report."""
    inputs = {
        "songs_poems": lambda: resources.files("fortune") / "datfiles" / "songs-poems",
        "text": lambda: options.get("path"),
        "lyrics_csv": lambda: options.get("csv"),
    }
    path = inputs.get(source, lambda: None)()
    present = path is not None and Path(str(path)).expanduser().is_file()
    extra = (
        [options.get(key) for key in ("genres", "languages", "ascii", "separator")] if source == "lyrics_csv" else []
    )
    return [CACHE_VERSION, source, file_identity(str(path)) if present else None, val_fraction, hygiene, extra]


def cache_folder(root: Path, key: list) -> Path:
    return root / f"ids-{hashlib.blake2b(json.dumps(key, default=list).encode(), digest_size=8).hexdigest()}"


def mapped(path: Path, dtype: np.dtype, length: int) -> torch.Tensor:
    """The file's ids, memory-mapped copy-on-write: the pages are the page cache's, shared by every process
    that maps the file (until written: they never are). Windows are read at random, so the kernel is told
    not to read ahead from disk (MADV_RANDOM). Each page a process touches counts in its RSS, and a fault
    maps a whole page-cache folio (up to ~1.5 MB measured here): a few hundred batches map all of it."""
    if length == 0:
        return torch.empty(0, dtype=torch.from_numpy(np.empty(0, dtype)).dtype)
    with path.open("rb") as file:
        memory = mmap.mmap(file.fileno(), length * dtype.itemsize, access=mmap.ACCESS_COPY)
    if hasattr(memory, "madvise"):  # Linux, macOS; elsewhere the kernel reads ahead
        memory.madvise(mmap.MADV_RANDOM)
    return torch.from_numpy(np.frombuffer(memory, dtype=dtype))


def load(folder: Path) -> Encoded | None:
    """The cached corpus, or None if the folder is missing, incomplete or corrupt."""
    try:
        meta = json.loads((folder / META).read_text())
        dtype = np.dtype(meta["dtype"])
        lengths = {name: meta[f"{name}_length"] for name in ("train", "val")}
        if any((folder / f"{name}.ids").stat().st_size != length * dtype.itemsize for name, length in lengths.items()):
            return None
        return Encoded(
            meta["vocab"], *(mapped(folder / f"{name}.ids", dtype, lengths[name]) for name in ("train", "val"))
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def build(folder: Path, key: list, source: str, val_fraction: float, hygiene: bool, options: dict) -> None:
    """Load, clean, split and encode the corpus into `folder`."""
    train_text, val_text = corpus.load_split(source, val_fraction, hygiene, **options)
    vocab = charset.build_vocab(train_text)
    train = charset.encode(train_text, vocab).numpy()
    del train_text  # the text can go before the validation ids are made: peak memory is text + ids
    val = charset.encode(val_text, vocab, drop_unknown=True).numpy()
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        train.tofile(work / "train.ids")
        val.tofile(work / "val.ids")
        meta = {"vocab": vocab, "dtype": train.dtype.str, "train_length": len(train), "val_length": len(val)}
        (work / META).write_text(json.dumps({**meta, "key": key}, default=list))
        shutil.rmtree(folder, ignore_errors=True)  # a corrupt one, if any
        publish_dir(work, folder, done=META)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def encoded_corpus(
    source: str, val_fraction: float, hygiene: bool, prepared_dir: str | Path, **options: object
) -> Encoded:
    """The corpus of data.source and its options as ids: from the cache under `prepared_dir`, built once."""
    key = identity(source, val_fraction, hygiene, options)
    folder = cache_folder(Path(prepared_dir), key)
    cached = load(folder)
    if cached is None:
        options = {**options, "prepared_dir": prepared_dir} if source == "lyrics_csv" else options
        build(folder, key, source, val_fraction, hygiene, options)
        cached = load(folder)
    return cached
