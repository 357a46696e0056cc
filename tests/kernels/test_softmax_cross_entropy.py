"""The fused softmax cross-entropy (kernels/softmax_cross_entropy.py) against its composite
reference (``references.cross_entropy``)."""

import numpy as np
import pytest
from kernel_utils import assert_same, assert_same_second_order, cpu, grad_fn_names, tensor
from kernel_utils import fused_on  # noqa: F401  (autouse: kernels on, whatever the env)

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import kernels

OPTIONS = [
    dict(),
    dict(label_smoothing=0.1),
    dict(weight=True),
    dict(weight=True, label_smoothing=0.2, ignore_index=2),
    dict(reduction="none", ignore_index=1),
    dict(reduction="sum", label_smoothing=0.3, weight=True),
    dict(reduction="none", weight=True, ignore_index=0, label_smoothing=0.05),
]


def _case(device, dtype, N=13, C=7, scale=3.0, seed=0, **kw):
    rng = np.random.default_rng(seed)
    x = tensor(rng.standard_normal((N, C)) * scale, device, dtype, True)
    t = tensor(rng.integers(0, C, N), device)
    if kw.get("weight"):
        kw["weight"] = tensor(rng.random(C) + 0.1, device, dtype)
    return x, t, kw


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(o) or "plain")
def test_matches_reference(device, dtype, options):
    x, t, kw = _case(device, dtype, **dict(options))
    out, _ = assert_same(lambda x: F.cross_entropy(x, t, **kw), [x], dtype=dtype)
    assert out[0].dtype == np.dtype(dtype)


@pytest.mark.parametrize("options", OPTIONS[:4], ids=lambda o: ",".join(o) or "plain")
def test_gradcheck_fused_function(device, options):
    x, t, kw = _case(device, "float64", N=5, C=4, **dict(options))
    fn = lambda x: kernels.softmax_cross_entropy.SoftmaxCrossEntropyFn.apply(  # noqa: E731
        x, target=t, weight=kw.get("weight"), ignore_index=kw.get("ignore_index", -100),
        reduction=kw.get("reduction", "mean"), label_smoothing=kw.get("label_smoothing", 0.0))
    assert "SoftmaxCrossEntropyFn" in grad_fn_names(fn(x))
    assert mg.autograd.gradcheck(fn, [x])


@pytest.mark.parametrize("options", [dict(), dict(weight=True, label_smoothing=0.2,
                                                  ignore_index=1, reduction="none")])
def test_create_graph_differentiates_the_reference(device, options):
    x, t, kw = _case(device, "float64", N=4, C=3, **dict(options))
    assert_same_second_order(lambda x: F.cross_entropy(x, t, **kw), [x])


@pytest.mark.parametrize("N, C", [(1, 1), (1, 5), (3, 1), (31, 17)])
def test_odd_sizes(device, N, C):
    x, t, kw = _case(device, "float64", N=N, C=C, label_smoothing=0.1)
    assert_same(lambda x: F.cross_entropy(x, t, **kw), [x])


def test_noncontiguous_logits(device):
    rng = np.random.default_rng(1)
    xt = tensor(rng.standard_normal((6, 9)), device, "float32", True)  # (C, N)
    t = tensor(rng.integers(0, 6, 9), device)

    def fn(xt):
        x = xt.T
        assert not x.data.flags.c_contiguous
        return F.cross_entropy(x, t, label_smoothing=0.1, reduction="none")

    assert_same(fn, [xt], dtype="float32")


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # the reference's 0 / 0
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_all_targets_ignored(device, reduction):
    x, _, _ = _case(device, "float64", N=4, C=3)
    t = tensor(np.full(4, -100), device)
    out, grads = assert_same(lambda x: F.cross_entropy(x, t, reduction=reduction), [x]) \
        if reduction != "mean" else _mean_all_ignored(x, t)
    if reduction == "sum":
        assert out[0] == 0.0
    np.testing.assert_array_equal(grads[0], 0.0)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # 0 / 0 and nan * 0, as PyTorch's
def test_mean_over_targets_of_zero_weight_is_nan(device):
    """Counted targets whose class weights sum to 0: 'mean' is 0 / 0 = nan and so is every
    gradient (PyTorch: nan loss, nan gradients), on both paths; unlike all targets ignored,
    whose gradients are 0."""
    x, _, _ = _case(device, "float64", N=3, C=4)
    t, w = tensor(np.array([1, 1, 2]), device), tensor(np.array([1.0, 0.0, 0.0, 1.0]), device)
    for fused in (True, False):
        x.grad = None
        with mg.use_fused(fused):
            loss = F.cross_entropy(x, t, weight=w)
            loss.backward()
        assert np.isnan(loss.item()) and np.isnan(cpu(x.grad)).all()


def _mean_all_ignored(x, t):
    """'mean' over no targets is 0 / 0 = nan (as PyTorch), on both paths; gradients are 0."""
    results = []
    for fused in (True, False):
        x.grad = None
        with mg.use_fused(fused):
            loss = F.cross_entropy(x, t)
            loss.backward()
        assert np.isnan(loss.item())
        results.append(cpu(x.grad))
    np.testing.assert_array_equal(results[0], results[1])
    return [np.array(np.nan)], [results[0]]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_extreme_logits(device, dtype):
    x, t, kw = _case(device, dtype, N=6, C=4, scale=1e4, label_smoothing=0.1, weight=True)
    out, grads = assert_same(lambda x: F.cross_entropy(x, t, **kw), [x], dtype=dtype)
    assert np.all(np.isfinite(out[0])) and np.all(np.isfinite(grads[0]))


def test_fallback_rule(device):
    """Outside (N, C) logits with class indices and constant weights, the reference runs."""
    rng = np.random.default_rng(2)
    x = tensor(rng.standard_normal((4, 3)), device, "float64", True)
    probs = tensor(rng.dirichlet(np.ones(3), 4), device, "float64")
    x3 = tensor(rng.standard_normal((2, 3, 5)), device, "float64", True)
    t3 = tensor(rng.integers(0, 3, (2, 5)), device)
    w_grad = tensor(rng.random(3), device, "float64", True)
    t = tensor(rng.integers(0, 3, 4), device)
    name = "SoftmaxCrossEntropyFn"
    assert name in grad_fn_names(F.cross_entropy(x, t))
    assert name not in grad_fn_names(F.cross_entropy(x, probs))
    assert name not in grad_fn_names(F.cross_entropy(x3, t3))
    assert name not in grad_fn_names(F.cross_entropy(x[0], t[0]))
    assert name not in grad_fn_names(F.cross_entropy(x, t, weight=w_grad))
    assert_same(lambda x: F.cross_entropy(x, probs, label_smoothing=0.1), [x])
    assert_same(lambda x3: F.cross_entropy(x3, t3, ignore_index=1), [x3])


def test_use_fused_switch(device):
    x, t, _ = _case(device, "float32")
    with mg.use_fused(False):
        assert "SoftmaxCrossEntropyFn" not in grad_fn_names(F.cross_entropy(x, t))
    assert "SoftmaxCrossEntropyFn" in grad_fn_names(F.cross_entropy(x, t))
    x16 = tensor(cpu(x), device, "float16", True)  # no float16 kernel: the composite runs
    assert "SoftmaxCrossEntropyFn" not in grad_fn_names(F.cross_entropy(x16, t))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_unshifted_and_shifted_chunks(device, dtype):
    """The NumPy forward takes exponentials unshifted in chunks of small logits, shifted by
    each row's max elsewhere: a chunk with a huge logit, one with a row so negative that its
    unshifted exponentials underflow (redone shifted), and plain ones give the reference's
    losses and gradients (40000 rows of 7: two chunks). On a GPU (the CUDA kernel has no
    chunks; the stand-in simulates every thread) the same rows, 64 of them."""
    n = 40000 if device == "cpu" else 64
    rng = np.random.default_rng(5)
    x = rng.standard_normal((n, 7)) * 2
    x[3] -= 2000.0  # underflows unshifted in both dtypes
    x[n - 1000 if n > 1000 else n - 1, 2] = 500.0  # above the float32 unshifted bound; chunk 2
    t = tensor(rng.integers(0, 7, n), device)
    x = tensor(x, device, dtype, True)
    for kw in (dict(), dict(label_smoothing=0.1, reduction="none")):
        out, grads = assert_same(lambda x, kw=kw: F.cross_entropy(x, t, **kw), [x], dtype=dtype)
        assert np.all(np.isfinite(out[0])) and np.all(np.isfinite(grads[0]))


@pytest.mark.parametrize("options", [dict(), dict(label_smoothing=0.1), dict(weight=True),
                                     dict(reduction="none", weight=True, label_smoothing=0.2),
                                     dict(reduction="sum")],
                         ids=lambda o: ",".join(o) or "plain")
def test_every_target_counts_path_equals_the_masked_one(options):
    """F's check tells the kernel that every target counts (no mask, no weights of ones): the
    numbers are the masked path's (to rounding of the row coefficient, with smoothing)."""
    x, t, kw = _case("cpu", "float64", **dict(options))
    results = []
    for counts in (True, False):
        x.grad = None
        loss = kernels.softmax_cross_entropy.SoftmaxCrossEntropyFn.apply(
            x, target=t, weight=kw.get("weight"), ignore_index=-100,
            reduction=kw.get("reduction", "mean"), label_smoothing=kw.get("label_smoothing", 0.0),
            every_target_counts=counts)
        loss.sum().backward()
        results.append((loss.data.copy(), x.grad.data.copy()))
    for fast, masked in zip(*results):
        np.testing.assert_allclose(fast, masked, rtol=1e-14, atol=1e-16)


@pytest.mark.parametrize("targets, ignore_index, counts", [
    ([0, 6, 3, 2], -100, True),  # the common case: no mask made
    ([0, 6, -100, 2], -100, False),  # an ignored target
    ([0, 6, 3, 2], 3, False),  # ignore_index is a class: every target is compared with it
    ([0, 6, 3, 2], 7, True),  # ignore_index past the classes: it can never match
])
def test_f_cross_entropy_tells_the_kernel_when_every_target_counts(targets, ignore_index,
                                                                   counts):
    x = mg.tensor(np.random.default_rng(0).standard_normal((4, 7)), requires_grad=True)
    loss = F.cross_entropy(x, mg.tensor(targets), ignore_index=ignore_index)
    assert loss.grad_fn.every_target_counts is counts
    assert_same(lambda x: F.cross_entropy(x, mg.tensor(targets), ignore_index=ignore_index),
                [x])


@pytest.mark.parametrize("dtype", ["int64", "int32", "uint8"])
@pytest.mark.parametrize("bad", [-1, 7, -(2 ** 7)])
def test_one_comparison_range_check_catches_both_bounds(dtype, bad):
    """F's range check compares the indices' bits as unsigned: a negative index (other than
    ignore_index) is as out of range as one >= C, for every integer dtype."""
    if dtype == "uint8" and bad < 0:
        pytest.skip("no negative uint8")
    x = mg.tensor(np.zeros((3, 7)), requires_grad=True)
    t = mg.tensor(np.array([1, bad, 2]).astype(dtype))
    with pytest.raises(IndexError, match="out of bounds"):
        F.cross_entropy(x, t)
    with pytest.raises(IndexError, match="out of bounds"):
        F.nll_loss(x, t)


@pytest.mark.parametrize("N", [13, 40000])  # one chunk (called directly); two chunks
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(o) or "plain")
def test_numpy_backward_makes_the_logits_dtype(options, N):
    """The NumPy backward writes its gradient into an array of the logits' dtype, for one chunk
    as for several: with a mask and smoothing the row scale is float64 for float32 logits, and
    the product must still be rounded once, to float32."""
    x, t, kw = _case("cpu", "float32", N=N, **dict(options))
    loss = F.cross_entropy(x, t, **kw)
    with mg.no_grad():
        gx = loss.grad_fn.backward(mg.ones(*loss.shape))
    assert gx.dtype == np.float32 and gx.shape == x.shape


def test_range_check_of_empty_and_high_dim_targets():
    """F's range check (one maximum of the indices' bits): no targets at all count as in
    range; (N, d) targets of (N, C, d) logits are checked over every entry."""
    x = mg.tensor(np.zeros((0, 7)), requires_grad=True)
    loss = F.cross_entropy(x, mg.tensor(np.zeros(0, np.int64)), reduction="sum")
    assert loss.grad_fn.every_target_counts is True and loss.item() == 0.0
    x3 = mg.tensor(np.zeros((2, 7, 3)), requires_grad=True)
    F.cross_entropy(x3, mg.tensor([[0, 1, 2], [3, 4, 6]])).backward()
    with pytest.raises(IndexError, match="target 7 is out of bounds"):
        F.cross_entropy(x3, mg.tensor([[0, 1, 2], [3, 7, 6]]))
    with pytest.raises(IndexError, match="target -1 is out of bounds"):
        F.nll_loss(x3, mg.tensor([[0, -1, 2], [3, 4, 6]]))
