"""clip_grad_norm_, clip_grad_value_, parameters_to_vector and vector_to_parameters."""

import math

import numpy as np
import pytest

import minigrad as mg
from minigrad import backend
from minigrad.nn import Parameter
from minigrad.nn.utils import (
    clip_grad_norm_,
    clip_grad_value_,
    get_total_norm,
    parameters_to_vector,
    vector_to_parameters,
)

SHAPES = [(4, 3), (3,), (2, 2, 2)]


def cpu(t):
    data = t.data if isinstance(t, mg.Tensor) else t
    return backend.to_device(data, backend.CPU)


def params_with_grads(device, dtype=np.float32, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    ps = []
    for s in SHAPES:
        p = Parameter(mg.tensor(rng.standard_normal(s).astype(dtype), device=device))
        p.grad = mg.tensor((scale * rng.standard_normal(s)).astype(dtype), device=device)
        ps.append(p)
    return ps


def test_clip_to_unit_norm(device):
    w = Parameter(mg.zeros(2, device=device))
    w.grad = mg.tensor([3.0, 4.0], device=device)
    total = clip_grad_norm_([w], max_norm=1.0)
    assert isinstance(total, mg.Tensor) and total.shape == () and total.dtype == np.float32
    assert total.device == w.device and total.item() == 5.0
    np.testing.assert_allclose(cpu(w.grad), [0.6, 0.8], rtol=1e-6)


def test_small_gradients_are_left_alone(device):
    ps = params_with_grads(device)
    before = [cpu(p.grad).copy() for p in ps]
    total = clip_grad_norm_(ps, max_norm=1e6)
    for p, b in zip(ps, before):
        np.testing.assert_array_equal(cpu(p.grad), b)  # clip_coef clamps to exactly 1
    expected = math.sqrt(sum(float((b.astype(np.float64) ** 2).sum()) for b in before))
    assert total.item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf, "inf", 3.0])
def test_norms_by_hand(norm_type, device):
    ps = params_with_grads(device, np.float64, scale=3.0)
    flat = np.concatenate([cpu(p.grad).ravel() for p in ps])
    p = float(norm_type)
    expected = np.abs(flat).max() if p == math.inf else (np.abs(flat) ** p).sum() ** (1 / p)
    total = clip_grad_norm_(ps, max_norm=0.5, norm_type=norm_type)
    assert total.item() == pytest.approx(expected, rel=1e-12)
    clipped = np.concatenate([cpu(p.grad).ravel() for p in ps])
    np.testing.assert_allclose(clipped, flat * 0.5 / (expected + 1e-6), rtol=1e-12)
    after = np.abs(clipped).max() if p == math.inf else (np.abs(clipped) ** p).sum() ** (1 / p)
    assert after <= 0.5


def test_params_without_grad_are_ignored(device):
    ps = params_with_grads(device)
    ps[1].grad = None
    expected = get_total_norm([ps[0].grad, ps[2].grad]).item()
    total = clip_grad_norm_(ps, max_norm=0.1)
    assert ps[1].grad is None and total.item() == expected
    assert get_total_norm([ps[0].grad, ps[2].grad]).item() == pytest.approx(0.1, rel=1e-5)


def test_single_tensor_and_empty(device):
    w = Parameter(mg.zeros(2, device=device))
    w.grad = mg.tensor([0.0, 2.0], device=device)
    assert clip_grad_norm_(w, 1.0).item() == 2.0  # a single tensor, not a list
    assert clip_grad_norm_([], 1.0).item() == 0.0
    assert clip_grad_norm_([Parameter(mg.zeros(2))], 1.0).item() == 0.0  # no gradients


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_nonfinite(device):
    ps = params_with_grads(device)
    ps[0].grad.data[0, 0] = np.inf
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_(ps, 1.0, error_if_nonfinite=True)
    total = clip_grad_norm_(ps, 1.0)  # allowed: the gradients become nan (PyTorch does the same)
    assert math.isinf(total.item())
    ps = params_with_grads(device)
    ps[2].grad.data[0, 0, 0] = np.nan
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_(ps, 1.0, error_if_nonfinite=True)


def test_float16_norm_does_not_overflow_in_the_sum():
    p = Parameter(mg.zeros(100, dtype=mg.float16))
    p.grad = mg.full((100,), 300.0, dtype=mg.float16)  # each square (9e4) overflows float16
    total = clip_grad_norm_([p], max_norm=1e9)
    assert total.dtype == np.float16 and total.item() == pytest.approx(3000.0, rel=1e-3)


def test_clip_grad_value(device):
    w = Parameter(mg.zeros(4, device=device))
    w.grad = mg.tensor([-3.0, -0.5, 0.5, 3.0], device=device)
    assert clip_grad_value_([w], 1.0) is None
    np.testing.assert_array_equal(cpu(w.grad), [-1.0, -0.5, 0.5, 1.0])


def test_parameters_to_vector_and_back(device):
    ps = params_with_grads(device, np.float64)
    vec = parameters_to_vector(ps)
    assert vec.shape == (sum(p.numel() for p in ps),)
    np.testing.assert_array_equal(cpu(vec), np.concatenate([cpu(p).ravel() for p in ps]))
    # differentiable: the gradient flows back to every parameter
    for p in ps:
        p.grad = None
    (vec * 2.0).sum().backward()
    for p in ps:
        np.testing.assert_array_equal(cpu(p.grad), np.full(p.shape, 2.0))
    new = mg.arange(vec.shape[0], dtype=mg.float64, device=device)
    with mg.no_grad():
        vector_to_parameters(new, ps)
    np.testing.assert_array_equal(cpu(parameters_to_vector(ps).detach()), cpu(new))
    with pytest.raises(ValueError, match="entries"):
        vector_to_parameters(new[:-1], ps)
    with pytest.raises(TypeError):
        vector_to_parameters(cpu(new), ps)


# ---------------------------------------------------------------------------- PyTorch parity


@pytest.mark.torch
@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf, 3.0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_pytorch(norm_type, dtype, max_norm, device):
    torch = pytest.importorskip("torch")
    ps = params_with_grads(device, dtype, scale=2.0)
    ts = []
    for p in ps:
        t = torch.nn.Parameter(torch.from_numpy(cpu(p).copy()))
        t.grad = torch.from_numpy(cpu(p.grad).copy())
        ts.append(t)
    total = clip_grad_norm_(ps, max_norm, norm_type=norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(ts, max_norm, norm_type=norm_type)
    rtol = 1e-6 if dtype == np.float32 else 1e-12
    assert total.dtype == dtype
    np.testing.assert_allclose(cpu(total), ttotal.numpy(), rtol=rtol)
    for p, t in zip(ps, ts):
        np.testing.assert_allclose(cpu(p.grad), t.grad.numpy(), rtol=rtol, atol=rtol * 1e-2)


@pytest.mark.torch
def test_clip_grad_value_matches_pytorch(device):
    torch = pytest.importorskip("torch")
    ps = params_with_grads(device, scale=2.0)
    ts = []
    for p in ps:
        t = torch.nn.Parameter(torch.from_numpy(cpu(p).copy()))
        t.grad = torch.from_numpy(cpu(p.grad).copy())
        ts.append(t)
    clip_grad_value_(ps, 0.7)
    torch.nn.utils.clip_grad_value_(ts, 0.7)
    for p, t in zip(ps, ts):
        np.testing.assert_array_equal(cpu(p.grad), t.grad.numpy())
