"""Indexing primitives: ``x[key]`` (basic and advanced), gather and scatter-add.

The backward of reading values is adding the gradient back where they were read from. With
advanced (integer-array) indices an element can be read several times, so the gradients must
accumulate: that is ``np.add.at`` on the CPU and ``cupyx.scatter_add`` on the GPU, the one
place this module branches on the backend.
"""

from __future__ import annotations

import numpy as np

from minigrad.autograd import Function
from minigrad.ops.elementwise import binary_operands, lift, where
from minigrad.ops.shape import _norm_dim
from minigrad.tensor import Tensor


def normalize_index(key):
    """Turn an index made of Tensors, lists, slices, ints, None and ... into backend terms."""
    if isinstance(key, tuple):
        return tuple(_norm_one(k) for k in key)
    return _norm_one(key)


def _norm_one(k):
    if isinstance(k, Tensor):
        if k.dtype.kind not in "iub":
            raise IndexError(
                f"tensors used as indices must be long, int, byte or bool tensors (got {k.dtype})"
            )
        return k.data
    if isinstance(k, list):
        return np.asarray(k)
    return k


def _is_advanced(key) -> bool:
    keys = key if isinstance(key, tuple) else (key,)
    return any(hasattr(k, "shape") and getattr(k, "ndim", 0) >= 0 and not isinstance(k, int)
               for k in keys)


def _move_key(key, xp):
    """Integer/bool arrays in the key on the same device as the data."""
    if xp is np:
        return key
    keys = key if isinstance(key, tuple) else (key,)
    moved = tuple(xp.asarray(k) if isinstance(k, np.ndarray) else k for k in keys)
    return moved if isinstance(key, tuple) else moved[0]


def _scatter_add(xp, out, key, values):
    """out[key] += values, accumulating repeated indices."""
    if xp is np:
        np.add.at(out, key, values)
    else:
        import cupyx  # noqa: PLC0415  (only reached with CuPy arrays)

        cupyx.scatter_add(out, key, values)


def _bools_to_ints(key, xp):
    """Replace boolean masks in a key by the integer indices of their True entries."""
    keys = key if isinstance(key, tuple) else (key,)
    out = []
    for k in keys:
        if hasattr(k, "dtype") and k.dtype == np.bool_:
            out.extend(xp.nonzero(k))
        else:
            out.append(k)
    return tuple(out)


class GetItemFn(Function):
    """y = x[key];  gx = zeros like x with gy added at key (repeats accumulate)."""

    def forward(self, x, key=None):
        self.key = _move_key(key, self.xp)
        return x[self.key]

    def backward(self, gy):
        return IndexAddFn.apply(gy, key=self.key, shape=self.inputs[0].shape)


class IndexAddFn(Function):
    """y = zeros(shape) with x added at key;  gx = gy[key].  (GetItem's backward.)"""

    def forward(self, x, key=None, shape=()):
        self.key = key
        out = self.xp.zeros(shape, dtype=x.dtype)
        if _is_advanced(key):
            _scatter_add(self.xp, out, _bools_to_ints(key, self.xp), x)
        else:
            out[key] = x  # basic indexing never repeats an element
        return out

    def backward(self, gy):
        return GetItemFn.apply(gy, key=self.key)


def getitem(x: Tensor, key) -> Tensor:
    """``x[key]`` with gradient; integer-array indices that repeat accumulate their gradient."""
    return GetItemFn.apply(x, key=normalize_index(key))


def index_select(x: Tensor, dim: int, index: Tensor) -> Tensor:
    """The entries of ``x`` along ``dim`` at ``index`` (a 1-d integer tensor)."""
    d = _norm_dim(dim, x.ndim)
    return getitem(x, (slice(None),) * d + (index,))


def _along_axis_key(xp, index, dim):
    """An index tuple that addresses ``index`` along ``dim`` and every position elsewhere."""
    grids = list(xp.ogrid[tuple(slice(0, s) for s in index.shape)]) if index.ndim else []
    grids[dim] = index
    return tuple(grids)


class GatherFn(Function):
    """``y[i][j] = x[i][index[i][j]]`` (dim = 1);  ``gx = scatter_add(zeros, dim, index, gy)``."""

    def forward(self, x, index, dim=0):
        self.dim = dim
        # NOTE: PyTorch allows index to be smaller than x in the other dimensions
        if any(index.shape[d] > x.shape[d] for d in range(x.ndim) if d != dim):
            raise RuntimeError(
                f"gather: index {tuple(index.shape)} is larger than input {tuple(x.shape)} "
                f"outside dimension {dim}"
            )
        if index.size and (index.min() < -x.shape[dim] or index.max() >= x.shape[dim]):
            raise IndexError(
                f"gather: index out of range for dimension {dim} with size {x.shape[dim]}"
            )
        return x[_along_axis_key(self.xp, index, dim)]

    def backward(self, gy):
        x, index = self.inputs
        zeros = Tensor._make(self.xp.zeros(x.shape, dtype=gy.dtype))
        return scatter_add(zeros, self.dim, index, gy), None


class ScatterAddFn(Function):
    """y = x with src added at index along dim;  gx = gy, gsrc = gather(gy, dim, index)."""

    def forward(self, x, index, src, dim=0):
        self.dim = dim
        out = x.copy()
        key = _along_axis_key(self.xp, index, dim)
        src = src[tuple(slice(0, s) for s in index.shape)]
        _scatter_add(self.xp, out, key, src)
        return out

    def backward(self, gy):
        index = self.inputs[1]
        gsrc = gather(gy, self.dim, index) if self.needs_input_grad[2] else None
        return gy, None, gsrc


def _check_index(index: Tensor, name: str):
    if not isinstance(index, Tensor) or index.dtype.kind not in "iu":
        raise RuntimeError(f"{name}(): Expected dtype int64 for index")


def gather(x: Tensor, dim: int, index: Tensor) -> Tensor:
    """Pick values along ``dim`` at ``index``: ``out[i][j] = x[i][index[i][j]]`` for dim=1."""
    _check_index(index, "gather")
    d = _norm_dim(dim, x.ndim)
    if index.ndim != x.ndim:
        raise RuntimeError(
            f"gather(): Index tensor must have the same number of dimensions as input tensor "
            f"({index.ndim} vs {x.ndim})"
        )
    return GatherFn.apply(x, index, dim=d)


def scatter_add(x: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    """A copy of ``x`` with ``src`` added at ``index`` along ``dim`` (repeats accumulate)."""
    _check_index(index, "scatter_add")
    x, src = binary_operands(x, src)
    return ScatterAddFn.apply(x, index, src, dim=_norm_dim(dim, x.ndim))


def masked_fill(x: Tensor, mask: Tensor, value) -> Tensor:
    """``x`` with ``value`` where ``mask`` is True (the mask broadcasts)."""
    if isinstance(mask, Tensor) and mask.dtype != np.bool_:
        raise RuntimeError(f"masked_fill_ only supports boolean masks, but got mask with dtype "
                           f"{mask.dtype}")
    return where(mask, lift(value, x), x)


def _tri_mask(x: Tensor, diagonal: int, upper: bool):
    n, m = x.shape[-2], x.shape[-1]
    xp = x.xp
    rows = xp.arange(n)[:, None]
    cols = xp.arange(m)[None, :]
    return Tensor._make(cols - rows >= diagonal if upper else cols - rows <= diagonal)


def tril(x: Tensor, diagonal: int = 0) -> Tensor:
    """The lower triangle of the last two dimensions (the rest zeroed)."""
    return where(_tri_mask(x, diagonal, False), x, lift(0, x))


def triu(x: Tensor, diagonal: int = 0) -> Tensor:
    """The upper triangle of the last two dimensions (the rest zeroed)."""
    return where(_tri_mask(x, diagonal, True), x, lift(0, x))
