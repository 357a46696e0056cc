"""Training checkpoints: model, optimizer, scheduler, counters and RNG state in one file.

A checkpoint is ONE safetensors file (written through :func:`minigrad.save`, so atomically:
temporary file, fsync, rename) and never a pickle:

- tensors ``model.<key>`` hold the model's ``state_dict()``;
- tensors ``optim.state.<index>.<name>`` hold the optimizer's per-parameter buffers
  (``exp_avg``, ``step``, ``momentum_buffer``, ...), numbered as ``Optimizer.state_dict()``
  numbers parameters;
- the safetensors ``__metadata__`` entry ``"minigrad.checkpoint"`` is a JSON document with the
  optimizer's param groups (hyper-parameters and parameter indices), any non-tensor optimizer
  state, the scheduler's state, ``step``/``epoch``/``extra`` and the random generators' state
  (:func:`minigrad.backend.get_rng_state`).

Restoring all of it makes a resumed run draw the same dropout masks and shuffles and take the
same optimizer steps as the uninterrupted run: its losses are bitwise equal on the CPU.

Example:
    >>> import os, tempfile
    >>> import minigrad as mg
    >>> from minigrad import nn, optim
    >>> from minigrad.finetune import save_checkpoint, load_checkpoint
    >>> model = nn.Linear(3, 2)
    >>> opt = optim.Adam(model.parameters(), lr=1e-2)
    >>> path = os.path.join(tempfile.mkdtemp(), "ckpt.safetensors")
    >>> save_checkpoint(path, model=model, optimizer=opt, step=10, epoch=2, extra={"best": 0.5})
    >>> fresh = nn.Linear(3, 2)
    >>> info = load_checkpoint(path, model=fresh, optimizer=optim.Adam(fresh.parameters()))
    >>> info["step"], info["epoch"], info["extra"]
    (10, 2, {'best': 0.5})
    >>> bool((fresh.weight == model.weight).all())
    True
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter, OrderedDict
from typing import Any, Dict, Optional, Union

import numpy as np

from minigrad import backend
from minigrad.distributed import run_on_rank_zero
from minigrad.io.safetensors import SafetensorsError, read_metadata
from minigrad.io.serialization import load, save
from minigrad.tensor import Tensor

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "read_checkpoint_info"]

PathLike = Union[str, "os.PathLike[str]"]

METADATA_KEY = "minigrad.checkpoint"
FORMAT_VERSION = 1
MODEL_PREFIX = "model."
OPTIM_PREFIX = "optim.state."


class CheckpointError(ValueError):
    """A file is not a minigrad checkpoint, or does not fit the objects it is loaded into."""


# ---------------------------------------------------------------------------- JSON encoding
# JSON knows str/int/float/bool/None/list/dict-with-str-keys. Scheduler and optimizer states
# also hold tuples (``betas``), Counters with int keys (MultiStepLR's milestones) and NumPy
# scalars: these are written as small tagged objects and rebuilt on load, so a value comes back
# with its type. Python floats round-trip exactly through JSON (repr is the shortest exact
# form), and JSON integers have no size limit (the PCG64 state is a 128-bit integer).


def _encode(value: Any, where: str) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, np.bool_):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isfinite(value):
            return value
        return {"__float__": repr(value)}  # nan, inf, -inf
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, where) for v in value]}
    if isinstance(value, list):
        return [_encode(v, where) for v in value]
    if isinstance(value, dict):
        kind = "Counter" if isinstance(value, Counter) else "dict"
        if kind == "dict" and all(isinstance(k, str) and not k.startswith("__") for k in value):
            return {k: _encode(v, f"{where}.{k}") for k, v in value.items()}
        return {
            "__mapping__": kind,
            "items": [[_encode(k, where), _encode(v, f"{where}[{k!r}]")] for k, v in value.items()],
        }
    if isinstance(value, Tensor) and value.ndim == 0:
        return _encode(value.item(), where)
    raise CheckpointError(
        f"cannot store {where} in a checkpoint: a {type(value).__name__} is not JSON-able "
        "(use numbers, strings, lists and dicts)"
    )


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        if "__float__" in value:
            return float(value["__float__"])
        if "__tuple__" in value:
            return tuple(_decode(v) for v in value["__tuple__"])
        if "__mapping__" in value:
            pairs = [(_decode(k), _decode(v)) for k, v in value["items"]]
            return Counter(dict(pairs)) if value["__mapping__"] == "Counter" else dict(pairs)
        return {k: _decode(v) for k, v in value.items()}
    return value


# ---------------------------------------------------------------------------- saving


def save_checkpoint(
    path: PathLike,
    model=None,
    optimizer=None,
    scheduler=None,
    step: Optional[int] = None,
    epoch: Optional[int] = None,
    extra: Optional[Dict[str, Any]] = None,
) -> None:
    """Write a training checkpoint to ``path`` (one safetensors file, atomically).

    Args:
        path: the file to create or replace (``.safetensors`` by convention).
        model: a ``Module``; its ``state_dict()`` is stored as ``model.<key>`` tensors.
        optimizer: an ``Optimizer``; its per-parameter state as ``optim.state.<i>.<name>``
            tensors, its param groups (hyper-parameters, parameter indices) as JSON.
        scheduler: an lr scheduler; its ``state_dict()`` as JSON.
        step: the global step count, returned by :func:`load_checkpoint`.
        epoch: the epoch count, returned by :func:`load_checkpoint`.
        extra: anything else JSON-able (numbers, strings, lists, dicts), e.g. the best metric.

    The random generators' state (``minigrad.backend.get_rng_state()``: the CPU generator;
    CuPy generators are not included) is saved too, so dropout masks and shuffles continue
    exactly where they were.

    Raises:
        CheckpointError: a scheduler, optimizer or ``extra`` value is not JSON-able.

    Example:
        >>> import os, tempfile
        >>> from minigrad import nn
        >>> path = os.path.join(tempfile.mkdtemp(), "m.safetensors")
        >>> save_checkpoint(path, model=nn.Linear(2, 2), step=1)
        >>> sorted(load_checkpoint(path))  # no model given: its state dict comes back
        ['epoch', 'extra', 'model', 'step']
    """
    tensors: Dict[str, Any] = OrderedDict()
    doc: Dict[str, Any] = {
        "format": METADATA_KEY,
        "version": FORMAT_VERSION,
        "step": _encode(step, "step"),
        "epoch": _encode(epoch, "epoch"),
        "extra": _encode(extra, "extra"),
        "rng": _encode(backend.get_rng_state(), "rng state"),
        "has_model": model is not None,
        "optimizer": None,
        "scheduler": None,
    }
    if model is not None:
        for key, value in model.state_dict().items():
            tensors[MODEL_PREFIX + key] = value
    if optimizer is not None:
        doc["optimizer"] = _pack_optimizer(optimizer, tensors)
    if scheduler is not None:
        doc["scheduler"] = {
            "class": type(scheduler).__name__,
            "state": _encode(scheduler.state_dict(), "scheduler state"),
        }
    # under data parallel rank 0 writes and the other ranks wait
    run_on_rank_zero(save, dict(tensors), path, metadata={METADATA_KEY: json.dumps(doc)})


def _pack_optimizer(optimizer, tensors: Dict[str, Any]) -> Dict[str, Any]:
    """Move the optimizer's tensors into ``tensors``; return the JSON-able rest."""
    sd = optimizer.state_dict()
    scalars: Dict[str, Dict[str, Any]] = {}
    for index, entry in sd["state"].items():
        if not isinstance(index, int):
            continue  # state not attached to a parameter: not part of a checkpoint
        for name, value in entry.items():
            if "." in name:
                raise CheckpointError(f"optimizer state name {name!r} contains a '.'")
            if isinstance(value, (Tensor, np.ndarray)):
                tensors[f"{OPTIM_PREFIX}{index}.{name}"] = value
            else:
                scalars.setdefault(str(index), {})[name] = _encode(
                    value, f"optimizer state {index}.{name}"
                )
    groups = [_encode(dict(g), f"optimizer param_groups[{i}]") for i, g in
              enumerate(sd["param_groups"])]
    return {"class": type(optimizer).__name__, "param_groups": groups, "scalars": scalars}


# ---------------------------------------------------------------------------- loading


def read_checkpoint_info(path: PathLike) -> Dict[str, Any]:
    """The checkpoint's JSON document (counters, param groups, scheduler, RNG), no tensors.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: the file is not a minigrad checkpoint.

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "c.safetensors")
        >>> save_checkpoint(path, epoch=3)
        >>> read_checkpoint_info(path)["epoch"]
        3
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint not found: {path!r}")
    try:
        metadata = read_metadata(path)
    except SafetensorsError as exc:
        raise CheckpointError(
            f"{path!r} is not a minigrad checkpoint (not a valid safetensors file: {exc})"
        ) from None
    if not metadata or METADATA_KEY not in metadata:
        raise CheckpointError(
            f"{path!r} is a safetensors file but not a minigrad checkpoint (no "
            f"{METADATA_KEY!r} metadata); plain weights load with mg.load(path) and "
            "model.load_state_dict(...)"
        )
    try:
        doc = json.loads(metadata[METADATA_KEY])
    except ValueError as exc:
        raise CheckpointError(f"{path!r}: the checkpoint's metadata is not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != METADATA_KEY:
        raise CheckpointError(f"{path!r}: the checkpoint's metadata has an unknown layout")
    if doc.get("version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path!r} is a checkpoint of format version {doc['version']}; this minigrad reads "
            f"version {FORMAT_VERSION} and earlier (upgrade minigrad)"
        )
    return doc


def load_checkpoint(
    path: PathLike,
    model=None,
    optimizer=None,
    scheduler=None,
    device=None,
    restore_rng: bool = True,
) -> Dict[str, Any]:
    """Restore a checkpoint written by :func:`save_checkpoint` into fresh objects.

    Build the model, optimizer and scheduler exactly as for the original run (same parameter
    groups; construct the scheduler before calling this, since constructing one rewrites the
    learning rates), then load. Each object passed is restored; those left out are skipped.

    Args:
        path: the checkpoint file.
        model: restored with ``load_state_dict(strict=True)``: keys and shapes must match.
        optimizer: restored with ``load_state_dict``: same number and sizes of param groups.
        scheduler: restored with ``load_state_dict``.
        device: where the returned ``"model"`` tensors are put when no ``model`` is given
            (default CPU). Loading into a model keeps each parameter's own device.
        restore_rng: also restore the random generators (default True), for exact resumes.

    Returns:
        ``{"step": ..., "epoch": ..., "extra": ...}`` as saved, plus ``"model"`` (the state
        dict as Tensors) when the checkpoint has a model but none was passed.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: not a minigrad checkpoint; it lacks a part that was asked for; the
            optimizer's groups differ from the saved ones.
        RuntimeError: the model's keys or shapes differ (from ``load_state_dict``).

    Example:
        >>> import os, tempfile
        >>> from minigrad import nn
        >>> path = os.path.join(tempfile.mkdtemp(), "m.safetensors")
        >>> save_checkpoint(path, model=nn.Linear(2, 2), epoch=4)
        >>> load_checkpoint(path, model=nn.Linear(2, 2))["epoch"]
        4
    """
    doc = read_checkpoint_info(path)
    tensors = load(path, device=device)
    out: Dict[str, Any] = {
        "step": _decode(doc.get("step")),
        "epoch": _decode(doc.get("epoch")),
        "extra": _decode(doc.get("extra")),
    }
    model_sd = OrderedDict(
        (k[len(MODEL_PREFIX):], v) for k, v in tensors.items() if k.startswith(MODEL_PREFIX)
    )
    if model is not None:
        if not doc.get("has_model"):
            raise CheckpointError(f"{os.fspath(path)!r} holds no model state")
        model.load_state_dict(model_sd, strict=True)
    elif doc.get("has_model"):
        out["model"] = model_sd
    if optimizer is not None:
        if doc.get("optimizer") is None:
            raise CheckpointError(f"{os.fspath(path)!r} holds no optimizer state")
        _load_optimizer(optimizer, doc["optimizer"], tensors, os.fspath(path))
    if scheduler is not None:
        if doc.get("scheduler") is None:
            raise CheckpointError(f"{os.fspath(path)!r} holds no scheduler state")
        saved = doc["scheduler"]
        if saved.get("class") != type(scheduler).__name__:
            raise CheckpointError(
                f"the checkpoint's scheduler is a {saved.get('class')}, not a "
                f"{type(scheduler).__name__}"
            )
        scheduler.load_state_dict(_decode(saved["state"]))
    if restore_rng and doc.get("rng") is not None:
        backend.set_rng_state(_decode(doc["rng"]))
    return out


def _load_optimizer(optimizer, saved: Dict[str, Any], tensors: Dict[str, Tensor], path: str):
    groups = [_decode(g) for g in saved["param_groups"]]
    if saved.get("class") != type(optimizer).__name__:
        raise CheckpointError(
            f"the checkpoint's optimizer is a {saved.get('class')}, not a "
            f"{type(optimizer).__name__}"
        )
    own = optimizer.param_groups
    own_sizes = [len(g["params"]) for g in own]
    saved_sizes = [len(g["params"]) for g in groups]
    if own_sizes != saved_sizes:
        raise CheckpointError(
            f"optimizer param groups do not match the checkpoint {path!r}: the checkpoint has "
            f"{len(groups)} group(s) of sizes {saved_sizes}, the optimizer {len(own)} of sizes "
            f"{own_sizes} (build the optimizer with the same groups as when saving)"
        )
    params = [p for g in own for p in g["params"]]
    saved_ids = [i for g in groups for i in g["params"]]
    by_index = dict(zip(saved_ids, params))
    state: Dict[int, Dict[str, Any]] = {}
    for key, value in tensors.items():
        if not key.startswith(OPTIM_PREFIX):
            continue
        index_s, name = key[len(OPTIM_PREFIX):].split(".", 1)
        index = int(index_s)
        param = by_index.get(index)
        if param is None:
            raise CheckpointError(f"{path!r}: optimizer state {key!r} names no parameter")
        if value.ndim > 0 and tuple(value.shape) != tuple(param.shape):
            raise CheckpointError(
                f"optimizer state {key!r} has shape {tuple(value.shape)} but parameter {index} "
                f"has shape {tuple(param.shape)}: the optimizer was built over other parameters"
            )
        state.setdefault(index, {})[name] = value
    for index_s, entry in saved.get("scalars", {}).items():
        for name, value in entry.items():
            state.setdefault(int(index_s), {})[name] = _decode(value)
    optimizer.load_state_dict({"state": state, "param_groups": groups})
