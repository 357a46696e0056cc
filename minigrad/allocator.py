"""Keep freed array memory in the process: glibc ``malloc`` settings for training loops.

A training step allocates and frees the same large NumPy buffers (activations, gradients,
temporaries) over and over. With glibc's default settings most of them cost fresh memory from
the kernel on every step: buffers above the mmap threshold are mapped and unmapped each time,
and memory freed at the top of the heap is handed back (trimmed) as soon as more than the trim
threshold lies free there. Every page of fresh memory is a page fault that the kernel must zero:
measured here, 3,600 faults per W2 (LSTM) step, 10,400 per W4 (transformer block) step and
7,600 per W5 (CNN) step, 14-40 MB zeroed per step, all of it work a caching allocator (like
PyTorch's, or glibc's own heap once warm) would not do.

This was the mechanism behind a puzzling measurement: minigrad ran 25-35% faster in a process
where PyTorch had run a step before, because PyTorch's allocations left glibc's heap in a state
that kept those buffers mapped (the page faults per minigrad step dropped to zero).

:func:`tune` sets the two thresholds once, at ``import minigrad``, so that the heap keeps what
a step frees for the next step: ``M_MMAP_THRESHOLD`` 512 MiB (buffers below it come from the
heap and are reused) and ``M_TRIM_THRESHOLD`` 2 GiB (up to that much free heap is kept rather
than returned: a step of SmolLM2's LoRA fine-tuning frees 1.2 GB at once, and with a 1 GiB
threshold it faulted all of it in again, 300,000 faults and 0.5 s of system time per step; with
2 GiB, 4 faults). The page faults per step of W1-W5 and of the LLM step drop to (almost) zero
and the peak resident size does not change (the same buffers are reused). The price: the
process keeps its peak memory resident while it runs, as a training loop needs it anyway, up
to 2 GiB more than it holds; :func:`release` hands the free memory back (``malloc_trim``).

It applies on Linux with glibc only (elsewhere nothing changes). Opt out with the environment
variable ``MINIGRAD_MALLOC_TUNING=0`` set before ``import minigrad``.

Example:
    >>> from minigrad import allocator
    >>> allocator.settings() is None or allocator.settings()["mmap_threshold"] > 0
    True
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
from typing import Optional

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "release", "settings", "tune"]

MMAP_THRESHOLD = 512 * 2 ** 20
"""Buffers smaller than this come from the heap (and are reused), larger ones are mapped."""
TRIM_THRESHOLD = 2 ** 31 - 1
"""Free memory at the top of the heap beyond this (2 GiB, mallopt's largest) is handed back."""

# mallopt's parameter numbers (glibc's malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

_applied: Optional[dict] = None


def _libc():
    """glibc through ctypes, or None where the C library is not glibc."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt  # noqa: B018  (present in glibc only)
    except (OSError, AttributeError):
        return None
    return libc


def tune(mmap_threshold: int = MMAP_THRESHOLD, trim_threshold: int = TRIM_THRESHOLD) -> bool:
    """Set glibc's mmap and trim thresholds (see the module's text). Returns True when both
    were set, False where this is not glibc or the variable ``MINIGRAD_MALLOC_TUNING`` is 0.

    Args:
        mmap_threshold: bytes; allocations below it come from the heap.
        trim_threshold: bytes of free heap kept before any is returned to the kernel.
    """
    global _applied
    if os.environ.get("MINIGRAD_MALLOC_TUNING", "1").strip() in ("0", "false", "no", "off"):
        return False
    if mmap_threshold <= 0 or trim_threshold <= 0:
        raise ValueError(f"thresholds must be positive bytes, got mmap {mmap_threshold}, "
                         f"trim {trim_threshold}")
    libc = _libc()
    if libc is None:
        return False
    ok = bool(libc.mallopt(_M_MMAP_THRESHOLD, ctypes.c_int(mmap_threshold))) and \
        bool(libc.mallopt(_M_TRIM_THRESHOLD, ctypes.c_int(trim_threshold)))
    if ok:
        _applied = {"mmap_threshold": mmap_threshold, "trim_threshold": trim_threshold}
    return ok


def release() -> bool:
    """Hand the heap's free memory back to the kernel now (glibc's ``malloc_trim(0)``), e.g.
    after training, when the process goes on with less. Returns True when memory was released.
    """
    libc = _libc()
    return bool(libc.malloc_trim(0)) if libc is not None else False


def settings() -> Optional[dict]:
    """The thresholds :func:`tune` set in this process, or None when it set none."""
    return None if _applied is None else dict(_applied)
