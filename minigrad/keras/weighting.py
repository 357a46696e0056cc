"""Per-example losses, for `fit`'s ``sample_weight`` and ``class_weight`` and for the
per-output losses of a model with several outputs.

Keras weights each example's loss and divides the sum by the number of examples (its
``"sum_over_batch_size"`` reduction): ``mean(w * loss)``, not a weighted mean. An example's
loss is the mean over its other axes (time steps, features). The built-in `keras.losses` are
computed here without their reduction; a loss function ``fn(y_true, y_pred)`` must return one
value per example (or per element) to be weighted.

Example:
    >>> import minigrad as mg
    >>> from minigrad.keras import losses
    >>> loss = losses.MeanSquaredError()
    >>> y_true, y_pred = mg.tensor([[0.0], [0.0]]), mg.tensor([[1.0], [2.0]])
    >>> per_example_loss(loss, y_true, y_pred).tolist()
    [1.0, 4.0]
    >>> float(weighted_loss(loss, y_true, y_pred, mg.tensor([1.0, 0.5])))
    1.5
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from minigrad import ops
from minigrad.keras import losses
from minigrad.nn import functional as F
from minigrad.tensor import Tensor

__all__ = ["class_weights_to_sample_weights", "per_example_loss", "weighted_loss"]


def _per_example(values: Tensor, n: int) -> Tensor:
    """The mean of `values` over every axis but the first (n examples)."""
    return values.reshape(n, -1).mean(dim=1)


def per_example_loss(loss: losses.Loss | Callable, y_true: Tensor, y_pred: Tensor) -> Tensor:
    """The loss of each example, shape ``(N,)``, for a `keras.losses.Loss` or a function."""
    n = y_pred.shape[0]
    if isinstance(loss, losses.SparseCategoricalCrossentropy):
        C = y_pred.shape[-1]
        target = y_true.reshape(-1)
        if target.dtype.kind not in "iu":
            target = target.long()
        if loss.from_logits:
            values = F.cross_entropy(y_pred.reshape(-1, C), target, reduction="none")
        else:
            log_p = ops.log(y_pred.reshape(-1, C).clamp(losses.EPSILON, 1.0 - losses.EPSILON))
            values = F.nll_loss(log_p, target, reduction="none")
        return _per_example(values, n)
    if isinstance(loss, losses.CategoricalCrossentropy):
        C = y_pred.shape[-1]
        target = y_true.reshape(-1, C).to(y_pred.dtype)
        if loss.from_logits:
            values = F.cross_entropy(y_pred.reshape(-1, C), target, reduction="none")
        else:
            p = y_pred.reshape(-1, C)
            p = (p / p.sum(dim=-1, keepdim=True)).clamp(losses.EPSILON, 1.0 - losses.EPSILON)
            values = -(target * ops.log(p)).sum(dim=-1)
        return _per_example(values, n)
    if isinstance(loss, losses.BinaryCrossentropy):
        target = y_true.reshape(y_pred.shape).to(y_pred.dtype)
        if loss.from_logits:
            values = F.binary_cross_entropy_with_logits(y_pred, target, reduction="none")
        else:
            p = y_pred.clamp(losses.EPSILON, 1.0 - losses.EPSILON)
            values = F.binary_cross_entropy(p, target, reduction="none")
        return _per_example(values, n)
    if isinstance(loss, (losses.MeanSquaredError, losses.MeanAbsoluteError)):
        target = y_true.reshape(y_pred.shape).to(y_pred.dtype)
        fn = F.mse_loss if isinstance(loss, losses.MeanSquaredError) else F.l1_loss
        return _per_example(fn(y_pred, target, reduction="none"), n)
    values = loss(y_true, y_pred)
    if not isinstance(values, Tensor) or values.ndim == 0 or values.shape[0] != n:
        raise ValueError(
            f"sample_weight/class_weight need one loss value per example, but the loss "
            f"{getattr(loss, '__name__', type(loss).__name__)} returned "
            f"{'a scalar' if not isinstance(values, Tensor) or values.ndim == 0 else values.shape}"
            ". Return the per-example losses (e.g. without .mean()), or use a keras.losses loss."
        )
    return _per_example(values, n)


def weighted_loss(loss: losses.Loss | Callable, y_true: Tensor, y_pred: Tensor,
                  sample_weight: Tensor) -> Tensor:
    """Keras's weighted loss: ``mean(sample_weight * per-example loss)`` over the batch."""
    per_example = per_example_loss(loss, y_true, y_pred)
    return (per_example * sample_weight.to(per_example.dtype)).mean()


def class_weights_to_sample_weights(y: np.ndarray, class_weight: dict) -> np.ndarray:
    """Each example's weight, ``class_weight[its class]`` (1 for a class not listed).

    The class is the label itself, or the argmax of a one-hot row (Keras's rule).

    Example:
        >>> class_weights_to_sample_weights(np.array([0, 1, 1]), {1: 3.0}).tolist()
        [1.0, 3.0, 3.0]
    """
    y = np.asarray(y)
    if not isinstance(class_weight, dict):
        raise TypeError(f"class_weight must be a dict {{class: weight}}, got "
                        f"{type(class_weight).__name__}")
    classes = y.argmax(axis=-1) if y.ndim > 1 and y.shape[-1] > 1 else np.round(y)
    if classes.ndim > 1 and classes.shape[-1] == 1:
        classes = classes.reshape(classes.shape[:-1])  # an (N, 1) column
    if classes.ndim != 1:
        raise ValueError(f"class_weight needs one class per example; labels of shape "
                         f"{y.shape} hold several. Pass sample_weight instead.")
    classes = classes.astype(np.int64)
    table: Any = {int(k): float(v) for k, v in class_weight.items()}
    return np.array([table.get(int(c), 1.0) for c in classes], dtype=np.float32)
