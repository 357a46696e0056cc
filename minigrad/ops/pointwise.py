"""Rounding, modulo, interpolation and closeness tests: floor, ceil, round, fmod, remainder,
lerp, isclose, allclose.

Rounding is flat almost everywhere, so floor/ceil/round have a zero gradient (PyTorch's choice),
not none: a graph through them still reaches the other inputs.
"""

from __future__ import annotations

import builtins

from minigrad.autograd import Function
from minigrad.ops.elementwise import binary_operands, lift
from minigrad.tensor import Tensor


class _RoundingFn(Function):
    """y = floor(x), ceil(x) or round(x, decimals);  gx = 0 (flat almost everywhere)."""

    def forward(self, x, mode="floor", decimals=0):
        self.mode = mode
        if x.dtype.kind in "biu":
            return x.copy()
        if mode == "floor":
            return self.xp.floor(x)
        if mode == "ceil":
            return self.xp.ceil(x)
        # NOTE: NumPy's round is round-half-to-even, as PyTorch's
        return self.xp.round(x, decimals)

    def backward(self, gy):
        return gy * 0


def floor(x: Tensor) -> Tensor:
    """The largest integer <= x, elementwise (zero gradient).

    Example:
        >>> import minigrad as mg
        >>> mg.floor(mg.tensor([-1.5, 1.5]))
        tensor([-2.,  1.])
    """
    return _RoundingFn.apply(x, mode="floor")


def ceil(x: Tensor) -> Tensor:
    """The smallest integer >= x, elementwise (zero gradient).

    Example:
        >>> import minigrad as mg
        >>> mg.ceil(mg.tensor([-1.5, 1.5]))
        tensor([-1.,  2.])
    """
    return _RoundingFn.apply(x, mode="ceil")


def round(x: Tensor, *, decimals: int = 0) -> Tensor:  # noqa: A001
    """x rounded to ``decimals`` places, halves to even (zero gradient).

    Example:
        >>> import minigrad as mg
        >>> mg.round(mg.tensor([0.5, 1.5, 2.5]))
        tensor([0., 2., 2.])
    """
    return _RoundingFn.apply(x, mode="round", decimals=decimals)


class _ModFn(Function):
    """y = a - q * b with q = trunc(a / b) (``fmod``) or floor(a / b) (``remainder``);
    ga = gy,  gb = -gy * q."""

    def forward(self, a, b, mode="fmod"):
        self.mode = mode
        return (self.xp.fmod if mode == "fmod" else self.xp.remainder)(a, b)

    def backward(self, gy):
        a, b = self.inputs
        gb = None
        if self.needs_input_grad[1]:
            q = self.xp.trunc(a.data / b.data) if self.mode == "fmod" else \
                self.xp.floor(a.data / b.data)
            gb = -gy * Tensor._make(q.astype(gy.dtype, copy=False))
        return gy, gb


def fmod(a, b) -> Tensor:
    """The C-style remainder of a / b: it takes the sign of ``a`` (``torch.fmod``).

    Example:
        >>> import minigrad as mg
        >>> mg.fmod(mg.tensor([-3.0, 3.0]), 2)
        tensor([-1.,  1.])
    """
    return _ModFn.apply(*binary_operands(a, b), mode="fmod")


def remainder(a, b) -> Tensor:
    """The Python-style remainder of a / b: it takes the sign of ``b`` (``torch.remainder``,
    the ``%`` operator).

    Example:
        >>> import minigrad as mg
        >>> mg.remainder(mg.tensor([-3.0, 3.0]), 2)
        tensor([1., 1.])
    """
    return _ModFn.apply(*binary_operands(a, b), mode="remainder")


def lerp(input: Tensor, end: Tensor, weight) -> Tensor:  # noqa: A002
    """start + weight * (end - start), elementwise (``weight`` a number or a tensor).

    Example:
        >>> import minigrad as mg
        >>> mg.lerp(mg.tensor([0.0, 10.0]), mg.tensor([10.0, 20.0]), 0.5)
        tensor([ 5., 15.])
    """
    return input + lift(weight, input) * (end - input)


def isclose(input: Tensor, other, rtol: float = 1e-05, atol: float = 1e-08,  # noqa: A002
            equal_nan: bool = False) -> Tensor:
    """Elementwise ``|input - other| <= atol + rtol * |other|`` (a bool tensor, no gradient).

    Example:
        >>> import minigrad as mg
        >>> mg.isclose(mg.tensor([1.0, 2.0]), mg.tensor([1.0 + 1e-9, 2.1]))
        tensor([ True, False])
    """
    a, b = binary_operands(input, other)
    return Tensor._make(a.xp.asarray(a.xp.isclose(a.data, b.data, rtol=rtol, atol=atol,
                                                  equal_nan=equal_nan)))


def allclose(input: Tensor, other, rtol: float = 1e-05, atol: float = 1e-08,  # noqa: A002
             equal_nan: bool = False) -> bool:
    """True when every element is close (see :func:`isclose`): a Python bool.

    Example:
        >>> import minigrad as mg
        >>> mg.allclose(mg.tensor([1.0, 2.0]), mg.tensor([1.0, 2.0 + 1e-7]))
        True
    """
    return builtins.bool(isclose(input, other, rtol, atol, equal_nan).data.all())

