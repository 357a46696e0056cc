"""Attention layers: :class:`MultiheadAttention` and the Transformer encoder
(:class:`TransformerEncoderLayer`, :class:`TransformerEncoder`), with PyTorch's names,
parameters and masks. :func:`scaled_dot_product_attention` is ``F``'s (``nn.functional``),
re-exported here; its composite is ``minigrad.references.scaled_dot_product_attention`` and
its fused kernel ``kernels/attention.py``, which ``MultiheadAttention`` also uses when it
returns no weights.

Two mask conventions, both PyTorch's, and opposite for booleans:

- ``scaled_dot_product_attention``: a boolean ``attn_mask`` is True where a query **may**
  attend to a key;
- ``MultiheadAttention`` (and the Transformer layers): a boolean ``attn_mask`` or
  ``key_padding_mask`` is True where a query may **not** attend.

In both, a floating-point mask is added to the scores (``-inf`` forbids a key). A query whose
keys are all forbidden has no softmax (0 / 0); PyTorch 2.13's math path gives that row zeros
(and zero gradients), and so does every function here.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Callable

import numpy as np

from minigrad import kernels, ops, references
from minigrad.autocast_state import state as _autocast
from minigrad.fused import fused_enabled, is_fused
from minigrad.nn import functional as F
from minigrad.nn import init
from minigrad.nn.checkpoint import GradientCheckpointing
from minigrad.nn.functional import _check_mask_dtype, _shape
from minigrad.nn.functional import scaled_dot_product_attention  # noqa: F401  (re-exported)
from minigrad.nn.layers import Dropout, LayerNorm, Linear
from minigrad.nn.module import Module, ModuleList, Parameter
from minigrad.ops import linalg
from minigrad.tensor import Tensor, empty

Array = Any

__all__ = [
    "MultiheadAttention",
    "TransformerEncoder",
    "TransformerEncoderLayer",
    "scaled_dot_product_attention",
]


# ---------------------------------------------------------------------------- masks


def _const(array: Array) -> Tensor:
    """A backend array as a constant tensor (boolean masks never take part in the graph)."""
    return Tensor._make(array)


def _forbidden_to_allowed(mask: Tensor) -> Tensor:
    """MultiheadAttention's convention -> scaled_dot_product_attention's: booleans invert
    (True = may not attend -> True = may attend); float masks are additive in both."""
    return _const(~mask.data) if mask.dtype == np.bool_ else mask


def _merge_masks(a: Tensor | None, b: Tensor | None) -> Tensor | None:
    """Two masks in sdpa's convention as one: both bool -> allowed by both; otherwise additive
    (a bool mask becomes 0 where allowed, -inf where not) and summed, as PyTorch does."""
    if a is None or b is None:
        return a if b is None else b
    if a.dtype == np.bool_ and b.dtype == np.bool_:
        return _const(a.data & b.data)
    ref = a if a.dtype != np.bool_ else b

    def additive(m):
        return ops.where(m, 0.0, -math.inf).to(ref.dtype) if m.dtype == np.bool_ else m

    return additive(a) + additive(b)


# ---------------------------------------------------------------------------- multi-head


class NonDynamicallyQuantizableLinear(Linear):
    """A :class:`Linear` under PyTorch's name for ``MultiheadAttention.out_proj``."""


class MultiheadAttention(Module):
    r"""Multi-head attention with PyTorch's parameters, masks and outputs.

    .. math::
        \mathrm{head}_i = \mathrm{softmax}\Big(\frac{(Q W_i^Q)(K W_i^K)^T}{\sqrt{d}} + M\Big)
        V W_i^V, \qquad \mathrm{out} = [\mathrm{head}_1, \dots, \mathrm{head}_h]\, W^O + b^O

    with ``d = embed_dim // num_heads``; ``W^Q, W^K, W^V`` are the three row blocks of
    ``in_proj_weight`` (3E, E) (or ``q_proj_weight``, ``k_proj_weight``, ``v_proj_weight``
    when ``kdim``/``vdim`` differ from ``embed_dim``) and their biases ``in_proj_bias`` (3E).

    Args:
        embed_dim: E, the model width; must be divisible by ``num_heads``.
        num_heads: number of heads.
        dropout: dropout on the attention weights (training only).
        bias: learn ``in_proj_bias`` and ``out_proj.bias``.
        add_bias_kv, add_zero_attn: not supported (must be False).
        kdim, vdim: feature sizes of key and value (default E).
        batch_first: inputs and output are (B, T, E) instead of (T, B, E).

    Forward arguments:
        query (L, B, E), key (S, B, kdim), value (S, B, vdim) (batch first with
        ``batch_first``; or unbatched (L, E), (S, kdim), (S, vdim)).
        key_padding_mask: (B, S) (or (S,)); **bool: True = padding, may not be attended**;
        float: added to the scores.
        need_weights: also return the attention weights.
        attn_mask: (L, S) or (B * num_heads, L, S); **bool: True = may not attend**; float:
        added.
        average_attn_weights: average the returned weights over the heads.
        is_causal: a hint that ``attn_mask`` is the causal mask (as in PyTorch). Unlike
        PyTorch, which then requires ``attn_mask``, a missing mask is built causal here.

    Returns:
        ``(attn_output, attn_weights)``: the output like ``query``; weights (B, L, S) averaged,
        (B, num_heads, L, S) per head, or None without ``need_weights``. The weights are
        those applied to the values (after dropout, as PyTorch returns them).

    NOTE: a query whose keys are all masked (a fully padded sequence) gets zero weights and a
    zero attention result (so the output is ``out_proj.bias``). PyTorch 2.13 gives zeros with
    ``need_weights=False`` and NaN with ``need_weights=True``; minigrad gives zeros in both.

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> mha = nn.MultiheadAttention(8, 2, batch_first=True)
        >>> x = mg.randn(3, 5, 8)
        >>> out, w = mha(x, x, x, key_padding_mask=mg.tensor([[False] * 5] * 3))
        >>> out.shape, w.shape
        ((3, 5, 8), (3, 5, 5))
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = False,
        device=None,
        dtype=None,
    ):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(
                f"embed_dim and num_heads must be greater than 0, got embed_dim={embed_dim} "
                f"and num_heads={num_heads} instead"
            )
        if embed_dim % num_heads != 0:
            raise ValueError(
                f"embed_dim must be divisible by num_heads, got embed_dim={embed_dim} and "
                f"num_heads={num_heads} ({embed_dim} % {num_heads} = {embed_dim % num_heads})"
            )
        if add_bias_kv or add_zero_attn:
            raise NotImplementedError("MultiheadAttention: add_bias_kv and add_zero_attn")
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = float(dropout)
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads

        def param(*shape):
            return Parameter(empty(*shape, dtype=dtype, device=device))

        if self._qkv_same_embed_dim:
            self.in_proj_weight = param(3 * embed_dim, embed_dim)
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.q_proj_weight = param(embed_dim, embed_dim)
            self.k_proj_weight = param(embed_dim, self.kdim)
            self.v_proj_weight = param(embed_dim, self.vdim)
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = param(3 * embed_dim)
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(
            embed_dim, embed_dim, bias=bias, device=device, dtype=dtype
        )
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        """PyTorch's: Xavier-uniform projections, zero biases (``out_proj.weight`` keeps the
        Linear default, U(±1/sqrt(E)))."""
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)

    def extra_repr(self) -> str:
        s = f"embed_dim={self.embed_dim}, num_heads={self.num_heads}"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.batch_first:
            s += ", batch_first=True"
        return s

    # ---------------------------------------------------------------- forward pieces
    def _check_inputs(self, query, key, value) -> bool:
        """Check ranks and feature sizes; return whether the input is batched."""
        for name, t in (("query", query), ("key", key), ("value", value)):
            if not isinstance(t, Tensor):
                raise TypeError(f"MultiheadAttention: {name} must be a Tensor")
        if query.ndim not in (2, 3):
            raise ValueError(
                f"MultiheadAttention: query should be unbatched 2-D or batched 3-D, got "
                f"{query.ndim}-D of shape {_shape(query)}"
            )
        batched = query.ndim == 3
        layout = "(B, T, E)" if self.batch_first else "(T, B, E)"
        for name, t, dim in (
            ("query", query, self.embed_dim),
            ("key", key, self.kdim),
            ("value", value, self.vdim),
        ):
            if t.ndim != query.ndim:
                raise ValueError(
                    f"MultiheadAttention: query, key and value must all be "
                    f"{'3-D ' + layout if batched else '2-D (T, E)'}; got query {_shape(query)}"
                    f" and {name} {_shape(t)}"
                )
            if t.shape[-1] != dim:
                raise ValueError(
                    f"MultiheadAttention: expected {name} with {dim} features (the last dim), "
                    f"got shape {_shape(t)}"
                )
        if batched:
            b = 0 if self.batch_first else 1
            if not query.shape[b] == key.shape[b] == value.shape[b]:
                raise ValueError(
                    f"MultiheadAttention: query, key and value must have the same batch size "
                    f"(dim {b}); got {_shape(query)}, {_shape(key)}, {_shape(value)}"
                )
        t_dim = 1 if (batched and self.batch_first) else 0
        if key.shape[t_dim] != value.shape[t_dim]:
            raise ValueError(
                f"MultiheadAttention: key and value must have the same sequence length; got "
                f"key {_shape(key)} and value {_shape(value)}"
            )
        return batched

    def _project(self, query, key, value):
        """q, k, v = query W_q^T + b_q, key W_k^T + b_k, value W_v^T + b_v, each (B, T, E);
        self-attention does it with one matmul against the whole ``in_proj_weight``."""
        b = self.in_proj_bias
        b_q, b_k, b_v = ops.chunk(b, 3, 0) if b is not None else (None, None, None)
        if self._qkv_same_embed_dim:
            if query is key and key is value:
                qkv = F.linear(query, self.in_proj_weight, b)  # (B, T, 3E)
                return ops.chunk(qkv, 3, dim=-1)
            w_q, w_k, w_v = ops.chunk(self.in_proj_weight, 3, 0)  # each (E, E)
        else:
            w_q, w_k, w_v = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        return F.linear(query, w_q, b_q), F.linear(key, w_k, b_k), F.linear(value, w_v, b_v)

    def _split_heads(self, x: Tensor) -> Tensor:
        B, T, _ = x.shape
        return x.reshape(B, T, self.num_heads, self.head_dim).transpose(1, 2)  # (B, h, T, d)

    def _mask(self, key_padding_mask, attn_mask, is_causal, B, L, S, like) -> Tensor | None:
        """Both masks checked and merged into one in sdpa's convention, broadcastable to
        (B, heads, L, S)."""
        h = self.num_heads
        if attn_mask is not None:
            attn_mask = _check_mask_dtype(attn_mask, "attn_mask", like)
            if attn_mask.ndim == 2:
                if tuple(attn_mask.shape) != (L, S):
                    raise ValueError(
                        f"The shape of the 2D attn_mask is {_shape(attn_mask)}, but should be "
                        f"{(L, S)} (L, S)."
                    )
            elif attn_mask.ndim == 3:
                if tuple(attn_mask.shape) != (B * h, L, S):
                    raise ValueError(
                        f"The shape of the 3D attn_mask is {_shape(attn_mask)}, but should be "
                        f"{(B * h, L, S)} (batch * num_heads, L, S)."
                    )
                attn_mask = attn_mask.reshape(B, h, L, S)
            else:
                raise ValueError(
                    f"attn_mask must be 2-D (L, S) or 3-D (batch * num_heads, L, S), got "
                    f"{attn_mask.ndim}-D of shape {_shape(attn_mask)}"
                )
            attn_mask = _forbidden_to_allowed(attn_mask)
        elif is_causal:  # PyTorch requires attn_mask with is_causal; here it is built
            attn_mask = references.causal_mask(L, S, like)
        if key_padding_mask is not None:
            key_padding_mask = _check_mask_dtype(key_padding_mask, "key_padding_mask", like)
            if tuple(key_padding_mask.shape) != (B, S):
                raise ValueError(
                    f"expected key_padding_mask of shape {(B, S)} (batch, S), got "
                    f"{_shape(key_padding_mask)}"
                )
            key_padding_mask = _forbidden_to_allowed(key_padding_mask.reshape(B, 1, 1, S))
        return _merge_masks(attn_mask, key_padding_mask)

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None = None,
        need_weights: bool = True,
        attn_mask: Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ):
        """See the class docstring. Returns ``(attn_output, attn_weights or None)``."""
        batched = self._check_inputs(query, key, value)
        same = (query is key, key is value)
        if not batched:  # (T, E) -> (1, T, E); masks gain the batch dim too
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
            if key_padding_mask is not None and key_padding_mask.ndim == 1:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif not self.batch_first:  # (T, B, E) -> (B, T, E)
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        if same[0]:  # keep `query is key is value` for the one-matmul projection
            key = query
        if same[1]:
            value = key
        B, L, _ = query.shape
        S = key.shape[1]
        mask = self._mask(key_padding_mask, attn_mask, is_causal, B, L, S, query)

        scale = 1.0 / math.sqrt(self.head_dim)
        dropping = self.dropout > 0.0 and self.training  # dropout on the weights: composite
        qkv = None
        if self._qkv_same_embed_dim and query is key and key is value:
            qkv = F.linear(query, self.in_proj_weight, self.in_proj_bias)  # (B, L, 3E)
        fused = not need_weights and not dropping and fused_enabled(
            "attention", query if qkv is None else qkv)
        if fused and qkv is not None:  # self-attention: the head split and merge in the kernel
            out = kernels.attention.apply_packed(qkv, self.num_heads, mask, False, scale)
        else:
            q, k, v = (ops.chunk(qkv, 3, dim=-1) if qkv is not None
                       else self._project(query, key, value))  # (B, L|S, E) each
            q, k, v = self._split_heads(q), self._split_heads(k), self._split_heads(v)
            if fused and fused_enabled("attention", q):
                out = kernels.attention.apply(q, k, v, mask, False, scale)  # (B, h, L, d)
            else:
                probs = references.attention_probs(q, k, mask, scale=scale)  # (B, h, L, S)
                probs = F.dropout(probs, self.dropout, training=self.training)
                out = probs @ v  # (B, h, L, d)
            out = out.transpose(1, 2).reshape(B, L, self.embed_dim)  # heads side by side
        out = self.out_proj(out)  # (B, L, E)

        if not batched:
            out = out.squeeze(0)
        elif not self.batch_first:
            out = out.transpose(0, 1)  # (L, B, E)
        if not need_weights:
            return out, None
        weights = probs.mean(dim=1) if average_attn_weights else probs
        return out, (weights if batched else weights.squeeze(0))


# ---------------------------------------------------------------------------- Transformer


_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


class _TransformerLayer(Module):
    """What the encoder and the decoder layer share, with PyTorch's submodule names (in
    PyTorch's order, so ``state_dict`` keys match): ``self_attn``, ``multihead_attn`` when
    ``_cross_attention`` (the decoder), the feed-forward network ``linear1 -> dropout ->
    linear2``, one ``norm{i}`` and ``dropout{i}`` per residual block, and the residual itself
    with its layer norm before (``norm_first``) or after the block."""

    _cross_attention = False

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str | Callable[[Tensor], Tensor] = "relu",
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        device=None,
        dtype=None,
    ):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        attn_kw = dict(dropout=dropout, bias=bias, batch_first=batch_first, **kw)
        self.self_attn = MultiheadAttention(d_model, nhead, **attn_kw)
        if self._cross_attention:
            self.multihead_attn = MultiheadAttention(d_model, nhead, **attn_kw)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.norm_first = norm_first
        n_blocks = 3 if self._cross_attention else 2
        for i in range(1, n_blocks + 1):
            setattr(self, f"norm{i}", LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw))
        for i in range(1, n_blocks + 1):
            setattr(self, f"dropout{i}", Dropout(dropout))
        if isinstance(activation, str):
            if activation not in _ACTIVATIONS:
                raise ValueError(f"activation should be relu/gelu, not {activation!r}")
            activation = _ACTIVATIONS[activation]
        self.activation = activation

    def _residual(self, x: Tensor, norm: Module, block: Callable, *args) -> Tensor:
        """``x + block(norm(x))`` pre-norm, ``norm(x + block(x))`` post-norm."""
        if self.norm_first:
            return x + block(norm(x), *args)
        y = block(x, *args)
        shape = tuple(getattr(norm, "normalized_shape", ()))
        if (type(norm) is LayerNorm and not _autocast.on and x.shape[x.ndim - len(shape):] == shape
                and fused_enabled("layer_norm", x, y, norm.weight, norm.bias)):
            # the residual sum inside the layer norm's kernel (one node, no sum array)
            return kernels.layer_norm.apply_residual(x, y, norm.normalized_shape, norm.weight,
                                                     norm.bias, norm.eps)
        return norm(x + y)

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal) -> Tensor:
        x, _ = self.self_attn(
            x,
            x,
            x,
            attn_mask=attn_mask,
            key_padding_mask=key_padding_mask,
            need_weights=False,
            is_causal=is_causal,
        )
        return self.dropout1(x)

    def _ff_block(self, x: Tensor, out_dropout: Dropout) -> Tensor:
        lin1 = self.linear1
        if (self.activation is F.relu and type(lin1) is Linear and is_fused()
                and (self.dropout.p == 0 or not self.dropout.training)):
            # linear1 and the ReLU as one node: the ReLU in place on the product (fused path)
            h = linalg.linear(x, lin1.weight, lin1.bias, relu=True)
        else:
            h = self.dropout(self.activation(lin1(x)))
        return out_dropout(self.linear2(h))


class TransformerEncoderLayer(_TransformerLayer):
    r"""Self-attention and a feed-forward network, each with a residual connection and layer
    norm (PyTorch's layer, submodule names and defaults).

    Post-norm (``norm_first=False``, the original Transformer):

    .. math::
        x = \mathrm{LN}_1(x + \mathrm{SA}(x)), \qquad x = \mathrm{LN}_2(x + \mathrm{FF}(x))

    pre-norm (``norm_first=True``):

    .. math::
        x = x + \mathrm{SA}(\mathrm{LN}_1(x)), \qquad x = x + \mathrm{FF}(\mathrm{LN}_2(x))

    with ``SA(x) = dropout1(self_attn(x, x, x))`` and
    ``FF(x) = dropout2(linear2(dropout(activation(linear1(x)))))``.

    Args:
        d_model: model width E.
        nhead: attention heads.
        dim_feedforward: hidden width of the feed-forward network.
        dropout: dropout probability (attention weights and the three dropouts).
        activation: ``'relu'``, ``'gelu'`` or a callable (a Module becomes a submodule).
        layer_norm_eps: LayerNorm's eps.
        batch_first: (B, T, E) instead of (T, B, E).
        norm_first: pre-norm instead of post-norm.
        bias: biases in the linear layers and layer norms.

    Forward: ``src`` (T, B, E); ``src_mask`` (T, T) or (B * nhead, T, T) and
    ``src_key_padding_mask`` (B, T) in MultiheadAttention's convention (bool True = may not
    attend); ``is_causal`` as in :class:`MultiheadAttention`.

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, batch_first=True)
        >>> layer(mg.randn(3, 5, 8), is_causal=True).shape
        (3, 5, 8)
    """

    def forward(
        self,
        src: Tensor,
        src_mask: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
        is_causal: bool = False,
    ) -> Tensor:
        """Returns a tensor shaped like ``src``."""
        x = self._residual(src, self.norm1, self._sa_block, src_mask, src_key_padding_mask,
                           is_causal)
        return self._residual(x, self.norm2, self._ff_block, self.dropout2)


class TransformerEncoder(GradientCheckpointing, Module):
    """A stack of ``num_layers`` copies of ``encoder_layer`` (``layers.{i}``), then ``norm``.

    Each layer is a deep copy, so the copies start equal and train apart (as PyTorch). After
    ``gradient_checkpointing_enable()`` each layer's activations are recomputed in backward
    while training (:mod:`minigrad.utils.checkpoint`).

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16)
        >>> enc = nn.TransformerEncoder(layer, num_layers=2, norm=nn.LayerNorm(8))
        >>> enc(mg.randn(5, 3, 8)).shape
        (5, 3, 8)
    """

    def __init__(
        self,
        encoder_layer: TransformerEncoderLayer,
        num_layers: int,
        norm: Module | None = None,
        enable_nested_tensor: bool = True,
        mask_check: bool = True,
    ):
        super().__init__()
        self.layers = ModuleList([copy.deepcopy(encoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm

    def forward(
        self,
        src: Tensor,
        mask: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
        is_causal: bool | None = None,
    ) -> Tensor:
        """Run every layer with the same masks; returns a tensor shaped like ``src``."""
        x = src
        for layer in self.layers:  # checkpointed after gradient_checkpointing_enable()
            x = self.run_block(
                layer,
                x,
                src_mask=mask,
                src_key_padding_mask=src_key_padding_mask,
                is_causal=bool(is_causal),
            )
        if self.norm is not None:
            x = self.norm(x)
        return x
