"""The NCCL backend: collectives on CuPy arrays through ``cupy.cuda.nccl``, one GPU per rank.

NCCL calls are queued on a CUDA stream and return at once: the host never waits for them. The
communicator is made for the current CUDA device (each rank its own GPU; NCCL refuses two ranks
on one GPU). Every buffer given here is C-contiguous and of a dtype NCCL knows (`supports`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

UNIQUE_ID_BYTES = 128


def import_nccl():
    """``cupy.cuda.nccl``, or an ImportError saying what to install."""
    try:
        from cupy.cuda import nccl  # noqa: PLC0415  (optional: only GPU runs need it)
    except ImportError as exc:
        raise ImportError(
            "the NCCL backend needs CuPy built with NCCL: pip install nvidia-nccl-cu12 (or "
            "-cu13) next to cupy-cuda12x; or use init_process_group('mpi')"
        ) from exc
    if not getattr(nccl, "available", True):
        raise ImportError("CuPy was built without NCCL: pip install nvidia-nccl-cu12 (or -cu13) "
                          "next to cupy-cuda12x; or use init_process_group('mpi')")
    return nccl


class NCCLBackend:
    """Collectives of one NCCL communicator on contiguous CuPy arrays.

    Args:
        nccl: the ``cupy.cuda.nccl`` module (or a stand-in with its names).
        size: the number of ranks.
        rank: this rank.
        unique_id: ``nccl.get_unique_id()`` of rank 0, the same on every rank.
        device: the CUDA device (a ``cupy.cuda.Device``) this rank uses.
    """

    name = "nccl"

    def __init__(self, nccl: Any, size: int, rank: int, unique_id: tuple, device: Any) -> None:
        self.nccl = nccl
        self.size, self.rank, self.device = size, rank, device
        with device:
            self.comm = nccl.NcclCommunicator(size, tuple(unique_id), rank)
        names = {"int8": "NCCL_INT8", "uint8": "NCCL_UINT8", "int32": "NCCL_INT32",
                 "uint32": "NCCL_UINT32", "int64": "NCCL_INT64", "uint64": "NCCL_UINT64",
                 "float16": "NCCL_FLOAT16", "float32": "NCCL_FLOAT32", "float64": "NCCL_FLOAT64",
                 "bfloat16": "NCCL_BFLOAT16"}
        self._types = {name: getattr(nccl, const) for name, const in names.items()
                       if hasattr(nccl, const)}
        self._ops = {"sum": nccl.NCCL_SUM, "prod": nccl.NCCL_PROD, "min": nccl.NCCL_MIN,
                     "max": nccl.NCCL_MAX}

    def supports(self, dtype: np.dtype) -> bool:
        return np.dtype(dtype).name in self._types

    def _type(self, buf: Any) -> int:
        return self._types[buf.dtype.name]

    def all_reduce(self, buf: Any, op: str, stream: Any) -> None:
        self.comm.allReduce(buf.data.ptr, buf.data.ptr, buf.size, self._type(buf),
                            self._ops[op], stream.ptr)

    def broadcast(self, buf: Any, src: int, stream: Any) -> None:
        self.comm.bcast(buf.data.ptr, buf.size, self._type(buf), src, stream.ptr)

    def all_gather(self, send: Any, recv: Any, stream: Any) -> None:
        self.comm.allGather(send.data.ptr, recv.data.ptr, send.size, self._type(send),
                            stream.ptr)

    def reduce_scatter(self, send: Any, recv: Any, op: str, stream: Any) -> None:
        self.comm.reduceScatter(send.data.ptr, recv.data.ptr, recv.size, self._type(recv),
                                self._ops[op], stream.ptr)

    def abort(self) -> None:
        """Ends the communicator's pending work at once (before the job is aborted)."""
        try:
            self.comm.abort()
        except Exception:  # noqa: BLE001  (aborting: nothing more to do about it)
            pass

    def destroy(self) -> None:
        if self.comm is not None:
            self.comm.destroy()
            self.comm = None
