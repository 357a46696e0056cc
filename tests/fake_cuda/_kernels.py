"""``cupy.RawModule`` of the fake CuPy: the CUDA C compiled with g++ and run on the CPU by the
simulator of tests/kernels/cuda_sim.py (one compiler, one cache folder per process).

A launch takes what CuPy's ``RawKernel`` takes: device arrays (passed by pointer; the
simulator checks dtype and contiguity against the C signature) and NumPy scalars of the C
types. A NumPy array as an argument raises TypeError, as in CuPy.
"""

from __future__ import annotations

import atexit
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from fake_cuda._array import ndarray, unsupported

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "kernels"))
import cuda_sim  # noqa: E402

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


class RawKernel:
    """One kernel of a module, called as ``kernel(grid, block, args, shared_mem=0)``."""

    def __init__(self, simulated: "cuda_sim.SimulatedKernel"):
        self.simulated = simulated
        self.name = simulated.expression

    def __call__(self, grid, block, args, *, shared_mem=0, stream=None,
                 enable_cooperative_groups=False):
        if not isinstance(args, tuple):
            raise TypeError(f"kernel arguments must be a tuple, got {type(args).__name__}")
        host = []
        for a in args:
            if isinstance(a, ndarray):
                host.append(a._a)
            elif isinstance(a, np.ndarray):
                raise unsupported(a)
            else:
                host.append(a)
        self.simulated(grid, block, tuple(host), shared_mem=shared_mem)


class RawModule:
    def __init__(self, code, options, name_expressions):
        self._module = cuda_sim._RawModule(compiler(), code, tuple(options),
                                           list(name_expressions))

    def compile(self, log_stream=None):
        self._module.compile()

    def get_function(self, name):
        if name not in self._module.expressions:
            raise KeyError(f"{name} is not one of the name_expressions "
                           f"{self._module.expressions}")
        return RawKernel(self._module.get_function(name))
