"""K CharRNNs of one shape trained as one: every layer's K weight matrices in one (K, ...) tensor and one
batched matmul per character and layer for all K, where K solo runs would each pay a batch-1 step's fixed
cost (benchmarks/results/stacked.md). The members stay ordinary CharRNNs: each forward stacks their
current weights (a copy of a few kB), so gradients land on each member's own parameters and its own
optimiser, checkpoint and sampling see a plain CharRNN.

What stacks: the rnn cell (tanh or relu) on one-hot input, unconditioned, on a CPU; members may differ in
dropout and everything outside the network (lyricgen.stacking says which configs group).
"""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from lyricgen.nn.charrnn import CharRNN
from lyricgen.nn.kernels import (
    dropout_mask,
    elman_steps,
    elman_steps_backward,
    saved_for_backward,
    saved_with_gradient,
    with_initial_state,
)

Tensor = torch.Tensor


class StackedElman(torch.autograd.Function):
    """K nn.RNN layers at once (the stacked form of kernels.ElmanLayer), time-major: inputs (seq, K, batch,
    features) or (seq, K, batch) one-hot indices, weights (K, ...). Each step: one baddbmm for all K
    members' h W_hh^T, then the activation."""

    @staticmethod
    def forward(
        ctx, inputs: Tensor, h0: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor, relu: bool
    ) -> Tensor:
        states = with_initial_state(h0, len(inputs))
        states[1:] = project(inputs, w_ih, b_ih + b_hh)
        elman_steps(states, w_hh.transpose(1, 2), relu, Tensor.baddbmm_)  # transposed, as a solo run passes it
        return saved_for_backward(ctx, inputs, states, w_ih, w_hh, relu)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor) -> tuple:
        inputs, states, w_ih, w_hh, grad_pre = saved_with_gradient(ctx, grad_out)
        carry = elman_steps_backward(grad_pre, states[1:], w_hh, ctx.relu, Tensor.baddbmm_)
        by_member = grad_pre.transpose(0, 1).reshape(w_hh.size(0), -1, w_hh.size(1))  # (K, seq * batch, hidden)
        previous = states[:-1].transpose(0, 1).reshape_as(by_member)
        grad_inputs, grad_w_ih, grad_b = project_backward(inputs, w_ih, by_member, ctx.needs_input_grad[0])
        grad_w_hh = by_member.transpose(1, 2).bmm(previous)
        # Two bias gradients that share no memory: each member's are views of them, and clipping scales a
        # member's gradients in place, which would scale one shared tensor twice.
        return grad_inputs, carry.bmm(w_hh), grad_w_ih, grad_w_hh, grad_b, grad_b.clone(), None


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
    """d loss / d (inputs or None, w_ih, bias) of project, from grad (K, seq * batch, hidden): each
    member's sums in the order kernels.project_input_backward sums a solo run's, so they are its bits."""
    seq, members, batch = inputs.shape[:3]
    if not inputs.is_floating_point():
        ids = inputs.transpose(0, 1).reshape(members, -1)
        table = grad.new_zeros(members, w_ih.size(2), w_ih.size(1))
        table.scatter_add_(1, ids.unsqueeze(2).expand_as(grad), grad)
        return None, table.transpose(1, 2), table.sum(1)
    flat = inputs.transpose(0, 1).reshape(members, seq * batch, -1)
    grad_inputs = grad.bmm(w_ih).view(members, seq, batch, -1).transpose(0, 1) if needs_input_grad else None
    return grad_inputs, grad.transpose(1, 2).bmm(flat), grad.sum(1)


class StackedDecoder(torch.autograd.Function):
    """Each member's linear decoder, x (K, rows, hidden) -> (K, rows, vocab), whose weight gradient is
    computed as a solo run's nn.Linear computes it (grad^T @ x, not x^T @ grad then transposed), so it
    rounds the same way."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        ctx.save_for_backward(x, weight)
        return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x, weight = ctx.saved_tensors
        return grad.bmm(weight), grad.transpose(1, 2).bmm(x), grad.sum(1)


def stacked(tensors: Sequence[Tensor]) -> Tensor:
    return torch.stack(list(tensors))


def stacked_dropout(x: Tensor, rates: Sequence[float], generators: Sequence[torch.Generator]) -> Tensor:
    """Dropout on x (seq, K, batch, hidden), member k's mask drawn from generators[k] at rate rates[k],
    laid out as its solo run lays out its (seq, batch, hidden) mask: the same draws give the same mask."""
    if not any(rates):
        return x
    shape = x[:, 0].shape
    masks = [
        dropout_mask(shape, rate, x.dtype, generator) if rate else x.new_ones(shape)
        for rate, generator in zip(rates, generators, strict=True)
    ]
    return x * torch.stack(masks, dim=1)


def stacked_logits(members: Sequence[CharRNN], ids: Tensor, generators: Sequence[torch.Generator]) -> Tensor:
    """ids (K, batch, seq) -> each member's logits (K, seq * batch, vocab), rows time-major (as
    member_losses reads them). Dropout (while the members train) draws from each member's generator."""
    first = members[0].rnn
    relu, training = first.nonlinearity == "relu", members[0].training
    between = [member.rnn.dropout if training else 0.0 for member in members]
    on_top = [member.dropout if training else 0.0 for member in members]
    x = ids.permute(2, 0, 1)  # (seq, K, batch)
    h0 = first.weight_hh_l0.new_zeros(ids.size(0), ids.size(1), first.hidden_size)
    weights = [member.rnn.all_weights for member in members]  # each [layer][w_ih, w_hh, b_ih, b_hh]
    for layer in range(first.num_layers):
        if layer:
            x = stacked_dropout(x, between, generators)
        w_ih, w_hh, b_ih, b_hh = (stacked(own[layer][i] for own in weights) for i in range(4))
        x = StackedElman.apply(x, h0, w_ih, w_hh, b_ih, b_hh, relu)
    x = stacked_dropout(x, on_top, generators).transpose(0, 1).reshape(ids.size(0), -1, first.hidden_size)
    decoder_weight, decoder_bias = stacked(m.decoder.weight for m in members), stacked(m.decoder.bias for m in members)
    return StackedDecoder.apply(x, decoder_weight, decoder_bias)


def member_losses(logits: Tensor, targets: Tensor) -> Tensor:
    """Each member's mean cross-entropy (K,), as sequence_loss gives it alone; targets (K, batch, seq).
    One call per member, on its (seq * batch, vocab) rows as a solo run lays them out: one call over all
    members sums in another order and rounds differently in the last bit."""
    flat_targets = targets.permute(0, 2, 1).reshape(targets.size(0), -1)
    return torch.stack([F.cross_entropy(own, wanted) for own, wanted in zip(logits, flat_targets, strict=True)])
