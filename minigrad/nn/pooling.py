"""Pooling layers and their functional forms, with PyTorch's names, arguments and numbers.

``F.max_pool1d/2d`` (padding, dilation, ``ceil_mode``, ``return_indices``), ``F.avg_pool1d/2d``
(``ceil_mode``, ``count_include_pad``), ``F.adaptive_avg_pool1d/2d`` and the modules
``nn.MaxPool1d/2d``, ``nn.AvgPool1d/2d``, ``nn.AdaptiveAvgPool1d/2d``. The 1-d forms run the
2-d code on a height of 1, and an unbatched input gets a batch of one.

- Max pooling dispatches like every fused op: the kernel (``kernels/maxpool.py``, whose
  backward scatters the gradient to the argmax) or its composite reference
  (``references.max_pool2d``).
- Average pooling is a linear map, so it is one primitive with a hand-written backward: the
  forward adds ``kh * kw`` strided slices of the zero-padded input (no per-pixel Python) and
  divides by PyTorch's divisor; the backward is the adjoint, the divided gradient added back
  through the same slices (col2im as strided slice adds), itself a primitive whose backward is
  the forward again, so double backward works.
- Adaptive average pooling averages over PyTorch's windows ``[floor(i S / O), ceil((i+1) S /
  O))``; each dimension's averaging is a constant ``(O, S)`` matrix, so the pooling is two
  matmuls (``P_h @ x @ P_w^T``) and matmul's backward is its backward.

The output size follows PyTorch: ``floor((S + 2p - d (k - 1) - 1) / s) + 1`` (``ceil`` with
``ceil_mode``, but the last window must start inside the input or its left padding).

Example:
    >>> import minigrad as mg
    >>> import minigrad.nn.functional as F
    >>> x = mg.arange(16.0).reshape(1, 1, 4, 4)
    >>> F.max_pool2d(x, 2)
    tensor([[[[ 5.,  7.],
              [13., 15.]]]])
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np

from minigrad import kernels, references
from minigrad.autograd import Function
from minigrad.fused import fused_enabled
from minigrad.nn.module import Module
from minigrad.tensor import Tensor

_Size = Union[int, Sequence[int]]

__all__ = [
    "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d", "adaptive_avg_pool1d",
    "adaptive_avg_pool2d", "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d",
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d",
]


# ---------------------------------------------------------------------------- argument checks


def _ntuple(value, n: int, fn: str, name: str) -> tuple:
    """An int or a sequence of 1 or ``n`` ints as an ``n``-tuple."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return (int(value),) * n
    values = tuple(int(v) for v in value)
    if len(values) == 1:
        return values * n
    if len(values) != n:
        raise ValueError(f"{fn}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    return values


def _pool_args(fn: str, n: int, kernel_size, stride, padding, dilation) -> tuple:
    """(kernel, stride, padding, dilation) as n-tuples, checked with PyTorch's rules."""
    kernel = _ntuple(kernel_size, n, fn, "kernel_size")
    stride = kernel if stride is None or stride == [] or stride == () else _ntuple(
        stride, n, fn, "stride")
    padding = _ntuple(padding, n, fn, "padding")
    dilation = _ntuple(dilation, n, fn, "dilation")
    if min(kernel) <= 0:
        raise ValueError(f"{fn}: kernel_size should be greater than zero, but got {kernel}")
    if min(stride) <= 0:
        raise ValueError(f"{fn}: stride should be greater than zero, but got {stride}")
    if min(dilation) <= 0:
        raise ValueError(f"{fn}: dilation should be greater than zero, but got {dilation}")
    if min(padding) < 0:
        raise ValueError(f"{fn}: padding must be non-negative, but got {padding}")
    for k, p in zip(kernel, padding):
        if p > k // 2:  # NOTE: PyTorch's bound is half the kernel, not the dilated kernel
            raise ValueError(f"{fn}: pad should be at most half of kernel size, but got "
                             f"pad={p} and kernel_size={k}")
    return kernel, stride, padding, dilation


def pool_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int,
                     ceil_mode: bool) -> int:
    """PyTorch's pooling output length along one dimension."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1  # the last window would start in the right padding
    return out


def _as_4d(input: Tensor, fn: str, spatial: int) -> tuple:
    """``(x4, unbatch)``: the input as ``(N, C, H, W)`` (a 1-d input gets H = 1, an unbatched
    one N = 1), and a function that gives an output back the input's layout."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{fn}(): argument 'input' must be a Tensor, not {type(input).__name__}")
    if input.ndim not in (spatial + 1, spatial + 2) or 0 in input.shape[-spatial - 1:]:
        raise ValueError(
            f"{fn}: expected a {spatial + 1}-D (unbatched) or {spatial + 2}-D (batched) input "
            f"with non-zero channels and {'length' if spatial == 1 else 'size'}, got input of "
            f"shape {tuple(input.shape)}")
    batched = input.ndim == spatial + 2
    x = input if batched else input.unsqueeze(0)
    if spatial == 1:
        x = x.unsqueeze(2)  # (N, C, 1, L)

    def back(t: Tensor) -> Tensor:
        if spatial == 1:
            t = t.squeeze(2)
        return t if batched else t.squeeze(0)

    return x, back


def _out_sizes(fn: str, x: Tensor, kernel, stride, padding, dilation, ceil_mode) -> tuple:
    sizes = x.shape[2:]
    out = tuple(pool_output_size(s, k, st, p, d, ceil_mode)
                for s, k, st, p, d in zip(sizes, kernel, stride, padding, dilation))
    if min(out) < 1:
        raise ValueError(
            f"{fn}: given input size {tuple(x.shape[1:])}, the calculated output size "
            f"{(x.shape[1],) + out} is too small (kernel_size={kernel}, padding={padding}, "
            f"dilation={dilation})")
    return out


# ---------------------------------------------------------------------------- max pooling


def _max_pool(fn: str, spatial: int, input: Tensor, kernel_size, stride, padding, dilation,
              ceil_mode: bool, return_indices: bool):
    x, back = _as_4d(input, fn, spatial)
    if spatial == 1:
        args = _lift_1d(kernel_size, stride, padding, dilation)
    else:
        args = (kernel_size, stride, padding, dilation)
    kernel, stride, padding, dilation = _pool_args(fn, 2, *args)
    out = _out_sizes(fn, x, kernel, stride, padding, dilation, ceil_mode)
    if fused_enabled("max_pool2d", x):
        if not return_indices:  # (the kernel then makes none)
            return back(kernels.maxpool.apply(x, kernel, stride, padding, dilation, out,
                                              with_indices=False))
        values, indices = kernels.maxpool.apply(x, kernel, stride, padding, dilation, out)
    else:
        values, indices = references.max_pool2d(x, kernel, stride, padding, dilation, out,
                                                with_indices=return_indices)
    if return_indices:
        return back(values), back(indices)
    return back(values)


def _lift_1d(kernel_size, stride, padding, dilation) -> tuple:
    """1-d pooling arguments as 2-d ones on a height of 1 (kernel 1, stride 1, no padding)."""
    def one(v, name, default):
        if v is None or v == [] or v == ():
            return None
        (value,) = _ntuple(v, 1, "pool1d", name)
        return (default, value)

    kernel = one(kernel_size, "kernel_size", 1)
    return (kernel, one(stride, "stride", 1), one(padding, "padding", 0),
            one(dilation, "dilation", 1))


def max_pool2d(input: Tensor, kernel_size: _Size, stride: Optional[_Size] = None,
               padding: _Size = 0, dilation: _Size = 1, ceil_mode: bool = False,
               return_indices: bool = False):
    """2-D max pooling over ``(N, C, H, W)`` or ``(C, H, W)``.

    Args:
        input: the input.
        kernel_size: the window, an int or ``(kh, kw)``.
        stride: the step between windows (default: ``kernel_size``).
        padding: implicit -inf padding on both sides, at most half the kernel.
        dilation: the step between a window's taps.
        ceil_mode: round the output size up (a last, partial window).
        return_indices: also return the flat index ``h * W + w`` of each maximum (what
            ``MaxUnpool2d`` takes).

    Returns:
        ``(N, C, OH, OW)``, and the int64 indices with ``return_indices``.

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> F.max_pool2d(mg.arange(16.0).reshape(1, 1, 4, 4), 3, stride=1).shape
        (1, 1, 2, 2)
    """
    return _max_pool("max_pool2d", 2, input, kernel_size, stride, padding, dilation,
                     ceil_mode, return_indices)


def max_pool1d(input: Tensor, kernel_size: _Size, stride: Optional[_Size] = None,
               padding: _Size = 0, dilation: _Size = 1, ceil_mode: bool = False,
               return_indices: bool = False):
    """1-D max pooling over ``(N, C, L)`` or ``(C, L)``; the arguments of
    :func:`max_pool2d` as single ints (indices are positions along L).

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> F.max_pool1d(mg.tensor([[[1.0, 3.0, 2.0, 0.0]]]), 2)
        tensor([[[3., 2.]]])
    """
    return _max_pool("max_pool1d", 1, input, kernel_size, stride, padding, dilation,
                     ceil_mode, return_indices)


# ---------------------------------------------------------------------------- average pooling


def _window_sum(xp, x, kernel, stride, padding, out_size):
    """Sum of each window of ``x`` (N, C, H, W) zero-padded: (N, C, OH, OW)."""
    N, C, H, W = x.shape
    (kh, kw), (sh, sw), (ph, pw), (OH, OW) = kernel, stride, padding, out_size
    Hp = max(H + ph, (OH - 1) * sh + kh)
    Wp = max(W + pw, (OW - 1) * sw + kw)
    if (Hp, Wp) != (H, W):
        padded = xp.zeros((N, C, Hp, Wp), dtype=x.dtype)
        padded[:, :, ph:ph + H, pw:pw + W] = x
    else:
        padded = x
    y = xp.zeros((N, C, OH, OW), dtype=x.dtype)
    for a in range(kh):
        for b in range(kw):
            y += padded[:, :, a:a + (OH - 1) * sh + 1:sh, b:b + (OW - 1) * sw + 1:sw]
    return y


def _window_scatter(xp, g, in_shape, kernel, stride, padding):
    """The adjoint of :func:`_window_sum`: each window's value added to its input positions."""
    N, C, H, W = in_shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    OH, OW = g.shape[2:]
    Hp = max(H + ph, (OH - 1) * sh + kh)
    Wp = max(W + pw, (OW - 1) * sw + kw)
    gx = xp.zeros((N, C, Hp, Wp), dtype=g.dtype)
    for a in range(kh):
        for b in range(kw):
            gx[:, :, a:a + (OH - 1) * sh + 1:sh, b:b + (OW - 1) * sw + 1:sw] += g
    return gx[:, :, ph:ph + H, pw:pw + W]


class AvgPool2dFn(Function):
    """y = window_sum(x) * inv_divisor;  gx = window_scatter(gy * inv_divisor).

    A primitive because the window sum has no op of its own; ``inv_divisor`` is the
    ``(OH, OW)`` array of 1 / PyTorch's divisor per output position.
    """

    def forward(self, x, kernel, stride, padding, out_size, inv_divisor):
        self.params = dict(kernel=kernel, stride=stride, padding=padding, out_size=out_size,
                           inv_divisor=inv_divisor)
        self.in_shape = x.shape
        y = _window_sum(self.xp, x, kernel, stride, padding, out_size)
        y *= inv_divisor.astype(x.dtype, copy=False)
        return y

    def backward(self, gy):
        return AvgPool2dBackwardFn.apply(gy, in_shape=self.in_shape, **self.params)


class AvgPool2dBackwardFn(Function):
    """gx = window_scatter(gy * inv_divisor);  ggy = window_sum(ggx) * inv_divisor (the
    forward again: the map is linear and this is its adjoint)."""

    def forward(self, gy, in_shape, kernel, stride, padding, out_size, inv_divisor):
        self.params = dict(kernel=kernel, stride=stride, padding=padding, out_size=out_size,
                           inv_divisor=inv_divisor)
        g = gy * inv_divisor.astype(gy.dtype, copy=False)
        return self.xp.ascontiguousarray(
            _window_scatter(self.xp, g, in_shape, kernel, stride, padding))

    def backward(self, ggx):
        return AvgPool2dFn.apply(ggx, **self.params)


def _avg_divisor(xp, sizes, kernel, stride, padding, out_size, count_include_pad,
                 divisor_override) -> object:
    """1 / PyTorch's divisor per output position, ``(OH, OW)`` float64: the window clipped to
    the padded input (``count_include_pad``) or to the input itself."""
    if divisor_override is not None:
        return xp.full(out_size, 1.0 / divisor_override)
    counts = []
    for S, k, s, p, n_out in zip(sizes, kernel, stride, padding, out_size):
        start = np.arange(n_out) * s - p
        end = np.minimum(start + k, S + p)
        if count_include_pad:
            counts.append(end - start)
        else:
            counts.append(np.minimum(end, S) - np.maximum(start, 0))
    return xp.asarray(1.0 / np.outer(counts[0], counts[1]))


def _avg_pool(fn: str, spatial: int, input: Tensor, kernel_size, stride, padding, ceil_mode,
              count_include_pad, divisor_override=None) -> Tensor:
    x, back = _as_4d(input, fn, spatial)
    if spatial == 1:
        args = _lift_1d(kernel_size, stride, padding, 1)
    else:
        args = (kernel_size, stride, padding, 1)
    kernel, stride, padding, _ = _pool_args(fn, 2, *args)
    if divisor_override is not None and divisor_override == 0:
        raise ValueError(f"{fn}: divisor must be not zero")
    out = _out_sizes(fn, x, kernel, stride, padding, (1, 1), ceil_mode)
    inv = _avg_divisor(x.xp, x.shape[2:], kernel, stride, padding, out, count_include_pad,
                       divisor_override)
    y = AvgPool2dFn.apply(x, kernel=kernel, stride=stride, padding=padding, out_size=out,
                          inv_divisor=inv)
    return back(y)


def avg_pool2d(input: Tensor, kernel_size: _Size, stride: Optional[_Size] = None,
               padding: _Size = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: Optional[int] = None) -> Tensor:
    """2-D average pooling over ``(N, C, H, W)`` or ``(C, H, W)``.

    Args:
        input: the input.
        kernel_size: the window, an int or ``(kh, kw)``.
        stride: the step between windows (default: ``kernel_size``).
        padding: implicit zero padding on both sides, at most half the kernel.
        ceil_mode: round the output size up (a last, partial window).
        count_include_pad: divide by the window clipped to the padded input (True) or to the
            input (False). With ``ceil_mode`` a window past the padding is clipped either way.
        divisor_override: divide every window's sum by this instead.

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> F.avg_pool2d(mg.arange(16.0).reshape(1, 1, 4, 4), 2)
        tensor([[[[ 2.5000,  4.5000],
                  [10.5000, 12.5000]]]])
    """
    return _avg_pool("avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, divisor_override)


def avg_pool1d(input: Tensor, kernel_size: _Size, stride: Optional[_Size] = None,
               padding: _Size = 0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """1-D average pooling over ``(N, C, L)`` or ``(C, L)`` (see :func:`avg_pool2d`).

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> F.avg_pool1d(mg.tensor([[[1.0, 3.0, 2.0, 0.0]]]), 2)
        tensor([[[2., 1.]]])
    """
    return _avg_pool("avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad)


# ---------------------------------------------------------------------------- adaptive


def _adaptive_matrix(xp, size: int, out: int, dtype) -> object:
    """The ``(out, size)`` averaging matrix of PyTorch's adaptive windows."""
    i = np.arange(out)
    start = (i * size) // out
    end = -((-(i + 1) * size) // out)  # ceil((i + 1) * size / out)
    cols = np.arange(size)
    inside = (cols[None, :] >= start[:, None]) & (cols[None, :] < end[:, None])
    return xp.asarray(inside / (end - start)[:, None], dtype=dtype)


def _adaptive_sizes(fn: str, output_size, n: int, sizes) -> tuple:
    if isinstance(output_size, (int, np.integer)) or output_size is None:
        output_size = (output_size,) * n
    output_size = tuple(output_size)
    if len(output_size) == 1:
        output_size = output_size * n
    if len(output_size) != n:
        raise ValueError(f"{fn}: output_size must be an int or {n} ints, got {output_size!r}")
    out = tuple(s if o is None else int(o) for o, s in zip(output_size, sizes))
    if min(out) < 0:
        raise ValueError(f"{fn}: output_size must be non-negative, got {out}")
    return out


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """Average pooling to a fixed ``(OH, OW)`` whatever the input size (PyTorch's windows).

    Args:
        input: ``(N, C, H, W)`` or ``(C, H, W)``.
        output_size: an int or ``(OH, OW)``; None keeps that dimension's size.

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> F.adaptive_avg_pool2d(mg.ones(2, 3, 5, 7), 1).shape
        (2, 3, 1, 1)
    """
    x, back = _as_4d(input, "adaptive_avg_pool2d", 2)
    OH, OW = _adaptive_sizes("adaptive_avg_pool2d", output_size, 2, x.shape[2:])
    H, W = x.shape[2:]
    ph = Tensor._make(_adaptive_matrix(x.xp, H, OH, x.dtype))  # (OH, H)
    pw = Tensor._make(_adaptive_matrix(x.xp, W, OW, x.dtype).T)  # (W, OW)
    return back(ph @ x @ pw)


def adaptive_avg_pool1d(input: Tensor, output_size) -> Tensor:
    """Average pooling of ``(N, C, L)`` or ``(C, L)`` to a fixed length (PyTorch's windows).

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> F.adaptive_avg_pool1d(mg.tensor([[[1.0, 2.0, 3.0, 4.0, 5.0]]]), 2)
        tensor([[[2., 4.]]])
    """
    x, back = _as_4d(input, "adaptive_avg_pool1d", 1)
    (out,) = _adaptive_sizes("adaptive_avg_pool1d", output_size, 1, x.shape[3:])
    p = Tensor._make(_adaptive_matrix(x.xp, x.shape[3], out, x.dtype).T)  # (L, out)
    return back(x @ p)


# ---------------------------------------------------------------------------- modules


class _MaxPoolNd(Module):
    def __init__(self, kernel_size: _Size, stride: Optional[_Size] = None, padding: _Size = 0,
                 dilation: _Size = 1, return_indices: bool = False, ceil_mode: bool = False):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if (stride is not None) else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool2d(_MaxPoolNd):
    """2-D max pooling (see :func:`minigrad.nn.functional.max_pool2d` for the arguments).

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> nn.MaxPool2d(2)(mg.zeros(1, 3, 28, 28)).shape
        (1, 3, 14, 14)
    """

    def forward(self, input: Tensor):
        return max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                          ceil_mode=self.ceil_mode, return_indices=self.return_indices)


class MaxPool1d(_MaxPoolNd):
    """1-D max pooling (see :func:`minigrad.nn.functional.max_pool1d`).

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> nn.MaxPool1d(2)(mg.zeros(1, 3, 40)).shape
        (1, 3, 20)
    """

    def forward(self, input: Tensor):
        return max_pool1d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                          ceil_mode=self.ceil_mode, return_indices=self.return_indices)


class _AvgPoolNd(Module):
    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(_AvgPoolNd):
    """2-D average pooling (see :func:`minigrad.nn.functional.avg_pool2d` for the arguments).

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> nn.AvgPool2d(2)(mg.zeros(1, 3, 28, 28)).shape
        (1, 3, 14, 14)
    """

    def __init__(self, kernel_size: _Size, stride: Optional[_Size] = None, padding: _Size = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: Optional[int] = None):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if (stride is not None) else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, input: Tensor) -> Tensor:
        return avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                          self.count_include_pad, self.divisor_override)


class AvgPool1d(_AvgPoolNd):
    """1-D average pooling (see :func:`minigrad.nn.functional.avg_pool1d`).

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> nn.AvgPool1d(4)(mg.zeros(1, 3, 40)).shape
        (1, 3, 10)
    """

    def __init__(self, kernel_size: _Size, stride: Optional[_Size] = None, padding: _Size = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True):
        super().__init__()
        # NOTE: PyTorch's AvgPool1d keeps 1-tuples (its repr shows them)
        self.kernel_size = _ntuple(kernel_size, 1, "AvgPool1d", "kernel_size")
        self.stride = _ntuple(stride if (stride is not None) else kernel_size, 1, "AvgPool1d",
                              "stride")
        self.padding = _ntuple(padding, 1, "AvgPool1d", "padding")
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad

    def forward(self, input: Tensor) -> Tensor:
        return avg_pool1d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                          self.count_include_pad)


class _AdaptiveAvgPoolNd(Module):
    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    """Average pooling to a fixed output size (``1`` gives global average pooling).

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> nn.AdaptiveAvgPool2d((1, 1))(mg.zeros(2, 8, 7, 7)).shape
        (2, 8, 1, 1)
    """

    def forward(self, input: Tensor) -> Tensor:
        return adaptive_avg_pool2d(input, self.output_size)


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    """1-D average pooling to a fixed output length.

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> nn.AdaptiveAvgPool1d(1)(mg.zeros(2, 8, 13)).shape
        (2, 8, 1)
    """

    def forward(self, input: Tensor) -> Tensor:
        return adaptive_avg_pool1d(input, self.output_size)
