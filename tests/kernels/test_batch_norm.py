"""The fused batch norm (kernels/batch_norm.py) against its composite reference
(``references.batch_norm``): outputs, statistics, gradients, create_graph, running statistics,
the switch; the ``cuda`` cases run the CUDA C (on a GPU, or simulated by the CuPy stand-in)."""

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

SHAPES = [(8, 3), (4, 3, 5), (2, 4, 3, 3), (3, 1, 7)]


def _case(device, dtype, shape, affine):
    return norm_inputs(device, dtype, shape, shape[1], affine)  # a weight and bias per channel


def _fn(affine):
    def fn(*ts):
        it = iter(ts)
        x = next(it)
        w = next(it) if affine[0] else None
        b = next(it) if affine[1] else None
        return F.batch_norm(x, None, None, w, b, training=True)
    return fn


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("affine", AFFINE, ids=AFFINE_IDS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_matches_reference(device, dtype, affine, shape):
    x, w, b = _case(device, dtype, shape, affine)
    inputs = [t for t in (x, w, b) if t is not None]
    out, _ = assert_same(_fn(affine), inputs, dtype=dtype)
    assert out[0].dtype == np.dtype(dtype)


@pytest.mark.parametrize("affine", AFFINE, ids=AFFINE_IDS)
def test_gradcheck_fused_function_with_statistics_outputs(device, affine):
    x, w, b = _case(device, "float64", (3, 2, 4), affine)
    inputs = [t for t in (x, w, b) if t is not None]

    def fn(*ts):
        it = iter(ts)
        return kernels.batch_norm.apply(next(it), next(it) if affine[0] else None,
                                        next(it) if affine[1] else None, 1e-5)

    assert "BatchNormFn" in grad_fn_names(fn(*inputs)[0])
    assert mg.autograd.gradcheck(fn, inputs)  # y, mean and var all weighted


def test_statistics_match_reference(device):
    from minigrad import references
    x, w, b = _case(device, "float64", (5, 3, 4), (True, True))
    fused = kernels.batch_norm.apply(x, w, b, 1e-5)
    ref = references.batch_norm(x, w, b, 1e-5)
    for a, r in zip(fused, ref):
        np.testing.assert_allclose(cpu(a), cpu(r), rtol=1e-12, atol=1e-12)


def test_create_graph_differentiates_the_reference(device):
    x, w, b = _case(device, "float64", (4, 3, 2), (True, True))
    assert_same_second_order(_fn((True, True)), [x, w, b])


def test_noncontiguous_input(device):
    x, w, b = _case(device, "float32", (3, 5, 4, 2), (True, True))
    assert_same(lambda x, w, b: F.batch_norm(x.transpose(2, 3), None, None, w, b, True),
                [x, w, b], dtype="float32")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_large_mean_and_constant_channel(device, dtype):
    """Channels with a large mean (1e4; 1e2 in float32, whose spacing at 1e4 is 1e-3) keep
    their variance (two passes); a constant channel gives 0."""
    rng = np.random.default_rng(7)  # NOTE: not assert_same's seed (dy would equal xhat)
    a = rng.standard_normal((6, 3, 4)) + (1e4 if dtype == "float64" else 1e2)
    a[:, 1] = 7.0
    x = tensor(a, device, dtype, True)
    out, grads = assert_same(_fn((False, False)), [x], dtype=dtype)
    assert all(np.all(np.isfinite(g)) for g in out + grads)
    assert np.abs(out[0][:, 1]).max() == 0


@pytest.mark.parametrize("momentum", [0.1, None])
def test_module_running_statistics_fused_equals_composite(device, momentum):
    rng = np.random.default_rng(4)
    batches = [tensor(rng.standard_normal((4, 3, 2, 2)) * 2 + 1, device, "float64")
               for _ in range(3)]
    states = []
    for fused in (True, False):
        bn = nn.BatchNorm2d(3, momentum=momentum).double().to(device)
        with mg.use_fused(fused):
            for x in batches:
                bn(x)
        states.append({k: cpu(v) for k, v in bn.state_dict().items()})
    for k in states[0]:
        np.testing.assert_allclose(states[0][k], states[1][k], rtol=1e-12)


def test_module_and_switch(device):
    bn = nn.BatchNorm1d(6).to(device)
    x = tensor(np.random.default_rng(2).standard_normal((5, 6)), device, "float32", True)
    assert_switch("BatchNormFn", lambda: bn(x))
    bn.eval()
    assert "BatchNormFn" not in grad_fn_names(bn(x))  # evaluation is an affine composite


def test_forward_keeps_no_normalised_copy():
    """From forward to backward the NumPy kernel keeps its output and per-channel statistics,
    not a normalised copy of the input (the backward centres the input again), and its
    gradients still equal the reference's."""
    import tracemalloc

    rng = np.random.default_rng(0)
    x = mg.tensor(rng.standard_normal((16, 8, 32, 32), dtype=np.float32), requires_grad=True)
    w = mg.tensor(rng.standard_normal(8, dtype=np.float32), requires_grad=True)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        y = F.batch_norm(x, None, None, w, None, training=True)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert "BatchNormFn" in grad_fn_names(y)
    assert held < y.data.nbytes + 64 * 1024, held  # (with a copy: twice the output)
    assert_same(lambda x, w: F.batch_norm(x, None, None, w, None, training=True), [x, w],
                dtype="float32")
