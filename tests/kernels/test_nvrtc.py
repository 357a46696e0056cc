"""Every CUDA source compiled by NVRTC itself, as ``kernels/_cuda.py`` asks CuPy to do it on a
GPU: the same options, the same name expressions (every kernel for float32 and float64, with
its template variants), to a cubin for sm_90 (so ptxas runs too: register and shared-memory
limits are checked), and every name expression lowered to a symbol.

nvcc (``test_cuda_sources.test_nvcc_compiles``) sees the host headers and the explicit
instantiations; NVRTC sees neither, so this is the check that the first ``RawModule`` compile
on a GPU machine cannot fail. NVRTC needs no GPU: it is a library (``pip install
nvidia-cuda-nvrtc``, which .ci/run does; the CUDA toolkit's libnvrtc works too). Skipped when
no libnvrtc can be loaded.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import importlib
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from minigrad.kernels import _cuda

SOURCES = sorted(p.stem for p in _cuda.KERNEL_DIR.glob("*.cu"))
ARCH = "-arch=sm_90"  # the H100/H200 architecture, as the nvcc check


def _candidates():
    """Paths where a libnvrtc may be: the pip wheels' folders, CUDA_PATH, the usual toolkit."""
    found = []
    for base in sys.path:
        for pattern in ("nvidia/cu*/lib/libnvrtc.so*", "nvidia/cuda_nvrtc/lib/libnvrtc.so*"):
            found += sorted(glob.glob(os.path.join(base, pattern)))
    for root in filter(None, (os.environ.get("CUDA_PATH"), "/usr/local/cuda")):
        found += sorted(glob.glob(os.path.join(root, "lib64", "libnvrtc.so*")))
    name = ctypes.util.find_library("nvrtc")
    if name:
        found.append(name)
    # the library itself, not its builtins companion
    return [f for f in found if "builtins" not in os.path.basename(f)]


def _load_nvrtc():
    for path in _candidates():
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


NVRTC = _load_nvrtc()
pytestmark = pytest.mark.skipif(NVRTC is None, reason="no libnvrtc (pip install nvidia-cuda-nvrtc)")


class NvrtcError(RuntimeError):
    pass


def _check(status, what):
    if status != 0:
        NVRTC.nvrtcGetErrorString.restype = ctypes.c_char_p
        raise NvrtcError(f"{what}: {NVRTC.nvrtcGetErrorString(status).decode()}")


def compile_source(code: str, name: str, options, expressions):
    """Compile ``code`` with NVRTC; returns (log, {expression: lowered name}, cubin size).
    Raises NvrtcError with the compiler's log when compilation fails."""
    prog = ctypes.c_void_p()
    _check(NVRTC.nvrtcCreateProgram(ctypes.byref(prog), code.encode(), name.encode(), 0, None,
                                    None), "nvrtcCreateProgram")
    try:
        for expr in expressions:
            _check(NVRTC.nvrtcAddNameExpression(prog, expr.encode()), "nvrtcAddNameExpression")
        opts = (ctypes.c_char_p * len(options))(*(o.encode() for o in options))
        status = NVRTC.nvrtcCompileProgram(prog, len(options), opts)
        size = ctypes.c_size_t()
        _check(NVRTC.nvrtcGetProgramLogSize(prog, ctypes.byref(size)), "log size")
        buf = ctypes.create_string_buffer(size.value)
        _check(NVRTC.nvrtcGetProgramLog(prog, buf), "log")
        log = buf.value.decode(errors="replace")
        if status != 0:
            raise NvrtcError(f"{name} does not compile with NVRTC:\n{log}")
        lowered = {}
        for expr in expressions:
            out = ctypes.c_char_p()
            _check(NVRTC.nvrtcGetLoweredName(prog, expr.encode(), ctypes.byref(out)),
                   f"lowered name of {expr}")
            lowered[expr] = out.value.decode()
        _check(NVRTC.nvrtcGetCUBINSize(prog, ctypes.byref(size)), "cubin size")
        return log, lowered, size.value
    finally:
        NVRTC.nvrtcDestroyProgram(ctypes.byref(prog))


def _expressions(name, dtype):
    """What ``_cuda.kernel`` asks NVRTC for: every kernel of the source and its variants."""
    mod = importlib.import_module(f"minigrad.kernels.{name}")
    return _cuda.name_expressions(mod.CUDA_KERNELS, dtype, getattr(mod, "CUDA_VARIANTS", None))


def test_sources_are_found():
    """Each kernel module that launches CUDA kernels has its .cu source, and every .cu has one."""
    launching = sorted(
        p.stem for p in _cuda.KERNEL_DIR.glob("*.py")
        if not p.stem.startswith("_")
        and hasattr(importlib.import_module(f"minigrad.kernels.{p.stem}"), "CUDA_KERNELS")
    )
    assert len(SOURCES) >= 9 and SOURCES == launching, (SOURCES, launching)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", SOURCES)
def test_nvrtc_compiles(name, dtype):
    expressions = _expressions(name, dtype)
    assert expressions
    log, lowered, cubin = compile_source(_cuda.source(name), f"{name}.cu",
                                         list(_cuda.NVRTC_OPTIONS) + [ARCH], expressions)
    assert "warning" not in log.lower(), log
    assert set(lowered) == set(expressions)
    assert all(sym.startswith("_Z") for sym in lowered.values()), lowered  # template symbols
    assert cubin > 0


def test_a_broken_source_fails_with_its_log():
    """The check can fail: a syntax error comes back with NVRTC's message and line."""
    code = "template <typename T> __global__ void k(T* x) { x[0] = undeclared_name; }\n"
    with pytest.raises(NvrtcError, match="undeclared_name"):
        compile_source(code, "broken.cu", list(_cuda.NVRTC_OPTIONS) + [ARCH], ["k<float>"])


def test_a_name_expression_must_exist():
    code = "template <typename T> __global__ void k(T* x) { x[0] = T(1); }\n"
    with pytest.raises(NvrtcError):
        compile_source(code, "k.cu", list(_cuda.NVRTC_OPTIONS) + [ARCH], ["missing<float>"])


def test_the_library_is_found_from_the_wheel_layout(tmp_path, monkeypatch):
    lib = tmp_path / "nvidia" / "cu13" / "lib"
    lib.mkdir(parents=True)
    (lib / "libnvrtc.so.13").write_bytes(b"")
    (lib / "libnvrtc-builtins.so.13.5").write_bytes(b"")
    monkeypatch.setattr(sys, "path", [str(tmp_path)])
    monkeypatch.delenv("CUDA_PATH", raising=False)
    found = [Path(p) for p in _candidates()]
    assert lib / "libnvrtc.so.13" in found
    assert not any("builtins" in p.name for p in found)
