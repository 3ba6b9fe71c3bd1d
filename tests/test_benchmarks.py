"""The benchmarks' measuring sticks must keep working: CI runs no benchmark, so these run their pieces small."""

import itertools
import json
import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))
from genres import GENRES, SONG_CHARS, WRONG_SHARE, songs, standin_songs
from references import BabyGPT, SkeletonRNN, nanogpt_lr, raw_steps, skeleton_steps, train_baby_gpt
from stacked_protocol import compare, comparison_page
from stacked_speed import StackedAdam, StackedRNN, member_losses
from time_to_quality import best_by_minute, make_train_verdict, summary_bits, verdicts
from train_speed import BATCHES, MODELS, TARGETS, VOCAB, targets

from lyricgen.nn.charrnn import CharRNN, sequence_loss
from lyricgen.quality.judge import NgramJudge

SONGBOOK_LABELS = [book for members in GENRES.values() for book in members]
TINY = {"cell": "gru", "num_layers": 2, "hidden_size": 8, "dropout": 0.2}


def trains_every_parameter(model: torch.nn.Module, loop) -> bool:
    before = [p.detach().clone() for p in model.parameters()]
    loop(model)
    return all(not torch.equal(old, new) for old, new in zip(before, model.parameters(), strict=True))


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_reference_loops_train_every_parameter(cell):
    ids = torch.randint(VOCAB, (5_000,), dtype=torch.uint8)
    options = {**TINY, "cell": cell}
    assert trains_every_parameter(SkeletonRNN(VOCAB, **options), lambda model: skeleton_steps(model, ids, 2))
    raw = lambda model: raw_steps(model, ids, batch=3, seq_len=20, steps=2)  # noqa: E731
    assert trains_every_parameter(CharRNN(VOCAB, **options), raw)


def test_targets_report_a_miss():
    good = {"lyricgen_vs_skeleton": 60.0, "lyricgen_vs_raw": 0.95, "fraction_of_matmul": 0.9}
    rows = [{"model": model, "batch": batch, **good} for model in MODELS for batch in BATCHES]
    assert all(check["met"] for check in targets(rows)) and len(targets(rows)) == len(TARGETS)
    rows[-1]["fraction_of_matmul"] = 0.1  # LSTM 2x512 at batch 64 is not what that target checks
    rows[-2]["fraction_of_matmul"] = 0.1  # ... at batch 32 x 128 is
    assert [check["met"] for check in targets(rows)] == [True, True, True, True, False]


def test_the_transformer_loop_trains_every_parameter_and_evaluates_on_held_out_windows():
    ids = torch.randint(VOCAB, (3_000,), dtype=torch.uint8)
    model = BabyGPT(VOCAB, layers=1, heads=2, width=8, block=16)
    points = []
    loop = lambda model: points.extend(train_baby_gpt(model, ids[:2000], ids[2000:], 3, 2, batch=4))  # noqa: E731
    assert trains_every_parameter(model, loop)
    assert [point["step"] for point in points] == [2, 3]
    assert all(math.log(VOCAB) - 1 < point["val_loss"] < math.log(VOCAB) + 1 for point in points)


def test_nanogpt_schedule_warms_up_then_decays_to_its_floor():
    rates = [nanogpt_lr(step, 1000) for step in range(1000)]
    assert rates[0] == pytest.approx(1e-3 / 101) and max(rates) == pytest.approx(1e-3, rel=1e-3)
    assert rates.index(max(rates)) in (99, 100) and rates[-1] == pytest.approx(1e-4, abs=1e-7)
    assert all(later <= earlier for earlier, later in itertools.pairwise(rates[100:]))


def test_time_to_quality_counts_only_points_inside_each_budget_and_names_every_miss():
    races = [
        {"minutes": 1, "curves": {"lyricgen": [(30, 1, 1.9), (61, 2, 1.6)], "transformer": [(40, 1, 1.8)]}},
        {"minutes": 2, "curves": {"lyricgen": [(100, 1, 1.52), (119, 2, 1.49)], "transformer": [(110, 1, 1.7)]}},
    ]
    by_minute = best_by_minute(races)
    assert by_minute == [(1, 1.9, 1.8), (2, 1.49, 1.7)]  # the 1.6 at 61 s is past the first minute
    assert verdicts(by_minute) == [
        "met: <= 1.5 within 2 min (1.49)",
        "MISSED: ahead of the transformer at 1 min: 1.9 vs 1.8",
    ]
    assert make_train_verdict({"seconds": 181.0, "bits_per_char": 2.4, "network_bits_per_char": 2.4}) == (
        "MISSED: make train <= 2.5 bits/char within 180 s (2.4 bits/char in 181.0 s from process start)"
    )
    printed = (
        "val loss 1.76 nats/char, 2.55 bits/char after 800 steps\nwith the 12-gram memory: 2.47 bits/char\nsample:\n"
    )
    assert summary_bits(printed) == (2.55, 2.47) and summary_bits(printed.split("\nwith")[0]) == (2.55, None)
    with_memory = {"seconds": 170.0, "bits_per_char": 2.47, "network_bits_per_char": 2.55}
    assert make_train_verdict(with_memory) == (
        "met: make train <= 2.5 bits/char within 180 s "
        "(2.47 bits/char with its n-gram memory, 2.55 for the network alone, in 170.0 s from process start)"
    )


def test_the_judge_tells_styles_apart_from_their_training_text_alone():
    judge = NgramJudge(
        {"shout": "WE WILL ROCK YOU\n" * 50, "whisper": "we will rock you\n" * 50, "la": "la la la\n" * 80}
    )
    assert judge.classify("ROCK WILL") == "shout" and judge.classify("rock will") == "whisper"
    assert judge.accuracy(["la la", "we rock", "la"], "la") == pytest.approx(2 / 3)


def test_the_genre_standin_regroups_every_song_once_with_a_share_of_wrong_labels():
    books = {book: "".join(f"{book} song {i}\n" * 100 + "\n\n" for i in range(60)) for book in SONGBOOK_LABELS}
    by_genre = standin_songs(books)
    placed = [pair for pairs in by_genre.values() for pair in pairs]
    assert sorted(placed) == sorted((song, book) for book, text in books.items() for song in songs(text))
    wrong = [book not in GENRES[genre] for genre, pairs in by_genre.items() for _, book in pairs]
    assert abs(sum(wrong) / len(wrong) - WRONG_SHARE) < 0.06  # 360 songs: 3 standard deviations
    assert all(len(song) >= SONG_CHARS for song, _ in placed)


@pytest.mark.parametrize("nonlinearity", ["relu", "tanh"])
def test_stacked_members_get_each_the_loss_and_gradients_they_would_get_alone(nonlinearity):
    torch.manual_seed(0)
    members = [CharRNN(VOCAB, num_layers=3, hidden_size=12, nonlinearity=nonlinearity) for _ in range(3)]
    stacked = StackedRNN(members)
    ids = torch.randint(VOCAB, (3, 2, 17))
    losses = member_losses(stacked(ids[..., :-1]), ids[..., 1:])
    losses.sum().backward()
    named = dict(stacked.named_parameters())
    for index, member in enumerate(members):
        alone = sequence_loss(member(ids[index, :, :-1])[0], ids[index, :, 1:])
        alone.backward()
        assert float(losses[index]) == pytest.approx(float(alone), rel=1e-6)
        for layer in range(3):
            for stacked_name, own_name in (("w_ih", "weight_ih"), ("w_hh", "weight_hh"), ("b_hh", "bias_hh")):
                own = getattr(member.rnn, f"{own_name}_l{layer}").grad
                assert torch.allclose(named[f"{stacked_name}.{layer}"].grad[index], own, atol=1e-7)
        assert torch.allclose(stacked.decoder_weight.grad[index], member.decoder.weight.grad, atol=1e-7)


def test_stacked_adam_steps_each_member_as_adam_with_its_own_rate_and_clipping():
    torch.manual_seed(0)
    members = [CharRNN(VOCAB, num_layers=2, hidden_size=8, nonlinearity="relu") for _ in range(2)]
    stacked = StackedRNN(members)
    rates, clips = torch.tensor([0.01, 0.003]), torch.tensor([0.5, 100.0])  # the first clips, the second not
    optimizer = StackedAdam(list(stacked.parameters()), rates, clips)
    ids = torch.randint(VOCAB, (2, 1, 21))
    for _ in range(3):
        member_losses(stacked(ids[..., :-1]), ids[..., 1:]).sum().backward()
        optimizer.step()
    for index, member in enumerate(members):
        adam = torch.optim.Adam(member.parameters(), lr=float(rates[index]))
        for _ in range(3):
            sequence_loss(member(ids[index, :, :-1])[0], ids[index, :, 1:]).backward()
            torch.nn.utils.clip_grad_norm_(member.parameters(), float(clips[index]))
            adam.step()
            adam.zero_grad()
        assert torch.allclose(stacked.decoder_weight[index], member.decoder.weight, atol=1e-6)
        assert torch.allclose(stacked.w_hh[1][index], member.rnn.weight_hh_l1, atol=1e-6)


def test_the_protocol_comparison_pairs_each_seed_and_counts_what_diverged(tmp_path):
    solo = {
        "a/seed=0": {"group": "a", "val_loss": 2.0},
        "a/seed=1": {"group": "a", "val_loss": 2.2},
        "b/seed=0": {"group": "b", "val_loss": float("nan")},
        "b/seed=1": {"group": "b", "val_loss": 3.0},
    }
    stacked = solo | {"a/seed=1": {"group": "a", "val_loss": 2.25}, "b/seed=1": {"group": "b", "val_loss": math.nan}}
    compared = compare(solo, stacked)
    assert compared["a"]["largest_seed_difference"] == pytest.approx(0.05)
    assert compared["a"]["stacked"]["mean"] == pytest.approx(2.125) and compared["a"]["stacked_mean_inside_solo_range"]
    assert compared["b"]["diverged"] == {"solo": 1, "stacked": 2} and compared["b"]["largest_seed_difference"] is None
    assert not compared["a"]["same_result"] and not compared["b"]["same_result"]
    assert compare(solo, solo)["b"]["same_result"]  # a seed that diverges both ways ends the same way
    assert compared["b"]["stacked"]["mean"] is None and compared["b"]["stacked_mean_inside_solo_range"] is None
    with pytest.raises(ValueError, match="other runs"):
        compare(solo, {run: solo[run] for run in list(solo)[:3]})
    record = {"commit": "0" * 40, "date": "2026-12-08", "cpu": "cpu", "instruction_sets": ["avx2"], "torch": "2"}
    result = {"scale": 0.1, "groups": ["a", "b"], "machine": "m", "seconds": {"solo": 120, "stacked": 60}}
    (tmp_path / "scale0.1.json").write_text(
        json.dumps({"provenance": record | {"command": "c"}, **result, "compared": compared})
    )
    page = comparison_page([tmp_path / "scale0.1.json"])
    assert "| a | 2 | 2.1000 (2.0000-2.2000) | 2.1250 (2.0000-2.2500) | 0 / 0 | 5.0e-02 | yes |" in page
    assert "| b | 2 | 3.0000 (3.0000-3.0000) | all diverged | 1 / 2 | - | - |" in page
    assert "ends 2.00x sooner" in page and "0 of 2 groups end with every seed where its solo run ends" in page
    assert "Of the 1 groups with finite results both ways, 1 have the stacked mean inside" in page
