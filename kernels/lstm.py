"""Fused LSTM layer: the whole recurrence of one layer and direction, forward and backward
through time, as one ``Function``.

What is fused: everything :func:`minigrad.references.lstm_layer` (the composite reference)
does after the input projection: per step the recurrent GEMM ``h @ W_hh^T``, the gate activations,
the cell and hidden updates and the ``lengths`` mask; and the backward through time. ``LSTMFn``
takes the input projection ``x W_ih^T`` made outside (:func:`project` makes it in the layout the
NumPy branch reads) and both biases as one ``b_hh`` (``b_ih + b_hh``), added per block of steps.
``LSTMInputFn`` (NumPy only; what ``nn.LSTM`` runs on the CPU) takes x and ``W_ih`` instead and
makes the projection inside the layer: one batched GEMM with the bias as a column of the weight
(no pass that adds it), and in the backward one weight GEMM for ``[W_ih | W_hh]``.

Forward, per step (gates in PyTorch's order i, f, g, o)::

    a = x_proj[t] + b_hh + h @ W_hh^T           (B, 4H)
    i, f, o = sigmoid(a_i, a_f, a_o);  g = tanh(a_g)
    c' = f * c + i * g;  h' = o * tanh(c')        (padded rows keep h, c)

Backward, per step, from dh (upstream + carried) and dc: the steps of
``kernels/bptt.py``'s ``lstm_backward``, the readable NumPy BPTT this kernel is tested
against::

    dc += dh * o * (1 - tanh(c')^2)                                               (steps 1-2)
    da = [dc * g * i(1-i), dc * c * f(1-f), dc * i * (1-g^2), dh * tanh(c') * o(1-o)]  (3-4)
    dc <- dc * f;  dh <- da @ W_hh                                                     (6)

and after the loop, ONE GEMM for the weights over all steps (bptt.py's step 5 summed at once):
``dW_hh = da_all^T @ h_prev_all`` (``(4H, T*B) @ (T*B, H)``), ``db_hh = sum(da_all)``,
``dx_proj = da_all``.

NumPy: every per-step buffer is laid out units-major, batch last: ``(4H, B)`` gates, ``(H, B)``
states, so each gate is one contiguous block; the recurrent GEMM is ``W_hh (4H, H) @ h (H, B)``.
(NumPy runs an elementwise pass over a row slice such as ``a[:, H:2H]`` of a ``(B, 4H)`` array
several times slower than over a contiguous block of the same size.) A step reads its (4H, B) block
of ``x_proj`` as a (T, 4H, B) view: contiguous when it comes from :func:`project`, a transposed
read otherwise. One ``tanh`` pass activates all four gates: the i, f, o pre-activations are halved
and ``sigmoid(x) = (tanh(x / 2) + 1) / 2`` (rounded as minigrad's sigmoid). The halving is folded
into a copy of ``W_hh`` (its i, f, o rows) and into the input part ``(x + b) / 2``, made for a
block of ``STEP_BLOCK`` steps at once; the step's GEMM adds ``(W_hh / 2) h`` to it in place through
NumPy's own BLAS (``beta = 1``, one ctypes call whose arguments are made before the loop), or
NumPy's matmul and an add where that BLAS is not reachable: the same numbers as the composite's,
bit for bit. The states of all steps are one (H, T + 1, B) array, so the backward's weight GEMM
takes them as they are. In training, the forward also computes, after each block of ``STEP_BLOCK``
steps while their values are in cache, everything of the backward that does not depend on the
carried dh, dc (each gate's derivative times the other factors of its gradient,
:meth:`LSTMFn._block_multipliers`), so the backward never recomputes a transcendental and a step of
it is five small products and its GEMM. The backward writes each step's gradient contiguously into
a block of ``STEP_BLOCK`` steps, which moves into a (4H, T, B) array at once: the gradients of all
steps are then one (4H, T * B) matrix for the weight GEMMs (of ``W_hh`` here, of ``W_ih`` in
:func:`project`'s backward), none of them on a transposed copy. All step maths is in place
(``out=``); nothing leaves the input dtype; the backward only reads what the forward saved
(``retain_graph``).

CUDA (``lstm.cu``): per step one cuBLAS GEMM (CuPy ``matmul``) and one fused gate kernel; the
backward likewise, then the same single weight GEMM. The kernels get the whole (T, ...) buffers
and the step index, so the host makes no per-step views for them (on a GPU the per-step host
work, not the GPU's, bounds a small recurrent layer).
"""

from __future__ import annotations

import numpy as np

from minigrad import references
from minigrad.autograd import is_grad_enabled, is_zero_grad
from minigrad.tensor import Tensor

from ._numpy import NO_TRANS, ROW_MAJOR, blas_gemm, transposed
from ._rnn import RecurrentFn, gate_column, gate_major_projection

CUDA_KERNELS = ("lstm_step_fwd", "lstm_step_bwd")
# NumPy: steps per block, for the forward's backward multipliers (made from the block's values
# while they are in cache) and the backward's move of the gradients into the (4H, T, B) layout
STEP_BLOCK = 8


class LSTMFn(RecurrentFn, kernel="lstm"):
    """(x_proj, h0, c0, W_hh[, b_hh]) -> (output, h_n, c_n) for one LSTM layer and direction;
    the gradients of all inputs by backpropagation through time (see the module docstring)."""

    N_ARRAYS = 4
    CUDA_SOURCE = "lstm"
    CUDA_KERNELS = CUDA_KERNELS

    def reference(self, x_proj, h0, c0, w_hh, b_hh=None):
        return references.lstm_layer(x_proj, h0, c0, w_hh, b_hh, self.mask, self.reverse)

    # ---------------------------------------------------------------- NumPy
    def _forward_numpy(self, x_proj, h0, c0, w_hh, b_hh=None):
        T, B, G = x_proj.shape
        H = G // 4
        dt = x_proj.dtype
        # sigmoid(x) = (tanh(x / 2) + 1) / 2: the i, f, o pre-activations are halved (exact in
        # binary), so one tanh pass activates all four gates. The halving is folded into the
        # weight (its i, f, o rows) and into the input part of a block of steps at once:
        # (x + b) / 2 + (W / 2) h equals ((x + b) + W h) / 2 bit for bit (powers of two)
        half = gate_column(dt, (0.5, 0.5, 1.0, 0.5))  # (4, 1), per gate: i, f, g, o
        # x_proj in processing order as (T, 4H, B): each step's block contiguous when x_proj
        # comes from project(), else its rows transposed
        xs = self._step_order(x_proj).transpose(0, 2, 1)
        bias = np.repeat(b_hh[:, None], B, axis=1) if b_hh is not None else None  # (4H, B)

        def fill(acts, k, n):  # (x + b) / 2 of the steps k, ..., k + n - 1, in acts[:n]
            block = acts[:n]
            if bias is not None:  # (x + b_hh) + W_hh h: the composite's order of the sums
                np.add(xs[k:k + n], bias, out=block)
            else:
                np.copyto(block, xs[k:k + n])
            block4 = block.reshape(n, 4, H * B)
            block4 *= half
            return block

        # the states units-major across steps, (H, T + 1, B): hs[:, k] (the state entering
        # step k) is a GEMM operand with a row stride, and the states of all steps are the
        # (H, T * B) matrix of the backward's weight GEMM as they are (no copy)
        hs = np.empty((H, T + 1, B), dtype=dt)
        return self._recurrence(fill, hs, h0, c0, w_hh, hs)

    def _recurrence(self, fill, hs, h0, c0, w_hh, keep):
        """The forward through time: per step, ``(W_hh / 2) h`` (``w_half``) added by one GEMM
        to the step's pre-activations, then the gate maths. ``fill(acts, k, n)`` returns the
        input part of the pre-activations of the block of n steps from k, (n, 4H, B): in
        ``acts[:n]`` (a buffer of STEP_BLOCK steps) or in an array of its own. ``hs``
        (H, T + 1, B), rows of equal stride, gets the states (the state entering step k in
        column k, h0 in column 0); ``keep``, the array that holds it, is saved for the
        backward."""
        dt = hs.dtype
        H, T, B = hs.shape[0], hs.shape[1] - 1, hs.shape[2]
        G = 4 * H
        half = gate_column(dt, (0.5, 0.5, 1.0, 0.5))  # (4, 1), per gate: i, f, g, o
        one = gate_column(dt, (1.0, 1.0, 0.0, 1.0))  # (tanh + 1) * half: tanh -> sigmoid
        w_half = (w_hh.reshape(4, H * H) * half).reshape(G, H).astype(dt, copy=False)
        hs[:, 0] = h0.T
        h_steps = list(hs.transpose(1, 0, 2))  # (H, B) views, rows hs.strides[0] apart
        # keep what the backward needs only when there can be one (a node made by hand may
        # set needs_input_grad before its forward)
        training = is_grad_enabled() and (any(t.requires_grad for t in self.inputs)
                                          or any(getattr(self, "needs_input_grad", ())))
        # a block of S steps: their pre-activations' input part in one pass per block
        # (fill); in training the backward's gate multipliers (see _block_multipliers), dc's
        # multiplier from dh (in tanh(c)'s place) and the forget gates, made from the block's
        # activations and cell states
        S = min(STEP_BLOCK, T)
        acts = np.empty((S, G, B), dtype=dt)  # the block's pre-activations, then activations
        cs = np.empty((S + 1, H, B), dtype=dt)  # the cell states entering the block's steps
        cs[0] = c0.T
        ms = np.empty((T, G, B), dtype=dt) if training else None
        tcs = np.empty((T if training else 1, H, B), dtype=dt)  # tanh(c)
        fs = np.empty((T, H, B), dtype=dt) if training else None
        tmp = np.empty((H, B), dtype=dt)
        # per position in the block: the step's buffer, its gates (4, H * B) and i, f, g, o,
        # the cell states entering and leaving the step (views made once per block)
        def block_views(block):
            return [(a, a.reshape(4, H * B), a[:H], a[H:2 * H], a[2 * H:3 * H], a[3 * H:],
                     cs[j], cs[j + 1]) for j, a in enumerate(block)]

        acts_views = block_views(acts)
        # the step's GEMM adds (W / 2) h to its block in place (BLAS beta = 1: no product
        # array, no pass to add it) through NumPy's BLAS, its arguments made here
        gemm = blas_gemm(dt) if G and B and H else None
        if gemm is not None:
            item = dt.itemsize
            w_ptr, h_ptr = w_half.ctypes.data, hs.ctypes.data
            h_ptrs = [h_ptr + k * B * item for k in range(T)]
            ldh = hs.strides[0] // item
        else:
            hw = np.empty((G, B), dtype=dt)  # W h, then added to the step's block
        pad, any_pad = self._padded_columns()
        first = 0  # the block's first step
        for k in range(T):
            j = k - first
            if j == 0:  # a new block: the input part of its steps
                n = min(S, T - k)
                block = fill(acts, k, n)
                in_acts = block.ctypes.data == acts.ctypes.data
                views = acts_views if in_acts else block_views(block)
                if gemm is not None:
                    a_ptrs = [block.ctypes.data + q * G * B * item for q in range(n)]
            a, gates, i, f, g, o, c_prev, c = views[j]
            if gemm is not None:
                gemm(ROW_MAJOR, NO_TRANS, NO_TRANS, G, B, H, 1.0, w_ptr, H, h_ptrs[k], ldh, 1.0,
                     a_ptrs[j], B)
            else:
                np.matmul(w_half, h_steps[k], out=hw)
                a += hw
            np.tanh(a, out=a)
            gates += one
            gates *= half  # i, f, o: sigmoids, rounded as minigrad's sigmoid; g: tanh
            np.multiply(f, c_prev, out=c)
            np.multiply(i, g, out=tmp)
            c += tmp
            tc = tcs[k if training else 0]
            np.tanh(c, out=tc)
            np.multiply(o, tc, out=h_steps[k + 1])
            if any_pad and any_pad[k]:  # padded rows keep their state
                np.copyto(h_steps[k + 1], h_steps[k], where=pad[k])
                np.copyto(c, c_prev, where=pad[k])
            if j == n - 1:  # the block is complete
                if training:
                    steps = slice(first, k + 1)
                    self._block_multipliers(ms[steps], block, cs[:n], tcs[steps], fs[steps])
                    if any_pad:  # padded rows: no gate gradient, dc passes through
                        for step in range(first, k + 1):
                            if any_pad[step]:
                                np.copyto(ms[step], 0, where=pad[step])
                                np.copyto(tcs[step], 0, where=pad[step])
                np.copyto(cs[0], c)
                first = k + 1
        if training:
            self.saved = (ms, tcs, fs, keep, w_hh)
        return self._output(hs.transpose(1, 2, 0)), hs[:, T].T, cs[0].T

    @staticmethod
    def _block_multipliers(m, acts, c_prev, tc, fs):
        """The factors of the backward that do not depend on the carried dh, dc, for a block
        of steps (a few calls over the block instead of a dozen per step), from the block's
        activations ``acts`` (n, 4H, B) and the cell states entering its steps ``c_prev``:
        ``m`` (n, 4H, B) gets the factors that turn dc (i, f, g) and dh (o) into the
        pre-activations' gradients, ``tc`` (tanh(c)) becomes dc's factor from dh, ``o (1 -
        tc^2)``, and ``fs`` the forget gates."""
        H = tc.shape[1]
        i, f, g, o = (acts[:, k * H:(k + 1) * H] for k in range(4))
        for rows in (slice(0, 2 * H), slice(3 * H, 4 * H)):  # i, f and o
            np.subtract(1, acts[:, rows], out=m[:, rows])
            m[:, rows] *= acts[:, rows]  # s (1 - s): the sigmoids' derivatives
        m_g = m[:, 2 * H:3 * H]
        np.multiply(g, g, out=m_g)
        np.subtract(1, m_g, out=m_g)
        m_g *= i  # dg = dc * i * (1-g^2)
        m[:, :H] *= g  # di = dc * g * i(1-i)
        m[:, H:2 * H] *= c_prev  # df = dc * c_prev * f(1-f)
        m[:, 3 * H:] *= tc  # do = dh * tc * o(1-o)
        np.multiply(tc, tc, out=tc)
        np.subtract(1, tc, out=tc)
        tc *= o
        np.copyto(fs, f)

    def _backward_numpy(self, gy, gh_n, gc_n):
        d_all, dh, dc = self._bptt(gy, gh_n, gc_n)
        hs = self.saved[3]
        rows = d_all.transpose(1, 2, 0)  # (T, B, 4H) views of the (4H, T, B) memory
        # the states entering the steps, (T, B, H) views of (H, T + 1, B) memory: their
        # (T * B, H) matrix is a view too
        return self._input_grads(rows, hs.transpose(1, 2, 0), rows, (dh.T, dc.T))

    def _bptt(self, gy, gh_n, gc_n):
        """The backward through time: ``(d_all, dh, dc)``, the gradients at the
        pre-activations of all steps as one (4H, T, B) array (processing order) and those of
        the initial states, (H, B) each."""
        ms, dc_from_dh, fs, _, w_hh = self.saved  # read only (retain_graph)
        T, G, B = ms.shape
        H = G // 4
        dt = ms.dtype
        pad, any_pad = self._padded_columns()
        # an unused output (the engine's zero stand-in, or zeros): no work from it
        gy = None if is_zero_grad(gy) else self._upstream(gy)
        gy = gy.transpose(0, 2, 1) if gy is not None and gy.any() else None
        dh = np.array(gh_n.T, dtype=dt, order="C")  # copies: updated in place below
        dc = np.array(gc_n.T, dtype=dt, order="C")
        dh_next = np.empty((H, B), dtype=dt)
        dct = np.empty((H, B), dtype=dt)
        w = transposed(w_hh)  # (H, 4H)
        # the gradients of all steps as one (4H, T * B) matrix, for the weight gradients'
        # GEMMs without a transposed operand: each step's (4H, B) gradient is made
        # contiguous in a block of STEP_BLOCK steps, which then moves into d_all at once
        # (B values per move; a strided write per step cost more than the copy)
        d_all = np.empty((G, T, B), dtype=dt)
        block = np.empty((STEP_BLOCK, G, B), dtype=dt)
        for k in range(T - 1, -1, -1):  # bptt.lstm_backward's steps 1-6
            if gy is not None:
                dh += gy[k]
            m, da = ms[k], block[k % STEP_BLOCK]
            np.multiply(dh, dc_from_dh[k], out=dct)
            dct += dc  # the cell's gradient, dc + dh o (1 - tanh(c)^2)
            np.multiply(m[:3 * H].reshape(3, H, B), dct, out=da[:3 * H].reshape(3, H, B))
            np.multiply(m[3 * H:], dh, out=da[3 * H:])  # i, f, g from dc; o from dh
            np.multiply(dct, fs[k], out=dc)  # dc of the previous step
            np.matmul(w, da, out=dh_next)  # (H, 4H) @ (4H, B)
            if any_pad and any_pad[k]:  # padded rows: dh and dc pass through unchanged
                np.copyto(dc, dct, where=pad[k])
                np.copyto(dh_next, dh, where=pad[k])
            dh, dh_next = dh_next, dh
            if k % STEP_BLOCK == 0:  # the block is complete (steps k, k + 1, ...)
                n = min(STEP_BLOCK, T - k)
                np.copyto(d_all[:, k:k + n], block[:n].transpose(1, 0, 2))
        return d_all, dh, dc

    # ---------------------------------------------------------------- CUDA
    def _forward_cuda(self, x_proj, h0, c0, w_hh, b_hh=None):
        xp = self.xp
        T, B, G = x_proj.shape
        H = G // 4
        dt = x_proj.dtype
        xs, bias, w_t, valid, geometry = self._inputs_cuda(x_proj, w_hh, b_hh)
        acts = xp.empty((T, B, G), dtype=dt)
        hs = xp.empty((T + 1, B, H), dtype=dt)
        cs = xp.empty((T + 1, B, H), dtype=dt)
        tcs = xp.empty((T, B, H), dtype=dt)
        hs[0], cs[0] = h0, c0
        hw = xp.empty((B, G), dtype=dt)  # h @ W_hh^T of the current step
        args = (xs, hw, bias, cs, hs, valid, acts, tcs, np.int32(B), np.int32(H))
        self._forward_steps_cuda("lstm_step_fwd", geometry, args, hs, w_t, [hw] * T)
        self.saved = (acts, hs, cs, tcs, w_hh, valid, geometry)
        return self._output(hs), hs[T], cs[T]

    def _backward_cuda(self, gy, gh_n, gc_n):
        xp = self.xp
        acts, hs, cs, tcs, w_hh, valid, geometry = self.saved
        T, B, G = acts.shape
        gy = xp.ascontiguousarray(self._upstream(gy))
        da_all = xp.empty((T, B, G), dtype=acts.dtype)
        dc = xp.array(gc_n, dtype=acts.dtype)  # a copy: updated in place
        # per step, one kernel: dh = dh_mm + dh_keep + gy[k]; gate gradients; dc <- dc_prev;
        # dh_keep <- dh on padded rows (0 elsewhere)
        args = (gy, acts, cs, tcs, valid, dc, da_all, np.int32(B), np.int32(G // 4))
        dh = self._backward_steps_cuda("lstm_step_bwd", geometry, args, da_all, w_hh, gh_n)
        return self._input_grads(da_all, hs, da_all, (dh, dc))


class LSTMInputFn(LSTMFn):
    """(x, h0, c0, W_ih, W_hh[, b]) -> (output, h_n, c_n): :class:`LSTMFn` with the input
    projection ``x W_ih^T`` made inside the layer, NumPy only (``nn.LSTM`` on the CPU).

    One (1 + I + H, T + 1, B) buffer holds a row of ones, the step inputs (transposed) and
    the states. The input part of all steps' pre-activations is one batched GEMM,
    ``(b | W_ih) / 2 @ [1 ; x_t]`` (the bias a column of the weight, the sigmoid rows' halving
    folded into it), into a (T, 4H, B) array of the layer's own that each step's recurrent
    GEMM then adds to in place: no ``x_proj`` node, and no ``(x + b) / 2`` pass per block of
    steps. The backward's weight gradients are ONE GEMM over all steps, ``d_all @ [x ;
    h_prev]^T``, on that buffer as it is; ``dx = W_ih^T d_all`` another. The sums run in
    another order than the composite's (the bias inside the projection's GEMM): equal to it
    within rounding, not bit for bit.
    """

    N_ARRAYS = 5

    def reference(self, x, h0, c0, w_ih, w_hh, b=None):
        T, B, n_in = x.shape
        x_proj = (x.reshape(T * B, n_in) @ w_ih.T).reshape(T, B, -1)
        return references.lstm_layer(x_proj, h0, c0, w_hh, b, self.mask, self.reverse)

    def _forward_numpy(self, x, h0, c0, w_ih, w_hh, b=None):
        T, B, n_in = x.shape
        G, H = w_hh.shape
        dt = x.dtype
        half = gate_column(dt, (0.5, 0.5, 1.0, 0.5))  # (4, 1), per gate: i, f, g, o
        # [1 ; x ; h] by steps, (1 + I + H, T + 1, B): a row of ones, x_t^T in column t and
        # the state entering step t, so [x_t ; h_t-1] of all steps is the backward's operand
        # of ONE weight GEMM as it is
        zs = np.empty((1 + n_in + H, T + 1, B), dtype=dt)
        zs[0] = 1
        zs[1:n_in + 1, :T] = self._step_order(x).transpose(2, 0, 1)
        zs[1:n_in + 1, T] = 0  # no step reads it; defined all the same
        # (b | W_ih) / 2 (the i, f, o rows halved, see LSTMFn._forward_numpy) @ [1 ; x_t] of
        # all steps: (T, 4H, B), the input part of every step's pre-activations, to which
        # each step's GEMM adds (W_hh / 2) h in place
        w_b = np.empty((G, 1 + n_in), dtype=dt)
        w_b[:, 0] = b if b is not None else 0
        w_b[:, 1:] = w_ih
        w_b = (w_b.reshape(4, -1) * half).reshape(G, 1 + n_in)
        xw = np.matmul(w_b, zs[:n_in + 1, :T].transpose(1, 0, 2))
        return self._recurrence(lambda acts, k, n: xw[k:k + n], zs[n_in + 1:], h0, c0, w_hh,
                                zs)

    def _backward_numpy(self, gy, gh_n, gc_n):
        d_all, dh, dc = self._bptt(gy, gh_n, gc_n)
        zs = self.saved[3]
        w_ih = self.inputs[3].data
        n_in = w_ih.shape[1]
        G, T, B = d_all.shape
        d = d_all.reshape(G, T * B)
        needs = self.needs_input_grad
        gx = gw_ih = gw_hh = gb = None
        if needs[3] or needs[4]:  # [dW_ih | dW_hh], one GEMM over all steps
            xh = zs[1:, :T]
            gw = d @ xh.reshape(len(xh), T * B).T
            # each weight's gradient contiguous, as the weight (and PyTorch's .grad) is: the
            # optimizer's passes and .view() read it flat (the engine and Adam would otherwise
            # each copy one of the two column blocks)
            gw_ih = np.ascontiguousarray(gw[:, :n_in]) if needs[3] else None
            gw_hh = np.ascontiguousarray(gw[:, n_in:]) if needs[4] else None
        if len(needs) == 6 and needs[5]:
            gb = self._column_sums(d.T)
        if needs[0]:  # (I, T * B), as (T, B, I) in time order
            gx = self._step_order((w_ih.T @ d).reshape(n_in, T, B).transpose(1, 2, 0))
        grads = (gx, dh.T if needs[1] else None, dc.T if needs[2] else None, gw_ih, gw_hh)
        return grads if len(needs) == 5 else grads + (gb,)

    def _forward_cuda(self, *arrays):
        raise TypeError("LSTMInputFn is NumPy only: on CUDA the input projection is made "
                        "before the layer (LSTMFn, apply())")


def apply_with_input(x: Tensor, h0: Tensor, c0: Tensor, w_ih: Tensor, w_hh: Tensor, b, mask,
                     reverse=False):
    """The fused LSTM layer on its input ``x`` (T, B, I), the projection inside the layer
    (:class:`LSTMInputFn`, NumPy arrays only); the results of ``references.lstm_layer`` on
    ``x W_ih^T`` with the bias ``b`` (``b_ih + b_hh``)."""
    inputs = (x, h0, c0, w_ih, w_hh) if b is None else (x, h0, c0, w_ih, w_hh, b)
    return LSTMInputFn.apply(*inputs, mask=mask, reverse=reverse)


def project(x: Tensor, w_ih: Tensor) -> Tensor:
    """The input projection ``x W_ih^T`` (T, B, 4H) in the layout the NumPy kernel reads: each
    step's (4H, B) block contiguous (``_rnn.GateMajorProjectionFn``)."""
    return gate_major_projection(x, w_ih)


def apply(x_proj: Tensor, h0: Tensor, c0: Tensor, w_hh: Tensor, b_hh, mask, reverse=False):
    """The fused LSTM layer; the arguments and results of ``references.lstm_layer``."""
    inputs = (x_proj, h0, c0, w_hh) if b_hh is None else (x_proj, h0, c0, w_hh, b_hh)
    return LSTMFn.apply(*inputs, mask=mask, reverse=reverse)
