"""Exercise div_backward: the backward of y = a / b, checked by finite differences.

Checks: the gradients of ``a`` and ``b`` against central differences of ``sum(w * a / b)`` (w
fixed and random, float64), the same with ``b`` broadcast, and the second derivatives
(``create_graph=True``), which hold only when the backward is written with minigrad ops.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from minigrad.autograd import gradgradcheck
from minigrad.autograd import grad as autograd_grad
from minigrad.exercises._base import Exercise, Wrong, close, numeric_grad
from minigrad.ops import elementwise
from minigrad.tensor import Tensor

__all__ = ["EXERCISE", "solution"]  # the checks are reached through EXERCISE.checks


def _inputs(shape_a, shape_b, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=shape_a)
    b = rng.uniform(0.5, 2.0, size=shape_b) * rng.choice([-1.0, 1.0], size=shape_b)
    return a, b


def _gradients(module, a, b, w):
    """The student's gradients of ``sum(w * div(a, b))`` with respect to a and b."""
    ta = Tensor(a.copy(), requires_grad=True)
    tb = Tensor(b.copy(), requires_grad=True)
    y = module.div(ta, tb)
    if not isinstance(y, Tensor):
        raise Wrong(f"div should return a Tensor, returned a {type(y).__name__}")
    try:
        return autograd_grad([y], [ta, tb], [Tensor(w)])
    except (TypeError, AttributeError) as exc:
        raise Wrong("backward should return Tensors made with minigrad ops (gy / b), not "
                    f"NumPy arrays: the engine failed with {type(exc).__name__}: {exc}") from None


def _check_grads(module, shape_a, shape_b):
    a, b = _inputs(shape_a, shape_b)
    w = np.random.default_rng(1).normal(size=np.broadcast_shapes(shape_a, shape_b))
    ga, gb = _gradients(module, a, b, w)

    def loss(a, b):
        return float(np.sum(w * (a / b)))

    close("the gradient of a (input 0)", ga, numeric_grad(loss, [a, b], 0), rtol=1e-4)
    close("the gradient of b (input 1)", gb, numeric_grad(loss, [a, b], 1), rtol=1e-4)


def check_same_shapes(module):
    _check_grads(module, (3, 4), (3, 4))


def check_broadcast(module):
    _check_grads(module, (2, 3, 4), (4,))


def check_only_a(module):
    a, b = _inputs((3,), (3,))
    ta, tb = Tensor(a, requires_grad=True), Tensor(b)  # b is a constant
    (ga,) = autograd_grad([module.div(ta, tb)], [ta], [Tensor(np.ones(3))])
    close("the gradient of a when b needs none", ga, 1 / b)


def check_double_backward(module):
    a, b = _inputs((2, 3), (2, 3), seed=2)
    ta, tb = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    try:
        gradgradcheck(module.div, [ta, tb])
    except AssertionError as exc:
        raise Wrong("the second derivatives are wrong: write backward with minigrad ops on "
                    f"Tensors (gy / b), not on arrays (.data) ({exc})") from None


def solution():
    """minigrad's own DivFn, under the stub's names."""
    return SimpleNamespace(DivFn=elementwise.DivFn, div=elementwise.DivFn.apply)


EXERCISE = Exercise(
    name="div_backward",
    title="the backward of division, y = a / b (an op's backward, checked by gradcheck)",
    lesson="03-writing-an-op.md",
    solution_in="minigrad/ops/elementwise.py: DivFn",
    checks=(
        ("gradients of a and b, same shapes", check_same_shapes),
        ("gradients with b broadcast, (2, 3, 4) / (4,)", check_broadcast),
        ("a gradient for a alone (b a constant)", check_only_a),
        ("second derivatives (create_graph=True)", check_double_backward),
    ),
    solution=solution,
)
