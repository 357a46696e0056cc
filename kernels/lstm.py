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

NumPy: the activations, cell states and tanh(c) of every step are kept and the backward never
recomputes a transcendental. Every per-step buffer is laid out units-major, batch last:
``(4H, B)`` gates, ``(H, B)`` states, so each gate is one contiguous block; the recurrent GEMM
is ``W_hh (4H, H) @ h (H, B)``. (NumPy runs an elementwise pass over a row slice such as
``a[:, H:2H]`` of a ``(B, 4H)`` array several times slower than over a contiguous block of the
same size.) ``x_proj`` is transposed into that layout once; each step's gradient goes back
to rows in place, once its GEMM has read it. One ``tanh`` pass activates all four gates: the
i, f, o pre-activations are kept halved (input, bias and weight rows scaled once) and
``sigmoid(x) = (tanh(x / 2) + 1) / 2`` (rounded as minigrad's sigmoid). The backward
computes everything that does not depend on the carried dh, dc (the gates' derivatives times
the other factors of each gate's gradient) for all steps at once, in a few large passes, so
a step is five small products and its GEMM. All step maths is in place (``out=``); nothing
leaves the input dtype.

CUDA (``lstm.cu``): per step one cuBLAS GEMM (CuPy ``matmul``) and one fused gate kernel; the
backward likewise, then the same single weight GEMM. The kernels get the whole (T, ...) buffers
and the step index, so the host makes no per-step views for them (on a GPU the per-step host
work, not the GPU's, bounds a small recurrent layer).
"""

from __future__ import annotations

import numpy as np

from minigrad import references
from minigrad.tensor import Tensor

from ._numpy import ROW_CHUNK, flat_chunks
from ._rnn import RecurrentFn, gate_column

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
        # sigmoid(x) = (tanh(x / 2) + 1) / 2: the i, f, o pre-activations are kept halved
        # (input, bias and weight rows scaled once), so one tanh pass activates all four gates
        half = gate_column(dt, (0.5, 0.5, 1.0, 0.5))  # (4, 1), per gate: i, f, g, o
        one = gate_column(dt, (1.0, 1.0, 0.0, 1.0))  # (tanh + 1) * half: tanh -> sigmoid
        acts = np.empty((T, G, B), dtype=dt)  # pre-activations, then activations i, f, g, o
        # NOTE: a plain transposing copy, then the scaling as a contiguous pass: scaling
        # during the copy made it twice as slow
        np.copyto(acts, self._step_order(x_proj).transpose(0, 2, 1))
        by_gate = acts.reshape(T, 4, H * B)
        by_gate *= half
        if b_hh is not None:
            acts += np.repeat(b_hh.reshape(4, H) * half, B, axis=1).reshape(G, B)
        w_s = np.multiply(w_hh.reshape(4, H, H), half[:, :, None]).reshape(G, H)
        hs = np.empty((T + 1, H, B), dtype=dt)  # hs[k] is the state entering step k
        cs = np.empty((T + 1, H, B), dtype=dt)
        tcs = np.empty((T, H, B), dtype=dt)  # tanh(c) of every step
        hs[0], cs[0] = h0.T, c0.T
        hw = np.empty((G, B), dtype=dt)
        tmp = np.empty((H, B), dtype=dt)
        pad, any_pad = self._padded_columns()
        for k in range(T):
            a = acts[k]
            np.matmul(w_s, hs[k], out=hw)
            a += hw
            np.tanh(a, out=a)
            gates = a.reshape(4, H * B)
            gates += one
            gates *= half  # i, f, o: sigmoids, rounded as minigrad's sigmoid; g: tanh
            i, f, g, o = a[:H], a[H:2 * H], a[2 * H:3 * H], a[3 * H:]
            c = cs[k + 1]
            np.multiply(f, cs[k], out=c)
            np.multiply(i, g, out=tmp)
            c += tmp
            tc = tcs[k]
            np.tanh(c, out=tc)
            np.multiply(o, tc, out=hs[k + 1])
            if any_pad and any_pad[k]:  # padded rows keep their state
                np.copyto(hs[k + 1], hs[k], where=pad[k])
                np.copyto(c, cs[k], where=pad[k])
        self.saved = (acts, hs, cs, tcs, w_hh)
        return self._output(hs.transpose(0, 2, 1)), hs[T].T, cs[T].T

    def _backward_numpy(self, gy, gh_n, gc_n):
        acts, hs, cs, tcs, w_hh = self.saved
        T, G, B = acts.shape
        H = G // 4
        dt = acts.dtype
        pad, any_pad = self._padded_columns()
        # everything that does not depend on the carried dh, dc, over all steps at once:
        # d(pre-activation) = [dc * g i(1-i), dc * c f(1-f), dc * i (1-g^2), dh * tc o(1-o)]
        # and dc += dh * o (1 - tc^2); the multipliers are kept in da_all and dc_from_dh
        da_all = np.empty((T, G, B), dtype=dt)
        dc_from_dh = np.empty((T, H, B), dtype=dt)
        for steps in flat_chunks(T, max(1, ROW_CHUNK // (G * B))):
            s, m, tc, mc = acts[steps], da_all[steps], tcs[steps], dc_from_dh[steps]
            i, g, o = s[:, :H], s[:, 2 * H:3 * H], s[:, 3 * H:]
            for block in (slice(0, 2 * H), slice(3 * H, G)):  # i, f and o
                np.subtract(1, s[:, block], out=m[:, block])
                m[:, block] *= s[:, block]  # s (1 - s): the sigmoids' derivative
            m_g = m[:, 2 * H:3 * H]
            np.multiply(g, g, out=m_g)
            np.subtract(1, m_g, out=m_g)
            m_g *= i
            m[:, :H] *= g
            m[:, H:2 * H] *= cs[steps]  # the cell state entering each step
            m[:, 3 * H:] *= tc
            np.multiply(tc, tc, out=mc)
            np.subtract(1, mc, out=mc)
            mc *= o
            if any_pad:  # padded rows: no gate gradient, dc passes through
                np.copyto(m, 0, where=pad[steps])
                np.copyto(mc, 0, where=pad[steps])
        gy = self._upstream(gy)
        gy = gy.transpose(0, 2, 1) if gy.any() else None  # an unused output: zeros
        dh = np.array(gh_n.T, dtype=dt, order="C")  # copies: updated in place below
        dc = np.array(gc_n.T, dtype=dt, order="C")
        dh_next = np.empty((H, B), dtype=dt)
        dct = np.empty((H, B), dtype=dt)
        w = np.ascontiguousarray(w_hh.T)  # (H, 4H)
        row = np.empty((B, G), dtype=dt)
        for k in range(T - 1, -1, -1):  # bptt.lstm_backward's steps 1-6, in place
            if gy is not None:
                dh += gy[k]
            da = da_all[k]
            np.multiply(dh, dc_from_dh[k], out=dct)
            dct += dc  # the cell's gradient, dc + dh o (1 - tanh(c)^2)
            d_ifg = da[:3 * H].reshape(3, H, B)
            d_ifg *= dct  # i, f, g
            da[3 * H:] *= dh  # o
            np.multiply(dct, acts[k, H:2 * H], out=dc)  # dc of the previous step
            np.matmul(w, da, out=dh_next)  # (H, 4H) @ (4H, B)
            # da is done with: its memory takes its (B, 4H) rows, while it is in cache (the
            # rows of all steps are then dx_proj, without a second (T, B, 4H) buffer)
            np.copyto(row, da.T)
            np.copyto(da.reshape(B, G), row)
            if any_pad and any_pad[k]:  # padded rows: dh and dc pass through unchanged
                np.copyto(dc, dct, where=pad[k])
                np.copyto(dh_next, dh, where=pad[k])
            dh, dh_next = dh_next, dh
        del dc_from_dh
        rows = da_all.reshape(T, B, G)  # (see above)
        hs_rows = np.ascontiguousarray(hs[:T].transpose(0, 2, 1)) if self.needs_input_grad[3] \
            else None
        return self._input_grads(rows, hs_rows, rows, (dh.T, dc.T))

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
