"""The ``cupy`` module of the fake CuPy: NumPy underneath, CuPy's rules on top.

Every function unwraps its device arrays, calls NumPy, and wraps the result (see _array.py);
a NumPy array where CuPy wants a device array raises TypeError as CuPy does. Only what minigrad
and its tests use is here: an attribute CuPy has but this module lacks raises AttributeError,
so a gap shows up as a failure to fill in, never as a silent NumPy fallback.

``empty`` and ``empty_like`` fill float arrays with NaN: an element nobody writes stays NaN.
"""

from __future__ import annotations

import builtins
import sys
import types

import numpy as np

from fake_cuda import _cuda, _random
from fake_cuda._array import (
    IMPLICIT,
    ndarray,
    unsupported,
    unwrap,
    unwrap_operand,
    wrap,
)

__version__ = "13.6.0"
cuda = _cuda.module()
random = _random.module()

# dtypes and constants, as CuPy re-exports them from NumPy
for _name in [
    "bool_", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "complex64", "complex128", "intp", "uintp", "dtype",
    "inf", "nan", "pi", "e", "newaxis", "finfo", "iinfo", "promote_types", "result_type",
    "can_cast", "issubdtype", "integer", "floating", "number", "signedinteger",
    "unsignedinteger", "complexfloating", "generic", "byte", "short", "intc", "longlong",
    "half", "single", "double", "float_", "int_", "ubyte",
]:
    if hasattr(np, _name):
        globals()[_name] = getattr(np, _name)
bool = np.bool_  # noqa: A001  (cupy.bool, as NumPy 2 has)


# ---------------------------------------------------------------------------- host <-> device


def asarray(a, dtype=None, order=None, *, blocking=False):
    """A device array of ``a``: the same array when it already is one (of ``dtype``), else a
    copy to the device (NumPy arrays, lists, scalars)."""
    if isinstance(a, ndarray):
        return wrap(np.asarray(a._a, dtype=dtype, order=order), a)
    return wrap(np.array(_host_input(a), dtype=dtype, order=order, copy=True))


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, *, blocking=False):
    """A copy on the device (``copy=False`` may return ``obj`` itself when it is one)."""
    if isinstance(obj, ndarray):
        out = np.array(obj._a, dtype=dtype, copy=copy or None, order=order, ndmin=ndmin)
        return wrap(out, obj)
    return wrap(np.array(_host_input(obj), dtype=dtype, order=order, ndmin=ndmin, copy=True))


def _host_input(obj):
    """Host data for a copy to the device: NumPy arrays, scalars, (nested) sequences of them;
    a sequence made only of device arrays is stacked; a mix raises TypeError, as in CuPy."""
    if isinstance(obj, (list, tuple)) and obj:
        flat = list(_leaves(obj))
        on_device = [isinstance(x, ndarray) for x in flat]
        if builtins.all(on_device):
            return np.array(unwrap(obj))
        if builtins.any(on_device):
            raise TypeError(IMPLICIT)
    return obj


def _leaves(obj):
    if isinstance(obj, (list, tuple)):
        for x in obj:
            yield from _leaves(x)
    else:
        yield obj


def asnumpy(a, stream=None, order="C", out=None, *, blocking=True):
    """A NumPy array of ``a`` (a copy when ``a`` is on the device)."""
    if isinstance(a, ndarray):
        return a.get(order=order, out=out)
    return np.asarray(a, order=order)


def ascontiguousarray(a, dtype=None):
    if not isinstance(a, ndarray):
        raise unsupported(a)
    return wrap(np.ascontiguousarray(a._a, dtype=dtype), a)


def get_array_module(*args):
    return sys.modules[__name__] if builtins.any(isinstance(a, ndarray) for a in args) else np


def from_dlpack(obj):
    if isinstance(obj, ndarray):
        return wrap(obj._a[...], obj)
    raise TypeError(f"the fake CuPy imports DLPack only from its own arrays, got {type(obj)}")


fromDlpack = from_dlpack  # noqa: N816  (CuPy's old name)


# ---------------------------------------------------------------------------- creation


def _poisoned(a):
    if a.dtype.kind in "fc":
        a.fill(np.nan)  # an element nobody writes stays NaN
    return wrap(a)


def empty(shape, dtype=float, order="C"):
    return _poisoned(np.empty(shape, dtype=dtype, order=order))


def _like(np_fn, poison=False):
    def fn(a, *args, **kwargs):
        if not isinstance(a, ndarray):
            raise unsupported(a)
        out = np_fn(a._a, *unwrap(args), **{k: unwrap(v) for k, v in kwargs.items()})
        return _poisoned(out) if poison else wrap(out)

    fn.__name__ = np_fn.__name__
    return fn


empty_like = _like(np.empty_like, poison=True)
zeros_like = _like(np.zeros_like)
ones_like = _like(np.ones_like)


def full_like(a, fill_value, dtype=None, order="K", subok=None, shape=None):
    if not isinstance(a, ndarray):
        raise unsupported(a)
    return wrap(np.full_like(a._a, unwrap_operand(fill_value), dtype=dtype, order=order,
                             shape=shape))


def full(shape, fill_value, dtype=None, order="C"):
    return wrap(np.full(shape, unwrap_operand(fill_value), dtype=dtype, order=order))


def _creation(np_fn):
    def fn(*args, **kwargs):
        for v in list(args) + list(kwargs.values()):
            if isinstance(v, np.ndarray) or isinstance(v, ndarray):
                raise unsupported(v)
        return wrap(np_fn(*args, **kwargs))

    fn.__name__ = np_fn.__name__
    return fn


zeros, ones, arange, linspace, logspace, eye, identity, tri = map(
    _creation, [np.zeros, np.ones, np.arange, np.linspace, np.logspace, np.eye, np.identity,
                np.tri]
)


class _Grid:
    def __init__(self, np_grid):
        self.np_grid = np_grid

    def __getitem__(self, key):
        return wrap(self.np_grid[key])


ogrid, mgrid = _Grid(np.ogrid), _Grid(np.mgrid)


# ---------------------------------------------------------------------------- ufuncs


class ufunc:  # noqa: N801  (CuPy's name)
    """A CuPy ufunc: operands are device arrays or scalars, ``out`` a device array."""

    def __init__(self, np_ufunc):
        self.np_ufunc = np_ufunc
        self.__name__ = np_ufunc.__name__
        self.nin, self.nout = np_ufunc.nin, np_ufunc.nout

    def __call__(self, *args, out=None, **kwargs):
        arrays = [a for a in args if isinstance(a, ndarray)]
        operands = [unwrap_operand(a) for a in args]
        if out is not None:
            outs = out if isinstance(out, tuple) else (out,)
            for o in outs:
                if not isinstance(o, ndarray):
                    raise TypeError(f"Output arguments must be cupy.ndarray, got {type(o)}")
            kwargs["out"] = tuple(o._a for o in outs)
            arrays += list(outs)
        return wrap(self.np_ufunc(*operands, **kwargs), *arrays)

    def reduce(self, array, axis=0, dtype=None, out=None, keepdims=False):
        if not isinstance(array, ndarray):
            raise unsupported(array)
        kwargs = {} if out is None else {"out": unwrap(out)}
        return wrap(self.np_ufunc.reduce(array._a, axis=axis, dtype=dtype, keepdims=keepdims,
                                         **kwargs))

    def __repr__(self):
        return f"<ufunc '{self.__name__}'>"


_UFUNCS = [
    "abs", "absolute", "add", "subtract", "multiply", "divide", "true_divide", "floor_divide",
    "power", "float_power", "negative", "positive", "reciprocal", "exp", "exp2", "expm1", "log",
    "log2", "log10", "log1p", "logaddexp", "logaddexp2", "sqrt", "cbrt", "square", "tanh",
    "sinh", "cosh", "arcsinh", "arccosh", "arctanh", "sin", "cos", "tan", "arcsin", "arccos",
    "arctan", "arctan2", "hypot", "maximum", "minimum", "fmax", "fmin", "sign", "signbit",
    "copysign", "isfinite", "isnan", "isinf", "logical_not", "logical_and", "logical_or",
    "logical_xor", "invert", "bitwise_not", "bitwise_and", "bitwise_or", "bitwise_xor",
    "left_shift", "right_shift", "equal", "not_equal", "less", "less_equal", "greater",
    "greater_equal", "floor", "ceil", "rint", "trunc", "fix", "mod", "remainder", "fmod",
    "divmod", "conj", "conjugate", "deg2rad", "rad2deg", "heaviside", "matmul", "frexp",
    "ldexp", "modf", "nextafter",
]
for _name in _UFUNCS:
    if isinstance(getattr(np, _name, None), np.ufunc):
        globals()[_name] = ufunc(getattr(np, _name))


# ---------------------------------------------------------------------------- other functions


def _function(np_fn):
    """A NumPy function whose array arguments must be device arrays (also inside lists)."""

    def fn(*args, **kwargs):
        arrays = [a for a in args if isinstance(a, ndarray)]
        args, kwargs = unwrap(args), {k: unwrap(v) for k, v in kwargs.items()}
        return wrap(np_fn(*args, **kwargs), *arrays)

    fn.__name__ = np_fn.__name__
    fn.__doc__ = f"numpy.{np_fn.__name__} on device arrays."
    return fn


_FUNCTIONS = [
    "sum", "mean", "var", "std", "prod", "max", "min", "amax", "amin", "argmax", "argmin",
    "all", "any", "cumsum", "cumprod", "nansum", "nanmax", "nanmin", "ptp", "median",
    "average", "where", "stack", "vstack", "hstack", "dstack", "column_stack", "concatenate",
    "split", "array_split", "broadcast_to", "broadcast_arrays", "dot", "vdot", "inner",
    "outer", "einsum", "tensordot", "kron", "sort", "argsort", "lexsort", "nonzero",
    "flatnonzero", "argwhere", "count_nonzero", "take_along_axis", "put_along_axis", "take",
    "put", "putmask", "place", "choose", "compress", "clip", "tril", "triu", "diag",
    "diagonal", "trace", "transpose", "reshape", "ravel", "expand_dims", "squeeze", "moveaxis",
    "swapaxes", "rollaxis", "flip", "fliplr", "flipud", "roll", "rot90", "pad", "tile",
    "repeat", "atleast_1d", "atleast_2d", "atleast_3d", "isclose", "allclose",
    "array_equal", "unique", "bincount", "searchsorted", "digitize", "around", "round",
    "nan_to_num", "copyto", "meshgrid", "indices", "diff", "cross", "histogram",
    "may_share_memory", "shares_memory", "ndim", "shape", "size", "real", "imag", "angle",
    "sinc", "interp", "convolve", "partition", "argpartition", "logical_and", "select",
    "triu_indices", "tril_indices", "unravel_index", "ravel_multi_index", "cov", "corrcoef",
]
for _name in _FUNCTIONS:
    if _name not in globals() and hasattr(np, _name):
        globals()[_name] = _function(getattr(np, _name))


def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """A 0-d boolean device array, as CuPy's (not a Python bool)."""
    return wrap(np.asarray(np.allclose(unwrap_operand(a), unwrap_operand(b), rtol, atol,
                                       equal_nan)))


def array_equal(a1, a2, equal_nan=False):
    return wrap(np.asarray(np.array_equal(unwrap_operand(a1), unwrap_operand(a2), equal_nan)))


linalg = types.SimpleNamespace(**{
    name: _function(getattr(np.linalg, name))
    for name in ["norm", "inv", "solve", "det", "slogdet", "svd", "qr", "eigh", "cholesky",
                 "pinv", "matrix_power", "lstsq"]
})


# ---------------------------------------------------------------------------- kernels


def RawModule(code=None, path=None, options=(), backend="nvrtc", translate_cucomplex=False,  # noqa: N802
              *, enable_cooperative_groups=False, name_expressions=None, jitify=False):
    """``cupy.RawModule``: every launch checked against the kernel's C signature, then run by
    the CUDA C simulator or the NumPy emulation (see _kernels.py)."""
    from fake_cuda._kernels import RawModule as _RawModule  # noqa: PLC0415

    if code is None:
        raise TypeError("the fake RawModule needs code= (path= is not supported)")
    return _RawModule(code, options, name_expressions or ())


def get_default_memory_pool():
    return _cuda.DEFAULT_POOL


def get_default_pinned_memory_pool():
    return _cuda.MemoryPool()


del _name
