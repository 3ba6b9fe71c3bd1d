"""Encoded corpora cached once and memory-mapped: equal to a fresh encoding, rebuilt when stale or corrupt."""

import os
from pathlib import Path

import pytest
import torch

from lyricgen import charset
from lyricgen.data import corpus, idcache
from lyricgen.data.windows import RandomWindows


def encoded(path, tmp_path, **options):
    settings = {"val_fraction": 0.1, "hygiene": True, "prepared_dir": tmp_path / "cache", **options}
    return idcache.encoded_corpus("text", path=str(path), **settings)


@pytest.fixture
def lyrics(tmp_path):
    path = tmp_path / "lyrics.txt"
    path.write_text("we will rock you\nla la la, café\n\n" * 400, encoding="utf-8")
    return path


def folders(tmp_path):
    return sorted(path.name for path in (tmp_path / "cache").iterdir())


def test_cached_ids_equal_a_fresh_encoding_and_stay_out_of_memory(lyrics, tmp_path):
    first = encoded(lyrics, tmp_path)
    train_text, val_text, *_ = corpus.load_split("text", 0.1, path=str(lyrics))
    vocab = charset.build_vocab(train_text)
    assert first.vocab == vocab
    in_memory = charset.encode(train_text, vocab)
    assert torch.equal(first.train.read(), in_memory)
    assert torch.equal(first.val.read(), charset.encode(val_text, vocab, drop_unknown=True))
    # the same batches from the file as from memory, shards and all: resumed runs and batches rebuilt later match
    for rank in (0, 1):
        from_file = RandomWindows(first.train, 8, 30, seed=3, rank=rank, world_size=2)
        from_memory = RandomWindows(in_memory, 8, 30, seed=3, rank=rank, world_size=2)
        for step in (0, 7):
            file_batch, memory_batch = from_file.batch(step), from_memory.batch(step)
            assert all(torch.equal(a, b) for a, b in zip(file_batch, memory_batch, strict=True))
    (folder,) = folders(tmp_path)
    written = {path.name: path.stat().st_mtime_ns for path in (tmp_path / "cache" / folder).iterdir()}
    again = encoded(lyrics, tmp_path)  # a second process: reads the same files, writes nothing
    assert {path.name: path.stat().st_mtime_ns for path in (tmp_path / "cache" / folder).iterdir()} == written
    assert torch.equal(again.train.read(), first.train.read())
    windows = RandomWindows(again.train, 4, 20, seed=0)
    for step in range(50):
        windows.batch(step)
    mapped = Path("/proc/self/maps").read_text()
    assert str(tmp_path / "cache" / folder / "train.ids") not in mapped  # read, never mapped into the process


def test_a_changed_file_or_option_builds_another_cache(lyrics, tmp_path):
    encoded(lyrics, tmp_path)
    encoded(lyrics, tmp_path, hygiene=False)
    encoded(lyrics, tmp_path, val_fraction=0.2)
    assert len(folders(tmp_path)) == 3
    lyrics.write_text("a changed song\n\n" * 300, encoding="utf-8")
    os.utime(lyrics, ns=(lyrics.stat().st_mtime_ns + 10**9,) * 2)
    assert encoded(lyrics, tmp_path).vocab == charset.build_vocab("a changed song\n")
    assert len(folders(tmp_path)) == 4


def test_a_truncated_or_corrupt_cache_is_rebuilt(lyrics, tmp_path):
    expected = encoded(lyrics, tmp_path).train.read()
    (folder,) = (tmp_path / "cache").iterdir()
    with (folder / "train.ids").open("r+b") as file:
        file.truncate(100)
    assert torch.equal(encoded(lyrics, tmp_path).train.read(), expected)
    (folder / "meta.json").write_text("{not json")
    assert torch.equal(encoded(lyrics, tmp_path).train.read(), expected)


def test_non_ascii_text_across_chunks_and_vocabularies_beyond_256_characters(tmp_path, monkeypatch):
    monkeypatch.setattr(charset, "CHUNK", 7)  # many chunk boundaries in a short text
    text = "".join(chr(0x4E00 + i % 300) for i in range(1000)) + "é ascii"
    vocab = charset.build_vocab(text)
    assert vocab == "".join(sorted(set(text))) and len(vocab) > 256
    ids = charset.encode(text, vocab)
    assert ids.dtype == torch.int32 and ids.tolist() == [vocab.index(char) for char in text]
    assert charset.decode(charset.encode("é\U0001f3b8x", vocab, drop_unknown=True), vocab) == "é"
    with pytest.raises(Exception, match="not in the vocabulary"):
        charset.encode("x\U0001f3b8", vocab)
    path = tmp_path / "wide.txt"
    path.write_text(text * 3, encoding="utf-8")
    wide = encoded(path, tmp_path, hygiene=False)
    assert charset.decode(wide.train[:50].read(), wide.vocab) == (text * 3)[:50]
    assert wide.train.read().dtype == torch.int32
