"""Recurrent layers: :class:`LSTM`, :class:`GRU` and their single-step cells.

Names, shapes, gate orders and initialisation are PyTorch's, so state dicts move between the
two. One layer and direction runs in two parts:

1. the **input projection** of all ``T`` time steps at once, one matmul over ``T * B`` rows
   (``x.reshape(T * B, I) @ W_ih^T + b_ih``): most of the arithmetic, done by one large GEMM;
2. the **recurrence**, a loop over time that only does the small ``(B, H) @ (H, G * H)``
   product and the gate maths: the fused kernel (``kernels/lstm.py``, ``kernels/gru.py``), or
   its composite reference (:func:`minigrad.references.lstm_layer`, ``gru_layer``).

Padded batches: ``forward(x, lengths=...)`` takes each sequence's true length. A padded step
leaves the state unchanged (``h = where(valid, h_new, h)``) and outputs zeros, so ``h_n`` is
the state at each sequence's last valid step. Because padding sits at the end, the reverse
direction walks through the padded steps first with its state held at ``h0``, and so starts at
each sequence's last valid step: the numbers PyTorch gives for a packed sequence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from minigrad import autocast_state, kernels, ops, references
from minigrad.autocast_state import state as _autocast
from minigrad.fused import fused_enabled
from minigrad.nn import functional as F
from minigrad.nn import init
from minigrad.nn.module import Module, Parameter
from minigrad.tensor import Tensor, empty, zeros

__all__ = ["GRU", "LSTM", "GRUCell", "LSTMCell"]


# ---------------------------------------------------------------------------- one layer


def _input_projection(x: Tensor, w_ih: Tensor, b_ih: Tensor | None) -> Tensor:
    """``W_ih x_t + b_ih`` for all steps, one matmul over T * B rows: (T, B, I) -> (T, B, G*H)."""
    T, B, n_in = x.shape
    x_proj = x.reshape(T * B, n_in) @ w_ih.T  # (T*B, G*H)
    if b_ih is not None:
        x_proj = x_proj + b_ih
    return x_proj.reshape(T, B, -1)  # (T, B, G*H)


def _cast_all(tensors, dtype):
    """A tensor, or a tuple/list of them (None and non-tensors kept), cast to ``dtype``;
    everything unchanged when ``dtype`` is None."""
    if dtype is None or tensors is None:
        return tensors
    if isinstance(tensors, Tensor):
        return tensors.to(dtype) if tensors.dtype != dtype else tensors
    if isinstance(tensors, (tuple, list)):
        return type(tensors)(_cast_all(t, dtype) if isinstance(t, Tensor) else t
                             for t in tensors)
    return tensors


def _autocast_hidden(hx):
    """The state whose dtype CPU autocast's rule reads (autocast_state.rnn): c of an LSTM's
    ``(h, c)``, a GRU's h, or None."""
    if isinstance(hx, (tuple, list)):
        return hx[1] if len(hx) == 2 and isinstance(hx[1], Tensor) else None
    return hx if isinstance(hx, Tensor) else None


# ---------------------------------------------------------------------------- checks


def _shape_str(shape) -> str:
    return str(tuple(int(s) for s in shape))


def _check_float_like(name: str, t: Tensor, weight: Tensor) -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"{name}: expected a Tensor, got {type(t).__name__}")
    if t.dtype != weight.dtype:
        raise RuntimeError(
            f"{name} has dtype {t.dtype} but the parameters have dtype {weight.dtype}; cast one "
            f"of them (x.to({weight.dtype}) or module.to({t.dtype}))"
        )
    if t.device != weight.device:
        raise RuntimeError(
            f"{name} is on {t.device} but the parameters are on {weight.device}; move one of "
            f"them (x.to('{weight.device}') or module.to('{t.device}'))"
        )


def _check_input(name: str, x: Tensor, weight: Tensor, layouts: dict, input_size: int,
                 size_error: str) -> None:
    """Check an RNN or cell input: a tensor of ``weight``'s dtype and device, whose rank is a
    key of ``layouts`` ({ndim: the shape it stands for}) and whose last dim is ``input_size``
    (else ``size_error``, PyTorch's message, formatted with ``got`` and ``expected``)."""
    _check_float_like(f"{name} input", x, weight)
    if x.ndim not in layouts:
        expected = " or ".join(f"{ndim}-D {shape}" for ndim, shape in layouts.items())
        raise ValueError(f"{name}: expected input to be {expected}, got {x.ndim}-D input of "
                         f"shape {_shape_str(x.shape)}")
    if x.shape[-1] != input_size:
        message = size_error.format(got=x.shape[-1], expected=input_size)
        raise ValueError(f"{name}: {message} (input shape {_shape_str(x.shape)})")


def _lengths_mask(lengths, T: int, B: int, like: Tensor) -> Tensor | None:
    """The (T, B, 1) bool mask of valid steps for ``lengths``, or None when all are full."""
    if isinstance(lengths, Tensor) or hasattr(lengths, "__cuda_array_interface__"):
        arr = np.asarray(lengths.tolist())  # a minigrad tensor or a CuPy array, on any device
    else:
        arr = np.asarray(lengths)  # list, tuple, NumPy array, PyTorch CPU tensor
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"lengths must hold integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.ndim != 1 or arr.shape[0] != B:
        raise ValueError(
            f"lengths must have one entry per sequence in the batch: expected shape ({B},), got "
            f"{_shape_str(arr.shape)}"
        )
    if np.any(arr <= 0):
        raise ValueError(f"lengths must be positive, got {arr.tolist()}")
    if np.any(arr > T):
        raise ValueError(
            f"lengths must not exceed the sequence length {T} of the input, got {arr.tolist()}"
        )
    if np.all(arr == T):
        return None
    valid = np.arange(T)[:, None] < arr[None, :]  # (T, B)
    return Tensor._make(like.xp.asarray(valid[:, :, None]))  # (T, B, 1)


# ---------------------------------------------------------------------------- LSTM and GRU


class _Recurrent(Module):
    """What the recurrent layers and cells share: PyTorch's initialisation."""

    hidden_size: int

    def reset_parameters(self) -> None:
        """Every weight and bias uniform in ``±1/sqrt(hidden_size)``, as PyTorch."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)


class _RNNBase(_Recurrent):
    """What LSTM and GRU share: parameters, argument checks, the layer/direction loop.

    Subclasses set ``_gates`` (4 for LSTM, 3 for GRU), ``_n_states`` (2: h and c, or 1: h) and
    write ``_layer(x_proj, states, w_hh, b_hh, mask, reverse) -> (output, states)``.
    """

    _gates = 1
    _n_states = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device=None,
        dtype=None,
    ):
        super().__init__()
        name = type(self).__name__
        if proj_size:
            raise NotImplementedError(f"{name}: proj_size (LSTM projections) is not supported")
        if not isinstance(hidden_size, int) or hidden_size <= 0:
            raise ValueError(f"{name}: hidden_size must be a positive integer, got {hidden_size}")
        if not isinstance(num_layers, int) or num_layers <= 0:
            raise ValueError(f"{name}: num_layers must be a positive integer, got {num_layers}")
        if isinstance(dropout, bool) or not 0 <= dropout <= 1:
            raise ValueError(f"{name}: dropout must be a number in [0, 1], got {dropout}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        num_directions = 2 if bidirectional else 1
        gate_size = self._gates * hidden_size
        # PyTorch's registration order: per layer, per direction, w_ih, w_hh, b_ih, b_hh
        self._flat_weights_names: list[str] = []
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else hidden_size * num_directions
            for direction in range(num_directions):
                sfx = f"_l{layer}" + ("_reverse" if direction == 1 else "")
                shapes = {
                    "weight_ih" + sfx: (gate_size, layer_in),
                    "weight_hh" + sfx: (gate_size, hidden_size),
                }
                if bias:
                    shapes["bias_ih" + sfx] = (gate_size,)
                    shapes["bias_hh" + sfx] = (gate_size,)
                for pname, shape in shapes.items():
                    setattr(self, pname, Parameter(empty(*shape, dtype=dtype, device=device)))
                    self._flat_weights_names.append(pname)
        self.reset_parameters()

    def flatten_parameters(self) -> None:
        """A no-op kept for PyTorch compatibility (cuDNN weight packing)."""

    @property
    def all_weights(self) -> list[list[Parameter]]:
        """The parameters grouped per layer and direction: ``[[w_ih, w_hh, b_ih, b_hh], ...]``."""
        per = 4 if self.bias else 2
        names = self._flat_weights_names
        return [[getattr(self, n) for n in names[k : k + per]] for k in range(0, len(names), per)]

    def _weights(self, layer: int, direction: int, dtype=None):
        """(w_ih, w_hh, b_ih, b_hh) of a layer and direction, cast to ``dtype`` if given (under
        autocast: casts are ops, so the float32 parameters get the gradients)."""
        sfx = f"_l{layer}" + ("_reverse" if direction == 1 else "")
        w_ih = getattr(self, "weight_ih" + sfx)
        w_hh = getattr(self, "weight_hh" + sfx)
        b_ih = getattr(self, "bias_ih" + sfx) if self.bias else None
        b_hh = getattr(self, "bias_hh" + sfx) if self.bias else None
        return _cast_all((w_ih, w_hh, b_ih, b_hh), dtype)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s

    # ---------------------------------------------------------------- forward pieces
    def _check_input(self, x: Tensor, weight: Tensor) -> bool:
        """Check x's rank, features, dtype and device (``weight``'s); return whether it is
        batched."""
        n_in = self.input_size
        layouts = {2: f"(T, {n_in})", 3: f"({'B, T' if self.batch_first else 'T, B'}, {n_in})"}
        _check_input(type(self).__name__, x, weight, layouts, n_in,
                     "input.size(-1) must be equal to input_size. Expected {expected}, got {got}")
        return x.ndim == 3

    def _initial_states(self, hx, B: int, batched: bool, like: Tensor,
                        weight: Tensor) -> list[list[Tensor]]:
        """Per state (h, and c for LSTM), the list of (B, H) initial tensors, one per layer and
        direction. A missing ``hx`` means zeros."""
        name = type(self).__name__
        n_ld = self.num_layers * (2 if self.bidirectional else 1)
        if hx is None:
            zero = zeros(B, self.hidden_size, dtype=like.dtype, device=like.device)
            return [[zero] * n_ld for _ in range(self._n_states)]
        if self._n_states == 1:
            if not isinstance(hx, Tensor):
                raise TypeError(f"{name}: hx must be a Tensor, got {type(hx).__name__}")
            hx = (hx,)
            labels = ["hx"]
        else:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(f"{name}: hx must be a tuple (h_0, c_0)")
            labels = ["h_0", "c_0"]
        expected = (n_ld, B, self.hidden_size) if batched else (n_ld, self.hidden_size)
        states = []
        for label, s in zip(labels, hx):
            _check_float_like(f"{name} {label}", s, weight)
            if tuple(s.shape) != expected:
                kind = "batched" if batched else "unbatched"
                raise ValueError(
                    f"{name}: expected {label} of shape {_shape_str(expected)} (num_layers * "
                    f"num_directions, {'batch, ' if batched else ''}hidden_size) for {kind} "
                    f"input, got {_shape_str(s.shape)}"
                )
            if not batched:
                s = s.unsqueeze(1)  # (L*D, 1, H)
            states.append(list(ops.unbind(s, 0)))  # L*D x (B, H)
        return states

    def _layer(self, x_proj, states, w_hh, b_hh, mask, reverse):  # pragma: no cover - abstract
        raise NotImplementedError

    def _project(self, x: Tensor, w_ih: Tensor, b_ih, b_hh) -> tuple:
        """``(x_proj, b_hh)`` for :meth:`_layer`: the input projection of a layer and direction
        and the recurrent bias that goes with it."""
        return _input_projection(x, w_ih, b_ih), b_hh

    def forward(self, x: Tensor, hx=None, lengths=None):
        """Run all layers and directions; see the subclass docstring for the shapes."""
        cast = None
        if _autocast.on:  # on autocast's lists: see autocast_state.rnn
            cast = autocast_state.rnn(x, _autocast_hidden(hx), whole_lstm=self._gates == 4)
            if cast is not None:
                x, hx = x.to(cast), _cast_all(hx, cast)
        num_directions = 2 if self.bidirectional else 1
        weights = [self._weights(layer, direction, cast) for layer in range(self.num_layers)
                   for direction in range(num_directions)]
        batched = self._check_input(x, weights[0][0])
        if not batched:
            x = x.unsqueeze(1)  # (T, 1, I): unbatched input ignores batch_first, as PyTorch
        elif self.batch_first:
            x = x.transpose(0, 1)  # (B, T, I) -> (T, B, I)
        T, B = x.shape[0], x.shape[1]
        initial = self._initial_states(hx, B, batched, x, weights[0][0])
        mask = _lengths_mask(lengths, T, B, x) if lengths is not None else None

        final: list[list[Tensor]] = [[] for _ in range(self._n_states)]
        layer_input = x  # (T, B, I) then (T, B, D*H)
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(num_directions):
                k = layer * num_directions + direction
                w_ih, w_hh, b_ih, b_hh = weights[k]
                x_proj, b_hh = self._project(layer_input, w_ih, b_ih, b_hh)  # (T, B, G*H)
                states = [s[k] for s in initial]
                out, states = self._layer(x_proj, states, w_hh, b_hh, mask, direction == 1)
                outputs.append(out)  # (T, B, H)
                for i, s in enumerate(states):
                    final[i].append(s)
            layer_input = ops.cat(outputs, 2) if num_directions == 2 else outputs[0]
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, training=True)

        output = layer_input  # (T, B, D*H)
        finals = [ops.stack(f, 0) for f in final]  # each (L*D, B, H)
        if not batched:
            output = output.squeeze(1)
            finals = [f.squeeze(1) for f in finals]
        elif self.batch_first:
            output = output.transpose(0, 1)
        return output, finals


class LSTM(_RNNBase):
    r"""A multi-layer long short-term memory RNN, with PyTorch's parameters and semantics.

    For each step t, with gates in PyTorch's order i, f, g, o:

    .. math::
        i_t = \sigma(W_{ii} x_t + b_{ii} + W_{hi} h_{t-1} + b_{hi}) \\
        f_t = \sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf}) \\
        g_t = \tanh(W_{ig} x_t + b_{ig} + W_{hg} h_{t-1} + b_{hg}) \\
        o_t = \sigma(W_{io} x_t + b_{io} + W_{ho} h_{t-1} + b_{ho}) \\
        c_t = f_t \odot c_{t-1} + i_t \odot g_t \\
        h_t = o_t \odot \tanh(c_t)

    Layer k > 0 takes the outputs of layer k-1 (both directions concatenated), with dropout
    in between during training.

    Args:
        input_size: features of x.
        hidden_size: features of h and c.
        num_layers: stacked layers.
        bias: use ``b_ih`` and ``b_hh``.
        batch_first: input and output are (B, T, F) instead of (T, B, F).
        dropout: dropout probability on the outputs of every layer but the last.
        bidirectional: add a reverse-direction pass; outputs are concatenated.
        proj_size: must be 0 (LSTM projections are not supported).
        device, dtype: where and how the parameters are created (default device, float32).

    Shape:
        - x: (T, B, I), or (B, T, I) with ``batch_first``, or (T, I) unbatched.
        - hx: ``(h_0, c_0)``, each (L*D, B, H) ((L*D, H) unbatched); zeros when omitted.
        - lengths: (B,) true lengths of a padded batch (list, array or integer tensor).
        - output: (T, B, D*H) (zeros at padded steps); ``h_n``, ``c_n``: (L*D, B, H).

    Parameters ``weight_ih_l{k}`` (4H, I or D*H), ``weight_hh_l{k}`` (4H, H), ``bias_ih_l{k}``,
    ``bias_hh_l{k}`` (4H,), with ``_reverse`` for the reverse direction; all initialised
    uniform in ``±1/sqrt(H)``.

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> lstm = nn.LSTM(3, 5, num_layers=2)
        >>> out, (h, c) = lstm(mg.randn(7, 2, 3))
        >>> out.shape, h.shape, c.shape
        ((7, 2, 5), (2, 2, 5), (2, 2, 5))
    """

    _gates = 4
    _n_states = 2

    def _project(self, x, w_ih, b_ih, b_hh):
        # both biases as one, added once by the recurrence (per step by the fused kernel, to
        # x_proj by the composite): one pass over x_proj fewer. Their gradients are equal
        # (the gates' gradient summed), as they were.
        if b_ih is not None and b_hh is not None:
            b_hh = b_ih + b_hh
        elif b_ih is not None:
            b_hh = b_ih
        if x.device.type == "cpu" and x.data.dtype.char in "fd":  # each step's (4H, B) block
            # contiguous, for the NumPy kernel and the composite's units-major steps alike
            if fused_enabled("lstm", x):
                # the NumPy kernel makes the projection inside the layer, into the array its
                # steps work in (kernels.lstm.LSTMInputFn): _layer gets (x, W_ih)
                return (x, w_ih), b_hh
            if b_hh is not None:
                # the composite: the bias as one more input column of the projection's GEMM
                # (x_proj + b is one more pass over the whole (T, B, 4H) projection, and its
                # gradient a reduction over it: ~4 ms of W2's 64-75 ms composite step)
                T, B, n_in = x.shape
                ones = Tensor._make(x.xp.ones((T, B, 1), dtype=x.data.dtype))
                x_ones = ops.cat([x, ones], 2)  # (T, B, I + 1)
                w_b = ops.cat([w_ih, b_hh.reshape(-1, 1)], 1)  # (4H, I + 1)
                return kernels.lstm.project(x_ones, w_b), None
            return kernels.lstm.project(x, w_ih), b_hh
        return _input_projection(x, w_ih, None), b_hh

    def _layer(self, x_proj, states, w_hh, b_hh, mask, reverse):
        if type(x_proj) is tuple:  # (x, W_ih) from _project: the fused NumPy kernel's
            x, w_ih = x_proj
            out, h, c = kernels.lstm.apply_with_input(x, states[0], states[1], w_ih, w_hh, b_hh,
                                                      mask, reverse)
            return out, (h, c)
        if fused_enabled("lstm", x_proj):  # mg.use_fused on + kernel for device/dtype
            out, h, c = kernels.lstm.apply(x_proj, states[0], states[1], w_hh, b_hh, mask,
                                           reverse)
            return out, (h, c)
        out, h, c = references.lstm_layer(x_proj, states[0], states[1], w_hh, b_hh, mask,
                                          reverse)
        return out, (h, c)

    def forward(
        self, x: Tensor, hx: tuple[Tensor, Tensor] | None = None, lengths=None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """Returns ``output, (h_n, c_n)``."""
        output, (h_n, c_n) = super().forward(x, hx, lengths)
        return output, (h_n, c_n)


class GRU(_RNNBase):
    r"""A multi-layer gated recurrent unit RNN, with PyTorch's parameters and semantics.

    For each step t, with gates in PyTorch's order r, z, n:

    .. math::
        r_t = \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}) \\
        z_t = \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}) \\
        n_t = \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn})) \\
        h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}

    Arguments and shapes as :class:`LSTM`, with a single state ``h`` and 3H gate rows.

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> gru = nn.GRU(3, 5, batch_first=True, bidirectional=True)
        >>> out, h = gru(mg.randn(2, 7, 3), lengths=[7, 4])
        >>> out.shape, h.shape
        ((2, 7, 10), (2, 2, 5))
    """

    _gates = 3
    _n_states = 1

    def _layer(self, x_proj, states, w_hh, b_hh, mask, reverse):
        if fused_enabled("gru", x_proj):  # mg.use_fused on + kernel for device/dtype
            out, h = kernels.gru.apply(x_proj, states[0], w_hh, b_hh, mask, reverse)
            return out, (h,)
        out, h = references.gru_layer(x_proj, states[0], w_hh, b_hh, mask, reverse)
        return out, (h,)

    def forward(self, x: Tensor, hx: Tensor | None = None, lengths=None) -> tuple[Tensor, Tensor]:
        """Returns ``output, h_n``."""
        output, (h_n,) = super().forward(x, hx, lengths)
        return output, h_n


# ---------------------------------------------------------------------------- cells


class _CellBase(_Recurrent):
    _gates = 1

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None
    ):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        gate_size = self._gates * hidden_size
        kw = dict(dtype=dtype, device=device)
        self.weight_ih = Parameter(empty(gate_size, input_size, **kw))
        self.weight_hh = Parameter(empty(gate_size, hidden_size, **kw))
        if bias:
            self.bias_ih = Parameter(empty(gate_size, **kw))
            self.bias_hh = Parameter(empty(gate_size, **kw))
        else:
            self.bias_ih = None
            self.bias_hh = None
        self.reset_parameters()

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")

    def _operands(self, x: Tensor, hx, hidden):
        """``(x, hx, (w_ih, w_hh, b_ih, b_hh))``, cast as autocast runs the cell (see
        autocast_state.rnn; ``hidden`` is the state its CPU rule reads), else as given."""
        weights = (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        cast = autocast_state.rnn(x, hidden) if _autocast.on else None
        if cast is None:
            return x, hx, weights
        return x.to(cast), _cast_all(hx, cast), _cast_all(weights, cast)

    def _check(self, x: Tensor, states: Sequence[Tensor | None], labels: Sequence[str],
               weight: Tensor):
        """Check shapes, and dtypes against ``weight``'s; return (x as (B, I), states as (B, H)
        each, batched)."""
        name = type(self).__name__
        n_in = self.input_size
        _check_input(name, x, weight, {1: f"({n_in},)", 2: f"(B, {n_in})"}, n_in,
                     "input has inconsistent input_size: got {got}, expected {expected}")
        batched = x.ndim == 2
        if not batched:
            x = x.unsqueeze(0)
        B = x.shape[0]
        expected = (B, self.hidden_size) if batched else (self.hidden_size,)
        out = []
        for label, s in zip(labels, states):
            if s is None:
                out.append(zeros(B, self.hidden_size, dtype=x.dtype, device=x.device))
                continue
            _check_float_like(f"{name} {label}", s, weight)
            if tuple(s.shape) != expected:
                raise ValueError(
                    f"{name}: expected {label} of shape {_shape_str(expected)}, got "
                    f"{_shape_str(s.shape)}"
                )
            out.append(s if batched else s.unsqueeze(0))
        return x, out, batched


class LSTMCell(_CellBase):
    r"""One LSTM step: ``(h', c') = cell(x, (h, c))``, with :class:`LSTM`'s gate equations.

    Shape:
        - x: (B, I) or (I,); hx: ``(h, c)``, each (B, H) or (H,); zeros when omitted.
        - returns ``(h', c')`` of the same shapes as h and c.

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> cell = nn.LSTMCell(3, 4)
        >>> h, c = cell(mg.randn(2, 3))
        >>> h.shape, c.shape
        ((2, 4), (2, 4))
    """

    _gates = 4

    def forward(self, x: Tensor, hx: tuple[Tensor, Tensor] | None = None):
        if hx is None:
            hx = (None, None)
        elif not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise TypeError("LSTMCell: hx must be a tuple (h, c)")
        x, hx, (w_ih, w_hh, b_ih, b_hh) = self._operands(x, hx, hx[1])
        x, (h, c), batched = self._check(x, hx, ("h", "c"), w_ih)
        gates_x = x @ w_ih.T  # (B, 4H)
        if self.bias:
            gates_x = gates_x + (b_ih + b_hh)
        h, c = references.lstm_step(gates_x, h, c, w_hh.T)
        if not batched:
            h, c = h.squeeze(0), c.squeeze(0)
        return h, c


class GRUCell(_CellBase):
    r"""One GRU step: ``h' = cell(x, h)``, with :class:`GRU`'s gate equations.

    Shape:
        - x: (B, I) or (I,); hx: (B, H) or (H,), zeros when omitted; returns h' like hx.

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> cell = nn.GRUCell(3, 4)
        >>> cell(mg.randn(2, 3)).shape
        (2, 4)
    """

    _gates = 3

    def forward(self, x: Tensor, hx: Tensor | None = None) -> Tensor:
        x, hx, (w_ih, w_hh, b_ih, b_hh) = self._operands(x, hx, hx)
        x, (h,), batched = self._check(x, (hx,), ("hx",), w_ih)
        x_proj = x @ w_ih.T  # (B, 3H)
        if self.bias:
            x_proj = x_proj + b_ih
        h = references.gru_step(x_proj, h, w_hh.T, b_hh)
        return h if batched else h.squeeze(0)
