"""Keras metric names -> per-example score functions for the training loop.

``metrics=['accuracy']`` means what Keras makes of it: the accuracy that fits the loss
(sparse categorical for ``sparse_categorical_crossentropy``, binary for
``binary_crossentropy``, ...). A metric function takes ``(output, target)`` and returns a
Tensor of per-example scores whose mean is the metric (see `minigrad.train`).

Example:
    >>> import minigrad as mg
    >>> from minigrad.keras import losses
    >>> fn = get("accuracy", losses.get("sparse_categorical_crossentropy"), logits=True)
    >>> fn(mg.tensor([[2.0, 0.0], [0.0, 1.0]]), mg.tensor([0, 0])).tolist()
    [True, False]
"""

from __future__ import annotations

from typing import Any, Callable

from minigrad.keras import losses
from minigrad.tensor import Tensor
from minigrad.train import accuracy, binary_accuracy

__all__ = ["NAMES", "get"]

Metric = Callable[[Tensor, Tensor], Tensor]


def _binary(logits: bool) -> Metric:
    threshold = 0.0 if logits else 0.5  # sigmoid(z) > 0.5  <=>  z > 0

    def binary(output: Tensor, target: Tensor) -> Tensor:
        return binary_accuracy(output, target, threshold)

    return binary


def _absolute_error(output: Tensor, target: Tensor) -> Tensor:
    return (output - target.reshape(output.shape)).abs()


def _squared_error(output: Tensor, target: Tensor) -> Tensor:
    return (output - target.reshape(output.shape)) ** 2


NAMES = (
    "accuracy", "acc", "sparse_categorical_accuracy", "categorical_accuracy", "binary_accuracy",
    "mae", "mean_absolute_error", "mse", "mean_squared_error",
)


def get(name: Any, loss: Any, logits: bool) -> Metric:
    """The score function for a Keras metric name.

    Args:
        name: a name from `NAMES`, or a function ``fn(y_true, y_pred)`` returning per-example
            scores (Keras's argument order).
        loss: the compiled loss (decides what ``'accuracy'`` means).
        logits: whether the outputs the loop sees are logits (for the binary threshold).
    """
    if callable(name) and not isinstance(name, str):
        def custom(output: Tensor, target: Tensor) -> Tensor:
            return name(target, output)

        return custom
    if name in ("accuracy", "acc"):
        if isinstance(loss, losses.BinaryCrossentropy):
            return _binary(logits)
        return accuracy  # class indices or one-hot rows: argmax agrees
    if name in ("sparse_categorical_accuracy", "categorical_accuracy"):
        return accuracy
    if name == "binary_accuracy":
        return _binary(logits)
    if name in ("mae", "mean_absolute_error"):
        return _absolute_error
    if name in ("mse", "mean_squared_error"):
        return _squared_error
    valid = ", ".join(repr(n) for n in NAMES)
    raise ValueError(f"Unknown metric function: {name!r}. Valid metrics are {valid}.")
