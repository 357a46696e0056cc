"""The CUDA launchers of every fused kernel, run without a GPU on the fake CuPy (tests/fake_cuda)
with emulated kernels, compared with the NumPy branches.

The fake CuPy checks each launch against its kernel's C signature (argument count, scalar
types, pointer dtypes, contiguity) and the device limits, then runs the kernel's maths in NumPy
on the buffers it was given (tests/kernels/cuda_emulation.py); so these tests catch launcher
plumbing errors, fast. The CUDA C itself is compiled by test_cuda_sources.py, executed on the
CPU by test_cuda_simulated.py (the same fake CuPy, with simulated kernels) and on a GPU by the
``gpu`` tests.
"""

import re

import fake_cuda
import numpy as np
import pytest
from cuda_emulation import philox4x32_10
from cuda_sim import unavailable_reason
from fake_cuda._kernels import LAUNCHES
from fake_cuda.cupy import asnumpy

import minigrad as mg
from minigrad import kernels
from minigrad.kernels import _cuda
from minigrad.tensor import Tensor


@pytest.fixture
def fake_cupy(monkeypatch):
    """The fake cupy module, its kernels emulated, on a device with an H100's 132 SMs."""
    return fake_cuda.use(monkeypatch, kernels="emulated", sm_count=132)


def _node(cls, xp, arrays):
    """A bare Function node over the given arrays (what Function.apply would set up)."""
    fn = cls.__new__(cls)
    fn.xp = xp
    fn.inputs = tuple(Tensor._make(a) for a in arrays)
    fn.needs_input_grad = tuple(True for _ in arrays)
    return fn


def _pair(cls, cp, arrays, **params):
    """(the NumPy node, its outputs), (the emulated-CUDA node, its outputs)."""
    ref = _node(cls, np, arrays)
    out_ref = ref.forward(*arrays, **params)
    cuda_arrays = [cp.asarray(a) for a in arrays]
    emu = _node(cls, cp, cuda_arrays)
    out_emu = emu.forward(*cuda_arrays, **params)
    return (ref, out_ref), (emu, out_emu)


def _close(a, b, tol=1e-9):
    for x, y in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
        if x is None or y is None:
            assert x is None and y is None
            continue
        np.testing.assert_allclose(asnumpy(x), asnumpy(y), rtol=tol, atol=tol)


def _mask(lengths, T, xp):
    """The (T, B, 1) validity mask of padded sequences, as a tensor on ``xp``'s device."""
    valid = (np.arange(T)[:, None] < np.asarray(lengths)[None, :])[:, :, None]
    return Tensor._make(xp.asarray(valid))


def emu_arrays(node):
    return [t.data for t in node.inputs]


# kind: (Function, gates, states (h or h and c), the lengths of a padded batch, seed)
RNN = {"lstm": (kernels.lstm.LSTMFn, 4, 2, [5, 2, 0], 0),
       "gru": (kernels.gru.GRUFn, 3, 1, [1, 5, 3], 1)}


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("padded", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("kind", list(RNN))
def test_rnn(fake_cupy, kind, bias, padded, reverse):
    """A layer forward and backward through time: one step kernel a step each way, and the
    upstream gradients are not written (the launcher copies dh before updating it)."""
    cls, gates, n_states, lengths, seed = RNN[kind]
    rng = np.random.default_rng(seed)
    T, B, H = 5, 3, 4
    arrays = ([rng.standard_normal((T, B, gates * H))]
              + [rng.standard_normal((B, H)) for _ in range(n_states)]
              + [rng.standard_normal((gates * H, H)) / 2]
              + ([rng.standard_normal(gates * H)] if bias else []))
    ref = _node(cls, np, arrays)
    emu = _node(cls, fake_cupy, [fake_cupy.asarray(a) for a in arrays])
    masks = [_mask(lengths, T, xp) if padded else None for xp in (np, fake_cupy)]
    out_ref = ref.forward(*arrays, mask=masks[0], reverse=reverse)
    out_emu = emu.forward(*emu_arrays(emu), mask=masks[1], reverse=reverse)
    _close(out_ref, out_emu)
    gys = [rng.standard_normal(o.shape) for o in out_ref]
    gys_emu = [fake_cupy.asarray(g) for g in gys]
    g_ref = ref._backward_numpy(*[g.copy() for g in gys])
    g_emu = emu._backward_cuda(*gys_emu)
    _close(g_ref, g_emu)
    for g, g_dev in zip(gys, gys_emu):
        np.testing.assert_array_equal(g_dev.get(), g)
    assert LAUNCHES == [f"{kind}_step_fwd"] * T + [f"{kind}_step_bwd"] * T


@pytest.mark.parametrize("options", [dict(), dict(label_smoothing=0.2, weight=True,
                                                  ignore_index=1, reduction="none")])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_cross_entropy(fake_cupy, options, dtype):
    rng = np.random.default_rng(2)
    N, C = 6, 5
    x = (rng.standard_normal((N, C)) * 3).astype(dtype)
    t = rng.integers(0, C, N)
    w = rng.random(C).astype(dtype) + 0.1 if options.get("weight") else None
    params = dict(ignore_index=options.get("ignore_index", -100),
                  reduction=options.get("reduction", "mean"),
                  label_smoothing=options.get("label_smoothing", 0.0))
    cls = kernels.softmax_cross_entropy.SoftmaxCrossEntropyFn
    ref = _node(cls, np, [x])
    out_ref = ref.forward(x, target=Tensor._make(t),
                          weight=None if w is None else Tensor._make(w), **params)
    emu = _node(cls, fake_cupy, [fake_cupy.asarray(x)])
    out_emu = emu.forward(emu.inputs[0].data, target=Tensor._make(fake_cupy.asarray(t)),
                          weight=None if w is None else Tensor._make(fake_cupy.asarray(w)),
                          **params)
    tol = 1e-9 if dtype == np.float64 else 1e-5
    _close(out_ref, out_emu, tol)
    gy = np.ones_like(out_ref) if np.ndim(out_ref) else np.asarray(1.0, dtype=dtype)
    with mg.no_grad():
        g_ref = ref.backward(Tensor._make(gy)).data
        g_emu = emu.backward(Tensor._make(fake_cupy.asarray(gy))).data
    _close(g_ref, g_emu, tol)


@pytest.mark.parametrize("affine", [(True, True), (False, False)])
def test_layer_norm(fake_cupy, affine):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 3, 7)) * 5 + 2
    wb = [rng.standard_normal(7) for flag in affine if flag]
    params = dict(n_dims=1, has_weight=affine[0], has_bias=affine[1], eps=1e-5)
    (ref, out_ref), (emu, out_emu) = _pair(kernels.layer_norm.LayerNormFn, fake_cupy,
                                           [x] + wb, **params)
    _close(out_ref, out_emu)
    gy = rng.standard_normal(x.shape)
    with mg.no_grad():
        g_ref = ref.backward(Tensor._make(gy))
        g_emu = emu.backward(Tensor._make(fake_cupy.asarray(gy)))
    _close(tuple(g.data for g in g_ref), tuple(g.data for g in g_emu))


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu(fake_cupy, approximate):
    x = np.linspace(-9, 9, 37).reshape(37, 1)
    (ref, out_ref), (emu, out_emu) = _pair(kernels.gelu.FusedGeluFn, fake_cupy, [x],
                                           approximate=approximate)
    _close(out_ref, out_emu, 1e-12)
    gy = np.cos(x)
    with mg.no_grad():
        _close(ref.backward(Tensor._make(gy)).data,
               emu.backward(Tensor._make(fake_cupy.asarray(gy))).data, 1e-12)


def test_philox_known_answers():
    """Random123's known-answer vectors for Philox-4x32-10 (the emulator mirrors dropout.cu)."""
    words = philox4x32_10(np.array([0]), 0, 0)
    assert [int(w[0]) for w in words] == [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]


def test_dropout(fake_cupy, monkeypatch):
    class FakeGenerator:
        def randint(self, low, high, size, dtype):
            return fake_cupy.asarray(np.array([12345, 678], dtype=dtype))

    monkeypatch.setattr(kernels.dropout.backend, "generator", lambda device: FakeGenerator())
    x = np.random.default_rng(4).random((300, 200)) + 1
    emu = _node(kernels.dropout.DropoutFn, fake_cupy, [fake_cupy.asarray(x)])
    y = asnumpy(emu.forward(emu.inputs[0].data, p=0.3))
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(y[kept], x[kept] / 0.7)
    with mg.no_grad():
        g = asnumpy(emu.backward(Tensor._make(fake_cupy.asarray(np.ones_like(x)))).data)
    np.testing.assert_array_equal(g != 0, kept)  # the same mask, regenerated from the seed


@pytest.mark.parametrize("kind", ["none", "causal", "bool", "padding", "float"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_attention(fake_cupy, kind, dtype):
    rng = np.random.default_rng(5)
    B, H, L, S, E, Ev = 2, 3, 70, 66, 8, 5  # more than one block of 64 rows
    q, k, v = (rng.standard_normal(s).astype(dtype) for s in
               ((B, H, L, E), (B, H, S, E), (B, H, S, Ev)))
    if kind == "causal":
        S = L
        k, v = k[:, :, :1].repeat(L, 2), v[:, :, :1].repeat(L, 2)
        k = k + rng.standard_normal(k.shape).astype(dtype)
    mask, causal = None, kind == "causal"
    if kind == "bool":
        mask = rng.random((L, S)) > 0.3
        mask[5] = False  # a dead row
    elif kind == "padding":
        mask = np.ones((B, 1, 1, S), dtype=bool)
        mask[1, ..., -7:] = False
    elif kind == "float":
        mask = rng.standard_normal((B, 1, L, S)).astype(dtype)
        mask[0, 0, 3, :] = -np.inf
    params = dict(is_causal=causal, scale=0.37)
    ref = _node(kernels.attention.AttentionFn, np, [q, k, v])
    out_ref = ref.forward(q, k, v, mask=None if mask is None else Tensor._make(mask), **params)
    emu = _node(kernels.attention.AttentionFn, fake_cupy,
                [fake_cupy.asarray(a) for a in (q, k, v)])
    out_emu = emu.forward(*emu_arrays(emu), mask=None if mask is None else
                          Tensor._make(fake_cupy.asarray(mask)), **params)
    tol = 1e-9 if dtype == np.float64 else 2e-5
    _close(out_ref, out_emu, tol)
    gy = rng.standard_normal(out_ref.shape).astype(dtype)
    _close(ref._backward_numpy(gy), emu._backward_cuda(fake_cupy.asarray(gy)), tol)
    assert LAUNCHES == ["flash_attn_fwd", "flash_attn_bwd_dq", "flash_attn_bwd_dkdv"]


@pytest.mark.parametrize("options", [dict(), dict(weight_decay=0.1, amsgrad=True, maximize=True),
                                     dict(weight_decay=0.1, decoupled_weight_decay=True)])
def test_adam(fake_cupy, options):
    rng = np.random.default_rng(6)
    shapes = [(3, 4), (5,), (1,), (2, 2, 2)]
    group = dict(lr=0.01, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.0, amsgrad=False,
                 maximize=False, decoupled_weight_decay=False)
    group.update(options)
    results = []
    for cuda in (False, True):
        wrap = fake_cupy.asarray if cuda else (lambda a: a)
        params, state = [], {}
        rng = np.random.default_rng(6)
        for s in shapes:
            p = Tensor._make(wrap(rng.standard_normal(s)))
            p.grad = Tensor._make(wrap(rng.standard_normal(s)))
            params.append(p)
            names = ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if group["amsgrad"] else [])
            state[p] = {n: Tensor._make(wrap(rng.random(s))) for n in names}
        xp = fake_cupy if cuda else np
        flat = kernels.adam._FlatMoments(xp, state, params, group["amsgrad"])
        kernels.adam._update(flat, params, 3.0, group)
        results.append([asnumpy(p.data) for p in params] +
                       [asnumpy(state[p]["exp_avg_sq"].data) for p in params])
    _close(tuple(results[0]), tuple(results[1]), 1e-12)
    assert LAUNCHES == ["adam_multi_tensor"]


def test_name_expressions():
    assert _cuda.name_expressions(kernels.lstm.CUDA_KERNELS, np.float32) == [
        "lstm_step_fwd<float>", "lstm_step_bwd<float>"]
    exprs = _cuda.name_expressions(kernels.attention.CUDA_KERNELS, np.float64,
                                   kernels.attention.CUDA_VARIANTS)
    assert "flash_attn_fwd<double, 128>" in exprs and "flash_attn_bwd_dq<float, 64>" not in exprs
    assert len(exprs) == 6
    with pytest.raises(TypeError, match="float32 or float64"):
        _cuda.ctype(np.float16)


def _bad_launches(cp):
    """(name, launch arguments changed from a good gelu_fwd<float> launch, error, message)."""
    x = cp.zeros(40, dtype=np.float32)
    y, d = cp.empty(40, dtype=np.float32), cp.empty(40, dtype=np.float32)  # NaN until written
    good = dict(grid=(1,), block=(64,), args=(x, y, d, np.int64(40), np.int32(0)), shared_mem=0)
    bad = [
        ("count", dict(args=(x, y, d, np.int64(40))), AssertionError, "4 arguments for 5"),
        ("dtype", dict(args=(x, y, cp.zeros(40), np.int64(40), np.int32(0))), AssertionError,
         "argument 2 (float*): dtype float64"),
        ("strided", dict(args=(x[::2], y, d, np.int64(20), np.int32(0))), AssertionError,
         "argument 0 (const float*): not contiguous"),
        ("python int", dict(args=(x, y, d, 40, np.int32(0))), AssertionError,
         "argument 3 (long long): got int"),
        ("scalar type", dict(args=(x, y, d, np.int32(40), np.int32(0))), AssertionError,
         "argument 3 (long long): got int32"),
        ("scalar for pointer", dict(args=(x, np.float32(0), d, np.int64(40), np.int32(0))),
         AssertionError, "argument 1 (float*): expected a device array"),
        ("host array", dict(args=(x, np.zeros(40, np.float32), d, np.int64(40), np.int32(0))),
         TypeError, "Unsupported type"),
        ("list", dict(args=[x, y, d, np.int64(40), np.int32(0)]), TypeError, "must be a tuple"),
        ("block", dict(block=(1025,)), AssertionError, "block (1025,)"),
        ("grid.y", dict(grid=(1, 65536)), AssertionError, "over 65535"),
        ("shared memory", dict(shared_mem=48 * 1024 + 1), AssertionError, "bytes of shared"),
    ]
    return good, bad


@pytest.mark.parametrize("backend", ["emulated", "simulated"])
def test_every_launch_is_checked(monkeypatch, backend):
    """The fake CuPy holds each launch against the kernel's signature and the device's limits,
    whichever back end runs it: each of these launches fails, and only the good one runs."""
    if backend == "simulated" and unavailable_reason():
        pytest.skip(unavailable_reason())
    cp = fake_cuda.use(monkeypatch, kernels=backend)
    fn = _cuda.kernel("gelu", kernels.gelu.CUDA_KERNELS, "gelu_fwd", np.float32, 0)
    good, bad = _bad_launches(cp)
    for name, change, error, message in bad:
        launch = {**good, **change}
        with pytest.raises(error, match=re.escape(message)):
            fn(launch["grid"], launch["block"], launch["args"], shared_mem=launch["shared_mem"])
        assert LAUNCHES == [], name
    fn(good["grid"], good["block"], good["args"], shared_mem=good["shared_mem"])
    assert LAUNCHES == ["gelu_fwd"]
    np.testing.assert_array_equal(good["args"][1].get(), 0)  # gelu(0): it ran
    with pytest.raises(KeyError, match="not one of"):
        _cuda.kernel("gelu", kernels.gelu.CUDA_KERNELS, "gelu_bwd", np.float32, 0,
                     variant=64)
