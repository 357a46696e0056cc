"""The building blocks of Llama-style decoders: RMS normalisation, SiLU and the SwiGLU gate.

``F.rms_norm`` / ``nn.RMSNorm`` follow PyTorch (``eps=None`` means the input dtype's machine
epsilon); ``F.silu`` / ``nn.SiLU`` are ``x * sigmoid(x)``; :func:`swiglu` is the gated MLP
activation ``silu(gate) * up`` that Llama's feed-forward block applies before ``down_proj``.

Example:
    >>> import minigrad as mg
    >>> from minigrad import nn
    >>> norm = nn.RMSNorm(4, eps=1e-6)
    >>> norm
    RMSNorm((4,), eps=1e-06, elementwise_affine=True)
    >>> y = norm(mg.tensor([[2.0, -2.0, 2.0, -2.0]]))
    >>> [round(v, 4) for v in y.tolist()[0]]
    [1.0, -1.0, 1.0, -1.0]
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np

from minigrad import autocast_state, kernels, references
from minigrad.autocast_state import state as _autocast
from minigrad.fused import fused_enabled
from minigrad.nn import init
from minigrad.nn.module import Module, Parameter
from minigrad.tensor import Tensor, empty

__all__ = ["RMSNorm", "SiLU", "rms_norm", "silu", "swiglu"]

_Shape = Union[int, Sequence[int]]


def _trailing(input: Tensor, normalized_shape: _Shape, fn: str) -> tuple[tuple, tuple]:
    """``normalized_shape`` as a tuple and the trailing dims it covers, checked."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    shape = tuple(int(s) for s in shape)
    if not shape or tuple(input.shape[input.ndim - len(shape):]) != shape:
        raise RuntimeError(
            f"{fn}: input of shape {list(input.shape)} does not end with normalized_shape "
            f"{list(shape)}"
        )
    return shape, tuple(range(input.ndim - len(shape), input.ndim))


def rms_norm(input: Tensor, normalized_shape: _Shape, weight: Optional[Tensor] = None,
             eps: Optional[float] = None) -> Tensor:
    """Root-mean-square normalisation over the trailing ``normalized_shape`` dims (PyTorch's).

    ``y = x / sqrt(mean(x**2) + eps) * weight``: no centring, no bias.

    Args:
        input: ``(*, *normalized_shape)``.
        normalized_shape: the trailing shape to normalise over (an int for the last dim).
        weight: of shape ``normalized_shape``, or None.
        eps: added to the mean square; None means the machine epsilon of the input's dtype.

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> F.rms_norm(mg.tensor([[3.0, 4.0]]), (2,), eps=0.0)
        tensor([[0.8485, 1.1314]])
    """
    if _autocast.on:  # float32 on CUDA; on the CPU the weight follows the input's dtype
        input, weight = autocast_state.fp32(input, weight)
    shape, dims = _trailing(input, normalized_shape, "rms_norm")
    if weight is not None and tuple(weight.shape) != shape:
        raise RuntimeError(
            f"rms_norm: expected weight of shape {list(shape)}, got {list(weight.shape)}"
        )
    if eps is None:
        eps = float(np.finfo(input.dtype).eps)
    if fused_enabled("rms_norm", input, weight):  # use_fused on + a kernel for device/dtype
        return kernels.rms_norm.apply(input, shape, weight, eps)
    return references.rms_norm(input, dims, weight, eps)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """``x * sigmoid(x)`` (the swish), elementwise. ``inplace`` is accepted and ignored.

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> F.silu(mg.tensor([0.0, 1.0]))
        tensor([0.0000, 0.7311])
    """
    return input * input.sigmoid()


def swiglu(gate: Tensor, up: Tensor) -> Tensor:
    """``silu(gate) * up``: the gated activation of a SwiGLU feed-forward block.

    Example:
        >>> import minigrad as mg
        >>> swiglu(mg.tensor([1.0]), mg.tensor([2.0]))
        tensor([1.4621])
    """
    if gate.shape == up.shape and fused_enabled("swiglu", gate, up):
        return kernels.swiglu.apply(gate, up)
    return references.swiglu(gate, up)


class RMSNorm(Module):
    """Root-mean-square layer normalisation over the trailing ``normalized_shape`` dims.

    ``y = x / sqrt(mean(x**2) + eps) * weight`` (PyTorch's ``nn.RMSNorm``).

    Args:
        normalized_shape: the trailing shape (an int for the last dim).
        eps: added to the mean square; None: the input dtype's machine epsilon.
        elementwise_affine: learn a ``weight`` (ones at first).

    Example:
        >>> import minigrad as mg
        >>> RMSNorm(8)(mg.randn(2, 8)).shape
        (2, 8)
    """

    _mixed_dtypes_ok = True  # PyTorch's rms_norm promotes a float64 input; so does this

    def __init__(self, normalized_shape: _Shape, eps: Optional[float] = None,
                 elementwise_affine: bool = True, device=None, dtype=None):
        super().__init__()
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(int(s) for s in normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(empty(self.normalized_shape, dtype=dtype, device=device))
        else:
            self.register_parameter("weight", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Weight to ones."""
        if self.weight is not None:
            init.ones_(self.weight)

    def forward(self, input: Tensor) -> Tensor:
        return rms_norm(input, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class SiLU(Module):
    """``x * sigmoid(x)`` elementwise.

    Example:
        >>> import minigrad as mg
        >>> SiLU()(mg.tensor([0.0]))
        tensor([0.])
    """

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return silu(input)
