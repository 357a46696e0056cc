"""Exercise cross_entropy_backward: the gradient of softmax cross-entropy with respect to the
logits, in NumPy.

Lesson: docs/course/05-mlp-and-keras.md. minigrad's own answer:
``SoftmaxCrossEntropyFn._backward_numpy`` in kernels/softmax_cross_entropy.py (it also handles
class weights, ignore_index and label smoothing; yours needs none of them).

The forward is written for you: ``logits`` (N, C), ``target`` (N,) class indices, the mean
over the N examples of ``-log softmax(logits)[n, target[n]]``, computed with the row maximum
subtracted so that logits of 1e4 do not overflow. Write the backward: the gradient of that mean
loss with respect to ``logits``, shape (N, C). Work it out on paper first: it is short.
Use the probabilities the forward keeps in ``cache`` (computing ``exp(logits)`` again would
overflow).

Check your work with ``minigrad exercises check cross_entropy_backward``.
"""

import numpy as np


def cross_entropy_forward(logits, target):
    """``(loss, cache)``: the mean cross-entropy of ``logits`` (N, C) for ``target`` (N,)."""
    shifted = logits - logits.max(axis=1, keepdims=True)  # NOTE: no overflow in exp
    log_z = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    log_p = shifted - log_z  # log softmax, (N, C)
    N = logits.shape[0]
    loss = -log_p[np.arange(N), target].mean()
    cache = (np.exp(log_p), target)  # the probabilities, and the targets
    return loss, cache


def cross_entropy_backward(cache):
    """The gradient of the mean loss with respect to the logits, (N, C)."""
    p, target = cache
    raise NotImplementedError("write cross_entropy_backward: return dlogits (N, C)")
