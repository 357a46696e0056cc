"""F.interpolate, nn.Upsample, nn.Flatten/Unflatten and F.one_hot (nn/upsampling.py,
nn/layers.py): gradcheck, PyTorch parity over a hypothesis grid, reprs, errors."""

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


CASES = [((2, 2, 4, 5), dict(scale_factor=2)), ((2, 2, 4, 5), dict(scale_factor=1.5)),
         ((1, 2, 5, 4), dict(size=(3, 7))), ((1, 2, 4, 5), dict(size=(7, 3), mode="bilinear")),
         ((1, 2, 4, 5), dict(scale_factor=1.7, mode="bilinear", align_corners=True)),
         ((2, 3, 6), dict(size=9, mode="linear")), ((2, 3, 6), dict(scale_factor=0.5))]


@pytest.mark.parametrize("shape, kw", CASES, ids=str)
def test_interpolate_gradcheck(shape, kw):
    x = mg.tensor(np.random.default_rng(0).standard_normal(shape), requires_grad=True)
    assert gradcheck(lambda t: F.interpolate(t, **kw), [x])
    assert gradgradcheck(lambda t: F.interpolate(t, **kw) ** 2, [x])


def test_nearest_fractional_scale_maps_pixels_by_one_over_scale():
    x = mg.arange(5.0).reshape(1, 1, 5)
    np.testing.assert_array_equal(npy(F.interpolate(x, scale_factor=1.5))[0, 0],
                                  [0, 0, 1, 2, 2, 3, 4])
    np.testing.assert_array_equal(npy(F.interpolate(x, size=7))[0, 0], [0, 0, 1, 2, 2, 3, 4])
    assert F.interpolate(mg.ones(1, 1, 4, 4, dtype=mg.float32), scale_factor=2).dtype == \
        np.float32


def test_errors():
    x = mg.zeros(1, 1, 4, 4)
    with pytest.raises(ValueError, match="only one of size or scale_factor"):
        F.interpolate(x, size=2, scale_factor=2)
    with pytest.raises(ValueError, match="either size or scale_factor"):
        F.interpolate(x)
    with pytest.raises(ValueError, match="align_corners"):
        F.interpolate(x, scale_factor=2, align_corners=True)
    with pytest.raises(ValueError, match=r"bilinear mode needs 4D input"):
        F.interpolate(mg.zeros(1, 1, 4), scale_factor=2, mode="bilinear")
    with pytest.raises(NotImplementedError, match="bicubic"):
        F.interpolate(x, scale_factor=2, mode="bicubic")
    with pytest.raises(RuntimeError, match=r"don't multiply up.*\(2, 5\)"):
        nn.Unflatten(1, (2, 3))(mg.zeros(2, 5))


def test_flatten_unflatten_round_trip():
    x = mg.randn(2, 3, 4, 5)
    flat = nn.Flatten()(x)
    assert flat.shape == (2, 60)
    assert nn.Unflatten(1, (3, 4, 5))(flat).shape == (2, 3, 4, 5)
    assert nn.Flatten(0, 2)(x).shape == (24, 5)
    assert nn.Unflatten(-1, (5, 1))(x).shape == (2, 3, 4, 5, 1)


def test_one_hot():
    y = F.one_hot(mg.tensor([0, 2, 1]), 4)
    np.testing.assert_array_equal(npy(y), np.eye(4, dtype=np.int64)[[0, 2, 1]])
    assert y.dtype == np.int64


@pytest.mark.torch
def test_reprs_match_torch():
    torch = pytest.importorskip("torch")
    pairs = [(nn.Upsample(scale_factor=2), torch.nn.Upsample(scale_factor=2)),
             (nn.Upsample(size=(3, 4), mode="bilinear", align_corners=True),
              torch.nn.Upsample(size=(3, 4), mode="bilinear", align_corners=True)),
             (nn.Unflatten(1, (2, 3)), torch.nn.Unflatten(1, (2, 3))),
             (nn.Flatten(), torch.nn.Flatten())]
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)


@pytest.mark.torch
@settings(max_examples=80, deadline=None)
@given(mode=st.sampled_from(["nearest", "linear", "bilinear"]), align=st.booleans(),
       by_size=st.booleans(), h=st.integers(1, 7), w=st.integers(1, 7),
       oh=st.integers(1, 12), ow=st.integers(1, 12),
       fh=st.sampled_from([0.5, 0.7, 1.0, 1.5, 2.0, 2.5, 3.0]),
       fw=st.sampled_from([0.6, 1.0, 1.3, 2.0, 4.0]), recompute=st.booleans(),
       seed=st.integers(0, 100))
def test_interpolate_matches_torch(mode, align, by_size, h, w, oh, ow, fh, fw, recompute, seed):
    torch = pytest.importorskip("torch")
    if mode == "linear":
        shape, size, factor = (2, 2, w), ow, fw
    else:
        shape, size, factor = (2, 2, h, w), (oh, ow), (fh, fw)
    kw = dict(mode=mode)
    if mode != "nearest":
        kw["align_corners"] = align
    if by_size:
        kw["size"] = size
    else:
        kw["scale_factor"] = factor
        kw["recompute_scale_factor"] = recompute
        if min(int(s * f) for s, f in zip(shape[2:], np.atleast_1d(factor))) < 1:
            return  # an empty output: PyTorch raises too
    a = np.random.default_rng(seed).standard_normal(shape)
    x, xt = mg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    y, yt = F.interpolate(x, **kw), torch.nn.functional.interpolate(xt, **kw)
    assert y.shape == tuple(yt.shape)
    np.testing.assert_allclose(npy(y), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = np.random.default_rng(seed + 1).standard_normal(y.shape)
    y.backward(mg.tensor(g))
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(npy(x.grad), xt.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_interpolate_on_the_device_matches_the_cpu(device):
    a = np.random.default_rng(7).standard_normal((2, 3, 4, 5))
    for kw in (dict(scale_factor=1.5), dict(size=(7, 3), mode="bilinear"),
               dict(size=(6, 6), mode="bilinear", align_corners=True)):
        results = []
        for dev in ("cpu", device):
            x = mg.tensor(a, device=dev, requires_grad=True)
            y = F.interpolate(x, **kw)
            y.backward(mg.ones(*y.shape, dtype=y.dtype, device=dev))
            results.append((npy(y), npy(x.grad)))
        for got, want in zip(results[1], results[0]):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_a_dimension_of_unchanged_size_is_copied_as_pytorch():
    """Values printed by PyTorch 2.13: with scale_factor 1.3 a width of 2 stays 2 and is
    copied, not resampled at 1/1.3; other dimensions follow the scale factor."""
    x = mg.tensor([[[[0.0, 10.0], [20.0, 30.0]]]])
    y = F.interpolate(x, scale_factor=(0.5, 1.3), mode="bilinear", align_corners=False)
    np.testing.assert_array_equal(y.numpy(), [[[[10.0, 20.0]]]])
    y = F.interpolate(x, scale_factor=(1.5, 1.3), mode="nearest")
    np.testing.assert_array_equal(y.numpy(), [[[[0.0, 10.0], [0.0, 10.0], [20.0, 30.0]]]])
    y = F.interpolate(mg.tensor([[[0.0, 10.0, 20.0]]]), scale_factor=2.1, mode="nearest")
    np.testing.assert_array_equal(y.numpy(), [[[0.0, 0.0, 0.0, 10.0, 10.0, 20.0]]])
