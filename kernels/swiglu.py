"""Fused SwiGLU gate ``silu(gate) * up``, forward and backward.

What is fused: :func:`minigrad.references.swiglu` (the reference: a sigmoid, two multiplies,
and a backward of five more ops through autograd)::

    s = sigmoid(g);   y = g s u
    dg = dy u s (1 + g (1 - s));   du = dy g s

NumPy: over cache-sized chunks of the flat arrays spread over threads (``kernels/_numpy.py``),
the forward forms s with an exp, an add and a reciprocal in place, then y; it keeps s and g s
for the backward, which is four in-place passes per output.

CUDA (``swiglu.cu``): one grid-stride kernel for y; the backward kernel recomputes s from g
(memory, not arithmetic, bounds it) and writes dg and du.
"""

from __future__ import annotations

import numpy as np

from minigrad import references
from minigrad.fused import FusedFunction
from minigrad.tensor import Tensor

from . import _cuda
from ._numpy import flat_chunks, run_chunks

CUDA_KERNELS = ("swiglu_fwd", "swiglu_bwd")


class FusedSwiGLUFn(FusedFunction, kernel="swiglu"):
    """(gate, up) -> silu(gate) * up, of one shape; (dgate, dup) from dy."""

    def reference(self, g, u):
        return references.swiglu(g, u)

    # ---------------------------------------------------------------- NumPy
    def _forward_numpy(self, g, u):
        self.shape = g.shape
        g = np.ascontiguousarray(g).reshape(-1)
        u = np.ascontiguousarray(u).reshape(-1)
        s, gs, y = np.empty_like(g), np.empty_like(g), np.empty_like(g)

        def chunk(part):  # cache-sized pieces, on several threads: see kernels/_numpy.py
            sp = s[part]
            np.negative(g[part], out=sp)
            with np.errstate(over="ignore"):  # exp(-g) -> inf for g << 0: s = 0, the limit
                np.exp(sp, out=sp)
            sp += 1
            np.reciprocal(sp, out=sp)
            np.multiply(g[part], sp, out=gs[part])
            np.multiply(gs[part], u[part], out=y[part])

        run_chunks(chunk, flat_chunks(g.size))
        self.s, self.gs, self.u = s, gs, u
        return y.reshape(self.shape)

    def _backward_numpy(self, gy):
        gy = np.ascontiguousarray(gy).reshape(-1)
        s, gs, u = self.s, self.gs, self.u
        gg, gu = np.empty_like(gy), np.empty_like(gy)

        def chunk(part):
            # du = dy g s;  dg = dy u (s + g s (1 - s)) = dy u (s + gs - gs s)
            np.multiply(gy[part], gs[part], out=gu[part])
            t = gg[part]
            np.multiply(gs[part], s[part], out=t)
            np.subtract(gs[part], t, out=t)
            t += s[part]
            t *= u[part]
            t *= gy[part]

        run_chunks(chunk, flat_chunks(gy.size))
        return gg.reshape(self.shape), gu.reshape(self.shape)

    # ---------------------------------------------------------------- CUDA
    def _forward_cuda(self, g, u):
        xp = self.xp
        g, u = xp.ascontiguousarray(g), xp.ascontiguousarray(u)
        y = xp.empty_like(g)
        dev = g.device.id
        fn = _cuda.kernel("swiglu", CUDA_KERNELS, "swiglu_fwd", g.dtype, dev)
        grid, block = _cuda.grid_1d(g.size, sm_count=_cuda.sm_count(dev))
        fn(grid, block, (g, u, y, np.int64(g.size)))
        self.g, self.u = g, u
        return y

    def _backward_cuda(self, gy):
        xp = self.xp
        gy = xp.ascontiguousarray(gy)
        gg, gu = xp.empty_like(gy), xp.empty_like(gy)
        dev = gy.device.id
        fn = _cuda.kernel("swiglu", CUDA_KERNELS, "swiglu_bwd", gy.dtype, dev)
        grid, block = _cuda.grid_1d(gy.size, sm_count=_cuda.sm_count(dev))
        fn(grid, block, (gy, self.g, self.u, gg, gu, np.int64(gy.size)))
        return gg, gu


def apply(gate: Tensor, up: Tensor) -> Tensor:
    """``silu(gate) * up`` for ``gate`` and ``up`` of one shape (checked by nn.llm.swiglu)."""
    return FusedSwiGLUFn.apply(gate, up)
