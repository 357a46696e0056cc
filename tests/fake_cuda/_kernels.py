"""``cupy.RawModule`` / ``RawKernel`` of the fake CuPy: every launch checked in one place, then
run by one of two back ends.

A launch takes what CuPy's ``RawKernel`` takes: a tuple of device arrays (passed by pointer)
and NumPy scalars of the C types; a NumPy array as an argument raises TypeError, as in CuPy.
:func:`check_launch` then holds it against the kernel's C signature, read from the source
(argument count, a scalar's NumPy type, a pointer's dtype and contiguity) and against the
device's limits (grid, block, shared memory). What runs the kernel is :data:`KERNELS`, chosen
when the module is made (``fake_cuda.use`` sets it for one test):

- ``"simulated"`` (the default): the CUDA C, compiled with g++ and run on the CPU by the
  simulator of tests/kernels/cuda_sim.py (one compiler, one cache folder per process);
- ``"emulated"``: what the kernel's header comment says it computes, in NumPy, on the very
  buffers it was given (tests/kernels/cuda_emulation.py): fast, for the launchers' plumbing.
"""

from __future__ import annotations

import atexit
import math
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from fake_cuda._array import ndarray, unsupported
from fake_cuda._cuda import ATTRIBUTES
from minigrad.kernels import _cuda as kernels_cuda

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "kernels"))
import cuda_emulation  # noqa: E402
import cuda_sim  # noqa: E402

KERNELS = "simulated"  # the back end of modules made from now on: "simulated" or "emulated"
LAUNCHES: list = []  # the kernel names launched, in order (fake_cuda.use clears it)

_compiler = None


def compiler() -> "cuda_sim.Compiler":
    """The session's compiler (its cache folder is removed at exit)."""
    global _compiler
    if _compiler is None:
        reason = cuda_sim.unavailable_reason()
        if reason:
            raise RuntimeError(f"the fake CuPy cannot run CUDA kernels: {reason}")
        cache = tempfile.mkdtemp(prefix="minigrad-fake-cuda-")
        atexit.register(shutil.rmtree, cache, ignore_errors=True)
        _compiler = cuda_sim.Compiler(cache)
    return _compiler


# ---------------------------------------------------------------------------- launch checks

# the NumPy type CuPy passes for each C type (a scalar's type, or a pointer's element dtype)
_NUMPY_TYPES = {
    "float": np.float32,
    "double": np.float64,
    "int": np.int32,
    "long long": np.int64,
    "unsigned char": np.uint8,
    "unsigned long long": np.uint64,
}
MAX_GRID_YZ = 65535


def check_launch(name, c_types, grid, block, args, shared_mem) -> None:
    """Assert that a launch fits its kernel and the device.

    Args:
        name: the kernel's name, for the messages.
        c_types: its parameter types as instantiated (``'const float*'``, ``'int'``, ...).
        grid, block: tuples of positive ints; at most 1024 threads a block, grid.y and
            grid.z at most 65535.
        args: one per parameter: for a pointer a C-contiguous device array of the element's
            dtype (any for ``void*``); for a scalar a NumPy scalar of its C type (a Python
            int or float would be passed with a type of CuPy's choosing).
        shared_mem: dynamic shared memory in bytes, at most what a block may use without
            opting in.
    """
    assert len(args) == len(c_types), f"{name}: {len(args)} arguments for {len(c_types)} parameters"
    assert all(isinstance(g, int) and g >= 1 for g in grid) and len(grid) <= 3, grid
    assert all(isinstance(b, int) and b >= 1 for b in block) and len(block) <= 3, block
    assert math.prod(block) <= ATTRIBUTES["MaxThreadsPerBlock"], f"{name}: block {block}"
    assert all(g <= MAX_GRID_YZ for g in grid[1:]), f"{name}: grid {grid} over {MAX_GRID_YZ}"
    limit = ATTRIBUTES["MaxSharedMemoryPerBlock"]
    assert shared_mem <= limit, f"{name}: {shared_mem} bytes of shared memory"
    for k, (t, a) in enumerate(zip(c_types, args)):
        where = f"{name} argument {k} ({t})"
        element = " ".join(w for w in t.rstrip("*").split() if w != "const")
        if t.endswith("*"):
            assert isinstance(a, ndarray), f"{where}: expected a device array, got {type(a)}"
            if element == "void":
                continue
            expected = _NUMPY_TYPES.get(element)
            assert expected is not None, f"{where}: unknown pointer type"
            assert a.dtype == np.dtype(expected), f"{where}: dtype {a.dtype}"
            assert a.flags.c_contiguous, f"{where}: not contiguous"
        else:
            assert type(a) is _NUMPY_TYPES[element], f"{where}: got {type(a).__name__}"


# ---------------------------------------------------------------------------- modules


class RawKernel:
    """One instantiation of a module's kernel, called as ``kernel(grid, block, args,
    shared_mem=0)``."""

    def __init__(self, module: "RawModule", expression: str):
        self.name = expression
        self.kernel_name, _ = cuda_sim.split_expression(expression)
        self.c_types = cuda_sim.instantiated_types(module.code, expression)
        if module.kernels == "simulated":
            self._run = module.simulated.get_function(expression)
        else:
            self._run = cuda_emulation.kernel(self.kernel_name)

    def __call__(self, grid, block, args, *, shared_mem=0, stream=None,
                 enable_cooperative_groups=False):
        if not isinstance(args, tuple):
            raise TypeError(f"kernel arguments must be a tuple, got {type(args).__name__}")
        for a in args:
            if isinstance(a, np.ndarray):
                raise unsupported(a)
        grid, block = tuple(grid), tuple(block)
        check_launch(self.kernel_name, self.c_types, grid, block, args, shared_mem)
        LAUNCHES.append(self.kernel_name)
        host = tuple(a._a if isinstance(a, ndarray) else a for a in args)
        self._run(grid, block, host, shared_mem=shared_mem)


class RawModule:
    """A CUDA source and the template instantiations asked for (``name_expressions``), run by
    the back end :data:`KERNELS` names when the module is made."""

    def __init__(self, code, options, name_expressions):
        assert "-std=c++17" in options, options  # what kernels/_cuda.py gives NVRTC
        self.code, self.expressions = code, list(name_expressions)
        self.kernels = KERNELS
        self.simulated = None
        if self.kernels == "simulated":
            cu_files = sorted(kernels_cuda.KERNEL_DIR.glob("*.cu"))
            source_name = next(
                (p.name for p in cu_files if kernels_cuda.source(p.stem) == code), "kernel.cu"
            )
            self.simulated = cuda_sim.SimulatedModule(compiler(), code, self.expressions,
                                                      source_name)
        else:
            assert self.kernels == "emulated", self.kernels

    def compile(self, log_stream=None):
        if self.simulated is not None:
            self.simulated.compile()

    def get_function(self, name):
        if name not in self.expressions:
            raise KeyError(f"{name} is not one of the name_expressions {self.expressions}")
        return RawKernel(self, name)
