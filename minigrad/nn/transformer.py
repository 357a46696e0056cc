"""The decoder half of the Transformer and the whole encoder-decoder model, with PyTorch's
classes, arguments, submodule names (so ``state_dict`` keys match ``torch.nn.Transformer``'s)
and defaults: ``TransformerDecoderLayer``, ``TransformerDecoder``, ``Transformer``.

The encoder half (``TransformerEncoderLayer``, ``TransformerEncoder``) and
``MultiheadAttention`` are in :mod:`minigrad.nn.attention`.
"""

from __future__ import annotations

import copy
from typing import Callable

import numpy as np

from minigrad.nn import init
from minigrad.nn.attention import TransformerEncoder, TransformerEncoderLayer, _TransformerLayer
from minigrad.nn.checkpoint import GradientCheckpointing
from minigrad.nn.layers import LayerNorm
from minigrad.nn.module import Module, ModuleList
from minigrad.tensor import Tensor, tensor

__all__ = ["Transformer", "TransformerDecoder", "TransformerDecoderLayer"]


class TransformerDecoderLayer(_TransformerLayer):
    r"""Self-attention over the target, attention to the encoder's output (``memory``), and a
    feed-forward network, each with a residual connection and layer norm (PyTorch's layer).

    Post-norm (``norm_first=False``):

    .. math::
        x = \mathrm{LN}_1(x + \mathrm{SA}(x)),\quad x = \mathrm{LN}_2(x + \mathrm{MHA}(x, m)),
        \quad x = \mathrm{LN}_3(x + \mathrm{FF}(x))

    pre-norm (``norm_first=True``): ``x = x + SA(LN1(x))``, ``x = x + MHA(LN2(x), m)``,
    ``x = x + FF(LN3(x))``; with ``SA = dropout1(self_attn)``, ``MHA = dropout2(
    multihead_attn)``, ``FF(x) = dropout3(linear2(dropout(activation(linear1(x)))))``.

    Args: as :class:`~minigrad.nn.TransformerEncoderLayer`.

    Forward: ``tgt`` (T, B, E) and ``memory`` (S, B, E) (batch first with ``batch_first``);
    ``tgt_mask`` (T, T), ``memory_mask`` (T, S), key padding masks (B, T) and (B, S), in
    MultiheadAttention's convention (bool True = may not attend).

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> layer = nn.TransformerDecoderLayer(8, 2, dim_feedforward=16, batch_first=True)
        >>> layer(mg.randn(3, 5, 8), mg.randn(3, 7, 8), tgt_is_causal=True).shape
        (3, 5, 8)
    """

    _cross_attention = True

    def forward(
        self,
        tgt: Tensor,
        memory: Tensor,
        tgt_mask: Tensor | None = None,
        memory_mask: Tensor | None = None,
        tgt_key_padding_mask: Tensor | None = None,
        memory_key_padding_mask: Tensor | None = None,
        tgt_is_causal: bool = False,
        memory_is_causal: bool = False,
    ) -> Tensor:
        """Returns a tensor shaped like ``tgt``."""
        x = self._residual(tgt, self.norm1, self._sa_block, tgt_mask, tgt_key_padding_mask,
                           tgt_is_causal)
        x = self._residual(x, self.norm2, self._mha_block, memory, memory_mask,
                           memory_key_padding_mask, memory_is_causal)
        return self._residual(x, self.norm3, self._ff_block, self.dropout3)

    def _mha_block(self, x, mem, attn_mask, key_padding_mask, is_causal) -> Tensor:
        x, _ = self.multihead_attn(x, mem, mem, attn_mask=attn_mask,
                                   key_padding_mask=key_padding_mask, need_weights=False,
                                   is_causal=is_causal)
        return self.dropout2(x)


class TransformerDecoder(GradientCheckpointing, Module):
    """A stack of ``num_layers`` copies of ``decoder_layer`` (``layers.{i}``), then ``norm``.

    As :class:`~minigrad.nn.TransformerEncoder`: deep copies, and after
    ``gradient_checkpointing_enable()`` each layer is recomputed in backward while training.

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> layer = nn.TransformerDecoderLayer(8, 2, dim_feedforward=16)
        >>> dec = nn.TransformerDecoder(layer, num_layers=2, norm=nn.LayerNorm(8))
        >>> dec(mg.randn(5, 3, 8), mg.randn(4, 3, 8)).shape
        (5, 3, 8)
    """

    def __init__(self, decoder_layer: TransformerDecoderLayer, num_layers: int,
                 norm: Module | None = None):
        super().__init__()
        self.layers = ModuleList([copy.deepcopy(decoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm

    def forward(
        self,
        tgt: Tensor,
        memory: Tensor,
        tgt_mask: Tensor | None = None,
        memory_mask: Tensor | None = None,
        tgt_key_padding_mask: Tensor | None = None,
        memory_key_padding_mask: Tensor | None = None,
        tgt_is_causal: bool | None = None,
        memory_is_causal: bool = False,
    ) -> Tensor:
        """Run every layer with the same memory and masks; returns a tensor like ``tgt``."""
        x = tgt
        for layer in self.layers:  # checkpointed after gradient_checkpointing_enable()
            x = self.run_block(
                layer, x, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                tgt_key_padding_mask=tgt_key_padding_mask,
                memory_key_padding_mask=memory_key_padding_mask,
                tgt_is_causal=bool(tgt_is_causal), memory_is_causal=memory_is_causal,
            )
        if self.norm is not None:
            x = self.norm(x)
        return x


class Transformer(Module):
    """The encoder-decoder Transformer (Vaswani et al. 2017) with PyTorch's arguments and
    submodules: ``encoder`` (a :class:`~minigrad.nn.TransformerEncoder` ending in a
    LayerNorm) and ``decoder`` (a :class:`TransformerDecoder` ending in a LayerNorm); every
    weight matrix starts Xavier-uniform, as in PyTorch.

    Forward: ``src`` (S, B, E), ``tgt`` (T, B, E) (batch first with ``batch_first``), masks as
    in the layers; returns (T, B, E).

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> model = nn.Transformer(d_model=8, nhead=2, num_encoder_layers=1,
        ...                        num_decoder_layers=1, dim_feedforward=16)
        >>> tgt_mask = nn.Transformer.generate_square_subsequent_mask(4)
        >>> model(mg.randn(6, 2, 8), mg.randn(4, 2, 8), tgt_mask=tgt_mask).shape
        (4, 2, 8)
    """

    def __init__(
        self,
        d_model: int = 512,
        nhead: int = 8,
        num_encoder_layers: int = 6,
        num_decoder_layers: int = 6,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str | Callable[[Tensor], Tensor] = "relu",
        custom_encoder: Module | None = None,
        custom_decoder: Module | None = None,
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        device=None,
        dtype=None,
    ):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        layer_kw = dict(dim_feedforward=dim_feedforward, dropout=dropout,
                        activation=activation, layer_norm_eps=layer_norm_eps,
                        batch_first=batch_first, norm_first=norm_first, bias=bias, **kw)
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            self.encoder = TransformerEncoder(
                TransformerEncoderLayer(d_model, nhead, **layer_kw), num_encoder_layers,
                LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw))
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            self.decoder = TransformerDecoder(
                TransformerDecoderLayer(d_model, nhead, **layer_kw), num_decoder_layers,
                LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw))
        self.d_model, self.nhead, self.batch_first = d_model, nhead, batch_first
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        for p in self.parameters():
            if p.ndim > 1:
                init.xavier_uniform_(p)

    def forward(
        self,
        src: Tensor,
        tgt: Tensor,
        src_mask: Tensor | None = None,
        tgt_mask: Tensor | None = None,
        memory_mask: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
        tgt_key_padding_mask: Tensor | None = None,
        memory_key_padding_mask: Tensor | None = None,
        src_is_causal: bool | None = None,
        tgt_is_causal: bool | None = None,
        memory_is_causal: bool = False,
    ) -> Tensor:
        """Encode ``src`` into the memory, then decode ``tgt`` against it."""
        batch = 0 if self.batch_first else 1
        if src.ndim == 3 and tgt.ndim == 3 and src.shape[batch] != tgt.shape[batch]:
            raise RuntimeError("the batch number of src and tgt must be equal")
        if src.shape[-1] != self.d_model or tgt.shape[-1] != self.d_model:
            raise RuntimeError("the feature number of src and tgt must be equal to d_model")
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask,
                              is_causal=src_is_causal)
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask,
                            memory_key_padding_mask=memory_key_padding_mask,
                            tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal)

    @staticmethod
    def generate_square_subsequent_mask(sz: int, device=None, dtype=None) -> Tensor:
        """A float (sz, sz) mask: 0 on and below the diagonal, -inf above (no peeking ahead).
        """
        mask = np.triu(np.full((sz, sz), -np.inf, dtype=np.float32), k=1)
        return tensor(mask, dtype=dtype, device=device)
