"""The CUDA sources under kernels/: headers, kernel names against their launchers, NVRTC
friendliness, lazy compilation, and (marked slow, skipped without nvcc) a compile check of
every .cu with ``nvcc -arch=sm_90``."""

import importlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import minigrad.kernels as K
from minigrad.kernels import _cuda

KERNEL_DIR = Path(K.__file__).resolve().parent
SOURCES = sorted(p.stem for p in KERNEL_DIR.glob("*.cu"))
EXPECTED = ["adam", "attention", "batch_norm", "conv", "dropout", "gelu", "gru", "layer_norm",
            "lstm", "maxpool", "rms_norm", "rope",
            "softmax_cross_entropy", "swiglu"]


def _module(name):
    return importlib.import_module(f"minigrad.kernels.{name}")


def _globals(text):
    """Names of the __global__ functions a .cu defines."""
    return set(re.findall(r"__global__\s+void\s+(\w+)\s*\(", text))


def test_every_kernel_has_a_source_and_a_module():
    assert SOURCES == EXPECTED
    for name in SOURCES:
        mod = _module(name)
        assert mod.__doc__ and "reference" in mod.__doc__.lower(), name  # names its reference
        assert f"{name}.cu" in mod.__doc__, f"{name}.py docstring does not name {name}.cu"


@pytest.mark.parametrize("name", EXPECTED)
def test_header_comment(name):
    text = (KERNEL_DIR / f"{name}.cu").read_text()
    header = text[: text.find("\n\n")]
    assert header.startswith(f"// {name}.cu:"), "the file opens with its header comment"
    for part in ("Computes", "Launch layout", "Dtypes", "Numerics"):
        assert part in header, f"{name}.cu header lacks '{part}'"
    if "grid-stride" not in header:
        assert "one block per row" in header or "one thread per" in header, name


@pytest.mark.parametrize("name", EXPECTED)
def test_kernel_names_match_the_launcher(name):
    text = (KERNEL_DIR / f"{name}.cu").read_text()
    mod = _module(name)
    assert set(mod.CUDA_KERNELS) == _globals(text), name
    # every kernel the launcher asks for is one the source defines
    launcher = (KERNEL_DIR / f"{name}.py").read_text()
    asked = set(re.findall(r'_cuda\.kernel\(\s*"%s",\s*CUDA_KERNELS,\s*"(\w+)"' % name, launcher))
    asked |= set(re.findall(r'self\._(?:kernel|launch|\w+_steps_cuda)\(\s*"(\w+)"', launcher))
    asked |= set(re.findall(r'_launch_cuda\(\s*\w+,\s*"(\w+)"', launcher))
    assert asked and asked <= set(mod.CUDA_KERNELS), (name, asked)
    # nvcc sees explicit instantiations of every kernel NVRTC gets by name
    instantiated = text[text.find("#ifndef __CUDACC_RTC__"):]
    for k in mod.CUDA_KERNELS:
        assert k in instantiated, f"{name}.cu: {k} has no explicit instantiation for nvcc"


@pytest.mark.parametrize("name", EXPECTED)
def test_sources_suit_nvrtc(name):
    """NVRTC compiles without the C++ standard headers: a .cu includes only the shared headers
    of kernels/ (.cuh), which ``_cuda.source`` inlines, so the text NVRTC gets has no #include;
    and every kernel is a template (so the launcher picks the dtype with a name expression)."""
    raw = (KERNEL_DIR / f"{name}.cu").read_text()
    for header in re.findall(r"^\s*#\s*include\s+(.*)$", raw, re.MULTILINE):
        assert re.fullmatch(r'"\w+\.cuh"(\s*//.*)?', header), header
    text = _cuda.source(name)
    assert not re.search(r"^\s*#\s*include", text, re.MULTILINE)
    for k in _globals(text):
        assert re.search(r"template\s*<[^>]*>\s*__global__\s+void\s+%s\s*\(" % k, text), k
    assert max(len(line) for line in text.splitlines()) <= 100


def test_nothing_is_compiled_or_imported_at_import():
    code = ("import sys, minigrad, minigrad.kernels._cuda as c; "
            "assert 'cupy' not in sys.modules; assert c._modules == {}; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_grid_helpers():
    assert _cuda.grid_1d(1) == ((1,), (256,))
    assert _cuda.grid_1d(0) == ((1,), (256,))
    assert _cuda.grid_1d(10**9, 256, sm_count=132) == ((132 * 32,), (256,))
    assert _cuda.rows_block(1) == 32 and _cuda.rows_block(1000, 256) == 256
    assert _cuda.scalar("float32", 0.1).dtype.name == "float32"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("nvcc") is None, reason="needs nvcc")
@pytest.mark.parametrize("name", EXPECTED)
def test_nvcc_compiles(name, tmp_path):
    cmd = ["nvcc", "-arch=sm_90", "-std=c++17", "-c", str(KERNEL_DIR / f"{name}.cu"),
           "-o", str(tmp_path / f"{name}.o")]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "warning" not in out.stderr.lower(), out.stderr
