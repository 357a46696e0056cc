"""Hand-written fused kernels (installed as ``minigrad.kernels``).

Each ``<name>.py`` holds a fused ``Function`` (a NumPy branch and a CUDA launcher) and an
``apply`` function with the arguments of its composite reference; ``<name>.cu`` is its CUDA
source, compiled through CuPy on first use. ``minigrad.fused`` decides when they run.
"""

from . import (  # noqa: F401
    adam, attention, dropout, gelu, gru, layer_norm, lstm, softmax_cross_entropy,
)
