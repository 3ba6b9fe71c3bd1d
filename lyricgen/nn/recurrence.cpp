// The per-character loops of lyricgen.nn.kernels' recurrences, in C++: the same ATen calls in the same order
// as kernels.py's Python loops (so the same bits), without the Python interpreter between them. Built by
// lyricgen.nn.compiled (`make install`, where a C++ compiler exists); without it kernels.py runs its loops.
// Weights may carry a leading member dimension (lyricgen.nn.stacked): then each step is one baddbmm.
#include <torch/extension.h>

using at::Tensor;

namespace {

// out += a @ weight: addmm_ for one run's (features, features) weight, baddbmm_ for K stacked runs'.
void multiply_add(const Tensor& out, const Tensor& a, const Tensor& weight) {
  if (weight.dim() == 2) {
    out.addmm_(a, weight);
  } else {
    out.baddbmm_(a, weight);
  }
}

// kernels.elman_steps: states[t + 1] holds step t's input projection and becomes act(it + states[t] W_hh^T).
void elman_steps(Tensor states, Tensor w_hh_t, bool relu) {
  auto steps = states.unbind(0);
  Tensor h = steps[0];
  for (size_t t = 1; t < steps.size(); ++t) {
    multiply_add(steps[t], h, w_hh_t);
    h = relu ? steps[t].relu_() : steps[t].tanh_();
  }
}

// kernels.elman_steps_backward's loop: grad_pre becomes d loss / d each pre-activation; returns the carry.
Tensor elman_steps_backward(Tensor grad_pre, Tensor slope, Tensor w_hh) {
  auto grads = grad_pre.unbind(0);
  auto slopes = slope.unbind(0);
  Tensor carry;
  for (size_t t = grads.size(); t-- > 0;) {
    if (carry.defined()) {
      multiply_add(grads[t], carry, w_hh);
    }
    carry = grads[t].mul_(slopes[t]);
  }
  return carry;
}

// kernels.gru_forward's loop over `work` (seq, ..., 4 hidden) laid out [n (x side), z, r, h_n].
void gru_steps(Tensor work, Tensor states, Tensor h0, Tensor w_hh_t, bool via_sigmoid) {
  const int64_t hidden = states.size(-1);
  auto outputs = states.unbind(0);
  Tensor h = h0;
  for (int64_t t = 0; t < work.size(0); ++t) {
    Tensor step = work.select(0, t);
    Tensor zrh = step.narrow(-1, hidden, 3 * hidden), zr = step.narrow(-1, hidden, 2 * hidden);
    Tensor n = step.narrow(-1, 0, hidden), z = step.narrow(-1, hidden, hidden);
    Tensor r = step.narrow(-1, 2 * hidden, hidden), h_n = step.narrow(-1, 3 * hidden, hidden);
    multiply_add(zrh, h, w_hh_t);
    zr.sigmoid_();
    if (via_sigmoid) {
      n.addcmul_(r, h_n, 2).sigmoid_().mul_(2).sub_(1);
    } else {
      n.addcmul_(r, h_n).tanh_();
    }
    h = at::lerp_out(outputs[t + 1], n, h, z);  // h' = n + z (h - n), into the state buffer
  }
}

// kernels.gru_steps_backward's loop over steps [start, end) from the end: returns d loss / d the state
// before `start` (when start is 0: d loss / d h0).
Tensor gru_steps_backward(
    Tensor carried, Tensor z, Tensor grads, Tensor h_side, Tensor factors, Tensor w_hh_zrn, int64_t start,
    int64_t end) {
  Tensor grad_h_before;
  for (int64_t step = end - 1; step >= start; --step) {
    Tensor grad_h = carried.select(0, step);
    Tensor grads_t = grads.select(0, step);
    at::mul_out(grads_t, grad_h.unsqueeze(-2), factors.select(0, step - start));
    grad_h_before = step ? carried.select(0, step - 1) : at::zeros_like(grad_h);
    grad_h_before.addcmul_(grad_h, z.select(0, step));
    multiply_add(grad_h_before, h_side.select(0, step), w_hh_zrn);
  }
  return grad_h_before;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("elman_steps", &elman_steps);
  m.def("elman_steps_backward", &elman_steps_backward);
  m.def("gru_steps", &gru_steps);
  m.def("gru_steps_backward", &gru_steps_backward);
}
