"""Issue 19's nn names against PyTorch: activations (functions and layers), normalize,
cosine_similarity, kl_div and the two robust losses, channel dropout, ParameterList /
ParameterDict state dicts, and init.orthogonal_ / trunc_normal_."""

import numpy as np
import pytest
from conftest import to_numpy

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import nn

# (name, minigrad call, torch call): functions of one input
UNARY = [
    ("silu", lambda f, x: f.silu(x)),
    ("leaky_relu", lambda f, x: f.leaky_relu(x)),
    ("leaky_relu_0.2", lambda f, x: f.leaky_relu(x, 0.2)),
    ("elu", lambda f, x: f.elu(x)),
    ("elu_alpha", lambda f, x: f.elu(x, alpha=0.5)),
    ("softplus", lambda f, x: f.softplus(x)),
    ("softplus_beta", lambda f, x: f.softplus(x, beta=2.0, threshold=3.0)),
    ("mish", lambda f, x: f.mish(x)),
    ("hardtanh", lambda f, x: f.hardtanh(x)),
    ("hardtanh_bounds", lambda f, x: f.hardtanh(x, -0.5, 2.0)),
    ("normalize", lambda f, x: f.normalize(x)),
    ("normalize_p1_dim0", lambda f, x: f.normalize(x, p=1.0, dim=0)),
]


def _x(rng):
    a = rng.standard_normal((3, 5)) * 3
    a[0, :3] = [50.0, -50.0, 0.3]  # large values: no overflow in the branch not taken
    return a


@pytest.mark.torch
@pytest.mark.parametrize("name,call", UNARY, ids=[u[0] for u in UNARY])
def test_unary_functions_match_torch(name, call):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    a = _x(rng)
    x, t = mg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    out, ref = call(F, x), call(torch.nn.functional, t)
    np.testing.assert_allclose(to_numpy(out), ref.detach().numpy(), rtol=1e-12, atol=1e-14)
    w = rng.standard_normal(a.shape)
    (out * mg.tensor(w)).sum().backward()
    (ref * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(to_numpy(x.grad), t.grad.numpy(), rtol=1e-10, atol=1e-12)
    assert np.isfinite(to_numpy(x.grad)).all()


@pytest.mark.parametrize("name,call", UNARY, ids=[u[0] for u in UNARY])
def test_unary_functions_gradcheck(name, call):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((2, 4))
    a = np.where(np.abs(a) < 0.1, 0.3, a)  # away from the kinks at 0
    a = np.where(np.abs(np.abs(a) - 1) < 0.05, 0.7, a)  # and at hardtanh's bounds
    x = mg.tensor(a, requires_grad=True)
    assert mg.autograd.gradcheck(lambda z: call(F, z), [x])
    assert mg.autograd.gradgradcheck(lambda z: call(F, z), [x])


@pytest.mark.torch
def test_activation_layers_match_torch_and_keep_no_state():
    torch = pytest.importorskip("torch")
    a = _x(np.random.default_rng(2))
    layers = [("LeakyReLU", (0.05,)), ("SiLU", ()), ("ELU", (0.7,)), ("Softplus", (1.5, 10.0)),
              ("Mish", ()), ("Hardtanh", (-2.0, 2.0)), ("Identity", ())]
    for name, args in layers:
        m, tm = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
        np.testing.assert_allclose(to_numpy(m(mg.tensor(a))), tm(torch.tensor(a)).numpy(),
                                   rtol=1e-12, atol=1e-14, err_msg=name)
        assert list(m.state_dict()) == list(tm.state_dict()) == []


@pytest.mark.torch
@pytest.mark.parametrize("channels", [1, 3])
def test_prelu_matches_torch_and_loads_both_ways(channels):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    m = nn.PReLU(channels, dtype=mg.float64)
    tm = torch.nn.PReLU(channels, dtype=torch.float64)
    assert list(m.state_dict()) == list(tm.state_dict()) == ["weight"]
    np.testing.assert_array_equal(to_numpy(m.weight), tm.weight.detach().numpy())
    tm.weight.data = torch.tensor(rng.standard_normal(channels))
    m.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
    tm.load_state_dict({k: torch.tensor(to_numpy(v)) for k, v in m.state_dict().items()})
    a = rng.standard_normal((2, 3, 4))
    x, t = mg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    out, ref = m(x), tm(t)
    np.testing.assert_allclose(to_numpy(out), ref.detach().numpy(), rtol=1e-12)
    out.sum().backward()
    ref.sum().backward()
    np.testing.assert_allclose(to_numpy(x.grad), t.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(to_numpy(m.weight.grad), tm.weight.grad.numpy(), rtol=1e-12)
    with pytest.raises(RuntimeError, match="Mismatch of parameter numbers"):
        nn.PReLU(5)(mg.zeros(2, 3))


@pytest.mark.torch
@pytest.mark.parametrize("dim,broadcast", [(1, False), (0, False), (-1, True)])
def test_cosine_similarity_matches_torch(dim, broadcast):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    a = rng.standard_normal((3, 4))
    b = rng.standard_normal((1, 4) if broadcast else (3, 4))
    a[1] = 0.0  # a zero vector: the eps clamp, with a finite gradient
    xa, xb = mg.tensor(a, requires_grad=True), mg.tensor(b, requires_grad=True)
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    out = F.cosine_similarity(xa, xb, dim=dim)
    ref = torch.nn.functional.cosine_similarity(ta, tb, dim=dim)
    np.testing.assert_allclose(to_numpy(out), ref.detach().numpy(), rtol=1e-12, atol=1e-14)
    w = rng.standard_normal(ref.shape)
    (out * mg.tensor(w)).sum().backward()
    (ref * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(to_numpy(xa.grad), ta.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(to_numpy(xb.grad), tb.grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.torch
@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")
@pytest.mark.parametrize("reduction", ["none", "sum", "mean", "batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_matches_torch(reduction, log_target):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    logp = np.log(rng.dirichlet(np.ones(5), size=3))
    q = rng.dirichlet(np.ones(5), size=3)
    q[0, 1] = 0.0  # 0 * log 0 = 0
    target = np.log(q + 1e-3) if log_target else q
    x, y = mg.tensor(logp, requires_grad=True), mg.tensor(target, requires_grad=True)
    tx, ty = torch.tensor(logp, requires_grad=True), torch.tensor(target, requires_grad=True)
    out = F.kl_div(x, y, reduction=reduction, log_target=log_target)
    ref = torch.nn.functional.kl_div(tx, ty, reduction=reduction, log_target=log_target)
    np.testing.assert_allclose(to_numpy(out), ref.detach().numpy(), rtol=1e-12, atol=1e-14)
    out.sum().backward()
    ref.sum().backward()
    np.testing.assert_allclose(to_numpy(x.grad), tx.grad.numpy(), rtol=1e-10, atol=1e-14)
    # NOTE: at target == 0 PyTorch's target gradient is nan (d/dt of t log t); ours is finite
    seen = ~np.isnan(ty.grad.numpy())
    assert seen.sum() >= target.size - 1 and np.isfinite(to_numpy(y.grad)).all()
    np.testing.assert_allclose(to_numpy(y.grad)[seen], ty.grad.numpy()[seen], rtol=1e-10,
                               atol=1e-14)


@pytest.mark.torch
@pytest.mark.parametrize("fn,kw", [("smooth_l1_loss", {"beta": 0.5}), ("huber_loss",
                                                                        {"delta": 0.7})])
def test_robust_losses_match_torch(fn, kw):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal(10), rng.standard_normal(10)
    x, t = mg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    out = getattr(F, fn)(x, mg.tensor(b), **kw)
    ref = getattr(torch.nn.functional, fn)(t, torch.tensor(b), **kw)
    np.testing.assert_allclose(to_numpy(out), ref.detach().numpy(), rtol=1e-12)
    out.backward()
    ref.backward()
    np.testing.assert_allclose(to_numpy(x.grad), t.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("cls,shape", [(nn.Dropout1d, (4, 6, 50)), (nn.Dropout2d, (4, 6, 5, 5)),
                                       (nn.Dropout1d, (6, 50)), (nn.Dropout2d, (6, 5, 5))])
def test_channel_dropout_zeroes_whole_channels(cls, shape):
    mg.manual_seed(0)
    layer = cls(p=0.5)
    x = mg.ones(*shape, requires_grad=True)
    y = to_numpy(layer(x))
    spatial = 1 if shape[-1] == 50 and len(shape) in (2, 3) else 2
    flat = y.reshape(y.shape[:-spatial] + (-1,))
    per_channel = flat.reshape(-1, flat.shape[-1])
    for row in per_channel:  # each channel all zero or all 1/(1-p)
        assert len(set(row.tolist())) == 1 and row[0] in (0.0, 2.0)
    assert 0 < (per_channel[:, 0] == 0).sum() < len(per_channel)
    layer(x).sum().backward()
    layer.eval()
    np.testing.assert_array_equal(to_numpy(layer(x)), np.ones(shape))
    with pytest.raises(RuntimeError, match="Expected"):
        cls()(mg.ones(*((2,) * (len(shape) + 2))))


@pytest.mark.torch
def test_parameter_list_and_dict_state_dicts_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    arrays = [rng.standard_normal((2, 3)), rng.standard_normal(4)]

    class Ours(nn.Module):
        def __init__(self):
            super().__init__()
            self.plist = nn.ParameterList([nn.Parameter(mg.tensor(a)) for a in arrays])
            self.pdict = nn.ParameterDict({"scale": nn.Parameter(mg.ones(3)),
                                           "shift": mg.zeros(3)})

    class Theirs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.plist = torch.nn.ParameterList(
                [torch.nn.Parameter(torch.tensor(a)) for a in arrays])
            self.pdict = torch.nn.ParameterDict({"scale": torch.nn.Parameter(torch.ones(3)),
                                                 "shift": torch.zeros(3)})

    m, tm = Ours(), Theirs()
    assert list(m.state_dict()) == list(tm.state_dict())
    assert len(list(m.parameters())) == 4
    tm.pdict["scale"].data.fill_(5.0)
    m.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
    assert to_numpy(m.pdict["scale"]).tolist() == [5.0] * 3
    tm.load_state_dict({k: torch.tensor(to_numpy(v)) for k, v in m.state_dict().items()})
    m.plist.append(mg.zeros(1))
    assert len(m.plist) == 3 and isinstance(m.plist[-1], nn.Parameter)
    assert "scale" in m.pdict and list(m.pdict.keys()) == ["scale", "shift"]


def test_orthogonal_init_is_orthogonal_and_follows_the_seed():
    for shape in [(4, 6), (6, 4), (3, 2, 2)]:
        w = nn.init.orthogonal_(mg.empty(*shape), gain=2.0)
        flat = to_numpy(w).reshape(shape[0], -1)
        small = flat @ flat.T if shape[0] <= flat.shape[1] else flat.T @ flat
        np.testing.assert_allclose(small, 4.0 * np.eye(len(small)), atol=1e-5)
    mg.manual_seed(3)
    a = to_numpy(nn.init.orthogonal_(mg.empty(3, 3)))
    mg.manual_seed(3)
    np.testing.assert_array_equal(a, to_numpy(nn.init.orthogonal_(mg.empty(3, 3))))
    with pytest.raises(ValueError, match="2 or more"):
        nn.init.orthogonal_(mg.empty(3))


def test_trunc_normal_stays_in_bounds_with_the_right_spread():
    mg.manual_seed(0)
    w = to_numpy(nn.init.trunc_normal_(mg.empty(20000), mean=0.5, std=1.0, a=-1.0, b=2.0))
    assert w.min() >= -1.0 and w.max() <= 2.0
    # the mean of N(0.5, 1) truncated symmetrically around its mean stays 0.5
    assert abs(w.mean() - 0.5) < 0.03
