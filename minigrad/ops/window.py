"""im2col and col2im: the sliding windows of a 2-d convolution as one matrix, and its adjoint.

Two linear primitives, each the other's backward (so a graph built on them differentiates to
any order): the composite convolutions of ``minigrad.references`` are one ``im2col`` and one
matrix product (a GEMM-shaped formulation of the kernel windows, with no per-offset nodes).
With ``x (N, C, H, W)`` zero padded by ``((top, bottom), (left, right))``::

    im2col(x)[(c, i, j), (n, oh, ow)] = x_padded[n, c, oh*sh + i*dh, ow*sw + j*dw]
    col2im(cols)[n, c, h, w] = sum of cols[(c, i, j), (n, oh, ow)] over the windows that
                               read x[n, c, h, w]

The columns are channel-major, ``(C kh kw, N Ho Wo)``: a convolution is then one product
``W (C_out, C kh kw) @ cols`` per group (the rows split into groups as the channels do). Both
are ``kh * kw`` strided slice copies (im2col) or adds (col2im): no per-pixel Python, and on any
device (NumPy or CuPy).

Example:
    >>> import minigrad as mg
    >>> from minigrad.ops.window import im2col
    >>> im2col(mg.arange(9.0).reshape(1, 1, 3, 3), (2, 2)).shape  # 4 taps, 4 windows
    (4, 4)
"""

from __future__ import annotations

import numpy as np

from minigrad.autograd import Function
from minigrad.tensor import Tensor

__all__ = ["col2im", "im2col"]


def _output_size(size: int, kernel: int, stride: int, dilation: int) -> int:
    """Positions of a dilated kernel in a (padded) length: ``(size - d (k - 1) - 1) // s + 1``."""
    return (size - dilation * (kernel - 1) - 1) // stride + 1


class _Windows:
    """The geometry shared by the two Functions (stored on each node)."""

    def __init__(self, in_shape, kernel, stride, dilation, padding):
        self.in_shape = tuple(in_shape)
        self.kernel, self.stride, self.dilation = tuple(kernel), tuple(stride), tuple(dilation)
        self.padding = tuple(tuple(p) for p in padding)
        N, C, H, W = self.in_shape
        (top, bottom), (left, right) = self.padding
        self.frame = (H + top + bottom, W + left + right)
        self.out = tuple(_output_size(f, k, s, d) for f, k, s, d in
                         zip(self.frame, self.kernel, self.stride, self.dilation))

    def params(self) -> dict:
        return dict(kernel=self.kernel, stride=self.stride, dilation=self.dilation,
                    padding=self.padding)

    def taps(self):
        """``(i, j, rows, columns)``: each kernel offset and the frame slices it reads."""
        (kh, kw), (sh, sw), (dh, dw), (Ho, Wo) = self.kernel, self.stride, self.dilation, self.out
        for i in range(kh):
            for j in range(kw):
                yield (i, j, slice(i * dh, i * dh + sh * (Ho - 1) + 1, sh),
                       slice(j * dw, j * dw + sw * (Wo - 1) + 1, sw))


def _im2col(xp, x, g: _Windows):
    N, C, H, W = g.in_shape
    (kh, kw), (Ho, Wo) = g.kernel, g.out
    (top, _), (left, _) = g.padding
    frame = x.transpose(1, 0, 2, 3)  # (C, N, H, W): each tap's copy reads rows of x
    if frame.shape[2:] != g.frame:
        framed = xp.zeros((C, N) + g.frame, dtype=x.dtype)
        framed[:, :, top:top + H, left:left + W] = frame
        frame = framed
    if xp is np:  # one copy of a strided view (NumPy orders the whole copy at once: W5's
        # tiling pool 2.2 -> 1.4 ms, its second conv 2.2 -> 1.9 against a copy per tap)
        (sh, sw), (dh, dw) = g.stride, g.dilation
        sC, sN, sH, sW = frame.strides
        view = np.lib.stride_tricks.as_strided(
            frame, (C, kh, kw, N, Ho, Wo), (sC, dh * sH, dw * sW, sN, sh * sH, sw * sW),
            writeable=False)
        return np.ascontiguousarray(view).reshape(C * kh * kw, N * Ho * Wo)
    cols = xp.empty((C, kh, kw, N, Ho, Wo), dtype=x.dtype)
    for i, j, rows, columns in g.taps():
        cols[:, i, j] = frame[:, :, rows, columns]
    return cols.reshape(C * kh * kw, N * Ho * Wo)


def _col2im(xp, cols, g: _Windows):
    N, C, H, W = g.in_shape
    (kh, kw), (Ho, Wo) = g.kernel, g.out
    (top, _), (left, _) = g.padding
    cols = cols.reshape(C, kh, kw, N, Ho, Wo)
    # taps that never share a pixel (a pooling's tiling windows) are assigned, not added, and
    # when they cover the whole frame it needs no zeros
    disjoint = all(s >= d * (k - 1) + 1 for k, s, d in zip(g.kernel, g.stride, g.dilation))
    covered = disjoint and all(d == 1 and s == k and o * s == f for k, s, d, o, f in
                               zip(g.kernel, g.stride, g.dilation, g.out, g.frame))
    frame = (xp.empty if covered else xp.zeros)((C, N) + g.frame, dtype=cols.dtype)
    for i, j, rows, columns in g.taps():  # (no two entries of one tap land on one pixel)
        if disjoint:
            frame[:, :, rows, columns] = cols[:, i, j]
        else:
            frame[:, :, rows, columns] += cols[:, i, j]
    # (N, C, H, W) as a view of the channel-major frame, no copy: the composite conv's and
    # pool's tensors are all channel-major in memory (each a view of its product's output), so
    # the ops this gradient meets next read it in order
    return frame[:, :, top:top + H, left:left + W].transpose(1, 0, 2, 3)


class Im2colFn(Function):
    """cols = im2col(x);  gx = col2im(gcols) (the adjoint)."""

    def forward(self, x, kernel=(), stride=(), dilation=(), padding=()):
        self.windows = _Windows(x.shape, kernel, stride, dilation, padding)
        return _im2col(self.xp, x, self.windows)

    def backward(self, gcols):
        return Col2imFn.apply(gcols, in_shape=self.windows.in_shape, **self.windows.params())


class Col2imFn(Function):
    """x = col2im(cols);  gcols = im2col(gx) (the adjoint)."""

    def forward(self, cols, in_shape=(), kernel=(), stride=(), dilation=(), padding=()):
        self.windows = _Windows(in_shape, kernel, stride, dilation, padding)
        return _col2im(self.xp, cols, self.windows)

    def backward(self, gx):
        return Im2colFn.apply(gx, **self.windows.params())


def _check(shape, kernel, stride, dilation, padding, fn: str) -> _Windows:
    if len(shape) != 4:
        raise ValueError(f"{fn}: expected an input shape (N, C, H, W), got {tuple(shape)}")
    g = _Windows(shape, kernel, stride, dilation, padding)
    if min(g.out) < 1:
        raise ValueError(f"{fn}: kernel {g.kernel} with dilation {g.dilation} is larger than "
                         f"the padded input {g.frame}")
    return g


def im2col(x: Tensor, kernel_size: tuple, stride: tuple = (1, 1), dilation: tuple = (1, 1),
           padding: tuple = ((0, 0), (0, 0))) -> Tensor:
    """The ``(C kh kw, N Ho Wo)`` matrix of the kernel windows of ``x (N, C, H, W)``.

    Args:
        x: the input.
        kernel_size, stride, dilation: ``(height, width)`` pairs.
        padding: ``((top, bottom), (left, right))`` zeros around ``x``.

    Returns:
        ``cols[(c, i, j), (n, oh, ow)] = x_padded[n, c, oh*sh + i*dh, ow*sw + j*dw]``.
    """
    g = _check(x.shape, kernel_size, stride, dilation, padding, "im2col")
    return Im2colFn.apply(x, **g.params())


def col2im(cols: Tensor, input_shape: tuple, kernel_size: tuple, stride: tuple = (1, 1),
           dilation: tuple = (1, 1), padding: tuple = ((0, 0), (0, 0))) -> Tensor:
    """The adjoint of :func:`im2col`: ``(C kh kw, N Ho Wo)`` columns summed back into an
    ``input_shape`` ``(N, C, H, W)`` tensor (each entry gets every window entry that reads
    it; the padding is dropped)."""
    g = _check(input_shape, kernel_size, stride, dilation, padding, "col2im")
    C, N = g.in_shape[1], g.in_shape[0]
    expected = (C * g.kernel[0] * g.kernel[1], N * g.out[0] * g.out[1])
    if tuple(cols.shape) != expected:
        raise ValueError(f"col2im: expected columns of shape {expected} for input "
                         f"{g.in_shape}, got {tuple(cols.shape)}")
    return Col2imFn.apply(cols, in_shape=g.in_shape, **g.params())
