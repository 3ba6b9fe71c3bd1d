"""How much K same-shape runs gain by training stacked in one process (hydra/launcher=stacked): the
paper's best model (4 ReLU layers of 100, one-hot input, dropout 0.2, batch 1, 200-character windows),
one thread.

Run: `python benchmarks/stacked_speed.py [steps] [rounds]` (default 300, 3). Writes
benchmarks/results/stacked.json and stacked.md. Side by side in one process, round after round:
- runs as `lyricgen.train` trains them (experiment=paper_best on the built-in corpus, its checkpoints,
  step metrics and run directory): one solo run (lyricgen.training.fit), then K runs stacked
  (lyricgen.training.stacked, what the launcher runs) for each K in RUNS; each run's rate is the median
  of its logged perf/chars_per_s, summed over the stack's members;
- the step alone, without Lightning: the solo model in a plain PyTorch loop (lyricgen's CPU kernels,
  Adam, clipping), and K members stacked in a plain loop (StackedRNN below: stacked parameters and one
  Adam for all) for each K in MEMBERS: the ceiling a stacked trainer could reach;
- for each cell, 8 stacked members against one solo step at growing batch sizes: where stacking stops
  paying (the launcher's max_batch_size per cell).
"""

import contextlib
import io
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from common import RESULTS, write_result
from hydra import compose, initialize_config_dir
from references import raw_steps
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from train_speed import VOCAB

from lyricgen.config import CONF_DIR
from lyricgen.data.windows import RandomWindows
from lyricgen.nn.charrnn import CharRNN
from lyricgen.nn.kernels import dropout
from lyricgen.nn.stacked import StackedElman, member_losses, stacked_logits
from lyricgen.training.fit import fit_run
from lyricgen.training.stacked import fit_stacked

MEASURES = (
    "lyricgen/nn",
    "lyricgen/training",
    "lyricgen/data",
    "lyricgen/hydra/launcher.py",
    "conf",
    "benchmarks/stacked_speed.py",
)  # the code these numbers depend on (benchmarks/stale.py)

HIDDEN, LAYERS, SEQ_LEN, DROPOUT = 100, 4, 200, 0.2
MEMBERS = (1, 2, 4, 8, 16, 32)
Tensor = torch.Tensor


class StackedRNN(torch.nn.Module):
    """K CharRNNs of one shape (cell rnn, one-hot input) as stacked parameters; from_members copies theirs."""

    def __init__(self, members: list[CharRNN]):
        super().__init__()
        rnn = members[0].rnn
        self.relu, self.dropout, self.layers = rnn.nonlinearity == "relu", members[0].dropout, rnn.num_layers
        stacked = lambda get: torch.nn.Parameter(torch.stack([get(m).detach() for m in members]))  # noqa: E731
        self.w_ih = torch.nn.ParameterList(stacked(lambda m, i=i: m.rnn.all_weights[i][0]) for i in range(self.layers))
        self.w_hh = torch.nn.ParameterList(stacked(lambda m, i=i: m.rnn.all_weights[i][1]) for i in range(self.layers))
        # two biases, as nn.RNN has: Adam and clipping treat them as two parameters, so must the stack
        self.b_ih = torch.nn.ParameterList(stacked(lambda m, i=i: m.rnn.all_weights[i][2]) for i in range(self.layers))
        self.b_hh = torch.nn.ParameterList(stacked(lambda m, i=i: m.rnn.all_weights[i][3]) for i in range(self.layers))
        self.decoder_weight = stacked(lambda m: m.decoder.weight)
        self.decoder_bias = stacked(lambda m: m.decoder.bias)

    def forward(self, ids: Tensor) -> Tensor:
        """ids (K, batch, seq) -> logits (K, batch * seq, vocab), time-major rows."""
        x = ids.permute(2, 0, 1)  # (seq, K, batch)
        h0 = self.w_hh[0].new_zeros(ids.size(0), ids.size(1), self.w_hh[0].size(1))
        for layer in range(self.layers):
            if layer:
                x = dropout(x, self.dropout, self.training)
            weights = (self.w_ih[layer], self.w_hh[layer], self.b_ih[layer], self.b_hh[layer])
            x = StackedElman.apply(x, h0, *weights, self.relu)
        x = dropout(x, self.dropout, self.training).transpose(0, 1).reshape(ids.size(0), -1, x.size(-1))
        return torch.baddbmm(self.decoder_bias.unsqueeze(1), x, self.decoder_weight.transpose(1, 2))


class StackedAdam:
    """Adam for stacked parameters with one learning rate and one clipping norm per member (K,)."""

    def __init__(self, params: list[Tensor], lr: Tensor, clip: Tensor, betas: tuple = (0.9, 0.999), eps: float = 1e-8):
        self.params, self.lr, self.clip, self.betas, self.eps, self.step_count = params, lr, clip, betas, eps, 0
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]

    def per_member(self, values: Tensor, like: Tensor) -> Tensor:
        return values.view(-1, *([1] * (like.dim() - 1)))

    @torch.no_grad()
    def step(self) -> Tensor:
        """One update; returns each member's gradient norm before clipping."""
        norms = torch.stack([p.grad.pow(2).flatten(1).sum(1) for p in self.params]).sum(0).sqrt()
        scale = (self.clip / (norms + 1e-6)).clamp(max=1.0)
        self.step_count += 1
        beta1, beta2 = self.betas
        correction1, correction2 = 1 - beta1**self.step_count, 1 - beta2**self.step_count
        for p, m, v in zip(self.params, self.m, self.v, strict=True):
            grad = p.grad.mul_(self.per_member(scale, p))
            m.lerp_(grad, 1 - beta1)
            v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            denominator = v.sqrt().div_(correction2**0.5).add_(self.eps)
            p.addcdiv_(m * self.per_member(self.lr, p), denominator, value=-1 / correction1)
            p.grad = None
        return norms


def stacked_steps(members: int, ids: Tensor, steps: int, batch: int = 1) -> tuple[int, float]:
    """(characters trained summed over members, seconds) for `steps` stacked iterations."""
    torch.manual_seed(0)
    model = StackedRNN([paper_best() for _ in range(members)])
    optimizer = StackedAdam(list(model.parameters()), torch.full((members,), 0.001), torch.full((members,), 1.0))
    generator = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    for _ in range(steps):
        starts = torch.randint(len(ids) - SEQ_LEN - 1, (members * batch,), generator=generator)
        chunk = torch.stack([ids[s : s + SEQ_LEN + 1] for s in starts.tolist()]).long().view(members, batch, -1)
        losses = member_losses(model(chunk[..., :-1]), chunk[..., 1:])
        losses.sum().backward()  # members share no parameter: each gets its own loss's gradient
        optimizer.step()
        losses.tolist()
    return steps * members * batch * SEQ_LEN, time.perf_counter() - start


def crossover(ids: Tensor, steps: int) -> list[dict]:
    """For each cell, 8 members stacked (lyricgen.nn.stacked, each member's own parameters, as a stacked
    run trains them) against one solo step, both in plain loops, at growing batch sizes: where stacking
    stops paying (hydra.launcher.max_batch_size). Steps shrink with the batch to keep each measurement short."""
    rows = []
    for cell in CELLS:
        for batch in CROSSOVER_BATCHES:
            count = max(steps // batch, 10)
            torch.manual_seed(0)
            chars, seconds = raw_steps(network(cell), ids, batch=batch, seq_len=SEQ_LEN, steps=count)
            solo = chars / seconds
            chars, seconds = member_steps(cell, 8, ids, max(count // 8, 5), batch)
            gain = chars / seconds / solo
            rows.append({"cell": cell, "batch": batch, "solo": solo, "stacked_8": chars / seconds, "gain": gain})
    return rows


def member_steps(cell: str, members: int, ids: Tensor, steps: int, batch: int) -> tuple[int, float]:
    """(characters trained summed over members, seconds) for `steps` iterations of `members` networks of
    the paper's best shape with the given cell, stacked: one Adam over all members' parameters, each
    member's gradients clipped on their own."""
    torch.manual_seed(0)
    networks = [network(cell) for _ in range(members)]
    optimizer = torch.optim.Adam([p for net in networks for p in net.parameters()], lr=0.001)
    generators = [torch.Generator().manual_seed(seed) for seed in range(members)]
    windows = RandomWindows(ids, members * batch, SEQ_LEN, seed=0)
    start = time.perf_counter()
    for step in range(steps):
        inputs, targets = (tensor.view(members, batch, -1) for tensor in windows.batch(step))
        losses = member_losses(stacked_logits(networks, inputs, generators), targets)
        optimizer.zero_grad()
        losses.sum().backward()
        for net in networks:
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimizer.step()
        losses.tolist()
    return steps * members * batch * SEQ_LEN, time.perf_counter() - start


def matmul_floor(members: int, solo_rate: float, repeats: int = 5) -> dict:
    """What a step of `members` stacked runs of the paper's best model costs at the least with torch's batched
    matmuls: its recurrent matmuls (one baddbmm per character and layer, forward and backward) and its
    whole-window ones (the upper layers' input projections, the decoder, and their and the recurrence's
    gradients), each timed alone, best of `repeats`; and the rate summed over the members that this cost
    alone would allow, against one solo run."""
    h, w_hh, out = (
        torch.randn(members, 1, HIDDEN),
        torch.randn(members, HIDDEN, HIDDEN),
        torch.zeros(members, 1, HIDDEN),
    )
    recurrent = best_time(lambda: [out.baddbmm_(h, w_hh) for _ in range(2 * LAYERS * SEQ_LEN)], repeats)
    rows, wide = torch.randn(members, SEQ_LEN, HIDDEN), torch.randn(members, SEQ_LEN, VOCAB)
    square, decoder = torch.randn(members, HIDDEN, HIDDEN), torch.randn(members, VOCAB, HIDDEN)
    products = [(rows, square)] * (LAYERS - 1) + [(rows, decoder.transpose(1, 2))]  # forward
    products += [(rows.transpose(1, 2), rows)] * (2 * LAYERS - 1) + [(rows, square)] * (LAYERS - 1)  # weights, inputs
    products += [(wide, decoder), (wide.transpose(1, 2), rows)]  # the decoder's backward
    whole = best_time(lambda: [a.bmm(b) for a, b in products], repeats)
    seconds = recurrent + whole
    return {
        "members": members,
        "ms_per_step": seconds * 1000,
        "recurrent_ms": recurrent * 1000,
        "whole_window_ms": whole * 1000,
        "at_most_vs_solo_run": members * SEQ_LEN / seconds / solo_rate,
    }


def best_time(work: Callable[[], object], repeats: int) -> float:
    seconds = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        seconds = min(seconds, time.perf_counter() - start)
    return seconds


def paper_best() -> CharRNN:
    return network("rnn")


def network(cell: str) -> CharRNN:
    """The paper's best shape with the given cell (relu applies to the rnn cell only)."""
    return CharRNN(VOCAB, cell=cell, num_layers=LAYERS, hidden_size=HIDDEN, dropout=DROPOUT, nonlinearity="relu")


GOAL = 4.0  # 8 stacked runs against one solo run (8 seeds in at most twice the time of one)
RUNS = (1, 2, 4, 8, 16)
CROSSOVER_BATCHES = (1, 4, 16, 64)
CELLS = ("rnn", "gru", "lstm")
SCRATCH = Path(tempfile.gettempdir()) / "lyricgen-bench" / "stacked"


def run_rate(members: int, steps: int) -> float:
    """chars/s, summed over the runs, of `members` runs of experiment=paper_best trained as lyricgen.train
    trains them: alone (1) or stacked; seeds 0..members-1, no validation until the last step."""
    overrides = ["experiment=paper_best", "threads=1", "memory.order=0", f"trainer.max_steps={steps}"]
    overrides += [f"trainer.val_check_interval={steps}", f"checkpoint.every_n_steps={steps}", "data.val_chars=2000"]
    overrides += ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
    overrides += [f"data.prepared_dir={SCRATCH / 'prepared'}"]
    with initialize_config_dir(str(CONF_DIR), version_base=None):
        configs = [compose("config", [*overrides, f"seed={seed}"]) for seed in range(members)]
    runs = [(cfg, SCRATCH / f"{members}" / f"seed={seed}", None) for seed, cfg in enumerate(configs)]
    shutil.rmtree(SCRATCH / f"{members}", ignore_errors=True)
    with contextlib.redirect_stdout(io.StringIO()):  # each run's closing summary and sample
        fit_run(*runs[0][:2]) if members == 1 else fit_stacked(runs)
    return sum(logged_rate(run_dir) for _, run_dir, _ in runs)


def logged_rate(run_dir: Path) -> float:
    events = EventAccumulator(str(run_dir)).Reload()
    return statistics.median(event.value for event in events.Scalars("perf/chars_per_s"))


def main(steps: int = 300, rounds: int = 3) -> None:
    """Each round measures solo and stacked runs, then the solo and stacked plain loops; medians over rounds."""
    torch.set_num_threads(1)
    ids = torch.randint(VOCAB, (200_000,), dtype=torch.uint8)
    rates: dict[str, list[float]] = {}
    for _ in range(rounds):
        for members in RUNS:
            name = "solo run (lyricgen.train)" if members == 1 else f"{members} stacked runs (hydra/launcher=stacked)"
            rates.setdefault(name, []).append(run_rate(members, steps))
        torch.manual_seed(0)
        chars, seconds = raw_steps(paper_best(), ids, batch=1, seq_len=SEQ_LEN, steps=steps)
        rates.setdefault("solo step, plain PyTorch loop", []).append(chars / seconds)
        for members in MEMBERS:
            chars, seconds = stacked_steps(members, ids, max(steps // members, 10))
            rates.setdefault(f"{members} stacked steps, plain loop", []).append(chars / seconds)
    medians = {name: statistics.median(values) for name, values in rates.items()}
    crossings = crossover(ids, steps)
    solo, plain = medians["solo run (lyricgen.train)"], medians["solo step, plain PyTorch loop"]
    rows = [
        {"run": name, "chars_per_s": rate, "vs_solo_run": rate / solo, "vs_plain_loop": rate / plain}
        for name, rate in medians.items()
    ]
    result = {"model": "paper best: rnn relu 4x100, one-hot, dropout 0.2, batch 1 x 200", "steps": steps}
    result |= {"rounds": rounds, "rows": rows, "goal": GOAL, "crossover": crossings}
    result |= {"eight_vs_solo_run": medians["8 stacked runs (hydra/launcher=stacked)"] / solo}
    result |= {"eight_steps_vs_solo_run": medians["8 stacked steps, plain loop"] / solo}
    result |= {"eight_matmuls": matmul_floor(8, solo)}
    result |= {"eight_step_ms": 8 * SEQ_LEN / medians["8 stacked runs (hydra/launcher=stacked)"] * 1000}
    write_result("stacked", result, MEASURES)
    (RESULTS / "stacked.md").write_text(markdown(result))
    print(markdown(result))


def markdown(result: dict) -> str:
    lines = [
        f"Training chars/s summed over runs, {result['model']}, one thread; median of {result['rounds']} rounds "
        f"of {result['steps']} steps (plain-loop stacks: steps / K, at least 10), side by side in one process.",
        "",
        "| run | chars/s | vs one solo run | vs the solo plain loop |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {row['run']} | {row['chars_per_s']:,.0f} | {row['vs_solo_run']:.2f}x | {row['vs_plain_loop']:.2f}x |"
        for row in result["rows"]
    ]
    lines += [
        "",
        "Where stacking stops paying, by cell (the paper's best shape: 4 layers of 100, dropout 0.2): 8 members",
        "stacked against one solo step at each batch size (plain loops, one round):",
        "",
        "| cell | batch | solo chars/s | 8 stacked chars/s | gain |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {row['cell']} | {row['batch']} | {row['solo']:,.0f} | {row['stacked_8']:,.0f} | {row['gain']:.2f}x |"
        for row in result["crossover"]
    ]
    verdict = "met" if result["eight_vs_solo_run"] >= result["goal"] else "missed"
    floor = result["eight_matmuls"]
    lines += [
        "",
        f"- goal, 8 stacked runs at {result['goal']:.0f}x one solo run: {result['eight_vs_solo_run']:.2f}x "
        f"({verdict}); the stacked step alone, without a trainer, reaches {result['eight_steps_vs_solo_run']:.2f}x.",
        f"- its floor: the 8 members' matmuls alone take {floor['ms_per_step']:.1f} ms per step (recurrent, a baddbmm "
        f"per character and layer forward and backward: {floor['recurrent_ms']:.1f} ms; whole-window: "
        f"{floor['whole_window_ms']:.1f} ms), {floor['at_most_vs_solo_run']:.1f}x one solo run if the step cost "
        f"nothing else; the stacked run's step takes {result['eight_step_ms']:.1f} ms, "
        f"{result['eight_step_ms'] / floor['ms_per_step']:.1f}x that floor (goal: within 2x).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:]))
