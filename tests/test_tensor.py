"""Tensor creation, attributes, conversions, in-place rules, DLPack and printing."""

import numpy as np
import pytest
from conftest import to_numpy

import minigrad as mg


def test_creation_functions(device):
    assert mg.zeros(2, 3, device=device).shape == (2, 3)
    assert mg.zeros((2, 3), device=device).dtype == mg.float32
    assert to_numpy(mg.ones(2, device=device)).tolist() == [1.0, 1.0]
    assert to_numpy(mg.full((2,), 7, device=device)).tolist() == [7, 7]
    assert mg.full((2,), 7).dtype == mg.int64
    assert mg.full((2,), 0.5).dtype == mg.float32
    assert mg.empty(3, device=device).shape == (3,)
    assert to_numpy(mg.arange(5, device=device)).tolist() == [0, 1, 2, 3, 4]
    assert mg.arange(5).dtype == mg.int64
    assert mg.arange(0, 1, 0.25).dtype == mg.float32
    np.testing.assert_allclose(to_numpy(mg.linspace(0, 1, 5, device=device)), np.linspace(0, 1, 5))
    np.testing.assert_array_equal(to_numpy(mg.eye(3, device=device)), np.eye(3))
    x = mg.randn(4, 5, device=device)
    assert x.dtype == mg.float32 and x.device == mg.Device(device)
    r = mg.rand(1000, device=device)
    assert 0 <= float(r.min()) and float(r.max()) < 1
    i = mg.randint(0, 10, (100,), device=device)
    assert i.dtype == mg.int64 and 0 <= int(i.min()) and int(i.max()) < 10
    assert mg.zeros_like(x).shape == x.shape and mg.ones_like(x).dtype == x.dtype
    assert mg.randn(2, dtype=mg.float64).dtype == mg.float64
    assert sorted(to_numpy(mg.randperm(6)).tolist()) == list(range(6))


def test_tensor_dtype_inference():
    assert mg.tensor([1, 2]).dtype == mg.int64
    assert mg.tensor([1.0, 2]).dtype == mg.float32
    assert mg.tensor(True).dtype == mg.bool
    assert mg.tensor(np.zeros(2)).dtype == mg.float64  # arrays keep theirs, like PyTorch
    assert mg.tensor(np.float64(1.0)).dtype == mg.float64
    assert mg.tensor([1, 2], dtype="float16").dtype == mg.float16
    with pytest.raises(TypeError, match="not supported"):
        mg.tensor([1], dtype=np.complex64)


def test_tensor_copies_but_from_numpy_shares():
    a = np.zeros(3, dtype=np.float32)
    t = mg.tensor(a)
    f = mg.from_numpy(a)
    a[0] = 5
    assert t.numpy()[0] == 0 and f.numpy()[0] == 5


def test_attributes_and_conversions():
    x = mg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    assert x.ndim == 2 and x.dim() == 2 and x.numel() == 4 and x.size(1) == 2 and len(x) == 2
    assert x.is_leaf and (x * 2).is_leaf is False
    assert x.T.tolist() == [[1.0, 3.0], [2.0, 4.0]]
    assert x[0, 1].item() == 2.0
    assert x.detach().requires_grad is False
    with pytest.raises(RuntimeError, match="requires grad"):
        x.numpy()
    assert x.detach().numpy().dtype == np.float32
    assert x.double().dtype == mg.float64 and x.half().dtype == mg.float16
    assert x.long().dtype == mg.int64 and x.bool().dtype == mg.bool
    assert x.to(mg.float64).dtype == mg.float64
    assert x.to("cpu") is x
    assert float(mg.tensor(2.5)) == 2.5 and int(mg.tensor(3)) == 3
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(mg.ones(2))
    with pytest.raises(RuntimeError, match="cannot be converted to Scalar"):
        mg.ones(2).item()
    assert np.asarray(mg.ones(2)).tolist() == [1.0, 1.0]


def test_cast_is_differentiable():
    x = mg.tensor([1.0, 2.0], dtype=mg.float64, requires_grad=True)
    y = (x.float() * 3).sum()
    y.backward()
    assert x.grad.dtype == mg.float64
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


def test_requires_grad_rules():
    with pytest.raises(RuntimeError, match="floating point"):
        mg.tensor([1, 2], requires_grad=True)
    x = mg.ones(2, requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad_(False)
    assert (mg.ones(2).requires_grad_() * 1).requires_grad


def test_inplace_on_leaf_requiring_grad_is_refused_outside_no_grad():
    w = mg.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="in-place"):
        w.add_(1)
    with pytest.raises(RuntimeError, match="in-place"):
        w[0] = 3
    with mg.no_grad():
        w.add_(1).mul_(2).sub_(mg.ones(3), alpha=0.5).div_(2)
        w[0] = 9
    np.testing.assert_allclose(w.detach().numpy(), [9.0, 1.75, 1.75])
    t = mg.zeros(4)
    t[mg.tensor([1, 3])] = 1
    t.masked_fill_(t > 0, 5).clamp_(max=4)
    assert t.tolist() == [0, 4, 0, 4]
    assert mg.zeros(3).fill_(2).tolist() == [2, 2, 2]
    assert mg.zeros(2).copy_(mg.tensor([3.0, 4.0])).tolist() == [3.0, 4.0]


def test_comparisons_give_bool_without_grad():
    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    for r in (x > 2, x >= 2, x < 2, x <= 2, x == 2, x != 2):
        assert r.dtype == mg.bool and not r.requires_grad
    assert (x > 1.5).tolist() == [False, True, True]
    assert ((x > 1) & (x < 3)).tolist() == [False, True, False]
    assert (~(x > 1)).tolist() == [True, False, False]
    assert x.argmax().item() == 2 and x.argmin(dim=0).item() == 0
    assert {x: 1}[x] == 1  # still hashable


def test_numpy_operand_on_the_left_gives_tensor():
    x = mg.ones(2, requires_grad=True)
    y = np.array([1.0, 2.0], dtype=np.float32) * x
    assert isinstance(y, mg.Tensor) and y.requires_grad


def test_dlpack_roundtrip_with_numpy():
    x = mg.arange(6).reshape(2, 3)
    a = np.from_dlpack(x)
    assert a.tolist() == [[0, 1, 2], [3, 4, 5]]
    y = mg.from_dlpack(np.arange(4.0))
    assert y.dtype == mg.float64 and y.tolist() == [0, 1, 2, 3]


@pytest.mark.torch
def test_dlpack_roundtrip_with_torch():
    torch = pytest.importorskip("torch")
    t = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    x = mg.from_dlpack(t)
    t[0, 0] = 42  # shares memory
    assert x.tolist()[0][0] == 42
    back = torch.from_dlpack(mg.ones(2, 2) * 3)
    assert back.sum().item() == 12


def test_repr_like_pytorch():
    assert repr(mg.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert "requires_grad=True" in repr(mg.ones(1, requires_grad=True))
    assert "grad_fn=<MulFn>" in repr(mg.ones(1, requires_grad=True) * 2)
    assert "dtype=minigrad.float64" in repr(mg.ones(1, dtype=mg.float64))


def test_shape_errors_are_clear():
    x = mg.ones(2, 3)
    with pytest.raises(RuntimeError, match="invalid for input of size 6"):
        x.reshape(4, 2)
    with pytest.raises(RuntimeError, match="cannot be multiplied"):
        x @ mg.ones(2, 3)
    with pytest.raises(RuntimeError, match="sizes of tensors must match"):
        mg.cat([x, mg.ones(3, 3)], dim=1)
    with pytest.raises(IndexError, match="Dimension out of range"):
        x.sum(dim=2)
    with pytest.raises(RuntimeError, match="expanded size"):
        x.expand(4, 3, 4)
    with pytest.raises(RuntimeError, match="sum exactly"):
        x.split([1, 1], dim=1)


def test_split_chunk_unbind():
    x = mg.arange(10).reshape(5, 2)
    assert [p.shape for p in x.split(2)] == [(2, 2), (2, 2), (1, 2)]
    assert [p.shape for p in x.chunk(3)] == [(2, 2), (2, 2), (1, 2)]
    assert [p.tolist() for p in x.unbind(1)] == [[0, 2, 4, 6, 8], [1, 3, 5, 7, 9]]


def test_softmax_and_logsumexp_are_stable_at_1e4():
    x = mg.tensor([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]], requires_grad=True)
    for y in (x.softmax(dim=1), x.log_softmax(dim=1), x.logsumexp(dim=1)):
        assert np.isfinite(y.detach().numpy()).all()
        y.sum().backward()
        assert np.isfinite(x.grad.numpy()).all()
    np.testing.assert_allclose(x.logsumexp(dim=1).detach().numpy(),
                               [1e4, -1e4 + np.log(3)], rtol=1e-6)


def test_gather_and_repeated_index_accumulate():
    w = mg.zeros(3, 2, requires_grad=True)
    w[mg.tensor([0, 0, 2, 0])].sum().backward()
    assert w.grad[:, 0].tolist() == [3, 0, 1]
    with pytest.raises(IndexError, match="out of range"):
        mg.ones(2, 3).gather(1, mg.tensor([[3], [0]]))
    with pytest.raises(RuntimeError, match="int64"):
        mg.ones(2, 3).gather(1, mg.tensor([[0.0], [1.0]]))
    with pytest.raises(RuntimeError, match="boolean masks"):
        mg.ones(2).masked_fill(mg.tensor([1, 0]), 0)


def test_max_min_return_values_and_indices():
    x = mg.tensor([[1.0, 5.0, 3.0], [7.0, 2.0, 2.0]])
    values, indices = x.max(dim=1)
    assert values.tolist() == [5.0, 7.0] and indices.tolist() == [1, 0]
    assert x.min(dim=1).indices.tolist() == [0, 1]
    assert x.max().item() == 7.0
    assert mg.max(x, mg.zeros(2, 3)).shape == (2, 3)


def test_manual_seed_reproduces_random_numbers():
    mg.manual_seed(123)
    a = mg.randn(5).tolist()
    mg.manual_seed(123)
    assert mg.randn(5).tolist() == a
    state = mg.get_rng_state()
    b = mg.rand(3).tolist()
    mg.set_rng_state(state)
    assert mg.rand(3).tolist() == b
