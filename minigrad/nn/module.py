"""Module and Parameter: the containers every layer is built from (PyTorch's names).

A :class:`Module` registers the :class:`Parameter`, buffer and sub-Module attributes assigned to
it, in order, so ``named_parameters()`` and ``state_dict()`` walk them with dotted names
(``"encoder.0.weight"``) exactly as PyTorch does, and state dicts move between the two.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

import numpy as np

from minigrad import backend, dtypes
from minigrad.autocast_state import state as _autocast
from minigrad.autograd import no_grad
from minigrad.fused import is_fused
from minigrad.tensor import Tensor


class Parameter(Tensor):
    """A Tensor that a Module registers as a learnable parameter (requires grad by default).

    Example:
        >>> import minigrad as mg
        >>> p = mg.nn.Parameter(mg.zeros(2))
        >>> p.requires_grad, p.is_leaf
        (True, True)
    """

    __slots__ = ()

    def __new__(cls, data: Optional[Tensor] = None, requires_grad: bool = True):
        if data is None:
            data = Tensor._make(np.zeros((0,), dtype=dtypes.float32))
        arr = data.data if isinstance(data, Tensor) else np.asarray(data)
        p = object.__new__(cls)
        p.data = arr
        p.grad = None
        p.grad_fn = None
        p._out_index = 0
        p._hooks = None
        p._retains_grad = False
        p.requires_grad = False
        if requires_grad:
            p.requires_grad_(True)
        return p

    def __init__(self, data=None, requires_grad: bool = True):
        pass

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of every layer and model.

    Subclasses assign Parameters and Modules as attributes in ``__init__`` and write
    ``forward``; calling the module runs ``forward``.
    """

    training: bool

    def __init__(self):
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())

    # ------------------------------------------------------------------ registration
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot assign {name!r} before Module.__init__() call (call super().__init__())"
            )
        params, modules, buffers = self._parameters, self._modules, self._buffers
        if isinstance(value, Parameter):
            for d in (modules, buffers, self.__dict__):
                d.pop(name, None)
            params[name] = value
        elif isinstance(value, Module):
            for d in (params, buffers, self.__dict__):
                d.pop(name, None)
            modules[name] = value
        elif name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as parameter '{name}' "
                    "(nn.Parameter or None expected)"
                )
            params[name] = None
        elif name in modules:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as child module '{name}' "
                    "(nn.Module or None expected)"
                )
            modules[name] = None
        elif name in buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{type(value).__name__}' as buffer '{name}'")
            buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        d = self.__dict__
        for key in ("_parameters", "_buffers", "_modules"):
            if key in d and name in d[key]:
                return d[key][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for key in ("_parameters", "_buffers", "_modules"):
            if name in self.__dict__[key]:
                del self.__dict__[key][name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Optional[Parameter]) -> None:
        """Register ``param`` under ``name`` (None reserves the name), as ``self.name = param``."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign {type(param).__name__} as parameter {name!r}")
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Optional[Tensor], persistent: bool = True):
        """A tensor that is state but not a parameter (e.g. a mask); in ``state_dict`` unless
        ``persistent=False``."""
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign {type(tensor).__name__} as buffer {name!r}")
        self.__dict__.pop(name, None)
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name: str, module: Optional["Module"]) -> None:
        """Register ``module`` as a child under ``name`` (None reserves the name)."""
        self._modules[name] = module

    register_module = add_module

    # ------------------------------------------------------------------ calling
    def forward(self, *args, **kwargs):  # pragma: no cover - abstract
        """The module's computation, which every subclass defines; call the module, not this."""
        raise NotImplementedError(f"Module [{type(self).__name__}] is missing forward()")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # NOTE: only minigrad's own layers refuse what PyTorch's refuse; a user's Module may
        # well take NumPy arrays, and containers/wrappers pass their inputs on untouched
        if "_checks_inputs" not in cls.__dict__:
            cls._checks_inputs = cls.__module__.startswith("minigrad.nn.") and not (
                cls.__module__.startswith("minigrad.nn.parallel")
            )

    _checks_inputs = False
    _mixed_dtypes_ok = False  # a built-in layer that takes inputs of another float dtype

    def __call__(self, *args, **kwargs):
        if self._checks_inputs and args:
            _check_layer_inputs(self, args)
        return self.forward(*args, **kwargs)

    # ------------------------------------------------------------------ traversal
    def named_modules(self, memo=None, prefix: str = "") -> Iterator[Tuple[str, "Module"]]:
        """``(dotted name, module)`` for this module (named ``prefix``) and each submodule, once."""
        if memo is None:
            memo = set()
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(memo, f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator["Module"]:
        """This module and every submodule, each once."""
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[Tuple[str, "Module"]]:
        """``(name, module)`` for the direct children."""
        for name, m in self._modules.items():
            if m is not None:
                yield name, m

    def children(self) -> Iterator["Module"]:
        """The direct children."""
        for _, m in self.named_children():
            yield m

    def _named_members(self, get, prefix: str, recurse: bool):
        seen = set()
        mods = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for mod_prefix, m in mods:
            for name, v in get(m).items():
                if v is None or id(v) in seen:
                    continue
                seen.add(id(v))
                yield (f"{mod_prefix}.{name}" if mod_prefix else name), v

    def named_parameters(self, prefix: str = "", recurse: bool = True):
        """``(dotted name, Parameter)`` pairs; a shared parameter is listed once."""
        yield from self._named_members(lambda m: m._parameters, prefix, recurse)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """Every parameter (of the submodules too unless ``recurse=False``), each once."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True):
        """``(dotted name, buffer)`` pairs; a shared buffer is listed once."""
        yield from self._named_members(lambda m: m._buffers, prefix, recurse)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        """Every buffer (of the submodules too unless ``recurse=False``), each once."""
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # ------------------------------------------------------------------ state
    def state_dict(self, destination=None, prefix: str = "", keep_vars: bool = False):
        """An ordered dict of parameter and persistent buffer tensors by dotted name."""
        out = OrderedDict() if destination is None else destination
        for name, p in self._parameters.items():
            if p is not None:
                out[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent:
                out[prefix + name] = b if keep_vars else b.detach()
        for name, m in self._modules.items():
            if m is not None:
                m.state_dict(out, prefix + name + ".", keep_vars)
        return out

    def load_state_dict(self, state_dict: Dict[str, Any], strict: bool = True):
        """Copy values into this module's parameters and buffers (in place, keeping device and
        dtype). Values may be Tensors or arrays (NumPy, or anything ``np.asarray`` takes, e.g.
        a PyTorch CPU tensor).

        Returns ``(missing_keys, unexpected_keys)``; with ``strict`` any missing, unexpected or
        mis-shaped key raises a RuntimeError listing all of them.
        """
        own = self.state_dict(keep_vars=True)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        errors = []
        to_copy = []
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = _as_array(state_dict[key])
            if tuple(value.shape) != tuple(target.shape):
                errors.append(
                    f"size mismatch for {key}: copying a param with shape {tuple(value.shape)} "
                    f"from checkpoint, the shape in current model is {tuple(target.shape)}."
                )
                continue
            to_copy.append((target, value))
        if strict and (missing or unexpected):
            if missing:
                errors.insert(0, "Missing key(s) in state_dict: "
                              + ", ".join(f'"{k}"' for k in missing) + ".")
            if unexpected:
                errors.insert(0, "Unexpected key(s) in state_dict: "
                              + ", ".join(f'"{k}"' for k in unexpected) + ".")
        if errors:
            raise RuntimeError(
                f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                + "\n\t".join(errors)
            )
        with no_grad():
            for target, value in to_copy:
                arr = backend.to_device(value, target.device) if hasattr(value, "device") or \
                    isinstance(value, np.ndarray) else value
                target.data[...] = arr.astype(target.dtype, copy=False)
        return _IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------ modes, devices
    def train(self, mode: bool = True) -> "Module":
        """Set training mode (``mode=True``) or evaluation mode on this module and its submodules.

        Returns:
            The module itself.
        """
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> "Module":
        """Evaluation mode (``train(False)``): dropout off, batch norm uses its running statistics.
        """
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        """Set ``requires_grad`` on every parameter (False freezes the module); returns the module.
        """
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear every parameter's gradient: None, or zeros in place when ``set_to_none=False``."""
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.data[...] = 0

    def apply(self, fn: Callable[["Module"], None]) -> "Module":
        """Call ``fn`` on every submodule (children first) and on self."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def _move(self, convert) -> "Module":
        for m in self.modules():
            for p in m._parameters.values():
                if p is not None:
                    p.data = convert(p.data, floating=True)
                    if p.grad is not None:
                        p.grad.data = convert(p.grad.data, floating=True)
            for b in m._buffers.values():
                if b is not None:
                    b.data = convert(b.data, floating=b.dtype.kind == "f")
        return self

    def to(self, *args, **kwargs) -> "Module":
        """Move parameters and buffers to a device and/or cast floating ones to a dtype, in
        place (parameters stay the same objects, so optimizers keep working)."""
        device, dtype = kwargs.get("device"), kwargs.get("dtype")
        for a in args:
            if isinstance(a, (str, backend.Device)):
                device = a
            else:
                dtype = a
        dev = backend.get_device(device) if device is not None else None
        dt = dtypes.to_dtype(dtype) if dtype is not None else None
        if dt is not None and dt.kind != "f":
            raise TypeError(f"Module.to only accepts floating point dtypes, but got {dt}")

        def convert(arr, floating):
            if dt is not None and floating:
                arr = arr.astype(dt, copy=False)
            if dev is not None:
                arr = backend.to_device(arr, dev)
            return arr

        return self._move(convert)

    def cpu(self) -> "Module":
        """Move the parameters and buffers to the CPU, in place; returns the module."""
        return self.to("cpu")

    def cuda(self, device=None) -> "Module":
        """Move the parameters and buffers to a GPU (``device``: an index or a name), in place."""
        return self.to(f"cuda:{device}" if isinstance(device, int) else (device or "cuda"))

    def float(self) -> "Module":
        """Cast the floating-point parameters and buffers to float32, in place."""
        return self.to(dtypes.float32)

    def double(self) -> "Module":
        """Cast the floating-point parameters and buffers to float64, in place."""
        return self.to(dtypes.float64)

    def half(self) -> "Module":
        """Cast the floating-point parameters and buffers to float16, in place."""
        return self.to(dtypes.float16)

    # ------------------------------------------------------------------ repr
    def extra_repr(self) -> str:
        """The module's settings shown inside its ``repr`` (subclasses override it)."""
        return ""

    def __repr__(self):
        lines = []
        extra = self.extra_repr()
        if extra:
            lines = extra.split("\n")
        for name, m in self._modules.items():
            sub = repr(m).replace("\n", "\n  ")
            lines.append(f"({name}): {sub}")
        main = type(self).__name__ + "("
        if not lines:
            return main + ")"
        if len(lines) == 1 and not self._modules:
            return main + lines[0] + ")"
        return main + "\n  " + "\n  ".join(lines) + "\n)"

    def __dir__(self):
        return list(super().__dir__()) + list(self._parameters) + list(self._modules) + list(
            self._buffers)


class _IncompatibleKeys(tuple):
    def __new__(cls, missing, unexpected):
        t = super().__new__(cls, (missing, unexpected))
        return t

    @property
    def missing_keys(self):
        return self[0]

    @property
    def unexpected_keys(self):
        return self[1]

    def __repr__(self):
        if not self[0] and not self[1]:
            return "<All keys matched successfully>"
        return f"_IncompatibleKeys(missing_keys={self[0]}, unexpected_keys={self[1]})"


def _check_layer_inputs(module: Module, args: tuple) -> None:
    """Refuse, with PyTorch's meaning and a clear message, the inputs a built-in layer's
    PyTorch counterpart refuses: NumPy/CuPy arrays, and a floating input whose dtype differs
    from the layer's floating parameters (PyTorch: "mat1 and mat2 must have the same dtype")."""
    # NOTE: every built-in layer's call runs this: the dtypes are read off the arrays (a
    # Tensor property is a call)
    param_dtype = None
    for arg in args:
        if isinstance(arg, Tensor):
            dtype = arg.data.dtype
            if dtype.kind != "f" or _autocast.on or module._mixed_dtypes_ok:
                continue
            if param_dtype is None:  # the first floating parameter's dtype (False: none)
                param_dtype = False
                for p in module._parameters.values():
                    if p is not None and p.data.dtype.kind == "f":
                        param_dtype = p.data.dtype
                        break
            if param_dtype is not False and dtype != param_dtype:
                name = type(module).__name__
                raise RuntimeError(
                    f"{name}: the input has dtype {arg.dtype} but the layer's parameters are "
                    f"{param_dtype} (PyTorch: mat1 and mat2 must have the same dtype); convert "
                    f"the input (x.to(mg.{param_dtype})) or the layer "
                    f"(layer.to(mg.{arg.dtype}))"
                )
        elif _is_raw_array(arg):
            name = type(module).__name__
            raise TypeError(
                f"{name}(): argument 'input' must be a Tensor, not "
                f"{type(arg).__module__.split('.')[0]}.{type(arg).__name__}; wrap it first: "
                "mg.tensor(x) (a copy) or mg.from_numpy(x) (shares memory)"
            )


def _is_raw_array(value) -> bool:
    """Whether ``value`` is a NumPy array or scalar, or a CuPy array (not a Tensor)."""
    if isinstance(value, (np.ndarray, np.generic)):
        return True
    cp = backend.cupy_if_loaded()
    return cp is not None and isinstance(value, cp.ndarray)


def _as_array(value):
    """A state-dict value as an array on its own device (Tensors, NumPy, PyTorch CPU...)."""
    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, np.ndarray):
        return value
    cp = backend.cupy_if_loaded()
    if cp is not None and isinstance(value, cp.ndarray):
        return value
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
        return np.asarray(value.detach().cpu())
    return np.asarray(value)


# ---------------------------------------------------------------------------- containers

# Adjacent built-in layers that Sequential runs as one node on the fused path (mg.use_fused):
# {(type(a), type(b)): fn(a, x) computing b(a(x))}, exact types only (a subclass may override
# forward); nn/layers.py enters Linear then ReLU
FUSED_PAIRS: Dict[tuple, Callable] = {}
# ... and three: {(type(a), type(b), type(c)): fn(a, x, b, c) computing c(b(a(x)))} (nn/layers.py
# enters Linear, ReLU, Dropout: one node on the CPU in training, else the pair then the Dropout)
FUSED_TRIPLES: Dict[tuple, Callable] = {}


class Sequential(Module):
    """Modules applied one after the other: ``Sequential(Linear(4, 8), ReLU(), Linear(8, 2))``.

    Also accepts an OrderedDict of named modules.
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], (dict, OrderedDict)):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                if not isinstance(m, Module):
                    raise TypeError(f"Sequential: item {i} is a {type(m).__name__}, not a Module")
                self.add_module(str(i), m)

    def forward(self, x):
        """Apply the modules in order, each to the previous one's output.

        On the fused path a built-in ``Linear`` directly followed by a built-in ``ReLU`` runs as
        one node (the ReLU in place on the fresh product, :data:`FUSED_PAIRS`), and with a
        built-in ``Dropout`` after them too on the CPU (:data:`FUSED_TRIPLES`): the same
        numbers and gradients, fewer arrays and nodes.
        """
        mods = tuple(self._modules.values())
        if not is_fused():
            for m in mods:
                x = m(x)
            return x
        i, n = 0, len(mods)
        while i < n:
            m = mods[i]
            if i + 2 < n:
                triple = FUSED_TRIPLES.get((type(m), type(mods[i + 1]), type(mods[i + 2])))
                if triple is not None:
                    x = triple(m, x, mods[i + 1], mods[i + 2])
                    i += 3
                    continue
            pair = FUSED_PAIRS.get((type(m), type(mods[i + 1]))) if i + 1 < n else None
            if pair is None:
                x = m(x)
                i += 1
            else:
                x = pair(m, x)
                i += 2
        return x

    def __getitem__(self, idx):
        mods = list(self._modules.values())
        if isinstance(idx, slice):
            return Sequential(OrderedDict(list(self._modules.items())[idx]))
        return mods[idx]

    def __setitem__(self, idx: int, module: Module) -> None:
        key = list(self._modules.keys())[idx]
        self._modules[key] = module

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module: Module) -> "Sequential":
        """Add ``module`` at the end; returns the Sequential."""
        self.add_module(str(len(self._modules)), module)
        return self


class ModuleList(Module):
    """A list of modules whose parameters are registered (``layers.0.weight``, ...)."""

    def __init__(self, modules=None):
        super().__init__()
        for m in modules or []:
            self.append(m)

    def append(self, module: Module) -> "ModuleList":
        """Add ``module`` at the end; returns the list."""
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules) -> "ModuleList":
        """Add each of ``modules`` at the end; returns the list."""
        for m in modules:
            self.append(m)
        return self

    def __getitem__(self, idx):
        mods = list(self._modules.values())
        if isinstance(idx, slice):
            return ModuleList(mods[idx])
        return mods[idx]

    def __setitem__(self, idx: int, module: Module) -> None:
        self._modules[str(idx % len(self))] = module

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class ModuleDict(Module):
    """A dict of modules whose parameters are registered under their keys."""

    def __init__(self, modules=None):
        super().__init__()
        for k, m in (modules or {}).items():
            self[k] = m

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        del self._modules[key]

    def __contains__(self, key: str) -> bool:
        return key in self._modules

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def keys(self):
        """The keys, in insertion order."""
        return self._modules.keys()

    def values(self):
        """The modules, in insertion order."""
        return self._modules.values()

    def items(self):
        """``(key, module)`` pairs, in insertion order."""
        return self._modules.items()
