"""Exercise cross_entropy_backward: softmax cross-entropy's gradient, checked by finite
differences, against minigrad's ``F.cross_entropy`` differentiated by autograd, and on logits
of 1e4 (finite, and the same)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from minigrad.autograd import grad as autograd_grad
from minigrad.exercises._base import Exercise, Wrong, close, numeric_grad
from minigrad.nn import functional as F
from minigrad.tensor import Tensor

__all__ = ["EXERCISE", "solution"]  # the checks are reached through EXERCISE.checks


def _inputs(seed, N=4, C=5, scale=1.0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(N, C)) * scale, rng.integers(0, C, size=N)


def _student(module, logits, target):
    _, cache = module.cross_entropy_forward(logits.copy(), target)
    grad = module.cross_entropy_backward(cache)
    if np.shape(grad) != logits.shape:
        raise Wrong(f"dlogits has shape {np.shape(grad)}, expected {logits.shape} (the shape "
                    "of the logits)")
    return grad


def _minigrad_grad(logits, target):
    x = Tensor(logits, requires_grad=True)
    (g,) = autograd_grad([F.cross_entropy(x, Tensor(target))], [x])
    return g.numpy()


def check_numeric(module):
    logits, target = _inputs(0)

    def loss(x):
        return float(module.cross_entropy_forward(x, target)[0])

    close("dlogits", _student(module, logits, target), numeric_grad(loss, [logits], 0),
          rtol=1e-4, atol=1e-7)


def check_against_minigrad(module):
    logits, target = _inputs(1, N=7, C=3)
    close("dlogits for 7 examples of 3 classes", _student(module, logits, target),
          _minigrad_grad(logits, target), rtol=1e-6)


def check_large_logits(module):
    logits, target = _inputs(2, scale=1e4)
    close("dlogits for logits of magnitude 1e4", _student(module, logits, target),
          _minigrad_grad(logits, target), rtol=1e-6)


def solution():
    """minigrad's F.cross_entropy (the fused kernel's forward and backward), under the stub's
    names."""
    def cross_entropy_forward(logits, target):
        return F.cross_entropy(Tensor(logits), Tensor(target)).item(), (logits, target)

    def cross_entropy_backward(cache):
        return _minigrad_grad(*cache)

    return SimpleNamespace(cross_entropy_forward=cross_entropy_forward,
                           cross_entropy_backward=cross_entropy_backward)


EXERCISE = Exercise(
    name="cross_entropy_backward",
    title="the gradient of softmax cross-entropy with respect to the logits (NumPy)",
    lesson="05-mlp-and-keras.md",
    solution_in="kernels/softmax_cross_entropy.py: SoftmaxCrossEntropyFn._backward_numpy",
    checks=(
        ("dlogits by finite differences", check_numeric),
        ("equal to minigrad's cross_entropy backward", check_against_minigrad),
        ("logits of magnitude 1e4 stay finite", check_large_logits),
    ),
    solution=solution,
)
