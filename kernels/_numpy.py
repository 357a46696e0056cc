"""NumPy helpers shared by the fused kernels.

Why chunks: an elementwise kernel written as a sequence of in-place NumPy passes reads and
writes every array once per pass. Over a large array each pass streams through main memory;
over a chunk of about 16K values, every pass after the first finds its data in the CPU's cache.
The kernels therefore walk large inputs chunk by chunk, while small inputs are one chunk (the
measurements behind the chunk sizes: benchmarks/results/kernel_notes.md).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator

import numpy as np

# (NO_TRANS and ROW_MAJOR are imported from here by the kernels)
from minigrad.blas import NO_TRANS, ROW_MAJOR, TRANS, blas_function  # noqa: F401

CHUNK = 16384  # values per chunk for kernels of many passes (GELU): the scratch fits in L2
# Kernels of a few passes per chunk (cross-entropy, layer norm) lose more to the per-chunk
# Python overhead than they gain from L2: their chunks are larger (1 MB of float32)
ROW_CHUNK = 1 << 18


def flat_chunks(n: int, chunk: int = CHUNK) -> Iterator[slice]:
    """Slices covering ``range(n)`` in pieces of ``chunk`` (one empty slice when n == 0).

    Example:
        >>> list(flat_chunks(5, 2))
        [slice(0, 2, None), slice(2, 4, None), slice(4, 5, None)]
    """
    if n == 0:
        yield slice(0, 0)
    for start in range(0, n, chunk):
        yield slice(start, min(start + chunk, n))


def row_chunks(n_rows: int, row_len: int, chunk: int = CHUNK) -> Iterator[slice]:
    """Slices of whole rows, about ``chunk`` values per piece (at least one row each).

    Example:
        >>> list(row_chunks(5, 6000))
        [slice(0, 2, None), slice(2, 4, None), slice(4, 5, None)]
    """
    return flat_chunks(n_rows, max(1, chunk // max(1, row_len)))


# ---------------------------------------------------------------------------- threads
# NumPy releases the GIL inside its ufunc loops and reductions, so chunks handed to several
# Python threads run in parallel. MINIGRAD_NUM_THREADS=N turns that on (the default is 1:
# extra threads compete with the BLAS threads that spin between GEMMs). Every chunk writes its
# own part of the outputs (reductions keep one partial result per chunk, summed in chunk
# order), so results do not depend on the thread count.

_pool = None
_pool_size = 0


def num_threads() -> int:
    """Threads the NumPy kernels use for their chunks: ``MINIGRAD_NUM_THREADS``, default 1."""
    value = os.environ.get("MINIGRAD_NUM_THREADS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else 1


def run_chunks(fn: Callable[[slice], object], chunks) -> list:
    """``[fn(chunk) for chunk in chunks]``, spread over :func:`num_threads` threads (the
    calling thread takes a share). Returns the results in chunk order."""
    global _pool, _pool_size
    chunks = list(chunks)
    if len(chunks) == 1:  # a small input: no thread setting to read
        return [fn(chunks[0])]
    n = min(num_threads(), len(chunks))
    if n <= 1:
        return [fn(c) for c in chunks]
    if _pool is None or _pool_size < n - 1:
        _pool = ThreadPoolExecutor(max_workers=n - 1, thread_name_prefix="minigrad-kernel")
        _pool_size = n - 1
    results: list = [None] * len(chunks)

    def work(first: int) -> None:
        for i in range(first, len(chunks), n):  # strided shares: balanced for equal chunks
            results[i] = fn(chunks[i])

    futures = [_pool.submit(work, t) for t in range(1, n)]
    work(0)
    for f in futures:
        f.result()  # re-raises a worker's exception here
    return results


# ---------------------------------------------------------------------------- BLAS calls
# The recurrent kernels and the conv call NumPy's own BLAS (minigrad/blas.py finds its
# routines: NumPy's matmul has no accumulating form, and its transposing copy is not
# blocked for the cache), the GEMM with every argument made once before their loop
# through time, so a step pays one ctypes call.


def blas_gemm(dtype):
    """``cblas_sgemm`` (float32) or ``cblas_dgemm`` (float64) of the OpenBLAS NumPy links, as a
    ctypes function taking ``(order, trans_a, trans_b, m, n, k, alpha, a_ptr, lda, b_ptr, ldb,
    beta, c_ptr, ldc)``; None for other dtypes or another BLAS (then use NumPy)."""
    return blas_function("gemm", dtype)


def transposed(a: np.ndarray) -> np.ndarray:
    """``a.T`` of a 2-D array as a new C-contiguous array (``np.ascontiguousarray(a.T)``),
    through the BLAS's ``omatcopy`` where ``a`` is a C-contiguous float32/float64 matrix.

    Example:
        >>> transposed(np.arange(6, dtype=np.float32).reshape(2, 3)).tolist()
        [[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]]
    """
    copy = blas_function("omatcopy", a.dtype) if a.ndim == 2 and a.size else None
    if copy is None or not a.flags.c_contiguous:
        return np.ascontiguousarray(a.T)
    rows, cols = a.shape
    out = np.empty((cols, rows), dtype=a.dtype)
    copy(ROW_MAJOR, TRANS, rows, cols, 1.0, a.ctypes.data, cols, out.ctypes.data, rows)
    return out
