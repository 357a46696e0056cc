"""Reordering and tiling ops: flip, roll, repeat, repeat_interleave, diag; running sums
and products: cumsum, cumprod.

Only ``flip`` and ``cumsum`` are primitives (each backward is one of the two: the gradient of
a flip is the same flip, that of a running sum the running sum taken from the end); the rest
are composites of slicing, ``expand``, ``gather``/``scatter_add`` and ``mul``.
"""

from __future__ import annotations

import numpy as np

from minigrad import autocast_state, backend, dtypes
from minigrad.autocast_state import state as _autocast
from minigrad.autograd import Function
from minigrad.ops.elementwise import cast, mul
from minigrad.ops.indexing import getitem, index_select, scatter_add
from minigrad.ops.shape import _norm_dim, cat, expand, reshape, stack, unbind, unsqueeze
from minigrad.tensor import Tensor


def _dims_tuple(dims):
    return (dims,) if isinstance(dims, int) else tuple(dims)


class FlipFn(Function):
    """y = x reversed along ``axes``;  gx = gy reversed along the same axes."""

    def forward(self, x, axes=()):
        self.axes = axes
        return self.xp.flip(x, axis=axes).copy() if axes else x.copy()

    def backward(self, gy):
        return flip(gy, self.axes)


def flip(x: Tensor, dims) -> Tensor:
    """``x`` reversed along ``dims`` (a copy, as in PyTorch).

    Example:
        >>> import minigrad as mg
        >>> mg.flip(mg.tensor([[1, 2], [3, 4]]), dims=[1])
        tensor([[2, 1],
                [4, 3]])
    """
    axes = tuple(_norm_dim(d, x.ndim) for d in _dims_tuple(dims))
    if len(set(axes)) != len(axes):
        raise RuntimeError(f"flip: dims {list(_dims_tuple(dims))} repeat a dimension")
    return FlipFn.apply(x, axes=axes)


def roll(x: Tensor, shifts, dims=None) -> Tensor:
    """Elements shifted along ``dims`` by ``shifts``, wrapping around; without ``dims`` the
    flattened tensor is rolled and reshaped back.

    Example:
        >>> import minigrad as mg
        >>> mg.roll(mg.tensor([1, 2, 3, 4]), 1)
        tensor([4, 1, 2, 3])
    """
    if dims is None:
        return reshape(roll(reshape(x, (-1,)), shifts, 0), x.shape)
    shifts, dims = _dims_tuple(shifts), _dims_tuple(dims)
    if len(shifts) != len(dims):
        raise RuntimeError(
            f"roll: shifts and dimensions must align. shifts: {len(shifts)}, dims:{len(dims)}"
        )
    out = x
    for shift, dim in zip(shifts, dims):
        d = _norm_dim(dim, x.ndim)
        n = x.shape[d]
        s = shift % n if n else 0
        if s == 0:
            continue
        head = (slice(None),) * d
        # the last s entries move to the front: two slices, concatenated
        out = cat([getitem(out, head + (slice(n - s, None),)),
                   getitem(out, head + (slice(0, n - s),))], dim=d)
    return out if out is not x else x * 1


def repeat(x: Tensor, *sizes) -> Tensor:
    """``x`` tiled ``sizes[i]`` times along each dimension (PyTorch's ``Tensor.repeat``,
    NumPy's ``tile``); extra leading sizes add dimensions.

    Example:
        >>> import minigrad as mg
        >>> mg.tensor([1, 2]).repeat(2, 2)
        tensor([[1, 2, 1, 2],
                [1, 2, 1, 2]])
    """
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    if len(sizes) < x.ndim:
        raise RuntimeError(
            "Number of dimensions of repeat dims can not be smaller than number of dimensions "
            "of tensor"
        )
    shape = (1,) * (len(sizes) - x.ndim) + tuple(x.shape)
    # each dimension s becomes a pair (r, s) broadcast from (1, s), then the pair is merged;
    # expand's backward sums the r copies
    paired = reshape(x, tuple(v for s in shape for v in (1, s)))
    tiled = expand(paired, tuple(v for r, s in zip(sizes, shape) for v in (r, s)))
    return reshape(tiled, tuple(r * s for r, s in zip(sizes, shape)))


def repeat_interleave(x: Tensor, repeats, dim=None, *, output_size=None) -> Tensor:
    """Each element repeated ``repeats`` times in place along ``dim`` (``[1, 2] -> [1, 1, 2,
    2]``); ``repeats`` is an int or a 1-D tensor with one count per element. Without ``dim``
    the input is flattened first.

    Example:
        >>> import minigrad as mg
        >>> mg.repeat_interleave(mg.tensor([1, 2]), 2)
        tensor([1, 1, 2, 2])
    """
    if dim is None:
        x, dim = reshape(x, (-1,)), 0
    d = _norm_dim(dim, x.ndim)
    if isinstance(repeats, Tensor) and repeats.numel() == 1 and repeats.ndim <= 1:
        repeats = int(repeats.item())
    if isinstance(repeats, int):
        if repeats < 0:
            raise RuntimeError("repeats can not be negative")
        # (.., n, ..) -> (.., n, r, ..) by broadcasting -> (.., n * r, ..)
        y = expand(unsqueeze(x, d + 1), x.shape[:d + 1] + (repeats,) + x.shape[d + 1:])
        return reshape(y, x.shape[:d] + (x.shape[d] * repeats,) + x.shape[d + 1:])
    # NOTE: the output length depends on the counts, so they are read on the host (a sync
    # on a GPU, as in PyTorch without output_size)
    counts = repeats.numpy() if isinstance(repeats, Tensor) else np.asarray(repeats)
    if counts.ndim != 1 or counts.shape[0] != x.shape[d]:
        raise RuntimeError(
            f"repeats must have the same size as input along dim, but got repeats.size(0) = "
            f"{counts.shape[0] if counts.ndim else 1} and input.size({dim}) = {x.shape[d]}"
        )
    if counts.size and int(counts.min()) < 0:
        raise RuntimeError("repeats can not be negative")
    index = np.repeat(np.arange(x.shape[d], dtype=np.int64), counts)
    return index_select(x, d, Tensor._make(backend.to_device(index, x.device)))


def diag(x: Tensor, diagonal: int = 0) -> Tensor:
    """A 1-D input as the ``diagonal``-th diagonal of a square matrix, or the
    ``diagonal``-th diagonal of a 2-D input as a 1-D tensor (``diagonal > 0`` above the main
    one).

    Example:
        >>> import minigrad as mg
        >>> mg.diag(mg.tensor([[1, 2], [3, 4]]))
        tensor([1, 4])
    """
    xp = x.xp
    if x.ndim == 1:
        n = x.shape[0]
        m = n + abs(diagonal)
        rows = xp.arange(n) + max(-diagonal, 0)
        cols = xp.arange(n) + max(diagonal, 0)
        flat = Tensor._make((rows * m + cols).astype(np.int64))
        zeros = Tensor._make(xp.zeros(m * m, dtype=x.dtype))
        # the values land at (row, col) of the flattened matrix; gather is the backward
        return reshape(scatter_add(zeros, 0, flat, x), (m, m))
    if x.ndim == 2:
        n, m = x.shape
        start_r, start_c = max(-diagonal, 0), max(diagonal, 0)
        k = max(min(n - start_r, m - start_c), 0)
        rows = Tensor._make((xp.arange(k) + start_r).astype(np.int64))
        cols = Tensor._make((xp.arange(k) + start_c).astype(np.int64))
        return getitem(x, (rows, cols))
    raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {x.ndim}D")


class CumsumFn(Function):
    """y_i = x_0 + ... + x_i along ``axis``;  gx_i = gy_i + ... + gy_{n-1} (a reversed cumsum).
    """

    def forward(self, x, axis=0):
        self.axis = axis
        out_dtype = x.dtype if x.dtype.kind in "fc" or dtypes.is_floating(x.dtype) else np.int64
        return self.xp.cumsum(x, axis=axis, dtype=out_dtype)

    def backward(self, gy):
        return flip(cumsum(flip(gy, (self.axis,)), self.axis), (self.axis,))


def cumsum(x: Tensor, dim: int, dtype=None) -> Tensor:
    """Running sum along ``dim`` (integers and bools sum to int64, as in PyTorch).

    Example:
        >>> import minigrad as mg
        >>> mg.cumsum(mg.tensor([1, 2, 3]), dim=0)
        tensor([1, 3, 6])
    """
    if dtype is not None:
        x = cast(x, dtypes.to_dtype(dtype))
    elif _autocast.on:  # on CUDA autocast's float32 list
        x, = autocast_state.fp32_cuda(x)
    if x.ndim == 0:
        return reshape(CumsumFn.apply(reshape(x, (1,)), axis=0), ())
    return CumsumFn.apply(x, axis=_norm_dim(dim, x.ndim))


def cumprod(x: Tensor, dim: int, dtype=None) -> Tensor:
    """Running product along ``dim``.

    A composite of ``mul`` steps, so the gradient is exact where inputs are zero (the
    shortcut ``sum(gy * y) / x`` divides by them) and double backward comes for free.

    Example:
        >>> import minigrad as mg
        >>> mg.cumprod(mg.tensor([1.0, 2.0, 3.0]), dim=0)
        tensor([1., 2., 6.])
    """
    if dtype is not None:
        x = cast(x, dtypes.to_dtype(dtype))
    elif _autocast.on:  # on CUDA autocast's float32 list
        x, = autocast_state.fp32_cuda(x)
    if x.ndim == 0:
        return x * 1
    d = _norm_dim(dim, x.ndim)
    if x.shape[d] == 0:
        return x * 1
    if x.dtype.kind in "biu":  # integers multiply in int64, as in PyTorch
        x = cast(x, dtypes.int64)
    steps = unbind(x, d)
    running = [steps[0]]
    for step in steps[1:]:
        running.append(mul(running[-1], step))
    return stack(running, d)
