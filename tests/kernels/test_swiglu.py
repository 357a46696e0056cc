"""The fused SwiGLU gate (kernels/swiglu.py) against its composite reference
(``references.swiglu``), through ``nn.llm.swiglu`` and the Llama MLP."""

import numpy as np
import pytest
from kernel_utils import assert_same, assert_same_second_order, grad_fn_names, tensor
from kernel_utils import fused_on  # noqa: F401  (autouse: kernels on, whatever the env)

import minigrad as mg
from minigrad import kernels
from minigrad.nn.llm import swiglu


def _pair(device, dtype, shape=(4, 9), scale=3.0, seed=0):
    rng = np.random.default_rng(seed)
    return [tensor(rng.standard_normal(shape) * scale, device, dtype, True) for _ in range(2)]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_matches_reference(device, dtype):
    g, u = _pair(device, dtype)
    out, _ = assert_same(swiglu, [g, u], dtype=dtype)
    assert out[0].dtype == np.dtype(dtype)


def test_gradcheck_fused_function(device):
    g, u = _pair(device, "float64", (3, 4), scale=2.0)
    assert "FusedSwiGLUFn" in grad_fn_names(kernels.swiglu.apply(g, u))
    assert mg.autograd.gradcheck(kernels.swiglu.apply, [g, u])


def test_create_graph_differentiates_the_reference(device):
    assert_same_second_order(swiglu, _pair(device, "float64", (2, 3)))


def test_noncontiguous_broadcast_and_empty(device):
    g, u = _pair(device, "float32", (3, 1, 11))
    assert_same(lambda g, u: swiglu(g.transpose(0, 2), u.transpose(0, 2)), [g, u],
                dtype="float32")
    row = tensor(np.ones((1, 11)), device, "float32", True)
    assert "FusedSwiGLUFn" not in grad_fn_names(swiglu(g[:, 0], row))  # broadcast: reference
    e = tensor(np.zeros((0, 4)), device, "float32", True)
    assert swiglu(e, e).shape == (0, 4)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_extreme_inputs(device, dtype):
    g = tensor(np.array([-1e4, -50.0, -1e-6, 0.0, 1e-6, 50.0, 1e4]), device, dtype, True)
    u = tensor(np.full(7, 2.0), device, dtype, True)
    out, grads = assert_same(swiglu, [g, u], dtype=dtype)
    assert all(np.all(np.isfinite(a)) for a in [out[0], *grads])


def test_switch(device):
    g, u = _pair(device, "float32")
    assert "FusedSwiGLUFn" in grad_fn_names(swiglu(g, u))
    with mg.use_fused(False):
        assert "FusedSwiGLUFn" not in grad_fn_names(swiglu(g, u))
