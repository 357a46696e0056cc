"""`DistributedSampler`: each rank its own shard of a data set, in PyTorch's very order.

With N ranks, every epoch the indices ``0 .. len(dataset) - 1`` are (optionally) shuffled, the
list is padded by wrapping round (or cut, with ``drop_last``) to a multiple of N, and rank r
takes every N-th index starting at r. Every rank thus has the same number of examples (the same
number of steps: no rank waits in a collective for another that has run out of data).

The shuffle is PyTorch's own: ``torch.randperm(n, generator=g)`` with ``g`` seeded
``seed + epoch``, reproduced here in NumPy (`randperm`), so that a minigrad run sees its data in
the order a PyTorch run with the same seed does.

Example:
    >>> sampler = DistributedSampler(range(10), num_replicas=3, rank=1, shuffle=False)
    >>> list(sampler)          # 10 padded to 12: 0..9, 0, 1; rank 1 takes 1, 4, 7, 0
    [1, 4, 7, 0]
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sized

import numpy as np

from minigrad import distributed as dist

__all__ = ["DistributedSampler", "randperm"]

# torch.randperm on the CPU draws one 32-bit number per position below this size (above it,
# 64-bit numbers and another algorithm)
_RANDPERM_SMALL = (2**32 - 1) // 20


def randperm(n: int, seed: int) -> np.ndarray:
    """``torch.randperm(n, generator=torch.Generator().manual_seed(seed))``, in NumPy.

    PyTorch's CPU generator is a 32-bit Mersenne Twister (mt19937) seeded with the low 32 bits
    of `seed`, which is NumPy's legacy ``RandomState(seed)``; randperm starts from
    ``0 .. n-1`` and, for i = 0 .. n-2, swaps position i with position ``i + r_i % (n - i)``,
    r_i the generator's i-th 32-bit output.

    Example:
        >>> randperm(10, 5).tolist()          # torch.randperm(10, generator=g.manual_seed(5))
        [1, 4, 9, 6, 3, 5, 0, 2, 8, 7]
    """
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    if n >= _RANDPERM_SMALL:
        raise NotImplementedError(f"randperm of {n} >= {_RANDPERM_SMALL} elements (PyTorch "
                                  "draws 64-bit numbers there)")
    _, key, pos, _, _ = np.random.RandomState(seed & 0xFFFFFFFF).get_state()
    mt = np.random.MT19937()
    mt.state = {"bit_generator": "MT19937", "state": {"key": key, "pos": pos}}
    draws = max(n - 1, 0)
    offsets = (mt.random_raw(draws) % np.arange(n, n - draws, -1, dtype=np.uint64)).tolist()
    perm = list(range(n))
    for i, z in enumerate(offsets):  # NOTE: sequential swaps; each depends on the last
        j = i + z
        perm[i], perm[j] = perm[j], perm[i]
    return np.asarray(perm, dtype=np.int64)


class DistributedSampler:
    """The indices of one rank's shard of `dataset` (PyTorch's
    ``torch.utils.data.DistributedSampler``); give it to a `DataLoader` as ``sampler=``.

    Args:
        dataset: anything with a ``len``.
        num_replicas: the number of ranks (default: the process group's world size).
        rank: this rank (default: the process group's rank).
        shuffle: a new order every epoch (call `set_epoch` before each); False keeps
            ``0 .. n-1``.
        seed: the shuffle's seed, the same on every rank; epoch e uses ``seed + e``.
        drop_last: cut the tail so that it divides evenly, instead of padding by repeating
            the first indices.
    """

    def __init__(self, dataset: Sized, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False) -> None:
        if num_replicas is None:
            num_replicas = dist.get_world_size()
        if rank is None:
            rank = dist.get_rank()
        if rank >= num_replicas or rank < 0:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval "
                             f"[0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.epoch = 0
        self.drop_last = drop_last
        n = len(dataset)
        if drop_last and n % self.num_replicas != 0:
            self.num_samples = math.ceil((n - self.num_replicas) / self.num_replicas)
        else:
            self.num_samples = math.ceil(n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas
        self.shuffle = shuffle
        self.seed = seed

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        indices = randperm(n, self.seed + self.epoch) if self.shuffle else np.arange(n)
        if not self.drop_last:
            padding = self.total_size - n
            if padding > 0:  # wrap round, as many times as needed
                indices = np.concatenate([indices, np.resize(indices, padding)])
        else:
            indices = indices[: self.total_size]
        return iter(indices[self.rank : self.total_size : self.num_replicas].tolist())

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Sets the epoch, which changes the shuffle; call it before each epoch
        (`minigrad.train.fit` does)."""
        self.epoch = int(epoch)
