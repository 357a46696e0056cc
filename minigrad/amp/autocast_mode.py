"""``mg.autocast``: mixed precision by op, with PyTorch's autocast lists per device type.

Inside ``with mg.autocast('cuda'):`` the ops on the lists cast their operands as PyTorch's
autocast does (the policies and the lists are in ``minigrad/autocast_state.py``): matmul,
linear, conv, attention and the LSTM/GRU layers and cells run in float16 (CUDA's default) or
bfloat16 (the CPU's default; there the GRU and the cells follow their state's dtype, as
PyTorch's composites do), softmax, norms, reductions and pointwise exp/log/pow in float32 on
CUDA, the losses in float32 everywhere. Parameters stay
float32 (the casts are ops, so gradients reach the float32 master weights); ops given an
explicit ``dtype=`` and in-place ops are not autocast.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional

from minigrad import dtypes
from minigrad.autocast_state import state

_DEVICE_TYPES = ("cpu", "cuda")


def _default_dtype(device_type: str):
    return dtypes.load_bfloat16() if device_type == "cpu" else dtypes.float16


class autocast:  # noqa: N801  (PyTorch's name)
    """Run the ops on the autocast lists of ``device_type`` in a lower precision.

    A context manager and a decorator, as ``torch.autocast``. Nested blocks stack; an inner
    ``enabled=False`` turns autocast off for its device type.

    Args:
        device_type: ``'cpu'`` or ``'cuda'`` (``'cuda:0'`` is read as ``'cuda'``).
        dtype: the low dtype, ``mg.float16`` or ``mg.bfloat16``; None: float16 on CUDA,
            bfloat16 on the CPU (which needs the package ml_dtypes).
        enabled: False makes the block a no-op for ``device_type`` (turns it off inside).
        cache_enabled: accepted for PyTorch's signature; casts are not cached.

    Example:
        >>> import minigrad as mg
        >>> with mg.autocast("cpu", dtype=mg.float16):
        ...     y = mg.ones(2, 3) @ mg.ones(3, 4)
        >>> y.dtype
        dtype('float16')
    """

    def __init__(self, device_type: str, dtype: Any = None, enabled: bool = True,
                 cache_enabled: Optional[bool] = None):
        if not isinstance(device_type, str):
            raise ValueError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")
        kind = device_type.split(":")[0]
        if kind not in _DEVICE_TYPES:
            raise RuntimeError(
                f"autocast: device type {device_type!r} is not supported; use 'cpu' or 'cuda'"
            )
        self.device_type = kind
        self.enabled = bool(enabled)
        self.fast_dtype = _default_dtype(kind) if dtype is None else dtypes.to_dtype(dtype)
        if self.fast_dtype.char not in dtypes.HALF_CHARS:
            raise RuntimeError(
                f"In {kind} autocast, but the target dtype is not supported: {self.fast_dtype}. "
                "Use float16 or bfloat16."
            )
        self._prev: Optional[dict] = None

    def __enter__(self) -> "autocast":
        self._prev = state.dtypes
        now = dict(state.dtypes)
        if self.enabled:
            now[self.device_type] = self.fast_dtype
        else:
            now.pop(self.device_type, None)
        state.dtypes = now
        state.on = bool(now)
        return self

    def __exit__(self, *exc: Any) -> bool:
        state.dtypes = self._prev
        state.on = bool(self._prev)
        return False

    def __call__(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with autocast(self.device_type, self.fast_dtype, self.enabled):
                return fn(*args, **kwargs)

        return wrapper


def is_autocast_enabled(device_type: str = "cuda") -> bool:
    """True inside an enabled ``autocast`` block for ``device_type``."""
    return device_type.split(":")[0] in state.dtypes


def get_autocast_dtype(device_type: str):
    """The low dtype autocast uses for ``device_type`` (its default outside a block)."""
    kind = device_type.split(":")[0]
    return state.dtypes.get(kind) or _default_dtype(kind)
