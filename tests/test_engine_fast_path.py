"""The plain backward's short cuts in the engine (minigrad/autograd.py): the walk of a chain of
nodes, the leaf whose gradient becomes its ``.grad`` as it is, the seed of a scalar loss, and the
grad mode set around the pass. Each must give exactly what the general path gives."""

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import autograd, nn
from minigrad.autograd import Function


def _mlp_loss():
    mg.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 4))
    x = mg.randn(4, 8)
    return model, F.cross_entropy(model(x), mg.tensor([0, 1, 2, 3]))


def _graphs():
    """(name, output) pairs: chains and graphs that fork in different places."""
    x = mg.randn(3, 4, dtype=mg.float64, requires_grad=True)
    w = mg.randn(4, 4, dtype=mg.float64, requires_grad=True)
    h = (x @ w).relu()
    yield "chain", (h.exp() * 2).sum()
    yield "chain of one node", x.sum()
    yield "the same producer twice", (h * h).sum()
    yield "diamond", (h * 2 + h.tanh()).sum()
    yield "fork below a chain", ((x @ w) + (x * 3) @ w).relu().sum().exp()
    yield "mlp", _mlp_loss()[1]


@pytest.mark.parametrize("case", range(6))
def test_chain_walk_gives_the_search_order(case):
    name, out = list(_graphs())[case]
    # the same root twice: the general search (which visits it once), never the chain walk
    walked = autograd._topo_order([out.grad_fn])
    searched = autograd._topo_order([out.grad_fn, out.grad_fn])
    assert [id(fn) for fn in walked] == [id(fn) for fn in searched], name


def test_chain_walk_of_a_freed_graph_raises():
    model, loss = _mlp_loss()
    loss.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        loss.backward()


def test_plain_leaf_gradients_match_the_general_path(monkeypatch):
    # the short cut (an empty .grad, no hooks) against _finish_leaf, which a hook that
    # changes nothing sends every leaf through
    finished = []
    finish = autograd._finish_leaf
    # (no post-accumulate hooks anywhere, whatever earlier tests left alive: they would send
    # every leaf through _finish_leaf)
    monkeypatch.setattr(autograd, "_POST_ACCUMULATE_HOOKS", {})
    monkeypatch.setattr(autograd, "_finish_leaf", lambda leaf, *a: finished.append(leaf)
                        or finish(leaf, *a))
    model, loss = _mlp_loss()
    loss.backward()
    assert finished == []
    fast = [p.grad for p in model.parameters()]
    model, loss = _mlp_loss()
    for p in model.parameters():
        p.register_hook(lambda g: None)
    loss.backward()
    assert len(finished) == 4
    for g, p in zip(fast, model.parameters()):
        assert g.data.tobytes() == p.grad.data.tobytes() and g.dtype == p.grad.dtype
        assert g.grad_fn is None and not g.requires_grad
        assert g.data.flags.writeable and g.data.base is None


def test_leaf_gradient_that_is_a_view_or_taken_is_copied():
    x = mg.ones(3, requires_grad=True)
    x.sum().backward()  # gy broadcast to x's shape: a read-only view
    assert x.grad.data.flags.writeable and 0 not in x.grad.data.strides
    with mg.no_grad():
        x.grad.mul_(2)
    np.testing.assert_array_equal(x.grad.numpy(), [2, 2, 2])
    s = mg.tensor(1.5, requires_grad=True)  # a leaf output: its seed, copied
    seed = mg.tensor(4.0)
    s.backward(seed)
    assert s.grad.data is not seed.data and s.grad.item() == 4.0
    with mg.no_grad():
        s.grad.mul_(0)
    assert seed.item() == 4.0


def test_second_backward_adds_into_the_existing_grad():
    x = mg.randn(4, 8)
    w = mg.randn(3, 8, requires_grad=True)
    F.linear(x, w).relu().sum().backward()
    once, buffer = w.grad.numpy().copy(), w.grad.data
    F.linear(x, w).relu().sum().backward()  # .grad is set: added in place (_finish_leaf)
    assert w.grad.data is buffer
    np.testing.assert_array_equal(w.grad.numpy(), once + once)


@pytest.mark.parametrize("shape", [(), (1,), (1, 1)])
@pytest.mark.parametrize("dtype", [mg.float32, mg.float64, mg.float16])
def test_scalar_seed(shape, dtype):
    x = mg.zeros(shape, dtype=dtype, requires_grad=True)
    (x * 3).backward()
    assert x.grad.dtype == dtype and x.grad.shape == shape
    assert x.grad.numpy().tobytes() == np.full(shape, 3, dtype=dtype).tobytes()
    y = mg.zeros(shape, dtype=dtype, requires_grad=True)
    y.backward()  # the seed itself reaches the leaf
    assert y.grad.numpy().tobytes() == np.ones(shape, dtype=dtype).tobytes()
    assert y.grad.data.flags.writeable


def test_non_scalar_without_gradient_still_raises():
    x = mg.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="only for scalar outputs"):
        (x * 2).backward()
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        (x * 2).backward(mg.ones(3))


class _ModeSpyFn(Function):
    """y = x; records the grad mode its backward runs under, or raises there."""

    modes: list = []
    fail = False

    def forward(self, x):
        return x.copy()

    def backward(self, gy):
        _ModeSpyFn.modes.append(mg.is_grad_enabled())
        if _ModeSpyFn.fail:
            raise ValueError("backward failed")
        return gy


def test_grad_mode_during_and_after_the_pass(monkeypatch):
    monkeypatch.setattr(_ModeSpyFn, "modes", [])
    x = mg.ones(2, requires_grad=True)
    _ModeSpyFn.apply(x).sum().backward()
    _ModeSpyFn.apply(x).sum().backward(create_graph=True)
    assert _ModeSpyFn.modes == [False, True] and mg.is_grad_enabled()
    y = _ModeSpyFn.apply(x).sum()
    with mg.no_grad():
        y.backward(create_graph=True)
        assert not mg.is_grad_enabled()
    monkeypatch.setattr(_ModeSpyFn, "fail", True)
    with pytest.raises(ValueError, match="backward failed"):
        _ModeSpyFn.apply(x).sum().backward()
    assert mg.is_grad_enabled()  # restored after the error
