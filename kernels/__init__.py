"""Hand-written fused kernels, imported as ``minigrad.kernels``.

Each ``<name>.py`` holds a fused ``Function`` (a :class:`minigrad.fused.FusedFunction`: a NumPy
version and a CUDA launcher) and an ``apply`` function with the arguments of its composite
reference in ``minigrad.references``; ``<name>.cu`` is its CUDA source, compiled through CuPy on
first use (``_math.cuh`` and ``_rnn.cuh`` hold the device helpers the sources share).
``bptt.py`` is backpropagation through time for the LSTM and GRU in plain NumPy, step by step:
the readable version of what ``lstm.py`` and ``gru.py`` compute. ``minigrad.fused`` decides
when the kernels run.
"""

from . import (  # noqa: F401
    adam, attention, batch_norm, conv, dropout, gelu, gru, layer_norm, lstm, maxpool,
    rms_norm, rope, softmax_cross_entropy, swiglu,
)
