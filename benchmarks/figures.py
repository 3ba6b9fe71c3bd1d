"""The README's table of results, written from the results files (never typed by hand), each figure with
the commit that measured it.

Run: `make figures` or `python benchmarks/figures.py` rewrites the marked sections of README.md (the table
of results, the song), docs/reproduce.md (the protocol's groups, the paper's claims read from them
(benchmarks/paper_claims.py), the split's shift) and docs/measurements.md
(the lyrics against real songs); `--check [FILE ...]` exits 1,
naming the lines, where a file is not what the results files say (tests/test_figures.py runs it).
`make stale` says which results files the code has moved past since.
"""

import csv
import json
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import yaml
from paper_claims import claims_table

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
    record = data.get("provenance")
    if record is None:
        return "unknown"
    commits = dict.fromkeys([record["commit"], *(part["commit"] for part in data.get("groups", {}).values())])
    return ", ".join(f"`{each[:7]}`" for each in commits)


def link(path: Path) -> str:
    return f"[{path.name}]({path.relative_to(ROOT).as_posix()})"


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
SECTIONS = [  # (file, section name, what writes it)
    (README, "figures", table),
    (README, "song", lyrics_song),
    (MEASUREMENTS, "lyrics", lyrics_measurements),
    (REPRODUCE, "reproduce-full", lambda: protocol_table(REPRODUCTION)),
    (REPRODUCE, "reproduce-claims", lambda: claims_table(REPRODUCTION)),
    (REPRODUCE, "reproduce-shift", shift_table),
]


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
        files = [Path(arg) for arg in sys.argv[2:]] or [README, REPRODUCE, MEASUREMENTS]
        sys.exit(max(check(path) for path in files))
    for path in (README, REPRODUCE, MEASUREMENTS):
        path.write_text(written(path.read_text(), path))
