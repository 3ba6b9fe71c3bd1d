"""Encoded corpora, cached once on disk and memory-mapped by every process that trains on them.

The training ids of a 100 MB corpus are 100 MB of uint8: a rerun, each DDP rank and each sweep job reads
its windows from the same file instead of reading, cleaning and encoding the text again, and the
operating system's page cache keeps one copy of it for all of them. The cache is keyed by what the ids
depend on (the source, its files' path, size and modification time, the split and cleaning options),
written into a temporary folder and renamed into place; a folder whose files do not match their recorded
sizes is rebuilt.
"""

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lyricgen import UserError, charset
from lyricgen.atomic import publish_dir
from lyricgen.data import corpus
from lyricgen.data.lyrics_csv import SPLITS

CACHE_VERSION = 2  # bump when encoding or splitting changes, so old caches are not reused
META = "meta.json"


def file_identity(path: str | Path) -> list:
    """A file as the cache knows it: resolved path, size and modification time (hashing a 100 MB corpus at
    every start would cost more than what the cache saves)."""
    path = Path(path).expanduser().resolve()
    stat = path.stat()
    return [str(path), stat.st_size, stat.st_mtime_ns]


def identity(
    source: str, val_fraction: float, test_fraction: float, hygiene: bool, labelled: bool, options: dict
) -> list:
    """Everything the encoded ids depend on. A missing input file is left for load_split to report."""
    files = [
        [label, file_identity(path) if path is not None and Path(path).expanduser().is_file() else None]
        for label, path in corpus.input_files(source, options).items()
    ]
    csv_options = ("genres", "languages", "ascii", "separator", "dedup")
    extra = {"lyrics_csv": [options.get(key) for key in csv_options], "text": [options.get("separator")]}.get(
        source, []
    )
    split = [val_fraction, test_fraction]
    return [CACHE_VERSION, source, files, split, hygiene, extra, labelled]


def cache_folder(root: Path, key: list) -> Path:
    return root / f"ids-{hashlib.blake2b(json.dumps(key, default=list).encode(), digest_size=8).hexdigest()}"


class FileIds:
    """Ids in a file, read a window at a time with pread: nothing of the file is mapped into the process,
    so a process's memory does not grow with the corpus; the operating system's page cache holds one copy
    for every process that reads it (mapping the file instead made the whole file resident in every process
    after a few hundred batches: each page fault maps a whole page-cache folio).

    Supports what training asks of its ids: len(), slices (a DDP rank's shard, data.train_chars) and
    windows (RandomWindows' batches).
    """

    def __init__(self, path: Path, dtype: np.dtype, start: int = 0, stop: int | None = None):
        self.path, self.dtype = Path(path), np.dtype(dtype)
        self.start = start
        self.stop = self.path.stat().st_size // self.dtype.itemsize if stop is None else stop
        self.file = os.open(self.path, os.O_RDONLY)

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, index: slice) -> "FileIds":
        """A range of these ids (a DDP rank's shard, data.train_chars), still on disk."""
        first, last, step = index.indices(len(self))
        if step != 1:
            raise ValueError("FileIds slices take no step")
        return FileIds(self.path, self.dtype, self.start + first, self.start + max(first, last))

    def windows(self, starts: list[int], width: int) -> torch.Tensor:
        """(len(starts), width) ids: `width` consecutive ids from each start, one pread each."""
        if starts and (min(starts) < 0 or max(starts) + width > len(self)):
            raise IndexError(f"a window of {width} outside the {len(self)} ids")
        size = self.dtype.itemsize
        data = b"".join(os.pread(self.file, width * size, (self.start + first) * size) for first in starts)
        return torch.from_numpy(np.frombuffer(bytearray(data), dtype=self.dtype)).view(len(starts), width)

    def read(self) -> torch.Tensor:
        """All of these ids in memory (small ranges: validation text, tests)."""
        return self.windows([0], len(self))[0]

    def __getstate__(self) -> dict:  # ddp_spawn pickles the data: a file descriptor does not travel
        return {key: value for key, value in self.__dict__.items() if key != "file"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.file = os.open(self.path, os.O_RDONLY)

    def __del__(self) -> None:
        if hasattr(self, "file"):
            os.close(self.file)


@dataclass
class Encoded:
    vocab: str
    train: FileIds  # ids of the training text, read window by window
    val: FileIds  # ids of the validation text
    test: FileIds  # ids of the test text (none unless data.test_fraction > 0)
    labels: list[str]  # the label names of a labelled corpus (genres, data.files' keys); [] otherwise
    label_ids: dict[str, FileIds]  # per split, each character's label (an index into labels), when labelled


def load(folder: Path) -> Encoded | None:
    """The cached corpus, or None if the folder is missing, incomplete or corrupt."""
    try:
        meta = json.loads((folder / META).read_text())
        dtype = np.dtype(meta["dtype"])
        lengths = {name: meta[f"{name}_length"] for name in SPLITS}
        files = {name: folder / f"{name}.ids" for name in lengths}
        if any(files[name].stat().st_size != length * dtype.itemsize for name, length in lengths.items()):
            return None
        splits = [FileIds(files[name], dtype) for name in SPLITS]
        labels = meta.get("labels", [])
        label_ids = {name: FileIds(folder / f"{name}.labels", np.uint8) for name in lengths} if labels else {}
        if any(len(label_ids[name]) != lengths[name] for name in label_ids):
            return None
        return Encoded(meta["vocab"], *splits, labels, label_ids)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def label_ids(runs: corpus.Runs, labels: list[str]) -> np.ndarray:
    """Each character's label index, from the (label, characters) runs of a split."""
    index = {label: i for i, label in enumerate(labels)}
    return np.repeat(np.array([index[label] for label, _ in runs], dtype=np.uint8), [n for _, n in runs])


def without_unknown(text: str, runs: corpus.Runs, vocab: str) -> corpus.Runs:
    """The runs of `text` once the characters outside `vocab` are dropped (rare: only held-out text has any)."""
    unknown = set(text) - set(vocab)
    if not unknown:
        return runs
    shortened, position = [], 0
    for label, length in runs:
        piece = text[position : position + length]
        shortened.append((label, length - sum(piece.count(char) for char in unknown)))
        position += length
    return shortened


def build(
    folder: Path, key: list, source: str, split: tuple[float, float], hygiene: bool, labelled: bool, options: dict
) -> None:
    """Load, clean, split and encode the corpus (and, when `labelled`, each character's label) into `folder`."""
    val_fraction, test_fraction = split
    texts = corpus.load_split(source, val_fraction, hygiene, test_fraction, **options)._asdict()
    runs = texts.pop("runs")
    if labelled and runs is None:
        raise UserError(
            "model.condition needs labelled text: data=songbooks, data=lyrics_csv (genres), or data=text data.files=..."
        )
    labels = sorted({label for split_runs in runs.values() for label, _ in split_runs}) if labelled else []
    if len(labels) > 255:
        raise UserError(f"{len(labels)} labels: a conditioned model takes at most 255")
    vocab = charset.build_vocab(texts["train"])
    if labels:  # held-out characters the training text lacks are dropped below: shorten their runs to match
        runs |= {name: without_unknown(texts[name], runs[name], vocab) for name in ("val", "test")}
    ids = {"train": charset.encode(texts.pop("train"), vocab).numpy()}  # its text goes first: peak is text + ids
    ids |= {name: charset.encode(text, vocab, drop_unknown=True).numpy() for name, text in texts.items()}
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        for name, values in ids.items():
            values.tofile(work / f"{name}.ids")
            if labels:
                label_ids(runs[name], labels).tofile(work / f"{name}.labels")
        meta = {"vocab": vocab, "dtype": ids["train"].dtype.str} | {f"{n}_length": len(v) for n, v in ids.items()}
        meta["labels"] = labels
        (work / META).write_text(json.dumps({**meta, "key": key}, default=list))
        if load(folder) is None:  # another process (a sweep job, a DDP rank) may have published it meanwhile
            shutil.rmtree(folder, ignore_errors=True)  # a corrupt one, if any
            publish_dir(work, folder, done=META)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def encoded_corpus(
    source: str,
    val_fraction: float,
    hygiene: bool,
    prepared_dir: str | Path,
    test_fraction: float = 0.0,
    labelled: bool = False,
    **options: object,
) -> Encoded:
    """The corpus of data.source and its options as ids (and each character's label when `labelled`): from
    the cache under `prepared_dir`, built once."""
    key = identity(source, val_fraction, test_fraction, hygiene, labelled, options)
    folder = cache_folder(Path(prepared_dir), key)
    cached = load(folder)
    if cached is None:
        options = {**options, "prepared_dir": prepared_dir} if source == "lyrics_csv" else options
        build(folder, key, source, (val_fraction, test_fraction), hygiene, labelled, options)
        cached = load(folder)
    return cached
