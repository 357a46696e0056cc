"""The backward engine: accumulation, graph freeing, long chains, hooks, mg.grad, higher order."""

import numpy as np
import pytest
from conftest import to_numpy
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg


def test_gradients_accumulate_across_backward_calls(device):
    x = mg.tensor([1.0, 2.0], device=device, requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(to_numpy(x.grad), [3 + 2, 3 + 4])


def test_tensor_used_twice_gets_the_sum(device):
    x = mg.tensor(2.0, device=device, requires_grad=True)
    y = x * x + x  # x feeds three places
    y.backward()
    assert x.grad.item() == pytest.approx(5.0)


def test_shared_gradient_buffers_are_not_aliased():
    # add passes the same gy to both inputs; each .grad must own its memory
    a = mg.ones(3, requires_grad=True)
    b = mg.ones(3, requires_grad=True)
    (a + b).sum().backward()
    assert a.grad is not b.grad and a.grad.grad_fn is None and not a.grad.requires_grad
    with mg.no_grad():
        a.grad.mul_(10)
    np.testing.assert_array_equal(b.grad.numpy(), [1, 1, 1])
    g = mg.ones(3)
    c = mg.ones(3, requires_grad=True)
    (c * 1).backward(g)
    with mg.no_grad():
        c.grad.mul_(5)
    np.testing.assert_array_equal(g.numpy(), [1, 1, 1])


def test_second_backward_through_freed_graph_raises():
    x = mg.tensor([1.0], requires_grad=True)
    y = (x.exp() * 2).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()


def test_retain_graph_allows_second_backward():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 8.0])


def test_ten_thousand_node_chain_is_iterative():
    x = mg.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.backward()
    assert x.grad.item() == pytest.approx(1.0001**10_000, rel=1e-3)


def test_backward_needs_gradient_for_non_scalar():
    x = mg.ones(2, 2, requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar outputs"):
        (x * 2).backward()
    (x * 2).backward(mg.ones(2, 2))
    assert x.grad.shape == (2, 2)
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        (x * 2).backward(mg.ones(3))


def test_backward_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        mg.ones(2).sum().backward()


def test_no_grad_and_enable_grad():
    x = mg.ones(2, requires_grad=True)
    with mg.no_grad():
        y = x * 2
        with mg.enable_grad():
            z = x * 2
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad

    @mg.no_grad()
    def f(t):
        return t * 3

    assert not f(x).requires_grad
    assert mg.is_grad_enabled()


def test_grad_function_and_create_graph():
    x = mg.tensor(3.0, requires_grad=True)
    y = x**3
    (g,) = mg.grad(y, x, create_graph=True)
    assert g.item() == pytest.approx(27.0)
    (g2,) = mg.grad(g, x)
    assert g2.item() == pytest.approx(18.0)
    assert x.grad is None  # mg.grad leaves .grad alone


def test_double_backward_via_backward():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = (x**3).sum()
    (g,) = mg.grad(y, x, create_graph=True)
    g.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 12.0])


def test_grad_unused_input():
    x = mg.tensor(1.0, requires_grad=True)
    z = mg.tensor(1.0, requires_grad=True)
    with pytest.raises(RuntimeError, match="not have been used"):
        mg.grad(x * 2, [x, z])
    gx, gz = mg.grad(x * 2, [x, z], allow_unused=True)
    assert gx.item() == 2.0 and gz is None


def test_grad_of_intermediate():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2
    y = (h * h).sum()
    (gh,) = mg.grad(y, h)
    np.testing.assert_allclose(gh.numpy(), [4.0, 8.0])


def test_register_hook_modifies_gradient_and_can_be_removed():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    h = x * 1
    seen = []
    handle = h.register_hook(lambda g: seen.append(g.numpy().copy()) or g * 10)
    h.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [10.0, 10.0])
    assert len(seen) == 1
    handle.remove()
    x.grad = None
    (x * 1).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 1.0])


def test_leaf_hook_sees_total_gradient_once():
    x = mg.tensor([1.0], requires_grad=True)
    calls = []
    x.register_hook(lambda g: calls.append(g.item()))
    (x * 2 + x * 3).sum().backward()
    assert calls == [5.0]


def test_retain_grad_on_intermediate():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2
    h.retain_grad()
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad.numpy(), [4.0, 8.0])


def test_gradcheck_detects_a_wrong_gradient():
    class BadSquareFn(mg.autograd.Function):
        def forward(self, x):
            return x * x

        def backward(self, gy):
            return gy * self.inputs[0]  # missing the factor 2

    x = mg.randn(3, dtype=mg.float64, requires_grad=True)
    with pytest.raises(AssertionError, match="gradcheck failed"):
        mg.autograd.gradcheck(lambda t: BadSquareFn.apply(t), [x])
    assert not mg.autograd.gradcheck(lambda t: BadSquareFn.apply(t), [x], raise_exception=False)


def test_gradcheck_requires_float64():
    x = mg.randn(3, requires_grad=True)
    with pytest.raises(ValueError, match="float64"):
        mg.autograd.gradcheck(lambda t: t * 2, [x])


def test_float32_graph_keeps_every_intermediate_float32():
    """No silent float64: record every tensor the graph makes, forward and backward."""
    seen = []
    real_make = mg.Tensor._make

    def spy(data, requires_grad=False):
        t = real_make(data, requires_grad)
        if data.dtype.kind == "f":
            seen.append(data.dtype)
        return t

    x = mg.randn(4, 5, requires_grad=True)
    w = mg.randn(5, 3, requires_grad=True)
    mg.Tensor._make = spy
    try:
        h = (x @ w).relu() * 0.5 + 1
        h = h.gelu() - h.sigmoid() / 3 + h.tanh() ** 2
        loss = h.log_softmax(dim=1).mean() + h.softmax(dim=0).var() + h.logsumexp(dim=1).sum()
        loss = loss + (h.exp().sqrt().clamp(0.1, 10).max(dim=1)[0]).std()
        loss.backward()
    finally:
        mg.Tensor._make = real_make
    assert seen and all(d == np.float32 for d in seen), set(seen)
    assert x.grad.dtype == w.grad.dtype == np.float32


def test_python_scalars_keep_dtype():
    for dt in (mg.float16, mg.float32, mg.float64):
        x = mg.ones(2, dtype=dt)
        for y in (x + 1, 2 * x, x / 3, x**2, 1.5 - x, x * True):
            assert y.dtype == dt
    i = mg.tensor([1, 2])
    assert (i + 1).dtype == mg.int64
    assert (i * 1.5).dtype == mg.float32
    assert (i / 2).dtype == mg.float32
    assert (mg.ones(2) + i).dtype == mg.float32  # float beats int without widening
    assert (mg.ones(2) + mg.ones(2, dtype=mg.float64)).dtype == mg.float64


_shapes = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3)


@settings(max_examples=40, deadline=None)
@given(shapes=_shapes, op=st.sampled_from(["add", "sub", "mul", "div", "maximum", "where"]))
def test_broadcasting_forward_and_gradient_shapes(shapes, op):
    s0, s1 = shapes.input_shapes
    rng = np.random.default_rng(0)
    a = np.asarray(rng.standard_normal(s0) + 3)
    b = np.asarray(rng.standard_normal(s1) + 3)
    ta = mg.tensor(a, requires_grad=True)
    tb = mg.tensor(b, requires_grad=True)
    fns = {
        "add": (lambda p, q: p + q, np.add),
        "sub": (lambda p, q: p - q, np.subtract),
        "mul": (lambda p, q: p * q, np.multiply),
        "div": (lambda p, q: p / q, np.divide),
        "maximum": (mg.maximum, np.maximum),
        "where": (lambda p, q: mg.where(p > 3, p, q), lambda p, q: np.where(p > 3, p, q)),
    }
    f, ref = fns[op]
    out = f(ta, tb)
    np.testing.assert_allclose(out.numpy() if not out.requires_grad else out.detach().numpy(),
                               ref(a, b))
    assert out.shape == shapes.result_shape
    assert mg.autograd.gradcheck(f, [ta, tb])
    out.sum().backward()
    assert ta.grad.shape == s0 and tb.grad.shape == s1


@settings(max_examples=25, deadline=None)
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4),
       data=st.data())
def test_reductions_over_random_dims(shape, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    keepdim = data.draw(st.booleans())
    a = np.asarray(np.random.default_rng(1).standard_normal(shape))
    x = mg.tensor(a, requires_grad=True)
    np.testing.assert_allclose(x.sum(dim, keepdim).detach().numpy(), a.sum(dim, keepdims=keepdim))
    np.testing.assert_allclose(x.mean(dim, keepdim).detach().numpy(),
                               a.mean(dim, keepdims=keepdim))
    assert mg.autograd.gradcheck(lambda t: t.softmax(dim) * t, [x])


def test_viz_to_dot_describes_the_graph():
    x = mg.ones(2, 3, requires_grad=True)
    w = mg.ones(3, 4, requires_grad=True)
    dot = mg.viz.to_dot((x @ w).relu().sum(), params={"w": w})
    assert dot.startswith("digraph minigrad {") and dot.rstrip().endswith("}")
    for word in ("Matmul", "Relu", "Sum", "2x3 float32", "w\\n3x4 float32", "->"):
        assert word in dot


def test_gradient_terms_summed_in_place_never_touch_shared_buffers():
    # add's backward hands the same gradient array to both of its inputs; w then collects more
    # terms: the sum is made in a buffer of the engine's own (in place after its first term),
    # and v's gradient, which is that shared array, stays as it was
    w = mg.tensor(np.zeros(4, np.float32), requires_grad=True)
    v = mg.tensor(np.zeros(4, np.float32), requires_grad=True)
    h = w * 1.0  # a non-leaf used several times: its terms are summed the same way
    loss = (w + v).sum() + (w * 2.0).sum() + (w * 3.0).sum() + (h + h).sum() + (h * 5.0).sum()
    loss.backward()
    np.testing.assert_array_equal(v.grad.numpy(), np.ones(4, np.float32))
    np.testing.assert_array_equal(w.grad.numpy(), np.full(4, 13.0, np.float32))


def test_gradient_terms_under_create_graph_stay_differentiable():
    x = mg.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = (x * x).sum() + (x * x * x).sum() + (x * 4.0).sum()
    (g,) = mg.autograd.grad(y, [x], create_graph=True)
    xs = x.detach().numpy()
    assert g.requires_grad
    np.testing.assert_allclose(g.detach().numpy(), 2 * xs + 3 * xs ** 2 + 4)
    (gg,) = mg.autograd.grad(g.sum(), [x])
    np.testing.assert_allclose(gg.numpy(), 2 + 6 * xs)


def test_backward_frees_each_input_once_its_node_is_done():
    # the engine's loop must not keep the previous node's input alive into the next node's
    # backward (a conv's output held into the next layer's backward is a step's peak)
    import gc
    import weakref

    seen = []

    class Probe(mg.autograd.Function):
        def forward(self, x):
            return x * 1

        def backward(self, gy):
            gc.collect()
            seen.append(ref() is None)
            return gy

    x = mg.tensor(np.ones((4, 4), np.float32), requires_grad=True)
    h = Probe.apply(x * 2.0)
    ref = weakref.ref(h.data)  # the array: a name left over may hold it, not the tensor
    loss = (h * 3.0).sum()  # MulFn(h, 3) holds h; its backward runs just before Probe's
    del h
    loss.backward()
    assert seen == [True]


@pytest.mark.parametrize("op", ["relu", "tanh", "sigmoid", "exp"])
def test_ops_that_need_only_their_output_free_their_input(op):
    # relu, tanh, sigmoid, exp differentiate from their output: the node holds of its input
    # only its place in the graph, so the input's memory goes once nothing else holds it
    import weakref

    x = mg.tensor(np.linspace(-2, 2, 12).reshape(3, 4), requires_grad=True)
    h = x * 3.0
    ref = weakref.ref(h.data)
    y = getattr(h, op)()
    del h
    assert ref() is None
    y.sum().backward()
    xs = x.detach().numpy() * 3.0
    want = {"relu": (xs > 0) * 3.0, "tanh": (1 - np.tanh(xs) ** 2) * 3.0,
            "sigmoid": 3.0 / (2 + np.exp(xs) + np.exp(-xs)), "exp": np.exp(xs) * 3.0}[op]
    np.testing.assert_allclose(x.grad.numpy(), want, rtol=1e-12)


def test_hooks_and_retained_gradients_of_a_freed_input_still_run():
    # PyTorch keeps a non-leaf tensor's hooks on its node: dropping the tensor after
    # registering them does not lose them, even when its consumer keeps no inputs (relu)
    x = mg.tensor(np.array([-1.0, 2.0]), requires_grad=True)
    h = x * 2.0
    seen = []
    h.register_hook(lambda g: seen.append(g.numpy().copy()))
    k = x * 5.0
    k.retain_grad()
    y = h.relu() + k.relu()
    keep = k
    del h, k
    y.sum().backward()
    np.testing.assert_array_equal(seen[0], [0.0, 1.0])
    np.testing.assert_array_equal(keep.grad.numpy(), [0.0, 1.0])
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 7.0])


@pytest.mark.parametrize("op", ["relu", "tanh", "sigmoid", "exp"])
def test_ops_that_need_only_their_output_differentiate_twice(op):
    x = mg.tensor(np.array([[-1.3, 0.4], [2.2, -0.7]]), requires_grad=True)
    assert mg.autograd.gradcheck(lambda t: getattr(t * 1.5, op)(), (x,))
    assert mg.autograd.gradgradcheck(lambda t: getattr(t * 1.5, op)(), (x,))


def test_an_output_without_gradient_gets_a_read_only_zero_stand_in():
    from minigrad.autograd import Function, is_zero_grad

    seen = {}

    class TwoOutputs(Function):
        def forward(self, x):
            return x * 2, x * 3

        def backward(self, g1, g2):
            seen["g2"] = g2.data
            return g1 * 2 + g2 * 3

    x = mg.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    y1, _ = TwoOutputs.apply(x)
    y1.sum().backward()
    g2 = seen["g2"]
    assert is_zero_grad(g2) and g2.shape == (2, 3) and not g2.flags.writeable
    assert not g2.any()
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 3), 2.0))
    assert not is_zero_grad(np.zeros((2, 3))) and not is_zero_grad(np.zeros(()))

    # a leaf whose whole gradient is the stand-in passed through gets memory of its own
    a = mg.tensor(np.ones((2, 2)), requires_grad=True)
    first, _ = a.chunk(2, dim=0)
    (first * 5).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [[5.0, 5.0], [0.0, 0.0]])
    a.grad.data += 1  # writeable
