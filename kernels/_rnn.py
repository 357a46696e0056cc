"""What the fused LSTM and GRU layers (kernels/lstm.py, kernels/gru.py) share: the step order of
the reverse direction, the padding masks, the CUDA host loops through time, the gradients of
the weights (one GEMM over all steps), and the NumPy kernels' per-gate constants.

Both layers run backpropagation through time as written, step by step, in kernels/bptt.py;
they differ from it in where the numbers live (preallocated (T, ...) buffers, in place), in
the padding masks and the reverse direction, and in one GEMM for the weights after the loop.
"""

from __future__ import annotations

import numpy as np

from minigrad.autograd import Function
from minigrad.fused import FusedFunction

from . import _cuda


class RecurrentFn(FusedFunction):
    """A whole recurrent layer, one direction: ``(x_proj, *states, W_hh[, b_hh])`` -> its
    output and final states, with the forward parameters ``mask`` ((T, B, 1) bool, True at
    valid steps, or None) and ``reverse``.

    A subclass sets ``N_ARRAYS`` (the inputs before the optional bias) and ``CUDA_SOURCE``,
    ``CUDA_KERNELS`` (its ``.cu`` step kernels), and writes the four implementations with the
    bias last and optional (``_forward_numpy(x_proj, *states, w_hh, b_hh=None)``).
    """

    N_ARRAYS: int
    CUDA_SOURCE: str
    CUDA_KERNELS: tuple
    mask = None
    reverse = False

    # ---------------------------------------------------------------- steps and masks
    def _step_order(self, a):
        """A (T, ...) array in processing order (reversed for the reverse direction)."""
        return a[::-1] if self.reverse else a

    def _padded_rows(self):
        """(T, B, 1) bool "padded" in processing order and, per step, whether any row is."""
        if self.mask is None:
            return None, None
        pad = ~self._step_order(self.mask.data)
        return pad, pad.any(axis=(1, 2)).tolist()

    def _padded_columns(self):
        """:meth:`_padded_rows` for the NumPy kernels' (T, units, B) layout: (T, 1, B) bool."""
        pad, any_pad = self._padded_rows()
        return (None if pad is None else pad.transpose(0, 2, 1)), any_pad

    def _output(self, hs):
        """The layer's output from the states ``hs`` (T + 1, B, H) of processing order: time
        order, zeros at padded steps."""
        out = self._step_order(hs[1:])  # (T, B, H) in time order
        if self.mask is not None:
            out = out * self.mask.data  # padded steps output zeros
        return out

    def _upstream(self, gy):
        """The output's gradient in processing order (padded outputs are constant zeros)."""
        if self.mask is not None:
            gy = gy * self.mask.data
        return self._step_order(gy)

    def _input_grads(self, d_all, hs, gx, g_states) -> tuple:
        """One gradient per input, from the gradients at the recurrent pre-activations of every
        step, ``d_all`` (T, B, G) = d(h W_hh^T + b_hh): ONE GEMM over all steps gives
        ``dW_hh = d_all^T h_prev_all`` ((T*B, G)^T @ (T*B, H)) and a sum gives ``db_hh``.
        ``gx`` (processing order) and ``g_states`` are the other inputs' gradients."""
        needs = self.needs_input_grad
        n = self.N_ARRAYS
        T, B, G = d_all.shape
        rows = d_all.reshape(T * B, G)
        gw = rows.T @ hs[:T].reshape(T * B, -1) if needs[n - 1] else None
        gx = self._step_order(gx) if needs[0] else None
        grads = (gx,) + tuple(g if need else None for g, need in zip(g_states, needs[1:n - 1]))
        if len(needs) == n:  # no bias
            return grads + (gw,)
        return grads + (gw, self._column_sums(rows) if needs[n] else None)

    def _column_sums(self, rows):
        """``rows.sum(axis=0)`` of the (T * B, G) gradient rows; on the CPU as a product with a
        vector of ones (one BLAS pass, 2 threads, over the 8 MB of a W2 gradient: 0.2 ms
        against 0.7 ms for NumPy's reduction, which runs across its strided rows)."""
        if self.xp is not np:
            return rows.sum(axis=0)
        return np.ones(rows.shape[0], dtype=rows.dtype) @ rows

    # ---------------------------------------------------------------- CUDA host
    def _valid_cuda(self, T, B):
        """(T, B) uint8 "valid step" flags in processing order (all ones without a mask)."""
        xp = self.xp
        if self.mask is None:
            return xp.ones((T, B), dtype=np.uint8)
        return xp.ascontiguousarray(self._step_order(self.mask.data[:, :, 0])).astype(np.uint8)

    def _kernel(self, which, dtype, device_id):
        return _cuda.kernel(self.CUDA_SOURCE, self.CUDA_KERNELS, which, dtype, device_id)

    def _inputs_cuda(self, x_proj, w_hh, b_hh):
        """``(xs, bias, w_t, valid, (grid, block))``: the step kernels' shared arguments, x_proj
        in processing order, b_hh (zeros without), ``W_hh^T`` and the valid flags, all
        contiguous, and the launch geometry over the ``B * H`` (row, unit) pairs."""
        xp = self.xp
        T, B, G = x_proj.shape
        H = w_hh.shape[1]
        xs = xp.ascontiguousarray(self._step_order(x_proj))
        bias = xp.ascontiguousarray(b_hh) if b_hh is not None else xp.zeros(G, dtype=w_hh.dtype)
        w_t = xp.ascontiguousarray(w_hh.T)  # (H, G)
        geometry = _cuda.grid_1d(B * H, sm_count=_cuda.sm_count(x_proj.device.id))
        return xs, bias, w_t, self._valid_cuda(T, B), geometry

    def _forward_steps_cuda(self, which, geometry, args, hs, w_t, gemm_out):
        """Forward through time on the GPU: per step k, one cuBLAS GEMM ``hs[k] @ W_hh^T`` into
        ``gemm_out[k]``, then the step kernel ``which`` with ``args`` and k (the kernel indexes
        the (T, ...) buffers itself: no per-step views on the host)."""
        xp = self.xp
        kernel = self._kernel(which, hs.dtype, hs.device.id)
        grid, block = geometry
        for k in range(hs.shape[0] - 1):
            xp.matmul(hs[k], w_t, out=gemm_out[k])
            kernel(grid, block, args + (np.int32(k),))

    def _backward_steps_cuda(self, which, geometry, args, d_all, w_hh, gh_n):
        """Backward through time on the GPU: per step k, from the last, the step kernel
        ``which`` with ``(dh_mm, dh_keep, *args, k)``, then one cuBLAS GEMM
        ``dh_mm = d_all[k] @ W_hh`` (the recurrent part of dh for the step before). The kernel
        sums dh = dh_mm + dh_keep + gy[k] and leaves in ``dh_keep`` the part of dh that reaches
        the previous state directly. Returns the gradient of h0."""
        xp = self.xp
        T, B, _ = d_all.shape
        kernel = self._kernel(which, d_all.dtype, d_all.device.id)
        grid, block = geometry
        dh_mm = xp.zeros((B, gh_n.shape[1]), dtype=d_all.dtype)  # zero after the last step
        dh_keep = xp.array(gh_n, dtype=d_all.dtype)  # a copy: updated in place
        args = (dh_mm, dh_keep) + args
        for k in range(T - 1, -1, -1):
            kernel(grid, block, args + (np.int32(k),))
            xp.matmul(d_all[k], w_hh, out=dh_mm)
        dh_mm += dh_keep  # rows padded at the first step pass their gradient to h0
        return dh_mm


class GateMajorProjectionFn(Function):
    """y = x W_ih^T for all steps, (T, B, I) -> (T, B, G), stored gate-major: y is a view of
    the (T, G, B) array of the per-step products ``W_ih @ x_t^T`` (one batched GEMM);
    ``gW_ih = gy^T x`` and ``gx = gy W_ih`` over all ``T * B`` rows.

    Why not ``x @ W_ih^T`` and a transposed copy: the fused NumPy LSTM works in a units-major
    layout ((G, B) per step), and a transposed copy of x_proj, or a step reading its
    transposed rows, cost more than the batched GEMM's loss against one GEMM (it runs 64
    (G, I) @ (I, B) products). The gradient is taken as a (G, T * B) matrix: for the fused
    LSTM's gradient (a view of (G, T, B) memory) a view, so both weight GEMMs run on it as is.
    A primitive, not a composite: ``matmul(W_ih, x^T)`` broadcast over T would reduce its
    weight gradient from a (T, G, I) product.
    """

    def forward(self, x, w_ih):
        return self.xp.matmul(w_ih, x.transpose(0, 2, 1)).transpose(0, 2, 1)

    def backward(self, gy):
        x, w_ih = self.inputs
        T, B, n_in = x.shape
        g = gy.permute(2, 0, 1).reshape(w_ih.shape[0], T * B)  # (G, T * B)
        gx = (w_ih.T @ g).reshape(n_in, T, B).permute(1, 2, 0) if self.needs_input_grad[0] \
            else None
        gw = g @ x.reshape(T * B, n_in) if self.needs_input_grad[1] else None
        return gx, gw


def gate_major_projection(x, w_ih):
    """``x W_ih^T`` (T, B, G) of a (T, B, I) input, stored gate-major
    (:class:`GateMajorProjectionFn`)."""
    return GateMajorProjectionFn.apply(x, w_ih)


def gate_column(dtype, values) -> np.ndarray:
    """A (gates, 1) column of ``values``: a per-gate constant for a step's (gates, H * B) view
    of the NumPy kernels' (gates * H, B) layout (each gate's block is contiguous there)."""
    return np.array(values, dtype=dtype)[:, None]
