"""The fused-kernel switch, the kernel table, and the base class of every fused kernel.

minigrad runs some ops two ways: a *composite reference* built from primitive ops
(``minigrad.references``: readable, differentiable to any order) and a *fused kernel* in
``minigrad.kernels`` (a NumPy version and a CUDA version, first-order only). This module decides
which one runs, and gives the kernels their common frame:

- :func:`use_fused` turns the kernels on or off, as a call or as a context manager; the
  environment variable ``MINIGRAD_FUSED=0`` turns them off when minigrad is imported;
- :data:`KERNELS` lists, per kernel, the dtypes it has for each device type; each kernel adds
  its own entry (:func:`register_kernel`, or the ``kernel=`` of a :class:`FusedFunction`);
- :func:`fused_enabled` is the test every dispatch site makes;
- :class:`FusedFunction` is the base of a fused ``Function``: it dispatches forward and backward
  to the NumPy or the CUDA version, wraps the gradients, and falls back to the reference when
  the backward is itself recorded;
- :func:`reference_grads` is that fallback (``create_graph=True``): it differentiates the
  reference instead, so higher-order gradients stay exact.

Example:
    >>> import minigrad as mg
    >>> from minigrad.fused import fused_enabled
    >>> x = mg.randn(2, 3)
    >>> with mg.use_fused(False):
    ...     fused_enabled("layer_norm", x)
    False
    >>> fused_enabled("layer_norm", x) == mg.fused.is_fused()
    True
"""

from __future__ import annotations

import os
from typing import Callable, Optional, Sequence

import numpy as np

from minigrad.autograd import Function, _GradMode, enable_grad, grad
from minigrad.tensor import Tensor

__all__ = [
    "KERNELS", "FusedFunction", "fused_enabled", "is_fused", "reference_grads",
    "register_kernel", "use_fused",
]

FLOAT32_FLOAT64 = (np.dtype(np.float32), np.dtype(np.float64))

# kernel name -> {device type: dtypes it has a kernel for}, filled by the kernels as they are
# imported (minigrad.kernels). A (device, dtype) not listed runs the composite reference.
KERNELS: dict = {}


def register_kernel(name: str, dtypes: Optional[dict] = None) -> None:
    """Enter a fused kernel in :data:`KERNELS`: ``dtypes`` maps a device type (``'cpu'``,
    ``'cuda'``) to the dtypes it has a version for (float32 and float64 on both by default)."""
    KERNELS[name] = dtypes or {"cpu": FLOAT32_FLOAT64, "cuda": FLOAT32_FLOAT64}


def _env_enabled() -> bool:
    return os.environ.get("MINIGRAD_FUSED", "1").strip().lower() not in ("0", "false", "no", "off")


class _Switch:
    enabled = _env_enabled()


def is_fused() -> bool:
    """True when fused kernels are switched on (they still need a kernel for the device)."""
    return _Switch.enabled


class use_fused:  # noqa: N801  (used like a function, as mg.no_grad)
    """Switch the fused kernels on or off: ``mg.use_fused(False)`` for the rest of the program,
    or ``with mg.use_fused(False): ...`` for a block (the previous setting comes back after).

    Example:
        >>> import minigrad as mg
        >>> with mg.use_fused(False):
        ...     mg.fused.is_fused()
        False
    """

    def __init__(self, enabled: bool = True):
        self.prev = _Switch.enabled
        _Switch.enabled = bool(enabled)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _Switch.enabled = self.prev
        return False


def fused_enabled(name: str, *tensors: Optional[Tensor]) -> bool:
    """True when the switch is on and ``name`` has a kernel for the device type and dtype of
    every given tensor (None entries are skipped)."""
    if not _Switch.enabled:
        return False
    table = KERNELS[name]
    for t in tensors:
        if t is None:
            continue
        kind = "cpu" if type(t.data) is np.ndarray else "cuda"
        if t.data.dtype not in table.get(kind, ()):
            return False
    return True


# ---------------------------------------------------------------------------- kernel base


class FusedFunction(Function):
    """The base of a fused kernel written as a ``Function``: one op, two implementations.

    A subclass names its kernel-table entry in its class statement and writes the maths::

        class FusedGeluFn(FusedFunction, kernel="gelu"):  # its entry KERNELS["gelu"]
            def _forward_numpy(self, x): ...      # arrays -> array(s)
            def _forward_cuda(self, x): ...
            def _backward_numpy(self, gy): ...    # arrays -> array, or a tuple with one
            def _backward_cuda(self, gy): ...     #   array (or None) per input
            def reference(self, x): ...           # Tensors -> the composite's output(s)

    What the base does:

    - ``forward(*arrays, **params)`` stores the keyword parameters as attributes of the node
      (``self.approximate``, ``self.mask``, ...), then calls ``_forward_numpy`` or
      ``_forward_cuda`` by the inputs' device;
    - ``backward(*grad_outputs)`` calls ``_backward_numpy`` or ``_backward_cuda`` on the
      gradients' arrays and wraps what they return as Tensors; when the backward is itself
      being recorded (``create_graph=True``) it differentiates :meth:`reference` instead
      (:func:`reference_grads`), so the kernels stay first-order and higher-order gradients
      stay exact;
    - ``kernel="name"`` (with ``dtypes={device type: dtypes}`` when not float32 and float64 on
      both) enters the kernel in :data:`KERNELS`, which :func:`fused_enabled` reads.

    The dispatch is one test per call (``self.xp is np``), as a hand-written ``Function`` makes.
    """

    def __init_subclass__(cls, kernel: Optional[str] = None, dtypes: Optional[dict] = None,
                          **kwargs):
        super().__init_subclass__(**kwargs)
        if kernel is not None:
            register_kernel(kernel, dtypes)

    def forward(self, *arrays, **params):
        self.__dict__.update(params)
        if self.xp is np:
            return self._forward_numpy(*arrays)
        return self._forward_cuda(*arrays)

    def backward(self, *grad_outputs):
        # (grad mode read directly, and one gradient passed without a list: this wrapper runs
        # once per fused node of every backward pass)
        if _GradMode.enabled:  # create_graph=True: differentiate the composite instead
            return reference_grads(self.reference, self.inputs, grad_outputs)
        if len(grad_outputs) == 1:
            arrays = (grad_outputs[0].data,)
        else:
            arrays = [g.data for g in grad_outputs]
        if self.xp is np:
            grads = self._backward_numpy(*arrays)
        else:
            grads = self._backward_cuda(*arrays)
        if type(grads) is not tuple:
            return Tensor._make(grads)
        gxs = []
        for g in grads:
            gxs.append(None if g is None else Tensor._make(g))
        return tuple(gxs)

    def reference(self, *inputs: Tensor):  # pragma: no cover - abstract
        """The composite this kernel fuses, on the node's input Tensors and parameters."""
        raise NotImplementedError(f"{type(self).__name__}.reference")

    def _forward_numpy(self, *arrays):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__}._forward_numpy")

    def _forward_cuda(self, *arrays):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__}._forward_cuda")

    def _backward_numpy(self, *grad_arrays):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__}._backward_numpy")

    def _backward_cuda(self, *grad_arrays):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__}._backward_cuda")


# ---------------------------------------------------------------------------- create_graph


def reference_grads(
    reference: Callable[..., object], inputs: Sequence[Tensor], grad_outputs: Sequence[Tensor]
) -> tuple:
    """The gradients of ``reference(*inputs)`` with respect to ``inputs``, as a recorded graph.

    A fused ``Function``'s backward calls this when ``is_grad_enabled()`` (the backward is being
    recorded, ``create_graph=True``): the result is then a function of the inputs built from
    primitive ops, so it can be differentiated again.

    How: the reference runs on *proxies*, leaf tensors that share each input's data, and is
    differentiated with respect to them (``mg.grad(..., create_graph=True)``), so the engine
    never walks past this op into the graph below it. The recorded graph is then re-attached:
    every use of a proxy becomes a use of its input.

    Args:
        reference: the composite function; takes the inputs positionally and returns a tensor
            or a tuple of tensors (non-float outputs are ignored).
        inputs: the fused Function's input tensors (``self.inputs``).
        grad_outputs: one upstream gradient per floating output of ``reference``.

    Returns:
        One gradient per input (None where the input does not require grad or is unused).
    """
    proxies = [Tensor._make(t.data, requires_grad=t.dtype.kind == "f") for t in inputs]
    with enable_grad():
        outs = reference(*proxies)
        outs = [outs] if isinstance(outs, Tensor) else list(outs)
        pairs = [(o, g) for o, g in zip(outs, grad_outputs) if o.requires_grad and g is not None]
        wanted = [(i, p) for i, p in enumerate(proxies) if p.requires_grad]
        if not pairs or not wanted:
            return tuple(None for _ in inputs)
        gs = grad([o for o, _ in pairs], [p for _, p in wanted], [g for _, g in pairs],
                  create_graph=True, allow_unused=True)
    swap = {id(p): t for p, t in zip(proxies, inputs)}
    result: list = [None] * len(inputs)
    for (i, _), g in zip(wanted, gs):
        if g is not None and inputs[i].requires_grad:
            result[i] = swap.get(id(g), g)
    _reattach([g for g in result if g is not None], swap, {id(g) for g in grad_outputs})
    return tuple(result)


def _reattach(roots: Sequence[Tensor], swap: dict, stop: set) -> None:
    """Replace proxy tensors by the real inputs in the graph behind ``roots``. The walk does not
    enter the upstream gradients (``stop``), which were recorded before this op ran."""
    seen = set()
    stack = [r.grad_fn for r in roots if r.grad_fn is not None]
    while stack:
        fn = stack.pop()
        if id(fn) in seen or fn.inputs is None:
            continue
        seen.add(id(fn))
        if any(id(t) in swap for t in fn.inputs):
            fn.inputs = tuple(swap.get(id(t), t) for t in fn.inputs)
            fn.needs_input_grad = tuple(t.requires_grad for t in fn.inputs)
        for t in fn.inputs:
            if t.grad_fn is not None and id(t) not in stop and id(t.grad_fn) not in seen:
                stack.append(t.grad_fn)
