"""``mg.save`` / ``mg.load``: like ``torch.save`` / ``torch.load``, without pickle.

Anything ``torch.save`` is commonly given is accepted: a Tensor, a state dict, an optimizer's
state dict, or any nesting of dicts, lists and tuples of Tensors, NumPy arrays, numbers,
strings, booleans and None. The file is always a safetensors file:

- a flat ``{str: Tensor or array}`` dict (a model's ``state_dict()``) is written as an ordinary
  safetensors file, one tensor per key, which PyTorch, the ``safetensors`` library and every
  other tool read as they are;
- anything else is flattened: its tensors are stored under their path (``"state.0.exp_avg"``)
  and the structure around them is a JSON document in the header's ``__metadata__``, under
  ``"minigrad.structure"``. Loading rebuilds the same structure.

Nothing in a file is ever executed: the structure is plain JSON, checked node by node, so a
damaged or hostile file raises `SafetensorsError` (a ``ValueError``) saying what is wrong.

The structure's nodes (JSON)::

    null                          None
    {"bool": true}                a bool
    {"int": 3}                    an int
    {"float": "0.1"}              a float (its repr: exact, and nan/inf survive)
    {"str": "..."}                a string
    {"tensor": NAME, "requires_grad": false}    a Tensor (NAME: the stored tensor)
    {"ndarray": NAME}             a NumPy array
    {"list": [...]}, {"tuple": [...]}           sequences
    {"dict": [[KEY, VALUE], ...]}, {"odict": ...}   dicts (keys are nodes: ints stay ints)

A Tensor that appears several times is stored once and comes back as one object.

Example:
    >>> import minigrad as mg, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
    >>> mg.save({"w": mg.ones(2, 3)}, path)
    >>> mg.load(path)["w"].shape
    (2, 3)
    >>> mg.save({"epoch": 3, "weights": [mg.zeros(2), None]}, path)
    >>> mg.load(path)
    {'epoch': 3, 'weights': [tensor([0., 0.]), None]}
"""

from __future__ import annotations

import json
import math
import os
from collections import OrderedDict
from typing import Any, Dict, Optional, Union

import numpy as np

from minigrad import backend
from minigrad.io.safetensors import SafetensorsError, load_with_metadata, save_file
from minigrad.io.safetensors import save as _save_bytes
from minigrad.tensor import Tensor

__all__ = ["STRUCTURE_KEY", "load", "save"]

PathLike = Union[str, "os.PathLike[str]"]

STRUCTURE_KEY = "minigrad.structure"
_FORMAT = 1

# nesting deeper than this is refused on load (a hostile file could otherwise exhaust the stack)
_MAX_DEPTH = 200


def save(obj: Any, f: Union[PathLike, Any], metadata: Optional[Dict[str, str]] = None) -> None:
    """Save ``obj`` to a safetensors file at a path or into a binary file object.

    Args:
        obj: a Tensor, a state dict, an optimizer state dict, or any nesting of dicts, lists
            and tuples of Tensors, NumPy arrays, numbers, strings, booleans and None. Dict keys
            may be strings, numbers, booleans, None or tuples of those.
        f: a path (written atomically) or a file object opened for binary writing.
        metadata: extra ``str -> str`` entries for the header's ``__metadata__``.

    Raises:
        TypeError: ``obj`` holds something that cannot be stored (the message gives its path).

    Tensors on a GPU are copied to the host first. A flat ``{str: Tensor}`` dict is written as
    an ordinary safetensors file (see the module docstring).
    """
    metadata = dict(metadata or {})
    if STRUCTURE_KEY in metadata:
        raise ValueError(f"mg.save: the metadata key {STRUCTURE_KEY!r} is reserved")
    if _is_flat_tensor_dict(obj):
        arrays = {name: _host_array(value) for name, value in obj.items()}
    else:
        flattener = _Flattener()
        structure = flattener.encode(obj, "", 0)
        arrays = flattener.arrays
        metadata[STRUCTURE_KEY] = json.dumps(
            {"format": _FORMAT, "root": structure}, ensure_ascii=False, separators=(",", ":")
        )
    if isinstance(f, (str, bytes, os.PathLike)):
        save_file(arrays, f, metadata=metadata or None)
    elif hasattr(f, "write"):
        f.write(_save_bytes(arrays, metadata or None))
    else:
        raise TypeError(
            f"mg.save: f must be a path or a binary file object, got {type(f).__name__}"
        )


def load(
    f: Union[PathLike, Any],
    device=None,
    *,
    map_location=None,
    weights_only: bool = True,
) -> Any:
    """Load what `save` wrote (or any safetensors file) from a path or a binary file object.

    Args:
        f: a path or a file object opened for binary reading.
        device: where the tensors go (default: the CPU).
        map_location: PyTorch's name for ``device`` (a device or device string).
        weights_only: accepted for PyTorch compatibility; loading never runs code anyway.

    Returns:
        The saved structure; a plain safetensors file gives ``{name: Tensor}``.

    Raises:
        SafetensorsError: the file, or the structure in its metadata, is damaged or hostile.
    """
    del weights_only  # always safe: there is no pickle to refuse
    if device is None:
        device = map_location
    dev = backend.get_device(device) if device is not None else backend.CPU
    if isinstance(f, (str, bytes, os.PathLike)):
        source = os.fsdecode(f)
        arrays, metadata = load_with_metadata(source)
    elif hasattr(f, "read"):
        source = getattr(f, "name", "<file object>")
        arrays, metadata = load_with_metadata(f.read())
    else:
        raise TypeError(
            f"mg.load: f must be a path or a binary file object, got {type(f).__name__}"
        )
    if not metadata or STRUCTURE_KEY not in metadata:
        return {name: Tensor._make(backend.to_device(arr, dev)) for name, arr in arrays.items()}
    return _Rebuilder(arrays, dev, source).rebuild(metadata[STRUCTURE_KEY])


# ---------------------------------------------------------------------------- saving


def _is_flat_tensor_dict(obj: Any) -> bool:
    """Whether ``obj`` is a dict of str -> Tensor/array (written as a plain file)."""
    return isinstance(obj, dict) and all(
        isinstance(k, str) and isinstance(v, (Tensor, np.ndarray)) for k, v in obj.items()
    )


def _host_array(value: Any) -> np.ndarray:
    if isinstance(value, Tensor):
        return backend.to_device(value.detach().data, backend.CPU)
    return value


class _Flattener:
    """Turns a Python object into a JSON structure plus a dict of named arrays."""

    def __init__(self) -> None:
        self.arrays: Dict[str, np.ndarray] = {}
        self._names: Dict[int, str] = {}  # id(tensor) -> stored name: shared tensors once
        self._keep: list = []  # keeps the objects alive, so their ids stay unique

    def _store(self, value: Any, path: str) -> str:
        if id(value) in self._names:
            return self._names[id(value)]
        name = path or "tensor"
        while name in self.arrays or name == "__metadata__":  # paths can collide ("a.b", "a"/"b")
            name += "#"
        self.arrays[name] = _host_array(value)
        self._names[id(value)] = name
        self._keep.append(value)
        return name

    def encode(self, obj: Any, path: str, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            raise ValueError(f"mg.save: nesting deeper than {_MAX_DEPTH} levels at {path!r}")
        if obj is None:
            return None
        if isinstance(obj, bool):
            return {"bool": obj}
        if isinstance(obj, int):
            return {"int": obj}
        if isinstance(obj, float):
            return {"float": repr(obj)}
        if isinstance(obj, str):
            return {"str": obj}
        if isinstance(obj, Tensor):
            return {"tensor": self._store(obj, path), "requires_grad": bool(obj.requires_grad)}
        if isinstance(obj, (np.ndarray, np.generic)):
            if obj.dtype == object:
                raise TypeError(f"mg.save: the array at {path or 'the top'!r} holds objects")
            kind = "ndarray" if isinstance(obj, np.ndarray) else "npscalar"
            return {kind: self._store(np.asarray(obj), path)}
        if isinstance(obj, (list, tuple)):
            kind = "tuple" if isinstance(obj, tuple) else "list"
            return {kind: [self.encode(v, _join(path, i), depth + 1) for i, v in enumerate(obj)]}
        if isinstance(obj, dict):
            kind = "odict" if isinstance(obj, OrderedDict) else "dict"
            items = []
            for key, value in obj.items():
                items.append([self._encode_key(key, path), self.encode(value, _join(path, key),
                                                                        depth + 1)])
            return {kind: items}
        raise TypeError(
            f"mg.save: cannot store the {type(obj).__name__} at {path or 'the top'!r}; only "
            "Tensors, arrays, numbers, strings, booleans, None and dicts/lists/tuples of them "
            "(no pickle)"
        )

    def _encode_key(self, key: Any, path: str) -> Any:
        if key is None or isinstance(key, (bool, int, float, str)):
            return self.encode(key, path, 0)
        if isinstance(key, tuple):
            return {"tuple": [self._encode_key(k, path) for k in key]}
        raise TypeError(
            f"mg.save: the dict key {key!r} at {path or 'the top'!r} is a "
            f"{type(key).__name__}; keys must be strings, numbers, booleans, None or tuples"
        )


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


# ---------------------------------------------------------------------------- loading


class _Rebuilder:
    """Rebuilds the saved object from the structure JSON, trusting nothing in it."""

    def __init__(self, arrays: Dict[str, np.ndarray], device, source: str) -> None:
        self.arrays = arrays
        self.device = device
        self.source = source
        self._tensors: Dict[str, Tensor] = {}  # one object per stored tensor (sharing)

    def fail(self, problem: str) -> SafetensorsError:
        return SafetensorsError(
            f"{self.source}: the {STRUCTURE_KEY!r} metadata is invalid: {problem} (was the file "
            "written by mg.save, and not modified since?)"
        )

    def rebuild(self, text: str) -> Any:
        try:
            doc = json.loads(text, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            raise self.fail(f"not JSON ({str(exc)[:200]})") from None
        if not isinstance(doc, dict) or "root" not in doc:
            raise self.fail("expected an object with a 'root'")
        if doc.get("format") != _FORMAT:
            raise self.fail(f"unknown format {doc.get('format')!r} (this minigrad reads {_FORMAT})")
        return self.decode(doc["root"], 0)

    def _array(self, name: Any) -> np.ndarray:
        if not isinstance(name, str):
            raise self.fail(f"a tensor reference must be a string, got {name!r:.80}")
        if name not in self.arrays:
            raise self.fail(f"it refers to a tensor {name!r:.80} that the file does not hold")
        return self.arrays[name]

    def decode(self, node: Any, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            raise self.fail(f"nesting deeper than {_MAX_DEPTH} levels")
        if node is None:
            return None
        if not isinstance(node, dict) or len(node) not in (1, 2):
            raise self.fail(f"a node must be null or a one-entry object, got {str(node)[:80]}")
        kind = next(iter(node))
        value = node[kind]
        if kind == "bool" and isinstance(value, bool):
            return value
        if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
            return value
        if kind == "float" and isinstance(value, str):
            return self._float(value)
        if kind == "str" and isinstance(value, str):
            return value
        if kind == "tensor":
            requires_grad = node.get("requires_grad", False)
            if len(node) == 2 and ("requires_grad" not in node or
                                   not isinstance(requires_grad, bool)):
                raise self.fail(f"bad tensor node {str(node)[:80]}")
            return self._tensor(value, requires_grad)
        if len(node) != 1:
            raise self.fail(f"unexpected entries in {str(node)[:80]}")
        if kind == "ndarray":
            return self._array(value).copy()
        if kind == "npscalar":
            array = self._array(value)
            if array.ndim != 0:
                raise self.fail(f"the NumPy scalar {value!r:.80} is not 0-d")
            return array[()]
        if kind in ("list", "tuple") and isinstance(value, list):
            items = [self.decode(v, depth + 1) for v in value]
            return tuple(items) if kind == "tuple" else items
        if kind in ("dict", "odict") and isinstance(value, list):
            out = OrderedDict() if kind == "odict" else {}
            for pair in value:
                if not (isinstance(pair, list) and len(pair) == 2):
                    raise self.fail(f"a dict entry must be [key, value], got {str(pair)[:80]}")
                key = self.decode(pair[0], depth + 1)
                try:
                    hash(key)
                except TypeError:
                    raise self.fail(f"a dict key must be hashable, got {str(pair[0])[:80]}") \
                        from None
                if key in out:
                    raise self.fail(f"the dict key {key!r:.80} appears twice")
                out[key] = self.decode(pair[1], depth + 1)
            return out
        raise self.fail(f"unknown node {str(node)[:80]}")

    def _float(self, text: str) -> float:
        if len(text) > 40:
            raise self.fail(f"the float {text[:40]!r}... is too long")
        try:
            value = float(text)
        except ValueError:
            raise self.fail(f"{text!r} is not a float") from None
        if not math.isfinite(value) and text.strip().lower().lstrip("+-") not in ("inf", "nan"):
            raise self.fail(f"{text!r} is not a float")
        return value

    def _tensor(self, name: Any, requires_grad: bool) -> Tensor:
        array = self._array(name)
        if name not in self._tensors:
            t = Tensor._make(backend.to_device(array, self.device))
            if requires_grad:
                if t.dtype.kind not in "fc":
                    raise self.fail(f"tensor {name!r:.80} requires grad but is not floating")
                t.requires_grad = True
            self._tensors[name] = t
        return self._tensors[name]


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")
