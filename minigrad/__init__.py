"""minigrad: a deep learning framework written from scratch on NumPy (CPU) and CuPy (GPU).

Example:
    >>> import minigrad as mg
    >>> x = mg.tensor([1.0, 2.0], requires_grad=True)
    >>> (x ** 2).sum().backward()
    >>> x.grad
    tensor([2., 4.])
"""

import importlib as _importlib
import importlib.util as _importlib_util
import sys as _sys
from pathlib import Path as _Path

from minigrad._version import __version__
from minigrad import allocator

allocator.tune()  # freed buffers stay in the heap for the next step (see allocator.py)
from minigrad import autograd, backend, dtypes
from minigrad.autograd import enable_grad, grad, is_grad_enabled, no_grad, set_grad_enabled
from minigrad.backend import (
    Device, cuda, get_rng_state, manual_seed, set_default_device, set_rng_state,
)
from minigrad.backend import Device as device
from minigrad.backend import default_device as get_default_device
from minigrad.dtypes import (
    bool, double, float, float16, float32, float64, half, int, int8, int16, int32, int64, long,
    short, uint8,
)
from minigrad.tensor import (
    Size, Tensor, arange, as_tensor, empty, empty_like, eye, from_dlpack, from_numpy, full,
    full_like, is_tensor, linspace, ones, ones_like, rand, rand_like, randint, randn, randn_like,
    randperm, tensor, zeros, zeros_like,
)
from minigrad.ops import *
from minigrad.ops.random import Generator
from minigrad import viz
from minigrad import linalg, threads
from minigrad.autograd import inference_mode
from minigrad.threads import get_num_threads, set_num_threads
from minigrad.io.serialization import load, save


def _import_kernels():
    """Import ``minigrad.kernels``, the fused kernels of the top-level ``kernels/`` folder.

    Installed (``pip install .``), the folder is the subpackage ``minigrad.kernels``. In a plain
    checkout (cloned, not installed) it sits beside this package, so it is loaded from there
    under the same name: ``import minigrad`` works straight after ``git clone``.
    """
    try:
        return _importlib.import_module("minigrad.kernels")
    except ModuleNotFoundError as exc:
        if exc.name != "minigrad.kernels":
            raise
    folder = _Path(__file__).resolve().parent.parent / "kernels"
    if not (folder / "__init__.py").is_file():
        raise ImportError(
            f"minigrad.kernels is missing: neither installed nor found at {folder}. "
            "Reinstall minigrad from its checkout (pip install .)."
        )
    spec = _importlib_util.spec_from_file_location(
        "minigrad.kernels", folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    module = _importlib_util.module_from_spec(spec)
    _sys.modules["minigrad.kernels"] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del _sys.modules["minigrad.kernels"]
        raise
    return module


kernels = _import_kernels()  # the layer below nn: nn dispatches to these kernels
from minigrad import nn, optim  # noqa: E402
from minigrad import data  # noqa: E402  (mg.data, as PyTorch users reach for it)
from minigrad import utils  # noqa: E402
from minigrad.utils import data as _utils_data  # noqa: E402, F401  (mg.utils.data, as torch)
from minigrad.fused import use_fused  # noqa: E402
from minigrad import amp  # noqa: E402
from minigrad.amp import autocast  # noqa: E402


def __getattr__(name):
    """``mg.bfloat16``: from the optional package ml_dtypes, loaded on first use."""
    if name == "bfloat16":
        return dtypes.load_bfloat16()
    raise AttributeError(f"module 'minigrad' has no attribute {name!r}")
