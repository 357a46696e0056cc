"""Exercise shard_indices: the data-parallel split of an epoch's order, checked against
minigrad's ``DistributedSampler`` (PyTorch's split) with padding, wrapping and ``drop_last``,
and on what every split must do: equal shard sizes that together cover the data set."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from minigrad.data.sampler import DistributedSampler, randperm
from minigrad.exercises._base import Exercise, Wrong

__all__ = ["EXERCISE", "solution"]  # the checks are reached through EXERCISE.checks


def _minigrad_shard(order, num_replicas, rank, drop_last=False):
    """DistributedSampler's shard for this order (its own shuffle off, the order applied)."""
    order = np.asarray(order)
    sampler = DistributedSampler(range(len(order)), num_replicas, rank, shuffle=False,
                                 drop_last=drop_last)
    return [int(order[i]) for i in sampler]


def _check(module, n, num_replicas, drop_last, seed=0):
    order = randperm(n, seed)
    shards = []
    for rank in range(num_replicas):
        got = module.shard_indices(order.copy(), num_replicas, rank, drop_last=drop_last)
        try:
            got = [int(i) for i in got]
        except TypeError:
            raise Wrong(f"shard_indices should return a list of ints, returned a "
                        f"{type(got).__name__}") from None
        shards.append(got)
    what = f"n = {n}, {num_replicas} ranks" + (", drop_last" if drop_last else "")
    sizes = [len(s) for s in shards]
    if len(set(sizes)) != 1:
        raise Wrong(f"{what}: the shards have {sizes} indices; every rank must get as many "
                    "(or some rank waits for the others forever)")
    covered = set().union(*shards)
    if not drop_last and covered != set(order.tolist()):
        raise Wrong(f"{what}: {len(set(order.tolist()) - covered)} indices are in no shard")
    for rank, got in enumerate(shards):
        expected = _minigrad_shard(order, num_replicas, rank, drop_last)
        if got != expected:
            raise Wrong(f"{what}: rank {rank} gets {got[:8]}{'...' if len(got) > 8 else ''}, "
                        f"expected {expected[:8]}{'...' if len(expected) > 8 else ''} "
                        f"({len(expected)} indices)")


def check_even(module):
    _check(module, n=12, num_replicas=3, drop_last=False)


def check_padding(module):
    _check(module, n=10, num_replicas=4, drop_last=False)
    _check(module, n=3, num_replicas=8, drop_last=False)  # padding wraps round twice


def check_drop_last(module):
    _check(module, n=10, num_replicas=4, drop_last=True)


def solution():
    """minigrad's own DistributedSampler split, under the stub's name."""
    return SimpleNamespace(shard_indices=_minigrad_shard)


EXERCISE = Exercise(
    name="shard_indices",
    title="each rank's shard of an epoch (PyTorch's DistributedSampler split)",
    lesson="13-data-parallel.md",
    solution_in="minigrad/data/sampler.py: DistributedSampler.__iter__",
    checks=(
        ("12 examples on 3 ranks", check_even),
        ("padding: 10 on 4 ranks, and 3 on 8 (wrapping round)", check_padding),
        ("drop_last: 10 on 4 ranks", check_drop_last),
    ),
    solution=solution,
)
