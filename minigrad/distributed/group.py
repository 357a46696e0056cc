"""The default process group: who the ranks are, and which engine carries which arrays.

`init_process_group` joins the processes of one job. With ``mpiexec -n N`` (or ``minigrad
launch -n N``) MPI tells each process its rank and the world size; a process started alone is a
world of one, which needs no MPI. Arrays on the CPU travel through MPI; arrays on a GPU through
NCCL when the group has it (``backend='nccl'``, or ``None`` when every rank has a GPU), else
through MPI by way of the host. A process started by another launcher that sets ``RANK``,
``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` (as torchrun does) can join a NCCL group
without MPI: rank 0 hands out NCCL's id over TCP.

Once the group exists, a rank that raises an uncaught exception prints its traceback and aborts
the whole job (MPI_Abort), a rank that ends with ``sys.exit(status)``, status not 0, aborts it
too (after its ``finally`` blocks have run), and a collective that waits longer than the timeout
does the same (see ``_watchdog.py``), so a failure never leaves the other ranks hanging. A rank
that is killed, or leaves through ``os._exit``, never finalises MPI: the MPI launcher ends the
job itself.
"""

from __future__ import annotations

import atexit
import datetime
import importlib.util
import os
import socket
import sys
import threading
import time
import traceback
import weakref
from typing import Any, Callable

import numpy as np

from minigrad import backend as mg_backend
from minigrad.distributed._mpi import MPIBackend, import_mpi
from minigrad.distributed._nccl import UNIQUE_ID_BYTES, NCCLBackend, import_nccl
from minigrad.distributed._watchdog import Watchdog

__all__ = [
    "ProcessGroup", "barrier", "destroy_process_group", "get_backend", "get_local_rank",
    "get_rank", "get_world_size", "init_process_group", "is_available", "is_initialized",
    "is_mpi_available", "is_nccl_available", "launcher_world_size",
]

Array = Any

TIMEOUT_ENV = "MINIGRAD_DIST_TIMEOUT"  # seconds; overrides the default timeout
DEFAULT_TIMEOUT = 1800.0  # PyTorch's default for CPU process groups: 30 minutes
CUDA_AWARE_ENV = "MINIGRAD_MPI_CUDA_AWARE"  # 1: give device buffers to MPI (CUDA-aware MPI)
PERSISTENT_ENV = "MINIGRAD_MPI_PERSISTENT"  # 0: no persistent all-reduce (all_reduce_init)
BLOCKING_ENV = "MINIGRAD_MPI_BLOCKING"  # 1 / 0: DDP's buckets by blocking calls or not

# Variables that MPI launchers set in every process they start
_MPI_RANK_VARS = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "MV2_COMM_WORLD_RANK")
_MPI_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
_LOCAL_RANK_VARS = ("LOCAL_RANK", "MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK",
                    "MV2_COMM_WORLD_LOCAL_RANK")

_WORLD: "ProcessGroup | None" = None


# ------------------------------------------------------------------------------------------
# asynchronous work
# ------------------------------------------------------------------------------------------


class Work:
    """A collective started with ``async_op=True``: `wait` for it before using the tensor."""

    def wait(self) -> bool:
        """Blocks until the collective is done (on a GPU: makes the current stream wait)."""
        return True

    def is_completed(self) -> bool:
        """True: collectives run synchronously, so a returned handle is always complete."""
        return True


class _MPIWork(Work):
    def __init__(self, group: "ProcessGroup", request: Any, what: Callable[[], str],
                 finish: Callable[[], None] | None = None) -> None:
        self.group, self.request, self.what, self.finish = group, request, what, finish
        self.done = False

    def wait(self) -> bool:
        if not self.done:
            with self.group.watch(self.what):
                self.group.mpi.wait(self.request)
            self.done = True
            if self.finish is not None:
                self.finish()
        return True

    def is_completed(self) -> bool:
        if not self.done and self.group.mpi.test(self.request):
            self.wait()
        return self.done


class PersistentAllReduce:
    """An all-reduce in place on one buffer, set up once and started any number of times
    (`ProcessGroup.all_reduce_init`). Each `start` returns the `Work` to wait for; a start
    must be waited for before the next one."""

    def __init__(self, group: "ProcessGroup", request: Any, what: Callable[[], str]) -> None:
        self.group, self.request, self.what = group, request, what

    def start(self) -> Work:
        """Starts the all-reduce (on every rank, in the same order as the other collectives)."""
        self.group.mpi.start(self.request)
        return _MPIWork(self.group, self.request, self.what)

    def free(self) -> None:
        """Releases the MPI request (done by the group's `destroy` for those still alive)."""
        if self.request is not None:
            try:
                self.request.Free()
            except Exception:  # noqa: BLE001  (MPI already finalised: nothing left to free)
                pass
            self.request = None


class _NCCLWork(Work):
    def __init__(self, event: Any) -> None:
        self.event = event

    def wait(self) -> bool:
        mg_backend._import_cupy().cuda.get_current_stream().wait_event(self.event)
        return True

    def is_completed(self) -> bool:
        return bool(getattr(self.event, "done", True))


class _Watch:
    """``with group.watch(what):`` the watchdog aborts the job if the block outlives the
    timeout."""

    __slots__ = ("watchdog", "what", "previous")

    def __init__(self, watchdog: Watchdog | None, what: Any) -> None:
        self.watchdog, self.what = watchdog, what

    def __enter__(self) -> None:
        if self.watchdog is not None:
            self.previous = self.watchdog.begin(self.what)

    def __exit__(self, *exc: Any) -> bool:
        if self.watchdog is not None:
            self.watchdog.end(self.previous)
        return False


def _describe(name: str, array: Array) -> Callable[[], str]:
    return lambda: f"{name} ({array.dtype}, {array.size} elements)"


# ------------------------------------------------------------------------------------------
# the process group
# ------------------------------------------------------------------------------------------


class ProcessGroup:
    """The ranks of one job and the engines between them (made by `init_process_group`).

    Its methods work on backend arrays (NumPy or CuPy) in place; `minigrad.distributed`'s
    functions call them with a tensor's ``.data``. Ops are ``'sum' 'avg' 'prod' 'min'
    'max'``.
    """

    def __init__(self, rank: int, size: int, local_rank: int, backend: str,
                 mpi: MPIBackend | None, make_nccl: Callable[[], NCCLBackend] | None,
                 timeout: float) -> None:
        self.rank, self.size, self.local_rank = rank, size, local_rank
        self.backend = backend
        self.mpi = mpi
        self.timeout = timeout
        self._make_nccl = make_nccl
        self._nccl: NCCLBackend | None = None
        self.cuda_aware_mpi = os.environ.get(CUDA_AWARE_ENV, "0") not in ("", "0")
        self.watchdog = Watchdog(rank, timeout, self.abort) if size > 1 else None
        self._persistent: weakref.WeakSet = weakref.WeakSet()  # freed at destroy

    # ---------------------------------------------------------------- plumbing
    def watch(self, what: Any) -> _Watch:
        """``with group.watch(what):``: the watchdog aborts the job if the block outlives the
        timeout.
        """
        return _Watch(self.watchdog, what)

    @property
    def nccl(self) -> NCCLBackend | None:
        """The NCCL communicator, made at the first GPU collective (all ranks reach it
        together, as they reach every collective)."""
        if self._nccl is None and self._make_nccl is not None:
            with self.watch("creating the NCCL communicator"):
                self._nccl = self._make_nccl()
        return self._nccl

    def _engine(self, array: Array) -> str:
        """'mpi', 'nccl', 'mpi-host' (a device array through MPI by way of the host) or
        'nccl-device' (a host array through NCCL by way of the GPU, in a group without MPI)."""
        on_cpu = isinstance(array, np.ndarray)
        if self._make_nccl is not None and (not on_cpu or self.mpi is None):
            return "nccl-device" if on_cpu else "nccl"
        return "mpi" if on_cpu or self.cuda_aware_mpi else "mpi-host"

    def prefers_blocking(self, array: Array) -> bool:
        """Whether an all-reduce of `array` that is wanted at once is cheaper as a blocking MPI
        call than as a non-blocking one: on host memory through an MPI whose non-blocking
        collectives are slower than its blocking ones (Open MPI's), or as
        ``MINIGRAD_MPI_BLOCKING`` says (1 or 0). The same answer on every rank, as MPI needs
        (a blocking collective never matches a non-blocking one)."""
        if (self.size == 1 or self.mpi is None or not isinstance(array, np.ndarray)
                or self._engine(array) != "mpi"):
            return False
        forced = os.environ.get(BLOCKING_ENV, "")
        if forced:
            return forced != "0"
        return self.mpi.nonblocking_is_slow

    def _via_gpu(self, op: Callable, array: Array, *args: Any) -> None:
        """Runs `op` on a GPU copy of the host `array` and copies the result back (the
        small host collectives of a NCCL group started without MPI)."""
        on_gpu = _to_gpu(array)
        op(on_gpu, *args)
        array[...] = mg_backend.to_device(on_gpu, mg_backend.CPU)

    def abort(self, code: int = 1) -> None:
        """Ends every process of the job now, with exit status `code`."""
        sys.stdout.flush()
        sys.stderr.flush()
        if self._nccl is not None:
            self._nccl.abort()
        if self.mpi is not None:
            self.mpi.abort(code)
        os._exit(code)

    # ---------------------------------------------------------------- collectives
    def all_reduce(self, array: Array, op: str = "sum", async_op: bool = False,
                   stream: Any = None) -> Work | None:
        """Reduces `array` over the ranks, in place; with `async_op` returns a `Work`."""
        if self.size == 1:
            return Work() if async_op else None
        wire_op = _wire_op(array.dtype, op)
        engine = self._engine(array)
        if engine == "nccl-device":
            self._via_gpu(self.all_reduce, array, op)
            return Work() if async_op else None
        if engine == "nccl":
            nccl = self.nccl
            stream = stream if stream is not None else _current_stream()
            buf, finish = _wire_buffer(array, nccl.supports)
            nccl.all_reduce(buf, wire_op, stream)
            finish()
            _average(array, op, self.size)
            return self._nccl_work("all_reduce", array, stream, async_op)
        host, back = self._on_host(array, engine)
        buf, finish = _wire_buffer(host, self.mpi.supports)
        what = _describe("all_reduce", array)

        def complete() -> None:
            finish()
            _average(host, op, self.size)
            if back is not None:
                back(host)

        if async_op:
            return _MPIWork(self, self.mpi.iall_reduce(buf, wire_op), what, complete)
        with self.watch(what):
            self.mpi.all_reduce(buf, wire_op)
        complete()
        return None

    def all_reduce_init(self, array: Array, op: str = "sum") -> PersistentAllReduce | None:
        """Sets up an all-reduce of `array` in place that can be started again and again
        (MPI-4's persistent collectives: MPI builds the schedule once, not at every call; a
        W1-sized bucket's start costs ~13 us instead of ~37 for ``Iallreduce``). None where it
        does not apply: one rank, arrays for NCCL or on a GPU, an op or dtype that needs a
        conversion around the call (AVG, bool, bfloat16), an MPI without persistent
        collectives, or ``MINIGRAD_MPI_PERSISTENT=0`` in the environment. A collective: every
        rank calls it for the same arrays in the same order."""
        if (self.size == 1 or self.mpi is None or not isinstance(array, np.ndarray)
                or self._engine(array) != "mpi" or os.environ.get(PERSISTENT_ENV, "1") == "0"
                or op == "avg" or array.dtype == np.bool_ or not self.mpi.supports(array.dtype)
                or not array.flags.c_contiguous):
            return None
        request = self.mpi.all_reduce_init(array, _wire_op(array.dtype, op))
        if request is None:
            return None
        made = PersistentAllReduce(self, request, _describe("all_reduce", array))
        self._persistent.add(made)
        return made

    def broadcast(self, array: Array, src: int = 0) -> None:
        """Copies rank `src`'s `array` into every rank's, in place."""
        self._check_rank(src, "src")
        if self.size == 1:
            return
        engine = self._engine(array)
        if engine == "nccl-device":
            return self._via_gpu(self.broadcast, array, src)
        if engine == "nccl":
            buf = _contiguous_bytes(array)
            self.nccl.broadcast(buf, src, _current_stream())
            if not _shares(buf, array):
                array[...] = buf.view(array.dtype).reshape(array.shape)
            return
        host, back = self._on_host(array, engine)
        buf = _contiguous_bytes(host)
        with self.watch(_describe("broadcast", array)):
            self.mpi.broadcast(buf, src)
        if not _shares(buf, host):
            host[...] = buf.view(host.dtype).reshape(host.shape)
        if back is not None:
            back(host)

    def all_gather(self, outputs: list, array: Array) -> None:
        """``outputs[r]`` receives rank r's `array` (each output of `array`'s shape)."""
        if self.size == 1:
            outputs[0][...] = array
            return
        xp = mg_backend.array_module(array)
        engine = self._engine(array)
        if engine == "nccl-device":
            on_gpu = _to_gpu(array)
            gathered = [on_gpu.copy() for _ in outputs]
            self.all_gather(gathered, on_gpu)
            for out, theirs in zip(outputs, gathered):
                out[...] = mg_backend.to_device(theirs, mg_backend.CPU)
            return
        if engine == "nccl":
            send = _contiguous_bytes(array)
            recv = xp.empty((self.size, send.size), dtype=np.uint8)
            self.nccl.all_gather(send, recv, _current_stream())
        else:
            host, _ = self._on_host(array, engine)
            send = _contiguous_bytes(host)
            recv = np.empty((self.size, send.size), dtype=np.uint8)
            with self.watch(_describe("all_gather", array)):
                self.mpi.all_gather(send, recv)
            if engine == "mpi-host":
                recv = mg_backend.to_device(recv, mg_backend.device_of(array))
        for r, out in enumerate(outputs):
            out[...] = recv[r].view(array.dtype).reshape(array.shape)

    def reduce_scatter(self, output: Array, inputs: list, op: str = "sum") -> None:
        """``output`` on rank r receives the reduction over ranks of their ``inputs[r]``."""
        if self.size == 1:
            output[...] = inputs[0]
            return
        wire_op = _wire_op(output.dtype, op)
        engine = self._engine(output)
        if engine == "nccl-device":
            return self._via_gpu(self.reduce_scatter, output, [_to_gpu(a) for a in inputs], op)
        xp = mg_backend.array_module(output)
        stacked = xp.stack([xp.asarray(a, dtype=output.dtype) for a in inputs])  # (size, ...)
        if engine == "nccl":
            nccl = self.nccl
            send, _ = _wire_buffer(stacked, nccl.supports)
            recv = xp.empty(output.shape, dtype=send.dtype)
            nccl.reduce_scatter(send, recv, wire_op, _current_stream())
            _write_result(output, recv)
            _average(output, op, self.size)
            return
        host, back = self._on_host(output, engine)
        send, _ = _wire_buffer(mg_backend.to_device(stacked, mg_backend.CPU), self.mpi.supports)
        recv = np.empty(host.shape, dtype=send.dtype)
        with self.watch(_describe("reduce_scatter", output)):
            self.mpi.reduce_scatter(send, recv, wire_op)
        _write_result(host, recv)
        _average(host, op, self.size)
        if back is not None:
            back(host)

    def barrier(self) -> None:
        """Waits until every rank has called `barrier` (without spinning a core meanwhile)."""
        if self.size == 1:
            return
        if self.mpi is None:  # a NCCL-only group: a one-element all-reduce, waited for
            xp = mg_backend._import_cupy()
            token = xp.zeros(1, dtype=np.float32)
            with self.watch("barrier"):
                self.all_reduce(token)
                xp.cuda.get_current_stream().synchronize()
            return
        request = self.mpi.ibarrier()
        with self.watch("barrier"):
            pause = 1e-5
            while not self.mpi.test(request):
                time.sleep(pause)
                pause = min(pause * 2, 0.01)

    # ---------------------------------------------------------------- helpers
    def _check_rank(self, rank: int, name: str) -> None:
        if not 0 <= int(rank) < self.size:
            raise ValueError(f"{name}={rank} is not a rank of this group (0..{self.size - 1})")

    def _on_host(self, array: Array, engine: str) -> tuple:
        """The host array MPI works on, and how to copy it back to the device (None: it is
        `array` itself)."""
        if engine == "mpi":
            if not isinstance(array, np.ndarray):  # CUDA-aware MPI reads device memory
                _current_stream().synchronize()  # NOTE: MPI does not know CUDA streams
            return array, None
        host = mg_backend.to_device(array, mg_backend.CPU)  # waits for the device

        def back(host: np.ndarray) -> None:
            array[...] = mg_backend.to_device(host, mg_backend.device_of(array))

        return host, back

    def _nccl_work(self, name: str, array: Array, stream: Any, async_op: bool) -> Work | None:
        cp = mg_backend._import_cupy()
        event = cp.cuda.Event(disable_timing=True)
        event.record(stream)
        if self.watchdog is not None:
            self.watchdog.watch_queued(lambda: bool(getattr(event, "done", True)),
                                       _describe(name, array))
        return _NCCLWork(event) if async_op else None

    def destroy(self) -> None:
        """Stop the watchdog and release the NCCL communicator (``destroy_process_group`` calls it).
        """
        if self.watchdog is not None:
            self.watchdog.stop()
        for persistent in list(self._persistent):
            persistent.free()
        if self._nccl is not None:
            self._nccl.destroy()
            self._nccl = None
        if self.mpi is not None:
            self.mpi.free()


def _to_gpu(array: Array) -> Array:
    """A copy of a host array on this rank's (the current) GPU."""
    cp = mg_backend._import_cupy()
    return mg_backend.to_device(array, mg_backend.Device(f"cuda:{cp.cuda.Device().id}"))


def _current_stream() -> Any:
    return mg_backend._import_cupy().cuda.get_current_stream()


def _shares(a: Array, b: Array) -> bool:
    """Whether two arrays are views of the same memory (a reshape or a dtype view)."""
    return _address(a) == _address(b)


def _address(array: Array) -> int:
    """Where an array's first element is: a NumPy array's data pointer or a CuPy one's."""
    if isinstance(array, np.ndarray):  # (a NumPy array's .data is a memoryview, without .ptr)
        return array.__array_interface__["data"][0]
    return array.data.ptr


def _nothing() -> None:
    """The write-back of a collective that worked on the array's own memory."""


def _contiguous_bytes(array: Array) -> Array:
    """The array's bytes, one flat uint8 array (a view when the array is contiguous): what a
    broadcast or a gather moves, whatever the dtype."""
    xp = mg_backend.array_module(array)
    contiguous = xp.ascontiguousarray(array)
    return contiguous.reshape(-1).view(np.uint8)


def _wire_op(dtype: np.dtype, op: str) -> str:
    """The op the engine runs: AVG is a SUM then a division; on bool, SUM is OR and PRODUCT is
    AND (as PyTorch's NCCL group does)."""
    if op not in ("sum", "avg", "prod", "min", "max"):
        raise ValueError(f"unknown reduce op {op!r}")
    if np.dtype(dtype) == np.bool_:
        if op == "avg":
            raise ValueError("ReduceOp.AVG is not defined for bool tensors")
        return {"sum": "max", "prod": "min"}.get(op, op)
    return "sum" if op == "avg" else op


def _wire_buffer(array: Array, supports: Callable) -> tuple:
    """The contiguous buffer of a dtype the engine reduces, and a function that writes the
    result back into `array` (a no-op when the buffer is `array`'s own memory)."""
    xp = mg_backend.array_module(array)
    dtype = np.dtype(array.dtype)
    if dtype == np.bool_:
        buf = xp.ascontiguousarray(array).view(np.uint8)
    elif supports(dtype):
        buf = xp.ascontiguousarray(array)
    else:  # bfloat16, or float16 on an MPI without it: reduced in float32
        buf = xp.ascontiguousarray(array, dtype=np.float32)
    if buf is array or (_shares(buf, array) and buf.dtype.itemsize == dtype.itemsize):
        return buf, _nothing  # (``buf is array``: a contiguous array of a dtype the engine has)

    def finish() -> None:
        _write_result(array, buf)

    return buf, finish


def _average(array: Array, op: str, size: int) -> None:
    """Divides a sum by the number of ranks when the op is AVG (integers round toward zero, as
    NCCL's average does)."""
    if op != "avg":
        return
    if array.dtype.kind in "iu":
        xp = mg_backend.array_module(array)
        quotient = xp.abs(array) // size
        array[...] = xp.where(array < 0, -quotient, quotient)
    else:
        array[...] = array / size


def _write_result(output: Array, result: Array) -> None:
    """Copies a reduced buffer into `output` (a uint8 buffer holds bools)."""
    output[...] = result.view(np.bool_) if output.dtype == np.bool_ else result


# ------------------------------------------------------------------------------------------
# the default group: init, queries, destroy
# ------------------------------------------------------------------------------------------


def _env_int(*names: str) -> int | None:
    for name in names:
        value = os.environ.get(name)
        if value not in (None, ""):
            return int(value)
    return None


def launched_by_mpi() -> bool:
    """Whether an MPI launcher (mpiexec, mpirun, srun with PMI) started this process."""
    return any(name in os.environ for name in _MPI_RANK_VARS)


def launcher_rank() -> int:
    """This process's rank as the launcher numbered it (0 when started alone); reads the
    environment only, so a program can print or write once before any process group exists.

    Example:
        >>> launcher_rank() >= 0
        True
    """
    rank = _env_int(*_MPI_RANK_VARS) if launched_by_mpi() else None
    if rank is None:
        rank = _env_int("RANK")
    return rank if rank is not None else 0


def launcher_world_size() -> int:
    """The number of processes the launcher started (1 when started alone); reads the
    environment only, so it costs nothing and initialises nothing.

    Example:
        >>> launcher_world_size() >= 1
        True
    """
    size = _env_int(*_MPI_SIZE_VARS) if launched_by_mpi() else None
    if size is None:
        size = _env_int("WORLD_SIZE")
    return size if size is not None else 1


def _timeout_seconds(timeout: Any) -> float:
    if timeout is None:
        env = os.environ.get(TIMEOUT_ENV)
        return float(env) if env else DEFAULT_TIMEOUT
    if isinstance(timeout, datetime.timedelta):
        timeout = timeout.total_seconds()
    if float(timeout) <= 0:
        raise ValueError(f"timeout must be positive, got {timeout!r}")
    return float(timeout)


def _has_gpu() -> bool:
    return mg_backend.cuda.is_available()


def _tcp_unique_id(rank: int, size: int, make_id: Callable[[], tuple], timeout: float) -> tuple:
    """NCCL's unique id, made by rank 0 and sent to the others over TCP at MASTER_ADDR and
    MASTER_PORT (for processes started without MPI)."""
    address = os.environ.get("MASTER_ADDR", "127.0.0.1")
    port = int(os.environ.get("MASTER_PORT", "29500"))
    nbytes = UNIQUE_ID_BYTES * 8
    if rank == 0:
        unique_id = tuple(int(b) for b in make_id())
        payload = np.asarray(unique_id, dtype=np.int64).tobytes()
        with socket.create_server(("", port)) as server:
            server.settimeout(timeout)
            for _ in range(size - 1):
                conn, _ = server.accept()
                with conn:
                    conn.sendall(payload)
        return unique_id
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((address, port), timeout=timeout) as conn:
                data = b""
                while len(data) < nbytes:
                    chunk = conn.recv(nbytes - len(data))
                    if not chunk:
                        raise ConnectionError("rank 0 closed the connection")
                    data += chunk
            return tuple(np.frombuffer(data, dtype=np.int64).tolist())
        except OSError as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"rank {rank}: could not reach rank 0 at {address}:{port} (MASTER_ADDR, "
                    f"MASTER_PORT) within {timeout:g} s: {exc}") from exc
            time.sleep(0.1)


def _nccl_factory(rank: int, size: int, local_rank: int, mpi: MPIBackend | None,
                  timeout: float) -> Callable[[], NCCLBackend]:
    """A function that makes the NCCL communicator on this rank's GPU (local rank modulo the
    GPUs of the machine), the unique id coming from rank 0 through MPI or TCP."""
    cp = mg_backend._import_cupy()
    nccl = import_nccl()
    device = cp.cuda.Device(local_rank % max(1, cp.cuda.runtime.getDeviceCount()))
    device.use()

    def make() -> NCCLBackend:
        if mpi is not None:
            ids = np.zeros(UNIQUE_ID_BYTES, dtype=np.int64)
            if rank == 0:
                ids[:] = nccl.get_unique_id()
            mpi.broadcast(ids, 0)
            unique_id = tuple(ids.tolist())
        else:
            unique_id = _tcp_unique_id(rank, size, nccl.get_unique_id, timeout)
        return NCCLBackend(nccl, size, rank, unique_id, device)

    return make


def init_process_group(backend: str | None = None, init_method: str | None = None,
                       timeout: Any = None, world_size: int = -1, rank: int = -1) -> None:
    """Joins this process to the job's default process group (PyTorch's signature).

    Args:
        backend: ``'mpi'`` (every array through MPI), ``'nccl'`` (GPU arrays through NCCL, CPU
            arrays through MPI when the job was started by an MPI launcher), or None: NCCL for
            GPU arrays when every rank has a GPU, MPI otherwise.
        init_method: only ``'env://'`` (the default): the rank and world size come from the
            MPI launcher, else from ``RANK``/``WORLD_SIZE`` (and ``MASTER_ADDR``/
            ``MASTER_PORT`` for NCCL's rendezvous).
        timeout: seconds (or a ``datetime.timedelta``) a collective may wait before the job is
            aborted; default ``$MINIGRAD_DIST_TIMEOUT``, else 30 minutes.
        world_size: checked against the launcher's, when given.
        rank: checked against the launcher's, when given.

    Example:
        >>> import minigrad.distributed as dist
        >>> dist.init_process_group()           # alone: a world of one, no MPI needed
        >>> dist.get_rank(), dist.get_world_size()
        (0, 1)
        >>> dist.destroy_process_group()
    """
    global _WORLD
    if _WORLD is not None:
        raise RuntimeError("trying to initialize the default process group twice!")
    if backend is not None:
        backend = str(backend).lower()
        if backend not in ("mpi", "nccl"):
            raise ValueError(f"backend must be 'mpi', 'nccl' or None, got {backend!r}")
    if init_method not in (None, "env://"):
        raise ValueError(f"init_method {init_method!r} is not supported: the MPI launcher, or "
                         "RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT, say who the ranks are")
    seconds = _timeout_seconds(timeout)
    env_rank = rank if rank >= 0 else _env_int("RANK")
    env_size = world_size if world_size > 0 else _env_int("WORLD_SIZE")

    mpi = None
    if launched_by_mpi() or backend == "mpi":
        MPI = import_mpi()  # noqa: N806  (mpi4py's name)
        mpi = MPIBackend(MPI.COMM_WORLD.Dup())
        my_rank, size = mpi.rank, mpi.size
        if env_size is not None and env_size != size:
            raise RuntimeError(
                f"world size {env_size} was asked for (WORLD_SIZE or world_size=) but MPI "
                f"started {size} process(es): launch with mpiexec -n {env_size} python ... "
                f"(or minigrad launch -n {env_size} ...)")
        if env_rank is not None and env_rank != my_rank and size > 1:
            raise RuntimeError(f"rank {env_rank} was asked for (RANK or rank=) but MPI says "
                               f"this process is rank {my_rank}")
        local = _env_int(*_LOCAL_RANK_VARS)
        if local is None:
            local = mpi.comm.Split_type(MPI.COMM_TYPE_SHARED).Get_rank()
    elif env_size is not None and env_size > 1:
        if env_rank is None:
            raise RuntimeError("WORLD_SIZE is set but RANK is not: set both (or launch with "
                               "mpiexec, which sets them for MPI)")
        my_rank, size = env_rank, env_size
        local = _env_int(*_LOCAL_RANK_VARS)
        local = my_rank if local is None else local
    else:
        my_rank, size, local = 0, 1, 0

    use_nccl = False
    if backend == "nccl" or (size > 1 and backend is None):
        has_gpu = _has_gpu()
        every = has_gpu
        if mpi is not None and size > 1:  # NCCL only when every rank has a GPU
            flags = np.array([1 if has_gpu else 0], dtype=np.int32)
            mpi.all_reduce(flags, "min")
            every = bool(flags[0])
        if backend == "nccl" and not every:  # every rank raises: none is left waiting
            which = "another rank has none" if has_gpu else "this rank has none"
            raise RuntimeError(f"rank {my_rank}: backend 'nccl' needs CuPy and a GPU on every "
                               f"rank, and {which} (use backend='mpi')")
        use_nccl = every and size > 1
    if size > 1 and mpi is None and not use_nccl:
        raise RuntimeError(
            f"rank {my_rank}: started without an MPI launcher and without a GPU, so there is "
            'no way to talk to the other ranks: launch with mpiexec -n N (pip install '
            '".[mpi]") or give every rank a GPU for NCCL')
    make_nccl = _nccl_factory(my_rank, size, local, mpi, seconds) if use_nccl else None
    name = "nccl" if use_nccl or backend == "nccl" else "mpi"
    group = ProcessGroup(my_rank, size, local, name, mpi, make_nccl, seconds)
    if backend == "nccl":
        _ = group.nccl  # an explicit NCCL group makes its communicator now
    _WORLD = group
    if size > 1:
        _install_excepthook(group)
        _install_exit_hook()


_previous_excepthook = None
_original_exit: Callable | None = None  # sys.exit as it was before `_install_exit_hook`
_exit_status: Any = None  # what the main thread last passed to sys.exit while a group existed


def _install_excepthook(group: ProcessGroup) -> None:
    """An uncaught exception on any rank prints that rank's traceback, then aborts the job."""
    global _previous_excepthook
    if _previous_excepthook is None:
        _previous_excepthook = sys.excepthook

    def abort_on_exception(exc_type, exc, tb) -> None:
        sys.stdout.flush()
        sys.stderr.write(f"minigrad.distributed: rank {group.rank} of {group.size} failed; "
                         "aborting the job\n")
        traceback.print_exception(exc_type, exc, tb)
        _let_output_through()
        group.abort()

    sys.excepthook = abort_on_exception


def _let_output_through() -> None:
    """Flush this rank's output and give the launcher a moment to forward it: MPI_Abort makes
    mpiexec kill every process, and what still sat in its forwarding pipes was lost (a
    traceback cut after its first line, one run in several under load)."""
    sys.stdout.flush()
    sys.stderr.flush()
    time.sleep(0.5)


def _install_exit_hook() -> None:
    """Wraps ``sys.exit`` so that the status a rank exits with is known at exit (Python's
    ``atexit`` handlers are not told it): `_at_exit` aborts the job when it is not 0.

    The status noted is the last one passed: a program that catches the SystemExit of a
    ``sys.exit(1)`` and goes on should call ``sys.exit(0)`` (or destroy the process group)
    when it ends well."""
    global _original_exit
    if _original_exit is not None:
        return
    _original_exit = sys.exit

    def exit(status: Any = None) -> None:  # noqa: A001  (it is sys.exit)
        """Exits the interpreter by raising SystemExit(status) (``sys.exit``; minigrad's
        process group notes the status first, to abort the job at exit when it is not 0)."""
        global _exit_status
        if threading.current_thread() is threading.main_thread():  # elsewhere: one thread
            _exit_status = status
        _original_exit(status)

    sys.exit = exit


def _uninstall_exit_hook() -> None:
    global _original_exit, _exit_status
    if _original_exit is not None:
        sys.exit = _original_exit
    _original_exit, _exit_status = None, None


def _failure_code(status: Any) -> int:
    """The process exit status Python gives to ``sys.exit(status)`` (0: success)."""
    if status is None:
        return 0
    if isinstance(status, int):
        return status & 0xFF
    return 1  # a message: Python prints it and exits with 1


def _at_exit() -> None:
    """At interpreter exit: a rank that leaves with a failure status while its group is still
    initialised aborts the job (the other ranks may be waiting for it in a collective);
    otherwise the group is destroyed."""
    group, code = _WORLD, _failure_code(_exit_status)
    if group is not None and group.size > 1 and code != 0:
        sys.stdout.flush()
        sys.stderr.write(f"minigrad.distributed: rank {group.rank} of {group.size} exited with "
                         f"status {code}; aborting the job\n")
        _let_output_through()
        group.abort(code)
    destroy_process_group()


def _world(what: str) -> ProcessGroup:
    if _WORLD is None:
        raise RuntimeError(f"{what}: the default process group has not been initialized; call "
                           "minigrad.distributed.init_process_group() first")
    return _WORLD


def world() -> ProcessGroup | None:
    """The default process group, or None before `init_process_group`."""
    return _WORLD


def is_initialized() -> bool:
    """Whether `init_process_group` was called (and not undone)."""
    return _WORLD is not None


def is_available() -> bool:
    """True: minigrad.distributed is always there (its engines are optional packages)."""
    return True


def is_mpi_available() -> bool:
    """Whether mpi4py is installed (MPI itself is loaded only by `init_process_group`)."""
    return importlib.util.find_spec("mpi4py") is not None


def is_nccl_available() -> bool:
    """Whether CuPy is installed (with NCCL: checked when a NCCL group is made)."""
    return importlib.util.find_spec("cupy") is not None


def get_rank() -> int:
    """This process's rank, 0 .. world size - 1."""
    return _world("get_rank").rank


def get_world_size() -> int:
    """The number of processes in the job."""
    return _world("get_world_size").size


def get_local_rank() -> int:
    """This process's rank among the processes of its machine (its GPU under NCCL)."""
    return _world("get_local_rank").local_rank


def get_backend() -> str:
    """``'nccl'`` or ``'mpi'``: the engine of GPU arrays (CPU arrays always go through MPI)."""
    return _world("get_backend").backend


def barrier() -> None:
    """Waits until every rank has reached it."""
    _world("barrier").barrier()


def destroy_process_group() -> None:
    """Leaves the default process group (frees its communicators; MPI itself stays up)."""
    global _WORLD, _previous_excepthook
    group, _WORLD = _WORLD, None
    if group is None:
        return
    if _previous_excepthook is not None:
        sys.excepthook = _previous_excepthook
        _previous_excepthook = None
    _uninstall_exit_hook()
    group.destroy()


atexit.register(_at_exit)
