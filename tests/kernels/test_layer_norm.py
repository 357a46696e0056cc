"""The fused layer norm (kernels/layer_norm.py) against its composite reference
(``references.layer_norm``)."""

import numpy as np
import pytest
from kernel_utils import (
    AFFINE, AFFINE_IDS, assert_same, assert_same_second_order, assert_switch, cpu, grad_fn_names,
    norm_inputs, tensor,
)
from kernel_utils import fused_on  # noqa: F401  (autouse: kernels on, whatever the env)

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import kernels, nn

def _fn(norm, eps=1e-5):
    return lambda x, w, b: F.layer_norm(x, norm, w, b, eps)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("affine", AFFINE, ids=AFFINE_IDS)
@pytest.mark.parametrize("shape, norm", [((4, 7), (7,)), ((2, 3, 4, 5), (4, 5)),
                                         ((6,), (6,)), ((3, 1, 33), (1, 33))])
def test_matches_reference(device, dtype, affine, shape, norm):
    x, w, b = norm_inputs(device, dtype, shape, norm, affine)
    inputs = [t for t in (x, w, b) if t is not None]

    def fn(*ts):
        it = iter(ts)
        return F.layer_norm(next(it), norm, next(it) if affine[0] else None,
                            next(it) if affine[1] else None)

    out, _ = assert_same(fn, inputs, dtype=dtype)
    assert out[0].dtype == np.dtype(dtype)


@pytest.mark.parametrize("affine", AFFINE, ids=AFFINE_IDS)
def test_gradcheck_fused_function(device, affine):
    x, w, b = norm_inputs(device, "float64", (3, 2, 4), (2, 4), affine)
    inputs = [t for t in (x, w, b) if t is not None]

    def fn(*ts):
        it = iter(ts)
        return kernels.layer_norm.apply(next(it), (2, 4), next(it) if affine[0] else None,
                                        next(it) if affine[1] else None, 1e-5)

    assert "LayerNormFn" in grad_fn_names(fn(*inputs))
    assert mg.autograd.gradcheck(fn, inputs)


def test_create_graph_differentiates_the_reference(device):
    x, w, b = norm_inputs(device, "float64", (3, 4), (4,), (True, True))
    assert_same_second_order(_fn((4,)), [x, w, b])


def test_noncontiguous_input(device):
    x, w, b = norm_inputs(device, "float32", (5, 6, 3), (6,), (True, True))

    def fn(x, w, b):
        xt = x.transpose(1, 2)  # (5, 3, 6), not contiguous
        assert not xt.data.flags.c_contiguous
        return F.layer_norm(xt, (6,), w, b)

    assert_same(fn, [x, w, b], dtype="float32")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_extreme_and_constant_rows(device, dtype):
    """Rows of magnitude 1e4 and constant rows (variance 0: only eps) stay finite."""
    rng = np.random.default_rng(1)
    a = rng.standard_normal((4, 8)) * 1e4
    a[1] = 7.0  # a constant row
    x = tensor(a, device, dtype, True)
    w = tensor(rng.standard_normal(8), device, dtype, True)
    b = tensor(rng.standard_normal(8), device, dtype, True)
    out, grads = assert_same(_fn((8,)), [x, w, b], dtype=dtype)
    assert all(np.all(np.isfinite(g)) for g in out + grads)


def test_module_and_switch(device):
    ln = nn.LayerNorm(6).to(device)
    x = tensor(np.random.default_rng(2).standard_normal((2, 6)), device, "float32", True)
    assert_switch("LayerNormFn", lambda: ln(x))
    assert_same(lambda x, *p: ln(x), [x, *ln.parameters()], dtype="float32")
    x16 = tensor(cpu(x), device, "float16", True)
    assert "LayerNormFn" not in grad_fn_names(F.layer_norm(x16, (6,)))  # no float16 kernel


def _residual_fn(norm, affine):
    """layer_norm(x + r): AddLayerNormFn on the fused path, the composite otherwise."""

    def fn(x, r, *wb):
        it = iter(wb)
        w = next(it) if affine[0] else None
        b = next(it) if affine[1] else None
        if mg.fused.is_fused():
            return kernels.layer_norm.apply_residual(x, r, norm, w, b, 1e-5)
        return F.layer_norm(x + r, norm, w, b, 1e-5)

    return fn


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("affine", AFFINE, ids=AFFINE_IDS)
@pytest.mark.parametrize("shape, norm", [((4, 7), (7,)), ((2, 3, 4, 5), (4, 5))])
def test_residual_matches_reference(device, dtype, affine, shape, norm):
    x, w, b = norm_inputs(device, dtype, shape, norm, affine)
    r, _, _ = norm_inputs(device, dtype, shape, norm, affine, scale=2.0, seed=1)
    inputs = [t for t in (x, r, w, b) if t is not None]
    assert "AddLayerNormFn" in grad_fn_names(_residual_fn(norm, affine)(*inputs))
    out, grads = assert_same(_residual_fn(norm, affine), inputs, dtype=dtype)
    np.testing.assert_array_equal(grads[0], grads[1])  # x and r get the same gradient


@pytest.mark.parametrize("affine", AFFINE, ids=AFFINE_IDS)
def test_residual_gradcheck_and_second_order(device, affine):
    x, w, b = norm_inputs(device, "float64", (3, 2, 4), (2, 4), affine)
    r, _, _ = norm_inputs(device, "float64", (3, 2, 4), (2, 4), affine, seed=1)
    inputs = [t for t in (x, r, w, b) if t is not None]
    fn = _residual_fn((2, 4), affine)
    assert mg.autograd.gradcheck(fn, inputs)
    assert_same_second_order(fn, inputs)


def test_residual_of_another_shape_or_dtype_adds_first(device):
    x, w, b = norm_inputs(device, "float64", (3, 4), (4,), (True, True))
    r = tensor(np.ones((1, 4)), device, "float64", True)  # broadcasts
    y = kernels.layer_norm.apply_residual(x, r, (4,), w, b, 1e-5)
    assert "AddLayerNormFn" not in grad_fn_names(y)
    np.testing.assert_allclose(cpu(y), cpu(F.layer_norm(x + r, (4,), w, b)), rtol=1e-12)


@pytest.mark.parametrize("norm_first", [False, True])
def test_post_norm_encoder_layer_uses_it(device, norm_first):
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, batch_first=True,
                                       norm_first=norm_first).to(device).double()
    x = tensor(np.random.default_rng(2).standard_normal((2, 5, 8)), device, "float64", True)
    assert ("AddLayerNormFn" in grad_fn_names(layer(x))) == (not norm_first)
    out, _ = assert_same(lambda x, *params: layer(x), [x] + list(layer.parameters()))
