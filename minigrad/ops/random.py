"""Sampling ops: ``bernoulli`` and ``multinomial``, drawn from the input's device generator
(``mg.manual_seed`` makes them reproducible). Samples have no gradient, as in PyTorch.
``generator=`` is accepted for PyTorch's signatures and ignored: minigrad has one generator
per device.

The draws are made from uniform numbers with array maths, the same way on NumPy and CuPy:
a Bernoulli draw is ``u < p``; a categorical draw inverts the running sum of the weights;
a draw without replacement takes the largest ``log(u) / w`` keys (Efraimidis and Spirakis),
which picks items in the order sequential weighted sampling would.
"""

from __future__ import annotations

import numpy as np

from minigrad import backend
from minigrad.tensor import Tensor


def bernoulli(input: Tensor, p=None, *, generator=None) -> Tensor:  # noqa: A002
    """0/1 draws, 1 with probability ``input`` (or ``p``) elementwise, in ``input``'s dtype.

    Example:
        >>> import minigrad as mg
        >>> mg.bernoulli(mg.tensor([0.0, 1.0]))
        tensor([0., 1.])
    """
    probs = input.data if p is None else input.xp.full(input.shape, p, dtype=input.dtype)
    if probs.size and (float(probs.min()) < 0 or float(probs.max()) > 1):
        raise RuntimeError("bernoulli: all probabilities must be in [0, 1]")
    dtype = input.dtype if input.dtype.kind == "f" else np.dtype(np.float32)
    u = backend.random_uniform(input.device, input.shape, dtype)
    return Tensor._make((u < probs).astype(input.dtype))


def multinomial(input: Tensor, num_samples: int, replacement: bool = False, *,  # noqa: A002
                generator=None) -> Tensor:
    """Indices drawn from the categories whose (unnormalised) weights are the last dimension
    of ``input`` (1-D or 2-D), ``num_samples`` per row; int64.

    Without ``replacement`` each index appears at most once in a row, so ``num_samples`` is at
    most the number of non-zero weights.

    Example:
        >>> import minigrad as mg
        >>> mg.multinomial(mg.tensor([0.0, 0.0, 1.0]), 2, replacement=True)
        tensor([2, 2])
    """
    if input.ndim not in (1, 2):
        raise RuntimeError(f"multinomial: prob_dist must be 1 or 2 dim, got {input.ndim}")
    xp = input.xp
    w = input.data.astype(np.float64) if input.dtype != np.float64 else input.data
    rows = w.reshape(-1, w.shape[-1])
    if rows.size and (not bool(xp.isfinite(rows).all()) or float(rows.min()) < 0):
        raise RuntimeError("multinomial: probability tensor contains either inf, nan or "
                           "element < 0")
    totals = rows.sum(axis=1, keepdims=True)
    if rows.shape[0] and float(totals.min()) <= 0:
        raise RuntimeError("multinomial: invalid multinomial distribution (sum of probabilities "
                           "<= 0)")
    n_cat = rows.shape[1]
    if not replacement:
        nonzero = int((rows > 0).sum(axis=1).min()) if rows.shape[0] else n_cat
        if num_samples > nonzero:
            raise RuntimeError("multinomial: cannot sample n_sample > prob_dist.size(-1) "
                               "samples without replacement")
    u = backend.random_uniform(input.device, (rows.shape[0], num_samples if replacement
                                              else n_cat), np.float64)
    if replacement:
        cdf = xp.cumsum(rows / totals, axis=1)
        cdf[:, -1] = 1.0  # the last bin closes at exactly 1 despite rounding
        # every row searched at once: row r's bins are shifted to [r, r + 1]
        shift = xp.arange(rows.shape[0], dtype=np.float64)[:, None]
        flat = xp.searchsorted((cdf + shift).ravel(), (u + shift).ravel(), side="right")
        idx = flat.reshape(u.shape) - (shift * n_cat).astype(np.int64)
        idx = xp.minimum(idx, n_cat - 1)
    else:
        # NOTE: zero weights get key -inf, so they are never picked while others remain
        with np.errstate(divide="ignore"):
            keys = xp.where(rows > 0, xp.log(u) / xp.where(rows > 0, rows, 1), -xp.inf)
        idx = xp.argsort(-keys, axis=1, kind="stable")[:, :num_samples]
    idx = idx.astype(np.int64)
    return Tensor._make(idx.reshape(input.shape[:-1] + (num_samples,)))
