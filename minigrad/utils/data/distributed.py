"""``minigrad.utils.data.distributed``: PyTorch's path to `DistributedSampler`."""

from minigrad.data.sampler import DistributedSampler

__all__ = ["DistributedSampler"]
