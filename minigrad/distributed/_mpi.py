"""The MPI backend: collectives on host (NumPy) buffers through mpi4py.

Only the buffer-based calls are used (``Allreduce``, ``Iallreduce``, ``Bcast``, ...): they pass
the array's memory to MPI as it is, where the lower-case calls would pickle Python objects.
Every buffer given here is C-contiguous and of a dtype MPI knows (`supports`); the process group
converts the others (bool, bfloat16) and stages device arrays through the host.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Array = Any


def import_mpi():
    """mpi4py's ``MPI`` module (importing it initialises MPI), or an ImportError saying what to
    install."""
    try:
        from mpi4py import MPI  # noqa: PLC0415  (optional: only distributed runs need it)
    except ImportError as exc:
        raise ImportError(
            "minigrad.distributed needs mpi4py and an MPI library for more than one process: "
            'pip install ".[mpi]" from the minigrad checkout, or pip install mpi4py mpich (the '
            "mpich wheel brings mpiexec), or mpi4py on top of your system's MPI (e.g. apt "
            "install libopenmpi-dev)"
        ) from exc
    return MPI


class MPIBackend:
    """Collectives of one MPI communicator on contiguous NumPy buffers.

    Args:
        comm: an ``MPI.Comm`` (the process group duplicates ``COMM_WORLD``, so that a user's own
            MPI calls never match minigrad's).
    """

    name = "mpi"

    def __init__(self, comm: Any) -> None:
        self.MPI = import_mpi()
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self._ops = {"sum": self.MPI.SUM, "prod": self.MPI.PROD, "min": self.MPI.MIN,
                     "max": self.MPI.MAX}
        self._supported: dict = {}
        # Open MPI runs its non-blocking and persistent collectives through a slower engine
        # (libnbc) than its blocking ones (coll/tuned): on two ranks of one machine
        # Iallreduce + Wait took 0.13 ms for 0.39 MiB, 1.7 ms for 4 MiB, 14-15 ms for 25 MiB,
        # against 0.074, 0.72 and 3.7 for Allreduce. In MPICH they cost the same.
        library = self.MPI.Get_library_version().lower()
        self.nonblocking_is_slow = "open mpi" in library

    def supports(self, dtype: np.dtype) -> bool:
        """Whether MPI reduces this dtype itself (float16 needs MPICH's MPIX_C_FLOAT16)."""
        dtype = np.dtype(dtype)
        known = self._supported.get(dtype)
        if known is None:
            from mpi4py.util import dtlib  # noqa: PLC0415

            try:
                known = dtype.kind in "fiu" and dtlib.from_numpy_dtype(dtype) != \
                    self.MPI.DATATYPE_NULL
            except (ValueError, KeyError, TypeError):
                known = False
            self._supported[dtype] = known
        return known

    def all_reduce(self, buf: np.ndarray, op: str) -> None:
        self.comm.Allreduce(self.MPI.IN_PLACE, buf, op=self._ops[op])

    def iall_reduce(self, buf: np.ndarray, op: str) -> Any:
        """Starts an all-reduce in place; returns its ``MPI.Request``."""
        return self.comm.Iallreduce(self.MPI.IN_PLACE, buf, op=self._ops[op])

    def all_reduce_init(self, buf: np.ndarray, op: str) -> Any:
        """A persistent all-reduce in place on `buf` (MPI-4's ``MPI_Allreduce_init``: the
        schedule is built here once), to be run by `start` and `wait` as often as needed; None
        where the MPI library has no persistent collectives."""
        init = getattr(self.comm, "Allreduce_init", None)
        if init is None:
            return None
        try:
            return init(self.MPI.IN_PLACE, buf, op=self._ops[op])
        except (NotImplementedError, self.MPI.Exception):
            return None

    def start(self, request: Any) -> None:
        """Starts a persistent request (made by `all_reduce_init`)."""
        request.Start()

    def broadcast(self, buf: np.ndarray, src: int) -> None:
        self.comm.Bcast(buf, root=src)

    def all_gather(self, send: np.ndarray, recv: np.ndarray) -> None:
        self.comm.Allgather(send, recv)

    def reduce_scatter(self, send: np.ndarray, recv: np.ndarray, op: str) -> None:
        self.comm.Reduce_scatter_block(send, recv, op=self._ops[op])

    def ibarrier(self) -> Any:
        return self.comm.Ibarrier()

    def test(self, request: Any) -> bool:
        """Whether a request is done (and MPI progress made on the others)."""
        return bool(request.Test())

    def wait(self, request: Any) -> None:
        request.Wait()

    def abort(self, code: int = 1) -> None:
        """Ends every process of the job (MPI_Abort on COMM_WORLD)."""
        self.MPI.COMM_WORLD.Abort(code)

    def free(self) -> None:
        if self.comm is not None and self.comm != self.MPI.COMM_WORLD:
            try:
                self.comm.Free()
            except self.MPI.Exception:
                pass
        self.comm = None
