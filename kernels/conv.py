"""Fused 2-d convolution and transposed convolution: im2col, one matrix product per group, col2im.

What is fused: :func:`minigrad.references.conv2d` and :func:`minigrad.references.conv_transpose2d`
(the references pad, take one strided slice per kernel offset, stack them and multiply: a graph
of ``kh * kw + 4`` nodes whose backward builds ``kh * kw`` full-size gradients). Here each is one
node whose forward and backward are built from two array routines and GEMMs:

- ``im2col(x, pad)``: ``cols[c, i, j, n, oh, ow] = x[n, c, oh*sh + i*dh - ph, ow*sw + j*dw - pw]``
  (0 outside ``x``), a ``(C kh kw, N Ho Wo)`` matrix;
- ``col2im(cols, pad)``: its adjoint, ``x[n, c, h, w] = sum of cols[c, i, j, n, oh, ow]`` over
  ``h + ph = oh*sh + i*dh``, ``w + pw = ow*sw + j*dw``.

With ``W_g`` the weight of group g as a matrix::

    conv:        y_g = W_g (O/g, C/g kh kw) @ cols_g;   gW_g = gy_g @ cols_g^T;
                 gx = col2im(W_g^T @ gy_g);             gb = sum of gy over (N, H, W)
    transposed:  y = col2im(W_g^T (C_out/g kh kw, C_in/g) @ x_g);   gcols = im2col(gy);
                 gx_g = W_g @ gcols_g;                  gW_g = x_g @ gcols_g^T

The channel-major layout ``(C, kh, kw, N, Ho, Wo)`` makes every product one GEMM per group over
a batch of samples (``np.matmul`` on ``(g, ., .)`` stacks), and its copies read rows of ``x``.

NumPy: im2col is one copy of an ``as_strided`` view of the zero-padded input (no Python loop
over pixels); col2im is ``kh * kw`` strided slice adds into a zeroed frame (no ``np.add.at``:
within one kernel offset no two entries land on the same pixel). The batch goes through in
chunks of samples whose columns take at most ``COLUMN_CHUNK_BYTES`` (one GEMM per group and
chunk): the columns of a large batch never exist whole. A stride-1 conv whose output fills
most of its input's frame runs its forward and input gradient on the flattened channel-major
frame instead, where every tap is a shifted contiguous slice (no columns, no adds over short
rows): the forward one BLAS GEMM per tap accumulated in place, the input gradient one product
and a shifted add per tap (``_forward_shifted``, ``_input_grad_shifted``).
CUDA (``conv.cu``): one grid-stride kernel each for im2col (padding by bounds checks, no padded
copy) and col2im (one thread per output pixel gathers its sum: no atomics); the GEMMs are CuPy's
``matmul`` (cuBLAS), over the whole batch at once.

Saved for the backward: nothing but the inputs the graph holds anyway (as PyTorch's CPU
convolution); the weight gradient rebuilds the columns, the transposed conv's its channel-major
``x`` (one more copy each, against ``kh * kw`` times the input held from forward to backward).

Backward with ``create_graph=True`` differentiates the references (``FusedFunction``), so
double backward is exact.
"""

from __future__ import annotations

import numpy as np

from minigrad import references
from minigrad.fused import FusedFunction
from minigrad.tensor import Tensor

from . import _cuda
from ._numpy import NO_TRANS, ROW_MAJOR, blas_gemm

CUDA_KERNELS = ("im2col", "col2im")

# The most bytes of im2col columns a NumPy convolution makes at once (see _ConvBase._chunks).
# On W5's second conv (17.8 MB of columns) with 2 BLAS threads, 8 MiB chunks cost about as much
# as the whole batch at once and 4 MiB about 10% more (more GEMM calls, each a thread handoff);
# W5's step peak (tracemalloc): 46 MiB with 4 MiB chunks, 51 with 8, 62 with 16.
COLUMN_CHUNK_BYTES = 8 << 20
# Column matrices with at most this many rows (C/groups * kh * kw) are multiplied sample by
# sample, batch-major (see _ConvBase._batch_major). Measured on W5's shapes, one thread: 9 rows
# (1 channel) and 36 (4 channels) 2.5-3x faster than channel-major, 288 (32 channels) slower.
BATCH_MAJOR_MAX_ROWS = 64


class _ConvGeometry:
    """The sizes of one convolution, in the conv's own terms (for a transposed conv, its input
    is the conv's output): ``x (N, C, H, W)`` <-> ``cols (C, kh, kw, N, Ho, Wo)``."""

    def __init__(self, N, C, H, W, kh, kw, Ho, Wo, stride, dilation, pad):
        self.N, self.C, self.H, self.W = N, C, H, W
        self.kh, self.kw, self.Ho, self.Wo = kh, kw, Ho, Wo
        (self.sh, self.sw), (self.dh, self.dw), (self.ph, self.pw) = stride, dilation, pad

    def frame(self):
        """Rows and columns of the padded input the kernel windows reach (and past ``x``)."""
        return (max((self.Ho - 1) * self.sh + (self.kh - 1) * self.dh + 1, self.ph + self.H),
                max((self.Wo - 1) * self.sw + (self.kw - 1) * self.dw + 1, self.pw + self.W))

    def with_batch(self, n: int) -> "_ConvGeometry":
        """The same convolution on ``n`` of the samples."""
        part = object.__new__(_ConvGeometry)
        part.__dict__.update(self.__dict__)
        part.N = n
        return part

    def offset_slices(self, i, j):
        """The frame rows and columns that kernel offset (i, j) reads, as slices."""
        h0, w0 = i * self.dh, j * self.dw
        return (slice(h0, h0 + self.sh * (self.Ho - 1) + 1, self.sh),
                slice(w0, w0 + self.sw * (self.Wo - 1) + 1, self.sw))


# ---------------------------------------------------------------------------- NumPy


def _im2col_numpy(xp, x, g: _ConvGeometry, batch_major: bool = False):
    """``(C, kh, kw, N, Ho, Wo)`` windows of ``x (N, C, H, W)`` (``(N, C, kh, kw, Ho, Wo)``
    when ``batch_major``): one copy of a strided view."""
    return np.ascontiguousarray(_windows_numpy(x, g, batch_major))


def _windows_numpy(x, g: _ConvGeometry, batch_major: bool = False):
    """The read-only strided view :func:`_im2col_numpy` copies (of a zero-padded copy of
    ``x`` where the windows reach past it)."""
    Hf, Wf = g.frame()
    if g.ph or g.pw or Hf > g.H or Wf > g.W:
        framed = np.zeros((g.N, g.C, Hf, Wf), dtype=x.dtype)
        framed[:, :, g.ph:g.ph + g.H, g.pw:g.pw + g.W] = x
        x = framed
    sN, sC, sH, sW = x.strides
    shape = (g.C, g.kh, g.kw, g.N, g.Ho, g.Wo)
    strides = (sC, g.dh * sH, g.dw * sW, sN, g.sh * sH, g.sw * sW)
    if batch_major:  # the sample axis first
        order = (3, 0, 1, 2, 4, 5)
        shape, strides = tuple(shape[a] for a in order), tuple(strides[a] for a in order)
    return np.lib.stride_tricks.as_strided(x, shape=shape, strides=strides, writeable=False)


def _col2im_numpy(xp, cols, g: _ConvGeometry, batch_major: bool = False):
    """The adjoint of :func:`_im2col_numpy`: ``kh * kw`` strided slice adds into a frame laid
    out as ``cols`` (``(C, N, Hf, Wf)``, or ``(N, C, Hf, Wf)`` when ``batch_major``: every add
    reads ``cols`` in order), cropped to ``(N, C, H, W)``: a strided view of the frame, which the
    caller copies where it goes."""
    Hf, Wf = g.frame()
    if batch_major:
        frame = np.zeros((g.N, g.C, Hf, Wf), dtype=cols.dtype)
        for i in range(g.kh):
            for j in range(g.kw):
                rows, columns = g.offset_slices(i, j)
                frame[:, :, rows, columns] += cols[:, :, i, j]
        return frame[:, :, g.ph:g.ph + g.H, g.pw:g.pw + g.W]
    frame = np.zeros((g.C, g.N, Hf, Wf), dtype=cols.dtype)
    for i in range(g.kh):
        for j in range(g.kw):
            rows, columns = g.offset_slices(i, j)
            frame[:, :, rows, columns] += cols[:, i, j]
    return frame[:, :, g.ph:g.ph + g.H, g.pw:g.pw + g.W].transpose(1, 0, 2, 3)


# ---------------------------------------------------------------------------- CUDA


def _geometry_args(g: _ConvGeometry) -> tuple:
    return tuple(np.int32(v) for v in (g.N, g.C, g.H, g.W, g.kh, g.kw, g.sh, g.sw, g.dh, g.dw,
                                       g.ph, g.pw, g.Ho, g.Wo))


def _launch_cuda(xp, kernel: str, src, out_shape: tuple, g: _ConvGeometry):
    """Run ``conv.cu``'s ``kernel`` with one thread per entry of a new ``out_shape`` array,
    which it fills from ``src``."""
    src = xp.ascontiguousarray(src)
    out = xp.empty(out_shape, dtype=src.dtype)
    dev = src.device.id
    fn = _cuda.kernel("conv", CUDA_KERNELS, kernel, src.dtype, dev)
    grid, block = _cuda.grid_1d(out.size, sm_count=_cuda.sm_count(dev))
    fn(grid, block, (src, out, np.int64(out.size)) + _geometry_args(g))
    return out


def _im2col_cuda(xp, x, g: _ConvGeometry):
    """``conv.cu`` im2col: one thread per entry of ``cols``; padding by bounds checks."""
    return _launch_cuda(xp, "im2col", x, (g.C, g.kh, g.kw, g.N, g.Ho, g.Wo), g)


def _col2im_cuda(xp, cols, g: _ConvGeometry):
    """``conv.cu`` col2im: one thread per pixel of ``x``, summing the windows that cover it."""
    return _launch_cuda(xp, "col2im", cols, (g.N, g.C, g.H, g.W), g)


# ---------------------------------------------------------------------------- the Functions


def _channel_major(xp, a, groups: int):
    """``(N, C, H, W)`` -> ``(g, C/g, N H W)``: channels first, one matrix per group."""
    N, C, H, W = a.shape
    return xp.ascontiguousarray(a.transpose(1, 0, 2, 3)).reshape(groups, C // groups, N * H * W)


def _batch_major(xp, a, N: int, H: int, W: int):
    """``(g, C/g, N H W)`` -> ``(N, C, H, W)``, contiguous."""
    return xp.ascontiguousarray(a.reshape(a.shape[0] * a.shape[1], N, H, W).transpose(1, 0, 2, 3))


class _ConvBase(FusedFunction):
    """Shared by the two Functions: the device's im2col/col2im and the bias gradient."""

    stride = dilation = padding = (1, 1)  # forward parameters
    groups = 1

    def _chunks(self, g: _ConvGeometry, itemsize: int, extra: int = 0) -> list:
        """``(start, stop)`` slices of the batch: on NumPy as many samples at a time as keep the
        columns under ``COLUMN_CHUNK_BYTES`` (so that they need not exist whole: ``kh * kw``
        times the input; and each chunk's GEMM reads them back from cache); one chunk on a GPU
        (each would be a round of kernel launches). ``extra``: more elements per sample that
        exist beside the columns."""
        if self.xp is not np:
            return [(0, g.N)]
        per_sample = (g.C * g.kh * g.kw * g.Ho * g.Wo + extra) * itemsize
        step = max(1, COLUMN_CHUNK_BYTES // max(per_sample, 1))
        return [(n, min(n + step, g.N)) for n in range(0, g.N, step)]

    def _batch_major(self, g: _ConvGeometry) -> bool:
        """True for a NumPy conv whose column matrices have at most ``BATCH_MAJOR_MAX_ROWS``
        rows (a first layer: 1 channel x 3 x 3 = 9) and at least as many columns (output
        pixels): one small GEMM per sample, whose outputs (and input gradients) land in
        ``(N, C, H, W)`` order with no transposes."""
        rows = g.C // self.groups * g.kh * g.kw
        return self.xp is np and rows <= BATCH_MAJOR_MAX_ROWS and rows <= g.Ho * g.Wo

    def _routines(self):
        if self.xp is np:
            return _im2col_numpy, _col2im_numpy
        return _im2col_cuda, _col2im_cuda

    def _forward_numpy(self, *arrays):
        return self._forward(*arrays)

    def _forward_cuda(self, *arrays):
        return self._forward(*arrays)

    def _backward_numpy(self, gy):
        return self._backward(gy)

    def _backward_cuda(self, gy):
        return self._backward(gy)

    def _bias_grad(self, gy):
        if len(self.inputs) < 3 or not self.needs_input_grad[2]:
            return None
        # a GEMV over each (sample, channel) plane and a sum of N rows: 0.05 and 0.23 ms on
        # W5's two convs against 0.29 and 0.61 for a sum over axes (0, 2, 3)
        N, C = gy.shape[:2]
        planes = self.xp.ascontiguousarray(gy).reshape(N * C, -1)
        return (planes @ self.xp.ones(planes.shape[1], dtype=gy.dtype)).reshape(N, C).sum(axis=0)


class FusedConv2dFn(_ConvBase, kernel="conv"):
    """y = conv2d(x, w) + b;  gx = col2im(W^T gy), gW = gy cols^T, gb = sum gy."""

    padding = ((0, 0), (0, 0))  # ((top, bottom), (left, right)), a forward parameter

    def reference(self, x, w, b=None):
        return references.conv2d(x, w, b, self.stride, self.padding, self.dilation, self.groups)

    def _forward(self, x, w, b=None):
        xp, groups = self.xp, self.groups
        N, C, H, W = x.shape
        c_out, _, kh, kw = w.shape
        (top, bottom), (left, right) = self.padding
        (sh, sw), (dh, dw) = self.stride, self.dilation
        Ho = references.conv_output_size(H + top + bottom, kh, sh, dh)
        Wo = references.conv_output_size(W + left + right, kw, sw, dw)
        self.geometry = g = _ConvGeometry(N, C, H, W, kh, kw, Ho, Wo, self.stride,
                                          self.dilation, (top, left))
        im2col, _ = self._routines()
        self.w_mat = w.reshape(groups, c_out // groups, -1)
        rows = C // groups * kh * kw  # of each group's column matrix
        y = xp.empty((N, c_out, Ho, Wo), dtype=np.result_type(x.dtype, w.dtype))
        if self._batch_major(g):
            return self._forward_batch_major(x, b, y, g)
        if self._shifted(g) and x.dtype == w.dtype and blas_gemm(x.dtype) is not None:
            return self._forward_shifted(x, b, y)
        for n0, n1 in self._chunks(g, x.itemsize):
            part = g.with_batch(n1 - n0)
            cols = im2col(xp, x[n0:n1], part).reshape(groups, rows, part.N * Ho * Wo)
            y_part = xp.matmul(self.w_mat, cols).reshape(c_out, part.N, Ho, Wo)
            del cols  # (before the next chunk's columns: one chunk at a time)
            if b is not None:
                y_part += b.reshape(c_out, 1, 1, 1)
            y[n0:n1] = y_part.transpose(1, 0, 2, 3)
        return y

    def _forward_batch_major(self, x, b, y, g: _ConvGeometry):
        """NumPy, per chunk: ``y[n] = W_g @ cols[n]`` for every sample at once, written in
        place (``np.matmul`` broadcasting the weight over the samples)."""
        groups, c_out, P = self.groups, y.shape[1], g.Ho * g.Wo
        rows = g.C // groups * g.kh * g.kw
        # the bias as one more column of the weights against a row of ones under the columns:
        # the product adds it (a 10th row for a 3 x 3 first layer costs less than a pass over
        # its output: 0.43 against 0.17 + 0.68 ms on W5's first conv)
        w_mat = self.w_mat if b is None else np.concatenate(
            [self.w_mat, b.reshape(groups, c_out // groups, 1).astype(self.w_mat.dtype)], axis=2)
        for n0, n1 in self._chunks(g, x.itemsize):
            part = g.with_batch(n1 - n0)
            cols = np.empty((part.N, groups, w_mat.shape[2], P), dtype=x.dtype)
            cols[:, :, rows:] = 1
            np.copyto(cols[:, :, :rows].reshape(part.N, groups, g.C // groups, g.kh, g.kw,
                                               g.Ho, g.Wo),
                      _windows_numpy(x[n0:n1], part, batch_major=True).reshape(
                          part.N, groups, g.C // groups, g.kh, g.kw, g.Ho, g.Wo))
            out = y[n0:n1].reshape(part.N, groups, c_out // groups, P)
            np.matmul(w_mat, cols, out=out)
        return y

    def _backward_batch_major(self, gy, gx):
        """NumPy, per chunk: ``gW = sum over n of gy[n] @ cols[n]^T`` (the per-sample products
        are small: rows x C_out each), ``gx[n] = col2im(W^T @ gy[n])``."""
        g, groups, x = self.geometry, self.groups, self.inputs[0].data
        rows, P = g.C // groups * g.kh * g.kw, g.Ho * g.Wo
        o_g = gy.shape[1] // groups
        gw = None
        # (each sample's weight-gradient product, C_out x rows, counts in the chunk's bytes)
        for n0, n1 in self._chunks(g, x.itemsize, extra=gy.shape[1] * rows):
            part = g.with_batch(n1 - n0)
            gy_part = gy[n0:n1].reshape(part.N, groups, o_g, P)
            if self.needs_input_grad[1]:
                cols = _im2col_numpy(np, x[n0:n1], part, batch_major=True)
                cols = cols.reshape(part.N, groups, rows, P)
                gw_part = np.matmul(gy_part, cols.transpose(0, 1, 3, 2)).sum(axis=0)
                gw = gw_part if gw is None else np.add(gw, gw_part, out=gw)
                del cols
            if gx is not None:
                gcols = np.matmul(self.w_mat.transpose(0, 2, 1), gy_part)
                gx[n0:n1] = _col2im_numpy(
                    np, gcols.reshape(part.N, g.C, g.kh, g.kw, g.Ho, g.Wo), part,
                    batch_major=True)
                del gcols
        return gw

    def _backward(self, gy):
        xp, g, groups = self.xp, self.geometry, self.groups
        im2col, col2im = self._routines()
        x = self.inputs[0].data
        gx = xp.empty(x.shape, dtype=gy.dtype) if self.needs_input_grad[0] else None
        gw = None
        rows = g.C // groups * g.kh * g.kw
        if self._batch_major(g):
            gw = self._backward_batch_major(gy, gx)
            gw = None if gw is None else gw.reshape(self.inputs[1].shape)
            grads = (gx, gw)
            return grads + (self._bias_grad(gy),) if len(self.inputs) == 3 else grads
        shifted = gx is not None and self._shifted(g)
        if shifted:
            self._input_grad_shifted(gy, gx)
        for n0, n1 in self._chunks(g, x.itemsize) if self.needs_input_grad[1] or not shifted \
                else ():
            part = g.with_batch(n1 - n0)
            gy_mat = _channel_major(xp, gy[n0:n1], groups)  # (g, O/g, n Ho Wo)
            if self.needs_input_grad[1]:
                cols = im2col(xp, x[n0:n1], part).reshape(groups, rows, part.N * g.Ho * g.Wo)
                # gW_g^T = cols_g @ gy_g^T: OpenBLAS runs this orientation (the larger side,
                # rows, as M) faster than gy_g @ cols_g^T on W5's second conv (6.0 vs 6.4-7.3 ms
                # for im2col and product, 2 threads)
                gw_part = xp.matmul(cols, gy_mat.transpose(0, 2, 1))
                gw = gw_part if gw is None else xp.add(gw, gw_part, out=gw)
                del cols  # (before the column gradient or the next chunk's columns exist)
            if gx is not None and not shifted:
                gcols = xp.matmul(self.w_mat.transpose(0, 2, 1), gy_mat)
                gx[n0:n1] = col2im(xp, gcols.reshape(g.C, g.kh, g.kw, part.N, g.Ho, g.Wo),
                                   part)
                del gcols
        if gw is not None:
            gw = gw.transpose(0, 2, 1).reshape(self.inputs[1].shape)
        grads = (gx, gw)
        return grads + (self._bias_grad(gy),) if len(self.inputs) == 3 else grads

    def _shifted(self, g: _ConvGeometry) -> bool:
        """True for a NumPy conv of stride 1 whose output covers most of its frame (a
        ``Ho * Wo`` of at least half of ``Hf * Wf``): its forward (float32/64) and input
        gradient work on the frame, by shifts (:meth:`_forward_shifted`,
        :meth:`_input_grad_shifted`)."""
        Hf, Wf = g.frame()
        return (self.xp is np and (g.sh, g.sw) == (1, 1)
                and 2 * g.Ho * g.Wo >= Hf * Wf)

    def _frame_chunks(self, g: _ConvGeometry, per_sample: int) -> list:
        """``(start, samples)`` of the batch, as many samples at a time as keep ``per_sample``
        bytes each under ``COLUMN_CHUNK_BYTES``."""
        step = max(1, COLUMN_CHUNK_BYTES // max(per_sample, 1))
        return [(n0, min(n0 + step, g.N) - n0) for n0 in range(0, g.N, step)]

    def _tap_offsets(self, g: _ConvGeometry, Wf: int) -> list:
        """Where tap ``(i, j)`` reads, relative to its window's corner, in the flattened frame."""
        return [i * g.dh * Wf + j * g.dw for i in range(g.kh) for j in range(g.kw)]

    def _forward_shifted(self, x, b, y):
        """NumPy, stride 1: ``y`` without im2col columns.

        With ``x`` laid channel-major in its zero-padded frame ``(C, N, Hf, Wf)`` and flattened,
        output pixel ``p`` (a window's corner, on the same grid) is ``sum over taps of W_tap @
        x_frame[:, p + i dh Wf + j dw]``: one GEMM per tap whose second operand is a shifted
        slice of the frame (a strided view: no copy), accumulated in place by BLAS (beta = 1,
        through NumPy's own OpenBLAS). The product covers the whole frame grid (``Hf Wf /
        (Ho Wo)`` times the outputs: 1.4x on W5's second conv, whose im2col copy costs more);
        the outputs are its ``(Ho, Wo)`` corner of each sample. A window never leaves its
        sample's frame, so each tap's product stops ``offset`` columns short of the end."""
        g, groups = self.geometry, self.groups
        Hf, Wf = g.frame()
        size, c_g, o_g = Hf * Wf, g.C // groups, y.shape[1] // groups
        dt = x.dtype
        gemm, item = blas_gemm(dt), dt.itemsize
        taps = g.kh * g.kw
        # (taps, O, C/g): each tap's weights as a matrix, rows of every group one after another
        w_taps = self.w_mat.reshape(groups * o_g, c_g, taps).transpose(2, 0, 1)
        w_taps = np.ascontiguousarray(w_taps)
        offsets = self._tap_offsets(g, Wf)
        bias = None if b is None else b.reshape(1, -1, 1, 1)
        for n0, n in self._frame_chunks(g, (g.C + y.shape[1]) * size * item):
            length = n * size
            frame = np.zeros((g.C, n, Hf, Wf), dtype=dt)
            frame[:, :, g.ph:g.ph + g.H, g.pw:g.pw + g.W] = x[n0:n0 + n].transpose(1, 0, 2, 3)
            out = np.empty((y.shape[1], n, Hf, Wf), dtype=dt)
            f_ptr, o_ptr, w_ptr = frame.ctypes.data, out.ctypes.data, w_taps.ctypes.data
            for gi in range(groups):
                for t, off in enumerate(offsets):
                    # out_g[:, :length - off] (+)= W_tap,g @ frame_g[:, off:length]
                    gemm(ROW_MAJOR, NO_TRANS, NO_TRANS, o_g, length - off, c_g, 1.0,
                         w_ptr + ((t * groups + gi) * o_g * c_g) * item, c_g,
                         f_ptr + (gi * c_g * length + off) * item, length,
                         1.0 if t else 0.0, o_ptr + gi * o_g * length * item, length)
            corner = out[:, :, :g.Ho, :g.Wo].transpose(1, 0, 2, 3)
            if bias is None:
                y[n0:n0 + n] = corner
            else:
                np.add(corner, bias, out=y[n0:n0 + n])
        return y

    def _input_grad_shifted(self, gy, gx):
        """NumPy, stride 1: ``gx`` without a col2im over short rows.

        With ``gy`` laid into the input's frame ``(O, N, Hf, Wf)`` (zeros where no output is),
        output pixel ``p`` of tap ``(i, j)`` adds into frame pixel ``p + i dh Wf + j dw`` of the
        flattened frame: the product ``W_tap^T @ gy_frame`` of every tap at once, then one add
        of a shifted contiguous slice per tap. A window never leaves its sample's frame, so the
        shifts never carry a value into the next sample and the batch can go in chunks (the
        product is ``kh * kw * C`` rows by ``Hf * Wf`` per sample). The product's extra columns
        (frame pixels that are no output) cost ``Hf Wf / (Ho Wo)`` times the GEMM: 1.4x on a
        13 x 13 input and a 3 x 3 kernel, but the adds run over whole rows of the frame."""
        g, groups = self.geometry, self.groups
        Hf, Wf = g.frame()
        size, taps = Hf * Wf, g.kh * g.kw
        c_g, o_g = g.C // groups, gy.shape[1] // groups
        # (g, taps C/g, O/g): every tap's W_g^T, stacked tap by tap
        w_taps = self.w_mat.reshape(groups, o_g, c_g, taps).transpose(0, 3, 2, 1)
        w_taps = w_taps.reshape(groups, taps * c_g, o_g)
        offsets = self._tap_offsets(g, Wf)
        dtype = np.result_type(gy.dtype, w_taps.dtype)
        for n0, n in self._frame_chunks(g, (taps * g.C + gy.shape[1]) * size * dtype.itemsize):
            length = n * size
            gy_frame = np.zeros((gy.shape[1], n, Hf, Wf), dtype=gy.dtype)
            gy_frame[:, :, :g.Ho, :g.Wo] = gy[n0:n0 + n].transpose(1, 0, 2, 3)
            prod = np.matmul(w_taps, gy_frame.reshape(groups, o_g, length))
            del gy_frame
            prod = prod.reshape(groups, taps, c_g, length)
            frame = prod[:, 0]  # tap (0, 0): no shift; the others add into it
            for t in range(1, taps):
                off = offsets[t]
                frame[:, :, off:] += prod[:, t, :, :length - off]
            frame = frame.reshape(g.C, n, Hf, Wf)[:, :, g.ph:g.ph + g.H, g.pw:g.pw + g.W]
            gx[n0:n0 + n] = frame.transpose(1, 0, 2, 3)


class FusedConvTranspose2dFn(_ConvBase):
    """y = conv_transpose2d(x, w) + b = col2im(W^T x) + b;  gcols = im2col(gy),
    gx = W gcols, gW = x gcols^T, gb = sum gy."""

    output_padding = (0, 0)  # a forward parameter; padding is (ph, pw) here

    def reference(self, x, w, b=None):
        return references.conv_transpose2d(x, w, b, self.stride, self.padding,
                                           self.output_padding, self.dilation, self.groups)

    def _forward(self, x, w, b=None):
        xp, groups = self.xp, self.groups
        N, c_in, H, W = x.shape
        _, c_out_g, kh, kw = w.shape
        (sh, sw), (dh, dw), (ph, pw) = self.stride, self.dilation, self.padding
        Hout = (H - 1) * sh - 2 * ph + dh * (kh - 1) + self.output_padding[0] + 1
        Wout = (W - 1) * sw - 2 * pw + dw * (kw - 1) + self.output_padding[1] + 1
        # the conv whose input gradient this is: input (N, C_out, Hout, Wout), output (H, W)
        self.geometry = g = _ConvGeometry(N, c_out_g * groups, Hout, Wout, kh, kw, H, W,
                                          self.stride, self.dilation, (ph, pw))
        self.w_mat = w.reshape(groups, c_in // groups, -1)  # (g, C_in/g, C_out/g kh kw)
        # (the weight gradient makes its own channel-major copy of x: none is kept meanwhile)
        cols = xp.matmul(self.w_mat.transpose(0, 2, 1), _channel_major(xp, x, groups))
        _, col2im = self._routines()
        y = col2im(xp, cols.reshape(g.C, kh, kw, N, H, W), g)
        if b is not None:
            y += b.reshape(1, -1, 1, 1)
        return xp.ascontiguousarray(y)

    def _backward(self, gy):
        xp, g = self.xp, self.geometry
        im2col, _ = self._routines()
        gcols = im2col(xp, gy, g).reshape(self.groups, g.C // self.groups * g.kh * g.kw,
                                           g.N * g.Ho * g.Wo)
        gx = gw = None
        if self.needs_input_grad[0]:
            gx = _batch_major(xp, xp.matmul(self.w_mat, gcols), g.N, g.Ho, g.Wo)
        if self.needs_input_grad[1]:
            x_mat = _channel_major(xp, self.inputs[0].data, self.groups)  # (g, C_in/g, N H W)
            gw = xp.matmul(x_mat, gcols.transpose(0, 2, 1)).reshape(self.inputs[1].shape)
        grads = (gx, gw)
        return grads + (self._bias_grad(gy),) if len(self.inputs) == 3 else grads


def apply(input: Tensor, weight: Tensor, bias, stride: tuple, padding: tuple,
          dilation: tuple, groups: int) -> Tensor:
    """conv2d with the arguments of ``references.conv2d`` (checked by F.conv2d)."""
    tensors = (input, weight) if bias is None else (input, weight, bias)
    return FusedConv2dFn.apply(*tensors, stride=stride, padding=padding, dilation=dilation,
                               groups=groups)


def apply_transpose(input: Tensor, weight: Tensor, bias, stride: tuple, padding: tuple,
                    output_padding: tuple, dilation: tuple, groups: int) -> Tensor:
    """conv_transpose2d with the arguments of ``references.conv_transpose2d``."""
    tensors = (input, weight) if bias is None else (input, weight, bias)
    return FusedConvTranspose2dFn.apply(*tensors, stride=stride, padding=padding,
                                        output_padding=output_padding, dilation=dilation,
                                        groups=groups)
