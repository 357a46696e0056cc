"""Exercise shard_indices: which examples each rank trains on in data-parallel training
(PyTorch's ``DistributedSampler`` split).

Lesson: docs/course/13-data-parallel.md. minigrad's own answer: ``DistributedSampler.__iter__``
in minigrad/data/sampler.py.

Every rank gets the same ``order`` of the data set's n indices (the epoch's shuffle, drawn with
the same seed everywhere) and must pick its own shard, so that the ranks together cover the
data set and all take the same number of steps (a rank with one batch fewer would leave the
others waiting in an all-reduce forever):

- the shard size is ceil(n / num_replicas); without ``drop_last``, pad ``order`` to
  size * num_replicas by repeating it from its start (as many times as needed, when n is
  smaller than num_replicas);
- with ``drop_last``, cut the tail instead: the size is then floor(n / num_replicas) (when it
  does not divide evenly) and no index repeats;
- rank r takes every num_replicas-th index of that list, starting at position r.

Check your work with ``minigrad exercises check shard_indices``.
"""

import numpy as np  # noqa: F401  (np.resize repeats an array to a length)


def shard_indices(order, num_replicas, rank, drop_last=False):
    """The indices of ``rank``'s shard, a list of ints, from ``order`` (the epoch's order of
    all n indices)."""
    raise NotImplementedError("write shard_indices: return the rank's list of indices")
