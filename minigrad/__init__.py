"""minigrad: a deep learning framework written from scratch on NumPy (CPU) and CuPy (GPU).

Example:
    >>> import minigrad as mg
    >>> x = mg.tensor([1.0, 2.0], requires_grad=True)
    >>> (x ** 2).sum().backward()
    >>> x.grad
    tensor([2., 4.])
"""

from minigrad._version import __version__  # noqa: F401
from minigrad import autograd, backend, dtypes  # noqa: F401
from minigrad.autograd import (  # noqa: F401
    enable_grad, grad, is_grad_enabled, no_grad, set_grad_enabled,
)
from minigrad.backend import (  # noqa: F401
    Device, cuda, get_rng_state, manual_seed, set_default_device, set_rng_state,
)
from minigrad.backend import Device as device  # noqa: F401
from minigrad.backend import default_device as get_default_device  # noqa: F401
from minigrad.dtypes import (  # noqa: F401
    bool, double, float, float16, float32, float64, half, int, int8, int16, int32, int64, long,
    short, uint8,
)
from minigrad.tensor import (  # noqa: F401
    Size, Tensor, arange, as_tensor, empty, empty_like, eye, from_dlpack, from_numpy, full,
    full_like, is_tensor, linspace, ones, ones_like, rand, rand_like, randint, randn, randn_like,
    randperm, tensor, zeros, zeros_like,
)
from minigrad.ops import *  # noqa: F401,F403,E402
from minigrad.ops import (  # noqa: F401
    abs, max, min, pow, sum,
)
from minigrad import viz  # noqa: F401,E402
from minigrad.io.serialization import load, save  # noqa: F401,E402
from minigrad import nn, optim  # noqa: F401,E402
from minigrad.fused import use_fused  # noqa: F401,E402
