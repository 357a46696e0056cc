"""``cupyx`` of the fake CuPy: ``scatter_add`` (unbuffered ``a[slices] += value``)."""

from __future__ import annotations

import numpy as np

from fake_cuda._array import ndarray, unsupported, unwrap_index, unwrap_operand


def scatter_add(a, slices, value):
    """``a[slices] += value`` with repeated indices accumulated (NumPy's ``add.at``)."""
    if not isinstance(a, ndarray):
        raise unsupported(a)
    np.add.at(a._a, unwrap_index(slices), unwrap_operand(value))
