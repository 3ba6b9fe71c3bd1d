"""One model, many genres: labelled corpora (a CSV's genres, labelled files), conditioned training, per-label
validation, and generation in the label asked for."""

from functools import partial

import pandas as pd
import pytest
import torch
from conftest import CONF_DIR, TINY, curve
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from lyricgen import UserError, charset
from lyricgen.config import validate
from lyricgen.data import corpus, idcache
from lyricgen.data.lyrics_csv import EXPECTED_COLUMNS, default_options, prepare, song_key, song_side
from lyricgen.nn.charrnn import CharRNN
from lyricgen.nn.checkpoints import load_checkpoint
from lyricgen.nn.sampling import sample_text
from lyricgen.report import write_report
from lyricgen.training.fit import fit_run
from lyricgen.training.generation import GenerateConfig, generate
from lyricgen.training.scoring import evaluate, has_labels, mean_loss

VOCAB = "ab \nxyz"
SHOUTED = "OH YEAH ROCK AND ROLL ALL NIGHT\nWE WILL ROCK THE TOWN\n\n" * 40  # two styles a label must tell apart
WHISPERED = "oh yeah rock and roll all night\nwe will rock the town\n\n" * 40


@pytest.fixture
def styles(tmp_path):
    (tmp_path / "upper.txt").write_text(SHOUTED)
    (tmp_path / "lower.txt").write_text(WHISPERED + "zzz")  # z: only in held-out text, dropped from it
    return [f"data.files={{upper: {tmp_path / 'upper.txt'}, lower: {tmp_path / 'lower.txt'}}}", "data=text"]


def test_every_character_carries_the_label_of_its_file(tmp_path, styles):
    files = {"upper": str(tmp_path / "upper.txt"), "lower": str(tmp_path / "lower.txt")}
    encoded = idcache.encoded_corpus("text", 0.1, True, tmp_path / "cache", labelled=True, files=files)
    assert encoded.labels == ["lower", "upper"] and "z" not in encoded.vocab
    for split in ("train", "val"):
        text = "".join(encoded.vocab[i] for i in encoded.__dict__[split].read().tolist())
        labels = encoded.label_ids[split].read()
        assert len(labels) == len(text)
        for char, label in zip(text, labels.tolist(), strict=True):
            if char.isalpha():
                assert label == (1 if char.isupper() else 0), (split, char)
    unlabelled = idcache.encoded_corpus("text", 0.1, True, tmp_path / "cache", files=files)
    assert unlabelled.labels == [] and unlabelled.label_ids == {}  # the same mixture, for an unconditioned model


def test_a_csv_split_holds_out_songs_of_every_genre(tmp_path):
    rows = [("a", f"r{i}", "Rock", "en", f"rock song {i}") for i in range(40)]
    rows += [("b", f"p{i}", "Pop", "en", f"pop song {i}") for i in range(20)]
    pd.DataFrame(rows, columns=EXPECTED_COLUMNS).to_csv(tmp_path / "train.csv", index=False)
    options = default_options(genres=("Rock", "Pop"), val_fraction=0.2)
    prepared = prepare(tmp_path / "train.csv", options, tmp_path / "prepared")
    val_index = (prepared / "val.songs.tsv").read_text().splitlines()
    assert {line.split("\t")[0] for line in val_index} == {"Rock", "Pop"}  # each genre has held-out songs
    val = (prepared / "val.txt").read_text()
    for artist, name, _, _, song in rows:  # and they are the songs their names' hash holds out
        assert (song_side(song_key(artist, name, song), 0.2, 0.0) == "val") == (f"{song}\n" in f"{val}\n")
    index = [line.split("\t") for line in (prepared / "train.songs.tsv").read_text().splitlines()]
    assert sum(int(length) for *_, length in index) == len((prepared / "train.txt").read_text())
    assert {(genre, language) for genre, language, _ in index} == {("Rock", "en"), ("Pop", "en")}


@pytest.mark.slow
def test_a_genre_conditioned_csv_run(tmp_path, compose_config):
    rows = [("a", f"r{i}", "Rock", "en", f"LOUD GUITARS {i}\n" * 5) for i in range(40)]  # distinct songs:
    rows += [("b", f"p{i}", "Pop", "en", f"sweet baby {i}\n" * 5) for i in range(40)]  # copies would be dropped
    pd.DataFrame(rows, columns=EXPECTED_COLUMNS).to_csv(tmp_path / "train.csv", index=False)
    data = ["data=lyrics_csv", f"data.csv={tmp_path / 'train.csv'}", "data.genres=[Rock,Pop]", "data.seq_len=16"]
    fit_run(compose_config(*TINY, *data, "model.condition=genre", tiny=False), tmp_path / "run")
    model, _ = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert model.labels == ["Pop", "Rock"]


SONGBOOKS = ["bundle_of_ballads", "burns", "cowboy", "elizabethan", "english_ballads", "liberty_minstrel"]


@pytest.mark.slow
def test_the_built_in_songbooks_train_a_model_that_writes_in_each_book(tmp_path, compose_config):
    data = ["data=songbooks", "model.condition=source", "data.val_chars=3000", f"data.prepared_dir={tmp_path}"]
    fit_run(compose_config(*TINY, *data, tiny=False), tmp_path / "run")
    model, _ = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert model.labels == SONGBOOKS
    (text,) = generate(GenerateConfig(ckpt=str(tmp_path / "run"), genre="cowboy", prime="Git along", length=30))
    assert text.startswith("Git along") and len(text) == 39


def test_the_packaged_songbooks_are_the_public_domain_texts(shared_data):
    files = corpus.input_files("songbooks", {})
    assert list(files) == SONGBOOKS
    shared = {path.stem: path for path in shared_data.glob("pg*.txt")}
    by_book = {  # the package's label: the Project Gutenberg file it holds
        "bundle_of_ballads": "pg2831_bundle_of_ballads",
        "burns": "pg1279_burns_poems_and_songs",
        "cowboy": "pg21300_cowboy_songs",
        "elizabethan": "pg27129_elizabethan_song_lyrics",
        "english_ballads": "pg22223_english_songs_and_ballads",
        "liberty_minstrel": "pg22089_liberty_minstrel",
    }
    for label, path in files.items():
        assert corpus.read_text_file(path) == corpus.read_text_file(shared[by_book[label]])


@pytest.mark.slow
@pytest.mark.parametrize("condition_on", ["input", "state", "both"])
def test_conditioned_training_makes_generate_follow_the_label(tmp_path, compose_config, styles, condition_on):
    overrides = [*styles, "model.condition=source", f"model.condition_on={condition_on}", "model.hidden_size=48"]
    overrides += ["trainer.max_steps=250", "trainer.val_check_interval=125", "optim.lr=0.02", "data.batch_size=16"]
    fit_run(compose_config(*overrides), tmp_path / "run")
    for label, case in (("upper", str.isupper), ("lower", str.islower)):
        (text,) = generate(GenerateConfig(ckpt=str(tmp_path / "run"), genre=label, prime="\n", length=200))
        letters = [char for char in text if char.isalpha()]
        assert sum(map(case, letters)) > 0.9 * len(letters), (label, text)
    logged = {label: curve(tmp_path / "run", f"val/bpc/{label}") for label in ("upper", "lower")}
    overall = curve(tmp_path / "run", "val/bpc")
    for step, (_, bpc) in enumerate(overall):  # the overall loss is a mean of the labels' losses
        per_label = [logged[label][step][1] for label in logged]
        assert min(per_label) - 1e-4 <= bpc <= max(per_label) + 1e-4


def test_generate_refuses_labels_it_does_not_know_and_the_report_shows_each(
    tmp_path, compose_config, styles, trained_run
):
    fit_run(compose_config(*styles, "model.condition=source", "trainer.max_steps=2"), tmp_path / "sweep" / "run")
    run = str(tmp_path / "sweep" / "run")
    write_report(tmp_path / "sweep")
    (row,) = pd.read_csv(tmp_path / "sweep" / "results.csv").to_dict("records")
    logged = {label: curve(run, f"val/bpc/{label}")[-1][1] for label in ("lower", "upper")}
    assert row["val_bpc_by_label"] == f"lower {logged['lower']:.4f}, upper {logged['upper']:.4f}"
    assert row["sample"]
    with pytest.raises(UserError, match="genre=jazz is not one of this model's: lower, upper"):
        generate(GenerateConfig(ckpt=run, genre="jazz", length=5))
    with pytest.raises(UserError, match="add genre=<one of lower, upper>"):
        generate(GenerateConfig(ckpt=run, length=5))
    with pytest.raises(UserError, match="trained without labels"):
        generate(GenerateConfig(ckpt=str(trained_run), genre="lower", length=5))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.condition=genre"], "genres come from a lyrics CSV"),
        (["model.condition=source"], "label texts by file"),
        (["model.condition=mood"], "model.condition"),
    ],
)
def test_a_condition_without_its_labels_is_one_line(compose_config, overrides, message):
    with pytest.raises(UserError, match=message):
        validate(compose_config(*overrides))


def test_an_unconditioned_model_is_unchanged(compose_config, tmp_path):
    cfg = compose_config(*TINY[1:], "model=rnn", "model.hidden_size=8")
    fit_run(cfg, tmp_path / "run")
    model, _ = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert model.labels == [] and model.label_embedding is None and model.label_state is None
    assert model.rnn.input_size == model.vocab_size  # no label columns: the kernels' one-hot lookup path
    plain = CharRNN(model.vocab_size, cell="rnn", hidden_size=8)  # a CharRNN as it was before labels existed
    assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in plain.state_dict().items()}


def test_label_dropout_trains_whole_windows_with_the_null_label_at_its_rate():
    torch.manual_seed(0)
    model = CharRNN(5, hidden_size=8, labels=["a", "b"], label_dropout=0.3)
    torch.nn.init.normal_(model.label_embedding.weight)  # as if trained: each label gives other predictions
    ids, labels = torch.zeros(4000, 3, dtype=torch.long), torch.ones(4000, 3, dtype=torch.long)
    model.eval()
    null = model(ids[:1], labels=torch.full_like(labels[:1], model.null_label))[0][0]
    labelled = model(ids[:1], labels=labels[:1])[0][0]
    model.train()
    trained = model(ids, labels=labels)[0]  # no other dropout: each row is one of the two, whole
    is_null = torch.isclose(trained, null, atol=1e-6).flatten(1).all(1)
    assert (is_null | torch.isclose(trained, labelled, atol=1e-6).flatten(1).all(1)).all()
    assert abs(is_null.float().mean().item() - 0.3) < 0.025  # 3.4 standard deviations of 4000 draws
    model.eval()
    assert torch.allclose(model(ids, labels=labels)[0], labelled, atol=1e-6)  # evaluation: none


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_guidance_mixes_the_conditional_and_unconditional_predictions(cell):
    torch.manual_seed(0)
    model = CharRNN(len(VOCAB), cell=cell, hidden_size=16, labels=["a", "b"], label_dropout=0.5)
    torch.nn.init.normal_(model.label_embedding.weight)  # as if trained: labels that change the predictions
    write = partial(sample_text, model, VOCAB, prime="ab", length=120, temperature=1.0, seed=3)
    conditional, unconditional = write(label=1), write(label=None)
    assert conditional != unconditional
    assert write(label=1, guidance=0.0) == unconditional  # through the doubled batch: its null half
    assert write(label=1, guidance=1 - 1e-6) == conditional  # ... and its labelled half
    assert write(label=1, guidance=4.0) not in (conditional, unconditional)
    ids = charset.encode(VOCAB * 20, VOCAB)
    score = partial(mean_loss, model, ids, 16)
    assert score(label=1, guidance=0.0)["loss"] == pytest.approx(score(label=None)["loss"], abs=1e-6)
    assert score(label=1, guidance=1 - 1e-6)["loss"] == pytest.approx(score(label=1)["loss"], abs=1e-5)


def test_guidance_and_writing_without_a_genre_need_label_dropout(tmp_path, compose_config, styles):
    fit_run(compose_config(*styles, "model.condition=source", "trainer.max_steps=2"), tmp_path / "plain")
    dropped = compose_config(*styles, "model.condition=source", "model.label_dropout=0.2", "trainer.max_steps=2")
    fit_run(dropped, tmp_path / "dropped")
    with pytest.raises(UserError, match=r"guidance=2.0 needs a model trained with label dropout \(model.label_dropout"):
        generate(GenerateConfig(ckpt=str(tmp_path / "plain"), genre="upper", guidance=2.0, length=5))
    with pytest.raises(UserError, match=r"guidance=2.0 steers towards a label: add genre=<one of lower, upper>"):
        generate(GenerateConfig(ckpt=str(tmp_path / "dropped"), guidance=2.0, length=5))
    (text,) = generate(GenerateConfig(ckpt=str(tmp_path / "dropped"), prime="o", length=5))  # no genre: the null label
    assert len(text) == 6
    model, _ = load_checkpoint(tmp_path / "dropped" / "checkpoints" / "last.ckpt")
    assert model.null_label == 2 and model.label_embedding.num_embeddings == 3


def test_an_unconditioned_model_is_scored_genre_by_genre_on_a_csv_of_several(tmp_path, compose_config):
    rows = [("a", f"r{i}", "Rock", "en", f"LOUD GUITARS {i}\n" * 5) for i in range(40)]
    rows += [("b", f"p{i}", "Pop", "en", f"sweet baby {i}\n" * 5) for i in range(40)]
    pd.DataFrame(rows, columns=EXPECTED_COLUMNS).to_csv(tmp_path / "train.csv", index=False)
    data = ["data=lyrics_csv", f"data.csv={tmp_path / 'train.csv'}", "data.genres=[Rock,Pop]", "data.seq_len=16"]
    held_out = "data.val_fraction=0.2"  # held-out songs of both genres among these 80
    fit_run(compose_config(*TINY, *data, held_out, "trainer.max_steps=2", tiny=False), tmp_path / "run")
    overrides = [f"ckpt={tmp_path / 'run'}", "with_memory=false"]
    with initialize_config_dir(str(CONF_DIR), version_base=None):
        result = evaluate(compose("evaluate", overrides=overrides), overrides)
    per_label = result["per_label"]
    assert list(per_label) == ["Pop", "Rock"]
    weighted = sum(entry["loss"] * entry["characters"] for entry in per_label.values()) / result["characters"]
    assert result["loss"] == pytest.approx(weighted) and per_label["Pop"]["loss"] != per_label["Rock"]["loss"]
    assert not has_labels(OmegaConf.create({"source": "lyrics_csv", "genres": ["Rock"]}))  # one genre: one number


@pytest.mark.parametrize("condition_on", ["input", "state", "both"])
def test_a_conditioned_model_starts_out_predicting_the_same_for_every_label(condition_on):
    model = CharRNN(5, cell="gru", hidden_size=8, labels=["a", "b", "c"], condition_on=condition_on)
    ids = torch.randint(5, (2, 7))
    first, *others = (model(ids, labels=torch.full_like(ids, label))[0] for label in range(3))
    assert all(torch.equal(first, other) for other in others)
