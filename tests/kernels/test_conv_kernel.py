"""The fused convolutions (kernels/conv.py) against their composite references
(``references.conv2d``, ``references.conv_transpose2d``), on every device; the ``cuda`` cases run
the im2col/col2im CUDA C of kernels/conv.cu (on the CuPy stand-in without a GPU)."""

import numpy as np
import pytest
from kernel_utils import assert_same, assert_same_second_order, cpu, grad_fn_names, tensor
from kernel_utils import fused_on  # noqa: F401  (autouse: kernels on, whatever the env)

import minigrad as mg
import minigrad.nn.functional as F
from minigrad.kernels import conv as conv_kernel
from minigrad import kernels, nn


def _x(shape, device, dtype="float64", seed=0):
    return tensor(np.random.default_rng(seed).standard_normal(shape), device, dtype, True)


CONV_CASES = [
    ((2, 3, 6, 5), (4, 3, 3, 3), dict(padding=1)),
    ((2, 4, 7, 6), (6, 2, 2, 3), dict(stride=(2, 1), padding=(0, 2), dilation=(1, 2),
                                      groups=2)),
    ((1, 4, 5, 5), (4, 1, 3, 3), dict(padding="same", groups=4)),  # depthwise
    ((3, 2, 6, 9), (2, 2, 3, 2), dict(stride=3, dilation=2)),  # rows and columns left over
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("x_shape,w_shape,options", CONV_CASES)
def test_conv2d_matches_reference(device, dtype, x_shape, w_shape, options):
    x, w = _x(x_shape, device, dtype), _x(w_shape, device, dtype, 1)
    b = _x((w_shape[0],), device, dtype, 2)
    out, _ = assert_same(lambda x, w, b: F.conv2d(x, w, b, **options), [x, w, b], dtype=dtype)
    assert out[0].dtype == np.dtype(dtype)
    assert_same(lambda x, w: F.conv2d(x, w, **options), [x, w], dtype=dtype)


TRANSPOSED_CASES = [
    ((2, 3, 4, 3), (3, 2, 3, 3), dict()),
    ((2, 4, 3, 4), (4, 3, 3, 2), dict(stride=(2, 3), padding=(1, 0), output_padding=(1, 2),
                                      groups=2)),
    ((1, 2, 3, 3), (2, 2, 2, 3), dict(stride=2, padding=1, dilation=2, output_padding=1)),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("x_shape,w_shape,options", TRANSPOSED_CASES)
def test_conv_transpose2d_matches_reference(device, dtype, x_shape, w_shape, options):
    x, w = _x(x_shape, device, dtype), _x(w_shape, device, dtype, 1)
    b = _x((w_shape[1] * options.get("groups", 1),), device, dtype, 2)
    assert_same(lambda x, w, b: F.conv_transpose2d(x, w, b, **options), [x, w, b], dtype=dtype)


def test_conv1d_and_transpose1d_run_fused(device):
    x, w = _x((2, 4, 9), device), _x((6, 2, 3), device, seed=1)
    fn = lambda x, w: F.conv1d(x, w, stride=2, padding=1, groups=2)  # noqa: E731
    assert "FusedConv2dFn" in grad_fn_names(fn(x, w))
    assert_same(fn, [x, w])
    wt = _x((4, 3, 3), device, seed=2)
    fn = lambda x, w: F.conv_transpose1d(x, w, stride=2, output_padding=1)  # noqa: E731
    assert "FusedConvTranspose2dFn" in grad_fn_names(fn(x, wt))
    assert_same(fn, [x, wt])


def test_gradcheck_fused_functions(device):
    x, w, b = _x((2, 2, 5, 4), device), _x((4, 1, 2, 3), device, seed=1), _x((4,), device,
                                                                              seed=2)
    fn = lambda x, w, b: kernels.conv.apply(x, w, b, (2, 1), ((1, 0), (2, 1)), (1, 2), 2)  # noqa
    assert "FusedConv2dFn" in grad_fn_names(fn(x, w, b))
    assert mg.autograd.gradcheck(fn, [x, w, b])
    wt = _x((2, 3, 2, 2), device, seed=3)
    fn = lambda x, w: kernels.conv.apply_transpose(x, w, None, (2, 2), (1, 0), (1, 0),  # noqa
                                                   (1, 1), 1)
    assert mg.autograd.gradcheck(fn, [x, wt])


def test_create_graph_differentiates_the_reference(device):
    x, w, b = _x((1, 2, 4, 4), device), _x((2, 2, 2, 2), device, seed=1), _x((2,), device,
                                                                              seed=2)
    assert_same_second_order(lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1), [x, w, b])
    assert_same_second_order(lambda x, w: F.conv_transpose2d(x, w, stride=2), [x, w])


def test_noncontiguous_and_odd_inputs(device):
    x = _x((5, 4, 3, 2), device, "float32")
    w = _x((3, 3, 2, 2), device, "float32", 1)
    assert_same(lambda x, w: F.conv2d(x.permute(3, 2, 0, 1), w[:, :, ::-1]), [x, w],
                dtype="float32")
    empty = tensor(np.zeros((0, 2, 4, 4)), device, "float32", True)
    assert F.conv2d(empty, _x((3, 2, 2, 2), device, "float32")).shape == (0, 3, 3, 3)


def test_only_asked_gradients_are_computed(device):
    x = tensor(np.ones((1, 1, 3, 3)), device)  # no grad: the columns are not kept for gW only
    w = _x((1, 1, 2, 2), device)
    y = F.conv2d(x, w)
    y.sum().backward()
    np.testing.assert_allclose(cpu(w.grad), np.full((1, 1, 2, 2), 4.0))
    with mg.no_grad():
        assert F.conv2d(x, w).grad_fn is None


def test_module_and_switch(device):
    conv = nn.Conv2d(2, 3, 3).to(device)
    x = _x((1, 2, 5, 5), device, "float32")
    assert "FusedConv2dFn" in grad_fn_names(conv(x))
    with mg.use_fused(False):
        names = grad_fn_names(conv(x))
        assert "FusedConv2dFn" not in names and "MatmulFn" in names


def test_im2col_col2im_are_adjoint():
    """<im2col(x), c> = <x, col2im(c)> for the NumPy routines (the CUDA ones are checked
    against them through the Functions above)."""
    rng = np.random.default_rng(0)
    g = conv_kernel._ConvGeometry(2, 3, 5, 6, 2, 3, 3, 2, (2, 2), (1, 2), (1, 1))
    x = rng.standard_normal((2, 3, 5, 6))
    c = rng.standard_normal((3, 2, 3, 2, 3, 2))
    lhs = np.sum(conv_kernel._im2col_numpy(np, x, g) * c)
    rhs = np.sum(x * conv_kernel._col2im_numpy(np, c, g))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12)


@pytest.mark.parametrize("mode,numpy_mode", [("constant", "constant"), ("reflect", "reflect"),
                                             ("replicate", "edge"), ("circular", "wrap")])
def test_pad_modes_on_device(device, mode, numpy_mode):
    """F.pad (composite only) on every device: values as np.pad's, gradients summed back."""
    a = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    x = tensor(a, device, "float64", True)
    y = F.pad(x, (2, 1, 3, 0), mode=mode)
    np.testing.assert_array_equal(cpu(y), np.pad(a, ((0, 0), (0, 0), (3, 0), (2, 1)),
                                                 mode=numpy_mode))
    y.sum().backward()
    # every output read one input (constant padding: none)
    expected = a.size if mode == "constant" else np.prod(y.shape)
    np.testing.assert_allclose(cpu(x.grad).sum(), expected)
    small = tensor(a[0, :1], device, "float64", True)  # (C, H, W): 1-d pad
    assert mg.autograd.gradcheck(lambda x: F.pad(x, (1, 2), mode=mode), [small])


def test_retain_graph_second_backward(device):
    """The backward rebuilds the columns from the input, so a second backward equals the
    first."""
    x, w = _x((2, 2, 5, 4), device), _x((3, 2, 3, 2), device, seed=1)
    y = F.conv2d(x, w, stride=(1, 2), padding=1)
    assert "FusedConv2dFn" in grad_fn_names(y)
    first = mg.grad(y.sum(), [x, w], retain_graph=True)
    second = mg.grad(y.sum(), [x, w])
    for a, b in zip(first, second):
        np.testing.assert_array_equal(cpu(a), cpu(b))


# BATCH_MAJOR_MAX_ROWS: 0 makes every NumPy conv channel-major, a million batch-major
LAYOUTS = {"channel-major": 0, "batch-major": 10**6}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("chunk_bytes", [1, 3000, 1 << 30], ids=["per-sample", "some", "whole"])
@pytest.mark.parametrize("x_shape,w_shape,options", CONV_CASES)
def test_batch_chunks_give_the_same_results(monkeypatch, x_shape, w_shape, options,
                                            chunk_bytes, layout):
    """NumPy works through the batch in chunks of columns, multiplied channel-major or sample
    by sample: one sample at a time, a few, or all at once give the reference's output and
    gradients in either layout."""
    monkeypatch.setattr(conv_kernel, "COLUMN_CHUNK_BYTES", chunk_bytes)
    monkeypatch.setattr(conv_kernel, "BATCH_MAJOR_MAX_ROWS", LAYOUTS[layout])
    x_shape = (5,) + x_shape[1:]  # an odd batch: the last chunk is shorter
    x, w = _x(x_shape, "cpu"), _x(w_shape, "cpu", seed=1)
    b = _x((w_shape[0],), "cpu", seed=2)
    assert_same(lambda x, w, b: F.conv2d(x, w, b, **options), [x, w, b])


def test_forward_keeps_no_columns():
    """What a conv holds from forward to backward is its output (the input is the caller's):
    not the im2col columns, which are kh * kw = 9 times the input here, and which never exist
    whole."""
    import tracemalloc

    x = mg.tensor(np.random.default_rng(0).standard_normal((64, 16, 24, 24), dtype=np.float32))
    w = mg.tensor(np.random.default_rng(1).standard_normal((16, 16, 3, 3), dtype=np.float32),
                  requires_grad=True)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        y = F.conv2d(x, w, padding=1)
        held, peak = (m - before for m in tracemalloc.get_traced_memory())
    finally:
        tracemalloc.stop()
    assert "FusedConv2dFn" in grad_fn_names(y)
    columns = 9 * x.data.nbytes
    assert held < y.data.nbytes + 64 * 1024, held
    # at most one chunk of columns and its product at a time
    assert peak < y.data.nbytes + 1.25 * conv_kernel.COLUMN_CHUNK_BYTES + 64 * 1024, peak
    assert columns > peak  # (the bound above tests something)
    y.sum().backward()
    assert w.grad.shape == w.shape


@pytest.mark.parametrize("layout", LAYOUTS)
def test_gradcheck_both_layouts(monkeypatch, layout):
    """float64 gradcheck of the NumPy conv (groups, stride, dilation, asymmetric padding) in
    each layout, chunked one sample at a time."""
    monkeypatch.setattr(conv_kernel, "BATCH_MAJOR_MAX_ROWS", LAYOUTS[layout])
    monkeypatch.setattr(conv_kernel, "COLUMN_CHUNK_BYTES", 1)
    x, w, b = _x((3, 4, 5, 4), "cpu"), _x((6, 2, 2, 3), "cpu", seed=1), _x((6,), "cpu", seed=2)
    fn = lambda x, w, b: kernels.conv.apply(x, w, b, (2, 1), ((1, 0), (2, 1)), (1, 2), 2)  # noqa
    assert "FusedConv2dFn" in grad_fn_names(fn(x, w, b))
    assert mg.autograd.gradcheck(fn, [x, w, b])


def test_batch_major_im2col_col2im_are_adjoint():
    """The batch-major routines: the same adjoint identity, and the same columns as the
    channel-major im2col with the sample axis moved first."""
    rng = np.random.default_rng(1)
    g = conv_kernel._ConvGeometry(2, 3, 5, 6, 2, 3, 3, 2, (2, 2), (1, 2), (1, 1))
    x = rng.standard_normal((2, 3, 5, 6))
    c = rng.standard_normal((2, 3, 2, 3, 3, 2))
    cols = conv_kernel._im2col_numpy(np, x, g, batch_major=True)
    np.testing.assert_array_equal(
        cols, conv_kernel._im2col_numpy(np, x, g).transpose(3, 0, 1, 2, 4, 5))
    lhs = np.sum(cols * c)
    rhs = np.sum(x * conv_kernel._col2im_numpy(np, c, g, batch_major=True))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12)


def test_first_layer_is_batch_major():
    """W5's first conv (1 channel, 3x3: 9 rows) takes the batch-major path, its second (32
    channels: 288 rows) the channel-major one."""
    fn = conv_kernel.FusedConv2dFn.__new__(conv_kernel.FusedConv2dFn)
    fn.xp, fn.groups = np, 1
    first = conv_kernel._ConvGeometry(8, 1, 28, 28, 3, 3, 26, 26, (1, 1), (1, 1), (0, 0))
    second = conv_kernel._ConvGeometry(8, 32, 13, 13, 3, 3, 11, 11, (1, 1), (1, 1), (0, 0))
    assert fn._batch_major(first) and not fn._batch_major(second)


SHIFTED_CASES = [  # stride 1: the input gradient by shifted adds (_input_grad_shifted)
    ((3, 4, 7, 6), (6, 2, 3, 2), dict(padding=(2, 1), dilation=(2, 1), groups=2)),
    ((2, 2, 5, 6), (3, 2, 2, 4), dict(padding="same")),  # more padding after than before
    ((2, 3, 7, 7), (4, 3, 3, 3), dict()),  # no padding: W5's second conv in small
    ((1, 2, 4, 6), (3, 2, 1, 3), dict(padding=(0, 2))),  # the frame wider than the input
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("chunk_bytes", [1, 1 << 30], ids=["per-sample", "whole"])
@pytest.mark.parametrize("x_shape,w_shape,options", SHIFTED_CASES)
def test_shifted_paths_match_reference(monkeypatch, x_shape, w_shape, options, chunk_bytes,
                                       dtype):
    """A stride-1 NumPy conv runs on the input's frame: its forward one GEMM per tap over a
    shifted slice of the frame, accumulated by BLAS, its input gradient one product over ``gy``
    laid in the frame and one shifted add per tap; per sample or the batch at once, with
    padding (more after than before), dilation and groups, both equal the reference's."""
    monkeypatch.setattr(conv_kernel, "COLUMN_CHUNK_BYTES", chunk_bytes)
    monkeypatch.setattr(conv_kernel, "BATCH_MAJOR_MAX_ROWS", 0)
    called = []
    for name in ("_forward_shifted", "_input_grad_shifted"):
        real = getattr(conv_kernel.FusedConv2dFn, name)
        monkeypatch.setattr(conv_kernel.FusedConv2dFn, name,
                            lambda self, *a, _real=real, _name=name: called.append(_name)
                            or _real(self, *a))
    x, w = _x(x_shape, "cpu", dtype), _x(w_shape, "cpu", dtype, seed=1)
    b = _x((w_shape[0],), "cpu", dtype, seed=2)
    assert_same(lambda x, w, b: F.conv2d(x, w, b, **options), [x, w, b], dtype=dtype)
    assert_same(lambda x, w: F.conv2d(x, w, **options), [x, w], dtype=dtype)
    assert set(called) == {"_forward_shifted", "_input_grad_shifted"}  # (the paths ran)


def test_shifted_paths_gradcheck():
    """float64 gradcheck of the frame paths with asymmetric padding, dilation and groups."""
    conv = lambda x, w, b: kernels.conv.apply(  # noqa: E731
        x, w, b, (1, 1), ((1, 0), (0, 2)), (1, 2), 2)
    x, w, b = _x((2, 4, 4, 5), "cpu"), _x((2, 2, 2, 2), "cpu", seed=1), _x((2,), "cpu", seed=2)
    assert mg.autograd.gradcheck(conv, [x, w, b])


def test_shifted_input_grad_only_where_the_output_fills_the_frame():
    """Stride 1 and an output of at least half the frame (W5's second conv: 11 x 11 of 13 x 13)
    take the shifted adds; a stride of 2, or a large kernel on a small input, col2im."""
    fn = conv_kernel.FusedConv2dFn.__new__(conv_kernel.FusedConv2dFn)
    fn.xp = np
    w5 = conv_kernel._ConvGeometry(8, 32, 13, 13, 3, 3, 11, 11, (1, 1), (1, 1), (0, 0))
    strided = conv_kernel._ConvGeometry(8, 32, 13, 13, 3, 3, 6, 6, (2, 2), (1, 1), (0, 0))
    large = conv_kernel._ConvGeometry(8, 32, 13, 13, 7, 7, 7, 7, (1, 1), (1, 1), (0, 0))
    assert fn._shifted(w5)
    assert not fn._shifted(strided) and not fn._shifted(large)


def test_composite_folds_a_first_layers_bias_into_the_product(monkeypatch):
    """The composite conv of a few-row layer (1 channel, 3 x 3) adds its bias in the product
    (the weights with a bias column, the columns with a row of ones): the same values and
    gradients as the bias added to the output, and double backward still exact."""
    from minigrad import references

    x, w, b = _x((2, 1, 5, 6), "cpu"), _x((3, 1, 3, 3), "cpu", seed=1), _x((3,), "cpu", seed=2)

    def conv(x, w, b):
        return references.conv2d(x, w, b, (1, 1), ((1, 1), (0, 1)), (1, 1), 1)

    folded = conv(x, w, b)
    assert "CatFn" in grad_fn_names(folded)
    g_folded = mg.grad((folded ** 2).sum(), [x, w, b])
    monkeypatch.setattr(references, "FOLD_BIAS_MAX_ROWS", 0)
    added = conv(x, w, b)
    assert "CatFn" not in grad_fn_names(added)
    np.testing.assert_allclose(cpu(folded), cpu(added), rtol=1e-12, atol=1e-12)
    for a, e in zip(g_folded, mg.grad((added ** 2).sum(), [x, w, b])):
        np.testing.assert_allclose(cpu(a), cpu(e), rtol=1e-12, atol=1e-12)
    monkeypatch.undo()
    f = lambda x, w, b: conv(x, w, b) ** 2  # noqa: E731
    assert mg.autograd.gradcheck(f, [x, w, b]) and mg.autograd.gradgradcheck(f, [x, w, b])
