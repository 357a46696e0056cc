"""``cupy.cuda`` of the fake CuPy: one device (id 0) that answers like an H100/H200, streams
that have nothing to wait for, and ``runtime`` with CuPy's error for a device that is absent."""

from __future__ import annotations

import types

from fake_cuda._array import ALLOCATOR, BUFFERS

DEVICE_COUNT = 1
# NOTE: one SM, so that the grid-stride loops of the kernels (at most 32 blocks per SM) wrap
# around at test sizes, and the simulator runs few blocks
ATTRIBUTES = {
    "MultiProcessorCount": 1,
    "MaxThreadsPerBlock": 1024,
    "MaxSharedMemoryPerBlock": 48 * 1024,
    "MaxSharedMemoryPerBlockOptin": 227 * 1024,
    "WarpSize": 32,
    "ComputeCapabilityMajor": 9,
    "ComputeCapabilityMinor": 0,
}


class CUDARuntimeError(RuntimeError):
    """``cupy.cuda.runtime.CUDARuntimeError``."""


def _check(device_id):
    if not 0 <= int(device_id) < DEVICE_COUNT:
        raise CUDARuntimeError("cudaErrorInvalidDevice: invalid device ordinal")


class Device:
    """``cupy.cuda.Device``: a context manager; using an absent device raises as CuPy does."""

    def __init__(self, device=None):
        self.id = 0 if device is None else int(device)

    def __enter__(self):
        _check(self.id)
        return self

    def __exit__(self, *exc):
        return False

    def use(self):
        _check(self.id)

    def synchronize(self):
        _check(self.id)

    @property
    def attributes(self):
        _check(self.id)
        return dict(ATTRIBUTES)

    @property
    def compute_capability(self):
        return "90"

    def __eq__(self, other):
        return isinstance(other, Device) and other.id == self.id

    def __hash__(self):
        return hash(self.id)

    def __repr__(self):
        return f"<CUDA Device {self.id}>"


class Stream:
    """``cupy.cuda.Stream``: work here is done when it returns, so there is nothing to wait."""

    null = None

    def __init__(self, null=False, non_blocking=False, ptr=0):
        self.ptr = ptr

    def synchronize(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class Event:
    def __init__(self, *args, **kwargs):
        pass

    def record(self, stream=None):
        pass

    def synchronize(self):
        pass


class MemoryPointer:
    """What the pool's ``malloc`` returns (bookkeeping only: the memory is NumPy's)."""

    def __init__(self, size):
        self.size, self.device_id, self.ptr = size, 0, 0


class MemoryPool:
    """The bytes of the live device arrays' buffers (no cache: freed is returned at once)."""

    def used_bytes(self):
        return sum(a.nbytes for a in list(BUFFERS.values()))

    def total_bytes(self):
        return self.used_bytes()

    def free_all_blocks(self):
        pass

    def malloc(self, size):
        return MemoryPointer(size)


DEFAULT_POOL = MemoryPool()


class PinnedMemoryPointer(bytearray):
    """What ``cupy.cuda.alloc_pinned_memory`` returns: host memory NumPy can wrap (here a
    ``bytearray``; its type is how a test tells pinned memory from pageable)."""

    def __init__(self, size):
        super().__init__(size)
        self.size, self.ptr = size, 0


def alloc_pinned_memory(size):
    """``cupy.cuda.alloc_pinned_memory``: ``size`` bytes of page-locked host memory."""
    if size < 0:
        raise ValueError(f"alloc_pinned_memory: negative size {size}")
    return PinnedMemoryPointer(size)


def set_allocator(allocator=None):
    """``cupy.cuda.set_allocator``: the fake calls it with each new buffer's size."""
    ALLOCATOR[0] = allocator


def get_allocator():
    return ALLOCATOR[0] or DEFAULT_POOL.malloc


def _runtime():
    rt = types.ModuleType("cupy.cuda.runtime")
    rt.CUDARuntimeError = CUDARuntimeError
    rt.getDeviceCount = lambda: DEVICE_COUNT
    rt.runtimeGetVersion = lambda: 12040
    rt.driverGetVersion = lambda: 12040
    rt.is_hip = False

    def getDeviceProperties(device):  # noqa: N802  (CuPy's name)
        _check(device)
        return {
            "name": b"Fake CUDA device (CPU, simulated kernels)",
            "totalGlobalMem": 141 * 2**30,
            "multiProcessorCount": ATTRIBUTES["MultiProcessorCount"],
            "major": 9,
            "minor": 0,
        }

    rt.getDeviceProperties = getDeviceProperties
    rt.getDevice = lambda: 0
    rt.deviceSynchronize = lambda: None
    return rt


def module():
    """A fresh ``cupy.cuda`` module."""
    cuda = types.ModuleType("cupy.cuda")
    cuda.Device = Device
    cuda.Stream = Stream
    cuda.Event = Event
    cuda.MemoryPool = MemoryPool
    cuda.set_allocator = set_allocator
    cuda.get_allocator = get_allocator
    cuda.alloc_pinned_memory = alloc_pinned_memory
    cuda.runtime = _runtime()
    cuda.CUDARuntimeError = CUDARuntimeError
    cuda.get_current_stream = lambda device=None: Stream()
    cuda.is_available = lambda: True
    Stream.null = Stream(null=True)
    return cuda
