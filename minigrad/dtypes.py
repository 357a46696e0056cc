"""dtypes: minigrad's dtype objects are NumPy dtypes (``mg.float32 is np.dtype('float32')``).

NumPy dtypes, their names as strings (``'float32'``) and the Python types ``float``/``int``/``bool``
are accepted wherever a dtype is expected.
"""

from __future__ import annotations

from typing import Any

import numpy as np

float16 = half = np.dtype("float16")
float32 = float = np.dtype("float32")  # noqa: A001  (torch.float is float32)
float64 = double = np.dtype("float64")
int8 = np.dtype("int8")
int16 = short = np.dtype("int16")
int32 = int = np.dtype("int32")  # noqa: A001
int64 = long = np.dtype("int64")
uint8 = np.dtype("uint8")
bool = np.dtype("bool")  # noqa: A001

DEFAULT_FLOAT = float32
_SUPPORTED = {float16, float32, float64, int8, int16, int32, int64, uint8, bool}


def to_dtype(spec: Any) -> np.dtype:
    """Normalise a dtype spec (``mg.float32``, ``'float32'``, ``np.float32``) to a NumPy dtype."""
    try:
        dt = np.dtype(spec)
    except TypeError as exc:
        raise TypeError(f"{spec!r} is not a dtype minigrad understands") from exc
    if dt not in _SUPPORTED:
        raise TypeError(
            f"dtype {dt} is not supported; use one of "
            "float16, float32, float64, int8, int16, int32, int64, uint8, bool"
        )
    return dt


def is_floating(dt: np.dtype) -> "bool":
    """True for float16/32/64."""
    return dt.kind == "f"


def result_type(a: np.dtype, b: np.dtype) -> np.dtype:
    """PyTorch's promotion for two tensors: floats win over integers without widening.

    NumPy would give float64 for int64 + float32; PyTorch keeps float32. Among floats (or among
    integers) the wider type wins, as in both.
    """
    if a == b:
        return a
    if a.kind == "f" and b.kind != "f":
        return a
    if b.kind == "f" and a.kind != "f":
        return b
    return np.promote_types(a, b)
