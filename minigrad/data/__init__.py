"""Data: data sets (NumPy arrays) and, for training, Dataset/DataLoader.

Beside `datasets` (digits, MNIST, Fashion-MNIST, text): `mnist1d` (MNIST-1D through a
restricted unpickler, `safe_pickle`) and `fsdd` (spoken digits, `spoken_digits`).
"""

from minigrad.data.datasets import (  # noqa: F401
    CharTokenizer, DatasetError, data_root, digits, digits_raw, fashion_mnist, mnist, read_idx,
    read_sms_spam, sms_spam_path, text, train_test_indices,
)
from minigrad.data.loader import (  # noqa: F401,E402
    DataLoader, Dataset, Subset, TensorDataset, default_collate, random_split,
)
from minigrad.data.sampler import DistributedSampler, randperm  # noqa: F401,E402
from minigrad.data.samplers import (  # noqa: F401,E402
    BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler,
    WeightedRandomSampler,
)
from minigrad.data.worker import WorkerInfo, get_worker_info  # noqa: F401,E402
from minigrad.data.safe_pickle import SafeUnpickler, load_array_pickle, mnist1d  # noqa: F401,E402
from minigrad.data.spoken_digits import fsdd, read_fsdd, recordings_sha256  # noqa: F401,E402
