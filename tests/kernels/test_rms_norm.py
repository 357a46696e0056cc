"""The fused RMS norm (kernels/rms_norm.py) against its composite reference
(``references.rms_norm``), through ``F.rms_norm`` and ``nn.RMSNorm``."""

import numpy as np
import pytest
from kernel_utils import assert_same, assert_same_second_order, grad_fn_names, tensor
from kernel_utils import fused_on  # noqa: F401  (autouse: kernels on, whatever the env)

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import kernels, nn


def _case(device, dtype, shape, norm, affine, seed=0):
    rng = np.random.default_rng(seed)
    x = tensor(rng.standard_normal(shape) * 2.0 + 1.0, device, dtype, True)
    w = tensor(rng.standard_normal(norm), device, dtype, True) if affine else None
    return x, w


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("affine", [True, False], ids=["w", "none"])
@pytest.mark.parametrize("shape, norm", [((4, 7), (7,)), ((2, 3, 4, 5), (4, 5)),
                                         ((6,), (6,)), ((3, 1, 33), (1, 33))])
def test_matches_reference(device, dtype, affine, shape, norm):
    x, w = _case(device, dtype, shape, norm, affine)
    if affine:
        out, _ = assert_same(lambda x, w: F.rms_norm(x, norm, w, 1e-5), [x, w], dtype=dtype)
    else:
        out, _ = assert_same(lambda x: F.rms_norm(x, norm, None, None), [x], dtype=dtype)
    assert out[0].dtype == np.dtype(dtype)


def test_gradcheck_fused_function(device):
    x, w = _case(device, "float64", (3, 5), (5,), True)
    fn = lambda x, w: kernels.rms_norm.apply(x, (5,), w, 1e-6)  # noqa: E731
    assert "RMSNormFn" in grad_fn_names(fn(x, w))
    assert mg.autograd.gradcheck(fn, [x, w])


def test_create_graph_differentiates_the_reference(device):
    x, w = _case(device, "float64", (2, 4), (4,), True)
    assert_same_second_order(lambda x, w: F.rms_norm(x, (4,), w, 1e-6), [x, w])


def test_frozen_weight_noncontiguous_and_empty(device):
    x, w = _case(device, "float32", (5, 3, 8), (8,), True)
    w.requires_grad = False
    assert_same(lambda x: F.rms_norm(x.transpose(0, 1), (8,), w, 1e-5), [x], dtype="float32")
    e = tensor(np.zeros((0, 4)), device, "float32", True)
    assert F.rms_norm(e, (4,)).shape == (0, 4)


def test_module_and_switch(device):
    norm = nn.RMSNorm(6, eps=1e-6).to(device)
    x, _ = _case(device, "float32", (2, 6), (6,), False)
    assert "RMSNormFn" in grad_fn_names(norm(x))
    with mg.use_fused(False):
        assert "RMSNormFn" not in grad_fn_names(norm(x))
