"""NumPy's own BLAS routines, called directly (CPU, float32/float64).

NumPy's matmul has no accumulating form (BLAS's beta = 1): ``c += a @ b`` costs a product
array and a pass to add it; and NumPy's transposing copy of a matrix is not blocked for the
cache (a (1024, 256) float32 W^T: 360 us against 170 for OpenBLAS's omatcopy). This module finds
the routines of the BLAS NumPy links (the wheels' OpenBLAS) once, as ctypes functions taking the
CBLAS arguments: the engine's accumulating products (:func:`add_product`, used by ``MatmulFn``'s
backward) and the fused kernels (``kernels/_numpy.py``) call them. Where the BLAS is another one,
or the dtype has no routine, :func:`blas_function` gives None and callers use NumPy.
"""

from __future__ import annotations

import ctypes

import numpy as np

from minigrad import threads

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112  # CBLAS's enum values
_BLAS: dict = {}  # (name, dtype character) -> ctypes function of NumPy's OpenBLAS, or None


def blas_function(name: str, dtype):
    """NumPy's own OpenBLAS routine ``name`` (gemm, omatcopy, axpy, axpby) for ``dtype``
    (float32 or float64) as a ctypes function taking the CBLAS arguments, found once; None
    for another dtype or BLAS."""
    dtype = np.dtype(dtype)
    key = (name, dtype.char)
    fn = _BLAS.get(key, False)
    if fn is False:
        fn = _BLAS[key] = _find_blas_function(name, dtype.char)
    return fn


def _find_blas_function(name: str, char: str):
    letter = {"f": "s", "d": "d"}.get(char)
    if letter is None:
        return None
    real = ctypes.c_float if letter == "s" else ctypes.c_double
    ptr, flag = ctypes.c_void_p, ctypes.c_int
    for lib in threads._loaded_blas_libraries():
        # the wheels' builds: 64-bit integers (symbol suffix 64_) or 32-bit ones
        for suffix, index in (("64_", ctypes.c_int64), ("", ctypes.c_int32)):
            fn = getattr(lib, f"scipy_cblas_{letter}{name}{suffix}", None)
            if fn is None:
                continue
            fn.restype = None
            fn.argtypes = {
                "gemm": [flag, flag, flag, index, index, index, real, ptr, index, ptr, index,
                         real, ptr, index],
                # (order, trans, rows, cols, alpha, a, lda, b, ldb)
                "omatcopy": [flag, flag, index, index, real, ptr, index, ptr, index],
                "axpy": [index, real, ptr, index, ptr, index],  # (n, a, x, incx, y, incy)
                "axpby": [index, real, ptr, index, real, ptr, index],  # (n, a, x, incx, b, y, incy)
            }[name]
            return fn
    return None


def add_product(c: np.ndarray, a: np.ndarray, b: np.ndarray) -> bool:
    """``c += a @ b`` for matrices, by one BLAS GEMM with beta = 1 (no product array, no pass
    to add it); True when done. False, with ``c`` untouched, where the BLAS cannot do it: not
    three 2-D NumPy arrays of one native float32/float64 dtype and matching shapes, ``c`` not
    contiguous (either order) or not writeable, an operand whose rows or columns are not evenly
    strided, memory shared between ``c`` and an operand, an empty product, or no such BLAS
    routine. Operands may be transposed or row-strided views (``x.T``, ``x[:, 2:5]``).

    Example:
        >>> c = np.ones((2, 2), dtype=np.float32)
        >>> a, b = np.array([[1, 2], [3, 4]], np.float32), np.eye(2, dtype=np.float32)
        >>> if not add_product(c, a, b):  # another BLAS: NumPy's way
        ...     c += a @ b
        >>> c.tolist()
        [[2.0, 3.0], [4.0, 5.0]]
    """
    if type(c) is not np.ndarray or type(a) is not np.ndarray or type(b) is not np.ndarray:
        return False
    dt = c.dtype
    if (c.ndim != 2 or a.ndim != 2 or b.ndim != 2 or a.dtype != dt or b.dtype != dt
            or not (dt == np.float32 or dt == np.float64)):  # (== rejects byte-swapped)
        return False
    m, k = a.shape
    n = b.shape[1]
    if b.shape[0] != k or c.shape != (m, n) or not (m and n and k):
        return False
    flags = c.flags
    if not (flags.writeable and flags.aligned and a.flags.aligned and b.flags.aligned):
        return False
    if flags.c_contiguous:
        ldc = n
    elif flags.f_contiguous:  # c^T (row-major) += b^T a^T
        c, a, b, m, n = c.T, b.T, a.T, n, m
        ldc = n
    else:
        return False
    trans_a, lda = _operand(a)
    trans_b, ldb = _operand(b)
    if lda == 0 or ldb == 0 or np.may_share_memory(c, a) or np.may_share_memory(c, b):
        return False
    gemm = blas_function("gemm", dt)
    if gemm is None:
        return False
    gemm(ROW_MAJOR, trans_a, trans_b, m, n, k, 1.0, a.ctypes.data, lda, b.ctypes.data, ldb, 1.0,
         c.ctypes.data, ldc)
    return True


def _operand(x: np.ndarray) -> tuple:
    """(CBLAS transpose flag, leading dimension) to read the matrix ``x`` in row-major order;
    leading dimension 0 when its elements are not laid out as BLAS reads a matrix."""
    rows, cols = x.shape
    item = x.itemsize
    if x.flags.c_contiguous:
        return NO_TRANS, max(cols, 1)
    if x.flags.f_contiguous:
        return TRANS, max(rows, 1)
    s0, s1 = x.strides
    if s1 == item and s0 % item == 0 and s0 >= cols * item:  # rows apart by a stride
        return NO_TRANS, s0 // item
    if s0 == item and s1 % item == 0 and s1 >= rows * item:  # columns apart by a stride
        return TRANS, s1 // item
    return NO_TRANS, 0
