"""Parallel training wrappers: `DistributedDataParallel` (data parallel over processes)."""

from minigrad.nn.parallel.distributed import DistributedDataParallel  # noqa: F401

__all__ = ["DistributedDataParallel"]
