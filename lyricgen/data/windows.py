"""LyricsDataModule: corpus -> one compact id tensor -> batches of random windows."""

import hashlib
from collections.abc import Iterator
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

from lyricgen import UserError, charset
from lyricgen.data import idcache
from lyricgen.rundir import load_run_config

VAL_BATCH_SIZE = 64  # windows per validation batch; validation cost does not depend on the training batch


def window_texts(inputs: torch.Tensor, targets: torch.Tensor, vocab: str) -> list[str]:
    """The text of each whole window of a batch: its inputs and the last target (spike forensics, and
    lyricgen.batches for any step of a finished run)."""
    windows = torch.cat([inputs, targets[:, -1:]], dim=1)
    return [charset.decode(window, vocab) for window in windows.cpu()]


def mix_seed(*parts: int) -> int:
    """A 32-bit seed from several integers (torch's CPU generator keeps only 32 bits, so seed * 2**32 + step
    would make every seed sample the same windows)."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little")


def private_generator() -> torch.Generator:
    """A DataLoader draws a seed from the global RNG each time it is iterated, unless given its own
    generator; that would shift dropout masks by whether a validation ran, and break exact resume."""
    return torch.Generator().manual_seed(0)


def windows(ids: torch.Tensor | idcache.FileIds, starts: torch.Tensor, width: int) -> torch.Tensor:
    """(len(starts), width) ids: `width` consecutive ids from each start, from memory or from the cache file."""
    if isinstance(ids, idcache.FileIds):
        return ids.windows(starts.view(-1).tolist(), width)
    return ids[starts.view(-1, 1) + torch.arange(width)]


class RandomWindows(IterableDataset):
    """Endless batches of `batch_size` random windows of `seq_len + 1` ids: inputs and next-char targets.

    Batch number `step` depends only on (seed, step), so a run resumed at step N sees exactly the batches
    an uninterrupted run would have seen. Under DDP each rank samples inside its own contiguous shard of
    the text with its own seed: ranks never train on the same characters in a step.
    """

    def __init__(
        self,
        ids: torch.Tensor | idcache.FileIds,
        batch_size: int,
        seq_len: int,
        seed: int,
        start_step: int = 0,
        rank: int = 0,
        world_size: int = 1,
        label_ids: torch.Tensor | idcache.FileIds | None = None,
    ):
        """`label_ids`: each character's label, for a conditioned model: a window carries its characters'."""
        shard = len(ids) // world_size
        self.ids = ids[rank * shard : (rank + 1) * shard]
        self.label_ids = None if label_ids is None else label_ids[rank * shard : (rank + 1) * shard]
        if len(self.ids) <= seq_len:
            raise UserError(f"corpus too short: each of {world_size} ranks needs more than {seq_len} characters")
        self.batch_size, self.seq_len, self.start_step = batch_size, seq_len, start_step
        self.seed_parts = (seed,) if rank == 0 else (seed, rank)  # rank 0 alone samples as a single process

    def batch(self, step: int) -> tuple[torch.Tensor, ...]:
        """(inputs, targets), and each input character's label when the corpus is labelled."""
        generator = torch.Generator().manual_seed(mix_seed(*self.seed_parts, step))
        starts = torch.randint(len(self.ids) - self.seq_len, (self.batch_size, 1), generator=generator)
        chunk = windows(self.ids, starts, self.seq_len + 1).long()
        if self.label_ids is None:
            return chunk[:, :-1], chunk[:, 1:]
        return chunk[:, :-1], chunk[:, 1:], windows(self.label_ids, starts, self.seq_len).long()

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        step = self.start_step
        while True:
            yield self.batch(step)
            step += 1


class StackedWindows(IterableDataset):
    """The batches of several runs' RandomWindows, step by step, stacked: (inputs, targets), each (runs,
    batch, seq_len). Each run draws exactly the windows it draws alone (a stacked run's members)."""

    def __init__(self, runs: list[RandomWindows]):
        self.runs = runs

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        for batches in zip(*self.runs, strict=True):
            yield tuple(torch.stack(parts) for parts in zip(*batches, strict=True))


def consecutive_windows(ids: torch.Tensor, seq_len: int, label_ids: torch.Tensor | None = None) -> TensorDataset:
    """Non-overlapping windows covering `ids`: a fixed, deterministic validation set (with each input
    character's label when `label_ids` is given)."""
    count = (len(ids) - 1) // seq_len
    starts = torch.arange(count).unsqueeze(1) * seq_len
    chunk = ids[starts + torch.arange(seq_len + 1)].long()
    if label_ids is None:
        return TensorDataset(chunk[:, :-1], chunk[:, 1:])
    return TensorDataset(chunk[:, :-1], chunk[:, 1:], label_ids[starts + torch.arange(seq_len)].long())


def first_of_each_label(label_ids: torch.Tensor, count: int, per_label: int) -> torch.Tensor:
    """Positions (in order) of the first `per_label` characters of each label: validation that scores
    every label, however the held-out text is ordered."""
    keep = torch.zeros(len(label_ids), dtype=torch.bool)
    for label in range(count):
        keep[(label_ids == label).nonzero().view(-1)[:per_label]] = True
    return keep.nonzero().view(-1)


class LyricsDataModule(L.LightningDataModule):
    """Loads the configured corpus once, holds the vocabulary, and serves train and validation batches."""

    def __init__(
        self,
        batch_size: int,
        seq_len: int,
        val_fraction: float,
        val_chars: int,
        seed: int,
        train_chars: int | None = None,
        test_fraction: float = 0.0,
        labelled: bool = False,
        **source: object,
    ):
        """`source`: data.source and its options (data.path, data.csv, data.hygiene, data.prepared_dir, ...)."""
        super().__init__()
        self.source = source
        self.batch_size, self.seq_len = batch_size, seq_len
        self.val_fraction, self.val_chars, self.train_chars, self.seed = val_fraction, val_chars, train_chars, seed
        self.test_fraction, self.labelled = test_fraction, labelled
        self.vocab, self.labels = "", []  # labels: the names of a labelled corpus's labels (labelled=True)
        self.train_ids = self.val_ids = torch.empty(0, dtype=torch.uint8)
        self.train_label_ids = self.val_label_ids = None

    def setup(self, stage: str | None = None) -> None:
        if self.vocab:  # already loaded: train.py sets up early to learn the vocabulary size
            return
        encoded = idcache.encoded_corpus(
            val_fraction=self.val_fraction, test_fraction=self.test_fraction, labelled=self.labelled, **self.source
        )
        self.vocab, self.train_ids, self.labels = encoded.vocab, encoded.train, encoded.labels
        if self.labelled:
            self.train_label_ids = encoded.label_ids["train"]
            val_labels = encoded.label_ids["val"].read()  # the split, briefly; validation keeps a bounded part
            chosen = first_of_each_label(val_labels, len(self.labels), self.val_chars // len(self.labels))
            self.val_ids, self.val_label_ids = encoded.val.read()[chosen], val_labels[chosen]
        else:
            self.val_ids = encoded.val[: self.val_chars].read()  # bounded: held in memory
        if self.train_chars:
            self.train_ids = self.train_ids[: self.train_chars]
            if self.train_label_ids is not None:
                self.train_label_ids = self.train_label_ids[: self.train_chars]
        shortest = min(len(self.train_ids), len(self.val_ids))
        if shortest <= self.seq_len:
            raise UserError(
                f"corpus too short: {len(self.train_ids)} training and {len(self.val_ids)} validation "
                f"characters, but one window is data.seq_len+1={self.seq_len + 1}; "
                "use a longer text or a smaller data.seq_len"
            )

    def summary(self) -> dict:
        """What the run reads, once set up: its characters, vocabulary and a fingerprint of the validation
        text it scores (runs with equal fingerprints are scored on the same text)."""
        scored = self.vocab.encode() + self.val_ids.numpy().tobytes()
        return {
            "train_characters": len(self.train_ids),
            "val_characters": len(self.val_ids),
            "vocabulary": len(self.vocab),
            "val_fingerprint": hashlib.blake2b(scored, digest_size=6).hexdigest(),
        }

    def train_dataloader(self) -> DataLoader:
        trainer = self.trainer
        position = (trainer.global_step, trainer.global_rank, trainer.world_size) if trainer else (0, 0, 1)
        windows = RandomWindows(
            self.train_ids, self.batch_size, self.seq_len, self.seed, *position, label_ids=self.train_label_ids
        )
        return DataLoader(windows, batch_size=None, generator=private_generator())  # yields whole batches

    def val_dataloader(self) -> DataLoader:
        windows = consecutive_windows(self.val_ids, self.seq_len, self.val_label_ids)
        return DataLoader(windows, batch_size=VAL_BATCH_SIZE, generator=private_generator())


def windows_at(run_dir: str | Path, steps: list[int]) -> dict[int, list[str]]:
    """The text of each window (inputs and the last target) of a run's batches at `steps` (rank 0's),
    rebuilt from its config, seed and step: what lyricgen.batches prints and the report shows for a spike."""
    cfg = load_run_config(run_dir)
    data = LyricsDataModule(**cfg.data, seed=cfg.seed)
    data.setup("fit")
    windows = RandomWindows(data.train_ids, cfg.data.batch_size, cfg.data.seq_len, cfg.seed)
    batches = {step: windows.batch(step) for step in steps}
    return {step: window_texts(inputs, targets, data.vocab) for step, (inputs, targets, *_) in batches.items()}
