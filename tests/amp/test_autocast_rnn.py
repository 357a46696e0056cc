"""Autocast on the recurrent layers and cells: output dtypes against PyTorch's CPU autocast
(its oneDNN LSTM layer is on the lower-precision list, the GRU and the cells are composites
whose state update promotes with the state's dtype), CUDA's rule on the stand-in (every RNN
layer and cell in float16), float32 master weights, values near the float32 run, both the
fused and the composite paths."""

import numpy as np
import pytest

import minigrad as mg

MODULES = ["LSTM", "GRU", "LSTMCell", "GRUCell"]


def _needs_bfloat16():
    pytest.importorskip("ml_dtypes")  # bfloat16 on NumPy (CI installs it)


def _arrays(name):
    """x and the initial state(s) as float32 NumPy arrays (cells: (4, 8) and (4, 6))."""
    rng = np.random.default_rng(0)
    cell = name.endswith("Cell")
    x = rng.standard_normal((4, 8) if cell else (3, 4, 8)).astype(np.float32)
    states = [rng.standard_normal((4, 6) if cell else (1, 4, 6)).astype(np.float32)
              for _ in range(2 if "LSTM" in name else 1)]
    return x, states


def _call(lib, module, name, x, states, x_low, hx_kind, low):
    """Run ``module`` on x (low or float32) with hx None, float32 or low."""
    x = lib.tensor(x)
    if x_low:
        x = x.to(low)
    hx = None
    if hx_kind is not None:
        hs = [lib.tensor(s) for s in states]
        if hx_kind == "low":
            hs = [h.to(low) for h in hs]
        hx = tuple(hs) if "LSTM" in name else hs[0]
    return module(x, hx)


def _dtypes(out):
    if isinstance(out, tuple):
        return tuple(_dtypes(o) for o in out)
    return str(out.dtype).replace("torch.", "")


@pytest.mark.torch
@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("low", ["bfloat16", "float16"])
@pytest.mark.parametrize("hx_kind", [None, "float32", "low"])
@pytest.mark.parametrize("x_low", [False, True])
@pytest.mark.parametrize("name", MODULES)
def test_cpu_output_dtypes_match_torch(name, x_low, hx_kind, low, fused):
    torch = pytest.importorskip("torch")
    if low == "bfloat16":
        _needs_bfloat16()
    if name == "LSTM" and low == "float16" and x_low and hx_kind == "float32":
        pytest.skip("PyTorch's float16 LSTM input while recording gradients leaves oneDNN for "
                    "its composite path (float32 out); minigrad keeps the listed oneDNN rule")
    x, states = _arrays(name)
    torch.manual_seed(0)
    theirs = getattr(torch.nn, name)(8, 6)
    try:
        with torch.autocast("cpu", dtype=getattr(torch, low)):
            want = _call(torch, theirs, name, x, states, x_low, hx_kind, getattr(torch, low))
    except RuntimeError as err:  # oneDNN without float16 on this CPU
        pytest.skip(f"PyTorch cannot run this case here: {str(err)[:80]}")
    ours = getattr(mg.nn, name)(8, 6)
    with mg.use_fused(fused), mg.autocast("cpu", dtype=getattr(mg, low)):
        got = _call(mg, ours, name, x, states, x_low, hx_kind, getattr(mg, low))
    assert _dtypes(got) == _dtypes(want)


@pytest.mark.torch
@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("name", MODULES)
def test_values_near_the_float32_run_and_float32_grads(name, fused):
    torch = pytest.importorskip("torch")
    x, states = _arrays(name)
    theirs = getattr(torch.nn, name)(8, 6)
    ours = getattr(mg.nn, name)(8, 6)
    ours.load_state_dict({k: mg.tensor(v.detach().numpy()) for k, v in
                          theirs.state_dict().items()})
    want = _call(torch, theirs, name, x, states, False, "float32", torch.float16)
    with mg.use_fused(fused), mg.autocast("cpu", dtype=mg.float16):
        got = _call(mg, ours, name, x, states, False, "low", mg.float16)
    first = lambda o: o[0] if isinstance(o, tuple) else o  # noqa: E731
    got_out, want_out = first(got), first(want)
    assert got_out.dtype == mg.float16
    np.testing.assert_allclose(got_out.detach().float().numpy(), want_out.detach().numpy(),
                               atol=1e-2)
    got_out.float().sum().backward()
    for p in ours.parameters():  # master weights: float32 parameters, float32 gradients
        assert p.dtype == mg.float32 and p.grad is not None and p.grad.dtype == mg.float32
        assert np.isfinite(p.grad.numpy()).all()


@pytest.mark.parametrize("name", MODULES)
def test_float64_and_disabled_are_untouched(name):
    x, states = _arrays(name)
    module = getattr(mg.nn, name)(8, 6).double()
    with mg.autocast("cpu", dtype=mg.float16):
        out = module(mg.tensor(x.astype(np.float64)))
    assert _dtypes(out) in ("float64", ("float64", "float64"), ("float64", ("float64", "float64")))
    module = getattr(mg.nn, name)(8, 6)
    with mg.autocast("cpu", dtype=mg.float16, enabled=False):
        with pytest.raises(RuntimeError, match="dtype"):  # no autocast: the usual check
            module(mg.tensor(x).to(mg.float16))


@pytest.mark.gpu
@pytest.mark.parametrize("hx_kind", [None, "float32"])
@pytest.mark.parametrize("name", MODULES)
def test_cuda_every_rnn_runs_in_float16(name, hx_kind):
    if not mg.cuda.is_available():
        pytest.skip("needs CuPy and an NVIDIA GPU")
    x, states = _arrays(name)
    module = getattr(mg.nn, name)(8, 6).to("cuda")
    x = mg.tensor(x, device="cuda")
    hx = None
    if hx_kind is not None:
        hs = [mg.tensor(s, device="cuda") for s in states]
        hx = tuple(hs) if "LSTM" in name else hs[0]
    with mg.autocast("cuda"):
        out = module(x, hx)
    flat = []
    stack = [out]
    while stack:
        o = stack.pop()
        if isinstance(o, tuple):
            stack.extend(o)
        else:
            flat.append(o)
    assert all(o.dtype == mg.float16 and o.device.type == "cuda" for o in flat)
    flat[0].float().sum().backward()
    for p in module.parameters():
        assert p.dtype == mg.float32 and p.grad.dtype == mg.float32


@pytest.mark.torch
@pytest.mark.parametrize("hx_low", [False, True])
@pytest.mark.parametrize("name", ["LSTM", "GRU"])
def test_cpu_stacked_bidirectional_batch_first_match_torch(name, hx_low):
    torch = pytest.importorskip("torch")
    _needs_bfloat16()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 5, 8)).astype(np.float32)  # (B, T, I)
    states = [rng.standard_normal((4, 4, 6)).astype(np.float32)  # (L*D, B, H)
              for _ in range(2 if name == "LSTM" else 1)]

    def run(lib):
        module = getattr(lib.nn, name)(8, 6, num_layers=2, bidirectional=True,
                                       batch_first=True, dropout=0.5)
        hs = [lib.tensor(s) for s in states]
        if hx_low:
            hs = [h.to(lib.bfloat16) for h in hs]
        hx = tuple(hs) if name == "LSTM" else hs[0]
        with lib.autocast("cpu", dtype=lib.bfloat16):
            out = module(lib.tensor(x), hx)
        assert tuple(out[0].shape) == (4, 5, 12)
        return _dtypes(out)

    assert run(mg) == run(torch)


@pytest.mark.parametrize("name", ["LSTM", "GRU"])
def test_bfloat16_autocast_trains_like_float32(name):
    """A toy task (is the sum of a sequence positive?) trained 60 Adam steps: under CPU
    bfloat16 autocast the loss falls as in float32 (master weights float32)."""
    _needs_bfloat16()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 32, 4)).astype(np.float32)  # (T, B, I)
    y = (x.sum(axis=(0, 2)) > 0).astype(np.int64)

    def train(autocast: bool) -> float:
        mg.manual_seed(0)
        rnn, head = getattr(mg.nn, name)(4, 16), mg.nn.Linear(16, 2)
        params = list(rnn.parameters()) + list(head.parameters())
        opt = mg.optim.Adam(params, lr=2e-2)
        for _ in range(60):
            opt.zero_grad()
            with mg.autocast("cpu", dtype=mg.bfloat16, enabled=autocast):
                out = rnn(mg.tensor(x))[0][-1]
                loss = mg.nn.functional.cross_entropy(head(out), mg.tensor(y))
            loss.backward()
            opt.step()
        assert all(p.dtype == mg.float32 for p in params)
        return loss.item()

    full, mixed = train(False), train(True)
    assert full < 0.05 and mixed < 0.05 and abs(mixed - full) < 0.02, (full, mixed)
