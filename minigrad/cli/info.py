"""``minigrad info``: versions, the BLAS, CUDA/GPU details if any, and the usable devices."""

from __future__ import annotations

import argparse
import platform

import numpy as np

from minigrad import backend
from minigrad._version import __version__

NAME = "info"
HELP = "versions, BLAS, CUDA/GPU and available devices"
DESCRIPTION = ("Print the versions of minigrad, Python and NumPy, NumPy's BLAS, CuPy and the "
               "CUDA devices if any, and the devices minigrad can use.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``minigrad info`` takes no options."""


def _blas_info() -> str:
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # older NumPy: no dict mode
        return "unknown"


def run(args: argparse.Namespace) -> int:
    """Prints versions, the BLAS, CUDA/GPU details if any, and the usable devices."""
    print(f"minigrad {__version__}")
    print(f"Python   {platform.python_version()} ({platform.machine()}, {platform.system()})")
    print(f"NumPy    {np.__version__} (BLAS: {_blas_info()})")
    devices = ["cpu"]
    try:
        cp = backend._import_cupy()
    except RuntimeError:
        print("CuPy     not installed (GPU support: pip install \".[cuda12]\" or \".[cuda13]\" "
              "from the minigrad checkout)")
    else:
        print(f"CuPy     {cp.__version__}")
        try:
            n = cp.cuda.runtime.getDeviceCount()
            rt = cp.cuda.runtime.runtimeGetVersion()
            print(f"CUDA     runtime {rt // 1000}.{(rt % 1000) // 10}, {n} device(s)")
            for i in range(n):
                props = cp.cuda.runtime.getDeviceProperties(i)
                name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
                mem = props["totalGlobalMem"] / 2**30
                print(f"  cuda:{i}  {name}, {mem:.1f} GiB")
                devices.append(f"cuda:{i}")
        except Exception as exc:  # CuPy present, no driver or no GPU
            print(f"CUDA     no usable GPU ({type(exc).__name__}: {exc})")
    print(f"default device: {backend.default_device()}")
    print("devices: " + ", ".join(devices))
    return 0
