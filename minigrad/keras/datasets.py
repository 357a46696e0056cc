"""``keras.datasets``: ``mnist.load_data()`` and ``fashion_mnist.load_data()``.

They return what Keras returns, ``(x_train, y_train), (x_test, y_test)`` with uint8 images
of 28x28, but read the official files from minigrad's data folder (``$MINIGRAD_DATA/mnist``,
else ``~/.cache/minigrad/mnist``, or `path`): unlike Keras, nothing is downloaded unless you
ask (``load_data(download=True)``); missing files give an error saying where to put them.

Example:
    >>> from minigrad import keras
    >>> (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()  # doctest: +SKIP
    >>> x_train.shape, x_train.dtype  # doctest: +SKIP
    ((60000, 28, 28), dtype('uint8'))
"""

from __future__ import annotations

import os
from typing import Any, Callable

from minigrad.data import datasets as _datasets

__all__ = ["fashion_mnist", "mnist"]


class _DataSet:
    """A Keras-style data set namespace with one function, `load_data`."""

    def __init__(self, loader: Callable[..., Any], name: str) -> None:
        self._loader = loader
        self.__name__ = name

    def load_data(self, path: str | os.PathLike | None = None, download: bool = False) -> Any:
        """``(x_train, y_train), (x_test, y_test)`` as NumPy arrays (uint8 images).

        Args:
            path: the folder holding the four IDX ``.gz`` files (default: minigrad's data
                folder for this data set).
            download: fetch missing files from the official mirrors (verified by sha256).
        """
        return self._loader(root=path, download=download)

    def __repr__(self) -> str:
        return f"<keras.datasets.{self.__name__}>"


mnist = _DataSet(_datasets.mnist, "mnist")
fashion_mnist = _DataSet(_datasets.fashion_mnist, "fashion_mnist")
