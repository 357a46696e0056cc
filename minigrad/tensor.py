"""The Tensor: a backend array (``data``), its gradient (``grad``) and its place in the graph.

A Tensor wraps a NumPy or CuPy array. When it ``requires_grad`` and was made by an op, its
``grad_fn`` is the :class:`~minigrad.autograd.Function` node that made it; ``backward()`` walks
those nodes. The methods here are thin: the maths of every op lives in ``minigrad.ops``.
"""

from __future__ import annotations

import builtins
from typing import Any, Optional, Union

import numpy as np

from minigrad import autograd, backend, dtypes
from minigrad.backend import Device

Array = Any


class Tensor:
    """A multi-dimensional array with automatic differentiation.

    Example:
        >>> import minigrad as mg
        >>> x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
        >>> y = (x * x).sum()
        >>> y.backward()
        >>> x.grad
        tensor([2., 4., 6.])
    """

    __slots__ = (
        "data",
        "requires_grad",
        "grad",
        "grad_fn",
        "_out_index",
        "_hooks",
        "_retains_grad",
        "__weakref__",
    )
    # NumPy must defer to our reflected operators: ndarray + Tensor -> Tensor.__radd__
    __array_ufunc__ = None

    def __init__(self, data, dtype=None, device=None, requires_grad: bool = False):
        t = tensor(data, dtype=dtype, device=device, requires_grad=requires_grad)
        self.data = t.data
        self.requires_grad = t.requires_grad
        self.grad = None
        self.grad_fn = None
        self._out_index = 0
        self._hooks = None
        self._retains_grad = False

    @classmethod
    def _make(cls, data: Array, requires_grad: bool = False) -> "Tensor":
        """Wrap a backend array without copying or checking (the ops' fast path)."""
        t = object.__new__(cls)
        t.data = data
        t.requires_grad = requires_grad
        t.grad = None
        t.grad_fn = None
        t._out_index = 0
        t._hooks = None
        t._retains_grad = False
        return t

    # ------------------------------------------------------------------ attributes
    @property
    def shape(self) -> tuple:
        """The size of each dimension, a tuple (PyTorch's ``torch.Size``)."""
        return self.data.shape

    @property
    def ndim(self) -> int:
        """The number of dimensions."""
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        """The element type (a NumPy dtype: ``mg.float32`` is ``np.float32``)."""
        return self.data.dtype

    @property
    def device(self) -> Device:
        """Where the data lives: ``cpu`` (NumPy) or ``cuda:N`` (CuPy)."""
        return backend.CPU if type(self.data) is np.ndarray else backend.device_of(self.data)

    @property
    def xp(self):
        """The array module of this tensor's device (NumPy or CuPy)."""
        return np if type(self.data) is np.ndarray else backend.array_module(self.data)

    @property
    def is_leaf(self) -> bool:
        """True for a tensor no op made (inputs, parameters): backward fills its ``.grad``."""
        return self.grad_fn is None

    @property
    def is_cuda(self) -> bool:
        """True when the data is on a GPU."""
        return self.device.type == "cuda"

    @property
    def T(self) -> "Tensor":  # noqa: N802
        """All dimensions reversed (``permute(n-1, ..., 0)``)."""
        return ops.permute(self, tuple(range(self.ndim - 1, -1, -1)))

    @property
    def mT(self) -> "Tensor":  # noqa: N802
        """The last two dimensions swapped."""
        return ops.transpose(self, -2, -1)

    def size(self, dim: Optional[int] = None):
        """The shape, or the size of dimension ``dim``."""
        return self.data.shape if dim is None else self.data.shape[dim]

    def dim(self) -> int:
        """The number of dimensions (``ndim``)."""
        return self.data.ndim

    def numel(self) -> int:
        """The number of elements."""
        return int(self.data.size)

    def element_size(self) -> int:
        """Bytes per element."""
        return self.data.itemsize

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    # ------------------------------------------------------------------ conversion
    def numpy(self) -> np.ndarray:
        """The data as a NumPy array (shares memory on the CPU). Fails if it requires grad."""
        if self.requires_grad:
            raise RuntimeError(
                "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy()."
            )
        if type(self.data) is not np.ndarray:
            raise TypeError(
                f"can't convert {self.device} device type tensor to numpy. Use Tensor.cpu() to "
                "copy the tensor to host memory first."
            )
        return self.data

    def __array__(self, dtype=None, copy=None):
        if type(self.data) is not np.ndarray:
            raise TypeError(
                f"can't convert {self.device} device type tensor to numpy. Use Tensor.cpu() to "
                "copy the tensor to host memory first."
            )
        return self.data if dtype is None else self.data.astype(dtype, copy=False)

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise RuntimeError(
                f"a Tensor with {self.data.size} elements cannot be converted to Scalar"
            )
        backend.check_deferred()  # on a GPU the host waits here: deferred checks report now
        return self.data.item()

    def tolist(self):
        """The data as nested Python lists (a number for a 0-d tensor)."""
        return backend.to_device(self.data, backend.CPU).tolist()

    def __float__(self):
        return builtins.float(self.item())

    def __int__(self):
        return builtins.int(self.item())

    def __index__(self):
        if self.dtype.kind not in "iub":
            raise TypeError("only integer tensors of a single element can be used as an index")
        return builtins.int(self.item())

    def __bool__(self):
        if self.data.size != 1:
            raise RuntimeError(
                f"Boolean value of Tensor with {self.data.size} values is ambiguous"
            )
        backend.check_deferred()
        return builtins.bool(self.data.item())

    def to(self, *args, **kwargs) -> "Tensor":
        """``x.to('cuda')``, ``x.to(mg.float64)``, ``x.to('cpu', mg.float16)``, ``x.to(other)``.

        Differentiable: gradients flow back to the original device and dtype.
        """
        device = kwargs.pop("device", None)
        dtype = kwargs.pop("dtype", None)
        kwargs.pop("non_blocking", None)
        kwargs.pop("copy", None)
        if kwargs:
            raise TypeError(f"to() got unexpected arguments {sorted(kwargs)}")
        for a in args:
            if isinstance(a, Tensor):
                device, dtype = a.device, a.dtype
            elif isinstance(a, (str, Device)):
                device = a
            else:
                dtype = a
        out = self
        if dtype is not None:
            out = ops.cast(out, dtypes.to_dtype(dtype))
        if device is not None:
            out = ops.to_device(out, backend.get_device(device))
        return out

    def cpu(self) -> "Tensor":
        """This tensor on the CPU (itself when already there)."""
        return self.to("cpu")

    def cuda(self, device: Union[int, str, None] = None) -> "Tensor":
        """This tensor on a GPU (``cuda`` or ``cuda:N``)."""
        if isinstance(device, builtins.int):
            device = f"cuda:{device}"
        return self.to(device or "cuda")

    def float(self) -> "Tensor":
        """As float32 (``self.to(mg.float32)``)."""
        return self.to(dtypes.float32)

    def double(self) -> "Tensor":
        """As float64."""
        return self.to(dtypes.float64)

    def half(self) -> "Tensor":
        """As float16."""
        return self.to(dtypes.float16)

    def long(self) -> "Tensor":
        """As int64."""
        return self.to(dtypes.int64)

    def int(self) -> "Tensor":
        """As int32."""
        return self.to(dtypes.int32)

    def bool(self) -> "Tensor":
        """As bool."""
        return self.to(dtypes.bool)

    def type_as(self, other: "Tensor") -> "Tensor":
        """As the dtype of ``other``."""
        return self.to(other.dtype)

    def detach(self) -> "Tensor":
        """The same data, cut from the graph."""
        return Tensor._make(self.data)

    def detach_(self) -> "Tensor":
        """Cut this tensor from the graph in place (it becomes a leaf)."""
        self.grad_fn = None
        self.requires_grad = False
        return self

    def clone(self) -> "Tensor":
        """A copy of the data; differentiable (the gradient passes through)."""
        return ops.clone(self)

    def contiguous(self) -> "Tensor":
        """This tensor when its data is C-contiguous, else a contiguous copy."""
        if self.data.flags.c_contiguous:
            return self
        return ops.clone(self)

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        """Set ``requires_grad`` in place (leaves only); returns self."""
        if not self.is_leaf and not requires_grad:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables. Use .detach()."
            )
        if requires_grad and not dtypes.is_floating(self.dtype):
            raise RuntimeError(
                f"only Tensors of floating point dtype can require gradients (got {self.dtype})"
            )
        self.requires_grad = builtins.bool(requires_grad)
        return self

    # DLPack: hand the array to other frameworks without a copy
    def __dlpack__(self, *args, **kwargs):
        return self.data.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self.data.__dlpack_device__()

    # ------------------------------------------------------------------ autograd
    def backward(self, gradient=None, retain_graph: Optional[bool] = None,
                 create_graph: bool = False, inputs=None) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``.

        Args:
            gradient: d(loss)/d(self); may be omitted for a single-element tensor.
            retain_graph: keep the graph for another backward (default: ``create_graph``).
            create_graph: record the backward pass, for higher-order derivatives.
        """
        if retain_graph is None:
            retain_graph = create_graph
        seeds = autograd._seed_grads([self], None if gradient is None else [gradient])
        if inputs is not None:
            inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
            grads = autograd.run_backward([self], seeds, retain_graph, create_graph, inputs)
            for t, g in zip(inputs, grads):
                if g is not None:
                    g = g if create_graph else g.detach()
                    t.grad = g if t.grad is None else t.grad + g
            return
        autograd.run_backward([self], seeds, retain_graph, create_graph)

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed; it may return a
        replacement. Returns a handle whose ``remove()`` unregisters it."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self._hooks is None:
            self._hooks = {}
        key = object()
        self._hooks[key] = hook
        self._hold()
        return _HookHandle(self._hooks, key)

    def _hold(self) -> None:
        """Keep this non-leaf tensor alive as long as its node: the engine finds hooks and
        retained gradients through it, and a consumer that keeps no inputs
        (``Function.keeps_inputs``) does not hold it (PyTorch keeps such hooks on the node)."""
        fn = self.grad_fn
        if fn is not None and fn.__dict__.get("inputs", ()) is not None:
            held = fn.__dict__.setdefault("held_outputs", [])
            if not any(h is self for h in held):
                held.append(self)

    def register_post_accumulate_grad_hook(self, hook):
        """Call ``hook(tensor)`` on this leaf once its ``.grad`` holds the complete gradient
        of a backward pass, while the rest of the pass still runs (PyTorch's name). Returns a
        handle whose ``remove()`` unregisters it.

        Example:
            >>> import minigrad as mg
            >>> w = mg.tensor([1.0, 2.0], requires_grad=True)
            >>> _ = w.register_post_accumulate_grad_hook(lambda t: print(t.grad))
            >>> (w * 3).sum().backward()
            tensor([3., 3.])
        """
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self.grad_fn is not None:
            raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf "
                               "tensors")
        return autograd.add_post_accumulate_grad_hook(self, hook)

    def retain_grad(self) -> None:
        """Keep ``.grad`` for this non-leaf tensor after backward."""
        if self.grad_fn is not None:
            self._retains_grad = True
            self._hold()

    @property
    def retains_grad(self) -> bool:
        """True when ``retain_grad()`` was called on this non-leaf tensor."""
        return self._retains_grad

    def all(self, dim=None, keepdim: bool = False) -> "Tensor":
        """True where every element (along ``dim``) is non-zero; no gradient."""
        return Tensor._make(self.xp.asarray(self.data.all(axis=dim, keepdims=keepdim)))

    def any(self, dim=None, keepdim: bool = False) -> "Tensor":
        """True where some element (along ``dim``) is non-zero; no gradient."""
        return Tensor._make(self.xp.asarray(self.data.any(axis=dim, keepdims=keepdim)))

    def zero_(self) -> "Tensor":
        """Fill with zeros in place."""
        return self.fill_(0)

    # ------------------------------------------------------------------ in-place (no graph)
    def _check_inplace(self, name: str) -> None:
        if autograd.is_grad_enabled() and self.requires_grad:
            kind = "a leaf Variable that requires grad" if self.is_leaf else "a tensor in the graph"
            raise RuntimeError(
                f"{name}: {kind} is being used in an in-place operation. Wrap it in "
                "`with mg.no_grad():` (as optimizers and initialisers do) or use the "
                "out-of-place form."
            )

    def _iadd_(self, other: "Tensor") -> "Tensor":
        # engine-only: accumulate a gradient in place
        self.data += other.data
        return self

    def _inplace(self, name, fn):
        self._check_inplace(name)
        result = fn(self.data)
        if result is not None and result is not self.data:
            self.data[...] = result
        return self

    def fill_(self, value) -> "Tensor":
        """Fill with ``value`` in place."""
        return self._inplace("fill_", lambda d: d.fill(_raw(value)))

    def copy_(self, src) -> "Tensor":
        """Copy ``src``'s values in (broadcast, cast, moved to this device)."""
        src = src.data if isinstance(src, Tensor) else src
        src = backend.to_device(self.xp.asarray(src) if not hasattr(src, "shape") else src,
                                self.device)
        return self._inplace("copy_", lambda d: d.__setitem__(..., src))

    def add_(self, other, alpha=1) -> "Tensor":
        """``self += alpha * other`` in place."""
        o = _raw(other)
        return self._inplace("add_", lambda d: d.__iadd__(o if alpha == 1 else o * alpha))

    def sub_(self, other, alpha=1) -> "Tensor":
        """``self -= alpha * other`` in place."""
        o = _raw(other)
        return self._inplace("sub_", lambda d: d.__isub__(o if alpha == 1 else o * alpha))

    def mul_(self, other) -> "Tensor":
        """``self *= other`` in place."""
        o = _raw(other)
        return self._inplace("mul_", lambda d: d.__imul__(o))

    def div_(self, other) -> "Tensor":
        """``self /= other`` in place."""
        o = _raw(other)
        return self._inplace("div_", lambda d: d.__itruediv__(o))

    def clamp_(self, min=None, max=None) -> "Tensor":  # noqa: A002
        """Limit values to ``[min, max]`` in place."""
        return self._inplace("clamp_", lambda d: self.xp.clip(d, min, max, out=d))

    def uniform_(self, a: float = 0.0, b: float = 1.0, *, generator=None) -> "Tensor":
        """Fill with draws from U(a, b) in place (from ``generator`` when given)."""
        dev = self.device
        return self._inplace(
            "uniform_",
            lambda d: d.__setitem__(..., backend.random_uniform(dev, d.shape, d.dtype, a, b,
                                                                generator)),
        )

    def normal_(self, mean: float = 0.0, std: float = 1.0, *, generator=None) -> "Tensor":
        """Fill with draws from N(mean, std^2) in place (from ``generator`` when given)."""
        dev = self.device
        return self._inplace(
            "normal_",
            lambda d: d.__setitem__(..., backend.random_normal(dev, d.shape, d.dtype, mean, std,
                                                               generator)),
        )

    def masked_fill_(self, mask, value) -> "Tensor":
        """Set ``value`` where ``mask`` is True, in place."""
        m = _raw(mask)
        return self._inplace("masked_fill_",
                             lambda d: self.xp.putmask(d, self.xp.broadcast_to(m, d.shape),
                                                       _raw(value)))

    def __setitem__(self, key, value) -> None:
        self._check_inplace("__setitem__")
        v = _raw(value)
        self.data[ops.indexing.normalize_index(key)] = v

    # ------------------------------------------------------------------ ops as methods
    # x.exp() is mg.exp(x): each method calls its op with this tensor first.
    def abs(self) -> "Tensor":
        """Elementwise absolute value. See :func:`minigrad.abs`."""
        return ops.abs(self)

    def add(self, other, alpha=1) -> "Tensor":
        """``self + alpha * other``, broadcasting. See :func:`minigrad.add`."""
        return ops.add(self, other, alpha)

    def amax(self, dim=None, keepdim: bool = False) -> "Tensor":
        """Maximum values over ``dim`` (ties share the gradient). See :func:`minigrad.amax`."""
        return ops.amax(self, dim, keepdim)

    def amin(self, dim=None, keepdim: bool = False) -> "Tensor":
        """Minimum values over ``dim`` (ties share the gradient). See :func:`minigrad.amin`."""
        return ops.amin(self, dim, keepdim)

    def argmax(self, dim=None, keepdim: bool = False) -> "Tensor":
        """Index of the maximum (of the flattened tensor when ``dim`` is None).

        See :func:`minigrad.argmax`.
        """
        return ops.argmax(self, dim, keepdim)

    def argmin(self, dim=None, keepdim: bool = False) -> "Tensor":
        """Index of the minimum (of the flattened tensor when ``dim`` is None).

        See :func:`minigrad.argmin`.
        """
        return ops.argmin(self, dim, keepdim)

    def chunk(self, chunks: int, dim: int = 0):
        """Split into ``chunks`` pieces of (nearly) equal size, as PyTorch does.

        See :func:`minigrad.chunk`.
        """
        return ops.chunk(self, chunks, dim)

    def clamp(self, min=None, max=None) -> "Tensor":
        """Limit values to ``[min, max]`` (either may be None). See :func:`minigrad.clamp`."""
        return ops.clamp(self, min, max)

    def clip(self, min=None, max=None) -> "Tensor":
        """Limit values to ``[min, max]`` (either may be None). See :func:`minigrad.clip`."""
        return ops.clip(self, min, max)

    def cos(self) -> "Tensor":
        """Elementwise cosine. See :func:`minigrad.cos`."""
        return ops.cos(self)

    def div(self, other) -> "Tensor":
        """``self / other``, broadcasting (true division: integers give float32).

        See :func:`minigrad.div`.
        """
        return ops.div(self, other)

    def eq(self, other) -> "Tensor":
        """Elementwise ``self == other`` (a bool tensor, no gradient). See :func:`minigrad.eq`."""
        return ops.eq(self, other)

    def exp(self) -> "Tensor":
        """Elementwise e**x. See :func:`minigrad.exp`."""
        return ops.exp(self)

    def expand(self, *shape) -> "Tensor":
        """Broadcast to ``shape`` without copying (-1 keeps a dimension).

        See :func:`minigrad.expand`.
        """
        return ops.expand(self, *shape)

    def expand_as(self, other: "Tensor") -> "Tensor":
        """This tensor broadcast to the shape of ``other``. See :func:`minigrad.expand_as`."""
        return ops.expand_as(self, other)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> "Tensor":
        """Merge dimensions ``start_dim..end_dim`` into one. See :func:`minigrad.flatten`."""
        return ops.flatten(self, start_dim, end_dim)

    def gather(self, dim: int, index: "Tensor") -> "Tensor":
        """Values along ``dim`` at ``index``: ``out[i][j] = self[i][index[i][j]]`` for dim=1.

        See :func:`minigrad.gather`.
        """
        return ops.gather(self, dim, index)

    def ge(self, other) -> "Tensor":
        """Elementwise ``self >= other`` (a bool tensor, no gradient). See :func:`minigrad.ge`."""
        return ops.ge(self, other)

    def gelu(self, approximate: str = "none") -> "Tensor":
        """Gaussian error linear unit, exact (``'none'``) or with the ``'tanh'`` approximation.

        See :func:`minigrad.gelu`.
        """
        return ops.gelu(self, approximate)

    def gt(self, other) -> "Tensor":
        """Elementwise ``self > other`` (a bool tensor, no gradient). See :func:`minigrad.gt`."""
        return ops.gt(self, other)

    def index_select(self, dim: int, index: "Tensor") -> "Tensor":
        """The entries along ``dim`` at ``index`` (a 1-d integer tensor).

        See :func:`minigrad.index_select`.
        """
        return ops.index_select(self, dim, index)

    def isfinite(self) -> "Tensor":
        """Elementwise: True where the value is neither infinite nor NaN.

        See :func:`minigrad.isfinite`.
        """
        return ops.isfinite(self)

    def isnan(self) -> "Tensor":
        """Elementwise: True where the value is NaN. See :func:`minigrad.isnan`."""
        return ops.isnan(self)

    def le(self, other) -> "Tensor":
        """Elementwise ``self <= other`` (a bool tensor, no gradient). See :func:`minigrad.le`."""
        return ops.le(self, other)

    def log(self) -> "Tensor":
        """Elementwise natural logarithm. See :func:`minigrad.log`."""
        return ops.log(self)

    def log1p(self) -> "Tensor":
        """Elementwise log(1 + x), accurate for small x. See :func:`minigrad.log1p`."""
        return ops.log1p(self)

    def log_softmax(self, dim=None, dtype=None) -> "Tensor":
        """log(softmax(x)) along ``dim``, computed without forming softmax.

        See :func:`minigrad.log_softmax`.
        """
        return ops.log_softmax(self, dim, dtype)

    def logical_and(self, other) -> "Tensor":
        """Elementwise logical AND of the truth values (a bool tensor).

        See :func:`minigrad.logical_and`.
        """
        return ops.logical_and(self, other)

    def logical_not(self) -> "Tensor":
        """Elementwise logical NOT of the truth values (a bool tensor).

        See :func:`minigrad.logical_not`.
        """
        return ops.logical_not(self)

    def logical_or(self, other) -> "Tensor":
        """Elementwise logical OR of the truth values (a bool tensor).

        See :func:`minigrad.logical_or`.
        """
        return ops.logical_or(self, other)

    def logical_xor(self, other) -> "Tensor":
        """Elementwise logical XOR of the truth values (a bool tensor).

        See :func:`minigrad.logical_xor`.
        """
        return ops.logical_xor(self, other)

    def logsumexp(self, dim, keepdim: bool = False) -> "Tensor":
        """log(sum(exp(x))) over ``dim``, computed stably. See :func:`minigrad.logsumexp`."""
        return ops.logsumexp(self, dim, keepdim)

    def lt(self, other) -> "Tensor":
        """Elementwise ``self < other`` (a bool tensor, no gradient). See :func:`minigrad.lt`."""
        return ops.lt(self, other)

    def masked_fill(self, mask: "Tensor", value) -> "Tensor":
        """This tensor with ``value`` where ``mask`` is True (the mask broadcasts).

        See :func:`minigrad.masked_fill`.
        """
        return ops.masked_fill(self, mask, value)

    def matmul(self, other: "Tensor") -> "Tensor":
        """Matrix product ``self @ other`` (vectors promoted, batches broadcast).

        See :func:`minigrad.matmul`.
        """
        return ops.matmul(self, other)

    def max(self, dim=None, keepdim: bool = False):
        """The maximum; with ``dim``, a ``(values, indices)`` pair, as in PyTorch.

        See :func:`minigrad.max`.
        """
        return ops.max(self, dim, keepdim)

    def maximum(self, other) -> "Tensor":
        """Elementwise maximum of ``self`` and ``other``. See :func:`minigrad.maximum`."""
        return ops.maximum(self, other)

    def mean(self, dim=None, keepdim: bool = False, dtype=None) -> "Tensor":
        """Arithmetic mean over ``dim`` (a float tensor is required, as in PyTorch).

        See :func:`minigrad.mean`.
        """
        return ops.mean(self, dim, keepdim, dtype)

    def min(self, dim=None, keepdim: bool = False):
        """The minimum; with ``dim``, a ``(values, indices)`` pair, as in PyTorch.

        See :func:`minigrad.min`.
        """
        return ops.min(self, dim, keepdim)

    def minimum(self, other) -> "Tensor":
        """Elementwise minimum of ``self`` and ``other``. See :func:`minigrad.minimum`."""
        return ops.minimum(self, other)

    def mul(self, other) -> "Tensor":
        """``self * other``, broadcasting. See :func:`minigrad.mul`."""
        return ops.mul(self, other)

    def ne(self, other) -> "Tensor":
        """Elementwise ``self != other`` (a bool tensor, no gradient). See :func:`minigrad.ne`."""
        return ops.ne(self, other)

    def neg(self) -> "Tensor":
        """Elementwise ``-self``. See :func:`minigrad.neg`."""
        return ops.neg(self)

    def permute(self, *dims) -> "Tensor":
        """Reorder the dimensions: ``x.permute(2, 0, 1)``. See :func:`minigrad.permute`."""
        return ops.permute(self, *dims)

    def pow(self, other) -> "Tensor":
        """``self ** other``, broadcasting. See :func:`minigrad.pow`."""
        return ops.pow(self, other)

    def prod(self, dim=None, keepdim: bool = False) -> "Tensor":
        """Product over one dimension (or all). See :func:`minigrad.prod`."""
        return ops.prod(self, dim, keepdim)

    def relu(self) -> "Tensor":
        """Elementwise max(x, 0). See :func:`minigrad.relu`."""
        return ops.relu(self)

    def reshape(self, *shape) -> "Tensor":
        """This tensor with a new shape of as many elements (-1 infers one dimension).

        See :func:`minigrad.reshape`.
        """
        return ops.reshape(self, *shape)

    def rsqrt(self) -> "Tensor":
        """Elementwise 1 / sqrt(x). See :func:`minigrad.rsqrt`."""
        return ops.rsqrt(self)

    def scatter_add(self, dim: int, index: "Tensor", src: "Tensor") -> "Tensor":
        """A copy with ``src`` added at ``index`` along ``dim`` (repeats accumulate).

        See :func:`minigrad.scatter_add`.
        """
        return ops.scatter_add(self, dim, index, src)

    def sigmoid(self) -> "Tensor":
        """Elementwise logistic function 1 / (1 + e**-x). See :func:`minigrad.sigmoid`."""
        return ops.sigmoid(self)

    def sign(self) -> "Tensor":
        """Elementwise sign (-1, 0 or 1); not differentiable. See :func:`minigrad.sign`."""
        return ops.sign(self)

    def sin(self) -> "Tensor":
        """Elementwise sine. See :func:`minigrad.sin`."""
        return ops.sin(self)

    def softmax(self, dim=None, dtype=None) -> "Tensor":
        """exp(x) normalised to sum to 1 along ``dim`` (stable for large logits).

        See :func:`minigrad.softmax`.
        """
        return ops.softmax(self, dim, dtype)

    def split(self, split_size_or_sections, dim: int = 0):
        """Split into pieces of ``split_size`` (the last may be smaller) or of the given sizes.

        See :func:`minigrad.split`.
        """
        return ops.split(self, split_size_or_sections, dim)

    def sqrt(self) -> "Tensor":
        """Elementwise square root. See :func:`minigrad.sqrt`."""
        return ops.sqrt(self)

    def square(self) -> "Tensor":
        """Elementwise x * x. See :func:`minigrad.square`."""
        return ops.square(self)

    def squeeze(self, dim=None) -> "Tensor":
        """Remove dimensions of size 1 (all of them, or those in ``dim``).

        See :func:`minigrad.squeeze`.
        """
        return ops.squeeze(self, dim)

    def std(self, dim=None, unbiased=None, keepdim: bool = False, *, correction=None) -> "Tensor":
        """Standard deviation over ``dim`` (sqrt of :func:`var`). See :func:`minigrad.std`."""
        return ops.std(self, dim, unbiased, keepdim, correction=correction)

    def sub(self, other, alpha=1) -> "Tensor":
        """``self - alpha * other``, broadcasting. See :func:`minigrad.sub`."""
        return ops.sub(self, other, alpha)

    def sum(self, dim=None, keepdim: bool = False, dtype=None) -> "Tensor":
        """Sum over ``dim`` (all dimensions by default). Integer and bool tensors sum to int64.

        See :func:`minigrad.sum`.
        """
        return ops.sum(self, dim, keepdim, dtype)

    def t(self) -> "Tensor":
        """Transpose a matrix (a 0-d or 1-d tensor is returned as is). See :func:`minigrad.t`."""
        return ops.t(self)

    def tanh(self) -> "Tensor":
        """Elementwise hyperbolic tangent. See :func:`minigrad.tanh`."""
        return ops.tanh(self)

    def transpose(self, dim0: int, dim1: int) -> "Tensor":
        """Swap two dimensions. See :func:`minigrad.transpose`."""
        return ops.transpose(self, dim0, dim1)

    def tril(self, diagonal: int = 0) -> "Tensor":
        """The lower triangle of the last two dimensions (the rest zeroed).

        See :func:`minigrad.tril`.
        """
        return ops.tril(self, diagonal)

    def triu(self, diagonal: int = 0) -> "Tensor":
        """The upper triangle of the last two dimensions (the rest zeroed).

        See :func:`minigrad.triu`.
        """
        return ops.triu(self, diagonal)

    def unbind(self, dim: int = 0):
        """Remove a dimension, returning the slices along it. See :func:`minigrad.unbind`."""
        return ops.unbind(self, dim)

    def unflatten(self, dim: int, sizes) -> "Tensor":
        """Split dimension ``dim`` into ``sizes``. See :func:`minigrad.unflatten`."""
        return ops.unflatten(self, dim, sizes)

    def unsqueeze(self, dim: int) -> "Tensor":
        """Insert a dimension of size 1 at ``dim``. See :func:`minigrad.unsqueeze`."""
        return ops.unsqueeze(self, dim)

    def var(self, dim=None, unbiased=None, keepdim: bool = False, *, correction=None) -> "Tensor":
        """Variance over ``dim``; ``correction=1`` (default) is the unbiased estimator.

        See :func:`minigrad.var`.
        """
        return ops.var(self, dim, unbiased, keepdim, correction=correction)

    def view(self, *shape) -> "Tensor":
        """This tensor with a new shape of as many elements (-1 infers one dimension).

        See :func:`minigrad.view`.
        """
        return ops.view(self, *shape)

    def where(self, condition: "Tensor", other) -> "Tensor":
        """``where(condition, self, other)``, as in PyTorch. See :func:`minigrad.where`."""
        return ops.where(condition, self, other)

    def view_as(self, other: "Tensor") -> "Tensor":
        """This tensor with the shape of ``other``."""
        return ops.reshape(self, other.shape)

    def reshape_as(self, other: "Tensor") -> "Tensor":
        """This tensor with the shape of ``other``."""
        return ops.reshape(self, other.shape)

    # ------------------------------------------------------------------ PyTorch names (issue 19)
    def addmm(self, mat1: "Tensor", mat2: "Tensor", *, beta=1, alpha=1) -> "Tensor":
        """``beta * self + alpha * (mat1 @ mat2)``. See :func:`minigrad.addmm`."""
        return ops.addmm(self, mat1, mat2, beta=beta, alpha=alpha)

    def allclose(self, other, rtol: float = 1e-05, atol: float = 1e-08,
                 equal_nan: bool = False) -> builtins.bool:
        """True when every element is close to ``other``. See :func:`minigrad.allclose`."""
        return ops.allclose(self, other, rtol, atol, equal_nan)

    def argsort(self, dim: builtins.int = -1, descending: builtins.bool = False,
                stable: builtins.bool = False) -> "Tensor":
        """Indices that sort along ``dim``. See :func:`minigrad.argsort`."""
        return ops.argsort(self, dim, descending, stable)

    def baddbmm(self, batch1: "Tensor", batch2: "Tensor", *, beta=1, alpha=1) -> "Tensor":
        """``beta * self + alpha * (batch1 @ batch2)``. See :func:`minigrad.baddbmm`."""
        return ops.baddbmm(self, batch1, batch2, beta=beta, alpha=alpha)

    def bernoulli(self, p=None, *, generator=None) -> "Tensor":
        """0/1 draws with these probabilities. See :func:`minigrad.bernoulli`."""
        return ops.bernoulli(self, p, generator=generator)

    def ceil(self) -> "Tensor":
        """Round up, elementwise (zero gradient). See :func:`minigrad.ceil`."""
        return ops.ceil(self)

    def count_nonzero(self, dim=None) -> "Tensor":
        """How many elements are non-zero. See :func:`minigrad.count_nonzero`."""
        return ops.count_nonzero(self, dim)

    def cumprod(self, dim: builtins.int, dtype=None) -> "Tensor":
        """Running product along ``dim``. See :func:`minigrad.cumprod`."""
        return ops.cumprod(self, dim, dtype=dtype)

    def cumsum(self, dim: builtins.int, dtype=None) -> "Tensor":
        """Running sum along ``dim``. See :func:`minigrad.cumsum`."""
        return ops.cumsum(self, dim, dtype=dtype)

    def diag(self, diagonal: builtins.int = 0) -> "Tensor":
        """A diagonal matrix from a vector, or a matrix's diagonal. See :func:`minigrad.diag`.
        """
        return ops.diag(self, diagonal)

    def flip(self, *dims) -> "Tensor":
        """Reversed along ``dims`` (``x.flip(0)`` or ``x.flip([0, 1])``). See
        :func:`minigrad.flip`."""
        return ops.flip(self, dims[0] if len(dims) == 1 else dims)

    def floor(self) -> "Tensor":
        """Round down, elementwise (zero gradient). See :func:`minigrad.floor`."""
        return ops.floor(self)

    def fmod(self, other) -> "Tensor":
        """Remainder with the sign of ``self``. See :func:`minigrad.fmod`."""
        return ops.fmod(self, other)

    def is_contiguous(self) -> builtins.bool:
        """True when the elements are laid out row-major without gaps (C order)."""
        return builtins.bool(self.data.flags.c_contiguous)

    def isclose(self, other, rtol: float = 1e-05, atol: float = 1e-08,
                equal_nan: builtins.bool = False) -> "Tensor":
        """Elementwise closeness to ``other``. See :func:`minigrad.isclose`."""
        return ops.isclose(self, other, rtol, atol, equal_nan)

    def lerp(self, end: "Tensor", weight) -> "Tensor":
        """``self + weight * (end - self)``. See :func:`minigrad.lerp`."""
        return ops.lerp(self, end, weight)

    def multinomial(self, num_samples: builtins.int, replacement: builtins.bool = False, *,
                    generator=None) -> "Tensor":
        """Category indices drawn with these weights. See :func:`minigrad.multinomial`."""
        return ops.multinomial(self, num_samples, replacement, generator=generator)

    def nonzero(self, *, as_tuple: builtins.bool = False):
        """Indices of the non-zero elements. See :func:`minigrad.nonzero`."""
        return ops.nonzero(self, as_tuple=as_tuple)

    def norm(self, p="fro", dim=None, keepdim: builtins.bool = False, dtype=None) -> "Tensor":
        """The ``p``-norm over ``dim`` (all elements by default). See :func:`minigrad.norm`."""
        return ops.norm(self, p, dim, keepdim, dtype)

    def outer(self, vec2: "Tensor") -> "Tensor":
        """Outer product with ``vec2``. See :func:`minigrad.outer`."""
        return ops.outer(self, vec2)

    def remainder(self, other) -> "Tensor":
        """Remainder with the sign of ``other`` (``%``). See :func:`minigrad.remainder`."""
        return ops.remainder(self, other)

    def repeat(self, *sizes) -> "Tensor":
        """Tiled ``sizes[i]`` times along each dimension (NumPy's ``tile``)."""
        return ops.repeat(self, *sizes)

    def repeat_interleave(self, repeats, dim=None, *, output_size=None) -> "Tensor":
        """Each element repeated in place. See :func:`minigrad.repeat_interleave`."""
        return ops.repeat_interleave(self, repeats, dim, output_size=output_size)

    def roll(self, shifts, dims=None) -> "Tensor":
        """Shifted along ``dims``, wrapping around. See :func:`minigrad.roll`."""
        return ops.roll(self, shifts, dims)

    def round(self, *, decimals: builtins.int = 0) -> "Tensor":
        """Round half to even (zero gradient). See :func:`minigrad.round`."""
        return ops.round(self, decimals=decimals)

    def sort(self, dim: builtins.int = -1, descending: builtins.bool = False,
             stable: builtins.bool = False):
        """``(values, indices)`` sorted along ``dim``. See :func:`minigrad.sort`."""
        return ops.sort(self, dim, descending, stable)

    def topk(self, k: builtins.int, dim: builtins.int = -1, largest: builtins.bool = True,
             sorted: builtins.bool = True):  # noqa: A002
        """The ``k`` largest (or smallest) values and their indices. See :func:`minigrad.topk`.
        """
        return ops.topk(self, k, dim, largest, sorted)

    def type(self, dtype=None, non_blocking: builtins.bool = False):
        """Without ``dtype``, the type name; with one, this tensor converted to it.

        The name is PyTorch's with ``minigrad`` in place of ``torch``: ``'minigrad.FloatTensor'``,
        ``'minigrad.cuda.LongTensor'``. It is not ``'torch.FloatTensor'``, so PyTorch code that
        compares ``t.type()`` with a string needs ``t.dtype == mg.float32`` (and ``t.is_cuda``)
        instead; converting with a name works unchanged.

        Args:
            dtype: a dtype, or a type name, PyTorch's (``'torch.LongTensor'``,
                ``'torch.cuda.HalfTensor'``) or minigrad's (``'minigrad.LongTensor'``). As in
                PyTorch, a name also says the device: a ``cuda`` name moves a CPU tensor to the
                GPU, any other moves a GPU tensor to the CPU.
            non_blocking: accepted for PyTorch compatibility.

        Example:
            >>> import minigrad as mg
            >>> x = mg.zeros(2)
            >>> x.type(), x.type("torch.LongTensor").type()
            ('minigrad.FloatTensor', 'minigrad.LongTensor')
        """
        if dtype is None:
            name = _TYPE_NAMES.get(self.data.dtype.name, self.data.dtype.name)
            return f"minigrad.{'cuda.' if self.is_cuda else ''}{name}"
        if not isinstance(dtype, str):
            return self.to(dtypes.to_dtype(dtype))
        module, _, name = dtype.rpartition(".")
        by_name = {v: k for k, v in _TYPE_NAMES.items()}
        if module not in ("torch", "torch.cuda", "minigrad", "minigrad.cuda") or (
            name not in by_name
        ):
            raise ValueError(f"invalid type: {dtype!r}")
        out = self.to(dtypes.to_dtype(by_name[name]))
        if module.endswith("cuda") != out.is_cuda:
            out = out.to("cuda" if module.endswith("cuda") else "cpu")
        return out

    def unique(self, sorted: builtins.bool = True, return_inverse: builtins.bool = False,  # noqa: A002
               return_counts: builtins.bool = False, dim=None):
        """The distinct values (sorted). See :func:`minigrad.unique`."""
        return ops.unique(self, sorted, return_inverse, return_counts, dim)

    def __mod__(self, other):
        return ops.remainder(self, other)

    def __rmod__(self, other):
        return ops.remainder(other, self)

    multiply = mul
    subtract = sub
    divide = div


    # ------------------------------------------------------------------ operators
    def __add__(self, other):
        return ops.add(self, other)

    def __radd__(self, other):
        return ops.add(other, self)

    def __sub__(self, other):
        return ops.sub(self, other)

    def __rsub__(self, other):
        return ops.sub(other, self)

    def __mul__(self, other):
        return ops.mul(self, other)

    def __rmul__(self, other):
        return ops.mul(other, self)

    def __truediv__(self, other):
        return ops.div(self, other)

    def __rtruediv__(self, other):
        return ops.div(other, self)

    def __pow__(self, other):
        return ops.pow(self, other)

    def __rpow__(self, other):
        return ops.pow(other, self)

    def __matmul__(self, other):
        return ops.matmul(self, other)

    def __rmatmul__(self, other):
        return ops.matmul(other, self)

    def __neg__(self):
        return ops.neg(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return ops.abs(self)

    def __invert__(self):
        return ops.bitwise_not(self)

    def __and__(self, other):
        return ops.logical_and(self, other)

    def __or__(self, other):
        return ops.logical_or(self, other)

    def __xor__(self, other):
        return ops.logical_xor(self, other)

    def __eq__(self, other):  # elementwise, as in PyTorch
        return ops.eq(self, other)

    def __ne__(self, other):
        return ops.ne(self, other)

    def __lt__(self, other):
        return ops.lt(self, other)

    def __le__(self, other):
        return ops.le(self, other)

    def __gt__(self, other):
        return ops.gt(self, other)

    def __ge__(self, other):
        return ops.ge(self, other)

    __hash__ = object.__hash__

    def __getitem__(self, key):
        return ops.getitem(self, key)

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    def __repr__(self):
        values = backend.to_device(self.data, backend.CPU)
        fmt = {}
        if values.dtype.kind == "f" and values.size:
            finite = values[np.isfinite(values)].astype(np.float64)
            # PyTorch's style: integral floats as "1.", others with 4 decimals
            if finite.size and not np.all(finite == np.round(finite)):
                big = np.abs(finite).max()
                small = np.abs(finite[finite != 0]).min() if np.any(finite != 0) else 1.0
                if big < 1e8 and small >= 1e-4:
                    fmt = {"floatmode": "fixed"}
        body = np.array2string(values, separator=", ", prefix="tensor(", precision=4,
                               threshold=1000, **fmt)
        extras = []
        if self.device.type != "cpu":
            extras.append(f"device='{self.device}'")
        if self.dtype not in (dtypes.float32, dtypes.int64, dtypes.bool):
            extras.append(f"dtype=minigrad.{self.dtype}")
        elif self.data.size == 0:
            extras.append(f"size={self.shape}")
        if self.grad_fn is not None:
            extras.append(f"grad_fn=<{type(self.grad_fn).__name__}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"


class _HookHandle:
    def __init__(self, hooks, key):
        self.hooks, self.key = hooks, key

    def remove(self):
        self.hooks.pop(self.key, None)


# Tensor.type()'s names, as PyTorch's legacy tensor types
_TYPE_NAMES = {
    "float32": "FloatTensor", "float64": "DoubleTensor", "float16": "HalfTensor",
    "bfloat16": "BFloat16Tensor", "int64": "LongTensor", "int32": "IntTensor",
    "int16": "ShortTensor", "int8": "CharTensor", "uint8": "ByteTensor", "bool": "BoolTensor",
}


def _raw(value):
    """The backend array (or Python scalar) behind a Tensor or value."""
    return value.data if isinstance(value, Tensor) else value


# ---------------------------------------------------------------------------- creation


def _infer_dtype(array: np.ndarray, from_python: bool) -> np.dtype:
    """PyTorch's rules: Python floats become float32, Python ints int64; arrays keep theirs."""
    kind = array.dtype.kind
    if from_python:
        if kind == "f":
            return dtypes.DEFAULT_FLOAT
        if kind in "iu":
            return dtypes.int64
    if kind == "b":
        return dtypes.bool
    if kind in "fiu":
        return dtypes.to_dtype(array.dtype)
    raise TypeError(f"can't make a tensor from data of dtype {array.dtype} ({kind!r})")


def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Make a tensor from data (nested lists, scalars, NumPy/CuPy arrays, Tensors); copies.

    Example:
        >>> import minigrad as mg
        >>> mg.tensor([[1, 2], [3, 4]]).dtype
        dtype('int64')
        >>> mg.tensor([0.5]).dtype
        dtype('float32')
    """
    if isinstance(data, Tensor):
        arr = data.data
        src_device = data.device
    elif isinstance(data, np.generic):
        arr = np.asarray(data)
        src_device = backend.CPU
    elif isinstance(data, np.ndarray) or (
        backend.cupy_if_loaded() is not None and isinstance(data, backend.cupy_if_loaded().ndarray)
    ):
        arr = data
        src_device = backend.device_of(data)
    else:
        if isinstance(data, (list, tuple)) and any(isinstance(d, Tensor) for d in data):
            data = [d.tolist() if isinstance(d, Tensor) else d for d in data]
        arr = np.asarray(data)
        src_device = backend.CPU
        if dtype is None:
            dtype = _infer_dtype(arr, from_python=True)
    dev = backend.get_device(device) if device is not None else (
        src_device if not isinstance(data, (list, tuple, builtins.int, builtins.float,
                                            builtins.bool)) else backend.default_device()
    )
    dtype = dtypes.to_dtype(dtype) if dtype is not None else _infer_dtype(arr, from_python=False)
    xp = backend.xp_for(dev)
    if backend.device_of(arr) != dev:
        arr = backend.to_device(arr, dev)
    arr = xp.array(arr, dtype=dtype, copy=True)
    t = Tensor._make(arr)
    if requires_grad:
        t.requires_grad_(True)
    return t


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """Like :func:`tensor`, but without a copy when the data already fits."""
    if isinstance(data, Tensor):
        return data.to(*(a for a in (device, dtype) if a is not None))
    if isinstance(data, np.ndarray) and device in (None, "cpu") and (
        dtype is None or np.dtype(dtype) == data.dtype
    ):
        return Tensor._make(data)
    return tensor(data, dtype=dtype, device=device)


def from_numpy(array: np.ndarray) -> Tensor:
    """Wrap a NumPy array without copying (they share memory)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(array).__name__})")
    dtypes.to_dtype(array.dtype)
    return Tensor._make(array)


def from_dlpack(obj) -> Tensor:
    """Make a tensor that shares memory with any DLPack producer (NumPy, CuPy, PyTorch...)."""
    dev_type = obj.__dlpack_device__()[0] if hasattr(obj, "__dlpack_device__") else 1
    if dev_type == 1:  # kDLCPU
        return Tensor._make(np.from_dlpack(obj))
    cp = backend._import_cupy()
    return Tensor._make(cp.from_dlpack(obj))


def _shape(size) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    return tuple(builtins.int(s) for s in size)


def _creation(fill, size, dtype, device, requires_grad, default_dtype=dtypes.float32):
    dev = backend.get_device(device)
    xp = backend.xp_for(dev)
    dt = dtypes.to_dtype(dtype) if dtype is not None else default_dtype
    if dev.type == "cuda":
        with xp.cuda.Device(dev.index):
            arr = fill(xp, _shape(size), dt)
    else:
        arr = fill(xp, _shape(size), dt)
    t = Tensor._make(arr)
    return t.requires_grad_(True) if requires_grad else t


def zeros(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor of zeros. ``mg.zeros(2, 3)`` or ``mg.zeros((2, 3))``."""
    return _creation(lambda xp, s, d: xp.zeros(s, d), size, dtype, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor of ones."""
    return _creation(lambda xp, s, d: xp.ones(s, d), size, dtype, device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """An uninitialised tensor."""
    return _creation(lambda xp, s, d: xp.empty(s, d), size, dtype, device, requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor filled with ``fill_value`` (dtype inferred from it like PyTorch)."""
    if dtype is None:
        dtype = (dtypes.bool if isinstance(fill_value, builtins.bool) else
                 dtypes.int64 if isinstance(fill_value, builtins.int) else dtypes.float32)
    size = (size,) if isinstance(size, builtins.int) else tuple(size)
    return _creation(lambda xp, s, d: xp.full(s, fill_value, d), size, dtype, device,
                     requires_grad)


def _like(fn, t: Tensor, dtype, device, requires_grad, **kw):
    return fn(t.shape, dtype=dtype or t.dtype, device=device or t.device,
              requires_grad=requires_grad, **kw)


def zeros_like(t: Tensor, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Zeros with ``t``'s shape, and its dtype and device unless given."""
    return _like(zeros, t, dtype, device, requires_grad)


def ones_like(t: Tensor, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Ones with ``t``'s shape, and its dtype and device unless given."""
    return _like(ones, t, dtype, device, requires_grad)


def empty_like(t: Tensor, dtype=None, device=None, requires_grad=False) -> Tensor:
    """An uninitialised tensor with ``t``'s shape, and its dtype and device unless given."""
    return _like(empty, t, dtype, device, requires_grad)


def full_like(t: Tensor, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    """``fill_value`` everywhere, with ``t``'s shape, and its dtype and device unless given."""
    return full(t.shape, fill_value, dtype=dtype or t.dtype, device=device or t.device,
                requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False) -> Tensor:
    """``[start, end)`` in steps; integer arguments give int64, floats give float32."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        ints = all(isinstance(v, builtins.int) for v in (start, end, step))
        dtype = dtypes.int64 if ints else dtypes.float32
    return _creation(lambda xp, s, d: xp.arange(start, end, step).astype(d), (), dtype, device,
                     requires_grad)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive."""
    return _creation(lambda xp, s, d: xp.linspace(start, end, steps).astype(d), (), dtype, device,
                     requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """The identity matrix (n x m)."""
    return _creation(lambda xp, s, d: xp.eye(n, m, dtype=d), (), dtype, device, requires_grad)


def rand(*size, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Uniform random numbers in [0, 1) from the device's generator (or ``generator``, an
    ``mg.Generator``)."""
    return _creation(
        lambda xp, s, d: backend.random_uniform(backend.get_device(device), s, d,
                                                generator=generator),
        size, dtype, device, requires_grad)


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Standard normal random numbers from the device's generator (or ``generator``)."""
    return _creation(
        lambda xp, s, d: backend.random_normal(backend.get_device(device), s, d,
                                               generator=generator),
        size, dtype, device, requires_grad)


def randint(low, high=None, size=(), *, generator=None, dtype=None, device=None) -> Tensor:
    """Random integers in ``[low, high)`` (int64) from the device's generator (or
    ``generator``)."""
    if high is None:
        low, high = 0, low
    def fill(xp, s, d):
        gen = backend.generator(backend.get_device(device), generator)
        if xp is np:
            return gen.integers(low, high, s).astype(d)
        return gen.randint(low, high, s).astype(d)
    return _creation(fill, tuple(size) if not isinstance(size, builtins.int) else (size,),
                     dtype, device, False, default_dtype=dtypes.int64)


def randperm(n: int, *, generator=None, dtype=None, device=None) -> Tensor:
    """A random permutation of ``0 .. n-1`` (int64) from the device's generator (or
    ``generator``)."""
    def fill(xp, s, d):
        gen = backend.generator(backend.get_device(device), generator)
        return gen.permutation(n).astype(d)  # NumPy Generator and CuPy RandomState alike
    return _creation(fill, (), dtype, device, False, default_dtype=dtypes.int64)


def rand_like(t: Tensor, *, generator=None, dtype=None, device=None,
              requires_grad=False) -> Tensor:
    """Uniform samples in [0, 1) with ``t``'s shape, and its dtype and device unless given."""
    return _like(rand, t, dtype, device, requires_grad, generator=generator)


def randn_like(t: Tensor, *, generator=None, dtype=None, device=None,
               requires_grad=False) -> Tensor:
    """Standard normal samples with ``t``'s shape, and its dtype and device unless given."""
    return _like(randn, t, dtype, device, requires_grad, generator=generator)


def is_tensor(obj) -> bool:
    """True when ``obj`` is a minigrad Tensor (``torch.is_tensor``)."""
    return isinstance(obj, Tensor)


# NOTE: the core's cycle (see autograd.py): a Tensor's methods are ops and ops make Tensors,
# so the ops are imported once Tensor exists; the methods use them only when called.
from minigrad import ops  # noqa: E402

Size = tuple
