"""Text generation for causal language models: greedy decoding and sampling with a KV cache.

`GenerationMixin.generate` follows ``transformers``' ``generate``: it returns the prompt
followed by the new tokens; the repetition penalty applies in every mode, temperature, top-k
and top-p (in that order) when sampling. The prompt is run once and each new token then costs
one forward step over the cached keys and values (preallocated for the whole length). Rows of a
left-padded batch (``attention_mask`` 0 on the padding) generate as they would alone; a row that
reached EOS is filled with ``pad_token_id`` until every row has.

The logits processors are plain functions on NumPy arrays of shape ``(B, vocab)``.

Example:
    >>> import numpy as np
    >>> logits = np.array([[1.0, 3.0, 2.0]])
    >>> top_k_filter(logits, 2).tolist()
    [[-inf, 3.0, 2.0]]
    >>> repetition_penalty(np.array([[2.0, -1.0, 0.5]]), np.array([[0, 1]]), 2.0).tolist()
    [[1.0, -2.0, 0.5]]
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import numpy as np

from minigrad import backend
from minigrad.autograd import no_grad
from minigrad.tensor import Tensor

__all__ = ["GenerationMixin", "repetition_penalty", "sample", "top_k_filter", "top_p_filter"]


def repetition_penalty(logits: np.ndarray, ids: np.ndarray, penalty: float) -> np.ndarray:
    """CTRL's penalty on tokens already in ``ids`` (B, T): a positive logit divided by
    ``penalty``, a negative one multiplied (transformers' rule)."""
    if penalty == 1.0:
        return logits
    logits = logits.copy()
    rows = np.arange(logits.shape[0])[:, None]
    seen = logits[rows, ids]
    logits[rows, ids] = np.where(seen < 0, seen * penalty, seen / penalty)
    return logits


def top_k_filter(logits: np.ndarray, k: int) -> np.ndarray:
    """Keep the ``k`` largest logits of each row (ties with the k-th kept), the rest -inf."""
    k = min(int(k), logits.shape[-1])
    kth = np.partition(logits, -k, axis=-1)[:, -k][:, None]
    return np.where(logits < kth, -np.inf, logits)


def top_p_filter(logits: np.ndarray, p: float) -> np.ndarray:
    """Nucleus filtering: keep the smallest set of most likely tokens whose probability
    reaches ``p`` (at least one), the rest -inf (transformers' TopPLogitsWarper)."""
    order = np.argsort(logits, axis=-1, kind="stable")  # ascending, as transformers sorts
    ascending = np.take_along_axis(logits, order, axis=-1)
    probs = _softmax(ascending)
    remove = np.cumsum(probs, axis=-1) <= 1 - p
    remove[:, -1] = False  # the most likely token always stays
    out = logits.copy()
    np.put_along_axis(out, order, np.where(remove, -np.inf, ascending), axis=-1)
    return out


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def sample(logits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One token per row, drawn from ``softmax(logits)`` with ``rng``."""
    probs = _softmax(logits.astype(np.float64))
    cdf = np.cumsum(probs, axis=-1)
    draws = rng.random((logits.shape[0], 1)) * cdf[:, -1:]
    return np.minimum((cdf < draws).sum(axis=-1), logits.shape[-1] - 1)


def _host(values: Any) -> np.ndarray:
    """A Tensor (on any device), an array or nested lists as a NumPy array."""
    if isinstance(values, Tensor):
        return np.asarray(backend.to_device(values.detach().data, backend.CPU))
    return np.asarray(values)


def _eos_set(eos: Union[int, Sequence[int], None]) -> np.ndarray:
    if eos is None:
        return np.zeros(0, dtype=np.int64)
    return np.atleast_1d(np.asarray(eos, dtype=np.int64))


class GenerationMixin:
    """``generate`` for a model whose ``forward(input_ids, attention_mask, past_key_values,
    use_cache, logits_to_keep)`` returns ``.logits`` and ``.past_key_values``, with a
    ``config`` (``eos_token_id``, ``pad_token_id``) and ``new_cache(capacity)``."""

    def generate(self, input_ids: Any, max_new_tokens: int = 20, do_sample: bool = False,
                 temperature: float = 1.0, top_k: Optional[int] = None,
                 top_p: Optional[float] = None, repetition_penalty: float = 1.0,
                 eos_token_id: Union[int, Sequence[int], None] = None,
                 streamer: Any = None, attention_mask: Any = None,
                 pad_token_id: Optional[int] = None, seed: Optional[int] = None) -> Tensor:
        """Continue ``input_ids`` by up to ``max_new_tokens`` tokens.

        Args:
            input_ids: ``(B, T)`` prompt ids (a Tensor, an array or a list of lists).
            max_new_tokens: the most tokens to add.
            do_sample: sample (else greedy: the argmax at every step).
            temperature, top_k, top_p: the sampling warpers (ignored when greedy).
            repetition_penalty: > 1 discourages tokens already in the sequence.
            eos_token_id: stop a row at this token (or any of a list); None: the config's.
            streamer: an object with ``put(ids)`` / ``end()`` (transformers' streamers: the
                prompt is put first, then each new token), or a callable given the list of
                new token ids (one per row) at each step.
            attention_mask: ``(B, T)``, 0 on left padding.
            pad_token_id: what finished rows get (default: the config's, else the EOS).
            seed: sample from a generator with this seed (default: minigrad's CPU generator,
                seeded by ``mg.manual_seed``).

        Returns:
            ``(B, T + n)`` int64 ids: the prompt then the new tokens.
        """
        ids = _host(input_ids)
        ids = np.atleast_2d(ids).astype(np.int64)
        B, T = ids.shape
        config = self.config
        eos = _eos_set(config.eos_token_id if eos_token_id is None else eos_token_id)
        if pad_token_id is None:
            pad_token_id = config.pad_token_id
        if pad_token_id is None:
            pad_token_id = int(eos[0]) if eos.size else 0
        mask = None
        if attention_mask is not None:
            mask = _host(attention_mask).astype(np.int64).reshape(B, T)
            if mask.all():
                mask = None  # no padding: the causal fast path
        rng = np.random.default_rng(seed) if seed is not None else backend.generator(backend.CPU)
        device = next(iter(self.parameters())).device
        put = getattr(streamer, "put", None)
        if put is not None:
            put(ids.copy())
        cache = self.new_cache(T + max_new_tokens)
        finished = np.zeros(B, dtype=bool)
        tokens = [ids]
        step_ids = ids
        was_training = getattr(self, "training", False)
        self.eval()
        try:
            with no_grad():
                for _ in range(max_new_tokens):
                    out = self(
                        Tensor._make(backend.to_device(step_ids, device)),
                        attention_mask=(None if mask is None
                                        else Tensor._make(backend.to_device(mask, device))),
                        past_key_values=cache, use_cache=True, logits_to_keep=1,
                    )
                    logits = _host(out.logits)[:, -1].astype(np.float32)
                    nxt = self._next_tokens(logits, np.concatenate(tokens, axis=1), do_sample,
                                            temperature, top_k, top_p, repetition_penalty, rng)
                    nxt = np.where(finished, pad_token_id, nxt).astype(np.int64)
                    tokens.append(nxt[:, None])
                    if put is not None:
                        put(nxt.copy())
                    elif callable(streamer):
                        streamer([int(t) for t in nxt])
                    finished |= np.isin(nxt, eos)
                    if finished.all():
                        break
                    step_ids = nxt[:, None]
                    if mask is not None:
                        mask = np.concatenate([mask, np.ones((B, 1), np.int64)], axis=1)
        finally:
            if was_training:
                self.train()
            end = getattr(streamer, "end", None)
            if end is not None:
                end()
        return Tensor._make(backend.to_device(np.concatenate(tokens, axis=1), device))

    @staticmethod
    def _next_tokens(logits: np.ndarray, ids: np.ndarray, do_sample: bool, temperature: float,
                     top_k: Optional[int], top_p: Optional[float], penalty: float,
                     rng) -> np.ndarray:
        logits = repetition_penalty(logits, ids, penalty)
        if not do_sample:
            return logits.argmax(axis=-1)
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0 when sampling, got {temperature}")
        logits = logits / np.float32(temperature)
        if top_k:
            logits = top_k_filter(logits, top_k)
        if top_p is not None and top_p < 1.0:
            logits = top_p_filter(logits, top_p)
        return sample(logits, rng)


