"""Data: data sets (NumPy arrays) and, for training, Dataset/DataLoader."""

from minigrad.data.datasets import (  # noqa: F401
    CharTokenizer, DatasetError, digits, fashion_mnist, mnist, read_idx, text,
)
from minigrad.data.loader import (  # noqa: F401,E402
    DataLoader, Dataset, Subset, TensorDataset, default_collate, random_split,
)
