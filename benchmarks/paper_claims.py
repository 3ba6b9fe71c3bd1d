"""The paper's claims read against a protocol rerun (its report's groups.csv and results.csv): each verdict is
decided here by a stated rule from the numbers, so a rerun that moves a number past a rule flips the
verdict on the page (docs/reproduce.md, written by benchmarks/figures.py).

Rules: a group is better than another when its mean validation loss plus its sd is below the other's mean
minus its sd (apart by more than both spreads); within that, the two are level. A run "spikes" as the
report counts loss spikes (docs/reproduce.md, below the tables)."""

import csv
from dataclasses import dataclass
from pathlib import Path

STUCK = 3.1  # the paper's level for its 16-layer model


@dataclass
class Group:
    name: str
    row: dict
    runs: list[dict]

    def __getitem__(self, key: str) -> str:
        return self.row[key]

    @property
    def seeds(self) -> int:
        return int(self.row["seeds"])

    @property
    def mean(self) -> float:
        return float(self.row["val_loss_mean"])

    @property
    def sd(self) -> float:
        sd = float(self.row["val_loss_sd"] or 0)
        return 0.0 if sd != sd else sd  # one seed: no spread

    @property
    def loss(self) -> str:
        return f"{self.mean:.3f} ± {self.sd:.3f}"

    @property
    def spiking(self) -> int:
        return int(self.row["runs_with_loss_spikes"])

    @property
    def steps(self) -> str:
        return f"{int(self.row['steps']) // 1000}k"

    def norms(self) -> str:
        return f"{float(self.row['max_grad_norm_min']):.3g}-{float(self.row['max_grad_norm_max']):.3g}"

    def val_losses(self) -> list[float]:
        return sorted(float(run["val_loss"]) for run in self.runs)


def read_groups(folder: Path) -> dict[str, Group]:
    runs = list(csv.DictReader((folder / "results.csv").open()))
    return {
        row["group"]: Group(row["group"], row, [run for run in runs if run["group"] == row["group"]])
        for row in csv.DictReader((folder / "groups.csv").open())
    }


def compared(a: Group, b: Group) -> str:
    """'better', 'worse' or 'level': a against b, by the rule above."""
    if a.mean + a.sd < b.mean - b.sd:
        return "better"
    if a.mean - a.sd > b.mean + b.sd:
        return "worse"
    return "level"


def spikes_claim(g: dict[str, Group]) -> tuple[str, str]:
    tab, clean = g["baseline_tab"], g["baseline"]
    if tab.spiking and not clean.spiking:
        verdict = "confirmed when the data carries tablature, not otherwise"
    elif tab.spiking and clean.spiking:
        verdict = "confirmed, with and without tablature"
    else:
        verdict = "not seen" if not clean.spiking else "seen without tablature only"
    evidence = (
        f"with ~1% tablature {tab.spiking} of {tab.seeds} seeds spike ({tab['unrecovered']} never recover; largest "
        f"gradient norms {tab.norms()}): val {tab.loss}; without it {clean.spiking} of {clean.seeds} (norms "
        f"{clean.norms()}): val {clean.loss}"
    )
    return verdict, evidence


def bad_batch_claim(g: dict[str, Group]) -> tuple[str, str]:
    tab, clipped = g["baseline_tab"], g["baseline_tab_clip"]
    on_tab, episodes = (int(part) for part in tab["grad_spikes_on_tablature"].split(" of "))
    verdict = "confirmed on the stand-in" if episodes and on_tab * 2 > episodes else "not confirmed on the stand-in"
    evidence = (
        f"{on_tab} of the baseline's {episodes} gradient-spike episodes peak on a batch that holds tablature (3 songs, "
        f"1% of the text); with clipping, {clipped['grad_spikes_on_tablature']}"
    )
    return verdict, evidence


def dropout_claim(g: dict[str, Group]) -> tuple[str, str]:
    best, no_dropout, high = g["best_tab"], g["best_tab_no_dropout"], g["best_tab_lr0.005"]
    tanh, one, clip, base = g["best_tab_tanh"], g["best_tab_1layer"], g["baseline_tab_clip"], g["baseline"]
    verdict = "refuted" if not no_dropout.spiking else "confirmed" if not best.spiking else "not testable: both spike"
    evidence = (
        f"without dropout {no_dropout.spiking} of {no_dropout.seeds} seeds of the best model spike (val "
        f"{no_dropout.loss}, with dropout {best.loss}: {compared(best, no_dropout)}). At the baseline's lr 0.005: "
        f"{high.spiking} of {high.seeds} spike, {high['diverged']} diverge (val {high.loss}); with tanh "
        f"{tanh.spiking} spike ({tanh.loss}); with 1 layer {one.spiking} spike ({one.loss}). The baseline with its "
        f"gradient norm clipped at 1.0: {clip.spiking} of {clip.seeds} spike, val {clip.loss} against the clean "
        f"baseline's {base.loss}"
    )
    return verdict, evidence


def best_claim(g: dict[str, Group]) -> tuple[str, str]:
    best, base = g["best"], g["baseline"]
    verdict = {"better": "confirmed", "level": "not confirmed: level", "worse": "refuted"}[compared(best, base)]
    return verdict, f"{best.loss} against the baseline's {base.loss}"


def gru_claim(g: dict[str, Group]) -> tuple[str, str]:
    gru, base, best = g["gru"], g["baseline"], g["best"]
    flatter = not gru.spiking and float(gru["max_grad_norm_max"]) < float(base["max_grad_norm_min"])
    par = compared(gru, best)
    verdict = f"flatter: {'confirmed' if flatter else 'not confirmed'}; not up to par: " + (
        "confirmed" if par == "worse" else "refuted"
    )
    evidence = (
        f"largest gradient norms {gru.norms()} against the baseline's {base.norms()}, {gru.spiking} spikes; val "
        f"{gru.loss} at {gru.steps} against the best model's {best.loss} at {best.steps} ({par})"
    )
    return verdict, evidence


def high_lr_claim(g: dict[str, Group]) -> tuple[str, str]:
    high = g["high_lr"]
    diverged = int(high["diverged"])
    verdict = "confirmed" if diverged == high.seeds else f"{diverged} of {high.seeds}"
    return verdict, f"lr 0.05: {diverged} of {high.seeds} seeds diverge, by iteration {high['steps']}"


def deep_claim(g: dict[str, Group]) -> tuple[str, str]:
    deep, best = g["deep16"], g["best"]
    losses = deep.val_losses()
    above = sum(loss > STUCK for loss in losses)
    verdict = f"above {STUCK}: {above} of {deep.seeds} seeds; far behind 4 layers: " + (
        "confirmed" if compared(deep, best) == "worse" else "not confirmed"
    )
    evidence = (
        f"val {', '.join(f'{loss:.3f}' for loss in losses)} at {deep.steps} against the 4-layer model's {best.loss} "
        "(whether each curve is flat: see its plot in the report)"
    )
    return verdict, evidence


def longer_claim(g: dict[str, Group]) -> tuple[str, str]:
    longer, best = g["best_50k"], g["best"]
    verdict = {"better": "refuted: better", "level": "confirmed: level", "worse": "confirmed: worse"}[
        compared(longer, best)
    ]
    return verdict, f"{longer.loss} at {longer.steps} against {best.loss} at {best.steps}, the same seeds"


CLAIMS = [  # (the paper's claim, which runs, how to read them)
    ("the baseline's loss spikes (exploding gradients) wipe out progress", "clean and tab, 20k", spikes_claim),
    ('the model "was training on a bad batch of data that I couldn\'t filter out"', "tab, 20k", bad_batch_claim),
    ("dropout cured the spikes", "tab, 20k", dropout_claim),
    ("the best model (4 layers, dropout 0.2, ReLU, lr 0.001) is best", "clean, 20k", best_claim),
    ('the GRU\'s curve is flatter, but "not up to par"', "clean, 30k", gru_claim),
    ("a higher learning rate gives non-finite values", "clean, lr 0.05", high_lr_claim),
    (f"16 layers stay stuck above loss {STUCK} after 10k", "clean, 10k", deep_claim),
    ("50k iterations are no better than 20k", "clean, 50k", longer_claim),
]
ABLATIONS = ["ablation_lr001", "ablation_dropout", "ablation_clip", "ablation_relu", "ablation_4layers"]


def ablation(group: Group, base: Group) -> str:
    """An ablation's loss against the baseline's, and its runs that spiked or diverged (whose loss is their
    best before diverging)."""
    notes = [compared(group, base)]
    notes += [f"{group.spiking} of {group.seeds} spiking"] if group.spiking else []
    notes += [f"{group['diverged']} of {group.seeds} diverged"] if int(group["diverged"]) else []
    return f"{group.loss} ({', '.join(notes)})"


def claims_table(folder: Path) -> str:
    """The claims, each with its runs, its verdict (bold) and the numbers behind it; then the baseline's
    one-factor ablations against the baseline."""
    groups = read_groups(folder)
    lines = ["| claim of the paper | runs | verdict |", "|---|---|---|"]
    for claim, runs, read in CLAIMS:
        verdict, evidence = read(groups)
        lines.append(f"| {claim} | {runs} | **{verdict}**: {evidence} |")
    base = groups["baseline"]
    ablations = [f"{name.removeprefix('ablation_')} {ablation(groups[name], base)}" for name in ABLATIONS]
    lines += [
        "",
        f"One-factor ablations of the baseline ({base.loss}), clean corpus, 20k: " + "; ".join(ablations) + ".",
    ]
    return "\n".join(lines)
