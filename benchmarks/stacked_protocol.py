"""The paper's protocol stacked against the same runs one per process, at one commit: does stacking change a
group's result, and how much sooner does the protocol end?

Run: `python benchmarks/stacked_protocol.py [scale] [groups]` from anywhere (default scale 0.1, every group;
groups comma-separated, e.g. `1.0 baseline,best,gru`). It runs `python -m lyricgen.reproduce ... jobs=2` twice
into outputs/stacked-protocol/<name>/: `stacked/` as `make reproduce` runs it, and `solo/` with
`hydra.launcher.max_members=1` (each run alone in its process, as the basic launcher runs it), then
`python -m lyricgen.report` on each. A second call continues where the first stopped (the wall times are
then those of the last call). Writes docs/reproduce-stacked/<name>.json, and comparison.md from every such
file there.
"""

import csv
import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

from lyricgen.provenance import provenance
from lyricgen.reproduce import MEASURES as PROTOCOL_MEASURES

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "outputs" / "stacked-protocol"
OUT = ROOT / "docs" / "reproduce-stacked"
# the code these numbers depend on (benchmarks/stale.py): the protocol's, and this comparison's
MEASURES = (*PROTOCOL_MEASURES, "lyricgen/report.py", "benchmarks/stacked_protocol.py")
WAYS = {"stacked": [], "solo": ["hydra.launcher.max_members=1"]}
SAME = 1e-4  # nats: a seed's two results closer than this are the same result (rounding, not another draw)


def run_protocol(out: Path, scale: float, groups: list[str], train: list[str]) -> float:
    """The protocol (these groups, at this scale) into `out`, two stacks or runs at a time, and its report;
    the wall time of the call that trained, in seconds."""
    command = [sys.executable, "-m", "lyricgen.reproduce", f"out={out}", "jobs=2", f"scale={scale}"]
    command += [f"only=[{','.join(groups)}]"] if groups else []
    command += [f"train=[{','.join(train)}]"] if train else []
    subprocess.run(command, check=True)
    subprocess.run([sys.executable, "-m", "lyricgen.report", f"dir={out}"], check=True, stdout=subprocess.DEVNULL)
    return json.loads((out / "provenance.json").read_text())["provenance"]["seconds"]


def final_losses(results_csv: Path) -> dict[str, dict]:
    """Each run's group and final validation loss (nan where it diverged), by run name."""
    rows = csv.DictReader(results_csv.open())
    return {row["run"]: {"group": row["group"], "val_loss": float(row["val_loss"] or "nan")} for row in rows}


def spread(values: list[float]) -> dict:
    finite = [value for value in values if math.isfinite(value)]
    if not finite:
        return {"mean": None, "min": None, "max": None}
    return {"mean": statistics.mean(finite), "min": min(finite), "max": max(finite)}


def same_result(solo: list[float], stacked: list[float]) -> bool:
    """Every seed ended the same way: both diverged, or both finite within SAME of each other."""
    return all(
        abs(a - b) < SAME if math.isfinite(a + b) else not (math.isfinite(a) or math.isfinite(b))
        for a, b in zip(solo, stacked, strict=True)
    )


def compare(solo: dict[str, dict], stacked: dict[str, dict]) -> dict[str, dict]:
    """Per group: both ways' final losses over seeds, how many diverged each way, the largest difference of
    one seed's two results (seeds that ended finite both ways), whether every seed ended the same way, and
    whether the stacked mean lies inside the solo seeds' range (None where a side has no finite result)."""
    if solo.keys() != stacked.keys():
        raise ValueError(f"the two ways ran other runs: {sorted(solo.keys() ^ stacked.keys())}")
    groups: dict[str, dict] = {}
    for run in solo:
        group = groups.setdefault(solo[run]["group"], {"solo": [], "stacked": []})
        group["solo"].append(solo[run]["val_loss"])
        group["stacked"].append(stacked[run]["val_loss"])
    compared = {}
    for name, losses in sorted(groups.items()):
        pairs = [(a, b) for a, b in zip(losses["solo"], losses["stacked"], strict=True) if math.isfinite(a + b)]
        solo_spread, stacked_spread = spread(losses["solo"]), spread(losses["stacked"])
        inside = None  # no finite result on one side (high_lr): nothing to judge
        if solo_spread["mean"] is not None and stacked_spread["mean"] is not None:
            inside = solo_spread["min"] <= stacked_spread["mean"] <= solo_spread["max"]
        compared[name] = {
            "seeds": len(losses["solo"]),
            "solo": solo_spread,
            "stacked": stacked_spread,
            "diverged": {way: sum(not math.isfinite(loss) for loss in losses[way]) for way in ("solo", "stacked")},
            "largest_seed_difference": max((abs(a - b) for a, b in pairs), default=None),
            "same_result": same_result(losses["solo"], losses["stacked"]),
            "stacked_mean_inside_solo_range": inside,
        }
    return compared


def name_of(scale: float, groups: list[str]) -> str:
    return f"scale{scale:g}" + (f"-{'-'.join(groups)}" if groups else "")


def main(scale: float = 0.1, groups: str = "") -> None:
    group_list = [group for group in groups.split(",") if group]
    name = name_of(scale, group_list)
    code = provenance(MEASURES)  # as the runs start: what they measure, whatever changes meanwhile
    seconds = {way: run_protocol(WORK / name / way, scale, group_list, train) for way, train in WAYS.items()}
    losses = {way: final_losses(WORK / name / way / "results.csv") for way in WAYS}
    result = {
        "scale": scale,
        "groups": group_list or "all",
        "machine": "this repository's 2-core CPU, one thread per process, two at a time, nothing else running",
        "seconds": seconds,
        "compared": compare(losses["solo"], losses["stacked"]),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps({"provenance": code, **result}, indent=2) + "\n")
    (OUT / "comparison.md").write_text(comparison_page(sorted(OUT.glob("scale*.json"))))
    print((OUT / "comparison.md").read_text())


def cell(values: dict) -> str:
    if values["mean"] is None:
        return "all diverged"
    return f"{values['mean']:.4f} ({values['min']:.4f}-{values['max']:.4f})"


def difference(value: float | None) -> str:
    if value is None:
        return "-"
    return "0 (bit for bit)" if value == 0 else f"{value:.1e}"


def section(data: dict) -> list[str]:
    """One comparison: how it was run, its wall times and its groups' table."""
    record, seconds = data["provenance"], data["seconds"]
    groups = "every group" if data["groups"] == "all" else "the groups " + ", ".join(data["groups"])
    compared = data["compared"]
    same = [name for name, group in compared.items() if group["same_result"]]
    lines = [
        f"## {groups.capitalize()} of conf/protocol/paper.yaml at {data['scale']:g} of every run's length",
        "",
        f"Measured at commit {record['commit'][:7]} on {record['date'][:10]}, {record['cpu']} "
        f"({', '.join(record['instruction_sets'])}), torch {record['torch']}; {data['machine']}.",
        f"Command: `{record['command']}`.",
        "",
        "| | wall time |",
        "|---|---|",
        f"| one run per process (`hydra.launcher.max_members=1`) | {seconds['solo'] / 60:.1f} min |",
        f"| stacked (as `make reproduce` runs it) | {seconds['stacked'] / 60:.1f} min |",
        "",
        f"Stacked, the protocol ends {seconds['solo'] / seconds['stacked']:.2f}x sooner. Final validation loss "
        "(nats/char) of each group, mean (min-max) over its seeds:",
        "",
        "| group | seeds | one run per process | stacked | diverged (solo / stacked) "
        "| largest difference of a seed | stacked mean inside the solo range |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, group in compared.items():
        inside = {True: "yes", False: "no", None: "-"}[group["stacked_mean_inside_solo_range"]]
        lines.append(
            f"| {name} | {group['seeds']} | {cell(group['solo'])} | {cell(group['stacked'])} "
            f"| {group['diverged']['solo']} / {group['diverged']['stacked']} "
            f"| {difference(group['largest_seed_difference'])} | {inside} |"
        )
    judged = [group["stacked_mean_inside_solo_range"] for group in compared.values()]
    judged = [inside for inside in judged if inside is not None]
    lines += [
        "",
        f"{len(same)} of {len(compared)} groups end with every seed where its solo run ends (within {SAME:g} "
        f"nats, or diverged both ways): {', '.join(same) or 'none'}. Of the {len(judged)} groups with finite "
        f"results both ways, {sum(judged)} have the stacked mean inside the range of the solo seeds.",
    ]
    return lines


def comparison_page(files: list[Path]) -> str:
    lines = [
        "# The paper's protocol, stacked against one run per process",
        "",
        "Written by `python benchmarks/stacked_protocol.py` from the .json files beside this page (do not edit).",
        "A stack's members do the arithmetic of their solo runs, but their matrix products run batched, which",
        "may round otherwise than one run's: a multi-layer member's loss curve separates from its solo",
        "run's as rounding differences grow over thousands of batch-1 steps: from then on it is another draw",
        "of the same experiment, and the fair question is whether it lies where the solo seeds lie.",
    ]
    for path in files:
        lines += ["", *section(json.loads(path.read_text()))]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main(*(float(arg) if i == 0 else arg for i, arg in enumerate(sys.argv[1:])))
