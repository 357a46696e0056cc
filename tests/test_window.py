"""The im2col/col2im primitives (minigrad/ops/window.py) the composite convolutions are built
on: their values against the fused kernel's NumPy routine and a loop, the adjoint identity,
gradients to second order, every device, and clear errors."""

import numpy as np
import pytest

import minigrad as mg
from minigrad.kernels import conv as conv_kernel
from minigrad.ops.window import col2im, im2col

# (input shape, kernel, stride, dilation, ((top, bottom), (left, right)))
CASES = [
    ((2, 3, 5, 6), (2, 3), (2, 2), (1, 2), ((1, 1), (1, 1))),
    ((1, 2, 7, 5), (3, 3), (1, 1), (1, 1), ((0, 0), (0, 0))),
    ((3, 1, 6, 6), (3, 2), (2, 1), (2, 1), ((2, 0), (0, 3))),  # asymmetric padding
    # taps that never share a pixel (col2im assigns them): tiling the input, tiling the padded
    # frame, and with gaps between the windows (pixels no tap reads: zeros)
    ((2, 3, 6, 4), (2, 2), (2, 2), (1, 1), ((0, 0), (0, 0))),
    ((2, 1, 4, 4), (2, 2), (2, 2), (1, 1), ((1, 1), (1, 1))),
    ((1, 2, 7, 5), (2, 2), (3, 2), (1, 1), ((0, 0), (1, 0))),
]


def _loop_im2col(x, kernel, stride, dilation, padding):
    """im2col by its definition, one window entry at a time."""
    (top, bottom), (left, right) = padding
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    N, C, Hp, Wp = xp.shape
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    Ho, Wo = (Hp - dh * (kh - 1) - 1) // sh + 1, (Wp - dw * (kw - 1) - 1) // sw + 1
    cols = np.zeros((C, kh, kw, N, Ho, Wo))
    for c, i, j, n, oh, ow in np.ndindex(C, kh, kw, N, Ho, Wo):
        cols[c, i, j, n, oh, ow] = xp[n, c, oh * sh + i * dh, ow * sw + j * dw]
    return cols.reshape(C * kh * kw, N * Ho * Wo)


@pytest.mark.parametrize("shape,kernel,stride,dilation,padding", CASES)
def test_im2col_values_and_adjoint(device, shape, kernel, stride, dilation, padding):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(shape)
    cols = im2col(mg.tensor(a, device=device), kernel, stride, dilation, padding)
    expected = _loop_im2col(a, kernel, stride, dilation, padding)
    np.testing.assert_array_equal(mg.backend.to_device(cols.data, mg.backend.CPU), expected)
    # <im2col(x), c> = <x, col2im(c)>
    c = rng.standard_normal(expected.shape)
    back = col2im(mg.tensor(c, device=device), shape, kernel, stride, dilation, padding)
    back = mg.backend.to_device(back.data, mg.backend.CPU)
    np.testing.assert_allclose(np.sum(expected * c), np.sum(a * back), rtol=1e-12)


@pytest.mark.parametrize("shape,kernel,stride,dilation,padding", CASES)
def test_col2im_values(shape, kernel, stride, dilation, padding):
    """col2im by its definition, one window entry at a time (overlapping taps add up, pixels no
    tap reads are 0), for added and for assigned (never overlapping) taps."""
    (top, bottom), (left, right) = padding
    cols = np.random.default_rng(3).standard_normal(
        _loop_im2col(np.zeros(shape), kernel, stride, dilation, padding).shape)
    N, C, H, W = shape
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    frame = np.zeros((N, C, H + top + bottom, W + left + right))
    Ho = (frame.shape[2] - dh * (kh - 1) - 1) // sh + 1
    Wo = (frame.shape[3] - dw * (kw - 1) - 1) // sw + 1
    windows = cols.reshape(C, kh, kw, N, Ho, Wo)
    for c, i, j, n, oh, ow in np.ndindex(windows.shape):
        frame[n, c, oh * sh + i * dh, ow * sw + j * dw] += windows[c, i, j, n, oh, ow]
    out = col2im(mg.tensor(cols), shape, kernel, stride, dilation, padding)
    np.testing.assert_allclose(out.numpy(), frame[:, :, top:top + H, left:left + W],
                               rtol=1e-12, atol=1e-12)


def test_same_columns_as_the_fused_kernel():
    """The kernel's NumPy im2col (one copy of an as_strided view) gives the same matrix."""
    a = np.random.default_rng(1).standard_normal((2, 3, 5, 6))
    g = conv_kernel._ConvGeometry(2, 3, 5, 6, 2, 3, 3, 2, (2, 2), (1, 2), (1, 1))
    cols = im2col(mg.tensor(a), (2, 3), (2, 2), (1, 2), ((1, 1), (1, 1)))
    np.testing.assert_array_equal(cols.numpy(), conv_kernel._im2col_numpy(np, a, g).reshape(
        cols.shape))


@pytest.mark.parametrize("shape,kernel,stride,dilation,padding", CASES[:2])
def test_gradients_to_second_order(shape, kernel, stride, dilation, padding):
    """Each is the other's backward: gradcheck and gradgradcheck in float64 (the square makes
    the second derivative depend on the input)."""
    rng = np.random.default_rng(2)
    x = mg.tensor(rng.standard_normal(shape), requires_grad=True)
    n_cols = _loop_im2col(np.zeros(shape), kernel, stride, dilation, padding).shape
    c = mg.tensor(rng.standard_normal(n_cols), requires_grad=True)
    assert mg.autograd.gradcheck(lambda t: im2col(t, kernel, stride, dilation, padding) ** 2,
                                 [x])
    assert mg.autograd.gradcheck(
        lambda t: col2im(t, shape, kernel, stride, dilation, padding) ** 2, [c])
    assert mg.autograd.gradgradcheck(
        lambda t: im2col(t, kernel, stride, dilation, padding) ** 2, [x])


def test_errors_name_the_problem():
    x = mg.zeros(1, 1, 3, 3)
    with pytest.raises(ValueError, match="larger than the padded input"):
        im2col(x, (4, 4))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        im2col(mg.zeros(3, 3), (2, 2))
    with pytest.raises(ValueError, match=r"expected columns of shape \(4, 4\)"):
        col2im(mg.zeros(4, 5), (1, 1, 3, 3), (2, 2))
