"""Keras losses: ``loss(y_true, y_pred)`` (Keras's argument order) on `minigrad.nn.functional`.

Each loss also checks and converts the labels a model is given (`prepare_targets`), once,
before training, so a wrong label shape or dtype fails with a message that says what to do.

A softmax output with a cross-entropy loss is computed from the logits: `Sequential` notices
that its last layer's activation is the one the loss `absorbs` and trains on
``loss.with_logits()`` with the activation left out, which is exact and stable for any logits.

Example:
    >>> import minigrad as mg
    >>> loss = SparseCategoricalCrossentropy(from_logits=True)
    >>> round(float(loss(mg.tensor([0]), mg.tensor([[2.0, 0.0]]))), 4)
    0.1269
    >>> get("sparse_categorical_crossentropy").absorbs
    'softmax'
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from minigrad import ops
from minigrad.nn import functional as F
from minigrad.tensor import Tensor, tensor

__all__ = [
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "Loss",
    "MeanAbsoluteError",
    "MeanSquaredError",
    "SparseCategoricalCrossentropy",
    "get",
]

EPSILON = 1e-7  # Keras's clip for probabilities


def _tensor(value: Any) -> Tensor:
    return value if isinstance(value, Tensor) else tensor(np.asarray(value))


def _label_shape_text(shape: tuple) -> str:
    """``(N, 10)``, or ``(N,)`` for per-example labels."""
    return "(" + ", ".join(["N", *(str(d) for d in shape)]) + ("," if not shape else "") + ")"


def _matches(shape: tuple, expected: tuple) -> bool:
    """Shapes equal, where None in `expected` matches any size."""
    return len(shape) == len(expected) and all(
        e is None or s == e for s, e in zip(shape, expected)
    )


class Loss:
    """Base class: ``loss(y_true, y_pred)`` -> the mean loss, a scalar Tensor.

    Attributes:
        name: the Keras name (``'sparse_categorical_crossentropy'``).
        from_logits: whether `y_pred` holds logits rather than probabilities.
        absorbs: the output activation this loss can take over (``'softmax'``,
            ``'sigmoid'``), or None.
    """

    name = "loss"
    absorbs: str | None = None

    def __init__(self, from_logits: bool = False, name: str | None = None) -> None:
        self.from_logits = from_logits
        if name is not None:
            self.name = name

    def __call__(self, y_true: Any, y_pred: Any) -> Tensor:
        return self.call(_tensor(y_true), _tensor(y_pred))

    def call(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        """The loss of a batch, ``y_true`` and ``y_pred`` as tensors (subclasses define it)."""
        raise NotImplementedError

    def with_logits(self) -> "Loss":
        """The same loss, taking logits."""
        return type(self)(from_logits=True, name=self.name)

    def prepare_targets(self, y: np.ndarray, output_shape: tuple | None) -> np.ndarray:
        """Checks labels against the model's output shape (batch first, None) and returns
        them in the dtype and shape the loss needs. Raises ValueError with a fix."""
        y = np.asarray(y)
        if y.dtype.kind not in "biuf":
            raise ValueError(f"{self.name}: labels must be numbers, got dtype {y.dtype}")
        if output_shape is not None and y.ndim == len(output_shape) - 1 and (
            output_shape[-1] == 1
        ):
            y = y.reshape(*y.shape, 1)  # (N,) labels for an (N, 1) output
        if output_shape is not None and not _matches(y.shape[1:], tuple(output_shape[1:])):
            raise ValueError(
                f"{self.name}: labels of shape {y.shape} do not match the model's output shape "
                f"{_label_shape_text(tuple(output_shape[1:]))}"
            )
        return y.astype(np.float32)

    def get_config(self) -> dict:
        """The constructor arguments, enough to rebuild the loss (saved with the model)."""
        return {"name": self.name, "from_logits": self.from_logits}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(from_logits={self.from_logits})"


class SparseCategoricalCrossentropy(Loss):
    """Cross-entropy with integer class labels: -log p[label], averaged.

    Labels have the output's shape without its class axis, e.g. (N,) for an (N, C) output
    (an (N, 1) column is accepted too).

    Example:
        >>> import minigrad as mg
        >>> loss = SparseCategoricalCrossentropy()
        >>> round(float(loss(mg.tensor([1]), mg.tensor([[0.25, 0.75]]))), 4)  # -log 0.75
        0.2877
    """

    name = "sparse_categorical_crossentropy"
    absorbs = "softmax"

    def call(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        C = y_pred.shape[-1]
        target = y_true.reshape(-1)
        if target.dtype.kind not in "iu":
            target = target.long()
        if self.from_logits:
            return F.cross_entropy(y_pred.reshape(-1, C), target)
        # NOTE: probabilities are clipped as Keras does, so log never sees 0
        log_p = ops.log(y_pred.reshape(-1, C).clamp(EPSILON, 1.0 - EPSILON))
        return F.nll_loss(log_p, target)

    def prepare_targets(self, y: np.ndarray, output_shape: tuple | None) -> np.ndarray:
        y = np.asarray(y)
        if output_shape is None:
            return y.astype(np.int64)
        label_shape = tuple(output_shape[1:-1])  # the output's shape without the classes
        n_classes = output_shape[-1]
        if _matches(y.shape[1:], label_shape + (1,)) and not _matches(y.shape[1:], label_shape):
            y = y.reshape(y.shape[:-1])  # an (N, 1) column of labels
        if not _matches(y.shape[1:], label_shape):
            hint = ""
            if _matches(y.shape[1:], tuple(output_shape[1:])):
                hint = (" These look like one-hot labels: use loss='categorical_crossentropy', "
                        "or pass class indices (y.argmax(-1)).")
            raise ValueError(
                f"sparse_categorical_crossentropy expects integer class labels of shape "
                f"{_label_shape_text(label_shape)} for a model output of shape "
                f"{_label_shape_text(tuple(output_shape[1:]))}, but got labels of shape "
                f"{y.shape}.{hint}"
            )
        if y.dtype.kind == "f":
            if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
                bad = y[~np.isfinite(y) | (y != np.round(y))].ravel()[0]
                raise ValueError(
                    f"sparse_categorical_crossentropy expects integer class labels, got float "
                    f"labels such as {bad}. For class probabilities or one-hot rows use "
                    "loss='categorical_crossentropy'."
                )
        elif y.dtype.kind not in "biu":
            raise ValueError(
                f"sparse_categorical_crossentropy expects integer class labels, got dtype "
                f"{y.dtype}"
            )
        if y.size and n_classes is not None and (y.min() < 0 or y.max() >= n_classes):
            bad = y.max() if y.max() >= n_classes else y.min()
            raise ValueError(
                f"Received a label value of {bad:g} which is outside the valid range of "
                f"[0, {n_classes - 1}] for a model with {n_classes} outputs. Label values "
                f"must be class indices 0..{n_classes - 1}."
            )
        return y.astype(np.int64)


class CategoricalCrossentropy(Loss):
    """Cross-entropy with one-hot (or probability) labels of the output's shape.

    Example:
        >>> import minigrad as mg
        >>> loss = CategoricalCrossentropy(from_logits=True)
        >>> round(float(loss(mg.tensor([[0.0, 1.0]]), mg.tensor([[0.0, 0.0]]))), 4)  # log 2
        0.6931
    """

    name = "categorical_crossentropy"
    absorbs = "softmax"

    def call(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        C = y_pred.shape[-1]
        target = y_true.reshape(-1, C).to(y_pred.dtype)
        if self.from_logits:
            return F.cross_entropy(y_pred.reshape(-1, C), target)
        # Keras rescales the rows to sum to 1, then clips
        p = y_pred.reshape(-1, C)
        p = (p / p.sum(dim=-1, keepdim=True)).clamp(EPSILON, 1.0 - EPSILON)
        return -(target * ops.log(p)).sum(dim=-1).mean()

    def prepare_targets(self, y: np.ndarray, output_shape: tuple | None) -> np.ndarray:
        y = np.asarray(y)
        if output_shape is not None and not _matches(y.shape[1:], tuple(output_shape[1:])):
            hint = ""
            if _matches(y.shape[1:], tuple(output_shape[1:-1])) or (
                _matches(y.shape[1:], tuple(output_shape[1:-1]) + (1,))
            ):
                hint = (" These look like class indices: use "
                        "loss='sparse_categorical_crossentropy', or one-hot encode them with "
                        "keras.utils.to_categorical(y).")
            raise ValueError(
                f"categorical_crossentropy expects one-hot labels of the output's shape "
                f"{_label_shape_text(tuple(output_shape[1:]))}, but got labels of shape "
                f"{y.shape}.{hint}"
            )
        return y.astype(np.float32)


class BinaryCrossentropy(Loss):
    """Cross-entropy of yes/no labels in [0, 1] against probabilities (or logits).

    Example:
        >>> import minigrad as mg
        >>> loss = BinaryCrossentropy(from_logits=True)
        >>> round(float(loss(mg.tensor([[1.0]]), mg.tensor([[0.0]]))), 4)  # log 2
        0.6931
    """

    name = "binary_crossentropy"
    absorbs = "sigmoid"

    def call(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        target = y_true.reshape(y_pred.shape).to(y_pred.dtype)
        if self.from_logits:
            return F.binary_cross_entropy_with_logits(y_pred, target)
        return F.binary_cross_entropy(y_pred.clamp(EPSILON, 1.0 - EPSILON), target)

    def prepare_targets(self, y: np.ndarray, output_shape: tuple | None) -> np.ndarray:
        y = super().prepare_targets(y, output_shape)
        if y.size and (y.min() < 0 or y.max() > 1):
            raise ValueError(
                f"binary_crossentropy expects labels in [0, 1], got values in "
                f"[{y.min():g}, {y.max():g}]. For several classes use "
                "loss='sparse_categorical_crossentropy'."
            )
        return y


class MeanSquaredError(Loss):
    """mean((y_true - y_pred)^2).

    Example:
        >>> import minigrad as mg
        >>> MeanSquaredError()(mg.tensor([[1.0, 2.0]]), mg.tensor([[1.0, 4.0]]))
        tensor(2.)
    """

    name = "mean_squared_error"

    def call(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        return F.mse_loss(y_pred, y_true.reshape(y_pred.shape).to(y_pred.dtype))


class MeanAbsoluteError(Loss):
    """mean(|y_true - y_pred|).

    Example:
        >>> import minigrad as mg
        >>> MeanAbsoluteError()(mg.tensor([[1.0, 2.0]]), mg.tensor([[1.0, 4.0]]))
        tensor(1.)
    """

    name = "mean_absolute_error"

    def call(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        return F.l1_loss(y_pred, y_true.reshape(y_pred.shape).to(y_pred.dtype))


LOSSES: dict[str, type] = {
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError,
    "mae": MeanAbsoluteError,
}
_CLASSES = {cls.__name__: cls for cls in LOSSES.values()}


def get(identifier: str | Loss | Callable) -> Loss | Callable:
    """A loss from its name, a `Loss`, or any ``fn(y_true, y_pred)`` (returned as is).

    Example:
        >>> get("mse")
        MeanSquaredError(from_logits=False)
    """
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        if identifier in LOSSES:
            return LOSSES[identifier]()
        if identifier in _CLASSES:
            return _CLASSES[identifier]()
        valid = ", ".join(repr(name) for name in LOSSES)
        raise ValueError(
            f"Unknown loss function: {identifier!r}. Valid losses are {valid}, a "
            "keras.losses.Loss object, or a function fn(y_true, y_pred)."
        )
    if callable(identifier):
        return identifier
    if identifier is None:
        raise ValueError(
            "No loss to compute. Provide a `loss` argument in `compile()`, e.g. "
            "model.compile(optimizer='adam', loss='sparse_categorical_crossentropy')"
        )
    raise TypeError(f"Could not interpret loss identifier: {identifier!r}")


def serialize(loss: Loss | Callable) -> Any:
    """A JSON-able description of a loss (None for a function that cannot be rebuilt)."""
    if isinstance(loss, Loss):
        return {"class_name": type(loss).__name__, "config": loss.get_config()}
    return getattr(loss, "__name__", None)


def deserialize(config: Any, custom_objects: dict | None = None) -> Loss | Callable | None:
    if isinstance(config, dict):
        return _CLASSES[config["class_name"]](**config["config"])
    if config is None:
        return None
    if custom_objects and config in custom_objects:
        return custom_objects[config]
    return get(config) if config in LOSSES else None
