"""Convolutions and padding of ``nn.functional``: ``conv1d``, ``conv2d``, ``conv_transpose1d``,
``conv_transpose2d`` and ``pad``, with PyTorch's signatures, checks and error messages.

Each function checks its arguments, brings a 1-d or unbatched call to the batched 2-d case
(a length ``L`` is an image of height 1), and dispatches: the fused kernel of ``kernels/conv.py``
when it runs for the device and dtype, else the composite reference of ``minigrad.references``.
``nn.functional`` imports these names.

Example:
    >>> import minigrad as mg
    >>> import minigrad.nn.functional as F
    >>> F.conv2d(mg.ones(1, 1, 3, 3), mg.ones(1, 1, 2, 2)).shape
    (1, 1, 2, 2)
    >>> F.pad(mg.tensor([[1.0, 2.0, 3.0]]), (2, 1), mode="reflect")
    tensor([[3., 2., 1., 2., 3., 2.]])
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

from minigrad import autocast_state, kernels, references
from minigrad.autocast_state import state as _autocast
from minigrad.fused import fused_enabled
from minigrad.tensor import Tensor

__all__ = ["conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d", "pad"]

_IntOrTuple = Union[int, Sequence[int]]
PADDING_MODES = ("constant", "reflect", "replicate", "circular")


def _tuple(value, n: int, name: str) -> tuple:
    """An int or a sequence of ``n`` ints as an ``n``-tuple."""
    if isinstance(value, int):
        return (value,) * n
    value = tuple(value)
    if len(value) != n or not all(isinstance(v, int) for v in value):
        raise ValueError(f"expected {name} to be a single integer or a tuple of {n} integers, "
                         f"got {name}={value!r}")
    return value


def _size(shape) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]"


def same_padding(kernel: tuple, dilation: tuple) -> tuple:
    """PyTorch's ``padding='same'``: ``d (k - 1)`` in all, the odd one at the end, per dim."""
    return tuple(((d * (k - 1)) // 2, d * (k - 1) - (d * (k - 1)) // 2)
                 for k, d in zip(kernel, dilation))


def _padding(padding, n: int, stride: tuple, kernel: tuple, dilation: tuple) -> tuple:
    """``padding`` (int, tuple, 'valid' or 'same') as ``n`` (before, after) pairs."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * n
        if padding != "same":
            raise ValueError(f"Invalid padding string '{padding}', should be one of "
                             "{'valid', 'same'}")
        if any(s != 1 for s in stride):
            raise ValueError("padding='same' is not supported for strided convolutions")
        return same_padding(kernel, dilation)
    pads = _tuple(padding, n, "padding")
    if any(p < 0 for p in pads):
        raise RuntimeError("negative padding is not supported")
    return tuple((p, p) for p in pads)


def _check_common(input: Tensor, weight: Tensor, bias: Optional[Tensor], n: int, fn: str,
                  stride: tuple, dilation: tuple, groups: int) -> bool:
    """Shape checks shared by the convolutions; returns whether ``input`` is batched."""
    for name, t in (("input", input), ("weight", weight), ("bias", bias)):
        if t is not None and not isinstance(t, Tensor):
            raise TypeError(f"{fn}(): argument '{name}' must be Tensor, not {type(t).__name__}")
    if input.ndim not in (n + 1, n + 2):
        raise RuntimeError(f"Expected {n + 1}D (unbatched) or {n + 2}D (batched) input to {fn}, "
                           f"but got input of size: {_size(input.shape)}")
    if weight.ndim != n + 2:
        raise RuntimeError(f"Expected {n + 2}D weight for {fn}, but got weight of size "
                           f"{_size(weight.shape)}")
    for t in (weight, bias):
        if t is not None and t.dtype != input.dtype:
            raise RuntimeError(f"{fn}: input ({input.dtype}) and weight/bias ({t.dtype}) must "
                               "have the same dtype")
    if not isinstance(groups, int) or groups <= 0:
        raise RuntimeError("non-positive groups is not supported")
    if any(s <= 0 for s in stride):
        raise RuntimeError("non-positive stride is not supported")
    if any(d <= 0 for d in dilation):
        raise RuntimeError("dilation should be greater than zero")
    return input.ndim == n + 2


def _check_bias(bias: Optional[Tensor], channels: int, weight: Tensor) -> None:
    if bias is not None and tuple(bias.shape) != (channels,):
        raise RuntimeError(f"Given weight of size {_size(weight.shape)}, expected bias to be "
                           f"1-dimensional with {channels} elements, but got bias of size "
                           f"{_size(bias.shape)} instead")


def _as_2d(input: Tensor, weight: Tensor, n: int, batched: bool):
    """A 1-d call as a 2-d one (height 1), an unbatched input with a batch of one."""
    if not batched:
        input = input.unsqueeze(0)
    if n == 1:
        input, weight = input.unsqueeze(2), weight.unsqueeze(2)
    return input, weight


def _from_2d(out: Tensor, n: int, batched: bool) -> Tensor:
    if n == 1:
        out = out.squeeze(2)
    return out if batched else out.squeeze(0)


def _check_weight_groups(weight: Tensor, groups: int) -> None:
    """The weight's first dimension splits into ``groups``, or PyTorch's error."""
    if weight.shape[0] % groups:
        raise RuntimeError(f"Given groups={groups}, expected weight to be divisible by {groups} "
                           f"at dimension 0, but got weight of size {_size(weight.shape)} "
                           "instead")


def _shown_shape(input: Tensor, batched: bool) -> str:
    """The input's shape as PyTorch's errors show it (batched)."""
    return _size(input.shape if batched else (1,) + tuple(input.shape))


def _conv(input: Tensor, weight: Tensor, bias: Optional[Tensor], stride, padding, dilation,
          groups: int, n: int, fn: str) -> Tensor:
    if _autocast.on:  # on autocast's lower-precision list, as in PyTorch
        input, weight, bias = autocast_state.lower(input, weight, bias)
    stride, dilation = _tuple(stride, n, "stride"), _tuple(dilation, n, "dilation")
    batched = _check_common(input, weight, bias, n, fn, stride, dilation, groups)
    kernel = tuple(weight.shape[2:])
    pads = _padding(padding, n, stride, kernel, dilation)
    out_channels, in_per_group = weight.shape[:2]
    _check_weight_groups(weight, groups)
    channels = input.shape[1 if batched else 0]
    if channels != in_per_group * groups:
        raise RuntimeError(f"Given groups={groups}, weight of size {_size(weight.shape)}, "
                           f"expected input{_shown_shape(input, batched)} to have "
                           f"{in_per_group * groups} channels, but got {channels} channels "
                           "instead")
    _check_bias(bias, out_channels, weight)
    spatial = tuple(input.shape[-n:])
    padded = tuple(s + lo + hi for s, (lo, hi) in zip(spatial, pads))
    reach = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    if any(r > p for r, p in zip(reach, padded)):
        raise RuntimeError(f"Calculated padded input size per channel: "
                           f"({' x '.join(map(str, padded))}). Kernel size: "
                           f"({' x '.join(map(str, reach))}). Kernel size can't be greater "
                           "than actual input size")
    x, w = _as_2d(input, weight, n, batched)
    if n == 1:
        stride, dilation, pads = (1,) + stride, (1,) + dilation, ((0, 0),) + pads
    if fused_enabled("conv", x, w, bias):
        out = kernels.conv.apply(x, w, bias, stride, pads, dilation, groups)
    else:
        out = references.conv2d(x, w, bias, stride, pads, dilation, groups)
    return _from_2d(out, n, batched)


def conv1d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None,
           stride: _IntOrTuple = 1, padding: Union[_IntOrTuple, str] = 0,
           dilation: _IntOrTuple = 1, groups: int = 1) -> Tensor:
    """1-d convolution (cross-correlation) over ``(N, C_in, L)`` or ``(C_in, L)``.

    Args:
        input: ``(N, C_in, L)`` or unbatched ``(C_in, L)``.
        weight: ``(C_out, C_in / groups, k)``.
        bias: ``(C_out,)`` or None.
        stride, dilation: an int or a 1-tuple.
        padding: an int, a 1-tuple, ``'valid'`` (none) or ``'same'`` (output length = input
            length; stride 1 only, the odd pad at the end).
        groups: split the channels into this many independent convolutions.

    Returns:
        ``(N, C_out, L_out)``, ``L_out = (L + 2p - d (k - 1) - 1) // s + 1``.

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> F.conv1d(mg.ones(1, 2, 5), mg.ones(3, 2, 3), padding="same").shape
        (1, 3, 5)
    """
    return _conv(input, weight, bias, stride, padding, dilation, groups, 1, "conv1d")


def conv2d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None,
           stride: _IntOrTuple = 1, padding: Union[_IntOrTuple, str] = 0,
           dilation: _IntOrTuple = 1, groups: int = 1) -> Tensor:
    """2-d convolution (cross-correlation) over ``(N, C_in, H, W)`` or ``(C_in, H, W)``.

    Args:
        input: ``(N, C_in, H, W)`` or unbatched ``(C_in, H, W)``.
        weight: ``(C_out, C_in / groups, kh, kw)``.
        bias: ``(C_out,)`` or None.
        stride, dilation: an int or a pair.
        padding: an int, a pair, ``'valid'`` or ``'same'`` (stride 1 only).
        groups: split the channels into this many independent convolutions (``groups =
            C_in`` is a depthwise convolution).

    Returns:
        ``(N, C_out, H_out, W_out)``, ``H_out = (H + 2p - d (kh - 1) - 1) // s + 1``.

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> F.conv2d(mg.ones(1, 1, 4, 4), mg.ones(2, 1, 3, 3), stride=2, padding=1).shape
        (1, 2, 2, 2)
    """
    return _conv(input, weight, bias, stride, padding, dilation, groups, 2, "conv2d")


def _conv_transpose(input: Tensor, weight: Tensor, bias: Optional[Tensor], stride, padding,
                    output_padding, groups: int, dilation, n: int, fn: str) -> Tensor:
    if _autocast.on:
        input, weight, bias = autocast_state.lower(input, weight, bias)
    stride, dilation = _tuple(stride, n, "stride"), _tuple(dilation, n, "dilation")
    if isinstance(padding, str):
        raise ValueError(f"{fn}: padding must be an int or a tuple of ints, got '{padding}'")
    pads = _tuple(padding, n, "padding")
    out_pads = _tuple(output_padding, n, "output_padding")
    batched = _check_common(input, weight, bias, n, fn, stride, dilation, groups)
    if any(p < 0 for p in pads):
        raise RuntimeError("negative padding is not supported")
    if any(op < 0 or (op >= s and op >= d) for op, s, d in zip(out_pads, stride, dilation)):
        raise RuntimeError(f"output padding must be smaller than either stride or dilation, "
                           f"but got output_padding={out_pads}, stride={stride}, "
                           f"dilation={dilation}")
    in_channels, out_per_group = weight.shape[:2]
    _check_weight_groups(weight, groups)
    channels = input.shape[1 if batched else 0]
    if channels != in_channels:
        raise RuntimeError(f"Given transposed=1, weight of size {_size(weight.shape)}, "
                           f"expected input{_shown_shape(input, batched)} to have "
                           f"{in_channels} channels, but got {channels} channels instead")
    _check_bias(bias, out_per_group * groups, weight)
    kernel = tuple(weight.shape[2:])
    out_size = tuple((s - 1) * st - 2 * p + d * (k - 1) + op + 1 for s, st, p, d, k, op
                     in zip(input.shape[-n:], stride, pads, dilation, kernel, out_pads))
    if any(o <= 0 for o in out_size):
        raise RuntimeError(f"{fn}: the output size {out_size} is too small (input "
                           f"{_size(input.shape)}, kernel {kernel}, stride {stride}, padding "
                           f"{pads}, dilation {dilation})")
    x, w = _as_2d(input, weight, n, batched)
    if n == 1:
        stride, dilation = (1,) + stride, (1,) + dilation
        pads, out_pads = (0,) + pads, (0,) + out_pads
    if fused_enabled("conv", x, w, bias):
        out = kernels.conv.apply_transpose(x, w, bias, stride, pads, out_pads, dilation, groups)
    else:
        out = references.conv_transpose2d(x, w, bias, stride, pads, out_pads, dilation, groups)
    return _from_2d(out, n, batched)


def conv_transpose1d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None,
                     stride: _IntOrTuple = 1, padding: _IntOrTuple = 0,
                     output_padding: _IntOrTuple = 0, groups: int = 1,
                     dilation: _IntOrTuple = 1) -> Tensor:
    """1-d transposed convolution (the input gradient of :func:`conv1d`).

    Args:
        input: ``(N, C_in, L)`` or unbatched ``(C_in, L)``.
        weight: ``(C_in, C_out / groups, k)``.
        bias: ``(C_out,)`` or None.
        stride, padding, output_padding, dilation: ints or 1-tuples; ``output_padding`` (added
            at the end) must be smaller than the stride or the dilation.
        groups: independent channel groups.

    Returns:
        ``(N, C_out, L_out)``, ``L_out = (L - 1) s - 2p + d (k - 1) + output_padding + 1``.

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> F.conv_transpose1d(mg.ones(1, 2, 4), mg.ones(2, 3, 3), stride=2).shape
        (1, 3, 9)
    """
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups,
                           dilation, 1, "conv_transpose1d")


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None,
                     stride: _IntOrTuple = 1, padding: _IntOrTuple = 0,
                     output_padding: _IntOrTuple = 0, groups: int = 1,
                     dilation: _IntOrTuple = 1) -> Tensor:
    """2-d transposed convolution (the input gradient of :func:`conv2d`; "deconvolution").

    Args:
        input: ``(N, C_in, H, W)`` or unbatched ``(C_in, H, W)``.
        weight: ``(C_in, C_out / groups, kh, kw)``.
        bias: ``(C_out,)`` or None.
        stride, padding, output_padding, dilation: ints or pairs; ``output_padding`` (added at
            the bottom and right) must be smaller than the stride or the dilation.
        groups: independent channel groups.

    Returns:
        ``(N, C_out, H_out, W_out)``,
        ``H_out = (H - 1) s - 2p + d (kh - 1) + output_padding + 1``.

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> F.conv_transpose2d(mg.ones(1, 2, 3, 3), mg.ones(2, 4, 2, 2), stride=2).shape
        (1, 4, 6, 6)
    """
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups,
                           dilation, 2, "conv_transpose2d")


def pad(input: Tensor, pad: Sequence[int], mode: str = "constant",
        value: Optional[float] = None) -> Tensor:
    """Pad the last ``len(pad) // 2`` dimensions of ``input``, with gradient.

    Args:
        input: any tensor (reflect, replicate and circular pad the last 1, 2 or 3 dimensions of
            an input with one or two more dimensions: ``(C, W)``/``(N, C, W)`` and so on).
        pad: ``(before_last, after_last, before_second_last, after_second_last, ...)``;
            constant padding may be negative (it crops).
        mode: ``'constant'`` (``value``), ``'reflect'`` (the mirror image without the edge),
            ``'replicate'`` (the edge repeated) or ``'circular'`` (the other end).
        value: the fill of constant padding (default 0).

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> F.pad(mg.tensor([1.0, 2.0]), (1, 2), value=-1.0)
        tensor([-1.,  1.,  2., -1., -1.])
    """
    pad = tuple(pad)
    if len(pad) % 2:
        raise RuntimeError("Padding length must be divisible by 2")
    if len(pad) // 2 > input.ndim:
        raise RuntimeError("Padding length should be less than or equal to two times the "
                           "input dimension but got padding length "
                           f"{len(pad)} and input of dimension {input.ndim}")
    if mode not in PADDING_MODES:
        raise NotImplementedError(f"Unrecognised padding mode {mode}")
    if mode == "constant":
        return references.pad(input, pad, mode, 0.0 if value is None else float(value))
    if value is not None and value != 0:
        raise RuntimeError(f'Padding mode "{mode}" doesn\'t take in value argument')
    dims = len(pad) // 2
    if dims > 3 or input.ndim not in (dims + 1, dims + 2):
        raise NotImplementedError(f"Padding size {len(pad)} is not supported for {input.ndim}D "
                                  "input tensor. Supported combinations for non-constant "
                                  "padding: 2 for 2D or 3D input, 4 for 3D or 4D input, 6 for "
                                  "4D or 5D input")
    for i in range(dims):
        dim = input.ndim - 1 - i
        lo, hi, size = pad[2 * i], pad[2 * i + 1], input.shape[dim]
        if min(lo, hi) < 0:
            raise RuntimeError(f"negative padding {pad} is only supported in constant mode")
        if mode == "reflect" and max(lo, hi) >= size:
            raise RuntimeError(f"Padding size should be less than the corresponding input "
                               f"dimension, but got: padding ({lo}, {hi}) at dimension {dim} "
                               f"of input {_size(input.shape)}")
        if mode == "circular" and max(lo, hi) > size:
            raise RuntimeError("Padding value causes wrapping around more than once.")
        if mode == "replicate" and size == 0 and max(lo, hi) > 0:
            raise RuntimeError(f"padding of dimension {dim} of size 0 in replicate mode: "
                               f"input of size {_size(input.shape)}")
    return references.pad(input, pad, mode, 0.0)
