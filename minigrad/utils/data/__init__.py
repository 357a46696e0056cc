"""``minigrad.utils.data``: PyTorch's ``torch.utils.data`` path to `minigrad.data`.

Code written for PyTorch keeps its imports::

    from minigrad.utils.data import DataLoader, Dataset, TensorDataset, random_split

Example:
    >>> import numpy as np
    >>> from minigrad.utils.data import DataLoader, TensorDataset
    >>> [tuple(x.shape) for (x,) in DataLoader(TensorDataset(np.zeros((5, 2))), batch_size=4)]
    [(4, 2), (1, 2)]
"""

from minigrad.data.loader import (
    DataLoader, Dataset, Subset, TensorDataset, default_collate, random_split,
)
from minigrad.data.sampler import DistributedSampler
from minigrad.data.samplers import (
    BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler,
    WeightedRandomSampler,
)
from minigrad.data.worker import WorkerInfo, get_worker_info
from minigrad.utils.data import distributed

__all__ = [
    "BatchSampler", "DataLoader", "Dataset", "DistributedSampler", "RandomSampler", "Sampler",
    "SequentialSampler", "Subset", "SubsetRandomSampler", "TensorDataset", "WeightedRandomSampler",
    "WorkerInfo", "default_collate", "distributed", "get_worker_info", "random_split",
]
