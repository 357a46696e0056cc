"""Fused multi-tensor Adam / AdamW: one parameter group updated in a handful of passes.

What is fused: the per-parameter loop of :meth:`minigrad.optim.Adam.step` around
:func:`minigrad.references.adam_update` (the reference), for every parameter of a group at once.
The update (the reference's and PyTorch's numbers within float rounding)::

    theta <- theta (1 - lr wd)                            AdamW (decoupled decay)
    g     <- g + wd theta                                 Adam with weight_decay (-g: maximize)
    m     <- m + (1 - beta1) (g - m)
    v     <- beta2 v + (1 - beta2) g g;    v_max <- max(v_max, v)     (amsgrad)
    theta <- theta - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

How: the moment buffers of the group live in one flat buffer per moment (each state tensor's
``.data`` is a view into it, so ``state_dict`` and checkpoints see ordinary tensors). The flat
range is walked in segments of ``SEGMENT`` values: a piece of a large parameter, or several
small parameters whose gradients are gathered with one ``concatenate``, so every pass is one
ufunc call over at most 64K values however the parameters are shaped. The flat buffers are
built on the first step and rebuilt whenever a state tensor or a parameter's ``.data`` was
replaced (``load_state_dict``) or the set of parameters with a gradient changed. Parameters that
share a step count are updated together (PyTorch counts steps per parameter; one that skipped a
step is bucketed apart), and their ``"step"`` counters are 0-d views of one float32 array. A
step where none of this changed (:func:`step_again`, the common case) counts a bucket's steps in
one operation and walks segments whose views and addresses were made with the flat buffers, so
its Python work is little more than the passes themselves.

NumPy: 12 ufunc passes per segment (the reference's 13 with the two bias-correction constants
folded: ``m / (sqrt(v) / c + eps) = c m / (sqrt(v) + eps c)``, one division fewer per
element; so the numbers equal the reference's to rounding, not bit for bit), or 7 where NumPy's
BLAS is the wheels' OpenBLAS, whose ``axpby``/``axpy`` do ``y <- a x + b y`` in one pass
(:func:`_blas1`). NumPy has no
fused multiply-add or elementwise kernel language, so on the CPU this saves per-call overhead:
much for many small parameters, nothing for a few large ones, whose passes are bound by
memory traffic; 12 passes is the fewest NumPy's binary ufuncs can make (each of m, v and the
step needs a multiply and an add per element; the square root and the division are one pass
each). The segments of a group of at least ``THREADED_MIN`` values go through
``_numpy.run_chunks``: with ``MINIGRAD_NUM_THREADS=N`` they are spread over N threads (NumPy
releases the GIL inside its loops; each segment writes only its own values, so the result does
not depend on the thread count); one thread is the default.
The GPU kernel is where the fusion pays. A bucket with a non-contiguous parameter runs the
reference update parameter by parameter. (Timings, pass by pass and against PyTorch's
``fused=True``: benchmarks/results/kernel_notes.md.)

CUDA (``adam.cu``): one grid-stride kernel over the flat moments; it reads each parameter and
gradient through a table of device pointers (no packing of either), so the whole group is one
launch. It needs contiguous parameters and gradients of the parameters' dtype; otherwise the
bucket runs the reference update parameter by parameter (stated rule: any non-contiguous
parameter or gradient, or a gradient of another dtype, in the bucket).
"""

from __future__ import annotations

import operator

import numpy as np

from minigrad import backend, references
from minigrad.fused import register_kernel

from . import _cuda, _numpy

CUDA_KERNELS = ("adam_multi_tensor",)
register_kernel("adam")  # not a Function: an optimizer step, dispatched by optim.Adam

_CACHE_ATTR = "_fused_adam_flat"  # optimizer attribute: {(id(group), bucket): _FlatMoments}
_GROUPS_ATTR = "_fused_adam_last"  # optimizer attribute: {id(group): (params, flats)}


def step_group(optimizer, group: dict, params: list, steps: list) -> None:
    """One fused Adam/AdamW step for ``params``, the parameters of ``group`` that have a
    gradient, whose state ``Adam.step`` has made and counted: ``steps`` are their step numbers.
    """
    amsgrad = group["amsgrad"]
    state = optimizer.state
    buckets: dict = {}
    for p, step in zip(params, steps):
        key = (step, p.data.dtype, None if type(p.data) is np.ndarray else p.data.device.id)
        buckets.setdefault(key, []).append(p)
    cache = optimizer.__dict__.setdefault(_CACHE_ATTR, {})
    flats = []
    for n, ((step, _, _), bucket) in enumerate(buckets.items()):
        flat = _flat_moments(cache, (id(group), n), state, bucket, amsgrad)
        _update(flat, bucket, step, group)
        flats.append(flat)
    # what step_again checks and reuses on the next step
    optimizer.__dict__.setdefault(_GROUPS_ATTR, {})[id(group)] = (tuple(params), flats)


def step_again(optimizer, group: dict, params: list) -> bool:
    """The step of a group whose flat buffers still hold all its state, as on its last step
    (the common case: the same parameters with a gradient, nothing replaced): the steps are
    counted here, one array operation per bucket, and the update reuses what each flat buffer
    keeps of the parameters. False, with nothing done, when anything changed: then
    ``Adam._step_group`` counts the steps parameter by parameter and calls :func:`step_group`.
    """
    last = optimizer.__dict__.get(_GROUPS_ATTR, {}).get(id(group))
    if last is None:
        return False
    last_params, flats = last
    # NOTE: compare by identity: `==` would call Tensor.__eq__, which is elementwise
    if len(params) != len(last_params) or not all(map(operator.is_, params, last_params)):
        return False
    amsgrad = group["amsgrad"]
    state = optimizer.state
    for flat in flats:
        if len(flat.buffers) != 2 + amsgrad or not flat.unchanged(state):
            return False
    for flat in flats:
        _update(flat, flat.params, flat.count_step(), group)
    return True


# ---------------------------------------------------------------------------- flat buffers


class _FlatMoments:
    """The moments of one bucket of parameters in one flat buffer per moment (``exp_avg``,
    ``exp_avg_sq``[, ``max_exp_avg_sq``]), the views of them handed to the state tensors, and
    the segments the CPU update walks.

    The ``"step"`` counters of the bucket (equal: the bucket's parameters share a step count)
    live in one float32 array the same way, each state's ``"step"`` a 0-d view of it, so that
    :meth:`count_step` counts them all in one operation. It also keeps what the CPU update
    needs of the parameters (``plan``: each segment's views and BLAS addresses), valid as long
    as each parameter's ``.data`` is the array it was made from; :meth:`unchanged` checks that.
    """

    def __init__(self, xp, state, params, amsgrad):
        self.ids = tuple(id(p) for p in params)
        self.params = tuple(params)
        self.arrays = tuple(p.data for p in params)
        sizes = [int(p.data.size) for p in params]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).tolist()
        total = self.offsets[-1]
        dtype = params[0].data.dtype
        names = ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if amsgrad else [])
        self.buffers = {name: xp.empty(total, dtype=dtype) for name in names}
        self.views = []
        for k, p in enumerate(params):
            lo, hi = self.offsets[k], self.offsets[k + 1]
            entry = {}
            for name, flat in self.buffers.items():
                view = flat[lo:hi].reshape(p.data.shape)
                view[...] = state[p][name].data  # keep the values, move them into the flat
                state[p][name].data = view
                entry[name] = view
            self.views.append(entry)
        self.steps = None  # the step counters, where they are float32 CPU scalars (as made)
        counters = [state[p].get("step") for p in params]
        if all(_is_step_counter(t) for t in counters):
            self.steps = np.array([t.data for t in counters], dtype=np.float32)
            for k, (entry, t) in enumerate(zip(self.views, counters)):
                t.data = entry["step"] = self.steps[k, ...]  # a 0-d view
            self.note_steps()
        self.segments = _segments(self.offsets, SEGMENT)
        self.plan = None  # CPU: the segments with their views (C-contiguous parameters only)
        if xp is np and all(p.data.flags.c_contiguous for p in params):
            self.plan = _plan(self)
        self.device_offsets = None  # CUDA: the offsets on the device, made on the first step

    def valid_for(self, state, params) -> bool:
        if tuple(id(p) for p in params) != self.ids:
            return False
        return self.unchanged(state, check_steps=False)

    def unchanged(self, state, check_steps: bool = True) -> bool:
        """True when every parameter's ``.data`` and state tensor is the one this flat buffer
        made or adopted (nothing replaced since, e.g. by ``load_state_dict``) and, with
        ``check_steps``, the step counters hold what :meth:`count_step` last wrote (all equal)."""
        if check_steps and (self.steps is None or self.steps.tobytes() != self.steps_seen):
            return False
        try:
            for p, data, entry in zip(self.params, self.arrays, self.views):
                if p.data is not data:
                    return False
                st = state.get(p)  # (not state[p]: the defaultdict would add an entry)
                if st is None:
                    return False
                for name, view in entry.items():
                    if st[name].data is not view:
                        return False
        except KeyError:  # a state without this entry (loaded, or edited)
            return False
        return True

    def note_steps(self) -> None:
        """Remember the step counters as they are (counted by ``Adam._step_group`` parameter
        by parameter, or just adopted): what :meth:`unchanged` compares them with."""
        self.step = float(self.steps[0])
        self.steps_seen = self.steps.tobytes()

    def count_step(self) -> float:
        """Count one step of every parameter of the bucket; returns the new step number.

        The float32 rounding of ``step + 1`` is that of ``state["step"] += 1``."""
        self.step = step = float(np.float32(self.step + 1.0))
        self.steps.fill(step)
        self.steps_seen = self.steps.tobytes()
        return step


def _is_step_counter(t) -> bool:
    """A ``"step"`` entry as the optimizer makes it: a Tensor on a float32 NumPy scalar."""
    a = getattr(t, "data", None)
    return type(a) is np.ndarray and a.dtype == np.float32 and a.shape == ()


class _Segment:
    """One run of the flat range (see :func:`_segments`) and what the CPU update needs of it,
    made once per flat buffer: the moments' slices, the parameters' flat views and, for the
    BLAS passes, their addresses.

    ``pieces``: ``(k, a, b)`` per parameter piece; ``single``: the run is part of one parameter
    (its gradient is used in place); ``ks``: the parameters whose gradients are gathered
    otherwise; ``axpys``: ``(size, byte offset in the run, address)`` of each parameter view.
    """

    __slots__ = ("lo", "hi", "pieces", "single", "ks", "p_views", "axpys", "m", "v", "v_max",
                 "m_ptr", "v_ptr", "tmp", "tmp_ptr")

    def __init__(self, flat, run, p_flat, scratch):
        self.lo, self.hi, self.pieces = run
        lo, hi = self.lo, self.hi
        self.single = len(self.pieces) == 1
        self.ks = [k for k, _, _ in self.pieces]
        self.p_views = [p_flat[k][a:b] for k, a, b in self.pieces]
        itemsize = flat.buffers["exp_avg"].itemsize
        self.axpys, start = [], 0
        for view in self.p_views:
            self.axpys.append((view.size, start * itemsize, _address(view)))
            start += view.size
        self.m = flat.buffers["exp_avg"][lo:hi]
        self.v = flat.buffers["exp_avg_sq"][lo:hi]
        v_max = flat.buffers.get("max_exp_avg_sq")
        self.v_max = None if v_max is None else v_max[lo:hi]
        self.m_ptr, self.v_ptr = _address(self.m), _address(self.v)
        self.tmp = scratch[:hi - lo]
        self.tmp_ptr = _address(self.tmp)


def _plan(flat) -> list:
    p_flat = [a.reshape(-1) for a in flat.arrays]  # views (contiguous)
    # NOTE: one scratch of a segment's size for the segments run one after the other: it stays
    # in cache from one segment to the next, as the block a fresh np.empty gets back from the
    # allocator would, without an allocation per segment (threaded segments allocate their
    # own: see _update)
    longest = max((hi - lo for lo, hi, _ in flat.segments), default=0)
    scratch = np.empty(longest, dtype=flat.buffers["exp_avg"].dtype)
    return [_Segment(flat, run, p_flat, scratch) for run in flat.segments]


def _address(a: np.ndarray) -> int:
    # (from the array interface: ``.ctypes`` builds a Python object per call)
    return a.__array_interface__["data"][0]


SEGMENT = 1 << 16  # values per segment: enough to amortise a ufunc call, small enough to cache
# Groups of fewer values than this run their segments on the calling thread whatever
# MINIGRAD_NUM_THREADS says: right after backward the BLAS threads still spin on the other
# cores, and a kernel thread handed one or two segments waits for a core longer than the
# segments take (measured on W1's 102K values with two threads: inline is faster; on W4's
# 1.3 M values, after the kernels' sections that stop OpenBLAS's workers (kernels/_blas.py),
# the threaded update took 13-21 ms a step against 3.6-4.1 inline)
THREADED_MIN = 1 << 24


def _segments(offsets, size: int = SEGMENT) -> list:
    """The flat range cut into runs of at most ``size`` values: ``[(lo, hi, pieces)]``, each
    piece ``(k, a, b)`` being values ``a:b`` of parameter ``k``. A parameter larger than
    ``size`` is cut into runs of its own (its passes work on its gradient in place); smaller
    neighbours share a run (their gradients gathered into one array).

    Example:
        >>> _segments([0, 2, 5, 20, 21], size=6)
        [(0, 5, [(0, 0, 2), (1, 0, 3)]), (5, 11, [(2, 0, 6)]), (11, 17, [(2, 6, 12)]), \
(17, 20, [(2, 12, 15)]), (20, 21, [(3, 0, 1)])]
    """
    runs, group = [], []  # group: the small parameters waiting for a shared run

    def flush():
        if group:
            runs.append((offsets[group[0]], offsets[group[-1] + 1],
                         [(k, 0, offsets[k + 1] - offsets[k]) for k in group]))
            group.clear()

    for k in range(len(offsets) - 1):
        n = offsets[k + 1] - offsets[k]
        if n == 0:  # (an empty parameter has nothing to update)
            continue
        if n > size:
            flush()
            runs.extend((offsets[k] + a, offsets[k] + min(a + size, n), [(k, a, min(a + size, n))])
                        for a in range(0, n, size))
            continue
        if group and offsets[k + 1] - offsets[group[0]] > size:
            flush()
        group.append(k)
    flush()
    return runs


def _flat_moments(cache, key, state, params, amsgrad) -> _FlatMoments:
    """The bucket's flat moments from ``cache``, rebuilt when the parameters or a state tensor
    changed (``load_state_dict``) or amsgrad was switched."""
    flat = cache.get(key)
    if flat is None or len(flat.buffers) != 2 + amsgrad or not flat.valid_for(state, params):
        flat = _FlatMoments(backend.array_module(params[0].data), state, params, amsgrad)
        cache[key] = flat
    elif flat.steps is not None:
        flat.note_steps()
    return flat


# ---------------------------------------------------------------------------- the update


def _update(flat: _FlatMoments, params, step: float, group: dict) -> None:
    beta1, beta2 = group["betas"]
    lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
    maximize = group["maximize"]
    decoupled = group.get("decoupled_weight_decay", False)
    if type(params[0].data) is not np.ndarray:
        if all(p.data.flags.c_contiguous and p.grad.data.flags.c_contiguous
               and p.grad.data.dtype == p.data.dtype for p in params):
            return _update_cuda(flat, params, step, lr, beta1, beta2, eps, wd, maximize,
                                decoupled)
        return _update_each(flat, params, step, group)  # stated fallback: see the docstring

    if flat.plan is None:
        return _update_each(flat, params, step, group)  # a parameter's values are not flat
    # NOTE: the bias corrections are Python floats (float64 on the host), never arrays
    step_size = lr / (1 - beta1**step)
    bias_correction2_sqrt = (1 - beta2**step) ** 0.5
    # delta = -step_size * m / (sqrt(v) / c + eps) = -(step_size c) * m / (sqrt(v) + eps c)
    # with c = sqrt(1 - beta2^t): folded, one division fewer per element. The constants are
    # scalars of the parameters' dtype: the numbers NumPy makes of a Python float operand,
    # without converting it again in every call.
    dtype = flat.buffers["exp_avg"].dtype
    eps_c = dtype.type(eps * bias_correction2_sqrt)
    neg_step_c = dtype.type(-step_size * bias_correction2_sqrt)
    grads = [p.grad.data for p in params]
    blas = _blas1(dtype)
    plain = not maximize and (wd == 0 or decoupled)  # the gradient as it is
    amsgrad = "max_exp_avg_sq" in flat.buffers
    inline = flat.offsets[-1] < THREADED_MIN
    if blas is not None and plain and not amsgrad and inline:
        # the common case (no L2 decay, no maximize, no amsgrad, one thread) in one straight
        # loop: 7 passes per segment (see _blas1), on the views and addresses of the plan
        axpy, axpby = blas
        decay = 1 - lr * wd if wd != 0 else None  # AdamW's
        one_minus_b1, one_minus_b2, neg_step = 1 - beta1, 1 - beta2, float(neg_step_c)
        multiply, add, divide, sqrt = np.multiply, np.add, np.divide, np.sqrt
        for seg in flat.plan:
            if decay is not None:
                for view in seg.p_views:
                    view *= decay
            if seg.single:  # part of one parameter: its gradient, no copy
                k, a, b = seg.pieces[0]
                g = grads[k].reshape(-1)[a:b]
            else:  # small parameters: gathered into one flat gradient
                g = np.concatenate([grads[k] for k in seg.ks], axis=None)
            n, tmp, tmp_ptr = seg.hi - seg.lo, seg.tmp, seg.tmp_ptr
            if g.dtype != dtype:  # (a gradient of another dtype: the NumPy passes)
                _segment_numpy(seg, g, tmp, beta1, beta2, eps_c, neg_step_c)
                continue
            # m <- (1 - beta1) g + beta1 m;  v <- (1 - beta2) g g + beta2 v   (one pass each)
            axpby(n, one_minus_b1, g.__array_interface__["data"][0], 1, beta1, seg.m_ptr, 1)
            multiply(g, g, tmp)
            axpby(n, one_minus_b2, tmp_ptr, 1, beta2, seg.v_ptr, 1)
            sqrt(seg.v, tmp)  # tmp <- m / (sqrt(v) + eps c)
            add(tmp, eps_c, tmp)
            divide(seg.m, tmp, tmp)
            # theta <- theta - (step_size c) * tmp   (one pass)
            for size, start, p_ptr in seg.axpys:
                axpy(size, neg_step, tmp_ptr + start, 1, p_ptr, 1)
        return

    def segment(seg) -> None:
        if wd != 0 and decoupled:
            for view in seg.p_views:
                view *= 1 - lr * wd
        if seg.single:  # part of one parameter: its gradient, no copy
            k, a, b = seg.pieces[0]
            grad, theta = grads[k].reshape(-1)[a:b], seg.p_views[0]
        else:  # small parameters: gathered into one flat gradient
            grad = np.concatenate([grads[k] for k in seg.ks], axis=None)
            theta = None
            if wd != 0 and not decoupled:
                theta = np.concatenate(seg.p_views)
        g = references.adam_effective_grad(theta, grad, wd, maximize, decoupled)
        # NOTE: threaded, a fresh scratch per segment (not a flat one: the allocator hands back
        # the block the previous segment freed, still in cache; a flat scratch adds a whole
        # buffer's traffic); inline, the plan's one scratch, for the same reason
        tmp = seg.tmp if inline else np.empty(seg.hi - seg.lo, dtype=dtype)
        if blas is not None and g.dtype == dtype and g.flags.c_contiguous:
            _segment_blas(seg, g, tmp, blas, beta1, beta2, eps_c, float(neg_step_c))
        else:
            _segment_numpy(seg, g, tmp, beta1, beta2, eps_c, neg_step_c)

    if inline:
        for seg in flat.plan:  # a small group: no thread hand-off (see THREADED_MIN)
            segment(seg)
    else:
        _numpy.run_chunks(segment, flat.plan)  # MINIGRAD_NUM_THREADS threads (default 1)


def _ratio(seg, eps_c, out) -> None:
    """out <- m / (sqrt(v) + eps c), v first raised to its running maximum (amsgrad)."""
    v = seg.v
    if seg.v_max is not None:
        np.maximum(seg.v_max, v, out=seg.v_max)
        v = seg.v_max
    np.sqrt(v, out)
    np.add(out, eps_c, out)
    np.divide(seg.m, out, out)


def _segment_blas(seg, g, tmp, blas, beta1, beta2, eps_c, neg_step) -> None:
    """One segment in 7 passes through the BLAS's axpby/axpy (``g``: the effective gradient,
    contiguous, of the moments' dtype; ``tmp``: scratch of the segment's size)."""
    axpy, axpby = blas
    n = seg.hi - seg.lo
    tmp_ptr = _address(tmp)
    # m <- (1 - beta1) g + beta1 m;  v <- (1 - beta2) g g + beta2 v   (one pass each)
    axpby(n, 1 - beta1, _address(g), 1, beta1, seg.m_ptr, 1)
    np.multiply(g, g, tmp)
    axpby(n, 1 - beta2, tmp_ptr, 1, beta2, seg.v_ptr, 1)
    _ratio(seg, eps_c, tmp)
    # theta <- theta - (step_size c) * (m / (sqrt(v) + eps c))   (one pass)
    for size, start, p_ptr in seg.axpys:
        axpy(size, neg_step, tmp_ptr + start, 1, p_ptr, 1)


def _segment_numpy(seg, g, tmp, beta1, beta2, eps_c, neg_step_c) -> None:
    """One segment in NumPy's 12 passes (no usable BLAS, or a gradient of another dtype)."""
    # The constants as 0-d arrays of the moments' dtype: the numbers NumPy makes of a Python
    # float operand, without converting it again in every call
    dtype = tmp.dtype
    one_minus_beta1, beta2_, one_minus_beta2 = (
        np.array(x, dtype=dtype) for x in (1 - beta1, beta2, 1 - beta2))
    add, subtract, multiply = np.add, np.subtract, np.multiply
    m, v = seg.m, seg.v
    # (outputs passed positionally: ``out=`` costs a keyword parse per call)
    # m <- m + (1 - beta1) (g - m)   (PyTorch's lerp_)
    subtract(g, m, tmp)
    multiply(tmp, one_minus_beta1, tmp)
    add(m, tmp, m)
    # v <- beta2 v + (1 - beta2) g g   (PyTorch's mul_ then addcmul_)
    multiply(v, beta2_, v)
    multiply(g, g, tmp)
    multiply(tmp, one_minus_beta2, tmp)
    add(v, tmp, v)
    # theta <- theta - (step_size c) * m / (sqrt(v) + eps c)   (PyTorch's addcdiv_)
    _ratio(seg, eps_c, tmp)
    multiply(tmp, neg_step_c, tmp)
    start = 0
    for view in seg.p_views:
        add(view, tmp[start:start + view.size], view)
        start += view.size


# ---------------------------------------------------------------------------- BLAS level 1

_BLAS1: dict = {}  # dtype character -> (axpy, axpby) of NumPy's BLAS, or None


def _blas1(dtype: np.dtype):
    """``(axpy, axpby)`` for ``dtype`` (float32 or float64) from the OpenBLAS NumPy links, as
    ctypes functions taking ``(n, a, x_ptr, 1[, b], y_ptr, 1)``; None when there is none.

    Why: ``y <- a x + b y`` is one pass in the BLAS and three in NumPy (two multiplies and an
    add), and the update is bound by memory traffic: with them the moments take one pass each
    (the second moment one more for g g) and the step one, 7 passes per segment instead of 12.
    The products are fused multiply-adds, so the numbers differ from the NumPy passes' in the
    last bit; each element's result depends on its own values only (not on the segment or
    thread split). The NumPy wheels' OpenBLAS (``scipy_openblas``) is found through the
    process's loaded libraries, as :mod:`minigrad.threads` finds it; any other BLAS (MKL, a
    system OpenBLAS, whose integer width is unknown) uses the NumPy passes.
    """
    fns = _BLAS1.get(dtype.char, False)
    if fns is False:
        fns = _BLAS1[dtype.char] = _find_blas1(dtype)
    return fns


def _find_blas1(dtype: np.dtype):
    axpy = _numpy.blas_function("axpy", dtype)
    axpby = _numpy.blas_function("axpby", dtype)
    return None if axpy is None or axpby is None else (axpy, axpby)


def _update_each(flat: _FlatMoments, params, step: float, group: dict) -> None:
    """The reference update, parameter by parameter (the state views stay in the flats)."""
    beta1, beta2 = group["betas"]
    for p, entry in zip(params, flat.views):
        references.adam_update(p.data, p.grad.data, entry["exp_avg"], entry["exp_avg_sq"],
                     entry.get("max_exp_avg_sq"), step=step, lr=group["lr"], beta1=beta1,
                     beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"],
                     maximize=group["maximize"],
                     decoupled_weight_decay=group.get("decoupled_weight_decay", False))


def _update_cuda(flat, params, step, lr, beta1, beta2, eps, wd, maximize, decoupled) -> None:
    cp = backend.array_module(params[0].data)
    dt = params[0].data.dtype
    dev = params[0].data.device.id
    fn = _cuda.kernel("adam", CUDA_KERNELS, "adam_multi_tensor", dt, dev)
    # the pointer tables, parameters then gradients, in one host -> device copy per step (the
    # gradients are new arrays each step); the offsets are copied once per flat buffer
    n = len(params)
    ptrs = cp.asarray(np.array([p.data.data.ptr for p in params] +
                               [p.grad.data.data.ptr for p in params], dtype=np.uint64))
    p_ptrs, g_ptrs = ptrs[:n], ptrs[n:]
    if flat.device_offsets is None:
        flat.device_offsets = cp.asarray(np.array(flat.offsets, dtype=np.int64))
    offsets = flat.device_offsets
    m, v = flat.buffers["exp_avg"], flat.buffers["exp_avg_sq"]
    v_max = flat.buffers.get("max_exp_avg_sq", v)
    total = flat.offsets[-1]
    grid, block = _cuda.grid_1d(total, sm_count=_cuda.sm_count(dev))
    flags = (1 if maximize else 0) | (2 if decoupled else 0) | (4 if v_max is not v else 0)
    s = lambda x: _cuda.scalar(dt, x)  # noqa: E731
    # NOTE: 1 - beta1 and 1 - beta2 in float64 here, as the reference has them (in float32,
    # 1 - 0.999f is off by 1e-5 relative)
    fn(grid, block, (p_ptrs, g_ptrs, offsets, np.int32(len(params)), m, v, v_max,
                     np.int64(total), s(lr), s(1 - beta1), s(beta2), s(1 - beta2), s(eps),
                     s(wd), s(lr / (1 - beta1**step)), s((1 - beta2**step) ** 0.5),
                     np.int32(flags)))
