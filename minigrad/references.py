"""Composite references: the ops that have a fused kernel, written with primitive ops only.

Each function here is what a fused kernel in ``minigrad.kernels`` computes, built from the
primitives of ``minigrad.ops``: readable, and differentiable to any order by autograd. They are
the ground truth the kernels are tested against, what runs when ``mg.use_fused(False)`` (or when
a kernel has no version for a device or dtype), and what a fused ``Function`` differentiates
when its backward is itself recorded (``create_graph=True``).

This module sits right above ``ops`` and imports nothing higher: ``kernels`` and ``nn`` import
it, never the other way round. ``nn.functional`` and the layers keep the argument checks and the
dispatch (``if fused_enabled(...): kernels.x.apply(...) else references.x(...)``).

The fused ops, and what fuses them:

=====================================  =====================================================
reference                              kernel
=====================================  =====================================================
:func:`dropout`                        ``kernels/dropout.py``
:func:`gelu`                           ``kernels/gelu.py``
:func:`layer_norm`                     ``kernels/layer_norm.py``
:func:`cross_entropy`                  ``kernels/softmax_cross_entropy.py``
:func:`lstm_layer`, :func:`gru_layer`  ``kernels/lstm.py``, ``kernels/gru.py``
:func:`scaled_dot_product_attention`   ``kernels/attention.py``
:func:`max_pool2d`                     ``kernels/maxpool.py``
:func:`batch_norm`                     ``kernels/batch_norm.py``
:func:`conv2d`                         ``kernels/conv.py`` (:func:`pad`: composite only)
:func:`conv_transpose2d`               ``kernels/conv.py``
:func:`adam_update`                    ``kernels/adam.py`` (on arrays: an optimizer step)
=====================================  =====================================================

Example:
    >>> import minigrad as mg
    >>> from minigrad import references
    >>> x = mg.tensor([[1.0, 3.0]])
    >>> references.layer_norm(x, (-1,), None, None, 1e-5)
    tensor([[-1.0000,  1.0000]])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np

from minigrad import backend, ops
from minigrad.ops.window import im2col
from minigrad.tensor import Tensor

Array = Any

__all__ = [
    "conv2d", "conv_output_size", "conv_transpose2d", "pad",
    "adam_effective_grad", "adam_update", "attention_probs", "batch_norm", "causal_mask",
    "class_index_error", "cross_entropy", "dropout", "gelu", "gru_layer", "gru_step", "layer_norm",
    "lstm_layer", "lstm_step", "max_pool2d", "picked_nll", "pool_windows",
    "scaled_dot_product_attention", "weighted_mean",
]


def _const(array: Array) -> Tensor:
    """A backend array as a constant tensor (masks, indices: never part of the graph)."""
    return Tensor._make(array)


# ---------------------------------------------------------------------------- elementwise


def dropout(input: Tensor, p: float) -> Tensor:
    """Inverted dropout: y = x * m / (1 - p), m ~ Bernoulli(1 - p), drawn in x's dtype."""
    if p == 1.0:
        return input * _const(input.xp.zeros(input.shape, dtype=input.dtype))
    u = backend.random_uniform(input.device, input.shape, input.dtype)
    dt = input.dtype.type
    # NOTE: keep where u >= p (probability 1 - p); the kept values are scaled up, so the
    # expected output equals the input and evaluation needs no rescaling
    mask = (u >= dt(p)).astype(input.dtype)
    mask *= dt(1.0 / (1.0 - p))  # in place: stays in x's dtype on NumPy and CuPy alike
    return input * _const(mask)


def gelu(input: Tensor, approximate: str) -> Tensor:
    """x * Phi(x) (or its tanh approximation): the GELU primitive of ``minigrad.ops``."""
    return ops.gelu(input, approximate=approximate)


# ---------------------------------------------------------------------------- layer norm


def layer_norm(input: Tensor, dims: tuple, weight: Optional[Tensor], bias: Optional[Tensor],
               eps: float) -> Tensor:
    """(x - mean) / sqrt(var + eps) * weight + bias, over the trailing ``dims``."""
    mean = input.mean(dim=dims, keepdim=True)
    centered = input - mean
    var = (centered * centered).mean(dim=dims, keepdim=True)  # NOTE: biased, as PyTorch
    out = centered / ops.sqrt(var + eps)
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


def rms_norm(input: Tensor, dims: tuple, weight: Optional[Tensor], eps: float) -> Tensor:
    """x / sqrt(mean(x**2) + eps) * weight, over the trailing ``dims`` (no centring)."""
    out = input * ops.rsqrt((input * input).mean(dim=dims, keepdim=True) + eps)
    return out * weight if weight is not None else out


def swiglu(gate: Tensor, up: Tensor) -> Tensor:
    """silu(gate) * up: Llama's gated feed-forward activation."""
    return gate * ops.sigmoid(gate) * up


def rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """x cos + rotate_half(x) sin for x (B, H, T, D), cos/sin (B, T, D) shared by the heads;
    rotate_half(x) = (-x2, x1), transformers' layout."""
    half = x.shape[-1] // 2
    rotated = ops.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * ops.unsqueeze(cos, 1) + rotated * ops.unsqueeze(sin, 1)


# ---------------------------------------------------------------------------- cross-entropy


def class_index_error(t: Array, n_classes: int, ignore_index: int, fn: str) -> IndexError:
    """The error for the first class index outside [0, C) that is not ``ignore_index`` (built
    only when there is one: on a GPU, at the synchronisation that reports it)."""
    bad = (t != ignore_index) & ((t < 0) | (t >= n_classes))
    value = int(t[bad].ravel()[0])
    return IndexError(
        f"{fn}(): target {value} is out of bounds: class indices must be in [0, "
        f"{n_classes}) or equal ignore_index ({ignore_index})"
    )


def _target_key(xp, safe: Array, class_dim: int) -> tuple:
    """An index that reads ``logp[n, t[n, i, j], i, j]`` for every target position: ``safe``
    at the class dimension and a broadcasting ``arange`` for each other dimension."""
    key = []
    for d, size in enumerate(safe.shape):
        shape = [1] * safe.ndim
        shape[d] = size
        key.append(xp.arange(size).reshape(shape))
    key.insert(class_dim, safe)
    return tuple(key)


def picked_nll(logp: Tensor, target: Tensor, valid: Array, weight: Optional[Tensor],
               class_dim: int):
    """``(nll, denom)``: per target ``-w[t] * logp[t]`` (0 where ignored), of the target's
    shape, and what ``'mean'`` divides its sum by: the summed weights ``w[t]`` of the
    non-ignored targets (their count without weights)."""
    xp = logp.xp
    t = target.data
    # ignored targets read class 0, then are masked; so do out-of-range ones, which on a GPU
    # are reported at the next synchronisation (F's target check), never read
    safe = xp.where(valid & (t >= 0) & (t < logp.shape[class_dim]), t, 0)
    picked = ops.getitem(logp, _target_key(xp, safe, class_dim))  # (N, d1, ...): log p[t]
    if weight is None and xp is np and bool(valid.all()):
        # the common case (nothing ignored, no weights): fewer ops, the same numbers (on the
        # CPU only: on a GPU, asking would make the host wait for the device)
        return -picked, float(valid.size)
    valid_t = _const(valid)
    zero = _const(xp.zeros((), dtype=logp.dtype))
    if weight is None:
        return ops.where(valid_t, -picked, zero), _const(valid.astype(logp.dtype)).sum()
    w_t = ops.where(valid_t, ops.getitem(weight, _const(safe)), zero)
    return ops.where(valid_t, -picked * w_t, zero), w_t.sum()


def weighted_mean(total: Tensor, denom) -> Tensor:
    """``total / denom``, the 'mean' reduction of a class-weighted loss."""
    # NOTE: PyTorch divides by the summed weights of the non-ignored targets (not by N);
    # when every target is ignored this is 0 / 0 = nan, as in PyTorch
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / denom


def _class_broadcast(weight: Tensor, ndim: int, class_dim: int) -> Tensor:
    """A (C,) weight reshaped to broadcast along the class dimension of an ndim input."""
    shape = [1] * ndim
    shape[class_dim] = weight.shape[0]
    return ops.reshape(weight, tuple(shape))


def cross_entropy(input: Tensor, target: Tensor, weight: Optional[Tensor], ignore_index: int,
                  reduction: str, label_smoothing: float) -> Tensor:
    """Cross-entropy from logits, with class-index or class-probability targets (checked by
    ``F.cross_entropy``; see it for the formulas)."""
    class_dim = 0 if input.ndim == 1 else 1
    n_classes = input.shape[class_dim]
    logp = ops.log_softmax(input, dim=class_dim)  # NOTE: max-shifted: finite for 1e4 logits

    if tuple(target.shape) == tuple(input.shape) and target.dtype.kind == "f":
        # class probabilities: loss_i = -sum_c w_c * q_ic * log p_ic,
        # q = target * (1 - eps) + eps / C; 'mean' divides by N (not by the weights)
        q = target
        if label_smoothing > 0:
            q = q * (1 - label_smoothing) + label_smoothing / n_classes
        prod = logp * q
        if weight is not None:
            prod = prod * _class_broadcast(weight, input.ndim, class_dim)
        if reduction == "none":
            return -prod.sum(dim=class_dim)
        total = -prod.sum()
        if reduction == "sum":
            return total
        n = input.data.size // n_classes if n_classes else 0
        return total / n if n else total * float("nan")

    valid = target.data != ignore_index
    nll, denom = picked_nll(logp, target, valid, weight, class_dim)
    loss = nll
    if label_smoothing > 0:
        # PyTorch's formula: (1 - eps) * nll + eps / C * smooth, where
        # smooth_i = -sum_c w_c * log p_ic (0 where ignored), reduced like nll
        lp = logp if weight is None else logp * _class_broadcast(weight, input.ndim, class_dim)
        smooth = -lp.sum(dim=class_dim)
        smooth = ops.where(_const(valid), smooth, _const(input.xp.zeros((), input.dtype)))
        loss = nll * (1 - label_smoothing) + smooth * (label_smoothing / n_classes)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return weighted_mean(loss.sum(), denom)


# ---------------------------------------------------------------------------- recurrences


def lstm_step(gates_x: Tensor, h: Tensor, c: Tensor, w_hh_t: Tensor) -> tuple[Tensor, Tensor]:
    """One LSTM step. ``gates_x`` already holds ``W_ih x_t + b_ih + b_hh``; ``w_hh_t = W_hh^T``.

    i = sigmoid(W_ii x + b_ii + W_hi h + b_hi)      input gate
    f = sigmoid(W_if x + b_if + W_hf h + b_hf)      forget gate
    g = tanh(W_ig x + b_ig + W_hg h + b_hg)         candidate cell
    o = sigmoid(W_io x + b_io + W_ho h + b_ho)      output gate
    c' = f * c + i * g
    h' = o * tanh(c')
    """
    gates = gates_x + h @ w_hh_t  # (B, 4H)
    i, f, g, o = ops.chunk(gates, 4, dim=1)  # each (B, H), PyTorch's order i, f, g, o
    i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
    c = f * c + i * g  # (B, H)
    h = o * c.tanh()  # (B, H)
    return h, c


def gru_step(x_proj: Tensor, h: Tensor, w_hh_t: Tensor, b_hh: Tensor | None) -> Tensor:
    """One GRU step. ``x_proj`` holds ``W_ih x_t + b_ih``; ``w_hh_t = W_hh^T``.

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)        reset gate
    z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)        update gate
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))     candidate (PyTorch: b_hn inside r * ...)
    h' = (1 - z) * n + z * h
    """
    h_proj = h @ w_hh_t  # (B, 3H)
    if b_hh is not None:
        h_proj = h_proj + b_hh
    xr, xz, xn = ops.chunk(x_proj, 3, dim=1)  # each (B, H), PyTorch's order r, z, n
    hr, hz, hn = ops.chunk(h_proj, 3, dim=1)  # each (B, H)
    r = (xr + hr).sigmoid()
    z = (xz + hz).sigmoid()
    n = (xn + r * hn).tanh()
    return n + z * (h - n)  # = (1 - z) * n + z * h, one op fewer


def _time_steps(T: int, reverse: bool) -> Sequence[int]:
    return range(T - 1, -1, -1) if reverse else range(T)


def lstm_layer(x_proj: Tensor, h0: Tensor, c0: Tensor, w_hh: Tensor, b_hh: Tensor | None,
               mask: Tensor | None, reverse: bool = False) -> tuple[Tensor, Tensor, Tensor]:
    """The recurrence of one LSTM layer in one direction (what ``kernels/lstm.py`` fuses).

    The steps run on transposed states, units-major as the fused NumPy kernel: gates (4H, B),
    h and c (H, B), the recurrent product ``W_hh @ h`` (BLAS runs it with the weight's 4H rows
    as the GEMM's M, faster than ``h @ W_hh^T``), and each gate a contiguous block of rows (an
    op over a column slice of a (B, 4H) array costs several times more). Only the layout
    differs from :func:`lstm_step`: the sums and products are the same. A step's (4H, B) block
    of x_proj is contiguous when x_proj is stored gate-major, as ``nn.LSTM`` makes it on the
    CPU (``kernels.lstm.project``); any other layout is read transposed.

    Args:
        x_proj: ``W_ih x_t + b_ih`` for every step, shape (T, B, 4H).
        h0, c0: initial state, (B, H) each.
        w_hh: (4H, H); ``b_hh``: (4H,) or None.
        mask: (T, B, 1) bool, True at valid steps, or None when every step is valid.
        reverse: walk from step T-1 down to 0.

    Returns:
        ``(output, h_n, c_n)``: output (T, B, H) with zeros at padded steps; h_n, c_n (B, H).
    """
    if b_hh is not None:
        x_proj = x_proj + b_hh  # (T, B, 4H): b_hh added once, not once per step
    T, B, G = x_proj.shape
    gate_major = x_proj.transpose(1, 2)  # (T, 4H, B)
    if T and gate_major.is_contiguous():  # T x (4H, B): row blocks of the (T * 4H, B) view, one
        steps = ops.split(gate_major.reshape(T * G, B), G, 0)  # node (no squeeze per step)
    else:
        steps = ops.unbind(gate_major, 0)  # one node, its backward one cat
    valid = ops.unbind(mask.transpose(1, 2), 0) if mask is not None else None  # T x (1, B)
    h, c = h0.T, c0.T  # (H, B)
    outputs: list[Tensor | None] = [None] * len(steps)
    for t in _time_steps(len(steps), reverse):
        gates = steps[t] + w_hh @ h  # (4H, B)
        i, f, g, o = ops.chunk(gates, 4, dim=0)  # each (H, B), PyTorch's order i, f, g, o
        i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
        c_new = f * c + i * g
        h_new = o * c_new.tanh()
        if valid is not None:  # a padded step keeps the state
            h_new = ops.where(valid[t], h_new, h)
            c_new = ops.where(valid[t], c_new, c)
        h, c = h_new, c_new
        outputs[t] = h
    H = h0.shape[-1]  # (a cat of the (H, B) states, not a stack: no unsqueeze per step)
    output = ops.cat(outputs, 0).reshape(len(steps), H, B).transpose(1, 2)  # (T, B, H)
    if mask is not None:
        output = ops.where(mask, output, 0.0)  # padded steps output zeros, as PyTorch's packing
    return output, h.T, c.T


def gru_layer(x_proj: Tensor, h0: Tensor, w_hh: Tensor, b_hh: Tensor | None,
              mask: Tensor | None, reverse: bool = False) -> tuple[Tensor, Tensor]:
    """The recurrence of one GRU layer in one direction (what ``kernels/gru.py`` fuses).

    Args:
        x_proj: ``W_ih x_t + b_ih`` for every step, shape (T, B, 3H).
        h0: initial state (B, H).
        w_hh: (3H, H); ``b_hh``: (3H,) or None (kept apart: ``b_hn`` sits inside ``r * ...``).
        mask: (T, B, 1) bool, True at valid steps, or None when every step is valid.
        reverse: walk from step T-1 down to 0.

    Returns:
        ``(output, h_n)``: output (T, B, H) with zeros at padded steps; h_n (B, H).
    """
    w_hh_t = w_hh.T  # (H, 3H)
    steps = ops.unbind(x_proj, 0)  # T x (B, 3H)
    valid = ops.unbind(mask, 0) if mask is not None else None  # T x (B, 1)
    h = h0
    outputs: list[Tensor | None] = [None] * len(steps)
    for t in _time_steps(len(steps), reverse):
        h_new = gru_step(steps[t], h, w_hh_t, b_hh)
        if valid is not None:  # a padded step keeps the state
            h_new = ops.where(valid[t], h_new, h)
        h = h_new
        outputs[t] = h
    output = ops.stack(outputs, 0)  # (T, B, H)
    if mask is not None:
        output = ops.where(mask, output, 0.0)
    return output, h


# ---------------------------------------------------------------------------- attention


def causal_mask(L: int, S: int, like: Tensor) -> Tensor:
    """(L, S) bool, True on and below the diagonal: query i may attend keys 0..i (top-left
    aligned when L != S, as PyTorch)."""
    xp = like.xp
    return _const(xp.tril(xp.ones((L, S), dtype=bool)))


def attention_probs(query: Tensor, key: Tensor, attn_mask: Tensor | None = None,
                    is_causal: bool = False, scale: float | None = None) -> Tensor:
    """softmax(q k^T * scale + mask) over the keys: (..., L, E), (..., S, E) -> (..., L, S).

    ``attn_mask`` follows ``scaled_dot_product_attention``'s convention (bool: True = may
    attend; float: added); ``is_causal`` builds the causal mask instead; ``scale`` defaults to
    ``1/sqrt(E)``.
    """
    if scale is None:
        scale = 1.0 / math.sqrt(query.shape[-1])
    if is_causal:
        attn_mask = causal_mask(query.shape[-2], key.shape[-2], query)
    scores = (query * scale) @ key.transpose(-2, -1)  # (..., L, S); scaling q is cheaper
    if attn_mask is None:
        return ops.softmax(scores, dim=-1)  # NOTE: softmax subtracts the row max: no overflow
    if attn_mask.dtype == np.bool_:
        scores = ops.where(attn_mask, scores, -math.inf)  # forbidden keys get exp(-inf) = 0
    else:
        scores = scores + attn_mask
    # NOTE: a row of only -inf has no softmax (0 / 0 = nan). PyTorch 2.13 returns zeros there.
    # Set such rows to 0 before the softmax, so nothing nan flows forward or back, and zero
    # their probabilities after it.
    dead = _const(scores.xp.all(scores.data == -math.inf, axis=-1, keepdims=True))  # (..., L, 1)
    probs = ops.softmax(ops.where(dead, 0.0, scores), dim=-1)
    return ops.where(dead, 0.0, probs)


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor,
                                 attn_mask: Tensor | None = None, is_causal: bool = False,
                                 scale: float | None = None) -> Tensor:
    """The composite attention, softmax(q k^T * scale + mask) @ v (what ``kernels/attention.py``
    fuses; dropout on the weights is ``F.scaled_dot_product_attention``'s, around this)."""
    return attention_probs(query, key, attn_mask, is_causal, scale) @ value  # (..., L, Ev)


# ---------------------------------------------------------------------------- pooling, batch norm


def pool_windows(size: int, out: int, kernel: int, stride: int, padding: int,
                 dilation: int) -> tuple:
    """``(index, valid)``, both ``(out, kernel)`` NumPy arrays: the input position each window
    tap reads along one spatial dimension, clipped into ``[0, size)``, and whether it falls
    inside the input (not in the padding)."""
    pos = (np.arange(out) * stride - padding)[:, None] + (np.arange(kernel) * dilation)[None, :]
    valid = (pos >= 0) & (pos < size)
    return np.clip(pos, 0, size - 1), valid


def max_pool2d(input: Tensor, kernel_size: tuple, stride: tuple, padding: tuple,
               dilation: tuple, out_size: tuple,
               with_indices: bool = True) -> tuple[Tensor, Optional[Tensor]]:
    """``(values, indices)`` of 2-D max pooling over ``(N, C, H, W)`` (arguments checked and the
    output size computed by ``F.max_pool2d``): every window gathered, padding read as -inf,
    and the maximum taken; ``indices`` are flat positions ``h * W + w`` in the unpadded input,
    as PyTorch's ``return_indices`` (the first maximum of a window wins). Windows that tile
    the input take a shorter way, which makes the indices only ``with_indices`` (else None)."""
    xp = input.xp
    N, C, H, W = input.shape
    (kh, kw), (OH, OW) = kernel_size, out_size
    if (tuple(stride) == (kh, kw) and not any(padding) and tuple(dilation) == (1, 1)
            and OH * kh <= H and OW * kw <= W):
        return _max_pool_tiles(input, kh, kw, OH, OW, with_indices)
    ih, vh = pool_windows(H, OH, kh, stride[0], padding[0], dilation[0])  # (OH, kh)
    iw, vw = pool_windows(W, OW, kw, stride[1], padding[1], dilation[1])  # (OW, kw)
    rows = ih[:, None, :, None]  # (OH, 1, kh, 1)
    cols = iw[None, :, None, :]  # (1, OW, 1, kw)
    key = (slice(None), slice(None), xp.asarray(rows), xp.asarray(cols))
    windows = ops.getitem(input, key).reshape(N, C, OH, OW, kh * kw)
    pad = ~(vh[:, None, :, None] & vw[None, :, None, :]).reshape(OH, OW, kh * kw)
    # the winning tap, padding read as -inf (argmax: the first maximum, a NaN first of all);
    # its value is then picked from the clipped gather, so a window whose real values are all
    # -inf still takes its value and gradient from a real element, as the kernel does
    scores = xp.where(xp.asarray(pad), -math.inf, windows.data) if pad.any() else windows.data
    arg = xp.argmax(scores, axis=-1)[..., None]  # (N, C, OH, OW, 1)
    # the winner picked by a mask and a sum of it and zeros (exact; the gradient a masked copy)
    winner = _const(xp.arange(kh * kw) == arg)
    values = ops.where(winner, windows, 0.0).sum(-1)
    flat = xp.asarray(rows * W + cols).reshape(OH, OW, kh * kw)  # each tap's flat position
    oh, ow = xp.arange(OH)[:, None], xp.arange(OW)[None, :]
    indices = flat[oh, ow, arg[..., 0]]  # (N, C, OH, OW)
    return values, _const(indices.astype(np.int64))


def _max_pool_tiles(input: Tensor, kh: int, kw: int, OH: int, OW: int,
                    with_indices: bool) -> tuple:
    """:func:`max_pool2d` of windows that tile the input (stride = kernel, no padding or
    dilation): the taps as planes ``(C, kh kw, N, OH, OW)``, the ``im2col`` of the windows (one
    strided copy; its gradient ``col2im``, one strided copy back), the winner of each window
    picked by a one-hot mask and summed over the tap axis. Every op is a pass over whole
    contiguous planes, with no masked selection where it can be avoided: NumPy runs a reduction
    over a last axis of ``kh * kw`` values as a loop per window, ``where`` about 5x slower than
    a product, and a product with a strided (permuted) view of the input about 3x slower than
    with the planes. The values come out as a ``(N, C, OH, OW)`` view of ``(C, N, OH, OW)``."""
    xp = input.xp
    N, C, H, W = input.shape
    K = kh * kw
    crop = ((0, 0), (0, 0))
    if (OH * kh, OW * kw) != (H, W):  # rows and columns past the last window: left out
        input = input[:, :, :OH * kh, :OW * kw]
    planes = im2col(input, (kh, kw), (kh, kw), (1, 1), crop).reshape(C, K, N, OH, OW)
    p = planes.data
    top = p.max(axis=1)
    # the winning tap: the first plane holding the maximum (the first NaN where there is one),
    # counted as the number of planes before it ("not found yet" after each plane)
    hit = p == top[:, None]
    if xp.isnan(top).any():
        hit |= xp.isnan(p)
    not_found = ~hit[:, 0]
    arg = not_found.astype(np.int8 if K <= 127 else np.int64)
    for k in range(1, K - 1):
        not_found &= ~hit[:, k]
        arg += not_found
    winner = _const(xp.arange(K, dtype=arg.dtype).reshape(1, K, 1, 1, 1) == arg[:, None])
    # x * 0 is NaN for an infinite x: the product only where every tap is finite (a sum that
    # overflows merely takes the where)
    finite = bool(xp.isfinite(p.sum()))
    values = (planes * winner if finite else ops.where(winner, planes, 0.0)).sum(dim=1)
    values = values.permute(1, 0, 2, 3)
    if not with_indices:
        return values, None
    offsets = xp.asarray([a * W + b for a in range(kh) for b in range(kw)], dtype=np.int64)
    corners = xp.arange(OH)[:, None] * (kh * W) + xp.arange(OW)[None, :] * kw
    return values, _const(offsets[arg.transpose(1, 0, 2, 3)] + corners)


def batch_norm(input: Tensor, weight: Optional[Tensor], bias: Optional[Tensor],
               eps: float) -> tuple[Tensor, Tensor, Tensor]:
    """Batch normalisation with the batch's statistics, over ``(N, C, L)``: returns
    ``(y, mean, var)`` with ``y = (x - mean) / sqrt(var + eps) * weight + bias`` and the
    per-channel ``mean`` and biased ``var`` over the batch and length dims (what the running
    statistics are updated from)."""
    mean = input.mean(dim=(0, 2), keepdim=True)  # (1, C, 1)
    centered = input - mean
    var = (centered * centered).mean(dim=(0, 2), keepdim=True)  # NOTE: biased, as PyTorch
    out = centered / ops.sqrt(var + eps)
    if weight is not None:
        out = out * weight.reshape(1, -1, 1)
    if bias is not None:
        out = out + bias.reshape(1, -1, 1)
    C = input.shape[1]
    return out, mean.reshape(C), var.reshape(C)


# ---------------------------------------------------------------------------- Adam


def adam_effective_grad(theta: Array, grad: Array, weight_decay: float, maximize: bool,
                        decoupled_weight_decay: bool) -> Array:
    """The gradient Adam's moments see: ``±grad`` plus ``wd * theta`` for coupled (L2) decay.

    ``grad`` is never written: a new array is made whenever the value differs from it.
    """
    if weight_decay != 0 and not decoupled_weight_decay:
        g = theta * weight_decay  # g <- g + wd * theta, in a fresh array
        if maximize:
            g -= grad
        else:
            g += grad
        return g
    return -grad if maximize else grad


def adam_update(
    param: Array,
    grad: Array,
    exp_avg: Array,
    exp_avg_sq: Array,
    max_exp_avg_sq: Optional[Array],
    *,
    step: float,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    maximize: bool,
    decoupled_weight_decay: bool,
) -> None:
    """One Adam/AdamW step of one parameter on backend arrays, in place (``param`` and the
    moment buffers): the update ``optim.Adam`` makes parameter by parameter.

    ``step`` is the step number after incrementing (1 on the first step); ``max_exp_avg_sq`` is
    given for AMSGrad only. ``grad`` is never written. Python-float scalars keep float32 arrays
    float32 (NumPy's NEP 50), and every intermediate lives in one scratch array.
    """
    xp = backend.array_module(param)
    if weight_decay != 0 and decoupled_weight_decay:
        param *= 1 - lr * weight_decay
    g = adam_effective_grad(param, grad, weight_decay, maximize, decoupled_weight_decay)

    # m <- m + (1 - beta1) (g - m)   (PyTorch's lerp_)
    tmp = g - exp_avg
    tmp *= 1 - beta1
    exp_avg += tmp
    # v <- beta2 v + (1 - beta2) g g   (PyTorch's mul_ then addcmul_)
    exp_avg_sq *= beta2
    xp.multiply(g, 1 - beta2, out=tmp)
    tmp *= g
    exp_avg_sq += tmp

    # NOTE: the bias corrections are Python floats (float64 on the host), never arrays
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    step_size = lr / bias_correction1
    bias_correction2_sqrt = bias_correction2**0.5

    if max_exp_avg_sq is not None:
        xp.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        v = max_exp_avg_sq
    else:
        v = exp_avg_sq
    # denom = sqrt(v) / sqrt(1 - beta2^t) + eps
    denom = tmp
    xp.sqrt(v, out=denom)
    denom /= bias_correction2_sqrt
    denom += eps
    # theta <- theta - step_size * m / denom   (PyTorch's addcdiv_)
    xp.divide(exp_avg, denom, out=denom)
    denom *= -step_size
    param += denom


# ---------------------------------------------------------------------------- convolution


# A composite conv whose column matrices have at most this many rows per group (a first layer:
# 1 channel x 3 x 3 = 9) adds its bias in the product: a copy of the columns with a row of ones
# costs less than a pass adding the bias to the output and a reduction for its gradient (W5's
# first conv: about 2.7 ms a step for those two, in the step's profile); with 288 rows (W5's
# second conv) the copy would cost more than it saves.
FOLD_BIAS_MAX_ROWS = 64


def _full_like(input: Tensor, shape: tuple, value: float) -> Tensor:
    return _const(input.xp.full(shape, value, dtype=input.dtype))


def _pad_dim(x: Tensor, dim: int, lo: int, hi: int, mode: str, value: float) -> Tensor:
    """``x`` padded along one dimension by ``lo`` before and ``hi`` after (slices and ``cat``)."""
    n = x.shape[dim]

    def part(start, stop, step=1):
        return x[(slice(None),) * dim + (slice(start, stop, step),)]

    if lo < 0 or hi < 0:  # negative padding crops (constant mode, as PyTorch)
        x = part(max(-lo, 0), n - max(-hi, 0))
        lo, hi, n = max(lo, 0), max(hi, 0), x.shape[dim]
    if lo == 0 and hi == 0:
        return x
    size = list(x.shape)
    if mode == "constant":
        before = _full_like(x, tuple(size[:dim] + [lo] + size[dim + 1:]), value)
        after = _full_like(x, tuple(size[:dim] + [hi] + size[dim + 1:]), value)
    elif mode == "reflect":  # mirror without repeating the edge: x[lo], ..., x[1]
        before, after = part(lo, 0, -1), part(n - 2, n - 2 - hi if n - 2 - hi >= 0 else None, -1)
    elif mode == "replicate":
        before = part(0, 1).expand(*size[:dim], lo, *size[dim + 1:])
        after = part(n - 1, n).expand(*size[:dim], hi, *size[dim + 1:])
    else:  # circular: wrap around
        before, after = part(n - lo, n), part(0, hi)
    # x stays a piece when cropped to nothing: the output still depends on it (zero gradient,
    # as PyTorch's), not a tensor cut off the graph
    pieces = [p for p, k in ((before, lo), (x, n), (after, hi)) if k > 0 or p is x]
    return ops.cat(pieces, dim=dim)


def pad(input: Tensor, pad: Sequence[int], mode: str = "constant", value: float = 0.0) -> Tensor:
    """``F.pad``: ``pad = (before_last, after_last, before_second_last, ...)``, padded with
    ``value`` (constant; negative values crop), the mirror image without the edge (reflect),
    the edge repeated (replicate) or the other end (circular)."""
    out = input
    for i in range(len(pad) // 2):
        out = _pad_dim(out, input.ndim - 1 - i, pad[2 * i], pad[2 * i + 1], mode, value)
    return out


def conv_output_size(size: int, kernel: int, stride: int, dilation: int) -> int:
    """Positions of a dilated kernel in a (padded) length: ``(size - d (k - 1) - 1) // s + 1``."""
    return (size - dilation * (kernel - 1) - 1) // stride + 1


def conv2d(input: Tensor, weight: Tensor, bias: Optional[Tensor], stride: tuple,
           padding: tuple, dilation: tuple, groups: int) -> Tensor:
    """2-d convolution (cross-correlation, as PyTorch) of a batch ``(N, C, H, W)`` with
    ``weight (O, C // groups, kh, kw)``: the kernel windows as one matrix, then one matrix
    product per group (GEMM-shaped, as the fused kernel)::

        cols = im2col(x)  (C kh kw, N Ho Wo), zero padded;  y = weight (g, O/g, C/g kh kw) @ cols

    ``padding`` is ``((top, bottom), (left, right))``. The gradient of ``im2col`` is
    ``col2im``, and the other way round, so the graph differentiates to any order."""
    N = input.shape[0]
    c_out, _, kh, kw = weight.shape
    cols = im2col(input, (kh, kw), stride, dilation, padding)
    Ho, Wo = (conv_output_size(s + lo + hi, k, st, d) for s, (lo, hi), k, st, d in
              zip(input.shape[2:], padding, (kh, kw), stride, dilation))
    w_mat, cols = weight.reshape(groups, c_out // groups, -1), cols.reshape(groups, -1, N * Ho * Wo)
    fold = bias is not None and cols.shape[1] <= FOLD_BIAS_MAX_ROWS
    if fold:  # the bias as one more weight column against a row of ones under the columns
        ones = _full_like(cols, (groups, 1, N * Ho * Wo), 1.0)
        w_mat = ops.cat([w_mat, bias.reshape(groups, c_out // groups, 1)], dim=2)
        cols = ops.cat([cols, ones], dim=1)
    y = ops.matmul(w_mat, cols).reshape(c_out, N, Ho, Wo)  # (g, O/g, N Ho Wo)
    if bias is not None and not fold:
        y = y + bias.reshape(c_out, 1, 1, 1)
    # (N, C_out, Ho, Wo) as a view: the ops after it read any layout, and its gradient comes
    # back channel-major, as the product's gradient wants it
    return y.permute(1, 0, 2, 3)


def _dilate(x: Tensor, dim: int, stride: int) -> Tensor:
    """``stride - 1`` zeros between neighbours along ``dim`` (a transposed conv's input)."""
    if stride == 1 or x.shape[dim] == 0:
        return x
    zeros = _full_like(x, x.shape, 0.0)
    n = x.shape[dim]
    woven = ops.stack([x] + [zeros] * (stride - 1), dim=dim + 1)  # (..., n, s, ...)
    shape = x.shape[:dim] + (n * stride,) + x.shape[dim + 1:]
    return woven.reshape(shape)[(slice(None),) * dim + (slice(0, (n - 1) * stride + 1),)]


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Optional[Tensor], stride: tuple,
                     padding: tuple, output_padding: tuple, dilation: tuple,
                     groups: int) -> Tensor:
    """2-d transposed convolution of ``(N, C_in, H, W)`` with ``weight (C_in, C_out / g, kh,
    kw)``: the gradient of :func:`conv2d` with respect to its input, written as a convolution
    with stride 1 of the input with ``s - 1`` zeros between its entries, padded by
    ``d (k - 1) - p`` (plus ``output_padding`` at the end; negative pads crop), with the kernel
    flipped and its two channel axes swapped per group."""
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = stride, padding, output_padding, dilation
    c_in, c_out_g, kh, kw = weight.shape
    x = _dilate(_dilate(input, 2, sh), 3, sw)
    eh, ew = dh * (kh - 1) - ph, dw * (kw - 1) - pw
    x = pad(x, (ew, ew + opw, eh, eh + oph))
    w = weight.reshape(groups, c_in // groups, c_out_g, kh, kw).transpose(1, 2)
    w = w.reshape(groups * c_out_g, c_in // groups, kh, kw)[:, :, ::-1, ::-1]
    return conv2d(x, w, bias, (1, 1), ((0, 0), (0, 0)), dilation, groups)
