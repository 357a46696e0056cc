"""The fused multi-tensor Adam/AdamW (kernels/adam.py) against the per-parameter reference
(``references.adam_update``): the same numbers, step after step, in every configuration."""

import copy

import numpy as np
import pytest
from helpers import ADAM_CASES
from kernel_utils import cpu
from kernel_utils import fused_on  # noqa: F401  (autouse: kernels on, whatever the env)

import minigrad as mg
from minigrad import kernels, optim
from minigrad.nn import Parameter

SHAPES = [(5, 4), (4,), (3, 1, 2), (1,), (7, 3), (200, 200), (3,)]  # (200, 200): a segment
CASES = ADAM_CASES


def _params(device, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [Parameter(mg.tensor(rng.standard_normal(s), dtype=dtype, device=device))
            for s in SHAPES]


def _groups(params, lr):
    return [{"params": params[:3] + params[5:]}, {"params": params[3:5], "lr": lr * 3}]


def _grads(rng, params, step, dtype, device):
    """Gradients for one step: some parameters get none now and then, one is non-contiguous."""
    out = []
    for i, p in enumerate(params):
        if (i == 1 and step % 3 == 1) or (i == 4 and step % 4 == 2):
            out.append(None)
            continue
        if i == 4:  # a transposed (F-ordered) gradient
            g = mg.tensor(rng.standard_normal(p.shape[::-1]), dtype=dtype, device=device).T
        else:
            g = mg.tensor(rng.standard_normal(p.shape), dtype=dtype, device=device)
        out.append(g)
    return out


def _run(name, kw, device, dtype, fused, steps=12, reload_at=None):
    params = _params(device, dtype)
    opt = getattr(optim, name)(_groups(params, kw["lr"]), **kw)
    rng = np.random.default_rng(7)
    history = []
    with mg.use_fused(fused):
        for step in range(steps):
            for p, g in zip(params, _grads(rng, params, step, dtype, device)):
                p.grad = g
            opt.step()
            if step == reload_at:  # a checkpoint round trip in the middle
                saved = copy.deepcopy(opt.state_dict())
                opt = getattr(optim, name)(_groups(params, kw["lr"]), **kw)
                opt.load_state_dict(saved)
            history.append([cpu(p).copy() for p in params])
    return history, opt


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c[0] + "-" + ",".join(c[1]))
def test_same_numbers_as_the_reference(device, dtype, case):
    name, kw = case
    fused, opt_f = _run(name, kw, device, dtype, True, reload_at=5)
    ref, opt_r = _run(name, kw, device, dtype, False, reload_at=5)
    # equal to rounding (the kernel folds the bias-correction constants differently); the
    # parameters are O(1), so the absolute tolerance is a few ulps of 1
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == "float32" else dict(rtol=1e-12, atol=1e-13)
    for step, (a, b) in enumerate(zip(fused, ref)):
        for x, y in zip(a, b):
            np.testing.assert_allclose(x, y, err_msg=f"step {step}", **tol)
    sd_f, sd_r = opt_f.state_dict(), opt_r.state_dict()
    assert sorted(sd_f["state"]) == sorted(sd_r["state"])
    for k, st in sd_r["state"].items():
        assert sorted(st) == sorted(sd_f["state"][k])
        for key, value in st.items():
            assert isinstance(sd_f["state"][k][key], mg.Tensor)
            np.testing.assert_allclose(cpu(sd_f["state"][k][key]), cpu(value), **tol)


def test_moments_live_in_flat_buffers_and_params_are_untouched(device):
    params = _params(device, "float32")
    data_before = [p.data for p in params]
    opt = optim.Adam(params, lr=0.1, amsgrad=True)
    for p in params:
        p.grad = mg.ones(*p.shape, device=device)
    grads_before = [cpu(p.grad).copy() for p in params]
    opt.step()
    assert all(p.data is d for p, d in zip(params, data_before))  # updated in place
    for p, g in zip(params, grads_before):
        np.testing.assert_array_equal(cpu(p.grad), g)  # the gradient is never written
    (flat,) = opt.__dict__[kernels.adam._CACHE_ATTR].values()
    total = sum(p.data.size for p in params)
    for name in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
        assert flat.buffers[name].size == total
        for p in params:
            view = opt.state[p][name].data
            assert view.base is flat.buffers[name] or view.base.base is flat.buffers[name]
    # a second step reuses the buffers; replacing a state tensor rebuilds them
    opt.step()
    assert opt.__dict__[kernels.adam._CACHE_ATTR][next(iter(opt.__dict__[
        kernels.adam._CACHE_ATTR]))] is flat
    opt.state[params[0]]["exp_avg"] = mg.zeros(*params[0].shape, device=device)
    opt.step()
    (flat2,) = opt.__dict__[kernels.adam._CACHE_ATTR].values()
    assert flat2 is not flat


def test_a_parameter_that_skipped_steps_is_bucketed_apart(device):
    """PyTorch counts steps per parameter: one that missed a step gets its own bias
    correction."""
    a = Parameter(mg.ones(3, device=device))
    b = Parameter(mg.ones(2, device=device))
    ref = [Parameter(mg.ones(3, device=device)), Parameter(mg.ones(2, device=device))]
    opt, opt_r = optim.Adam([a, b], lr=0.1), optim.Adam(ref, lr=0.1)
    for step in range(4):
        for ps, o, fused in (([a, b], opt, True), (ref, opt_r, False)):
            ps[0].grad = mg.full((3,), 0.5, device=device)
            ps[1].grad = None if step == 1 else mg.full((2,), -1.0, device=device)
            with mg.use_fused(fused):
                o.step()
    assert float(opt.state[a]["step"]) == 4 and float(opt.state[b]["step"]) == 3
    # to rounding (the kernels fold constants, and on a GPU contract into FMAs); a wrong bias
    # correction would be off by far more
    np.testing.assert_allclose(cpu(a), cpu(ref[0]), rtol=1e-6)
    np.testing.assert_allclose(cpu(b), cpu(ref[1]), rtol=1e-6)


def test_use_fused_switch(device, monkeypatch):
    calls = []
    real = kernels.adam.step_group
    monkeypatch.setattr(kernels.adam, "step_group", lambda *a: calls.append(1) or real(*a))
    w = Parameter(mg.ones(3, device=device))
    opt = optim.AdamW([w], lr=0.1)
    w.grad = mg.ones(3, device=device)
    with mg.use_fused(False):
        opt.step()
    assert calls == []
    opt.step()
    assert calls == [1]
    w16 = Parameter(mg.ones(3, device=device, dtype=mg.float16))  # no float16 kernel
    opt16 = optim.Adam([w16], lr=0.1)
    w16.grad = mg.ones(3, device=device, dtype=mg.float16)
    opt16.step()
    assert calls == [1] and w16.dtype == np.float16


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_cpu_segments_and_threads_do_not_change_the_numbers(monkeypatch, threads):
    """Small segments (parameters cut across several, several parameters in one) spread over
    threads give the numbers of one thread over large segments, bit for bit."""
    results = []
    monkeypatch.setattr(kernels.adam, "THREADED_MIN", 0)  # threads even for this small group
    for segment, n_threads in ((1 << 16, 1), (37, threads)):
        monkeypatch.setattr(kernels.adam, "SEGMENT", segment)
        monkeypatch.setenv("MINIGRAD_NUM_THREADS", str(n_threads))
        history, opt = _run("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True), "cpu",
                            "float32", True, steps=4)
        (flat, *_) = opt.__dict__[kernels.adam._CACHE_ATTR].values()
        assert max(hi - lo for lo, hi, _ in flat.segments) <= segment
        results.append(history)
    for a, b in zip(*results):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


def test_cpu_small_groups_run_on_the_calling_thread(monkeypatch):
    """A group of fewer than THREADED_MIN values never hands its segments to the kernel
    threads; a larger one does (the numbers are the same either way: the test above)."""
    calls = []
    real = kernels.adam._numpy.run_chunks

    def counting(fn, chunks):
        calls.append(len(chunks))
        return real(fn, chunks)

    monkeypatch.setattr(kernels.adam._numpy, "run_chunks", counting)
    monkeypatch.setattr(kernels.adam, "SEGMENT", 37)
    monkeypatch.setenv("MINIGRAD_NUM_THREADS", "2")
    _run("Adam", dict(lr=0.01), "cpu", "float32", True, steps=2)
    assert calls == []
    monkeypatch.setattr(kernels.adam, "THREADED_MIN", 0)
    _run("Adam", dict(lr=0.01), "cpu", "float32", True, steps=2)
    assert calls and max(calls) > 1


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cpu_blas_passes_equal_the_numpy_passes(monkeypatch, dtype):
    """Where NumPy's BLAS has axpby/axpy (the wheels' OpenBLAS), the update runs through them
    (fused multiply-adds); its numbers equal those of the NumPy passes to rounding."""
    blas = kernels.adam._blas1(np.dtype(dtype))
    if blas is None:
        pytest.skip("NumPy's BLAS is not the wheels' OpenBLAS: the NumPy passes run")
    calls = []

    def counting(fn):
        def call(*args):
            calls.append(args[0])
            return fn(*args)
        return call

    monkeypatch.setitem(kernels.adam._BLAS1, np.dtype(dtype).char, tuple(map(counting, blas)))
    kw = dict(lr=0.01, weight_decay=0.1, amsgrad=True)
    with_blas, _ = _run("Adam", kw, "cpu", dtype, True, steps=6)
    assert calls  # the BLAS path ran
    monkeypatch.setitem(kernels.adam._BLAS1, np.dtype(dtype).char, None)
    numpy_only, _ = _run("Adam", kw, "cpu", dtype, True, steps=6)
    tol = dict(rtol=2e-6, atol=1e-7) if dtype == "float32" else dict(rtol=1e-13, atol=1e-15)
    for a, b in zip(with_blas, numpy_only):
        for x, y in zip(a, b):
            np.testing.assert_allclose(x, y, **tol)


def test_cpu_non_contiguous_parameter_runs_the_reference():
    """A parameter whose values are not contiguous cannot be cut into flat pieces: its bucket
    runs the reference update (the same numbers as the composite path)."""
    rng = np.random.default_rng(3)
    w = rng.standard_normal((6, 5)).astype(np.float32)
    runs = []
    for fused in (True, False):
        p = Parameter(mg.tensor(w))
        p.data = np.asfortranarray(p.data)
        q = Parameter(mg.tensor(w[0]))
        opt = optim.Adam([p, q], lr=0.1)
        with mg.use_fused(fused):
            for _ in range(3):
                p.grad, q.grad = mg.tensor(w * 0.5), mg.tensor(w[1])
                opt.step()
        assert not p.data.flags.c_contiguous
        runs.append((cpu(p).copy(), cpu(q).copy()))
    for x, y in zip(*runs):
        np.testing.assert_array_equal(x, y)
