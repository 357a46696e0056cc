"""Keras layers, built lazily into `minigrad.nn` modules.

A Keras layer does not know its input size until it sees its first input (or an
``input_shape``), so each layer here is a small `nn.Module` that, on `build`, creates the
PyTorch-style module doing the work: `Dense` holds an `nn.Linear`, `LSTM` an `nn.LSTM` with
``batch_first=True``, and so on. Shapes follow Keras: batch first, features last, and shapes
written with ``None`` for the batch, e.g. ``(None, 128)``.

Example:
    >>> import minigrad as mg
    >>> dense = Dense(3, activation="relu")
    >>> dense.built
    False
    >>> dense(mg.ones(2, 5)).shape          # builds an nn.Linear(5, 3) on first call
    (2, 3)
    >>> dense.linear
    Linear(in_features=5, out_features=3, bias=True)
    >>> dense.count_params()
    18
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Callable

import numpy as np

from minigrad import nn
from minigrad.nn import functional as F
from minigrad.nn import init
from minigrad.keras.weights import get_layer_weights, set_layer_weights
from minigrad.tensor import Tensor, tensor

__all__ = [
    "GRU",
    "LSTM",
    "Activation",
    "Dense",
    "Dropout",
    "Embedding",
    "Flatten",
    "Input",
    "InputLayer",
    "Layer",
    "LayerNormalization",
    "MultiHeadAttention",
    "get_activation",
]

Shape = tuple  # a Keras shape: (None, d1, d2, ...), batch first

# ------------------------------------------------------------------------------------------
# activations
# ------------------------------------------------------------------------------------------

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor] | None] = {
    "linear": None,
    "relu": F.relu,
    "sigmoid": F.sigmoid,
    "softmax": lambda x: F.softmax(x, dim=-1),
    "tanh": F.tanh,
    "gelu": F.gelu,
    "softplus": F.softplus,
    "log_softmax": lambda x: F.log_softmax(x, dim=-1),
}


def get_activation(activation: str | Callable | None) -> Callable[[Tensor], Tensor] | None:
    """The function for an activation name (None and ``'linear'`` mean the identity).

    Example:
        >>> get_activation("relu") is F.relu, get_activation(None)
        (True, None)
    """
    if activation is None or callable(activation):
        return activation
    if activation not in ACTIVATIONS:
        valid = ", ".join(repr(name) for name in ACTIVATIONS)
        raise ValueError(f"Unknown activation function: {activation!r}. Valid values: {valid}")
    return ACTIVATIONS[activation]


def _activation_name(activation: Any) -> Any:
    if activation is None or isinstance(activation, str):
        return activation or "linear"
    return getattr(activation, "__name__", repr(activation))


def _shape_text(shape: Any) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


# ------------------------------------------------------------------------------------------
# the base class
# ------------------------------------------------------------------------------------------


class Layer(nn.Module):
    """Base class of Keras layers: a Module that builds itself from its first input's shape.

    Subclasses write `build` (create the `minigrad.nn` modules for an input shape),
    `compute_output_shape` and `call`. Layers with an ``activation`` apply it after `call`,
    so a model can ask for the pre-activation output (the logits) with `call` alone.

    Args:
        name: the layer's name (default: from its class, made unique by the model).
        input_shape: the input shape without the batch dimension, e.g. ``(784,)``; lets a
            model build (and `summary`) before seeing data.
        trainable: False freezes the layer's parameters.
        input_dim: ``input_dim=784`` is ``input_shape=(784,)``.
    """

    activation: Any = None

    def __init__(
        self,
        name: str | None = None,
        input_shape: Sequence[int] | None = None,
        trainable: bool = True,
        input_dim: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        if input_dim is not None and input_shape is None:
            input_shape = (input_dim,)  # Keras 2's Dense(..., input_dim=784)
        if kwargs:
            raise TypeError(
                f"{type(self).__name__}: unexpected keyword argument(s) {sorted(kwargs)}"
            )
        self.name = name
        self._input_shape_arg = tuple(input_shape) if input_shape is not None else None
        self._trainable = trainable
        self.built = False
        self.input_shape: Shape | None = None
        self.output_shape: Shape | None = None

    # ---------------------------------------------------------------- building
    def build(self, input_shape: Shape) -> None:
        """Creates the layer's modules for inputs of `input_shape` (batch first, None)."""
        self.input_shape = tuple(input_shape)
        self.output_shape = self.compute_output_shape(self.input_shape)
        self.built = True
        if not self._trainable:
            self.requires_grad_(False)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        """The output shape (batch first, None) for inputs of ``input_shape``; the base keeps it."""
        return tuple(input_shape)

    def _ensure_built(self, inputs: Tensor) -> None:
        if not self.built:
            self.build((None, *inputs.shape[1:]))
            device = inputs.device
            if any(p.device != device for p in self.parameters()):
                self.to(device)
        else:
            self._check_input_shape(tuple(inputs.shape))

    def _check_input_shape(self, shape: tuple) -> None:
        expected = self.input_shape
        if expected is None or len(expected) != len(shape):
            if expected is not None:
                raise ValueError(
                    f'Input 0 of layer "{self.name}" is incompatible with the layer: expected '
                    f"ndim={len(expected)}, found ndim={len(shape)}. Full shape received: "
                    f"{_shape_text((None, *shape[1:]))}"
                )
            return
        for axis, (want, got) in enumerate(zip(expected, shape)):
            if want is not None and axis > 0 and want != got and self._fixed_axis(axis):
                raise ValueError(
                    f'Input 0 of layer "{self.name}" is incompatible with the layer: expected '
                    f"axis {axis - len(expected)} of input shape to have value {want}, but "
                    f"received input with shape {_shape_text((None, *shape[1:]))}"
                )

    def _fixed_axis(self, axis: int) -> bool:
        """Whether the input size along `axis` is fixed by the weights (default: the last)."""
        return axis == len(self.input_shape) - 1

    # ---------------------------------------------------------------- calling
    def call(self, inputs: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        """The layer's computation on a built layer, before its activation (subclasses define it).
        """
        return inputs

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        first = args[0] if args else None
        if isinstance(first, (list, tuple)) and first:
            first = first[0]
        if getattr(first, "_keras_symbolic", False):  # the functional API (keras.functional)
            return first._call_layer(self, args, kwargs)
        return super().__call__(*args, **kwargs)

    def forward(self, inputs: Any, *args: Any, **kwargs: Any) -> Tensor:
        """Build the layer on its first input, run `call`, then the activation (if any)."""
        out = self.call_without_activation(inputs, *args, **kwargs)
        fn = get_activation(self.activation)
        return fn(out) if fn is not None else out

    def call_without_activation(self, inputs: Any, *args: Any, **kwargs: Any) -> Tensor:
        """The output before the layer's activation (for a softmax layer: the logits)."""
        inputs = _to_tensor(inputs)
        self._ensure_built(inputs)
        return self.call(inputs, *args, **kwargs)

    # ---------------------------------------------------------------- Keras API
    @property
    def trainable(self) -> bool:
        """Whether the layer's parameters train; setting False freezes them."""
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        self.requires_grad_(self._trainable)

    @property
    def weights(self) -> list:
        """The layer's parameters as minigrad tensors (PyTorch's layouts; `get_weights` gives
        Keras's).
        """
        return list(self.parameters())

    def get_weights(self) -> list:
        """The weights as NumPy arrays in Keras's order and layout (a Dense kernel is
        ``(in, out)``; see `keras.weights`)."""
        return get_layer_weights(self)

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Sets the weights from arrays in Keras's order and layout (as `get_weights`)."""
        set_layer_weights(self, weights)

    def count_params(self) -> int:
        """The number of scalars in the layer's parameters."""
        if not self.built:
            raise ValueError(
                f"You tried to call `count_params` on layer '{self.name}', but the layer isn't "
                "built. You can build it manually via: `layer.build(input_shape)`."
            )
        return sum(int(np.prod(p.shape)) for p in self.parameters())

    def get_config(self) -> dict:
        """The constructor arguments, enough to rebuild the layer (saved by `Model.save`)."""
        config: dict = {"name": self.name, "trainable": self._trainable}
        if self._input_shape_arg is not None:
            config["input_shape"] = list(self._input_shape_arg)
        return config

    @classmethod
    def from_config(cls, config: dict) -> "Layer":
        """A new layer from a `get_config` dict."""
        return cls(**config)

    def extra_repr(self) -> str:
        """The layer's name, shown in its ``repr``."""
        return f"name={self.name!r}"


def _to_tensor(value: Any) -> Tensor:
    """Layers accept NumPy arrays and lists too; floats become float32, as in Keras."""
    if isinstance(value, Tensor):
        return value
    array = np.asarray(value)
    if array.dtype.kind == "f" and array.dtype != np.float16:
        array = array.astype(np.float32)
    return tensor(array)


# ------------------------------------------------------------------------------------------
# input
# ------------------------------------------------------------------------------------------


class InputLayer(Layer):
    """The input of a `Sequential` model: fixes its input shape (no computation).

    Example:
        >>> InputLayer(shape=(784,)).input_shape
        (None, 784)
    """

    def __init__(self, shape: Sequence[int] | None = None, name: str | None = None,
                 input_shape: Sequence[int] | None = None, **kwargs: Any) -> None:
        shape = shape if shape is not None else input_shape
        if shape is None:
            raise ValueError("InputLayer needs a shape, e.g. keras.Input(shape=(784,))")
        super().__init__(name=name, input_shape=shape, **kwargs)
        self.build((None, *self._input_shape_arg))

    def get_config(self) -> dict:
        return {"shape": list(self._input_shape_arg), "name": self.name}


def Input(shape: Sequence[int], name: str | None = None, **kwargs: Any) -> InputLayer:  # noqa: N802
    """``keras.Input(shape=(784,))``: the input of a `Sequential` model, given as its first
    entry.

    Example:
        >>> from minigrad import keras
        >>> model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(2)])
        >>> model.output_shape
        (None, 2)
    """
    return InputLayer(shape=shape, name=name, **kwargs)


# ------------------------------------------------------------------------------------------
# core layers
# ------------------------------------------------------------------------------------------

INITIALIZERS: dict[str, Callable[[Tensor], Any]] = {
    "glorot_uniform": init.xavier_uniform_,
    "glorot_normal": init.xavier_normal_,
    "he_uniform": lambda w: init.kaiming_uniform_(w, nonlinearity="relu"),
    "he_normal": lambda w: init.kaiming_normal_(w, nonlinearity="relu"),
    "zeros": init.zeros_,
    "ones": init.ones_,
}


def _initializer(name: str) -> Callable[[Tensor], Any]:
    if name not in INITIALIZERS:
        valid = ", ".join(repr(n) for n in INITIALIZERS)
        raise ValueError(f"Unknown initializer: {name!r}. Valid values: {valid}")
    return INITIALIZERS[name]


class Dense(Layer):
    """A fully connected layer, ``activation(x @ kernel + bias)``, on the last axis.

    Built as ``nn.Linear(input_dim, units)`` (its weight is Keras's kernel transposed),
    initialised as Keras does: kernel Glorot-uniform, bias zeros.

    Args:
        units: output features.
        activation: ``'relu'``, ``'softmax'``, ``'sigmoid'``, ``'tanh'``, ``'gelu'``,
            ``'linear'`` / None, or a function.
        use_bias: add a bias.
        kernel_initializer: ``'glorot_uniform'`` (default), ``'glorot_normal'``,
            ``'he_uniform'``, ``'he_normal'``, ``'zeros'`` or ``'ones'``.
        bias_initializer: ``'zeros'`` (default) or another of those.
        input_shape: e.g. ``(784,)`` for the first layer of a model.

    Example:
        >>> import minigrad as mg
        >>> layer = Dense(10, activation="softmax", input_shape=(784,))
        >>> layer.build((None, 784)); layer.count_params()
        7850
    """

    def __init__(
        self,
        units: int,
        activation: str | Callable | None = None,
        use_bias: bool = True,
        kernel_initializer: str = "glorot_uniform",
        bias_initializer: str = "zeros",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units <= 0:
            raise ValueError(
                f"Received an invalid value for `units`, expected a positive integer. "
                f"Received: units={units!r}"
            )
        get_activation(activation)  # fail now on an unknown name
        self.units = int(units)
        self.activation = activation
        self.use_bias = use_bias
        _initializer(kernel_initializer), _initializer(bias_initializer)  # fail now if unknown
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer

    def build(self, input_shape: Shape) -> None:
        self.linear = nn.Linear(int(input_shape[-1]), self.units, bias=self.use_bias)
        _initializer(self.kernel_initializer)(self.linear.weight)
        if self.use_bias:
            _initializer(self.bias_initializer)(self.linear.bias)
        super().build(input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (*input_shape[:-1], self.units)

    def call(self, inputs: Tensor) -> Tensor:
        return self.linear(inputs)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "units": self.units,
            "activation": _activation_name(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer,
            "bias_initializer": self.bias_initializer,
        }


class Activation(Layer):
    """Applies an activation function, e.g. ``Activation('softmax')``.

    Example:
        >>> import minigrad as mg
        >>> Activation("relu")(mg.tensor([[-1.0, 2.0]]))
        tensor([[0., 2.]])
    """

    def __init__(self, activation: str | Callable, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        get_activation(activation)
        self.activation = activation

    def _fixed_axis(self, axis: int) -> bool:
        return False

    def get_config(self) -> dict:
        return {**super().get_config(), "activation": _activation_name(self.activation)}


class Dropout(Layer):
    """Inverted dropout of rate `rate` during `fit`; the identity in `evaluate` and `predict`.

    Built as ``nn.Dropout(rate)``.

    Example:
        >>> import minigrad as mg
        >>> Dropout(0.5).eval()(mg.ones(1, 2))
        tensor([[1., 1.]])
    """

    def __init__(self, rate: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0 <= rate < 1:
            raise ValueError(
                f"Invalid value received for argument `rate`. Expected a float value between 0 "
                f"and 1 (1 excluded). Received: rate={rate}"
            )
        self.rate = float(rate)
        self.dropout = nn.Dropout(self.rate)

    def _fixed_axis(self, axis: int) -> bool:
        return False

    def call(self, inputs: Tensor) -> Tensor:
        return self.dropout(inputs)

    def get_config(self) -> dict:
        return {**super().get_config(), "rate": self.rate}


class Flatten(Layer):
    """Flattens every axis but the batch: (None, 8, 8) -> (None, 64).

    Example:
        >>> import minigrad as mg
        >>> Flatten()(mg.ones(2, 3, 4)).shape
        (2, 12)
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.flatten = nn.Flatten()

    def _fixed_axis(self, axis: int) -> bool:
        return True

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (input_shape[0], int(np.prod(input_shape[1:], dtype=np.int64)))

    def call(self, inputs: Tensor) -> Tensor:
        return self.flatten(inputs)


class Embedding(Layer):
    """Maps integer ids in [0, input_dim) to vectors of `output_dim`: (None, T) -> (None, T, D).

    Built as ``nn.Embedding(input_dim, output_dim)``, initialised uniform in ±0.05 as Keras.

    Args:
        input_dim: vocabulary size.
        output_dim: embedding size.
        mask_zero: accepted for compatibility; masks are not propagated (0 is an ordinary id).

    Example:
        >>> import minigrad as mg
        >>> Embedding(100, 8)(mg.tensor([[1, 2, 3]])).shape
        (1, 3, 8)
    """

    def __init__(self, input_dim: int, output_dim: int, mask_zero: bool = False,
                 input_length: int | None = None, **kwargs: Any) -> None:
        if input_length is not None and "input_shape" not in kwargs:
            kwargs["input_shape"] = (input_length,)
        super().__init__(**kwargs)
        self.input_dim = int(input_dim)
        self.output_dim = int(output_dim)
        self.mask_zero = mask_zero

    def build(self, input_shape: Shape) -> None:
        self.embedding = nn.Embedding(self.input_dim, self.output_dim)
        init.uniform_(self.embedding.weight, -0.05, 0.05)
        super().build(input_shape)

    def _fixed_axis(self, axis: int) -> bool:
        return False

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (*input_shape, self.output_dim)

    def call(self, inputs: Tensor) -> Tensor:
        if inputs.dtype.kind not in "iu":
            inputs = inputs.long()
        return self.embedding(inputs)

    def get_config(self) -> dict:
        return {**super().get_config(), "input_dim": self.input_dim,
                "output_dim": self.output_dim, "mask_zero": self.mask_zero}


class LayerNormalization(Layer):
    """Normalises the last axis to mean 0 and variance 1, then scales and shifts.

    Built as ``nn.LayerNorm(features, eps=epsilon)``; Keras's default epsilon is 1e-3.

    Example:
        >>> import minigrad as mg
        >>> out = LayerNormalization()(mg.tensor([[1.0, 2.0, 3.0]]))
        >>> round(float(out.sum()), 5)
        0.0
    """

    def __init__(self, axis: int = -1, epsilon: float = 1e-3, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if axis not in (-1,):
            raise ValueError(f"LayerNormalization supports axis=-1 only, got axis={axis}")
        self.axis = axis
        self.epsilon = float(epsilon)

    def build(self, input_shape: Shape) -> None:
        self.norm = nn.LayerNorm(int(input_shape[-1]), eps=self.epsilon)
        super().build(input_shape)

    def call(self, inputs: Tensor) -> Tensor:
        return self.norm(inputs)

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon}


# ------------------------------------------------------------------------------------------
# recurrent layers
# ------------------------------------------------------------------------------------------


class _Recurrent(Layer):
    """What LSTM and GRU share: (None, T, F) -> (None, units), or (None, T, units) with
    ``return_sequences=True``."""

    _module: type = nn.LSTM

    def __init__(self, units: int, return_sequences: bool = False, return_state: bool = False,
                 dropout: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if return_state:
            raise NotImplementedError(
                f"{type(self).__name__}(return_state=True) is not supported by minigrad.keras; "
                f"use minigrad.nn.{self._module.__name__} directly for the states"
            )
        if dropout:
            raise NotImplementedError(
                f"{type(self).__name__}(dropout=...) is not supported; add a Dropout layer "
                "after it"
            )
        self.units = int(units)
        self.return_sequences = return_sequences

    def build(self, input_shape: Shape) -> None:
        if len(input_shape) != 3:
            raise ValueError(
                f'Input 0 of layer "{self.name}" is incompatible with the layer: expected '
                f"ndim=3 (batch, timesteps, features), found ndim={len(input_shape)}. "
                f"Full shape received: {_shape_text(input_shape)}"
            )
        self.rnn = self._module(int(input_shape[-1]), self.units, batch_first=True)
        super().build(input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if self.return_sequences:
            return (input_shape[0], input_shape[1], self.units)
        return (input_shape[0], self.units)

    def call(self, inputs: Tensor) -> Tensor:
        output, _ = self.rnn(inputs)  # (B, T, units)
        return output if self.return_sequences else output[:, -1]

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units,
                "return_sequences": self.return_sequences}


class LSTM(_Recurrent):
    """A long short-term memory layer over batch-first sequences (Keras's layout).

    Built as ``nn.LSTM(features, units, batch_first=True)`` with PyTorch's parameters: two
    bias vectors (``bias_ih``, ``bias_hh``) where Keras has one, so the layer has ``4 * units``
    more parameters than Keras reports.

    Example:
        >>> import minigrad as mg
        >>> x = mg.randn(2, 5, 3)  # (batch, time, features)
        >>> LSTM(8)(x).shape, LSTM(8, return_sequences=True)(x).shape
        ((2, 8), (2, 5, 8))
    """

    _module = nn.LSTM


class GRU(_Recurrent):
    """A gated recurrent unit layer over batch-first sequences.

    Built as ``nn.GRU(features, units, batch_first=True)``: PyTorch's formula is Keras's
    ``reset_after=True`` (its default), so the parameter count matches Keras.

    Example:
        >>> import minigrad as mg
        >>> layer = GRU(4); layer.build((None, 7, 3)); layer.count_params()  # Keras: 108
        108
    """

    _module = nn.GRU


# ------------------------------------------------------------------------------------------
# attention
# ------------------------------------------------------------------------------------------


class MultiHeadAttention(Layer):
    """Keras's multi-head attention: ``layer(query, value, key=None)``.

    Each of query, key and value is projected to ``num_heads`` heads of ``key_dim`` features
    (``value_dim`` for values) by an `nn.Linear`, attention runs per head
    (`scaled_dot_product_attention`), and an output `nn.Linear` maps the heads back to the
    query's feature size, as Keras does (the parameter count matches Keras). In a
    `Sequential` model the layer attends over its own input (self-attention).

    Args:
        num_heads: attention heads.
        key_dim: features per head of queries and keys.
        value_dim: features per head of values (default `key_dim`).
        dropout: dropout rate on the attention weights during training.
        use_bias: biases in the projections.
        output_shape: output features (default: the query's).

    Call arguments:
        query: (B, T, dim). value: (B, S, dim_v). key: (B, S, dim_k) (default `value`).
        attention_mask: boolean (B, T, S), True where a query may attend (Keras's meaning).
        use_causal_mask: query t attends keys 0..t only.
        return_attention_scores: also return the weights (B, heads, T, S).

    Example:
        >>> import minigrad as mg
        >>> mha = MultiHeadAttention(num_heads=2, key_dim=4)
        >>> x = mg.randn(3, 5, 8)
        >>> mha(x, x).shape
        (3, 5, 8)
        >>> mha.count_params()  # Keras: 3 * (8*2*4 + 2*4) + (2*4*8 + 8)
        288
    """

    def __init__(self, num_heads: int, key_dim: int, value_dim: int | None = None,
                 dropout: float = 0.0, use_bias: bool = True, output_shape: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_heads = int(num_heads)
        self.key_dim = int(key_dim)
        self.value_dim = int(value_dim) if value_dim is not None else self.key_dim
        self.dropout = float(dropout)
        self.use_bias = use_bias
        self.output_dim = output_shape

    def build(self, query_shape: Shape, value_shape: Shape | None = None,
              key_shape: Shape | None = None) -> None:
        value_shape = value_shape or query_shape
        key_shape = key_shape or value_shape
        heads, bias = self.num_heads, self.use_bias
        self.query_dense = nn.Linear(int(query_shape[-1]), heads * self.key_dim, bias=bias)
        self.key_dense = nn.Linear(int(key_shape[-1]), heads * self.key_dim, bias=bias)
        self.value_dense = nn.Linear(int(value_shape[-1]), heads * self.value_dim, bias=bias)
        out_dim = self.output_dim or int(query_shape[-1])
        self.output_dense = nn.Linear(heads * self.value_dim, out_dim, bias=bias)
        for linear in (self.query_dense, self.key_dense, self.value_dense, self.output_dense):
            init.xavier_uniform_(linear.weight)
            if bias:
                init.zeros_(linear.bias)
        super().build(query_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (*input_shape[:-1], self.output_dim or input_shape[-1])

    def _fixed_axis(self, axis: int) -> bool:
        return axis == len(self.input_shape) - 1

    def forward(self, query: Any, value: Any = None, key: Any = None, **kwargs: Any):
        query = _to_tensor(query)
        value = query if value is None else _to_tensor(value)
        key = value if key is None else _to_tensor(key)
        if not self.built:
            self.build((None, *query.shape[1:]), (None, *value.shape[1:]),
                       (None, *key.shape[1:]))
            if any(p.device != query.device for p in self.parameters()):
                self.to(query.device)
        return self.call(query, value, key, **kwargs)

    def _heads(self, x: Tensor, dim: int) -> Tensor:
        B, T = x.shape[0], x.shape[1]
        return x.reshape(B, T, self.num_heads, dim).transpose(1, 2)  # (B, heads, T, dim)

    def call(self, query: Tensor, value: Tensor, key: Tensor, attention_mask: Any = None,
             return_attention_scores: bool = False, use_causal_mask: bool = False,
             training: bool | None = None):
        q = self._heads(self.query_dense(query), self.key_dim)  # (B, H, T, Dk)
        k = self._heads(self.key_dense(key), self.key_dim)  # (B, H, S, Dk)
        v = self._heads(self.value_dense(value), self.value_dim)  # (B, H, S, Dv)
        mask = None
        if attention_mask is not None:
            mask = _to_tensor(attention_mask).bool().unsqueeze(1)  # (B, 1, T, S)
        training = self.training if training is None else training
        p = self.dropout if training else 0.0
        if return_attention_scores:
            weights = self._attention_weights(q, k, mask, use_causal_mask)
            if p:
                weights = F.dropout(weights, p)
            heads = weights @ v
        else:
            heads = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p,
                                                   is_causal=use_causal_mask and mask is None)
            if use_causal_mask and mask is not None:
                raise ValueError("pass either attention_mask or use_causal_mask=True, not both")
        B, T = query.shape[0], query.shape[1]
        merged = heads.transpose(1, 2).reshape(B, T, self.num_heads * self.value_dim)
        out = self.output_dense(merged)
        return (out, weights) if return_attention_scores else out

    def _attention_weights(self, q: Tensor, k: Tensor, mask: Tensor | None,
                           causal: bool) -> Tensor:
        """softmax(q k^T / sqrt(key_dim)), masked: the weights Keras returns as scores."""
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.key_dim))  # (B, H, T, S)
        T, S = scores.shape[-2], scores.shape[-1]
        if causal:
            allowed = np.tril(np.ones((T, S), dtype=bool))
            mask = tensor(allowed, device=q.device) if mask is None else mask & tensor(
                allowed, device=q.device)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        return F.softmax(scores, dim=-1)

    def get_config(self) -> dict:
        return {**super().get_config(), "num_heads": self.num_heads, "key_dim": self.key_dim,
                "value_dim": self.value_dim, "dropout": self.dropout,
                "use_bias": self.use_bias, "output_shape": self.output_dim}


LAYERS = {
    cls.__name__: cls
    for cls in (InputLayer, Dense, Activation, Dropout, Flatten, Embedding, LayerNormalization,
                LSTM, GRU, MultiHeadAttention)
}
