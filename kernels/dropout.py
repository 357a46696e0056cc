"""Fused inverted dropout: the mask drawn, applied and kept for the backward in one ``Function``.

What is fused: :func:`minigrad.nn.functional._dropout_reference` (the reference)::

    y = x * m / (1 - p),  m_i = [u_i >= p],  u_i ~ U[0, 1)
    dx = dy * m / (1 - p)

NumPy: the uniforms are drawn in the input's dtype (float32 for float32, never a float64
detour) by the reference's own draw (``F.random_uniform_array``), so both paths drop the same
elements from the same seed; the scaled mask is made in place in the uniforms' buffer (a
compare with ``out=``, then a scale) and applied with one multiply. The backward is one
multiply by the kept mask. (Most of the time is the random draw itself.)

CUDA (``dropout.cu``): no uniforms and no mask are stored. Each element's keep/drop decision is
a counter-based hash (a Philox-style mix of a 64-bit seed and the element's index), so the
backward regenerates the same mask from the seed. The seed is drawn from the device's generator
(``mg.manual_seed``) and read by the kernel from device memory: no host synchronisation.
The CUDA stream of decisions differs from the CPU's (as PyTorch's CPU and CUDA streams do).

``create_graph=True``: the reference with this call's mask is ``x * m / (1 - p)``, whose
backward ``dy * m / (1 - p)`` is then recorded as an ordinary multiply.
"""

from __future__ import annotations

import numpy as np

from minigrad import backend
from minigrad.autograd import Function, is_grad_enabled
from minigrad.tensor import Tensor

from . import _cuda

CUDA_KERNELS = ("dropout_fwd", "dropout_bwd")


class DropoutFn(Function):
    """y = x * m / (1 - p);  dx = dy * m / (1 - p)."""

    def forward(self, x, p):
        self.p = p
        dt = x.dtype.type
        if self.xp is not np:
            return self._forward_cuda(x, p)
        from minigrad.nn import functional  # noqa: PLC0415  (its draw: the reference's)

        mask = functional.random_uniform_array(backend.CPU, x.shape, x.dtype)  # u ~ U[0, 1)
        # NOTE: keep where u >= p (probability 1 - p); kept values are scaled up so that the
        # expected output is the input. The mask overwrites u in place.
        np.greater_equal(mask, dt(p), out=mask)
        mask *= dt(1.0 / (1.0 - p))
        self.mask = mask
        return np.multiply(x, mask)

    def backward(self, gy):
        if is_grad_enabled():  # create_graph=True: record dy * m / (1 - p)
            return gy * Tensor._make(self._mask_array(gy.data))
        if self.xp is np:
            return Tensor._make(np.multiply(gy.data, self.mask))
        return Tensor._make(self._backward_cuda(gy.data))

    def _mask_array(self, like):
        if self.xp is np:
            return self.mask
        ones = self.xp.ones(like.shape, dtype=like.dtype)
        return self._backward_cuda(ones)  # the mask, regenerated from the seed

    # ---------------------------------------------------------------- CUDA
    def _forward_cuda(self, x, p):
        xp = self.xp
        dev = x.device.id
        gen = backend.generator(backend.Device("cuda", dev))
        # two 31-bit draws make the 64-bit seed; they stay on the device
        self.seed = gen.randint(0, 2**31 - 1, size=2, dtype=np.int64)
        x = xp.ascontiguousarray(x)
        y = xp.empty_like(x)
        self._launch("dropout_fwd", x, y)
        return y

    def _backward_cuda(self, gy):
        gy = self.xp.ascontiguousarray(gy)
        gx = self.xp.empty_like(gy)
        self._launch("dropout_bwd", gy, gx)
        return gx

    def _launch(self, which, src, dst):
        dt = src.dtype
        dev = src.device.id
        fn = _cuda.kernel("dropout", CUDA_KERNELS, which, dt, dev)
        grid, block = _cuda.grid_1d(src.size, sm_count=_cuda.sm_count(dev))
        fn(grid, block, (src, dst, np.int64(src.size), self.seed, np.float32(self.p),
                         _cuda.scalar(dt, 1.0 / (1.0 - self.p))))


def apply(input: Tensor, p: float) -> Tensor:
    """Dropout with the arguments of ``F._dropout_reference`` (``0 <= p <= 1``, training).
    ``p == 1`` (all dropped, no mask needed) runs the reference."""
    if p >= 1.0:
        from minigrad.nn.functional import _dropout_reference  # noqa: PLC0415

        return _dropout_reference(input, p)
    return DropoutFn.apply(input, p=p)
