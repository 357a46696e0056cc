"""``mg.set_num_threads`` / ``mg.get_num_threads``: how many CPU threads minigrad uses.

Two thread pools do CPU work here, and this module sets both:

- the BLAS library NumPy links (matrix products): OpenBLAS, or MKL, found among the loaded
  shared libraries and told through its own C function (``openblas_set_num_threads``,
  ``MKL_Set_Num_Threads``), the way threadpoolctl does it;
- minigrad's fused NumPy kernels, which split large inputs into chunks over
  ``MINIGRAD_NUM_THREADS`` threads (``kernels/_numpy.py`` reads the variable on every call).

Limits, said plainly: the BLAS is found by reading ``/proc/self/maps`` (Linux only; elsewhere,
or for a BLAS other than OpenBLAS/MKL, only the kernel threads change and
:func:`blas_controllable` is False); NumPy's own ufuncs are single-threaded whatever the
setting; on a GPU the setting changes nothing.

Example:
    >>> import minigrad as mg
    >>> previous = mg.get_num_threads()
    >>> mg.set_num_threads(1)
    >>> mg.get_num_threads()
    1
    >>> mg.set_num_threads(previous)
"""

from __future__ import annotations

import ctypes
import os

__all__ = ["blas_controllable", "get_num_threads", "set_num_threads"]

# (setter, getter) C symbols per BLAS build: plain OpenBLAS, the scipy-openblas wheels NumPy
# ships (64-bit integer builds add a suffix), and MKL
_SYMBOLS = [
    ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
    ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
    ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
    ("openblas_set_num_threads", "openblas_get_num_threads"),
    ("MKL_Set_Num_Threads", "MKL_Get_Max_Threads"),
]

_blas = None  # (set, get) C functions once found, False when none could be found


def _loaded_blas_paths() -> list:
    """Paths of the loaded shared libraries that look like a BLAS (Linux's process map)."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if line.rstrip().endswith(".so")
                     or ".so." in line}
    except OSError:
        return []
    return sorted(p for p in paths if "blas" in p.lower() or "mkl_rt" in p.lower())


def _loaded_blas_libraries():
    """ctypes handles of the BLAS libraries already loaded (none is loaded anew), in the order
    of :func:`_loaded_blas_paths`: where NumPy's own BLAS functions are looked up."""
    for path in _loaded_blas_paths():
        try:
            yield ctypes.CDLL(path, mode=getattr(ctypes, "RTLD_NOLOAD", 0) | ctypes.RTLD_GLOBAL)
        except OSError:
            continue


def _find_blas():
    """The (set, get) thread functions of NumPy's BLAS, or False when none was found."""
    global _blas
    if _blas is None:
        _blas = False
        for lib in _loaded_blas_libraries():
            for set_name, get_name in _SYMBOLS:
                setter, getter = getattr(lib, set_name, None), getattr(lib, get_name, None)
                if setter is not None and getter is not None:
                    getter.restype = ctypes.c_int
                    _blas = (setter, getter)
                    break
            if _blas:
                break
    return _blas


def blas_controllable() -> bool:
    """True when the BLAS NumPy uses was found and its thread count can be set."""
    return bool(_find_blas())


def set_num_threads(n: int) -> None:
    """Use ``n`` CPU threads: for NumPy's BLAS (when it can be reached, see
    :func:`blas_controllable`) and for minigrad's chunked NumPy kernels."""
    n = int(n)
    if n < 1:
        raise ValueError(f"set_num_threads expects a positive integer, got {n}")
    os.environ["MINIGRAD_NUM_THREADS"] = str(n)
    blas = _find_blas()
    if blas:
        blas[0](ctypes.c_int(n))


def get_num_threads() -> int:
    """The CPU thread count: the BLAS's own count when it can be read, otherwise the kernels'
    (``MINIGRAD_NUM_THREADS``, default 1)."""
    blas = _find_blas()
    if blas:
        return int(blas[1]())
    value = os.environ.get("MINIGRAD_NUM_THREADS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else 1
