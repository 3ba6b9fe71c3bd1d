"""How much K same-shape runs gain by training as one stacked model in one process: the paper's best model
(4 ReLU layers of 100, one-hot input, dropout 0.2, batch 1, 200-character windows), one thread.

Run: `python benchmarks/stacked_speed.py [steps] [rounds]` (default 300, 3). Writes
benchmarks/results/stacked.json and stacked.md. Side by side in one process, round after round: one solo
run (the real Trainer and LyricLM, as train_speed.py measures it), the same model in a plain PyTorch loop
(lyricgen's CPU kernels, Adam, clipping: a solo step without Lightning), then K members stacked for
each K in MEMBERS: each layer's K weight matrices in one (K, ...) tensor and one batched matmul per
character and layer for all K (StackedElman, the stacked form of lyricgen.nn.kernels.ElmanLayer), each
member with its own Adam state, learning rate and clipping. Summed characters per second are compared.

This measures the stacked step only: the trainer, per-member run directories and the Hydra launcher
that would run a sweep this way are not built.
"""

import statistics
import sys
import time

import torch
import torch.nn.functional as F
from common import RESULTS, write_result
from references import raw_steps
from torch.autograd.function import once_differentiable
from train_speed import VOCAB, lyricgen_rate

from lyricgen.nn.charrnn import CharRNN
from lyricgen.nn.kernels import dropout, elman_steps, elman_steps_backward, with_initial_state

HIDDEN, LAYERS, SEQ_LEN, DROPOUT = 100, 4, 200, 0.2
MEMBERS = (1, 2, 4, 8, 16, 32)
Tensor = torch.Tensor


class StackedElman(torch.autograd.Function):
    """K nn.RNN layers at once, time-major: inputs (seq, K, batch, features) or (seq, K, batch) one-hot
    indices, weights (K, ...). Each step: one baddbmm for all K members' h W_hh^T, then the activation."""

    @staticmethod
    def forward(ctx, inputs: Tensor, h0: Tensor, w_ih: Tensor, w_hh: Tensor, bias: Tensor, relu: bool) -> Tensor:
        states = with_initial_state(h0, len(inputs))
        states[1:] = project(inputs, w_ih, bias)
        elman_steps(states, w_hh.transpose(1, 2).contiguous(), relu, Tensor.baddbmm_)
        ctx.save_for_backward(inputs, states, w_ih, w_hh)
        ctx.relu = relu
        return states[1:]

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor) -> tuple:
        inputs, states, w_ih, w_hh = ctx.saved_tensors
        grad_pre = grad_out.clone(memory_format=torch.contiguous_format)
        carry = elman_steps_backward(grad_pre, states[1:], w_hh, ctx.relu, Tensor.baddbmm_)
        by_member = grad_pre.transpose(0, 1).reshape(w_hh.size(0), -1, w_hh.size(1))  # (K, seq * batch, hidden)
        previous = states[:-1].transpose(0, 1).reshape_as(by_member)
        grad_inputs, grad_w_ih = project_backward(inputs, w_ih, by_member, ctx.needs_input_grad[0])
        return grad_inputs, carry.bmm(w_hh), grad_w_ih, by_member.transpose(1, 2).bmm(previous), by_member.sum(1), None


def project(inputs: Tensor, w_ih: Tensor, bias: Tensor) -> Tensor:
    """inputs @ w_ih^T + bias for every step and member: (seq, K, batch, hidden); one-hot: a lookup."""
    seq, members, batch = inputs.shape[:3]
    if inputs.is_floating_point():
        flat = inputs.transpose(0, 1).reshape(members, seq * batch, -1)
        projected = torch.baddbmm(bias.unsqueeze(1), flat, w_ih.transpose(1, 2))
    else:
        table = w_ih.transpose(1, 2) + bias.unsqueeze(1)  # (K, vocab, hidden)
        ids = inputs.transpose(0, 1).reshape(members, -1)
        projected = table[torch.arange(members).unsqueeze(1), ids]
    return projected.view(members, seq, batch, -1).transpose(0, 1)


def project_backward(inputs: Tensor, w_ih: Tensor, grad: Tensor, needs_input_grad: bool) -> tuple:
    """d loss / d (inputs or None, w_ih) of project, from grad (K, seq * batch, hidden)."""
    seq, members, batch = inputs.shape[:3]
    if not inputs.is_floating_point():
        ids = inputs.transpose(0, 1).reshape(members, -1)
        table = grad.new_zeros(members, w_ih.size(2), w_ih.size(1))
        return None, table.scatter_add_(1, ids.unsqueeze(2).expand_as(grad), grad).transpose(1, 2)
    flat = inputs.transpose(0, 1).reshape(members, seq * batch, -1)
    grad_inputs = grad.bmm(w_ih).view(members, seq, batch, -1).transpose(0, 1) if needs_input_grad else None
    return grad_inputs, grad.transpose(1, 2).bmm(flat)


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
            bias = self.b_ih[layer] + self.b_hh[layer]
            x = StackedElman.apply(x, h0, self.w_ih[layer], self.w_hh[layer], bias, self.relu)
        x = dropout(x, self.dropout, self.training).transpose(0, 1).reshape(ids.size(0), -1, x.size(-1))
        return torch.baddbmm(self.decoder_bias.unsqueeze(1), x, self.decoder_weight.transpose(1, 2))


def member_losses(logits: Tensor, targets: Tensor) -> Tensor:
    """Each member's mean cross-entropy: (K,). targets (K, batch, seq), rows time-major as the logits."""
    flat_targets = targets.permute(0, 2, 1).reshape(targets.size(0), -1)
    return F.cross_entropy(logits.transpose(1, 2), flat_targets, reduction="none").mean(1)


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


def stacked_steps(members: int, ids: Tensor, steps: int) -> tuple[int, float]:
    """(characters trained summed over members, seconds) for `steps` stacked iterations at batch 1."""
    torch.manual_seed(0)
    model = StackedRNN([paper_best() for _ in range(members)])
    optimizer = StackedAdam(list(model.parameters()), torch.full((members,), 0.001), torch.full((members,), 1.0))
    generator = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    for _ in range(steps):
        starts = torch.randint(len(ids) - SEQ_LEN - 1, (members,), generator=generator)
        chunk = torch.stack([ids[s : s + SEQ_LEN + 1] for s in starts.tolist()]).long().unsqueeze(1)
        losses = member_losses(model(chunk[..., :-1]), chunk[..., 1:])
        losses.sum().backward()  # members share no parameter: each gets its own loss's gradient
        optimizer.step()
        losses.tolist()
    return steps * members * SEQ_LEN, time.perf_counter() - start


def paper_best() -> CharRNN:
    return CharRNN(VOCAB, num_layers=LAYERS, hidden_size=HIDDEN, dropout=DROPOUT, nonlinearity="relu")


GOAL = 4.0  # 8 stacked members against one solo run (issue: 8 seeds in at most twice the time of one)


def main(steps: int = 300, rounds: int = 3) -> None:
    """Each round measures solo (Lightning), solo (plain loop) and every K stacked; medians over rounds."""
    torch.set_num_threads(1)
    ids = torch.randint(VOCAB, (200_000,), dtype=torch.uint8)
    options = {"cell": "rnn", "num_layers": LAYERS, "hidden_size": HIDDEN, "nonlinearity": "relu", "dropout": DROPOUT}
    rates: dict[str, list[float]] = {}
    for _ in range(rounds):
        torch.manual_seed(0)
        rates.setdefault("solo run (lyricgen, Lightning)", []).append(lyricgen_rate(options, ids, 1, SEQ_LEN, steps))
        chars, seconds = raw_steps(paper_best(), ids, batch=1, seq_len=SEQ_LEN, steps=steps)
        rates.setdefault("solo, plain PyTorch loop", []).append(chars / seconds)
        for members in MEMBERS:
            chars, seconds = stacked_steps(members, ids, max(steps // members, 10))
            rates.setdefault(f"{members} stacked (plain loop)", []).append(chars / seconds)
    medians = {name: statistics.median(values) for name, values in rates.items()}
    solo, plain = medians["solo run (lyricgen, Lightning)"], medians["solo, plain PyTorch loop"]
    rows = [
        {"run": name, "chars_per_s": rate, "vs_solo_run": rate / solo, "vs_plain_loop": rate / plain}
        for name, rate in medians.items()
    ]
    eight = medians["8 stacked (plain loop)"]
    result = {"model": "paper best: rnn relu 4x100, one-hot, dropout 0.2, batch 1 x 200", "steps": steps}
    result |= {"rounds": rounds, "rows": rows, "goal": GOAL, "eight_vs_solo_run": eight / solo}
    result["eight_vs_plain_loop"] = eight / plain
    write_result("stacked", result)
    (RESULTS / "stacked.md").write_text(markdown(result))
    print(markdown(result))


def markdown(result: dict) -> str:
    lines = [
        f"Training chars/s summed over members, {result['model']}, one thread; median of {result['rounds']} rounds "
        f"of {result['steps']} steps (stacked: steps / K, at least 10), side by side in one process.",
        "",
        "| run | chars/s | vs one solo run | vs the solo plain loop |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {row['run']} | {row['chars_per_s']:,.0f} | {row['vs_solo_run']:.2f}x | {row['vs_plain_loop']:.2f}x |"
        for row in result["rows"]
    ]
    verdict = "met" if result["eight_vs_solo_run"] >= result["goal"] else "missed"
    lines += [
        "",
        f"- goal, 8 stacked members at {result['goal']:.0f}x one solo run: the stacked step alone reaches "
        f"{result['eight_vs_solo_run']:.2f}x a solo run and {result['eight_vs_plain_loop']:.2f}x its plain loop "
        f"({verdict} against the run; a stacked trainer adds its own per-step overhead, shared by the members).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:]))
