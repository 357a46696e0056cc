"""Exercise layer_norm_backward: the backward of layer normalization over the last dimension,
in NumPy.

Lesson: docs/course/08-attention.md. minigrad's own answer: ``LayerNormFn._backward_numpy``
in kernels/layer_norm.py.

The forward is written for you: for each row x of ``x`` (N, D),

    mean = x.mean(),  var = ((x - mean) ** 2).mean()      (biased, as PyTorch)
    xhat = (x - mean) / sqrt(var + eps)
    y = xhat * weight + bias                               weight, bias: (D,)

Write the backward: given ``dy`` (N, D), return ``dx`` (N, D), ``dweight`` (D,) and ``dbias``
(D,). ``mean`` and ``var`` depend on every element of the row, so ``dx`` is not just
``dy * weight / sqrt(var + eps)``: two row means of ``dxhat = dy * weight`` come in.

Check your work with ``minigrad exercises check layer_norm_backward``.
"""

import numpy as np


def layer_norm_forward(x, weight, bias, eps=1e-5):
    """``(y, cache)`` for ``x`` (N, D) normalized over its last dimension."""
    mean = x.mean(axis=1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=1, keepdims=True)
    rstd = 1 / np.sqrt(var + eps)  # (N, 1)
    xhat = (x - mean) * rstd
    y = xhat * weight + bias
    cache = (xhat, rstd, weight)
    return y, cache


def layer_norm_backward(dy, cache):
    """``(dx (N, D), dweight (D,), dbias (D,))``."""
    xhat, rstd, weight = cache
    raise NotImplementedError("write layer_norm_backward: return (dx, dweight, dbias)")
