"""Rotary position embeddings (RoPE, Su et al. 2021) in Hugging Face's ``rotate_half`` layout.

A head vector of size D is split into halves ``(x1, x2)``; position p turns the pair
``(x1[i], x2[i])`` by the angle ``p * theta ** (-2i / D)``::

    rope(x, p) = x * cos(p f) + rotate_half(x) * sin(p f),   rotate_half(x) = (-x2, x1)

with ``f`` repeated over both halves. (llama.cpp rotates adjacent pairs instead; GGUF files
store the q/k projection rows permuted for that, and the Llama loader undoes it.) The angles are
computed in float32, as ``transformers`` does.

Example:
    >>> import minigrad as mg
    >>> rope = RotaryEmbedding(dim=4, base=10000.0)
    >>> cos, sin = rope(mg.tensor([[0, 1]]))          # position ids (B, T)
    >>> cos.shape
    (1, 2, 4)
    >>> q = k = mg.randn(1, 2, 2, 4)                  # (B, heads, T, D)
    >>> q2, k2 = apply_rotary_pos_emb(q, k, cos, sin)
    >>> bool(((q2 - q)[:, :, 0].abs() < 1e-6).all())   # position 0: no turn
    True
"""

from __future__ import annotations

import numpy as np

from minigrad import kernels, ops
from minigrad.fused import fused_enabled
from minigrad.nn.module import Module
from minigrad.tensor import Tensor

__all__ = ["RotaryEmbedding", "apply_rotary_pos_emb", "rope_inv_freq", "rotate_half"]


def rope_inv_freq(dim: int, base: float = 10000.0) -> np.ndarray:
    """The D/2 inverse frequencies ``base ** (-2i / D)`` in float32 (transformers' values)."""
    exponent = np.arange(0, dim, 2, dtype=np.int64).astype(np.float32) / np.float32(dim)
    return (1.0 / (np.float32(base) ** exponent)).astype(np.float32)


def rotate_half(x: Tensor) -> Tensor:
    """``(x1, x2) -> (-x2, x1)`` over the last dim (halves, not adjacent pairs)."""
    half = x.shape[-1] // 2
    return ops.cat([-x[..., half:], x[..., :half]], dim=-1)


def apply_rotary_pos_emb(q: Tensor, k: Tensor, cos: Tensor, sin: Tensor,
                         unsqueeze_dim: int = 1) -> tuple[Tensor, Tensor]:
    """Rotate queries and keys by their positions' angles.

    Args:
        q, k: ``(B, heads, T, D)`` (different head counts allowed).
        cos, sin: ``(B, T, D)`` from :class:`RotaryEmbedding`.
        unsqueeze_dim: where cos/sin get the heads axis (1 for ``(B, heads, T, D)``).

    Returns:
        The rotated ``(q, k)``.
    """
    if (unsqueeze_dim == 1 and q.ndim == 4 and k.ndim == 4 and cos.ndim == 3
            and not cos.requires_grad and not sin.requires_grad
            and fused_enabled("rope", q, k, cos, sin)
            and q.dtype == k.dtype == cos.dtype == sin.dtype):
        return kernels.rope.apply(q, cos, sin), kernels.rope.apply(k, cos, sin)
    cos, sin = cos.unsqueeze(unsqueeze_dim), sin.unsqueeze(unsqueeze_dim)
    return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin


class RotaryEmbedding(Module):
    """The cos/sin tables of rotary embeddings for given position ids.

    Args:
        dim: the rotated head size D (even).
        base: theta, the frequency base (Llama 2: 10000; SmolLM2: 100000).

    Shape:
        position_ids ``(B, T)`` integers -> ``cos, sin`` each ``(B, T, D)`` (float32, or
        ``dtype`` when given to :meth:`forward`).
    """

    def __init__(self, dim: int, base: float = 10000.0):
        super().__init__()
        if dim % 2:
            raise ValueError(f"RotaryEmbedding: dim must be even, got {dim}")
        self.dim = int(dim)
        self.base = float(base)
        self.inv_freq = rope_inv_freq(self.dim, self.base)  # a plain array: never trained

    def forward(self, position_ids: Tensor, dtype=None) -> tuple[Tensor, Tensor]:
        xp = position_ids.xp
        positions = position_ids.data.astype(np.float32)
        freqs = positions[..., None] * xp.asarray(self.inv_freq)[None, None, :]
        emb = xp.concatenate([freqs, freqs], axis=-1)
        cos, sin = xp.cos(emb), xp.sin(emb)
        if dtype is not None:
            cos, sin = cos.astype(dtype), sin.astype(dtype)
        return Tensor._make(cos), Tensor._make(sin)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, base={self.base}"
