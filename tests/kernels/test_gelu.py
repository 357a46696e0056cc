"""The fused GELU (kernels/gelu.py) against its composite reference (``references.gelu``)."""

import math

import numpy as np
import pytest
from kernel_utils import assert_same, assert_same_second_order, cpu, grad_fn_names, tensor
from kernel_utils import fused_on  # noqa: F401  (autouse: kernels on, whatever the env)

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import kernels, nn

APPROX = ["none", "tanh"]


def _x(device, dtype, shape=(5, 7), scale=3.0, seed=0):
    rng = np.random.default_rng(seed)
    return tensor(rng.standard_normal(shape) * scale, device, dtype, True)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("approximate", APPROX)
def test_matches_reference(device, dtype, approximate):
    x = _x(device, dtype)
    out, _ = assert_same(lambda x: F.gelu(x, approximate=approximate), [x], dtype=dtype)
    assert out[0].dtype == np.dtype(dtype)


def test_float32_exact_is_accurate_in_both_tails():
    """Phi from erfcc keeps float32 relative accuracy where x Phi(x) is tiny (x << 0)."""
    xs = np.linspace(-12, 12, 4001)
    cdf = np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in xs])
    y = cpu(kernels.gelu.apply(mg.tensor(xs.astype(np.float32))))
    np.testing.assert_allclose(y, xs * cdf, rtol=5e-5, atol=1e-30)


@pytest.mark.parametrize("approximate", APPROX)
def test_gradcheck_fused_function(device, approximate):
    x = _x(device, "float64", (3, 4), scale=2.0)
    fn = lambda x: kernels.gelu.apply(x, approximate)  # noqa: E731
    assert "FusedGeluFn" in grad_fn_names(fn(x))
    assert mg.autograd.gradcheck(fn, [x])


@pytest.mark.parametrize("approximate", APPROX)
def test_create_graph_differentiates_the_reference(device, approximate):
    x = _x(device, "float64", (2, 3))
    assert_same_second_order(lambda x: F.gelu(x, approximate=approximate), [x])


def test_noncontiguous_and_odd(device):
    x = _x(device, "float32", (3, 1, 11))
    assert_same(lambda x: F.gelu(x.transpose(0, 2)), [x], dtype="float32")
    e = tensor(np.zeros((0, 4)), device, "float32", True)
    assert F.gelu(e).shape == (0, 4)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("approximate", APPROX)
def test_extreme_inputs(device, dtype, approximate):
    x = tensor(np.array([-1e4, -50.0, -8.0, -1e-6, 0.0, 1e-6, 8.0, 50.0, 1e4]), device,
               dtype, True)
    out, grads = assert_same(lambda x: F.gelu(x, approximate=approximate), [x], dtype=dtype)
    assert np.all(np.isfinite(out[0])) and np.all(np.isfinite(grads[0]))
    np.testing.assert_allclose(out[0][[0, -1]], [0.0, 1e4], atol=1e-3)


def test_module_and_switch(device):
    x = _x(device, "float32")
    assert "FusedGeluFn" in grad_fn_names(nn.GELU()(x))
    assert "FusedGeluFn" in grad_fn_names(nn.GELU("tanh")(x))
    with mg.use_fused(False):
        assert "FusedGeluFn" not in grad_fn_names(F.gelu(x))
        assert "GeluFn" in grad_fn_names(F.gelu(x))
