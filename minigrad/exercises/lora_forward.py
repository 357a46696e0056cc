"""Exercise lora_forward: a LoRA layer's forward, checked against minigrad's `LoRALinear`
(values and the gradients of A and B) and on the starting point (B = 0: the base layer)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from minigrad.autograd import grad as autograd_grad
from minigrad.exercises._base import Exercise, Wrong, close
from minigrad.finetune.lora import LoRALinear
from minigrad.nn import Linear, Parameter
from minigrad.tensor import Tensor

__all__ = ["EXERCISE", "solution"]  # the checks are reached through EXERCISE.checks

IN, OUT, R, ALPHA = 5, 4, 2, 6.0


def _layer(seed, bias=True):
    """A LoRALinear with random A and B (not the zero B of a fresh one), float64."""
    rng = np.random.default_rng(seed)
    base = Linear(IN, OUT, bias=bias)
    base.weight = Parameter(Tensor(rng.normal(size=(OUT, IN))))
    if bias:
        base.bias = Parameter(Tensor(rng.normal(size=OUT)))
    layer = LoRALinear(base, r=R, alpha=ALPHA)
    layer.lora_A = Parameter(Tensor(rng.normal(size=(R, IN))))
    layer.lora_B = Parameter(Tensor(rng.normal(size=(OUT, R))))
    return layer


def _student(module, layer, x):
    out = module.lora_linear(x, layer.weight, layer.bias, layer.lora_A, layer.lora_B, ALPHA)
    if not isinstance(out, Tensor):
        raise Wrong(f"lora_linear should return a Tensor, returned a {type(out).__name__}")
    return out


def _check_values(module, bias, shape):
    layer = _layer(0, bias)
    x = Tensor(np.random.default_rng(1).normal(size=shape))
    close(f"the output for x of shape {shape}" + ("" if bias else " without a bias"),
          _student(module, layer, x), layer(x))


def check_values(module):
    _check_values(module, bias=True, shape=(3, IN))


def check_batched_no_bias(module):
    _check_values(module, bias=False, shape=(2, 3, IN))


def check_zero_b(module):
    layer = _layer(2)
    layer.lora_B = Parameter(Tensor(np.zeros((OUT, R))))
    x = Tensor(np.random.default_rng(3).normal(size=(3, IN)))
    base = x @ layer.weight.T + layer.bias
    close("the output with B = 0 (it should be the base layer's)", _student(module, layer, x),
          base)


def check_gradients(module):
    layer = _layer(4)
    x = Tensor(np.random.default_rng(5).normal(size=(3, IN)))
    w = Tensor(np.random.default_rng(6).normal(size=(3, OUT)))
    out = _student(module, layer, x)
    if not out.requires_grad:
        raise Wrong("the output does not require grad: use minigrad ops on the Tensors "
                    "(not .data or .numpy()), so that gradients reach A and B")
    got = autograd_grad([out], [layer.lora_A, layer.lora_B], [w], allow_unused=True)
    expected = autograd_grad([layer(x)], [layer.lora_A, layer.lora_B], [w])
    for name, g, e in zip(("A", "B"), got, expected):
        if g is None:
            raise Wrong(f"no gradient reaches {name}: is it in your formula, as a Tensor?")
        close(f"the gradient of {name}", g, e)


def solution():
    """minigrad's own LoRALinear.forward, under the stub's interface."""
    def lora_linear(x, weight, bias, lora_A, lora_B, alpha):
        layer = LoRALinear(Linear(weight.shape[1], weight.shape[0], bias=bias is not None),
                           r=lora_A.shape[0], alpha=alpha)
        layer.weight, layer.lora_A, layer.lora_B = weight, lora_A, lora_B
        if bias is not None:
            layer.bias = bias
        return layer(x)

    return SimpleNamespace(lora_linear=lora_linear)


EXERCISE = Exercise(
    name="lora_forward",
    title="a LoRA layer's forward: the frozen Linear plus (alpha / r) x A^T B^T",
    lesson="10-finetuning-lora.md",
    solution_in="minigrad/finetune/lora.py: LoRALinear.forward",
    checks=(
        ("the output against minigrad's LoRALinear", check_values),
        ("batched input, no bias", check_batched_no_bias),
        ("B = 0 gives the base layer", check_zero_b),
        ("the gradients of A and B", check_gradients),
    ),
    solution=solution,
)
