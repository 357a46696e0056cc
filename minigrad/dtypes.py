"""dtypes: minigrad's dtype objects are NumPy dtypes (``mg.float32 is np.dtype('float32')``).

NumPy dtypes, their names as strings (``'float32'``) and the Python types ``float``/``int``/``bool``
are accepted wherever a dtype is expected. ``bfloat16`` comes from the optional package
``ml_dtypes`` (``pip install ml_dtypes``, or the ``bf16`` extra): ``dtypes.bfloat16`` loads it
on first use and raises an error naming the package when it is missing.
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
HALF_CHARS = "eE"  # dtype.char of float16 and of ml_dtypes' bfloat16: the 2-byte floats


def load_bfloat16() -> np.dtype:
    """The bfloat16 dtype of ``ml_dtypes`` (imported on first use; an error names the package).

    Raises:
        ImportError: ml_dtypes is not installed.
    """
    try:
        import ml_dtypes  # noqa: PLC0415  (optional: only bfloat16 needs it)
    except ImportError as exc:
        raise ImportError(
            "bfloat16 needs the package ml_dtypes (NumPy has no bfloat16): "
            'pip install ml_dtypes, or pip install "minigrad[bf16]"'
        ) from exc
    dt = np.dtype(ml_dtypes.bfloat16)
    _SUPPORTED.add(dt)
    return dt


def __getattr__(name: str):
    """``dtypes.bfloat16``: loaded from ml_dtypes on first access (PEP 562)."""
    if name == "bfloat16":
        return load_bfloat16()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def to_dtype(spec: Any) -> np.dtype:
    """Normalise a dtype spec (``mg.float32``, ``'float32'``, ``np.float32``) to a NumPy dtype."""
    if isinstance(spec, str) and spec == "bfloat16":
        return load_bfloat16()
    try:
        dt = np.dtype(spec)
    except TypeError as exc:
        raise TypeError(f"{spec!r} is not a dtype minigrad understands") from exc
    if dt not in _SUPPORTED:
        raise TypeError(
            f"dtype {dt} is not supported; use one of "
            "float16, bfloat16, float32, float64, int8, int16, int32, int64, uint8, bool"
        )
    return dt


def is_floating(dt: np.dtype) -> "bool":
    """True for float16/32/64 and bfloat16."""
    return dt.kind == "f" or dt.char == "E"


def result_type(a: np.dtype, b: np.dtype) -> np.dtype:
    """PyTorch's promotion for two tensors: floats win over integers without widening.

    NumPy would give float64 for int64 + float32; PyTorch keeps float32. Among floats (or among
    integers) the wider type wins, as in both.
    """
    if a == b:
        return a
    fa, fb = is_floating(a), is_floating(b)
    if fa and not fb:
        return a
    if fb and not fa:
        return b
    return np.promote_types(a, b)  # (bfloat16 with float16 gives float32, as in PyTorch)
