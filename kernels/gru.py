"""Fused GRU layer: the whole recurrence of one layer and direction, forward and backward
through time, as one ``Function``.

What is fused: everything :func:`minigrad.references.gru_layer` (the composite reference)
does after the input projection: per step the recurrent GEMM ``h @ W_hh^T + b_hh``, the gates, the
state update and the ``lengths`` mask; and the backward through time. The input projection
``x W_ih^T + b_ih`` stays one GEMM over all ``T * B`` rows, outside (in ``GRU``).

Forward, per step (gates in PyTorch's order r, z, n)::

    p = h @ W_hh^T + b_hh = [p_r, p_z, p_n]           (B, 3H)
    r = sigmoid(x_r + p_r);  z = sigmoid(x_z + p_z)
    n = tanh(x_n + r * p_n)
    h' = n + z * (h - n)                               (padded rows keep h)

Backward, per step, from dh (upstream + carried): the steps of ``kernels/bptt.py``'s
``gru_backward``, the readable NumPy BPTT this kernel is tested against::

    dn_pre = dh (1 - z) (1 - n^2)                                     (steps 1-3)
    dz_pre = dh (h - n) z (1 - z);   dr_pre = dn_pre p_n r (1 - r)    (2, 4-5)
    dp = [dr_pre, dz_pre, dn_pre * r];   dx = [dr_pre, dz_pre, dn_pre]      (6)
    dh <- dh z + dp @ W_hh                                                 (7)

and after the loop ONE GEMM for the weights over all steps (bptt.py's step 6 summed at once):
``dW_hh = dp_all^T @ h_prev_all``, ``db_hh = sum(dp_all)``, ``dx_proj = dx_all``.

NumPy: r, z, n and p of every step are kept, so the backward never recomputes a
transcendental. The layout is that of ``lstm.py``'s NumPy path (units-major, batch last: each
gate one contiguous ``(H, B)`` block; ``sigmoid(x) = (tanh(x / 2) + 1) / 2`` with the r, z
pre-activations kept halved; the factors of the backward that do not depend on the carried dh
computed for all steps at once). All step maths is in place (``out=``), in the input dtype.

CUDA (``gru.cu``): per step one cuBLAS GEMM (CuPy ``matmul``) and one fused gate kernel; the
backward likewise, then the same single weight GEMM. The kernels get the whole (T, ...) buffers
and the step index (no per-step views on the host).
"""

from __future__ import annotations

import numpy as np

from minigrad import references
from minigrad.autograd import is_zero_grad
from minigrad.tensor import Tensor

from ._numpy import ROW_CHUNK, flat_chunks
from ._rnn import RecurrentFn

CUDA_KERNELS = ("gru_step_fwd", "gru_step_bwd")


class GRUFn(RecurrentFn, kernel="gru"):
    """(x_proj, h0, W_hh[, b_hh]) -> (output, h_n) for one GRU layer and direction; the
    gradients of all inputs by backpropagation through time (see the module docstring)."""

    N_ARRAYS = 3
    CUDA_SOURCE = "gru"
    CUDA_KERNELS = CUDA_KERNELS

    def reference(self, x_proj, h0, w_hh, b_hh=None):
        return references.gru_layer(x_proj, h0, w_hh, b_hh, self.mask, self.reverse)

    # ---------------------------------------------------------------- NumPy
    def _forward_numpy(self, x_proj, h0, w_hh, b_hh=None):
        T, B, G = x_proj.shape
        H = G // 3
        dt = x_proj.dtype
        # sigmoid(x) = (tanh(x / 2) + 1) / 2: the r, z pre-activations are kept halved (input,
        # bias and weight rows scaled once); p_n stays whole (r multiplies it)
        xs = np.empty((T, G, B), dtype=dt)  # x_proj in processing order, r, z halved
        np.copyto(xs, self._step_order(x_proj).transpose(0, 2, 1))  # (see lstm.py)
        xs[:, :2 * H] *= dt.type(0.5)
        w_s = np.array(w_hh, dtype=dt, order="C")  # (3H, H)
        w_s[:2 * H] *= 0.5
        bias = None
        if b_hh is not None:  # added to each step's W_hh h, in the reference's order
            b_s = np.array(b_hh, dtype=dt)
            b_s[:2 * H] *= 0.5
            bias = np.repeat(b_s[:, None], B, axis=1)  # (3H, B)
        ps = np.empty((T, G, B), dtype=dt)  # W_hh h + b_hh of every step (r, z halved)
        rz = np.empty((T, 2 * H, B), dtype=dt)  # r, z
        ns = np.empty((T, H, B), dtype=dt)  # n
        hs = np.empty((T + 1, H, B), dtype=dt)  # hs[k] is the state entering step k
        hs[0] = h0.T
        tmp = np.empty((H, B), dtype=dt)
        pad, any_pad = self._padded_columns()
        for k in range(T):
            hw = ps[k]
            np.matmul(w_s, hs[k], out=hw)
            if bias is not None:
                hw += bias
            s = rz[k]
            np.add(xs[k, :2 * H], hw[:2 * H], out=s)
            np.tanh(s, out=s)
            s += 1
            s *= 0.5  # r, z, rounded as minigrad's sigmoid
            r, z = s[:H], s[H:]
            p = hw[2 * H:]
            n = ns[k]
            np.multiply(r, p, out=n)
            n += xs[k, 2 * H:]
            np.tanh(n, out=n)
            h = hs[k + 1]
            np.subtract(hs[k], n, out=tmp)
            tmp *= z
            np.add(n, tmp, out=h)  # (1 - z) n + z h
            if any_pad and any_pad[k]:  # padded rows keep their state
                np.copyto(h, hs[k], where=pad[k])
        self.saved = (ps, rz, ns, hs, w_hh)
        return self._output(hs.transpose(0, 2, 1)), hs[T].T

    def _backward_numpy(self, gy, gh_n):
        ps, rz, ns, hs, w_hh = self.saved
        T, G, B = ps.shape
        H = G // 3
        dt = ps.dtype
        pad, any_pad = self._padded_columns()
        # everything that does not depend on the carried dh, over all steps at once:
        # dn_pre = dh (1-z)(1-n^2), dz_pre = dh (h-n) z(1-z), dr_pre = dn_pre p_n r(1-r);
        # the multipliers of dh (n, z) and of dn_pre (r) are kept in the gradient buffers
        dp_all = np.empty((T, G, B), dtype=dt)  # d(h W_hh^T + b_hh): [dr_pre, dz_pre, dp_n]
        dxn_all = np.empty((T, H, B), dtype=dt)  # dn_pre
        for steps in flat_chunks(T, max(1, ROW_CHUNK // (G * B))):
            s, n, m = rz[steps], ns[steps], dp_all[steps]
            z = s[:, H:]
            m_rz, m_r, m_z, m_n = m[:, :2 * H], m[:, :H], m[:, H:2 * H], dxn_all[steps]
            np.subtract(1, s, out=m_rz)
            m_rz *= s  # r (1 - r), z (1 - z)
            m_r *= ps[steps, 2 * H:]  # p_n
            np.subtract(hs[steps], n, out=m[:, 2 * H:])  # scratch: h - n
            m_z *= m[:, 2 * H:]
            np.multiply(n, n, out=m_n)
            np.subtract(1, m_n, out=m_n)
            np.subtract(1, z, out=m[:, 2 * H:])  # scratch: 1 - z
            m_n *= m[:, 2 * H:]
            if any_pad:  # padded rows: no gate gradient
                np.copyto(m_rz, 0, where=pad[steps])
                np.copyto(m_n, 0, where=pad[steps])
        # an unused output (the engine's zero stand-in, or zeros): no work from it
        gy = None if is_zero_grad(gy) else self._upstream(gy)
        gy = gy.transpose(0, 2, 1) if gy is not None and gy.any() else None
        dh = np.array(gh_n.T, dtype=dt, order="C")  # a copy: updated in place below
        dh_next = np.empty((H, B), dtype=dt)
        tmp = np.empty((H, B), dtype=dt)
        w = np.ascontiguousarray(w_hh.T)  # (H, 3H)
        row = np.empty((B, G), dtype=dt)
        for k in range(T - 1, -1, -1):  # bptt.gru_backward's steps 1-7, in place
            if gy is not None:
                dh += gy[k]
            dp, dxn = dp_all[k], dxn_all[k]
            dxn *= dh  # dn_pre
            dp[H:2 * H] *= dh  # dz_pre
            dp[:H] *= dxn  # dr_pre
            np.multiply(dxn, rz[k, :H], out=dp[2 * H:])  # d p_n = dn_pre r
            np.matmul(w, dp, out=dh_next)  # (H, 3H) @ (3H, B)
            np.copyto(row, dp.T)  # dp is done with: its memory takes its rows (see lstm.py)
            np.copyto(dp.reshape(B, G), row)
            np.multiply(dh, rz[k, H:], out=tmp)
            dh_next += tmp  # + dh z
            if any_pad and any_pad[k]:  # padded rows: dh passes through unchanged
                np.copyto(dh_next, dh, where=pad[k])
            dh, dh_next = dh_next, dh
        dp_rows = dp_all.reshape(T, B, G)
        hs_rows = np.ascontiguousarray(hs[:T].transpose(0, 2, 1)) if self.needs_input_grad[2] \
            else None
        grads = self._input_grads(dp_rows, hs_rows, dp_rows, (dh.T,))
        # dx = [dr_pre, dz_pre, dn_pre] differs from dp in its n block only (dp_n = dn_pre r):
        # written over dp's rows now that the weight gradients have been taken from them
        np.copyto(dp_rows[:, :, 2 * H:], dxn_all.transpose(0, 2, 1))
        return grads

    # ---------------------------------------------------------------- CUDA
    def _forward_cuda(self, x_proj, h0, w_hh, b_hh=None):
        xp = self.xp
        T, B, G = x_proj.shape
        H = G // 3
        dt = x_proj.dtype
        xs, bias, w_t, valid, geometry = self._inputs_cuda(x_proj, w_hh, b_hh)
        ps = xp.empty((T, B, G), dtype=dt)  # h @ W_hh^T of every step; the kernel adds b_hh
        rz = xp.empty((T, B, 2 * H), dtype=dt)
        ns = xp.empty((T, B, H), dtype=dt)
        hs = xp.empty((T + 1, B, H), dtype=dt)
        hs[0] = h0
        args = (xs, ps, bias, hs, valid, rz, ns, np.int32(B), np.int32(H))
        self._forward_steps_cuda("gru_step_fwd", geometry, args, hs, w_t, ps)
        self.saved = (ps, rz, ns, hs, w_hh, valid, geometry)
        return self._output(hs), hs[T]

    def _backward_cuda(self, gy, gh_n):
        xp = self.xp
        ps, rz, ns, hs, w_hh, valid, geometry = self.saved
        T, B, G = ps.shape
        gy = xp.ascontiguousarray(self._upstream(gy))
        dp_all = xp.empty((T, B, G), dtype=ps.dtype)
        dx_all = xp.empty((T, B, G), dtype=ps.dtype)
        # per step, one kernel: dh = dh_mm + dh_keep + gy[k]; gate gradients; dh_keep <- the
        # part of dh that reaches h_prev directly (dh z, or all of dh on padded rows)
        args = (gy, ps, rz, ns, hs, valid, dp_all, dx_all, np.int32(B), np.int32(G // 3))
        dh = self._backward_steps_cuda("gru_step_bwd", geometry, args, dp_all, w_hh, gh_n)
        return self._input_grads(dp_all, hs, dx_all, (dh,))


def apply(x_proj: Tensor, h0: Tensor, w_hh: Tensor, b_hh, mask, reverse=False):
    """The fused GRU layer; the arguments and results of ``references.gru_layer``."""
    inputs = (x_proj, h0, w_hh) if b_hh is None else (x_proj, h0, w_hh, b_hh)
    return GRUFn.apply(*inputs, mask=mask, reverse=reverse)
