"""``minigrad.datasets``: the built-in and downloadable data sets (see ``minigrad.data``)."""

from minigrad.data.datasets import (  # noqa: F401
    CharTokenizer, DatasetError, data_root, digits, digits_raw, fashion_mnist, mnist, read_idx,
    text,
)
