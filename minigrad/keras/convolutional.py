"""Keras's convolutional-network layers: ``Conv1D Conv2D MaxPooling1D/2D AveragePooling1D/2D
GlobalAveragePooling1D/2D GlobalMaxPooling1D/2D BatchNormalization Reshape``.

Inputs are channels-last, as Keras users pass them: ``(N, steps, C)`` for the 1-D layers,
``(N, H, W, C)`` for the 2-D ones. Each layer moves the channels to dim 1, runs the PyTorch-style
op (``nn.Conv2d``, ``F.max_pool2d``, ``nn.BatchNorm1d``, ...) and moves them back, so its
weights live in ``minigrad.nn`` modules and ``get_weights``/``set_weights`` give Keras's
layouts (``keras/weights.py``: a conv kernel is ``(*kernel, in, out)``).

Output sizes follow Keras (TensorFlow): ``'valid'`` gives ``floor((n - d (k - 1) - 1) / s) + 1``,
``'same'`` gives ``ceil(n / s)`` with the total padding ``max((out - 1) s + d (k - 1) + 1 - n,
0)`` split with the odd one at the end (PyTorch's ``padding='same'`` refuses strides; Keras's
does not). Average pooling with ``'same'`` divides by the window's part inside the input.

Example:
    >>> import minigrad as mg
    >>> conv = Conv2D(8, 3, strides=2, padding="same", activation="relu")
    >>> conv(mg.ones(2, 28, 28, 1)).shape
    (2, 14, 14, 8)
    >>> conv.count_params()
    80
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Callable

import numpy as np

from minigrad import nn, ops
from minigrad.nn import functional as F
from minigrad.keras.layers import Layer, Shape, _activation_name, _initializer, get_activation
from minigrad.tensor import Tensor

__all__ = [
    "AveragePooling1D", "AveragePooling2D", "BatchNormalization", "Conv1D", "Conv2D",
    "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D",
    "GlobalMaxPooling2D", "MaxPooling1D", "MaxPooling2D", "Reshape",
]


def _tuple(value: Any, n: int, name: str) -> tuple:
    if isinstance(value, (int, np.integer)):
        return (int(value),) * n
    value = tuple(int(v) for v in value)
    if len(value) != n:
        raise ValueError(f"The `{name}` argument must be a tuple of {n} integers. "
                         f"Received: {name}={value}")
    return value


def _padding_arg(padding: str, allowed=("valid", "same")) -> str:
    padding = str(padding).lower()
    if padding not in allowed:
        raise ValueError(f"The `padding` argument must be one of {', '.join(map(repr, allowed))}."
                         f" Received: padding={padding!r}")
    return padding


def _data_format(data_format: Any) -> None:
    if data_format not in (None, "channels_last"):
        raise NotImplementedError("data_format: only 'channels_last' (Keras's default) is "
                                  "supported; pass inputs as (N, ..., C)")


def output_length(size: Any, kernel: int, stride: int, padding: str, dilation: int = 1) -> Any:
    """Keras's output length along one axis (None stays None)."""
    if size is None:
        return None
    if padding == "same":
        return -(-size // stride)
    if padding == "causal":
        return -(-size // stride)
    return (size - dilation * (kernel - 1) - 1) // stride + 1


def same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple:
    """TensorFlow's ``'same'`` padding ``(before, after)``: the odd one goes at the end."""
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return total // 2, total - total // 2


def _channels_first(x: Tensor) -> Tensor:
    """(N, *spatial, C) -> (N, C, *spatial)."""
    return ops.permute(x, (0, x.ndim - 1, *range(1, x.ndim - 1)))


def _channels_last(x: Tensor) -> Tensor:
    """(N, C, *spatial) -> (N, *spatial, C)."""
    return ops.permute(x, (0, *range(2, x.ndim), 1))


def _check_rank(layer: Layer, input_shape: Shape, rank: int) -> None:
    if len(input_shape) != rank:
        raise ValueError(
            f'Input 0 of layer "{layer.name}" is incompatible with the layer: expected '
            f"ndim={rank}, found ndim={len(input_shape)}. Full shape received: "
            f"{tuple(input_shape)}")


def _pad_spatial(x: Tensor, pads: Sequence[tuple], value: float = 0.0) -> Tensor:
    """Pad the spatial dims of a channels-first tensor by per-dim (before, after) pairs."""
    flat = []
    for before, after in reversed(list(pads)):  # F.pad lists the last dimension first
        flat += [before, after]
    if not any(flat):
        return x
    return F.pad(x, flat, value=value)


# ---------------------------------------------------------------------------- convolutions


class _Conv(Layer):
    rank = 2

    def __init__(self, filters: int, kernel_size: Any, strides: Any = 1, padding: str = "valid",
                 data_format: Any = None, dilation_rate: Any = 1, groups: int = 1,
                 activation: str | Callable | None = None, use_bias: bool = True,
                 kernel_initializer: str = "glorot_uniform", bias_initializer: str = "zeros",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _data_format(data_format)
        if isinstance(filters, bool) or not isinstance(filters, (int, np.integer)) or \
                filters <= 0:
            raise ValueError(f"Invalid value for argument `filters`. Expected a strictly "
                             f"positive value. Received filters={filters}.")
        n = self.rank
        self.filters = int(filters)
        self.kernel_size = _tuple(kernel_size, n, "kernel_size")
        self.strides = _tuple(strides, n, "strides")
        allowed = ("valid", "same", "causal") if n == 1 else ("valid", "same")
        self.padding = _padding_arg(padding, allowed)
        self.dilation_rate = _tuple(dilation_rate, n, "dilation_rate")
        self.groups = int(groups)
        get_activation(activation)
        self.activation = activation
        self.use_bias = use_bias
        _initializer(kernel_initializer), _initializer(bias_initializer)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer

    def _fixed_axis(self, axis: int) -> bool:
        return axis == len(self.input_shape) - 1  # the channels (spatial sizes may vary)

    def build(self, input_shape: Shape) -> None:
        _check_rank(self, input_shape, self.rank + 2)
        channels = input_shape[-1]
        if channels % self.groups or self.filters % self.groups:
            raise ValueError(f"The number of input channels ({channels}) and filters "
                             f"({self.filters}) must be divisible by groups ({self.groups}). "
                             f"Received input_shape={tuple(input_shape)}")
        conv = nn.Conv1d if self.rank == 1 else nn.Conv2d
        self.conv = conv(int(channels), self.filters, self.kernel_size, stride=self.strides,
                         dilation=self.dilation_rate, groups=self.groups, bias=self.use_bias)
        _initializer(self.kernel_initializer)(self.conv.weight)
        if self.use_bias:
            _initializer(self.bias_initializer)(self.conv.bias)
        super().build(input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        spatial = tuple(output_length(s, k, st, self.padding, d) for s, k, st, d in zip(
            input_shape[1:-1], self.kernel_size, self.strides, self.dilation_rate))
        for s in spatial:
            if s is not None and s <= 0:
                raise ValueError(
                    f"One of the dimensions in the output is <= 0 due to downsampling in "
                    f"{self.name}. Consider increasing the input size. Received input shape "
                    f"{tuple(input_shape)} which would produce output shape with a zero or "
                    f"negative value in a dimension.")
        return (input_shape[0], *spatial, self.filters)

    def call(self, inputs: Tensor) -> Tensor:
        x = _channels_first(inputs)
        if self.padding == "same":
            pads = [same_pads(s, k, st, d) for s, k, st, d in zip(
                x.shape[2:], self.kernel_size, self.strides, self.dilation_rate)]
            if all(before == after for before, after in pads):
                # symmetric (an odd kernel at stride 1): the convolution pads, no padded copy
                conv = F.conv1d if self.rank == 1 else F.conv2d
                out = conv(x, self.conv.weight, self.conv.bias, self.strides,
                           tuple(before for before, _ in pads), self.dilation_rate, self.groups)
                return _channels_last(out)
            x = _pad_spatial(x, pads)
        elif self.padding == "causal":  # 1-D only: all the padding before
            x = _pad_spatial(x, [(self.dilation_rate[0] * (self.kernel_size[0] - 1), 0)])
        return _channels_last(self.conv(x))

    def get_config(self) -> dict:
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": list(self.kernel_size), "strides": list(self.strides),
                "padding": self.padding, "dilation_rate": list(self.dilation_rate),
                "groups": self.groups, "activation": _activation_name(self.activation),
                "use_bias": self.use_bias, "kernel_initializer": self.kernel_initializer,
                "bias_initializer": self.bias_initializer}


class Conv2D(_Conv):
    """2-D convolution over ``(N, H, W, C)``: ``activation(conv(x, kernel) + bias)``.

    Built as ``nn.Conv2d(C, filters, kernel_size, stride=strides, dilation=dilation_rate,
    groups=groups)``; ``'same'`` padding is TensorFlow's (odd pad at the end). Kernel
    Glorot-uniform (fans ``k * in`` and ``k * out``), bias zeros, as Keras.

    Args:
        filters: output channels.
        kernel_size: an int or ``(kh, kw)``.
        strides: an int or ``(sh, sw)``.
        padding: ``'valid'`` or ``'same'``.
        dilation_rate: an int or a pair.
        groups: channel groups.
        activation: as ``Dense``.
        use_bias, kernel_initializer, bias_initializer: as ``Dense``.
        input_shape: e.g. ``(28, 28, 1)``.

    Example:
        >>> layer = Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1))
        >>> layer.build((None, 28, 28, 1)); layer.output_shape, layer.count_params()
        ((None, 26, 26, 32), 320)
    """

    rank = 2


class Conv1D(_Conv):
    """1-D convolution over ``(N, steps, C)`` (arguments as :class:`Conv2D`, single ints;
    ``padding`` may also be ``'causal'``: all the padding before the sequence).

    Example:
        >>> layer = Conv1D(16, 5, strides=2, padding="same")
        >>> layer.build((None, 100, 40)); layer.output_shape
        (None, 50, 16)
    """

    rank = 1


# ---------------------------------------------------------------------------- pooling


class _PoolingBase(Layer):
    """What the pooling layers share: a channels-last input of rank ``rank + 2``, and no axis
    whose size is fixed once built (they have no weights)."""

    rank = 2

    def _fixed_axis(self, axis: int) -> bool:
        return False

    def build(self, input_shape: Shape) -> None:
        _check_rank(self, input_shape, self.rank + 2)
        super().build(input_shape)


class _Pooling(_PoolingBase):
    mode = "max"

    def __init__(self, pool_size: Any = 2, strides: Any = None, padding: str = "valid",
                 data_format: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _data_format(data_format)
        n = self.rank
        self.pool_size = _tuple(pool_size, n, "pool_size")
        self.strides = self.pool_size if strides is None else _tuple(strides, n, "strides")
        self.padding = _padding_arg(padding)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        spatial = tuple(output_length(s, k, st, self.padding) for s, k, st in zip(
            input_shape[1:-1], self.pool_size, self.strides))
        if any(s is not None and s <= 0 for s in spatial):
            raise ValueError(f"Computed output size would be negative: {spatial} for the input "
                             f"shape {tuple(input_shape)} and pool_size={self.pool_size}")
        return (input_shape[0], *spatial, input_shape[-1])

    def call(self, inputs: Tensor) -> Tensor:
        x = _channels_first(inputs)
        if self.rank == 1:
            x = x.unsqueeze(2)  # (N, C, 1, L): the 2-d ops on a height of 1
        kernel = (1,) * (2 - self.rank) + self.pool_size
        stride = (1,) * (2 - self.rank) + self.strides
        pads = [(0, 0)] * (2 - self.rank)
        if self.padding == "same":
            pads += [same_pads(s, k, st) for s, k, st in zip(
                x.shape[4 - self.rank:], self.pool_size, self.strides)]
        else:
            pads += [(0, 0)] * self.rank
        if self.mode == "max":
            x = F.max_pool2d(_pad_spatial(x, pads, -math.inf), kernel, stride)
        else:
            area = math.prod(kernel)
            sums = F.avg_pool2d(_pad_spatial(x, pads), kernel, stride) * float(area)
            if any(p for pair in pads for p in pair):
                # Keras divides by the window's part inside the input, not by the pool size
                ones = Tensor._make(x.xp.ones((1, 1) + tuple(x.shape[2:]), dtype=x.dtype))
                counts = F.avg_pool2d(_pad_spatial(ones, pads), kernel, stride) * float(area)
                x = sums / counts
            else:
                x = sums * (1.0 / area)
        if self.rank == 1:
            x = x.squeeze(2)
        return _channels_last(x)

    def get_config(self) -> dict:
        return {**super().get_config(), "pool_size": list(self.pool_size),
                "strides": list(self.strides), "padding": self.padding}


class MaxPooling2D(_Pooling):
    """Max pooling over ``(N, H, W, C)``: windows ``pool_size`` (default 2), ``strides``
    (default ``pool_size``), ``padding`` ``'valid'`` or ``'same'``.

    Example:
        >>> import minigrad as mg
        >>> MaxPooling2D()(mg.ones(1, 28, 28, 32)).shape
        (1, 14, 14, 32)
    """

    rank, mode = 2, "max"


class AveragePooling2D(_Pooling):
    """Average pooling over ``(N, H, W, C)`` (arguments as :class:`MaxPooling2D`; with
    ``'same'`` each window divides by its part inside the input).

    Example:
        >>> import minigrad as mg
        >>> AveragePooling2D(3, strides=2, padding="same")(mg.ones(1, 7, 7, 4)).shape
        (1, 4, 4, 4)
    """

    rank, mode = 2, "avg"


class MaxPooling1D(_Pooling):
    """Max pooling over ``(N, steps, C)`` (arguments as :class:`MaxPooling2D`, single ints).

    Example:
        >>> import minigrad as mg
        >>> MaxPooling1D()(mg.ones(1, 40, 8)).shape
        (1, 20, 8)
    """

    rank, mode = 1, "max"


class AveragePooling1D(_Pooling):
    """Average pooling over ``(N, steps, C)``.

    Example:
        >>> import minigrad as mg
        >>> AveragePooling1D(4)(mg.ones(1, 40, 8)).shape
        (1, 10, 8)
    """

    rank, mode = 1, "avg"


class _GlobalPooling(_PoolingBase):
    mode = "avg"

    def __init__(self, data_format: Any = None, keepdims: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _data_format(data_format)
        self.keepdims = bool(keepdims)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if self.keepdims:
            return (input_shape[0], *(1,) * self.rank, input_shape[-1])
        return (input_shape[0], input_shape[-1])

    def call(self, inputs: Tensor) -> Tensor:
        dims = tuple(range(1, 1 + self.rank))
        if self.mode == "avg":
            return inputs.mean(dim=dims, keepdim=self.keepdims)
        return ops.amax(inputs, dim=dims, keepdim=self.keepdims)

    def get_config(self) -> dict:
        return {**super().get_config(), "keepdims": self.keepdims}


class GlobalAveragePooling2D(_GlobalPooling):
    """The mean over H and W: ``(N, H, W, C) -> (N, C)`` (``keepdims``: ``(N, 1, 1, C)``).

    Example:
        >>> import minigrad as mg
        >>> GlobalAveragePooling2D()(mg.ones(2, 7, 7, 64)).shape
        (2, 64)
    """

    rank, mode = 2, "avg"


class GlobalAveragePooling1D(_GlobalPooling):
    """The mean over the steps: ``(N, steps, C) -> (N, C)``.

    Example:
        >>> import minigrad as mg
        >>> GlobalAveragePooling1D()(mg.ones(2, 50, 16)).shape
        (2, 16)
    """

    rank, mode = 1, "avg"


class GlobalMaxPooling2D(_GlobalPooling):
    """The maximum over H and W: ``(N, H, W, C) -> (N, C)``.

    Example:
        >>> import minigrad as mg
        >>> GlobalMaxPooling2D()(mg.ones(2, 7, 7, 64)).shape
        (2, 64)
    """

    rank, mode = 2, "max"


class GlobalMaxPooling1D(_GlobalPooling):
    """The maximum over the steps: ``(N, steps, C) -> (N, C)``.

    Example:
        >>> import minigrad as mg
        >>> GlobalMaxPooling1D()(mg.ones(2, 50, 16)).shape
        (2, 16)
    """

    rank, mode = 1, "max"


# ---------------------------------------------------------------------------- batch norm


class BatchNormalization(Layer):
    """Batch normalisation of the last axis (the channels of a channels-last input).

    Built as ``nn.BatchNorm1d(C, eps=epsilon, momentum=1 - momentum)`` (Keras's momentum is the
    moving averages' decay, PyTorch's the new batch's weight): batch statistics in ``fit``, the
    moving ones in ``evaluate``/``predict``. The moving variance takes the unbiased batch
    variance, as TensorFlow's fused batch norm (the default for images) does. Weights
    ``[gamma, beta, moving_mean, moving_variance]``; the moving statistics count as
    non-trainable parameters, as in Keras's summary.

    Args:
        axis: the normalised axis (only -1, the last, is supported).
        momentum: the moving averages' decay (Keras's default 0.99).
        epsilon: added to the variance (Keras's default 1e-3).
        center, scale: learn beta and gamma (``scale=False`` with ``center=True`` keeps a
            gamma frozen at 1, listed in the weights).

    Example:
        >>> import minigrad as mg
        >>> bn = BatchNormalization()
        >>> bn(mg.randn(4, 5, 5, 8)).shape, bn.count_params()
        ((4, 5, 5, 8), 32)
    """

    def __init__(self, axis: int = -1, momentum: float = 0.99, epsilon: float = 1e-3,
                 center: bool = True, scale: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if axis != -1:
            raise NotImplementedError("BatchNormalization: only axis=-1 (channels last) is "
                                      "supported")
        self.axis = axis
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center = center
        self.scale = scale

    def build(self, input_shape: Shape) -> None:
        if len(input_shape) < 2:
            raise ValueError(f"BatchNormalization needs an input of rank >= 2, got shape "
                             f"{tuple(input_shape)}")
        channels = int(input_shape[-1])
        self.batch_norm = nn.BatchNorm1d(channels, eps=self.epsilon,
                                         momentum=round(1.0 - self.momentum, 12),
                                         affine=self.center or self.scale, bias=self.center)
        if not self.scale and self.batch_norm.weight is not None:
            # NOTE: PyTorch has no bias-only batch norm: gamma stays, frozen at 1
            self.batch_norm.weight.requires_grad_(False)
        super().build(input_shape)

    def call(self, inputs: Tensor) -> Tensor:
        if inputs.ndim == 2:
            return self.batch_norm(inputs)
        x = _channels_first(inputs)
        shape = x.shape
        out = self.batch_norm(x.reshape(shape[0], shape[1], -1))
        return _channels_last(out.reshape(shape))

    def count_params(self) -> int:
        """Gamma, beta and the moving mean and variance (Keras counts all four)."""
        return super().count_params() + 2 * int(self.batch_norm.num_features)

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum,
                "epsilon": self.epsilon, "center": self.center, "scale": self.scale}


# ---------------------------------------------------------------------------- reshape


class Reshape(Layer):
    """Reshape each sample to ``target_shape`` (the batch axis is kept; one entry may be -1).

    Example:
        >>> import minigrad as mg
        >>> Reshape((28, 28, 1))(mg.ones(2, 784)).shape
        (2, 28, 28, 1)
    """

    def __init__(self, target_shape: Sequence[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target_shape = tuple(int(s) for s in target_shape)
        if sum(s == -1 for s in self.target_shape) > 1:
            raise ValueError(f"Reshape: at most one -1 in target_shape, got "
                             f"{self.target_shape}")

    def _fixed_axis(self, axis: int) -> bool:
        return True

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        target = list(self.target_shape)
        if None in input_shape[1:]:
            return (input_shape[0], *(None if s == -1 else s for s in target))
        total = math.prod(input_shape[1:])
        known = math.prod(s for s in target if s != -1)
        if -1 in target:
            if known == 0 or total % known:
                raise ValueError(f"total size of new array must be unchanged, input_shape = "
                                 f"{list(input_shape[1:])}, output_shape = {target}")
            target[target.index(-1)] = total // known
        elif known != total:
            raise ValueError(f"total size of new array must be unchanged, input_shape = "
                             f"{list(input_shape[1:])}, output_shape = {target}")
        return (input_shape[0], *target)

    def call(self, inputs: Tensor) -> Tensor:
        return inputs.reshape(inputs.shape[0], *self.target_shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "target_shape": list(self.target_shape)}


CNN_LAYERS = {cls.__name__: cls for cls in (
    Conv1D, Conv2D, MaxPooling1D, MaxPooling2D, AveragePooling1D, AveragePooling2D,
    GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalMaxPooling1D, GlobalMaxPooling2D,
    BatchNormalization, Reshape)}
