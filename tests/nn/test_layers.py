"""Layers: shapes, initialisation, repr, state_dict, gradients, and parity with PyTorch."""

import math

import numpy as np
import pytest
from helpers import check_module_parity

import minigrad as mg
from minigrad import nn


def npy(t):
    return mg.backend.to_device(t.detach().data, mg.backend.CPU)


def rand(shape, device, dtype=mg.float64, requires_grad=True, scale=1.0):
    arr = np.random.default_rng(len(shape) + sum(shape)).standard_normal(shape) * scale
    return mg.tensor(arr, dtype=dtype, device=device, requires_grad=requires_grad)


# ---------------------------------------------------------------------------- Linear


def test_linear_shapes_repr_state_dict(device):
    layer = nn.Linear(4, 3, device=device)
    assert repr(layer) == "Linear(in_features=4, out_features=3, bias=True)"
    assert repr(nn.Linear(2, 1, bias=False)) == "Linear(in_features=2, out_features=1, bias=False)"
    sd = layer.state_dict()
    assert list(sd) == ["weight", "bias"]
    assert sd["weight"].shape == (3, 4) and sd["bias"].shape == (3,)
    assert layer.weight.dtype == mg.float32 and layer.weight.device == device
    assert layer(mg.randn(2, 4, device=device)).shape == (2, 3)
    assert layer(mg.randn(5, 2, 4, device=device)).shape == (5, 2, 3)
    assert layer(mg.randn(4, device=device)).shape == (3,)
    no_bias = nn.Linear(4, 3, bias=False)
    assert no_bias.bias is None and list(no_bias.state_dict()) == ["weight"]


def test_linear_init_bounds_and_spread():
    layer = nn.Linear(64, 200)
    bound = 1 / math.sqrt(64)
    w, b = npy(layer.weight), npy(layer.bias)
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    # U(-k, k) has variance k^2 / 3
    assert abs(w.var() - bound**2 / 3) < 0.1 * bound**2 / 3
    assert w.min() < -0.9 * bound and w.max() > 0.9 * bound


def test_linear_float32_stays_float32(device):
    layer = nn.Linear(3, 2, device=device)
    x = mg.randn(4, 3, device=device, requires_grad=True)
    y = layer(x)
    assert y.dtype == mg.float32
    y.sum().backward()
    assert x.grad.dtype == mg.float32 and layer.weight.grad.dtype == mg.float32


@pytest.mark.parametrize("shape", [(3, 4), (2, 2, 4), (4,)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_gradcheck(device, shape, bias):
    layer = nn.Linear(4, 3, bias=bias, dtype=mg.float64, device=device)
    x = rand(shape, device)
    params = [layer.weight] + ([layer.bias] if bias else [])

    def fn(x, *ps):
        return nn.functional.linear(x, *ps)

    assert mg.autograd.gradcheck(fn, [x, *params])


# ---------------------------------------------------------------------------- Identity, Flatten


def test_identity_and_flatten(device):
    x = mg.randn(2, 3, 4, device=device)
    assert nn.Identity(54, unused=1)(x) is x
    assert repr(nn.Identity()) == "Identity()"
    assert nn.Flatten()(x).shape == (2, 12)
    assert nn.Flatten(0, 1)(x).shape == (6, 4)
    assert repr(nn.Flatten()) == "Flatten(start_dim=1, end_dim=-1)"
    x64 = rand((2, 3, 2), device)
    assert mg.autograd.gradcheck(nn.Flatten(), [x64])


# ---------------------------------------------------------------------------- Dropout


def test_dropout_eval_and_p0_are_identity(device):
    x = mg.randn(10, 10, device=device)
    drop = nn.Dropout(0.5)
    drop.eval()
    assert drop(x) is x
    assert nn.Dropout(0.0)(x) is x
    assert repr(nn.Dropout(0.3)) == "Dropout(p=0.3, inplace=False)"


def test_dropout_p1_gives_zeros(device):
    x = mg.randn(5, 4, device=device, requires_grad=True)
    y = nn.Dropout(1.0)(x)
    assert np.all(npy(y) == 0)
    y.sum().backward()
    assert np.all(npy(x.grad) == 0)


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_dropout_bad_p(p):
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(p)
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.functional.dropout(mg.ones(2), p)


@pytest.mark.parametrize("dtype", [mg.float32, mg.float64, mg.float16])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_statistics(device, p, dtype):
    x = mg.ones(200, 500, device=device, dtype=dtype, requires_grad=True)
    y = nn.Dropout(p)(x)
    assert y.dtype == dtype
    out = npy(y).astype(np.float64)
    kept = out != 0
    n = out.size
    # the zeroed fraction is p within 5 standard deviations
    assert abs((1 - kept.mean()) - p) < 5 * math.sqrt(p * (1 - p) / n)
    np.testing.assert_allclose(out[kept], 1 / (1 - p), rtol=1e-3)
    assert abs(out.mean() - 1.0) < 5 * math.sqrt(p / (1 - p) / n)
    # the gradient is the same mask, same scale
    y.backward(mg.ones_like(y))
    np.testing.assert_array_equal(npy(x.grad).astype(np.float64), out)


def test_dropout_reproducible_and_fresh(device):
    mg.manual_seed(3)
    a = npy(nn.functional.dropout(mg.ones(50, device=device), 0.5))
    b = npy(nn.functional.dropout(mg.ones(50, device=device), 0.5))
    mg.manual_seed(3)
    c = npy(nn.functional.dropout(mg.ones(50, device=device), 0.5))
    assert np.array_equal(a, c) and not np.array_equal(a, b)


def test_dropout_inplace(device):
    x = mg.ones(100, device=device)
    y = nn.functional.dropout(x, 0.5, inplace=True)
    assert y is x and np.any(npy(x) == 0)
    g = mg.ones(100, device=device, requires_grad=True)
    y = nn.Dropout(0.5, inplace=True)(g)  # in the graph: a new tensor, the leaf untouched
    assert y is not g and np.all(npy(g) == 1)


def test_dropout_in_gradcheck_with_fixed_seed(device):
    x = rand((3, 4), device)

    def fn(x):
        mg.manual_seed(7)
        return nn.functional.dropout(x, 0.3)

    assert mg.autograd.gradcheck(fn, [x])


# ---------------------------------------------------------------------------- Embedding


def test_embedding_basics(device):
    emb = nn.Embedding(10, 3, padding_idx=2, device=device)
    assert repr(emb) == "Embedding(10, 3, padding_idx=2)"
    assert repr(nn.Embedding(5, 4)) == "Embedding(5, 4)"
    assert list(emb.state_dict()) == ["weight"] and emb.weight.shape == (10, 3)
    assert np.all(npy(emb.weight)[2] == 0)
    idx = mg.tensor([[1, 2, 3], [2, 9, 1]], device=device)
    out = emb(idx)
    assert out.shape == (2, 3, 3) and out.dtype == mg.float32
    np.testing.assert_array_equal(npy(out), npy(emb.weight)[npy(idx)])
    assert nn.Embedding(4, 2, padding_idx=-1).padding_idx == 3


def test_embedding_init_is_standard_normal():
    w = npy(nn.Embedding(1000, 50).weight)
    assert abs(w.mean()) < 0.02 and abs(w.std() - 1) < 0.02


def test_embedding_padding_gets_no_gradient_and_repeats_accumulate(device):
    emb = nn.Embedding(5, 2, padding_idx=0, device=device)
    with mg.no_grad():
        emb.weight.data[0] = 7.0  # a non-zero padding row still passes its value
    idx = mg.tensor([0, 1, 1, 3, 0], device=device)
    out = emb(idx)
    np.testing.assert_array_equal(npy(out)[0], [7.0, 7.0])
    (out * mg.arange(1.0, 6.0, device=device).reshape(5, 1)).sum().backward()
    g = npy(emb.weight.grad)
    np.testing.assert_array_equal(g[0], [0, 0])
    np.testing.assert_array_equal(g[1], [5, 5])  # rows 2 and 3 of the batch: 2 + 3
    np.testing.assert_array_equal(g[3], [4, 4])
    np.testing.assert_array_equal(g[2], [0, 0])


def test_embedding_errors(device):
    """Out-of-range indices raise IndexError: on the CPU at the call, on a GPU at the next
    synchronisation (here ``.tolist()``), as PyTorch's device-side asserts do."""
    emb = nn.Embedding(4, 2, device=device)
    with pytest.raises(IndexError, match="index 4 is out of range"):
        emb(mg.tensor([0, 4], device=device)).tolist()
    with pytest.raises(IndexError, match="index -1 is out of range"):
        emb(mg.tensor([-1], device=device)).tolist()
    with pytest.raises(TypeError, match="integer"):
        emb(mg.tensor([0.0, 1.0], device=device))
    with pytest.raises(ValueError, match="padding_idx"):
        nn.Embedding(4, 2, padding_idx=4)


def test_embedding_from_pretrained():
    w = mg.arange(6.0).reshape(3, 2)
    emb = nn.Embedding.from_pretrained(w)
    assert not emb.weight.requires_grad
    np.testing.assert_array_equal(npy(emb(mg.tensor([2]))), [[4.0, 5.0]])
    emb2 = nn.Embedding.from_pretrained(w, freeze=False, padding_idx=1)
    assert emb2.weight.requires_grad and emb2.padding_idx == 1
    np.testing.assert_array_equal(npy(emb2.weight)[1], [2.0, 3.0])  # kept, not zeroed
    assert emb2.weight.data is not w.data


def test_embedding_gradcheck(device):
    # NOTE: no padding_idx here: the padding row's value passes but its gradient is zero by
    # design, which finite differences would (rightly) disagree with
    emb = nn.Embedding(5, 3, dtype=mg.float64, device=device)
    idx = mg.tensor([[0, 1, 4], [4, 4, 2]], device=device)
    assert mg.autograd.gradcheck(lambda w: emb(idx), [emb.weight])


# ---------------------------------------------------------------------------- LayerNorm


def test_layernorm_normalises(device):
    ln = nn.LayerNorm(6, device=device)
    assert repr(ln) == "LayerNorm((6,), eps=1e-05, elementwise_affine=True, bias=True)"
    assert list(ln.state_dict()) == ["weight", "bias"]
    x = mg.randn(4, 6, device=device) * 3 + 2
    y = npy(ln(x)).astype(np.float64)
    np.testing.assert_allclose(y.mean(-1), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(-1), 1, atol=1e-3)
    assert ln(x).dtype == mg.float32


def test_layernorm_variants(device):
    ln = nn.LayerNorm((2, 3), eps=1e-3, device=device)
    assert ln.weight.shape == (2, 3)
    assert repr(ln) == "LayerNorm((2, 3), eps=0.001, elementwise_affine=True, bias=True)"
    x = mg.randn(4, 2, 3, device=device)
    y = npy(ln(x)).reshape(4, 6).astype(np.float64)
    np.testing.assert_allclose(y.mean(-1), 0, atol=1e-5)
    plain = nn.LayerNorm(3, elementwise_affine=False)
    assert plain.weight is None and plain.bias is None and list(plain.state_dict()) == []
    assert repr(plain) == "LayerNorm((3,), eps=1e-05, elementwise_affine=False, bias=False)"
    nobias = nn.LayerNorm(3, bias=False)
    assert list(nobias.state_dict()) == ["weight"]
    with pytest.raises(RuntimeError, match="normalized_shape"):
        nn.LayerNorm(4)(mg.randn(2, 3))


@pytest.mark.parametrize("affine,bias", [(True, True), (True, False), (False, False)])
def test_layernorm_gradcheck(device, affine, bias):
    ln = nn.LayerNorm(4, elementwise_affine=affine, bias=bias, dtype=mg.float64, device=device)
    if affine:
        with mg.no_grad():
            ln.weight.data[...] = npy(rand((4,), device)) + 1
            if bias:
                ln.bias.data[...] = npy(rand((4,), device))
    x = rand((3, 4), device)
    params = [p for p in (ln.weight, ln.bias) if p is not None]

    def fn(x, *ps):
        w = ps[0] if affine else None
        b = ps[1] if bias else None
        return nn.functional.layer_norm(x, (4,), w, b)

    assert mg.autograd.gradcheck(fn, [x, *params])


def test_layernorm_gradgradcheck(device):
    x = rand((2, 3), device)
    w = rand((3,), device)
    assert mg.autograd.gradgradcheck(lambda x, w: nn.functional.layer_norm(x, 3, w), [x, w])


# ---------------------------------------------------------------------------- activations

ACTIVATIONS = [
    ("ReLU", lambda: nn.ReLU(), lambda x: np.maximum(x, 0), "ReLU()"),
    ("GELU", lambda: nn.GELU(),
     lambda x: 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2))),
     "GELU(approximate='none')"),
    ("GELU-tanh", lambda: nn.GELU("tanh"),
     lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))),
     "GELU(approximate='tanh')"),
    ("Tanh", lambda: nn.Tanh(), np.tanh, "Tanh()"),
    ("Sigmoid", lambda: nn.Sigmoid(), lambda x: 1 / (1 + np.exp(-x)), "Sigmoid()"),
    ("Softmax", lambda: nn.Softmax(dim=1),
     lambda x: np.exp(x) / np.exp(x).sum(1, keepdims=True), "Softmax(dim=1)"),
    ("LogSoftmax", lambda: nn.LogSoftmax(dim=-1),
     lambda x: x - np.log(np.exp(x).sum(-1, keepdims=True)), "LogSoftmax(dim=-1)"),
]


@pytest.mark.parametrize("case", ACTIVATIONS, ids=lambda c: c[0])
def test_activation_forward_repr_grad(device, case):
    _, make, ref, text = case
    layer = make()
    assert repr(layer) == text
    x = rand((3, 4), device)
    np.testing.assert_allclose(npy(layer(x)), ref(npy(x)), rtol=1e-10, atol=1e-12)
    assert layer(x.detach().float()).dtype == mg.float32
    assert mg.autograd.gradcheck(layer, [x])


def test_relu_inplace_repr_and_gelu_bad_arg():
    assert repr(nn.ReLU(inplace=True)) == "ReLU(inplace=True)"
    with pytest.raises(ValueError):
        nn.GELU("fast")


def test_train_eval_propagates_to_dropout():
    model = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.9))
    x = mg.ones(4, 3)
    model.eval()
    a, b = npy(model(x)), npy(model(x))
    assert np.array_equal(a, b)
    model.train()
    assert model[1].training


# ---------------------------------------------------------------------------- PyTorch parity


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [mg.float64, mg.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(5, 4), (2, 3, 4)])
def test_linear_torch_parity(dtype, bias, shape):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal(shape)
    check_module_parity(torch, nn.Linear(4, 3, bias=bias, dtype=dtype),
                         torch.nn.Linear(4, 3, bias=bias), x, dtype)


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [mg.float64, mg.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("padding_idx", [None, 0, -2])
def test_embedding_torch_parity(dtype, padding_idx):
    torch = pytest.importorskip("torch")
    idx = np.array([[0, 3, 5], [5, 5, 1], [4, 0, 2]])
    check_module_parity(torch, nn.Embedding(6, 4, padding_idx=padding_idx, dtype=dtype),
                         torch.nn.Embedding(6, 4, padding_idx=padding_idx), idx, dtype,
                         index_input=True)
    assert repr(nn.Embedding(6, 4, padding_idx=padding_idx)) == repr(
        torch.nn.Embedding(6, 4, padding_idx=padding_idx))


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [mg.float64, mg.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("shape,kwargs", [
    ((4,), {}), ((4,), {"eps": 1e-3}), ((3, 4), {}), ((4,), {"bias": False}),
    ((4,), {"elementwise_affine": False}),
])
def test_layernorm_torch_parity(dtype, shape, kwargs):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((2, 3) + shape) * 4 + 1
    theirs = torch.nn.LayerNorm(shape, **kwargs)
    with torch.no_grad():  # non-trivial affine parameters
        for p in theirs.parameters():
            p.copy_(torch.randn(p.shape))
    check_module_parity(torch, nn.LayerNorm(shape, dtype=dtype, **kwargs), theirs, x, dtype)
    assert repr(nn.LayerNorm(shape, **kwargs)) == repr(torch.nn.LayerNorm(shape, **kwargs))


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [mg.float64, mg.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name,args", [
    ("ReLU", ()), ("GELU", ()), ("GELU", ("tanh",)), ("Tanh", ()), ("Sigmoid", ()),
    ("Softmax", (1,)), ("Softmax", (-1,)), ("LogSoftmax", (1,)), ("LogSoftmax", (0,)),
    ("Identity", ()), ("Flatten", ()),
])
def test_activation_torch_parity(dtype, name, args):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((3, 4, 2)) * 3
    ours, theirs = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
    assert repr(ours) == repr(theirs)
    check_module_parity(torch, ours, theirs, x, dtype)


@pytest.mark.torch
def test_model_state_dict_exchange():
    torch = pytest.importorskip("torch")
    ours = nn.Sequential(nn.Embedding(7, 4), nn.LayerNorm(4), nn.Linear(4, 3), nn.GELU(),
                         nn.Dropout(0.1), nn.Linear(3, 2))
    theirs = torch.nn.Sequential(torch.nn.Embedding(7, 4), torch.nn.LayerNorm(4),
                                 torch.nn.Linear(4, 3), torch.nn.GELU(), torch.nn.Dropout(0.1),
                                 torch.nn.Linear(3, 2))
    assert [(k, tuple(v.shape)) for k, v in ours.state_dict().items()] == [
        (k, tuple(v.shape)) for k, v in theirs.state_dict().items()]
    assert repr(ours) == repr(theirs)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    ours.eval()
    theirs.eval()
    idx = np.array([[1, 2], [6, 0]])
    np.testing.assert_allclose(npy(ours(mg.tensor(idx))),
                               theirs(torch.tensor(idx)).detach().numpy(), rtol=1e-4, atol=1e-5)
