"""The ``.keras`` file: a model in one zip, as Keras 3's ``model.save("m.keras")`` writes.

The zip holds three entries:

- ``config.json``: the model's architecture and compile settings (what
  ``keras.models.load_model`` rebuilds the model from), the same document a saved folder holds;
- ``metadata.json``: the versions and the date it was written;
- ``model.weights.safetensors``: the weights, a plain safetensors file keyed by ``state_dict``
  names (other tools can read it once extracted). No pickle anywhere.

The file is written to a temporary name beside it and renamed, so a crash never leaves a
half-written model. This module only reads and writes the file; building the model from its
config is `minigrad.keras.models.load_model`'s job.

Example:
    >>> import os, tempfile
    >>> import numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "m.keras")
    >>> write_keras_file(path, {"format": "minigrad.keras"}, {"w": np.ones(2, np.float32)})
    >>> is_keras_file(path)
    True
    >>> document, weights = read_keras_file(path)
    >>> document["format"], weights["w"].tolist()
    ('minigrad.keras', [1.0, 1.0])
"""

from __future__ import annotations

import datetime
import json
import os
import tempfile
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from minigrad import backend
from minigrad._version import __version__
from minigrad.io import safetensors
from minigrad.tensor import Tensor

__all__ = ["CONFIG_ENTRY", "METADATA_ENTRY", "WEIGHTS_ENTRY", "is_keras_file",
           "read_keras_file", "write_keras_file"]

CONFIG_ENTRY = "config.json"
METADATA_ENTRY = "metadata.json"
WEIGHTS_ENTRY = "model.weights.safetensors"
EXTENSION = ".keras"


def _host(value: Any) -> np.ndarray:
    """A NumPy array of a tensor or array, wherever it lives."""
    data = value.detach().data if isinstance(value, Tensor) else value
    return data if isinstance(data, np.ndarray) else backend.to_device(data, backend.CPU)


def is_keras_file(path: str | os.PathLike) -> bool:
    """Whether `path` is a ``.keras`` zip (a file, not a saved-model folder)."""
    return os.path.isfile(path) and zipfile.is_zipfile(path)


def write_keras_file(path: str | os.PathLike, document: dict, state: Mapping[str, Any],
                     overwrite: bool = True) -> None:
    """Writes `document` (JSON-able) and the tensors of `state` to a ``.keras`` zip at `path`.

    Raises:
        FileExistsError: `path` exists and `overwrite` is False.
    """
    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} already exists (overwrite=False)")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    weights = safetensors.save({name: _host(value) for name, value in state.items()})
    metadata = {"keras_version": "3 (the minigrad.keras facade)",
                "minigrad_version": __version__,
                "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")}
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=EXTENSION, dir=folder)
    try:
        with os.fdopen(fd, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(METADATA_ENTRY, json.dumps(metadata, indent=2))
            archive.writestr(CONFIG_ENTRY, json.dumps(document, indent=2))
            # NOTE: stored, not deflated: weights barely compress and stay readable in place
            archive.writestr(zipfile.ZipInfo(WEIGHTS_ENTRY), weights, zipfile.ZIP_STORED)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_keras_file(path: str | os.PathLike) -> tuple[dict, dict]:
    """The config document and the weights (NumPy arrays by name) of a ``.keras`` zip.

    Raises:
        ValueError: the file is not a ``.keras`` zip, or an entry is missing or damaged.
    """
    path = os.fspath(path)
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            missing = [e for e in (CONFIG_ENTRY, WEIGHTS_ENTRY) if e not in names]
            if missing:
                raise ValueError(f"{path}: not a saved model ({', '.join(missing)} missing "
                                 "from the .keras zip)")
            config = archive.read(CONFIG_ENTRY)
            weights = archive.read(WEIGHTS_ENTRY)
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{path}: not a .keras file (not a zip: {exc})") from None
    try:
        document = json.loads(config.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: damaged model configuration ({exc})") from None
    try:
        arrays = safetensors.load(weights)
    except safetensors.SafetensorsError as exc:
        raise ValueError(f"{path}: damaged weights ({exc})") from None
    return document, arrays
