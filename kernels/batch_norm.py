"""Fused batch normalisation with the batch's statistics (training mode), forward and backward.

What is fused: :func:`minigrad.references.batch_norm` (the reference), per channel c of an
``(N, C, L)`` input, over its M = N * L values::

    mean = sum(x) / M;   var = sum((x - mean)^2) / M  (biased);   r = 1 / sqrt(var + eps)
    xhat = (x - mean) r;   y = xhat w + b            outputs (y, mean, var)
    dw = sum(dy xhat);   db = sum(dy)
    dx = w r (dy - db / M - xhat dw / M) + dmean / M + dvar 2 xhat / (r M)

The statistics are outputs (``F.batch_norm`` updates the running averages from them); their
gradients (zero unless something downstream uses them) are added exactly, so the node is the
reference's derivative whichever outputs are used.

NumPy: whole-tensor reductions over the batch and length axes and in-place passes; xhat and r
are kept for the backward.

CUDA (``batch_norm.cu``): one block per channel, both passes (mean, then the centred sum of
squares) as block reductions; the backward is one block per channel too: the two sums, then
dx, in one kernel.
"""

from __future__ import annotations

import numpy as np

from minigrad import references
from minigrad.fused import FusedFunction
from minigrad.tensor import Tensor

from . import _cuda
from ._norm import AffineInputs

CUDA_KERNELS = ("batch_norm_fwd", "batch_norm_bwd")


class BatchNormFn(AffineInputs, FusedFunction, kernel="batch_norm"):
    """``(x[, weight][, bias]) -> (y, mean, var)`` for x of shape (N, C, L); mean and var (C,)."""

    def forward(self, x, *wb, **params):
        self.__dict__.update(params)
        return super().forward(x, *self._weight_bias(wb))

    def reference(self, x, *wb):
        return references.batch_norm(x, *self._weight_bias(wb), self.eps)

    # ---------------------------------------------------------------- NumPy
    def _forward_numpy(self, x, w, b):
        N, C, L = x.shape
        dt = x.dtype.type
        inv_m = dt(1.0 / (N * L))
        mean = x.sum(axis=(0, 2))
        mean *= inv_m
        xhat = x - mean[:, None]
        var = np.einsum("ncl,ncl->c", xhat, xhat)
        var *= inv_m  # NOTE: biased, as PyTorch (F.batch_norm makes the unbiased one)
        rstd = 1 / np.sqrt(var + dt(self.eps))
        xhat *= rstd[:, None]
        if w is not None:
            y = xhat * w[:, None]
        else:
            y = xhat.copy()
        if b is not None:
            y += b[:, None]
        self.xhat, self.rstd, self.w = xhat, rstd, w
        return y, mean, var

    def _backward_numpy(self, gy, gmean, gvar):
        xhat, rstd, w = self.xhat, self.rstd, self.w
        N, C, L = xhat.shape
        dt = xhat.dtype.type
        inv_m = dt(1.0 / (N * L))
        gb = gy.sum(axis=(0, 2))
        gw = np.einsum("ncl,ncl->c", gy, xhat)
        scale = rstd if w is None else rstd * w
        gx = xhat * (gw * inv_m)[:, None]
        np.subtract(gy, gx, out=gx)
        gx -= (gb * inv_m)[:, None]
        gx *= scale[:, None]
        # the statistics' own gradients: d mean/dx = 1/M, d var/dx = 2 xhat / (r M)
        gx += (gmean * inv_m)[:, None]
        gx += xhat * (gvar * (2 * inv_m) / rstd)[:, None]
        return self._input_grads(gx, gw, gb)

    # ---------------------------------------------------------------- CUDA
    def _forward_cuda(self, x, w, b):
        xp = self.xp
        x = xp.ascontiguousarray(x)
        N, C, L = x.shape
        dt = x.dtype
        dev = x.device.id
        w_c = xp.ascontiguousarray(w) if w is not None else xp.ones(C, dtype=dt)
        b_c = xp.ascontiguousarray(b) if b is not None else xp.zeros(C, dtype=dt)
        y = xp.empty_like(x)
        mean = xp.empty(C, dtype=dt)
        var = xp.empty(C, dtype=dt)
        rstd = xp.empty(C, dtype=dt)
        fwd = _cuda.kernel("batch_norm", CUDA_KERNELS, "batch_norm_fwd", dt, dev)
        block = _cuda.rows_block(N * L, 256)
        fwd((C,), (block,), (x, w_c, b_c, y, mean, var, rstd, np.int32(N), np.int32(C),
                             np.int32(L), _cuda.scalar(dt, self.eps)))
        self.x, self.mean, self.rstd, self.w = x, mean, rstd, w_c
        return y, mean, var

    def _backward_cuda(self, gy, gmean, gvar):
        xp = self.xp
        x = self.x
        N, C, L = x.shape
        dt = x.dtype
        dev = x.device.id
        gy = xp.ascontiguousarray(gy)
        gx = xp.empty_like(x)
        gw = xp.empty(C, dtype=dt)
        gb = xp.empty(C, dtype=dt)
        bwd = _cuda.kernel("batch_norm", CUDA_KERNELS, "batch_norm_bwd", dt, dev)
        block = _cuda.rows_block(N * L, 256)
        bwd((C,), (block,), (x, gy, self.mean, self.rstd, self.w, xp.ascontiguousarray(gmean),
                             xp.ascontiguousarray(gvar), gx, gw, gb, np.int32(N), np.int32(C),
                             np.int32(L)))
        return self._input_grads(gx, gw, gb)


def apply(x: Tensor, weight, bias, eps: float) -> tuple[Tensor, Tensor, Tensor]:
    """``(y, mean, var)`` with the arguments of :func:`minigrad.references.batch_norm`."""
    inputs = [x] + [t for t in (weight, bias) if t is not None]
    return BatchNormFn.apply(*inputs, has_weight=weight is not None, has_bias=bias is not None,
                             eps=float(eps))
