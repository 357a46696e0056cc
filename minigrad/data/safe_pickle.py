"""MNIST-1D (Greydanus, 2020): 5,000 one-dimensional signals of 40 points in 10 classes.

A small benchmark that separates model families as MNIST no longer does: its paper reports
about 68% test accuracy for an MLP and 94% for a small 1-D CNN. The frozen official data set
is a Python pickle (``mnist1d_data.pkl``, from github.com/greydanus/mnist1d, Apache-2.0).

A pickle can run any code when loaded, so `mnist1d` never calls `pickle.load`: it uses
`SafeUnpickler`, which resolves only the three NumPy names an array pickle needs
(``numpy.core.multiarray._reconstruct``, ``numpy.ndarray``, ``numpy.dtype``, and
``_codecs.encode`` for protocol 2's bytes, ``_frombuffer`` for protocol 5's), then accepts
only plain containers of numeric arrays and scalars. Anything else is refused before it runs.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from minigrad.data.datasets import DatasetError, data_root

__all__ = ["MNIST1D_SHA256", "SafeUnpickler", "load_array_pickle", "mnist1d"]

MNIST1D_FILENAME = "mnist1d_data.pkl"
# sha256 of mnist1d_data.pkl at greydanus/mnist1d commit 7878d96.
MNIST1D_SHA256 = "e95257676e9fb04568e46dda007da22cc8664ccba1451456afde55d7f6dd6aa5"

# (module, name) pairs an ndarray pickle needs; NumPy 2 writes numpy._core for numpy.core.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): np.ndarray.__reduce__(np.zeros(0))[0],
    ("numpy._core.multiarray", "_reconstruct"): np.ndarray.__reduce__(np.zeros(0))[0],
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    # protocol 5 rebuilds an array from its buffer with _frombuffer(buffer, dtype, shape, order)
    ("numpy.core.numeric", "_frombuffer"): np.zeros(1).__reduce_ex__(5)[0],
    ("numpy._core.numeric", "_frombuffer"): np.zeros(1).__reduce_ex__(5)[0],
    # protocol 2 writes bytes (an array's buffer) as _codecs.encode(str, "latin1"): a pure function
    ("_codecs", "encode"): codecs.encode,
}
_PLAIN = (bool, int, float, str, bytes, type(None), np.generic)


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the names needed to rebuild NumPy arrays.

    Any other global (``os.system``, ``builtins.eval``, a class of any module) raises
    `pickle.UnpicklingError` naming it, before anything is called.
    """

    def find_class(self, module: str, name: str) -> Any:
        """The allowed NumPy callable for ``module.name``; refuses everything else."""
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: only NumPy arrays and plain containers "
                "are allowed in this file"
            ) from None


def _check_plain(value: Any, where: str) -> None:
    """Accepts nested dict/list/tuple of numeric arrays and scalars; raises otherwise."""
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject or value.dtype.kind not in "biufc":
            raise pickle.UnpicklingError(f"{where}: an array of dtype {value.dtype} is not "
                                         "allowed (numbers only)")
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise pickle.UnpicklingError(f"{where}: a key of type {type(key).__name__}")
            _check_plain(item, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
    elif not isinstance(value, _PLAIN):
        raise pickle.UnpicklingError(f"{where}: a {type(value).__name__} is not allowed")


def load_array_pickle(data: bytes, name: str = "<bytes>") -> Any:
    """Unpickles `data` with `SafeUnpickler` and checks it holds only arrays and containers.

    Raises:
        DatasetError: the pickle references anything else, or is damaged (the message names
            `name` and the reason).

    Example:
        >>> load_array_pickle(pickle.dumps({"x": np.arange(3)}))
        {'x': array([0, 1, 2])}
        >>> load_array_pickle(pickle.dumps(print))
        Traceback (most recent call last):
        ...
        minigrad.data.datasets.DatasetError: <bytes>: refusing to load builtins.print: only ...
    """
    try:
        value = SafeUnpickler(io.BytesIO(data)).load()
        _check_plain(value, "the pickle")
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError,
            KeyError, AttributeError, MemoryError) as exc:
        raise DatasetError(f"{name}: {exc}") from exc
    return value


def mnist1d(
    path: str | os.PathLike | None = None, sha256: str | None = MNIST1D_SHA256
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The frozen MNIST-1D data set: 4,000 training and 1,000 test signals of 40 points.

    Args:
        path: the pickle, or a folder holding ``mnist1d_data.pkl``. Defaults to
            ``$MINIGRAD_DATA/mnist1d``, else ``~/.cache/minigrad/mnist1d``.
        sha256: the file's expected sha256 (default: the official file); None skips the check.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: float32 signals of shape (N, 40) and int64
        labels 0..9.

    Raises:
        DatasetError: the file is missing, not the official one, not a safe array pickle, or
            lacks the arrays ``x``, ``y``, ``x_test``, ``y_test`` of matching lengths.

    Example:
        >>> (x_train, y_train), (x_test, y_test) = mnist1d()  # doctest: +SKIP
        >>> x_train.shape, x_test.shape  # doctest: +SKIP
        ((4000, 40), (1000, 40))
    """
    file = data_root("mnist1d", path)
    if file.is_dir() or (path is None and not file.exists()):
        file = file / MNIST1D_FILENAME
    if not file.is_file():
        raise DatasetError(
            f"MNIST-1D not found: {file} does not exist.\nPass the path of "
            f"{MNIST1D_FILENAME} (from github.com/greydanus/mnist1d) or a folder holding it, "
            "or set MINIGRAD_DATA to the folder above mnist1d/.")
    data = Path(file).read_bytes()
    if sha256 is not None:
        digest = hashlib.sha256(data).hexdigest()
        if digest != sha256.lower():
            raise DatasetError(f"{file}: sha256 is {digest}, expected {sha256} (the official "
                               "mnist1d_data.pkl); pass sha256=None to read another version")
    content = load_array_pickle(data, str(file))
    if not isinstance(content, dict):
        raise DatasetError(f"{file}: expected a dict of arrays, got {type(content).__name__}")
    splits = []
    for x_key, y_key in (("x", "y"), ("x_test", "y_test")):
        x, y = content.get(x_key), content.get(y_key)
        if not isinstance(x, np.ndarray) or not isinstance(y, np.ndarray):
            raise DatasetError(f"{file}: the arrays {x_key!r} and {y_key!r} are missing")
        if x.ndim != 2 or y.shape != (len(x),):
            raise DatasetError(f"{file}: {x_key!r} has shape {x.shape} and {y_key!r} "
                               f"{y.shape}; expected (N, L) and (N,)")
        if y.dtype.kind not in "iu" or (y.size and (y.min() < 0 or y.max() > 9)):
            raise DatasetError(f"{file}: {y_key!r} must hold integer labels 0..9")
        splits.append((x.astype(np.float32), y.astype(np.int64)))
    return splits[0], splits[1]
