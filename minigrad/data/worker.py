"""DataLoader worker processes: PyTorch's scheme, on `multiprocessing`.

With ``num_workers=N`` the loader starts N daemon processes. The main process hands out the
batches' indices round-robin, worker ``k`` getting batches ``k, k + N, ...``, and keeps
``prefetch_factor * N`` batches in flight, so workers load the next batches while the training
step runs. Each worker reads its examples, collates them, and sends the batch back; the main
process yields batches strictly in order, so the batches are the very ones ``num_workers=0``
gives.

Arrays travel through shared memory: a worker writes each array of a batch into a fresh file
under ``/dev/shm`` (the platform's shared-memory folder), and sends only its name, shape and
dtype through the queue; the main process maps the file (no copy), and unlinks it at once, so
the memory is freed when the batch is. Small arrays are simply pickled.

Seeding follows PyTorch: each epoch (each ``iter(loader)``) draws a ``base_seed`` from the
loader's generator; worker ``k`` seeds Python's ``random`` and minigrad's generators
(``mg.manual_seed``) with ``base_seed + k``, and NumPy's global ``np.random`` with PyTorch's
``_generate_state(base_seed, k)``; `get_worker_info` tells the dataset and ``worker_init_fn``
which worker they run in. An exception in a worker is raised again in the main process, with
the worker's traceback in its message.
"""

from __future__ import annotations

import itertools
import mmap
import multiprocessing
import os
import queue
import random
import sys
import tempfile
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from minigrad import backend
from minigrad.tensor import Tensor

__all__ = ["WorkerInfo", "get_worker_info"]

# arrays smaller than this go through the queue pickled (a file costs more than it saves)
_SHM_MIN_BYTES = 1 << 16

# how often the main process checks that its workers are alive while it waits
_POLL_SECONDS = 1.0


@dataclass(frozen=True)
class WorkerInfo:
    """What a worker process knows about itself (PyTorch's ``WorkerInfo``).

    Attributes:
        id: this worker's index, ``0 .. num_workers - 1``.
        num_workers: the number of workers.
        seed: this worker's seed (``base_seed + id``).
        dataset: this worker's copy of the dataset.
    """

    id: int
    num_workers: int
    seed: int
    dataset: Any


_worker_info: Optional[WorkerInfo] = None


def get_worker_info() -> Optional[WorkerInfo]:
    """The `WorkerInfo` of the current DataLoader worker process; None in the main process.

    Example:
        >>> get_worker_info() is None      # not in a worker
        True
    """
    return _worker_info


def _generate_state(base_seed: int, worker_id: int) -> list:
    """PyTorch's seed for NumPy in a worker: four 32-bit words hashed from the base seed and
    the worker id (``torch.utils.data._utils.worker._generate_state``)."""
    init_a, mult_a = 0x43B0D7E5, 0x931E8875
    init_b, mult_b = 0x8B51F9DD, 0x58F38DED
    mix_mult_l, mix_mult_r = 0xCA01F9DD, 0x4973F715
    xshift, mask32 = 16, 0xFFFFFFFF

    entropy = [worker_id, base_seed & mask32, base_seed >> 32, 0]
    hash_const_a = init_a

    def hash32(value):
        nonlocal hash_const_a
        value = (value ^ hash_const_a) & mask32
        hash_const_a = (hash_const_a * mult_a) & mask32
        value = (value * hash_const_a) & mask32
        return (value ^ (value >> xshift)) & mask32

    def mix(x, y):
        result = ((mix_mult_l * x) & mask32) - ((mix_mult_r * y) & mask32)
        result &= mask32
        return (result ^ (result >> xshift)) & mask32

    pool = [hash32(e) for e in entropy]
    for i_src in range(4):
        for i_dst in range(4):
            if i_src != i_dst:
                pool[i_dst] = mix(pool[i_dst], hash32(pool[i_src]))
    hash_const_b = init_b
    state = []
    for value in pool:
        value = (value ^ hash_const_b) & mask32
        hash_const_b = (hash_const_b * mult_b) & mask32
        value = (value * hash_const_b) & mask32
        state.append((value ^ (value >> xshift)) & mask32)
    return state


# ---------------------------------------------------------------------------- errors


class _ExceptionWrapper:
    """An exception caught in a worker: its type and formatted traceback (picklable)."""

    def __init__(self, where: str) -> None:
        exc_type, exc, tb = sys.exc_info()
        self.exc_type = exc_type
        self.exc_msg = "".join(traceback.format_exception(exc_type, exc, tb))
        self.where = where

    def reraise(self):
        """Raise the exception again, in the main process, with the worker's traceback."""
        msg = f"Caught {self.exc_type.__name__} {self.where}.\nOriginal {self.exc_msg}"
        if self.exc_type is KeyError:
            msg = _KeyErrorMessage(msg)  # KeyError would print repr(msg), newlines escaped
        try:
            exception = self.exc_type(msg)
        except Exception:
            raise RuntimeError(msg) from None
        raise exception


class _KeyErrorMessage(str):
    """A str whose repr is itself, so that a KeyError prints the traceback readably."""

    def __repr__(self):
        return self


# ---------------------------------------------------------------------------- shared memory


def _shm_folder() -> str:
    return "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()


@dataclass(frozen=True)
class _SharedArray:
    """A reference to an array a worker wrote to shared memory."""

    path: str
    shape: tuple
    dtype: str
    tensor: bool  # rebuild a Tensor (True) or a NumPy array


@dataclass(frozen=True)
class _InlineTensor:
    """A small Tensor's array, pickled through the queue."""

    array: np.ndarray


def _export(obj: Any, prefix: str, counter) -> Any:
    """In a worker: the batch with each large array moved into shared memory."""
    if isinstance(obj, Tensor):
        return _export_array(backend.to_device(obj.detach().data, backend.CPU), prefix, counter,
                             tensor=True)
    if isinstance(obj, np.ndarray):
        return _export_array(obj, prefix, counter, tensor=False)
    if isinstance(obj, dict):
        return type(obj)((k, _export(v, prefix, counter)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)) and not hasattr(obj, "_fields"):
        return type(obj)(_export(v, prefix, counter) for v in obj)
    return obj


def _export_array(array: np.ndarray, prefix: str, counter, tensor: bool) -> Any:
    if array.nbytes < _SHM_MIN_BYTES or array.dtype.hasobject:
        return _InlineTensor(array) if tensor else array
    path = f"{prefix}{next(counter)}"
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    try:
        os.ftruncate(fd, array.nbytes)
        with mmap.mmap(fd, array.nbytes) as mm:
            np.frombuffer(mm, dtype=array.dtype).reshape(array.shape)[...] = array
    finally:
        os.close(fd)
    return _SharedArray(path, array.shape, array.dtype.str, tensor)


def _import(obj: Any) -> Any:
    """In the main process: the batch with shared arrays mapped back (and unlinked)."""
    if isinstance(obj, _SharedArray):
        fd = os.open(obj.path, os.O_RDWR)
        try:
            mm = mmap.mmap(fd, 0)
        finally:
            os.close(fd)
            os.unlink(obj.path)  # the mapping stays valid; the memory goes with the array
        array = np.frombuffer(mm, dtype=np.dtype(obj.dtype)).reshape(obj.shape)
        return Tensor._make(array) if obj.tensor else array
    if isinstance(obj, _InlineTensor):
        return Tensor._make(obj.array)
    if isinstance(obj, dict):
        return type(obj)((k, _import(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)) and not hasattr(obj, "_fields"):
        return type(obj)(_import(v) for v in obj)
    return obj


def _discard(obj: Any) -> None:
    """Unlink the shared files of a batch that will never be used."""
    if isinstance(obj, _SharedArray):
        try:
            os.unlink(obj.path)
        except OSError:
            pass
    elif isinstance(obj, dict):
        for v in obj.values():
            _discard(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _discard(v)


# ---------------------------------------------------------------------------- the worker


def _worker_loop(fetch: Callable, index_queue, result_queue, worker_id: int, num_workers: int,
                 base_seed: int, worker_init_fn: Optional[Callable], dataset: Any,
                 prefix: str) -> None:
    """A worker process: seed, run ``worker_init_fn``, then fetch batches until told to stop.

    Messages in: ``(epoch, batch_index, indices)``, or None to stop. Out:
    ``(epoch, batch_index, batch or _ExceptionWrapper)``; ``(-1, worker_id, wrapper)`` if
    ``worker_init_fn`` failed.
    """
    global _worker_info
    seed = base_seed + worker_id
    random.seed(seed)
    backend.manual_seed(seed)
    np.random.seed(_generate_state(base_seed, worker_id))
    _worker_info = WorkerInfo(id=worker_id, num_workers=num_workers, seed=seed, dataset=dataset)
    counter = itertools.count()
    try:
        if worker_init_fn is not None:
            worker_init_fn(worker_id)
    except Exception:
        result_queue.put((-1, worker_id, _ExceptionWrapper(
            f"in DataLoader worker process {worker_id} (in worker_init_fn)")))
        return
    while True:
        try:
            message = index_queue.get()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        if message is None:
            return
        epoch, batch_index, indices = message
        try:
            batch = _export(fetch(indices), prefix, counter)
        except Exception:
            batch = _ExceptionWrapper(f"in DataLoader worker process {worker_id}")
        result_queue.put((epoch, batch_index, batch))


class _WorkerPool:
    """The worker processes of one loader (one epoch, or every epoch when persistent)."""

    def __init__(self, loader, base_seed: int) -> None:
        ctx = loader.multiprocessing_context
        if ctx is None or isinstance(ctx, str):
            ctx = multiprocessing.get_context(ctx)
        self.num_workers = loader.num_workers
        self.prefix = os.path.join(_shm_folder(), f"minigrad-{os.getpid()}-{os.urandom(4).hex()}-")
        self.result_queue = ctx.Queue()
        self.index_queues = []
        self.workers = []
        for worker_id in range(self.num_workers):
            index_queue = ctx.Queue()
            worker = ctx.Process(
                target=_worker_loop,
                args=(loader._fetcher(), index_queue, self.result_queue, worker_id,
                      self.num_workers, base_seed, loader.worker_init_fn, loader.dataset,
                      f"{self.prefix}{worker_id}-"),
                daemon=True,
            )
            worker.start()
            self.index_queues.append(index_queue)
            self.workers.append(worker)
        self.alive = True

    def check_alive(self) -> None:
        for worker_id, worker in enumerate(self.workers):
            if not worker.is_alive():
                code = worker.exitcode
                self.shutdown()
                raise RuntimeError(
                    f"DataLoader worker {worker_id} (pid {worker.pid}) exited unexpectedly with "
                    f"exit code {code}"
                )

    def shutdown(self) -> None:
        """Stop the workers, drop the batches in flight and remove their shared files."""
        if not self.alive:
            return
        self.alive = False
        for index_queue in self.index_queues:
            try:
                index_queue.put(None)
            except (OSError, ValueError):
                pass
        for worker in self.workers:
            worker.join(timeout=5)
            if worker.is_alive():
                worker.terminate()
                worker.join(timeout=1)
        while True:
            try:
                _, _, batch = self.result_queue.get_nowait()
            except (queue.Empty, OSError, ValueError, EOFError):
                break
            _discard(batch)
        for q in [self.result_queue, *self.index_queues]:
            q.close()
            q.join_thread()
        folder, stem = os.path.split(self.prefix)
        try:
            leftovers = [name for name in os.listdir(folder) if name.startswith(stem)]
        except OSError:
            leftovers = []
        for name in leftovers:
            try:
                os.unlink(os.path.join(folder, name))
            except OSError:
                pass

    def __del__(self):
        try:
            self.shutdown()
        except Exception:
            pass


class _MultiProcessIter:
    """One epoch over a loader with worker processes: batches in order, prefetched."""

    def __init__(self, loader, pool: _WorkerPool, epoch: int, batches: list) -> None:
        self.loader = loader
        self.pool = pool
        self.epoch = epoch
        self.batches = batches
        self.next_to_send = 0
        self.next_to_yield = 0
        self.ready: dict = {}
        self.worker_cycle = itertools.cycle(range(pool.num_workers))
        for _ in range(loader.prefetch_factor * pool.num_workers):
            self._send()

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        return self

    def _send(self) -> None:
        if self.next_to_send < len(self.batches):
            worker_id = next(self.worker_cycle)
            self.pool.index_queues[worker_id].put(
                (self.epoch, self.next_to_send, self.batches[self.next_to_send]))
            self.next_to_send += 1

    def __next__(self):
        if self.next_to_yield >= len(self.batches):
            self._finish()
            raise StopIteration
        while self.next_to_yield not in self.ready:
            self.ready.update([self._receive()])
        batch = self.ready.pop(self.next_to_yield)
        self.next_to_yield += 1
        self._send()
        if isinstance(batch, _ExceptionWrapper):
            self._finish()
            batch.reraise()
        return self.loader._deliver(_import(batch))

    def _receive(self) -> tuple:
        timeout = self.loader.timeout
        waited = 0.0
        while True:
            wait = _POLL_SECONDS if timeout <= 0 else min(_POLL_SECONDS, timeout - waited)
            try:
                epoch, batch_index, batch = self.pool.result_queue.get(timeout=wait)
            except queue.Empty:
                waited += wait
                self.pool.check_alive()
                if timeout > 0 and waited >= timeout:
                    self._finish(force=True)
                    raise RuntimeError(
                        f"DataLoader timed out after {timeout} seconds") from None
                continue
            if epoch == -1:  # worker_init_fn failed
                self._finish(force=True)
                batch.reraise()
            if epoch != self.epoch:  # left over from an epoch that was abandoned
                _discard(batch)
                continue
            return batch_index, batch

    def _finish(self, force: bool = False) -> None:
        """End of the epoch: drop what is still in flight; stop the workers unless they
        persist."""
        for batch in self.ready.values():
            _discard(batch)
        self.ready.clear()
        self.next_to_yield = self.next_to_send = len(self.batches)
        if force or not self.loader.persistent_workers:
            self.pool.shutdown()
            if self.loader._pool is self.pool:
                self.loader._pool = None

    def __del__(self):
        try:
            if not self.loader.persistent_workers:
                self.pool.shutdown()
        except Exception:
            pass
