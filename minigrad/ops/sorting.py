"""Sorting, selection and counting: sort, argsort, topk, unique, nonzero, any, all.

``sort`` and ``topk`` are composites: the order is found on the raw array (no gradient, as in
PyTorch), the values are ``gather``-ed with it, so the gradient goes back to the picked
positions through gather's backward. The rest return indices, counts or booleans: no gradient.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from minigrad.autograd import Function
from minigrad.ops.indexing import gather
from minigrad.ops.shape import _norm_dim, _norm_dims
from minigrad.tensor import Tensor

SortResult = namedtuple("SortResult", ["values", "indices"])
TopKResult = namedtuple("TopKResult", ["values", "indices"])


def _order(x: Tensor, axis: int, descending: bool, stable: bool):
    """Indices (int64) that sort ``x`` along ``axis``."""
    xp = x.xp
    data = x.data
    if x.ndim == 0:
        return xp.zeros((), dtype=np.int64)
    if descending:
        # NOTE: a stable descending order keeps equal values in their original order, which
        # reversing an ascending sort would not; sort the negated keys instead
        if data.dtype.kind == "b":
            keys = ~data
        elif data.dtype.kind == "u":
            keys = data.max() - data if data.size else data
        else:
            keys = -data
        order = xp.argsort(keys, axis=axis, kind="stable")
        if data.dtype.kind == "f":
            # NOTE: NaN counts as the largest value (PyTorch): a second stable pass moves the
            # NaNs, last after negation, to the front and keeps every other order
            is_num = xp.take_along_axis(~xp.isnan(data), order, axis=axis).astype(np.int8)
            order = xp.take_along_axis(order, xp.argsort(is_num, axis=axis, kind="stable"),
                                       axis=axis)
        return order.astype(np.int64)
    return xp.argsort(data, axis=axis, kind="stable" if stable else None).astype(np.int64)


def argsort(x: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    """Indices that sort ``x`` along ``dim`` (no gradient).

    Example:
        >>> import minigrad as mg
        >>> mg.argsort(mg.tensor([3.0, 1.0, 2.0]))
        tensor([1, 2, 0])
    """
    axis = _norm_dim(dim, x.ndim)
    return Tensor._make(_order(x, axis, descending, stable))


def sort(x: Tensor, dim: int = -1, descending: bool = False, stable: bool = False):
    """Sorted values along ``dim`` and the indices they came from, ``(values, indices)``.

    The gradient of ``values`` goes back to the positions the values came from.

    Example:
        >>> import minigrad as mg
        >>> mg.sort(mg.tensor([3.0, 1.0, 2.0])).values
        tensor([1., 2., 3.])
    """
    if x.ndim == 0:
        return SortResult(x * 1, Tensor._make(x.xp.zeros((), dtype=np.int64)))
    axis = _norm_dim(dim, x.ndim)
    idx = Tensor._make(_order(x, axis, descending, stable))
    return SortResult(gather(x, axis, idx), idx)


def topk(x: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):  # noqa: A002
    """The ``k`` largest (or smallest) values along ``dim`` and their indices.

    Ties keep the lower index first. Results are always sorted (``sorted=False`` allows any
    order in PyTorch; this one is a valid choice).

    Example:
        >>> import minigrad as mg
        >>> mg.topk(mg.tensor([1.0, 5.0, 3.0]), 2)
        TopKResult(values=tensor([5., 3.]), indices=tensor([1, 2]))
    """
    axis = _norm_dim(dim, x.ndim)
    n = x.shape[axis] if x.ndim else 1
    if not 0 <= k <= n:
        raise RuntimeError(f"selected index k out of range (k={k}, size {n} along dim {dim})")
    if x.ndim == 0:
        return TopKResult(x * 1, Tensor._make(x.xp.zeros((), dtype=np.int64)))
    order = _order(x, axis, descending=largest, stable=True)
    idx = Tensor._make(x.xp.ascontiguousarray(order[(slice(None),) * axis + (slice(0, k),)]))
    return TopKResult(gather(x, axis, idx), idx)


def unique(x: Tensor, sorted: bool = True, return_inverse: bool = False,  # noqa: A002
           return_counts: bool = False, dim=None):
    """The distinct values of ``x`` (flattened), sorted; no gradient.

    With ``return_inverse`` also the index of each element in the result (shaped like ``x``);
    with ``return_counts`` how often each value occurs. ``dim`` picks distinct slices instead.

    Example:
        >>> import minigrad as mg
        >>> mg.unique(mg.tensor([2, 1, 2, 3]), return_counts=True)
        (tensor([1, 2, 3]), tensor([1, 2, 1]))
    """
    xp = x.xp
    if dim is None:
        values, inverse, counts = xp.unique(x.data, return_inverse=True, return_counts=True)
        inverse = inverse.reshape(x.shape)
    else:
        axis = _norm_dim(dim, x.ndim)
        values, inverse, counts = xp.unique(x.data, return_inverse=True, return_counts=True,
                                            axis=axis)
        inverse = inverse.reshape(-1)
    out = [Tensor._make(values)]
    if return_inverse:
        out.append(Tensor._make(inverse.astype(np.int64)))
    if return_counts:
        out.append(Tensor._make(counts.astype(np.int64)))
    return out[0] if len(out) == 1 else tuple(out)


def nonzero(x: Tensor, *, as_tuple: bool = False):
    """Indices of the non-zero elements: an ``(n, ndim)`` int64 tensor, or with ``as_tuple``
    one 1-D tensor per dimension (as ``x[x.nonzero(as_tuple=True)]`` wants).

    Example:
        >>> import minigrad as mg
        >>> mg.nonzero(mg.tensor([0, 3, 0, 4]))
        tensor([[1],
                [3]])
    """
    xp = x.xp
    data = x.data if x.ndim else x.data.reshape(1)
    where = xp.nonzero(data)
    if as_tuple:
        if x.ndim == 0:
            return (Tensor._make(where[0].astype(np.int64)),)
        return tuple(Tensor._make(w.astype(np.int64)) for w in where)
    if x.ndim == 0:
        return Tensor._make(xp.zeros((len(where[0]), 0), dtype=np.int64))
    return Tensor._make(xp.stack(where, axis=1).astype(np.int64))


def count_nonzero(x: Tensor, dim=None) -> Tensor:
    """How many elements are non-zero, over ``dim`` (all by default); int64, no gradient.

    Example:
        >>> import minigrad as mg
        >>> mg.count_nonzero(mg.tensor([[0, 1], [2, 3]]), dim=0)
        tensor([1, 2])
    """
    axes = _norm_dims(dim, x.ndim)
    return Tensor._make(x.xp.asarray((x.data != 0).sum(axis=axes), dtype=np.int64))


class _ReduceBoolFn(Function):
    differentiable = False

    def forward(self, x, axes=(), keepdim=False, mode="any"):
        f = x.any if mode == "any" else x.all
        return self.xp.asarray(f(axis=axes, keepdims=keepdim))


def any(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    """True where some element (over ``dim``, all by default) is non-zero; no gradient.

    Example:
        >>> import minigrad as mg
        >>> mg.any(mg.tensor([[0, 1], [0, 0]]), dim=1)
        tensor([ True, False])
    """
    return _ReduceBoolFn.apply(x, axes=_norm_dims(dim, x.ndim), keepdim=keepdim, mode="any")


def all(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    """True where every element (over ``dim``, all by default) is non-zero; no gradient.

    Example:
        >>> import minigrad as mg
        >>> mg.all(mg.tensor([[1, 1], [0, 1]]), dim=1)
        tensor([ True, False])
    """
    return _ReduceBoolFn.apply(x, axes=_norm_dims(dim, x.ndim), keepdim=keepdim, mode="all")
