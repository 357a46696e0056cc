"""More of ``nn.functional`` with PyTorch's semantics: the activations ``leaky_relu``, ``elu``,
``mish``, ``hardtanh``, ``prelu``; channel dropout ``dropout1d``/``dropout2d``; and
``normalize``, ``cosine_similarity``, ``kl_div``. All are composites of ops (no backward to
write); ``nn.functional`` re-exports them.

``inplace`` arguments are accepted for PyTorch's signatures and ignored: the result is a new
tensor with the same values and gradients.
"""

from __future__ import annotations

from typing import Optional

from minigrad import autocast_state, backend, ops
from minigrad.autocast_state import state as _autocast
from minigrad.ops.elementwise import ExpFn, Log1pFn
from minigrad.ops.norms import vector_norm
from minigrad.tensor import Tensor

__all__ = [
    "cosine_similarity", "dropout1d", "dropout2d", "elu", "hardtanh", "kl_div", "leaky_relu",
    "mish", "normalize", "prelu",
]


def _const(value, like: Tensor) -> Tensor:
    return Tensor._make(like.xp.asarray(value, dtype=like.dtype))


# ---------------------------------------------------------------------------- activations


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x where x > 0, else ``negative_slope * x`` (the slope also at x = 0, as PyTorch).

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> F.leaky_relu(mg.tensor([-2.0, 3.0]), 0.1)
        tensor([-0.2000,  3.0000])
    """
    return ops.where(input.detach() > 0, input, input * negative_slope)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x where x > 0, else ``alpha * (exp(x) - 1)``.

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> F.elu(mg.tensor([0.0, 2.0]))
        tensor([0., 2.])
    """
    # NOTE: exp of min(x, 0): the branch not taken must stay finite, or its zero gradient
    # times exp(large x) = inf would give nan. ExpFn, not ops.exp: exp is on CUDA autocast's
    # float32 list, elu is not (PyTorch keeps its dtype)
    negative = (ExpFn.apply(ops.minimum(input, 0)) - 1) * alpha
    return ops.where(input.detach() > 0, input, negative)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """``x * tanh(softplus(x))``, with softplus in its stable form.

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> F.mish(mg.tensor([0.0, 1.0]))
        tensor([0.0000, 0.8651])
    """
    # NOTE: softplus(x) = max(x, 0) + log1p(exp(-|x|)) never overflows; the Functions, not
    # ops.exp/log1p, which CUDA autocast runs in float32 (mish keeps its dtype in PyTorch)
    softplus = ops.maximum(input, 0) + Log1pFn.apply(ExpFn.apply(-ops.abs(input)))
    return input * ops.tanh(softplus)


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0,
             inplace: bool = False) -> Tensor:
    """x clipped to ``[min_val, max_val]``; the gradient is 1 strictly inside, 0 elsewhere
    (at the bounds too, as PyTorch's).

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> F.hardtanh(mg.tensor([-3.0, 0.5, 3.0]))
        tensor([-1.0000,  0.5000,  1.0000])
    """
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    x = input.detach()
    inside = (x > min_val) & (x < max_val)
    return ops.where(inside, input, ops.clamp(x, min_val, max_val))


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """x where x > 0, else ``weight * x``; ``weight`` has one slope, or one per channel
    (dimension 1 of the input).

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> F.prelu(mg.tensor([[-1.0, 2.0]]), mg.tensor([0.25]))
        tensor([[-0.2500,  2.0000]])
    """
    if weight.numel() != 1:
        if input.ndim < 2 or weight.numel() != input.shape[1]:
            raise RuntimeError(
                f"Mismatch of parameter numbers and input channel size. Found parameter "
                f"numbers = {weight.numel()} and channel size = "
                f"{input.shape[1] if input.ndim >= 2 else 1}."
            )
        weight = ops.reshape(weight, (1, -1) + (1,) * (input.ndim - 2))
    elif weight.ndim:
        weight = ops.reshape(weight, ())
    return ops.where(input.detach() > 0, input, input * weight)


# ---------------------------------------------------------------------------- channel dropout


def _channel_dropout(input: Tensor, p: float, training: bool, batched_ndim: int,
                     name: str) -> Tensor:
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if input.ndim not in (batched_ndim - 1, batched_ndim):
        raise RuntimeError(
            f"{name}: Expected {batched_ndim - 1}D or {batched_ndim}D input, but received a "
            f"{input.ndim}D input"
        )
    if not training or p == 0.0:
        return input
    # one draw per channel: (N, C, 1, ...) or (C, 1, ...), broadcast over the positions
    channels = input.ndim - (batched_ndim - 2)
    shape = tuple(input.shape[:channels]) + (1,) * (input.ndim - channels)
    if p == 1.0:
        return input * _const(0.0, input)
    keep = backend.random_uniform(input.device, shape, input.dtype) >= p
    mask = keep.astype(input.dtype) * input.dtype.type(1.0 / (1.0 - p))
    return input * Tensor._make(mask)


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Zero whole channels of a ``(N, C, L)`` or ``(C, L)`` input with probability ``p``,
    scaling the kept ones by ``1 / (1 - p)``.

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> F.dropout1d(mg.ones(1, 2, 3), training=False).shape
        (1, 2, 3)
    """
    return _channel_dropout(input, p, training, 3, "dropout1d")


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Zero whole channels of a ``(N, C, H, W)`` or ``(C, H, W)`` input with probability
    ``p``, scaling the kept ones by ``1 / (1 - p)``.

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> F.dropout2d(mg.ones(1, 2, 3, 3), training=False).shape
        (1, 2, 3, 3)
    """
    return _channel_dropout(input, p, training, 4, "dropout2d")


# ---------------------------------------------------------------------------- similarity


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12,
              out: Optional[Tensor] = None) -> Tensor:
    """``x / max(||x||_p, eps)`` along ``dim``.

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> F.normalize(mg.tensor([[3.0, 4.0]]))
        tensor([[0.6000, 0.8000]])
    """
    if out is not None:
        raise NotImplementedError("normalize: out= is not supported")
    norm = vector_norm(input, p, dim, keepdim=True)
    return input / ops.clamp(norm, min=eps)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """``sum(x1 * x2) / (max(||x1||, eps) * max(||x2||, eps))`` along ``dim``, the inputs
    broadcast to one shape.

    As in PyTorch, the norms are clamped to ``eps`` outside the graph: the gradient treats
    them as the plain norms.

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> F.cosine_similarity(mg.tensor([[1.0, 0.0]]), mg.tensor([[1.0, 1.0]]))
        tensor([0.7071])
    """
    if _autocast.on:  # on CUDA autocast's float32 list
        x1, x2 = autocast_state.fp32_cuda(x1, x2)
    shape = _broadcast(x1.shape, x2.shape)
    x1, x2 = ops.expand(x1, shape), ops.expand(x2, shape)

    def unit(x: Tensor) -> Tensor:
        n = vector_norm(x, 2, dim, keepdim=True)
        d = n.detach()
        # NOTE: the clamp is a constant shift, so the gradient flows through n unchanged
        return x / (n + Tensor._make(x.xp.maximum(d.data, eps) - d.data))

    return ops.sum(unit(x1) * unit(x2), dim)


def _broadcast(a: tuple, b: tuple) -> tuple:
    """The shape two shapes broadcast to (NumPy's rule)."""
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + tuple(a), (1,) * (n - len(b)) + tuple(b)
    out = []
    for i, j in zip(a, b):
        if i != j and 1 not in (i, j):
            raise RuntimeError(f"The size of tensor a ({i}) must match the size of tensor b "
                               f"({j}) at non-singleton dimension")
        out.append(j if i == 1 else i)
    return tuple(out)


def kl_div(input: Tensor, target: Tensor, size_average=None, reduce=None,
           reduction: str = "mean", log_target: bool = False) -> Tensor:
    """Kullback-Leibler divergence with ``input`` as log-probabilities:
    ``target * (log(target) - input)`` (0 where target is 0), or with ``log_target``
    ``exp(target) * (target - input)``.

    ``reduction='batchmean'`` (the true KL divergence per example) divides the sum by the
    batch size; ``'mean'`` divides by the number of elements, as PyTorch's default does.

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> F.kl_div(mg.tensor([0.5, 0.5]).log(), mg.tensor([0.5, 0.5]), reduction="sum")
        tensor(0.)
    """
    if size_average is not None or reduce is not None:
        if reduce is False:
            reduction = "none"
        elif size_average is False:
            reduction = "sum"
        else:
            reduction = "mean"
    if _autocast.on:  # a loss: float32 under autocast, on the CPU too
        input, target = autocast_state.loss(input, target)
    if log_target:
        loss = ops.exp(target) * (target - input)
    else:
        positive = target.detach() > 0
        safe = ops.where(positive, target, _const(1.0, target))
        # NOTE: 0 * log(0) is taken as 0 (xlogy), as PyTorch does
        loss = ops.where(positive, target * ops.log(safe), _const(0.0, target)) - target * input
    if reduction == "none":
        return loss
    if reduction == "sum":
        return ops.sum(loss)
    if reduction == "mean":
        return ops.mean(loss)
    if reduction == "batchmean":
        return ops.sum(loss) / (input.shape[0] if input.ndim else 1)
    raise ValueError(f"{reduction} is not a valid value for reduction")
