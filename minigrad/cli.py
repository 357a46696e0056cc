"""The ``minigrad`` command (also ``python -m minigrad``): argparse subcommands."""

from __future__ import annotations

import argparse
import platform
import sys
from typing import List, Optional


def _blas_info() -> str:
    import numpy as np

    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # older NumPy: no dict mode
        return "unknown"


def cmd_info(args) -> int:
    """Print versions, the BLAS, CUDA/GPU details if any, and the usable devices."""
    import numpy as np

    import minigrad as mg
    from minigrad import backend

    print(f"minigrad {mg.__version__}")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minigrad",
        description="minigrad: a deep learning framework on NumPy and CuPy.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("info", help="versions, BLAS, CUDA/GPU and available devices")
    p.set_defaults(func=cmd_info)
    _add_optional_commands(sub)
    return parser


# Modules that add subcommands: each has ``register(subparsers)``. They import the heavier parts
# of minigrad (training, models) only when their command runs.
COMMAND_MODULES = (
    "minigrad.commands",  # demo
    "minigrad.lm_cli",  # train-lm, sample
    "minigrad.finetune.cli",  # finetune
)


def _add_optional_commands(sub) -> None:
    import importlib  # noqa: PLC0415

    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # the module exists but something it imports is missing
                raise
            continue
        module.register(sub)


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
