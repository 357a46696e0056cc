"""The fused LSTM and GRU layers (kernels/lstm.py, kernels/gru.py) against the step-numbered
NumPy BPTT of kernels/bptt.py, in float64: the forward outputs and the gradients of every
input. The composite references (autograd through ``references.lstm_layer`` / ``gru_layer``)
are checked against it too, so the readable BPTT is itself tested."""

import numpy as np
import pytest
import rnn_checks as rc
from kernel_utils import cpu
from kernel_utils import fused_on  # noqa: F401  (autouse: kernels on, whatever the env)

import minigrad as mg
from minigrad import kernels, references
from minigrad.kernels import bptt

TOL = dict(rtol=1e-10, atol=1e-12)

LAYERS = {
    "lstm": {"fused": kernels.lstm.apply, "composite": references.lstm_layer,
             "bptt": (bptt.lstm_forward, bptt.lstm_backward)},
    "gru": {"fused": kernels.gru.apply, "composite": references.gru_layer,
            "bptt": (bptt.gru_forward, bptt.gru_backward)},
}


@pytest.mark.parametrize("path", ["fused", "composite"])
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_layer_matches_the_numpy_bptt(kind, path, device):
    T, B, H = 6, 3, 5
    inputs = rc.layer_inputs(kind, device, T, B, H, "float64")  # x_proj, h0[, c0], W_hh, b_hh
    layer = LAYERS[kind][path]
    outs = layer(*inputs, None, False)  # no padding mask, forward direction
    if path == "fused":
        assert type(outs[0].grad_fn).__name__ == ("LSTMFn" if kind == "lstm" else "GRUFn")
    rng = np.random.default_rng(3)
    d_outs = [rng.standard_normal(o.shape) for o in outs]  # d out, d h_n[, d c_n]
    grads = mg.grad(list(outs), inputs, [mg.tensor(d, dtype=mg.float64, device=device)
                                         for d in d_outs])

    forward, backward = LAYERS[kind]["bptt"]
    *expected_outs, cache = forward(*[cpu(t) for t in inputs])
    for got, want in zip(outs, expected_outs):
        np.testing.assert_allclose(cpu(got), want, **TOL)
    expected_grads = backward(*d_outs, cache)
    assert len(expected_grads) == len(inputs)
    for name, got, want in zip(("x_proj", "h0", "c0/W_hh", "W_hh/b_hh", "b_hh"), grads,
                               expected_grads):
        np.testing.assert_allclose(cpu(got), want, **TOL, err_msg=f"{kind} d{name}")


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_bptt_saturated_gates_stay_finite(kind):
    """Pre-activations of 1e4 saturate every gate: the BPTT gives finite numbers, and the
    fused layer the same ones."""
    T, B, H = 4, 2, 3
    inputs = rc.layer_inputs(kind, "cpu", T, B, H, "float64", scale=1e4)
    forward, backward = LAYERS[kind]["bptt"]
    with np.errstate(over="ignore"):  # exp(1e4) = inf: sigmoid 0, as it should
        *outs, cache = forward(*[cpu(t) for t in inputs])
    grads = backward(*[np.ones_like(o) for o in outs], cache)
    fused = LAYERS[kind]["fused"](*inputs, None, False)
    for want, got in zip(outs, fused):
        assert np.all(np.isfinite(want))
        np.testing.assert_allclose(cpu(got), want, **TOL)
    assert all(np.all(np.isfinite(g)) for g in grads)
