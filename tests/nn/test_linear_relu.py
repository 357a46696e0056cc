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


def _linear_relu_dropout_model(device, dtype, p=0.4):
    mg.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 7), nn.ReLU(), nn.Dropout(p), nn.Linear(7, 3)).to(
        device=device, dtype=dtype)


@pytest.mark.parametrize("dtype", [mg.float64, mg.float32, mg.float16])
def test_sequential_runs_linear_relu_dropout_as_one_node_on_the_cpu(device, dtype):
    """Linear, ReLU, Dropout in training (the Keras MNIST model's hidden layer): one LinearFn
    node on the CPU that draws the Dropout's own mask; the outputs and every gradient equal the
    pair's node followed by the Dropout's node, bit for bit, for the same seed. On a GPU the
    Dropout stays a node of its own."""
    model = _linear_relu_dropout_model(device, dtype)
    x = _rand((9, 6), device, 11, dtype)
    results = []
    for triple in (True, False):
        mg.manual_seed(5)
        model.zero_grad()
        x.grad = None
        if triple:
            hidden = model[:3](x)
        else:  # the pair, then the Dropout module
            hidden = model[2](model[0]._then_relu(x))
        node = hidden.grad_fn
        if triple:
            # (float16 has no fused dropout kernel: the pair, then the composite's product)
            on_cpu = device == "cpu" and mg.fused.fused_enabled("dropout", x)
            assert type(node).__name__ == ("LinearFn" if on_cpu else
                                           "DropoutFn" if dtype != mg.float16 else "MulFn")
            assert not on_cpu or (node.relu and node.dropout[1] == 0.4)
        out = model[3](hidden)
        (out * out).sum().backward()
        results.append([to_numpy(out), to_numpy(hidden)]
                       + [to_numpy(t.grad) for t in [x, *model.parameters()]])
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
    hidden = results[0][1]
    assert (hidden == 0).mean() > 0.4 and (hidden > 0).any()  # dropped and passed values


def test_linear_relu_dropout_node_gradients():
    """gradcheck and gradgradcheck (float64) of the node for a fixed mask; its output is the
    ReLU's times keep / (1 - p); the recorded backward (create_graph) equals the plain one on
    the arrays."""
    x, w, b = _rand((5, 4), "cpu", 0), _rand((6, 4), "cpu", 1), _rand((6,), "cpu", 2)
    keep = np.random.default_rng(3).random((5, 6)) > 0.3

    def fn(*a):
        return linalg.linear(*a, relu=True, dropout=(keep, 0.3))

    y = fn(x, w, b)
    assert type(y.grad_fn).__name__ == "LinearFn" and y.grad_fn.dropout[1] == 0.3
    np.testing.assert_array_equal(
        to_numpy(y), to_numpy(F.relu(F.linear(x, w, b))) * (keep / np.float64(0.7)))
    assert mg.autograd.gradcheck(fn, [x, w, b])
    assert mg.autograd.gradgradcheck(lambda *a: fn(*a) ** 2, [x, w, b])
    gy = mg.tensor(np.random.default_rng(4).standard_normal((5, 6)))
    plain = mg.autograd.grad(fn(x, w, b), [x, w, b], gy)
    recorded = mg.autograd.grad(fn(x, w, b), [x, w, b], gy, create_graph=True)
    for p, r in zip(plain, recorded):
        np.testing.assert_array_equal(to_numpy(p), to_numpy(r))
    # operands that are not plain (x and W of two dtypes): the composite, the same numbers
    y2 = linalg.linear(x.float(), w, b, relu=True, dropout=(keep, 0.3))
    assert type(y2.grad_fn).__name__ == "MulFn"
    np.testing.assert_allclose(to_numpy(y2), to_numpy(y), rtol=1e-6)


@pytest.mark.parametrize("case", ["eval", "p0", "p1", "composite"])
def test_linear_relu_dropout_outside_the_node(case):
    """Where the Dropout does not run as part of the node: eval mode (the identity), p = 0
    (the identity), p = 1 (zeros, no mask), the composite path (its own mask): the Sequential
    gives what the layers give one by one."""
    p = {"p0": 0.0, "p1": 1.0}.get(case, 0.5)
    model = _linear_relu_dropout_model("cpu", mg.float64, p)
    if case == "eval":
        model.eval()
    x = _rand((4, 6), "cpu", 12)
    with mg.use_fused(case != "composite"):
        mg.manual_seed(7)
        out = model(x)
        mg.manual_seed(7)
        ref = model[3](model[2](model[1](model[0](x))))
    np.testing.assert_array_equal(to_numpy(out), to_numpy(ref))
    if case == "p1":
        np.testing.assert_array_equal(to_numpy(model[:3](x)), 0)


@pytest.mark.parametrize("bad", ["p", "shape", "dtype", "no relu"])
def test_linear_dropout_rejects_a_bad_mask(bad):
    x, w = _rand((2, 3), "cpu", 0), _rand((4, 3), "cpu", 1)
    keep, p = np.ones((2, 4), dtype=bool), 0.5
    if bad == "p":
        p = 1.0
    elif bad == "shape":
        keep = keep.T
    elif bad == "dtype":
        keep = keep.astype(np.float64)
    with pytest.raises(ValueError, match="dropout=.keep, p."):
        linalg.linear(x, w, relu=bad != "no relu", dropout=(keep, p))


@pytest.mark.parametrize("relu, drop", [(False, False), (True, False), (True, True)])
def test_two_dimensional_input_equals_the_folded_rows(relu, drop):
    """LinearFn takes a 2-D input as its rows directly (no reshapes): the outputs and the
    gradients equal those of the same rows given as a 3-D input, bit for bit."""
    x, w, b = _rand((5, 4), "cpu", 0), _rand((3, 4), "cpu", 1), _rand((3,), "cpu", 2)
    keep = np.random.default_rng(3).random((5, 3)) > 0.4
    x3 = x.detach().reshape(1, 5, 4).requires_grad_()
    dropout2, dropout3 = ((keep, 0.4), (keep.reshape(1, 5, 3), 0.4)) if drop else (None, None)
    y2 = linalg.linear(x, w, b, relu=relu, dropout=dropout2)
    y3 = linalg.linear(x3, w, b, relu=relu, dropout=dropout3)
    assert y2.shape == (5, 3) and type(y2.grad_fn).__name__ == "LinearFn"
    np.testing.assert_array_equal(to_numpy(y2), to_numpy(y3).reshape(5, 3))
    gy = np.random.default_rng(4).standard_normal((5, 3))
    g2 = mg.autograd.grad(y2, [x, w, b], mg.tensor(gy))
    g3 = mg.autograd.grad(y3, [x3, w, b], mg.tensor(gy.reshape(1, 5, 3)))
    np.testing.assert_array_equal(to_numpy(g2[0]), to_numpy(g3[0]).reshape(5, 4))
    for a, c in zip(g2[1:], g3[1:]):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(c))


class _ScaledWeightLinear(nn.Linear):
    @property
    def weight(self):  # (a subclass's own weight: the layer must read it, not its table)
        return self._parameters["weight"] * 2.0


def test_linear_reads_weight_and_bias_as_attributes_do():
    """Linear reads its parameter table directly only where ``self.weight``/``self.bias`` would
    find the same: a subclass's property, an instance attribute replacing a deleted parameter
    and no bias are all honoured, alone and in a Sequential's fused Linear, ReLU, Dropout."""
    x = _rand((2, 4), "cpu", 5)
    mg.manual_seed(0)
    plain = nn.Linear(4, 3).to(dtype=mg.float64)
    assert plain._weight_and_bias() == (plain.weight, plain.bias)
    no_bias = nn.Linear(4, 3, bias=False).to(dtype=mg.float64)
    assert no_bias._weight_and_bias() == (no_bias.weight, None)
    np.testing.assert_array_equal(to_numpy(no_bias(x)), to_numpy(x) @ to_numpy(no_bias.weight).T)
    scaled = _ScaledWeightLinear(4, 3).to(dtype=mg.float64)
    ref = F.linear(x, scaled.weight, scaled.bias)
    np.testing.assert_array_equal(to_numpy(scaled(x)), to_numpy(ref))
    replaced = nn.Linear(4, 3).to(dtype=mg.float64)
    new_w = mg.tensor(np.arange(12.0).reshape(3, 4))
    del replaced.weight
    replaced.weight = new_w  # a plain Tensor: an instance attribute, no longer a parameter
    assert replaced._weight_and_bias()[0] is new_w
    model = nn.Sequential(replaced, nn.ReLU(), nn.Dropout(0.5))
    mg.manual_seed(1)
    out = model(x)
    mg.manual_seed(1)
    with mg.use_fused(False):
        ref = model(x)
    np.testing.assert_array_equal(to_numpy(out), to_numpy(ref))
    ref = np.maximum(to_numpy(x) @ to_numpy(new_w).T + to_numpy(replaced.bias), 0)
    np.testing.assert_array_equal(to_numpy(model.eval()(x)), ref)
