"""The device array of the fake CuPy: a wrapper around a private NumPy array.

It is deliberately *not* a NumPy array (``isinstance(a, np.ndarray)`` is False), so minigrad's
dispatch on array types takes the GPU branch, and it refuses what CuPy refuses:

- implicit conversion to NumPy (``np.asarray(a)``, ``np.array(a)``): TypeError, CuPy's message;
- NumPy functions and ufuncs called on it (``np.exp(a)``, ``np.add.at(a, ...)``): TypeError
  (``__array_function__`` raises, ``__array_ufunc__ = None``);
- a NumPy *array* as an operand (``a + np.ones(3)``, ``np.ones(3) * a``): TypeError, as CuPy's
  "Unsupported type <class 'numpy.ndarray'>". Python and NumPy scalars are fine.

Explicit transfers and syncs work as on a GPU: ``a.get()``, ``float(a)``, ``a.item()``,
``a.tolist()``. Results of operators, indexing and methods are wrapped again; a 0-d result is a
0-d device array (as CuPy's reductions return), never a NumPy scalar. Views share memory with
the array they look at, and ``base`` is that array (the first owner, as in CuPy).
"""

from __future__ import annotations

import numbers
import weakref

import numpy as np

IMPLICIT = (
    "Implicit conversion to a NumPy array is not allowed. "
    "Please use `.get()` to construct a NumPy array explicitly."
)


def unsupported(value) -> TypeError:
    return TypeError(f"Unsupported type {type(value)}")


def is_scalar(value) -> bool:
    """Python numbers and NumPy scalars: operands CuPy takes next to device arrays."""
    return isinstance(value, (numbers.Number, np.generic)) and not isinstance(value, np.ndarray)


def unwrap(value):
    """The NumPy array behind a device array; scalars, dtypes, slices and the like unchanged;
    tuples and lists element by element. A NumPy array raises TypeError (no implicit
    host-to-device transfer)."""
    if isinstance(value, ndarray):
        return value._a
    if isinstance(value, np.ndarray):
        raise unsupported(value)
    if isinstance(value, (list, tuple)):
        return type(value)(unwrap(v) for v in value)
    return value


def unwrap_operand(value):
    """An operand of an arithmetic operator or a ufunc: a device array or a scalar."""
    if isinstance(value, ndarray):
        return value._a
    if is_scalar(value):
        return value
    raise unsupported(value)


def unwrap_index(key):
    """An index: device arrays unwrapped; NumPy arrays and lists accepted (CuPy copies them
    to the device)."""
    if isinstance(key, ndarray):
        return key._a
    if isinstance(key, tuple):
        return tuple(unwrap_index(k) for k in key)
    if isinstance(key, list) and any(isinstance(k, ndarray) for k in key):
        return [unwrap_index(k) for k in key]
    return key


# Device -> host transfers, by kind: each one waits for the GPU to finish its queued work (a
# synchronisation), so a training step should make none that its user did not ask for.
# tests/fake_cuda/__init__.py's ``count_transfers`` reads this.
TRANSFERS: dict = {}


def _transferred(kind: str) -> None:
    TRANSFERS[kind] = TRANSFERS.get(kind, 0) + 1


def _has_bool_mask(key) -> bool:
    """Whether an index selects with a boolean device array (CuPy must learn the number of
    True values on the host to size the result: a synchronisation)."""
    keys = key if isinstance(key, tuple) else (key,)
    return any(isinstance(k, ndarray) and k.dtype == np.bool_ for k in keys)


def _root(a: np.ndarray):
    return a if a.base is None else a.base


# The memory pool's bookkeeping: the NumPy buffer behind every live device array, by address
# (its bytes are the pool's used bytes), and the allocator set by cupy.cuda.set_allocator,
# called once per new buffer with its size, as CuPy calls its allocator.
BUFFERS: "weakref.WeakValueDictionary[int, np.ndarray]" = weakref.WeakValueDictionary()
ALLOCATOR = [None]


def _track(a: np.ndarray) -> None:
    root = _root(a)
    if isinstance(root, np.ndarray) and id(root) not in BUFFERS:
        BUFFERS[id(root)] = root
        if ALLOCATOR[0] is not None:
            ALLOCATOR[0](root.nbytes)


def wrap(result, *sources):
    """Wrap a NumPy result as device arrays (recursively in tuples and lists).

    ``sources`` are the device arrays the result was computed from: a result that *is* one of
    their NumPy arrays comes back as that very device array (``asarray``, ``astype(copy=False)``);
    a view of one gets it (or its base) as ``base``.
    """
    if isinstance(result, tuple):
        return tuple(wrap(r, *sources) for r in result)
    if isinstance(result, list):
        return [wrap(r, *sources) for r in result]
    if isinstance(result, np.generic):
        return ndarray._from_numpy(np.asarray(result))
    if not isinstance(result, np.ndarray):
        return result
    for s in sources:
        if isinstance(s, ndarray) and s._a is result:
            return s
    if type(result) is not np.ndarray:  # a subclass (np.matrix, a memmap): plain array
        result = result.view(np.ndarray)
    out = ndarray._from_numpy(result)
    if result.base is not None:
        root = _root(result)
        for s in sources:
            if isinstance(s, ndarray) and _root(s._a) is root:
                out._base = s if s._base is None else s._base
                break
        else:
            out._base = ndarray._from_numpy(root) if isinstance(root, np.ndarray) else None
    return out


class _DeviceRef:
    """``a.device``: CuPy's ``cupy.cuda.Device`` of the array (one device, id 0)."""

    id = 0

    def __repr__(self):
        return "<CUDA Device 0>"


# Device memory by address: every pointer handed out by ``a.data.ptr``, and the NumPy array
# behind it, for the emulated kernels that read pointer tables (adam's parameters and gradients).
POINTERS: "weakref.WeakValueDictionary[int, np.ndarray]" = weakref.WeakValueDictionary()


class _MemoryPointer:
    """``a.data``: the device pointer (here the host address of the NumPy buffer)."""

    def __init__(self, a: np.ndarray):
        self.ptr = a.__array_interface__["data"][0]
        self.device_id = 0
        POINTERS[self.ptr] = a


class Flags:
    """``a.flags``: CuPy's flags are only these three (no ``writeable``, no ``aligned``)."""

    __slots__ = ("c_contiguous", "f_contiguous", "owndata")

    def __init__(self, a: np.ndarray, owndata: bool):
        self.c_contiguous = bool(a.flags.c_contiguous)
        self.f_contiguous = bool(a.flags.f_contiguous)
        self.owndata = owndata

    def __getitem__(self, name):
        key = {"C_CONTIGUOUS": "c_contiguous", "F_CONTIGUOUS": "f_contiguous",
               "OWNDATA": "owndata"}.get(name)
        if key is None:
            raise KeyError(f"{name} is not defined for cupy.ndarray.flags")
        return getattr(self, key)

    def __repr__(self):
        return "\n".join(f"  {k.upper()} : {getattr(self, k)}" for k in self.__slots__)


def _operator(name):
    np_op = getattr(np.ndarray, name)

    def op(self, other):
        result = np_op(self._a, unwrap_operand(other))
        if result is NotImplemented:
            return result
        return wrap(result, self)

    op.__name__ = name
    return op


def _inplace(name):
    np_op = getattr(np.ndarray, name)

    def op(self, other):
        np_op(self._a, unwrap_operand(other))
        return self

    op.__name__ = name
    return op


def _method(name):
    def method(self, *args, **kwargs):
        args, kwargs = unwrap(args), {k: unwrap(v) for k, v in kwargs.items()}
        return wrap(getattr(self._a, name)(*args, **kwargs), self)

    method.__name__ = name
    return method


def _to_host(kind, convert):
    """A conversion to a Python scalar (``float(a)``, ``bool(a)``): a device -> host transfer."""

    def method(self):
        _transferred(kind)
        return convert(self._a)

    method.__name__ = f"__{kind}__"
    return method


_BINARY = ["add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or",
           "xor", "lshift", "rshift", "divmod"]
_COMPARE = ["__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__"]
_METHODS = [
    "reshape", "transpose", "swapaxes", "squeeze", "ravel", "flatten", "copy", "view",
    "sum", "mean", "var", "std", "prod", "max", "min", "argmax", "argmin", "all", "any",
    "cumsum", "cumprod", "clip", "dot", "round", "nonzero", "repeat", "take", "argsort",
    "diagonal", "trace", "conj", "conjugate", "astype", "ptp", "searchsorted", "compress",
    "partition", "argpartition", "put",
]


class ndarray:  # noqa: N801  (CuPy's name)
    """``cupy.ndarray`` on the CPU: a private NumPy array and CuPy's rules around it."""

    __slots__ = ("_a", "_base", "__weakref__")
    __array_ufunc__ = None  # NumPy ufuncs refuse it; NumPy's operators defer to ours
    __array_priority__ = 100

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        if memptr is not None or strides is not None:
            raise NotImplementedError("the fake cupy.ndarray takes no memptr/strides")
        self._a = np.empty(shape, dtype=dtype, order=order)
        self._base = None
        _track(self._a)

    @classmethod
    def _from_numpy(cls, a: np.ndarray) -> "ndarray":
        out = object.__new__(cls)
        out._a, out._base = a, None
        _track(a)
        return out

    # ------------------------------------------------------------------ no implicit NumPy
    def __array__(self, *args, **kwargs):
        raise TypeError(IMPLICIT)

    def __array_function__(self, func, types, args, kwargs):
        raise TypeError(
            f"numpy.{func.__name__} was called on a cupy.ndarray: call the array module's "
            f"function (xp.{func.__name__}) or copy to the host with .get() first"
        )

    @property
    def __cuda_array_interface__(self):
        a = self._a
        return {
            "shape": a.shape,
            "typestr": a.dtype.str,
            "data": (a.__array_interface__["data"][0], False),
            "strides": None if a.flags.c_contiguous else a.strides,
            "version": 3,
        }

    def __dlpack_device__(self):
        return (2, 0)  # kDLCUDA, device 0

    def __dlpack__(self, *args, **kwargs):
        raise TypeError("the fake CuPy cannot export device memory through DLPack")

    # ------------------------------------------------------------------ explicit transfers
    def get(self, stream=None, order="C", out=None, blocking=True):
        """Copy to the host: a NumPy array (into ``out`` when given)."""
        _transferred("get")
        if out is not None:
            if not isinstance(out, np.ndarray) or out.shape != self.shape:
                raise ValueError("out must be a NumPy array of the same shape")
            out[...] = self._a
            return out
        return np.array(self._a, order=order, copy=True)

    def set(self, arr, stream=None):
        """Copy a NumPy array of the same shape and dtype into this array."""
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"Only numpy.ndarray can be set to cupy.ndarray, got {type(arr)}")
        if arr.shape != self.shape or arr.dtype != self.dtype:
            raise ValueError(f"Shape/dtype mismatch: {arr.shape} {arr.dtype} into "
                             f"{self.shape} {self.dtype}")
        self._a[...] = arr

    def item(self, *args):
        _transferred("item")
        return self._a.item(*args)

    def tolist(self):
        _transferred("tolist")
        return self._a.tolist()

    __float__ = _to_host("float", float)
    __int__ = _to_host("int", int)
    __complex__ = _to_host("complex", complex)
    __bool__ = _to_host("bool", bool)

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(len(self)))

    def __repr__(self):
        return repr(self._a)

    def __str__(self):
        return str(self._a)

    def __format__(self, spec):
        if self.ndim == 0:
            return format(self._a.item(), spec)
        return format(str(self), spec)

    __hash__ = None

    # ------------------------------------------------------------------ attributes
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    strides = property(lambda self: self._a.strides)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    base = property(lambda self: self._base)
    device = property(lambda self: _DeviceRef())
    data = property(lambda self: _MemoryPointer(self._a))
    T = property(lambda self: wrap(self._a.T, self))
    real = property(lambda self: wrap(self._a.real, self))
    imag = property(lambda self: wrap(self._a.imag, self))

    @property
    def flags(self):
        return Flags(self._a, owndata=self._base is None)

    @shape.setter
    def shape(self, value):
        self._a.shape = value

    # ------------------------------------------------------------------ indexing
    def __getitem__(self, key):
        if _has_bool_mask(key):
            _transferred("boolean mask index")
        return wrap(self._a[unwrap_index(key)], self)

    def __setitem__(self, key, value):
        key = unwrap_index(key)
        if isinstance(value, np.ndarray) and not isinstance(value, ndarray):
            # CuPy copies a host array only into the whole array (a[:] = host, a[...] = host)
            whole = key in (slice(None), Ellipsis) or key == (Ellipsis,)
            if not (whole and value.shape == self.shape):
                raise TypeError(
                    f"a NumPy array can be copied into a cupy.ndarray only whole (a[...] = "
                    f"host, same shape); got index {key!r} and shape {value.shape}"
                )
            self._a[...] = value
            return
        self._a[key] = unwrap_operand(value)

    def fill(self, value):
        self._a.fill(unwrap_operand(value))

    def sort(self, axis=-1):
        self._a.sort(axis=axis)

    # ------------------------------------------------------------------ operators
    def __neg__(self):
        return wrap(-self._a)

    def __pos__(self):
        return wrap(+self._a)

    def __abs__(self):
        return wrap(abs(self._a))

    def __invert__(self):
        return wrap(~self._a)


for _name in _BINARY:
    setattr(ndarray, f"__{_name}__", _operator(f"__{_name}__"))
    setattr(ndarray, f"__r{_name}__", _operator(f"__r{_name}__"))
    if _name != "divmod":
        setattr(ndarray, f"__i{_name}__", _inplace(f"__i{_name}__"))
for _name in _COMPARE:
    setattr(ndarray, _name, _operator(_name))
for _name in _METHODS:
    setattr(ndarray, _name, _method(_name))
del _name
