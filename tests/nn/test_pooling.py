"""Pooling (minigrad/nn/pooling.py): gradcheck of every layer and option, PyTorch parity over a
hypothesis grid (values, indices, gradients), modules, errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import nn
from minigrad.autograd import gradcheck, gradgradcheck


def npy(t):
    return mg.backend.to_device(t.detach().data, mg.backend.CPU)


def _x(shape, seed=0, ties=False):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape)
    if ties:  # few distinct values: maxima tie inside windows
        a = np.round(a)
    return mg.tensor(a, requires_grad=True)


FUSED = pytest.mark.parametrize("fused", [True, False], ids=["fused", "composite"])


# ---------------------------------------------------------------------------- gradcheck


MAX2D = [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
         dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 1), dilation=(2, 1)),
         dict(kernel_size=3, stride=2, ceil_mode=True),
         dict(kernel_size=2, stride=1, padding=1, ceil_mode=True, dilation=2)]


@FUSED
@pytest.mark.parametrize("args", MAX2D, ids=str)
def test_max_pool2d_gradcheck(fused, args):
    x = _x((2, 2, 7, 6))
    with mg.use_fused(fused):
        assert gradcheck(lambda t: F.max_pool2d(t, **args), [x])


@FUSED
@pytest.mark.parametrize("args", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1,
                                   dilation=2, ceil_mode=True), dict(kernel_size=4, stride=1)])
def test_max_pool1d_gradcheck(fused, args):
    x = _x((2, 3, 11))
    with mg.use_fused(fused):
        assert gradcheck(lambda t: F.max_pool1d(t, **args), [x])


@FUSED
def test_max_pool_double_backward(fused):
    """The second derivative of max pooling is zero, but the graph must be differentiable."""
    x = _x((1, 2, 5, 5))
    with mg.use_fused(fused):
        assert gradgradcheck(lambda t: F.max_pool2d(t, 3, 1, 1) ** 2, [x])


AVG2D = [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
         dict(kernel_size=3, stride=2, padding=1, count_include_pad=False),
         dict(kernel_size=(2, 3), stride=(2, 1), padding=(1, 0), ceil_mode=True),
         dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
         dict(kernel_size=2, divisor_override=3)]


@pytest.mark.parametrize("args", AVG2D, ids=str)
def test_avg_pool2d_gradcheck_and_double_backward(args):
    x = _x((2, 2, 7, 6))
    assert gradcheck(lambda t: F.avg_pool2d(t, **args), [x])
    assert gradgradcheck(lambda t: F.avg_pool2d(t, **args) ** 2, [x])


@pytest.mark.parametrize("args", [dict(kernel_size=3), dict(kernel_size=3, stride=2, padding=1,
                                   ceil_mode=True, count_include_pad=False)])
def test_avg_pool1d_gradcheck(args):
    x = _x((2, 3, 10))
    assert gradcheck(lambda t: F.avg_pool1d(t, **args), [x])


@pytest.mark.parametrize("size", [1, 3, (2, 4), (None, 2), (5, 7)])
def test_adaptive_avg_pool2d_gradcheck(size):
    x = _x((2, 2, 5, 7))
    assert gradcheck(lambda t: F.adaptive_avg_pool2d(t, size), [x])
    assert gradgradcheck(lambda t: F.adaptive_avg_pool2d(t, size) ** 2, [x])


def test_adaptive_avg_pool1d_gradcheck():
    x = _x((2, 3, 10))
    assert gradcheck(lambda t: F.adaptive_avg_pool1d(t, 4), [x])


# ---------------------------------------------------------------------------- forward by hand


def test_max_pool2d_by_hand_and_indices():
    x = mg.arange(16.0).reshape(1, 1, 4, 4)
    y, i = F.max_pool2d(x, 2, return_indices=True)
    np.testing.assert_array_equal(npy(y)[0, 0], [[5, 7], [13, 15]])
    np.testing.assert_array_equal(npy(i)[0, 0], [[5, 7], [13, 15]])
    assert i.dtype == np.int64


def test_avg_pool_ceil_mode_divisor_is_the_window_clipped_to_the_padded_input():
    """PyTorch's rule: the last, partial window divides by its part inside input + padding."""
    x = mg.ones(1, 1, 5)
    y = F.avg_pool1d(x, 2, 2, ceil_mode=True)  # windows [0, 2), [2, 4), [4, 5)
    np.testing.assert_allclose(npy(y)[0, 0], [1.0, 1.0, 1.0])
    y = F.avg_pool1d(x, 3, 2, padding=1, ceil_mode=True)  # 3 windows, last one [3, 6) -> [3, 6)
    np.testing.assert_allclose(npy(y)[0, 0], [2 / 3, 1.0, 2 / 3])


@FUSED
def test_unbatched_and_float32(fused):
    with mg.use_fused(fused):
        x = mg.randn(3, 8, 8)
        assert F.max_pool2d(x, 2).shape == (3, 4, 4)
        assert F.max_pool2d(x, 2).dtype == np.float32
        assert F.avg_pool2d(x, 2).dtype == np.float32
        assert F.adaptive_avg_pool2d(x, 1).shape == (3, 1, 1)
        assert F.max_pool1d(mg.randn(3, 8), 2).shape == (3, 4)
        assert F.avg_pool1d(mg.randn(3, 8), 2).shape == (3, 4)


@FUSED
def test_nan_propagates(fused):
    a = np.zeros((1, 1, 2, 2))
    a[0, 0, 1, 0] = np.nan
    with mg.use_fused(fused):
        y = F.max_pool2d(mg.tensor(a), 2)
    assert np.isnan(npy(y)).all()


# ---------------------------------------------------------------------------- errors


def test_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"too small"):
        F.max_pool2d(mg.zeros(1, 1, 2, 2), 3)
    with pytest.raises(ValueError, match=r"at most half"):
        F.max_pool2d(mg.zeros(1, 1, 8, 8), 2, padding=2)
    with pytest.raises(ValueError, match=r"at most half"):
        F.avg_pool2d(mg.zeros(1, 1, 8, 8), 3, padding=2)
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        F.max_pool2d(mg.zeros(2, 3), 2)
    with pytest.raises(ValueError, match=r"greater than zero"):
        F.max_pool1d(mg.zeros(1, 1, 8), 2, stride=0)
    with pytest.raises(ValueError, match=r"kernel_size"):
        F.avg_pool2d(mg.zeros(1, 1, 8, 8), (2, 2, 2))


# ---------------------------------------------------------------------------- modules


@pytest.mark.torch
def test_module_reprs_match_torch():
    torch = pytest.importorskip("torch")
    pairs = [(nn.MaxPool2d(2), torch.nn.MaxPool2d(2)),
             (nn.MaxPool2d(3, 2, 1, ceil_mode=True), torch.nn.MaxPool2d(3, 2, 1, ceil_mode=True)),
             (nn.MaxPool1d(3), torch.nn.MaxPool1d(3)),
             (nn.AvgPool2d(2), torch.nn.AvgPool2d(2)), (nn.AvgPool1d(3), torch.nn.AvgPool1d(3)),
             (nn.AdaptiveAvgPool2d((1, 1)), torch.nn.AdaptiveAvgPool2d((1, 1))),
             (nn.AdaptiveAvgPool1d(4), torch.nn.AdaptiveAvgPool1d(4))]
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)
        assert ours.state_dict() == {} and not list(theirs.state_dict())


def test_modules_run():
    x = mg.randn(2, 3, 8, 8)
    y, i = nn.MaxPool2d(2, return_indices=True)(x)
    assert y.shape == i.shape == (2, 3, 4, 4)
    assert nn.AvgPool2d(3, 1, 1, count_include_pad=False)(x).shape == (2, 3, 8, 8)
    assert nn.AdaptiveAvgPool2d(1)(x).shape == (2, 3, 1, 1)
    x1 = mg.randn(2, 3, 9)
    assert nn.MaxPool1d(3)(x1).shape == (2, 3, 3)
    assert nn.AvgPool1d(3, ceil_mode=True)(x1).shape == (2, 3, 3)
    assert nn.AdaptiveAvgPool1d(2)(x1).shape == (2, 3, 2)


# ---------------------------------------------------------------------------- PyTorch parity


@st.composite
def pool_case(draw, dims):
    k = tuple(draw(st.integers(1, 4)) for _ in range(dims))
    s = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    d = tuple(draw(st.integers(1, 2)) for _ in range(dims))
    p = tuple(draw(st.integers(0, (di * (ki - 1) + 1) // 2)) for ki, di in zip(k, d))
    size = tuple(draw(st.integers(di * (ki - 1) + 1, 9)) for ki, di in zip(k, d))
    return dict(k=k, s=s, d=d, p=p, size=size, ceil=draw(st.booleans()),
                n=draw(st.integers(1, 2)), c=draw(st.integers(1, 3)),
                seed=draw(st.integers(0, 1000)), ties=draw(st.booleans()))


def _compare(torch, ours, theirs, case, dims):
    shape = (case["n"], case["c"]) + case["size"]
    x = _x(shape, case["seed"], case["ties"])
    xt = torch.tensor(npy(x), requires_grad=True)
    ym, yt = ours(x), theirs(xt)
    if isinstance(yt, tuple):
        np.testing.assert_array_equal(npy(ym[1]), yt[1].numpy())
        ym, yt = ym[0], yt[0]
    np.testing.assert_allclose(npy(ym), yt.detach().numpy(), rtol=1e-12, atol=1e-12)
    g = np.random.default_rng(case["seed"] + 1).standard_normal(yt.shape)
    ym.backward(mg.tensor(g))
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(npy(x.grad), xt.grad.numpy(), rtol=1e-12, atol=1e-12)


def _matches_torch_or_both_refuse(torch, name, args, case):
    """``F.<name>`` agrees with PyTorch's on ``case`` (values, indices, gradients), or both
    refuse its arguments: PyTorch with a RuntimeError, minigrad with a ValueError."""
    ours, theirs = getattr(F, name), getattr(torch.nn.functional, name)
    try:
        theirs(torch.zeros((1, 1) + case["size"]), **args)
    except RuntimeError:
        with pytest.raises(ValueError):
            ours(mg.zeros((1, 1) + case["size"]), **args)
        return
    _compare(torch, lambda t: ours(t, **args), lambda t: theirs(t, **args), case,
             len(case["size"]))


@pytest.mark.torch
@FUSED
@settings(max_examples=60, deadline=None)
@given(case=pool_case(2))
def test_max_pool2d_matches_torch(fused, case):
    torch = pytest.importorskip("torch")
    args = dict(kernel_size=case["k"], stride=case["s"], padding=case["p"],
                dilation=case["d"], ceil_mode=case["ceil"], return_indices=True)
    with mg.use_fused(fused):
        _matches_torch_or_both_refuse(torch, "max_pool2d", args, case)


@pytest.mark.torch
@FUSED
@settings(max_examples=30, deadline=None)
@given(case=pool_case(1))
def test_max_pool1d_matches_torch(fused, case):
    torch = pytest.importorskip("torch")
    args = dict(kernel_size=case["k"][0], stride=case["s"][0], padding=case["p"][0],
                dilation=case["d"][0], ceil_mode=case["ceil"], return_indices=True)
    with mg.use_fused(fused):
        _matches_torch_or_both_refuse(torch, "max_pool1d", args, case)


@pytest.mark.torch
@settings(max_examples=60, deadline=None)
@given(case=pool_case(2), count_include_pad=st.booleans())
def test_avg_pool2d_matches_torch(case, count_include_pad):
    torch = pytest.importorskip("torch")
    k = case["k"]
    p = tuple(min(pi, ki // 2) for pi, ki in zip(case["p"], k))
    args = dict(kernel_size=k, stride=case["s"], padding=p, ceil_mode=case["ceil"],
                count_include_pad=count_include_pad)
    _matches_torch_or_both_refuse(torch, "avg_pool2d", args, case)


@pytest.mark.torch
@settings(max_examples=30, deadline=None)
@given(case=pool_case(1), count_include_pad=st.booleans())
def test_avg_pool1d_matches_torch(case, count_include_pad):
    torch = pytest.importorskip("torch")
    k = case["k"][0]
    args = dict(kernel_size=k, stride=case["s"][0], padding=min(case["p"][0], k // 2),
                ceil_mode=case["ceil"], count_include_pad=count_include_pad)
    _matches_torch_or_both_refuse(torch, "avg_pool1d", args, case)


@pytest.mark.torch
@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 12), w=st.integers(1, 12), oh=st.integers(1, 12), ow=st.integers(1, 12),
       seed=st.integers(0, 100))
def test_adaptive_avg_pool_matches_torch(h, w, oh, ow, seed):
    torch = pytest.importorskip("torch")
    case = dict(n=2, c=2, size=(h, w), seed=seed, ties=False)
    _compare(torch, lambda t: F.adaptive_avg_pool2d(t, (oh, ow)),
             lambda t: torch.nn.functional.adaptive_avg_pool2d(t, (oh, ow)), case, 2)
    case = dict(n=2, c=2, size=(w,), seed=seed, ties=False)
    _compare(torch, lambda t: F.adaptive_avg_pool1d(t, ow),
             lambda t: torch.nn.functional.adaptive_avg_pool1d(t, ow), case, 1)


# ---------------------------------------------------------------------------- devices


@FUSED
def test_every_pooling_on_the_device_matches_the_cpu(device, fused):
    """The same values and gradients on ``cuda`` (a GPU, or the CuPy stand-in) as on the CPU."""
    a = np.random.default_rng(5).standard_normal((2, 3, 7, 6))
    fns = [lambda t: F.max_pool2d(t, 3, 2, 1, ceil_mode=True),
           lambda t: F.max_pool1d(t.flatten(2), 4, 3, 2, dilation=2),
           lambda t: F.avg_pool2d(t, 3, 2, 1, ceil_mode=True, count_include_pad=False),
           lambda t: F.avg_pool1d(t.flatten(2), 3, 2, 1),
           lambda t: F.adaptive_avg_pool2d(t, (3, 4)),
           lambda t: F.adaptive_avg_pool1d(t.flatten(2), 5)]
    with mg.use_fused(fused):
        for fn in fns:
            results = []
            for dev in ("cpu", device):
                x = mg.tensor(a, device=dev, requires_grad=True)
                y = fn(x)
                y.backward(mg.ones(*y.shape, dtype=y.dtype, device=dev))
                results.append((npy(y), npy(x.grad)))
            for got, want in zip(results[1], results[0]):
                np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_composite_tiling_windows_match_the_kernel_with_ties_and_infinities():
    """Windows that tile the input take the reshape path of the composite reference: values,
    indices and the gradient (to the first maximum of a tied window) equal the kernel's, with
    all-zero windows (ReLU outputs) and infinities."""
    import minigrad.nn.functional as F

    rng = np.random.default_rng(0)
    x_np = np.maximum(rng.standard_normal((2, 3, 6, 7)), 0).astype(np.float32)
    x_np[0, 0, 0, 0], x_np[0, 1, 2, 3], x_np[1, 2, 4, 4] = np.inf, -np.inf, np.inf
    gy = mg.tensor(rng.standard_normal((2, 3, 3, 3)).astype(np.float32))
    out = {}
    for fused in (True, False):
        x = mg.tensor(x_np, requires_grad=True)
        with mg.use_fused(fused):
            y, idx = F.max_pool2d(x, 2, return_indices=True)
            (y * gy).sum().backward()
        out[fused] = (y.detach().numpy(), idx.numpy(), x.grad.numpy())
    for a, b in zip(out[True], out[False]):
        np.testing.assert_array_equal(a, b)
