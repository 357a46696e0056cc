"""Batch and group normalisation (minigrad/nn/normalization.py): gradcheck, PyTorch parity in
training and evaluation (outputs, gradients, running statistics), state dicts both ways, errors.
"""

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


def _t(shape, seed=0, scale=1.0, shift=0.0, requires_grad=True):
    a = np.random.default_rng(seed).standard_normal(shape) * scale + shift
    return mg.tensor(a, requires_grad=requires_grad)


FUSED = pytest.mark.parametrize("fused", [True, False], ids=["fused", "composite"])


# ---------------------------------------------------------------------------- gradcheck


@FUSED
@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 6), (2, 3, 4, 5)])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_training_gradcheck(fused, shape, affine):
    x = _t(shape, 0, 2.0, 1.0)
    w = _t(3, 1) if affine else None
    b = _t(3, 2) if affine else None
    inputs = [t for t in (x, w, b) if t is not None]

    def fn(x, *wb):
        return F.batch_norm(x, None, None, *wb, training=True)

    with mg.use_fused(fused):
        assert gradcheck(fn, inputs)
        assert gradgradcheck(fn, inputs)


@FUSED
def test_batch_norm_statistics_outputs_are_differentiable(fused):
    """The fused node's mean/var outputs carry their exact gradients (as the reference's)."""
    from minigrad import kernels, references
    x = _t((4, 3, 5))

    def fn(x):
        if fused:
            y, mean, var = kernels.batch_norm.apply(x, None, None, 1e-5)
        else:
            y, mean, var = references.batch_norm(x, None, None, 1e-5)
        return y, mean, var

    assert gradcheck(fn, [x])


def test_batch_norm_eval_gradcheck():
    x = _t((4, 3, 5))
    rm, rv = mg.tensor([0.1, -0.2, 0.3]), mg.tensor([1.5, 0.5, 2.0])
    w, b = _t(3, 1), _t(3, 2)
    assert gradcheck(lambda x, w, b: F.batch_norm(x, rm, rv, w, b, training=False),
                     [x, w, b])


@FUSED
@pytest.mark.parametrize("groups", [1, 2, 6])
def test_group_norm_gradcheck(fused, groups):
    x, w, b = _t((2, 6, 3, 2)), _t(6, 1), _t(6, 2)
    with mg.use_fused(fused):
        assert gradcheck(lambda x, w, b: F.group_norm(x, groups, w, b), [x, w, b])


# ---------------------------------------------------------------------------- behaviour


def test_state_dict_names_and_dtypes():
    bn = nn.BatchNorm2d(4)
    sd = bn.state_dict()
    assert list(sd) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert sd["num_batches_tracked"].dtype == np.int64
    assert sd["num_batches_tracked"].shape == ()
    assert list(nn.BatchNorm1d(4, track_running_stats=False).state_dict()) == ["weight", "bias"]
    assert list(nn.BatchNorm1d(4, affine=False).state_dict()) == [
        "running_mean", "running_var", "num_batches_tracked"]


def test_running_statistics_by_hand():
    bn = nn.BatchNorm1d(1, momentum=0.5)
    bn(mg.tensor([[1.0], [3.0]]))  # mean 2, unbiased var 2
    np.testing.assert_allclose(npy(bn.running_mean), [1.0])
    np.testing.assert_allclose(npy(bn.running_var), [0.5 * 1 + 0.5 * 2.0])
    assert int(bn.num_batches_tracked.item()) == 1


def test_momentum_none_is_a_cumulative_average():
    bn = nn.BatchNorm1d(1, momentum=None)
    for batch in ([[1.0], [3.0]], [[5.0], [7.0]], [[0.0], [0.0]]):
        bn(mg.tensor(batch))
    np.testing.assert_allclose(npy(bn.running_mean), [(2.0 + 6.0 + 0.0) / 3])
    np.testing.assert_allclose(npy(bn.running_var), [(2.0 + 2.0 + 0.0) / 3])


def test_eval_mode_uses_running_statistics_and_does_not_update():
    bn = nn.BatchNorm1d(2)
    bn.running_mean.data[:] = [1.0, -1.0]
    bn.running_var.data[:] = [4.0, 0.25]
    bn.eval()
    y = bn(mg.tensor([[3.0, 0.0]]))  # one sample is fine in eval
    np.testing.assert_allclose(npy(y), [[2 / np.sqrt(4 + 1e-5), 1 / np.sqrt(0.25 + 1e-5)]],
                               rtol=1e-6)
    assert int(bn.num_batches_tracked.item()) == 0


def test_without_running_stats_batch_statistics_in_both_modes():
    bn = nn.BatchNorm1d(2, track_running_stats=False).eval()
    y = bn(mg.tensor([[1.0, 2.0], [3.0, 6.0]]))
    np.testing.assert_allclose(npy(y), [[-1, -1], [1, 1]], atol=1e-4)


def test_errors():
    with pytest.raises(ValueError, match=r"more than 1 value per channel.*\(1, 3\)"):
        nn.BatchNorm1d(3)(mg.randn(1, 3))
    with pytest.raises(ValueError, match=r"more than 1 value per channel"):
        F.batch_norm(mg.randn(1, 3, 1, 1), None, None, training=True)
    with pytest.raises(ValueError, match=r"expected 4D input"):
        nn.BatchNorm2d(3)(mg.randn(2, 3, 4))
    with pytest.raises(ValueError, match=r"expected 2D or 3D input"):
        nn.BatchNorm1d(3)(mg.randn(2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"3 channels.*\(2, 4, 5, 5\)"):
        nn.BatchNorm2d(3)(mg.randn(2, 4, 5, 5))
    with pytest.raises(RuntimeError, match=r"running_mean"):
        F.batch_norm(mg.randn(2, 3), None, None, training=False)
    with pytest.raises(ValueError, match=r"divisible by num_groups \(4\).*\(2, 6, 3\)"):
        F.group_norm(mg.randn(2, 6, 3), 4)
    with pytest.raises(ValueError, match="divisible"):
        nn.GroupNorm(4, 6)


@FUSED
def test_float32_stays_float32(fused):
    with mg.use_fused(fused):
        bn = nn.BatchNorm2d(3)
        x = mg.randn(2, 3, 4, 4, requires_grad=True)
        y = bn(x)
        y.sum().backward()
        assert y.dtype == x.grad.dtype == bn.running_var.dtype == np.float32
        assert nn.GroupNorm(3, 3)(x).dtype == np.float32


# ---------------------------------------------------------------------------- PyTorch parity


def _copy_params_to_torch(torch, ours, theirs):
    theirs.load_state_dict({k: torch.tensor(npy(v)) for k, v in ours.state_dict().items()})


@pytest.mark.torch
@FUSED
@settings(max_examples=30, deadline=None)
@given(kind=st.sampled_from(["1d2", "1d3", "2d"]), momentum=st.sampled_from([0.1, 0.5, None]),
       affine=st.booleans(), track=st.booleans(), bias=st.booleans(),
       n=st.integers(2, 4), c=st.integers(1, 4), seed=st.integers(0, 1000))
def test_batch_norm_matches_torch(fused, kind, momentum, affine, track, bias, n, c, seed):
    torch = pytest.importorskip("torch")
    shape = {"1d2": (n, c), "1d3": (n, c, 3), "2d": (n, c, 3, 2)}[kind]
    ours_cls = nn.BatchNorm2d if kind == "2d" else nn.BatchNorm1d
    theirs_cls = torch.nn.BatchNorm2d if kind == "2d" else torch.nn.BatchNorm1d
    kw = dict(momentum=momentum, affine=affine, track_running_stats=track, bias=bias)
    ours, theirs = ours_cls(c, **kw).double(), theirs_cls(c, **kw).double()
    rng = np.random.default_rng(seed)
    with mg.no_grad():
        for p in ours.parameters():
            p.data[...] = rng.standard_normal(p.shape)
    _copy_params_to_torch(torch, ours, theirs)
    with mg.use_fused(fused):
        for step in range(4):
            if step == 3:
                ours.eval()
                theirs.eval()
            a = rng.standard_normal(shape) * 3 + 2
            x = mg.tensor(a, requires_grad=True)
            xt = torch.tensor(a, requires_grad=True)
            y, yt = ours(x), theirs(xt)
            g = rng.standard_normal(shape)
            y.backward(mg.tensor(g))
            yt.backward(torch.tensor(g))
            np.testing.assert_allclose(npy(y), yt.detach().numpy(), rtol=1e-10, atol=1e-10)
            np.testing.assert_allclose(npy(x.grad), xt.grad.numpy(), rtol=1e-9, atol=1e-10)
            for name, p in theirs.named_parameters():
                np.testing.assert_allclose(npy(getattr(ours, name).grad), p.grad.numpy(),
                                           rtol=1e-9, atol=1e-10)
                p.grad = None
            for p in ours.parameters():
                p.grad = None
            ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
            assert list(ours_sd) == list(theirs_sd)
            for k in ours_sd:
                np.testing.assert_allclose(npy(ours_sd[k]), theirs_sd[k].numpy(), rtol=1e-12)
    assert repr(ours) == repr(theirs)


@pytest.mark.torch
def test_state_dicts_load_both_ways():
    torch = pytest.importorskip("torch")
    theirs = torch.nn.BatchNorm2d(3)
    theirs(torch.randn(4, 3, 2, 2) * 2 + 1)  # running statistics that are not the defaults
    ours = nn.BatchNorm2d(3)
    result = ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    assert not result.missing_keys and not result.unexpected_keys
    assert ours.num_batches_tracked.dtype == np.int64 and ours.num_batches_tracked.item() == 1
    np.testing.assert_allclose(npy(ours.running_var), theirs.running_var.numpy(), rtol=1e-6)
    ours(mg.randn(4, 3, 2, 2))
    back = torch.nn.BatchNorm2d(3)
    back.load_state_dict({k: torch.tensor(npy(v)) for k, v in ours.state_dict().items()})
    assert back.num_batches_tracked.item() == 2
    np.testing.assert_allclose(back.running_mean.numpy(), npy(ours.running_mean))


@pytest.mark.torch
@FUSED
@settings(max_examples=25, deadline=None)
@given(groups=st.sampled_from([1, 2, 3, 6]), affine=st.booleans(), rank=st.integers(2, 4),
       seed=st.integers(0, 1000))
def test_group_norm_matches_torch(fused, groups, affine, rank, seed):
    torch = pytest.importorskip("torch")
    shape = (2, 6, 3, 4)[:rank]
    ours, theirs = nn.GroupNorm(groups, 6, affine=affine).double(), torch.nn.GroupNorm(
        groups, 6, affine=affine).double()
    rng = np.random.default_rng(seed)
    with mg.no_grad():
        for p in ours.parameters():
            p.data[...] = rng.standard_normal(p.shape)
    _copy_params_to_torch(torch, ours, theirs)
    a = rng.standard_normal(shape) * 2 + 5
    x, xt = mg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    with mg.use_fused(fused):
        y = ours(x)
    yt = theirs(xt)
    g = rng.standard_normal(shape)
    y.backward(mg.tensor(g))
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(npy(y), yt.detach().numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(npy(x.grad), xt.grad.numpy(), rtol=1e-9, atol=1e-10)
    assert repr(ours) == repr(theirs)


# ---------------------------------------------------------------------------- devices


@FUSED
def test_batch_and_group_norm_on_the_device_match_the_cpu(device, fused):
    """Training and evaluation batch norm (running statistics too) and group norm give the same
    values and gradients on ``cuda`` (a GPU, or the CuPy stand-in) as on the CPU."""
    rng = np.random.default_rng(6)
    a = rng.standard_normal((4, 3, 5, 2)) * 2 + 1
    results = []
    with mg.use_fused(fused):
        for dev in ("cpu", device):
            bn = nn.BatchNorm2d(3).double().to(dev)
            gn = nn.GroupNorm(3, 3).double().to(dev)
            x = mg.tensor(a, device=dev, requires_grad=True)
            y = bn(x) + gn(x)
            bn.eval()
            y = y + bn(x)
            y.backward(mg.ones(*y.shape, dtype=y.dtype, device=dev) * 0.5)
            results.append([npy(y), npy(x.grad), npy(bn.running_mean), npy(bn.running_var)])
    for got, want in zip(results[1], results[0]):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
