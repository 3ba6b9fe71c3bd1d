"""The report built from real runs: tables, plots, spike episodes and their text."""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import run_module
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lyricgen.report import grad_episodes, group_of, has_diverged, loss_episodes, write_report
from lyricgen.training.fit import fit_run


def realistic_curve(episodes: list[tuple[int, float, float]], steps: int = 20_000, seed: int = 0) -> np.ndarray:
    """A batch-1 training loss: falling from ~4.5 towards 2, per-step noise of 0.35 nats, and loss spikes
    (start, height in nats, decay time in steps; an infinite decay never recovers)."""
    t = np.arange(steps)
    loss = 2.0 + 2.5 * np.exp(-t / 1500) + np.random.default_rng(seed).normal(0, 0.35, steps)
    for start, height, decay in episodes:
        after = t >= start
        loss[after] += height * np.exp(-(t[after] - start) / decay)
    return loss


def test_loss_spike_episodes_are_counted_separately_on_a_realistic_curve():
    assert loss_episodes(realistic_curve([])) == []
    # Four episodes of different sizes and lengths, as seen in one real-lyrics baseline run
    curve = realistic_curve([(5500, 2.5, 100), (6900, 1.0, 400), (12000, 0.8, 800), (17700, 1.5, 150)])
    episodes = loss_episodes(curve)
    assert [round(e.start, -3) for e in episodes] == [6000, 7000, 12000, 18000]
    assert all(e.recovered for e in episodes)
    assert (
        all(e.end > e.start for e in episodes)
        and episodes[2].end - episodes[2].start > episodes[0].end - episodes[0].start
    )
    # A run that never recovers: one episode, to the end
    (never,) = loss_episodes(realistic_curve([(3000, 0.2, 50), (9000, 1.0, math.inf)]))
    assert never.start == 9000 and never.end == 20_000 and not never.recovered


def test_gradient_spike_episodes_join_close_spikes_and_keep_their_peaks():
    rng = np.random.default_rng(0)
    norms = np.exp(rng.normal(np.log(2.0), 0.3, 20_000))  # ordinary gradient norms around 2
    assert grad_episodes(norms, ratio=10.0) == []
    norms[5500:5510] = 5e3
    norms[5505] = 8.9e3
    norms[12000] = 1.3e9
    norms[[17700, 17800, 17950]] = [300.0, 1e4, 50.0]
    episodes = grad_episodes(norms, ratio=10.0)
    assert [(e.start, e.end, e.peak_step) for e in episodes] == [
        (5500, 5510, 5505),
        (12000, 12001, 12000),
        (17700, 17951, 17800),
    ]
    assert [e.peak for e in episodes] == [8.9e3, 1.3e9, 1e4]


def test_groups_are_runs_that_differ_by_seed_only():
    assert group_of("baseline_tab/seed=3") == "baseline_tab"
    assert group_of("model.num_layers=2,seed=1") == "model.num_layers=2"
    assert group_of("seed=0,optim.lr=0.1") == "optim.lr=0.1"
    assert group_of("seed=1") == "." and group_of("sweep/seed=10,x=1") == "sweep/x=1"


def test_divergence_is_detected_from_the_mark_or_non_finite_losses():
    assert not has_diverged(np.array([3.0, 2.5]), marked=False)
    assert has_diverged(np.array([3.0, np.nan]), marked=False)
    assert has_diverged(np.array([3.0, np.inf]), marked=False)
    assert has_diverged(np.array([3.0]), marked=True)


def test_report_builds_a_table_and_plots_from_real_runs(compose_config, tmp_path):
    sweep = tmp_path / "sweep"
    for lr in ("0.01", "0.02"):
        fit_run(compose_config(f"optim.lr={lr}", "trainer.max_steps=60", "trainer.val_check_interval=30"), sweep / lr)
    report = write_report(sweep)
    table = pd.read_csv(sweep / "results.csv", dtype={"run": str})
    assert sorted(table["run"]) == ["0.01", "0.02"]
    assert (table["steps"] == 60).all() and not table["diverged"].any()
    assert table["val_loss"].between(0.1, 5).all()
    for run in ("0.01", "0.02"):  # the report's numbers are the run's own logged ones
        events = EventAccumulator(str(sweep / run)).Reload()
        row = table[table["run"] == run].iloc[0]
        assert row["val_bpc"] == pytest.approx(events.Scalars("val/bpc")[-1].value, rel=1e-6)
        assert row["val_loss"] == pytest.approx(events.Scalars("val/loss")[-1].value, rel=1e-6)
    assert (table["chars_per_s"] > 0).all() and (table["max_grad_norm"] > 0).all()
    assert table["sample"].str.len().gt(0).all()
    for run in ("0.01", "0.02"):  # the samples' scorecard from the run's samples.json, with its spread over seeds
        card = json.loads((sweep / run / "samples.json").read_text())["scorecards"]["sample"]
        assert card["real_words"] > 0 and table[table["run"] == run].iloc[0]["real_words"] == pytest.approx(
            card["real_words"]
        )
    assert "real_words_mean" in pd.read_csv(sweep / "groups.csv")
    for name in ("loss_all.png", "loss_0.01.png"):
        assert (sweep / name).read_bytes().startswith(b"\x89PNG")
    text = report.read_text()
    assert "| run | group | experiment |" in text and "![loss_all.png](loss_all.png)" in text


def test_report_refuses_a_directory_without_runs(tmp_path):
    result = run_module("lyricgen.report", f"dir={tmp_path}", cwd=Path.cwd())
    assert result.returncode == 2 and "no runs under" in result.stderr


def test_spike_windows_come_from_spikes_jsonl_and_tablature_is_recognised(tmp_path):
    from lyricgen.report import has_tablature, recorded_windows

    entries = [{"step": 7, "windows": ["la la\nE|-----5-----|\nla"]}, {"step": 9, "windows": ["rock - and - roll"]}]
    (tmp_path / "spikes.jsonl").write_text("".join(json.dumps(entry) + "\n" for entry in entries))
    windows = recorded_windows(tmp_path, [7, 9])  # recorded: no corpus needed
    assert [has_tablature(windows[step]) for step in (7, 9)] == [True, False]


@pytest.mark.slow
def test_a_spikes_recorded_text_is_the_text_lyricgen_batches_rebuilds(compose_config, tmp_path):
    from lyricgen.data.windows import windows_at

    sensitive = ["spikes.grad_ratio=1.0001", "spikes.loss_jump=0.0001"]  # nearly every step counts as a spike
    steps = ["trainer.max_steps=530", "trainer.val_check_interval=530"]  # forensics start after 500 steps
    fit_run(compose_config(*sensitive, *steps), tmp_path / "run")
    recorded = [json.loads(line) for line in (tmp_path / "run" / "spikes.jsonl").read_text().splitlines()]
    assert recorded
    rebuilt = windows_at(tmp_path / "run", [entry["step"] for entry in recorded])
    assert all(rebuilt[entry["step"]] == entry["windows"] for entry in recorded)
