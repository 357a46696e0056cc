"""Exercise col2im: the adjoint of im2col, which carries a convolution's gradient back to its
input.

Lesson: docs/course/09-convolution.md. minigrad's own answer: ``_col2im_numpy`` in
kernels/conv.py.

``im2col`` (written for you) copies every kernel window of the zero-padded input ``x``
(N, C, H, W) into ``cols`` of shape (C, kh, kw, N, Ho, Wo):

    cols[c, i, j, n, oh, ow] = x_padded[n, c, oh * stride + i, ow * stride + j]

so that a convolution is one matrix product, ``W (O, C kh kw) @ cols (C kh kw, N Ho Wo)``.
Its backward needs the opposite map: ``col2im(gcols)`` sends every entry of ``gcols`` back to
the input pixel it was copied from, and *adds* it there (a pixel in several windows gets the
sum), then drops the padding. Return an array of shape ``x_shape``.

Check your work with ``minigrad exercises check col2im``.
"""

import numpy as np


def output_size(size, kernel, stride, padding):
    """The number of window positions along one dimension."""
    return (size + 2 * padding - kernel) // stride + 1


def im2col(x, kernel_size, stride=1, padding=0):
    """The windows of ``x`` (N, C, H, W) as ``cols`` (C, kh, kw, N, Ho, Wo)."""
    N, C, H, W = x.shape
    kh, kw = kernel_size
    Ho, Wo = output_size(H, kh, stride, padding), output_size(W, kw, stride, padding)
    padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    cols = np.empty((C, kh, kw, N, Ho, Wo), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            # the pixels kernel offset (i, j) reads, one per output position: a strided slice
            rows = slice(i, i + stride * (Ho - 1) + 1, stride)
            columns = slice(j, j + stride * (Wo - 1) + 1, stride)
            cols[:, i, j] = padded[:, :, rows, columns].transpose(1, 0, 2, 3)
    return cols


def col2im(cols, x_shape, kernel_size, stride=1, padding=0):
    """The adjoint of `im2col`: ``cols`` (C, kh, kw, N, Ho, Wo) summed back into ``x_shape``."""
    raise NotImplementedError("write col2im: add each window back where im2col read it")
