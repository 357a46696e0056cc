"""NumPy's OpenBLAS beside the kernels' own threads: its idle workers stopped for a section.

Why: after every multi-threaded product OpenBLAS's worker threads spin for about 0.1 s
(``OPENBLAS_THREAD_TIMEOUT``, 2**28 cycles by default), waiting for the next product. In a
training step the products come every few milliseconds, so a worker spins on the second core
through every NumPy pass in between, and a kernel that hands chunks to a thread of its own
(``kernels/_numpy.py``'s ``run_chunks``) finds no free core for it. Measured in the fused W4
step (2 cores, 2 threads, in place): layer norm forward 3.97 -> 3.22 ms, backward 4.79 -> 3.48,
cross-entropy forward 3.26 -> 2.33, backward 2.38 -> 1.45, with the workers stopped first.
PyTorch has no such conflict: its elementwise kernels run on the same OpenMP threads as its
products.

:func:`quiet` stops the workers (OpenBLAS's ``blas_thread_shutdown_``, about 0.05 ms; the next
multi-threaded product starts them again) and runs the BLAS on the calling thread only for the
section, so that a small product inside a chunk (a GEMV, a head's scores) neither wakes nor
restarts them; the thread count is restored after. Nothing happens with one kernel thread, one
chunk, or a BLAS without these functions (MKL, a system OpenBLAS under another name).
"""

from __future__ import annotations

import contextlib
import ctypes

from minigrad import threads

from ._numpy import num_threads, run_chunks

_shutdown: list = []  # OpenBLAS's blas_thread_shutdown_ (or None), found once


def _shutdown_fn():
    """The loaded OpenBLAS's ``blas_thread_shutdown_``, or None."""
    if not _shutdown:
        fn = None
        for lib in threads._loaded_blas_libraries():
            fn = getattr(lib, "blas_thread_shutdown_", None)
            if fn is not None:
                fn.restype = ctypes.c_int
                break
        _shutdown.append(fn)
    return _shutdown[0]


def can_quiet() -> bool:
    """Whether :func:`quiet` can stop the BLAS's workers here (OpenBLAS, its thread count
    settable)."""
    return bool(threads._find_blas()) and _shutdown_fn() is not None


@contextlib.contextmanager
def quiet(chunks: int = 2):
    """For a section that runs ``chunks`` chunks on the kernel threads: when more than one
    thread will work (``MINIGRAD_NUM_THREADS`` >= 2 and ``chunks`` >= 2), OpenBLAS's workers
    stopped and the BLAS on the calling thread only, its thread count restored after; otherwise
    nothing changes.

    Example:
        >>> import numpy as np
        >>> with quiet(chunks=1):  # one chunk: nothing to make room for
        ...     float(np.ones(3) @ np.ones(3))
        3.0
    """
    if chunks < 2 or num_threads() < 2 or not can_quiet():
        yield
        return
    setter, getter = threads._find_blas()
    before = getter()
    # NOTE: the count first: a count set while the workers are stopped may start them again
    setter(ctypes.c_int(1))
    _shutdown_fn()()
    try:
        yield
    finally:
        setter(ctypes.c_int(before))


def run_quiet(fn, chunks) -> list:
    """``run_chunks(fn, chunks)`` (``kernels/_numpy.py``) inside :func:`quiet`: the chunks on the
    kernel threads with OpenBLAS's idle workers stopped when more than one thread works."""
    chunks = list(chunks)
    with quiet(len(chunks)):
        return run_chunks(fn, chunks)
