"""CUDA plumbing shared by the fused kernels: load a ``.cu`` source, compile it through CuPy
(NVRTC) on first use, cache the module per device and dtype, and pick launch geometries.

Nothing here imports CuPy at import time; :func:`kernel` does, through ``minigrad.backend``.
The launch-geometry helpers are plain Python so that tests can check them without a GPU.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Tuple

import numpy as np

from minigrad import backend

KERNEL_DIR = Path(__file__).resolve().parent

# NVRTC options: C++17, and fast-but-IEEE float maths (no --use_fast_math: the kernels are
# compared with the NumPy versions at float32 tolerances).
NVRTC_OPTIONS = ("-std=c++17",)

_CTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}

# (source name, dtype name, device id) -> cupy.RawModule
_modules: Dict[Tuple[str, str, int], object] = {}

BLOCK = 256  # threads per block of the elementwise (grid-stride) kernels
MAX_BLOCKS_PER_SM = 32  # grid-stride loops need no more blocks than this per SM


# a .cu's include of a shared header of kernels/ (``#include "_math.cuh"``)
_LOCAL_INCLUDE = re.compile(r'^#include "(\w+\.cuh)".*$', re.MULTILINE)


def source(name: str) -> str:
    """The text of ``kernels/<name>.cu`` as NVRTC compiles it: each ``#include "<x>.cuh"`` line
    replaced by the text of ``kernels/<x>.cuh``, so that the source is self-contained (NVRTC
    gets no include path, and CuPy's on-disk cache, keyed by the source text, sees a changed
    header)."""
    text = (KERNEL_DIR / f"{name}.cu").read_text()
    return _LOCAL_INCLUDE.sub(lambda m: (KERNEL_DIR / m.group(1)).read_text(), text)


def ctype(dtype) -> str:
    """The C type of a NumPy dtype ('float' or 'double'); other dtypes raise TypeError."""
    try:
        return _CTYPES[np.dtype(dtype)]
    except KeyError:
        raise TypeError(
            f"no CUDA kernel for dtype {np.dtype(dtype)} (float32 or float64)"
        ) from None


def _expression(kernel_name: str, dtype, variant=None) -> str:
    args = ctype(dtype) if variant is None else f"{ctype(dtype)}, {variant}"
    return f"{kernel_name}<{args}>"


def name_expressions(kernels, dtype, variants=None) -> list:
    """The template instantiations NVRTC must emit, e.g. ``['lstm_step_fwd<float>']``;
    ``variants`` maps a kernel to its extra template arguments (``{'k': (64, 128)}`` gives
    ``k<float, 64>`` and ``k<float, 128>``)."""
    variants = variants or {}
    return [_expression(k, dtype, v) for k in kernels for v in variants.get(k, (None,))]


def kernel(name: str, kernels: Tuple[str, ...], which: str, dtype, device_id: int,
           variant=None, variants=None):
    """The compiled ``which<T[, variant]>`` kernel of ``kernels/<name>.cu`` for ``dtype`` on a
    device.

    The first call for a (source, dtype, device) compiles every kernel the source lists
    (``kernels``, with their ``variants``) and caches the module; later calls only look it up.
    """
    if which not in kernels:
        raise KeyError(f"{name}.cu: {which!r} is not one of its kernels {kernels}")
    key = (name, np.dtype(dtype).name, int(device_id))
    module = _modules.get(key)
    if module is None:
        cp = backend._import_cupy()
        with cp.cuda.Device(device_id):
            module = cp.RawModule(code=source(name), options=NVRTC_OPTIONS,
                                  name_expressions=name_expressions(kernels, dtype, variants))
            if hasattr(module, "compile"):  # CuPy >= 10: compile now, errors surface here
                module.compile()
        _modules[key] = module
    return module.get_function(_expression(which, dtype, variant))


# ---------------------------------------------------------------------------- geometry


def grid_1d(n: int, block: int = BLOCK, sm_count: int = 132) -> Tuple[Tuple[int], Tuple[int]]:
    """``(grid, block)`` for a grid-stride loop over ``n`` items: enough blocks to cover ``n``
    once, capped at ``MAX_BLOCKS_PER_SM`` per SM (the loop covers the rest); at least one.

    Example:
        >>> grid_1d(1000, 256)
        ((4,), (256,))
        >>> grid_1d(10**9, 256, sm_count=132)
        ((4224,), (256,))
    """
    blocks = max(1, min((n + block - 1) // block, sm_count * MAX_BLOCKS_PER_SM))
    return (blocks,), (block,)


def rows_block(n_cols: int, max_threads: int = 1024) -> int:
    """Threads per block for a kernel that gives each row one block: a multiple of 32 (a warp),
    enough for the row up to ``max_threads``.

    Example:
        >>> rows_block(10), rows_block(256), rows_block(5000)
        (32, 256, 1024)
    """
    warps = (n_cols + 31) // 32
    return int(min(max(warps, 1) * 32, max_threads))


def sm_count(device_id: int) -> int:
    """Streaming multiprocessors of a CUDA device (132 on an H100 SXM)."""
    cp = backend._import_cupy()
    return int(cp.cuda.Device(device_id).attributes["MultiProcessorCount"])


def scalar(dtype, value):
    """A kernel argument of the kernel's float type T (CuPy passes NumPy scalars by type)."""
    return np.dtype(dtype).type(value)
