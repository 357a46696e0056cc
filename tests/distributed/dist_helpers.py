"""Running a scenario of tests/distributed/mpi_worker.py as N MPI processes, from pytest.

Each run is ``mpiexec -n N python mpi_worker.py SCENARIO OUTDIR`` with a hard timeout (the whole
process group is killed past it) and a short ``MINIGRAD_DIST_TIMEOUT``, so that a hang fails
the test instead of stalling the suite. Each rank writes ``rank{r}.npz`` (arrays) and
``rank{r}.json`` (numbers) into OUTDIR; `Run` reads them back.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dist_cases import DTYPES, OPS, rank_input  # noqa: F401  (re-exported for the tests)

from minigrad.cli.launch import find_mpiexec, open_mpi_options

HERE = Path(__file__).resolve().parent
WORKER = HERE / "mpi_worker.py"
MPIEXEC = find_mpiexec()
HAVE_MPI = MPIEXEC is not None and importlib.util.find_spec("mpi4py") is not None
needs_mpi = pytest.mark.skipif(not HAVE_MPI, reason="needs mpi4py and mpiexec "
                               '(pip install ".[mpi]")')

class Run:
    """A finished MPI run: its exit status, output, duration and per-rank results."""

    def __init__(self, proc: subprocess.CompletedProcess, outdir: Path, n: int,
                 seconds: float) -> None:
        self.returncode = proc.returncode
        self.output = (proc.stdout or "") + (proc.stderr or "")
        self.seconds = seconds
        self.outdir = outdir
        self.n = n

    def arrays(self, rank: int) -> dict:
        with np.load(self.outdir / f"rank{rank}.npz") as data:
            return {key: data[key] for key in data.files}

    def values(self, rank: int) -> dict:
        return json.loads((self.outdir / f"rank{rank}.json").read_text())


def mpirun(scenario: str, n: int, outdir: Path, timeout: float = 120, dist_timeout: float = 60,
           extra_env: dict | None = None, launcher: list | None = None,
           check: bool = True) -> Run:
    """Runs `scenario` on `n` ranks; with `check`, fails the test unless every rank exited 0."""
    outdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update({"MINIGRAD_DIST_TIMEOUT": str(dist_timeout), "OMP_NUM_THREADS": "1",
                "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                "PYTHONPATH": os.pathsep.join([str(HERE.parent), env.get("PYTHONPATH", "")])})
    env.update(extra_env or {})
    cmd = (launcher or [MPIEXEC, "-n", str(n), *(open_mpi_options(MPIEXEC, n) or []),
                        sys.executable]) + [str(WORKER), scenario, str(outdir)]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{scenario} on {n} ranks did not finish within {timeout} s:\n{out}\n{err}")
    result = Run(subprocess.CompletedProcess(cmd, proc.returncode, out, err), outdir, n,
                 time.monotonic() - start)
    if check and result.returncode != 0:
        pytest.fail(f"{scenario} on {n} ranks exited {result.returncode}:\n{result.output}")
    return result
