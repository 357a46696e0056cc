"""Exercise adam_update: one Adam step, checked on values worked out by hand and, over ten
steps, against minigrad's own update (``references.adam_update``, what ``optim.Adam`` runs)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from minigrad import references
from minigrad.exercises._base import Exercise, Wrong, close, expect_tuple

__all__ = ["EXERCISE", "solution"]  # the checks are reached through EXERCISE.checks


def _call(module, param, grad, m, v, step, **options):
    before = [a.copy() for a in (param, grad, m, v)]
    out = expect_tuple("adam_update", module.adam_update(param, grad, m, v, step, **options), 3)
    for name, a, b in zip(("param", "grad", "m", "v"), (param, grad, m, v), before):
        if not np.array_equal(a, b):
            raise Wrong(f"adam_update changed the {name} array it was given; return new arrays")
    return out


def check_first_step(module):
    """From zero moments the first step moves each weight by lr * sign(grad) (up to eps):
    m_hat = g and v_hat = g * g, so m_hat / sqrt(v_hat) = sign(g)."""
    param, grad = np.array([1.0, -2.0, 3.0]), np.array([0.5, -0.1, 0.0])
    zeros = np.zeros(3)
    p, m, v = _call(module, param, grad, zeros, zeros, 1, lr=0.1)
    close("m after the first step ((1 - beta1) g)", m, 0.1 * grad)
    close("v after the first step ((1 - beta2) g^2)", v, 0.001 * grad**2)
    close("the parameter after the first step (each moves by lr * sign(grad))", p,
          np.array([0.9, -1.9, 3.0]), rtol=1e-6)


def _reference(param, grad, m, v, step, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
               weight_decay=0.0):
    param, m, v = param.copy(), m.copy(), v.copy()
    references.adam_update(param, grad, m, v, None, step=step, lr=lr, beta1=beta1, beta2=beta2,
                           eps=eps, weight_decay=weight_decay, maximize=False,
                           decoupled_weight_decay=False)
    return param, m, v


def _check_run(module, **options):
    rng = np.random.default_rng(0)
    ours = theirs = (rng.normal(size=(4, 3)), np.zeros((4, 3)), np.zeros((4, 3)))
    for step in range(1, 11):
        grad = rng.normal(size=(4, 3)) * (0.1 if step % 2 else 2.0)  # moments that change
        theirs = _reference(theirs[0], grad, theirs[1], theirs[2], step, **options)
        ours = _call(module, ours[0], grad, ours[1], ours[2], step, **options)
        for name, got, expected in zip(("the parameter", "m", "v"), ours, theirs):
            close(f"{name} after step {step}", got, expected, rtol=1e-7, atol=1e-12)


def check_ten_steps(module):
    _check_run(module, lr=0.01, beta1=0.8, beta2=0.9)


def check_weight_decay(module):
    _check_run(module, lr=0.01, weight_decay=0.1)


def check_eps(module):
    """A zero gradient for ten steps: m = v = 0, the step is 0 / (0 + eps) = 0, not NaN."""
    param = np.ones(2)
    m = v = np.zeros(2)
    for step in range(1, 11):
        param, m, v = _call(module, param, np.zeros(2), m, v, step, eps=1e-8)
    close("the parameter after ten zero gradients", param, np.ones(2))


def solution():
    """minigrad's own update (in place on copies), under the stub's name."""
    return SimpleNamespace(adam_update=_reference)


EXERCISE = Exercise(
    name="adam_update",
    title="one step of Adam, from the paper's Algorithm 1 (with PyTorch's numerics)",
    lesson="06-sgd-and-adam.md",
    solution_in="minigrad/references.py: adam_update",
    checks=(
        ("the first step, by hand: lr * sign(grad)", check_first_step),
        ("ten steps against minigrad's Adam (beta1 0.8, beta2 0.9)", check_ten_steps),
        ("ten steps with weight_decay=0.1", check_weight_decay),
        ("a zero gradient stays finite (eps)", check_eps),
    ),
    solution=solution,
)
