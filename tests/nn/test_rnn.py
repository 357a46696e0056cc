"""LSTM, GRU and their cells: gradients, padded batches (``lengths``), errors, PyTorch parity."""

import numpy as np
import pytest
from conftest import to_numpy
from helpers import (
    assert_param_grads_match, copy_mg_to_torch, copy_torch_to_mg, graph_on_first_call, tensor64,
)

import minigrad as mg
from minigrad import nn

RNNS = {"LSTM": nn.LSTM, "GRU": nn.GRU}
GATES = {"LSTM": 4, "GRU": 3}


def _flat_run(m, kind, x, h0=None, c0=None, lengths=None):
    """Run ``m`` and return its outputs as a flat tuple (gradcheck wants Tensors)."""
    if kind == "LSTM":
        hx = None if h0 is None else (h0, c0)
        out, (h, c) = m(x, hx, lengths=lengths)
        return out, h, c
    out, h = m(x, h0, lengths=lengths)
    return out, h


# ---------------------------------------------------------------------------- parameters


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_parameter_names_shapes_and_init(kind):
    m = RNNS[kind](3, 5, num_layers=2, bidirectional=True)
    g = GATES[kind] * 5
    expected = {}
    for layer, n_in in ((0, 3), (1, 10)):
        for sfx in ("", "_reverse"):
            expected[f"weight_ih_l{layer}{sfx}"] = (g, n_in)
            expected[f"weight_hh_l{layer}{sfx}"] = (g, 5)
            expected[f"bias_ih_l{layer}{sfx}"] = (g,)
            expected[f"bias_hh_l{layer}{sfx}"] = (g,)
    sd = m.state_dict()
    assert {k: tuple(v.shape) for k, v in sd.items()} == expected
    assert list(sd)[:4] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    bound = 1 / np.sqrt(5)
    for p in m.parameters():
        assert p.dtype == np.float32
        assert np.abs(to_numpy(p)).max() <= bound
    assert len(m.all_weights) == 4 and len(m.all_weights[0]) == 4
    no_bias = RNNS[kind](3, 5, bias=False)
    assert list(no_bias.state_dict()) == ["weight_ih_l0", "weight_hh_l0"]


def test_repr():
    assert repr(nn.LSTM(3, 5)) == "LSTM(3, 5)"
    assert repr(nn.GRU(3, 5, num_layers=2, batch_first=True, dropout=0.5, bidirectional=True)) == (
        "GRU(3, 5, num_layers=2, batch_first=True, dropout=0.5, bidirectional=True)"
    )
    assert repr(nn.LSTMCell(3, 5, bias=False)) == "LSTMCell(3, 5, bias=False)"


# ---------------------------------------------------------------------------- gradcheck


@pytest.mark.slow_in_simulator("30-45 s per case (gradcheck, a launch per time step)")
@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_gradcheck_two_layers_bidirectional_lengths(kind, device):
    # every input: x, the initial states and all 16 parameters; one sequence padded
    m = RNNS[kind](2, 3, num_layers=2, bidirectional=True).double().to(device)
    rng = np.random.default_rng(0)
    x = tensor64(rng.standard_normal((4, 2, 2)), device, requires_grad=True)  # (T, B, I)
    states = [tensor64(rng.standard_normal((4, 2, 3)), device, requires_grad=True)
              for _ in range(2 if kind == "LSTM" else 1)]
    params = list(m.parameters())
    assert len(params) == 16

    def fn(x, *rest):
        return _flat_run(m, kind, x, *rest[: len(states)], lengths=[4, 2])

    assert mg.autograd.gradcheck(graph_on_first_call(fn), [x, *states, *params])


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_gradcheck_batch_first_unbatched_no_bias(kind, device):
    m = RNNS[kind](2, 3, bias=False, batch_first=True).double().to(device)
    rng = np.random.default_rng(1)
    x = tensor64(rng.standard_normal((2, 3, 2)), device, requires_grad=True)  # (B, T, I)
    params = list(m.parameters())
    assert mg.autograd.gradcheck(lambda x, *p: _flat_run(m, kind, x, lengths=[1, 3]),
                                 [x, *params])
    xu = tensor64(rng.standard_normal((3, 2)), device, requires_grad=True)  # unbatched (T, I)
    assert mg.autograd.gradcheck(lambda x, *p: _flat_run(m, kind, x), [xu, *params])


@pytest.mark.parametrize("kind", ["LSTMCell", "GRUCell"])
def test_gradcheck_cells(kind, device):
    cell = getattr(nn, kind)(2, 3).double().to(device)
    rng = np.random.default_rng(2)
    x = tensor64(rng.standard_normal((2, 2)), device, requires_grad=True)
    h = tensor64(rng.standard_normal((2, 3)), device, requires_grad=True)
    c = tensor64(rng.standard_normal((2, 3)), device, requires_grad=True)
    params = list(cell.parameters())
    if kind == "LSTMCell":
        assert mg.autograd.gradcheck(lambda x, h, c, *p: cell(x, (h, c)), [x, h, c, *params])
    else:
        assert mg.autograd.gradcheck(lambda x, h, *p: cell(x, h), [x, h, *params])


# ---------------------------------------------------------------------------- semantics


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_lengths_match_running_each_sequence_alone(kind, bidirectional, device):
    m = RNNS[kind](2, 3, num_layers=2, bidirectional=bidirectional, batch_first=True).double()
    m.to(device)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 5, 2))
    lengths = [5, 2, 3]
    out, *finals = _flat_run(m, kind, tensor64(x, device), lengths=np.array(lengths))
    out = to_numpy(out)
    for b, n in enumerate(lengths):
        alone, *alone_finals = _flat_run(m, kind, tensor64(x[b:b + 1, :n], device))
        np.testing.assert_allclose(out[b, :n], to_numpy(alone)[0], atol=1e-12)
        assert np.all(out[b, n:] == 0)  # padded outputs are exactly zero
        for f, a in zip(finals, alone_finals):
            np.testing.assert_allclose(to_numpy(f)[:, b], to_numpy(a)[:, 0], atol=1e-12)


@pytest.mark.parametrize("lengths", [[3, 1], (3, 1), np.array([3, 1]), "tensor"])
def test_lengths_accepts_lists_arrays_and_tensors(lengths):
    m = nn.GRU(2, 3)
    if isinstance(lengths, str):
        lengths = mg.tensor([3, 1])
    x = mg.randn(3, 2, 2)
    out, _ = m(x, lengths=lengths)
    assert np.all(to_numpy(out)[1:, 1] == 0)
    full, _ = m(x, lengths=[3, 3])  # all full: same as no lengths
    np.testing.assert_array_equal(to_numpy(full), to_numpy(m(x)[0]))


def test_float32_stays_float32(device):
    m = nn.LSTM(2, 3, num_layers=2).to(device)
    x = mg.randn(4, 2, 2, device=device, requires_grad=True)
    out, (h, c) = m(x, lengths=[4, 2])
    assert out.dtype == h.dtype == c.dtype == np.float32
    out.sum().backward()
    assert x.grad.dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in m.parameters())


def test_dropout_between_layers_only_in_training():
    m = nn.LSTM(2, 3, num_layers=2, dropout=0.5)
    x = mg.randn(5, 2, 2)
    m.eval()
    a, _ = m(x)
    b, _ = m(x)
    np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    m.train()
    outs = [to_numpy(m(x)[0]) for _ in range(3)]
    assert not np.allclose(outs[0], outs[1])
    one_layer = nn.GRU(2, 3, dropout=0.5)  # no layer after the first: dropout never applies
    one_layer.train()
    np.testing.assert_array_equal(to_numpy(one_layer(x)[0]), to_numpy(one_layer(x)[0]))


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_thousand_steps_backward(kind):
    # the engine is iterative: a 1000-step graph must not hit Python's recursion limit
    m = RNNS[kind](2, 3)
    x = mg.randn(1000, 1, 2, requires_grad=True)
    out, *_ = _flat_run(m, kind, x)
    out.sum().backward()
    assert np.isfinite(x.grad.numpy()).all()
    assert np.abs(x.grad.numpy()[0]).sum() > 0  # the first step still gets a gradient
    assert all(np.isfinite(p.grad.numpy()).all() for p in m.parameters())


# ---------------------------------------------------------------------------- errors


def test_errors_name_expected_and_actual_shapes():
    m = nn.LSTM(4, 3, num_layers=2)
    x = mg.randn(5, 2, 4)
    with pytest.raises(ValueError, match=r"Expected 4, got 6"):
        m(mg.randn(5, 2, 6))
    with pytest.raises(ValueError, match=r"2-D .* or 3-D .* got 4-D"):
        m(mg.randn(5, 2, 4, 1))
    h, c = mg.zeros(2, 2, 3), mg.zeros(2, 2, 3)
    with pytest.raises(ValueError, match=r"h_0 of shape \(2, 2, 3\).*got \(1, 2, 3\)"):
        m(x, (mg.zeros(1, 2, 3), c))
    with pytest.raises(ValueError, match=r"c_0 of shape \(2, 2, 3\).*got \(2, 2, 4\)"):
        m(x, (h, mg.zeros(2, 2, 4)))
    with pytest.raises(ValueError, match=r"h_0 of shape \(2, 3\).*unbatched"):
        m(mg.randn(5, 4), (h, c))
    with pytest.raises(TypeError, match=r"tuple \(h_0, c_0\)"):
        m(x, h)
    with pytest.raises(ValueError, match=r"hx of shape \(1, 2, 3\).*got \(1, 3, 3\)"):
        nn.GRU(4, 3)(x, mg.zeros(1, 3, 3))
    with pytest.raises(ValueError, match=r"exceed the sequence length 5.*\[6, 2\]"):
        m(x, lengths=[6, 2])
    with pytest.raises(ValueError, match=r"expected shape \(2,\), got \(3,\)"):
        m(x, lengths=[5, 2, 1])
    with pytest.raises(ValueError, match=r"positive.*\[5, 0\]"):
        m(x, lengths=[5, 0])
    with pytest.raises(TypeError, match="integers"):
        m(x, lengths=[5.0, 2.0])
    with pytest.raises(RuntimeError, match="dtype float64.*float32"):
        m(x.double())
    with pytest.raises(ValueError, match="input_size: got 2, expected 4"):
        nn.GRUCell(4, 3)(mg.randn(2, 2))
    with pytest.raises(ValueError, match=r"hx of shape \(2, 3\), got \(2, 4\)"):
        nn.GRUCell(4, 3)(mg.randn(2, 4), mg.zeros(2, 4))
    with pytest.raises(ValueError, match=r"c of shape \(3,\), got \(2, 3\)"):
        nn.LSTMCell(4, 3)(mg.randn(4), (mg.zeros(3), mg.zeros(2, 3)))
    with pytest.raises(ValueError, match="dropout"):
        nn.LSTM(4, 3, dropout=1.5)


# ---------------------------------------------------------------------------- PyTorch parity


def _torch_module(torch, kind, kwargs, dtype):
    tm = getattr(torch.nn, kind)(**kwargs)
    return tm.double() if dtype == "float64" else tm


def _torch_run(torch, tm, kind, x, hx, lengths, batch_first):
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    inp = x
    if lengths is not None:
        inp = pack_padded_sequence(x, torch.tensor(lengths), batch_first=batch_first,
                                   enforce_sorted=False)
    out, h = tm(inp, hx)
    if lengths is not None:
        total = x.shape[1 if batch_first else 0]
        out, _ = pad_packed_sequence(out, batch_first=batch_first, total_length=total)
    return (out, *h) if kind == "LSTM" else (out, h)


PARITY_CASES = [
    # kwargs, input shape, lengths, with initial state
    (dict(num_layers=2, bidirectional=True), (5, 3), [5, 2, 4], True),
    (dict(num_layers=2, bidirectional=True, batch_first=True), (3, 5), [3, 5, 1], False),
    (dict(num_layers=1), (5, 3), None, True),
    (dict(num_layers=2, bias=False, batch_first=True), (3, 5), None, False),
    (dict(num_layers=2, bidirectional=True), (5,), None, True),  # unbatched (T, I)
]


@pytest.mark.torch
@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
@pytest.mark.parametrize("case", range(len(PARITY_CASES)))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_matches_pytorch(kind, case, dtype, device):
    torch = pytest.importorskip("torch")
    kwargs, lead, lengths, with_hx = PARITY_CASES[case]
    kwargs = dict(input_size=2, hidden_size=3, **kwargs)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == "float64" else dict(rtol=1e-4, atol=1e-4)
    torch.manual_seed(case)
    tm = _torch_module(torch, kind, kwargs, dtype)
    m = RNNS[kind](**kwargs).to(device=device, dtype=dtype)
    assert {k: tuple(v.shape) for k, v in m.state_dict().items()} == {
        k: tuple(v.shape) for k, v in tm.state_dict().items()}
    assert list(m.state_dict()) == list(tm.state_dict())
    if case % 2:  # weights copied both ways
        copy_mg_to_torch(torch, m, tm)
    else:
        copy_torch_to_mg(tm, m)

    rng = np.random.default_rng(case)
    x = rng.standard_normal((*lead, 2)).astype(dtype)
    n_ld = kwargs.get("num_layers", 1) * (2 if kwargs.get("bidirectional") else 1)
    batch = () if len(lead) == 1 else ((lead[0],) if kwargs.get("batch_first") else (lead[1],))
    states = [rng.standard_normal((n_ld, *batch, 3)).astype(dtype)
              for _ in range(2 if kind == "LSTM" else 1)] if with_hx else []

    tx = torch.tensor(x, requires_grad=True)
    ts = [torch.tensor(s, requires_grad=True) for s in states]
    thx = (tuple(ts) if kind == "LSTM" else ts[0]) if with_hx else None
    touts = _torch_run(torch, tm, kind, tx, thx, lengths, kwargs.get("batch_first", False))

    mx = tensor64(x, device, dtype, requires_grad=True)
    ms = [tensor64(s, device, dtype, requires_grad=True) for s in states]
    mouts = _flat_run(m, kind, mx, *ms, lengths=lengths)

    weights = [rng.standard_normal(o.shape).astype(dtype) for o in touts]
    for t, o in zip(touts, mouts):
        np.testing.assert_allclose(to_numpy(o), t.detach().numpy(), **tol)
    sum((t * torch.tensor(w)).sum() for t, w in zip(touts, weights)).backward()
    sum((o * tensor64(w, device, dtype)).sum() for o, w in zip(mouts, weights)).backward()
    np.testing.assert_allclose(to_numpy(mx.grad), tx.grad.numpy(), **tol)
    for a, b in zip(ms, ts):
        np.testing.assert_allclose(to_numpy(a.grad), b.grad.numpy(), **tol)
    assert_param_grads_match(tm, m, **tol)


@pytest.mark.torch
@pytest.mark.parametrize("kind", ["LSTMCell", "GRUCell"])
@pytest.mark.parametrize("batched", [True, False])
def test_cells_match_pytorch(kind, batched, device):
    torch = pytest.importorskip("torch")
    tm = getattr(torch.nn, kind)(2, 3).double()
    m = getattr(nn, kind)(2, 3).double().to(device)
    assert list(m.state_dict()) == list(tm.state_dict())
    copy_torch_to_mg(tm, m)
    rng = np.random.default_rng(4)
    lead = (4,) if batched else ()
    x = rng.standard_normal((*lead, 2))
    states = [rng.standard_normal((*lead, 3)) for _ in range(2 if kind == "LSTMCell" else 1)]
    tx = torch.tensor(x, requires_grad=True)
    ts = [torch.tensor(s, requires_grad=True) for s in states]
    mx = tensor64(x, device, requires_grad=True)
    ms = [tensor64(s, device, requires_grad=True) for s in states]
    if kind == "LSTMCell":
        touts, mouts = tm(tx, tuple(ts)), m(mx, tuple(ms))
    else:
        touts, mouts = (tm(tx, ts[0]),), (m(mx, ms[0]),)
    for t, o in zip(touts, mouts):
        np.testing.assert_allclose(to_numpy(o), t.detach().numpy(), rtol=1e-6, atol=1e-6)
    sum(t.sum() * (i + 1) for i, t in enumerate(touts)).backward()
    sum(o.sum() * (i + 1) for i, o in enumerate(mouts)).backward()
    np.testing.assert_allclose(to_numpy(mx.grad), tx.grad.numpy(), rtol=1e-6, atol=1e-6)
    for a, b in zip(ms, ts):
        np.testing.assert_allclose(to_numpy(a.grad), b.grad.numpy(), rtol=1e-6, atol=1e-6)
    assert_param_grads_match(tm, m, rtol=1e-6, atol=1e-6)
    if kind == "LSTMCell":  # no state given: zeros
        torch_h, _ = tm(tx)
        np.testing.assert_allclose(to_numpy(m(mx)[0]), torch_h.detach().numpy(), atol=1e-12)


# ---------------------------------------------------------------------------- the composite LSTM


def test_composite_lstm_gradcheck_and_double_backward(device):
    """The unfused LSTM (``use_fused(False)``: references.lstm_layer, the biases folded into the
    input projection as one more input column): gradients of first and second order, float64,
    two layers (the second layer's input needs a gradient), both directions, a padded row."""
    m = nn.LSTM(2, 3, num_layers=2, bidirectional=True).double().to(device)
    rng = np.random.default_rng(6)
    x = tensor64(rng.standard_normal((3, 2, 2)), device, requires_grad=True)
    params = list(m.parameters())

    def fn(x, *p):
        return _flat_run(m, "LSTM", x, lengths=[3, 2])

    with mg.use_fused(False):
        assert mg.autograd.gradcheck(fn, [x, *params])
        assert mg.autograd.gradgradcheck(fn, [x, *params[:4]])


def test_composite_lstm_folds_the_bias_into_the_projection(device):
    """No pass adds the biases to the whole (T, B, 4H) projection: it comes out of the GEMM
    with them (an input column of ones), and the composite's values equal the projection plus
    the biases added afterwards (float64). On the CPU: a GPU's projection is one GEMM of its
    own, the biases added to it."""
    from minigrad import references

    if device != "cpu":
        pytest.skip("the gate-major projection is the CPU's")

    m = nn.LSTM(4, 5).double().to(device)
    x = tensor64(np.random.default_rng(8).standard_normal((6, 3, 4)), device)
    with mg.use_fused(False):
        out, (h, c) = m(x)
    projections, seen, todo = [], set(), [out.grad_fn]
    while todo:  # the graph's nodes
        fn = todo.pop()
        if fn is None or id(fn) in seen:
            continue
        seen.add(id(fn))
        if fn.name == "GateMajorProjection":
            projections.append(tuple(fn.inputs[1].shape))
        todo.extend(t.grad_fn for t in fn.inputs)
    assert projections == [(20, 5)]  # W_ih with the biases as its last column
    w_ih, w_hh, b_ih, b_hh = m.weight_ih_l0, m.weight_hh_l0, m.bias_ih_l0, m.bias_hh_l0
    zeros = mg.zeros(3, 5, dtype=mg.float64, device=device)
    x_proj = x @ w_ih.T
    ref = references.lstm_layer(x_proj, zeros, zeros, w_hh, b_ih + b_hh, None)
    for a, b in zip((out, h[0], c[0]), ref):
        np.testing.assert_allclose(to_numpy(a), to_numpy(b), rtol=1e-12, atol=1e-13)


@pytest.mark.torch
@pytest.mark.parametrize("case", range(len(PARITY_CASES)))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_composite_lstm_matches_pytorch(case, dtype, device):
    with mg.use_fused(False):
        test_matches_pytorch("LSTM", case, dtype, device)
