"""Fused 2-D max pooling, forward (values and argmax indices) and backward.

What is fused: :func:`minigrad.references.max_pool2d` (the reference: every window gathered
into a ``(N, C, OH, OW, kh * kw)`` tensor, padding masked to -inf, ``max`` over the last dim).
``F.max_pool1d`` runs the same kernel with a height of 1::

    y[n, c, i, j] = max over taps (a, b) of x[n, c, i sh - ph + a dh, j sw - pw + b dw]
    idx[n, c, i, j] = the flat position h * W + w of that maximum (the first one of a tie)
    dx[n, c, h, w] = sum of dy[n, c, i, j] over the windows whose idx is h * W + w

Padding reads as -inf, a NaN wins (it propagates, as in PyTorch). An index is clipped into the
input, so a window whose real values are all -inf still points at a real element.

NumPy: the input padded once with -inf (only when a window reaches past it), then passes over
strided views of it, one per kernel tap (no per-pixel Python): ``np.maximum`` gives the values,
then a few passes of bytes per tap the first tap holding the maximum (``_first_taps``); the
index is a window base plus that tap's offset (clipped into the input only when a window can
start in the padding). The backward puts dy at the indices (``put_along_axis`` when the windows
cannot overlap, else one ``bincount`` that sums the overlaps).

CUDA (``maxpool.cu``): the forward one thread per output (grid-stride), the backward one thread
per input element, which sums the dy of the few windows that can reach it and chose it (a
gather: no atomics, the same sum order every run).
"""

from __future__ import annotations

import numpy as np

from minigrad import references
from minigrad.fused import FusedFunction
from minigrad.tensor import Tensor

from . import _cuda

CUDA_KERNELS = ("max_pool2d_fwd", "max_pool2d_bwd")


class MaxPool2dFn(FusedFunction, kernel="max_pool2d"):
    """x (N, C, H, W) -> (y, indices), both (N, C, OH, OW); indices int64, not differentiable.

    Parameters (keywords of :meth:`apply`, pairs for (height, width)): ``kernel_size``,
    ``stride``, ``padding``, ``dilation`` and ``out_size`` (computed by ``F.max_pool2d``).
    """

    kernel_size: tuple
    stride: tuple
    padding: tuple
    dilation: tuple
    out_size: tuple

    def reference(self, x):
        return references.max_pool2d(x, self.kernel_size, self.stride, self.padding,
                                     self.dilation, self.out_size)

    def _overlapping(self) -> bool:
        """True when an input element can fall in more than one window."""
        return any(s < d * (k - 1) + 1 for k, s, d in
                   zip(self.kernel_size, self.stride, self.dilation))

    # ---------------------------------------------------------------- NumPy
    def _forward_numpy(self, x):
        N, C, H, W = x.shape
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        (ph, pw), (dh, dw) = self.padding, self.dilation
        OH, OW = self.out_size
        # the padded extent the last window reaches (ceil_mode may reach past the padding)
        Hp = max(H + ph, (OH - 1) * sh + dh * (kh - 1) + 1)
        Wp = max(W + pw, (OW - 1) * sw + dw * (kw - 1) + 1)
        if (Hp, Wp) != (H, W) or ph or pw:
            padded = np.full((N, C, Hp, Wp), -np.inf, dtype=x.dtype)
            padded[:, :, ph:ph + H, pw:pw + W] = x
        else:
            padded = x
        views = [padded[:, :, a * dh:a * dh + (OH - 1) * sh + 1:sh,
                         b * dw:b * dw + (OW - 1) * sw + 1:sw]
                 for a in range(kh) for b in range(kw)]
        # the values first (np.maximum propagates a NaN), then which tap holds them
        y = views[0].copy() if len(views) == 1 else np.maximum(views[0], views[1])
        for v in views[2:]:
            np.maximum(y, v, out=y)
        # (a NaN in a window makes its maximum NaN: the outputs' sum, a quarter of the input's
        # for 2x2 windows, tells whether there is one)
        tap = self._first_taps(views, y, nan_possible=not np.isfinite(y.sum()))
        if padded is x:  # every window inside x: the flat index is a window base plus an offset
            offsets = np.array([a * dh * W + b * dw for a in range(kh) for b in range(kw)],
                               dtype=np.int64)
            indices = offsets.take(tap)
            indices += (np.arange(OH)[:, None] * (sh * W) + np.arange(OW)[None, :] * sw)
        else:  # a window may start in the padding: rows and columns clipped into x
            tap = tap.astype(np.int64)  # (the arithmetic below overflows one byte)
            rows = np.clip(np.arange(OH)[:, None] * sh - ph + (tap // kw) * dh, 0, H - 1)
            cols = np.clip(np.arange(OW)[None, :] * sw - pw + (tap % kw) * dw, 0, W - 1)
            indices = rows.astype(np.int64) * W + cols
        self.indices, self.in_shape = indices, x.shape
        return y, indices

    @staticmethod
    def _first_taps(views: list, y, nan_possible: bool):
        """For each output, the first tap whose view holds its maximum ``y`` (the first NaN
        where ``y`` is NaN), one byte each.

        Without NaN a tap holds the maximum unless ``y > v``: the taps counted while still
        "not found" (a running AND of ``y > v``), three passes of bytes per tap. The NaN test
        costs more (an equality, an isnan and a masked write per tap, last to first): made only
        when a maximum is NaN (an inf sum, from large finite values, takes it too)."""
        dtype = np.int8 if len(views) <= 127 else np.int32
        if len(views) == 1:
            return np.zeros(y.shape, dtype=dtype)
        if not nan_possible:
            not_found = np.greater(y, views[0])
            tap = not_found.astype(dtype)
            below = np.empty(y.shape, dtype=bool)
            for v in views[1:-1]:
                np.greater(y, v, out=below)
                not_found &= below
                np.add(tap, not_found, out=tap, casting="unsafe")
            return tap
        tap = np.full(y.shape, len(views) - 1, dtype=dtype)
        hit = np.empty(y.shape, dtype=bool)
        for t in range(len(views) - 2, -1, -1):
            np.equal(views[t], y, out=hit)
            hit |= np.isnan(views[t])
            np.copyto(tap, t, where=hit)
        return tap

    def _backward_numpy(self, gy, _g_indices):
        N, C, H, W = self.in_shape
        NC = N * C
        idx = self.indices.reshape(NC, -1)
        g = gy.reshape(NC, -1)
        if not self._overlapping():  # each input element in one window at most: a scatter
            gx = np.zeros((NC, H * W), dtype=gy.dtype)
            np.put_along_axis(gx, idx, g, axis=1)
        else:  # overlapping windows add up: one bincount over (row, index) pairs
            flat = idx + (np.arange(NC, dtype=np.int64) * (H * W))[:, None]
            gx = np.bincount(flat.ravel(), weights=g.ravel(), minlength=NC * H * W)
            gx = gx.astype(gy.dtype, copy=False)
        return gx.reshape(self.in_shape)

    # ---------------------------------------------------------------- CUDA
    def _geometry(self):
        return [np.int32(v) for v in (*self.kernel_size, *self.stride, *self.padding,
                                      *self.dilation)]

    def _forward_cuda(self, x):
        xp = self.xp
        x = xp.ascontiguousarray(x)
        N, C, H, W = x.shape
        OH, OW = self.out_size
        y = xp.empty((N, C, OH, OW), dtype=x.dtype)
        indices = xp.empty((N, C, OH, OW), dtype=np.int64)
        dev = x.device.id
        fn = _cuda.kernel("maxpool", CUDA_KERNELS, "max_pool2d_fwd", x.dtype, dev)
        grid, block = _cuda.grid_1d(y.size, sm_count=_cuda.sm_count(dev))
        fn(grid, block, (x, y, indices, np.int64(y.size), np.int32(H), np.int32(W),
                         np.int32(OH), np.int32(OW), *self._geometry()))
        self.indices, self.in_shape = indices, x.shape
        return y, indices

    def _backward_cuda(self, gy, _g_indices):
        xp = self.xp
        gy = xp.ascontiguousarray(gy)
        N, C, H, W = self.in_shape
        OH, OW = self.out_size
        gx = xp.empty(self.in_shape, dtype=gy.dtype)
        dev = gy.device.id
        fn = _cuda.kernel("maxpool", CUDA_KERNELS, "max_pool2d_bwd", gy.dtype, dev)
        grid, block = _cuda.grid_1d(gx.size, sm_count=_cuda.sm_count(dev))
        fn(grid, block, (gy, self.indices, gx, np.int64(gx.size), np.int32(H), np.int32(W),
                         np.int32(OH), np.int32(OW), *self._geometry()))
        return gx


def apply(x: Tensor, kernel_size: tuple, stride: tuple, padding: tuple, dilation: tuple,
          out_size: tuple) -> tuple[Tensor, Tensor]:
    """``(values, indices)`` of max pooling with the arguments of
    :func:`minigrad.references.max_pool2d` (checked by ``F.max_pool2d``)."""
    return MaxPool2dFn.apply(x, kernel_size=tuple(kernel_size), stride=tuple(stride),
                             padding=tuple(padding), dilation=tuple(dilation),
                             out_size=tuple(out_size))
