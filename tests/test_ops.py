"""Every op in the table (tests/op_cases.py): forward vs NumPy, gradcheck in float64, double
backward, float32 kept, 0-d and empty inputs, and PyTorch parity when torch is installed."""

import numpy as np
import pytest
from conftest import to_numpy
from op_cases import OP_CASES

import minigrad as mg

ids = [c.name for c in OP_CASES]


@pytest.mark.parametrize("case", OP_CASES, ids=ids)
def test_forward_matches_numpy(case, device):
    rng = np.random.default_rng(1)
    arrays = case.arrays(rng)
    inputs = [mg.tensor(a, device=device) for a in arrays]
    out = case.fn(*inputs)
    np.testing.assert_allclose(to_numpy(out), case.ref(*arrays), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", OP_CASES, ids=ids)
def test_grad(case, device):
    inputs = case.make_inputs(device, dtype="float64", requires_grad=True)
    assert mg.autograd.gradcheck(case.fn, inputs, atol=case.atol)


@pytest.mark.parametrize("case", [c for c in OP_CASES if c.double], ids=lambda c: c.name)
def test_double_backward(case, device):
    inputs = case.make_inputs(device, dtype="float64", requires_grad=True)
    assert mg.autograd.gradgradcheck(case.fn, inputs, atol=case.atol)


@pytest.mark.parametrize("case", OP_CASES, ids=ids)
def test_float32_kept(case, device):
    inputs = case.make_inputs(device, dtype="float32", requires_grad=True)
    out = case.fn(*inputs)
    assert out.dtype == mg.float32
    out.sum().backward()
    for t in inputs:
        assert t.grad is not None and t.grad.dtype == mg.float32
        assert t.grad.shape == t.shape


@pytest.mark.parametrize("case", [c for c in OP_CASES if c.elementwise], ids=lambda c: c.name)
def test_zero_dim(case, device):
    shapes = [() for _ in case.shapes]
    inputs = case.make_inputs(device, shapes=shapes)
    out = case.fn(*inputs)
    assert out.shape == ()
    assert mg.autograd.gradcheck(case.fn, inputs)


@pytest.mark.parametrize("case", [c for c in OP_CASES if c.elementwise], ids=lambda c: c.name)
def test_empty(case, device):
    shapes = [(0, 3) if len(s) else () for s in case.shapes]
    inputs = case.make_inputs(device, shapes=shapes)
    out = case.fn(*inputs)
    assert out.numel() == 0
    out.sum().backward()
    for t in inputs:
        assert t.grad.shape == t.shape


@pytest.mark.torch
@pytest.mark.parametrize("case", [c for c in OP_CASES if c.torch_fn], ids=lambda c: c.name)
def test_matches_torch(case):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    arrays = case.arrays(rng)
    ours = [mg.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, ref = case.fn(*ours), case.torch_fn(*theirs)
    np.testing.assert_allclose(to_numpy(out), ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    w = rng.standard_normal(ref.shape)
    (out * mg.tensor(w)).sum().backward()
    (ref * torch.tensor(w)).sum().backward()
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(to_numpy(a.grad), b.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_mm_and_bmm_take_exactly_2d_and_3d_as_pytorch():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 4, 3)), rng.normal(size=(2, 3, 5))
    np.testing.assert_allclose(mg.bmm(mg.tensor(a), mg.tensor(b)).numpy(), a @ b)
    np.testing.assert_allclose(mg.mm(mg.tensor(a[0]), mg.tensor(b[0])).numpy(), a[0] @ b[0])
    x = mg.tensor(a, requires_grad=True)
    assert mg.autograd.gradcheck(lambda t: mg.bmm(t, mg.tensor(b)), [x])
    with pytest.raises(RuntimeError, match="3-D"):
        mg.bmm(mg.tensor(a[0]), mg.tensor(b[0]))
    with pytest.raises(RuntimeError, match="batch sizes differ"):
        mg.bmm(mg.tensor(a), mg.tensor(b[:1]))  # matmul would broadcast; bmm must not
    with pytest.raises(RuntimeError, match="matrices"):
        mg.mm(mg.tensor(a), mg.tensor(b))
    with pytest.raises(RuntimeError, match="matrices"):
        mg.mm(mg.tensor(a[0]), mg.tensor(b[0, :, 0]))


def test_ops_namespace_exports_only_public_names():
    for helper in ("lift", "sum_to", "cast", "to_device", "getitem", "indexing"):
        assert not hasattr(mg, helper), helper
    for name in mg.ops.__all__:
        assert callable(getattr(mg, name)), name


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_sigmoid_and_tanh_gradients_are_one_node(name):
    """The gradient of sigmoid and tanh from their output is one node (PyTorch's
    sigmoid_backward / tanh_backward), the same numbers as the formula written with ops, and
    differentiable again (gradgradcheck in test_double_backward)."""
    rng = np.random.default_rng(0)
    x = mg.tensor(rng.standard_normal((4, 5)).astype(np.float32), requires_grad=True)
    gy = mg.tensor(rng.standard_normal((4, 5)).astype(np.float32), requires_grad=True)
    y = getattr(x, name)()
    (gx,) = mg.autograd.grad(y, x, gy, create_graph=True)
    assert gx.grad_fn.name == ("SigmoidBackward" if name == "sigmoid" else "TanhBackward")
    yd, gyd = y.data, gy.data
    expected = gyd * yd * (1 - yd) if name == "sigmoid" else gyd * (1 - yd * yd)
    np.testing.assert_array_equal(gx.data, expected)
    # its own gradients: with respect to gy and, through y, to x
    (ggy, gxx) = mg.autograd.grad(gx.sum(), [gy, x])
    d1 = yd * (1 - yd) if name == "sigmoid" else 1 - yd * yd
    np.testing.assert_allclose(ggy.data, d1, rtol=1e-6)
    dy = gyd * (1 - 2 * yd) if name == "sigmoid" else -2 * gyd * yd
    np.testing.assert_allclose(gxx.data, dy * d1, rtol=1e-5, atol=1e-6)
