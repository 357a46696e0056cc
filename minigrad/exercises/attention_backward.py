"""Exercise attention_backward: attention's backward for one head, checked by finite
differences and against minigrad's attention (``F.scaled_dot_product_attention``, whose NumPy
kernel is ``kernels/attention.py``), with and without the causal mask."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from minigrad.autograd import grad as autograd_grad
from minigrad.exercises._base import Exercise, Wrong, close, expect_tuple, numeric_grad
from minigrad.nn import functional as F
from minigrad.tensor import Tensor

__all__ = ["EXERCISE", "solution"]  # the checks are reached through EXERCISE.checks

L, S, E, EV = 3, 4, 5, 2


def _inputs(seed, L=L, S=S):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(L, E)), rng.normal(size=(S, E)), rng.normal(size=(S, EV))


def _check_numeric(module, causal, L=L, S=S):
    q, k, v = _inputs(0, L, S)
    w = np.random.default_rng(1).normal(size=(L, EV))
    out, cache = module.attention_forward(q, k, v, causal=causal)
    grads = expect_tuple("attention_backward", module.attention_backward(w, cache), 3)

    def loss(q, k, v):
        return float(np.sum(w * module.attention_forward(q, k, v, causal=causal)[0]))

    inputs = [q, k, v]
    for i, name in enumerate(("q", "k", "v")):
        close(f"the gradient of {name}" + (" (causal)" if causal else ""), grads[i],
              numeric_grad(loss, inputs, i), rtol=1e-4, atol=1e-6)


def check_shapes(module):
    q, k, v = _inputs(0)
    _, cache = module.attention_forward(q, k, v)
    grads = module.attention_backward(np.ones((L, EV)), cache)
    grads = expect_tuple("attention_backward", grads, 3)
    for name, got, want in zip("qkv", grads, (q, k, v)):
        if np.shape(got) != want.shape:
            raise Wrong(f"d{name} has shape {np.shape(got)}, expected {want.shape} (the shape "
                        f"of {name})")


def check_plain(module):
    _check_numeric(module, causal=False)


def check_causal(module):
    _check_numeric(module, causal=True, L=4, S=4)


def check_against_minigrad(module):
    """Against minigrad's attention, differentiated by its autograd."""
    q, k, v = _inputs(5, L=6, S=6)
    dout = np.random.default_rng(6).normal(size=(6, EV))
    _, cache = module.attention_forward(q, k, v, causal=True)
    got = expect_tuple("attention_backward", module.attention_backward(dout, cache), 3)
    expected = _minigrad_grads(q, k, v, dout, causal=True)
    for name, g, e in zip(("q", "k", "v"), got, expected):
        close(f"the gradient of {name} (causal, L = S = 6)", g, e, rtol=1e-6)


def _minigrad_grads(q, k, v, dout, causal):
    tq, tk, tv = (Tensor(a, requires_grad=True) for a in (q, k, v))
    out = F.scaled_dot_product_attention(tq, tk, tv, is_causal=causal)
    return [g.numpy() for g in autograd_grad([out], [tq, tk, tv], [Tensor(dout)])]


def solution():
    """minigrad's attention (forward and autograd backward), under the stub's names."""
    def attention_forward(q, k, v, causal=False):
        out = F.scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v), is_causal=causal)
        return out.numpy(), (q, k, v, causal)

    def attention_backward(dout, cache):
        q, k, v, causal = cache
        return tuple(_minigrad_grads(q, k, v, dout, causal))

    return SimpleNamespace(attention_forward=attention_forward,
                           attention_backward=attention_backward)


EXERCISE = Exercise(
    name="attention_backward",
    title="the backward of softmax(q k^T / sqrt(E)) v for one head, causal or not (NumPy)",
    lesson="08-attention.md",
    solution_in="kernels/attention.py: AttentionFn._backward_numpy",
    checks=(
        ("dq, dk, dv have the shapes of q, k, v", check_shapes),
        ("gradients of q, k, v by finite differences", check_plain),
        ("the same with the causal mask", check_causal),
        ("equal to minigrad's attention backward (causal)", check_against_minigrad),
    ),
    solution=solution,
)
