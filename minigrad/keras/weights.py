"""Keras's weight layouts for `layer.get_weights()` / `layer.set_weights()`.

A Keras layer here holds `minigrad.nn` modules with PyTorch's parameters; Keras programs read
and write weights in Keras's own order and layout. This module converts between the two, one
rule per kind of `nn` module the layer holds (in the order they were assigned):

- `nn.Linear`: ``[kernel (in, out), bias (out,)]`` (the weight transposed).
- `nn.Embedding`: ``[embeddings (input_dim, output_dim)]``.
- `nn.LayerNorm`: ``[gamma, beta]``.
- `nn.LSTM`: ``[kernel (in, 4u), recurrent_kernel (u, 4u), bias (4u,)]``, gates i, f, c, o in
  both; Keras's one bias is PyTorch's ``bias_ih + bias_hh`` (set back as ``bias_ih``, with
  ``bias_hh`` zero).
- `nn.GRU`: ``[kernel (in, 3u), recurrent_kernel (u, 3u), bias (2, 3u)]`` (Keras's
  ``reset_after=True``), gates z, r, h in Keras where PyTorch orders them r, z, n.
- `nn.Conv1d`/`nn.Conv2d`: ``[kernel (*k, in, out), bias]`` (PyTorch: ``(out, in, *k)``).
- `nn.BatchNorm*`: ``[gamma, beta, moving_mean, moving_variance]``.
- `MultiHeadAttention`'s projections: kernels ``(dim, heads, key_dim)`` and
  ``(heads, value_dim, dim)``, biases ``(heads, key_dim)`` and ``(dim,)``, as Keras.
- anything else: its ``state_dict`` values as they are.

Example:
    >>> from minigrad import nn
    >>> [w.shape for w in module_weights(nn.Linear(3, 2))]
    [(3, 2), (2,)]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from minigrad import backend, nn
from minigrad.tensor import Tensor

__all__ = ["get_layer_weights", "module_weights", "set_layer_weights", "set_module_weights"]

_ATTENTION_PROJECTIONS = ("query_dense", "key_dense", "value_dense", "output_dense")


def _host(tensor: Tensor) -> np.ndarray:
    """A NumPy copy of a parameter or buffer, wherever it lives."""
    data = tensor.detach().data
    return np.array(data if isinstance(data, np.ndarray) else backend.to_device(data, backend.CPU))


def _assign(tensor: Tensor, value: np.ndarray, what: str) -> None:
    """Writes `value` into `tensor` in place (same shape; its dtype and device kept)."""
    value = np.asarray(value)
    if tuple(value.shape) != tuple(tensor.shape):
        raise ValueError(f"set_weights: {what} has shape {tuple(tensor.shape)}, got "
                         f"{tuple(value.shape)}")
    tensor.data[...] = backend.to_device(value.astype(tensor.dtype), tensor.device)


def _gru_rows(weight: np.ndarray) -> np.ndarray:
    """PyTorch's GRU rows [r | z | n] in Keras's order [z | r | h] (and back: the swap is its
    own inverse)."""
    r, z, n = np.split(weight, 3, axis=0)
    return np.concatenate([z, r, n], axis=0)


def _conv_axes(ndim: int) -> tuple:
    """PyTorch's ``(out, in, *k)`` to Keras's ``(*k, in, out)``."""
    return (*range(2, ndim), 1, 0)


def module_weights(module: nn.Module) -> list:
    """The weights of one `nn` module in Keras's order and layout, as NumPy arrays."""
    if isinstance(module, nn.Linear):
        bias = [_host(module.bias)] if module.bias is not None else []
        return [_host(module.weight).T.copy(), *bias]
    if isinstance(module, (nn.LSTM, nn.GRU)) and _single_layer(module):
        w_ih, w_hh = _host(module.weight_ih_l0), _host(module.weight_hh_l0)
        b_ih, b_hh = _host(module.bias_ih_l0), _host(module.bias_hh_l0)
        if isinstance(module, nn.LSTM):
            return [w_ih.T.copy(), w_hh.T.copy(), b_ih + b_hh]
        return [_gru_rows(w_ih).T.copy(), _gru_rows(w_hh).T.copy(),
                np.stack([_gru_rows(b_ih), _gru_rows(b_hh)])]
    if _is_conv(module):
        weight = _host(module.weight)
        bias = [_host(module.bias)] if module.bias is not None else []
        return [weight.transpose(_conv_axes(weight.ndim)).copy(), *bias]
    if _is_batch_norm(module):
        return [_host(t) for t in (module.weight, module.bias, module.running_mean,
                                   module.running_var) if t is not None]
    return [_host(value) for name, value in module.state_dict().items()
            if not name.endswith("num_batches_tracked")]


def _set_module_weights(module: nn.Module, values: Sequence[Any], what: str) -> None:
    if isinstance(module, nn.Linear):
        _assign(module.weight, np.asarray(values[0]).T, f"{what} kernel (transposed)")
        if module.bias is not None:
            _assign(module.bias, values[1], f"{what} bias")
        return
    if isinstance(module, (nn.LSTM, nn.GRU)) and _single_layer(module):
        kernel, recurrent, bias = (np.asarray(v) for v in values)
        if isinstance(module, nn.GRU):
            kernel, recurrent = _gru_rows(kernel.T).T, _gru_rows(recurrent.T).T
            if bias.shape != (2, kernel.shape[1]):
                raise ValueError(f"set_weights: {what} bias has shape (2, "
                                 f"{kernel.shape[1]}) in Keras's GRU, got {bias.shape}")
            b_ih, b_hh = _gru_rows(bias[0]), _gru_rows(bias[1])
        else:
            b_ih, b_hh = bias, np.zeros_like(bias)
        _assign(module.weight_ih_l0, kernel.T, f"{what} kernel (transposed)")
        _assign(module.weight_hh_l0, recurrent.T, f"{what} recurrent_kernel (transposed)")
        _assign(module.bias_ih_l0, b_ih, f"{what} bias")
        _assign(module.bias_hh_l0, b_hh, f"{what} bias")
        return
    if _is_conv(module):
        kernel = np.asarray(values[0])
        inverse = np.argsort(_conv_axes(kernel.ndim))
        _assign(module.weight, kernel.transpose(inverse), f"{what} kernel")
        if module.bias is not None:
            _assign(module.bias, values[1], f"{what} bias")
        return
    targets = _targets(module)
    for (name, target), value in zip(targets, values):
        _assign(target, value, f"{what} {name}")


def set_module_weights(module: nn.Module, values: Sequence[Any]) -> None:
    """Sets one `nn` module's weights from arrays in `module_weights`'s order and layout."""
    if len(values) != _count(module):
        raise ValueError(f"set_weights: {type(module).__name__} has {_count(module)} weights, "
                         f"got {len(values)}")
    _set_module_weights(module, values, type(module).__name__)


def _targets(module: nn.Module) -> list:
    """``(name, tensor)`` in the order of `module_weights` (the generic and BatchNorm rules)."""
    if _is_batch_norm(module):
        named = (("gamma", module.weight), ("beta", module.bias),
                 ("moving_mean", module.running_mean), ("moving_variance", module.running_var))
        return [(name, t) for name, t in named if t is not None]
    return [(name, t) for name, t in module.state_dict(keep_vars=True).items()
            if not name.endswith("num_batches_tracked")]


def _count(module: nn.Module) -> int:
    if isinstance(module, nn.Linear) or _is_conv(module):
        return 1 + (module.bias is not None)
    if isinstance(module, (nn.LSTM, nn.GRU)) and _single_layer(module):
        return 3
    return len(_targets(module))


def _single_layer(module: nn.Module) -> bool:
    return getattr(module, "num_layers", 1) == 1 and not getattr(module, "bidirectional", False)


def _is_conv(module: nn.Module) -> bool:
    convs = tuple(getattr(nn, name) for name in ("Conv1d", "Conv2d", "Conv3d") if hasattr(nn, name))
    return isinstance(module, convs)


def _is_batch_norm(module: nn.Module) -> bool:
    return type(module).__name__.startswith("BatchNorm")


def _children(layer: nn.Module) -> list:
    """The `nn` modules holding the layer's weights, in the order Keras lists them."""
    return [m for m in layer._modules.values() if m is not None]


def _attention_weights(layer: Any) -> list:
    heads = layer.num_heads
    weights = []
    for name in _ATTENTION_PROJECTIONS:
        linear = getattr(layer, name)
        kernel = _host(linear.weight).T  # (in, out)
        if name == "output_dense":
            weights.append(kernel.reshape(heads, -1, kernel.shape[1]))
            bias_shape = (kernel.shape[1],)
        else:
            weights.append(kernel.reshape(kernel.shape[0], heads, -1))
            bias_shape = (heads, -1)
        if linear.bias is not None:
            weights.append(_host(linear.bias).reshape(bias_shape))
    return weights


def _set_attention_weights(layer: Any, values: Sequence[Any]) -> None:
    values = list(values)
    for name in _ATTENTION_PROJECTIONS:
        linear = getattr(layer, name)
        kernel = np.asarray(values.pop(0))
        out_features, in_features = linear.weight.shape
        if kernel.size != out_features * in_features:
            raise ValueError(f"set_weights: {layer.name} {name} kernel has "
                             f"{out_features * in_features} values, got shape {kernel.shape}")
        _assign(linear.weight, kernel.reshape(in_features, out_features).T,
                f"{layer.name} {name} kernel")
        if linear.bias is not None:
            _assign(linear.bias, np.asarray(values.pop(0)).reshape(-1), f"{layer.name} {name} "
                    "bias")


def _is_keras_layer(module: nn.Module) -> bool:
    return hasattr(module, "call_without_activation")  # a nested keras.layers.Layer


def get_layer_weights(layer: Any) -> list:
    """A Keras layer's weights in Keras's order and layout (empty before it is built)."""
    if all(hasattr(layer, name) for name in _ATTENTION_PROJECTIONS):
        return _attention_weights(layer)
    weights = []
    for child in _children(layer):
        weights += get_layer_weights(child) if _is_keras_layer(child) else module_weights(child)
    return weights


def set_layer_weights(layer: Any, weights: Sequence[Any]) -> None:
    """Sets a Keras layer's weights from arrays in `get_layer_weights`'s order and layout."""
    weights = list(weights)
    expected = len(get_layer_weights(layer))
    if len(weights) != expected:
        raise ValueError(
            f"You called `set_weights(weights)` on layer '{layer.name}' with a weight list of "
            f"length {len(weights)}, but the layer was expecting {expected} weights."
        )
    if all(hasattr(layer, name) for name in _ATTENTION_PROJECTIONS):
        _set_attention_weights(layer, weights)
        return
    for child in _children(layer):
        if _is_keras_layer(child):
            n = len(get_layer_weights(child))
            set_layer_weights(child, weights[:n])
        else:
            n = _count(child)
            _set_module_weights(child, weights[:n], str(layer.name))
        weights = weights[n:]
