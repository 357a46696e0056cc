"""Exercise lstm_step_backward: backpropagation through one LSTM time step, in NumPy.

Lesson: docs/course/07-lstm-bptt.md. minigrad's own answer: the loop body of
``lstm_backward`` in kernels/bptt.py (steps 2 to 6).

The forward is written for you. Gates in PyTorch's order i, f, g, o; ``x_proj_t`` (B, 4H) is
the step's input already projected (x W_ih^T + b_ih), ``h`` and ``c`` (B, H) the previous
state, ``w_hh`` (4H, H) and ``b_hh`` (4H,) the recurrent weights:

    a = x_proj_t + h @ w_hh.T + b_hh               (B, 4H)
    i, f, g, o = sigmoid(a_i), sigmoid(a_f), tanh(a_g), sigmoid(a_o)
    c_new = f * c + i * g
    h_new = o * tanh(c_new)

Write the backward: given ``dh_new`` and ``dc_new`` (B, H), the gradients of the loss with
respect to ``h_new`` and ``c_new`` (``dc_new`` is what the next step sends back through its
forget gate), return the gradients of ``x_proj_t``, ``h``, ``c``, ``w_hh`` and ``b_hh``.
Remember that ``c_new`` reaches the loss two ways: directly (``dc_new``) and through ``h_new``.

Check your work with ``minigrad exercises check lstm_step_backward``.
"""

import numpy as np


def sigmoid(x):
    """1 / (1 + exp(-x))."""
    return 1 / (1 + np.exp(-x))


def lstm_step_forward(x_proj_t, h, c, w_hh, b_hh):
    """One LSTM step: ``(h_new, c_new, cache)``, the cache being what the backward needs."""
    H = h.shape[1]
    a = x_proj_t + h @ w_hh.T + b_hh
    i = sigmoid(a[:, :H])
    f = sigmoid(a[:, H:2 * H])
    g = np.tanh(a[:, 2 * H:3 * H])
    o = sigmoid(a[:, 3 * H:])
    c_new = f * c + i * g
    h_new = o * np.tanh(c_new)
    cache = (h, c, w_hh, i, f, g, o, c_new)
    return h_new, c_new, cache


def lstm_step_backward(dh_new, dc_new, cache):
    """``(dx_proj_t (B, 4H), dh (B, H), dc (B, H), dw_hh (4H, H), db_hh (4H,))``."""
    h, c, w_hh, i, f, g, o, c_new = cache
    raise NotImplementedError("write lstm_step_backward: return (dx_proj_t, dh, dc, dw_hh, db_hh)")
