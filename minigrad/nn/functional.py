"""``minigrad.nn.functional`` (``F``): layers and losses as functions, PyTorch's signatures.

Everything here is a *composite*: it is built from the primitives in ``minigrad.ops`` and has no
backward of its own, so autograd differentiates it (twice, if asked). The ops that have a fused
kernel (``dropout``, ``gelu``, ``layer_norm``, ``cross_entropy``,
``scaled_dot_product_attention``; ``max_pool1d/2d`` and ``batch_norm``, written in
``nn/pooling.py`` and ``nn/normalization.py``) check their arguments here and then run either the
kernel (``minigrad.kernels``) or their composite reference (``minigrad.references``), side by
side. Average pooling (``nn/pooling.py``) is a primitive of its own: a window sum has no op, so
it has a hand-written backward (the adjoint window scatter).

Losses work from logits (``log_softmax``, log-sigmoid), so logits of magnitude 1e4 give finite
losses and gradients. Float32 inputs stay float32: constants take the input's dtype.

Example:
    >>> import minigrad as mg
    >>> import minigrad.nn.functional as F
    >>> logits = mg.tensor([[2.0, 0.5, -1.0]])
    >>> round(F.cross_entropy(logits, mg.tensor([0])).item(), 4)
    0.2413
"""

from __future__ import annotations

import warnings
from typing import Optional, Sequence, Union

import numpy as np

from minigrad import autocast_state, backend, kernels, ops, references
from minigrad.autocast_state import state as _autocast
from minigrad.fused import fused_enabled
from minigrad.ops import linalg
from minigrad.ops.elementwise import ExpFn, Log1pFn
from minigrad.tensor import Tensor
from minigrad.nn.functional_conv import (  # noqa: F401  (F.conv2d, F.pad, ...)
    conv1d, conv2d, conv_transpose1d, conv_transpose2d, pad,
)
from minigrad.nn.pooling import (  # noqa: F401,E402  (F.max_pool2d, ...: nn/pooling.py)
    adaptive_avg_pool1d, adaptive_avg_pool2d, avg_pool1d, avg_pool2d, max_pool1d, max_pool2d,
)
from minigrad.nn.normalization import batch_norm, group_norm  # noqa: F401,E402
from minigrad.nn.upsampling import interpolate  # noqa: F401,E402
from minigrad.nn.llm import rms_norm, silu  # noqa: F401,E402  (nn/llm.py)
from minigrad.nn.functional_activation import (  # noqa: F401,E402  (issue 19's F.*)
    cosine_similarity, dropout1d, dropout2d, elu, hardtanh, kl_div, leaky_relu, mish, normalize,
    prelu,
)

_Shape = Union[int, Sequence[int]]

__all__ = [
    "linear", "dropout", "relu", "gelu", "tanh", "sigmoid", "logsigmoid", "softplus",
    "softmax", "log_softmax", "layer_norm", "embedding", "one_hot", "cross_entropy", "nll_loss",
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "mse_loss", "l1_loss",
    "smooth_l1_loss", "huber_loss", "scaled_dot_product_attention",
    "conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d", "pad",
    "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d", "adaptive_avg_pool1d",
    "adaptive_avg_pool2d", "batch_norm", "group_norm", "interpolate",
    "rms_norm", "silu",
    "cosine_similarity", "dropout1d", "dropout2d", "elu", "hardtanh", "kl_div", "leaky_relu",
    "mish", "normalize", "prelu",
]


def _const(array) -> Tensor:
    """A backend array as a constant tensor (masks, indices: never part of the graph)."""
    return Tensor._make(array)


def _check_tensor(value, fn: str, name: str) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{fn}(): argument '{name}' must be a Tensor, not {type(value).__name__}")
    return value


# ---------------------------------------------------------------------------- linear, dropout


def linear(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None) -> Tensor:
    """y = x W^T + b.

    Args:
        input: ``(*, in_features)``.
        weight: ``(out_features, in_features)`` (or ``(in_features,)``).
        bias: ``(out_features,)`` or None.

    Returns:
        ``(*, out_features)``.

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> F.linear(mg.ones(2, 3), mg.ones(4, 3), mg.zeros(4)).shape
        (2, 4)
    """
    return linalg.linear(input, weight, bias)


def dropout(input: Tensor, p: float = 0.5, training: bool = True,
            inplace: bool = False) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    The mask comes from the device's generator (``mg.manual_seed``). The identity when not
    ``training`` or when ``p == 0``; zeros when ``p == 1``.

    Args:
        input: any shape.
        p: probability of zeroing an element, in [0, 1].
        training: apply dropout (False: return ``input`` unchanged).
        inplace: write the result into ``input``. Only done when ``input`` is not part of a
            graph; otherwise a new tensor is returned (same values and gradients).

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> F.dropout(mg.ones(3), p=0.5, training=False)
        tensor([1., 1., 1.])
    """
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if fused_enabled("dropout", input):  # mg.use_fused on + kernel for device/dtype
        out = kernels.dropout.apply(input, p)
    else:
        out = references.dropout(input, p)
    if inplace and not out.requires_grad:
        input.data[...] = out.data
        return input
    return out


# ---------------------------------------------------------------------------- activations


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0) elementwise (``inplace`` is accepted for PyTorch compatibility).

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> F.relu(mg.tensor([-1.0, 2.0]))
        tensor([0., 2.])
    """
    return ops.relu(input)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """Gaussian error linear unit: x * Phi(x), or ``approximate='tanh'``
    x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x**3))).

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> F.gelu(mg.tensor([0.0, 1.0]))
        tensor([0.0000, 0.8413])
    """
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    if fused_enabled("gelu", input):  # mg.use_fused on + kernel for device/dtype
        return kernels.gelu.apply(input, approximate)
    return references.gelu(input, approximate)


def tanh(input: Tensor) -> Tensor:
    """Hyperbolic tangent elementwise.

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> F.tanh(mg.tensor([0.0]))
        tensor([0.])
    """
    return ops.tanh(input)


def sigmoid(input: Tensor) -> Tensor:
    """1 / (1 + exp(-x)) elementwise.

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> F.sigmoid(mg.tensor([0.0]))
        tensor([0.5000])
    """
    return ops.sigmoid(input)


def logsigmoid(input: Tensor) -> Tensor:
    """log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|)), finite for any x.

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> F.logsigmoid(mg.tensor([-1e4, 0.0]))
        tensor([-1.0000e+04, -6.9315e-01])
    """
    # NOTE: minimum() splits the gradient at the tie x = 0, which gives the exact
    # derivative sigmoid(-0) = 1/2 there (the log1p term's derivative is 0 at x = 0).
    # The Functions, not ops.exp/log1p: those are on CUDA autocast's float32 list, logsigmoid
    # is not (PyTorch keeps its dtype)
    return ops.minimum(input, 0) - Log1pFn.apply(ExpFn.apply(-ops.abs(input)))


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold (PyTorch's rule).

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> F.softplus(mg.tensor([0.0, 1e4]))
        tensor([6.9315e-01, 1.0000e+04])
    """
    if _autocast.on:  # on CUDA autocast's float32 list
        input, = autocast_state.fp32_cuda(input)
    z = input * beta
    # NOTE: the stable form max(z, 0) + log1p(exp(-|z|)); the naive one overflows for large z
    soft = (ops.maximum(z, 0) + ops.log1p(ops.exp(-ops.abs(z)))) / beta
    return ops.where(z.detach() > threshold, input, soft)


def softmax(input: Tensor, dim: Optional[int] = None, _stacklevel: int = 3,
            dtype=None) -> Tensor:
    """exp(x) / sum(exp(x)) along ``dim`` (max-shifted, stable for large logits).

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> F.softmax(mg.tensor([0.0, 0.0]), dim=0)
        tensor([0.5000, 0.5000])
    """
    if _autocast.on and dtype is None:
        input, = autocast_state.fp32(input)
    return ops.softmax(input, dim=dim, dtype=dtype)


def log_softmax(input: Tensor, dim: Optional[int] = None, _stacklevel: int = 3,
                dtype=None) -> Tensor:
    """x - logsumexp(x) along ``dim``, without forming softmax.

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> F.log_softmax(mg.tensor([1e4, 0.0]), dim=0)
        tensor([     0., -10000.])
    """
    if _autocast.on and dtype is None:
        input, = autocast_state.fp32(input)
    return ops.log_softmax(input, dim=dim, dtype=dtype)


# ---------------------------------------------------------------------------- layer norm


def _normalized_dims(input: Tensor, normalized_shape) -> tuple:
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(shape)
    if k == 0 or input.ndim < k or tuple(input.shape[input.ndim - k:]) != shape:
        raise RuntimeError(
            f"Given normalized_shape={list(shape)}, expected input with shape "
            f"[*, {', '.join(str(s) for s in shape)}], but got input of size{list(input.shape)}"
        )
    return shape, tuple(range(-k, 0))


def layer_norm(input: Tensor, normalized_shape: _Shape, weight: Optional[Tensor] = None,
               bias: Optional[Tensor] = None, eps: float = 1e-5) -> Tensor:
    """Normalise over the trailing ``normalized_shape`` dimensions, then scale and shift.

    y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias, with the biased variance.

    Args:
        input: ``(*, *normalized_shape)``.
        normalized_shape: the trailing shape to normalise over (an int for the last dim).
        weight, bias: of shape ``normalized_shape``, or None.
        eps: added to the variance.

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> F.layer_norm(mg.tensor([[1.0, 3.0]]), (2,))
        tensor([[-1.0000,  1.0000]])
    """
    if _autocast.on:
        input, weight, bias = autocast_state.fp32(input, weight, bias)
    shape, dims = _normalized_dims(input, normalized_shape)
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and tuple(p.shape) != shape:
            raise RuntimeError(
                f"layer_norm: expected {name} of shape {list(shape)}, got {list(p.shape)}"
            )
    if fused_enabled("layer_norm", input, weight, bias):  # use_fused on + kernel for dtype
        return kernels.layer_norm.apply(input, shape, weight, bias, eps)
    return references.layer_norm(input, dims, weight, bias, eps)


# ---------------------------------------------------------------------------- embedding


def embedding(input: Tensor, weight: Tensor, padding_idx: Optional[int] = None,
              max_norm: Optional[float] = None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Look up rows of ``weight``: ``out[..., :] = weight[input[...], :]``.

    Rows picked at ``padding_idx`` pass their values but no gradient.

    Args:
        input: integer indices of any shape, each in ``[0, num_embeddings)``.
        weight: ``(num_embeddings, embedding_dim)``.
        padding_idx: an index whose row receives no gradient.

    Returns:
        ``(*input.shape, embedding_dim)``.

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> F.embedding(mg.tensor([2, 0]), mg.arange(6.0).reshape(3, 2))
        tensor([[4., 5.],
                [0., 1.]])
    """
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise NotImplementedError(
            "embedding: max_norm, scale_grad_by_freq and sparse are not supported by minigrad"
        )
    _check_tensor(input, "embedding", "input")
    if input.dtype.kind not in "iu":
        raise TypeError(
            f"embedding(): expected integer indices (int64 or int32), got {input.dtype}"
        )
    num = weight.shape[0]
    idx = input.data
    if idx.size:
        low, high = idx.min(), idx.max()

        def error():  # called only when an index is bad (on a GPU: at the synchronisation)
            bad = int(low) if int(low) < 0 else int(high)
            return IndexError(
                f"embedding(): index {bad} is out of range for an embedding with {num} rows "
                f"(valid: 0 .. {num - 1})"
            )

        # NOTE: on the CPU this raises now; on a GPU at the next synchronisation (as for
        # cross_entropy's targets), and the rows read meanwhile are clamped into range
        backend.defer_check((low < 0) | (high >= num), error)
        if input.xp is not np:
            input = _const(input.xp.clip(idx, 0, num - 1))
    out = linalg.embedding(weight, input)  # (*, D); the backward adds repeated indices up
    if padding_idx is not None:
        if padding_idx < 0:
            padding_idx += num
        is_pad = _const((idx == padding_idx)[..., None])
        # NOTE: the padding row's value passes, its gradient does not (PyTorch's semantics)
        out = ops.where(is_pad, out.detach(), out)
    return out


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """Class indices as one-hot int64 vectors: shape ``(*, num_classes)``.

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> F.one_hot(mg.tensor([0, 2]), 3)
        tensor([[1, 0, 0],
                [0, 0, 1]])
    """
    _check_tensor(tensor, "one_hot", "tensor")
    if tensor.dtype.kind not in "iu":
        raise TypeError(f"one_hot is only applicable to index tensor, got {tensor.dtype}")
    xp, idx = tensor.xp, tensor.data
    if num_classes == -1:
        if idx.size == 0:
            raise RuntimeError("Can not infer total number of classes from empty tensor.")
        num_classes = int(idx.max()) + 1
    if idx.size and int(idx.min()) < 0:
        raise RuntimeError("Class values must be non-negative.")
    if idx.size and int(idx.max()) >= num_classes:
        raise RuntimeError("Class values must be smaller than num_classes.")
    return _const((idx[..., None] == xp.arange(num_classes)).astype(np.int64))


# ---------------------------------------------------------------------------- loss helpers

_REDUCTIONS = ("none", "mean", "sum")


def _reduction(reduction: str, size_average=None, reduce=None) -> str:
    """The reduction string, from PyTorch's deprecated ``size_average``/``reduce`` if given."""
    if size_average is not None or reduce is not None:
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = "none" if not reduce else ("mean" if size_average else "sum")
    if reduction not in _REDUCTIONS:
        raise ValueError(
            f"{reduction!r} is not a valid value for reduction (expected 'none', 'mean' or 'sum')"
        )
    return reduction


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.mean()


def _float_target(target, input: Tensor, fn: str) -> Tensor:
    """A floating target in the input's dtype (so float32 stays float32)."""
    _check_tensor(target, fn, "target")
    if target.dtype.kind != "f":
        raise TypeError(
            f"{fn}(): expected a floating point target (like the input, {input.dtype}), got "
            f"{target.dtype}; use target.float()"
        )
    return ops.cast(target, input.dtype)


def _class_weight(weight: Optional[Tensor], input: Tensor, n_classes: int, fn: str):
    if weight is None:
        return None
    _check_tensor(weight, fn, "weight")
    if weight.ndim != 1 or weight.shape[0] != n_classes:
        raise ValueError(
            f"{fn}(): weight should be a 1-D tensor with one entry per class ({n_classes}), "
            f"got shape {tuple(weight.shape)}"
        )
    return ops.cast(weight, input.dtype)


def _class_dim(input: Tensor, fn: str) -> int:
    if input.ndim == 0:
        raise ValueError(f"{fn}(): input must have a class dimension: (C,), (N, C) or "
                         "(N, C, d1, ...); got a 0-d tensor")
    return 0 if input.ndim == 1 else 1


_UNSIGNED = {size: np.dtype(f"u{size}") for size in (1, 2, 4, 8)}  # an index's bits, unsigned


def _check_class_indices(input: Tensor, target, class_dim: int, ignore_index: int, fn: str,
                         values: bool = True):
    """Raise clear errors for class-index targets of the wrong dtype, shape or range (the
    range only with ``values``: the fused CUDA cross-entropy checks it in its kernel).

    Returns the mask of the targets that count (not ``ignore_index``), or None when every
    target counts (checked on the CPU only) or the range was not checked. ``target``: a Tensor
    (the caller checked)."""
    shape = input.shape  # (array shapes are tuples)
    n_classes = shape[class_dim]
    expected = shape[:class_dim] + shape[class_dim + 1:]
    if target.shape != expected:
        probs = " or the input's shape (class probabilities)" if fn == "cross_entropy" else ""
        raise ValueError(
            f"{fn}(): expected target of shape {expected} (class indices for input of shape "
            f"{tuple(shape)}){probs}, got {tuple(target.shape)}"
        )
    if target.dtype.kind not in "iu":
        raise TypeError(
            f"{fn}(): class-index targets must be integers (int64), got {target.dtype}; "
            "use target.long()"
            + (f". Class-probability targets have the input's shape {tuple(input.shape)}."
               if fn == "cross_entropy" else "")
        )
    if not values:
        return None
    t = target.data
    if type(t) is np.ndarray and not 0 <= ignore_index < n_classes:
        # the common case: one maximum checks both bounds of every index (a negative one is a
        # huge unsigned one), and no mask is made when all of them are in range
        u = t.view(_UNSIGNED[t.dtype.itemsize])
        if not t.size or np.maximum.reduce(u, axis=None) < n_classes:
            return None
    valid = t != ignore_index
    bad = valid & ((t < 0) | (t >= n_classes))
    # NOTE: on the CPU this raises now; on a GPU at the next synchronisation (loss.item(), a
    # copy to the CPU), so that a training step never waits for the GPU to check its targets
    backend.defer_check(bad.any(),
                        lambda: references.class_index_error(t, n_classes, ignore_index, fn))
    return valid


# ---------------------------------------------------------------------------- losses


def nll_loss(input: Tensor, target: Tensor, weight: Optional[Tensor] = None,
             size_average=None, ignore_index: int = -100, reduce=None,
             reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of class indices, given log-probabilities.

    loss_i = -weight[t_i] * input[i, t_i] (0 where t_i == ignore_index); ``'mean'`` divides the
    sum by the total weight of the non-ignored targets.

    Args:
        input: log-probabilities, ``(N, C)``, ``(C,)`` or ``(N, C, d1, ...)``.
        target: int64 class indices, ``(N,)``, ``()`` or ``(N, d1, ...)``.
        weight: ``(C,)`` per-class weights.
        ignore_index: a target value that contributes neither loss nor gradient.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> F.nll_loss(mg.tensor([[-0.5, -1.0]]), mg.tensor([1]))
        tensor(1.)
    """
    reduction = _reduction(reduction, size_average, reduce)
    if _autocast.on:
        input, weight = autocast_state.loss(input, weight)
    class_dim = _class_dim(input, "nll_loss")
    _check_tensor(target, "nll_loss", "target")
    valid = _check_class_indices(input, target, class_dim, ignore_index, "nll_loss")
    if valid is None:  # every target counts
        valid = input.xp.ones(target.shape, dtype=bool)
    weight = _class_weight(weight, input, input.shape[class_dim], "nll_loss")
    nll, denom = references.picked_nll(input, target, valid, weight, class_dim)
    if reduction == "none":
        return nll
    if reduction == "sum":
        return nll.sum()
    return references.weighted_mean(nll.sum(), denom)


def cross_entropy(input: Tensor, target: Tensor, weight: Optional[Tensor] = None,
                  size_average=None, ignore_index: int = -100, reduce=None,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy between logits and class indices or class probabilities.

    With class indices: loss_i = -w[t_i] log softmax(x_i)[t_i], ignored where
    ``t_i == ignore_index``; ``'mean'`` divides by the summed weights of the non-ignored
    targets. With ``label_smoothing`` eps: (1 - eps) * that + eps / C * smooth_i, where
    smooth_i = -sum_c w_c log softmax(x_i)_c. With class probabilities (a float target of the
    input's shape): loss_i = -sum_c w_c q_ic log softmax(x_i)_c with
    q = target (1 - eps) + eps / C; ``'mean'`` divides by N.

    Args:
        input: logits ``(N, C)``, ``(C,)`` or ``(N, C, d1, d2, ...)``.
        target: int64 class indices ``(N,)``, ``()`` or ``(N, d1, ...)``, or floating class
            probabilities of the input's shape.
        weight: ``(C,)`` per-class weights.
        ignore_index: a class-index target value that contributes nothing (indices only).
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        label_smoothing: eps in [0, 1].

    Raises:
        TypeError: float targets that are not the input's shape, or integer targets that are.
        ValueError: a target shape that fits neither form; an unknown reduction.
        IndexError: a class index outside [0, C) that is not ``ignore_index``.

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> x = mg.tensor([[1e4, 0.0], [0.0, 1e4]])
        >>> F.cross_entropy(x, mg.tensor([0, 0]))
        tensor(5000.)
    """
    reduction = _reduction(reduction, size_average, reduce)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    class_dim = _class_dim(input, "cross_entropy")
    _check_tensor(target, "cross_entropy", "target")
    if _autocast.on:
        input, target, weight = autocast_state.loss(input, target, weight)
    if weight is not None:
        weight = _class_weight(weight, input, input.shape[class_dim], "cross_entropy")
    fused = fused_enabled("softmax_cross_entropy", input)
    if target.shape == input.shape:  # (array shapes are tuples)
        if target.dtype.kind != "f":
            raise TypeError(
                f"cross_entropy(): a target of the input's shape {tuple(input.shape)} holds "
                f"class probabilities and must be floating point, got {target.dtype}. Class "
                f"indices have shape {input.shape[:class_dim] + input.shape[class_dim + 1:]}."
            )
        target = ops.cast(target, input.dtype)
        every_target_counts = False
    else:
        # the fused CUDA kernel checks the index range itself (no extra launches on a GPU)
        in_kernel = (fused and input.xp is not np
                     and kernels.softmax_cross_entropy.supported(input, target, weight))
        valid = _check_class_indices(input, target, class_dim, ignore_index, "cross_entropy",
                                     values=not in_kernel)
        every_target_counts = valid is None and not in_kernel
    if fused:  # (N, C) and class indices; else the reference
        return kernels.softmax_cross_entropy.apply(input, target, weight, ignore_index,
                                                   reduction, label_smoothing,
                                                   every_target_counts)
    return references.cross_entropy(input, target, weight, ignore_index, reduction,
                                     label_smoothing)


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Optional[Tensor] = None,
                         size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """-w (t log(x) + (1 - t) log(1 - x)) from probabilities x in [0, 1].

    Each log is clamped at -100, as in PyTorch, so x = 0 or 1 gives a finite loss. Prefer
    :func:`binary_cross_entropy_with_logits`, which is stable from logits.

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> round(F.binary_cross_entropy(mg.tensor([0.5]), mg.tensor([1.0])).item(), 4)
        0.6931
    """
    reduction = _reduction(reduction, size_average, reduce)
    _check_tensor(input, "binary_cross_entropy", "input")
    if _autocast.on:
        if "cuda" in _autocast.dtypes and input.device.type == "cuda":
            raise RuntimeError(  # PyTorch refuses it too: float16 probabilities near 0 or 1
                "F.binary_cross_entropy and nn.BCELoss are unsafe to autocast on CUDA. Many "
                "models use a sigmoid right before the binary cross entropy; combine the two "
                "with F.binary_cross_entropy_with_logits or nn.BCEWithLogitsLoss, which are "
                "safe to autocast.")
        input, target, weight = autocast_state.loss(input, target, weight)
    _check_tensor(target, "binary_cross_entropy", "target")
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(
            f"Using a target size ({tuple(target.shape)}) that is different to the input size "
            f"({tuple(input.shape)}) is deprecated. Please ensure they have the same size."
        )
    target = _float_target(target, input, "binary_cross_entropy")
    x = input.data
    if x.size and bool(((x < 0) | (x > 1) | (x != x)).any()):
        raise ValueError(
            "binary_cross_entropy(): all elements of input should be between 0 and 1 "
            "(probabilities; for logits use binary_cross_entropy_with_logits)"
        )

    def clamped_log(p: Tensor) -> Tensor:
        # NOTE: log(0) = -inf would make 0 * -inf = nan; log of a safe value, then clamp at
        # -100 (PyTorch's bound); where p == 0 the value is -100 and the gradient 0
        positive = _const(p.data > 0)
        one = _const(p.xp.ones((), dtype=p.dtype))
        safe_log = ops.clamp(ops.log(ops.where(positive, p, one)), min=-100.0)
        return ops.where(positive, safe_log, _const(p.xp.full((), -100.0, dtype=p.dtype)))

    loss = -(target * clamped_log(input) + (1 - target) * clamped_log(1 - input))
    if weight is not None:
        loss = loss * ops.cast(weight, input.dtype)
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor,
                                     weight: Optional[Tensor] = None, size_average=None,
                                     reduce=None, reduction: str = "mean",
                                     pos_weight: Optional[Tensor] = None) -> Tensor:
    """Binary cross-entropy from logits, stable for any x.

    loss = w ((1 - t) x - l log sigmoid(x)), l = 1 + (pos_weight - 1) t, with
    log sigmoid(x) = min(x, 0) - log1p(exp(-|x|)).

    Args:
        input: logits of any shape.
        target: probabilities in [0, 1], the input's shape.
        weight: broadcast over the loss.
        pos_weight: weight of the positive term, broadcast along the last (class) dimension.

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> F.binary_cross_entropy_with_logits(mg.tensor([1e4, -1e4]), mg.tensor([1.0, 0.0]))
        tensor(0.)
    """
    reduction = _reduction(reduction, size_average, reduce)
    _check_tensor(target, "binary_cross_entropy_with_logits", "target")
    if _autocast.on:
        input, target, weight, pos_weight = autocast_state.loss(input, target, weight,
                                                                 pos_weight)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(
            f"Target size ({tuple(target.shape)}) must be the same as input size "
            f"({tuple(input.shape)})"
        )
    target = _float_target(target, input, "binary_cross_entropy_with_logits")
    log_sig = logsigmoid(input)
    if pos_weight is not None:
        log_weight = (ops.cast(pos_weight, input.dtype) - 1) * target + 1
        loss = (1 - target) * input - log_weight * log_sig
    else:
        loss = (1 - target) * input - log_sig
    if weight is not None:
        loss = loss * ops.cast(weight, input.dtype)
    return _reduce(loss, reduction)


def _pointwise_target(input: Tensor, target: Tensor, fn: str) -> Tensor:
    _check_tensor(target, fn, "target")
    if tuple(target.shape) != tuple(input.shape):
        warnings.warn(
            f"Using a target size ({tuple(target.shape)}) that is different to the input size "
            f"({tuple(input.shape)}). This will likely lead to incorrect results due to "
            "broadcasting. Please ensure they have the same size.",
            stacklevel=3,
        )
    return _float_target(target, input, fn)


def mse_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
             reduction: str = "mean") -> Tensor:
    """Mean squared error: (x - y)**2, reduced.

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> F.mse_loss(mg.tensor([1.0, 2.0]), mg.tensor([1.0, 4.0]))
        tensor(2.)
    """
    reduction = _reduction(reduction, size_average, reduce)
    if _autocast.on:
        input, target = autocast_state.loss(input, target)
    d = input - _pointwise_target(input, target, "mse_loss")
    return _reduce(d * d, reduction)


def l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
            reduction: str = "mean") -> Tensor:
    """Mean absolute error: |x - y|, reduced.

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> F.l1_loss(mg.tensor([1.0, 2.0]), mg.tensor([1.0, 4.0]))
        tensor(1.)
    """
    reduction = _reduction(reduction, size_average, reduce)
    if _autocast.on:
        input, target = autocast_state.loss(input, target)
    d = input - _pointwise_target(input, target, "l1_loss")
    return _reduce(ops.abs(d), reduction)


def smooth_l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                   reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """0.5 d**2 / beta where |d| < beta, else |d| - 0.5 beta (d = x - y); L1 when beta = 0.

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> F.smooth_l1_loss(mg.tensor([0.0, 0.0]), mg.tensor([0.5, 3.0]))
        tensor(1.3125)
    """
    reduction = _reduction(reduction, size_average, reduce)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss does not support negative values for beta, got {beta}")
    if _autocast.on:
        input, target = autocast_state.loss(input, target)
    d = input - _pointwise_target(input, target, "smooth_l1_loss")
    ad = ops.abs(d)
    if beta == 0:
        return _reduce(ad, reduction)
    loss = ops.where(ad.detach() < beta, d * d * (0.5 / beta), ad - 0.5 * beta)
    return _reduce(loss, reduction)


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean",
               delta: float = 1.0) -> Tensor:
    """0.5 d**2 where |d| < delta, else delta (|d| - 0.5 delta) (d = x - y).

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> F.huber_loss(mg.tensor([0.0, 0.0]), mg.tensor([0.5, 3.0]))
        tensor(1.3125)
    """
    reduction = _reduction(reduction)
    if delta <= 0:
        raise ValueError(f"huber_loss does not support non-positive values for delta, got {delta}")
    if _autocast.on:
        input, target = autocast_state.loss(input, target)
    d = input - _pointwise_target(input, target, "huber_loss")
    ad = ops.abs(d)
    loss = ops.where(ad.detach() < delta, d * d * 0.5, (ad - 0.5 * delta) * delta)
    return _reduce(loss, reduction)


# ---------------------------------------------------------------------------- attention


def _check_mask_dtype(mask: Tensor, name: str, like: Tensor) -> Tensor:
    """Masks are boolean or floating (added to the scores, cast to the scores' dtype)."""
    if not isinstance(mask, Tensor):
        raise TypeError(f"{name} must be a Tensor, got {type(mask).__name__}")
    if mask.dtype == np.bool_:
        return mask
    if mask.dtype.kind != "f":
        raise TypeError(f"only bool and floating types of {name} are supported, got {mask.dtype}")
    return mask if mask.dtype == like.dtype else mask.to(like.dtype)


def _shape(t: Tensor) -> str:
    return str(tuple(int(s) for s in t.shape))


def _repeat_kv(t: Tensor, rep: int) -> Tensor:
    """(..., Hkv, S, E) -> (..., Hkv * rep, S, E), query head h reading key/value head
    h // rep. A broadcast and a reshape (transformers' ``repeat_kv``): the backward sums over
    the repeats, where an index_select's would scatter-add."""
    lead, (hkv, S, E) = t.shape[:-3], t.shape[-3:]
    return t.unsqueeze(-3).expand(*lead, hkv, rep, S, E).reshape(*lead, hkv * rep, S, E)


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> Tensor:
    r"""Attention with PyTorch's semantics:

    .. math::
        \mathrm{out} = \mathrm{dropout}\big(\mathrm{softmax}(q k^T \cdot s + M)\big)\, v,
        \qquad s = 1/\sqrt{E} \text{ by default}

    Args:
        query: (..., L, E).
        key: (..., S, E).
        value: (..., S, Ev).
        attn_mask: broadcastable to (..., L, S). **Bool: True where the query may attend**
            (the opposite of :class:`MultiheadAttention`'s masks); float: added to the scores.
        dropout_p: dropout probability on the attention weights (applied whenever > 0, as
            PyTorch's function does; pass ``p if training else 0.0``).
        is_causal: query i attends keys 0..i (top-left aligned); excludes ``attn_mask``.
        scale: the score scale s (default ``1/sqrt(E)``).
        enable_gqa: grouped-query attention: key/value have fewer heads (dim -3) than query,
            each shared by ``Hq // Hkv`` query heads.

    Returns:
        (..., L, Ev). A query whose keys are all masked gets zeros (PyTorch 2.13's math path).

    Example:
        >>> import minigrad as mg
        >>> import minigrad.nn.functional as F
        >>> q = k = v = mg.randn(2, 4, 5, 8)  # (B, heads, T, E)
        >>> F.scaled_dot_product_attention(q, k, v, is_causal=True).shape
        (2, 4, 5, 8)
    """
    if _autocast.on:
        query, key, value = autocast_state.lower(query, key, value)
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor) or t.ndim < 2:
            raise ValueError(
                f"scaled_dot_product_attention: {name} must be a tensor of at least 2 dims "
                f"(..., seq, features), got {_shape(t) if isinstance(t, Tensor) else type(t)}"
            )
    if key.shape[-1] != query.shape[-1]:
        raise ValueError(
            f"scaled_dot_product_attention: query and key need the same feature size E; got "
            f"query {_shape(query)} and key {_shape(key)}"
        )
    if key.shape[-2] != value.shape[-2]:
        raise ValueError(
            f"scaled_dot_product_attention: key and value need the same sequence length S; got "
            f"key {_shape(key)} and value {_shape(value)}"
        )
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"dropout_p must be in [0, 1], got {dropout_p}")
    L, S = query.shape[-2], key.shape[-2]
    if is_causal and attn_mask is not None:
        raise RuntimeError(
            "scaled_dot_product_attention: pass attn_mask or is_causal=True, not both"
        )
    if attn_mask is not None:
        attn_mask = _check_mask_dtype(attn_mask, "attn_mask", query)
        try:
            np.broadcast_shapes(tuple(attn_mask.shape), query.shape[:-2] + (L, S))
        except ValueError:
            raise ValueError(
                f"scaled_dot_product_attention: attn_mask of shape {_shape(attn_mask)} does not "
                f"broadcast to the scores' shape {query.shape[:-2] + (L, S)} (..., L, S)"
            ) from None
    if enable_gqa and query.ndim >= 3 and key.shape[-3] != query.shape[-3]:
        hq, hkv = query.shape[-3], key.shape[-3]
        if hq % hkv:
            raise ValueError(
                f"enable_gqa: query heads ({hq}) must be a multiple of key/value heads ({hkv})"
            )
        key, value = _repeat_kv(key, hq // hkv), _repeat_kv(value, hq // hkv)
    if dropout_p > 0.0:  # dropout on the weights: the composite, with F.dropout's mask
        probs = references.attention_probs(query, key, attn_mask, is_causal, scale)
        return dropout(probs, dropout_p) @ value
    if fused_enabled("attention", query):  # mg.use_fused on + kernel for device/dtype
        return kernels.attention.apply(query, key, value, attn_mask, is_causal, scale)
    return references.scaled_dot_product_attention(query, key, value, attn_mask, is_causal,
                                                   scale)
