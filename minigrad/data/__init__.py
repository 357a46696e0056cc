"""Data: data sets (NumPy arrays) and, for training, Dataset/DataLoader."""

from minigrad.data.datasets import (  # noqa: F401
    CharTokenizer, DatasetError, data_root, digits, digits_raw, fashion_mnist, mnist, read_idx,
    read_sms_spam, sms_spam_path, text, train_test_indices,
)
from minigrad.data.loader import (  # noqa: F401,E402
    DataLoader, Dataset, Subset, TensorDataset, default_collate, random_split,
)
from minigrad.data.sampler import DistributedSampler, randperm  # noqa: F401,E402
