"""Resizing: ``F.interpolate`` and ``nn.Upsample`` (nearest, linear, bilinear), and
``nn.Unflatten``, with PyTorch's names, arguments and pixel rules.

Every mode is a gather along each spatial dimension in turn (``index_select``, whose backward
adds the gradient of repeated indices), so the backward and double backward come from autograd:

- ``nearest``: ``src = min(floor(dst * scale), in - 1)`` with ``scale = 1 / scale_factor`` when
  a scale factor is given (a fractional factor maps pixels by 1 / scale, as PyTorch does), else
  ``in / out``;
- ``linear``/``bilinear``: with ``align_corners=True`` ``src = dst * (in - 1) / (out - 1)``,
  else ``src = max((dst + 0.5) * scale - 0.5, 0)``; then ``x[floor(src)] * (1 - t) +
  x[floor(src) + 1] * t`` (bilinear is linear along H, then along W: the weights are a
  product). As in PyTorch's kernels, a dimension whose size is unchanged is copied.

Example:
    >>> import minigrad as mg
    >>> import minigrad.nn.functional as F
    >>> F.interpolate(mg.tensor([[[1.0, 2.0]]]), scale_factor=2)
    tensor([[[1., 1., 2., 2.]]])
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import numpy as np

from minigrad import autocast_state, ops
from minigrad.autocast_state import state as _autocast
from minigrad.nn.module import Module
from minigrad.tensor import Tensor

__all__ = ["interpolate", "Upsample", "Unflatten"]

_MODES = {"nearest": None, "linear": 3, "bilinear": 4}


def _per_dim(value, n: int, name: str) -> tuple:
    if isinstance(value, (int, float, np.integer, np.floating)):
        return (value,) * n
    value = tuple(value)
    if len(value) != n:
        raise ValueError(f"interpolate: {name} {value!r} must have {n} entries for an input "
                         f"with {n} spatial dimensions")
    return value


def _source_index(in_size: int, out_size: int, scale: Optional[float], mode: str,
                  align_corners: bool):
    """``(i0, i1, t)`` for one dimension: the two source positions of each output position and
    the weight of the second (NumPy arrays; ``i1`` and ``t`` None for nearest)."""
    dst = np.arange(out_size, dtype=np.float64)
    if out_size == in_size:
        # NOTE: as PyTorch's kernels, a dimension whose size is unchanged is copied, whatever
        # the scale factor says (2 pixels at scale 1.3 stay 2 pixels, not a 1/1.3 resampling)
        same = np.arange(out_size, dtype=np.int64)
        return (same, None, None) if mode == "nearest" else (same, same, np.zeros(out_size))
    if mode == "nearest":
        ratio = 1.0 / scale if scale else in_size / out_size
        return np.minimum(np.floor(dst * ratio).astype(np.int64), in_size - 1), None, None
    if align_corners:
        ratio = (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
        src = dst * ratio
    else:
        ratio = 1.0 / scale if scale else in_size / out_size
        src = np.maximum((dst + 0.5) * ratio - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    i1 = np.minimum(i0 + 1, in_size - 1)
    return i0, i1, src - i0


def interpolate(input: Tensor, size: Union[int, Sequence[int], None] = None,
                scale_factor: Union[float, Sequence[float], None] = None,
                mode: str = "nearest", align_corners: Optional[bool] = None,
                recompute_scale_factor: Optional[bool] = None,
                antialias: bool = False) -> Tensor:
    """Resize the spatial dimensions of ``(N, C, L)`` or ``(N, C, H, W)``.

    Args:
        input: the input (3-d for ``'linear'``, 4-d for ``'bilinear'``, either for
            ``'nearest'``).
        size: the output size (an int or one per spatial dimension).
        scale_factor: a multiplier (or one per dimension); the output size is
            ``floor(in * scale_factor)``. Give exactly one of ``size`` and ``scale_factor``.
        mode: ``'nearest'``, ``'linear'`` or ``'bilinear'``.
        align_corners: for the linear modes: map the corner pixels' centres onto each other
            (default False).
        recompute_scale_factor: compute the scale from the output size instead of using the
            given factor.
        antialias: not supported (False only).

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> F.interpolate(mg.ones(1, 3, 4, 4), size=(8, 6), mode="bilinear").shape
        (1, 3, 8, 6)
    """
    if mode not in _MODES:
        raise NotImplementedError(f"interpolate: mode {mode!r} is not supported (nearest, "
                                  f"linear, bilinear)")
    if antialias:
        raise NotImplementedError("interpolate: antialias=True is not supported")
    if mode == "nearest" and align_corners is not None:
        raise ValueError("align_corners option can only be set with the interpolating modes: "
                         "linear | bilinear | bicubic | trilinear")
    if _autocast.on:  # on CUDA autocast's float32 list (upsample_*)
        input, = autocast_state.fp32_cuda(input)
    if input.ndim not in (3, 4):
        raise ValueError(f"interpolate: expected a 3-D (N, C, L) or 4-D (N, C, H, W) input, "
                         f"got shape {tuple(input.shape)}")
    wanted = _MODES[mode]
    if wanted is not None and input.ndim != wanted:
        raise ValueError(f"Got {input.ndim}D input, but {mode} mode needs {wanted}D input "
                         f"(input shape {tuple(input.shape)})")
    if (size is None) == (scale_factor is None):
        raise ValueError("only one of size or scale_factor should be defined" if size is not None
                         else "either size or scale_factor should be defined")
    n = input.ndim - 2
    in_sizes = input.shape[2:]
    if size is not None:
        out_sizes = tuple(int(s) for s in _per_dim(size, n, "size"))
        scales = (None,) * n
    else:
        scales = tuple(float(s) for s in _per_dim(scale_factor, n, "scale_factor"))
        out_sizes = tuple(int(math.floor(s * f)) for s, f in zip(in_sizes, scales))
        if recompute_scale_factor:
            scales = (None,) * n
    if min(out_sizes) <= 0:
        raise ValueError(f"interpolate: the output size {out_sizes} must be positive (input "
                         f"shape {tuple(input.shape)})")
    out = input
    xp = input.xp
    for d, (s_in, s_out, scale) in enumerate(zip(in_sizes, out_sizes, scales)):
        dim = 2 + d
        i0, i1, t = _source_index(s_in, s_out, scale, mode, bool(align_corners))
        lo = ops.index_select(out, dim, Tensor._make(xp.asarray(i0)))
        if t is None:
            out = lo
            continue
        hi = ops.index_select(out, dim, Tensor._make(xp.asarray(i1)))
        shape = [1] * input.ndim
        shape[dim] = s_out
        weight = Tensor._make(xp.asarray(t.reshape(shape), dtype=input.dtype))
        out = lo + (hi - lo) * weight
    return out


class Upsample(Module):
    """Resize with :func:`interpolate` (same arguments).

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> nn.Upsample(scale_factor=2)(mg.zeros(1, 3, 4, 4)).shape
        (1, 3, 8, 8)
    """

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest",
                 align_corners: Optional[bool] = None,
                 recompute_scale_factor: Optional[bool] = None):
        super().__init__()
        self.name = type(self).__name__
        self.size = size
        if isinstance(scale_factor, (tuple, list)):
            self.scale_factor = tuple(float(f) for f in scale_factor)
        else:
            self.scale_factor = float(scale_factor) if scale_factor else None
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input: Tensor) -> Tensor:
        return interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners,
                           recompute_scale_factor=self.recompute_scale_factor)

    def extra_repr(self) -> str:
        if self.scale_factor is not None:
            info = f"scale_factor={self.scale_factor!r}"
        else:
            info = f"size={self.size!r}"
        return info + f", mode={self.mode!r}"


class Unflatten(Module):
    """Split dimension ``dim`` into ``unflattened_size`` (the inverse of ``nn.Flatten``).

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> nn.Unflatten(1, (2, 3))(mg.zeros(4, 6)).shape
        (4, 2, 3)
    """

    def __init__(self, dim: int, unflattened_size: Sequence[int]):
        super().__init__()
        self.dim = dim
        self.unflattened_size = tuple(unflattened_size) if isinstance(
            unflattened_size, list) else unflattened_size

    def forward(self, input: Tensor) -> Tensor:
        sizes = tuple(self.unflattened_size)
        d = self.dim % input.ndim
        if -1 not in sizes and math.prod(sizes) != input.shape[d]:
            raise RuntimeError(
                f"unflatten: Provided sizes {sizes} don't multiply up to the size of dim "
                f"{self.dim} ({input.shape[d]}) in the input tensor of shape "
                f"{tuple(input.shape)}")
        return ops.reshape(input, input.shape[:d] + sizes + input.shape[d + 1:])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
