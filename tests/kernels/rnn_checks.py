"""Checks shared by the LSTM and GRU cases of test_rnn_kernels.py: the fused recurrent layers
against the composite ``references.lstm_layer`` / ``references.gru_layer``."""

import numpy as np
from kernel_utils import (assert_same, assert_same_second_order, cpu, grad_fn_names, run,
                          tensor)

import minigrad as mg
from minigrad import kernels, nn, references

GATES = {"lstm": 4, "gru": 3}
MODULES = {"lstm": nn.LSTM, "gru": nn.GRU}


def layer_fn(kind, mask, reverse):
    """The fused Function's entry point as a function of tensors (for gradcheck)."""
    if kind == "lstm":
        return lambda xp, h0, c0, w, b: kernels.lstm.apply(xp, h0, c0, w, b, mask, reverse)
    return lambda xp, h0, w, b: kernels.gru.apply(xp, h0, w, b, mask, reverse)


def reference_fn(kind, mask, reverse):
    if kind == "lstm":
        return lambda xp, h0, c0, w, b: references.lstm_layer(xp, h0, c0, w, b, mask, reverse)
    return lambda xp, h0, w, b: references.gru_layer(xp, h0, w, b, mask, reverse)


def layer_inputs(kind, device, T, B, H, dtype="float64", scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    G = GATES[kind] * H
    x_proj = tensor(rng.standard_normal((T, B, G)) * scale, device, dtype, True)
    h0 = tensor(rng.standard_normal((B, H)), device, dtype, True)
    w = tensor(rng.standard_normal((G, H)) / np.sqrt(H), device, dtype, True)
    b = tensor(rng.standard_normal(G) * 0.1, device, dtype, True)
    if kind == "lstm":
        c0 = tensor(rng.standard_normal((B, H)), device, dtype, True)
        return [x_proj, h0, c0, w, b]
    return [x_proj, h0, w, b]


def mask_tensor(lengths, T, device):
    if lengths is None:
        return None
    valid = np.arange(T)[:, None] < np.asarray(lengths)[None, :]
    return mg.tensor(valid[:, :, None], device=device)


def check_matches_reference(kind, device, lengths, reverse, dtype):
    T, B, H = 6, len(lengths) if lengths else 3, 5
    mask = mask_tensor(lengths, T, device)
    inputs = layer_inputs(kind, device, T, B, H, dtype)
    fused, ref = layer_fn(kind, mask, reverse), reference_fn(kind, mask, reverse)
    out_f, g_f = run(fused, inputs, True)
    out_r, g_r = run(ref, inputs, True)  # the reference never dispatches
    tol = dict(rtol=1e-9, atol=1e-11) if dtype == "float64" else dict(rtol=2e-4, atol=2e-5)
    for a, b in zip(out_f + g_f, out_r + g_r):
        assert a.dtype == np.dtype(dtype)
        np.testing.assert_allclose(a, b, **tol)


def check_final_state_only(kind, device, lengths, reverse, dtype):
    """A loss on the final states alone (the sequence output unused, its gradient all zeros:
    the NumPy kernels then skip the per-step upstream adds), as a classifier over the last
    state trains: gradients equal the reference's."""
    T, B, H = 6, 4, 5
    mask = mask_tensor(lengths, T, device)
    inputs = layer_inputs(kind, device, T, B, H, dtype)
    grads = []
    for fn in (layer_fn(kind, mask, reverse), reference_fn(kind, mask, reverse)):
        for t in inputs:
            t.grad = None
        with mg.use_fused(True):
            finals = fn(*inputs)[1:]
            loss = sum(((f * f).sum() * (i + 1) for i, f in enumerate(finals)), start=0)
            grads.append([cpu(g) for g in mg.grad(loss, inputs)])
    tol = dict(rtol=1e-9, atol=1e-11) if dtype == "float64" else dict(rtol=2e-4, atol=2e-5)
    for a, b in zip(*grads):
        assert a.dtype == np.dtype(dtype)
        np.testing.assert_allclose(a, b, **tol)


def check_gradcheck(kind, device, reverse):
    T, B, H = 4, 3, 3
    mask = mask_tensor([4, 2, 1], T, device)
    inputs = layer_inputs(kind, device, T, B, H)
    assert mg.autograd.gradcheck(layer_fn(kind, mask, reverse), inputs)


def check_second_order(kind, device):
    T, B, H = 3, 2, 2
    mask = mask_tensor([3, 2], T, device)
    inputs = layer_inputs(kind, device, T, B, H)
    fused, ref = layer_fn(kind, mask, False), reference_fn(kind, mask, False)
    g1_f, g2_f = _second(fused, inputs)
    g1_r, g2_r = _second(ref, inputs)
    for a, b in zip(g1_f + g2_f, g1_r + g2_r):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)
    # and through the module, fused on vs off
    m = MODULES[kind](2, 3, num_layers=2, bidirectional=True).double().to(device)
    x = tensor(np.random.default_rng(3).standard_normal((3, 2, 2)), device, "float64", True)
    assert_same_second_order(lambda x, *p: m(x, lengths=[3, 1]), [x, *m.parameters()])


def _second(fn, inputs):
    rng = np.random.default_rng(5)
    outs = [o for o in fn(*inputs) if o.requires_grad]
    loss = sum((o * mg.tensor(rng.standard_normal(o.shape), dtype=o.dtype,
                              device=o.device)).sum() for o in outs)
    gs = mg.grad(loss, inputs, create_graph=True)
    total = sum((g * g).sum() for g in gs)
    g2 = mg.grad(total, inputs)
    return [cpu(g) for g in gs], [cpu(g) for g in g2]


def check_module_paths(kind, device, dtype, bidirectional, batch_first, bias, lengths):
    m = MODULES[kind](4, 5, num_layers=2, bias=bias, batch_first=batch_first,
                      bidirectional=bidirectional).to(device=device, dtype=dtype)
    rng = np.random.default_rng(1)
    shape = (3, 7, 4) if batch_first else (7, 3, 4)
    x = tensor(rng.standard_normal(shape), device, dtype, True)
    assert_same(lambda x, *p: m(x, lengths=lengths), [x, *m.parameters()], dtype=dtype)


def check_noncontiguous(kind, device):
    T, B, H = 5, 3, 4
    G = GATES[kind] * H
    rng = np.random.default_rng(2)
    # x_proj as a transposed view (B, T, G) -> (T, B, G); W_hh as the transpose of (H, G)
    xb = tensor(rng.standard_normal((B, T, G)), device, "float64", True)
    wt = tensor(rng.standard_normal((H, G)) / 2, device, "float64", True)
    h0 = tensor(rng.standard_normal((B, H)), device, "float64", True)
    c0 = tensor(rng.standard_normal((B, H)), device, "float64", True)
    mask = mask_tensor([5, 2, 4], T, device)

    def fn(xb, wt, h0, c0):
        xp, w = xb.transpose(0, 1), wt.T
        assert not xp.data.flags.c_contiguous and not w.data.flags.c_contiguous
        pick = layer_fn if mg.fused.is_fused() else reference_fn
        if kind == "lstm":
            return pick(kind, mask, False)(xp, h0, c0, w, None)
        return pick(kind, mask, True)(xp, h0, w, None)

    assert_same(fn, [xb, wt, h0, c0])


def check_all_masked_row(kind, device):
    """A batch row padded at every step keeps its initial state and outputs zeros."""
    T, B, H = 4, 3, 3
    mask = mask_tensor([4, 0, 2], T, device)
    inputs = layer_inputs(kind, device, T, B, H)
    out_f, g_f = run(layer_fn(kind, mask, False), inputs, True)
    out_r, g_r = run(reference_fn(kind, mask, False), inputs, True)
    for a, b in zip(out_f + g_f, out_r + g_r):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)
    np.testing.assert_array_equal(out_f[0][:, 1], 0.0)
    np.testing.assert_array_equal(out_f[1][1], cpu(inputs[1])[1])  # h_n of row 1 is h0


def check_extreme_inputs(kind, device, dtype):
    """Pre-activations of magnitude 1e4 saturate the gates without inf or nan."""
    T, B, H = 4, 2, 3
    inputs = layer_inputs(kind, device, T, B, H, dtype, scale=1e4)
    out_f, g_f = run(layer_fn(kind, None, False), inputs, True)
    out_r, g_r = run(reference_fn(kind, None, False), inputs, True)
    for a, b in zip(out_f + g_f, out_r + g_r):
        assert np.all(np.isfinite(a))
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def check_switch(kind, device):
    m = MODULES[kind](3, 4).to(device)
    x = tensor(np.ones((2, 1, 3)), device, "float32", True)
    # on the CPU the fused LSTM makes the input projection inside the layer (LSTMInputFn)
    fn_name = "GRUFn" if kind == "gru" else "LSTMInputFn" if device == "cpu" else "LSTMFn"
    with mg.use_fused(True):
        assert fn_name in grad_fn_names(m(x)[0])
    with mg.use_fused(False):
        assert fn_name not in grad_fn_names(m(x)[0])
    mg.use_fused(False)
    try:
        assert fn_name not in grad_fn_names(m(x)[0])
    finally:
        mg.use_fused(True)
    # float16 has no kernel: the composite runs
    m16 = MODULES[kind](3, 4).to(device=device, dtype=mg.float16)
    assert fn_name not in grad_fn_names(m16(x.to(mg.float16))[0])
