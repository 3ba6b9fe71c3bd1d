"""The README's table of results, written from the results files (never typed by hand), each figure with
the commit that measured it.

Run: `make figures` or `python benchmarks/figures.py` rewrites the marked sections of README.md (the table
of results, the song), docs/reproduce.md (the protocol's groups, the paper's claims read from them
(benchmarks/paper_claims.py), the split's shift), docs/measurements.md (the lyrics against real songs, the
Tiny Shakespeare race's runs), docs/generation.md (what a genre label and guidance do) and docs/speed.md
(the speed goals still missed);
`--check [FILE ...]` exits 1, naming the lines, where a file is not what the results files say
(tests/test_figures.py runs it).
`make stale` says which results files the code has moved past since.
"""

import csv
import json
import os
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import yaml
from paper_claims import claims_table
from stale import commits_of

from lyricgen.quality.scorecard import SHOWN, shown

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
REPRODUCTION = ROOT / "docs" / "reproduce-full"  # the protocol's groups at its newest full rerun
HEADER = ["result", "figure", "measured on", "at commit", "source"]


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def machine(data: dict) -> str:
    """The CPU a results file names, with its cores and the instruction sets that set its speed."""
    record = data.get("provenance")
    if record is None:
        return "2-core CPU (not recorded)"
    sets = "/".join(name.upper() for name in record["instruction_sets"] if name in ("avx2", "avx512f", "avx512_bf16"))
    return f"{record['cores']}-core {record['cpu']}" + (f" ({sets})" if sets else "")


def commit(data: dict) -> str:
    """The commit(s) the results were measured at, short; `unknown` for a file without provenance."""
    if data.get("provenance") is None:
        return "unknown"
    return ", ".join(f"`{each[:7]}`" for each in commits_of(data))


def link(path: Path, page: Path = ROOT / "README.md") -> str:
    """A Markdown link to a results file from `page` (README.md, or a page in docs/)."""
    return f"[{path.name}]({Path(os.path.relpath(path, page.parent)).as_posix()})"


def make_train() -> list[str]:
    path = ROOT / "benchmarks" / "results" / "make_train.json"
    data = load(path)
    train = data["make_train"]
    alone = train["network_bits_per_char"]
    figure = f"{train['bits_per_char']} bits/char ({alone} for the network alone) in {train['seconds']} s"
    where = f"built-in corpus, 700 steps, seed 0, {machine(data)}"
    return ["`make train`: the default model, trained and sampled", figure, where, commit(data), link(path)]


def protocol_groups() -> tuple[dict[str, dict], dict]:
    rows = {row["group"]: row for row in csv.DictReader((REPRODUCTION / "groups.csv").open())}
    return rows, load(REPRODUCTION / "provenance.json")


def mean_sd(row: dict) -> str:
    return f"{float(row['val_loss_mean']):.3f} ± {float(row['val_loss_sd']):.3f}"


def best_against_baseline() -> list[str]:
    groups, data = protocol_groups()
    best, baseline = groups["best"], groups["baseline"]
    figure = f"{mean_sd(best)} against {mean_sd(baseline)} nats/char"
    seeds = f"{best['seeds']} and {baseline['seeds']} seeds"
    where = f"public stand-in corpus, 20k iterations, {seeds}, {machine(data)}"
    return [
        "the paper's best model against its baseline",
        figure,
        where,
        commit(data),
        link(REPRODUCTION / "groups.csv"),
    ]


def spikes() -> list[str]:
    groups, data = protocol_groups()
    tab, clean = groups["baseline_tab"], groups["baseline"]
    figure = (
        f"{tab['runs_with_loss_spikes']} of {tab['seeds']} baseline seeds spike with ~1% tablature in the training "
        f"text, {clean['runs_with_loss_spikes']} of {clean['seeds']} without it"
    )
    where = f"the same, {tab['seeds']} + {clean['seeds']} seeds"
    return ["the paper's loss spikes", figure, where, commit(data), link(REPRODUCTION / "groups.csv")]


def protocol_time() -> list[str]:
    groups, data = protocol_groups()
    runs = sum(int(row["seeds"]) for row in groups.values())
    figure = f"{runs} runs in {data['provenance']['seconds'] / 60:.0f} minutes of wall time"
    where = f"public stand-in corpus, every run at full length, two stacks at a time, {machine(data)}"
    source = link(REPRODUCTION / "provenance.json")
    return ["the paper's whole protocol (`make reproduce JOBS=2`)", figure, where, commit(data), source]


def training_speed() -> list[str]:
    path = ROOT / "benchmarks" / "results" / "train.json"
    data = load(path)
    best = {row["batch"]: row["lyricgen_vs_skeleton"] for row in data["rows"] if row["model"].startswith("paper best")}
    paper_batch = best["batch 1 x 200 (the paper's)"]
    figure = f"{best['batch 64 x 200']}x at batch 64, {paper_batch}x at its batch 1 (4-layer ReLU RNN)"
    return [
        "training speed against the paper's loop",
        figure,
        f"one thread of the {machine(data)}",
        commit(data),
        link(path),
    ]


PAPER_MODELS = ("paper baseline", "paper best", "GRU 1x100")  # the paper's three models, as train.json names them


def speed_goals() -> str:
    """docs/speed.md's record of the speed goals still missed: batch 1 against the paper's loop, with what
    a plain PyTorch loop over the same model reaches; and 8 stacked runs against one, with their floor."""
    train_path, stacked_path = (ROOT / "benchmarks" / "results" / name for name in ("train.json", "stacked.json"))
    train, stacked = load(train_path), load(stacked_path)
    rows = [
        row for row in train["rows"] if row["batch"].startswith("batch 1 ") and row["model"].startswith(PAPER_MODELS)
    ]
    goal = next(target for target in train["targets"] if target["target"].startswith("15x"))
    floor = stacked["eight_matmuls"]
    lines = [
        f"Batch 1, one thread ({link(train_path, SPEED)}, at {commit(train)}, {machine(train)}): goal 15x the "
        f"paper's loop, {'met' if goal['met'] else 'missed'}.",
        "",
        "| model | lyricgen vs the paper's loop | a plain PyTorch loop vs the paper's loop "
        "| lyricgen vs the plain loop |",
        "|---|---|---|---|",
    ]
    for row in rows:
        raw = row["raw_chars_per_s"] / row["skeleton_chars_per_s"]
        lines.append(f"| {row['model']} | {row['lyricgen_vs_skeleton']}x | {raw:.1f}x | {row['lyricgen_vs_raw']} |")
    lines += [
        "",
        f"Stacked ({link(stacked_path, SPEED)}, at {commit(stacked)}, {machine(stacked)}): {floor['members']} runs "
        f"of the paper's best model train {stacked['eight_vs_solo_run']:.2f}x one solo run's characters per second "
        f"(goal {stacked['goal']:g}x, {'met' if stacked['eight_vs_solo_run'] >= stacked['goal'] else 'missed'}); their "
        f"steps alone, without a trainer, {stacked['eight_steps_vs_solo_run']:.2f}x. The members' matrix products "
        f"alone take {floor['ms_per_step']:.1f} ms a step (recurrent {floor['recurrent_ms']:.1f} ms, whole-window "
        f"{floor['whole_window_ms']:.1f} ms): if nothing else cost anything, {floor['at_most_vs_solo_run']:.1f}x "
        f"one solo run. The stacked step takes {stacked['eight_step_ms']:.1f} ms, "
        f"{stacked['eight_step_ms'] / floor['ms_per_step']:.1f}x that floor.",
    ]
    return "\n".join(lines)


def mean_over_seeds(by_seed: dict[str, dict[str, float]]) -> float:
    """The mean over seeds of the mean over labels."""
    return statistics.mean(statistics.mean(by_label.values()) for by_label in by_seed.values())


def genres() -> list[str]:
    path = ROOT / "docs" / "genres" / "genres.json"
    data = load(path)
    books, stand_in = data["corpora"]["songbooks"], data["corpora"]["genres"]
    conditioned, alone = (mean_over_seeds(books["bpc"][model]) for model in ("conditioned", "unconditioned"))
    judged = mean_over_seeds(stand_in["judge_on_samples"]["4.0"])
    ceiling = statistics.mean(stand_in["judge_on_held_out"].values())
    figure = (
        f"{conditioned:.3f} against {alone:.3f} bits/char on six songbooks; at guidance 4 an independent judge "
        f"recognises {judged:.0%} of genre samples ({ceiling:.0%} of real held-out songs)"
    )
    where = f"default model, {data['steps']} steps, seeds {data['seeds'][0]}-{data['seeds'][-1]}, {machine(data)}"
    return ["a genre label, and guidance to strengthen it", figure, where, commit(data), link(path)]


def by_label(by_seed: dict[str, dict[str, float]]) -> dict[str, float]:
    """Each label's mean over seeds."""
    labels = next(iter(by_seed.values()))
    return {label: statistics.mean(seeded[label] for seeded in by_seed.values()) for label in labels}


def label_spread(by_seed: dict[str, dict[str, float]], label: str) -> str:
    values = [seeded[label] for seeded in by_seed.values()]
    return f"{min(values):.3f}-{max(values):.3f}"


def listed(values: dict[str, float], form: str = ".3f") -> str:
    return ", ".join(f"{label} {value:{form}}" for label, value in values.items())


def genres_findings() -> str:
    """docs/generation.md's record of benchmarks/genres.py: bits per character by model, what the label
    gains where, what guidance does to the judge and to held-out text, and the label embedding's start."""
    path = ROOT / "docs" / "genres" / "genres.json"
    data = load(path)
    books, stand_in = data["corpora"]["songbooks"], data["corpora"]["genres"]
    models = ("unconditioned", "conditioned", "label_dropout")
    lines = [
        f"Measured at {commit(data)} on the {machine(data)} by `{data['provenance']['command']}` "
        f"([genres.json](genres/genres.json); every table: [genres.md](genres/genres.md)). Validation bits per "
        "character, mean over the seeds of the mean over labels:",
        "",
        "| corpus | unconditioned | conditioned | label dropout 0.2 | ... scored with guidance 0.5 |",
        "|---|---|---|---|---|",
    ]
    for name, corpus in (("songbooks", books), ("genre stand-in", stand_in)):
        cells = [mean_over_seeds(corpus["bpc"][model]) for model in models]
        cells.append(mean_over_seeds(corpus["guided_bpc"]["0.5"]))
        lines.append(f"| {name} | " + " | ".join(f"{cell:.3f}" for cell in cells) + " |")
    alone, conditioned = (by_label(books["bpc"][model]) for model in models[:2])
    costliest = max(alone, key=lambda label: conditioned[label] - alone[label])
    hedged = by_label(books["guided_bpc"]["0.5"])
    genre_alone, genre_conditioned = (by_label(stand_in["bpc"][model]) for model in models[:2])
    judged = {g: mean_over_seeds(stand_in["judge_on_samples"][g]) for g in ("1.0", "2.0", "4.0")}
    held_out = {g: mean_over_seeds(stand_in["guided_bpc"][g]) for g in ("1.0", "2.0", "4.0")}
    books_judged = {g: mean_over_seeds(books["judge_on_samples"][g]) for g in ("1.0", "2.0")}
    books_cost = mean_over_seeds(books["guided_bpc"]["2.0"]) - mean_over_seeds(books["guided_bpc"]["1.0"])
    at_four = by_label(stand_in["judge_on_samples"]["4.0"])
    worst_book = min(by_label(books["judge_on_samples"]["2.0"]).items(), key=lambda item: item[1])
    lines += [
        "",
        f"- The label on the songbooks, by book: conditioned {listed(conditioned)}; unconditioned {listed(alone)}.",
        f"- On the genre stand-in, by genre: conditioned {listed(genre_conditioned)}; unconditioned "
        f"{listed(genre_alone)}.",
        f"- Where the label {'costs most' if conditioned[costliest] > alone[costliest] else 'gains least'} "
        f"({costliest}): conditioned {conditioned[costliest]:.3f} against "
        f"unconditioned {alone[costliest]:.3f} (seeds {label_spread(books['bpc']['unconditioned'], costliest)}); "
        f"label dropout scored with guidance 0.5: {hedged[costliest]:.3f}.",
        f"- The judge on the stand-in's samples: {judged['1.0']:.0%} at g=1, {judged['2.0']:.0%} at g=2, "
        f"{judged['4.0']:.0%} at g=4, against {statistics.mean(stand_in['judge_on_held_out'].values()):.0%} on "
        f"real held-out songs (chance 33%); by genre at g=4: {listed(at_four, '.0%')} (held-out songs: "
        f"{listed(stand_in['judge_on_held_out'], '.0%')}). Held-out bits per character under guidance: "
        f"{held_out['1.0']:.3f} (g=1), {held_out['2.0']:.3f} (g=2), {held_out['4.0']:.3f} (g=4).",
        f"- On the songbooks, g=2 against g=1: {books_cost:+.3f} bits, the judge {books_judged['1.0']:.0%} -> "
        f"{books_judged['2.0']:.0%} of samples; least recognised at g=2: {worst_book[0]} ({worst_book[1]:.0%}); the "
        f"judge on held-out text by book: {listed(books['judge_on_held_out'], '.0%')}.",
    ]
    return "\n".join(lines)


def label_start() -> str:
    """The label embedding started at random (docs/genres/normal_init.json, an ablation at an older commit)
    against the zero start (genres.json): each against the unconditioned model of its own measurement."""
    lines = []
    for path, start in (("normal_init.json", "N(0, 1), as PyTorch starts embeddings"), ("genres.json", "at zero")):
        data = load(ROOT / "docs" / "genres" / path)
        stand_in = data["corpora"]["genres"]["bpc"]
        alone, conditioned, dropout = (
            mean_over_seeds(stand_in[m]) for m in ("unconditioned", "conditioned", "label_dropout")
        )
        at = commit(data) if data.get("provenance") else "the code of commit `41da71f` (its page says how)"
        lines.append(
            f"- started {start} ([{path}](genres/{path}), {at}): on the stand-in the conditioned model "
            f"{conditioned:.3f}, label dropout {dropout:.3f}, against {alone:.3f} unconditioned"
        )
    return "\n".join(lines)


def stacked() -> list[str]:
    path = ROOT / "benchmarks" / "results" / "stacked.json"
    data = load(path)
    gain = data["eight_vs_solo_run"]
    figure = f"8 seeds of the paper's best model stacked train {gain:.2f}x the characters per second of one run alone"
    where = f"{data['steps']} steps, {data['rounds']} rounds, one thread of the {machine(data)}"
    return ["many runs in one process (`hydra/launcher=stacked`)", figure, where, commit(data), link(path)]


def shakespeare() -> list[str]:
    path = ROOT / "benchmarks" / "results" / "time_to_quality.json"
    data = load(path)
    ours, theirs = next((us, them) for minute, us, them in data["best_by_minute"] if minute == 10)
    figure = f"{ours:.3f} against {theirs:.3f} nats/char"
    preset = "`experiment=shakespeare_cpu` with the race's dropout and activation penalties"
    where = f"{preset}, seed 0, start-up included, {machine(data)}"
    return ["Tiny Shakespeare against a small transformer, 10 minutes", figure, where, commit(data), link(path)]


def within_budget(curve: list[list[float]], seconds: float) -> str:
    """A curve's last point, and the best point measured within the budget (what the race counts)."""
    at, step, loss = curve[-1]
    best = min((point for point in curve if point[0] <= seconds), key=lambda point: point[2], default=None)
    counted = f"{best[2]:.4f} (step {best[1]})" if best else "none"
    return f"{loss:.4f} at step {step}, {at:.0f} s | {counted}"


def race_runs() -> str:
    """Each budget's two runs in the newest race: where their last step landed, and what counted."""
    path = ROOT / "benchmarks" / "results" / "time_to_quality.json"
    data = load(path)
    record = data["provenance"]
    lines = [
        f"The race's runs, one per budget and system, seed 0 ({link(path, MEASUREMENTS)}, measured at {commit(data)} "
        f"on {record['date'][:10]}, {machine(data)}, by `{record['command']}`): the last validation of each run, "
        "and the best one within the budget, which the table counts.",
        "",
        "| budget | lyricgen, last | lyricgen, counted | transformer, last | transformer, counted |",
        "|---|---|---|---|---|",
    ]
    for race in data["races"]:
        seconds = race["minutes"] * 60
        cells = [within_budget(race["curves"][name], seconds) for name in ("lyricgen", "transformer")]
        lines.append(f"| {race['minutes']} min | {' | '.join(cells)} |")
    return "\n".join(lines)


LYRICS = ROOT / "benchmarks" / "results" / "lyrics.json"


def percent(spread: dict) -> str:
    """A share's mean over seeds in percent, with its spread."""
    return f"{spread['mean']:.1%}" + (f" ± {spread['sd']:.1%}" if spread.get("sd") is not None else "")


def over_seeds(model: dict, kind: str, name: str) -> dict:
    values = [run[kind][name] for run in model["runs"]]
    return {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else None}


def lyrics() -> list[str]:
    data = load(LYRICS)
    model = data["models"]["songs_poems"]
    words = over_seeds(model, "free", "real_words")
    real = over_seeds(model, "held_out", "real_words")
    rhymes = [over_seeds(model, kind, "rhyme_share")["mean"] for kind in ("free", "form", "held_out")]
    figure = (
        f"{percent(words)} real words (held-out songs {real['mean']:.1%}); rhymed lines {rhymes[0]:.0%} free, "
        f"{rhymes[1]:.0%} in the held-out songs' forms, {rhymes[2]:.0%} in the songs"
    )
    seeds = len(model["runs"])
    where = f"built-in corpus, `make train`'s model, {seeds} seeds, 10 samples of 600 characters each, {machine(data)}"
    return ["the lyrics of `make train`'s model against real songs", figure, where, commit(data), link(LYRICS)]


def lyrics_song() -> str:
    """The song in the README: a form written by `make train`'s model, its scorecard beside the real songs'."""
    data = load(LYRICS)
    real = {name: over_seeds(data["models"]["songs_poems"], "held_out", name)["mean"] for name in SHOWN}
    lines = [
        f"```\n{data['song']}\n```",
        "",
        f"`{data['song_command']}` after `make train` (seed 0), at {commit(data)}; {link(LYRICS)}.",
        "",
        "| | " + " | ".join(label for label, _ in SHOWN.values()) + " |",
        "|---|" + "---|" * len(SHOWN),
        "| this song | " + " | ".join(shown(data["song_scorecard"], name) for name in SHOWN) + " |",
        "| held-out real songs | " + " | ".join(shown(real, name) for name in SHOWN) + " |",
    ]
    return "\n".join(lines)


def paper_claims(models: dict) -> list[str]:
    """The paper's sample claims (its baseline gibberish, its best model's vocabulary and structure) read
    from the reproduction's runs: whether the best model's samples hold more real words and lines closer to
    the real songs' than the baseline's, beyond both spreads."""
    if not {"paper_best", "paper_baseline"} <= set(models):
        return []
    lines = []
    for name, label, higher in (
        ("real_words", "real words", True),
        ("line_length_distance", "line-length distance", False),
    ):
        best, base = (over_seeds(models[key], "free", name) for key in ("paper_best", "paper_baseline"))
        gap = (best["mean"] - base["mean"]) * (1 if higher else -1)
        spread = (best["sd"] or 0) + (base["sd"] or 0)
        verdict = "better" if gap > spread else "worse" if -gap > spread else "no different (within the seeds' spread)"
        lines.append(f"- the paper's best model against its baseline, free samples: {label} {best['mean']:.3f} "
                     f"against {base['mean']:.3f}: {verdict}")  # fmt: skip
    return lines


def lyrics_measurements() -> str:
    """docs/measurements.md's record of the lyrics benchmark: its verdicts and each model's scorecard."""
    data = load(LYRICS)
    record = data["provenance"]
    lines = [
        f"Measured at {commit(data)} on the {machine(data)} by `{record['command']}` "
        f"([lyrics.json](../benchmarks/results/lyrics.json)).",
        "",
        *(f"- {line}" for line in data["verdicts"]),
        f"- scoring a 300-character sample: {data['timing']['scoring_ms']:.2f} ms; a song in a form: "
        f"{data['timing']['form']['ratio']:.2f}x free sampling's time a character",
    ]
    lines += paper_claims(data["models"])
    for model in data["models"].values():
        lines += ["", f"**{model['title']}**, {len(model['runs'])} seeds (mean ± sd over seeds):", ""]
        lines += ["| | free samples | in the held-out pieces' forms | held-out songs |", "|---|---|---|---|"]
        for name in (*SHOWN, "copied", "line_length_distance"):
            cells = []
            for kind in ("free", "form", "held_out"):
                spread = over_seeds(model, kind, name)
                sd = f" ± {spread['sd']:.3f}" if spread["sd"] is not None else ""
                cells.append(f"{spread['mean']:.3f}{sd}")
            lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


ROWS: list[Callable[[], list[str]]] = [
    make_train,
    lyrics,
    best_against_baseline,
    spikes,
    protocol_time,
    training_speed,
    genres,
    stacked,
    shakespeare,
]


def table() -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row()) + " |" for row in ROWS]
    return "\n".join(lines)


def number(value: str) -> str:
    """A gradient norm as the report's tables show it: 3 significant digits, large ones in e-notation."""
    return f"{float(value):.3g}"


def protocol_table(folder: Path) -> str:
    """A protocol's groups (its groups.csv, the report's) with their corpus and overrides from
    conf/protocol/paper.yaml, and the commit and machine that measured them."""
    protocol = {
        group["name"]: group
        for group in yaml.safe_load((ROOT / "conf" / "protocol" / "paper.yaml").read_text())["runs"]
    }
    record = folder / "provenance.json"
    data = load(record) if record.is_file() else {}
    seconds = data.get("provenance", {}).get("seconds")
    lines = [
        f"Measured at {commit(data)} on the {machine(data)}"
        + (f" by `{data['provenance']['command']}`" if data else "")
        + (f", {seconds / 60:.0f} minutes of wall time for its last call" if seconds else "")
        + f" ([groups.csv]({folder.name}/groups.csv)).",
        "",
        "| group | corpus | overrides | iterations | seeds | val loss: mean ± sd (min-max) "
        "| runs with loss spikes (unrecovered) | gradient-spike episodes on tablature "
        "| largest gradient norm (min-max over seeds) | diverged | samples: real words, rhymed lines |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in csv.DictReader((folder / "groups.csv").open()):
        group = protocol[row["group"]]
        loss = (
            "-"
            if not row["val_loss_mean"] or row["val_loss_mean"] == "nan"
            else (f"{mean_sd(row)} ({float(row['val_loss_min']):.3f}-{float(row['val_loss_max']):.3f})")
        )
        cells = [
            f"`{row['group']}`",
            group["corpus"],
            " ".join(f"`{arg}`" for arg in group["args"]),
            f"{int(row['steps']):,}",
            row["seeds"],
            loss,
            f"{row['runs_with_loss_spikes']} ({row['unrecovered']})",
            row["grad_spikes_on_tablature"],
            f"{number(row['max_grad_norm_min'])}-{number(row['max_grad_norm_max'])}",
            row["diverged"],
            sample_scores(row),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def sample_scores(row: dict) -> str:
    """The group's samples on the lyrics scorecard, mean ± sd over seeds ("-" for a report made before
    runs scored their samples)."""
    if not row.get("real_words_mean") or row["real_words_mean"] == "nan":
        return "-"
    parts = []
    for name in ("real_words", "rhyme_share"):
        sd = row[f"{name}_sd"]
        parts.append(f"{float(row[f'{name}_mean']):.1%}" + (f" ± {float(sd):.1%}" if sd and sd != "nan" else ""))
    return ", ".join(parts)


def shift_table() -> str:
    """The split's shift: one baseline seed of each commit scored on each commit's held-out songs and on the
    songs both hold out (benchmarks/split_shift.py)."""
    path = ROOT / "docs" / "reproduce-shift" / "shift.json"
    data = load(path)
    sets = list(data["songs"])
    lines = [
        f"The paper's baseline, seed 0, 20,000 iterations, trained at each commit; {machine(data)}; "
        f"[shift.json](reproduce-shift/shift.json), written by `{data['provenance']['command']}` at {commit(data)}.",
        "",
        "| model | " + " | ".join(f"{name} ({data['songs'][name]} songs)" for name in sets) + " |",
        "|---|" + "---|" * len(sets),
    ]
    for model, scores in data["val_loss"].items():
        lines.append(f"| {model} | " + " | ".join(f"{scores[name]['loss']:.4f}" for name in sets) + " |")
    return "\n".join(lines)


REPRODUCE = ROOT / "docs" / "reproduce.md"
MEASUREMENTS = ROOT / "docs" / "measurements.md"
GENERATION = ROOT / "docs" / "generation.md"
SPEED = ROOT / "docs" / "speed.md"
SECTIONS = [  # (file, section name, what writes it)
    (README, "figures", table),
    (README, "song", lyrics_song),
    (MEASUREMENTS, "lyrics", lyrics_measurements),
    (MEASUREMENTS, "race-runs", race_runs),
    (REPRODUCE, "reproduce-full", lambda: protocol_table(REPRODUCTION)),
    (REPRODUCE, "reproduce-claims", lambda: claims_table(REPRODUCTION)),
    (REPRODUCE, "reproduce-shift", shift_table),
    (GENERATION, "genres", genres_findings),
    (GENERATION, "label-start", label_start),
    (SPEED, "speed-goals", speed_goals),
]
WRITTEN = tuple(dict.fromkeys(path for path, _, _ in SECTIONS))  # the files with written sections


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}: written by benchmarks/figures.py from the results files -->", f"<!-- /{name} -->"


def written(text: str, path: Path) -> str:
    """The file's text with each of its sections rewritten."""
    for target, name, render in SECTIONS:
        if target.name != path.name:
            continue
        start, end = markers(name)
        if start not in text or end not in text:
            raise SystemExit(f"figures: {path.name} lacks the markers {start} and {end}")
        before, rest = text.split(start, 1)
        text = f"{before}{start}\n{render()}\n{rest[rest.index(end) :]}"
    return text


def check(path: Path) -> int:
    """0 when the file's sections are what the results files say; else 1, naming the lines that differ."""
    text = path.read_text()
    expected = written(text, path)
    if text == expected:
        return 0
    ours = set(expected.splitlines())
    for line in text.splitlines():
        if line and line not in ours:
            print(f"{path.name}: not what the results files say: {line}")
    print("run `make figures` to write them from the results files")
    return 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["--check"]:
        files = [Path(arg) for arg in sys.argv[2:]] or list(WRITTEN)
        sys.exit(max(check(path) for path in files))
    for path in WRITTEN:
        path.write_text(written(path.read_text(), path))
