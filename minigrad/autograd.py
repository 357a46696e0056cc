"""Reverse-mode automatic differentiation: the Function base class and the backward engine.

How it works, in four sentences. Every differentiable op is a :class:`Function` whose
``forward`` maps backend arrays to backend arrays and whose ``backward`` maps the gradient of
the outputs to the gradients of the inputs, written with minigrad ops on Tensors. Calling
``Fn.apply(*tensors)`` runs ``forward`` and, when gradients are wanted, links the output Tensors
to the Function node (``grad_fn``), which holds its inputs: this is the graph. ``backward()``
walks the graph once in reverse topological order (iteratively: no recursion limit), summing
the gradient that reaches each node before calling its ``backward``. Because ``backward`` is
made of ops, running it with ``create_graph=True`` records a graph of the backward pass itself,
which is what double backprop needs.
"""

from __future__ import annotations

import functools
import weakref
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from minigrad import backend

# ---------------------------------------------------------------------------- grad mode


class _GradMode:
    enabled = True


def is_grad_enabled() -> bool:
    """True when ops record the graph."""
    return _GradMode.enabled


class set_grad_enabled:  # noqa: N801  (PyTorch's name)
    """Context manager (and decorator) that turns graph recording on or off."""

    def __init__(self, mode: bool):
        self.prev = _GradMode.enabled
        _GradMode.enabled = bool(mode)
        self.mode = bool(mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _GradMode.enabled = self.prev
        return False


class _GradModeContext:
    mode = True

    def __enter__(self):
        self.prev = _GradMode.enabled
        _GradMode.enabled = self.mode

    def __exit__(self, *exc):
        _GradMode.enabled = self.prev
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradModeContext):  # noqa: N801
    """``with mg.no_grad():`` ops inside record no graph (also usable as a decorator)."""

    mode = False


class enable_grad(_GradModeContext):  # noqa: N801
    """``with mg.enable_grad():`` turns recording back on inside a ``no_grad`` block."""

    mode = True


class inference_mode(_GradModeContext):  # noqa: N801
    """``with mg.inference_mode():`` ops record no graph, as under ``no_grad``; also a
    decorator (``@mg.inference_mode()``). ``inference_mode(False)`` changes nothing.

    PyTorch's version also marks the tensors made inside as inference tensors, which may
    never enter a graph later; minigrad has no such tensors, so here it is ``no_grad``.

    Example:
        >>> import minigrad as mg
        >>> w = mg.ones(2, requires_grad=True)
        >>> with mg.inference_mode():
        ...     (w * 2).requires_grad
        False
    """

    def __init__(self, mode: bool = True):
        self.enabled = bool(mode)

    def __enter__(self):
        self.prev = _GradMode.enabled
        if self.enabled:
            _GradMode.enabled = False

    def __call__(self, fn):
        enabled = self.enabled

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with inference_mode(enabled):
                return fn(*args, **kwargs)

        return wrapper


# ---------------------------------------------------------------------------- Function


class Function:
    """A differentiable op: ``forward`` on arrays, ``backward`` on Tensors.

    Subclasses implement ``forward(self, *arrays, **params) -> array or tuple of arrays`` and
    ``backward(self, *grad_outputs) -> Tensor, None, or a tuple with one entry per input``.
    Inside them ``self.xp`` is the array module of the inputs, ``self.inputs`` the input
    Tensors, and ``self.outputs`` weak references to the outputs. ``backward`` returns None for
    an input that is not differentiable. The engine, not the op, reduces a gradient whose shape
    was broadcast (see ``sum_to``).
    """

    # set on each node by apply(); listed for readers
    inputs: tuple
    xp: Any
    differentiable = True  # False: outputs never require grad (argmax, comparisons, ...)
    save_outputs = False  # True: backward uses the outputs (y = exp(x): gx = gy * y)
    # False: backward never reads the inputs' values (relu from its output): the node keeps of
    # each non-leaf input only its place in the graph, so the input's memory is freed as soon
    # as nothing else holds it (PyTorch saves only what a formula needs in the same way)
    keeps_inputs = True
    # True: ``backward`` may add an input's gradient straight into the engine's running sum
    # for that input instead of returning it. Before each call the engine sets
    # ``self.grad_buffers``: None, or per input an array (or None) that it owns and that holds
    # the sum of the terms that input received so far, of its shape and dtype, never under
    # create_graph, never for a tensor with hooks or a retained gradient. The node adds its term
    # in place (``c += a @ b`` as one GEMM with beta = 1: no product array, no pass to add it)
    # and returns None for that input. A weight used at every step of an unrolled RNN receives
    # one term per step.
    accumulates = False
    grad_buffers = None

    @classmethod
    def apply(cls, *inputs, **params):
        """Run the op on Tensors and, when a gradient is wanted, link the output to this node."""
        # NOTE: the hot path of every op: plain loops and tuples, no generator expressions
        # (each costs a frame here; per-op overhead is measured in benchmarks/bench_overhead.py)
        # the one- to three-input cases (most ops, a layer with a bias) written out: a
        # comprehension is a call here
        n_in = len(inputs)
        if n_in == 1:
            arrays = (inputs[0].data,)
        elif n_in == 2:
            arrays = (inputs[0].data, inputs[1].data)
        elif n_in == 3:  # (a layer with a bias)
            arrays = (inputs[0].data, inputs[1].data, inputs[2].data)
        else:
            arrays = [t.data for t in inputs]
        for a in arrays:
            if type(a) is not np.ndarray:
                xp = _check_same_device(cls, inputs, arrays)
                break
        else:
            xp = np
        fn = cls.__new__(cls)
        fn.xp = xp
        fn.inputs = inputs
        if xp is np:
            result = fn.forward(*arrays, **params) if params else fn.forward(*arrays)
        else:  # run on the inputs' GPU (CuPy allocates on the *current* device)
            with xp.cuda.Device(arrays[0].device.id):
                result = fn.forward(*arrays, **params)

        make = Tensor._make
        if type(result) is not tuple:  # one output
            if type(result) is not np.ndarray:
                result = _as_array(result, xp)
            out = make(result)
            if not (_GradMode.enabled and cls.differentiable):
                return out
            if n_in == 1:
                if not inputs[0].requires_grad:
                    return out
                fn.needs_input_grad = (True,)
            else:
                if n_in == 2:
                    needs = (inputs[0].requires_grad, inputs[1].requires_grad)
                elif n_in == 3:
                    needs = (inputs[0].requires_grad, inputs[1].requires_grad,
                             inputs[2].requires_grad)
                else:
                    needs = tuple([t.requires_grad for t in inputs])
                if True not in needs:
                    return out
                fn.needs_input_grad = needs
            fn.out_meta = ((result.shape, result.dtype),)
            fn.outputs = (weakref.ref(out),)
            if cls.save_outputs:
                fn.saved_outputs = (result,)
            if not cls.keeps_inputs:
                fn.inputs = tuple([t if t.grad_fn is None else _edge(t, xp) for t in inputs])
            if result.dtype.kind in "fV":  # (V: ml_dtypes' bfloat16)
                out.requires_grad = True
                out.grad_fn = fn
            return out

        outs = tuple([make(_as_array(r, xp)) for r in result])
        if not (_GradMode.enabled and cls.differentiable):
            return outs
        needs = tuple([t.requires_grad for t in inputs])
        if True not in needs:
            return outs
        fn.needs_input_grad = needs
        fn.out_meta = tuple([(o.data.shape, o.data.dtype) for o in outs])
        fn.outputs = tuple([weakref.ref(o) for o in outs])
        if cls.save_outputs:
            fn.saved_outputs = tuple([o.data for o in outs])
        if not cls.keeps_inputs:
            fn.inputs = tuple([t if t.grad_fn is None else _edge(t, xp) for t in inputs])
        for i, o in enumerate(outs):
            if o.data.dtype.kind in "fV":  # (V: ml_dtypes' bfloat16)
                o.requires_grad = True
                o.grad_fn = fn
                o._out_index = i
        return outs

    def forward(self, *arrays, **params):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__}.forward")

    def backward(self, *grad_outputs):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__}.backward is not written")

    @property
    def name(self) -> str:
        """The node's name: the class name without its ``Fn`` suffix (``MulFn`` -> ``Mul``)."""
        n = type(self).__name__
        return n[:-2] if n.endswith("Fn") else n

    def __repr__(self):
        return f"<{type(self).__name__}>"


_ZEROS: dict = {}  # dtype -> one read-only zero, the memory of every stand-in `_edge` makes


def _edge(t, xp):
    """A stand-in for the non-leaf input ``t`` of a node that does not read its inputs: the
    same place in the graph (``grad_fn``, output index) and the same shape and dtype (read by
    the engine), over a zero-strided view of one zero instead of ``t``'s memory. A tensor with
    hooks or a retained gradient is held by its own node (``Tensor.register_hook``)."""
    data = t.data
    if xp is np:  # the view built directly: broadcast_to costs 7x more, on every relu
        view = _zero_view(data.shape, data.dtype)
    else:
        view = xp.broadcast_to(xp.zeros((), dtype=data.dtype), data.shape)
    e = Tensor._make(view, True)
    e.grad_fn = t.grad_fn
    e._out_index = t._out_index
    return e


def _zero_view(shape, dtype):
    """A read-only NumPy array of ``shape`` whose elements all are one cached zero."""
    zero = _ZEROS.get(dtype)
    if zero is None:
        zero = _ZEROS[dtype] = np.zeros(1, dtype=dtype)
        zero.flags.writeable = False
    return np.ndarray(shape, dtype, zero, 0, (0,) * len(shape))


def _as_array(value, xp):
    """Make sure a forward result is an ndarray (NumPy returns scalars from 0-d ufuncs)."""
    if type(value) is np.ndarray or hasattr(value, "__cuda_array_interface__"):
        return value
    return xp.asarray(value)


def _check_same_device(cls, inputs, arrays):
    """Return the array module of the inputs; raise when they live on different devices."""
    for a in arrays:
        if type(a) is not np.ndarray and not isinstance(a, np.generic):
            break
    else:
        return np
    devices = [backend.device_of(a) for a in arrays]
    for d in devices[1:]:
        if d != devices[0]:
            raise RuntimeError(
                f"{cls.__name__[:-2] if cls.__name__.endswith('Fn') else cls.__name__}: expected "
                f"all tensors on the same device, but found tensors on {devices[0]} and {d}. "
                f"Move them first, e.g. x.to('{devices[0]}')."
            )
    return backend.xp_for(devices[0])


# ---------------------------------------------------------------------------- the engine


def _topo_order(roots):
    """Functions reachable from the roots, each listed after every function that feeds it
    gradient (reverse topological order), found without recursion."""
    # A chain first: from one root, while each node has at most one input made by a node (a
    # training step of fused layers: the loss's node <- Linear <- Linear), that walk already is
    # the order the search below finds. At the first node with two, the search takes over.
    if len(roots) == 1:
        chain, fn = [], roots[0]
        while fn is not None:
            if fn.inputs is None:
                raise _freed_graph_error()
            chain.append(fn)
            below, producers = None, 0
            for t in fn.inputs:
                if t.grad_fn is not None:
                    below, producers = t.grad_fn, producers + 1
            if producers > 1:
                break  # a fork: the general search, from the root again
            fn = below
        else:
            return chain
    order, seen = [], set()
    stack = [(fn, False) for fn in roots]
    while stack:
        fn, done = stack.pop()
        if done:
            order.append(fn)
            continue
        if id(fn) in seen:
            continue
        seen.add(id(fn))
        if fn.inputs is None:
            raise _freed_graph_error()
        stack.append((fn, True))
        for t in fn.inputs:
            if t.grad_fn is not None and id(t.grad_fn) not in seen:
                stack.append((t.grad_fn, False))
    order.reverse()  # consumers before producers
    return order


def _freed_graph_error() -> RuntimeError:
    return RuntimeError(
        "Trying to backward through the graph a second time (or directly access saved "
        "tensors after they have already been freed). Saved intermediate values of the "
        "graph are freed when you call .backward() or mg.grad(). Specify "
        "retain_graph=True if you need to backward through the graph a second time."
    )


def _accumulate(buf, key, g):
    prev = buf.get(key)
    buf[key] = g if prev is None else prev + g


# Hooks that run once a leaf's .grad holds its final value for the backward pass now running:
# id(leaf) -> (weak reference to the leaf, {key: hook}). Data-parallel training starts each
# gradient bucket's all-reduce from them while the rest of the backward pass still runs.
_POST_ACCUMULATE_HOOKS: dict = {}


class _Engine:
    """The callbacks queued by the backward pass now running (None outside one)."""

    callbacks: Optional[list] = None


def add_post_accumulate_grad_hook(leaf, hook: Callable) -> "_HookHandle":
    """Registers ``hook(leaf)``, run when ``leaf.grad`` is final in a backward pass (see
    ``Tensor.register_post_accumulate_grad_hook``); returns a handle with ``remove()``."""
    key = id(leaf)
    entry = _POST_ACCUMULATE_HOOKS.get(key)
    if entry is None or entry[0]() is not leaf:
        # NOTE: the dict is bound now: at interpreter exit the module's globals may be gone
        ref = weakref.ref(leaf, lambda _, key=key, hooks=_POST_ACCUMULATE_HOOKS:
                          hooks.pop(key, None))
        entry = _POST_ACCUMULATE_HOOKS[key] = (ref, {})
    token = object()
    entry[1][token] = hook
    return _HookHandle(entry[1], token, key)


class _HookHandle:
    """``handle.remove()`` unregisters one post-accumulate hook."""

    def __init__(self, hooks: dict, token: object, key: int):
        self.hooks, self.token, self.key = hooks, token, key

    def remove(self) -> None:
        self.hooks.pop(self.token, None)
        entry = _POST_ACCUMULATE_HOOKS.get(self.key)
        if entry is not None and entry[1] is self.hooks and not self.hooks:
            del _POST_ACCUMULATE_HOOKS[self.key]


def queue_callback(callback: Callable[[], Any]) -> None:
    """Runs ``callback()`` once the backward pass now running has finished (PyTorch's
    ``Variable._execution_engine.queue_callback``): call it from a hook.

    Example:
        >>> import minigrad as mg
        >>> x = mg.tensor(2.0, requires_grad=True)
        >>> _ = x.register_hook(lambda g: queue_callback(lambda: print("done")))
        >>> (x * x).backward()
        done
    """
    if _Engine.callbacks is None:
        raise RuntimeError("queue_callback can only be called during a backward pass")
    _Engine.callbacks.append(callback)


def run_backward(
    outputs: Sequence,
    grad_outputs: Sequence,
    retain_graph: bool,
    create_graph: bool,
    inputs: Optional[Sequence] = None,
    allow_unused: bool = True,
):
    """The backward engine behind ``Tensor.backward`` and :func:`grad`.

    With ``inputs`` given, returns their gradients (and leaves ``.grad`` alone); otherwise
    accumulates into the ``.grad`` of every leaf that requires grad. Callbacks queued during
    the pass (:func:`queue_callback`) run after it.
    """
    outer, _Engine.callbacks = _Engine.callbacks, []
    try:
        result = _run_backward(outputs, grad_outputs, retain_graph, create_graph, inputs,
                               allow_unused)
        callbacks = _Engine.callbacks
    finally:
        _Engine.callbacks = outer
    for callback in callbacks:
        callback()
    return result


def _final_leaves(order) -> dict:
    """id(fn) -> the leaves with post-accumulate hooks whose gradient is complete once ``fn``
    (the last function in ``order`` that sends them gradient) has run."""
    last = {}
    for fn in order:
        for t in fn.inputs:
            if t.grad_fn is None and id(t) in _POST_ACCUMULATE_HOOKS:
                last[id(t)] = (fn, t)
    final: dict = {}
    for fn, t in last.values():
        final.setdefault(id(fn), []).append(t)
    return final


def _run_backward(outputs, grad_outputs, retain_graph, create_graph, inputs, allow_unused):
    # Gradients flowing into each (function, output slot), and into each leaf tensor.
    node_grads: dict = {}
    leaf_grads: dict = {}
    leaves: dict = {}
    wanted = None if inputs is None else {id(t): t for t in inputs}
    roots = []
    for out, g in zip(outputs, grad_outputs):
        if not out.requires_grad:
            raise RuntimeError(
                "element 0 of tensors does not require grad and does not have a grad_fn"
            )
        if out.grad_fn is None:  # a leaf: its gradient is the seed itself
            _accumulate(leaf_grads, id(out), g)
            leaves[id(out)] = out
        else:
            _accumulate(node_grads, (id(out.grad_fn), out._out_index), g)
            roots.append(out.grad_fn)

    taken = set()  # buffers .grad may not reuse
    for g in grad_outputs:
        taken.add(id(_root(g.data)))
    # keys whose summed gradient is a buffer this pass made (``prev + gx``): later terms are
    # added into it in place instead of allocating a new sum each time (a weight used at
    # every step of an unrolled RNN gets one term per step); never under create_graph
    owned: set = set()
    # (set_grad_enabled(create_graph) written out: the context manager is three calls per pass)
    prev_mode, _GradMode.enabled = _GradMode.enabled, bool(create_graph)
    try:
        order = _topo_order(roots)
        # leaves with post-accumulate hooks are finished as soon as their gradient is complete
        final = _final_leaves(order) if _POST_ACCUMULATE_HOOKS and wanted is None else None
        # NOTE: this loop runs once per node of every backward pass, mostly as cold code between
        # the nodes' array work: the one-output case without a list of gradients, the dict
        # updates written out, the arrays' shapes and dtypes read directly (no Tensor properties)
        for fn in order:
            if fn.accumulates:  # set on every pass: never a buffer of an earlier one
                fn.grad_buffers = (_grad_buffers(fn, owned, node_grads, leaf_grads)
                                   if owned and fn.xp is np else None)
            outputs = fn.outputs
            if len(outputs) == 1:
                g = node_grads.pop((id(fn), 0), None)
                out = outputs[0]()
                if out is not None and (out._hooks or out._retains_grad or wanted is not None):
                    g = _output_grad(out, g, wanted, leaf_grads, leaves)
                gxs = fn.backward(g if g is not None else _zeros(fn, 0))
            else:
                gys = []
                for i in range(len(outputs)):
                    g = node_grads.pop((id(fn), i), None)
                    out = outputs[i]()
                    if out is not None:
                        g = _output_grad(out, g, wanted, leaf_grads, leaves)
                    gys.append(g if g is not None else _zeros(fn, i))
                gxs = fn.backward(*gys)
            if fn.accumulates:
                fn.grad_buffers = None
            if not isinstance(gxs, tuple):
                gxs = (gxs,)
            for t, gx, need in zip(fn.inputs, gxs, fn.needs_input_grad):
                if gx is None or not need:
                    continue
                data = t.data
                if gx.data.shape != data.shape:
                    gx = sum_to(gx, data.shape)  # undo broadcasting, once, here
                if gx.data.dtype != data.dtype:
                    gx = gx.to(data.dtype)
                if t.grad_fn is None:
                    key, grads = id(t), leaf_grads
                    leaves[key] = t
                else:
                    key, grads = (id(t.grad_fn), t._out_index), node_grads
                prev = grads.get(key)
                if prev is None:
                    grads[key] = gx
                elif key in owned:
                    prev.data += gx.data
                else:
                    grads[key] = prev + gx
                    if not create_graph:
                        owned.add(key)
            if final and id(fn) in final:
                for leaf in final.pop(id(fn)):
                    g = leaf_grads.pop(id(leaf), None)
                    if g is not None:
                        _finish_leaf(leaf, g, create_graph, taken)
            if not retain_graph:  # frees saved tensors; a second backward raises (inputs None)
                fn.__dict__ = {"inputs": None, "out_meta": fn.out_meta, "outputs": fn.outputs}
            # the loop's names would keep this node's input and gradients alive through the
            # next node's backward (a conv's output into the next layer's: the step's peak)
            t = gx = g = gxs = gys = out = data = prev = None

        if wanted is not None:
            result = []
            for t in inputs:
                g = leaf_grads.get(id(t))
                if g is not None and t.grad_fn is None and t._hooks:
                    g = _run_hooks(t, g)
                if g is None and not allow_unused:
                    raise RuntimeError(
                        "One of the differentiated Tensors appears to not have been used in the "
                        "graph. Set allow_unused=True if this is the desired behavior."
                    )
                result.append(g)
            return result

        for key, g in leaf_grads.items():
            leaf, data = leaves[key], g.data
            # NOTE: _finish_leaf's common case written out (three calls per leaf saved): a plain
            # backward with no hooks into an empty .grad, of a fresh NumPy array that is no view
            # (its own root), not taken, writeable and not broadcast; everything else goes there
            if (leaf.grad is None and not create_graph and not leaf._hooks
                    and not _POST_ACCUMULATE_HOOKS and g.grad_fn is None and not g.requires_grad
                    and type(data) is np.ndarray and data.base is None
                    and id(data) not in taken and 0 not in data.strides and data.flags.writeable):
                taken.add(id(data))
                leaf.grad = g
            else:
                _finish_leaf(leaf, g, create_graph, taken)
    finally:
        _GradMode.enabled = prev_mode
    return None


def _grad_buffers(fn, owned: set, node_grads: dict, leaf_grads: dict):
    """Per input of ``fn`` (a node that ``accumulates``), the array the engine owns holding
    the sum of that input's gradient terms so far, where ``fn`` may add its own term into it;
    None where it may not (no such sum yet, a sum that is not a buffer the engine made, a tensor
    with hooks or a retained gradient: those keep the plain path); None when no input has one."""
    found = None
    inputs, needs = fn.inputs, fn.needs_input_grad
    for k in range(len(inputs)):
        t = inputs[k]
        if not needs[k] or t._hooks or t._retains_grad:
            continue
        if t.grad_fn is None:
            key, grads = id(t), leaf_grads
        else:
            key, grads = (id(t.grad_fn), t._out_index), node_grads
        if key not in owned:
            continue
        g = grads.get(key)
        if g is None:
            continue
        buf, data = g.data, t.data
        if type(buf) is np.ndarray and buf.shape == data.shape and buf.dtype == data.dtype:
            if found is None:
                found = [None] * len(inputs)
            found[k] = buf
    return found


def _output_grad(out, g, wanted, leaf_grads: dict, leaves: dict):
    """The gradient ``g`` reaching the non-leaf ``out`` (None when none did), after its hooks;
    kept in ``out.grad`` when ``out`` retains its gradient, recorded when ``mg.grad`` asked
    for it."""
    if g is not None and out._hooks:
        g = _run_hooks(out, g)
    if g is not None and out._retains_grad:
        out.grad = g if out.grad is None else out.grad + g
    if wanted is not None and id(out) in wanted and g is not None:
        _accumulate(leaf_grads, id(out), g)
        leaves[id(out)] = out
    return g


def _finish_leaf(leaf, g, create_graph: bool, taken: set) -> None:
    """Adds a leaf's complete gradient ``g`` to ``leaf.grad`` (after its hooks), then runs its
    post-accumulate hooks."""
    if leaf._hooks:
        g = _run_hooks(leaf, g)
    if create_graph:
        leaf.grad = g if leaf.grad is None else leaf.grad + g
    else:
        if g.grad_fn is not None or g.requires_grad:  # (a plain backward's are neither)
            g = g.detach()
        if leaf.grad is None:
            # NOTE: .grad must own its buffer, since optimizers and clip_grad_norm_ update it
            # in place; a gradient that is a broadcast view, or that shares memory with the
            # seed or another leaf's gradient (add passes gy to both inputs), is copied.
            root = _root(g.data)
            if id(root) in taken or not _writeable(g.data):
                g = g.clone()
                root = g.data
            taken.add(id(root))
            leaf.grad = g
        else:
            leaf.grad._iadd_(g)
    if _POST_ACCUMULATE_HOOKS:
        entry = _POST_ACCUMULATE_HOOKS.get(id(leaf))
        if entry is not None and entry[0]() is leaf:
            for hook in list(entry[1].values()):
                hook(leaf)


def _writeable(array) -> bool:
    """Whether .grad may update ``array`` in place. NumPy marks broadcast views read-only; CuPy
    has no such flag (its flags are the contiguity ones and owndata), so there a zero stride over
    more than one element (a broadcast view) says the same."""
    if not getattr(array.flags, "writeable", True):
        return False
    if 0 not in array.strides:  # the common case, without a loop over the dimensions
        return True
    return all(st != 0 or n <= 1 for st, n in zip(array.strides, array.shape))


def _root(array):
    """The array that owns the memory a view looks at."""
    while array.base is not None and hasattr(array.base, "base"):
        array = array.base
    return array


def _run_hooks(tensor, g):
    for hook in tensor._hooks.values():
        out = hook(g)
        if out is not None:
            g = out
    return g


def _zeros(fn, i):
    """The gradient of output ``i`` of ``fn`` that received none: zeros. On NumPy a read-only
    zero-strided view of one zero (no memory, no fill: an LSTM's unused (T, B, H) output would
    otherwise cost a 2 MB zero fill per step); kernels may test for it with
    :func:`is_zero_grad` and skip the work."""
    shape, dtype = fn.out_meta[i]
    if fn.xp is np:
        return Tensor._make(_zero_view(shape, np.dtype(dtype)))
    return Tensor._make(fn.xp.zeros(shape, dtype=dtype))


def is_zero_grad(array) -> bool:
    """True when ``array`` is the engine's stand-in for an output gradient that never arrived
    (:func:`_zeros`): every element is zero and nothing needs computing from it."""
    return (type(array) is np.ndarray and not any(array.strides)
            and array.base is not None and array.base is _ZEROS.get(array.dtype))


def grad(
    outputs,
    inputs,
    grad_outputs=None,
    retain_graph: Optional[bool] = None,
    create_graph: bool = False,
    allow_unused: bool = False,
):
    """Gradients of ``outputs`` with respect to ``inputs``, returned (``.grad`` untouched).

    Example:
        >>> import minigrad as mg
        >>> x = mg.tensor(3.0, requires_grad=True)
        >>> (gx,) = mg.grad(x ** 2, x)
        >>> gx.item()
        6.0
    """
    single_out = isinstance(outputs, Tensor)
    outputs = [outputs] if single_out else list(outputs)
    single_in = isinstance(inputs, Tensor)
    inputs = [inputs] if single_in else list(inputs)
    for t in inputs:
        if not t.requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    grad_outputs = _seed_grads(outputs, grad_outputs)
    if retain_graph is None:
        retain_graph = create_graph
    return tuple(
        run_backward(outputs, grad_outputs, retain_graph, create_graph, inputs, allow_unused)
    )


def _seed_grads(outputs, grad_outputs):
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    seeds = []
    for out, g in zip(outputs, grad_outputs):
        if g is None:
            data = out.data
            if data.size != 1:
                raise RuntimeError(
                    f"grad can be implicitly created only for scalar outputs; got shape "
                    f"{tuple(out.shape)}. Pass gradient= (a tensor of that shape)."
                )
            # the usual seed (a scalar loss), made of the output's shape: nothing to check
            if type(data) is np.ndarray:  # np.ones without its Python wrapper (once per step)
                seed = np.empty(data.shape, dtype=data.dtype)
                seed.fill(1)
            else:
                seed = out.xp.ones(data.shape, dtype=data.dtype)
            seeds.append(Tensor._make(seed))
            continue
        if not isinstance(g, Tensor):
            g = Tensor._make(out.xp.asarray(g, dtype=out.data.dtype))
        if g.shape != out.shape:
            raise RuntimeError(
                f"Mismatch in shape: grad_output has shape {tuple(g.shape)} and output has "
                f"shape {tuple(out.shape)}"
            )
        seeds.append(g)
    return seeds


# ---------------------------------------------------------------------------- gradcheck


def _flat_inputs(inputs):
    return [t for t in inputs if isinstance(t, Tensor)]


def _outputs_of(fn, inputs):
    out = fn(*inputs)
    outs = [out] if isinstance(out, Tensor) else [o for o in out if isinstance(o, Tensor)]
    return [o for o in outs if o.dtype.kind == "f"]


def _weighted_outputs(fn: Callable, inputs, seed: int):
    """``inputs`` as a tuple, the floating outputs of ``fn(*inputs)``, and a fixed random
    weight array for each: the checks compare gradients of ``sum(w * fn(inputs))``."""
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    outs = _outputs_of(fn, inputs)
    rng = np.random.default_rng(seed)
    return inputs, outs, [rng.standard_normal(o.shape) for o in outs]


def gradcheck(
    fn: Callable,
    inputs: Union[Sequence, Any],
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    seed: int = 0,
) -> bool:
    """Compare analytic gradients with central finite differences, in float64.

    For every input that requires grad, every element is nudged by ``±eps`` and the change of
    ``sum(w * fn(inputs))`` (``w`` random and fixed) is compared with what ``backward`` gives.

    Example:
        >>> import minigrad as mg
        >>> x = mg.randn(3, 4, dtype=mg.float64, requires_grad=True)
        >>> mg.autograd.gradcheck(lambda t: (t * t).sum(dim=1), [x])
        True
    """
    inputs, outs, weights = _weighted_outputs(fn, inputs, seed)
    diff = [t for t in _flat_inputs(inputs) if t.requires_grad]
    for t in diff:
        if t.dtype != np.float64:
            raise ValueError(
                f"gradcheck needs float64 inputs for accurate finite differences; got {t.dtype}"
            )
    if not diff:
        raise ValueError("gradcheck: no input requires grad")

    def scalar() -> float:
        # NOTE: not under no_grad: fn may itself differentiate (gradgradcheck)
        vals = _outputs_of(fn, inputs)
        return float(sum(np.sum(backend.to_device(v.data, backend.CPU) * w)
                             for v, w in zip(vals, weights)))

    # analytic
    # outputs that do not require grad (a constant first derivative, say) contribute zero
    pairs = [(o, w) for o, w in zip(outs, weights) if o.requires_grad]
    analytic = [None] * len(diff)
    if pairs:
        seeds = [Tensor._make(o.xp.asarray(w, dtype=o.data.dtype)) for o, w in pairs]
        analytic = run_backward([o for o, _ in pairs], seeds, False, False, diff,
                                allow_unused=True)

    for k, t in enumerate(diff):
        a = (
            np.zeros(t.shape)
            if analytic[k] is None
            else backend.to_device(analytic[k].data, backend.CPU)
        )
        numeric = np.zeros(t.shape)
        for idx in np.ndindex(*t.shape):  # nudge one element of t.data in place
            orig = t.data[idx].item()
            t.data[idx] = orig + eps
            fp = scalar()
            t.data[idx] = orig - eps
            fm = scalar()
            t.data[idx] = orig
            numeric[idx] = (fp - fm) / (2 * eps)
        if not np.allclose(a, numeric, atol=atol, rtol=rtol):
            worst = np.unravel_index(np.argmax(np.abs(a - numeric)), a.shape) if a.size else ()
            msg = (
                f"gradcheck failed for input {k} (shape {tuple(t.shape)}): largest difference "
                f"at index {tuple(int(i) for i in worst)}: analytic "
                f"{a[worst] if a.size else a}, numerical {numeric[worst] if a.size else numeric}"
            )
            if raise_exception:
                raise AssertionError(msg)
            return False
    return True


def gradgradcheck(
    fn: Callable,
    inputs: Union[Sequence, Any],
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    seed: int = 1,
) -> bool:
    """Check second derivatives: gradcheck of ``v -> d(sum(w * fn))/d inputs`` built with
    ``create_graph=True`` (so it checks that every backward is itself differentiable)."""
    inputs, _, weights = _weighted_outputs(fn, inputs, seed)

    def first_grads(*args):
        outs = _outputs_of(fn, args)
        seeds = [Tensor._make(o.xp.asarray(w, dtype=o.data.dtype)) for o, w in zip(outs, weights)]
        d = [t for t in _flat_inputs(args) if t.requires_grad]
        gs = run_backward(outs, seeds, True, True, d, allow_unused=True)
        return tuple(g for g in gs if g is not None)

    return gradcheck(first_grads, inputs, eps, atol, rtol, raise_exception, seed)


# NOTE: the core's one cycle, closed here at the end of the module: Function is defined above,
# so tensor.py and the ops (which subclass Function) can import this module; the engine uses
# Tensor and sum_to only when it runs.
from minigrad.tensor import Tensor  # noqa: E402
from minigrad.ops.shape import sum_to  # noqa: E402
