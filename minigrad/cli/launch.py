"""``minigrad launch -n N train.py [args]``: run a training script as N data-parallel processes.

It runs ``mpiexec -n N python train.py [args]`` with this environment's Python and MPI launcher,
and returns the job's exit status. The script calls ``minigrad.distributed.init_process_group()``
(`minigrad.keras` fits call it themselves), and each process learns its rank from MPI.

Which ``mpiexec``: ``--mpiexec PATH``, else ``$MINIGRAD_MPIEXEC``, else the one next to this
Python (what ``pip install ".[mpi]"`` puts there: the mpich wheel's), else ``mpiexec`` or
``mpirun`` on the PATH. Without one it says what to install.

Threads: N processes that each use every core slow each other down, so unless you set
``OMP_NUM_THREADS`` (or pass ``--threads``), each process gets ``cores // N`` BLAS threads.

Several machines, through MPI's hosts file: write one line per machine, its name and how many
processes it runs (MPICH's ``host:slots``, Open MPI's ``host slots=N``)::

    node1:4
    node2:4

then ``minigrad launch -n 8 --hostfile hosts train.py`` on node1. Every machine needs the same
Python environment at the same path (minigrad, mpi4py, the same MPI) and the script and data at
the same paths, and node1 must reach the others by ssh without a password. The processes find
each other through MPI; NCCL (on GPUs) finds its own network.

Examples::

    minigrad launch -n 2 train.py --epochs 5
    minigrad launch -n 2 -m minigrad demo            # the Keras MNIST demo, data-parallel
    minigrad launch -n 8 --hostfile hosts train.py
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from minigrad.cli.report import error

NAME = "launch"
HELP = "run a training script as N data-parallel processes (through mpiexec)"
DESCRIPTION = (
    "Run a Python script (or -m module) as N processes of one data-parallel job, through the "
    "environment's mpiexec: minigrad launch -n 2 train.py [args]. Add --hostfile to spread "
    "the processes over several machines (see the module's documentation)."
)

MPIEXEC_ENV = "MINIGRAD_MPIEXEC"
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
INSTALL_HINT = (
    'install an MPI launcher: pip install ".[mpi]" from the minigrad checkout, or pip install '
    "mpi4py mpich (the mpich wheel brings mpiexec), or your system's MPI (e.g. apt install "
    "mpich, or openmpi-bin) and pip install mpi4py"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``minigrad launch``."""
    p.add_argument("-n", "--nproc", type=int, required=True, metavar="N",
                   help="the number of processes (ranks)")
    p.add_argument("--hostfile", default=None,
                   help="MPI hosts file: the machines and how many processes each runs")
    p.add_argument("--mpiexec", default=None,
                   help=f"the MPI launcher (default: ${MPIEXEC_ENV}, the one next to this "
                        "Python, then mpiexec/mpirun on the PATH)")
    p.add_argument("--threads", type=int, default=None,
                   help="BLAS/OpenMP threads per process (default: $OMP_NUM_THREADS, else "
                        "cores // N)")
    p.add_argument("-m", dest="module", default=None,
                   help="run a module as a script (python -m MODULE), e.g. -m minigrad demo")
    p.add_argument("--dry-run", action="store_true",
                   help="print the command instead of running it")
    p.add_argument("command", nargs=argparse.REMAINDER,
                   help="the script and its arguments (or the module's arguments with -m)")


def find_mpiexec(explicit: str | None = None) -> str | None:
    """The MPI launcher to use (see the module docstring), or None."""
    for candidate in (explicit, os.environ.get(MPIEXEC_ENV)):
        if candidate:
            found = shutil.which(candidate)
            return found if found else None
    beside = Path(sys.executable).parent / "mpiexec"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("mpiexec") or shutil.which("mpirun")


@functools.lru_cache(maxsize=None)
def open_mpi_version(mpiexec: str) -> tuple | None:
    """Open MPI's version as a tuple of ints (``mpiexec --version`` says "mpiexec (Open MPI)
    5.0.11"), ``(0,)`` for an Open MPI that names no version, None for another MPI."""
    try:
        out = subprocess.run([mpiexec, "--version"], capture_output=True, text=True,
                             timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    text = out.stdout + out.stderr
    if "open mpi" not in text.lower():
        return None
    found = re.search(r"open mpi\)?\s+v?(\d+)\.(\d+)", text, re.IGNORECASE)
    return (int(found.group(1)), int(found.group(2))) if found else (0,)


def open_mpi_options(mpiexec: str, nproc: int, hostfile: str | None = None) -> list | None:
    """What Open MPI's ``mpiexec`` needs to start `nproc` processes where MPICH needs nothing:
    ``--allow-run-as-root`` as root, and permission to run more processes than this machine
    has cores when they all run on it (Open MPI refuses by default; MPICH shares the cores).
    None for another MPI."""
    version = open_mpi_version(mpiexec)
    if version is None:
        return None
    options = []
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        options.append("--allow-run-as-root")
    if hostfile is None and nproc > (os.cpu_count() or 1):
        options += ["--map-by", ":OVERSUBSCRIBE"] if version >= (5,) else ["--oversubscribe"]
    return options


def build_command(args: argparse.Namespace, mpiexec: str) -> tuple[list, dict]:
    """The launcher's command line and the processes' environment."""
    env = dict(os.environ)
    threads = args.threads
    if threads is None and "OMP_NUM_THREADS" not in env and not args.hostfile:
        threads = max(1, (os.cpu_count() or 1) // args.nproc)
    if threads is not None:
        env.update({name: str(threads) for name in THREAD_VARS})
    cmd = [mpiexec, "-n", str(args.nproc)]
    if args.hostfile:
        cmd += ["-hostfile", args.hostfile]
    open_mpi = open_mpi_options(mpiexec, args.nproc, args.hostfile)
    if open_mpi is not None:
        cmd += open_mpi
        for name in THREAD_VARS:  # Open MPI passes only the variables it is told to
            if name in env:
                cmd += ["-x", name]
    cmd.append(sys.executable)
    cmd += ["-m", args.module] if args.module else []
    cmd += list(args.command)
    return cmd, env


def run(args: argparse.Namespace) -> int:
    """``minigrad launch``: start the job, wait for it, return its exit status."""
    if args.nproc <= 0:
        return error(NAME, f"-n must be positive, got {args.nproc}", 2)
    if not args.module and not args.command:
        return error(NAME, "give the script to run (minigrad launch -n 2 train.py [args]) or "
                           "-m MODULE", 2)
    if not args.module and not Path(args.command[0]).is_file():
        return error(NAME, f"no such script: {args.command[0]}", 2)
    mpiexec = find_mpiexec(args.mpiexec)
    if mpiexec is None:
        where = f" ({args.mpiexec or os.environ.get(MPIEXEC_ENV)} not found)" if (
            args.mpiexec or os.environ.get(MPIEXEC_ENV)) else ""
        return error(NAME, f"no MPI launcher (mpiexec) found{where}: {INSTALL_HINT}", 1)
    cmd, env = build_command(args, mpiexec)
    if args.dry_run:
        print(" ".join(cmd))
        return 0
    if importlib.util.find_spec("mpi4py") is None:
        return error(NAME, f"mpi4py is not installed, so the processes could not talk: "
                           f"{INSTALL_HINT}", 1)
    try:
        return subprocess.call(cmd, env=env)
    except KeyboardInterrupt:
        return 130
