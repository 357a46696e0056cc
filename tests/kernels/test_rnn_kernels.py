"""The fused LSTM and GRU layers (kernels/lstm.py, kernels/gru.py) against their composite
references (``references.lstm_layer``, ``references.gru_layer``): forward, gradients, second order,
masks, odd shapes."""

import numpy as np
import pytest
import rnn_checks as rc
from kernel_utils import (cpu, fused_on, grad_fn_names, outputs_list,  # noqa: F401  (fused_on: autouse)
                          run, tensor)

import minigrad as mg
from minigrad import kernels, nn, references

@pytest.fixture(params=["lstm", "gru"])
def kind(request):
    return request.param


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("lengths", [None, [6, 3, 1, 6]], ids=["full", "lengths"])
def test_matches_reference(kind, device, lengths, reverse, dtype):
    rc.check_matches_reference(kind, device, lengths, reverse, dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("lengths", [None, [6, 3, 1, 6]], ids=["full", "lengths"])
def test_final_state_only(kind, device, lengths, reverse, dtype):
    rc.check_final_state_only(kind, device, lengths, reverse, dtype)


@pytest.mark.parametrize("reverse", [False, True])
def test_gradcheck_fused_function(kind, device, reverse):
    rc.check_gradcheck(kind, device, reverse)


def test_create_graph_differentiates_the_reference(kind, device):
    rc.check_second_order(kind, device)


@pytest.mark.parametrize(
    "dtype, bidirectional, batch_first, bias, lengths",
    [("float32", False, False, True, None), ("float64", True, True, False, [7, 2, 5]),
     ("float32", True, False, True, [1, 7, 3]), ("float64", False, True, True, [7, 7, 7])],
)
def test_module_fused_vs_composite(kind, device, dtype, bidirectional, batch_first, bias, lengths):
    rc.check_module_paths(kind, device, dtype, bidirectional, batch_first, bias, lengths)


def test_noncontiguous_inputs(kind, device):
    rc.check_noncontiguous(kind, device)


def test_all_masked_row(kind, device):
    rc.check_all_masked_row(kind, device)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_extreme_inputs(kind, device, dtype):
    rc.check_extreme_inputs(kind, device, dtype)


def test_use_fused_switch(kind, device):
    rc.check_switch(kind, device)


@pytest.mark.parametrize("batch_first", [False, True])
def test_lstm_input_projection(device, batch_first):
    """kernels.lstm.project: x W_ih^T with each step's (4H, B) block contiguous, and its
    gradients of first and second order (float64), also for a transposed (batch-first) input."""
    rng = np.random.default_rng(3)
    T, B, n_in, G = 5, 3, 4, 8
    x = tensor(rng.standard_normal((B, T, n_in) if batch_first else (T, B, n_in)), device,
               requires_grad=True)
    w = tensor(rng.standard_normal((G, n_in)), device, requires_grad=True)

    def project(x, w):
        return kernels.lstm.project(x.transpose(0, 1) if batch_first else x, w)

    y = project(x, w)
    x_tbi = cpu(x).transpose(1, 0, 2) if batch_first else cpu(x)
    np.testing.assert_allclose(cpu(y), x_tbi @ cpu(w).T, rtol=1e-12, atol=1e-12)
    if device == "cpu":
        assert y.data.transpose(0, 2, 1)[2].flags.c_contiguous  # a step's (G, B) block
    assert mg.autograd.gradcheck(project, [x, w])
    assert mg.autograd.gradgradcheck(project, [x, w])  # its backward is made of ops


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("lengths", [None, [11, 4, 1]], ids=["full", "lengths"])
@pytest.mark.parametrize("bias", [True, False])
def test_lstm_projection_inside_the_layer(dtype, reverse, lengths, bias):
    """kernels.lstm.apply_with_input (LSTMInputFn, NumPy): the layer on x with W_ih, its
    projection made inside it (one batched GEMM with the bias as a column of the weight, one
    weight GEMM for [W_ih | b | W_hh] in the backward), against the composite reference on
    x W_ih^T over several blocks of steps: outputs and the gradients of every input; gradcheck
    in float64; only some inputs requiring grad."""
    T, B, n_in, H = 11, 3, 4, 5
    mask = rc.mask_tensor(lengths, T, "cpu")
    rng = np.random.default_rng(8)
    x = tensor(rng.standard_normal((T, B, n_in)), "cpu", dtype, True)
    w_ih = tensor(rng.standard_normal((4 * H, n_in)) / 2, "cpu", dtype, True)
    _, h0, c0, w_hh, b = rc.layer_inputs("lstm", "cpu", T, B, H, dtype, seed=9)
    inputs = [x, h0, c0, w_ih, w_hh] + ([b] if bias else [])

    def fused(x, h0, c0, w_ih, w_hh, b=None):
        return kernels.lstm.apply_with_input(x, h0, c0, w_ih, w_hh, b, mask, reverse)

    def reference(x, h0, c0, w_ih, w_hh, b=None):
        x_proj = (x.reshape(T * B, n_in) @ w_ih.T).reshape(T, B, 4 * H)
        return references.lstm_layer(x_proj, h0, c0, w_hh, b, mask, reverse)

    out_f, g_f = run(fused, inputs, True)
    out_r, g_r = run(reference, inputs, True)
    assert "LSTMInputFn" in grad_fn_names(fused(*inputs)[0])
    tol = dict(rtol=1e-9, atol=1e-11) if dtype == "float64" else dict(rtol=2e-4, atol=2e-5)
    assert len(g_f) == len(inputs)
    for a, r in zip(out_f + g_f, out_r + g_r):
        assert a.dtype == np.dtype(dtype)
        np.testing.assert_allclose(a, r, **tol)
    if dtype == "float64":
        assert mg.autograd.gradcheck(fused, inputs)
        for t in (x, w_hh):  # a subset of the inputs: the others get no gradient
            t.requires_grad = False
        out = fused(*inputs)
        grads = mg.grad((out[0] * out[0]).sum() + out[2].sum(), [h0, c0, w_ih])
        ref = reference(*inputs)
        expected = mg.grad((ref[0] * ref[0]).sum() + ref[2].sum(), [h0, c0, w_ih])
        for a, r in zip(grads, expected):
            np.testing.assert_allclose(cpu(a), cpu(r), **tol)


@pytest.mark.parametrize("T, B", [(0, 2), (3, 0)])
def test_lstm_projection_inside_the_layer_empty(T, B):
    """No steps: the final states are the initial ones (their gradient passes through), the
    weights' gradients zeros; no rows: empty outputs and gradients."""
    rng = np.random.default_rng(2)
    x = tensor(rng.standard_normal((T, B, 3)), "cpu", "float64", True)
    h0, c0 = (tensor(rng.standard_normal((B, 4)), "cpu", "float64", True) for _ in range(2))
    w_ih = tensor(rng.standard_normal((16, 3)), "cpu", "float64", True)
    w_hh = tensor(rng.standard_normal((16, 4)), "cpu", "float64", True)
    b = tensor(rng.standard_normal(16), "cpu", "float64", True)
    out, h, c = kernels.lstm.apply_with_input(x, h0, c0, w_ih, w_hh, b, None)
    assert out.shape == (T, B, 4) and h.shape == c.shape == (B, 4)
    grads = mg.grad(out.sum() + (2 * h).sum() + c.sum(), [x, h0, c0, w_ih, w_hh, b])
    assert [g.shape for g in grads] == [(T, B, 3), (B, 4), (B, 4), (16, 3), (16, 4), (16,)]
    if T == 0:
        np.testing.assert_array_equal(cpu(h.detach()), cpu(h0.detach()))
        np.testing.assert_array_equal(cpu(c.detach()), cpu(c0.detach()))
        np.testing.assert_array_equal(cpu(grads[1]), np.full((B, 4), 2.0))
        np.testing.assert_array_equal(cpu(grads[3]), np.zeros((16, 3)))


def test_lstm_weight_gradients_are_contiguous():
    """nn.LSTM's weight gradients are C-contiguous arrays of the weights' shapes, as the
    weights and PyTorch's .grad are, though the backward computes them in one GEMM."""
    mg.manual_seed(0)
    lstm = nn.LSTM(3, 5, num_layers=2)
    x = mg.tensor(np.random.default_rng(6).standard_normal((4, 2, 3)), dtype=mg.float32)
    lstm(x)[0].sum().backward()
    for name, p in lstm.named_parameters():
        assert p.grad.shape == p.shape and p.grad.data.flags.c_contiguous, name


def test_lstm_second_backward_with_retain_graph(device):
    """The fused LSTM's backward only reads what its forward saved: a second backward through
    a retained graph gives the same gradients."""
    mg.manual_seed(0)
    lstm = nn.LSTM(4, 6).to(device=device, dtype="float64")
    x = tensor(np.random.default_rng(4).standard_normal((5, 3, 4)), device, requires_grad=True)
    out, (h, c) = lstm(x)
    loss = (out * out).sum() + (c * h).sum()
    params = [x, *lstm.parameters()]
    first = mg.grad(loss, params, retain_graph=True)
    second = mg.grad(loss, params)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(cpu(a), cpu(b))


@pytest.mark.parametrize("bidirectional", [False, True])
def test_lstm_forward_without_grad_is_the_training_forward(device, bidirectional):
    """Under no_grad the fused LSTM keeps no backward state (no gate multipliers per block of
    steps): its outputs equal the training forward's, bit for bit, with padding."""
    mg.manual_seed(0)
    lstm = nn.LSTM(5, 7, bidirectional=bidirectional).to(device=device)
    x = tensor(np.random.default_rng(5).standard_normal((19, 3, 5)), device, "float32")
    trained = lstm(x, lengths=[19, 4, 11])
    with mg.no_grad():
        inferred = lstm(x, lengths=[19, 4, 11])
    for a, b in zip(outputs_list(trained), outputs_list(inferred)):
        np.testing.assert_array_equal(cpu(a.detach()), cpu(b))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("lengths", [None, [19, 4, 11, 19, 1]], ids=["full", "lengths"])
def test_lstm_forward_bitwise(device, dtype, reverse, lengths, monkeypatch):
    """The NumPy forward folds sigmoid's halving into the weight and the input part, (x + b) / 2
    + (W / 2) h, and adds the product in the GEMM (BLAS beta = 1): exact rewrites of the
    reference's ((x + b) + W h) / 2, so its outputs equal the composite reference's bit for bit
    over several blocks of steps; the same without NumPy's BLAS reachable (product and add)."""
    if device != "cpu":
        pytest.skip("the NumPy kernel's arithmetic (the CUDA kernel's is tested to tolerance)")
    T, B, H = 19, 5, 16
    mask = rc.mask_tensor(lengths, T, device)
    inputs = rc.layer_inputs("lstm", device, T, B, H, dtype, seed=7)
    with mg.no_grad():
        ref = outputs_list(rc.reference_fn("lstm", mask, reverse)(*inputs))
    fused = outputs_list(rc.layer_fn("lstm", mask, reverse)(*inputs))  # training forward
    for a, b in zip(fused, ref):
        np.testing.assert_array_equal(cpu(a.detach()), cpu(b))
    monkeypatch.setattr(kernels.lstm, "blas_gemm", lambda dtype: None)
    for a, b in zip(outputs_list(rc.layer_fn("lstm", mask, reverse)(*inputs)), fused):
        np.testing.assert_array_equal(cpu(a.detach()), cpu(b.detach()))


def test_blas_gemm_accumulates():
    """kernels._numpy.blas_gemm: NumPy's own BLAS GEMM (None for a dtype it has none for, or
    another BLAS); C <- A B + C with row strides, as the LSTM forward calls it."""
    from minigrad.kernels import _numpy

    assert _numpy.blas_gemm(np.float16) is None and _numpy.blas_gemm(np.int32) is None
    for dt in (np.float32, np.float64):
        gemm = _numpy.blas_gemm(dt)
        if gemm is None:
            pytest.skip("NumPy's BLAS is not the wheels' OpenBLAS")
        rng = np.random.default_rng(0)
        a = rng.standard_normal((6, 4)).astype(dt)
        wide = rng.standard_normal((4, 9)).astype(dt)
        b = wide[:, 2:5]  # a row stride of 9
        c = rng.standard_normal((6, 3)).astype(dt)
        expected = c + a @ b
        gemm(_numpy.ROW_MAJOR, _numpy.NO_TRANS, _numpy.NO_TRANS, 6, 3, 4, 1.0, a.ctypes.data,
             4, b.ctypes.data, 9, 1.0, c.ctypes.data, 3)
        np.testing.assert_allclose(c, expected, rtol=1e-6 if dt == np.float32 else 1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_transposed_copy(dtype):
    """kernels._numpy.transposed: a C-contiguous copy of a.T (the BLAS's omatcopy for a
    C-contiguous float matrix, NumPy otherwise), equal to np.ascontiguousarray(a.T)."""
    from minigrad.kernels import _numpy

    a = (np.arange(7 * 5) * 0.37).astype(dtype).reshape(7, 5)
    for case in (a, a[:, 1:4], a[::2], np.zeros((0, 3), dtype)):
        out = _numpy.transposed(case)
        assert out.flags.c_contiguous and out.dtype == case.dtype
        np.testing.assert_array_equal(out, case.T)
