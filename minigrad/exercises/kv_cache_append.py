"""Exercise kv_cache_append: a preallocated key/value cache, checked on contents (what a
prompt and then single tokens leave in it), on views (decoding never copies the past while
the buffer has room) and on growth, against minigrad's own `KVCache` (models/llama.py)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from minigrad.autograd import no_grad
from minigrad.exercises._base import Exercise, Wrong, close, expect_tuple
from minigrad.models.llama import KVCache
from minigrad.tensor import Tensor

__all__ = ["EXERCISE", "solution"]  # the checks are reached through EXERCISE.checks

B, H, D = 2, 3, 4
CHUNKS = (3, 1, 1, 1, 1)  # a prompt of 3 positions, then 4 tokens one at a time


def _feed(module, capacity):
    """Every (keys, values) the cache returns, and the keys and values it was fed."""
    rng = np.random.default_rng(0)
    cache = module.KVCache(capacity)
    fed_k, fed_v, returned = [], [], []
    for steps in CHUNKS:
        k, v = rng.normal(size=(B, H, steps, D)), rng.normal(size=(B, H, steps, D))
        fed_k.append(k)
        fed_v.append(v)
        returned.append(expect_tuple("KVCache.update", cache.update(k.copy(), v.copy()), 2))
    return cache, fed_k, fed_v, returned


def _check_contents(module, capacity):
    cache, fed_k, fed_v, returned = _feed(module, capacity)
    for n, (keys, values) in enumerate(returned, 1):
        close(f"the keys returned by update number {n}", keys, np.concatenate(fed_k[:n], 2))
        close(f"the values returned by update number {n}", values, np.concatenate(fed_v[:n], 2))
    if cache.length != sum(CHUNKS):
        raise Wrong(f"length is {cache.length} after storing {sum(CHUNKS)} positions")


def check_contents(module):
    _check_contents(module, capacity=8)


def check_views(module):
    _, _, _, returned = _feed(module, capacity=8)
    for n in range(1, len(returned)):
        if not np.shares_memory(returned[n - 1][0], returned[n][0]):
            raise Wrong(f"the keys returned by update {n} and update {n + 1} are separate "
                        "arrays: with room in the buffer, return views of it (keys[:, :, "
                        ":length]) instead of copying the past at every token")


def check_growth(module):
    _check_contents(module, capacity=2)  # the prompt alone overflows it


def solution():
    """minigrad's own KVCache (one layer), under the stub's interface."""
    class OneLayer:
        def __init__(self, capacity=0):
            self.cache = KVCache(1, capacity)

        @property
        def length(self):
            return self.cache.length

        def update(self, key, value):
            with no_grad():
                keys, values = self.cache.update(0, Tensor(key), Tensor(value))
            self.cache.advance(key.shape[-2])
            return keys.data, values.data

    return SimpleNamespace(KVCache=OneLayer)


EXERCISE = Exercise(
    name="kv_cache_append",
    title="a preallocated key/value cache for decoding (views, growth by doubling)",
    lesson="11-kv-cache.md",
    solution_in="minigrad/models/llama.py: KVCache.update",
    checks=(
        ("a prompt, then one token at a time: the keys and values so far", check_contents),
        ("no copy of the past while the buffer has room", check_views),
        ("growing past the capacity keeps every position", check_growth),
    ),
    solution=solution,
)
