"""Fused RMS normalisation, forward and backward.

What is fused: :func:`minigrad.references.rms_norm` (the reference), over the trailing
D = prod(normalized_shape) elements of each row::

    r = 1 / sqrt(mean(x^2) + eps);   xhat = x r;   y = xhat w
    dw = sum_rows(dy xhat);   dx = r (dy w - xhat mean(dy w xhat))

NumPy: the rows are one (N, D) array, walked in cache-sized chunks of rows spread over threads
(``kernels/_numpy.py``); the mean squares are row dot products, xhat and r are kept. The
backward forms ``dy * xhat`` once, gets dw as its column sum and ``mean(dy w xhat)`` as a GEMV
with w, then three in-place passes for dx.

CUDA (``rms_norm.cu``): one block per row (a block sum of squares), the backward one block per
row for dx and a column-reduction kernel for dw; xhat is recomputed there from x and r.
"""

from __future__ import annotations

import numpy as np

from minigrad import references
from minigrad.fused import FusedFunction
from minigrad.tensor import Tensor

from . import _cuda
from ._numpy import ROW_CHUNK, row_chunks, run_chunks

CUDA_KERNELS = ("rms_norm_fwd", "rms_norm_bwd_dx", "rms_norm_bwd_dw")


class RMSNormFn(FusedFunction, kernel="rms_norm"):
    """(x[, weight]) -> rms_norm(x) over the trailing ``n_dims`` dimensions (rows of D)."""

    n_dims: int  # forward parameters: how many trailing dims are normalised,
    has_weight: bool  # whether a weight follows x,
    eps: float  # and the epsilon added to the mean square

    def forward(self, x, *w, **params):
        self.__dict__.update(params)
        D = int(np.prod(x.shape[x.ndim - self.n_dims:]))
        self.x_shape = x.shape
        rows = x.reshape(-1, D)
        return super().forward(rows, w[0].reshape(D) if w else None).reshape(x.shape)

    def reference(self, x, *w):
        return references.rms_norm(x, tuple(range(-self.n_dims, 0)), w[0] if w else None,
                                   self.eps)

    def _input_grads(self, gx, gw) -> tuple:
        grads = [gx.reshape(self.x_shape)]
        if self.has_weight:
            shape = self.x_shape[len(self.x_shape) - self.n_dims:]
            grads.append(None if gw is None else gw.reshape(shape))
        return tuple(grads)

    # ---------------------------------------------------------------- NumPy
    def _forward_numpy(self, x, w):
        N, D = x.shape
        dt = x.dtype.type
        xhat, y = np.empty_like(x), np.empty_like(x)
        rstd = np.empty((N, 1), dtype=x.dtype)

        def chunk(rows):  # cache-sized pieces, on several threads: see kernels/_numpy.py
            xs = x[rows]
            ms = np.einsum("ij,ij->i", xs, xs)[:, None]  # row sums of squares, no temporary
            ms *= dt(1.0 / D)
            ms += dt(self.eps)
            np.sqrt(ms, out=ms)
            np.divide(1, ms, out=rstd[rows])
            np.multiply(xs, rstd[rows], out=xhat[rows])
            if w is not None:
                np.multiply(xhat[rows], w, out=y[rows])
            else:
                np.copyto(y[rows], xhat[rows])

        run_chunks(chunk, row_chunks(N, D, ROW_CHUNK))
        self.xhat, self.rstd, self.w = xhat, rstd, w
        return y

    def _backward_numpy(self, gy):
        xhat, rstd, w = self.xhat, self.rstd, self.w
        N, D = xhat.shape
        gy = gy.reshape(N, D)
        dt = xhat.dtype
        want_w = self.has_weight and self.needs_input_grad[1]
        gx = np.empty_like(xhat)

        def chunk(rows):  # returns this chunk's partial dw
            g, xh, out = gy[rows], xhat[rows], gx[rows]
            g_xhat = np.multiply(g, xh)
            part_w = g_xhat.sum(axis=0) if want_w else None
            c = (g_xhat @ w) if w is not None else g_xhat.sum(axis=1)
            c *= dt.type(1.0 / D)  # mean(dy w xhat) per row
            if w is not None:
                np.multiply(g, w, out=out)
            else:
                np.copyto(out, g)
            np.multiply(xh, c[:, None], out=g_xhat)
            out -= g_xhat
            out *= rstd[rows]
            return part_w

        parts = run_chunks(chunk, row_chunks(N, D, ROW_CHUNK))
        # the partial sums in chunk order: the same numbers with any number of threads
        gw = np.sum(parts, axis=0, dtype=dt) if want_w else None
        return self._input_grads(gx, gw)

    # ---------------------------------------------------------------- CUDA
    def _forward_cuda(self, rows, w):
        xp = self.xp
        N, D = rows.shape
        dt = rows.dtype
        dev = rows.device.id
        rows = xp.ascontiguousarray(rows)
        w_c = xp.ascontiguousarray(w) if w is not None else xp.ones(D, dtype=dt)
        y = xp.empty_like(rows)
        rstd = xp.empty((N, 1), dtype=dt)
        self.x, self.rstd, self.w = rows, rstd, w_c
        if N == 0 or D == 0:  # nothing to launch (a grid of 0 blocks is invalid)
            return y
        fwd = _cuda.kernel("rms_norm", CUDA_KERNELS, "rms_norm_fwd", dt, dev)
        fwd((N,), (_cuda.rows_block(D, 256),), (rows, w_c, y, rstd, np.int32(N), np.int32(D),
                                                 _cuda.scalar(dt, self.eps)))
        return y

    def _backward_cuda(self, gy):
        xp = self.xp
        x, rstd, w = self.x, self.rstd, self.w
        N, D = x.shape
        dt = x.dtype
        dev = x.device.id
        gy = xp.ascontiguousarray(gy.reshape(N, D))
        gx = xp.empty_like(gy)
        want_w = self.has_weight and self.needs_input_grad[1]
        if N == 0 or D == 0:
            return self._input_grads(gx, xp.zeros(D, dtype=dt) if want_w else None)
        k_dx = _cuda.kernel("rms_norm", CUDA_KERNELS, "rms_norm_bwd_dx", dt, dev)
        k_dx((N,), (_cuda.rows_block(D, 256),), (gy, x, rstd, w, gx, np.int32(N), np.int32(D)))
        gw = None
        if want_w:
            gw = xp.empty(D, dtype=dt)
            k_dw = _cuda.kernel("rms_norm", CUDA_KERNELS, "rms_norm_bwd_dw", dt, dev)
            grid, block = _cuda.grid_1d(D, block=128, sm_count=_cuda.sm_count(dev))
            k_dw(grid, block, (gy, x, rstd, gw, np.int32(N), np.int32(D)))
        return self._input_grads(gx, gw)


def apply(x: Tensor, normalized_shape, weight, eps: float) -> Tensor:
    """RMS norm with the arguments of ``F.rms_norm`` (checked there; ``eps`` resolved)."""
    n_dims = 1 if isinstance(normalized_shape, int) else len(tuple(normalized_shape))
    inputs = [x] + ([weight] if weight is not None else [])
    return RMSNormFn.apply(*inputs, n_dims=n_dims, has_weight=weight is not None,
                           eps=float(eps))
