"""Backpropagation through time (BPTT) for one LSTM and one GRU layer, in plain NumPy.

The thing to open to learn BPTT: a forward and a backward function per layer, every step
numbered, every value a fresh array (no in-place updates, no preallocated buffers), gates in
PyTorch's order (LSTM i, f, g, o; GRU r, z, n). It is also what the fused layers compute:
``kernels/lstm.py`` and ``kernels/gru.py`` (their NumPy branches and their CUDA step kernels)
run these same steps, rearranged for speed, and ``tests/kernels/test_bptt.py`` checks their
forward and every input gradient against these functions in float64.

Why a module of its own, in ``kernels/``: it is NumPy on arrays with the backward written by
hand, like the kernels and unlike the composite references (``minigrad.references``: ops on
Tensors, differentiated by autograd), and the kernels' comments point here step by step.

The layer as the kernels see it: the input projection of all steps, ``x_proj = x W_ih^T +
b_ih`` (T, B, G*H), is one GEMM outside the recurrence (its gradient ``dx_proj`` flows back to
``x``, ``W_ih`` and ``b_ih`` through that GEMM); the recurrence takes ``x_proj``, the initial
state ``h0`` (B, H) (and ``c0``), ``W_hh`` (G*H, H) and ``b_hh`` (G*H,).

Left out, to keep the steps readable: the padding mask of ``lengths`` (a padded step keeps the
state and passes its gradient through unchanged), the reverse direction (the same recurrence
over the reversed sequence) and a missing ``b_hh``. The fused layers handle all three, and are
tested on them against the composite references.

Example:
    >>> rng = np.random.default_rng(0)
    >>> T, B, H = 3, 2, 4
    >>> x_proj, h0, c0 = rng.normal(size=(T, B, 4 * H)), np.zeros((B, H)), np.zeros((B, H))
    >>> w_hh, b_hh = rng.normal(size=(4 * H, H)), np.zeros(4 * H)
    >>> out, h_n, c_n, cache = lstm_forward(x_proj, h0, c0, w_hh, b_hh)
    >>> grads = lstm_backward(np.ones_like(out), np.zeros_like(h_n), np.zeros_like(c_n), cache)
    >>> [g.shape for g in grads]  # dx_proj, dh0, dc0, dW_hh, db_hh
    [(3, 2, 16), (2, 4), (2, 4), (16, 4), (16,)]
"""

from __future__ import annotations

import numpy as np


def sigmoid(x):
    """1 / (1 + exp(-x))."""
    return 1 / (1 + np.exp(-x))


# ---------------------------------------------------------------------------- LSTM


def lstm_forward(x_proj, h0, c0, w_hh, b_hh):
    """The LSTM recurrence: ``(out (T, B, H), h_n, c_n, cache)``."""
    H = h0.shape[1]
    h, c = h0, c0
    out, steps = [], []
    for t in range(x_proj.shape[0]):
        a = x_proj[t] + h @ w_hh.T + b_hh  # 1. pre-activations of the four gates (B, 4H)
        i = sigmoid(a[:, :H])  # 2. input gate
        f = sigmoid(a[:, H:2 * H])  # forget gate
        g = np.tanh(a[:, 2 * H:3 * H])  # candidate cell
        o = sigmoid(a[:, 3 * H:])  # output gate
        c_new = f * c + i * g  # 3. the new cell state
        h_new = o * np.tanh(c_new)  # 4. the new hidden state, the step's output
        steps.append((h, c, i, f, g, o, c_new))  # what the backward needs of this step
        h, c = h_new, c_new
        out.append(h)
    return np.stack(out), h, c, (steps, w_hh)


def lstm_backward(d_out, dh_n, dc_n, cache):
    """The gradients of every input from those of every output (``d_out`` (T, B, H), ``dh_n``,
    ``dc_n``): ``(dx_proj, dh0, dc0, dW_hh, db_hh)``."""
    steps, w_hh = cache
    dx_proj = np.zeros(d_out.shape[:2] + (w_hh.shape[0],), dtype=d_out.dtype)
    dw_hh, db_hh = np.zeros_like(w_hh), np.zeros(w_hh.shape[0], dtype=w_hh.dtype)
    dh, dc = dh_n, dc_n  # what the steps after this one send back: at first, the final states'
    for t in reversed(range(len(steps))):
        h, c, i, f, g, o, c_new = steps[t]
        dh = dh + d_out[t]  # 1. h_t is the step's output and the next step's input
        tc = np.tanh(c_new)
        dc = dc + dh * o * (1 - tc**2)  # 2. c_t feeds h_t = o tanh(c_t) and the next step
        di, df, dg, do = dc * g, dc * c, dc * i, dh * tc  # 3. through c_t = f c + i g, and h_t
        da = np.concatenate([di * i * (1 - i), df * f * (1 - f),  # 4. through the sigmoids
                             dg * (1 - g**2), do * o * (1 - o)], axis=1)  # and the tanh
        dx_proj[t] = da  # 5. a = x_proj[t] + h W_hh^T + b_hh: x_proj[t] gets da as is;
        dw_hh = dw_hh + da.T @ h  # W_hh and b_hh serve every step: their gradients add up
        db_hh = db_hh + da.sum(axis=0)
        dh = da @ w_hh  # 6. back to the previous step: h through the pre-activations,
        dc = dc * f  # c through the forget gate
    return dx_proj, dh, dc, dw_hh, db_hh


# ---------------------------------------------------------------------------- GRU


def gru_forward(x_proj, h0, w_hh, b_hh):
    """The GRU recurrence: ``(out (T, B, H), h_n, cache)``."""
    H = h0.shape[1]
    h = h0
    out, steps = [], []
    for t in range(x_proj.shape[0]):
        x = x_proj[t]
        p = h @ w_hh.T + b_hh  # 1. the recurrent projection (B, 3H)
        r = sigmoid(x[:, :H] + p[:, :H])  # 2. reset gate
        z = sigmoid(x[:, H:2 * H] + p[:, H:2 * H])  # 3. update gate
        n = np.tanh(x[:, 2 * H:] + r * p[:, 2 * H:])  # 4. candidate (b_hn inside r * ...)
        h_new = (1 - z) * n + z * h  # 5. the new state, the step's output
        steps.append((h, p, r, z, n))  # what the backward needs of this step
        h = h_new
        out.append(h)
    return np.stack(out), h, (steps, w_hh)


def gru_backward(d_out, dh_n, cache):
    """The gradients of every input from those of every output (``d_out`` (T, B, H),
    ``dh_n``): ``(dx_proj, dh0, dW_hh, db_hh)``."""
    steps, w_hh = cache
    H = w_hh.shape[1]
    dx_proj = np.zeros(d_out.shape[:2] + (w_hh.shape[0],), dtype=d_out.dtype)
    dw_hh, db_hh = np.zeros_like(w_hh), np.zeros(w_hh.shape[0], dtype=w_hh.dtype)
    dh = dh_n  # what the steps after this one send back: at first, the final state's
    for t in reversed(range(len(steps))):
        h, p, r, z, n = steps[t]
        dh = dh + d_out[t]  # 1. h_t is the step's output and the next step's input
        dn, dz = dh * (1 - z), dh * (h - n)  # 2. through h_t = (1 - z) n + z h
        dn_pre = dn * (1 - n**2)  # 3. through the candidate's tanh
        dr = dn_pre * p[:, 2 * H:]  # 4. through x_n + r p_n
        dr_pre, dz_pre = dr * r * (1 - r), dz * z * (1 - z)  # 5. through the sigmoids
        dx_proj[t] = np.concatenate([dr_pre, dz_pre, dn_pre], axis=1)  # 6. x_proj[t] as is,
        dp = np.concatenate([dr_pre, dz_pre, dn_pre * r], axis=1)  # p with r on its n part
        dw_hh = dw_hh + dp.T @ h  # W_hh and b_hh serve every step: their gradients add up
        db_hh = db_hh + dp.sum(axis=0)
        dh = dh * z + dp @ w_hh  # 7. back to the previous step: directly (z h) and through p
    return dx_proj, dh, dw_hh, db_hh
