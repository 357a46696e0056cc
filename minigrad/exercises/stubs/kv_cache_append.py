"""Exercise kv_cache_append: the key/value cache that makes decoding one token cost one step.

Lesson: docs/course/11-kv-cache.md. minigrad's own answer: ``KVCache.update`` in
minigrad/models/llama.py.

A decoder attends each new token's query to the keys and values of every earlier position.
Recomputing them at every token costs O(T) projections per token; a cache stores them once.
Store them in a preallocated buffer of ``capacity`` positions, so that a new token writes
its key in place instead of re-concatenating the whole past (a copy of O(T) per token):

- ``key`` and ``value`` have shape (B, H, T_new, D): T_new positions (the prompt first, then
  one token at a time);
- on the first call, or when ``length + T_new`` does not fit, allocate a buffer of
  ``max(capacity, length + T_new, 2 * old capacity)`` positions and copy the old positions
  over (doubling keeps the total copying linear);
- write the new positions after the ``length`` stored ones, advance ``length``, and return
  all keys and values so far, (B, H, length, D), as *views* of the buffers (no copy).

Check your work with ``minigrad exercises check kv_cache_append``.
"""

import numpy as np  # noqa: F401  (np.empty is what you need)


class KVCache:
    """One attention layer's keys and values, in (B, H, capacity, D) buffers."""

    def __init__(self, capacity=0):
        self.keys = None  # the buffers, allocated on the first update
        self.values = None
        self.length = 0  # positions stored
        self.capacity = capacity

    def update(self, key, value):
        """Store ``key`` and ``value`` (B, H, T_new, D); return all keys and values so far."""
        raise NotImplementedError("write KVCache.update: return (keys, values), views")
