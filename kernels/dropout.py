"""Fused inverted dropout: the mask drawn, applied and kept for the backward in one ``Function``.

What is fused: :func:`minigrad.references.dropout` (the reference)::

    y = x * m / (1 - p),  m_i = [u_i >= p],  u_i ~ U[0, 1)
    dx = dy * m / (1 - p)

NumPy: no uniforms. Each keep/drop decision compares a random 32-bit word with an integer
threshold, keep where ``w >= round(p * 2**32)`` (so P(keep) is ``1 - p`` to within 2**-32;
the reference's float32 uniforms resolve ``p`` to 2**-24), and the word is drawn lazily, top
byte first (:func:`_keep_mask`): about 8 random bits per element instead of the 32 behind a
float32 uniform (one bit for p = 1/2), and the random draw is most of the work. The mask is
kept as booleans (a byte per element) for the backward; forward and backward are a multiply by
the scale and a multiply by the mask each. The words come from the CPU generator
(``mg.manual_seed``, checkpoints), so the mask is reproducible from the seed; it is a different
stream from the reference's (the two paths drop different elements from the same seed).

CUDA (``dropout.cu``): no uniforms and no mask are stored. Each element's keep/drop decision is
a counter-based hash (a Philox-style mix of a 64-bit seed and the element's index), so the
backward regenerates the same mask from the seed. The seed is drawn from the device's generator
(``mg.manual_seed``) and read by the kernel from device memory: no host synchronisation.
The CUDA stream of decisions differs from the CPU's (as PyTorch's CPU and CUDA streams do).

``create_graph=True``: the reference with this call's mask is ``x * m / (1 - p)``, whose
backward ``dy * m / (1 - p)`` is then recorded as an ordinary multiply.
"""

from __future__ import annotations

import math

import numpy as np

from minigrad import backend, references
from minigrad.fused import FusedFunction
from minigrad.tensor import Tensor

from . import _cuda

CUDA_KERNELS = ("dropout_fwd", "dropout_bwd")


class DropoutFn(FusedFunction, kernel="dropout"):
    """y = x * m / (1 - p);  dx = dy * m / (1 - p)."""

    p: float  # the drop probability (a forward parameter)

    def reference(self, x):
        # this call's mask as a constant: the composite's backward is dy * m / (1 - p)
        return x * Tensor._make(self._scaled_mask(x.data))

    def _scaled_mask(self, like):
        """m / (1 - p) as an array of ``like``'s dtype."""
        if self.xp is np:
            mask = self.mask.astype(like.dtype)
            mask *= like.dtype.type(self.scale)
            return mask
        return self._backward_cuda(self.xp.ones(like.shape, dtype=like.dtype))  # from the seed

    # ---------------------------------------------------------------- NumPy
    def _forward_numpy(self, x):
        self.mask = _keep_mask(x.shape, self.p)
        self.scale = x.dtype.type(1.0 / (1.0 - self.p))
        y = np.multiply(x, self.scale)
        y *= self.mask
        return y

    def _backward_numpy(self, gy):
        gx = np.multiply(gy, self.scale)
        gx *= self.mask
        return gx

    # ---------------------------------------------------------------- CUDA
    def _forward_cuda(self, x):
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


def _keep_mask(shape, p: float) -> np.ndarray:
    """Booleans of ``shape``, each True with probability ``1 - p`` (to 2**-32), from the raw
    words of the CPU generator.

    Each element's decision is "keep where w >= t" for a 32-bit random word w and
    t = round(p * 2**32), drawn lazily: first only w's top byte (8 random bits per element);
    a byte above t's top byte keeps, one below drops, and only for the 1/256 of elements whose
    byte ties with t's are the 24 low bits drawn to settle the comparison. So the mask costs
    about 8 random bits per element instead of 32, and every pass runs over bytes. When t's low
    24 bits are zero (p a multiple of 1/256, such as 0.25) a tie keeps whatever the low bits
    are, so the top byte decides alone: one comparison, nothing more drawn. For p = 1/2 the
    decision is w's top bit alone, so each element takes one bit of the words, unpacked.

    Example:
        >>> import minigrad as mg
        >>> mg.manual_seed(0)
        >>> m = _keep_mask((1000, 100), 0.25)
        >>> m.dtype, bool(abs(m.mean() - 0.75) < 0.01)
        (dtype('bool'), True)
    """
    n = math.prod(shape)
    threshold = round(p * 2.0**32)  # keep where word >= threshold
    if threshold >= 2**32:  # p within 2**-33 of 1: every element dropped
        return np.zeros(shape, dtype=bool)
    bits = backend.generator(backend.CPU).bit_generator
    if threshold == 1 << 31:  # p = 1/2: keep is w's top bit, so one random bit per element
        words = bits.random_raw((n + 63) // 64)  # (the unpacked bits are bytes 0 or 1)
        return np.unpackbits(words.view(np.uint8), count=n).view(np.bool_).reshape(shape)
    top = bits.random_raw((n + 7) // 8).view(np.uint8)[:n]  # 8 bytes per 64-bit word
    t_top, t_low = np.uint8(threshold >> 24), threshold & 0xFFFFFF
    if t_low == 0:  # p a multiple of 1/256 (0.5, 0.25, ...): w >= t exactly when its top byte
        return np.greater_equal(top, t_top).reshape(shape)  # is >= t's; no ties to settle
    keep = np.greater(top, t_top)
    ties = np.flatnonzero(top == t_top)
    if ties.size:  # the low 24 bits of the tied words decide
        keep[ties] = (bits.random_raw(ties.size) & np.uint64(0xFFFFFF)) >= np.uint64(t_low)
    return keep.reshape(shape)


def apply(input: Tensor, p: float) -> Tensor:
    """Dropout with the arguments of ``references.dropout`` (``0 <= p <= 1``, training).
    ``p == 1`` (all dropped, no mask needed) runs the reference."""
    if p >= 1.0:
        return references.dropout(input, p)
    return DropoutFn.apply(input, p=p)
