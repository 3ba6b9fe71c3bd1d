"""What makes training fast on a CPU: nn.RNN and nn.GRU's recurrence with a hand-written backward through
time and a cheaper dropout mask. Each was measured (benchmarks/train_speed.py).

The recurrence: on a CPU, nn.RNN/nn.GRU record several autograd nodes per time step and layer, and
backward replays them one by one. Here each layer's recurrence is ONE autograd node:
- the input projection of all time steps is one matmul (or, for one-hot input, a column lookup) before it;
- forward steps are one addmm plus a few in-place element-wise ops into preallocated buffers;
- backward steps do only what depends on the carried gradient (an addmm and one to three multiplies);
  every other factor is computed for many steps at once, and the weight gradient is one matmul per layer.
Weights are nn.RNN/nn.GRU's own parameters, so checkpoints and the CUDA path (cuDNN) are unchanged;
tests check outputs and gradients against nn.RNN/nn.GRU. The per-character loops run compiled where
`make install` could build them (lyricgen.nn.compiled: the same calls, the same bits), else in Python here.
"""

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from lyricgen.nn import compiled

Tensor = torch.Tensor


def flat(x: Tensor) -> Tensor:
    """(seq, batch, features) -> (seq * batch, features); a view, also of a slice of the last dim."""
    return x.reshape(-1, x.size(-1))


def per_step(*tensors: Tensor) -> list[tuple[Tensor, ...]]:
    """For each time step, the step's slice of every (seq, ...) tensor: made once, in C++, instead of
    indexing in the loop."""
    return list(zip(*(tensor.unbind(0) for tensor in tensors), strict=True))


def with_initial_state(h0: Tensor, seq: int) -> Tensor:
    """(seq + 1, batch, hidden) buffer whose [0] is h0: [:-1] is then the state each step starts from."""
    states = h0.new_empty(seq + 1, *h0.shape)
    states[0] = h0
    return states


class ElmanLayer(torch.autograd.Function):
    """One nn.RNN layer: h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), act = tanh or relu, for
    time-major inputs (see project_input)."""

    @staticmethod
    def forward(ctx, inputs: Tensor, h0: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor, relu: bool):
        states = with_initial_state(h0, len(inputs))
        project_input(inputs, w_ih, b_ih + b_hh, out=states[1:])  # each step adds its recurrent part
        elman_steps(states, w_hh.t(), relu)
        return saved_for_backward(ctx, inputs, states, w_ih, w_hh, relu)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor) -> tuple:
        inputs, states, w_ih, w_hh, grad_pre = saved_with_gradient(ctx, grad_out)
        carry = elman_steps_backward(grad_pre, states[1:], w_hh, ctx.relu)
        grad_inputs, grad_w_ih, grad_b = project_input_backward(inputs, w_ih, flat(grad_pre), ctx.needs_input_grad[0])
        grad_w_hh = flat(grad_pre).t() @ flat(states[:-1])
        return grad_inputs, carry @ w_hh, grad_w_ih, grad_w_hh, grad_b, grad_b, None


def saved_for_backward(ctx, inputs: Tensor, states: Tensor, w_ih: Tensor, w_hh: Tensor, relu: bool) -> Tensor:
    """An Elman recurrence's forward end (ElmanLayer, and nn.stacked's StackedElman): what its backward
    needs saved; returns the outputs, states[1:]."""
    ctx.save_for_backward(inputs, states, w_ih, w_hh)
    ctx.relu = relu
    return states[1:]


def saved_with_gradient(ctx, grad_out: Tensor) -> tuple[Tensor, ...]:
    """An Elman recurrence's backward start: (inputs, states, w_ih, w_hh) as saved, and a contiguous copy
    of d loss / d its outputs, which the backward steps complete from the end."""
    return *ctx.saved_tensors, grad_out.clone(memory_format=torch.contiguous_format)


def multiply_add_for(weight: Tensor) -> Callable[[Tensor, Tensor, Tensor], Tensor]:
    """The in-place out += a @ weight of a recurrence's steps, picked once per layer rather than per step:
    addmm_ for one run's (features, features) weight, baddbmm_ for K stacked runs' (K, features, features)
    (lyricgen.nn.stacked), one call for all K."""
    return Tensor.addmm_ if weight.dim() == 2 else Tensor.baddbmm_


def elman_steps(states: Tensor, w_hh_t: Tensor, relu: bool) -> None:
    """ElmanLayer's recurrence, in place: states[t + 1] holds step t's input projection and becomes its
    output, act(projection + states[t] W_hh^T); states may carry a member dimension after time."""
    if (loops := compiled.recurrence()) is not None:
        return loops.elman_steps(states, w_hh_t, relu)
    activate, h, multiply_add = (torch.relu_ if relu else torch.tanh_), states[0], multiply_add_for(w_hh_t)
    for state in states[1:].unbind(0):
        h = activate(multiply_add(state, h, w_hh_t))


def elman_steps_backward(grad_pre: Tensor, out: Tensor, w_hh: Tensor, relu: bool) -> Tensor:
    """elman_steps' backward through time, in place: grad_pre holds d loss / d each output and becomes d loss
    / d each pre-activation; returns d loss / d the first step's pre-activation (the carry into h0)."""
    # d act / d pre-activation for all steps at once (relu's outputs are >= 0: sign is its slope)
    slope = out.sign() if relu else 1 - out * out
    if (loops := compiled.recurrence()) is not None:
        return loops.elman_steps_backward(grad_pre, slope, w_hh)
    carry, multiply_add = None, multiply_add_for(w_hh)  # carry: d loss / d the next step's pre-activation
    for grad_t, slope_t in reversed(per_step(grad_pre, slope)):
        if carry is not None:
            multiply_add(grad_t, carry, w_hh)
        carry = grad_t.mul_(slope_t)
    return carry


class GRULayer(torch.autograd.Function):
    """One nn.GRU layer, for time-major inputs (see project_input), weights in nn.GRU's gate order (r, z, n):
    r, z = sigmoid(x W_i{r,z}^T + b_i{r,z} + h W_h{r,z}^T + b_h{r,z}),
    n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn)), h' = n + z * (h - n).
    Inside, the gates are reordered so that each step's operands are single strided blocks of one buffer
    laid out [n (x side), z, r, h_n = h W_hn^T + b_hn]: the x side is then (n, z, r), the h side (z, r, n)."""

    @staticmethod
    def forward(ctx, inputs: Tensor, h0: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor) -> Tensor:
        return gru_forward(ctx, inputs, h0, w_ih, w_hh, b_ih, b_hh, project_into=project_input)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor) -> tuple:
        return gru_backward(ctx, grad_out, rows=flat, project_backward=project_input_backward)


# From this many rows (batch x members) on, a GRU's tanh is computed through sigmoid: the doubled projections
# it needs pay for themselves only on a batch's worth of values.
SIGMOID_TANH_ROWS = 16


def gru_forward(
    ctx, inputs: Tensor, h0: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor, project_into: Callable
) -> Tensor:
    """GRULayer's forward, for one run or (nn.stacked) K runs: weights may carry a leading member dimension,
    and `project_into(inputs, weight, bias, out)` fills `out` with the x side for every step."""
    hidden, gates = w_hh.size(-1), w_hh.dim() - 2  # gates: the dimension holding the gate rows
    b_hz, b_hr, b_hn = reorder_gates(b_hh, "zrn", dim=gates).split(hidden, dim=-1)
    # Pre-activations without the h W^T terms; each step adds those and applies the activations in place.
    work = h0.new_empty(len(inputs), *h0.shape[:-1], 4 * hidden)
    x_weight = reorder_gates(w_ih, "nzr", dim=gates)
    x_bias = torch.cat([b_hn.new_zeros(b_hn.shape), b_hz, b_hr], dim=-1) + reorder_gates(b_ih, "nzr", dim=gates)
    # torch's CPU tanh is several times slower than its sigmoid: on a batch's worth of values n is computed as
    # 2 sigmoid(2a) - 1, with n's x side projected doubled and its h side added doubled.
    via_sigmoid = h0.size(-2) >= SIGMOID_TANH_ROWS
    if via_sigmoid:
        doubled_n = torch.cat([x_bias.new_full((hidden,), 2.0), x_bias.new_ones(2 * hidden)])
        x_weight, x_bias = x_weight * doubled_n.unsqueeze(1), x_bias * doubled_n
    project_into(inputs, x_weight, x_bias, out=work[..., : 3 * hidden])
    work[..., 3 * hidden :] = b_hn.unsqueeze(-2)
    states = with_initial_state(h0, len(inputs))
    gru_steps(work, states, h0, reorder_gates(w_hh, "zrn", dim=gates).transpose(-1, -2), via_sigmoid)
    ctx.save_for_backward(inputs, w_ih, w_hh, work, states)
    return states[1:]


def gru_steps(work: Tensor, states: Tensor, h0: Tensor, w_hh_t: Tensor, via_sigmoid: bool) -> None:
    """gru_forward's recurrence, in place: each step adds h W^T to its pre-activations in `work` and applies
    the activations there; states[t + 1] becomes step t's output."""
    if (loops := compiled.recurrence()) is not None:
        return loops.gru_steps(work, states, h0, w_hh_t, via_sigmoid)
    hidden = states.size(-1)
    n, z, r, h_n = work.split(hidden, dim=-1)
    steps = per_step(work[..., hidden:], work[..., hidden : 3 * hidden], n, z, r, h_n, states[1:])
    h, multiply_add = h0, multiply_add_for(w_hh_t)
    for zrh_t, zr_t, n_t, z_t, r_t, h_n_t, state in steps:
        multiply_add(zrh_t, h, w_hh_t)
        zr_t.sigmoid_()
        if via_sigmoid:
            n_t.addcmul_(r_t, h_n_t, value=2).sigmoid_().mul_(2).sub_(1)
        else:
            n_t.addcmul_(r_t, h_n_t).tanh_()
        h = torch.lerp(n_t, h, z_t, out=state)


def gru_steps_backward(grad_out: Tensor, work: Tensor, states: Tensor, w_hh: Tensor) -> tuple[Tensor, Tensor]:
    """GRULayer's backward through time, for one run or K stacked: d loss / d the pre-activations [n (x side),
    z, r, h_n] of every step, laid out as `work`, and d loss / d h0."""
    hidden = w_hh.size(-1)
    grads = work.new_empty(*work.shape[:-1], 4, hidden)
    carried = grad_out.clone(memory_format=torch.contiguous_format)  # d loss / d h_t, completed from the end
    z, h_side = work[..., hidden : 2 * hidden], grads.view_as(work)[..., hidden:]
    w_hh_zrn = reorder_gates(w_hh, "zrn", dim=w_hh.dim() - 2)
    steps_backward = gru_steps_backward_python
    if (loops := compiled.recurrence()) is not None:
        steps_backward = loops.gru_steps_backward
    # The factors are made a block of steps at a time, ~64k values per operand, so that they are still in
    # cache when the steps use them (what it bought: docs/speed.md).
    block = -(-(2**16) // (work[0].numel() // 4))
    seq = len(work)
    for start in reversed(range(0, seq, block)):
        end = min(start + block, seq)
        factors = gru_factors(work[start:end], states[start:end], hidden)
        grad_h0 = steps_backward(carried, z, grads, h_side, factors, w_hh_zrn, start, end)
    return grads.view_as(work), grad_h0


def gru_steps_backward_python(
    carried: Tensor, z: Tensor, grads: Tensor, h_side: Tensor, factors: Tensor, w_hh_zrn: Tensor, start: int, end: int
) -> Tensor:
    """gru_steps_backward's steps [start, end), from the end: each step's gradients are one multiply of the
    carried d loss / d h_t by its factors; returns d loss / d the state before `start` (at 0: d loss / d h0)."""
    multiply_add, first = multiply_add_for(w_hh_zrn), max(start - 1, 0)  # the block's steps and the one before
    steps = per_step(carried[first:end], z[first:end], grads[first:end], h_side[first:end])
    for step in range(end - 1, start - 1, -1):
        grad_h, z_t, grads_t, grad_h_side_t = steps[step - first]
        torch.mul(grad_h.unsqueeze(-2), factors[step - start], out=grads_t)
        grad_h_before = steps[step - 1 - first][0] if step else grad_h.new_zeros(grad_h.shape)
        multiply_add(grad_h_before.addcmul_(grad_h, z_t), grad_h_side_t, w_hh_zrn)
    return grad_h_before


def gru_backward(ctx, grad_out: Tensor, rows: Callable, project_backward: Callable) -> tuple:
    """GRULayer's backward, for one run or K stacked: `rows` lays a (seq, [K,] batch, features) tensor out
    as the rows the weight gradients sum over, and `project_backward` is project_input's backward."""
    inputs, w_ih, w_hh, work, states = ctx.saved_tensors
    grads, grad_h0 = gru_steps_backward(grad_out, work, states, w_hh)
    hidden, gates = w_hh.size(-1), w_hh.dim() - 2
    by_row, previous = rows(grads), rows(states[:-1])
    grad_h_side = by_row[..., hidden:]  # gates (z, r, n); the x side is gates (n, z, r)
    grad_inputs, grad_w_ih, grad_b_ih = project_backward(
        inputs, reorder_gates(w_ih, "nzr", dim=gates), by_row[..., : 3 * hidden], ctx.needs_input_grad[0]
    )
    grad_b_hh = torch.cat([grad_b_ih[..., hidden:], grad_h_side[..., 2 * hidden :].sum(-2)], dim=-1)  # z, r: x side's
    grad_w_hh = grad_h_side.transpose(-1, -2) @ previous
    return (
        grad_inputs,
        grad_h0,
        reorder_gates(grad_w_ih, "nzr", back=True, dim=gates),
        reorder_gates(grad_w_hh, "zrn", back=True, dim=gates),
        reorder_gates(grad_b_ih, "nzr", back=True, dim=gates),
        reorder_gates(grad_b_hh, "zrn", back=True, dim=gates),
    )


def gru_factors(work: Tensor, previous: Tensor, hidden: int) -> Tensor:
    """d h_t / d each pre-activation [n (x side), z, r, h_n] for the steps of `work` (GRULayer's buffer after
    forward) from their previous states: (steps, [members,] batch, 4, hidden). A step's gradients are then ONE
    multiply of the carried d loss / d h_t by its factors."""
    n, z, r, h_n = work.split(hidden, dim=-1)
    one_minus_z = 1 - z
    d_n = torch.addcmul(one_minus_z, one_minus_z, n * n, value=-1)  # (1 - z) (1 - n^2)
    d_h_n = d_n * r
    return torch.stack([d_n, (previous - n) * (z * one_minus_z), d_h_n * h_n * (1 - r), d_h_n], dim=-2)


def reorder_gates(tensor: Tensor, order: str, back: bool = False, dim: int = 0) -> Tensor:
    """nn.GRU's gate rows (r, z, n), along `dim`, in the given order, e.g. "nzr"; back=True: rows in `order`
    back to nn.GRU's."""
    source, target = (order, "rzn") if back else ("rzn", order)
    chunks = dict(zip(source, tensor.chunk(3, dim=dim), strict=True))
    return torch.cat([chunks[gate] for gate in target], dim=dim)


def project_input(inputs: Tensor, weight: Tensor, bias: Tensor, out: Tensor) -> None:
    """out (seq, batch, gates) = inputs @ weight^T + bias for all steps at once. inputs is either
    (seq, batch, features) or (seq, batch) integer indices of one-hot vectors: their product with weight
    is a lookup of weight's columns (plus bias), without building the one-hot tensor."""
    if inputs.is_floating_point():
        torch.addmm(bias, flat(inputs), weight.t(), out=flat(out))
    else:
        torch.index_select(weight.t() + bias, 0, inputs.reshape(-1), out=flat(out))


def project_input_backward(
    inputs: Tensor, weight: Tensor, grad_out: Tensor, needs_input_grad: bool
) -> tuple[Tensor | None, Tensor, Tensor]:
    """d loss / d (inputs or None, weight, bias) of project_input, given grad_out (seq * batch, gates)."""
    if not inputs.is_floating_point():  # one-hot rows: each adds its gradient to one column of weight
        # (index_add_ from a strided source is slow: a copy plus a contiguous one is faster)
        grad_table = grad_out.new_zeros(weight.t().shape).index_add_(0, inputs.reshape(-1), grad_out.contiguous())
        return None, grad_table.t(), grad_table.sum(0)  # every row took the bias once: a sum over V rows
    grad_inputs = (grad_out @ weight).view_as(inputs) if needs_input_grad else None
    return grad_inputs, grad_out.t() @ flat(inputs), grad_out.sum(0)


def recurrent_stack(rnn: nn.RNN | nn.GRU, inputs: Tensor, hidden: Tensor | None) -> tuple[Tensor, Tensor]:
    """What `rnn(inputs, hidden)` returns, for time-major inputs: (seq, batch, features), or (seq, batch)
    indices of one-hot vectors. Dropout between layers as nn.RNN applies it."""
    if hidden is None:
        hidden = rnn.weight_hh_l0.new_zeros(rnn.num_layers, inputs.size(1), rnn.hidden_size)
    relu = getattr(rnn, "nonlinearity", "tanh") == "relu"
    x, finals = inputs, []
    for layer in range(rnn.num_layers):
        if layer:
            x = dropout(x, rnn.dropout, rnn.training)
        w_ih, w_hh, b_ih, b_hh = rnn.all_weights[layer]
        if isinstance(rnn, nn.GRU):
            x = GRULayer.apply(x, hidden[layer], w_ih, w_hh, b_ih, b_hh)
        else:
            x = ElmanLayer.apply(x, hidden[layer], w_ih, w_hh, b_ih, b_hh, relu)
        finals.append(x[-1])
    return x, torch.stack(finals)


def dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """F.dropout, with the mask drawn 16 bits per element from 64-bit random words: torch's CPU dropout draws
    one Bernoulli sample per element, which made dropout a large share of a step of the paper's 4-layer
    model (docs/speed.md). The keep probability is rounded to a multiple of 1/65536 (0.8 stays 0.8 to
    within 1e-5) and kept values are scaled by its exact inverse, so the expectation is unchanged."""
    if not training or p == 0 or x.device.type != "cpu" or round((1 - p) * 65536) == 0:
        return F.dropout(x, p, training)
    return x * dropout_mask(x.shape, p, x.dtype)


def dropout_mask(shape: torch.Size, p: float, dtype: torch.dtype, generator: torch.Generator | None = None) -> Tensor:
    """dropout's scaled keep mask of `shape`, drawn from `generator` (the global RNG by default): a stacked
    run draws each member's masks from the member's own generator, as its solo run draws them."""
    keep = round((1 - p) * 65536)  # kept where a uniform 16-bit value is below this
    words = torch.empty(-(-shape.numel() // 4), dtype=torch.int64).random_(-(2**63), None, generator=generator)
    bits = words.view(torch.int16)[: shape.numel()].view(shape)
    return (bits < keep - 32768).to(dtype).mul_(65536 / keep)
