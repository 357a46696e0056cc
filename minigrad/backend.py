"""Devices and backends: ``'cpu'`` is NumPy, ``'cuda'`` / ``'cuda:N'`` is CuPy.

A :class:`Device` names where a tensor's data lives. The *array module* of a device (``xp``)
is NumPy or CuPy; every op is written once against ``xp``. CuPy is imported lazily, only when a
CUDA device is first asked for, so ``import minigrad`` needs nothing but NumPy.

Random numbers come from one generator per device, all seeded by :func:`manual_seed`.
"""

from __future__ import annotations

import copy
import os
from typing import Any, Callable, Optional, Union

import numpy as np

Array = Any  # a NumPy or CuPy ndarray

_cupy = None  # the cupy module once imported
_cupy_error: Optional[str] = None  # why cupy could not be used, once known


class Device:
    """Where a tensor lives: ``Device('cpu')``, ``Device('cuda:0')``.

    Example:
        >>> Device("cpu")
        device(type='cpu')
        >>> str(Device("cuda:1"))
        'cuda:1'
    """

    __slots__ = ("type", "index")

    def __init__(self, spec: Union[str, "Device"] = "cpu", index: Optional[int] = None):
        if isinstance(spec, Device):
            self.type, self.index = spec.type, spec.index
            return
        if not isinstance(spec, str):
            raise TypeError(f"device must be a string like 'cpu' or 'cuda:0', got {spec!r}")
        kind, _, idx = spec.strip().lower().partition(":")
        if kind not in ("cpu", "cuda"):
            raise ValueError(f"unknown device {spec!r}: expected 'cpu', 'cuda' or 'cuda:N'")
        if idx:
            if not idx.isdigit():
                raise ValueError(f"bad device index in {spec!r}: expected 'cuda:N' with N >= 0")
            index = int(idx)
        if kind == "cpu":
            if index not in (None, 0):
                raise ValueError(f"the cpu device has no index {index}")
            index = None
        elif index is None:
            index = 0
        self.type, self.index = kind, index

    def __eq__(self, other):
        if isinstance(other, str):
            try:
                other = Device(other)
            except (ValueError, TypeError):
                return False
        return isinstance(other, Device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self):
        return hash((self.type, self.index))

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        if self.index is None:
            return f"device(type='{self.type}')"
        return f"device(type='{self.type}', index={self.index})"


CPU = Device("cpu")


# ---------------------------------------------------------------------------- CuPy, lazily


def _import_cupy():
    """Import CuPy on first use; raise an error that says what to install when it is absent."""
    global _cupy, _cupy_error
    if _cupy is not None:
        return _cupy
    try:
        import cupy  # noqa: PLC0415  (the only place minigrad imports CuPy)
    except Exception as exc:  # ImportError, or a broken CUDA install
        _cupy_error = f"CuPy could not be imported ({type(exc).__name__}: {exc})"
        raise RuntimeError(
            "the 'cuda' device needs CuPy and an NVIDIA GPU. Install CuPy for your CUDA version "
            'from the minigrad checkout: pip install ".[cuda12]" (CUDA 12) or '
            'pip install ".[cuda13]" (CUDA 13). ' + _cupy_error
        ) from exc
    _cupy = cupy
    return cupy


def cupy_if_loaded():
    """The cupy module if it was already imported by minigrad, else None (never imports)."""
    return _cupy


class cuda:  # noqa: N801  (namespace, mirrors torch.cuda)
    """``mg.cuda``: questions about CUDA devices that never raise."""

    @staticmethod
    def is_available() -> bool:
        """True when CuPy imports and at least one NVIDIA GPU answers."""
        return cuda.device_count() > 0

    @staticmethod
    def device_count() -> int:
        """Number of visible CUDA devices (0 without CuPy or a GPU)."""
        try:
            cp = _import_cupy()
            return int(cp.cuda.runtime.getDeviceCount())
        except Exception:
            return 0

    @staticmethod
    def synchronize(device: Union[str, Device, None] = None) -> None:
        """Wait for all work on a CUDA device (a no-op without one); then raise the error of
        any failed deferred check (:func:`defer_check`)."""
        if cupy_if_loaded() is None:
            return
        dev = Device(device or "cuda")
        with _cupy.cuda.Device(dev.index):
            _cupy.cuda.get_current_stream().synchronize()
        check_deferred()

    # memory: CuPy's default memory pool holds every tensor's device buffer
    @staticmethod
    def memory_allocated(device: Union[int, str, Device, None] = None) -> int:
        """Bytes of the device buffers held now on a CUDA device (the used bytes of CuPy's
        memory pool); 0 before CuPy is first used."""
        if cupy_if_loaded() is None:
            return 0
        with _cupy.cuda.Device(_cuda_index(device)):
            return int(_cupy.get_default_memory_pool().used_bytes())

    @staticmethod
    def max_memory_allocated(device: Union[int, str, Device, None] = None) -> int:
        """The most bytes held at once on a CUDA device since :meth:`reset_peak_memory_stats`.

        Peaks are tracked from the first call of either (a hook on each allocation, so that
        programs that never ask pay nothing); before that this is the current use.
        """
        if cupy_if_loaded() is None:
            return 0
        _track_peaks()
        index = _cuda_index(device)
        return max(_peaks.get(index, 0), cuda.memory_allocated(index))

    @staticmethod
    def reset_peak_memory_stats(device: Union[int, str, Device, None] = None) -> None:
        """Start a new peak for :meth:`max_memory_allocated` from the current use."""
        if cupy_if_loaded() is None:
            return
        _track_peaks()
        index = _cuda_index(device)
        _peaks[index] = cuda.memory_allocated(index)

    @staticmethod
    def memory_reserved(device: Union[int, str, Device, None] = None) -> int:
        """Bytes CuPy's memory pool holds from the driver (used plus cached for reuse)."""
        if cupy_if_loaded() is None:
            return 0
        with _cupy.cuda.Device(_cuda_index(device)):
            return int(_cupy.get_default_memory_pool().total_bytes())

    @staticmethod
    def empty_cache() -> None:
        """Give the pool's cached, unused blocks back to the driver."""
        if cupy_if_loaded() is not None:
            _cupy.get_default_memory_pool().free_all_blocks()


_peaks: dict = {}  # CUDA device index -> the most bytes used at once, once tracking
_peak_hook = []  # the allocator that tracks peaks, once installed


def _cuda_index(device: Union[int, str, Device, None]) -> int:
    if device is None:
        return int(_cupy.cuda.runtime.getDevice())
    if isinstance(device, int):
        return device
    dev = Device(device)
    return 0 if dev.index is None else dev.index


def _track_peaks() -> None:
    """Route CuPy's allocations through the pool with a peak check after each (once)."""
    if _peak_hook:
        return
    pool = _cupy.get_default_memory_pool()

    def malloc(size):
        memory = pool.malloc(size)
        used, index = pool.used_bytes(), memory.device_id
        if used > _peaks.get(index, 0):
            _peaks[index] = used
        return memory

    _cupy.cuda.set_allocator(malloc)
    _peak_hook.append(malloc)


# ---------------------------------------------------------------------------- deferred checks
# Input checks that need values, e.g. "every class index is in range", would make the host wait
# for the GPU (a synchronisation) in every training step. On a GPU they are deferred instead,
# as PyTorch's device-side asserts are: the check is computed on the device, and its error is
# raised at the next point where the host waits anyway (Tensor.item/tolist/bool, a copy to
# the CPU, mg.cuda.synchronize), before any value computed from the bad input can be seen.

_deferred: list = []  # (0-d boolean device array: True means failed, error factory)
MAX_DEFERRED = 64  # checked (one wait) once this many are pending: a bounded list


def defer_check(failed, error: Callable[[], Exception]) -> None:
    """Raise ``error()`` when the 0-d boolean array ``failed`` is True: at once for a NumPy
    array, at the next host synchronisation for a device array.

    Example:
        >>> import numpy as np
        >>> defer_check(np.array(False), lambda: ValueError("bad"))  # passes
        >>> defer_check(np.array(True), lambda: ValueError("bad"))
        Traceback (most recent call last):
        ...
        ValueError: bad
    """
    if isinstance(failed, (np.ndarray, np.generic)):
        if bool(failed):
            raise error()
        return
    _deferred.append((failed, error))
    if len(_deferred) >= MAX_DEFERRED:
        check_deferred()


def check_deferred() -> None:
    """Raise the error of the first failed deferred check (and forget the others); a no-op
    when none is pending (the common case costs one list test)."""
    while _deferred:
        failed, error = _deferred.pop(0)
        if bool(failed):  # a device -> host copy of one boolean
            _deferred.clear()
            raise error()


# ---------------------------------------------------------------------------- device helpers


def _check_cuda(dev: Device) -> None:
    cp = _import_cupy()
    try:
        count = cp.cuda.runtime.getDeviceCount()
    except Exception as exc:
        raise RuntimeError(
            f"device {dev} was asked for but no NVIDIA GPU/driver is usable ({exc}). "
            "Use device='cpu', or run on a machine with an NVIDIA GPU."
        ) from exc
    if dev.index >= count:
        raise RuntimeError(f"device {dev} was asked for but only {count} CUDA device(s) exist")


def get_device(spec: Union[str, Device, None] = None) -> Device:
    """Turn ``'cpu'``, ``'cuda:1'``, a :class:`Device` or None (the default) into a Device."""
    if spec is None:
        return default_device()
    dev = spec if isinstance(spec, Device) else Device(spec)
    if dev.type == "cuda":
        _check_cuda(dev)
    return dev


def xp_for(device: Device):
    """The array module (NumPy or CuPy) of a device."""
    return np if device.type == "cpu" else _import_cupy()


def pinned_empty(shape, dtype) -> np.ndarray:
    """An uninitialised NumPy array in page-locked (pinned) host memory, as
    ``cupyx.empty_pinned``: the GPU reads it by DMA, so copies from it to a device are faster
    and can overlap computation. Needs CuPy (and a GPU)."""
    cp = _import_cupy()
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    memory = cp.cuda.alloc_pinned_memory(max(nbytes, 1))  # NOTE: no 0-byte allocations
    return np.ndarray(shape, dtype=dtype, buffer=memory)


def device_of(array: Array) -> Device:
    """The device an array lives on."""
    if isinstance(array, (np.ndarray, np.generic)):
        return CPU
    if _cupy is not None and isinstance(array, _cupy.ndarray):
        return Device("cuda", array.device.id)
    raise TypeError(f"expected a NumPy or CuPy array, got {type(array).__name__}")


def array_module(array: Array):
    """``xp`` for an array: NumPy for NumPy arrays, CuPy for CuPy arrays."""
    if isinstance(array, np.ndarray):
        return np
    return _cupy if _cupy is not None and isinstance(array, _cupy.ndarray) else np


def to_device(array: Array, device: Device) -> Array:
    """Copy an array to a device (returns it unchanged when it is already there)."""
    src = device_of(array)
    if src == device:
        return array
    if device.type == "cpu":
        check_deferred()  # the host waits for the device here anyway
        return _cupy.asnumpy(array)
    cp = _import_cupy()
    with cp.cuda.Device(device.index):
        return cp.asarray(array)


_default_device: Optional[Device] = None


def default_device() -> Device:
    """The device creation functions use: ``set_default_device``, else ``$MINIGRAD_DEVICE``."""
    global _default_device
    if _default_device is None:
        _default_device = get_device(os.environ.get("MINIGRAD_DEVICE", "cpu") or "cpu")
    return _default_device


def set_default_device(device: Union[str, Device]) -> None:
    """Set the device creation functions use when none is given."""
    global _default_device
    _default_device = get_device(device)


# ---------------------------------------------------------------------------- random numbers

_seed = None  # last manual seed (None: seeded from the OS)
_generators: dict = {}


def manual_seed(seed: int) -> None:
    """Seed the random generators of every device (CPU now, CUDA ones when first used).

    Example:
        >>> manual_seed(0); a = generator(CPU).random()
        >>> manual_seed(0); a == generator(CPU).random()
        True
    """
    global _seed
    _seed = int(seed)
    _generators.clear()


def generator(device: Device, source=None):
    """The random generator that draws for ``device``: a NumPy ``Generator`` or a CuPy
    ``RandomState``.

    Args:
        device: where the numbers are wanted.
        source: None for the device's own generator (the one :func:`manual_seed` seeds), or a
            generator of its own (``mg.Generator``, whose device must be ``device``'s; a NumPy
            ``Generator`` for the CPU).
    """
    if source is not None:
        if isinstance(source, np.random.Generator):
            if device.type != "cpu":
                raise RuntimeError(f"a NumPy Generator draws on the CPU, not on {device}: pass "
                                   f"an mg.Generator('{device}')")
            return source
        draws_for = getattr(source, "_draws_for", None)
        if draws_for is None:
            raise TypeError(f"generator must be a minigrad.Generator, got "
                            f"{type(source).__name__}")
        return draws_for(device)
    gen = _generators.get(device)
    if gen is None:
        # NOTE: each device gets its own stream, derived from the seed and the device, so that
        # the CPU sequence does not depend on whether a GPU was used in between.
        if device.type == "cpu":
            gen = np.random.Generator(np.random.PCG64(_seed))
        else:
            cp = _import_cupy()
            with cp.cuda.Device(device.index):
                seed = None if _seed is None else _seed + 1_000_003 * (device.index + 1)
                gen = cp.random.RandomState(seed)
        _generators[device] = gen
    return gen


def new_generator(device: Device, seed: int):
    """A fresh generator for ``device`` seeded with ``seed`` (a NumPy ``Generator`` on PCG64 for
    the CPU, a CuPy ``RandomState`` for a CUDA device), apart from the devices' own ones."""
    if device.type == "cpu":
        return np.random.Generator(np.random.PCG64(seed))
    _check_cuda(device)
    with _cupy.cuda.Device(device.index):
        return _cupy.random.RandomState(seed)


def get_rng_state() -> dict:
    """The state of every generator used so far (JSON-serialisable), for checkpoints."""
    state = {"seed": _seed, "devices": {}}
    for dev, gen in _generators.items():
        if dev.type == "cpu":
            state["devices"][str(dev)] = gen.bit_generator.state
    return state


def set_rng_state(state: dict) -> None:
    """Restore generator states saved by :func:`get_rng_state`."""
    global _seed
    _seed = state.get("seed")
    _generators.clear()
    for name, bit_state in state.get("devices", {}).items():
        dev = Device(name)
        if dev.type == "cpu":
            gen = np.random.Generator(np.random.PCG64())
            gen.bit_generator.state = bit_state
            _generators[dev] = gen


def fork_rng_states() -> dict:
    """Snapshots of every generator used so far, by device, for :func:`restore_rng_states`
    (activation checkpointing replays a forward pass with the random numbers it drew)."""
    states = {}
    for dev, gen in _generators.items():
        if dev.type == "cpu":
            states[dev] = gen.bit_generator.state
        else:
            try:
                states[dev] = copy.deepcopy(gen)
            except Exception:  # a RandomState that cannot be copied: not replayed
                continue
    return states


def restore_rng_states(states: dict) -> None:
    """Put the generators back where :func:`fork_rng_states` saw them; generators first used
    after the snapshot are dropped, so they start again from the seed."""
    for dev in [d for d in _generators if d not in states]:
        del _generators[dev]
    for dev, state in states.items():
        if dev.type == "cpu":
            gen = _generators.get(dev) or np.random.Generator(np.random.PCG64())
            gen.bit_generator.state = state
            _generators[dev] = gen
        else:
            _generators[dev] = copy.deepcopy(state)


# ---------------------------------------------------------------------------- random draws
# NumPy's Generator and CuPy's RandomState name their methods differently; ops draw through
# these two helpers, always directly in the requested dtype (no float64 detour for float32).


def random_uniform(device: Device, shape, dtype, low: float = 0.0, high: float = 1.0,
                   generator=None) -> Array:
    """Uniform numbers in ``[low, high)`` of ``dtype`` on ``device`` (from ``generator``, an
    ``mg.Generator``, when given; see :func:`generator`)."""
    return _draw(device, shape, dtype, ("random", "random_sample"), high - low, low, generator)


def random_normal(device: Device, shape, dtype, mean: float = 0.0, std: float = 1.0,
                  generator=None) -> Array:
    """Normal numbers N(mean, std**2) of ``dtype`` on ``device`` (from ``generator`` when
    given)."""
    return _draw(device, shape, dtype, ("standard_normal", "standard_normal"), std, mean,
                 generator)


def _draw(device: Device, shape, dtype, methods, scale: float, shift: float,
          source=None) -> Array:
    """``scale * u + shift`` for standard draws ``u`` of the generator method ``methods[0]``
    (NumPy) or ``methods[1]`` (CuPy), made in ``dtype`` (float32 for 2-byte floats) and scaled in
    place."""
    gen = generator(device, source)
    work = np.float32 if np.dtype(dtype).char in "eE" else dtype  # float16, bfloat16
    if device.type == "cpu":
        out = getattr(gen, methods[0])(shape, dtype=work)
    else:
        with _cupy.cuda.Device(device.index):
            out = getattr(gen, methods[1])(shape, dtype=work)
    if (scale, shift) != (1.0, 0.0):
        out *= out.dtype.type(scale)
        out += out.dtype.type(shift)
    return out.astype(dtype, copy=False)
