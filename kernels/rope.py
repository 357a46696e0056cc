"""Fused rotary position embedding (transformers' ``rotate_half`` layout), forward and backward.

What is fused: :func:`minigrad.references.rope` (the reference: two slices, a negation, a
concatenation, two broadcast multiplies and an add, each with its backward)::

    y = x cos + rotate_half(x) sin,     rotate_half(x) = (-x2, x1)
    gx = g cos + rotate_half^T(g sin),  rotate_half^T(z) = (z2, -z1)

for x of shape (B, H, T, D) and cos, sin of shape (B, T, D) (shared by the H heads; constants:
no gradient flows to them). NumPy: the products are written into the output's two halves in
place, broadcasting cos/sin over the heads. CUDA (``rope.cu``): one grid-stride kernel each way,
a thread per element reading its partner in the other half.
"""

from __future__ import annotations

import numpy as np

from minigrad import references
from minigrad.fused import FusedFunction
from minigrad.tensor import Tensor

from . import _cuda

CUDA_KERNELS = ("rope_fwd", "rope_bwd")


class RoPEFn(FusedFunction, kernel="rope"):
    """(x, cos, sin) -> x cos + rotate_half(x) sin; the gradient for x only."""

    def reference(self, x, cos, sin):
        return references.rope(x, cos, sin)

    # ---------------------------------------------------------------- NumPy
    def _forward_numpy(self, x, cos, sin):
        half = x.shape[-1] // 2
        c, s = cos[:, None], sin[:, None]  # over the heads
        y = np.multiply(x, c)
        y[..., :half] -= x[..., half:] * s[..., :half]
        y[..., half:] += x[..., :half] * s[..., half:]
        self.c, self.s = c, s
        return y

    def _backward_numpy(self, g):
        c, s = self.c, self.s
        half = g.shape[-1] // 2
        gx = np.multiply(g, c)
        gx[..., :half] += g[..., half:] * s[..., half:]
        gx[..., half:] -= g[..., :half] * s[..., :half]
        return gx, None, None

    # ---------------------------------------------------------------- CUDA
    def _launch(self, which, a, cos, sin):
        xp = self.xp
        B, H, T, D = a.shape
        a = xp.ascontiguousarray(a)
        out = xp.empty_like(a)
        if a.size == 0:
            return out
        dev = a.device.id
        fn = _cuda.kernel("rope", CUDA_KERNELS, which, a.dtype, dev)
        grid, block = _cuda.grid_1d(a.size, sm_count=_cuda.sm_count(dev))
        fn(grid, block, (a, cos, sin, out, np.int64(a.size), np.int32(H), np.int32(T),
                         np.int32(D)))
        return out

    def _forward_cuda(self, x, cos, sin):
        xp = self.xp
        shape = (x.shape[0],) + x.shape[2:]
        self.cos = xp.ascontiguousarray(xp.broadcast_to(cos, shape))
        self.sin = xp.ascontiguousarray(xp.broadcast_to(sin, shape))
        return self._launch("rope_fwd", x, self.cos, self.sin)

    def _backward_cuda(self, g):
        return self._launch("rope_bwd", g, self.cos, self.sin), None, None


def apply(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate ``x`` (B, H, T, D) by ``cos``/``sin`` (B or 1, T, D) of x's dtype."""
    return RoPEFn.apply(x, cos, sin)
