"""mg.amp.GradScaler: the scale sequence and skipped steps of torch.amp.GradScaler over a
scripted schedule with injected infs and NaNs; errors, state_dict, the disabled scaler."""

import math

import numpy as np
import pytest

import minigrad as mg


def _schedule(n, seed):
    """Per step: the gradient values (some inf or NaN) for two parameters."""
    rng = np.random.default_rng(seed)
    grads = rng.standard_normal((n, 2, 3)).astype(np.float32)
    bad = rng.random(n) < 0.02
    for step in np.flatnonzero(bad):
        grads[step, rng.integers(2), rng.integers(3)] = rng.choice([np.inf, -np.inf, np.nan])
    # a burst of bad steps in a row: the scale backs off several times
    grads[n // 2:n // 2 + 5, 0, 0] = np.inf
    return grads


def _run_minigrad(grads, kwargs, unscale_first):
    params = [mg.nn.Parameter(mg.zeros(3)), mg.nn.Parameter(mg.zeros(3))]
    opt = mg.optim.SGD(params, lr=0.01)
    scaler = mg.amp.GradScaler("cpu", **kwargs)
    scales, skipped = [], []
    for g in grads:
        opt.zero_grad()
        loss = scaler.scale(sum((p * mg.tensor(gi)).sum() for p, gi in zip(params, g)))
        loss.backward()
        if unscale_first:
            scaler.unscale_(opt)
        scaler.step(opt)
        skipped.append(scaler.last_step_skipped)
        scaler.update()
        scales.append(scaler.get_scale())
    return scales, skipped, [p.detach().numpy() for p in params], scaler.state_dict()


def _run_torch(torch, grads, kwargs, unscale_first):
    params = [torch.zeros(3, requires_grad=True), torch.zeros(3, requires_grad=True)]
    opt = torch.optim.SGD(params, lr=0.01)
    scaler = torch.amp.GradScaler("cpu", **kwargs)
    scales, skipped = [], []
    for g in grads:
        opt.zero_grad()
        loss = scaler.scale(sum((p * torch.tensor(gi)).sum() for p, gi in zip(params, g)))
        loss.backward()
        if unscale_first:
            scaler.unscale_(opt)
        before = scaler.get_scale()
        scaler.step(opt)
        scaler.update()
        skipped.append(scaler.get_scale() < before)  # a skipped step backs the scale off
        scales.append(scaler.get_scale())
    return scales, skipped, [p.detach().numpy() for p in params], scaler.state_dict()


@pytest.mark.torch
@pytest.mark.filterwarnings("ignore:overflow encountered")  # scaled losses past float32's range
@pytest.mark.parametrize("kwargs,n", [
    ({}, 5000),  # the defaults: growth every 2000 clean steps
    ({"init_scale": 2.0 ** 10, "growth_interval": 7}, 3000),
    ({"init_scale": 3.0, "growth_factor": 1.7, "backoff_factor": 0.3, "growth_interval": 5}, 3000),
    ({"init_scale": 2.0 ** 120, "growth_interval": 3}, 500),  # growth stops below float32 inf
])
@pytest.mark.parametrize("unscale_first", [False, True])
def test_scale_sequence_matches_torch(kwargs, n, unscale_first):
    torch = pytest.importorskip("torch")
    grads = _schedule(n, seed=n + len(kwargs))
    got = _run_minigrad(grads, kwargs, unscale_first)
    want = _run_torch(torch, grads, kwargs, unscale_first)
    assert got[0] == want[0]  # every scale, bit for bit
    assert got[1] == want[1]
    assert sum(got[1]) >= 5
    for a, b in zip(got[2], want[2]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)  # 5000 float32 sums
    assert got[3] == want[3]


def test_unscaled_gradients_and_skip():
    w = mg.nn.Parameter(mg.ones(2))
    opt = mg.optim.SGD([w], lr=1.0)
    scaler = mg.amp.GradScaler("cpu", init_scale=8.0)
    scaler.scale((w * 3).sum()).backward()
    assert w.grad.tolist() == [24.0, 24.0]
    scaler.unscale_(opt)
    assert w.grad.tolist() == [3.0, 3.0]
    with pytest.raises(RuntimeError, match="already been called"):
        scaler.unscale_(opt)
    scaler.step(opt)
    with pytest.raises(RuntimeError, match="step\\(\\) has already been called"):
        scaler.step(opt)
    with pytest.raises(RuntimeError, match="after step"):
        scaler.unscale_(opt)
    scaler.update()
    assert w.tolist() == [-2.0, -2.0] and scaler.get_scale() == 8.0
    opt.zero_grad()
    scaler.scale((w * float("inf")).sum()).backward()
    scaler.step(opt)
    scaler.update()
    assert scaler.last_step_skipped and w.tolist() == [-2.0, -2.0]
    assert scaler.get_scale() == 4.0


def test_errors_and_state_dict():
    scaler = mg.amp.GradScaler("cpu")
    opt = mg.optim.SGD([mg.nn.Parameter(mg.ones(1))], lr=1.0)
    with pytest.raises(AssertionError, match="did not use scaler.scale"):
        scaler.step(opt)
    with pytest.raises(AssertionError, match="growth factor"):
        mg.amp.GradScaler("cpu", growth_factor=1.0)
    assert scaler.get_scale() == 2.0 ** 16
    state = {"scale": 128.0, "growth_factor": 3.0, "backoff_factor": 0.25,
             "growth_interval": 9, "_growth_tracker": 4}
    other = mg.amp.GradScaler("cpu")
    other.load_state_dict(state)
    assert other.state_dict() == state
    with pytest.raises(RuntimeError, match="empty"):
        other.load_state_dict({})
    p = mg.nn.Parameter(mg.ones(2))
    half_opt = mg.optim.SGD([p], lr=1.0)
    p.grad = mg.ones(2, dtype=mg.float16)
    other.scale(mg.ones(1))
    with pytest.raises(ValueError, match="FP16 gradients"):
        other.unscale_(half_opt)


def test_disabled_scaler_is_a_pass_through():
    scaler = mg.amp.GradScaler("cpu", enabled=False)
    w = mg.nn.Parameter(mg.ones(2))
    opt = mg.optim.SGD([w], lr=1.0)
    loss = (w * 2).sum()
    assert scaler.scale(loss) is loss
    loss.backward()
    scaler.step(opt)
    scaler.update()
    assert w.tolist() == [-1.0, -1.0] and scaler.get_scale() == 1.0
    assert scaler.state_dict() == {} and not scaler.is_enabled()


def test_cuda_scaler_without_gpu_disables_itself():
    if mg.cuda.is_available():
        pytest.skip("a GPU (or its stand-in) is present")
    with pytest.warns(UserWarning, match="CUDA is not available"):
        scaler = mg.amp.GradScaler()
    assert not scaler.is_enabled()


def test_scale_nested_outputs():
    scaler = mg.amp.GradScaler("cpu", init_scale=4.0)
    a, b = mg.ones(1), mg.ones(2)
    out = scaler.scale([a, (b, a)])
    assert out[0].tolist() == [4.0] and out[1][0].tolist() == [4.0, 4.0]
    assert math.isclose(scaler.get_scale(), 4.0)
