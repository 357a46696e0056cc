"""The pieces of Keras's functional API: `Input`, symbolic `KerasTensor`s and the layer graph.

``keras.Input(shape=...)`` returns a `KerasTensor`: a placeholder with a shape (batch first,
None for the batch) and a dtype. Calling a layer on KerasTensors does not compute anything: it
records a `Node` (the layer, its arguments, the KerasTensors it returns) and builds the layer
for those shapes. ``keras.Model(inputs, outputs)`` (`minigrad.keras.models.Functional`) walks
the nodes from the outputs back to the inputs and, when called on real data, runs them in
order. A layer called several times (a shared layer) keeps one set of weights.

The shapes of a layer's outputs are found by running it once on a small batch of zeros, in
eval mode and without gradients (so no dropout draw and no BatchNorm statistics change); any
layer, custom ones included, works without a shape function.

The merging layers `Add`, `Subtract`, `Multiply`, `Average`, `Maximum`, `Minimum` and
`Concatenate` (and their functional forms `add`, ..., `concatenate`) combine several tensors, as
in Keras.

Example:
    >>> from minigrad import keras
    >>> inputs = keras.Input(shape=(784,), name="pixels")
    >>> inputs
    <KerasTensor shape=(None, 784), dtype=float32, name=pixels>
    >>> hidden = keras.layers.Dense(64, activation="relu")(inputs)
    >>> hidden.shape
    (None, 64)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable

import numpy as np

from minigrad import backend, ops
from minigrad.autograd import no_grad
from minigrad.keras.layers import InputLayer, Layer, _to_tensor
from minigrad.tensor import Tensor, tensor

__all__ = [
    "Add",
    "Average",
    "Concatenate",
    "Input",
    "KerasTensor",
    "Maximum",
    "Minimum",
    "Multiply",
    "Node",
    "Subtract",
    "add",
    "average",
    "concatenate",
    "flatten",
    "map_structure",
    "maximum",
    "minimum",
    "multiply",
    "subtract",
]

# The sizes a None axis (other than the batch) takes in the trial runs that find output shapes:
# two runs with different sizes tell which output axes follow it.
_TRIAL_SIZES = (2, 3)
_TRIAL_BATCH = 2


# ------------------------------------------------------------------------------------------
# nested structures of tensors
# ------------------------------------------------------------------------------------------


def flatten(structure: Any) -> list:
    """The leaves of nested lists, tuples and dicts (dicts in key order), in order.

    Example:
        >>> flatten([1, (2, {"b": 4, "a": 3})])
        [1, 2, 3, 4]
    """
    if isinstance(structure, dict):
        return [leaf for key in sorted(structure) for leaf in flatten(structure[key])]
    if isinstance(structure, (list, tuple)):
        return [leaf for item in structure for leaf in flatten(item)]
    return [structure]


def map_structure(fn: Callable[[Any], Any], structure: Any) -> Any:
    """`structure` with every leaf replaced by ``fn(leaf)`` (lists, tuples, dicts kept).

    Example:
        >>> map_structure(lambda x: x * 10, [1, (2, {"a": 3})])
        [10, (20, {'a': 30})]
    """
    if isinstance(structure, dict):
        return {key: map_structure(fn, structure[key]) for key in sorted(structure)}
    if isinstance(structure, (list, tuple)):
        mapped = [map_structure(fn, item) for item in structure]
        return mapped if isinstance(structure, list) else type(structure)(mapped)
    return fn(structure)


# ------------------------------------------------------------------------------------------
# symbolic tensors and nodes
# ------------------------------------------------------------------------------------------


class KerasTensor:
    """A symbolic tensor of the functional API: a shape, a dtype and the node that made it.

    Attributes:
        shape: batch first, None for the batch (and for any size not fixed).
        dtype: ``'float32'``, ``'int64'``, ...
        node: the `Node` whose output it is.
        index: its position among the node's outputs.
        name: a name for messages (the producing layer's).
    """

    _keras_symbolic = True  # what Layer.__call__ looks for

    def __init__(self, shape: Sequence[int | None], dtype: str = "float32",
                 node: Node | None = None, index: int = 0, name: str | None = None) -> None:
        self.shape = tuple(None if d is None else int(d) for d in shape)
        self.dtype = str(dtype)
        self.node = node
        self.index = index
        self.name = name

    @property
    def ndim(self) -> int:
        """The number of dimensions, batch included."""
        return len(self.shape)

    def _call_layer(self, layer: Layer, args: tuple, kwargs: dict) -> Any:
        """``layer(*args, **kwargs)`` on symbolic inputs: records a node, returns its outputs."""
        return Node(layer, args, kwargs).output_structure

    def __repr__(self) -> str:
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"

    def __bool__(self) -> bool:
        raise TypeError("A symbolic KerasTensor has no value; build a keras.Model(inputs, "
                        "outputs) and call it on data")


class Node:
    """One call of a layer in the graph: ``outputs = layer(*args, **kwargs)``.

    Attributes:
        layer: the layer called.
        args, kwargs: the call's arguments, KerasTensors in place of tensors.
        inputs: the KerasTensors among them, in order.
        outputs: the KerasTensors returned.
        output_structure: the outputs as the layer returned them (one tensor, a tuple, ...).
    """

    def __init__(self, layer: Layer, args: tuple, kwargs: dict,
                 outputs: Sequence[KerasTensor] | None = None) -> None:
        self.layer = layer
        self.args = tuple(args)
        self.kwargs = dict(kwargs)
        self.inputs = [t for t in flatten([self.args, self.kwargs])
                       if isinstance(t, KerasTensor)]
        if outputs is not None:  # an Input: the node has no computation
            self.outputs = list(outputs)
            self.output_structure = self.outputs[0]
            return
        structure = _trial_outputs(layer, self.args, self.kwargs)
        self.outputs = []

        def symbolic(spec: _Spec) -> KerasTensor:
            kt = KerasTensor(spec.shape, spec.dtype, node=self, index=len(self.outputs),
                             name=layer.name or type(layer).__name__.lower())
            self.outputs.append(kt)
            return kt

        self.output_structure = map_structure(symbolic, structure)


class _Spec:
    """The shape and dtype of one output found by `_trial_outputs` (a leaf, not a tuple)."""

    def __init__(self, shape: tuple, dtype: str) -> None:
        self.shape, self.dtype = shape, dtype


def _trial_outputs(layer: Layer, args: tuple, kwargs: dict) -> Any:
    """The layer's outputs as `_Spec` leaves, found by calling it on zeros.

    A None axis of an input is given two sizes in turn; an output axis whose size changes with
    it is None. The layer is called in eval mode without gradients, and its train/eval mode is
    restored after.
    """
    dynamic = any(None in t.shape[1:] for t in flatten([args, kwargs])
                  if isinstance(t, KerasTensor))
    runs = [_run_on_zeros(layer, args, kwargs, size)
            for size in (_TRIAL_SIZES if dynamic else _TRIAL_SIZES[:1])]

    def describe(*values: Any) -> _Spec:
        first = values[0]
        if not isinstance(first, Tensor):
            raise TypeError(f"layer {layer.name!r} returned a {type(first).__name__}; the "
                            "functional API needs layers that return tensors")
        shape = [None] + [d if all(v.shape[i + 1] == d for v in values) else None
                          for i, d in enumerate(first.shape[1:])]
        return _Spec(tuple(shape), str(first.dtype))

    if len(runs) == 1:
        return map_structure(describe, runs[0])
    return _zip_map(describe, runs)


def _zip_map(fn: Callable, structures: list) -> Any:
    first = structures[0]
    if isinstance(first, (list, tuple)):
        mapped = [_zip_map(fn, [s[i] for s in structures]) for i in range(len(first))]
        return mapped if isinstance(first, list) else type(first)(mapped)
    if isinstance(first, dict):
        return {k: _zip_map(fn, [s[k] for s in structures]) for k in first}
    return fn(*structures)


def _run_on_zeros(layer: Layer, args: tuple, kwargs: dict, size: int) -> Any:
    def zeros(value: Any) -> Any:
        if not isinstance(value, KerasTensor):
            return value
        shape = [_TRIAL_BATCH] + [size if d is None else d for d in value.shape[1:]]
        # on the default device, where Sequential builds its layers too
        return tensor(np.zeros(shape, dtype=value.dtype), device=backend.default_device())

    was_training = layer.training
    layer.eval()  # NOTE: no dropout draw, no BatchNorm statistics: the random state is untouched
    try:
        with no_grad():
            return layer(*map_structure(zeros, args), **map_structure(zeros, kwargs))
    finally:
        layer.train(was_training)


# ------------------------------------------------------------------------------------------
# Input
# ------------------------------------------------------------------------------------------

_INPUT_NAMES: dict = {}


def Input(  # noqa: N802 - Keras's name
    shape: Sequence[int | None] | None = None,
    batch_size: int | None = None,
    dtype: str | None = None,
    name: str | None = None,
    batch_shape: Sequence[int | None] | None = None,
    **kwargs: Any,
) -> KerasTensor:
    """``keras.Input(shape=(784,))``: the symbolic input of a functional model (or the first
    entry of a `Sequential`).

    Args:
        shape: the shape of one example, e.g. ``(784,)`` or ``(None, 16)`` for sequences of any
            length.
        batch_size: accepted for compatibility (the batch size is never fixed).
        dtype: ``'float32'`` (default) or an integer dtype for token ids (``'int32'``).
        name: the input's name (inputs may then be given to the model as a dict).
        batch_shape: ``(batch, *shape)`` instead of `shape`.

    Example:
        >>> from minigrad import keras
        >>> keras.Input(shape=(None, 16), dtype="int32", name="tokens").shape
        (None, None, 16)
    """
    if shape is None and batch_shape is not None:
        shape = tuple(batch_shape)[1:]
    if shape is None:
        raise ValueError("keras.Input needs a shape, e.g. keras.Input(shape=(784,))")
    if kwargs.pop("sparse", False) or kwargs.pop("ragged", False):
        raise NotImplementedError("keras.Input: sparse and ragged inputs are not supported")
    kwargs.pop("tensor", None)
    if kwargs:
        raise TypeError(f"keras.Input: unexpected keyword argument(s) {sorted(kwargs)}")
    dtype = str(np.dtype(dtype or "float32"))
    layer = InputLayer(shape=tuple(shape), name=name)
    layer.dtype = dtype
    if name is None:
        layer.name = _unique_input_name()
    kt = KerasTensor((None, *shape), dtype, name=layer.name)
    kt.node = Node(layer, (), {}, outputs=[kt])
    return kt


def _unique_input_name() -> str:
    """``input_layer``, ``input_layer_1``, ... (Keras 3's names)."""
    n = _INPUT_NAMES.get("input_layer", 0)
    _INPUT_NAMES["input_layer"] = n + 1
    return "input_layer" if n == 0 else f"input_layer_{n}"


# ------------------------------------------------------------------------------------------
# merging layers
# ------------------------------------------------------------------------------------------


class _Merge(Layer):
    """Base of the layers that combine a list of tensors of one shape, elementwise."""

    def _fixed_axis(self, axis: int) -> bool:
        return False

    def forward(self, inputs: Sequence[Any], **kwargs: Any) -> Tensor:
        if not isinstance(inputs, (list, tuple)) or len(inputs) < 2:
            raise ValueError(f"A merge layer ({type(self).__name__}) should be called on a "
                             f"list of at least 2 inputs. Got {inputs!r}")
        tensors = [_to_tensor(x) for x in inputs]
        if not self.built:
            self.build((None, *tensors[0].shape[1:]))
        return self._merge(tensors)

    def _merge(self, tensors: list) -> Tensor:
        raise NotImplementedError


class Add(_Merge):
    """The elementwise sum of its inputs: ``Add()([a, b])``."""

    def _merge(self, tensors: list) -> Tensor:
        out = tensors[0]
        for t in tensors[1:]:
            out = out + t
        return out


class Subtract(_Merge):
    """``Subtract()([a, b])`` is ``a - b``."""

    def _merge(self, tensors: list) -> Tensor:
        if len(tensors) != 2:
            raise ValueError(f"A Subtract layer should be called on exactly 2 inputs, got "
                             f"{len(tensors)}")
        return tensors[0] - tensors[1]


class Multiply(_Merge):
    """The elementwise product of its inputs."""

    def _merge(self, tensors: list) -> Tensor:
        out = tensors[0]
        for t in tensors[1:]:
            out = out * t
        return out


class Average(_Merge):
    """The elementwise mean of its inputs."""

    def _merge(self, tensors: list) -> Tensor:
        return Add._merge(self, tensors) * (1.0 / len(tensors))


class Maximum(_Merge):
    """The elementwise maximum of its inputs."""

    def _merge(self, tensors: list) -> Tensor:
        out = tensors[0]
        for t in tensors[1:]:
            out = ops.maximum(out, t)
        return out


class Minimum(_Merge):
    """The elementwise minimum of its inputs."""

    def _merge(self, tensors: list) -> Tensor:
        out = tensors[0]
        for t in tensors[1:]:
            out = ops.minimum(out, t)
        return out


class Concatenate(_Merge):
    """Joins its inputs along `axis` (default the last): ``Concatenate()([a, b])``.

    Example:
        >>> import minigrad as mg
        >>> Concatenate()([mg.ones(2, 3), mg.zeros(2, 1)]).shape
        (2, 4)
    """

    def __init__(self, axis: int = -1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.axis = int(axis)

    def _merge(self, tensors: list) -> Tensor:
        return ops.cat(tensors, dim=self.axis)

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis}


MERGING_LAYERS = {cls.__name__: cls for cls in (Add, Subtract, Multiply, Average, Maximum,
                                                Minimum, Concatenate)}


# Keras's functional forms: ``keras.layers.concatenate([a, b])`` is ``Concatenate()([a, b])``
def add(inputs: Sequence[Any], **kwargs: Any) -> Any:
    """``Add(**kwargs)(inputs)``."""
    return Add(**kwargs)(inputs)


def subtract(inputs: Sequence[Any], **kwargs: Any) -> Any:
    """``Subtract(**kwargs)(inputs)``."""
    return Subtract(**kwargs)(inputs)


def multiply(inputs: Sequence[Any], **kwargs: Any) -> Any:
    """``Multiply(**kwargs)(inputs)``."""
    return Multiply(**kwargs)(inputs)


def average(inputs: Sequence[Any], **kwargs: Any) -> Any:
    """``Average(**kwargs)(inputs)``."""
    return Average(**kwargs)(inputs)


def maximum(inputs: Sequence[Any], **kwargs: Any) -> Any:
    """``Maximum(**kwargs)(inputs)``."""
    return Maximum(**kwargs)(inputs)


def minimum(inputs: Sequence[Any], **kwargs: Any) -> Any:
    """``Minimum(**kwargs)(inputs)``."""
    return Minimum(**kwargs)(inputs)


def concatenate(inputs: Sequence[Any], axis: int = -1, **kwargs: Any) -> Any:
    """``Concatenate(axis, **kwargs)(inputs)``."""
    return Concatenate(axis=axis, **kwargs)(inputs)


MERGING_FUNCTIONS = {fn.__name__: fn for fn in (add, subtract, multiply, average, maximum,
                                                minimum, concatenate)}
