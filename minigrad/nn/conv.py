"""Convolution layers with PyTorch's names, arguments, parameter shapes, initialisation, ``repr``
and state dicts: ``Conv1d``, ``Conv2d``, ``ConvTranspose1d``, ``ConvTranspose2d``.

A state dict saved by PyTorch for one of these layers loads here, and the other way round.

Example:
    >>> import minigrad as mg
    >>> from minigrad import nn
    >>> layer = nn.Conv2d(3, 8, 3, padding=1)
    >>> layer
    Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
    >>> layer(mg.randn(2, 3, 5, 5)).shape
    (2, 8, 5, 5)
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Union

from minigrad.nn import functional as F
from minigrad.nn import init
from minigrad.nn.functional_conv import same_padding
from minigrad.nn.module import Module, Parameter
from minigrad.tensor import Tensor, empty

__all__ = ["Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d"]

_IntOrTuple = Union[int, Sequence[int]]
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _ntuple(value, n: int) -> tuple:
    return (value,) * n if isinstance(value, int) else tuple(value)


class _ConvNd(Module):
    """What the convolutions share: arguments, parameters, initialisation and ``repr``."""

    _n = 2
    transposed = False

    def __init__(self, in_channels: int, out_channels: int, kernel_size: _IntOrTuple,
                 stride: _IntOrTuple = 1, padding: Union[_IntOrTuple, str] = 0,
                 dilation: _IntOrTuple = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", output_padding: _IntOrTuple = 0,
                 device=None, dtype=None):
        super().__init__()
        n = self._n
        if not isinstance(groups, int) or groups <= 0:
            raise ValueError("groups must be a positive integer")
        if in_channels % groups != 0:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups != 0:
            raise ValueError("out_channels must be divisible by groups")
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {list(PADDING_MODES)}, but got "
                             f"padding_mode='{padding_mode}'")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _ntuple(kernel_size, n)
        self.stride = _ntuple(stride, n)
        self.dilation = _ntuple(dilation, n)
        self.output_padding = _ntuple(output_padding, n)
        self.groups, self.padding_mode = groups, padding_mode
        if isinstance(padding, str):
            if padding not in ("valid", "same"):
                raise ValueError(f"Invalid padding string '{padding}', should be one of "
                                 "{'valid', 'same'}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
            self.padding = padding
            pairs = (same_padding(self.kernel_size, self.dilation) if padding == "same"
                     else ((0, 0),) * n)
        else:
            self.padding = _ntuple(padding, n)
            pairs = tuple((p, p) for p in self.padding)
        # F.pad's order: last dimension first (what padding_mode != 'zeros' pads with)
        self._reversed_padding_repeated_twice = tuple(p for pair in reversed(pairs) for p in pair)
        if self.transposed:
            shape = (in_channels, out_channels // groups) + self.kernel_size
        else:
            shape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = Parameter(empty(shape, dtype=dtype, device=device))
        if bias:
            self.bias = Parameter(empty((out_channels,), dtype=dtype, device=device))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: weight ``kaiming_uniform_(a=sqrt(5))``, i.e. U(+-1/sqrt(fan_in))
        with ``fan_in = weight.shape[1] * prod(kernel_size)`` (for a transposed conv too),
        bias U(+-1/sqrt(fan_in))."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        n = self._n
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * n:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * n:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * n:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s

    def _conv_forward(self, input: Tensor, conv) -> Tensor:
        if self.padding_mode != "zeros":
            input = F.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return conv(input, self.weight, self.bias, self.stride, 0, self.dilation,
                        self.groups)
        return conv(input, self.weight, self.bias, self.stride, self.padding, self.dilation,
                    self.groups)


class _Conv(_ConvNd):
    """Conv1d and Conv2d: PyTorch's arguments, which have no ``output_padding``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: _IntOrTuple,
                 stride: _IntOrTuple = 1, padding: Union[_IntOrTuple, str] = 0,
                 dilation: _IntOrTuple = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, device=device, dtype=dtype)


class Conv1d(_Conv):
    """1-d convolution layer: ``F.conv1d`` with a learnt weight and bias.

    Args:
        in_channels, out_channels: channels of the input and the output.
        kernel_size, stride, dilation: ints or 1-tuples.
        padding: an int, a 1-tuple, ``'valid'`` or ``'same'`` (stride 1 only).
        groups: independent channel groups (``groups = in_channels``: depthwise).
        bias: learn an additive bias.
        padding_mode: ``'zeros'``, ``'reflect'``, ``'replicate'`` or ``'circular'``.
        device, dtype: where and how the parameters are created.

    Attributes:
        weight: ``(out_channels, in_channels / groups, k)``.
        bias: ``(out_channels,)``.

    Shape:
        input ``(N, C_in, L)`` or ``(C_in, L)``; output ``(N, C_out, L_out)``.

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> nn.Conv1d(2, 4, 3)(mg.randn(5, 2, 10)).shape
        (5, 4, 8)
    """

    _n = 1

    def forward(self, input: Tensor) -> Tensor:
        return self._conv_forward(input, F.conv1d)


class Conv2d(_Conv):
    """2-d convolution layer: ``F.conv2d`` with a learnt weight and bias.

    Args:
        in_channels, out_channels: channels of the input and the output.
        kernel_size, stride, dilation: ints or pairs.
        padding: an int, a pair, ``'valid'`` or ``'same'`` (stride 1 only).
        groups: independent channel groups (``groups = in_channels``: depthwise).
        bias: learn an additive bias.
        padding_mode: ``'zeros'``, ``'reflect'``, ``'replicate'`` or ``'circular'``.
        device, dtype: where and how the parameters are created.

    Attributes:
        weight: ``(out_channels, in_channels / groups, kh, kw)``, ``kaiming_uniform_(a=sqrt(5))``.
        bias: ``(out_channels,)``, U(+-1/sqrt(fan_in)).

    Shape:
        input ``(N, C_in, H, W)`` or ``(C_in, H, W)``; output ``(N, C_out, H_out, W_out)``.

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> nn.Conv2d(1, 4, 3, stride=2)(mg.randn(2, 1, 9, 9)).shape
        (2, 4, 4, 4)
    """

    def forward(self, input: Tensor) -> Tensor:
        return self._conv_forward(input, F.conv2d)


class _ConvTransposeNd(_ConvNd):
    transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 device=None, dtype=None):
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for '
                             f"{type(self).__name__}")
        if isinstance(padding, str):
            raise ValueError(f"{type(self).__name__}: padding must be an int or a tuple, "
                             f"got '{padding}'")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, output_padding, device=device,
                         dtype=dtype)

    def _output_padding(self, input: Tensor, output_size) -> tuple:
        """``output_padding``, or what gives ``output_size`` (PyTorch's ``forward(input,
        output_size)``: the last ``n`` entries are the spatial size wanted)."""
        if output_size is None:
            return self.output_padding
        n = self._n
        wanted = tuple(output_size)[-n:]
        result = []
        for d in range(n):
            size = input.shape[input.ndim - n + d]
            smallest = ((size - 1) * self.stride[d] - 2 * self.padding[d]
                        + self.dilation[d] * (self.kernel_size[d] - 1) + 1)
            largest = smallest + self.stride[d] - 1
            if not smallest <= wanted[d] <= largest:
                raise ValueError(f"requested an output size of {wanted}, but valid sizes range "
                                 f"from {smallest} to {largest} (for an input of "
                                 f"{tuple(input.shape[-n:])})")
            result.append(wanted[d] - smallest)
        return tuple(result)


class ConvTranspose1d(_ConvTransposeNd):
    """1-d transposed convolution layer (``F.conv_transpose1d``).

    Args:
        in_channels, out_channels, kernel_size: as ``F.conv_transpose1d``.
        stride, padding, output_padding, groups, bias, dilation: as ``F.conv_transpose1d``.
        padding_mode: ``'zeros'`` only.

    Attributes:
        weight: ``(in_channels, out_channels / groups, k)``; init fan-in ``weight.shape[1] * k``.
        bias: ``(out_channels,)``.

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> nn.ConvTranspose1d(2, 3, 3, stride=2)(mg.randn(1, 2, 4)).shape
        (1, 3, 9)
    """

    _n = 1

    def forward(self, input: Tensor, output_size: Optional[Sequence[int]] = None) -> Tensor:
        return F.conv_transpose1d(input, self.weight, self.bias, self.stride, self.padding,
                                  self._output_padding(input, output_size), self.groups,
                                  self.dilation)


class ConvTranspose2d(_ConvTransposeNd):
    """2-d transposed convolution layer (``F.conv_transpose2d``): upsampling by a learnt kernel.

    Args:
        in_channels, out_channels, kernel_size: as ``F.conv_transpose2d``.
        stride, padding, output_padding, groups, bias, dilation: as ``F.conv_transpose2d``.
        padding_mode: ``'zeros'`` only.

    Attributes:
        weight: ``(in_channels, out_channels / groups, kh, kw)``; init fan-in
            ``weight.shape[1] * kh * kw``.
        bias: ``(out_channels,)``.

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> nn.ConvTranspose2d(4, 2, 2, stride=2)(mg.randn(1, 4, 3, 3)).shape
        (1, 2, 6, 6)
    """

    def forward(self, input: Tensor, output_size: Optional[Sequence[int]] = None) -> Tensor:
        return F.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding,
                                  self._output_padding(input, output_size), self.groups,
                                  self.dilation)
