"""``cupy.random`` of the fake CuPy: ``RandomState`` with CuPy's method signatures (float32 or
float64 draws only, ``size`` keywords, device results), drawing from NumPy's PCG64. The numbers
are not CuPy's (cuRAND's); only the seeding rule is: the same seed, the same numbers."""

from __future__ import annotations

import types

import numpy as np

from fake_cuda._array import wrap

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _float_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype not in _FLOATS:
        raise TypeError(f"cupy.random only draws float32 or float64, got {dtype}")
    return dtype


def _size(size):
    return () if size is None else size


class RandomState:
    """``cupy.random.RandomState(seed)``."""

    def __init__(self, seed=None, method=None):
        self.seed(seed)

    def seed(self, seed=None):
        self._gen = np.random.Generator(np.random.PCG64(seed))

    def random_sample(self, size=None, dtype=float):
        return wrap(self._gen.random(_size(size), dtype=_float_dtype(dtype)))

    def rand(self, *size, dtype=float):
        return self.random_sample(size, dtype)

    def uniform(self, low=0.0, high=1.0, size=None, dtype=float):
        return self._affine(self._gen.random, high - low, low, size, dtype)

    def standard_normal(self, size=None, dtype=float):
        return wrap(self._gen.standard_normal(_size(size), dtype=_float_dtype(dtype)))

    def randn(self, *size, dtype=float):
        return self.standard_normal(size, dtype)

    def normal(self, loc=0.0, scale=1.0, size=None, dtype=float):
        return self._affine(self._gen.standard_normal, scale, loc, size, dtype)

    @staticmethod
    def _affine(draw, scale, shift, size, dtype):
        """``draw(size) * scale + shift`` in ``dtype``."""
        dtype = _float_dtype(dtype)
        out = draw(_size(size), dtype=dtype)
        return wrap(out * dtype.type(scale) + dtype.type(shift))

    def randint(self, low, high=None, size=None, dtype="l"):
        if high is None:
            low, high = 0, low
        return wrap(self._gen.integers(low, high, _size(size), dtype=dtype))

    def permutation(self, num):
        if not isinstance(num, (int, np.integer)):
            raise TypeError("the fake cupy.random.RandomState.permutation takes an int")
        return wrap(self._gen.permutation(int(num)))

    def choice(self, a, size=None, replace=True, p=None):
        if not isinstance(a, (int, np.integer)):
            raise TypeError("the fake cupy.random.RandomState.choice takes an int")
        return wrap(np.asarray(self._gen.choice(int(a), size, replace=replace)))


def module():
    """A fresh ``cupy.random`` module (one global RandomState, as CuPy keeps)."""
    random = types.ModuleType("cupy.random")
    random.RandomState = RandomState
    state = RandomState()
    random.seed = state.seed
    for name in ["random_sample", "rand", "uniform", "standard_normal", "randn", "normal",
                 "randint", "permutation", "choice"]:
        setattr(random, name, getattr(state, name))
    random.random = state.random_sample
    return random
