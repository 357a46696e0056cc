"""The autocast switch that the ops on PyTorch's autocast lists read (the API is minigrad.amp).

``mg.autocast`` (in ``minigrad.amp``) sets :data:`state`; an op on one of the lists starts with
``if state.on:`` (one attribute test when autocast is off) and then passes its tensor operands
through one of the three policies below, which cast only what PyTorch's autocast casts:
floating tensors on a device type being autocast, never float64 ones.

- :func:`lower`: matmul, linear, conv, attention, RNN cells run in the low dtype (float16 or
  bfloat16) on every device type.
- :func:`fp32`: softmax, log-softmax, norms and reductions run in float32 on CUDA; on the CPU
  (PyTorch's CPU autocast) they keep their input's dtype, parameters following the input.
- :func:`loss`: the losses run in float32 on every device type.
- :func:`fp32_cuda`: the rest of CUDA's float32 list (pointwise exp, log, log1p, rsqrt, pow;
  cumsum, cumprod, norms, softplus, cosine_similarity, interpolate), which the CPU's autocast
  leaves alone.
- :func:`rnn`: the dtype an LSTM/GRU layer or cell runs in (its own rule, below).
"""

from __future__ import annotations

import numpy as np


class _State:
    """What autocast is doing now; changed only by ``minigrad.amp.autocast``."""

    on = False  # True while any device type is autocast (the one test ops make)
    dtypes: dict = {}  # device type ('cpu', 'cuda') -> its low dtype while autocast


state = _State()
FLOAT32 = np.dtype("float32")


def _device_type(t) -> str:
    return "cpu" if type(t.data) is np.ndarray else "cuda"


def _eligible(t) -> bool:
    """A floating tensor, not float64 (PyTorch leaves float64 alone)."""
    if not hasattr(t, "grad_fn"):  # not a Tensor (a Python number): left alone
        return False
    dt = t.data.dtype
    return dt.kind in "fV" and dt.itemsize < 8


def lower(*tensors) -> tuple:
    """The tensors (None kept) cast to the low dtype of their device type, if it is autocast."""
    out = []
    for t in tensors:
        if t is not None and _eligible(t):
            low = state.dtypes.get(_device_type(t))
            if low is not None and t.data.dtype != low:
                t = t.to(low)
        out.append(t)
    return tuple(out)


def _widen(t):
    """``t`` as float32 when it is a 2-byte float (float16, bfloat16)."""
    if hasattr(t, "grad_fn") and t.data.dtype.char in "eE":
        return t.to(FLOAT32)
    return t


def fp32(*tensors) -> tuple:
    """CUDA's float32 list: 2-byte floats on an autocast CUDA device become float32. On the
    CPU the first tensor (the input) keeps its dtype and floating parameters follow it."""
    first = tensors[0]
    if _device_type(first) == "cuda":
        if "cuda" not in state.dtypes:
            return tensors
        return tuple([_widen(t) for t in tensors])
    if "cpu" not in state.dtypes or first.data.dtype.char not in "eE":
        return tensors
    dt = first.data.dtype
    return (first,) + tuple([t if t is None or not _eligible(t) or t.data.dtype == dt
                             else t.to(dt) for t in tensors[1:]])


def fp32_cuda(*tensors) -> tuple:
    """CUDA's float32 list where the CPU has none: 2-byte floats on an autocast CUDA device
    become float32; CPU tensors and non-tensors are left alone.

    Composites whose PyTorch op keeps its dtype (elu, mish, logsigmoid) call the ``Function``
    of exp/log1p directly, so that this widening reaches only what users call."""
    if "cuda" not in state.dtypes:
        return tensors
    return tuple([_widen(t) if hasattr(t, "grad_fn") and _device_type(t) == "cuda" else t
                  for t in tensors])


def loss(*tensors) -> tuple:
    """The losses' policy on every device type: 2-byte floats become float32."""
    out = []
    for t in tensors:
        if hasattr(t, "grad_fn") and _device_type(t) in state.dtypes:
            t = _widen(t)
        out.append(t)
    return tuple(out)


def rnn(x, hidden, whole_lstm: bool = False):
    """The dtype an LSTM/GRU layer or cell runs in under autocast, or None (not autocast).

    On CUDA every RNN layer and cell is on the lower-precision list (``_cudnn_rnn``,
    ``lstm_cell``, ``gru_cell``): the low dtype. On the CPU only the oneDNN LSTM layer
    (``mkldnn_rnn_layer``, which ``nn.LSTM`` runs on: ``whole_lstm``) is; the GRU and the
    cells are composites there, whose products run low and whose state update promotes with
    the state's dtype (``hidden``: h for a GRU, c for an LSTM cell; None stands for zeros of
    ``x``'s dtype), so they give the low dtype only when that state is low, else float32.
    """
    if not _eligible(x):
        return None
    device = _device_type(x)
    low = state.dtypes.get(device)
    if low is None or device == "cuda" or whole_lstm:
        return low
    if hidden is not None and not hasattr(hidden, "grad_fn"):
        return None  # not a Tensor: the layer's own checks say so
    dt = x.data.dtype if hidden is None else hidden.data.dtype
    if dt.kind not in "fV" or dt.itemsize == 8:
        return None  # float64 states are left alone (the layer's dtype checks apply)
    return low if dt == low else FLOAT32
