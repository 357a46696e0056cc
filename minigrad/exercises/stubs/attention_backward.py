"""Exercise attention_backward: the backward of scaled dot-product attention, in NumPy.

Lesson: docs/course/08-attention.md. minigrad's own answer: ``AttentionFn._backward_numpy`` in
kernels/attention.py (its module docstring has the formulas).

The forward is written for you, for one (batch, head): ``q`` (L, E), ``k`` (S, E), ``v``
(S, Ev), scale = 1 / sqrt(E), and with ``causal=True`` query i may attend keys 0..i only:

    scores = (q @ k.T) * scale + mask          mask: 0, or -inf where a key is hidden
    P = softmax(scores, axis=-1)               rows sum to 1
    out = P @ v

Write the backward: given ``dout`` (L, Ev), return ``dq``, ``dk``, ``dv``. The one step that
is not a matrix product is the softmax's: for a row p of P and its gradient dp,
d scores = p * (dp - sum(dp * p)). A hidden key has p = 0, so it gets no gradient by itself.

Check your work with ``minigrad exercises check attention_backward``.
"""

import numpy as np


def attention_forward(q, k, v, causal=False):
    """``(out (L, Ev), cache)`` for one head."""
    L, E = q.shape
    S = k.shape[0]
    scale = 1 / np.sqrt(E)
    scores = (q @ k.T) * scale
    if causal:
        hidden = ~np.tri(L, S, dtype=bool)  # above the diagonal: keys after the query
        scores = np.where(hidden, -np.inf, scores)
    scores = scores - scores.max(axis=-1, keepdims=True)  # no overflow in exp
    P = np.exp(scores)
    P = P / P.sum(axis=-1, keepdims=True)
    out = P @ v
    cache = (q, k, v, P, scale)
    return out, cache


def attention_backward(dout, cache):
    """``(dq (L, E), dk (S, E), dv (S, Ev))``."""
    q, k, v, P, scale = cache
    raise NotImplementedError("write attention_backward: return (dq, dk, dv)")
