import pytest
import torch

from lyricgen import UserError, charset
from lyricgen.data import corpus


def test_builtin_corpus_is_songs_without_fortune_markup():
    documents = corpus.builtin_songs_poems()
    text = corpus.SONG_SEPARATOR.join(documents)
    assert len(documents) > 500
    assert len(text) > 150_000
    assert "\n%\n" not in text and "\x08" not in text
    assert "\t\t-- " not in text  # attribution lines are not lyrics


def test_encode_decode_round_trip_is_compact():
    text = "Rock and roll,\nall night!"
    vocab = charset.build_vocab(text)
    ids = charset.encode(text, vocab)
    assert ids.dtype == torch.uint8
    assert charset.decode(ids, vocab) == text


def test_unknown_characters_raise_or_are_dropped():
    vocab = charset.build_vocab("abc")
    with pytest.raises(UserError, match="'z'"):
        charset.encode("abz", vocab)
    assert charset.decode(charset.encode("abz", vocab, drop_unknown=True), vocab) == "ab"


def test_many_documents_split_into_whole_held_out_documents():
    documents = [f"song {i}\nla la" for i in range(100)]
    train_text, val_text, test_text, _ = corpus.split_documents(documents, val_fraction=0.05)
    assert test_text == ""
    held_out = val_text.split(corpus.SONG_SEPARATOR)
    assert len(held_out) == 5
    assert all(song in documents and song not in train_text.split(corpus.SONG_SEPARATOR) for song in held_out)


def test_single_document_holds_out_its_tail():
    train_text, val_text, *_ = corpus.split_documents(["x" * 90 + "y" * 10], val_fraction=0.1)
    assert (train_text, val_text) == ("x" * 90, "y" * 10)
    split = corpus.split_documents(["x" * 80 + "t" * 10 + "y" * 10], val_fraction=0.1, test_fraction=0.1)
    assert split[:3] == ("x" * 80, "y" * 10, "t" * 10)


def test_a_test_split_holds_out_other_whole_documents():
    documents = [f"song {i}\nla la" for i in range(100)]
    split = corpus.split_documents(documents, val_fraction=0.05, test_fraction=0.1)
    parts = [set(text.split(corpus.SONG_SEPARATOR)) for text in split[:3]]
    assert [len(part) for part in parts] == [85, 5, 10]
    assert set.union(*parts) == set(documents) and sum(map(len, parts)) == 100  # disjoint, nothing lost
    assert split.val == corpus.split_documents(documents, val_fraction=0.05).val  # validation unchanged


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "not found"), ("", "empty"), ("  \n", "empty"), (b"\xff\xfe\x00bad", "not UTF-8")],
)
def test_bad_text_files_raise_a_clear_error(tmp_path, content, message):
    path = tmp_path / "corpus.txt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(UserError, match=message):
        corpus.read_text_file(path)


def test_a_text_file_of_songs_with_a_separator_holds_out_whole_songs(tmp_path):
    songs = [f"verse {i}\nla la\n\nchorus {i}" for i in range(60)]  # a blank line inside each song
    (tmp_path / "songs.txt").write_text("\n\n\n".join(songs) + "\n")
    train, val, *_ = corpus.load_split("text", 0.05, path=str(tmp_path / "songs.txt"), separator="\\n\\n\\n")
    held_out = [song for song in songs if song in val]
    assert len(held_out) == 3 and all(f"chorus {i}" not in train for i in (19, 39, 59))
    one_text, one_val, *_ = corpus.load_split("text", 0.05, path=str(tmp_path / "songs.txt"))
    assert "chorus 59" in one_val and "verse 19" in one_text and "verse 19" not in one_val  # the tail, by position
