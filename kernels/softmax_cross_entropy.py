"""Fused softmax cross-entropy from logits and class indices, forward and backward.

What is fused: :func:`minigrad.references.cross_entropy` (the reference) for
(N, C) logits and (N,) class-index targets: log-softmax, the pick of the target's log-probability,
class weights, ``ignore_index``, label smoothing and the reduction, in one ``Function``.

With ``s_n = sum_c exp(x_nc - max_n)``, ``lse_n = max_n + log s_n``, ``p = softmax(x)``, class
weights ``w`` (all ones without), ``W = sum_c w_c`` and smoothing ``eps``::

    loss_n = (1 - eps) w_t (lse_n - x_nt) + eps / C * (W lse_n - sum_c w_c x_nc)   (0 if ignored)
    'mean' divides the sum by sum_n w_{t_n} over the non-ignored targets ('sum': by 1)
    dx_nc  = k_n ((1 - eps) w_t + eps W / C) p_nc - k_n (1 - eps) w_t [c = t] - k_n eps w_c / C

with ``k_n`` the upstream gradient of loss_n (0 where ignored).

NumPy: forward is a max, an exp and a row sum over the (N, C) logits (one more row sum for
smoothing): where every logit of a chunk of rows is small enough that exp(x) and its row sums
cannot overflow, the exponentials are taken unshifted (the max is then one reduction over the
chunk instead of a subtract pass; a chunk with a row whose sum underflowed is redone shifted
by each row's max, as are chunks with larger, infinite or NaN logits). The exponentials are
kept, so the backward is one scaling pass, a scatter of N values and, with smoothing, one more
pass. Both walk the rows in cache-sized chunks spread
over threads (``kernels/_numpy.py``). Nothing is computed in float64 for float32.

CUDA (``softmax_cross_entropy.cu``): one block per row for the forward (max, sum of exp, loss,
and the row's log-sum-exp kept, N floats); the backward recomputes p from the logits and the
log-sum-exp in one grid-stride pass, so no (N, C) buffer is kept. The kernels also work out
everything about the targets (which are ignored, which are out of range: a flag reported at
the next synchronisation, the class weights, the summed weights for smoothing, each row's
gradient scale), so that on a GPU, where every array op is a launch, a forward and backward
make two kernel launches besides the reduction.

Fallback rule (:func:`apply`): logits that are not 2-D (N, C), class-probability targets, and
class weights that require a gradient run the reference.
"""

from __future__ import annotations

import numpy as np

from minigrad import backend, references
from minigrad.fused import FusedFunction
from minigrad.tensor import Tensor

from . import _blas, _cuda
from ._numpy import ROW_CHUNK, row_chunks

CUDA_KERNELS = ("softmax_xent_fwd", "softmax_xent_bwd")


class SoftmaxCrossEntropyFn(FusedFunction, kernel="softmax_cross_entropy"):
    """(N, C) logits -> loss ((N,) for 'none', else a scalar); see the module docstring."""

    target: Tensor  # forward parameters: (N,) class indices,
    weight: Tensor | None  # (C,) class weights or None,
    ignore_index: int
    reduction: str  # 'none', 'mean' or 'sum'
    label_smoothing: float
    every_target_counts: bool = False  # F's check: every target an in-range, counted index

    def reference(self, x):
        return references.cross_entropy(x, self.target, self.weight, self.ignore_index,
                                        self.reduction, self.label_smoothing)

    def _reduce(self, loss, w_t):
        """The reduction of the per-row losses (``w_t``: the weights of the counted targets)."""
        if self.reduction == "none":
            return loss
        # (NumPy's reduction called directly: the method's Python wrapper outweighs this sum)
        total = np.add.reduce(loss) if self.xp is np else loss.sum()
        if self.reduction == "sum":
            return total
        # NOTE: 'mean' divides by the summed weights of the counted targets; when every target
        # is ignored that is 0 / 0 = nan, as in PyTorch (w_t None: every target counts once)
        self.denom = float(loss.shape[0]) if w_t is None else w_t.sum()
        if self.xp is np and self.denom:  # (on a GPU no test of a device value: no host wait)
            return total / self.denom
        with np.errstate(invalid="ignore", divide="ignore"):
            return total / self.denom

    # ---------------------------------------------------------------- NumPy
    def _forward_numpy(self, x):
        N, C = x.shape
        t = self.target.data
        if self.every_target_counts:  # (the common case: no mask, no weights of ones)
            valid, safe = None, t
        else:
            valid = t != self.ignore_index
            # ignored targets read class 0, then are masked; so do out-of-range ones (which
            # F._check_class_indices has reported already)
            safe = np.where(valid & (t >= 0) & (t < C), t, 0)
        w = None if self.weight is None else self.weight.data
        eps = self.label_smoothing
        if w is None:
            # (N,): 1 where counted, 0 where ignored; None when every target counts
            w_t = None if valid is None else valid.astype(x.dtype)
            w_sum = float(C)
        else:
            w_t = w[safe] if valid is None else w[safe] * valid
            w_sum = float(w.sum()) if eps > 0 else 0.0  # (only smoothing reads it)
        self.valid, self.safe, self.w_t, self.w_sum = valid, safe, w_t, w_sum
        self.exps = exps = np.empty((N, C), dtype=x.dtype)  # exp(x - max), kept for the backward
        if N * C <= ROW_CHUNK:
            # NOTE: a batch that is one chunk (a classifier's few classes) runs here, with no
            # closure, views or thread machinery (they would cost more than the work); its row
            # sums are a product with ones: BLAS's GEMV (on its threads) beats NumPy's
            # reduction along short rows ((128, 10): 0.9 against 2.6 us); chunks on the
            # kernel threads run BLAS on one thread, where it does not
            self.s, loss = self._loss_rows(x, exps, None, None, safe, w_t, valid,
                                           _ones(x.dtype, C))
        else:
            self.s = s = np.empty(N, dtype=x.dtype)
            loss = np.empty(N, dtype=x.dtype)

            def chunk(rows):  # cache-sized pieces, on several threads: see kernels/_numpy.py
                self._loss_rows(x[rows], exps[rows], s[rows], loss[rows], safe[rows],
                                _rows_of(w_t, rows), _rows_of(valid, rows), None)

            _blas.run_quiet(chunk, row_chunks(N, C, ROW_CHUNK))
        return self._reduce(loss, w_t)

    def _loss_rows(self, x, e, s, loss, safe, w_t, valid, ones):
        """The losses of some rows (x: their logits; e, safe, w_t, valid: their exponentials,
        picks, counted weights and mask) into ``loss``, their row sums of exponentials into
        ``s`` (each None: made here); returns (s, loss). ``ones``: a vector to sum the rows
        with BLAS, or None for NumPy's reduction."""
        unshifted_max, underflow = _limits(x.dtype, x.shape[1])
        # (a NaN or infinite logit fails the comparison: shifted)
        small = x.size > 0 and np.maximum.reduce(x, axis=None) < unshifted_max
        picked, smooth_sum, s = self._exps(x, e, s, safe, ones, not small)
        if small and np.minimum.reduce(s) < underflow:
            picked, smooth_sum, s = self._exps(x, e, s, safe, ones, True)
        log_s = np.log(s)
        # lse - x_t = log s - (x_t - shift), the shift 0 or the row's max
        part = np.subtract(log_s, picked, out=loss)
        if w_t is not None:
            part *= w_t
        eps = self.label_smoothing
        if eps > 0:
            part *= 1 - eps
            smooth = log_s * self.w_sum - smooth_sum  # W lse - sum w x, both shifted
            smooth *= eps / x.shape[1]
            if valid is not None:
                smooth *= valid
            part += smooth
        return s, part

    def _exps(self, x, e, s, safe, ones, shift):
        """Exponentials of some rows' logits into e, their row sums into s (None: made here);
        returns (x_nt - shift_n, sum_c w_c (x_nc - shift_n) or None, s): what the loss needs."""
        if shift:  # NOTE: max-shift: exp never overflows (logits of 1e4 give finite losses)
            np.subtract(x, np.maximum.reduce(x, axis=1, keepdims=True), out=e)
            x = e
        picked = x[_arange(e.shape[0]), safe]
        smooth_sum = None
        if self.label_smoothing > 0:  # sum_c w_c x_nc (all weights one without class weights)
            weights = ones if self.weight is None else self.weight.data
            smooth_sum = x.sum(axis=1) if weights is None else x @ weights
        np.exp(x, out=e)
        if ones is None:  # (not np.sum: its wrapper outweighs this sum)
            s = np.add.reduce(e, axis=1, out=s)
        else:
            s = np.matmul(e, ones, out=s)
        return picked, smooth_sum, s

    def _backward_numpy(self, gy):
        N, C = self.exps.shape
        valid, w_t = self.valid, self.w_t  # (None: every target counts, with weight one)
        k = gy  # (N,) for 'none', else a scalar
        if self.reduction == "mean":
            if self.denom:
                k = k / self.denom
            elif valid is None or valid.any():  # counted targets whose weights sum to 0 (or
                with np.errstate(invalid="ignore", divide="ignore"):  # none): 0/0, as PyTorch
                    k = k / self.denom
            else:  # every target ignored: zero gradients
                k = np.zeros_like(k)
        if valid is not None:
            k = k * valid  # (N,): 0 where ignored
        eps = self.label_smoothing
        # row scale of p = exps / s: k ((1 - eps) w_t + eps W / C) / s
        if w_t is None:  # one coefficient for every row: (1 - eps) + eps C / C
            if eps > 0:
                scale = np.divide(k * ((1 - eps) + eps * self.w_sum / C), self.s)
            else:  # (the coefficient is 1: k itself, one array op fewer)
                scale = np.divide(k, self.s)
        else:
            scale = w_t * (1 - eps)
            if eps > 0:
                scale = scale + (eps * self.w_sum / C if valid is None else
                                 (eps * self.w_sum / C) * valid)
            scale *= k
            scale /= self.s
        ks = k * (eps / C) if eps > 0 else None  # (N,) or, when every target counts, 0-d
        # (into the logits' dtype: with a mask and smoothing the scale is float64)
        gx = np.empty_like(self.exps)
        if N * C <= ROW_CHUNK:  # one chunk, called directly (see _forward_numpy)
            self._grad_rows(self.exps, scale, ks, gx)
        else:
            def chunk(rows):
                self._grad_rows(self.exps[rows], scale[rows],
                                ks if ks is None or ks.ndim == 0 else ks[rows], gx[rows])

            _blas.run_quiet(chunk, row_chunks(N, C, ROW_CHUNK))
        if w_t is None:
            picked = k * (1 - eps) if eps > 0 else k  # (eps 0: k itself, one array op fewer)
        else:
            picked = k * w_t * (1 - eps)
        # NOTE: the targets' entries by their flat index (gx is contiguous): one index array
        # instead of two ((128, 10): 1.3 against 2.5 us)
        gx.reshape(-1)[_row_starts(N, C) + self.safe] -= picked
        return gx

    def _grad_rows(self, exps, scale, ks, out):
        """Some rows of the gradient into ``out``, less the targets' picks: exps scaled by each
        row's ``scale``, less ``ks`` (eps k / C: a row's or every row's) times the class
        weights with smoothing."""
        np.multiply(exps, scale[:, None], out=out)
        if ks is not None:
            k_rows = ks if ks.ndim == 0 else ks[:, None]
            out -= k_rows if self.weight is None else k_rows * self.weight.data

    # ---------------------------------------------------------------- CUDA
    def _forward_cuda(self, x):
        """One launch: the losses, log-sum-exps and counted weights of every row, the summed
        class weights (for smoothing), and a flag for targets out of range; then the
        reduction (a sum; for 'mean' two sums and a division). No host synchronisation."""
        xp = self.xp
        N, C = x.shape
        dt = x.dtype
        dev = x.device.id
        t = self.target.data
        w = None if self.weight is None else self.weight.data
        x = xp.ascontiguousarray(x)
        fwd = _cuda.kernel("softmax_cross_entropy", CUDA_KERNELS, "softmax_xent_fwd", dt, dev)
        target = xp.ascontiguousarray(t, dtype=np.int64)
        weight = x if w is None else xp.ascontiguousarray(w, dtype=dt)  # (x: never read)
        loss, lse, w_t = (xp.empty(N, dtype=dt) for _ in range(3))
        w_total = xp.empty(1, dtype=dt)
        bad = xp.zeros(1, dtype=np.uint8)
        block = _cuda.rows_block(C, 256)
        eps = _cuda.scalar(dt, self.label_smoothing)
        fwd((max(N, 1),), (block,), (x, target, np.int64(self.ignore_index), weight,
                                      np.int32(w is not None), loss, lse, w_t, w_total, bad,
                                      np.int32(N), np.int32(C), eps))
        ignore_index = self.ignore_index  # (the node's state may be freed before the check)
        backend.defer_check(bad.view(np.bool_).reshape(()),
                            lambda: _out_of_range(t, C, ignore_index))
        self.saved_cuda = (x, lse, target, weight, w is not None, w_total)
        return self._reduce(loss, w_t)

    def _backward_cuda(self, gy):
        """One launch: every row's scale (the upstream gradient, divided by the summed weights
        for 'mean', 0 where ignored) is worked out in the kernel."""
        xp = self.xp
        x, lse, target, weight, has_weight, w_total = self.saved_cuda
        N, C = x.shape
        dt = x.dtype
        bwd = _cuda.kernel("softmax_cross_entropy", CUDA_KERNELS, "softmax_xent_bwd", dt,
                           x.device.id)
        gx = xp.empty_like(x)
        gy = xp.ascontiguousarray(gy, dtype=dt).reshape(-1)  # (N,) for 'none', else (1,)
        mean = self.reduction == "mean"
        denom = self.denom.reshape(1) if mean else gy
        grid, block = _cuda.grid_1d(N * C, sm_count=_cuda.sm_count(x.device.id))
        bwd(grid, block, (x, lse, target, np.int64(self.ignore_index), weight,
                          np.int32(has_weight), w_total, gy,
                          np.int32(self.reduction == "none"),  # gy's stride: (N,) or one value
                          denom, np.int32(mean), gx, np.int32(N), np.int32(C),
                          _cuda.scalar(dt, self.label_smoothing)))
        return gx


def _out_of_range(t, n_classes: int, ignore_index: int) -> IndexError:
    """F.cross_entropy's error for a class index out of range (built at the synchronisation
    that reports it)."""
    return references.class_index_error(t, n_classes, ignore_index, "cross_entropy")


_ARANGE: dict = {}  # n -> a read-only np.arange(n): the row index of each target's pick
_ROW_STARTS: dict = {}  # (N, C) -> a read-only np.arange(N) * C: each row's flat index
_ONES: dict = {}  # (dtype character, C) -> a read-only np.ones(C): the one-chunk row sums


def _arange(n: int) -> np.ndarray:
    rows = _ARANGE.get(n)
    return _keep(_ARANGE, n, np.arange(n)) if rows is None else rows


def _row_starts(N: int, C: int) -> np.ndarray:
    starts = _ROW_STARTS.get((N, C))
    return _keep(_ROW_STARTS, (N, C), np.arange(N) * C) if starts is None else starts


def _ones(dtype, C: int) -> np.ndarray:
    key = (dtype.char, C)
    ones = _ONES.get(key)
    return _keep(_ONES, key, np.ones(C, dtype=dtype)) if ones is None else ones


def _keep(cache: dict, key, array: np.ndarray) -> np.ndarray:
    """``array``, made read-only and kept in ``cache`` under ``key``."""
    if len(cache) > 64:  # (batch sizes and class counts seen: a few; never an unbounded cache)
        cache.clear()
    array.flags.writeable = False
    cache[key] = array
    return array


def _rows_of(array, rows):
    """A chunk's rows of an optional (N,) array (None stays None)."""
    return None if array is None else array[rows]


_LIMITS: dict = {}  # (dtype character, C) -> _limits(dtype, C)


def _limits(dtype, C: int) -> tuple:
    """``(unshifted_max, underflow)`` for logits of ``dtype`` over ``C`` classes: below
    ``unshifted_max`` exp(x) and a row sum of C of them stay finite (no shift needed); a row
    sum under ``underflow`` came from exponentials that underflowed (redo it shifted)."""
    key = (dtype.char, C)
    limits = _LIMITS.get(key)
    if limits is None:
        finfo = np.finfo(dtype)
        limits = _LIMITS[key] = (float(np.log(finfo.max)) - float(np.log(max(C, 1))) - 1.0,
                                 float(np.sqrt(finfo.tiny)))
    return limits


def supported(input: Tensor, target: Tensor, weight) -> bool:
    """The fused kernel's domain: (N, C) logits, (N,) integer targets, constant weights."""
    return (input.ndim == 2 and target.ndim == 1 and target.dtype.kind in "iu"
            and (weight is None or not weight.requires_grad))


def apply(input: Tensor, target: Tensor, weight, ignore_index: int, reduction: str,
          label_smoothing: float, every_target_counts: bool = False) -> Tensor:
    """Cross-entropy with the arguments of ``references.cross_entropy``: the fused kernel in
    its domain (:func:`supported`), the reference outside it. ``every_target_counts``: the
    caller checked (on the CPU) that every target is a class index in range and none is
    ``ignore_index``, so the kernel makes no mask."""
    if not supported(input, target, weight):
        return references.cross_entropy(input, target, weight, ignore_index, reduction,
                                        label_smoothing)
    return SoftmaxCrossEntropyFn.apply(input, target=target, weight=weight,
                                       ignore_index=ignore_index, reduction=reduction,
                                       label_smoothing=float(label_smoothing),
                                       every_target_counts=bool(every_target_counts))
