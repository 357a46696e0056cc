"""Parameter initialisers with PyTorch's names and formulas (``mg.nn.init.xavier_uniform_``).

Each one fills a tensor in place, under :class:`~minigrad.no_grad`, with random numbers from the
tensor's device generator (``mg.manual_seed`` makes them reproducible) or, as in PyTorch, from
``generator=`` (an ``mg.Generator`` of the tensor's device type), drawn directly in the tensor's
dtype, and returns the tensor.

Example:
    >>> import minigrad as mg
    >>> w = mg.nn.init.kaiming_uniform_(mg.empty(3, 5), a=5 ** 0.5)
    >>> bool((w.abs() <= 1 / 5 ** 0.5).numpy().all())
    True
"""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from minigrad import backend
from minigrad.autograd import no_grad
from minigrad.tensor import Tensor

Array = Any


# ---------------------------------------------------------------------------- random arrays


def _draw_dtype(dtype: np.dtype) -> np.dtype:
    # NOTE: the generators draw float32 or float64 only; float16 is drawn in float32 and cast
    return dtype if dtype in (np.float32, np.float64) else np.dtype(np.float32)


def random_uniform_array(device, shape, dtype, generator=None) -> Array:
    """Uniform numbers in [0, 1) of ``dtype`` from ``device``'s generator (or ``generator``),
    with no float64 detour.

    Shared with ``F.dropout``. NumPy's ``Generator.random`` and CuPy's
    ``RandomState.random_sample`` take the dtype directly.
    """
    dtype = np.dtype(dtype)
    gen = backend.generator(device, generator)
    if device.type == "cpu":
        out = gen.random(tuple(shape), dtype=_draw_dtype(dtype))
    else:
        with backend.xp_for(device).cuda.Device(device.index):
            out = gen.random_sample(size=tuple(shape), dtype=_draw_dtype(dtype))
    return out if out.dtype == dtype else out.astype(dtype)


def random_normal_array(device, shape, dtype, generator=None) -> Array:
    """Standard normal numbers of ``dtype`` from ``device``'s generator (or ``generator``)."""
    dtype = np.dtype(dtype)
    gen = backend.generator(device, generator)
    if device.type == "cpu":
        out = gen.standard_normal(tuple(shape), dtype=_draw_dtype(dtype))
    else:
        with backend.xp_for(device).cuda.Device(device.index):
            out = gen.standard_normal(size=tuple(shape), dtype=_draw_dtype(dtype))
    return out if out.dtype == dtype else out.astype(dtype)


def _fill(tensor: Tensor, values: Array) -> Tensor:
    with no_grad():
        tensor.data[...] = values.astype(tensor.dtype, copy=False)
    return tensor


def _check_float(tensor: Tensor, name: str) -> None:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{name}: expected a Tensor, got {type(tensor).__name__}")
    if tensor.dtype.kind != "f":
        raise TypeError(f"{name}: expected a floating point tensor, got {tensor.dtype}")


# ---------------------------------------------------------------------------- basic fills


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator=None) -> Tensor:
    """Fill with values drawn from U(a, b).

    Example:
        >>> import minigrad as mg
        >>> w = mg.nn.init.uniform_(mg.empty(100), -0.1, 0.1)
        >>> bool((w.abs() <= 0.1).numpy().all())
        True
    """
    _check_float(tensor, "uniform_")
    u = random_uniform_array(tensor.device, tensor.shape, tensor.dtype, generator)
    dt = u.dtype.type
    return _fill(tensor, u * dt(b - a) + dt(a))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator=None) -> Tensor:
    """Fill with values drawn from N(mean, std**2).

    Example:
        >>> import minigrad as mg
        >>> mg.nn.init.normal_(mg.empty(2, 3), std=0.02).shape
        (2, 3)
    """
    _check_float(tensor, "normal_")
    z = random_normal_array(tensor.device, tensor.shape, tensor.dtype, generator)
    dt = z.dtype.type
    return _fill(tensor, z * dt(std) + dt(mean))


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill with the constant ``val``.

    Example:
        >>> import minigrad as mg
        >>> mg.nn.init.constant_(mg.empty(2), 0.5)
        tensor([0.5000, 0.5000])
    """
    with no_grad():
        tensor.data[...] = val
    return tensor


def zeros_(tensor: Tensor) -> Tensor:
    """Fill with zeros.

    Example:
        >>> import minigrad as mg
        >>> mg.nn.init.zeros_(mg.empty(2))
        tensor([0., 0.])
    """
    return constant_(tensor, 0)


def ones_(tensor: Tensor) -> Tensor:
    """Fill with ones.

    Example:
        >>> import minigrad as mg
        >>> mg.nn.init.ones_(mg.empty(2))
        tensor([1., 1.])
    """
    return constant_(tensor, 1)


# ---------------------------------------------------------------------------- fans and gains


def calculate_gain(nonlinearity: str, param: Optional[float] = None) -> float:
    """The recommended gain for a nonlinearity (PyTorch's table).

    ============  ==============================
    linear, conv   1
    sigmoid        1
    tanh           5/3
    relu           sqrt(2)
    leaky_relu     sqrt(2 / (1 + slope**2)) (slope = ``param``, default 0.01)
    selu           3/4
    ============  ==============================

    Example:
        >>> calculate_gain("tanh")
        1.6666666666666667
    """
    linear_fns = ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                  "conv_transpose2d", "conv_transpose3d"]
    if nonlinearity in linear_fns or nonlinearity == "sigmoid":
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif not isinstance(param, bool) and isinstance(param, (int, float)):
            slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _calculate_fan_in_and_fan_out(tensor: Tensor):
    """``(fan_in, fan_out)`` of a weight: ``(size(1), size(0))`` times the receptive field."""
    if tensor.ndim < 2:
        raise ValueError(
            "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions"
        )
    receptive = 1
    for s in tensor.shape[2:]:
        receptive *= s
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _calculate_correct_fan(tensor: Tensor, mode: str) -> int:
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


# ---------------------------------------------------------------------------- schemes


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """Glorot uniform: U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out)).

    Example:
        >>> import minigrad as mg
        >>> w = mg.nn.init.xavier_uniform_(mg.empty(4, 2))
        >>> bool((w.abs() <= 1.0).numpy().all())
        True
    """
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    a = math.sqrt(3.0) * std
    return uniform_(tensor, -a, a, generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """Glorot normal: N(0, std**2), std = gain * sqrt(2 / (fan_in + fan_out)).

    Example:
        >>> import minigrad as mg
        >>> mg.nn.init.xavier_normal_(mg.empty(4, 2)).shape
        (4, 2)
    """
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator)


def kaiming_uniform_(tensor: Tensor, a: float = 0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu", generator=None) -> Tensor:
    """He uniform: U(-bound, bound), bound = gain * sqrt(3 / fan), gain from ``nonlinearity``.

    ``Linear`` uses ``a=sqrt(5)``, which gives bound = 1 / sqrt(fan_in).

    Example:
        >>> import minigrad as mg
        >>> w = mg.nn.init.kaiming_uniform_(mg.empty(3, 4), a=5 ** 0.5)
        >>> bool((w.abs() <= 0.5).numpy().all())
        True
    """
    fan = _calculate_correct_fan(tensor, mode)
    gain = calculate_gain(nonlinearity, a)
    bound = math.sqrt(3.0) * gain / math.sqrt(fan) if fan else 0.0
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor: Tensor, a: float = 0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu", generator=None) -> Tensor:
    """He normal: N(0, std**2), std = gain / sqrt(fan).

    Example:
        >>> import minigrad as mg
        >>> mg.nn.init.kaiming_normal_(mg.empty(3, 4), nonlinearity="relu").shape
        (3, 4)
    """
    fan = _calculate_correct_fan(tensor, mode)
    gain = calculate_gain(nonlinearity, a)
    std = gain / math.sqrt(fan) if fan else 0.0
    return normal_(tensor, 0.0, std, generator)


def trunc_normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0,
                  b: float = 2.0, generator=None) -> Tensor:
    """Fill with N(mean, std**2) truncated to [a, b] (``a`` and ``b`` are absolute bounds).

    Drawn by rejection: values outside [a, b] are redrawn, which gives exactly the truncated
    distribution. PyTorch inverts the CDF instead (same distribution, different numbers).

    Example:
        >>> import minigrad as mg
        >>> w = mg.nn.init.trunc_normal_(mg.empty(1000), std=1.0, a=-1.0, b=1.0)
        >>> bool((w.abs() <= 1.0).numpy().all())
        True
    """
    _check_float(tensor, "trunc_normal_")
    if not a < b:
        raise ValueError(f"trunc_normal_: expected a < b, got a={a}, b={b}")
    xp, dev = tensor.xp, tensor.device
    lo, hi = (a - mean) / std, (b - mean) / std  # bounds in standard units
    z = random_normal_array(dev, tensor.shape, tensor.dtype, generator)
    # NOTE: each round redraws only the rejected values; a few rounds suffice unless [a, b]
    # holds almost no probability, where the remainder is clipped to the interval.
    for _ in range(1000):
        bad = (z < lo) | (z > hi)
        n_bad = int(bad.sum())
        if n_bad == 0:
            break
        z[bad] = random_normal_array(dev, (n_bad,), tensor.dtype, generator)
    z = xp.clip(z, lo, hi)
    dt = z.dtype.type
    return _fill(tensor, xp.clip(z * dt(std) + dt(mean), a, b))


def orthogonal_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """Fill with a (semi-)orthogonal matrix times ``gain`` (Saxe et al. 2013), PyTorch's way:
    the tensor viewed as ``(size(0), rest)``, the Q of a Gaussian matrix's QR decomposition,
    its columns' signs fixed by R's diagonal so the result is uniformly distributed.

    Example:
        >>> import minigrad as mg
        >>> w = mg.nn.init.orthogonal_(mg.empty(3, 5))
        >>> bool(abs((w @ w.t()).numpy() - mg.eye(3).numpy()).max() < 1e-5)
        True
    """
    _check_float(tensor, "orthogonal_")
    if tensor.ndim < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    if tensor.numel() == 0:
        return tensor
    xp = tensor.xp
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    work = np.float64 if tensor.dtype == np.float64 else np.float32
    flat = random_normal_array(tensor.device, (rows, cols), work, generator)
    if rows < cols:
        flat = flat.T
    q, r = xp.linalg.qr(flat)
    # NOTE: QR is unique only up to column signs; making R's diagonal positive removes that
    # freedom, so Q is distributed uniformly over the orthogonal matrices (Mezzadri 2007)
    q = q * xp.sign(xp.diagonal(r))
    if rows < cols:
        q = q.T
    return _fill(tensor, (q * gain).reshape(tensor.shape).astype(tensor.dtype))
