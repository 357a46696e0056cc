"""Fused LSTM layer: the whole recurrence of one layer and direction, forward and backward
through time, as one ``Function``.

What is fused: everything :func:`minigrad.references.lstm_layer` (the composite reference)
does after the input projection: per step the recurrent GEMM ``h @ W_hh^T``, the gate activations,
the cell and hidden updates and the ``lengths`` mask; and the backward through time. The input
projection ``x W_ih^T + b_ih`` stays one GEMM over all ``T * B`` rows, outside (in ``LSTM``).

Forward, per step (gates in PyTorch's order i, f, g, o)::

    a = x_proj[t] + b_hh + h @ W_hh^T           (B, 4H)
    i, f, o = sigmoid(a_i, a_f, a_o);  g = tanh(a_g)
    c' = f * c + i * g;  h' = o * tanh(c')        (padded rows keep h, c)

Backward, per step, from dh (upstream + carried) and dc: the steps of
``kernels/bptt.py``'s ``lstm_backward``, the readable NumPy BPTT this kernel is tested
against::

    dc += dh * o * (1 - tanh(c')^2)                                               (steps 1-2)
    da = [dc * g * i(1-i), dc * c * f(1-f), dc * i * (1-g^2), dh * tanh(c') * o(1-o)]  (3-4)
    dc <- dc * f;  dh <- da @ W_hh                                                     (6)

and after the loop, ONE GEMM for the weights over all steps (bptt.py's step 5 summed at once):
``dW_hh = da_all^T @ h_prev_all`` (``(4H, T*B) @ (T*B, H)``), ``db_hh = sum(da_all)``,
``dx_proj = da_all``.

NumPy: the activations, cell states and tanh(c) of every step are kept (``(T, B, 4H)`` and
``(T+1, B, H)`` buffers) and the backward never recomputes a transcendental. Every gate is a
sigmoid of a scaled pre-activation (``tanh(x) = 2 sigmoid(2x) - 1``), so one ``exp`` pass per
step activates all four gates: the pre-activations are kept pre-multiplied by ``-1`` (i, f, o)
and ``-2`` (g), by scaling ``x_proj + b_hh`` once and ``W_hh^T`` once. All step maths is
in place (``out=``); nothing leaves the input dtype.

CUDA (``lstm.cu``): per step one cuBLAS GEMM (CuPy ``matmul``) and one fused gate kernel; the
backward likewise, then the same single weight GEMM. The kernels get the whole (T, ...) buffers
and the step index, so the host makes no per-step views for them (on a GPU the per-step host
work, not the GPU's, bounds a small recurrent layer).
"""

from __future__ import annotations

import numpy as np

from minigrad import references
from minigrad.tensor import Tensor

from ._rnn import RecurrentFn, sigmoid_of_negated, tanh_into

CUDA_KERNELS = ("lstm_step_fwd", "lstm_step_bwd")


class LSTMFn(RecurrentFn, kernel="lstm"):
    """(x_proj, h0, c0, W_hh[, b_hh]) -> (output, h_n, c_n) for one LSTM layer and direction;
    the gradients of all inputs by backpropagation through time (see the module docstring)."""

    N_ARRAYS = 4
    CUDA_SOURCE = "lstm"
    CUDA_KERNELS = CUDA_KERNELS

    def reference(self, x_proj, h0, c0, w_hh, b_hh=None):
        return references.lstm_layer(x_proj, h0, c0, w_hh, b_hh, self.mask, self.reverse)

    # ---------------------------------------------------------------- NumPy
    def _forward_numpy(self, x_proj, h0, c0, w_hh, b_hh=None):
        T, B, G = x_proj.shape
        H = G // 4
        dt = x_proj.dtype
        # NOTE: tanh(x) = 2 sigmoid(2x) - 1, and sigmoid(x) = 1 / (1 + exp(-x)): scaling the
        # pre-activations by -1 (i, f, o) and -2 (g) lets one exp pass activate all gates
        neg = np.full(G, -1.0, dtype=dt)
        neg[2 * H:3 * H] = -2.0
        acts = np.empty((T, B, G), dtype=dt)  # pre-activations, then activations i, f, g, o
        if b_hh is not None:
            np.add(self._step_order(x_proj), b_hh, out=acts)
            acts *= neg
        else:
            np.multiply(self._step_order(x_proj), neg, out=acts)
        # (H, 4H), scaled like the pre-activations; row-major, the order the per-step GEMM
        # reads fastest
        w_t = np.multiply(w_hh.T, neg, order="C")
        hs = np.empty((T + 1, B, H), dtype=dt)  # hs[k] is the state entering step k
        cs = np.empty((T + 1, B, H), dtype=dt)
        tcs = np.empty((T, B, H), dtype=dt)  # tanh(c) of every step
        hs[0], cs[0] = h0, c0
        hw = np.empty((B, G), dtype=dt)
        tmp = np.empty((B, H), dtype=dt)
        pad, any_pad = self._padded_rows()
        with np.errstate(over="ignore"):  # exp(+large) = inf gives sigmoid 0, as it should
            for k in range(T):
                a = acts[k]
                np.matmul(hs[k], w_t, out=hw)
                a += hw
                sigmoid_of_negated(a)  # sigmoid of every gate (g: of twice its input)
                i, f, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
                g *= 2
                g -= 1  # tanh
                c = cs[k + 1]
                np.multiply(f, cs[k], out=c)
                np.multiply(i, g, out=tmp)
                c += tmp
                tc = tcs[k]
                tanh_into(c, tc)
                np.multiply(o, tc, out=hs[k + 1])
                if any_pad and any_pad[k]:  # padded rows keep their state
                    np.copyto(hs[k + 1], hs[k], where=pad[k])
                    np.copyto(c, cs[k], where=pad[k])
        self.saved = (acts, hs, cs, tcs, w_hh)
        return self._output(hs), hs[T], cs[T]

    def _backward_numpy(self, gy, gh_n, gc_n):
        acts, hs, cs, tcs, w_hh = self.saved
        T, B, G = acts.shape
        H = G // 4
        dt = acts.dtype
        gy = self._upstream(gy)
        pad, any_pad = self._padded_rows()
        da_all = np.empty((T, B, G), dtype=dt)  # d(pre-activation) of every step
        dh = np.array(gh_n, dtype=dt)  # copies: updated in place below
        dc = np.array(gc_n, dtype=dt)
        dh_next = np.empty((B, H), dtype=dt)
        dct = np.empty((B, H), dtype=dt)
        tmp = np.empty((B, H), dtype=dt)
        deriv = np.empty((B, G), dtype=dt)
        for k in range(T - 1, -1, -1):  # bptt.lstm_backward's steps 1-6, in place
            dh += gy[k]
            a, da, tc = acts[k], da_all[k], tcs[k]
            i, f, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
            # dc_total = dc + dh * o * (1 - tanh(c)^2)
            np.multiply(tc, tc, out=tmp)
            np.subtract(1, tmp, out=tmp)
            tmp *= o
            tmp *= dh
            np.add(dc, tmp, out=dct)
            # gradients at the activations, then through them
            np.multiply(dct, g, out=da[:, :H])  # d i
            np.multiply(dct, cs[k], out=da[:, H:2 * H])  # d f
            np.multiply(dct, i, out=da[:, 2 * H:3 * H])  # d g
            np.multiply(dh, tc, out=da[:, 3 * H:])  # d o
            np.subtract(1, a, out=deriv)
            deriv *= a  # sigmoid' = s (1 - s) for i, f, o ...
            dg = deriv[:, 2 * H:3 * H]
            np.multiply(g, g, out=dg)
            np.subtract(1, dg, out=dg)  # ... tanh' = 1 - g^2 for g
            da *= deriv
            padded = any_pad is not None and any_pad[k]
            if padded:  # padded rows: no gate gradient; dh and dc pass through unchanged
                np.copyto(da, 0, where=pad[k])
                np.multiply(dct, f, out=tmp)
                np.copyto(tmp, dc, where=pad[k])
                dc, tmp = tmp, dc
            else:
                np.multiply(dct, f, out=dc)  # dc of the previous step
            np.matmul(da, w_hh, out=dh_next)  # (B, 4H) @ (4H, H)
            if padded:
                np.copyto(dh_next, dh, where=pad[k])
            dh, dh_next = dh_next, dh
        return self._input_grads(da_all, hs, da_all, (dh, dc))

    # ---------------------------------------------------------------- CUDA
    def _forward_cuda(self, x_proj, h0, c0, w_hh, b_hh=None):
        xp = self.xp
        T, B, G = x_proj.shape
        H = G // 4
        dt = x_proj.dtype
        xs, bias, w_t, valid, geometry = self._inputs_cuda(x_proj, w_hh, b_hh)
        acts = xp.empty((T, B, G), dtype=dt)
        hs = xp.empty((T + 1, B, H), dtype=dt)
        cs = xp.empty((T + 1, B, H), dtype=dt)
        tcs = xp.empty((T, B, H), dtype=dt)
        hs[0], cs[0] = h0, c0
        hw = xp.empty((B, G), dtype=dt)  # h @ W_hh^T of the current step
        args = (xs, hw, bias, cs, hs, valid, acts, tcs, np.int32(B), np.int32(H))
        self._forward_steps_cuda("lstm_step_fwd", geometry, args, hs, w_t, [hw] * T)
        self.saved = (acts, hs, cs, tcs, w_hh, valid, geometry)
        return self._output(hs), hs[T], cs[T]

    def _backward_cuda(self, gy, gh_n, gc_n):
        xp = self.xp
        acts, hs, cs, tcs, w_hh, valid, geometry = self.saved
        T, B, G = acts.shape
        gy = xp.ascontiguousarray(self._upstream(gy))
        da_all = xp.empty((T, B, G), dtype=acts.dtype)
        dc = xp.array(gc_n, dtype=acts.dtype)  # a copy: updated in place
        # per step, one kernel: dh = dh_mm + dh_keep + gy[k]; gate gradients; dc <- dc_prev;
        # dh_keep <- dh on padded rows (0 elsewhere)
        args = (gy, acts, cs, tcs, valid, dc, da_all, np.int32(B), np.int32(G // 4))
        dh = self._backward_steps_cuda("lstm_step_bwd", geometry, args, da_all, w_hh, gh_n)
        return self._input_grads(da_all, hs, da_all, (dh, dc))


def apply(x_proj: Tensor, h0: Tensor, c0: Tensor, w_hh: Tensor, b_hh, mask, reverse=False):
    """The fused LSTM layer; the arguments and results of ``references.lstm_layer``."""
    inputs = (x_proj, h0, c0, w_hh) if b_hh is None else (x_proj, h0, c0, w_hh, b_hh)
    return LSTMFn.apply(*inputs, mask=mask, reverse=reverse)
