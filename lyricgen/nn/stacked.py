"""K CharRNNs of one shape trained as one: every layer's K weight matrices in one (K, ...) tensor and one
batched matmul per character and layer for all K, where K solo runs would each pay a batch-1 step's fixed
cost (benchmarks/results/stacked.md). The members stay ordinary CharRNNs: each forward stacks their
current weights (a copy of a few kB), so gradients land on each member's own parameters and its own
optimiser, checkpoint and sampling see a plain CharRNN.

What stacks: every cell (rnn tanh or relu, gru, lstm) on one-hot input, unconditioned, on a CPU; members
may differ in dropout, in vocabulary (corpora with other characters: each member's input and output
matrices are padded to the largest, and its loss reads only its own characters' scores) and everything
outside the network (lyricgen.hydra.launcher says which configs group).
"""

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from lyricgen.nn.charrnn import CharRNN
from lyricgen.nn.kernels import (
    dropout_mask,
    elman_steps,
    elman_steps_backward,
    gru_backward,
    gru_forward,
    per_step,
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
        elman_steps(states, w_hh.transpose(1, 2), relu)  # transposed, as a solo run passes it
        return saved_for_backward(ctx, inputs, states, w_ih, w_hh, relu)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor) -> tuple:
        inputs, states, w_ih, w_hh, grad_pre = saved_with_gradient(ctx, grad_out)
        carry = elman_steps_backward(grad_pre, states[1:], w_hh, ctx.relu)
        by_member, previous = per_member(grad_pre), per_member(states[:-1])
        grad_inputs, grad_w_ih, grad_b = project_backward(inputs, w_ih, by_member, ctx.needs_input_grad[0])
        grad_w_hh = by_member.transpose(1, 2).bmm(previous)
        # Two bias gradients that share no memory: each member's are views of them, and clipping scales a
        # member's gradients in place, which would scale one shared tensor twice.
        return grad_inputs, carry.bmm(w_hh), grad_w_ih, grad_w_hh, grad_b, grad_b.clone(), None


class StackedGRU(torch.autograd.Function):
    """K nn.GRU layers at once (the stacked form of kernels.GRULayer, whose steps it shares), time-major:
    inputs (seq, K, batch, features) or (seq, K, batch) one-hot indices, weights (K, ...)."""

    @staticmethod
    def forward(ctx, inputs: Tensor, h0: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor) -> Tensor:
        return gru_forward(ctx, inputs, h0, w_ih, w_hh, b_ih, b_hh, project_into=project_into)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor) -> tuple:
        return gru_backward(ctx, grad_out, rows=per_member, project_backward=project_backward)


class StackedLSTM(torch.autograd.Function):
    """K nn.LSTM layers at once, time-major like StackedElman, gates in nn.LSTM's order (i, f, g, o):
    i, f, o = sigmoid(x W_i*^T + b_i* + h W_h*^T + b_h*), g = tanh(...), c' = f c + i g, h' = o tanh(c').
    A solo LSTM runs as one nn.LSTM call (kernels has no LSTM); here each step is one baddbmm for all K
    members and a few in-place element-wise ops, and backward is written out: per step one multiply of the
    carried gradients by factors made for all steps at once, and one baddbmm."""

    @staticmethod
    def forward(
        ctx, inputs: Tensor, h0: Tensor, c0: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor
    ) -> Tensor:
        hidden = w_hh.size(-1)
        gates = project(inputs, w_ih, b_ih + b_hh).contiguous()  # (seq, K, batch, 4 hidden): i f g o
        states, cells = with_initial_state(h0, len(inputs)), with_initial_state(c0, len(inputs))
        tanh_cells = torch.empty_like(cells[1:])
        i, f, g, o = gates.split(hidden, dim=-1)
        steps = per_step(gates, gates[..., : 2 * hidden], i, f, g, o, cells[1:], tanh_cells, states[1:])
        w_hh_t, h, c = w_hh.transpose(1, 2), h0, c0
        for gates_t, if_t, i_t, f_t, g_t, o_t, cell, tanh_cell, state in steps:
            gates_t.baddbmm_(h, w_hh_t)
            if_t.sigmoid_()
            g_t.tanh_()
            o_t.sigmoid_()
            c = torch.mul(f_t, c, out=cell).addcmul_(i_t, g_t)
            h = torch.mul(o_t, torch.tanh(c, out=tanh_cell), out=state)
        ctx.save_for_backward(inputs, w_ih, w_hh, gates, states, cells, tanh_cells)
        return states[1:]

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor) -> tuple:
        inputs, w_ih, w_hh, gates, states, cells, tanh_cells = ctx.saved_tensors
        hidden = w_hh.size(-1)
        i, f, g, o = gates.split(hidden, dim=-1)
        through_h = o * (1 - tanh_cells * tanh_cells)  # d h_t / d c_t
        # d c_t / d the pre-activations of i, f and g
        by_c = torch.stack([g * i * (1 - i), cells[:-1] * f * (1 - f), i * (1 - g * g)], dim=-2)
        by_h = tanh_cells * o * (1 - o)  # d h_t / d o's pre-activation
        grads = torch.empty_like(gates)
        carried = grad_out.clone(memory_format=torch.contiguous_format)  # d loss / d h_t, completed from the end
        grad_c = torch.zeros_like(cells[0])  # d loss / d c_t through c_{t+1}
        for step in reversed(range(len(gates))):
            grad_h, grads_t = carried[step], grads[step]
            grad_c = torch.addcmul(grad_c, grad_h, through_h[step])
            torch.mul(grad_c.unsqueeze(-2), by_c[step], out=grads_t[..., : 3 * hidden].unflatten(-1, (3, hidden)))
            torch.mul(grad_h, by_h[step], out=grads_t[..., 3 * hidden :])
            grad_c = grad_c.mul_(f[step])
            grad_h_before = carried[step - 1] if step else torch.zeros_like(grad_h)
            grad_h_before.baddbmm_(grads_t, w_hh)
        by_member = per_member(grads)
        grad_inputs, grad_w_ih, grad_b = project_backward(inputs, w_ih, by_member, ctx.needs_input_grad[0])
        grad_w_hh = by_member.transpose(1, 2).bmm(per_member(states[:-1]))
        return grad_inputs, grad_h_before, grad_c, grad_w_ih, grad_w_hh, grad_b, grad_b.clone()


def per_member(x: Tensor) -> Tensor:
    """(seq, K, batch, features) -> (K, seq * batch, features): each member's rows time-major, as a solo
    run lays them out."""
    return x.transpose(0, 1).reshape(x.size(1), -1, x.size(-1))


def project_into(inputs: Tensor, weight: Tensor, bias: Tensor, out: Tensor) -> None:
    out.copy_(project(inputs, weight, bias))


def project(inputs: Tensor, w_ih: Tensor, bias: Tensor) -> Tensor:
    """inputs @ w_ih^T + bias for every step and member: (seq, K, batch, hidden); one-hot: a lookup."""
    seq, members, batch = inputs.shape[:3]
    if inputs.is_floating_point():
        projected = torch.baddbmm(bias.unsqueeze(1), per_member(inputs), w_ih.transpose(1, 2))
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
    grad_inputs = grad.bmm(w_ih).view(members, seq, batch, -1).transpose(0, 1) if needs_input_grad else None
    return grad_inputs, grad.transpose(1, 2).bmm(per_member(inputs)), grad.sum(1)


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


def stacked(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """The members' tensors as one (K, ...) tensor, each padded with zeros along `dim` to the largest (their
    vocabularies may differ: the padded rows are characters a member never reads nor scores)."""
    tensors = list(tensors)
    size = max(tensor.size(dim) for tensor in tensors)
    return torch.stack([padded(tensor, dim, size) for tensor in tensors])


def padded(tensor: Tensor, dim: int, size: int) -> Tensor:
    """tensor with zeros after its end along `dim` (>= 0), up to `size`."""
    if tensor.size(dim) == size:
        return tensor
    after = tensor.dim() - 1 - dim  # F.pad lists the last dimension's padding first
    return F.pad(tensor, (0, 0) * after + (0, size - tensor.size(dim)))


def stacked_dropout(
    x: Tensor, rates: Sequence[float], generators: Sequence[torch.Generator], draw: Callable, batch_major: bool = False
) -> Tensor:
    """Dropout on x (seq, K, batch, hidden), member k's mask drawn by `draw(shape, rate, dtype, generator)`
    from generators[k] at rate rates[k], laid out as its solo run lays out its mask, (seq, batch, hidden)
    or with batch_major (batch, seq, hidden): the same draws give the same mask."""
    if not any(rates):
        return x
    shape = x[:, 0].transpose(0, 1).shape if batch_major else x[:, 0].shape
    masks = [
        draw(shape, rate, x.dtype, generator) if rate else x.new_ones(shape)
        for rate, generator in zip(rates, generators, strict=True)
    ]
    return x * torch.stack([mask.transpose(0, 1) if batch_major else mask for mask in masks], dim=1)


def bernoulli_mask(shape: torch.Size, p: float, dtype: torch.dtype, generator: torch.Generator) -> Tensor:
    """The scaled keep mask nn.LSTM draws between layers on a CPU (aten's dropout), from `generator`."""
    return torch.empty(shape, dtype=dtype).bernoulli_(1 - p, generator=generator).div_(1 - p)


def stacked_logits(members: Sequence[CharRNN], ids: Tensor, generators: Sequence[torch.Generator]) -> list[Tensor]:
    """ids (K, batch, seq) -> each member's logits (seq * batch, its vocab), rows time-major (as
    member_losses reads them). Dropout (while the members train) draws from each member's generator, as
    its solo run draws it: lyricgen's mask between layers of an RNN or GRU (kernels.recurrent_stack), aten's
    inside nn.LSTM, and lyricgen's on the top layer's output, batch-major after nn.LSTM's batch-first output."""
    first = members[0].rnn
    training, lstm = members[0].training, isinstance(first, nn.LSTM)
    between = [member.rnn.dropout if training else 0.0 for member in members]
    on_top = [member.dropout if training else 0.0 for member in members]
    x = ids.permute(2, 0, 1)  # (seq, K, batch)
    h0 = first.weight_hh_l0.new_zeros(ids.size(0), ids.size(1), first.hidden_size)
    weights = [member.rnn.all_weights for member in members]  # each [layer][w_ih, w_hh, b_ih, b_hh]
    for layer in range(first.num_layers):
        if layer:
            x = stacked_dropout(x, between, generators, bernoulli_mask if lstm else dropout_mask)
        layer_weights = [
            stacked((own[layer][i] for own in weights), dim=int(i == 0)) for i in range(4)
        ]  # w_ih: by input
        x = stacked_layer(first, x, h0, layer_weights)
    x = stacked_dropout(x, on_top, generators, dropout_mask, batch_major=lstm)
    x = x.transpose(0, 1).reshape(ids.size(0), -1, first.hidden_size)
    decoder_weight, decoder_bias = stacked(m.decoder.weight for m in members), stacked(m.decoder.bias for m in members)
    logits = StackedDecoder.apply(x, decoder_weight, decoder_bias)
    return [own[:, : member.vocab_size] for own, member in zip(logits, members, strict=True)]


def stacked_layer(cell: nn.RNNBase, x: Tensor, h0: Tensor, weights: list[Tensor]) -> Tensor:
    """One layer of K members of the stack's cell from the zero state h0: (seq, K, batch, hidden)."""
    if isinstance(cell, nn.LSTM):
        return StackedLSTM.apply(x, h0, h0, *weights)
    if isinstance(cell, nn.GRU):
        return StackedGRU.apply(x, h0, *weights)
    return StackedElman.apply(x, h0, *weights, cell.nonlinearity == "relu")


def member_losses(logits: Sequence[Tensor], targets: Tensor) -> Tensor:
    """Each member's mean cross-entropy (K,), as sequence_loss gives it alone, from its logits (seq * batch,
    vocab) and targets (K, batch, seq).
    One call per member, on its (seq * batch, vocab) rows as a solo run lays them out: one call over all
    members sums in another order and rounds differently in the last bit."""
    flat_targets = targets.permute(0, 2, 1).reshape(targets.size(0), -1)
    return torch.stack([F.cross_entropy(own, wanted) for own, wanted in zip(logits, flat_targets, strict=True)])
