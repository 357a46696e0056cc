"""The convolution benchmarks run (tiny sizes, nothing timed): bench_conv's cases validate
fused against composite, and W5 builds, trains a step and matches PyTorch's loss."""

import numpy as np
import pytest

import minigrad as mg
from benchmarks import bench_conv, workloads
from benchmarks.__main__ import kernel_cases
from benchmarks.kernel_bench import validate

W5_READY = hasattr(mg.nn.functional, "max_pool2d")


@pytest.mark.parametrize("build", [bench_conv.case, bench_conv.first_case,
                                   bench_conv.transpose_case])
def test_conv_cases_validate(build):
    case = build("cpu", True)
    assert validate(case) >= 0.0
    if case.torch_step is not None:
        case.torch_step()


def test_conv_cases_are_listed():
    names = [name for name, _ in kernel_cases("cpu")]
    assert {"conv", "conv_first", "conv_transpose"} <= set(names)


@pytest.mark.skipif(not W5_READY, reason="W5 needs F.max_pool2d")
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composite"])
def test_w5_step_trains_in_float32(fused):
    model, step = workloads.minigrad_step("W5", "cpu")
    with mg.use_fused(fused):
        first = float(step().item())
        loss = step()
    assert loss.dtype == mg.float32 and np.isfinite(first)
    assert all(p.grad.dtype == mg.float32 for p in model.parameters())


@pytest.mark.torch
@pytest.mark.skipif(not W5_READY, reason="W5 needs F.max_pool2d")
def test_w5_matches_torch_without_dropout():
    torch = pytest.importorskip("torch")
    model, _ = workloads.minigrad_step("W5", "cpu")
    tmodel, _ = workloads.torch_step("W5", model.state_dict())
    model.eval()
    tmodel.eval()
    x = np.random.default_rng(0).standard_normal((4, 1, 28, 28), dtype=np.float32)
    with mg.no_grad():
        ours = model(mg.tensor(x)).numpy()
    theirs = tmodel(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)


def test_w5_is_reported_not_available_without_pooling(monkeypatch):
    monkeypatch.delattr(mg.nn.functional, "max_pool2d", raising=False)
    assert "not available" in workloads.run(["W5"], "cpu", quick=True)["W5"]["error"]
