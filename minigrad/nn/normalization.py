"""Batch and group normalisation, with PyTorch's names, arguments, buffers and numbers.

``F.batch_norm`` and ``nn.BatchNorm1d/2d``: in training, each channel is normalised with the
batch's mean and biased variance (over the batch and every spatial position), and the running
averages are updated with the *unbiased* variance (``n / (n - 1)``), as PyTorch does; in
evaluation the running statistics normalise. ``momentum=None`` makes the running statistics a
cumulative average (factor ``1 / num_batches_tracked``). ``F.group_norm`` and ``nn.GroupNorm``
normalise groups of channels per sample.

Training-mode batch norm dispatches like every fused op: the kernel (``kernels/batch_norm.py``)
or its composite reference (``references.batch_norm``). Evaluation mode is a per-channel affine
map, a composite. Group norm is a layer norm over ``(N, G, C / G * L)`` rows (the fused layer
norm kernel or its reference) followed by the per-channel affine map.

Example:
    >>> import minigrad as mg
    >>> from minigrad import nn
    >>> bn = nn.BatchNorm2d(3)
    >>> sorted(bn.state_dict())
    ['bias', 'num_batches_tracked', 'running_mean', 'running_var', 'weight']
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from minigrad import autocast_state, kernels, ops, references
from minigrad.autocast_state import state as _autocast
from minigrad.autograd import no_grad
from minigrad.fused import fused_enabled
from minigrad.nn import init
from minigrad.nn.module import Module, Parameter
from minigrad.tensor import Tensor, empty, ones, tensor, zeros

__all__ = ["batch_norm", "group_norm", "BatchNorm1d", "BatchNorm2d", "GroupNorm"]


def _channel_shape(input: Tensor) -> tuple:
    """(1, C, 1, ...) : a per-channel vector's shape broadcast against the input."""
    return (1, input.shape[1]) + (1,) * (input.ndim - 2)


def _check_channels(fn: str, input: Tensor, name: str, t: Optional[Tensor]) -> None:
    if t is not None and tuple(t.shape) != (input.shape[1],):
        raise RuntimeError(
            f"{fn}: expected {name} of shape ({input.shape[1]},) for an input with "
            f"{input.shape[1]} channels (input shape {tuple(input.shape)}), got "
            f"{tuple(t.shape)}")


def batch_norm(input: Tensor, running_mean: Optional[Tensor], running_var: Optional[Tensor],
               weight: Optional[Tensor] = None, bias: Optional[Tensor] = None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch normalisation of ``(N, C, *)`` per channel.

    Args:
        input: ``(N, C)`` or ``(N, C, *)``.
        running_mean, running_var: ``(C,)`` buffers; in training they are updated in place
            (``new = (1 - momentum) * old + momentum * batch``, the variance unbiased); in
            evaluation they normalise. None in training: batch statistics only.
        weight, bias: ``(C,)`` affine parameters or None.
        training: normalise with the batch's statistics.
        momentum: the running averages' factor.
        eps: added to the variance.

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> F.batch_norm(mg.tensor([[1.0], [3.0]]), None, None, training=True)
        tensor([[-1.0000],
                [ 1.0000]])
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"batch_norm(): argument 'input' must be a Tensor, not "
                        f"{type(input).__name__}")
    if input.ndim < 2:
        raise ValueError(f"batch_norm: expected an input of shape (N, C, *), got "
                         f"{tuple(input.shape)}")
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        _check_channels("batch_norm", input, name, t)
    N, C = input.shape[:2]
    if not training:
        if running_mean is None or running_var is None:
            raise RuntimeError("batch_norm: running_mean and running_var must be defined in "
                               "evaluation mode")
        # a per-channel affine map: y = x * scale + shift (1/sqrt, not ops.rsqrt: that is on
        # CUDA autocast's float32 list, batch_norm is not)
        scale = 1 / ops.sqrt(running_var.detach().to(input.dtype) + eps)
        if weight is not None:
            scale = scale * weight
        shift = -running_mean.detach().to(input.dtype) * scale
        if bias is not None:
            shift = shift + bias
        shape = _channel_shape(input)
        return input * scale.reshape(shape) + shift.reshape(shape)

    per_channel = input.data.size // C if C else 0
    if per_channel <= 1:
        raise ValueError(f"Expected more than 1 value per channel when training, got input "
                         f"size {tuple(input.shape)}")
    x = input.reshape(N, C, -1)
    if fused_enabled("batch_norm", x, weight, bias):
        y, mean, var = kernels.batch_norm.apply(x, weight, bias, eps)
    else:
        y, mean, var = references.batch_norm(x, weight, bias, eps)
    if running_mean is not None or running_var is not None:
        _update_running(running_mean, running_var, mean, var, per_channel, momentum)
    return y.reshape(input.shape)


def _update_running(running_mean, running_var, mean: Tensor, var: Tensor, n: int,
                    momentum: float) -> None:
    """The running averages, updated in place with the batch's mean and unbiased variance."""
    with no_grad():
        if running_mean is not None:
            rm = running_mean.data
            rm *= 1 - momentum
            rm += (mean.data * momentum).astype(rm.dtype, copy=False)
        if running_var is not None:
            rv = running_var.data
            rv *= 1 - momentum
            rv += (var.data * (momentum * n / (n - 1))).astype(rv.dtype, copy=False)


def group_norm(input: Tensor, num_groups: int, weight: Optional[Tensor] = None,
               bias: Optional[Tensor] = None, eps: float = 1e-5) -> Tensor:
    """Normalise each sample's channels in ``num_groups`` groups, then a per-channel affine.

    Args:
        input: ``(N, C, *)``.
        num_groups: how many groups the C channels split into (it must divide C).
        weight, bias: ``(C,)`` or None.
        eps: added to the variance.

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> F.group_norm(mg.tensor([[1.0, 3.0]]), 1)
        tensor([[-1.0000,  1.0000]])
    """
    if input.ndim < 2:
        raise ValueError(f"group_norm: expected an input of shape (N, C, *), got "
                         f"{tuple(input.shape)}")
    if _autocast.on:  # float32 on CUDA; on the CPU the parameters follow the input's dtype
        input, weight, bias = autocast_state.fp32(input, weight, bias)
    N, C = input.shape[:2]
    if num_groups <= 0 or C % num_groups:
        raise ValueError(f"group_norm: expected number of channels in input ({C}) to be "
                         f"divisible by num_groups ({num_groups}), input shape "
                         f"{tuple(input.shape)}")
    for name, t in (("weight", weight), ("bias", bias)):
        _check_channels("group_norm", input, name, t)
    rows = input.reshape(N, num_groups, -1)
    D = rows.shape[-1]
    if fused_enabled("layer_norm", rows):
        out = kernels.layer_norm.apply(rows, (D,), None, None, eps)
    else:
        out = references.layer_norm(rows, (-1,), None, None, eps)
    out = out.reshape(input.shape)
    shape = _channel_shape(input)
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


# ---------------------------------------------------------------------------- modules


def _affine_parameters(module: Module, n: int, affine: bool, bias: bool, device, dtype) -> None:
    """``weight`` and ``bias`` of shape (n,) (``bias`` only with ``bias=True``), or None."""
    has_weight, has_bias = affine, affine and bias
    module.register_parameter(
        "weight", Parameter(empty(n, dtype=dtype, device=device)) if has_weight else None)
    module.register_parameter(
        "bias", Parameter(empty(n, dtype=dtype, device=device)) if has_bias else None)


def _reset_affine(module: Module) -> None:
    if module.weight is not None:
        init.ones_(module.weight)
    if module.bias is not None:
        init.zeros_(module.bias)


class _BatchNorm(Module):
    """What BatchNorm1d and BatchNorm2d share (they differ in the input ranks they accept)."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: Optional[float] = 0.1,
                 affine: bool = True, track_running_stats: bool = True, device=None,
                 dtype=None, *, bias: bool = True):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        _affine_parameters(self, num_features, affine, bias, device, dtype)
        if track_running_stats:
            self.register_buffer("running_mean", zeros(num_features, dtype=dtype,
                                                       device=device))
            self.register_buffer("running_var", ones(num_features, dtype=dtype, device=device))
            self.register_buffer("num_batches_tracked",
                                 tensor(0, dtype=np.int64, device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        """Running mean 0, running variance 1, no batches tracked."""
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    def reset_parameters(self) -> None:
        """The running statistics reset, weight 1, bias 0."""
        self.reset_running_stats()
        _reset_affine(self)

    def _check_input_dim(self, input: Tensor) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        if input.shape[1] != self.num_features:
            raise ValueError(
                f"{type(self).__name__}({self.num_features}): expected input with "
                f"{self.num_features} channels (dim 1), got input of shape "
                f"{tuple(input.shape)}")
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data += 1
            if self.momentum is None:  # a cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked.data)
        use_batch = self.training or (self.running_mean is None and self.running_var is None)
        track = not self.training or self.track_running_stats
        return batch_norm(input, self.running_mean if track else None,
                          self.running_var if track else None, self.weight, self.bias,
                          use_batch, factor, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of ``(N, C)`` or ``(N, C, L)`` per channel (see
    :func:`minigrad.nn.functional.batch_norm`).

    Args:
        num_features: C.
        eps: added to the variance.
        momentum: the running averages' factor; None for a cumulative average.
        affine: learn ``weight`` (ones) and ``bias`` (zeros).
        bias: with ``affine``, learn ``bias`` too (keyword only).
        track_running_stats: keep ``running_mean``, ``running_var`` and
            ``num_batches_tracked`` (int64) buffers and use them in evaluation; without,
            batch statistics are used in both modes.

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> nn.BatchNorm1d(4)(mg.randn(8, 4)).shape
        (8, 4)
    """

    def _check_input_dim(self, input: Tensor) -> None:
        if input.ndim not in (2, 3):
            raise ValueError(f"expected 2D or 3D input (got {input.ndim}D input of shape "
                             f"{tuple(input.shape)})")


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of ``(N, C, H, W)`` per channel (arguments as
    :class:`BatchNorm1d`).

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> nn.BatchNorm2d(3)(mg.randn(2, 3, 4, 4)).shape
        (2, 3, 4, 4)
    """

    def _check_input_dim(self, input: Tensor) -> None:
        if input.ndim != 4:
            raise ValueError(f"expected 4D input (got {input.ndim}D input of shape "
                             f"{tuple(input.shape)})")


class GroupNorm(Module):
    """Group normalisation (see :func:`minigrad.nn.functional.group_norm`).

    Args:
        num_groups: groups the channels split into.
        num_channels: C (divisible by ``num_groups``).
        eps: added to the variance.
        affine: learn a per-channel ``weight`` (ones) and ``bias`` (zeros).
        bias: with ``affine``, learn ``bias`` too (keyword only).

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> nn.GroupNorm(2, 4)(mg.randn(3, 4, 5)).shape
        (3, 4, 5)
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, device=None, dtype=None, *, bias: bool = True):
        super().__init__()
        if num_channels % num_groups:
            raise ValueError("num_channels must be divisible by num_groups")
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        _affine_parameters(self, num_channels, affine, bias, device, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Weight 1, bias 0."""
        _reset_affine(self)

    def forward(self, input: Tensor) -> Tensor:
        return group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")


