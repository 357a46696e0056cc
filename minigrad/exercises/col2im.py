"""Exercise col2im: checked by the adjoint identity ``<im2col(x), y> = <x, col2im(y)>`` for
random x and y (no reference needed), then entry by entry against minigrad's own col2im
(``kernels/conv.py``), over windows that overlap, stride and padding."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from minigrad.exercises._base import Exercise, Wrong, close
from minigrad.kernels import conv

__all__ = ["EXERCISE", "solution"]  # the checks are reached through EXERCISE.checks

# (x shape (N, C, H, W), kernel size, stride, padding)
GEOMETRIES = [
    ((1, 1, 4, 4), (2, 2), 2, 0),  # windows side by side: no pixel in two windows
    ((2, 3, 5, 4), (3, 2), 1, 0),  # overlapping windows
    ((2, 2, 5, 5), (3, 3), 2, 1),  # stride and padding
]


def _cols_shape(x_shape, kernel_size, stride, padding, module):
    N, C, H, W = x_shape
    kh, kw = kernel_size
    return (C, kh, kw, N, module.output_size(H, kh, stride, padding),
            module.output_size(W, kw, stride, padding))


def _col2im(module, geometry, cols):
    x_shape, kernel_size, stride, padding = geometry
    got = module.col2im(cols.copy(), x_shape, kernel_size, stride, padding)
    if np.shape(got) != x_shape:
        raise Wrong(f"col2im(..., x_shape={x_shape}, kernel {kernel_size}, stride {stride}, "
                    f"padding {padding}) has shape {np.shape(got)}, expected {x_shape}"
                    + (" (did you drop the padding?)" if padding else ""))
    return got


def _check_adjoint(module, geometry):
    x_shape, kernel_size, stride, padding = geometry
    rng = np.random.default_rng(0)
    x = rng.normal(size=x_shape)
    y = rng.normal(size=_cols_shape(x_shape, kernel_size, stride, padding, module))
    left = np.sum(module.im2col(x, kernel_size, stride, padding) * y)
    right = np.sum(x * _col2im(module, geometry, y))
    if not np.isclose(left, right, rtol=1e-9):
        hint = (" (windows overlap here: add into the pixels, do not assign)"
                if kernel_size[0] > stride or kernel_size[1] > stride else "")
        raise Wrong(f"col2im is not im2col's adjoint for x {x_shape}, kernel {kernel_size}, "
                    f"stride {stride}, padding {padding}: <im2col(x), y> = {left:.6g} but "
                    f"<x, col2im(y)> = {right:.6g}{hint}")


def check_separate(module):
    _check_adjoint(module, GEOMETRIES[0])


def check_overlap(module):
    _check_adjoint(module, GEOMETRIES[1])


def check_stride_padding(module):
    _check_adjoint(module, GEOMETRIES[2])


def check_against_minigrad(module):
    rng = np.random.default_rng(1)
    for geometry in GEOMETRIES:
        x_shape, kernel_size, stride, padding = geometry
        cols = rng.normal(size=_cols_shape(x_shape, kernel_size, stride, padding, module))
        close(f"col2im for x {x_shape}, kernel {kernel_size}, stride {stride}, padding "
              f"{padding}", _col2im(module, geometry, cols), _reference_col2im(
                  cols, x_shape, kernel_size, stride, padding))


def _geometry(x_shape, kernel_size, stride, padding):
    N, C, H, W = x_shape
    kh, kw = kernel_size
    Ho, Wo = ((H + 2 * padding - kh) // stride + 1, (W + 2 * padding - kw) // stride + 1)
    return conv._ConvGeometry(N, C, H, W, kh, kw, Ho, Wo, (stride, stride), (1, 1),
                              (padding, padding))


def _reference_col2im(cols, x_shape, kernel_size, stride=1, padding=0):
    return conv._col2im_numpy(np, cols, _geometry(x_shape, kernel_size, stride, padding))


def solution():
    """minigrad's own im2col and col2im (kernels/conv.py), under the stub's names."""
    def im2col(x, kernel_size, stride=1, padding=0):
        return conv._im2col_numpy(np, x, _geometry(x.shape, kernel_size, stride, padding))

    return SimpleNamespace(
        output_size=lambda size, kernel, stride, padding: (size + 2 * padding - kernel)
        // stride + 1,
        im2col=im2col, col2im=_reference_col2im)


EXERCISE = Exercise(
    name="col2im",
    title="col2im, the adjoint of im2col (a convolution's input gradient)",
    lesson="09-convolution.md",
    solution_in="kernels/conv.py: _col2im_numpy",
    checks=(
        ("the adjoint identity, windows side by side", check_separate),
        ("the adjoint identity, overlapping windows", check_overlap),
        ("the adjoint identity, stride 2 and padding 1", check_stride_padding),
        ("equal to minigrad's col2im, entry by entry", check_against_minigrad),
    ),
    solution=solution,
)
