"""nn.init: PyTorch's formulas, dtypes kept, no graph, reproducible from mg.manual_seed."""

import math

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad.nn import init


def npy(t):
    return mg.backend.to_device(t.detach().data, mg.backend.CPU)


@pytest.mark.parametrize("dtype", [mg.float32, mg.float64, mg.float16])
def test_uniform_and_normal_keep_dtype_and_device(device, dtype):
    t = mg.empty(300, 200, dtype=dtype, device=device)
    assert init.uniform_(t, -2.0, 3.0) is t
    a = npy(t).astype(np.float64)
    assert t.dtype == dtype and t.device == device
    assert a.min() >= -2 and a.max() <= 3
    assert abs(a.mean() - 0.5) < 0.05 and abs(a.var() - 25 / 12) < 0.1
    init.normal_(t, mean=1.0, std=0.5)
    a = npy(t).astype(np.float64)
    assert t.dtype == dtype
    assert abs(a.mean() - 1.0) < 0.01 and abs(a.std() - 0.5) < 0.01


def test_constant_zeros_ones(device):
    t = mg.empty(2, 3, device=device)
    np.testing.assert_array_equal(npy(init.constant_(t, 0.25)), 0.25)
    np.testing.assert_array_equal(npy(init.zeros_(t)), 0)
    np.testing.assert_array_equal(npy(init.ones_(t)), 1)


def test_runs_under_no_grad_on_parameters():
    p = nn.Parameter(mg.empty(4, 5))
    for fn in (init.uniform_, init.normal_, init.xavier_uniform_, init.xavier_normal_,
               init.kaiming_uniform_, init.kaiming_normal_, init.trunc_normal_, init.zeros_,
               init.ones_, lambda t: init.constant_(t, 3.0)):
        out = fn(p)
        assert out is p and p.is_leaf and p.grad_fn is None and p.requires_grad
    assert mg.is_grad_enabled()


def test_reproducible_from_manual_seed(device):
    mg.manual_seed(42)
    a = npy(init.normal_(mg.empty(10, device=device)))
    b = npy(init.kaiming_uniform_(mg.empty(3, 4, device=device)))
    mg.manual_seed(42)
    np.testing.assert_array_equal(a, npy(init.normal_(mg.empty(10, device=device))))
    np.testing.assert_array_equal(b, npy(init.kaiming_uniform_(mg.empty(3, 4, device=device))))


def test_calculate_gain():
    assert init.calculate_gain("linear") == 1
    assert init.calculate_gain("conv2d") == 1
    assert init.calculate_gain("sigmoid") == 1
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01**2)))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    assert init.calculate_gain("leaky_relu", math.sqrt(5)) == pytest.approx(math.sqrt(1 / 3))
    assert init.calculate_gain("selu") == 0.75
    with pytest.raises(ValueError, match="Unsupported"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError):
        init.calculate_gain("leaky_relu", "a")


def test_fans():
    assert init._calculate_fan_in_and_fan_out(mg.empty(3, 5)) == (5, 3)
    assert init._calculate_fan_in_and_fan_out(mg.empty(8, 4, 3, 3)) == (36, 72)
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init._calculate_fan_in_and_fan_out(mg.empty(3))
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(mg.empty(3))
    with pytest.raises(ValueError, match="Mode"):
        init.kaiming_uniform_(mg.empty(3, 3), mode="fan_avg")


def _check_uniform(a, bound):
    assert np.abs(a).max() <= bound * (1 + 1e-6)
    assert np.abs(a).max() > 0.95 * bound
    assert abs(a.var() - bound**2 / 3) < 0.05 * bound**2 / 3


def _check_normal(a, std):
    assert abs(a.mean()) < 0.05 * std + 1e-3 and abs(a.std() - std) < 0.03 * std


def test_xavier(device):
    t = mg.empty(300, 200, device=device)
    _check_uniform(npy(init.xavier_uniform_(t)), math.sqrt(6 / 500))
    _check_uniform(npy(init.xavier_uniform_(t, gain=2.0)), 2 * math.sqrt(6 / 500))
    _check_normal(npy(init.xavier_normal_(t)), math.sqrt(2 / 500))
    _check_normal(npy(init.xavier_normal_(t, gain=0.5)), 0.5 * math.sqrt(2 / 500))


def test_kaiming(device):
    t = mg.empty(300, 200, device=device)
    _check_uniform(npy(init.kaiming_uniform_(t)), math.sqrt(6 / 200))  # a=0: gain sqrt(2)
    _check_uniform(npy(init.kaiming_uniform_(t, a=math.sqrt(5))), 1 / math.sqrt(200))
    _check_uniform(npy(init.kaiming_uniform_(t, mode="fan_out", nonlinearity="relu")),
                   math.sqrt(6 / 300))
    _check_normal(npy(init.kaiming_normal_(t, nonlinearity="relu")), math.sqrt(2 / 200))
    _check_normal(npy(init.kaiming_normal_(t, mode="fan_out", nonlinearity="tanh")),
                  5 / 3 / math.sqrt(300))
    assert init.kaiming_uniform_(mg.empty(0, 3)).shape == (0, 3)  # zero-size: no error


def test_trunc_normal(device):
    t = mg.empty(200, 200, device=device)
    a = npy(init.trunc_normal_(t))
    assert a.min() >= -2 and a.max() <= 2
    # N(0, 1) truncated to [-2, 2] has std 0.8796
    assert abs(a.mean()) < 0.01 and abs(a.std() - 0.8796) < 0.01
    a = npy(init.trunc_normal_(t, mean=1.0, std=0.02, a=0.97, b=1.03))
    assert a.min() >= 0.97 and a.max() <= 1.03 and abs(a.mean() - 1.0) < 1e-3
    a = npy(init.trunc_normal_(t, std=1.0, a=3.0, b=3.5))  # far tail: still inside
    assert a.min() >= 3.0 and a.max() <= 3.5
    assert t.dtype == mg.float32
    with pytest.raises(ValueError):
        init.trunc_normal_(t, a=1.0, b=0.0)


def test_integer_tensor_rejected():
    with pytest.raises(TypeError, match="floating"):
        init.uniform_(mg.zeros(3, dtype=mg.int64))


@pytest.mark.torch
def test_default_inits_match_torch_distribution():
    """Same bounds as PyTorch's own defaults for Linear and Embedding."""
    torch = pytest.importorskip("torch")
    ours, theirs = nn.Linear(50, 400), torch.nn.Linear(50, 400)
    for name in ("weight", "bias"):
        a, b = npy(getattr(ours, name)), getattr(theirs, name).detach().numpy()
        assert abs(np.abs(a).max() - np.abs(b).max()) < 0.01
        assert abs(a.std() - b.std()) < 0.1 * b.std()
    for fn in ("xavier_uniform_", "xavier_normal_", "kaiming_normal_", "kaiming_uniform_"):
        a = npy(getattr(init, fn)(mg.empty(300, 200)))
        b = getattr(torch.nn.init, fn)(torch.empty(300, 200)).numpy()
        assert abs(a.std() - b.std()) < 0.03 * b.std(), fn
    assert init.calculate_gain("leaky_relu", 0.3) == torch.nn.init.calculate_gain("leaky_relu",
                                                                                  0.3)
