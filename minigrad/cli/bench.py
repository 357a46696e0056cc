"""``minigrad bench``: run the benchmarks of the checkout minigrad was installed from, from any
folder (``python -m benchmarks`` works only in the checkout's root).

The benchmarks are not part of the installed package: they need PyTorch as the baseline and
write their tables into the checkout's ``benchmarks/results/``. This command finds the checkout
and runs ``python CHECKOUT/benchmarks`` with the options given. The checkout is ``--checkout``
if given, else the folder ``pip install .`` or ``pip install -e .`` installed from (pip records
it in the distribution's ``direct_url.json``, PEP 610), else the folder above the imported
``minigrad`` package (a checkout on ``sys.path``).

Example:
    >>> parser = argparse.ArgumentParser()
    >>> add_arguments(parser)
    >>> benchmark_argv(parser.parse_args(["--quick", "--only", "W1"]))
    ['--quick', '--only', 'W1']
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import List, Optional
from urllib.parse import unquote, urlparse

NAME = "bench"
HELP = "run the benchmarks of minigrad's checkout (python -m benchmarks) from any folder"
DESCRIPTION = (
    "Run the kernel and workload benchmarks (python -m benchmarks) of the checkout minigrad was "
    "installed from, from any folder; results go to CHECKOUT/benchmarks/results/. The "
    "benchmarks are not installed with the package: they need the checkout (git clone) and "
    "PyTorch."
)
DISTRIBUTION = "minigrad-dl"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--checkout`` and the options of ``python -m benchmarks``, passed on to it."""
    parser.add_argument("--checkout", type=Path, default=None,
                        help="the minigrad checkout whose benchmarks/ to run (default: the one "
                             "minigrad was installed from)")
    parser.add_argument("--device", default=None,
                        help="cpu, cuda[:N], or all (the default: the CPU and a usable GPU)")
    parser.add_argument("--quick", action="store_true", help="short timings (one GPU run)")
    parser.add_argument("--only", default=None, help="comma-separated kernels and/or W1..W6")
    parser.add_argument("--rounds", type=int, default=None,
                        help="interleaved rounds of fresh processes per comparison")


def benchmark_argv(args: argparse.Namespace) -> List[str]:
    """The command line for ``python -m benchmarks`` from the parsed options."""
    argv = []
    if args.device is not None:
        argv += ["--device", args.device]
    if args.quick:
        argv.append("--quick")
    if args.only is not None:
        argv += ["--only", args.only]
    if args.rounds is not None:
        argv += ["--rounds", str(args.rounds)]
    return argv


def _is_checkout(folder: Optional[Path]) -> bool:
    return folder is not None and (folder / "benchmarks" / "__main__.py").is_file()


def installed_from() -> Optional[Path]:
    """The local folder pip installed the distribution from (None: not a local install)."""
    try:
        text = metadata.distribution(DISTRIBUTION).read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    if not text:
        return None
    try:
        url = urlparse(json.loads(text).get("url", ""))
    except (ValueError, AttributeError):
        return None
    return Path(unquote(url.path)) if url.scheme == "file" else None


def find_checkout(given: Optional[Path] = None) -> Optional[Path]:
    """The checkout whose benchmarks to run: `given`, else the install's source folder, else
    the folder above the imported package; None when none holds ``benchmarks/``."""
    if given is not None:
        return given.resolve() if _is_checkout(given) else None
    package = Path(__file__).resolve().parents[1]  # minigrad/, from minigrad/cli/bench.py
    for folder in (installed_from(), package.parent):
        if _is_checkout(folder):
            return folder
    return None


def run(args: argparse.Namespace) -> int:
    """Runs the checkout's benchmarks in a child Python; returns its exit status."""
    checkout = find_checkout(args.checkout)
    if checkout is None:
        where = f"{args.checkout} has no benchmarks/ folder" if args.checkout else (
            "the benchmarks are not installed with minigrad, and no checkout was found")
        print(f"minigrad bench: {where}. They live in minigrad's checkout: git clone it, then "
              "run `minigrad bench --checkout PATH/TO/CHECKOUT [--quick]` from any folder, or "
              "`python -m benchmarks [--quick]` in the checkout's root.", file=sys.stderr)
        return 1
    command = [sys.executable, str(checkout / "benchmarks"), *benchmark_argv(args)]
    print(f"minigrad bench: {' '.join(command)}", flush=True)
    return subprocess.call(command)
