"""What the fused LSTM and GRU layers (kernels/lstm.py, kernels/gru.py) share: the dispatch of
a recurrent layer ``Function`` to its NumPy or CUDA implementation, the step order of the
reverse direction, the padding masks, and a one-exp tanh."""

from __future__ import annotations

import numpy as np

from minigrad.autograd import Function, is_grad_enabled
from minigrad.fused import reference_grads
from minigrad.tensor import Tensor


class RecurrentFn(Function):
    """A whole recurrent layer, one direction: ``(x_proj, *states, W_hh[, b_hh])`` -> its
    output and final states. A subclass sets ``N_ARRAYS`` (the inputs before the optional
    bias), ``reference`` (the composite layer function of ``nn.rnn``, by name) and implements
    ``_forward_numpy/_forward_cuda(*arrays, b_hh)`` and ``_backward_numpy/_backward_cuda(
    gy, *g_states)``."""

    N_ARRAYS: int
    REFERENCE: str

    def forward(self, *arrays, mask=None, reverse=False):
        self.mask, self.reverse = mask, reverse
        core, b = arrays[:self.N_ARRAYS], (arrays[self.N_ARRAYS:] or (None,))[0]
        if self.xp is np:
            return self._forward_numpy(*core, b)
        return self._forward_cuda(*core, b)

    def backward(self, *grads_out):
        if is_grad_enabled():  # create_graph=True: differentiate the composite instead
            return reference_grads(self._reference, self.inputs, grads_out)
        arrays = [g.data for g in grads_out]
        if self.xp is np:
            grads = self._backward_numpy(*arrays)
        else:
            grads = self._backward_cuda(*arrays)
        return tuple(None if g is None else Tensor._make(g) for g in grads)

    def _reference(self, *arrays):
        from minigrad.nn import rnn  # noqa: PLC0415

        core, b = arrays[:self.N_ARRAYS], (arrays[self.N_ARRAYS:] or (None,))[0]
        return getattr(rnn, self.REFERENCE)(*core, b, self.mask, self.reverse)

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

    def _valid_cuda(self, T, B):
        """(T, B) uint8 "valid step" flags in processing order (all ones without a mask)."""
        xp = self.xp
        if self.mask is None:
            return xp.ones((T, B), dtype=np.uint8)
        return xp.ascontiguousarray(self._step_order(self.mask.data[:, :, 0])).astype(np.uint8)


def tanh_into(x, out):
    """out = tanh(x) = 2 / (1 + exp(-2x)) - 1, in place in ``out`` (one exp; finite for any x;
    ``out`` may be ``x``).

    NOTE: near 0 this loses a few ulps of relative precision against np.tanh, but its absolute
    error stays below 1e-7 (float32); np.tanh costs three times an exp here."""
    np.multiply(x, -2, out=out)
    np.exp(out, out=out)
    out += 1
    np.divide(2, out, out=out)
    out -= 1
