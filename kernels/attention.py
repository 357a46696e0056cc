"""Fused scaled dot-product attention, forward and backward, with causal and padding masks.

What is fused: :func:`minigrad.references.scaled_dot_product_attention` (the reference), i.e.
the softmax(q k^T * scale + mask) @ v of ``F.scaled_dot_product_attention`` and of
``MultiheadAttention`` (when it does not return the weights, and without dropout)::

    S = (q * scale) @ k^T + M         M: 0 / -inf for bool masks (True = may attend), or added
    P = softmax(S)                    a row with every key masked gets P = 0 (PyTorch 2.13)
    out = P @ v
    dP = dout @ v^T;   dS = P * (dP - rowsum(dP * P))
    dq = dS @ k * scale;   dk = dS^T @ (q * scale);   dv = P^T @ dout

NumPy: one Function keeps P (transposed: (..., S, L)) and q * scale (q itself under masks of
0 / -inf, whose scale then goes to the scores and dS); the forward is two batched GEMMs and an
in-place softmax with the mask added as 0 / -inf (add, max, subtract, exp, sum, divide; where
a block's scores are small the exponentials are unshifted: no max per query, no subtract), the
backward four batched GEMMs and three passes over dP. Both walk the batch and heads in
cache-sized groups (``kernels/_numpy.py``), instead of the composite's dozen whole-array ops
each way. ``PackedAttentionFn`` does the same on MultiheadAttention's packed (B, L, 3E)
projection with no copies for the head split and merge. Under a causal (or any 2-D) mask the
query rows go in blocks of 128, each computing only the key range it may attend
(:func:`_row_blocks`): the flash kernels' skipping of masked tiles, on the CPU.

CUDA (``attention.cu``): a tiled online-softmax (flash-attention style) kernel that never
stores the (L, S) matrix in global memory: the forward keeps only the output and one
log-sum-exp per query row; the backward recomputes P tile by tile: first a kernel for dQ,
which sums each row's rowsum(dP * P) in a pass of its own and keeps it, then one for dK and dV
that reads it. One thread per row; the warp reads the staged tile rows as broadcasts, 16 bytes
per load (rows padded to whole vectors, :func:`padded_dim`), so a load feeds 4 float32
multiply-adds instead of one.

Fallback rule (:func:`apply`): a floating mask that requires a gradient, or (CUDA) a head
dimension above 128, runs the reference. Dropout on the weights is not fused:
``F.scaled_dot_product_attention`` runs the composite when ``dropout_p > 0``. (Timings:
benchmarks/results/kernel_notes.md.)
"""

from __future__ import annotations

import math

import numpy as np

from minigrad import references
from minigrad.fused import FusedFunction
from minigrad.tensor import Tensor

from . import _blas, _cuda
from ._numpy import ROW_CHUNK, num_threads, row_chunks

CUDA_KERNELS = ("flash_attn_fwd", "flash_attn_bwd_dq", "flash_attn_bwd_dkdv")
# the kernels keep a row of the head dim in arrays of DMAX entries (a template argument)
CUDA_VARIANTS = {"flash_attn_fwd": (64, 128), "flash_attn_bwd_dkdv": (64, 128),
                 "flash_attn_bwd_dq": (64, 128)}
MAX_HEAD_DIM_CUDA = 128


class AttentionFn(FusedFunction, kernel="attention"):
    """(q, k, v) -> softmax(q k^T * scale + mask) @ v; see the module docstring."""

    mask: Tensor | None  # forward parameters: sdpa's attn_mask (bool: True = may attend),
    is_causal: bool
    scale: float

    def reference(self, q, k, v):
        return references.scaled_dot_product_attention(q, k, v, self.mask, self.is_causal,
                                                       self.scale)

    # ---------------------------------------------------------------- NumPy
    def _additive_mask(self, L, S, dtype):
        """The mask as 0 / -inf (or the float mask itself), to add to the scores; or None."""
        if self.is_causal:
            # query i attends keys 0..i (top-left aligned, as PyTorch)
            return np.where(np.tri(L, S, dtype=bool), dtype.type(0), dtype.type(-np.inf))
        if self.mask is None:
            return None
        m = self.mask.data
        if m.dtype == np.bool_:  # True = may attend; forbidden keys get exp(-inf) = 0
            return np.where(m, dtype.type(0), dtype.type(-np.inf))
        return m

    def _forward_numpy(self, q, k, v):
        L, E, S, Ev = q.shape[-2], q.shape[-1], k.shape[-2], v.shape[-1]
        bias = self._additive_mask(L, S, q.dtype)
        batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2],
                                    () if bias is None else bias.shape[:-2])
        operands = [(q, L, E), (k, S, E), (v, S, Ev)]
        if bias is not None and bias.ndim > 2:
            operands.append((bias, L, S))
        fold = _fold4(batch, operands)
        q4, k4, v4 = fold[:3]
        if bias is not None and bias.ndim > 2:
            bias = fold[3]
        out = np.empty(q4.shape[:2] + (L, Ev), dtype=q.dtype)
        self._attend(q4, k4, v4, bias, out)
        self._batch = batch
        return out.reshape(batch + (L, Ev))

    def _attend(self, q4, k4, v4, bias, out) -> None:
        """The NumPy forward on (B, H, T, D) arrays of any strides (BLAS reads them through
        their strides: a head split of a (B, T, H, D) projection is not copied), writing
        ``out`` (B, H, L, Ev) (a view into a caller's buffer is fine)."""
        nb, nh, L, E = q4.shape
        S = k4.shape[-2]
        dt = q4.dtype
        # NOTE: scale q (L*E) rather than the scores (L*S), as the reference does; but where
        # the mask adds only 0 / -inf, softmax(scale (q k^T + M)) is the same function, and
        # scaling the scores in their cache-sized block costs less than a copy of strided q
        # (the packed heads), and lets the backward read q itself
        self.fold_scale = fold = self.scale > 0 and _zero_or_minus_inf(bias)
        qs = q4 if fold else np.multiply(q4, dt.type(self.scale), dtype=dt)
        scale = dt.type(self.scale)
        blocks = _row_blocks(bias, L, S)
        # NOTE: the probabilities are kept transposed, (keys, queries) per head: the softmax's
        # max and sum then run across rows (NumPy's vectorised loop), not along each row of
        # 128-ish values (about 3x slower for the max), and two of the backward's four GEMMs
        # read them untransposed
        probs = [np.empty((nb, nh, ke - ks, r1 - r0), dtype=dt)
                 for r0, r1, ks, ke, _ in blocks]
        masks = [None if b is None else
                 np.ascontiguousarray(b.T) if b.ndim == 2 else np.swapaxes(b, -1, -2)
                 for *_, b in blocks]
        finfo = np.finfo(dt)
        # scaled scores below this give exponentials whose sums over S keys stay finite
        unshifted_max = float(np.log(finfo.max)) - float(np.log(max(S, 1))) - 1.0
        underflow = float(np.sqrt(finfo.tiny))  # a sum under this lost its exponentials
        # queries of a block that may attend no key (2-D masks): their sums are 0 by design
        dead = [None if bt is None or bt.ndim != 2 else np.all(bt == -np.inf, axis=0)
                for bt in masks]
        def attend(part):
            for (r0, r1, ks, ke, _), bt, pt, no_key in zip(blocks, masks, probs, dead):
                if ke == ks:  # no query of the block may attend anything: zeros (as PyTorch)
                    out[part, :, r0:r1] = 0
                    continue
                sc = pt[part]
                operands = (k4[part, :, ks:ke], qs[part, :, r0:r1],
                            bt if bt is None or bt.ndim == 2 else bt[part])
                _scores_into(sc, *operands)
                # NOTE: where every scaled score of the chunk is small, the exponentials are
                # taken unshifted (one reduction instead of a max per query and a subtract);
                # shifted by each query's max otherwise (a NaN fails the test too), under
                # masks with batch dims, and where a query's sum underflowed
                shifted = bt is not None and bt.ndim != 2
                if not shifted:
                    top = np.maximum.reduce(sc, axis=None)
                    shifted = not (top * (scale if fold else 1) < unshifted_max)
                if not shifted:
                    if fold:
                        sc *= scale
                    np.exp(sc, out=sc)
                    total = np.add.reduce(sc, axis=-2, keepdims=True)
                    low = total < underflow
                    if no_key is not None:
                        low &= ~no_key
                    if low.any():
                        _scores_into(sc, *operands)
                        shifted = True
                if shifted:
                    col_max = np.maximum.reduce(sc, axis=-2, keepdims=True)  # no overflow
                    if bt is not None:
                        # NOTE: a query whose keys are all masked has max -inf: shift it by 0
                        # instead; its exps are then all 0, and dividing by 1 keeps them 0
                        col_max[col_max == -np.inf] = 0
                    sc -= col_max
                    if fold:
                        sc *= scale
                    np.exp(sc, out=sc)
                    total = np.add.reduce(sc, axis=-2, keepdims=True)
                if bt is not None:
                    total[total == 0] = 1
                sc /= total
                np.matmul(np.swapaxes(sc, -1, -2), v4[part, :, ks:ke], out=out[part, :, r0:r1])

        _run_parts(attend, nb, nh * L * S)
        self.saved = (qs, k4, v4, blocks, probs)

    def _backward_numpy(self, gy):
        qs, k4, v4 = self.saved[:3]
        nb, nh, L, E = qs.shape
        S, Ev = k4.shape[-2], v4.shape[-1]
        go = np.broadcast_to(gy, self._batch + (L, Ev)).reshape(nb, nh, L, Ev)
        gq = np.empty((nb, nh, L, E), dtype=qs.dtype)
        gk = np.empty((nb, nh, S, E), dtype=qs.dtype)
        gv = np.empty((nb, nh, S, Ev), dtype=qs.dtype)
        self._attend_backward(go, gq, gk, gv)
        batch = self._batch
        return (gq.reshape(batch + (L, E)), gk.reshape(batch + (S, E)),
                gv.reshape(batch + (S, Ev)))

    def _attend_backward(self, go, gq, gk, gv) -> None:
        """The NumPy backward on (B, H, T, D) arrays of any strides: writes gq, gk, gv."""
        qs, k4, v4, blocks, probs = self.saved
        nb, nh, L, S = qs.shape[0], qs.shape[1], qs.shape[2], k4.shape[2]
        ks0, ke0 = blocks[0][2:4]  # the widest block writes dk, dv; the others add to them
        scale = qs.dtype.type(self.scale)
        def attend_backward(part):
            for g in (gk, gv):  # keys no query attends: zero gradients
                g[part, :, :ks0] = 0
                g[part, :, ke0:] = 0
            for i, ((r0, r1, ks, ke, _), pb) in enumerate(zip(blocks, probs)):
                if ke == ks:
                    gq[part, :, r0:r1] = 0
                    continue
                pt, dout = pb[part], go[part, :, r0:r1]  # P^T (keys, queries)
                _matmul_into(gv[part, :, ks:ke], pt, dout, i > 0)  # dv = P^T dout
                ds = np.matmul(v4[part, :, ks:ke], np.swapaxes(dout, -1, -2))  # dP^T = v dout^T
                # NOTE: each query's sum(dP * P) from these very dP values (not as dout . out,
                # equal only in exact arithmetic): a saturated softmax (P one-hot) gives dS = 0
                ds -= np.einsum("...kr,...kr->...r", ds, pt)[..., None, :]  # (no product array)
                ds *= pt  # dS^T = P^T (dP^T - colsum(dP^T P^T))
                if self.fold_scale:  # the scores' scale, for dq and dk at once
                    ds *= scale
                np.matmul(np.swapaxes(ds, -1, -2), k4[part, :, ks:ke], out=gq[part, :, r0:r1])
                _matmul_into(gk[part, :, ks:ke], ds, qs[part, :, r0:r1], i > 0)

        _run_parts(attend_backward, nb, nh * L * S)
        if not self.fold_scale:
            gq *= scale

    # ---------------------------------------------------------------- CUDA
    def _mask_cuda(self, B, H, L, S, dtype):
        """(kind, mask viewed as (B, H, L, S), its element strides) for the kernels: kind 0
        none, 1 causal, 2 bool (uint8, 1 = may attend), 3 additive (the scores' dtype)."""
        xp = self.xp
        if self.mask is None or self.is_causal:
            return (1 if self.is_causal else 0), xp.zeros(1, dtype=np.uint8), (0, 0, 0, 0)
        m = self.mask.data
        kind = 2 if m.dtype == np.bool_ else 3
        m = m.astype(np.uint8 if kind == 2 else dtype)
        # broadcasting gives stride 0 to repeated dims: no copy for (L, S) or (B, 1, 1, S)
        m4 = xp.broadcast_to(m, self._batch + (L, S)).reshape(B, H, L, S)
        return kind, m4, tuple(st // m4.itemsize for st in m4.strides)

    def _geometry(self, q, k, v):
        """Fold the batch dims into (B, H) and make q, k, v contiguous (BH, T, E)."""
        xp = self.xp
        # a mask may carry batch dims that q, k, v broadcast over (as in the NumPy branch)
        mask_batch = () if self.mask is None or self.is_causal else self.mask.shape[:-2]
        batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2], mask_batch)
        self._batch = batch
        L, E = q.shape[-2:]
        S, Ev = k.shape[-2], v.shape[-1]
        lead = (1, 1) + tuple(batch)
        B, H = int(np.prod(lead[:-1])), int(lead[-1])

        def fold(t, T, D):
            return xp.ascontiguousarray(xp.broadcast_to(t, batch + (T, D))).reshape(B * H, T, D)

        return fold(q, L, E), fold(k, S, E), fold(v, S, Ev), B, H, L, S, E, Ev

    def _kernel(self, which, dt, dev, E, Ev):
        return _cuda.kernel("attention", CUDA_KERNELS, which, dt, dev,
                            head_dim_variant(E, Ev), CUDA_VARIANTS)

    def _forward_cuda(self, q, k, v):
        xp = self.xp
        qf, kf, vf, B, H, L, S, E, Ev = self._geometry(q, k, v)
        dt = qf.dtype
        fwd = self._kernel("flash_attn_fwd", dt, qf.device.id, E, Ev)
        out = xp.empty((B * H, L, Ev), dtype=dt)
        lse = xp.empty((B * H, L), dtype=dt)
        kind, m4, ms = self._mask_cuda(B, H, L, S, dt)
        grid, block, smem, tile = flash_geometry(L, E, Ev, B * H, dt.itemsize)
        fwd(grid, block, (qf, kf, vf, out, lse, m4, np.int64(ms[0]), np.int64(ms[1]),
                          np.int64(ms[2]), np.int64(ms[3]), np.int32(kind), np.int32(H),
                          np.int32(L), np.int32(S), np.int32(E), np.int32(Ev),
                          _cuda.scalar(dt, self.scale), np.int32(tile)), shared_mem=smem)
        self.saved = (qf, kf, vf, out, lse, (kind, m4, ms), (B, H, L, S, E, Ev))
        return out.reshape(self._batch + (L, Ev))

    def _backward_cuda(self, gy):
        xp = self.xp
        qf, kf, vf, out, lse, (kind, m4, ms), (B, H, L, S, E, Ev) = self.saved
        dt = qf.dtype
        dev = qf.device.id
        go = xp.ascontiguousarray(xp.broadcast_to(gy, self._batch + (L, Ev))).reshape(
            B * H, L, Ev)
        delta = xp.empty((B * H, L), dtype=dt)  # rowsum(dP * P), written by the dq kernel
        gq, gk, gv = xp.empty_like(qf), xp.empty_like(kf), xp.empty_like(vf)
        mask_args = (m4, np.int64(ms[0]), np.int64(ms[1]), np.int64(ms[2]), np.int64(ms[3]),
                     np.int32(kind))
        dims = (np.int32(H), np.int32(L), np.int32(S), np.int32(E), np.int32(Ev),
                _cuda.scalar(dt, self.scale))
        grid, block, smem, tile = flash_geometry(L, E, Ev, B * H, dt.itemsize)
        self._kernel("flash_attn_bwd_dq", dt, dev, E, Ev)(
            grid, block, (qf, kf, vf, go, lse, delta, gq) + mask_args + dims +
            (np.int32(tile),), shared_mem=smem)
        grid, block, smem, tile = flash_geometry(S, E, Ev, B * H, dt.itemsize, extra=2)
        self._kernel("flash_attn_bwd_dkdv", dt, dev, E, Ev)(
            grid, block, (qf, kf, vf, go, lse, delta, gk, gv) + mask_args + dims +
            (np.int32(tile),), shared_mem=smem)
        return (gq.reshape(self._batch + (L, E)), gk.reshape(self._batch + (S, E)),
                gv.reshape(self._batch + (S, Ev)))


class PackedAttentionFn(AttentionFn, kernel=None):
    """Self-attention on ``MultiheadAttention``'s packed projection: ``qkv`` (B, L, 3E), the
    q, k and v of every head side by side, -> the heads' outputs side by side (B, L, E).

    The same maths as :class:`AttentionFn`, as one node that takes the head split and merge
    with it: on the CPU the heads are strided views of ``qkv`` and of the output, which BLAS
    reads and writes through their strides, and the gradient is written straight into one
    (B, L, 3E) array; the composite instead copies q, k, v out of ``qkv`` and the output back
    into (B, L, E), and joins the three gradients. (CUDA: the heads are made contiguous for
    the flash kernels.)
    """

    num_heads: int  # forward parameter (with AttentionFn's)

    def reference(self, qkv):
        return _packed_reference(qkv, self.num_heads, self.mask, self.is_causal, self.scale)

    def _heads(self, qkv):
        """The q, k, v views (B, h, L, d) of a (B, L, 3E) array."""
        B, L, E3 = qkv.shape
        h = self.num_heads
        x = qkv.reshape(B, L, 3, h, E3 // (3 * h))
        return [x[:, :, i].transpose(0, 2, 1, 3) for i in range(3)]

    def _forward_numpy(self, qkv):
        q, k, v = self._heads(qkv)
        B, h, L, d = q.shape
        bias = self._additive_mask(L, L, q.dtype)
        if bias is not None and bias.ndim > 2:  # (B, 1, 1, L) padding, (B, h, L, L)
            bias = np.broadcast_to(bias, (B, h, L, L))
        out = np.empty((B, L, h * d), dtype=q.dtype)
        self._attend(q, k, v, bias, out.reshape(B, L, h, d).transpose(0, 2, 1, 3))
        return out

    def _backward_numpy(self, gy):
        B, L, E = gy.shape
        h = self.num_heads
        go = gy.reshape(B, L, h, E // h).transpose(0, 2, 1, 3)
        g = np.empty((B, L, 3 * E), dtype=gy.dtype)
        self._attend_backward(go, *self._heads(g))
        return g

    def _forward_cuda(self, qkv):
        out = super()._forward_cuda(*self._heads(qkv))  # (B, h, L, d)
        B, h, L, d = out.shape
        return out.transpose(0, 2, 1, 3).reshape(B, L, h * d)

    def _backward_cuda(self, gy):
        B, L, E = gy.shape
        h = self.num_heads
        grads = super()._backward_cuda(gy.reshape(B, L, h, E // h).transpose(0, 2, 1, 3))
        return self.xp.concatenate([g.transpose(0, 2, 1, 3).reshape(B, L, E) for g in grads],
                                   axis=-1)


def _packed_reference(qkv: Tensor, num_heads: int, mask, is_causal: bool, scale: float):
    """The composite of :class:`PackedAttentionFn`: split, attend, merge the heads."""
    B, L, E3 = qkv.shape
    q, k, v = (t.reshape(B, L, num_heads, E3 // (3 * num_heads)).transpose(1, 2)
               for t in qkv.chunk(3, -1))
    out = references.scaled_dot_product_attention(q, k, v, mask, is_causal, scale)
    return out.transpose(1, 2).reshape(B, L, E3 // 3)


# ---------------------------------------------------------------------------- geometry

FLASH_ROWS = 64  # query (or key) rows per block: one thread per row
FLASH_MAX_TILE = 64  # rows of the other operands staged in shared memory per iteration
FLASH_SMEM_LIMIT = 48 * 1024  # dynamic shared memory a launch may use without opting in


def _fold4(batch: tuple, operands) -> list:
    """Each ``(array, T, D)`` broadcast to ``batch + (T, D)`` and viewed as (B, H, T, D):
    every batch dim merged into B (H = 1) when that needs no copy for any operand (the NumPy
    kernel then walks single matrices in cache-sized chunks); otherwise B = the leading batch
    dims, H = the last (a head split of a (B, T, H, D) projection, or keys broadcast over the
    heads, stays a view)."""
    nh = batch[-1] if batch else 1
    nb = math.prod(batch[:-1])
    arrays = [(np.broadcast_to(a, batch + (T, D)), T, D) for a, T, D in operands]
    if all(_merges_without_copy(a.shape[:-2], a.strides[:-2]) for a, _, _ in arrays):
        return [a.reshape(nb * nh, 1, T, D) for a, T, D in arrays]
    return [a.reshape(nb, nh, T, D) for a, T, D in arrays]


def _merges_without_copy(shape: tuple, strides: tuple) -> bool:
    """Whether dims of these sizes and strides can be viewed as one (sizes of 1 aside).

    Example:
        >>> _merges_without_copy((2, 3), (12, 4)), _merges_without_copy((2, 3), (4, 8))
        (True, False)
    """
    dims = [(n, st) for n, st in zip(shape, strides) if n != 1]
    return all(st0 == st1 * n1 for (_, st0), (n1, st1) in zip(dims, dims[1:]))


def _scores_into(sc, k, q, bias_t) -> None:
    """``sc = k q^T (+ bias^T)``: a block's scores, transposed (keys, queries)."""
    np.matmul(k, np.swapaxes(q, -1, -2), out=sc)
    if bias_t is not None:
        sc += bias_t


def _zero_or_minus_inf(bias) -> bool:
    """Whether an additive mask (or None) holds only 0 and -inf (bool and causal masks do):
    one a scale can be taken out of. Masks with batch dims are not examined (False).

    Example:
        >>> _zero_or_minus_inf(np.array([[0.0, -np.inf]])), _zero_or_minus_inf(np.ones((1, 1)))
        (True, False)
    """
    if bias is None:
        return True
    if bias.ndim != 2:
        return False
    return bool(((bias == 0) | (bias == -np.inf)).all())


def _run_parts(fn, n: int, size: int) -> None:
    """``fn(part)`` for parts (slices) of a batch of ``n`` entries of ``size`` scores each:
    cache-sized parts one after the other; or, with two or more kernel threads
    (``MINIGRAD_NUM_THREADS``, set by ``mg.set_num_threads``) and an OpenBLAS whose workers
    can be stopped (:func:`kernels._blas.quiet`), larger parts spread over the threads with
    the BLAS on the calling thread only.

    Why: the products here are small (W4: 128 x 128 x 64 per head), and OpenBLAS runs them no
    faster on two threads than on one; with each Python thread making its own single-threaded
    products (NumPy releases the GIL in them and in the softmax's passes), batch entries run
    side by side on the cores. The threaded parts are 1 MB of scores (4 W4 batch entries)
    rather than 256 KB: with smaller ones the threads wait on each other for the GIL between
    their many short calls (W4 forward + backward alone, two threads: 11.4 ms in one thread,
    8.1 with 256 KB parts, 6.2-7.0 with 1 MB). Inside a training step this pays only with
    OpenBLAS's workers stopped: spinning after the step's last product they kept the second
    core, and the threaded parts took 14.4 ms per W4 step against 12.2 in one thread. Every
    part writes its own pieces of the outputs, so the numbers do not depend on the thread
    count.
    """
    if n >= 2 and num_threads() >= 2 and _blas.can_quiet():
        _blas.run_quiet(fn, row_chunks(n, size, ROW_CHUNK))
        return
    for part in row_chunks(n, size, 65536):  # cache-sized pieces: kernels/_numpy.py
        fn(part)


def _matmul_into(out, a, b, add: bool) -> None:
    """``out = a @ b``, or ``out += a @ b`` with ``add`` (a key range another block wrote)."""
    if add:
        out += np.matmul(a, b)
    else:
        np.matmul(a, b, out=out)


# query rows per block when a mask lets whole key ranges be skipped: smaller blocks skip more
# masked scores, but below 128 rows their GEMMs run slower than the FLOPs they save
BLOCK_ROWS = 128


def _row_blocks(bias, L: int, S: int, rows: int | None = None) -> list:
    """The query rows cut into blocks, each with the key range its queries may attend:
    ``[(r0, r1, ks, ke, mask of the block or None)]``, widest range first.

    Keys outside a block's range are masked (-inf) for every query of the block, so their
    probabilities are exactly 0 and skipping them changes no number (only the order of float
    sums): under a causal mask the score GEMMs, the softmax passes and the backward's GEMMs
    shrink to about half of the (L, S) matrix for long sequences (T = 512: 5/8 of it,
    T = 1024: 9/16; T <= 128 is one block). Only a 2-D mask (the same for every batch entry
    and head, as causal masks are) is examined; other masks, and a plan that would skip less
    than a fifth of the scores, give one block over everything. A block's mask is None when
    it masks nothing.

    Example:
        >>> causal = np.where(np.tri(4, 4, dtype=bool), 0.0, -np.inf)
        >>> [b[:4] for b in _row_blocks(causal, 4, 4, rows=2)]
        [(2, 4, 0, 4), (0, 2, 0, 2)]
    """
    rows = rows or BLOCK_ROWS
    whole = [(0, L, 0, S, bias)]
    if bias is None or bias.ndim != 2 or L <= rows:
        return whole
    bias = np.broadcast_to(bias, (L, S))
    allowed = bias != -np.inf
    blocks, kept = [], 0
    for r0 in range(0, L, rows):
        r1 = min(L, r0 + rows)
        cols = np.flatnonzero(allowed[r0:r1].any(axis=0))
        ks, ke = (int(cols[0]), int(cols[-1]) + 1) if cols.size else (0, 0)
        b = bias[r0:r1, ks:ke]
        blocks.append((r0, r1, ks, ke, b if b.any() else None))
        kept += (r1 - r0) * (ke - ks)
    if kept > 0.8 * L * S:
        return whole
    return sorted(blocks, key=lambda blk: blk[2] - blk[3])  # widest first (stable)


def head_dim_variant(E: int, Ev: int) -> int:
    """The DMAX template argument for head dims E, Ev (both <= 128).

    Example:
        >>> head_dim_variant(64, 64), head_dim_variant(8, 80)
        (64, 128)
    """
    return 64 if max(E, Ev) <= 64 else 128


def padded_dim(D: int, itemsize: int) -> int:
    """A head dim rounded up to whole 16-byte vectors: the length of a row in the kernels'
    shared memory (``padded<T>`` in attention.cu), so that every row starts 16-byte aligned.

    Example:
        >>> padded_dim(64, 4), padded_dim(5, 4), padded_dim(5, 8)
        (64, 8, 6)
    """
    per_vector = 16 // itemsize
    return -(-D // per_vector) * per_vector


def flash_geometry(rows: int, E: int, Ev: int, bh: int, itemsize: int = 4, extra: int = 0):
    """``(grid, block, shared bytes, tile)`` of a flash kernel: grid ``(bh, row blocks)``, a
    block of ``FLASH_ROWS`` threads, one per row; ``tile`` rows of the other operands (``Ep +
    Evp + extra`` values each, the head dims padded by :func:`padded_dim`) staged in shared
    memory, halved until under 48 KB.

    Example:
        >>> flash_geometry(128, 64, 64, 64)
        ((64, 2), (64,), 32768, 64)
        >>> flash_geometry(4096, 128, 128, 8, itemsize=8, extra=2)[2:]
        (33024, 16)
        >>> flash_geometry(70, 5, 7, 6)[2:]  # rows of 8 and 8 floats
        (4096, 64)
    """
    row = padded_dim(E, itemsize) + padded_dim(Ev, itemsize) + extra
    tile = FLASH_MAX_TILE
    while tile > 1 and tile * row * itemsize > FLASH_SMEM_LIMIT:
        tile //= 2
    grid = (bh, (rows + FLASH_ROWS - 1) // FLASH_ROWS)
    return grid, (FLASH_ROWS,), tile * row * itemsize, tile


# ---------------------------------------------------------------------------- entry point


def supported(query: Tensor, value: Tensor, attn_mask) -> bool:
    """The fused kernel's domain (see the module docstring's fallback rule)."""
    if attn_mask is not None and attn_mask.requires_grad:
        return False
    if type(query.data) is not np.ndarray and max(query.shape[-1], value.shape[-1]) > \
            MAX_HEAD_DIM_CUDA:
        return False
    return True


def apply(query: Tensor, key: Tensor, value: Tensor, attn_mask=None, is_causal: bool = False,
          scale=None) -> Tensor:
    """Attention with the arguments of ``references.scaled_dot_product_attention``: the fused
    kernel in its domain (:func:`supported`), the reference outside it."""
    if scale is None:
        scale = 1.0 / math.sqrt(query.shape[-1])
    if not supported(query, value, attn_mask):
        return references.scaled_dot_product_attention(query, key, value, attn_mask, is_causal,
                                                       scale)
    return AttentionFn.apply(query, key, value, mask=attn_mask, is_causal=is_causal,
                             scale=float(scale))


def apply_packed(qkv: Tensor, num_heads: int, attn_mask=None, is_causal: bool = False,
                 scale=None) -> Tensor:
    """Self-attention of ``MultiheadAttention`` on its packed projection ``qkv`` (B, L, 3E):
    returns the heads' outputs side by side, (B, L, E). ``attn_mask`` in sdpa's convention,
    broadcastable to (B, num_heads, L, L). The fused kernel in its domain (:func:`supported`),
    the composite (:func:`_packed_reference`) outside it.
    """
    head_dim = qkv.shape[-1] // (3 * num_heads)
    if scale is None:
        scale = 1.0 / math.sqrt(head_dim)
    if attn_mask is not None and attn_mask.requires_grad or (
            type(qkv.data) is not np.ndarray and head_dim > MAX_HEAD_DIM_CUDA):
        return _packed_reference(qkv, num_heads, attn_mask, is_causal, scale)
    return PackedAttentionFn.apply(qkv, mask=attn_mask, is_causal=is_causal, scale=float(scale),
                                   num_heads=num_heads)
