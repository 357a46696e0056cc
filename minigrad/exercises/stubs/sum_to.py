"""Exercise sum_to: undo broadcasting, the step the backward engine runs for every op.

Lesson: docs/course/04-broadcasting.md. minigrad's own answer: ``SumToFn.forward`` in
minigrad/ops/shape.py.

When ``a + b`` broadcast ``b`` of shape (4,) to (3, 4), every element of ``b`` was used three
times, so its gradient is the (3, 4) gradient summed over the new leading dimension. In
general: sum ``x`` over the leading dimensions ``shape`` lacks, and over every dimension where
``shape`` has 1 and ``x`` has more (keeping it as size 1), so that the result has exactly
``shape``. NumPy only: ``x.sum(axis=..., keepdims=...)`` and ``reshape``.

Check your work with ``minigrad exercises check sum_to``.
"""

import numpy as np


def sum_to(x: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum ``x`` down to ``shape``, the inverse of ``np.broadcast_to(y, x.shape)``."""
    raise NotImplementedError("write sum_to: the axes to sum, then reshape to `shape`")
