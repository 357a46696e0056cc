"""Vector and matrix norms: ``norm`` (``torch.norm``), ``vector_norm`` and ``matrix_norm``
(``torch.linalg``'s, re-exported by ``minigrad.linalg``).

The 2-norm is a primitive because its composite ``sqrt(sum(x * x))`` has a 0/0 gradient at
x = 0; PyTorch (and this one) give the subgradient 0 there. The other orders are composites.
"""

from __future__ import annotations

import math

from minigrad import autocast_state, dtypes
from minigrad.autocast_state import state as _autocast
from minigrad.autograd import Function
from minigrad.ops.elementwise import _output, abs, cast, where
from minigrad.ops.reduction import amax, amin, sum
from minigrad.ops.shape import _norm_dims, reshape
from minigrad.tensor import Tensor


class Norm2Fn(Function):
    """y = sqrt(sum(x**2)) over ``axes``;  gx = gy * x / y, and 0 where y == 0."""

    save_outputs = True

    def forward(self, x, axes=(), keepdim=False):
        self.axes, self.keepdim = axes, keepdim
        # NOTE: scaled by the largest magnitude so squares neither overflow nor underflow
        scale = self.xp.abs(x).max(axis=axes, keepdims=True) if x.size else \
            self.xp.zeros((1,) * x.ndim, x.dtype)
        safe = self.xp.where(scale == 0, 1, scale)
        y = self.xp.sqrt(((x / safe) ** 2).sum(axis=axes, keepdims=True)) * safe
        return y if keepdim else y.reshape([s for i, s in enumerate(x.shape) if i not in axes])

    def backward(self, gy):
        x = self.inputs[0]
        y = _output(self)
        if not self.keepdim:
            keep = tuple(1 if i in self.axes else s for i, s in enumerate(x.shape))
            gy, y = reshape(gy, keep), reshape(y, keep)
        one = Tensor._make(self.xp.ones((), dtype=y.dtype))
        # NOTE: where y == 0, x is all zeros there too; dividing by 1 gives the subgradient 0
        return gy * x / where(y.detach() == 0, one, y)


def vector_norm(x: Tensor, ord=2, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:  # noqa: A002
    """The vector ``ord``-norm over ``dim`` (all elements by default): ``(sum |x|**ord) **
    (1/ord)``, with ``inf``/``-inf`` the largest/smallest magnitude and 0 the count of
    non-zeros.

    Example:
        >>> import minigrad as mg
        >>> mg.linalg.vector_norm(mg.tensor([3.0, 4.0]))
        tensor(5.)
    """
    if dtype is not None:
        x = cast(x, dtypes.to_dtype(dtype))
    elif _autocast.on:  # on CUDA autocast's float32 list (torch.norm too: it comes here)
        x, = autocast_state.fp32_cuda(x)
    if not dtypes.is_floating(x.dtype):
        raise RuntimeError(
            f"linalg.vector_norm: Expected a floating point or complex tensor as input. Got "
            f"{x.dtype}"
        )
    axes = _norm_dims(dim, x.ndim)
    if ord == 2:
        return Norm2Fn.apply(x, axes=axes, keepdim=keepdim)
    if ord == math.inf:
        return amax(abs(x), axes, keepdim)
    if ord == -math.inf:
        return amin(abs(x), axes, keepdim)
    if ord == 0:
        return sum(cast(x != 0, x.dtype), axes, keepdim)
    if ord == 1:
        return sum(abs(x), axes, keepdim)
    return sum(abs(x) ** ord, axes, keepdim) ** (1.0 / ord)


def matrix_norm(x: Tensor, ord="fro", dim=(-2, -1), keepdim: bool = False, *,  # noqa: A002
                dtype=None) -> Tensor:
    """A matrix norm over the two dimensions ``dim``: ``'fro'`` (Frobenius), 1 / -1 (largest /
    smallest column sum of magnitudes), inf / -inf (the same over rows).

    The spectral and nuclear norms (2, -2, ``'nuc'``) need singular values, which minigrad
    does not compute: they raise ``NotImplementedError``.

    Example:
        >>> import minigrad as mg
        >>> mg.linalg.matrix_norm(mg.tensor([[1.0, -2.0], [3.0, 4.0]]), ord=1)
        tensor(6.)
    """
    if dtype is not None:
        x = cast(x, dtypes.to_dtype(dtype))
    if x.ndim < 2:
        raise RuntimeError(
            "linalg.matrix_norm: The input tensor A must have at least 2 dimensions."
        )
    rows, cols = (d % x.ndim for d in dim)
    if ord == "fro":
        return Norm2Fn.apply(x, axes=tuple(sorted((rows, cols))), keepdim=keepdim)
    if ord in (1, -1, math.inf, -math.inf):
        summed, other = (rows, cols) if ord in (1, -1) else (cols, rows)
        col_sums = sum(abs(x), summed, keepdim=True)
        pick = amax if ord > 0 else amin
        out = pick(col_sums, other, keepdim=True)
        if keepdim:
            return out
        return reshape(out, tuple(s for i, s in enumerate(out.shape) if i not in (rows, cols)))
    raise NotImplementedError(
        f"linalg.matrix_norm: ord={ord!r} needs singular values, which minigrad does not "
        "compute; 'fro', 1, -1, inf and -inf are supported"
    )


def linalg_norm(x: Tensor, ord=None, dim=None, keepdim: bool = False, *,  # noqa: A002
                dtype=None) -> Tensor:
    """``torch.linalg.norm``: with ``ord=None`` the 2-norm of the flattened input (or over
    ``dim``); a 2-tuple ``dim`` or a 2-D input with an ``ord`` gives a matrix norm."""
    two_dims = dim is not None and not isinstance(dim, int) and len(dim) == 2
    if two_dims or (dim is None and ord is not None and x.ndim == 2):
        return matrix_norm(x, "fro" if ord is None else ord, dim or (-2, -1), keepdim,
                           dtype=dtype)
    if dim is None and ord is not None and x.ndim != 1:
        raise RuntimeError(
            f"linalg.norm: If dim is not specified but ord is, the input must be 1D or 2D. "
            f"Got {x.ndim}D."
        )
    return vector_norm(x, 2 if ord is None else ord, dim, keepdim, dtype=dtype)


def norm(input: Tensor, p="fro", dim=None, keepdim: bool = False, dtype=None) -> Tensor:  # noqa: A002
    """``torch.norm``: the ``p``-norm over ``dim`` (all elements by default). ``'fro'`` is the
    2-norm of the elements; a number is a vector norm; ``'nuc'`` is not supported.

    Example:
        >>> import minigrad as mg
        >>> mg.tensor([[3.0, 0.0], [0.0, 4.0]]).norm()
        tensor(5.)
    """
    if p == "fro" or p is None:
        p = 2
    if isinstance(p, str):
        raise NotImplementedError(f"norm: p={p!r} is not supported ('fro' and numbers are)")
    return vector_norm(input, p, dim, keepdim, dtype=dtype)

