"""Gradient clipping and flat parameter vectors (PyTorch's ``torch.nn.utils``).

The clipping functions work on the backend arrays of ``.grad`` in place, as an optimizer
does, so they record no graph. On a GPU the norm stays on the device: nothing waits for the
GPU unless ``error_if_nonfinite=True`` asks for the value.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, List, Union

import numpy as np

from minigrad import backend, ops
from minigrad.tensor import Tensor, tensor

Array = Any
TensorOrTensors = Union[Tensor, Iterable[Tensor]]

__all__ = [
    "clip_grad_norm_",
    "clip_grad_value_",
    "get_total_norm",
    "parameters_to_vector",
    "vector_to_parameters",
]


def _as_list(parameters: TensorOrTensors) -> List[Tensor]:
    return [parameters] if isinstance(parameters, Tensor) else list(parameters)


def _vector_norm(x: Array, norm_type: float) -> Array:
    """The p-norm of all of ``x``'s entries, as a 0-d array on ``x``'s device."""
    xp = backend.array_module(x)
    # NOTE: NumPy reductions return scalars (np.float32), not 0-d arrays; make them arrays
    return xp.asarray(_vector_norm_value(xp, x.reshape(-1), norm_type))


def _vector_norm_value(xp, x: Array, norm_type: float):
    if x.dtype == np.float16:
        x = x.astype(np.float32)  # NOTE: squares of float16 overflow past 256; sum in float32
    if x.size == 0:
        return xp.zeros((), dtype=x.dtype)
    if norm_type == 2.0:
        return xp.sqrt(xp.dot(x, x))
    if norm_type == 1.0:
        return xp.abs(x).sum()
    if norm_type == math.inf:
        return xp.abs(x).max()
    if norm_type == -math.inf:
        return xp.abs(x).min()
    if norm_type == 0.0:
        return xp.asarray(xp.count_nonzero(x), dtype=x.dtype)
    return (xp.abs(x) ** norm_type).sum() ** (1.0 / norm_type)


def get_total_norm(
    tensors: TensorOrTensors, norm_type: float = 2.0, error_if_nonfinite: bool = False
) -> Tensor:
    """The p-norm of all the tensors' entries together, as if concatenated into one vector.

    Computed as PyTorch does: the norm of the vector of the per-tensor norms.

    Args:
        tensors: a tensor or an iterable of tensors.
        norm_type: ``p`` of the p-norm; ``math.inf`` (or ``"inf"``) for the max-norm.
        error_if_nonfinite: raise if the norm is nan or inf.

    Returns:
        A 0-d tensor on the first tensor's device, of its dtype.
    """
    tensors = _as_list(tensors)
    if not tensors:
        return tensor(0.0)
    total = _total_norm(tensors, norm_type, error_if_nonfinite)
    return Tensor._make(total.astype(tensors[0].dtype, copy=False))


def _total_norm(tensors: List[Tensor], norm_type, error_if_nonfinite: bool) -> Array:
    """The total norm as a 0-d array on the first tensor's device (float32 for float16)."""
    norm_type = float(norm_type)
    first = tensors[0]
    norms = [backend.to_device(_vector_norm(t.data, norm_type), first.device) for t in tensors]
    xp = first.xp
    total = _vector_norm(xp.stack(norms), norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is "
            "non-finite, so it cannot be clipped. To disable this error and scale the gradients "
            "by the non-finite norm anyway, set `error_if_nonfinite=False`"
        )
    return total


def clip_grad_norm_(
    parameters: TensorOrTensors,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> Tensor:
    r"""Scale the gradients in place so that their total norm is at most ``max_norm``.

    .. code-block:: text

        total_norm = || (||g_1||_p, ||g_2||_p, ...) ||_p      (all gradients as one vector)
        clip_coef  = min(max_norm / (total_norm + 1e-6), 1)
        g_i       <- g_i * clip_coef

    Parameters whose ``.grad`` is None are ignored.

    Args:
        parameters: a tensor or an iterable of tensors (usually ``model.parameters()``).
        max_norm: the largest norm allowed.
        norm_type: ``p`` of the p-norm: 2 (the default), 1, ``math.inf``, or another p > 0.
        error_if_nonfinite: raise if the total norm is nan or inf (otherwise the gradients are
            scaled by it anyway, and become nan).

    Returns:
        The total norm of the gradients before clipping (a 0-d tensor).

    Example:
        >>> import minigrad as mg
        >>> from minigrad.nn import Parameter
        >>> from minigrad.nn.utils import clip_grad_norm_
        >>> w = Parameter(mg.zeros(2))
        >>> w.grad = mg.tensor([3.0, 4.0])
        >>> clip_grad_norm_([w], max_norm=1.0)
        tensor(5.)
        >>> w.grad
        tensor([0.6000, 0.8000])
    """
    grads = [p.grad for p in _as_list(parameters) if p.grad is not None]
    if not grads:
        return tensor(0.0)
    total = _total_norm(grads, norm_type, error_if_nonfinite)
    xp = backend.array_module(total)
    # NOTE: clip_coef stays a 0-d array on the device: no host round trip
    clip_coef = xp.asarray(xp.minimum(float(max_norm) / (total + 1e-6), 1.0))
    coefs = {grads[0].device: clip_coef}
    for g in grads:
        if g.device not in coefs:
            coefs[g.device] = backend.to_device(clip_coef, g.device)
        g.data *= coefs[g.device]
    return Tensor._make(total.astype(grads[0].dtype, copy=False))


def clip_grad_value_(parameters: TensorOrTensors, clip_value: float) -> None:
    """Clamp every gradient entry into ``[-clip_value, clip_value]``, in place.

    Args:
        parameters: a tensor or an iterable of tensors.
        clip_value: the largest absolute value allowed.
    """
    clip_value = float(clip_value)
    for p in _as_list(parameters):
        if p.grad is not None:
            g = p.grad.data
            p.grad.xp.clip(g, -clip_value, clip_value, out=g)


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """All parameters flattened and concatenated into one 1-D tensor (differentiable).

    Args:
        parameters: an iterable of tensors, all on one device.

    Returns:
        A new tensor of ``sum(p.numel())`` entries.
    """
    parameters = list(parameters)
    if not parameters:
        raise ValueError("parameters_to_vector() got an empty parameter list")
    device = parameters[0].device
    for p in parameters:
        if p.device != device:
            raise TypeError(
                f"Found two parameters on different devices, {device} and {p.device}: move them "
                "to one device first (module.to(device))"
            )
    return ops.cat([ops.reshape(p, -1) for p in parameters])


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copy consecutive slices of a 1-D tensor into the parameters, in place (no graph).

    The inverse of :func:`parameters_to_vector`. Unlike PyTorch, which points each
    ``param.data`` at a view of ``vec``, the values are copied (and cast to each parameter's
    dtype), so the parameters keep their own memory.

    Args:
        vec: a 1-D tensor with exactly as many entries as the parameters have.
        parameters: an iterable of tensors.
    """
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected Tensor, but got: {type(vec).__name__}")
    if vec.ndim != 1:
        raise ValueError(f"expected a 1-D vector, got a tensor of shape {tuple(vec.shape)}")
    parameters = list(parameters)
    total = sum(p.numel() for p in parameters)
    if total != vec.numel():
        raise ValueError(f"vector has {vec.numel()} entries but the parameters have {total} in all")
    data = vec.data
    pointer = 0
    for p in parameters:
        if p.device != vec.device:
            raise TypeError(
                f"Found the vector on {vec.device} and a parameter on {p.device}: move them to "
                "one device first"
            )
        n = p.numel()
        p.data[...] = data[pointer : pointer + n].reshape(p.shape)
        pointer += n
