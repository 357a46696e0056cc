"""Run the CUDA C of the fused kernels on the CPU: compile each ``.cu`` with g++ against
``cuda_sim/cuda_sim.h`` and launch its kernels on NumPy buffers.

This is the simulated back end of the fake CuPy (tests/fake_cuda): its ``RawModule`` checks
each launch against the kernel's C signature and hands the simulator the NumPy buffers behind
the device arrays, so that a wrong index, a missing barrier or a bad reduction in the CUDA C
shows up without a GPU:

- :func:`parameters` and :func:`instantiated_types` read each ``__global__`` kernel's
  parameter list from its source (the fake CuPy checks launches against them);
- :func:`translation_unit` turns a source and the template instantiations NVRTC would be
  asked for (``name_expressions``) into C++: the header, the source with its shared memory
  rewritten (``__shared__`` -> ``static``; ``extern __shared__ x[]`` -> the launch's dynamic
  buffer; the blocks of a grid run one at a time), an explicit instantiation and an
  ``extern "C"`` entry point per expression;
- :class:`Compiler` builds that with ``g++ -O2 -std=c++20`` into a cache folder, once per
  (source, expressions), against a runtime library (``cuda_sim/runtime.cpp``) built once;
- :class:`SimulatedKernel` runs one instantiation on NumPy buffers (passed by address, scalars
  by C type) and raises :class:`SimulationError` with the simulator's message when the launch
  does something the GPU leaves undefined.

Two extra checks: every float array argument that shares no memory with another runs in a copy
with NaN guard cells on both sides (a write past either end fails the launch; a read past it
gives NaN); and the kernels are built with ``-fsanitize=alignment``, so a load or store through
a misaligned pointer (a ``float4`` from an address that is not a multiple of 16, which faults on
a GPU) fails the launch. (The fake CuPy's ``empty`` fills float arrays with NaN, so an output
element a kernel forgets to write is NaN.)
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np

SIM_DIR = Path(__file__).resolve().parent / "cuda_sim"
HEADER = SIM_DIR / "cuda_sim.h"
RUNTIME = SIM_DIR / "runtime.cpp"
CXX = "g++"
CXXFLAGS = ("-O2", "-std=c++20", "-shared", "-fPIC", "-pthread")
# NVRTC and nvcc contract a * b + c into fused multiply-adds by default (--fmad=true); so does
# g++ -O2 with -ffp-contract=fast once the target has FMA, which these x86 machines do. Results
# that hold only without contraction (exact equality with an unfused reference) then fail
# here as they would on a GPU.
FMA_FLAGS = ("-mfma", "-ffp-contract=fast")


# every typed load and store checks its address (runtime.cpp's __ubsan_handle_type_mismatch_v1
# fails the launch on a misaligned one, as the GPU faults on it)
ALIGNMENT_CHECK = ("-fsanitize=alignment",)


def _cpu_has_fma() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            return " fma " in f.read().replace("\n", " ")
    except OSError:
        return False


if _cpu_has_fma():
    CXXFLAGS = CXXFLAGS + FMA_FLAGS
GUARD = 16  # NaN cells on each side of a guarded array argument
_CTYPES = {
    "int": ctypes.c_int32,
    "long long": ctypes.c_int64,
    "float": ctypes.c_float,
    "double": ctypes.c_double,
}


class SimulationError(RuntimeError):
    """A simulated launch did something the GPU leaves undefined (the message says what)."""


_PROBE = "#include <semaphore>\n#include <bit>\n#include <linux/futex.h>\n"


@functools.lru_cache(maxsize=None)
def unavailable_reason():
    """Why kernels cannot be simulated here (no g++, or no C++20 in it); None when they can."""
    if shutil.which(CXX) is None:
        return f"needs {CXX} to simulate the CUDA kernels"
    probe = subprocess.run(
        [CXX, "-std=c++20", "-x", "c++", "-fsyntax-only", "-"],
        input=_PROBE,
        text=True,
        capture_output=True,
    )
    if probe.returncode != 0:
        return f"{CXX} cannot compile the simulator (C++20, Linux futexes): {probe.stderr[:200]}"
    return None


# ---------------------------------------------------------------------------- signatures

_SIG = re.compile(r"template\s*<([^>]*)>\s*__global__\s+void\s+(\w+)\s*\(([^)]*)\)", re.S)


def parameters(code: str) -> dict:
    """{kernel name: (template parameter names, [parameter type as written, ...])} for the
    templated ``__global__`` kernels of a CUDA source, e.g. ``(['T', 'DMAX'], ['const T*',
    ..., 'int'])`` (without ``__restrict__`` and the parameter names)."""
    end = code.find("#ifndef __CUDACC_RTC__")
    kernels = {}
    for template, name, params in _SIG.findall(code if end < 0 else code[:end]):
        names = [t.split()[-1] for t in template.split(",")]
        types = []
        for p in params.split(","):
            p = " ".join(p.replace("__restrict__", "").split())
            types.append(re.match(r"(.*?)\s*\w+$", p).group(1).replace(" *", "*"))
        kernels[name] = (names, types)
    return kernels


def split_expression(expression: str):
    """``'flash_attn_fwd<float, 64>'`` -> ``('flash_attn_fwd', ['float', '64'])``."""
    name, args = re.fullmatch(r"\s*(\w+)\s*<(.*)>\s*", expression).groups()
    return name, [a.strip() for a in args.split(",")]


def instantiated_types(code: str, expression: str) -> list:
    """The parameter types of an instantiation, e.g. ``['const float*', ..., 'int']``."""
    name, values = split_expression(expression)
    names, types = parameters(code)[name]
    assert len(names) == len(values), f"{expression}: template takes {names}"
    subst = dict(zip(names, values))
    return [re.sub(r"\b\w+\b", lambda m: subst.get(m.group(0), m.group(0)), t) for t in types]


# ---------------------------------------------------------------------------- C++ source

_EXTERN_SHARED = re.compile(
    r"extern\s+__shared__\s+(?:__align__\s*\(\s*\d+\s*\)\s+)?([\w ]+?)\s+(\w+)\s*\[\s*\]\s*;"
)


def rewrite(code: str) -> str:
    """The source with shared memory the CPU can run (line numbers unchanged)."""
    code = _EXTERN_SHARED.sub(r"\1* const \2 = static_cast<\1*>(cuda_sim_dynamic_shared());", code)
    return re.sub(r"\b__shared__\b", "static", code)


def translation_unit(code: str, expressions, source_name: str = "kernel.cu") -> str:
    """C++ for a CUDA source and the instantiations asked for: entry point k, ``cuda_sim_k``,
    launches ``expressions[k]``."""
    parts = [
        '#include "cuda_sim.h"',
        f'#line 1 "{source_name}"',
        rewrite(code),
        '#line 1 "cuda_sim_entry_points"',
    ]
    for k, expression in enumerate(expressions):
        types = instantiated_types(code, expression)
        call_args = ", ".join(f"cuda_sim::arg<{t}>(a, {i})" for i, t in enumerate(types))
        parts += [
            f"template void {expression}({', '.join(types)});",
            f"static void cuda_sim_kernel_{k}(void** a) {{ {expression}({call_args}); }}",
            f'extern "C" int cuda_sim_{k}(const unsigned* grid, const unsigned* block, '
            f"size_t shared, void** args, double timeout_s, char* error, size_t error_len) {{",
            f"  return cuda_sim::launch<cuda_sim_kernel_{k}>(grid, block, shared, args, "
            f"timeout_s, error, error_len);",
            "}",
        ]
    return "\n".join(parts) + "\n"


# ---------------------------------------------------------------------------- compiling


class Compiler:
    """Builds simulated kernel libraries in ``cache_dir`` (each distinct one once)."""

    def __init__(self, cache_dir):
        self.cache_dir = Path(cache_dir)
        self._libraries: dict = {}
        self._runtime = None

    def _build(self, cpp: Path, out: Path, *extra):
        cmd = [CXX, *CXXFLAGS, f"-I{SIM_DIR}", str(cpp), "-o", str(out), *extra]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise SimulationError(f"{' '.join(cmd)} failed:\n{done.stderr}")

    def runtime(self) -> Path:
        if self._runtime is None:
            out = self.cache_dir / "libcuda_sim_runtime.so"
            self._build(RUNTIME, out)
            ctypes.CDLL(str(out), mode=ctypes.RTLD_GLOBAL)
            self._runtime = out
        return self._runtime

    def library(self, code: str, expressions, source_name: str = "kernel.cu"):
        """The loaded library of ``code`` with one entry point per expression."""
        text = translation_unit(code, expressions, source_name)
        key = hashlib.sha256((text + HEADER.read_text()).encode()).hexdigest()[:16]
        lib = self._libraries.get(key)
        if lib is None:
            runtime = self.runtime()
            cpp = self.cache_dir / f"{Path(source_name).stem}_{key}.cpp"
            cpp.write_text(text)
            obj, out = cpp.with_suffix(".o"), cpp.with_suffix(".so")
            # compiled with the alignment check, linked without the sanitizer's runtime: the
            # simulator's runtime handles a misaligned access (it fails the launch)
            self._build(cpp, obj, "-c", *ALIGNMENT_CHECK)
            self._build(obj, out, str(runtime), f"-Wl,-rpath,{runtime.parent}")
            lib = self._libraries[key] = ctypes.CDLL(str(out))
        return lib


# ---------------------------------------------------------------------------- launching


class SimulatedKernel:
    """One instantiation of a kernel, called with the NumPy buffers behind a launch's device
    arrays (the fake CuPy's ``RawKernel`` has checked the launch against the signature)."""

    timeout_s = 20.0  # a barrier waiting longer reports a deadlock

    def __init__(self, library, k: int, code: str, expression: str):
        self.expression = expression
        self.c_types = instantiated_types(code, expression)
        self.entry = getattr(library, f"cuda_sim_{k}")
        self.entry.restype = ctypes.c_int
        self.entry.argtypes = [
            ctypes.POINTER(ctypes.c_uint),
            ctypes.POINTER(ctypes.c_uint),
            ctypes.c_size_t,
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.c_double,
            ctypes.c_char_p,
            ctypes.c_size_t,
        ]

    def __call__(self, grid, block, args, shared_mem=0):
        grid, block, args = tuple(grid), tuple(block), tuple(args)
        padded = _padded_copies(args, self.c_types)  # {argument index: copy with guards}
        values = [
            self._c_value(t, padded[i][GUARD:-GUARD] if i in padded else a)
            for i, (t, a) in enumerate(zip(self.c_types, args))
        ]
        argv = (ctypes.c_void_p * max(1, len(values)))(
            *[ctypes.cast(ctypes.pointer(v), ctypes.c_void_p) for v in values]
        )
        error = ctypes.create_string_buffer(2048)
        rc = self.entry(
            (ctypes.c_uint * 3)(*(grid + (1, 1))[:3]),
            (ctypes.c_uint * 3)(*(block + (1, 1))[:3]),
            shared_mem,
            argv,
            self.timeout_s,
            error,
            len(error),
        )
        problems = [] if rc == 0 else [error.value.decode()]
        for i, full in padded.items():
            if not _guards_intact(full):
                problems.append(f"argument {i} ({self.c_types[i]}) written out of bounds")
            if not self.c_types[i].startswith("const"):
                args[i][...] = full[GUARD:-GUARD].reshape(args[i].shape)
        if problems:
            raise SimulationError(f"{self.expression}: " + "; ".join(problems))

    @staticmethod
    def _c_value(c_type, value):
        if c_type.endswith("*"):
            return ctypes.c_void_p(value.__array_interface__["data"][0])
        return _CTYPES[c_type](value.item() if hasattr(value, "item") else value)


def _padded_copies(args, c_types) -> dict:
    """{argument index: a copy between GUARD NaN cells on each side} for the float array
    arguments that can run in a copy: contiguous, and sharing no memory with another argument
    (adam passes v as v_max without amsgrad)."""
    arrays = [(j, b) for j, b in enumerate(args) if isinstance(b, np.ndarray)]
    copies = {}
    for i, (a, t) in enumerate(zip(args, c_types)):
        if not (
            isinstance(a, np.ndarray)
            and t.endswith("*")
            and a.dtype.kind == "f"
            and a.flags.c_contiguous
            and a.size
        ):
            continue
        if any(j != i and np.may_share_memory(a, b) for j, b in arrays):
            continue
        full = np.full(a.size + 2 * GUARD, np.nan, dtype=a.dtype)
        full[GUARD:-GUARD] = a.reshape(-1)
        copies[i] = full
    return copies


def _guards_intact(full) -> bool:
    """Whether the guard cells still hold the NaN they were filled with, bit for bit."""
    bits = full.view(np.uint32 if full.itemsize == 4 else np.uint64)
    nan = np.full(1, np.nan, dtype=full.dtype).view(bits.dtype)[0]
    return bool(np.all(bits[:GUARD] == nan) and np.all(bits[-GUARD:] == nan))


class SimulatedModule:
    """A source and its instantiations (``name_expressions``), compiled for the CPU on first
    use: what the fake CuPy's ``RawModule`` runs in simulated mode."""

    def __init__(self, compiler: Compiler, code: str, expressions, source_name="kernel.cu"):
        self.compiler, self.code, self.expressions = compiler, code, list(expressions)
        self.source_name = source_name
        self.library = None

    def compile(self):
        if self.library is None:
            self.library = self.compiler.library(self.code, self.expressions, self.source_name)

    def get_function(self, expression: str) -> SimulatedKernel:
        self.compile()
        return SimulatedKernel(self.library, self.expressions.index(expression), self.code,
                               expression)
