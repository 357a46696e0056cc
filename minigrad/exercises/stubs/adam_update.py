"""Exercise adam_update: one step of Adam (Kingma & Ba, 2015, Algorithm 1), with PyTorch's
numerics.

Lesson: docs/course/06-sgd-and-adam.md. minigrad's own answer: ``adam_update`` in
minigrad/references.py (it updates arrays in place; yours returns new ones).

For a parameter ``param`` with gradient ``grad`` at step ``step`` (1 on the first step):

    g <- grad + weight_decay * param          (L2 penalty; skip when weight_decay == 0)
    m <- beta1 * m + (1 - beta1) * g          (first moment)
    v <- beta2 * v + (1 - beta2) * g * g      (second moment)
    m_hat = m / (1 - beta1 ** step)           (bias corrections: m and v start at 0)
    v_hat = v / (1 - beta2 ** step)
    param <- param - lr * m_hat / (sqrt(v_hat) + eps)

Note where ``eps`` goes: added to sqrt(v_hat), as PyTorch does (the paper's Algorithm 1 too).
NumPy only; do not modify the arrays you are given.

Check your work with ``minigrad exercises check adam_update``.
"""

import numpy as np  # noqa: F401  (np.sqrt is what you need)


def adam_update(param, grad, m, v, step, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
                weight_decay=0.0):
    """One Adam step: returns ``(new_param, new_m, new_v)``."""
    raise NotImplementedError("write adam_update: return (new_param, new_m, new_v)")
