"""``linalg.linear(..., relu=True)``: Linear and a ReLU as one LinearFn node (the transformer's
feed-forward block uses it on the fused path), against NumPy, its composite and PyTorch."""

import numpy as np
import pytest
from conftest import to_numpy

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import nn
from minigrad.ops import linalg


def _rand(shape, device, seed, dtype=mg.float64):
    # values kept away from the ReLU's kink at 0, so finite differences see no corner
    arr = np.random.default_rng(seed).standard_normal(shape)
    arr += np.sign(arr) * 0.1
    return mg.tensor(arr, dtype=dtype, device=device, requires_grad=True)


@pytest.mark.parametrize("x_shape", [(3, 4), (2, 3, 4)])
@pytest.mark.parametrize("bias", [True, False])
def test_one_node_equal_to_linear_then_relu(device, x_shape, bias):
    x, w = _rand(x_shape, device, 0), _rand((5, 4), device, 1)
    b = _rand((5,), device, 2) if bias else None
    y = linalg.linear(x, w, b, relu=True)
    assert type(y.grad_fn).__name__ == "LinearFn"
    ref = np.maximum(to_numpy(x) @ to_numpy(w).T + (to_numpy(b) if bias else 0), 0)
    np.testing.assert_allclose(to_numpy(y), ref, rtol=1e-12)
    assert (to_numpy(y) == 0).any() and (to_numpy(y) > 0).any()  # both sides of the kink
    args = [x, w, b] if bias else [x, w]

    def fn(*a):
        return linalg.linear(*a, relu=True)

    assert mg.autograd.gradcheck(fn, args)
    assert mg.autograd.gradgradcheck(lambda *a: fn(*a) ** 2, args)
    # the gradients equal those of the two ops (the subgradient at 0 is 0 in both)
    gy = mg.tensor(np.random.default_rng(3).standard_normal(y.shape), device=device)
    grads = mg.autograd.grad(fn(*args), args, gy)
    grads_ref = mg.autograd.grad(F.relu(F.linear(*args)), args, gy)
    for g, r in zip(grads, grads_ref):
        np.testing.assert_allclose(to_numpy(g), to_numpy(r), rtol=1e-12)


def test_exact_zeros_get_zero_gradient():
    x = mg.tensor([[1.0, -1.0]], requires_grad=True)
    w = mg.tensor([[1.0, 1.0], [1.0, 0.0]], requires_grad=True)  # first output exactly 0
    y = linalg.linear(x, w, relu=True)
    y.sum().backward()
    np.testing.assert_array_equal(to_numpy(y), [[0.0, 1.0]])
    np.testing.assert_array_equal(to_numpy(w.grad), [[0.0, 0.0], [1.0, -1.0]])


def test_fallback_operands_apply_the_relu():
    """Operands LinearFn does not take (a 1-D weight, a broadcasting bias) keep matmul's rules
    and still get the ReLU."""
    v, w = _rand((4,), "cpu", 0), _rand((5, 4), "cpu", 1)
    np.testing.assert_allclose(to_numpy(linalg.linear(v, w, relu=True)),
                               np.maximum(to_numpy(w) @ to_numpy(v), 0), rtol=1e-12)
    x, b2 = _rand((3, 4), "cpu", 2), _rand((1, 5), "cpu", 3)
    np.testing.assert_allclose(to_numpy(linalg.linear(x, w, b2, relu=True)),
                               np.maximum(to_numpy(x) @ to_numpy(w).T + to_numpy(b2), 0),
                               rtol=1e-12)


def test_float16_input():
    x = mg.tensor(np.array([[1.0, -2.0], [-3.0, 0.5]]), dtype=mg.float16)
    w = mg.tensor(np.eye(2), dtype=mg.float16)
    y = linalg.linear(x, w, relu=True)
    assert y.dtype == mg.float16
    np.testing.assert_array_equal(to_numpy(y).astype(np.float64), [[1.0, 0.0], [0.0, 0.5]])


@pytest.mark.torch
def test_matches_pytorch(device):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in ((2, 6, 8), (16, 8), (16,))]
    m_in = [mg.tensor(a, device=device, requires_grad=True) for a in arrays]
    t_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    m_out = linalg.linear(*m_in, relu=True)
    t_out = torch.relu(torch.nn.functional.linear(*t_in))
    np.testing.assert_allclose(to_numpy(m_out), t_out.detach().numpy(), rtol=1e-5, atol=1e-6)
    gy = rng.standard_normal(t_out.shape).astype(np.float32)
    m_out.backward(mg.tensor(gy, device=device))
    t_out.backward(torch.tensor(gy))
    for m, t in zip(m_in, t_in):
        np.testing.assert_allclose(to_numpy(m.grad), t.grad.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dropout,training", [(0.0, True), (0.3, False), (0.3, True)])
def test_encoder_feed_forward_uses_it_when_dropout_is_off(dropout, training):
    """The encoder's feed-forward block runs linear1 + ReLU as one node on the fused path,
    with the same numbers as the composite; with dropout active (or use_fused(False), or
    GELU) it runs the layers one by one."""
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=dropout,
                                       batch_first=True).double()
    layer.train(training)
    x = _rand((2, 5, 8), "cpu", 5)

    def names(out):
        seen, stack, found = set(), [out.grad_fn], []
        while stack:
            fn = stack.pop()
            if fn is None or id(fn) in seen:
                continue
            seen.add(id(fn))
            found.append((type(fn).__name__, getattr(fn, "relu", None)))
            stack.extend(t.grad_fn for t in (fn.inputs or ()))
        return found

    fused_relu = ("LinearFn", True) in names(layer(x))
    assert fused_relu == (not (dropout and training))
    with mg.use_fused(False):
        assert ("LinearFn", True) not in names(layer(x))
    if not (dropout and training):
        y = layer(x)
        with mg.use_fused(False):
            y_ref = layer(x)
        np.testing.assert_allclose(to_numpy(y), to_numpy(y_ref), rtol=1e-10, atol=1e-12)
        g = mg.autograd.grad(y.sum(), [x] + list(layer.parameters()))
        with mg.use_fused(False):
            g_ref = mg.autograd.grad(layer(x).sum(), [x] + list(layer.parameters()))
        for a, b in zip(g, g_ref):
            np.testing.assert_allclose(to_numpy(a), to_numpy(b), rtol=1e-9, atol=1e-12)
    gelu = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0,
                                      activation="gelu", batch_first=True).double()
    assert ("LinearFn", True) not in names(gelu(x))


@pytest.mark.parametrize("dtype", [mg.float64, mg.float32, mg.float16])
@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_backward_on_arrays_equals_recorded_backward(device, dtype, relu, bias):
    """A plain backward runs LinearFn's gradient on the arrays (no nodes); under create_graph
    it is recorded as Tensor ops. Both give the same numbers, bit for bit, and only the
    recorded one has a graph (the weight's and the input's gradients read x and W)."""
    x, w = _rand((2, 3, 4), device, 5, dtype), _rand((5, 4), device, 6, dtype)
    args = [x, w, _rand((5,), device, 7, dtype)] if bias else [x, w]
    gy = mg.tensor(np.random.default_rng(8).standard_normal((2, 3, 5)), dtype=dtype,
                   device=device)
    plain = mg.autograd.grad(linalg.linear(*args, relu=relu), args, gy)
    recorded = mg.autograd.grad(linalg.linear(*args, relu=relu), args, gy, create_graph=True)
    assert recorded[0].grad_fn is not None and recorded[1].grad_fn is not None
    for p, r, a in zip(plain, recorded, args):
        assert p.dtype == a.dtype and p.shape == a.shape
        assert p.grad_fn is None
        np.testing.assert_array_equal(to_numpy(p), to_numpy(r))


class _MyLinear(nn.Linear):
    def forward(self, input):
        return super().forward(input) * 2.0


@pytest.mark.parametrize("dtype", [mg.float64, mg.float32])
def test_sequential_runs_linear_then_relu_as_one_node(device, dtype):
    """In a Sequential on the fused path a built-in Linear directly followed by a built-in ReLU
    is one LinearFn node with the ReLU; the outputs and every gradient equal those of the two
    layers run apart (mg.use_fused(False)) bit for bit."""
    mg.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Dropout(0.0), nn.Linear(5, 4),
                          nn.ReLU()).to(device=device, dtype=dtype)
    x = _rand((3, 6), device, 9, dtype)
    y = model(x)
    assert type(y.grad_fn).__name__ == "LinearFn" and y.grad_fn.relu
    assert type(y.grad_fn.inputs[0].grad_fn).__name__ == "LinearFn"  # (dropout p=0: identity)
    results = []
    for fused in (True, False):
        with mg.use_fused(fused):
            model.zero_grad()
            x.grad = None
            out = model(x)
            (out * out).sum().backward()
        results.append([to_numpy(out)] + [to_numpy(t.grad) for t in [x, *model.parameters()]])
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
    assert (results[0][0] == 0).any()  # the ReLU did zero something


def test_sequential_fuses_only_the_built_in_layers():
    """A subclass of Linear (its own forward) or of ReLU, or a ReLU not right after the Linear,
    runs as written; a wrong input still gets Linear's own error."""
    x = _rand((2, 4), "cpu", 10, mg.float32)
    sub = nn.Sequential(_MyLinear(4, 3), nn.ReLU())
    np.testing.assert_array_equal(to_numpy(sub(x)),
                                  to_numpy(F.relu(F.linear(x, sub[0].weight, sub[0].bias) * 2)))
    assert type(sub(x).grad_fn).__name__ == "ReluFn"
    apart = nn.Sequential(nn.Linear(4, 3), nn.Identity(), nn.ReLU())
    assert type(apart(x).grad_fn).__name__ == "ReluFn"
    with pytest.raises(RuntimeError, match="in_features=5"):
        nn.Sequential(nn.Linear(5, 3), nn.ReLU())(x)
    with pytest.raises(RuntimeError, match="dtype"):
        nn.Sequential(nn.Linear(4, 3), nn.ReLU())(x.to(mg.float64).detach())
