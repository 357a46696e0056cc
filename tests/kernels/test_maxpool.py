"""The fused max pooling (kernels/maxpool.py) against its composite reference
(``references.max_pool2d``): values, indices, gradients, create_graph, the switch; the
``cuda`` cases run the CUDA C (on a GPU, or simulated by the CuPy stand-in)."""

import numpy as np
import pytest
from kernel_utils import (
    assert_same, assert_same_second_order, assert_switch, cpu, grad_fn_names, tensor,
)
from kernel_utils import fused_on  # noqa: F401  (autouse: kernels on, whatever the env)

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import kernels, nn

CASES = [
    ((2, 3, 8, 8), dict(kernel_size=2)),                                   # disjoint windows
    ((1, 2, 7, 9), dict(kernel_size=3, stride=2, padding=1)),              # overlapping
    ((2, 1, 6, 5), dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 1), dilation=(2, 1),
                        ceil_mode=True)),
    ((1, 2, 5, 5), dict(kernel_size=3, stride=2, ceil_mode=True)),
    ((3, 2, 1, 11), dict(kernel_size=(1, 4), stride=(1, 3), padding=(0, 2), ceil_mode=True)),
]


def _x(device, dtype, shape, seed=0, ties=False):
    a = np.random.default_rng(seed).standard_normal(shape)
    if ties:
        a = np.round(a)
    return tensor(a, device, dtype, True)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shape, args", CASES, ids=[str(a) for _, a in CASES])
@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
def test_matches_reference(device, dtype, shape, args, ties):
    x = _x(device, dtype, shape, ties=ties)
    out, _ = assert_same(lambda t: F.max_pool2d(t, return_indices=True, **args), [x],
                         dtype=dtype)
    with mg.use_fused(False):
        _, ref_idx = F.max_pool2d(x, return_indices=True, **args)
    np.testing.assert_array_equal(out[1], cpu(ref_idx))
    assert out[0].dtype == np.dtype(dtype) and out[1].dtype == np.int64


def test_gradcheck_fused_function(device):
    x = _x(device, "float64", (2, 2, 6, 7))
    fn = lambda t: kernels.maxpool.apply(t, (3, 2), (2, 1), (1, 1), (1, 2), (3, 5))[0]  # noqa
    assert "MaxPool2dFn" in grad_fn_names(fn(x))
    assert mg.autograd.gradcheck(fn, [x])


def test_create_graph_differentiates_the_reference(device):
    x = _x(device, "float64", (1, 2, 6, 6))
    assert_same_second_order(lambda t: F.max_pool2d(t, 3, 1, 1) ** 2, [x])


def test_noncontiguous_and_1d(device):
    x = _x(device, "float32", (2, 9, 3, 7))
    assert_same(lambda t: F.max_pool2d(t.transpose(1, 3), 2, ceil_mode=True), [x],
                dtype="float32")
    x1 = _x(device, "float32", (2, 3, 13))
    assert_same(lambda t: F.max_pool1d(t, 3, 2, 1, return_indices=True), [x1], dtype="float32")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_extreme_values(device, dtype):
    """Infinities, NaN and windows that are all -inf (indices stay inside the input)."""
    a = np.random.default_rng(3).standard_normal((1, 2, 5, 5)) * 1e4
    a[0, 0, :2, :2] = -np.inf
    a[0, 0, 4, 4] = np.inf
    a[0, 1, 2, 3] = np.nan
    x = tensor(a, device, dtype, True)
    out, grads = assert_same(lambda t: F.max_pool2d(t, 2, 1, 1, return_indices=True), [x],
                             dtype=dtype)
    assert ((out[1] >= 0) & (out[1] < 25)).all()



UNPADDED = [dict(kernel_size=2), dict(kernel_size=(3, 2), stride=(1, 2), dilation=(1, 2)),
            dict(kernel_size=3, stride=2)]


def _special_windows():
    """Ties, windows with one or two NaNs, +-inf, a window that is all -inf."""
    a = np.round(np.random.default_rng(5).standard_normal((2, 3, 8, 9)))
    a[0, 0, 0, 1] = a[0, 0, 1, 1] = np.nan  # two NaNs in one 2x2 window: the first one wins
    a[0, 1, 2:4, 2:4] = -np.inf
    a[1, 2, 5, 6] = np.inf
    a[1, 0, 3, 0] = np.nan
    return a


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("args", UNPADDED, ids=str)
@pytest.mark.parametrize("with_nan", [True, False], ids=["nan", "no-nan"])
def test_unpadded_windows_special_values(device, dtype, args, with_nan):
    """Windows inside the input (the index as base + tap offset) with ties, inf and NaN (the
    NumPy kernel finds the taps one way with NaN in the input, another without)."""
    a = _special_windows()
    if not with_nan:
        a[np.isnan(a)] = 1.0  # (a tie with the rounded values around it)
    x = tensor(a, device, dtype, True)
    out, _ = assert_same(lambda t: F.max_pool2d(t, return_indices=True, **args), [x],
                         dtype=dtype)
    with mg.use_fused(False):
        _, ref_idx = F.max_pool2d(x, return_indices=True, **args)
    np.testing.assert_array_equal(out[1], cpu(ref_idx))


@pytest.mark.torch
@pytest.mark.parametrize("args", UNPADDED, ids=str)
def test_unpadded_indices_match_pytorch(args):
    """The same windows against PyTorch's values and indices (ties and NaN included)."""
    torch = pytest.importorskip("torch")
    a = _special_windows().astype(np.float32)
    # NOTE: PyTorch keeps the *last* NaN of a window, minigrad's reference the first: one NaN
    a[0, 0, 1, 1] = 0.5
    y, idx = F.max_pool2d(mg.tensor(a), return_indices=True, **args)
    ty, tidx = torch.nn.functional.max_pool2d(torch.tensor(a), return_indices=True, **args)
    np.testing.assert_array_equal(y.numpy(), ty.numpy())
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())

def test_module_and_switch(device):
    pool = nn.MaxPool2d(2)
    x = _x(device, "float32", (2, 3, 4, 4))
    assert_switch("MaxPool2dFn", lambda: pool(x))
    x16 = tensor(cpu(x), device, "float16", True)
    assert "MaxPool2dFn" not in grad_fn_names(F.max_pool2d(x16, 2))  # no float16 kernel


# windows that tile the input (stride = kernel): the NumPy kernel's chunked path
TILES = [((5, 3, 8, 8), 2), ((3, 2, 11, 11), 2), ((2, 3, 9, 7), (3, 2))]  # (covered, remainder)


@pytest.mark.parametrize("threads", [1, 2], ids=["1-thread", "2-threads"])
@pytest.mark.parametrize("with_nan", [False, True], ids=["no-nan", "nan"])
@pytest.mark.parametrize("chunk_bytes", [1, 1 << 30], ids=["per-sample", "whole"])
@pytest.mark.parametrize("shape,kernel", TILES, ids=str)
def test_tiling_windows_without_indices(monkeypatch, shape, kernel, chunk_bytes, with_nan,
                                        threads):
    """Without return_indices the kernel returns only the values (its node keeps a byte per
    output, no int64 indices): values and gradients equal the reference's, with ties (rounded
    values), rows and columns past the last window, a NaN in one chunk, one sample or all per
    chunk, the chunks on one kernel thread or shared by two (``MINIGRAD_NUM_THREADS``)."""
    monkeypatch.setattr(kernels.maxpool, "TILE_CHUNK_BYTES", chunk_bytes)
    monkeypatch.setenv("MINIGRAD_NUM_THREADS", str(threads))
    a = np.round(np.random.default_rng(7).standard_normal(shape))
    if with_nan:
        a[1, 0, 1, 0] = np.nan
    x = tensor(a, "cpu", "float64", True)
    y = F.max_pool2d(x, kernel)
    assert "MaxPool2dFn" in grad_fn_names(y)
    assert not hasattr(y.grad_fn, "indices")
    assert_same(lambda t: F.max_pool2d(t, kernel), [x])
    # the values and the indices asked for in the same call agree with the values alone
    values, indices = F.max_pool2d(x, kernel, return_indices=True)
    np.testing.assert_array_equal(cpu(values), cpu(y))
    with mg.use_fused(False):
        np.testing.assert_array_equal(cpu(indices),
                                      cpu(F.max_pool2d(x, kernel, return_indices=True)[1]))


def test_without_indices_on_device(device):
    """``with_indices=False`` on every device: one output, the values of the two-output call,
    the same gradient."""
    x = _x(device, "float32", (2, 3, 7, 6))
    args = ((3, 2), (2, 1), (1, 1), (1, 1), (4, 6))
    y = kernels.maxpool.apply(x, *args, with_indices=False)
    y2, _ = kernels.maxpool.apply(x, *args)
    np.testing.assert_array_equal(cpu(y), cpu(y2))
    (g1,) = mg.grad(y.sum(), [x])
    (g2,) = mg.grad(y2.sum(), [x])
    np.testing.assert_array_equal(cpu(g1), cpu(g2))


def test_tiling_windows_second_order():
    """The composite's tiling path differentiated twice (the kernel differentiates it)."""
    x = _x("cpu", "float64", (2, 3, 6, 7), ties=True)
    assert_same_second_order(lambda t: F.max_pool2d(t, 2) ** 2, [x])


@pytest.mark.torch
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composite"])
def test_tiling_windows_match_pytorch(fused):
    """Values and gradients of tiling windows against PyTorch with ties (ReLU zeros: PyTorch
    sends a window's gradient to its first maximum), infinities, a remainder column."""
    torch = pytest.importorskip("torch")
    a = np.maximum(np.round(np.random.default_rng(9).standard_normal((3, 4, 8, 9))), 0)
    a[0, 0, 0, 1] = np.inf
    a[1, 2, 4:6, 4:6] = -np.inf
    gy = np.random.default_rng(10).standard_normal((3, 4, 4, 4))
    x, tx = mg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    with mg.use_fused(fused):
        y = F.max_pool2d(x, 2)
        y.backward(mg.tensor(gy))
    ty = torch.nn.functional.max_pool2d(tx, 2)
    ty.backward(torch.tensor(gy))
    np.testing.assert_array_equal(y.detach().numpy(), ty.detach().numpy())
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())
