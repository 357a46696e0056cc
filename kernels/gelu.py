"""Fused GELU, exact and tanh-approximated: the output and its derivative in one pass set.

What is fused: :func:`minigrad.references.gelu` (the reference, the ``GeluFn`` primitive, whose
backward is a composite that evaluates erf a second time)::

    exact:  y = x Phi(x),                      dy/dx = Phi(x) + x phi(x)
    tanh:   y = x/2 (1 + tanh u),  u = k (x + 0.044715 x^3),  k = sqrt(2/pi)
            dy/dx = (1 + tanh u)/2 + x/2 (1 - tanh^2 u) k (1 + 3 * 0.044715 x^2)

with Phi the standard normal CDF and phi its density. The forward also forms dy/dx (a few
passes, sharing the work), so the backward is one multiply.

NumPy, exact, float32: Phi from the Chebyshev-fitted erfc of Numerical Recipes (``erfcc``,
fractional error below 1.2e-7 for every argument, so Phi keeps full float32 relative accuracy
in both tails): ``erfc(z) = t exp(-z^2 + P(t))``, ``t = 1 / (1 + z/2)``, ``z = |x|/sqrt 2``,
a degree-9 polynomial evaluated in place: about 30 cheap passes and two exps, all float32,
over cache-sized chunks of the input spread over threads (``kernels/_numpy.py``).
Float64: the reference's own erf (``ops.elementwise.erf_array``, Cephes, ~1e-14), so the
float64 results are the reference's to the last bits.

CUDA (``gelu.cu``): one grid-stride kernel computes y and dy/dx with ``erf``/``tanh``; the
backward kernel multiplies.
"""

from __future__ import annotations

import math

import numpy as np

from minigrad import references
from minigrad.fused import FusedFunction
from minigrad.ops.elementwise import erf_array
from minigrad.tensor import Tensor

from . import _cuda
from ._numpy import flat_chunks, run_chunks

CUDA_KERNELS = ("gelu_fwd", "gelu_bwd")

# Numerical Recipes' erfcc: erfc(z) = t exp(-z^2 + P(t)), P's coefficients from t^9 down to 1
_ERFCC = (0.17087277, -0.82215223, 1.48851587, -1.13520398, 0.27886807, -0.18628806,
          0.09678418, 0.37409196, 1.00002368, -1.26551223)
_SQRT_HALF = 1 / math.sqrt(2)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)
_K_TANH = math.sqrt(2 / math.pi)


class FusedGeluFn(FusedFunction, kernel="gelu"):
    """y = gelu(x) (exact or tanh);  gx = gy * dy/dx, dy/dx formed in the forward."""

    approximate = "none"  # or "tanh" (a forward parameter)

    def reference(self, x):
        return references.gelu(x, self.approximate)

    # ---------------------------------------------------------------- NumPy
    def _forward_numpy(self, x):
        fn = _gelu_tanh if self.approximate == "tanh" else _gelu_exact
        flat = np.ascontiguousarray(x).reshape(-1)
        y, dydx = np.empty_like(flat), np.empty_like(flat)

        def chunk(part):  # cache-sized pieces, on several threads: see kernels/_numpy.py
            y[part], dydx[part] = fn(flat[part])

        run_chunks(chunk, flat_chunks(flat.size))
        self.dydx = dydx.reshape(x.shape)
        return y.reshape(x.shape)

    def _backward_numpy(self, gy):
        return np.multiply(gy, self.dydx)

    # ---------------------------------------------------------------- CUDA
    def _forward_cuda(self, x):
        xp = self.xp
        x = xp.ascontiguousarray(x)
        y, dydx = xp.empty_like(x), xp.empty_like(x)
        dev = x.device.id
        fn = _cuda.kernel("gelu", CUDA_KERNELS, "gelu_fwd", x.dtype, dev)
        grid, block = _cuda.grid_1d(x.size, sm_count=_cuda.sm_count(dev))
        fn(grid, block, (x, y, dydx, np.int64(x.size), np.int32(self.approximate == "tanh")))
        self.dydx = dydx
        return y

    def _backward_cuda(self, gy):
        xp = self.xp
        gy = xp.ascontiguousarray(gy)
        gx = xp.empty_like(gy)
        dev = gy.device.id
        fn = _cuda.kernel("gelu", CUDA_KERNELS, "gelu_bwd", gy.dtype, dev)
        grid, block = _cuda.grid_1d(gy.size, sm_count=_cuda.sm_count(dev))
        fn(grid, block, (gy, self.dydx, gx, np.int64(gy.size)))
        return gx


# ---------------------------------------------------------------------------- NumPy maths


def _normal_cdf_pdf(x):
    """(Phi(x), phi(x)) in x's dtype; see the module docstring for the float32 method."""
    dt = x.dtype.type
    if x.dtype == np.float64:
        cdf = erf_array(np, x * dt(_SQRT_HALF))
        cdf += 1
        cdf *= dt(0.5)
        pdf = np.multiply(x, x)
        pdf *= dt(-0.5)
        np.exp(pdf, out=pdf)
        pdf *= dt(_INV_SQRT_2PI)
        return cdf, pdf
    z = np.abs(x)
    z *= dt(_SQRT_HALF)  # z = |x| / sqrt 2 >= 0
    t = np.multiply(z, dt(0.5))
    t += 1
    np.divide(1, t, out=t)  # t = 1 / (1 + z/2), in (0, 1]
    acc = np.multiply(t, dt(_ERFCC[0]))
    for c in _ERFCC[1:-1]:  # Horner, in place
        acc += dt(c)
        acc *= t
    acc += dt(_ERFCC[-1])
    z *= z  # z^2 = x^2 / 2
    acc -= z
    with np.errstate(over="ignore", under="ignore"):
        np.exp(acc, out=acc)
    acc *= t  # erfc(|x| / sqrt 2) = 2 Phi(-|x|)
    acc *= dt(0.5)  # Phi(-|x|)
    # Phi(x) = Phi(-|x|) + [x > 0] (1 - 2 Phi(-|x|)): exact for x <= 0 (no 1 - (1 - e)
    # cancellation in the left tail); arithmetic, because ufuncs with where= are slow
    flip = np.multiply(acc, dt(-2))
    flip += 1
    flip *= x > 0
    acc += flip
    np.negative(z, out=z)
    with np.errstate(under="ignore"):
        np.exp(z, out=z)
    z *= dt(_INV_SQRT_2PI)  # phi(x) = exp(-x^2/2) / sqrt(2 pi)
    return acc, z


def _gelu_exact(x):
    """(x Phi(x), Phi(x) + x phi(x))."""
    cdf, pdf = _normal_cdf_pdf(x)
    y = np.multiply(x, cdf)
    pdf *= x
    pdf += cdf  # dy/dx
    return y, pdf


def _gelu_tanh(x):
    """The tanh approximation and its derivative (the reference's formulas)."""
    dt = x.dtype.type
    x2 = np.multiply(x, x)
    u = np.multiply(x2, dt(0.044715))
    u += 1
    u *= x
    u *= dt(_K_TANH)  # u = k (x + 0.044715 x^3)
    th = np.tanh(u, out=u)
    half_1p = np.add(th, 1)
    half_1p *= dt(0.5)  # (1 + tanh u) / 2
    y = np.multiply(x, half_1p)
    # dy/dx = (1 + th)/2 + x/2 (1 - th^2) k (1 + 3 * 0.044715 x^2)
    th *= th
    np.subtract(1, th, out=th)
    x2 *= dt(3 * 0.044715)
    x2 += 1
    x2 *= th
    x2 *= x
    x2 *= dt(0.5 * _K_TANH)
    x2 += half_1p
    return y, x2


def apply(input: Tensor, approximate: str = "none") -> Tensor:
    """GELU with the arguments of ``references.gelu`` (``approximate`` checked by F.gelu)."""
    return FusedGeluFn.apply(input, approximate=approximate)
