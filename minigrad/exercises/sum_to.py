"""Exercise sum_to: the inverse of broadcasting, checked on shapes and values.

The checks use the adjoint identity of broadcasting, ``<broadcast(y), x> = <y, sum_to(x)>``,
for every pair of (shape, target) in `CASES`, so the expected values need no reference code;
the shapes are checked first.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from minigrad.exercises._base import Exercise, Wrong, close
from minigrad.ops.shape import SumToFn
from minigrad.tensor import Tensor

__all__ = ["EXERCISE", "solution"]  # the checks are reached through EXERCISE.checks

# (the broadcast shape, the shape to sum down to)
CASES = [
    ((3, 4), (4,)),  # a new leading dimension
    ((3, 4), (3, 1)),  # a size-1 dimension
    ((2, 3, 4), (1, 4)),  # both
    ((2, 3, 4), ()),  # a scalar
    ((2, 3), (2, 3)),  # nothing to do
    ((5, 1, 4), (1, 1)),  # a 1 in x's own shape too
]


def _expected(x: np.ndarray, shape: tuple) -> np.ndarray:
    """Each entry of the result is d<x, broadcast(y)>/dy: the sum of the x entries it fed."""
    out = np.zeros(shape)
    for idx in np.ndindex(*shape):
        hot = np.zeros(shape)
        hot[idx] = 1
        out[idx] = np.sum(x * np.broadcast_to(hot, x.shape))
    return out


def _check(module, cases):
    rng = np.random.default_rng(0)
    for big, small in cases:
        x = rng.normal(size=big)
        got = module.sum_to(x.copy(), small)
        if np.shape(got) != small:
            raise Wrong(f"sum_to(x of shape {big}, {small}) has shape {np.shape(got)}, "
                        f"expected {small}")
        close(f"sum_to(x of shape {big}, {small})", got, _expected(x, small))


def check_leading(module):
    _check(module, CASES[:1])


def check_ones(module):
    _check(module, CASES[1:3])


def check_edges(module):
    _check(module, CASES[3:])


def solution():
    """minigrad's own ``SumToFn.forward``, on arrays."""
    def sum_to(x, shape):
        return SumToFn.apply(Tensor(x), shape=tuple(shape)).numpy()

    return SimpleNamespace(sum_to=sum_to)


EXERCISE = Exercise(
    name="sum_to",
    title="sum a gradient back to its input's shape (the inverse of broadcasting)",
    lesson="04-broadcasting.md",
    solution_in="minigrad/ops/shape.py: SumToFn",
    checks=(
        ("a new leading dimension, (3, 4) -> (4,)", check_leading),
        ("size-1 dimensions, (3, 4) -> (3, 1) and (2, 3, 4) -> (1, 4)", check_ones),
        ("a scalar, no change, and 1s on both sides", check_edges),
    ),
    solution=solution,
)
