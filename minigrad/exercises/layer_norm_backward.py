"""Exercise layer_norm_backward: layer norm's backward over the last dimension, checked by
finite differences and against minigrad's ``F.layer_norm`` differentiated by autograd."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from minigrad.autograd import grad as autograd_grad
from minigrad.exercises._base import Exercise, Wrong, close, expect_tuple, numeric_grad
from minigrad.nn import functional as F
from minigrad.tensor import Tensor

__all__ = ["EXERCISE", "solution"]  # the checks are reached through EXERCISE.checks

NAMES = ("x", "weight", "bias")


def _inputs(seed, N=3, D=5):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(N, D)) * 2 + 1, rng.normal(size=D), rng.normal(size=D),
            rng.normal(size=(N, D)))


def _student(module, x, weight, bias, dy):
    _, cache = module.layer_norm_forward(x.copy(), weight.copy(), bias.copy())
    grads = expect_tuple("layer_norm_backward", module.layer_norm_backward(dy, cache), 3)
    for name, g, like in zip(NAMES, grads, (x, weight, bias)):
        if np.shape(g) != like.shape:
            raise Wrong(f"d{name} has shape {np.shape(g)}, expected {like.shape} (the shape "
                        f"of {name})")
    return grads


def _minigrad_grads(x, weight, bias, dy):
    tensors = [Tensor(a, requires_grad=True) for a in (x, weight, bias)]
    y = F.layer_norm(tensors[0], (x.shape[-1],), tensors[1], tensors[2])
    return [g.numpy() for g in autograd_grad([y], tensors, [Tensor(dy)])]


def check_numeric(module):
    x, weight, bias, dy = _inputs(0)
    grads = _student(module, x, weight, bias, dy)

    def loss(x, weight, bias):
        return float(np.sum(dy * module.layer_norm_forward(x, weight, bias)[0]))

    for k, name in enumerate(NAMES):
        close(f"the gradient of {name}", grads[k], numeric_grad(loss, [x, weight, bias], k),
              rtol=1e-4, atol=1e-6)


def check_against_minigrad(module):
    x, weight, bias, dy = _inputs(1, N=6, D=16)
    for name, got, expected in zip(NAMES, _student(module, x, weight, bias, dy),
                                   _minigrad_grads(x, weight, bias, dy)):
        close(f"the gradient of {name} (6 rows of 16)", got, expected, rtol=1e-6, atol=1e-9)


def check_row_sums(module):
    """With weight 1, each row of dx sums to 0 and is orthogonal to xhat: layer norm's output
    does not change when x shifts or scales (almost: up to eps), so neither direction gets
    gradient."""
    x, _, bias, dy = _inputs(2, D=8)
    weight = np.ones(8)
    dx = _student(module, x, weight, bias, dy)[0]
    _, (xhat, *_) = module.layer_norm_forward(x, weight, bias)
    close("the row sums of dx (shifting a row changes nothing)", dx.sum(axis=1), np.zeros(3),
          atol=1e-9)
    close("the row sums of dx * xhat (scaling a row changes almost nothing)",
          (dx * xhat).sum(axis=1), np.zeros(3), atol=1e-4)


def solution():
    """minigrad's F.layer_norm (forward, and its backward through autograd), under the stub's
    names."""
    def layer_norm_forward(x, weight, bias, eps=1e-5):
        y = F.layer_norm(Tensor(x), (x.shape[-1],), Tensor(weight), Tensor(bias), eps)
        xhat = (x - x.mean(axis=1, keepdims=True)) / np.sqrt(x.var(axis=1, keepdims=True) + eps)
        return y.numpy(), (xhat, x, weight, bias)

    def layer_norm_backward(dy, cache):
        _, x, weight, bias = cache
        return tuple(_minigrad_grads(x, weight, bias, dy))

    return SimpleNamespace(layer_norm_forward=layer_norm_forward,
                           layer_norm_backward=layer_norm_backward)


EXERCISE = Exercise(
    name="layer_norm_backward",
    title="the backward of layer normalization over the last dimension (NumPy)",
    lesson="08-attention.md",
    solution_in="kernels/layer_norm.py: LayerNormFn._backward_numpy",
    checks=(
        ("gradients of x, weight and bias by finite differences", check_numeric),
        ("equal to minigrad's layer_norm backward", check_against_minigrad),
        ("dx ignores shifts and scales of a row", check_row_sums),
    ),
    solution=solution,
)
