"""Keras utilities: `to_categorical`, `set_random_seed`.

Example:
    >>> to_categorical([0, 2], num_classes=3).tolist()
    [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
"""

from __future__ import annotations

from typing import Any

import random

import numpy as np

from minigrad import backend

__all__ = ["set_random_seed", "to_categorical"]


def set_random_seed(seed: int) -> None:
    """Seeds every random generator a Keras program draws from, as Keras does: Python's
    `random`, NumPy's global generator and minigrad's (weight initialisation, dropout,
    shuffling; every device).

    Example:
        >>> import minigrad as mg
        >>> set_random_seed(1); a = (np.random.rand(), random.random(), mg.rand(1).item())
        >>> set_random_seed(1); a == (np.random.rand(), random.random(), mg.rand(1).item())
        True
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"Expected `seed` argument to be an integer. Received: seed={seed!r}")
    random.seed(int(seed))
    np.random.seed(int(seed))
    backend.manual_seed(int(seed))


def to_categorical(y: Any, num_classes: int | None = None, dtype: str = "float32") -> np.ndarray:
    """One-hot rows for integer class labels: shape ``(*y.shape, num_classes)``.

    Args:
        y: integer labels in [0, num_classes).
        num_classes: the number of classes (default ``max(y) + 1``).
        dtype: the result's dtype.
    """
    y = np.asarray(y)
    if y.dtype.kind == "f":
        if np.any(y != np.round(y)):
            raise ValueError("to_categorical expects integer class labels")
        y = y.astype(np.int64)
    if y.ndim > 1 and y.shape[-1] == 1:
        y = y.reshape(y.shape[:-1])
    if num_classes is None:
        num_classes = int(y.max()) + 1 if y.size else 0
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"to_categorical: labels must be in [0, {num_classes}), got "
                         f"[{y.min()}, {y.max()}]")
    return np.eye(num_classes, dtype=dtype)[y]
