"""A strict CPU stand-in for CuPy: the one the tests use wherever they run CUDA code without a
GPU.

``MINIGRAD_FAKE_CUDA=1 python -m pytest -m gpu`` makes tests/conftest.py call :func:`install`
before minigrad first imports CuPy, so that every ``cuda`` test case runs on it; the kernel
tests (tests/kernels/test_cuda_simulated.py, test_cuda_launchers.py) call :func:`use` to run
one test on it whatever the environment. ``import cupy`` / ``import cupyx`` then give this
package's modules:

- cupy.py: the namespace (creation, ufuncs, functions, ``cuda``, ``random``, ``RawModule``);
- _array.py: ``cupy.ndarray``, a wrapper around a private NumPy array that is not a NumPy
  array and refuses implicit host transfers and NumPy functions as CuPy does;
- _kernels.py: ``RawModule``/``RawKernel``: each launch checked against the kernel's C
  signature and the device's limits, then run by the CUDA C simulator
  (tests/kernels/cuda_sim.py) or, for fast launcher tests, by the kernels' maths in NumPy
  (tests/kernels/cuda_emulation.py);
- _cuda.py, _random.py, cupyx.py: ``cupy.cuda``, ``cupy.random``, ``cupyx.scatter_add``.

It catches GPU-path bugs a GPU would catch: NumPy functions called on device arrays, host and
device arrays mixed, a missing copy to the device, NumPy-only attributes (``flags.writeable``),
kernels launched with the wrong arguments, dtype or a non-contiguous buffer. It cannot stand in
for what only a GPU has (DLPack exchange with torch.cuda, timings, cuRAND's streams), and
simulated kernels are slow (a block's threads are OS threads): the ``cuda`` cases of the tests
marked ``slow_in_simulator`` skip unless ``MINIGRAD_FAKE_CUDA=all``.
"""

from __future__ import annotations

import os
import sys

ENV = "MINIGRAD_FAKE_CUDA"


def enabled() -> bool:
    """Whether ``$MINIGRAD_FAKE_CUDA`` asks for the fake (set, and not 0/false/empty)."""
    return os.environ.get(ENV, "").strip().lower() not in ("", "0", "false", "no")


def run_slow() -> bool:
    """Whether ``$MINIGRAD_FAKE_CUDA=all`` asks for the tests marked ``slow_in_simulator`` too."""
    return os.environ.get(ENV, "").strip().lower() == "all"


def install() -> None:
    """Put the fake modules in ``sys.modules`` as ``cupy``, ``cupy.cuda``, ``cupy.random``,
    ``cupyx``; refuse when the real CuPy is already imported."""
    real = sys.modules.get("cupy")
    if real is not None and not getattr(real, "__fake__", False):
        raise RuntimeError(f"{ENV} is set but the real CuPy was already imported")
    from fake_cuda import cupy, cupyx  # noqa: PLC0415

    cupy.__fake__ = True
    sys.modules["cupy"] = cupy
    sys.modules["cupy.cuda"] = cupy.cuda
    sys.modules["cupy.cuda.runtime"] = cupy.cuda.runtime
    sys.modules["cupy.random"] = cupy.random
    sys.modules["cupyx"] = cupyx


def use(monkeypatch, kernels: str = "simulated", sm_count: int = 1):
    """Run one test's CUDA code on the fake CuPy, installed or not, and return its ``cupy``.

    minigrad's backend takes the fake module, ``kernels/_cuda.py`` compiles into a fresh
    cache, and the launch log (``_kernels.LAUNCHES``) starts empty; ``monkeypatch`` undoes it
    all after the test.

    Args:
        monkeypatch: the test's ``monkeypatch`` fixture.
        kernels: what runs the launches: ``"simulated"`` (the CUDA C) or ``"emulated"`` (the
            kernels' maths in NumPy).
        sm_count: the device's streaming multiprocessors; 1 makes the grid-stride loops (at
            most 32 blocks per SM) wrap around at test sizes.
    """
    from fake_cuda import _cuda, _kernels, cupy  # noqa: PLC0415
    from minigrad import backend  # noqa: PLC0415
    from minigrad.kernels import _cuda as kernels_cuda  # noqa: PLC0415

    monkeypatch.setattr(backend, "_cupy", cupy)
    monkeypatch.setattr(kernels_cuda, "_modules", {})
    monkeypatch.setattr(_kernels, "KERNELS", kernels)
    monkeypatch.setitem(_cuda.ATTRIBUTES, "MultiProcessorCount", sm_count)
    _kernels.LAUNCHES.clear()
    return cupy


class count_transfers:  # noqa: N801  (used like a function: ``with count_transfers() as c``)
    """Count the device -> host transfers (synchronisations on a GPU) made inside a ``with``
    block: ``c.counts`` maps a kind (``get``, ``item``, ``bool``, ``float``, ``boolean mask
    index``, ...) to how many times it happened; ``c.total`` sums them."""

    def __enter__(self):
        from fake_cuda import _array  # noqa: PLC0415

        self._array = _array
        self._before = dict(_array.TRANSFERS)
        self.counts = {}
        return self

    def __exit__(self, *exc):
        after = self._array.TRANSFERS
        self.counts = {k: v - self._before.get(k, 0) for k, v in after.items()
                       if v != self._before.get(k, 0)}
        return False

    @property
    def total(self) -> int:
        return sum(self.counts.values())
