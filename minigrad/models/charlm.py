"""Character-level language models: a char-RNN (LSTM or GRU) and a GPT-style transformer.

Both read a batch of token ids ``(B, T)`` and return next-token logits ``(B, T, vocab_size)``:
the logits at position t score the token at t + 1 and depend only on the tokens ``0..t``.

- :class:`CharRNN`: ``Embedding -> LSTM/GRU (batch first) -> Dropout -> Linear``, Karpathy's
  char-rnn.
- :class:`TransformerLM`: nanoGPT's ``GPT`` built from minigrad layers, with nanoGPT's module
  names (``transformer.wte``, ``transformer.h.0.attn.c_attn``, ...), initialisation and weight
  tying, so the code reads like nanoGPT's ``model.py``::

      x = wte(idx) + wpe(pos)
      for block in h:                   # pre-norm residual blocks
          x = x + attn(ln_1(x))         # causal self-attention
          x = x + mlp(ln_2(x))          # Linear(C, 4C) -> GELU -> Linear(4C, C)
      logits = lm_head(ln_f(x))         # lm_head.weight is wte.weight (tied)

- :func:`generate` samples text autoregressively (temperature, top-k) with minigrad's random
  generator, so ``mg.manual_seed`` makes a sample repeatable.
- Each model's ``config`` is a JSON-ready dict and :func:`lm_from_config` rebuilds the model
  from it: checkpoints store the config next to the weights.

Example:
    >>> import minigrad as mg
    >>> from minigrad.models.charlm import CharRNN, TransformerLM, generate, lm_from_config
    >>> model = TransformerLM(vocab_size=10, block_size=8, n_layer=1, n_head=2, n_embd=8)
    >>> idx = mg.tensor([[1, 2, 3]])
    >>> model(idx).shape
    (1, 3, 10)
    >>> generate(model, idx, max_new_tokens=5).shape
    (1, 8)
    >>> rnn = lm_from_config(CharRNN(10, hidden=16, cell="gru").config)
    >>> rnn, rnn(idx).shape
    (CharRNN(vocab_size=10, hidden=16, layers=1, cell='gru', dropout=0.0), (1, 3, 10))
"""

from __future__ import annotations

import math
from typing import Optional, Union

import numpy as np

from minigrad import backend
from minigrad.autograd import no_grad
from minigrad.nn import init
from minigrad.nn.attention import scaled_dot_product_attention
from minigrad.nn.checkpoint import GradientCheckpointing
from minigrad.nn.layers import GELU, Dropout, Embedding, LayerNorm, Linear
from minigrad.nn.module import Module, ModuleDict, ModuleList
from minigrad.nn.rnn import GRU, LSTM
from minigrad.ops import softmax, where
from minigrad.tensor import Tensor, arange, rand, tensor

__all__ = ["CharRNN", "TransformerLM", "generate", "lm_from_config"]

State = Union[Tensor, tuple]


def _check_ids(idx: Tensor, name: str) -> None:
    """Token ids must be a (B, T) integer tensor."""
    if not isinstance(idx, Tensor):
        raise TypeError(f"{name}: expected a (B, T) integer Tensor of token ids, got "
                        f"{type(idx).__name__}")
    if idx.ndim != 2 or idx.dtype.kind not in "iu":
        raise ValueError(f"{name}: expected a (B, T) integer tensor of token ids, got shape "
                         f"{tuple(idx.shape)} and dtype {idx.dtype}")


# ------------------------------------------------------------------------------------------
# char-RNN
# ------------------------------------------------------------------------------------------


class CharRNN(Module):
    """A character-level RNN language model: ``Embedding -> LSTM/GRU -> Dropout -> Linear``.

    Args:
        vocab_size: number of distinct tokens (characters).
        hidden: hidden size of the recurrent layers (and the embedding size, unless
            `embedding_dim` is given).
        layers: number of stacked recurrent layers.
        cell: ``'lstm'`` or ``'gru'``.
        dropout: dropout between recurrent layers and before the output layer (training only).
        embedding_dim: size of the character embeddings (default `hidden`).

    Shape:
        idx: ``(B, T)`` integer token ids; output ``(B, T, vocab_size)`` logits.

    Example:
        >>> import minigrad as mg
        >>> model = CharRNN(vocab_size=5, hidden=8, layers=2, cell="lstm")
        >>> logits, state = model(mg.tensor([[0, 1, 2]]), return_state=True)
        >>> logits.shape, state[0].shape  # state: (h, c) for an LSTM, h for a GRU
        ((1, 3, 5), (2, 1, 8))
    """

    def __init__(self, vocab_size: int, hidden: int = 256, layers: int = 1,
                 cell: str = "lstm", dropout: float = 0.0,
                 embedding_dim: Optional[int] = None) -> None:
        super().__init__()
        if cell not in ("lstm", "gru"):
            raise ValueError(f"CharRNN: cell must be 'lstm' or 'gru', got {cell!r}")
        for name, value in (("vocab_size", vocab_size), ("hidden", hidden), ("layers", layers)):
            if int(value) < 1:
                raise ValueError(f"CharRNN: {name} must be a positive integer, got {value}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"CharRNN: dropout must be in [0, 1), got {dropout}")
        self.vocab_size, self.hidden, self.layers = int(vocab_size), int(hidden), int(layers)
        self.cell, self.dropout_p = cell, float(dropout)
        self.embedding_dim = int(embedding_dim or hidden)
        rnn_class = LSTM if cell == "lstm" else GRU
        self.embedding = Embedding(self.vocab_size, self.embedding_dim)
        self.rnn = rnn_class(self.embedding_dim, self.hidden, num_layers=self.layers,
                             batch_first=True, dropout=self.dropout_p if layers > 1 else 0.0)
        self.drop = Dropout(self.dropout_p)
        self.head = Linear(self.hidden, self.vocab_size)

    @property
    def config(self) -> dict:
        """The constructor's arguments as a JSON-ready dict (see `lm_from_config`)."""
        return {"model": self.cell, "vocab_size": self.vocab_size, "hidden": self.hidden,
                "layers": self.layers, "dropout": self.dropout_p,
                "embedding_dim": self.embedding_dim}

    def forward(self, idx: Tensor, state: Optional[State] = None,
                return_state: bool = False) -> Union[Tensor, tuple]:
        """Next-token logits for every position.

        Args:
            idx: ``(B, T)`` token ids.
            state: the recurrent state to start from (``(h, c)`` for an LSTM, ``h`` for a GRU,
                each ``(layers, B, hidden)``); zeros when None.
            return_state: also return the final state, to continue from it (generation).

        Returns:
            ``(B, T, vocab_size)`` logits, or ``(logits, state)`` with `return_state`.
        """
        _check_ids(idx, "CharRNN")
        x = self.embedding(idx)  # (B, T, E)
        out, state = self.rnn(x, state)  # (B, T, H)
        logits = self.head(self.drop(out))  # (B, T, V)
        return (logits, state) if return_state else logits

    def __repr__(self) -> str:
        return (f"CharRNN(vocab_size={self.vocab_size}, hidden={self.hidden}, "
                f"layers={self.layers}, cell={self.cell!r}, dropout={self.dropout_p})")


# ------------------------------------------------------------------------------------------
# GPT-style transformer
# ------------------------------------------------------------------------------------------


class CausalSelfAttention(Module):
    """Multi-head causal self-attention, nanoGPT's ``CausalSelfAttention``.

    One Linear ``c_attn`` makes queries, keys and values for all heads; position t attends
    positions ``0..t`` (``scaled_dot_product_attention(..., is_causal=True)``); ``c_proj``
    mixes the heads' outputs.
    """

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0,
                 bias: bool = False) -> None:
        super().__init__()
        if n_embd % n_head:
            raise ValueError(f"n_embd ({n_embd}) must be divisible by n_head ({n_head})")
        self.n_embd, self.n_head, self.dropout = n_embd, n_head, dropout
        self.c_attn = Linear(n_embd, 3 * n_embd, bias=bias)
        self.c_proj = Linear(n_embd, n_embd, bias=bias)
        self.resid_dropout = Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)  # each (B, T, C)
        # (B, T, C) -> (B, nh, T, hs): the heads become a batch dimension
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        y = scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True)
        y = y.transpose(1, 2).reshape(B, T, C)  # the heads side by side again
        return self.resid_dropout(self.c_proj(y))


class MLP(Module):
    """The feed-forward half of a block: ``Linear(C, 4C) -> GELU -> Linear(4C, C) -> Dropout``."""

    def __init__(self, n_embd: int, dropout: float = 0.0, bias: bool = False) -> None:
        super().__init__()
        self.c_fc = Linear(n_embd, 4 * n_embd, bias=bias)
        self.gelu = GELU()
        self.c_proj = Linear(4 * n_embd, n_embd, bias=bias)
        self.dropout = Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(Module):
    """A pre-norm transformer block: ``x + attn(ln_1(x))``, then ``x + mlp(ln_2(x))``."""

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0,
                 bias: bool = False) -> None:
        super().__init__()
        self.ln_1 = LayerNorm(n_embd, bias=bias)
        self.attn = CausalSelfAttention(n_embd, n_head, dropout, bias)
        self.ln_2 = LayerNorm(n_embd, bias=bias)
        self.mlp = MLP(n_embd, dropout, bias)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln_1(x))
        x = x + self.mlp(self.ln_2(x))
        return x


class TransformerLM(GradientCheckpointing, Module):
    """A GPT-style decoder-only transformer language model (nanoGPT's ``GPT``).

    Token and learned position embeddings, `n_layer` pre-norm causal self-attention blocks,
    a final LayerNorm and a linear head. Initialisation is nanoGPT's: weights N(0, 0.02),
    biases zero, and the residual projections (``c_proj``) N(0, 0.02 / sqrt(2 n_layer)).
    ``gradient_checkpointing_enable()`` recomputes each block's activations in backward while
    training instead of keeping them (:mod:`minigrad.utils.checkpoint`).

    Args:
        vocab_size: number of distinct tokens.
        block_size: the longest context (number of position embeddings).
        n_layer: number of transformer blocks.
        n_head: attention heads per block (must divide `n_embd`).
        n_embd: model width C.
        dropout: dropout on the embeddings, attention weights and residual branches.
        bias: biases in the Linear and LayerNorm layers (nanoGPT's ``train.py`` default,
            used for its tiny-Shakespeare figures, is False).
        tie_weights: the output head shares the token embedding matrix (as nanoGPT).

    Shape:
        idx: ``(B, T)`` integer token ids with ``T <= block_size``; output
        ``(B, T, vocab_size)`` logits.

    Example:
        >>> import minigrad as mg
        >>> model = TransformerLM(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128)
        >>> model.num_parameters(), model.num_parameters(non_embedding=True)  # nanoGPT: 0.80M
        (804096, 795904)
        >>> model.lm_head.weight is model.transformer.wte.weight
        True
    """

    def __init__(self, vocab_size: int, block_size: int, n_layer: int = 4, n_head: int = 4,
                 n_embd: int = 128, dropout: float = 0.0, bias: bool = False,
                 tie_weights: bool = True) -> None:
        super().__init__()
        for name, value in (("vocab_size", vocab_size), ("block_size", block_size),
                            ("n_layer", n_layer), ("n_head", n_head), ("n_embd", n_embd)):
            if int(value) < 1:
                raise ValueError(f"TransformerLM: {name} must be a positive integer, got {value}")
        if n_embd % n_head:
            raise ValueError(f"TransformerLM: n_embd ({n_embd}) must be divisible by n_head "
                             f"({n_head})")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"TransformerLM: dropout must be in [0, 1), got {dropout}")
        self.vocab_size, self.block_size = int(vocab_size), int(block_size)
        self.n_layer, self.n_head, self.n_embd = int(n_layer), int(n_head), int(n_embd)
        self.dropout, self.bias, self.tie_weights = float(dropout), bool(bias), bool(tie_weights)
        self.transformer = ModuleDict(dict(
            wte=Embedding(vocab_size, n_embd),
            wpe=Embedding(block_size, n_embd),
            drop=Dropout(dropout),
            h=ModuleList([Block(n_embd, n_head, dropout, bias) for _ in range(n_layer)]),
            ln_f=LayerNorm(n_embd, bias=bias),
        ))
        self.lm_head = Linear(n_embd, vocab_size, bias=False)
        if tie_weights:
            self.lm_head.weight = self.transformer.wte.weight  # one matrix, two uses
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):  # GPT-2's scaled init of residual projections
                init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))

    @staticmethod
    def _init_weights(module: Module) -> None:
        if isinstance(module, Linear):
            init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, Embedding):
            init.normal_(module.weight, mean=0.0, std=0.02)

    @property
    def config(self) -> dict:
        """The constructor's arguments as a JSON-ready dict (see `lm_from_config`)."""
        return {"model": "transformer", "vocab_size": self.vocab_size,
                "block_size": self.block_size, "n_layer": self.n_layer, "n_head": self.n_head,
                "n_embd": self.n_embd, "dropout": self.dropout, "bias": self.bias,
                "tie_weights": self.tie_weights}

    def num_parameters(self, non_embedding: bool = False) -> int:
        """Number of parameters (a tied matrix counts once); `non_embedding` leaves out the
        position embeddings, as nanoGPT reports."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.transformer.wpe.weight.numel()
        return n

    def forward(self, idx: Tensor) -> Tensor:
        """Next-token logits ``(B, T, vocab_size)`` for token ids ``idx`` ``(B, T)``."""
        _check_ids(idx, "TransformerLM")
        B, T = idx.shape
        if T > self.block_size:
            raise ValueError(f"TransformerLM: cannot forward a sequence of length {T}; the "
                             f"block size is only {self.block_size}")
        pos = arange(T, device=idx.device)  # (T,)
        tok_emb = self.transformer.wte(idx)  # (B, T, C)
        pos_emb = self.transformer.wpe(pos)  # (T, C), broadcast over the batch
        x = self.transformer.drop(tok_emb + pos_emb)
        for block in self.transformer.h:
            x = self.run_block(block, x)  # checkpointed after gradient_checkpointing_enable()
        x = self.transformer.ln_f(x)
        return self.lm_head(x)  # (B, T, vocab_size)

    def __repr__(self) -> str:
        return (f"TransformerLM(vocab_size={self.vocab_size}, block_size={self.block_size}, "
                f"n_layer={self.n_layer}, n_head={self.n_head}, n_embd={self.n_embd}, "
                f"dropout={self.dropout}, bias={self.bias}, tie_weights={self.tie_weights})")


# ------------------------------------------------------------------------------------------
# config and generation
# ------------------------------------------------------------------------------------------


def lm_from_config(config: dict) -> Module:
    """Builds a fresh (randomly initialised) model from a ``model.config`` dict.

    Args:
        config: a dict with ``"model"`` (``'lstm'``, ``'gru'`` or ``'transformer'``) and the
            constructor's arguments, as `CharRNN.config` and `TransformerLM.config` give.

    Returns:
        A `CharRNN` or a `TransformerLM`.

    Raises:
        ValueError: the dict does not describe one of these models.
    """
    if not isinstance(config, dict) or "model" not in config:
        raise ValueError(f"not a char-LM config (a dict with a 'model' key): {config!r}")
    kwargs = {k: v for k, v in config.items() if k != "model"}
    kind = config["model"]
    try:
        if kind in ("lstm", "gru"):
            return CharRNN(cell=kind, **kwargs)
        if kind == "transformer":
            return TransformerLM(**kwargs)
    except TypeError as exc:
        raise ValueError(f"bad {kind} config {config!r}: {exc}") from exc
    raise ValueError(f"unknown char-LM model {kind!r}; expected 'lstm', 'gru' or 'transformer'")


def _sample_next(logits: Tensor, temperature: float, top_k: Optional[int]) -> np.ndarray:
    """Draws one token id per row of ``logits`` (B, V); returns a (B, 1) int64 NumPy array.

    ``softmax(logits / temperature)``, restricted to the `top_k` largest logits, sampled by
    inverting the cumulative distribution at a uniform number from minigrad's CPU generator.
    """
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.xp.sort(logits.data, axis=-1)[:, -top_k][:, None]  # k-th largest per row
        logits = where(logits < Tensor._make(kth), -math.inf, logits)
    probs = backend.to_device(softmax(logits, dim=-1).data, backend.CPU).astype(np.float64)
    cdf = np.cumsum(probs, axis=-1)
    u = rand(probs.shape[0], 1, dtype="float64", device="cpu").numpy() * cdf[:, -1:]
    ids = (cdf <= u).sum(axis=-1, keepdims=True)  # first index whose cdf exceeds u
    return np.minimum(ids, probs.shape[-1] - 1).astype(np.int64)


def generate(model: Module, idx: Tensor, max_new_tokens: int, temperature: float = 1.0,
             top_k: Optional[int] = None) -> Tensor:
    """Continues each row of ``idx`` by `max_new_tokens` sampled tokens.

    A `TransformerLM` sees at most its last ``block_size`` tokens; a `CharRNN` reads the prompt
    once and then carries its recurrent state forward, one token at a time. The random draws
    come from minigrad's CPU generator, so ``mg.manual_seed(s)`` makes a sample repeatable
    (on every device). The model runs in eval mode (no dropout) and its mode is restored.

    Args:
        model: a `CharRNN` or a `TransformerLM` (or any module mapping ``(B, T)`` ids to
            ``(B, T, V)`` logits; then its ``block_size`` attribute, if any, crops the context).
        idx: ``(B, T)`` integer token ids, ``T >= 1``: the prompts.
        max_new_tokens: how many tokens to add.
        temperature: divides the logits; < 1 is more conservative, > 1 more random.
        top_k: sample only among the `top_k` most likely tokens.

    Returns:
        ``(B, T + max_new_tokens)`` token ids: the prompts followed by the samples.

    Example:
        >>> import minigrad as mg
        >>> model = CharRNN(vocab_size=4, hidden=8)
        >>> mg.manual_seed(0); a = generate(model, mg.tensor([[1]]), 6, top_k=2)
        >>> mg.manual_seed(0); b = generate(model, mg.tensor([[1]]), 6, top_k=2)
        >>> a.shape, a.tolist() == b.tolist()
        ((1, 7), True)
    """
    _check_ids(idx, "generate")
    if idx.shape[1] < 1:
        raise ValueError("generate: the prompt needs at least one token")
    if max_new_tokens < 0:
        raise ValueError(f"generate: max_new_tokens must be >= 0, got {max_new_tokens}")
    if not temperature > 0:
        raise ValueError(f"generate: temperature must be > 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"generate: top_k must be a positive integer, got {top_k}")
    was_training = model.training
    model.eval()
    out = [backend.to_device(idx.data, backend.CPU).astype(np.int64)]
    device = idx.device
    try:
        with no_grad():
            if isinstance(model, CharRNN):
                logits, state = model(idx, return_state=True)
                for i in range(max_new_tokens):
                    nxt = _sample_next(logits[:, -1, :], temperature, top_k)
                    out.append(nxt)
                    if i + 1 < max_new_tokens:
                        logits, state = model(tensor(nxt, device=device), state,
                                              return_state=True)
            else:
                block_size = getattr(model, "block_size", None)
                seq = out[0]
                for _ in range(max_new_tokens):
                    context = seq if block_size is None else seq[:, -block_size:]
                    logits = model(tensor(context, device=device))
                    nxt = _sample_next(logits[:, -1, :], temperature, top_k)
                    seq = np.concatenate([seq, nxt], axis=1)
                out = [seq]
    finally:
        model.train(was_training)
    return tensor(np.concatenate(out, axis=1), device=device)


def describe(config: dict) -> str:
    """A one-line description of a model config, e.g. ``'transformer 4 layers x 4 heads x 128'``.

    Example:
        >>> describe({"model": "gru", "vocab_size": 65, "hidden": 256, "layers": 2})
        'gru 2 layers x 256 hidden'
    """
    if config.get("model") == "transformer":
        return (f"transformer {config['n_layer']} layers x {config['n_head']} heads x "
                f"{config['n_embd']} dims, block {config['block_size']}")
    return f"{config.get('model')} {config.get('layers')} layers x {config.get('hidden')} hidden"

