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

NumPy: whole-tensor reductions over the batch and length axes and in-place passes; only the
mean and r are kept for the backward, which centres the input (held by the graph) again: five
passes forward, seven backward, and no normalised copy of the input between the two.

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
        y = x - mean[:, None]  # centred: y is made from it in place
        var = np.einsum("ncl,ncl->c", y, y)
        var *= inv_m  # NOTE: biased, as PyTorch (F.batch_norm makes the unbiased one)
        rstd = 1 / np.sqrt(var + dt(self.eps))
        y *= (rstd if w is None else rstd * w)[:, None]
        if b is not None:
            y += b[:, None]
        # NOTE: no xhat kept (a copy of the input's size): the backward centres the input again
        self.mean, self.rstd, self.w = mean.copy(), rstd, w
        return y, mean, var

    def _backward_numpy(self, gy, gmean, gvar):
        mean, rstd, w = self.mean, self.rstd, self.w
        x = self.inputs[0].data
        N, C, L = x.shape
        dt = x.dtype.type
        inv_m = dt(1.0 / (N * L))
        xc = x - mean[:, None]  # xhat = xc r
        gb = gy.sum(axis=(0, 2))
        gw = np.einsum("ncl,ncl->c", gy, xc)
        gw *= rstd  # sum(dy xhat)
        scale = rstd if w is None else rstd * w
        # dx = scale (dy - db/M - xhat dw/M) + dmean/M + dvar 2 xhat / (r M)
        #    = scale dy + xc (2 dvar - scale dw r) / M + (dmean - scale db) / M
        xc *= ((2 * gvar - scale * gw * rstd) * inv_m)[:, None]
        gx = gy * scale[:, None]
        gx += xc
        gx += ((gmean - scale * gb) * inv_m)[:, None]
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
