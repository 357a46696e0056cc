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
transcendental. The x_r, x_z parts and the r, z columns of ``W_hh^T`` and ``b_hh`` are
pre-multiplied by -1 once, so that ``sigmoid = 1 / (1 + exp(.))`` needs no negation per step.
All step maths is in place (``out=``), in the input dtype.

CUDA (``gru.cu``): per step one cuBLAS GEMM (CuPy ``matmul``) and one fused gate kernel; the
backward likewise, then the same single weight GEMM. The kernels get the whole (T, ...) buffers
and the step index (no per-step views on the host).
"""

from __future__ import annotations

import numpy as np

from minigrad import references
from minigrad.tensor import Tensor

from ._rnn import RecurrentFn, sigmoid_of_negated, tanh_into

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
        # NOTE: sigmoid(x) = 1 / (1 + exp(-x)): the r, z columns are kept negated (x, W, b)
        neg = np.ones(G, dtype=dt)
        neg[:2 * H] = -1.0
        xs = np.multiply(self._step_order(x_proj), neg)  # (T, B, 3H), processing order
        w_t = np.multiply(w_hh.T, neg, order="C")  # (H, 3H), row-major (see lstm.py)
        bias = None if b_hh is None else b_hh * neg
        ps = np.empty((T, B, G), dtype=dt)  # h @ W_hh^T + b_hh of every step (r, z negated)
        rz = np.empty((T, B, 2 * H), dtype=dt)  # r, z
        ns = np.empty((T, B, H), dtype=dt)  # n
        hs = np.empty((T + 1, B, H), dtype=dt)  # hs[k] is the state entering step k
        hs[0] = h0
        tmp = np.empty((B, H), dtype=dt)
        pad, any_pad = self._padded_rows()
        with np.errstate(over="ignore"):  # exp(+large) = inf gives sigmoid 0, as it should
            for k in range(T):
                p = ps[k]
                np.matmul(hs[k], w_t, out=p)
                if bias is not None:
                    p += bias
                s = rz[k]
                np.add(xs[k, :, :2 * H], p[:, :2 * H], out=s)
                sigmoid_of_negated(s)  # r, z
                r, z = s[:, :H], s[:, H:]
                n = ns[k]
                np.multiply(r, p[:, 2 * H:], out=n)
                n += xs[k, :, 2 * H:]
                tanh_into(n, n)
                h = hs[k + 1]
                np.subtract(hs[k], n, out=tmp)
                tmp *= z
                np.add(n, tmp, out=h)  # (1 - z) n + z h
                if any_pad and any_pad[k]:  # padded rows keep their state
                    np.copyto(h, hs[k], where=pad[k])
        self.saved = (ps, rz, ns, hs, w_hh)
        return self._output(hs), hs[T]

    def _backward_numpy(self, gy, gh_n):
        ps, rz, ns, hs, w_hh = self.saved
        T, B, G = ps.shape
        H = G // 3
        dt = ps.dtype
        gy = self._upstream(gy)
        pad, any_pad = self._padded_rows()
        dp_all = np.empty((T, B, G), dtype=dt)  # d(h @ W_hh^T + b_hh) of every step
        dxn_all = np.empty((T, B, H), dtype=dt)  # d(x_n) of every step
        dh = np.array(gh_n, dtype=dt)
        dh_next = np.empty((B, H), dtype=dt)
        tmp = np.empty((B, H), dtype=dt)
        deriv = np.empty((B, 2 * H), dtype=dt)
        for k in range(T - 1, -1, -1):  # bptt.gru_backward's steps 1-7, in place
            dh += gy[k]
            s, n, dp, dxn = rz[k], ns[k], dp_all[k], dxn_all[k]
            r, z = s[:, :H], s[:, H:]
            # dn_pre = dh (1 - z) (1 - n^2)
            np.subtract(1, z, out=dxn)
            dxn *= dh
            np.multiply(n, n, out=tmp)
            np.subtract(1, tmp, out=tmp)
            dxn *= tmp
            # dr = dn_pre * p_n (the raw W_hn h + b_hn); dz = dh (h - n)
            np.multiply(dxn, ps[k, :, 2 * H:], out=dp[:, :H])
            np.subtract(hs[k], n, out=dp[:, H:2 * H])
            dp[:, H:2 * H] *= dh
            np.subtract(1, s, out=deriv)
            deriv *= s
            dp[:, :2 * H] *= deriv  # through the sigmoids
            np.multiply(dxn, r, out=dp[:, 2 * H:])  # d p_n = dn_pre * r
            padded = any_pad is not None and any_pad[k]
            if padded:  # padded rows: no gate gradient; dh passes through unchanged
                np.copyto(dp, 0, where=pad[k])
                np.copyto(dxn, 0, where=pad[k])
            np.matmul(dp, w_hh, out=dh_next)  # (B, 3H) @ (3H, H)
            np.multiply(dh, z, out=tmp)
            dh_next += tmp
            if padded:
                np.copyto(dh_next, dh, where=pad[k])
            dh, dh_next = dh_next, dh
        gx = None
        if self.needs_input_grad[0]:
            gx = np.empty((T, B, G), dtype=dt)  # dx = [dr_pre, dz_pre, dn_pre]
            gx[:, :, :2 * H] = dp_all[:, :, :2 * H]
            gx[:, :, 2 * H:] = dxn_all
        return self._input_grads(dp_all, hs, gx, (dh,))

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
