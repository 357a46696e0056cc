"""A stand-in for ``cupy.cuda.nccl`` (no GPU here): one rank per process, maths in NumPy.

`NcclCommunicator` takes NCCL's arguments (device pointers as integers, element counts, NCCL
type and op constants, a stream pointer), checks them as NCCL would (the same unique id on
every rank, one GPU per rank, counts and types), records each call in `CALLS`, and does the
collective in NumPy over the memory at the pointers, exchanging the ranks' bytes through MPI
(a communicator of its own, so that it never mixes with minigrad's). It runs under
tests/fake_cuda, whose device arrays are host memory.
"""

from __future__ import annotations

import ctypes

import numpy as np
from mpi4py import MPI

available = True

NCCL_INT8, NCCL_UINT8, NCCL_INT32, NCCL_UINT32, NCCL_INT64, NCCL_UINT64 = range(6)
NCCL_FLOAT16, NCCL_FLOAT32, NCCL_FLOAT64 = 6, 7, 8
NCCL_SUM, NCCL_PROD, NCCL_MAX, NCCL_MIN = range(4)

_DTYPES = {NCCL_INT8: np.int8, NCCL_UINT8: np.uint8, NCCL_INT32: np.int32,
           NCCL_UINT32: np.uint32, NCCL_INT64: np.int64, NCCL_UINT64: np.uint64,
           NCCL_FLOAT16: np.float16, NCCL_FLOAT32: np.float32, NCCL_FLOAT64: np.float64}
_REDUCE = {NCCL_SUM: np.sum, NCCL_PROD: np.prod, NCCL_MAX: np.max, NCCL_MIN: np.min}

CALLS: list = []  # (method, count, dtype name, op or root, stream pointer)
CURRENT_DEVICE = [0]  # set by the test's patched cupy.cuda.Device


class NcclError(RuntimeError):
    pass


def get_unique_id() -> tuple:
    return tuple(int(v) for v in np.random.default_rng().integers(-128, 128, size=128))


def _memory(ptr: int, count: int, nccl_type: int) -> np.ndarray:
    """The `count` elements at device pointer `ptr` (host memory under the fake CuPy)."""
    if not isinstance(ptr, int) or ptr == 0:
        raise NcclError(f"invalid device pointer {ptr!r}")
    dtype = np.dtype(_DTYPES[nccl_type])
    raw = (ctypes.c_uint8 * (count * dtype.itemsize)).from_address(ptr)
    return np.frombuffer(raw, dtype=dtype, count=count)


class NcclCommunicator:
    """``cupy.cuda.nccl.NcclCommunicator(ndev, commId, rank)`` for one GPU per process."""

    def __init__(self, ndev: int, commId: tuple, rank: int) -> None:  # noqa: N803
        self.mpi = MPI.COMM_WORLD.Dup()
        if self.mpi.size != ndev or self.mpi.rank != rank:
            raise NcclError(f"ndev={ndev}, rank={rank}: not this job's (size {self.mpi.size}, "
                            f"rank {self.mpi.rank})")
        if len(commId) != 128:
            raise NcclError("the unique id has 128 bytes")
        ids = self.mpi.allgather(tuple(commId))  # the stand-in's own plumbing
        if any(other != ids[0] for other in ids):
            raise NcclError("ranks were given different unique ids")
        devices = self.mpi.allgather((MPI.Get_processor_name(), CURRENT_DEVICE[0]))
        if len(set(devices)) != len(devices):
            raise NcclError("Duplicate GPU detected: two ranks on one GPU")
        self._rank, self._size, self._device = rank, ndev, CURRENT_DEVICE[0]

    def _gather(self, data: np.ndarray) -> np.ndarray:
        everyone = np.empty((self._size, data.size), dtype=data.dtype)
        self.mpi.Allgather(np.ascontiguousarray(data), everyone)
        return everyone

    def allReduce(self, sendbuf, recvbuf, count, datatype, op, stream):  # noqa: N802
        CALLS.append(("allReduce", count, np.dtype(_DTYPES[datatype]).name, op, stream))
        send = _memory(sendbuf, count, datatype).copy()
        _memory(recvbuf, count, datatype)[...] = _REDUCE[op](self._gather(send), axis=0)

    def bcast(self, buff, count, datatype, root, stream):
        CALLS.append(("bcast", count, np.dtype(_DTYPES[datatype]).name, root, stream))
        data = _memory(buff, count, datatype).copy()
        self.mpi.Bcast(data, root=root)
        _memory(buff, count, datatype)[...] = data

    def allGather(self, sendbuf, recvbuf, count, datatype, stream):  # noqa: N802
        CALLS.append(("allGather", count, np.dtype(_DTYPES[datatype]).name, None, stream))
        send = _memory(sendbuf, count, datatype).copy()
        _memory(recvbuf, count * self._size, datatype)[...] = self._gather(send).reshape(-1)

    def reduceScatter(self, sendbuf, recvbuf, recvcount, datatype, op, stream):  # noqa: N802
        CALLS.append(("reduceScatter", recvcount, np.dtype(_DTYPES[datatype]).name, op,
                      stream))
        send = _memory(sendbuf, recvcount * self._size, datatype).copy()
        total = _REDUCE[op](self._gather(send), axis=0).reshape(self._size, recvcount)
        _memory(recvbuf, recvcount, datatype)[...] = total[self._rank]

    def rank_id(self) -> int:
        return self._rank

    def size(self) -> int:
        return self._size

    def device_id(self) -> int:
        return self._device

    def abort(self) -> None:
        CALLS.append(("abort", 0, None, None, 0))

    def destroy(self) -> None:
        CALLS.append(("destroy", 0, None, None, 0))
