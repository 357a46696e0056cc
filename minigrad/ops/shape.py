"""Shape primitives: reshape, permute, expand (broadcast), sum_to, cat, split.

Each moves or copies values without arithmetic, so each backward is the inverse movement.
"""

from __future__ import annotations

import builtins
from typing import Sequence

from minigrad import dtypes
from minigrad.autograd import Function
from minigrad.ops.elementwise import cast
from minigrad.tensor import Tensor


def _norm_dim(dim: int, ndim: int, name: str = "dim") -> int:
    if 0 <= dim < ndim:  # the common case, first
        return dim
    if not -ndim - (ndim == 0) <= dim < builtins.max(ndim, 1):
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{-builtins.max(ndim, 1)}, "
            f"{builtins.max(ndim, 1) - 1}], but got {dim})"
        )
    return dim % builtins.max(ndim, 1)


def _norm_dims(dim, ndim: int):
    """``dim`` (None, an int or a sequence) as a sorted tuple of non-negative axes."""
    if dim is None:
        return tuple(range(ndim))
    if isinstance(dim, int):
        dim = (dim,)
    return tuple(sorted({_norm_dim(d, ndim) for d in dim}))


class ReshapeFn(Function):
    """y = x viewed with a new shape;  gx = gy reshaped back."""

    def forward(self, x, shape=()):
        return x.reshape(shape)

    def backward(self, gy):
        return reshape(gy, self.inputs[0].shape)


def _infer_shape(shape, size: int) -> tuple:
    # (plain loops: a reshape is in most training steps, on cold caches there)
    shape = [builtins.int(s) for s in shape]
    n, inferred = 1, None
    for i, s in enumerate(shape):
        if s == -1:
            if inferred is not None:
                raise RuntimeError("only one dimension can be inferred (-1)")
            inferred = i
        else:
            n *= s
    if inferred is not None:
        if n == 0 or size % n:
            raise RuntimeError(f"shape '{shape}' is invalid for input of size {size}")
        shape[inferred] = size // n
    elif n != size:
        raise RuntimeError(f"shape '{shape}' is invalid for input of size {size}")
    return tuple(shape)


def reshape(x: Tensor, *shape) -> Tensor:
    """``x`` with a new shape of the same number of elements (-1 infers one dimension)."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    if shape == x.data.shape:  # already so: nothing to check or record
        return x
    shape = _infer_shape(shape, x.data.size)
    if shape == x.data.shape:
        return x
    return ReshapeFn.apply(x, shape=shape)


view = reshape


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dimensions ``start_dim..end_dim`` into one."""
    if x.ndim == 0:
        return reshape(x, (1,))
    s, e = _norm_dim(start_dim, x.ndim), _norm_dim(end_dim, x.ndim)
    shape = x.shape[:s] + (-1,) + x.shape[e + 1:]
    return reshape(x, shape)


def unflatten(x: Tensor, dim: int, sizes) -> Tensor:
    """Split dimension ``dim`` into ``sizes`` (``torch.unflatten``); a reshape."""
    d = _norm_dim(dim, x.ndim)
    return reshape(x, x.shape[:d] + tuple(sizes) + x.shape[d + 1:])


class PermuteFn(Function):
    """y = x with axes permuted;  gx = gy with the inverse permutation."""

    def forward(self, x, dims=()):
        self.dims = dims
        return x.transpose(dims)

    def backward(self, gy):
        inverse = [0] * len(self.dims)
        for i, d in enumerate(self.dims):
            inverse[d] = i
        return permute(gy, tuple(inverse))


def permute(x: Tensor, *dims) -> Tensor:
    """Reorder the dimensions: ``x.permute(2, 0, 1)``."""
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    if len(dims) != x.ndim:
        raise RuntimeError(
            f"permute: number of dims ({len(dims)}) does not match the tensor's ({x.ndim})"
        )
    dims = tuple(_norm_dim(d, x.ndim) for d in dims)
    if sorted(dims) != list(range(x.ndim)):
        raise RuntimeError(f"permute: {dims} is not a permutation of the dimensions")
    if dims == tuple(range(x.ndim)):
        return x
    return PermuteFn.apply(x, dims=dims)


def transpose(x: Tensor, dim0: int, dim1: int) -> Tensor:
    """Swap two dimensions."""
    n = x.data.ndim
    if n == 0:
        return x
    a, b = _norm_dim(dim0, n), _norm_dim(dim1, n)
    if a == b:
        return x
    dims = list(range(n))
    dims[a], dims[b] = dims[b], dims[a]
    return PermuteFn.apply(x, dims=tuple(dims))  # a permutation by construction


def t(x: Tensor) -> Tensor:
    """Transpose a matrix (a 0-d or 1-d tensor is returned as is)."""
    n = x.data.ndim
    if n > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {n}D")
    return x if n < 2 else PermuteFn.apply(x, dims=(1, 0))


def squeeze(x: Tensor, dim=None) -> Tensor:
    """Remove dimensions of size 1 (all of them, or those in ``dim``)."""
    if dim is None:
        shape = tuple(s for s in x.shape if s != 1)
    else:
        dims = _norm_dims(dim, x.ndim)
        shape = tuple(s for i, s in enumerate(x.shape) if not (i in dims and s == 1))
    return reshape(x, shape)


def unsqueeze(x: Tensor, dim: int) -> Tensor:
    """Insert a dimension of size 1 at ``dim``."""
    d = _norm_dim(dim, x.ndim + 1)
    return reshape(x, x.shape[:d] + (1,) + x.shape[d:])


class ExpandFn(Function):
    """y = x broadcast to a larger shape (a view);  gx = sum_to(gy, x.shape)."""

    def forward(self, x, shape=()):
        return self.xp.broadcast_to(x, shape)

    def backward(self, gy):
        return sum_to(gy, self.inputs[0].shape)


def expand(x: Tensor, *shape) -> Tensor:
    """Broadcast to ``shape`` without copying (-1 keeps a dimension)."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    lead = len(shape) - x.ndim
    if lead < 0:
        raise RuntimeError(
            f"expand: the number of sizes ({len(shape)}) must be >= the tensor's dims ({x.ndim})"
        )
    shape = tuple(x.shape[i - lead] if s == -1 else builtins.int(s) for i, s in enumerate(shape))
    if shape == x.shape:
        return x
    for i, s in enumerate(x.shape):
        if s != 1 and s != shape[i + lead]:
            raise RuntimeError(
                f"The expanded size of the tensor ({shape[i + lead]}) must match the existing "
                f"size ({s}) at non-singleton dimension {i + lead}. Target sizes: {list(shape)}."
                f" Tensor sizes: {list(x.shape)}"
            )
    return ExpandFn.apply(x, shape=shape)


broadcast_to = expand


def expand_as(x: Tensor, other: Tensor) -> Tensor:
    """``x`` broadcast to ``other``'s shape without copying (``expand(x, other.shape)``)."""
    return expand(x, other.shape)


class SumToFn(Function):
    """y = x summed over broadcast dimensions down to ``shape``;  gx = gy broadcast back."""

    def forward(self, x, shape=()):
        lead = x.ndim - len(shape)
        axes = tuple(range(lead)) + tuple(
            i + lead for i, s in enumerate(shape) if s == 1 and x.shape[i + lead] != 1
        )
        y = x.sum(axis=axes, keepdims=True) if axes else x
        return y.reshape(shape)

    def backward(self, gy):
        return expand(gy, self.inputs[0].shape)


def sum_to(x: Tensor, shape) -> Tensor:
    """Sum ``x`` down to ``shape`` (the inverse of broadcasting); used by the engine."""
    shape = tuple(shape)
    if x.shape == shape:
        return x
    return SumToFn.apply(x, shape=shape)


class CatFn(Function):
    """y = the inputs joined along ``dim``;  g_i = the matching slice of gy."""

    def forward(self, *xs, dim=0):
        self.dim = dim
        self.sizes = [x.shape[dim] for x in xs]
        return self.xp.concatenate(xs, axis=dim)

    def backward(self, gy):
        return split(gy, self.sizes, self.dim)


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors along an existing dimension."""
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("cat(): expected a non-empty list of Tensors")
    d = _norm_dim(dim, tensors[0].ndim)
    for i, x in enumerate(tensors[1:], 1):
        if x.ndim != tensors[0].ndim or any(
            a != b for j, (a, b) in enumerate(zip(x.shape, tensors[0].shape)) if j != d
        ):
            raise RuntimeError(
                f"cat(): sizes of tensors must match except in dimension {d}; tensor 0 has shape "
                f"{tuple(tensors[0].shape)} and tensor {i} has shape {tuple(x.shape)}"
            )
    dt = tensors[0].dtype
    for x in tensors[1:]:
        dt = dtypes.result_type(dt, x.dtype)
    tensors = [cast(x, dt) for x in tensors]
    if len(tensors) == 1:
        return tensors[0]
    return CatFn.apply(*tensors, dim=d)


concatenate = cat


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors of one shape along a new dimension."""
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("stack expects a non-empty list of Tensors")
    for i, x in enumerate(tensors[1:], 1):
        if x.shape != tensors[0].shape:
            raise RuntimeError(
                f"stack expects each tensor to be equal size, but got {tuple(tensors[0].shape)} "
                f"at entry 0 and {tuple(x.shape)} at entry {i}"
            )
    d = _norm_dim(dim, tensors[0].ndim + 1)
    return cat([unsqueeze(x, d) for x in tensors], d)


class SplitFn(Function):
    """y_i = consecutive slices of x along ``dim``;  gx = cat(g_i) (zeros for unused parts)."""

    def forward(self, x, sizes=(), dim=0):
        self.dim = dim
        bounds, acc = [], 0
        for s in sizes[:-1]:
            acc += s
            bounds.append(acc)
        return tuple(self.xp.split(x, bounds, axis=dim))

    def backward(self, *gys):
        return cat(list(gys), self.dim)


def split(x: Tensor, split_size_or_sections, dim: int = 0):
    """Split into pieces of ``split_size`` (the last may be smaller) or of the given sizes."""
    d = _norm_dim(dim, x.ndim)
    n = x.shape[d]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0:
            raise ValueError(f"split: split_size must be positive, got {step}")
        sizes = [step] * (n // step) + ([n % step] if n % step else [])
        if not sizes:
            sizes = [0]
    else:
        sizes = [builtins.int(s) for s in split_size_or_sections]
        if builtins.sum(sizes) != n:
            raise RuntimeError(
                f"split_with_sizes expects split_sizes to sum exactly to {n} (input tensor's size "
                f"at dimension {d}), but got split_sizes={sizes}"
            )
    if len(sizes) == 1:
        return (x,)
    return SplitFn.apply(x, sizes=tuple(sizes), dim=d)


def chunk(x: Tensor, chunks: int, dim: int = 0):
    """Split into ``chunks`` pieces of (nearly) equal size, as PyTorch does."""
    n = x.shape[_norm_dim(dim, x.ndim)]
    step = -(-n // chunks) if n else 1
    return split(x, step, dim)


def unbind(x: Tensor, dim: int = 0):
    """Remove a dimension, returning the slices along it."""
    d = _norm_dim(dim, x.ndim)
    return tuple(squeeze(p, d) for p in split(x, 1, d))
