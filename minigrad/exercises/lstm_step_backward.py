"""Exercise lstm_step_backward: one LSTM step's backward, checked by finite differences and,
over three steps chained, against the step-numbered BPTT of ``kernels/bptt.py``."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from minigrad.exercises._base import Exercise, close, expect_tuple, numeric_grad
from minigrad.kernels import bptt

__all__ = ["EXERCISE", "solution"]  # the checks are reached through EXERCISE.checks

B, H = 2, 3
NAMES = ("x_proj_t", "h", "c", "w_hh", "b_hh")


def _inputs(seed=0, T=None):
    rng = np.random.default_rng(seed)
    lead = (T,) if T else ()
    return (rng.normal(size=lead + (B, 4 * H)), rng.normal(size=(B, H)),
            rng.normal(size=(B, H)), rng.normal(size=(4 * H, H)) * 0.5, rng.normal(size=4 * H))


def _step_grads(module, inputs, dh_new, dc_new):
    _, _, cache = module.lstm_step_forward(*inputs)
    grads = module.lstm_step_backward(dh_new, dc_new, cache)
    return expect_tuple("lstm_step_backward", grads, 5)


def _check_forward(module, inputs):
    h_new, c_new, _ = module.lstm_step_forward(*inputs)
    _, h_ref, c_ref, _ = bptt.lstm_forward(inputs[0][None], *inputs[1:])
    close("h_new (the forward, which you should not need to change)", h_new, h_ref)
    close("c_new (the forward, which you should not need to change)", c_new, c_ref)


def _check_numeric(module, dc_weight):
    inputs = _inputs(seed=1)
    _check_forward(module, inputs)
    rng = np.random.default_rng(2)
    wh, wc = rng.normal(size=(B, H)), rng.normal(size=(B, H)) * dc_weight
    grads = _step_grads(module, inputs, wh, wc)

    def loss(*args):
        h_new, c_new, _ = bptt.lstm_forward(args[0][None], *args[1:])[1:]
        return float(np.sum(wh * h_new) + np.sum(wc * c_new))

    for k, name in enumerate(NAMES):
        close(f"the gradient of {name}", grads[k], numeric_grad(loss, inputs, k), rtol=1e-4,
              atol=1e-6)


def check_from_h(module):
    _check_numeric(module, dc_weight=0.0)


def check_from_h_and_c(module):
    _check_numeric(module, dc_weight=1.0)


def check_three_steps(module):
    """The step backward chained over T = 3 steps equals the whole layer's BPTT."""
    x_proj, h0, c0, w_hh, b_hh = _inputs(seed=3, T=3)
    d_out = np.random.default_rng(4).normal(size=(3, B, H))
    caches, h, c = [], h0, c0
    for t in range(3):
        h, c, cache = module.lstm_step_forward(x_proj[t], h, c, w_hh, b_hh)
        caches.append(cache)
    dx_proj = np.zeros_like(x_proj)
    dw_hh, db_hh = np.zeros_like(w_hh), np.zeros_like(b_hh)
    dh, dc = np.zeros((B, H)), np.zeros((B, H))
    for t in reversed(range(3)):
        dx_proj[t], dh, dc, dw, db = expect_tuple(
            "lstm_step_backward", module.lstm_step_backward(dh + d_out[t], dc, caches[t]), 5)
        dw_hh, db_hh = dw_hh + dw, db_hh + db
    _, _, _, cache = bptt.lstm_forward(x_proj, h0, c0, w_hh, b_hh)
    ref = bptt.lstm_backward(d_out, np.zeros((B, H)), np.zeros((B, H)), cache)
    for name, got, expected in zip(("x_proj", "h0", "c0", "w_hh", "b_hh"),
                                   (dx_proj, dh, dc, dw_hh, db_hh), ref):
        close(f"over 3 steps, the gradient of {name}", got, expected, rtol=1e-6)


def solution():
    """kernels/bptt.py's LSTM forward and backward, one step long, under the stub's names."""
    def lstm_step_forward(x_proj_t, h, c, w_hh, b_hh):
        _, h_new, c_new, cache = bptt.lstm_forward(x_proj_t[None], h, c, w_hh, b_hh)
        return h_new, c_new, cache

    def lstm_step_backward(dh_new, dc_new, cache):
        dx_proj, dh, dc, dw_hh, db_hh = bptt.lstm_backward(
            dh_new[None], np.zeros_like(dh_new), dc_new, cache)
        return dx_proj[0], dh, dc, dw_hh, db_hh

    return SimpleNamespace(lstm_step_forward=lstm_step_forward,
                           lstm_step_backward=lstm_step_backward)


EXERCISE = Exercise(
    name="lstm_step_backward",
    title="backpropagation through one LSTM step (NumPy), chained into BPTT",
    lesson="07-lstm-bptt.md",
    solution_in="kernels/bptt.py: lstm_backward",
    checks=(
        ("gradients of all five inputs, loss through h_new only", check_from_h),
        ("gradients of all five inputs, loss through h_new and c_new", check_from_h_and_c),
        ("three steps chained equal kernels/bptt.py's BPTT", check_three_steps),
    ),
    solution=solution,
)
