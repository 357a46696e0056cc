"""Losses: gradients for every option, stability at logits of 1e4, clear errors, modules, and
parity with PyTorch for every option combination."""

import itertools
import math

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import nn


def npy(t):
    return mg.backend.to_device(t.detach().data, mg.backend.CPU)


REDUCTIONS = ["none", "mean", "sum"]
CE_SHAPES = [(3, 4), (4,), (2, 3, 2, 2)]  # (N, C), unbatched (C,), (N, C, d1, d2)


def _class_dim(shape):
    return 0 if len(shape) == 1 else 1


def make_ce_case(shape, prob, weighted, ignore, seed=0):
    """NumPy arrays (logits, target, weight or None) for a cross-entropy case."""
    rng = np.random.default_rng(seed)
    cd = _class_dim(shape)
    C = shape[cd]
    x = rng.standard_normal(shape) * 2
    if prob:
        t = rng.random(shape) + 0.1
        t /= t.sum(axis=cd, keepdims=True)
    else:
        tshape = shape[:cd] + shape[cd + 1:]
        t = rng.integers(0, C, tshape)
        if ignore and t.ndim:
            t.reshape(-1)[::3] = -1  # every third target ignored
    w = rng.random(C) + 0.5 if weighted else None
    return x, t, w


def ce_combos(with_smoothing=True):
    out = []
    for shape, prob, weighted, ls, red, ignore in itertools.product(
            CE_SHAPES, [False, True], [False, True], [0.0, 0.2] if with_smoothing else [0.0],
            REDUCTIONS, [False, True]):
        if prob and ignore:
            continue  # ignore_index applies to class indices only
        out.append((shape, prob, weighted, ls, red, ignore))
    return out


def ce_id(c):
    shape, prob, weighted, ls, red, ignore = c
    return (f"{'x'.join(map(str, shape))}-{'prob' if prob else 'idx'}-{'w' if weighted else 'nw'}"
            f"-ls{ls}-{red}{'-ign' if ignore else ''}")


CE_COMBOS = ce_combos()


# ---------------------------------------------------------------------------- cross_entropy


@pytest.mark.parametrize("combo", CE_COMBOS, ids=ce_id)
def test_cross_entropy_gradcheck(combo, device):
    shape, prob, weighted, ls, red, ignore = combo
    x, t, w = make_ce_case(shape, prob, weighted, ignore)
    xm = mg.tensor(x, device=device, requires_grad=True)
    tm = mg.tensor(t, device=device, requires_grad=prob)
    inputs = [xm, tm]
    if weighted:
        inputs.append(mg.tensor(w, device=device, requires_grad=True))

    def fn(x, t, w=None):
        return F.cross_entropy(x, t, weight=w, ignore_index=-1, reduction=red,
                               label_smoothing=ls)

    assert mg.autograd.gradcheck(fn, inputs)


def test_cross_entropy_matches_formula_by_hand():
    x = np.array([[1.0, 2.0, 0.5], [0.1, -1.0, 3.0], [2.0, 2.0, 2.0]])
    t = np.array([1, -1, 0])
    w = np.array([0.5, 2.0, 1.0])
    eps = 0.3
    logp = x - np.log(np.exp(x).sum(1, keepdims=True))
    valid = t != -1
    nll = np.array([-w[t[i]] * logp[i, t[i]] if valid[i] else 0.0 for i in range(3)])
    smooth = np.where(valid, -(logp * w).sum(1), 0.0)
    per = (1 - eps) * nll + eps / 3 * smooth
    wsum = sum(w[t[i]] for i in range(3) if valid[i])
    got = F.cross_entropy(mg.tensor(x), mg.tensor(t), mg.tensor(w), ignore_index=-1,
                          label_smoothing=eps)
    np.testing.assert_allclose(got.item(), per.sum() / wsum, rtol=1e-12)
    got = F.cross_entropy(mg.tensor(x), mg.tensor(t), mg.tensor(w), ignore_index=-1,
                          label_smoothing=eps, reduction="none")
    np.testing.assert_allclose(npy(got), per, rtol=1e-12)
    # probability targets: smoothed q, weighted, mean over N (not over the weights)
    q = np.abs(x) / np.abs(x).sum(1, keepdims=True)
    qs = q * (1 - eps) + eps / 3
    want = -(logp * qs * w).sum() / 3
    got = F.cross_entropy(mg.tensor(x), mg.tensor(q), mg.tensor(w), label_smoothing=eps)
    np.testing.assert_allclose(got.item(), want, rtol=1e-12)


@pytest.mark.parametrize("dtype", [mg.float32, mg.float64])
def test_cross_entropy_stable_at_1e4(device, dtype):
    x = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [5e3, -1e4, 1e4]])
    t = np.array([1, 2, 0])
    q = np.array([[0.0, 1.0, 0.0], [0.5, 0.0, 0.5], [0.2, 0.3, 0.5]])
    w = mg.tensor([1.0, 2.0, 0.5], dtype=dtype, device=device)
    for target, kwargs in [(t, {}), (t, {"label_smoothing": 0.1}), (t, {"weight": w}),
                           (q, {}), (q, {"label_smoothing": 0.1, "weight": w})]:
        xm = mg.tensor(x, dtype=dtype, device=device, requires_grad=True)
        tm = mg.tensor(target, dtype=dtype if target.dtype.kind == "f" else None, device=device)
        for red in REDUCTIONS:
            loss = F.cross_entropy(xm, tm, reduction=red, **kwargs)
            assert loss.dtype == dtype
            assert np.all(np.isfinite(npy(loss))), (kwargs, red)
            loss.backward(mg.ones_like(loss))
            assert np.all(np.isfinite(npy(xm.grad))), (kwargs, red)
            assert xm.grad.dtype == dtype
            xm.grad = None
    got = F.cross_entropy(mg.tensor(x, dtype=dtype, device=device), mg.tensor(t, device=device),
                          reduction="none")
    np.testing.assert_allclose(npy(got), [2e4, 0.0, 5e3], rtol=1e-6)


def test_cross_entropy_unbatched_and_high_dim_shapes(device):
    x = mg.randn(5, device=device)
    assert F.cross_entropy(x, mg.tensor(2, device=device), reduction="none").shape == ()
    assert F.cross_entropy(x, F.softmax(x, 0), reduction="none").shape == ()
    x4 = mg.randn(2, 5, 3, 4, device=device)
    t4 = mg.randint(0, 5, (2, 3, 4), device=device)
    assert F.cross_entropy(x4, t4, reduction="none").shape == (2, 3, 4)
    # (N, C, d1, d2) equals (N*d1*d2, C) after moving the class dim last
    flat = x4.permute(0, 2, 3, 1).reshape(-1, 5)
    np.testing.assert_allclose(npy(F.cross_entropy(x4, t4)),
                               npy(F.cross_entropy(flat, t4.reshape(-1))), rtol=1e-6)


def test_cross_entropy_all_ignored_mean_is_nan():
    loss = F.cross_entropy(mg.randn(2, 3), mg.tensor([-100, -100]))
    assert math.isnan(loss.item())
    assert F.cross_entropy(mg.randn(2, 3), mg.tensor([-100, -100]), reduction="sum").item() == 0


def test_cross_entropy_float32_stays_float32(device):
    x = mg.randn(4, 3, device=device, requires_grad=True)
    w = mg.tensor([1.0, 2.0, 3.0], dtype=mg.float64, device=device)
    q = mg.tensor(np.full((4, 3), 1 / 3), dtype=mg.float64, device=device)
    t = mg.tensor([0, 1, 2, -100], device=device)
    for loss in (F.cross_entropy(x, t, w, label_smoothing=0.1), F.cross_entropy(x, q, w),
                 F.nll_loss(F.log_softmax(x, 1), t, w)):
        assert loss.dtype == mg.float32
        loss.backward()
        assert x.grad.dtype == mg.float32
        x.grad = None


def test_cross_entropy_errors(device):
    """Bad class indices raise IndexError: on the CPU at the call, on a GPU at the next
    synchronisation (here ``.item()``), as PyTorch's device-side asserts do."""
    x = mg.randn(3, 4, device=device)
    with pytest.raises(IndexError, match="target 4 is out of bounds"):
        F.cross_entropy(x, mg.tensor([0, 4, 1], device=device)).item()
    with pytest.raises(IndexError, match="out of bounds"):  # -1 is not ignore_index
        F.cross_entropy(x, mg.tensor([0, -1, 1], device=device)).item()
    with pytest.raises(IndexError, match=r"target 9 .*\[0, 4\)"):
        F.nll_loss(x, mg.tensor([0, 9, 1], device=device)).item()
    with pytest.raises(TypeError, match="integers"):
        F.cross_entropy(x, mg.tensor([0.0, 1.0, 2.0], device=device))
    with pytest.raises(TypeError, match="floating point"):
        F.cross_entropy(x, mg.zeros(3, 4, dtype=mg.int64, device=device))
    with pytest.raises(ValueError, match="shape"):
        F.cross_entropy(x, mg.tensor([0, 1], device=device))
    with pytest.raises(ValueError, match="shape"):
        F.cross_entropy(x, mg.zeros(3, 5, device=device))
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(x, mg.tensor([0, 1, 2], device=device), reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(x, mg.tensor([0, 1, 2], device=device), label_smoothing=1.5)
    with pytest.raises(ValueError, match="weight"):
        F.cross_entropy(x, mg.tensor([0, 1, 2], device=device), weight=mg.ones(3, device=device))
    with pytest.raises(ValueError, match="class dimension"):
        F.cross_entropy(mg.tensor(1.0), mg.tensor(0))
    with pytest.raises(TypeError, match="Tensor"):
        F.cross_entropy(x, [0, 1, 2])
    with pytest.raises(ValueError, match="reduction"):
        nn.CrossEntropyLoss(reduction="mean_over_batch")


def test_legacy_size_average_and_reduce():
    x, t = mg.randn(3, 4), mg.tensor([0, 1, 2])
    s = F.cross_entropy(x, t, reduction="sum").item()
    assert F.cross_entropy(x, t, size_average=False).item() == pytest.approx(s)
    assert F.cross_entropy(x, t, reduce=False).shape == (3,)
    assert nn.MSELoss(size_average=False).reduction == "sum"


# ---------------------------------------------------------------------------- nll_loss


NLL_COMBOS = [c for c in itertools.product(CE_SHAPES, [False, True], REDUCTIONS, [False, True])]


@pytest.mark.parametrize("combo", NLL_COMBOS, ids=lambda c: "-".join(map(str, c)))
def test_nll_loss_gradcheck(combo, device):
    shape, weighted, red, ignore = combo
    x, t, w = make_ce_case(shape, False, weighted, ignore)
    inputs = [mg.tensor(x, device=device, requires_grad=True), mg.tensor(t, device=device)]
    if weighted:
        inputs.append(mg.tensor(w, device=device, requires_grad=True))

    def fn(x, t, w=None):
        return F.nll_loss(x, t, w, ignore_index=-1, reduction=red)

    assert mg.autograd.gradcheck(fn, inputs)


# ---------------------------------------------------------------------------- binary losses


BCE_WEIGHTS = [None, (3, 4), (4,)]


@pytest.mark.parametrize("red", REDUCTIONS)
@pytest.mark.parametrize("wshape", BCE_WEIGHTS, ids=str)
def test_bce_gradcheck(device, red, wshape):
    rng = np.random.default_rng(0)
    p = mg.tensor(rng.uniform(0.05, 0.95, (3, 4)), device=device, requires_grad=True)
    t = mg.tensor(rng.uniform(0, 1, (3, 4)), device=device, requires_grad=True)
    inputs = [p, t]
    if wshape:
        inputs.append(mg.tensor(rng.uniform(0.5, 2, wshape), device=device, requires_grad=True))
    assert mg.autograd.gradcheck(
        lambda p, t, w=None: F.binary_cross_entropy(p, t, w, reduction=red), inputs)


@pytest.mark.parametrize("red", REDUCTIONS)
@pytest.mark.parametrize("wshape", BCE_WEIGHTS, ids=str)
@pytest.mark.parametrize("pos_weight", [False, True])
def test_bce_with_logits_gradcheck(device, red, wshape, pos_weight):
    rng = np.random.default_rng(0)
    x = mg.tensor(rng.standard_normal((3, 4)) * 3, device=device, requires_grad=True)
    t = mg.tensor(rng.uniform(0, 1, (3, 4)), device=device, requires_grad=True)
    w = mg.tensor(rng.uniform(0.5, 2, wshape), device=device, requires_grad=True) \
        if wshape else None
    pw = mg.tensor(rng.uniform(0.5, 3, (4,)), device=device, requires_grad=True) \
        if pos_weight else None

    def fn(x, t, w, pw):
        return F.binary_cross_entropy_with_logits(x, t, w, reduction=red, pos_weight=pw)

    assert mg.autograd.gradcheck(fn, [x, t, w, pw])


def test_bce_clamps_log_at_minus_100(device):
    p = mg.tensor([0.0, 1.0, 0.0, 1.0], device=device, requires_grad=True)
    t = mg.tensor([1.0, 0.0, 0.0, 1.0], device=device)
    loss = F.binary_cross_entropy(p, t, reduction="none")
    np.testing.assert_allclose(npy(loss), [100, 100, 0, 0])
    loss.sum().backward()
    assert np.all(np.isfinite(npy(p.grad)))


@pytest.mark.parametrize("dtype", [mg.float32, mg.float64])
def test_bce_with_logits_stable_at_1e4(device, dtype):
    x = mg.tensor([1e4, -1e4, 1e4, -1e4, 0.0], dtype=dtype, device=device, requires_grad=True)
    t = mg.tensor([1.0, 0.0, 0.0, 1.0, 1.0], dtype=dtype, device=device)
    pw = mg.tensor([2.0], dtype=dtype, device=device)
    for kwargs in ({}, {"pos_weight": pw}):
        loss = F.binary_cross_entropy_with_logits(x, t, reduction="none", **kwargs)
        assert loss.dtype == dtype
        want = [0, 0, 1e4, 1e4 * (2 if kwargs else 1), math.log(2) * (2 if kwargs else 1)]
        np.testing.assert_allclose(npy(loss), want, rtol=1e-6)
        loss.sum().backward()
        assert np.all(np.isfinite(npy(x.grad))) and x.grad.dtype == dtype
        x.grad = None


def test_binary_losses_errors(device):
    p = mg.tensor([0.2, 0.7], device=device)
    with pytest.raises(ValueError, match="same size"):
        F.binary_cross_entropy(p, mg.tensor([1.0], device=device))
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.binary_cross_entropy(mg.tensor([1.5, 0.5], device=device), p)
    with pytest.raises(TypeError, match="floating point"):
        F.binary_cross_entropy(p, mg.tensor([1, 0], device=device))
    with pytest.raises(ValueError, match="same as input size"):
        F.binary_cross_entropy_with_logits(p, mg.tensor([[1.0, 0.0]], device=device))
    with pytest.raises(TypeError, match="floating point"):
        F.binary_cross_entropy_with_logits(p, mg.tensor([1, 0], device=device))
    with pytest.raises(ValueError, match="reduction"):
        F.binary_cross_entropy_with_logits(p, p, reduction="batchmean")


# ---------------------------------------------------------------------------- regression losses


REGRESSION = [
    ("mse", lambda x, y, r: F.mse_loss(x, y, reduction=r)),
    ("l1", lambda x, y, r: F.l1_loss(x, y, reduction=r)),
    ("smooth_l1", lambda x, y, r: F.smooth_l1_loss(x, y, reduction=r)),
    ("smooth_l1_b0.5", lambda x, y, r: F.smooth_l1_loss(x, y, reduction=r, beta=0.5)),
    ("smooth_l1_b0", lambda x, y, r: F.smooth_l1_loss(x, y, reduction=r, beta=0.0)),
    ("huber_d2", lambda x, y, r: F.huber_loss(x, y, reduction=r, delta=2.0)),
]


@pytest.mark.parametrize("red", REDUCTIONS)
@pytest.mark.parametrize("case", REGRESSION, ids=lambda c: c[0])
def test_regression_gradcheck(device, case, red):
    rng = np.random.default_rng(0)
    x = mg.tensor(rng.standard_normal((3, 4)) * 2, device=device, requires_grad=True)
    y = mg.tensor(rng.standard_normal((3, 4)), device=device, requires_grad=True)
    assert mg.autograd.gradcheck(lambda x, y: case[1](x, y, red), [x, y])


def test_regression_values_and_dtypes(device):
    x = mg.tensor([0.0, 0.5, 3.0], device=device)
    y = mg.tensor([0.0, 0.0, 0.0], dtype=mg.float64, device=device)
    assert F.mse_loss(x, y).item() == pytest.approx((0.25 + 9) / 3)
    assert F.l1_loss(x, y, reduction="sum").item() == pytest.approx(3.5)
    assert F.smooth_l1_loss(x, y, reduction="sum").item() == pytest.approx(0.125 + 2.5)
    assert F.huber_loss(x, y, reduction="sum", delta=2).item() == pytest.approx(0.125 + 2 * 2)
    for fn in (F.mse_loss, F.l1_loss, F.smooth_l1_loss, F.huber_loss):
        assert fn(x, y).dtype == mg.float32
    with pytest.warns(UserWarning, match="broadcasting"):
        F.mse_loss(mg.zeros(3, 1), mg.zeros(3))
    with pytest.raises(ValueError):
        F.smooth_l1_loss(x, x, beta=-1.0)


# ---------------------------------------------------------------------------- modules


def test_loss_modules_forward_and_state_dict(device):
    w = mg.tensor([1.0, 2.0, 3.0], device=device)
    x = mg.randn(4, 3, device=device)
    t = mg.tensor([0, 2, 1, -1], device=device)
    ce = nn.CrossEntropyLoss(weight=w, ignore_index=-1, label_smoothing=0.1, reduction="sum")
    assert list(ce.state_dict()) == ["weight"]
    assert repr(ce) == "CrossEntropyLoss()"
    np.testing.assert_allclose(
        npy(ce(x, t)),
        npy(F.cross_entropy(x, t, w, ignore_index=-1, label_smoothing=0.1, reduction="sum")))
    nll = nn.NLLLoss(ignore_index=-1)
    np.testing.assert_allclose(npy(nll(x, t)), npy(F.nll_loss(x, t, ignore_index=-1)))
    assert list(nn.CrossEntropyLoss().state_dict()) == []
    p = mg.tensor([[0.2, 0.9], [0.5, 0.5]], device=device)
    q = mg.tensor([[0.0, 1.0], [1.0, 0.5]], device=device)
    pw = mg.tensor([1.0, 3.0], device=device)
    bl = nn.BCEWithLogitsLoss(pos_weight=pw)
    assert list(bl.state_dict()) == ["pos_weight"]
    np.testing.assert_allclose(npy(bl(p, q)),
                               npy(F.binary_cross_entropy_with_logits(p, q, pos_weight=pw)))
    np.testing.assert_allclose(npy(nn.BCELoss(reduction="none")(p, q)),
                               npy(F.binary_cross_entropy(p, q, reduction="none")))
    for module, fn in [(nn.MSELoss(), F.mse_loss), (nn.L1Loss(), F.l1_loss),
                       (nn.SmoothL1Loss(beta=0.5), lambda a, b: F.smooth_l1_loss(a, b, beta=0.5)),
                       (nn.HuberLoss(delta=0.3), lambda a, b: F.huber_loss(a, b, delta=0.3))]:
        np.testing.assert_allclose(npy(module(p, q)), npy(fn(p, q)))


# ---------------------------------------------------------------------------- PyTorch parity


def _tol(dtype):
    return dict(rtol=1e-5, atol=1e-5) if dtype == "float64" else dict(rtol=1e-4, atol=1e-4)


def _compare(torch, ours_fn, theirs_fn, arrays, diff, dtype):
    """Run both with the same arrays (float arrays in ``dtype``), compare the loss and the
    gradients of the arrays listed in ``diff``."""
    tdt = getattr(torch, dtype)
    ms, ts = [], []
    for i, a in enumerate(arrays):
        if a is None:
            ms.append(None)
            ts.append(None)
        elif a.dtype.kind == "f":
            ms.append(mg.tensor(a, dtype=dtype, requires_grad=i in diff))
            ts.append(torch.tensor(a, dtype=tdt, requires_grad=i in diff))
        else:
            ms.append(mg.tensor(a))
            ts.append(torch.tensor(a))
    lm, lt = ours_fn(*ms), theirs_fn(*ts)
    g = np.random.default_rng(3).standard_normal(lt.shape) if lt.ndim else np.array(1.0)
    lm.backward(mg.tensor(g, dtype=dtype))
    lt.backward(torch.tensor(g, dtype=tdt))
    assert lm.dtype == np.dtype(dtype) and lm.shape == tuple(lt.shape)
    np.testing.assert_allclose(npy(lm), lt.detach().numpy(), **_tol(dtype))
    for i in diff:
        np.testing.assert_allclose(npy(ms[i].grad), ts[i].grad.numpy(), **_tol(dtype),
                                   err_msg=f"gradient of argument {i}")


@pytest.mark.torch
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("combo", CE_COMBOS, ids=ce_id)
def test_cross_entropy_torch_parity(combo, dtype):
    torch = pytest.importorskip("torch")
    shape, prob, weighted, ls, red, ignore = combo
    x, t, w = make_ce_case(shape, prob, weighted, ignore, seed=5)
    kw = dict(ignore_index=-1, reduction=red, label_smoothing=ls)
    # PyTorch differentiates neither the class weights nor class-index targets; it does
    # differentiate probability targets
    _compare(torch, lambda x, t, w: F.cross_entropy(x, t, w, **kw),
             lambda x, t, w: torch.nn.functional.cross_entropy(x, t, w, **kw),
             [x, t, w], [0, 1] if prob else [0], dtype)
    mod_m = nn.CrossEntropyLoss(None if w is None else mg.tensor(w, dtype=dtype), **kw)
    mod_t = torch.nn.CrossEntropyLoss(None if w is None else torch.tensor(w), **kw)
    assert list(mod_m.state_dict()) == list(mod_t.state_dict())
    _compare(torch, lambda x, t: mod_m(x, t), lambda x, t: mod_t.to(getattr(torch, dtype))(x, t),
             [x, t], [0], dtype)


@pytest.mark.torch
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cross_entropy_torch_parity_extreme_logits(dtype):
    torch = pytest.importorskip("torch")
    x = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [5e3, -1e4, 1e4]])
    t = np.array([1, 2, 0])
    q = np.array([[0.0, 1.0, 0.0], [0.5, 0.0, 0.5], [0.2, 0.3, 0.5]])
    w = np.array([1.0, 2.0, 0.5])
    for target, ls in [(t, 0.0), (t, 0.1), (q, 0.0), (q, 0.1)]:
        for red in REDUCTIONS:
            kw = dict(reduction=red, label_smoothing=ls)
            _compare(torch, lambda x, t, w, kw=kw: F.cross_entropy(x, t, w, **kw),
                     lambda x, t, w, kw=kw: torch.nn.functional.cross_entropy(x, t, w, **kw),
                     [x, target, w], [0], dtype)


@pytest.mark.torch
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("combo", NLL_COMBOS, ids=lambda c: "-".join(map(str, c)))
def test_nll_loss_torch_parity(combo, dtype):
    torch = pytest.importorskip("torch")
    shape, weighted, red, ignore = combo
    x, t, w = make_ce_case(shape, False, weighted, ignore, seed=7)
    kw = dict(ignore_index=-1, reduction=red)
    _compare(torch, lambda x, t, w: F.nll_loss(F.log_softmax(x, _class_dim(shape)), t, w, **kw),
             lambda x, t, w: torch.nn.functional.nll_loss(
                 torch.log_softmax(x, _class_dim(shape)), t, w, **kw),
             [x, t, w], [0], dtype)
    mod_m = nn.NLLLoss(None if w is None else mg.tensor(w, dtype=dtype), **kw)
    mod_t = torch.nn.NLLLoss(None if w is None else torch.tensor(w), **kw).to(getattr(torch, dtype))
    _compare(torch, lambda x, t: mod_m(x, t), lambda x, t: mod_t(x, t), [x, t], [0], dtype)


@pytest.mark.torch
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("red", REDUCTIONS)
@pytest.mark.parametrize("wshape", BCE_WEIGHTS, ids=str)
def test_bce_torch_parity(dtype, red, wshape):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    p = rng.uniform(0.05, 0.95, (3, 4))
    t = rng.uniform(0, 1, (3, 4))
    w = rng.uniform(0.5, 2, wshape) if wshape else None
    _compare(torch, lambda p, t, w: F.binary_cross_entropy(p, t, w, reduction=red),
             lambda p, t, w: torch.nn.functional.binary_cross_entropy(p, t, w, reduction=red),
             [p, t, w], [0], dtype)
    wm = None if w is None else mg.tensor(w, dtype=dtype)
    wt = None if w is None else torch.tensor(w, dtype=getattr(torch, dtype))
    _compare(torch, lambda p, t: nn.BCELoss(wm, reduction=red)(p, t),
             lambda p, t: torch.nn.BCELoss(wt, reduction=red)(p, t), [p, t], [0], dtype)


@pytest.mark.torch
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("red", REDUCTIONS)
@pytest.mark.parametrize("wshape", BCE_WEIGHTS, ids=str)
@pytest.mark.parametrize("pos_weight", [False, True])
@pytest.mark.parametrize("scale", [3.0, 1e4])
def test_bce_with_logits_torch_parity(dtype, red, wshape, pos_weight, scale):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4)) * scale
    t = rng.uniform(0, 1, (3, 4))
    w = rng.uniform(0.5, 2, wshape) if wshape else None
    pw = rng.uniform(0.5, 3, (4,)) if pos_weight else None
    _compare(torch,
             lambda x, t, w, pw: F.binary_cross_entropy_with_logits(
                 x, t, w, reduction=red, pos_weight=pw),
             lambda x, t, w, pw: torch.nn.functional.binary_cross_entropy_with_logits(
                 x, t, w, reduction=red, pos_weight=pw),
             [x, t, w, pw], [0, 1], dtype)
    mod_m = nn.BCEWithLogitsLoss(None if w is None else mg.tensor(w, dtype=dtype), reduction=red,
                                 pos_weight=None if pw is None else mg.tensor(pw, dtype=dtype))
    mod_t = torch.nn.BCEWithLogitsLoss(
        None if w is None else torch.tensor(w), reduction=red,
        pos_weight=None if pw is None else torch.tensor(pw)).to(getattr(torch, dtype))
    assert list(mod_m.state_dict()) == list(mod_t.state_dict())
    _compare(torch, lambda x, t: mod_m(x, t), lambda x, t: mod_t(x, t), [x, t], [0], dtype)


@pytest.mark.torch
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("red", REDUCTIONS)
@pytest.mark.parametrize("name,kwargs,module,mkwargs", [
    ("mse_loss", {}, "MSELoss", {}),
    ("l1_loss", {}, "L1Loss", {}),
    ("smooth_l1_loss", {}, "SmoothL1Loss", {}),
    ("smooth_l1_loss", {"beta": 0.5}, "SmoothL1Loss", {"beta": 0.5}),
    ("smooth_l1_loss", {"beta": 0.0}, "SmoothL1Loss", {"beta": 0.0}),
    ("huber_loss", {"delta": 2.0}, "HuberLoss", {"delta": 2.0}),
])
def test_regression_torch_parity(dtype, red, name, kwargs, module, mkwargs):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((3, 4)) * 2, rng.standard_normal((3, 4))
    _compare(torch, lambda x, y: getattr(F, name)(x, y, reduction=red, **kwargs),
             lambda x, y: getattr(torch.nn.functional, name)(x, y, reduction=red, **kwargs),
             [x, y], [0, 1], dtype)
    _compare(torch, lambda x, y: getattr(nn, module)(reduction=red, **mkwargs)(x, y),
             lambda x, y: getattr(torch.nn, module)(reduction=red, **mkwargs)(x, y),
             [x, y], [0, 1], dtype)


@pytest.mark.parametrize("fused", [False, True], ids=["composite", "fused"])
def test_no_float64_anywhere_in_float32_graphs(monkeypatch, fused):
    """Every op run by a float32 loss, forward and backward, makes float32 (or int/bool)."""
    monkeypatch.setattr(mg.fused._Switch, "enabled", fused)
    made = []
    real_apply = mg.autograd.Function.apply.__func__

    def spy(cls, *inputs, **params):
        out = real_apply(cls, *inputs, **params)
        for o in out if isinstance(out, tuple) else (out,):
            made.append((cls.__name__, o.dtype))
        return out

    monkeypatch.setattr(mg.autograd.Function, "apply", classmethod(spy))
    x = mg.randn(4, 3, requires_grad=True)
    p = mg.rand(4, 3, requires_grad=True)
    t = mg.tensor([0, 2, 1, -1])
    q = mg.rand(4, 3)
    w = mg.tensor([1.0, 2.0, 0.5])
    losses = [
        lambda: F.cross_entropy(x, t, w, ignore_index=-1, label_smoothing=0.1),
        lambda: F.cross_entropy(x, q, w, label_smoothing=0.1),
        lambda: F.nll_loss(x, t, ignore_index=-1),
        lambda: F.binary_cross_entropy(p * 0.9 + 0.05, q, w),
        lambda: F.binary_cross_entropy_with_logits(x, q, w, pos_weight=w),
        lambda: F.mse_loss(x, q) + F.l1_loss(x, q) + F.smooth_l1_loss(x, q, beta=0.5)
        + F.huber_loss(x, q),
        lambda: F.layer_norm(F.dropout(F.gelu(x), 0.2), 3, w, w).sum(),
    ]
    for make in losses:
        made.clear()
        make().backward()
        floats = {dt for _, dt in made if dt.kind == "f"}
        assert len(made) >= (1 if fused else 5)  # a fused loss may be a single op
        assert floats == {np.dtype(np.float32)}, [m for m in made if m[1] == np.float64]


@pytest.mark.parametrize("name", ["ce_idx", "ce_prob", "bce_logits", "bce", "mse"])
def test_losses_gradgradcheck(device, name):
    """Second derivatives (create_graph=True) through the composites."""
    rng = np.random.default_rng(0)
    x = mg.tensor(rng.standard_normal((3, 4)), device=device, requires_grad=True)
    q = mg.tensor(rng.uniform(0.1, 0.9, (3, 4)), device=device)
    w = mg.tensor(rng.uniform(0.5, 2, (4,)), device=device)
    t = mg.tensor([1, -1, 3], device=device)
    fns = {
        "ce_idx": lambda x: F.cross_entropy(x, t, w, ignore_index=-1, label_smoothing=0.2),
        "ce_prob": lambda x: F.cross_entropy(x, q, w, label_smoothing=0.2, reduction="none"),
        "bce_logits": lambda x: F.binary_cross_entropy_with_logits(x, q, pos_weight=w),
        "bce": lambda x: F.binary_cross_entropy(F.sigmoid(x), q, reduction="sum"),
        "mse": lambda x: F.mse_loss(x, q),
    }
    assert mg.autograd.gradgradcheck(fns[name], [x])
