"""Fused layer normalisation, forward and backward.

What is fused: :func:`minigrad.references.layer_norm` (the reference), over the trailing
D = prod(normalized_shape) elements of each row::

    mu = mean(x);  var = mean((x - mu)^2)  (biased);  r = 1 / sqrt(var + eps)
    xhat = (x - mu) r;   y = xhat w + b
    dw = sum_rows(dy xhat);   db = sum_rows(dy)
    dx = r (dy w - mean(dy w) - xhat mean(dy w xhat))

NumPy: the rows are one (N, D) array, walked in cache-sized chunks of rows spread over threads
(``kernels/_numpy.py``). The forward is a mean, a subtract, a sum of squares and three in-place
passes; xhat and r are kept. The backward forms ``dy * xhat`` once and gets the four reductions
it needs from it and dy: two column sums (dw, db) and two GEMVs with w
(``mean(dy w) = dy @ w / D``, ``mean(dy w xhat) = (dy xhat) @ w / D``), then four in-place
passes for dx.

CUDA (``layer_norm.cu``): one block per row (two-pass mean and variance in registers and shared
memory), the backward one block per row for dx and a column-reduction kernel for dw and db.
"""

from __future__ import annotations

import numpy as np

from minigrad import references
from minigrad.fused import FusedFunction
from minigrad.tensor import Tensor

from . import _blas, _cuda
from ._norm import AffineInputs
from ._numpy import ROW_CHUNK, row_chunks

CUDA_KERNELS = ("layer_norm_fwd", "layer_norm_bwd_dx", "layer_norm_bwd_dwdb")


class LayerNormFn(AffineInputs, FusedFunction, kernel="layer_norm"):
    """``(x[, weight][, bias]) -> layer_norm(x)`` over the trailing ``n_dims`` dimensions.

    The maths works on rows: x as (N, D), weight and bias as (D,); :meth:`forward` reshapes
    them, and :meth:`_input_grads` gives the gradients the inputs' shapes back.
    """

    n_dims: int  # forward parameter: how many trailing dims are normalised
    weight_index = 1  # the weight's place among the inputs (when the call has one)

    def forward(self, x, *wb, **params):
        self.__dict__.update(params)
        w, b = self._weight_bias(wb)
        D = int(np.prod(x.shape[x.ndim - self.n_dims:]))
        rows = x.reshape(-1, D)  # (N, D); a copy only when x is not viewable so
        w = None if w is None else w.reshape(D)
        b = None if b is None else b.reshape(D)
        return super().forward(rows, w, b).reshape(x.shape)

    def reference(self, x, *wb):
        dims = tuple(range(-self.n_dims, 0))
        return references.layer_norm(x, dims, *self._weight_bias(wb), self.eps)

    def _input_grads(self, gx, gw, gb) -> tuple:
        """The row gradients in the inputs' shapes: (gx[, gw][, gb])."""
        x = self.inputs[0]
        shape = x.shape[x.ndim - self.n_dims:]
        gw = None if gw is None or not self.has_weight else gw.reshape(shape)
        gb = None if gb is None or not self.has_bias else gb.reshape(shape)
        return super()._input_grads(gx.reshape(x.shape), gw, gb)

    # ---------------------------------------------------------------- NumPy
    def _forward_numpy(self, x, w, b, residual=None):
        N, D = x.shape
        dt = x.dtype.type
        xhat = np.empty_like(x)
        y = np.empty_like(x)
        rstd = np.empty((N, 1), dtype=x.dtype)
        ones = np.ones(D, dtype=x.dtype)
        inv_d = dt(1.0 / D)

        def chunk(rows):  # cache-sized pieces, on several threads: see kernels/_numpy.py
            # the reference's steps in its order (mean, centre, biased variance, divide by the
            # standard deviation); the row sums are GEMVs with ones (np.mean's per-call
            # overhead is larger than the sum itself here)
            xh = xhat[rows]
            if residual is None:
                mean = x[rows] @ ones
                mean *= inv_d
                np.subtract(x[rows], mean[:, None], out=xh)
            else:  # the residual sum, made in the chunk's own buffer (AddLayerNormFn)
                np.add(x[rows], residual[rows], out=xh)
                mean = xh @ ones
                mean *= inv_d
                xh -= mean[:, None]
            var = np.einsum("ij,ij->i", xh, xh)[:, None]  # row sums of squares, one pass
            var *= inv_d  # NOTE: biased, as PyTorch
            var += dt(self.eps)
            std = np.sqrt(var, out=var)
            xh /= std
            np.divide(1, std, out=rstd[rows])
            out = y[rows]
            if w is not None:
                np.multiply(xh, w, out=out)
            else:
                np.copyto(out, xh)
            if b is not None:
                out += b

        _blas.run_quiet(chunk, row_chunks(N, D, ROW_CHUNK))  # the BLAS's spinning workers off
        self.xhat, self.rstd, self.w = xhat, rstd, w
        return y

    def _backward_numpy(self, gy):
        xhat, rstd, w = self.xhat, self.rstd, self.w
        N, D = xhat.shape
        gy = gy.reshape(N, D)
        dt = xhat.dtype
        needs = self.needs_input_grad
        want_w = self.has_weight and needs[self.weight_index]
        want_b = self.has_bias and needs[-1]
        gx = np.empty_like(xhat)
        inv_d = dt.type(1.0 / D)

        def chunk(rows):  # returns this chunk's partial dw and db
            g, xh, out = gy[rows], xhat[rows], gx[rows]
            g_xhat = np.multiply(g, xh)  # (n, D)
            # column sums as GEMVs with ones (BLAS reads the rows once, faster than .sum)
            ones = np.ones(g.shape[0], dtype=dt)
            part_w = ones @ g_xhat if want_w else None
            part_b = ones @ g if want_b else None
            # mean(dy w) and mean(dy w xhat) per row, as GEMVs with w
            if w is not None:
                a = g @ w
                c = g_xhat @ w
                np.multiply(g, w, out=out)
            else:
                a = g.sum(axis=1)
                c = g_xhat.sum(axis=1)
                np.copyto(out, g)
            a *= inv_d
            c *= inv_d
            out -= a[:, None]
            np.multiply(xh, c[:, None], out=g_xhat)
            out -= g_xhat
            out *= rstd[rows]
            return part_w, part_b

        # (the GEMVs in the chunks then on one BLAS thread)
        parts = _blas.run_quiet(chunk, row_chunks(N, D, ROW_CHUNK))
        # the partial sums in chunk order: the same numbers with any number of threads
        gw = np.sum([pw for pw, _ in parts], axis=0, dtype=dt) if want_w else None
        gb = np.sum([pb for _, pb in parts], axis=0, dtype=dt) if want_b else None
        return self._input_grads(gx, gw, gb)

    # ---------------------------------------------------------------- CUDA
    def _forward_cuda(self, rows, w, b):
        xp = self.xp
        N, D = rows.shape
        dt = rows.dtype
        dev = rows.device.id
        rows = xp.ascontiguousarray(rows)
        fwd = _cuda.kernel("layer_norm", CUDA_KERNELS, "layer_norm_fwd", dt, dev)
        ones = None
        if w is None or b is None:
            ones = xp.ones(D, dtype=dt)
        w_c = xp.ascontiguousarray(w) if w is not None else ones
        b_c = xp.ascontiguousarray(b) if b is not None else xp.zeros(D, dtype=dt)
        y = xp.empty_like(rows)
        xhat = xp.empty_like(rows)
        rstd = xp.empty((N, 1), dtype=dt)
        block = _cuda.rows_block(D, 256)
        fwd((N,), (block,), (rows, w_c, b_c, y, xhat, rstd, np.int32(N), np.int32(D),
                             _cuda.scalar(dt, self.eps)))
        self.xhat, self.rstd, self.w = xhat, rstd, w_c
        return y

    def _backward_cuda(self, gy):
        xp = self.xp
        xhat, rstd, w = self.xhat, self.rstd, self.w
        N, D = xhat.shape
        dt = xhat.dtype
        dev = xhat.device.id
        gy = xp.ascontiguousarray(gy.reshape(N, D))
        k_dx = _cuda.kernel("layer_norm", CUDA_KERNELS, "layer_norm_bwd_dx", dt, dev)
        k_dwdb = _cuda.kernel("layer_norm", CUDA_KERNELS, "layer_norm_bwd_dwdb", dt, dev)
        gx = xp.empty_like(gy)
        k_dx((N,), (_cuda.rows_block(D, 256),), (gy, xhat, rstd, w, gx, np.int32(N),
                                                   np.int32(D)))
        gw = xp.empty(D, dtype=dt)
        gb = xp.empty(D, dtype=dt)
        grid, block = _cuda.grid_1d(D, block=128, sm_count=_cuda.sm_count(dev))
        k_dwdb(grid, block, (gy, xhat, gw, gb, np.int32(N), np.int32(D)))
        return self._input_grads(gx, gw, gb)


class AddLayerNormFn(LayerNormFn):
    """``(x, residual[, weight][, bias]) -> layer_norm(x + residual)``: a post-norm
    Transformer's residual connection and its layer norm as one node. The NumPy forward adds
    the two inside each chunk (no (N, D) sum array, no add node); both inputs get the layer
    norm's input gradient. x and residual have one shape and dtype (:func:`apply_residual`).
    """

    weight_index = 2

    def forward(self, x, r, *wb, **params):
        self.__dict__.update(params)
        w, b = self._weight_bias(wb)
        D = int(np.prod(x.shape[x.ndim - self.n_dims:]))
        w = None if w is None else w.reshape(D)
        b = None if b is None else b.reshape(D)
        if self.xp is np:
            y = self._forward_numpy(x.reshape(-1, D), w, b, r.reshape(-1, D))
        else:
            y = self._forward_cuda((x + r).reshape(-1, D), w, b)
        return y.reshape(x.shape)

    def reference(self, x, r, *wb):
        return super().reference(x + r, *wb)

    def _input_grads(self, gx, gw, gb) -> tuple:
        grads = super()._input_grads(gx, gw, gb)  # (gx, [gw], [gb]) in the inputs' shapes
        return grads[:1] + grads


def apply_residual(x: Tensor, residual: Tensor, normalized_shape, weight, bias,
                   eps: float) -> Tensor:
    """``layer_norm(x + residual)`` with the arguments of ``F.layer_norm`` (checked there):
    one :class:`AddLayerNormFn` node when x and residual have one shape and dtype, otherwise
    the add and :func:`apply`."""
    if x.shape != residual.shape or x.dtype != residual.dtype:
        return apply(x + residual, normalized_shape, weight, bias, eps)
    n_dims = 1 if isinstance(normalized_shape, int) else len(tuple(normalized_shape))
    inputs = [x, residual] + [t for t in (weight, bias) if t is not None]
    return AddLayerNormFn.apply(*inputs, n_dims=n_dims, has_weight=weight is not None,
                                has_bias=bias is not None, eps=float(eps))


def apply(x: Tensor, normalized_shape, weight, bias, eps: float) -> Tensor:
    """Layer norm with the arguments of ``F.layer_norm`` (checked there)."""
    n_dims = 1 if isinstance(normalized_shape, int) else len(tuple(normalized_shape))
    inputs = [x] + [t for t in (weight, bias) if t is not None]
    return LayerNormFn.apply(*inputs, n_dims=n_dims, has_weight=weight is not None,
                             has_bias=bias is not None, eps=float(eps))
