"""nn.functional: composites vs NumPy, dtypes, stability, errors, and parity with PyTorch."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import references


def npy(t):
    return mg.backend.to_device(t.detach().data, mg.backend.CPU)


def rand(shape, device, dtype=mg.float64, requires_grad=True, scale=1.0, seed=0):
    arr = np.random.default_rng(seed).standard_normal(shape) * scale
    return mg.tensor(arr, dtype=dtype, device=device, requires_grad=requires_grad)


def test_import_forms():
    import minigrad.nn.functional as F2
    from minigrad.nn import functional, init

    assert F2 is functional is mg.nn.functional
    assert init is mg.nn.init


# ---------------------------------------------------------------------------- linear


def test_linear_matches_numpy(device):
    x, w, b = rand((2, 3, 4), device), rand((5, 4), device, seed=1), rand((5,), device, seed=2)
    np.testing.assert_allclose(npy(F.linear(x, w, b)), npy(x) @ npy(w).T + npy(b), rtol=1e-12)
    np.testing.assert_allclose(npy(F.linear(x, w)), npy(x) @ npy(w).T, rtol=1e-12)
    assert mg.autograd.gradcheck(F.linear, [x, w, b])


def test_linear_keyword_names_are_pytorchs():
    x, w = mg.ones(2, 3), mg.ones(4, 3)
    assert F.linear(input=x, weight=w, bias=None).shape == (2, 4)
    assert F.dropout(input=x, p=0.2, training=False, inplace=False) is x
    assert F.layer_norm(input=x, normalized_shape=(3,), weight=None, bias=None,
                        eps=1e-5).shape == (2, 3)


def test_linear_gradgradcheck(device):
    x, w = rand((2, 3), device), rand((2, 3), device, seed=1)
    assert mg.autograd.gradgradcheck(lambda x, w: F.linear(x, w) ** 2, [x, w])


@pytest.mark.parametrize("lead", [(6,), (2, 3)])
def test_linear_weight_gradient_is_row_major_like_the_weight(device, lead):
    """F.linear multiplies by W.t(), a column-major view: its gradient is computed as the
    transpose of a row-major product, so W.grad comes out row-major (as PyTorch's) and equal
    to dy^T x, while the input's gradient keeps its own order."""
    x, w = rand(lead + (4,), device), rand((5, 4), device, seed=1)
    dy = np.random.default_rng(2).standard_normal(lead + (5,))
    F.linear(x, w).backward(mg.tensor(dy, device=device))
    assert w.grad.data.flags.c_contiguous and x.grad.data.flags.c_contiguous
    flat_x = npy(x).reshape(-1, 4)
    np.testing.assert_allclose(npy(w.grad), dy.reshape(-1, 5).T @ flat_x, rtol=1e-12)
    np.testing.assert_allclose(npy(x.grad), dy @ npy(w), rtol=1e-12)


@pytest.mark.parametrize("x_shape", [(3, 4), (2, 3, 4), (0, 4)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_is_one_node_with_checked_gradients(device, x_shape, bias):
    """Plain operands: one LinearFn node (PyTorch's addmm); first and second derivatives
    checked in float64, also through a non-contiguous input."""
    x, w = rand(x_shape, device), rand((5, 4), device, seed=1)
    b = rand((5,), device, seed=2) if bias else None
    y = F.linear(x, w, b)
    assert type(y.grad_fn).__name__ == "LinearFn" and y.shape == x_shape[:-1] + (5,)
    args = [x, w, b] if bias else [x, w]
    assert mg.autograd.gradcheck(F.linear, args)
    assert mg.autograd.gradgradcheck(lambda *a: F.linear(*a) ** 2, args)
    lead = len(x_shape) - 1
    xt = rand((4,) + x_shape[:-1], device).permute(*range(1, lead + 1), 0)  # non-contiguous
    np.testing.assert_allclose(npy(F.linear(xt, w, b)),
                               npy(xt) @ npy(w).T + (npy(b) if bias else 0), rtol=1e-12)


@pytest.mark.parametrize("x_shape,w_shape", [((3, 0), (5, 0)), ((2, 3, 0), (5, 0)),
                                              ((3, 4), (0, 4))])
def test_linear_with_zero_features(device, x_shape, w_shape):
    """No input features: y is the bias, W's gradient empty; no output features: y empty and
    x's gradient zero (as PyTorch)."""
    x, w = rand(x_shape, device), rand(w_shape, device, seed=1)
    b = rand(w_shape[:1], device, seed=2)
    y = F.linear(x, w, b)
    assert y.shape == x_shape[:-1] + w_shape[:1]
    np.testing.assert_array_equal(npy(y), np.broadcast_to(npy(b), y.shape))
    y.sum().backward()
    assert w.grad.shape == w_shape and x.grad.shape == x_shape
    np.testing.assert_array_equal(npy(b.grad), np.full(w_shape[:1], np.prod(x_shape[:-1])))
    np.testing.assert_array_equal(npy(x.grad), np.zeros(x_shape))


def test_linear_falls_back_to_matmul_semantics():
    """Operands LinearFn does not take keep matmul's rules: a 1-D input or weight, a bias
    that broadcasts, mixed dtypes (promoted), and matmul's error for mismatched sizes."""
    w = rand((5, 4), "cpu", seed=1)
    v = rand((4,), "cpu")
    np.testing.assert_allclose(npy(F.linear(v, w)), npy(w) @ npy(v), rtol=1e-12)
    np.testing.assert_allclose(npy(F.linear(rand((3, 4), "cpu"), v)).shape, (3,))
    b2 = rand((1, 5), "cpu", seed=2)
    x = rand((3, 4), "cpu")
    np.testing.assert_allclose(npy(F.linear(x, w, b2)), npy(x) @ npy(w).T + npy(b2),
                               rtol=1e-12)
    x32 = rand((3, 4), "cpu", dtype=mg.float32)
    assert F.linear(x32, w).dtype == mg.float64  # promoted, as matmul does
    with pytest.raises(RuntimeError, match="cannot be multiplied"):
        F.linear(rand((3, 6), "cpu"), w)


def test_matmul_gradients_of_column_major_operands(device):
    """Both operands transposed views (column-major): gradients equal gy b^T and a^T gy, and
    second derivatives stay correct through the swapped products."""
    a0, b0 = rand((4, 3), device), rand((5, 4), device, seed=1)
    a, b = a0.t(), b0.t()  # (3, 4) and (4, 5), both column-major
    dy = np.random.default_rng(2).standard_normal((3, 5))
    (a @ b).backward(mg.tensor(dy, device=device))
    np.testing.assert_allclose(npy(a0.grad), (dy @ npy(b).T).T, rtol=1e-12)
    np.testing.assert_allclose(npy(b0.grad), (npy(a).T @ dy).T, rtol=1e-12)
    assert a0.grad.data.flags.c_contiguous and b0.grad.data.flags.c_contiguous
    assert mg.autograd.gradcheck(lambda p, q: p.t() @ q.t(), [a0, b0])
    assert mg.autograd.gradgradcheck(lambda p, q: (p.t() @ q.t()) ** 2, [a0, b0])


def _graph_free_cases(device):
    """(fn, inputs) whose backward has an array-only path when nothing is recorded."""
    x3, w, b = rand((2, 3, 4), device), rand((5, 4), device, seed=1), rand((5,), device, seed=2)
    a0, b0 = rand((4, 3), device, seed=3), rand((5, 4), device, seed=4)
    batch, mat = rand((2, 3, 4), device, seed=5), rand((4, 6), device, seed=6)
    xr = rand((3, 7), device, seed=7)
    return [
        (lambda x, w, b: F.linear(x, w, b), [x3, w, b]),
        (lambda x, w: F.linear(x, w), [rand((3, 4), device, seed=8), w]),
        (lambda p, q: p.t() @ q.t(), [a0, b0]),  # column-major operands
        (lambda p, q: p @ q, [batch, mat]),  # a broadcast batch: the engine reduces it
        (lambda x: x.relu(), [xr]),
    ]


@pytest.mark.parametrize("case", range(5))
def test_backward_without_a_graph_matches_the_recorded_one(device, case):
    """Without create_graph, linear, matmul and relu compute their gradients on the arrays
    (no nodes): the same values and memory orders as the recorded backward."""
    fn, inputs = _graph_free_cases(device)[case]
    y = fn(*inputs)
    gy = mg.tensor(np.random.default_rng(9).standard_normal(y.shape), device=device)
    plain = mg.grad(fn(*inputs), inputs, gy)
    recorded = mg.grad(fn(*inputs), inputs, gy, create_graph=True)
    for g, r in zip(plain, recorded):
        assert g.grad_fn is None and not g.requires_grad
        np.testing.assert_array_equal(npy(g), npy(r))
        assert g.data.flags.c_contiguous == r.data.flags.c_contiguous
        assert g.dtype == r.dtype


# ---------------------------------------------------------------------------- dropout


def test_dropout_identity_cases(device):
    x = mg.randn(3, 3, device=device)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x


def test_dropout_float32_mask_no_float64(device, monkeypatch):
    """The composite mask is drawn directly in float32: no float64 array is ever made (the
    fused kernel's CPU mask is booleans from raw words: tests/kernels/test_dropout.py)."""
    seen = []
    real = mg.backend.random_uniform

    def spy(dev, shape, dtype):
        out = real(dev, shape, dtype)
        seen.append(out.dtype)
        return out

    monkeypatch.setattr(mg.backend, "random_uniform", spy)
    x = mg.ones(1000, device=device, requires_grad=True)
    with mg.use_fused(False):
        y = F.dropout(x, 0.25)
    assert seen == [np.dtype(np.float32)] and y.dtype == mg.float32
    kept = npy(y)[npy(y) != 0]
    assert np.all(kept == np.float32(1 / 0.75))


def test_dropout_reference_matches_public(device):
    """With the fused kernels off, F.dropout is the reference (the fused mask is its own
    stream)."""
    x = mg.randn(4, 5, device=device)
    mg.manual_seed(1)
    with mg.use_fused(False):
        a = npy(F.dropout(x, 0.4))
    mg.manual_seed(1)
    b = npy(references.dropout(x, 0.4))
    np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------- activations


def test_activations_match_numpy(device):
    x = rand((3, 4), device, scale=3)
    a = npy(x)
    np.testing.assert_allclose(npy(F.relu(x)), np.maximum(a, 0))
    np.testing.assert_allclose(npy(F.tanh(x)), np.tanh(a), rtol=1e-12)
    np.testing.assert_allclose(npy(F.sigmoid(x)), 1 / (1 + np.exp(-a)), rtol=1e-12)
    erf = np.vectorize(math.erf)
    np.testing.assert_allclose(npy(F.gelu(x)), 0.5 * a * (1 + erf(a / math.sqrt(2))),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(npy(F.logsigmoid(x)), -np.log1p(np.exp(-a)), rtol=1e-10)
    np.testing.assert_allclose(npy(F.softplus(x)), np.log1p(np.exp(a)), rtol=1e-10)
    np.testing.assert_allclose(npy(F.softplus(x, beta=2)), np.log1p(np.exp(2 * a)) / 2,
                               rtol=1e-10)
    e = np.exp(a - a.max(1, keepdims=True))
    np.testing.assert_allclose(npy(F.softmax(x, dim=1)), e / e.sum(1, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(npy(F.log_softmax(x, dim=1)),
                               np.log(e / e.sum(1, keepdims=True)), rtol=1e-12)
    np.testing.assert_allclose(npy(references.gelu(x, "tanh")), npy(F.gelu(x, "tanh")))
    with pytest.raises(ValueError):
        F.gelu(x, approximate="erf")


@pytest.mark.parametrize("fn", [
    F.relu, F.tanh, F.sigmoid, F.gelu, lambda x: F.gelu(x, "tanh"), F.logsigmoid, F.softplus,
    lambda x: F.softplus(x, beta=2.0, threshold=1.0), lambda x: F.softmax(x, 0),
    lambda x: F.log_softmax(x, -1),
], ids=["relu", "tanh", "sigmoid", "gelu", "gelu_tanh", "logsigmoid", "softplus",
        "softplus_beta", "softmax", "log_softmax"])
def test_activation_gradcheck(device, fn):
    x = rand((3, 4), device, scale=2)
    assert mg.autograd.gradcheck(fn, [x])


def test_logsigmoid_softplus_stable_and_exact_at_zero(device):
    for dtype in (mg.float32, mg.float64):
        x = mg.tensor([-1e4, -50.0, 0.0, 50.0, 1e4], dtype=dtype, device=device,
                      requires_grad=True)
        y = F.logsigmoid(x)
        y.sum().backward()
        assert y.dtype == dtype and np.all(np.isfinite(npy(y)))
        np.testing.assert_allclose(npy(y), [-1e4, -50, -math.log(2), 0, 0], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(npy(x.grad), [1, 1, 0.5, 0, 0], atol=1e-6)
        x.grad = None
        z = F.softplus(x)
        z.sum().backward()
        assert np.all(np.isfinite(npy(z))) and np.all(np.isfinite(npy(x.grad)))
        np.testing.assert_allclose(npy(x.grad)[2], 0.5)


# ---------------------------------------------------------------------------- layer norm


@settings(max_examples=25, deadline=None)
@given(rows=st.integers(1, 4), cols=st.integers(2, 6), scale=st.floats(0.01, 100),
       shift=st.floats(-100, 100))
def test_layer_norm_statistics(rows, cols, scale, shift):
    x = np.random.default_rng(rows * 10 + cols).standard_normal((rows, cols)) * scale + shift
    y = npy(F.layer_norm(mg.tensor(x), (cols,), eps=0.0))
    np.testing.assert_allclose(y.mean(-1), 0, atol=1e-6)
    np.testing.assert_allclose(y.var(-1), 1, rtol=1e-5)


def test_layer_norm_matches_numpy_and_reference(device):
    x, w, b = rand((2, 3, 4), device), rand((3, 4), device, seed=1), rand((3, 4), device, seed=2)
    a = npy(x)
    mu = a.mean(axis=(1, 2), keepdims=True)
    var = a.var(axis=(1, 2), keepdims=True)  # biased
    ref = (a - mu) / np.sqrt(var + 1e-5) * npy(w) + npy(b)
    np.testing.assert_allclose(npy(F.layer_norm(x, (3, 4), w, b)), ref, rtol=1e-10)
    np.testing.assert_allclose(npy(references.layer_norm(x, (-2, -1), w, b, 1e-5)), ref,
                               rtol=1e-10)
    assert mg.autograd.gradcheck(lambda x, w, b: F.layer_norm(x, (3, 4), w, b), [x, w, b])


def test_layer_norm_float32_and_errors(device):
    x = mg.randn(2, 4, device=device)
    assert F.layer_norm(x, 4).dtype == mg.float32
    assert F.layer_norm(x, 4, mg.ones(4, device=device), mg.zeros(4, device=device)).dtype == \
        mg.float32
    with pytest.raises(RuntimeError, match="normalized_shape"):
        F.layer_norm(x, (3,))
    with pytest.raises(RuntimeError, match="weight"):
        F.layer_norm(x, (4,), mg.ones(3, device=device))


def test_layer_norm_constant_rows_are_finite(device):
    x = mg.full((2, 5), 3.0, device=device, requires_grad=True)
    y = F.layer_norm(x, 5)
    y.sum().backward()
    assert np.all(npy(y) == 0) and np.all(np.isfinite(npy(x.grad)))


# ---------------------------------------------------------------------------- embedding, one_hot


def test_embedding_functional(device):
    w = rand((5, 3), device)
    idx = mg.tensor([[4, 0], [0, 2]], device=device)
    out = F.embedding(idx, w, padding_idx=0)
    np.testing.assert_array_equal(npy(out), npy(w)[npy(idx)])
    out.sum().backward()
    g = npy(w.grad)
    np.testing.assert_array_equal(g[0], 0)
    np.testing.assert_array_equal(g[4], 1)
    np.testing.assert_array_equal(g[1], 0)
    with pytest.raises(NotImplementedError):
        F.embedding(idx, w, max_norm=1.0)
    with pytest.raises(TypeError):
        F.embedding([0, 1], w)


def test_one_hot(device):
    t = mg.tensor([[0, 2], [1, 1]], device=device)
    out = F.one_hot(t, 4)
    assert out.dtype == mg.int64 and out.shape == (2, 2, 4)
    np.testing.assert_array_equal(npy(out), np.eye(4, dtype=np.int64)[npy(t)])
    assert F.one_hot(t).shape == (2, 2, 3)
    with pytest.raises(RuntimeError, match="smaller than num_classes"):
        F.one_hot(t, 2)
    with pytest.raises(RuntimeError, match="non-negative"):
        F.one_hot(mg.tensor([-1, 0], device=device), 3)
    with pytest.raises(TypeError):
        F.one_hot(mg.tensor([0.0]))


# ---------------------------------------------------------------------------- PyTorch parity


@pytest.mark.torch
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name,kwargs", [
    ("relu", {}), ("gelu", {}), ("gelu", {"approximate": "tanh"}), ("tanh", {}),
    ("sigmoid", {}), ("logsigmoid", {}), ("softplus", {}), ("softplus", {"beta": 2.0}),
    ("softmax", {"dim": 1}), ("log_softmax", {"dim": 0}), ("log_softmax", {"dim": -1}),
    ("layer_norm", {"normalized_shape": (4,)}),
])
def test_functional_torch_parity(dtype, name, kwargs):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((3, 5, 4)) * 4
    xm = mg.tensor(x, dtype=dtype, requires_grad=True)
    xt = torch.tensor(x, dtype=getattr(torch, dtype), requires_grad=True)
    ym = getattr(F, name)(xm, **kwargs)
    yt = getattr(torch.nn.functional, name)(xt, **kwargs)
    g = np.random.default_rng(1).standard_normal(yt.shape)
    ym.backward(mg.tensor(g, dtype=dtype))
    yt.backward(torch.tensor(g, dtype=getattr(torch, dtype)))
    tol = 1e-5 if dtype == "float64" else 1e-4
    assert ym.dtype == np.dtype(dtype)
    np.testing.assert_allclose(npy(ym), yt.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(npy(xm.grad), xt.grad.numpy(), rtol=tol, atol=tol)


@pytest.mark.torch
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_linear_layer_norm_embedding_functional_torch_parity(dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s) for s in [(2, 3, 4), (5, 4), (5,), (5,), (5,), (7, 5)]]
    ms = [mg.tensor(a, dtype=dtype, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, dtype=getattr(torch, dtype), requires_grad=True) for a in arrays]
    idx = np.array([[1, 6], [0, 1]])

    def model(lib_f, t, idx, x, w, b, lw, lb, emb):
        h = lib_f.layer_norm(lib_f.linear(x, w, b), (5,), lw, lb)
        return (h.sum(1)[:, None, :] * lib_f.embedding(idx, emb, padding_idx=1)).sum()

    ym = model(F, mg, mg.tensor(idx), *ms)
    yt = model(torch.nn.functional, torch, torch.tensor(idx), *ts)
    ym.backward()
    yt.backward()
    tol = 1e-5 if dtype == "float64" else 1e-4
    np.testing.assert_allclose(npy(ym), yt.detach().numpy(), rtol=tol, atol=tol)
    for m, t in zip(ms, ts):
        np.testing.assert_allclose(npy(m.grad), t.grad.numpy(), rtol=tol, atol=tol)
