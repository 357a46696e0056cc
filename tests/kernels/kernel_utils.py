"""Helpers shared by the fused-kernel tests: run a function with the fused kernels on and off
and compare what comes out (values and gradients)."""

import numpy as np
import pytest

import minigrad as mg
from minigrad.tensor import Tensor

TOL = {"float32": dict(rtol=2e-4, atol=2e-5), "float64": dict(rtol=1e-9, atol=1e-11)}


@pytest.fixture(autouse=True)
def fused_on():
    """Kernel tests start with the fused kernels on, whatever MINIGRAD_FUSED says (test modules
    import this autouse fixture)."""
    with mg.use_fused(True):
        yield


def cpu(t):
    """A tensor's values as a NumPy array, wherever it lives."""
    return mg.backend.to_device(t.detach().data, mg.backend.CPU)


def tensor(a, device, dtype="float64", requires_grad=False):
    a = np.asarray(a)
    if a.dtype.kind in "biu":
        return mg.tensor(a, device=device)
    return mg.tensor(a, dtype=dtype, device=device, requires_grad=requires_grad)


# a normalisation's optional (weight, bias): which of them a case has, and the test ids
AFFINE = [(True, True), (True, False), (False, True), (False, False)]
AFFINE_IDS = ["wb", "w", "b", "none"]


def norm_inputs(device, dtype, shape, param_shape, affine, scale=1.0, seed=0):
    """``(x, weight, bias)`` of a normalisation test: x ~ N(3, scale^2) shaped ``shape``, weight
    and bias ~ N(0, 1) shaped ``param_shape`` where ``affine`` has them (else None)."""
    rng = np.random.default_rng(seed)
    x = tensor(rng.standard_normal(shape) * scale + 3.0, device, dtype, True)
    w = tensor(rng.standard_normal(param_shape), device, dtype, True) if affine[0] else None
    b = tensor(rng.standard_normal(param_shape), device, dtype, True) if affine[1] else None
    return x, w, b


def outputs_list(out):
    return [out] if isinstance(out, Tensor) else [o for o in _flatten(out)]


def _flatten(x):
    for item in x:
        if isinstance(item, (tuple, list)):
            yield from _flatten(item)
        elif isinstance(item, Tensor):
            yield item


def run(fn, inputs, fused, seed=1):
    """Outputs and the gradients of sum(w * outputs) (w fixed random) for every input that
    requires grad, with the fused kernels switched on or off."""
    for t in inputs:
        t.grad = None
    with mg.use_fused(fused):
        outs = outputs_list(fn(*inputs))
        rng = np.random.default_rng(seed)
        loss = None
        for o in outs:
            if o.dtype.kind != "f" or not o.requires_grad:
                continue
            w = mg.tensor(rng.standard_normal(o.shape), dtype=o.dtype, device=o.device)
            term = (o * w).sum()
            loss = term if loss is None else loss + term
        grads = []
        if loss is not None:
            wanted = [t for t in inputs if t.requires_grad]
            gs = mg.grad(loss, wanted, allow_unused=True)
            grads = [None if g is None else cpu(g) for g in gs]
    return [cpu(o) for o in outs], grads


def assert_same(fn, inputs, dtype="float64", seed=1):
    """fused and composite agree on outputs and gradients."""
    out_f, g_f = run(fn, inputs, True, seed)
    out_c, g_c = run(fn, inputs, False, seed)
    tol = TOL[str(np.dtype(dtype))]
    assert len(out_f) == len(out_c)
    for a, b in zip(out_f, out_c):
        assert a.dtype == b.dtype
        np.testing.assert_allclose(a, b, **tol)
    for a, b in zip(g_f, g_c):
        if a is None or b is None:
            assert a is None or not np.any(a), "gradient present on one path only"
            assert b is None or not np.any(b), "gradient present on one path only"
            continue
        assert a.dtype == b.dtype
        np.testing.assert_allclose(a, b, **tol)
    return out_f, g_f


def second_order(fn, inputs, fused, seed=2):
    """d/d inputs of sum(v * d(sum(w * out))/d inputs) built with create_graph=True."""
    for t in inputs:
        t.grad = None
    rng = np.random.default_rng(seed)
    with mg.use_fused(fused):
        outs = [o for o in outputs_list(fn(*inputs)) if o.requires_grad]
        loss = sum((o * mg.tensor(rng.standard_normal(o.shape), dtype=o.dtype,
                                  device=o.device)).sum() for o in outs)
        wanted = [t for t in inputs if t.requires_grad]
        gs = mg.grad(loss, wanted, create_graph=True, allow_unused=True)
        total = None
        for g in gs:
            if g is None or not g.requires_grad:
                continue
            term = (g * mg.tensor(rng.standard_normal(g.shape), dtype=g.dtype,
                                  device=g.device)).sum()
            total = term if total is None else total + term
        g2 = mg.grad(total, wanted, allow_unused=True)
    return [cpu(g) for g in gs if g is not None], [None if g is None else cpu(g) for g in g2]


def assert_same_second_order(fn, inputs, rtol=1e-8, atol=1e-10):
    g1_f, g2_f = second_order(fn, inputs, True)
    g1_c, g2_c = second_order(fn, inputs, False)
    for a, b in zip(g1_f, g1_c):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
    for a, b in zip(g2_f, g2_c):
        if a is None or b is None:
            assert (a is None or not np.any(a)) and (b is None or not np.any(b))
            continue
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def grad_fn_names(out):
    """Names of the Functions in the graph behind a tensor (to see which path ran)."""
    names, seen, stack = set(), set(), [out.grad_fn]
    while stack:
        fn = stack.pop()
        if fn is None or id(fn) in seen:
            continue
        seen.add(id(fn))
        names.add(type(fn).__name__)
        stack.extend(t.grad_fn for t in (fn.inputs or ()))
    return names


def assert_switch(name: str, run) -> None:
    """The graph of ``run()`` holds the fused Function ``name`` with ``mg.use_fused`` on, and
    not with it off."""
    assert name in grad_fn_names(run())
    with mg.use_fused(False):
        assert name not in grad_fn_names(run())
