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
Windows that tile the input (stride = kernel, no padding or dilation: the usual ``MaxPool2d(2)``)
take a shorter way: the batch in chunks of samples of about ``TILE_CHUNK_BYTES`` (every pass
over a chunk finds it in cache; the chunks shared by the kernel threads, ``MINIGRAD_NUM_THREADS``,
with OpenBLAS's idle workers stopped for the section: ``kernels/_blas.py``; W5's step about
1 ms faster on 2 threads), the node keeps only the winning tap, one byte per output, and
the backward writes each tap's share of dx (dy where the tap won, else 0) into a strided view;
the int64 indices are made only when the caller asks for them (``with_indices``).

CUDA (``maxpool.cu``): the forward one thread per output (grid-stride), the backward one thread
per input element, which sums the dy of the few windows that can reach it and chose it (a
gather: no atomics, the same sum order every run).
"""

from __future__ import annotations

import numpy as np

from minigrad import references
from minigrad.fused import FusedFunction
from minigrad.tensor import Tensor

from . import _blas, _cuda

CUDA_KERNELS = ("max_pool2d_fwd", "max_pool2d_bwd")
# Input bytes per chunk of samples for tiling windows on NumPy (a few hundred KiB: the chunk,
# its outputs and taps stay in a core's L2 over the passes).
TILE_CHUNK_BYTES = 512 << 10


class MaxPool2dFn(FusedFunction, kernel="max_pool2d"):
    """x (N, C, H, W) -> (y, indices), both (N, C, OH, OW); indices int64, not differentiable.

    Parameters (keywords of :meth:`apply`, pairs for (height, width)): ``kernel_size``,
    ``stride``, ``padding``, ``dilation`` and ``out_size`` (computed by ``F.max_pool2d``);
    ``with_indices=False`` makes ``y`` the only output.
    """

    kernel_size: tuple
    stride: tuple
    padding: tuple
    dilation: tuple
    out_size: tuple
    with_indices = True

    def reference(self, x):
        y, indices = references.max_pool2d(x, self.kernel_size, self.stride, self.padding,
                                           self.dilation, self.out_size)
        return (y, indices) if self.with_indices else y

    def _outputs(self, y, indices):
        return (y, indices) if self.with_indices else y

    def _tiles(self, shape) -> bool:
        """True when the windows tile the input ``(N, C, H, W)``: stride = kernel, no padding
        or dilation, every window inside (``ceil_mode`` may make a last one reach past)."""
        (kh, kw), (OH, OW) = self.kernel_size, self.out_size
        return (tuple(self.stride) == (kh, kw) and not any(self.padding)
                and tuple(self.dilation) == (1, 1) and OH * kh <= shape[2]
                and OW * kw <= shape[3])

    def _overlapping(self) -> bool:
        """True when an input element can fall in more than one window."""
        return any(s < d * (k - 1) + 1 for k, s, d in
                   zip(self.kernel_size, self.stride, self.dilation))

    # ---------------------------------------------------------------- NumPy
    def _forward_numpy(self, x):
        if self._tiles(x.shape):
            return self._forward_tiles(x)
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
        return self._outputs(y, indices)

    def _tile_chunks(self, shape, itemsize: int) -> list:
        """Slices of the batch of about ``TILE_CHUNK_BYTES`` of input each."""
        N, per_sample = shape[0], max(1, int(np.prod(shape[1:])) * itemsize)
        step = max(1, TILE_CHUNK_BYTES // per_sample)
        return [slice(n, n + step) for n in range(0, N, step)]

    def _forward_tiles(self, x):
        """Windows that tile ``x``: per chunk of samples, the maximum over the taps' strided
        views, then the first tap holding it (kept as one byte per output)."""
        N, C, H, W = x.shape
        (kh, kw), (OH, OW) = self.kernel_size, self.out_size
        y = np.empty((N, C, OH, OW), dtype=x.dtype)
        tap = np.empty(y.shape, dtype=np.int8 if kh * kw <= 127 else np.int32)

        def chunk(part):
            xs, ys = x[part], y[part]
            views = [xs[:, :, a:a + (OH - 1) * kh + 1:kh, b:b + (OW - 1) * kw + 1:kw]
                     for a in range(kh) for b in range(kw)]
            if len(views) == 1:
                np.copyto(ys, views[0])
            else:
                np.maximum(views[0], views[1], out=ys)
                for v in views[2:]:
                    np.maximum(ys, v, out=ys)
            tap[part] = self._first_taps(views, ys, nan_possible=not np.isfinite(ys.sum()))

        # (each chunk writes its own samples: the kernel threads may share them out)
        _blas.run_quiet(chunk, self._tile_chunks(x.shape, x.itemsize))
        self.tap, self.in_shape = tap, x.shape
        indices = None
        if self.with_indices:  # the flat index: a window base plus the tap's offset
            offsets = np.array([a * W + b for a in range(kh) for b in range(kw)], dtype=np.int64)
            indices = offsets.take(tap)
            indices += np.arange(OH)[:, None] * (kh * W) + np.arange(OW)[None, :] * kw
        return self._outputs(y, indices)

    def _backward_tiles(self, gy):
        """dx of tiling windows: for each tap its strided view of dx gets dy where the tap won
        and 0 elsewhere (rows and columns past the last window: 0)."""
        N, C, H, W = self.in_shape
        (kh, kw), (OH, OW) = self.kernel_size, self.out_size
        covered = (OH * kh, OW * kw) == (H, W)
        gx = np.empty(self.in_shape, dtype=gy.dtype) if covered else np.zeros(self.in_shape,
                                                                               dtype=gy.dtype)
        tiles = gx[:, :, :OH * kh, :OW * kw].reshape(N, C, OH, kh, OW, kw)  # (a view)

        def chunk(part):
            gys, taps = gy[part], self.tap[part]
            won = np.empty(taps.shape, dtype=bool)
            for t in range(kh * kw):
                np.equal(taps, t, out=won)
                np.multiply(gys, won, out=tiles[part, :, :, t // kw, :, t % kw])

        _blas.run_quiet(chunk, self._tile_chunks(self.in_shape, gy.itemsize))
        return gx

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

    def _backward_numpy(self, gy, _g_indices=None):
        if self._tiles(self.in_shape):
            return self._backward_tiles(gy)
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
        return self._outputs(y, indices)

    def _backward_cuda(self, gy, _g_indices=None):
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
          out_size: tuple, with_indices: bool = True):
    """``(values, indices)`` of max pooling with the arguments of
    :func:`minigrad.references.max_pool2d` (checked by ``F.max_pool2d``); only the values
    when not ``with_indices`` (the int64 indices are then not made on NumPy)."""
    return MaxPool2dFn.apply(x, kernel_size=tuple(kernel_size), stride=tuple(stride),
                             padding=tuple(padding), dilation=tuple(dilation),
                             out_size=tuple(out_size), with_indices=bool(with_indices))
