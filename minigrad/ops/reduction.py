"""Reductions (sum, max, prod, ...) and the softmax family.

``dim`` may be None (all dimensions), an int, or a tuple; ``keepdim`` keeps reduced dimensions
with size 1. ``max``/``min`` with a ``dim`` return ``(values, indices)`` as in PyTorch.
"""

from __future__ import annotations

import builtins
from collections import namedtuple

import numpy as np

from minigrad import autocast_state, dtypes
from minigrad.autocast_state import state as _autocast
from minigrad.autograd import Function
from minigrad.ops.elementwise import _output, cast, exp, log, maximum, minimum, sqrt, where
from minigrad.ops.indexing import scatter_add
from minigrad.ops.shape import _norm_dim, _norm_dims, expand, reshape
from minigrad.tensor import Tensor

MinMax = namedtuple("MinMax", ["values", "indices"])


def _keep_shape(shape, axes):
    """``shape`` with the reduced ``axes`` set to 1 (the keepdim shape)."""
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


class SumFn(Function):
    """y = sum of x over ``axes``;  gx = gy broadcast back over those axes."""

    def forward(self, x, axes=(), keepdim=False):
        self.axes, self.keepdim = axes, keepdim
        out_dtype = x.dtype if x.dtype.kind in "fV" else np.int64  # (V: bfloat16)
        return x.sum(axis=axes, keepdims=keepdim, dtype=out_dtype)

    def backward(self, gy):
        x = self.inputs[0]
        if not self.keepdim:
            gy = reshape(gy, _keep_shape(x.shape, self.axes))
        return expand(gy, x.shape)


def sum(x: Tensor, dim=None, keepdim: bool = False, dtype=None) -> Tensor:  # noqa: A001
    """Sum over ``dim`` (all dimensions by default). Integer and bool tensors sum to int64."""
    if dtype is not None:
        x = cast(x, dtypes.to_dtype(dtype))
    elif _autocast.on:  # CUDA autocast sums in float32
        x, = autocast_state.fp32(x)
    return SumFn.apply(x, axes=_norm_dims(dim, x.ndim), keepdim=keepdim)


def _count(x: Tensor, axes) -> int:
    n = 1
    for a in axes:
        n *= x.shape[a]
    return n


def mean(x: Tensor, dim=None, keepdim: bool = False, dtype=None) -> Tensor:
    """Arithmetic mean over ``dim`` (a float tensor is required, as in PyTorch)."""
    if dtype is not None:
        x = cast(x, dtypes.to_dtype(dtype))
    if x.dtype.kind not in "fV":  # (V: bfloat16)
        raise RuntimeError(
            f"mean(): could not infer output dtype. Input dtype must be floating point, got "
            f"{x.dtype}. Use x.float().mean()."
        )
    axes = _norm_dims(dim, x.ndim)
    # NOTE: the mean of an empty set is nan, as in PyTorch; avoid a ZeroDivisionError
    n = _count(x, axes)
    return sum(x, axes, keepdim) / n if n else sum(x, axes, keepdim) * float("nan")


def var(x: Tensor, dim=None, unbiased=None, keepdim: bool = False, *, correction=None) -> Tensor:
    """Variance over ``dim``; ``correction=1`` (default) is the unbiased estimator."""
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    axes = _norm_dims(dim, x.ndim)
    mu = mean(x, axes, keepdim=True)
    d = x - mu
    n = _count(x, axes)
    return sum(d * d, axes, keepdim) / builtins.max(n - correction, 0)


def std(x: Tensor, dim=None, unbiased=None, keepdim: bool = False, *, correction=None) -> Tensor:
    """Standard deviation over ``dim`` (sqrt of :func:`var`)."""
    return sqrt(var(x, dim, unbiased, keepdim, correction=correction))


class ProdFn(Function):
    """y = product of x over one axis (or all);  gx = gy * (product of the other elements).

    NOTE: y / x fails where x == 0. The product of the others is y / x when no element of the
    slice is zero, the product of the non-zero ones at the single zero when there is one, and
    0 everywhere when there are two or more; written with ops so double backward works.
    """

    save_outputs = True

    def forward(self, x, axis=None, keepdim=False):
        self.axis, self.keepdim = axis, keepdim
        return x.prod(axis=axis, keepdims=keepdim)

    def backward(self, gy):
        x = self.inputs[0]
        y = _output(self)
        axis = self.axis
        if not self.keepdim:
            shape = _keep_shape(x.shape, range(x.ndim) if axis is None else (axis,))
            gy, y = reshape(gy, shape), reshape(y, shape)
        is_zero = Tensor._make(x.data == 0)
        zeros = is_zero.data.sum(axis=axis, keepdims=True)
        one = Tensor._make(self.xp.ones((), dtype=x.dtype))
        x_nz = where(is_zero, one, x)
        others_if_no_zero = y / x_nz
        prod_nz = prod(x_nz, axis, keepdim=True) if axis is not None else prod(x_nz).reshape(
            y.shape)
        at_single_zero = where(is_zero, prod_nz, Tensor._make(self.xp.zeros((), x.dtype)))
        no_zero = Tensor._make(self.xp.broadcast_to(zeros == 0, x.shape))
        one_zero = Tensor._make(self.xp.broadcast_to(zeros == 1, x.shape))
        zero = Tensor._make(self.xp.zeros((), x.dtype))
        others = where(no_zero, others_if_no_zero, where(one_zero, at_single_zero, zero))
        return gy * others


def prod(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Product over one dimension (or all)."""
    if _autocast.on:  # float32 under autocast (on the CPU's float32 list too, as the losses)
        x, = autocast_state.loss(x)
    axis = None if dim is None else _norm_dim(dim, x.ndim)
    return ProdFn.apply(x, axis=axis, keepdim=keepdim)


class AmaxFn(Function):
    """y = max over ``axes`` (``mode='min'`` for min);  gx = gy shared evenly among the maxima."""

    save_outputs = True

    def forward(self, x, axes=(), keepdim=False, mode="max"):
        self.axes, self.keepdim = axes, keepdim
        if x.size == 0 and builtins.any(x.shape[a] == 0 for a in axes):
            raise RuntimeError(
                f"{mode}(): Expected reduction dim to be specified for input.numel() == 0 or "
                "a non-zero size"
            )
        f = self.xp.max if mode == "max" else self.xp.min
        return f(x, axis=axes, keepdims=keepdim)

    def backward(self, gy):
        x = self.inputs[0]
        y = _output(self)
        shape = _keep_shape(x.shape, self.axes)
        if not self.keepdim:
            gy, y = reshape(gy, shape), reshape(y, shape)
        hit = (x.data == y.data).astype(gy.dtype)
        hit /= hit.sum(axis=self.axes, keepdims=True)  # NOTE: ties share the gradient
        return expand(gy, x.shape) * Tensor._make(hit)


class MaxDimFn(Function):
    """(values, indices) = max over one axis;  gx = gy placed at the index of each maximum."""

    def forward(self, x, axis=0, keepdim=False, mode="max"):
        self.axis, self.keepdim = axis, keepdim
        if x.shape[axis] == 0:
            raise IndexError(
                f"{mode}(): Expected reduction dim {axis} to have non-zero size."
            )
        arg = (self.xp.argmax if mode == "max" else self.xp.argmin)(x, axis=axis, keepdims=True)
        values = self.xp.take_along_axis(x, arg, axis=axis)
        if not keepdim:
            values, arg = values.squeeze(axis), arg.squeeze(axis)
        self.arg = arg.astype(np.int64)
        return values, self.arg

    def backward(self, gy, _g_indices):
        x = self.inputs[0]
        idx = Tensor._make(self.arg)
        if not self.keepdim:
            gy = reshape(gy, _keep_shape(x.shape, (self.axis,)))
            idx = reshape(idx, gy.shape)
        zeros = Tensor._make(self.xp.zeros(x.shape, dtype=gy.dtype))
        return scatter_add(zeros, self.axis, idx, gy)


def _minmax(x, dim, keepdim, mode):
    if isinstance(dim, Tensor):  # max(a, b): the elementwise form
        return (maximum if mode == "max" else minimum)(x, dim)
    if dim is None:
        return AmaxFn.apply(x, axes=tuple(range(x.ndim)), keepdim=False, mode=mode)
    values, indices = MaxDimFn.apply(x, axis=_norm_dim(dim, x.ndim), keepdim=keepdim, mode=mode)
    return MinMax(values, indices)


def max(x: Tensor, dim=None, keepdim: bool = False):  # noqa: A001
    """The maximum; with ``dim``, a ``(values, indices)`` pair, as in PyTorch."""
    return _minmax(x, dim, keepdim, "max")


def min(x: Tensor, dim=None, keepdim: bool = False):  # noqa: A001
    """The minimum; with ``dim``, a ``(values, indices)`` pair, as in PyTorch."""
    return _minmax(x, dim, keepdim, "min")


def amax(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Maximum values over ``dim`` (ties share the gradient)."""
    return AmaxFn.apply(x, axes=_norm_dims(dim, x.ndim), keepdim=keepdim, mode="max")


def amin(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Minimum values over ``dim`` (ties share the gradient)."""
    return AmaxFn.apply(x, axes=_norm_dims(dim, x.ndim), keepdim=keepdim, mode="min")


class _ArgFn(Function):
    differentiable = False

    def forward(self, x, axis=None, keepdim=False, mode="max"):
        f = self.xp.argmax if mode == "max" else self.xp.argmin
        if axis is None:
            out = f(x)
            return out.reshape((1,) * x.ndim) if keepdim else out.astype(np.int64)
        return f(x, axis=axis, keepdims=keepdim).astype(np.int64)


def argmax(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Index of the maximum (of the flattened tensor when ``dim`` is None)."""
    axis = None if dim is None else _norm_dim(dim, x.ndim)
    return _ArgFn.apply(x, axis=axis, keepdim=keepdim, mode="max")


def argmin(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Index of the minimum (of the flattened tensor when ``dim`` is None)."""
    axis = None if dim is None else _norm_dim(dim, x.ndim)
    return _ArgFn.apply(x, axis=axis, keepdim=keepdim, mode="min")


def logsumexp(x: Tensor, dim, keepdim: bool = False) -> Tensor:
    """log(sum(exp(x))) over ``dim``, computed stably.

    NOTE: with m = max(x) held constant, log(sum(exp(x - m))) + m equals the exact value for
    any m and its gradient is softmax(x), so no overflow even at |x| ~ 1e4.
    """
    if _autocast.on:  # CUDA autocast: float32
        x, = autocast_state.fp32(x)
    axes = _norm_dims(dim, x.ndim)
    m = x.data.max(axis=axes, keepdims=True) if x.data.size else x.xp.zeros(
        _keep_shape(x.shape, axes), x.dtype)
    m = x.xp.where(x.xp.isfinite(m), m, 0)  # rows of -inf: avoid inf - inf
    m_t = Tensor._make(m)
    out = log(sum(exp(x - m_t), axes, keepdim=True)) + m_t
    return out if keepdim else reshape(out, tuple(s for i, s in enumerate(out.shape)
                                                 if i not in axes))


class SoftmaxFn(Function):
    """y = exp(x - max) / sum(exp(x - max));  gx = y * (gy - sum(gy * y))."""

    save_outputs = True

    def forward(self, x, axis=-1):
        self.axis = axis
        xp = self.xp
        # NOTE: subtracting the row maximum keeps exp() finite for logits like 1e4
        e = xp.exp(x - x.max(axis=axis, keepdims=True))
        e /= e.sum(axis=axis, keepdims=True)
        return e

    def backward(self, gy):
        y = _output(self)
        return y * (gy - sum(gy * y, self.axis, keepdim=True))


class LogSoftmaxFn(Function):
    """y = x - max - log(sum(exp(x - max)));  gx = gy - exp(y) * sum(gy)."""

    save_outputs = True

    def forward(self, x, axis=-1):
        self.axis = axis
        xp = self.xp
        shifted = x - x.max(axis=axis, keepdims=True)
        shifted -= xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
        return shifted

    def backward(self, gy):
        y = _output(self)
        return gy - exp(y) * sum(gy, self.axis, keepdim=True)


def _softmax_dim(x: Tensor, dim):
    if dim is None:  # PyTorch's legacy default
        dim = 0 if x.ndim in (0, 1, 3) else 1
    return _norm_dim(dim, x.ndim)


def softmax(x: Tensor, dim=None, dtype=None) -> Tensor:
    """exp(x) normalised to sum to 1 along ``dim`` (stable for large logits)."""
    if dtype is not None:
        x = cast(x, dtypes.to_dtype(dtype))
    elif _autocast.on:  # CUDA autocast: float32
        x, = autocast_state.fp32(x)
    if x.ndim == 0:
        return reshape(SoftmaxFn.apply(reshape(x, (1,)), axis=0), ())
    return SoftmaxFn.apply(x, axis=_softmax_dim(x, dim))


def log_softmax(x: Tensor, dim=None, dtype=None) -> Tensor:
    """log(softmax(x)) along ``dim``, computed without forming softmax."""
    if dtype is not None:
        x = cast(x, dtypes.to_dtype(dtype))
    elif _autocast.on:  # CUDA autocast: float32
        x, = autocast_state.fp32(x)
    if x.ndim == 0:
        return reshape(LogSoftmaxFn.apply(reshape(x, (1,)), axis=0), ())
    return LogSoftmaxFn.apply(x, axis=_softmax_dim(x, dim))
