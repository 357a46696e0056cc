"""``mg.save`` / ``mg.load``: state dicts of Tensors to and from safetensors files.

Example:
    >>> import minigrad as mg, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
    >>> mg.save({"w": mg.ones(2, 3)}, path)
    >>> mg.load(path)["w"].shape
    (2, 3)
"""

from __future__ import annotations

import os
from typing import Dict, Optional, Union

import numpy as np

from minigrad import backend
from minigrad.io.safetensors import load_file, save_file
from minigrad.tensor import Tensor

PathLike = Union[str, "os.PathLike[str]"]


def save(state_dict: Dict[str, object], path: PathLike,
         metadata: Optional[Dict[str, str]] = None) -> None:
    """Write a flat ``{name: Tensor or array}`` dict as a safetensors file, atomically.

    Tensors on a GPU are copied to the host first. Non-tensor values are refused (a safetensors
    file holds tensors only; put strings in ``metadata``).
    """
    if not isinstance(state_dict, dict):
        raise TypeError(f"mg.save expects a dict of tensors, got {type(state_dict).__name__}")
    arrays = {}
    for name, value in state_dict.items():
        if not isinstance(name, str):
            raise TypeError(f"mg.save: keys must be strings, got {name!r}")
        if isinstance(value, Tensor):
            arrays[name] = backend.to_device(value.detach().data, backend.CPU)
        elif isinstance(value, np.ndarray):
            arrays[name] = value
        else:
            raise TypeError(
                f"mg.save: value for {name!r} is a {type(value).__name__}; only tensors and "
                "arrays can be stored (use metadata= for strings)"
            )
    save_file(arrays, path, metadata=metadata)


def load(path: PathLike, device=None) -> Dict[str, Tensor]:
    """Read a safetensors file into ``{name: Tensor}`` (on ``device``, default the CPU)."""
    dev = backend.get_device(device) if device is not None else backend.CPU
    return {name: Tensor._make(backend.to_device(arr, dev))
            for name, arr in load_file(path).items()}
