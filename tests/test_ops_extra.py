"""The PyTorch names of issue 19 that the op table (tests/op_cases.py) cannot drive: ops with
integer or boolean results, random draws, edge cases of the gradients (zeros, ties, 1e4
logits, repeated einsum subscripts), Tensor.type, inference_mode and the thread settings."""

import numpy as np
import pytest

import minigrad as mg
from minigrad.kernels import _numpy


def _torch():
    return pytest.importorskip("torch")


# ---------------------------------------------------------------------------- integer results


@pytest.mark.torch
def test_unique_nonzero_count_any_all_match_torch():
    torch = _torch()
    a = np.array([[3, 0, 1, 3], [0, 2, 2, 3]])
    x, t = mg.tensor(a), torch.tensor(a)
    for kw in ({}, {"return_counts": True}, {"return_inverse": True, "return_counts": True}):
        ours, theirs = mg.unique(x, **kw), torch.unique(t, **kw)
        for o, r in zip(ours if kw else [ours], theirs if kw else [theirs]):
            np.testing.assert_array_equal(o.numpy(), r.numpy())
    rows, inverse = x.unique(dim=0, return_inverse=True)
    trows, tinverse = t.unique(dim=0, return_inverse=True)
    np.testing.assert_array_equal(rows.numpy(), trows.numpy())
    np.testing.assert_array_equal(inverse.numpy(), tinverse.numpy())
    np.testing.assert_array_equal(x.nonzero().numpy(), t.nonzero().numpy())
    for o, r in zip(x.nonzero(as_tuple=True), t.nonzero(as_tuple=True)):
        np.testing.assert_array_equal(o.numpy(), r.numpy())
    assert x.nonzero().dtype == np.int64
    np.testing.assert_array_equal(mg.count_nonzero(x, dim=1).numpy(),
                                  torch.count_nonzero(t, dim=1).numpy())
    assert mg.count_nonzero(x).item() == torch.count_nonzero(t).item()
    for dim in (None, 0, 1):
        kw = {} if dim is None else {"dim": dim}
        np.testing.assert_array_equal(mg.any(x, **kw).numpy(), torch.any(t, **kw).numpy())
        np.testing.assert_array_equal(mg.all(x, **kw).numpy(), torch.all(t, **kw).numpy())


@pytest.mark.torch
def test_sort_argsort_topk_indices_match_torch():
    torch = _torch()
    a = np.random.default_rng(0).permutation(12).reshape(3, 4).astype(np.float64)
    x, t = mg.tensor(a), torch.tensor(a)
    for dim, desc in ((1, False), (0, True), (-1, True)):
        np.testing.assert_array_equal(x.argsort(dim, desc).numpy(),
                                      t.argsort(dim, desc).numpy())
        np.testing.assert_array_equal(x.sort(dim, desc).indices.numpy(),
                                      t.sort(dim, desc).indices.numpy())
    for largest in (True, False):
        ours, theirs = x.topk(3, dim=1, largest=largest), t.topk(3, dim=1, largest=largest)
        np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())
        np.testing.assert_array_equal(ours.values.numpy(), theirs.values.numpy())
    with pytest.raises(RuntimeError, match="k out of range"):
        x.topk(5, dim=1)


@pytest.mark.torch
def test_nan_sorts_as_the_largest_value_as_in_torch():
    torch = _torch()
    a = np.array([[1.0, np.nan, -np.inf, 3.0, np.inf, np.nan, 0.0]])
    x, t = mg.tensor(a), torch.tensor(a)
    for desc in (False, True):
        np.testing.assert_array_equal(x.sort(descending=desc, stable=True).indices.numpy(),
                                      t.sort(descending=desc, stable=True).indices.numpy())
    np.testing.assert_array_equal(x.topk(3).indices.numpy(), t.topk(3).indices.numpy())
    np.testing.assert_array_equal(x.topk(3, largest=False).indices.numpy(),
                                  t.topk(3, largest=False).indices.numpy())


def test_stable_sort_keeps_ties_in_order_both_ways():
    x = mg.tensor([2.0, 1.0, 2.0, 1.0])
    np.testing.assert_array_equal(x.sort(stable=True).indices.numpy(), [1, 3, 0, 2])
    np.testing.assert_array_equal(x.sort(descending=True, stable=True).indices.numpy(),
                                  [0, 2, 1, 3])


def test_sort_gradient_goes_back_to_the_positions():
    x = mg.tensor([3.0, 1.0, 2.0], requires_grad=True)
    (x.sort().values * mg.tensor([1.0, 10.0, 100.0])).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [100.0, 1.0, 10.0])


@pytest.mark.torch
def test_isclose_allclose_match_torch():
    torch = _torch()
    a = np.array([1.0, 2.0, np.nan, 1e-9])
    b = np.array([1.0 + 1e-6, 2.1, np.nan, 0.0])
    for kw in ({}, {"equal_nan": True}, {"rtol": 0.1}, {"atol": 1e-12}):
        np.testing.assert_array_equal(mg.isclose(mg.tensor(a), mg.tensor(b), **kw).numpy(),
                                      torch.isclose(torch.tensor(a), torch.tensor(b), **kw))
        assert mg.allclose(mg.tensor(a), mg.tensor(b), **kw) == \
            torch.allclose(torch.tensor(a), torch.tensor(b), **kw)
    assert mg.tensor([1.0]).allclose(mg.tensor([1.0 + 1e-9])) is True


# ---------------------------------------------------------------------------- modulo


@pytest.mark.torch
@pytest.mark.parametrize("name", ["fmod", "remainder"])
def test_fmod_remainder_forward_and_gradient_match_torch(name):
    torch = _torch()
    # quotients kept away from integers, where both are discontinuous
    a = np.array([[-3.3, 3.3, 5.7], [-0.4, 7.1, -8.9]])
    b = np.array([[2.0, -2.0, 1.5], [0.7, 3.0, -2.5]])
    xa, xb = mg.tensor(a, requires_grad=True), mg.tensor(b, requires_grad=True)
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    out, ref = getattr(mg, name)(xa, xb), getattr(torch, name)(ta, tb)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-12)
    w = np.arange(1.0, 7.0).reshape(2, 3)
    (out * mg.tensor(w)).sum().backward()
    (ref * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(xa.grad.numpy(), ta.grad.numpy())
    np.testing.assert_allclose(xb.grad.numpy(), tb.grad.numpy())
    assert mg.autograd.gradcheck(getattr(mg, name), [mg.tensor(a, requires_grad=True),
                                                     mg.tensor(b, requires_grad=True)])
    ints = getattr(mg, name)(mg.tensor([-7, 7]), 3)
    np.testing.assert_array_equal(ints.numpy(), getattr(torch, name)(torch.tensor([-7, 7]), 3))


def test_percent_operator_is_remainder():
    np.testing.assert_allclose((mg.tensor([-3.0, 3.0]) % 2).numpy(), [1.0, 1.0])
    np.testing.assert_allclose((7.0 % mg.tensor([-3.0, 3.0])).numpy(), [-2.0, 1.0])


# ---------------------------------------------------------------------------- gradient edges


@pytest.mark.torch
def test_cumprod_gradient_with_zeros_matches_torch():
    torch = _torch()
    for a in (np.array([2.0, 0.0, 3.0, 4.0]), np.array([0.0, 2.0, 0.0, 5.0])):
        x, t = mg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
        x.cumprod(0).sum().backward()
        t.cumprod(0).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy())
        assert mg.autograd.gradgradcheck(lambda z: z.cumprod(0), [mg.tensor(a,
                                                                             requires_grad=True)])


@pytest.mark.torch
def test_norm_at_zero_has_gradient_zero_as_torch():
    torch = _torch()
    x = mg.zeros(3, dtype=mg.float64, requires_grad=True)
    t = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    x.norm().backward()
    t.norm().backward()
    np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 0.0])


def test_norm_neither_overflows_nor_underflows_in_float32():
    big = mg.tensor([3e30, 4e30])
    small = mg.tensor([3e-30, 4e-30])
    assert np.isclose(big.norm().item(), 5e30, rtol=1e-6)
    assert np.isclose(small.norm().item(), 5e-30, rtol=1e-6)


@pytest.mark.torch
def test_linalg_norm_orders_match_torch():
    torch = _torch()
    a = np.random.default_rng(1).standard_normal((3, 4))
    x, t = mg.tensor(a), torch.tensor(a)
    for args, kw in [((), {}), ((1,), {"dim": 1}), ((float("inf"),), {}),
                     (("fro",), {}), ((-1,), {}), ((float("-inf"),), {}),
                     ((0,), {"dim": 0}), ((3,), {"dim": 1})]:
        np.testing.assert_allclose(mg.linalg.norm(x, *args, **kw).numpy(),
                                   torch.linalg.norm(t, *args, **kw).numpy(), rtol=1e-12)
    np.testing.assert_allclose(mg.linalg.vector_norm(x, 0.5).numpy(),
                               torch.linalg.vector_norm(t, 0.5).numpy(), rtol=1e-12)
    with pytest.raises(NotImplementedError, match="singular values"):
        mg.linalg.matrix_norm(x, "nuc")


@pytest.mark.torch
def test_logsumexp_gradient_near_1e4_is_exact_in_float32():
    """The softmax in logsumexp's gradient comes from x - max (exact in float32), not from
    x - result: with result ~ 1e4 a float32 rounding of 1e-3 would scale every weight."""
    torch = _torch()
    rng = np.random.default_rng(0)
    for shift in (1e4, -1e4):
        a = (rng.standard_normal((16, 50)) * 3 + shift).astype(np.float32)
        w = rng.standard_normal(16).astype(np.float32)
        x = mg.tensor(a, requires_grad=True)
        (x.logsumexp(dim=1) * mg.tensor(w)).sum().backward()
        t64 = torch.tensor(a.astype(np.float64), requires_grad=True)
        (t64.logsumexp(dim=1) * torch.tensor(w, dtype=torch.float64)).sum().backward()
        exact = t64.grad.numpy()
        err = np.abs(x.grad.numpy() - exact).max() / np.abs(exact).max()
        assert err < 2e-6, err


@pytest.mark.torch
@pytest.mark.parametrize("equation,shapes", [
    ("ii->i", [(4, 4)]), ("ii", [(4, 4)]), ("bii->bi", [(2, 3, 3)]), ("iij->j", [(2, 2, 3)]),
    ("iii->i", [(2, 2, 2)]), ("ii,ij->j", [(3, 3), (3, 2)]), ("bii,bjk->bik", [(2, 3, 3),
                                                                              (2, 2, 4)]),
])
def test_einsum_repeated_subscript_gradient_matches_torch(equation, shapes):
    torch = _torch()
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal(s) for s in shapes]
    ours = [mg.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, ref = mg.einsum(equation, *ours), torch.einsum(equation, *theirs)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-12)
    w = rng.standard_normal(ref.shape)
    (out * mg.tensor(w)).sum().backward()
    (ref * torch.tensor(w)).sum().backward()
    for o, r in zip(ours, theirs):
        np.testing.assert_allclose(o.grad.numpy(), r.grad.numpy(), rtol=1e-12, atol=1e-14)
    fresh = [mg.tensor(a, requires_grad=True) for a in arrays]
    assert mg.autograd.gradcheck(lambda *z: mg.einsum(equation, *z), fresh)
    assert mg.autograd.gradgradcheck(lambda *z: mg.einsum(equation, *z), fresh)


def test_floor_ceil_round_sign_have_zero_gradient_and_round_decimals():
    x = mg.tensor([0.26, -1.5, 2.5], requires_grad=True)
    (x.floor() + x.ceil() + x.round() + x.sign() + x * 1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0, 1.0])
    y = mg.tensor([0.3, -2.0], requires_grad=True)
    y.sign().sum().backward()  # PyTorch: sign's output requires grad, the gradient is 0
    np.testing.assert_array_equal(y.grad.numpy(), [0.0, 0.0])
    np.testing.assert_allclose(x.detach().round(decimals=1).numpy(), [0.3, -1.5, 2.5])


# ---------------------------------------------------------------------------- random draws


def test_bernoulli_draws_with_the_given_probabilities_and_follow_the_seed():
    mg.manual_seed(0)
    p = mg.full((20000,), 0.3)
    draws = p.bernoulli()
    assert draws.dtype == np.float32
    assert set(np.unique(draws.numpy())) <= {0.0, 1.0}
    assert abs(draws.numpy().mean() - 0.3) < 0.02
    mg.manual_seed(0)
    np.testing.assert_array_equal(p.bernoulli().numpy(), draws.numpy())
    assert mg.bernoulli(mg.zeros(5), p=1.0).numpy().tolist() == [1.0] * 5
    with pytest.raises(RuntimeError, match=r"\[0, 1\]"):
        mg.bernoulli(mg.tensor([1.5]))


def test_multinomial_with_and_without_replacement():
    mg.manual_seed(0)
    weights = mg.tensor([[1.0, 3.0, 0.0, 6.0], [0.0, 0.0, 5.0, 5.0]])
    draws = weights.multinomial(20000, replacement=True)
    assert draws.shape == (2, 20000) and draws.dtype == np.int64
    freq = np.bincount(draws.numpy()[0], minlength=4) / 20000
    np.testing.assert_allclose(freq, [0.1, 0.3, 0.0, 0.6], atol=0.02)
    assert set(np.unique(draws.numpy()[1])) == {2, 3}
    picks = weights.multinomial(2)
    for row in picks.numpy():
        assert len(set(row)) == 2
    assert set(picks.numpy()[1]) == {2, 3}
    # the first pick without replacement follows the weights
    firsts = [mg.tensor([1.0, 3.0, 6.0]).multinomial(1).item() for _ in range(3000)]
    np.testing.assert_allclose(np.bincount(firsts, minlength=3) / 3000, [0.1, 0.3, 0.6],
                               atol=0.03)
    with pytest.raises(RuntimeError, match="without replacement"):
        weights.multinomial(3)
    assert mg.multinomial(mg.tensor([0.0, 1.0]), 4, replacement=True).numpy().tolist() == [1] * 4


# ---------------------------------------------------------------------------- Tensor helpers


def test_type_and_is_contiguous():
    x = mg.zeros(2, 3)
    assert x.type() == "minigrad.FloatTensor"
    assert x.long().type() == "minigrad.LongTensor"
    assert x.type(mg.float64).dtype == np.float64
    assert x.type("torch.LongTensor").dtype == np.int64
    assert x.is_contiguous()
    assert not x.t().is_contiguous()
    assert x.t().contiguous().is_contiguous()


def test_repeat_and_tile_shapes_and_errors():
    x = mg.tensor([1, 2, 3])
    assert x.repeat(2).numpy().tolist() == [1, 2, 3, 1, 2, 3]
    assert x.repeat((2, 2)).shape == (2, 6)
    with pytest.raises(RuntimeError, match="smaller than number of dimensions"):
        mg.zeros(2, 2).repeat(2)
    with pytest.raises(RuntimeError, match="same size as input"):
        mg.repeat_interleave(x, mg.tensor([1, 2]))


def test_inference_mode_records_nothing_and_decorates():
    w = mg.ones(2, requires_grad=True)
    with mg.inference_mode():
        assert not (w * 2).requires_grad
    assert mg.is_grad_enabled()
    with mg.inference_mode(False):
        assert (w * 2).requires_grad

    @mg.inference_mode()
    def predict(v):
        return v * 3

    assert not predict(w).requires_grad
    assert (w * 3).requires_grad


def test_set_num_threads_sets_the_kernels_and_the_blas(monkeypatch):
    previous = mg.get_num_threads()
    monkeypatch.setenv("MINIGRAD_NUM_THREADS", "1")  # restored after the test
    try:
        mg.set_num_threads(1)
        assert mg.get_num_threads() == 1
        assert _numpy.num_threads() == 1
        mg.set_num_threads(2)
        assert _numpy.num_threads() == 2
        if mg.threads.blas_controllable():
            assert mg.get_num_threads() == 2
        with pytest.raises(ValueError):
            mg.set_num_threads(0)
    finally:
        mg.set_num_threads(previous)


@pytest.mark.torch
def test_logical_not_and_bitwise_not_as_pytorch():
    """logical_not gives bools for any dtype; ~ / bitwise_not is bitwise on integers, not on
    bools, and refuses floats, as PyTorch's."""
    torch = pytest.importorskip("torch")
    for values, dtype in (([1, 0, -3], "int64"), ([0.0, 2.5, -1.0], "float32"),
                          ([True, False], "bool")):
        ours = mg.logical_not(mg.tensor(np.array(values, dtype=dtype)))
        theirs = torch.logical_not(torch.tensor(np.array(values, dtype=dtype)))
        assert ours.dtype == mg.bool and ours.tolist() == theirs.tolist()
    for values, dtype in (([1, 0, -3], "int64"), ([5, 0], "uint8"), ([True, False], "bool")):
        x = np.array(values, dtype=dtype)
        assert (~mg.tensor(x)).tolist() == (~torch.tensor(x)).tolist()
        assert mg.bitwise_not(mg.tensor(x)).tolist() == torch.bitwise_not(torch.tensor(x)).tolist()
    with pytest.raises(TypeError, match="bool or integer"):
        ~mg.tensor([1.0, 2.0])
