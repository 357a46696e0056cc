"""scaled_dot_product_attention, MultiheadAttention and the Transformer encoder: gradients,
masks, fully masked rows, errors and PyTorch parity."""

import math
import warnings

import numpy as np
import pytest
from conftest import to_numpy
from helpers import (
    assert_param_grads_match, copy_mg_to_torch, copy_torch_to_mg, graph_on_first_call, tensor64,
)

import minigrad as mg
from minigrad import nn
from minigrad.nn.attention import scaled_dot_product_attention as sdpa


def _padding(B, S):
    """(B, S) bool key padding: sequence 1 has its last key padded (True = padding)."""
    kpm = np.zeros((B, S), dtype=bool)
    kpm[1, -1] = True
    return kpm


# ---------------------------------------------------------------------------- sdpa


SDPA_MASKS = ["none", "bool", "float", "causal", "dead_row"]


def _sdpa_mask(kind, L, S, rng):
    """(attn_mask array or None, is_causal) for a mask kind, in sdpa's convention."""
    if kind == "bool":
        m = rng.random((L, S)) > 0.4
        m[:, 0] = True  # every query may attend something
        return m, False
    if kind == "float":
        return rng.standard_normal((2, 1, L, S)), False
    if kind == "causal":
        return None, True
    if kind == "dead_row":
        m = np.ones((L, S), dtype=bool)
        m[1] = False  # query 1 may attend nothing
        return m, False
    return None, False


@pytest.mark.parametrize("kind", SDPA_MASKS)
def test_sdpa_gradcheck(kind, device):
    rng = np.random.default_rng(0)
    q = tensor64(rng.standard_normal((2, 2, 3, 4)), device, requires_grad=True)  # (B, h, L, E)
    k = tensor64(rng.standard_normal((2, 2, 4, 4)), device, requires_grad=True)
    v = tensor64(rng.standard_normal((2, 2, 4, 3)), device, requires_grad=True)
    mask, causal = _sdpa_mask(kind, 3, 4, rng)
    inputs = [q, k, v]
    if mask is not None:
        mask = tensor64(mask, device, requires_grad=True)  # a float mask gets a gradient too
        if mask.requires_grad:
            inputs.append(mask)

    def fn(q, k, v, *rest):
        return sdpa(q, k, v, attn_mask=mask, is_causal=causal, scale=0.7)

    assert mg.autograd.gradcheck(fn, inputs)


def test_sdpa_fully_masked_row_gives_zeros_and_zero_gradients(device):
    rng = np.random.default_rng(1)
    q, k, v = (tensor64(rng.standard_normal(s), device, requires_grad=True)
               for s in ((3, 4), (5, 4), (5, 2)))
    allowed = np.ones((3, 5), dtype=bool)
    allowed[1] = False
    for mask in (tensor64(allowed, device), tensor64(np.where(allowed, 0.0, -np.inf), device)):
        out = sdpa(q, k, v, attn_mask=mask)
        assert np.all(to_numpy(out)[1] == 0)
        assert np.isfinite(to_numpy(out)).all()
        q.grad = k.grad = v.grad = None
        out.sum().backward()
        assert np.all(to_numpy(q.grad)[1] == 0)
        for t in (q, k, v):
            assert np.isfinite(to_numpy(t.grad)).all()


def test_sdpa_bool_mask_equals_minus_inf_float_mask_and_causal():
    rng = np.random.default_rng(2)
    q, k, v = (mg.tensor(rng.standard_normal(s)) for s in ((2, 4, 3), (2, 6, 3), (2, 6, 5)))
    allowed = np.tril(np.ones((4, 6), dtype=bool))  # causal, top-left aligned
    a = sdpa(q, k, v, attn_mask=mg.tensor(allowed))
    b = sdpa(q, k, v, attn_mask=mg.tensor(np.where(allowed, 0.0, -np.inf)))
    c = sdpa(q, k, v, is_causal=True)
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)
    np.testing.assert_allclose(a.numpy(), c.numpy(), atol=1e-6)
    # the default scale is 1/sqrt(E)
    np.testing.assert_allclose(sdpa(q, k, v).numpy(), sdpa(q, k, v, scale=1 / math.sqrt(3)).numpy())


def test_sdpa_float32_stays_float32_and_dropout():
    q = mg.randn(2, 5, 4, requires_grad=True)
    out = sdpa(q, q, q, is_causal=True)
    assert out.dtype == np.float32
    out.sum().backward()
    assert q.grad.dtype == np.float32
    with mg.no_grad():
        a, b = sdpa(q, q, q, dropout_p=0.5), sdpa(q, q, q, dropout_p=0.5)
    assert not np.allclose(a.numpy(), b.numpy())  # dropout applies whenever dropout_p > 0


def test_sdpa_grouped_query_attention():
    rng = np.random.default_rng(3)
    q = mg.tensor(rng.standard_normal((1, 4, 3, 2)))  # 4 query heads
    kv = mg.tensor(rng.standard_normal((1, 2, 3, 2)))  # 2 key/value heads
    out = sdpa(q, kv, kv, enable_gqa=True)
    repeated = mg.tensor(np.repeat(kv.numpy(), 2, axis=1))
    np.testing.assert_allclose(out.numpy(), sdpa(q, repeated, repeated).numpy(), atol=1e-6)


def test_sdpa_errors():
    q, k = mg.randn(2, 3, 4), mg.randn(2, 5, 4)
    with pytest.raises(ValueError, match=r"same feature size E.*\(2, 3, 4\).*\(2, 5, 3\)"):
        sdpa(q, mg.randn(2, 5, 3), k)
    with pytest.raises(ValueError, match=r"same sequence length S.*\(2, 5, 4\).*\(2, 6, 4\)"):
        sdpa(q, k, mg.randn(2, 6, 4))
    with pytest.raises(ValueError, match=r"attn_mask of shape \(4, 5\) does not broadcast"):
        sdpa(q, k, k, attn_mask=mg.ones(4, 5, dtype=mg.bool))
    with pytest.raises(TypeError, match="bool and floating.*int64"):
        sdpa(q, k, k, attn_mask=mg.ones(3, 5, dtype=mg.int64))
    with pytest.raises(RuntimeError, match="not both"):
        sdpa(q, k, k, attn_mask=mg.ones(3, 5, dtype=mg.bool), is_causal=True)
    with pytest.raises(ValueError, match="at least 2 dims"):
        sdpa(mg.randn(4), k, k)


# ---------------------------------------------------------------------------- MultiheadAttention


def test_mha_parameters_and_init():
    mha = nn.MultiheadAttention(8, 2)
    sd = mha.state_dict()
    assert {k: tuple(v.shape) for k, v in sd.items()} == {
        "in_proj_weight": (24, 8), "in_proj_bias": (24,),
        "out_proj.weight": (8, 8), "out_proj.bias": (8,),
    }
    assert np.abs(sd["in_proj_weight"].numpy()).max() <= math.sqrt(6 / (8 + 24))  # xavier
    assert np.all(sd["in_proj_bias"].numpy() == 0) and np.all(sd["out_proj.bias"].numpy() == 0)
    assert type(mha.out_proj).__name__ == "NonDynamicallyQuantizableLinear"
    kv = nn.MultiheadAttention(8, 2, kdim=3, vdim=5, bias=False)
    assert {k: tuple(v.shape) for k, v in kv.state_dict().items()} == {
        "q_proj_weight": (8, 8), "k_proj_weight": (8, 3), "v_proj_weight": (8, 5),
        "out_proj.weight": (8, 8),
    }


@pytest.mark.parametrize("masks", ["none", "kpm+bool2d", "float3d+float_kpm"])
def test_mha_gradcheck_self_attention(masks, device):
    rng = np.random.default_rng(4)
    mha = nn.MultiheadAttention(4, 2, batch_first=True).double().to(device)
    x = tensor64(rng.standard_normal((2, 3, 4)), device, requires_grad=True)  # (B, L, E)
    kw = {}
    if masks == "kpm+bool2d":
        kw["key_padding_mask"] = tensor64(_padding(2, 3), device)
        kw["attn_mask"] = tensor64(np.triu(np.ones((3, 3), dtype=bool), 1), device)  # causal
    elif masks == "float3d+float_kpm":
        kw["attn_mask"] = tensor64(rng.standard_normal((4, 3, 3)), device)
        kw["key_padding_mask"] = tensor64(rng.standard_normal((2, 3)), device)
    params = list(mha.parameters())

    def fn(x, *p):
        return mha(x, x, x, average_attn_weights=False, **kw)

    assert mg.autograd.gradcheck(graph_on_first_call(fn), [x, *params])


def test_mha_gradcheck_cross_attention_kdim_vdim(device):
    rng = np.random.default_rng(5)
    mha = nn.MultiheadAttention(4, 2, kdim=3, vdim=2).double().to(device)
    q = tensor64(rng.standard_normal((2, 2, 4)), device, requires_grad=True)  # (L, B, E)
    k = tensor64(rng.standard_normal((3, 2, 3)), device, requires_grad=True)  # (S, B, kdim)
    v = tensor64(rng.standard_normal((3, 2, 2)), device, requires_grad=True)  # (S, B, vdim)
    kpm = tensor64(_padding(2, 3), device)
    params = list(mha.parameters())
    assert mg.autograd.gradcheck(
        graph_on_first_call(lambda q, k, v, *p: mha(q, k, v, key_padding_mask=kpm)),
        [q, k, v, *params],
    )


def test_mha_fully_padded_sequence_gives_zeros_not_nan():
    mha = nn.MultiheadAttention(4, 2, batch_first=True)
    with mg.no_grad():
        mha.out_proj.bias.copy_(mg.tensor([1.0, 2.0, 3.0, 4.0]))
    x = mg.randn(2, 3, 4, requires_grad=True)
    kpm = mg.tensor([[False, False, True], [True, True, True]])
    out, w = mha(x, x, x, key_padding_mask=kpm)
    np.testing.assert_allclose(to_numpy(out)[1], np.tile([1.0, 2.0, 3.0, 4.0], (3, 1)))
    assert np.all(to_numpy(w)[1] == 0)
    np.testing.assert_allclose(to_numpy(w)[0].sum(-1), 1, rtol=1e-6)
    out.sum().backward()
    assert np.isfinite(x.grad.numpy()).all()


def test_mha_is_causal_without_mask_builds_the_causal_mask():
    mha = nn.MultiheadAttention(4, 2)
    x = mg.randn(5, 2, 4)
    causal = mg.tensor(np.triu(np.ones((5, 5), dtype=bool), 1))  # True = may not attend
    a, wa = mha(x, x, x, is_causal=True)
    b, wb = mha(x, x, x, attn_mask=causal)
    np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    assert np.all(np.triu(to_numpy(wa)[0], 1) == 0)


def test_mha_dropout_only_in_training():
    mha = nn.MultiheadAttention(4, 2, dropout=0.5)
    x = mg.randn(5, 2, 4)
    mha.eval()
    np.testing.assert_array_equal(to_numpy(mha(x, x, x)[0]), to_numpy(mha(x, x, x)[0]))
    np.testing.assert_allclose(to_numpy(mha(x, x, x)[1]).sum(-1), 1, rtol=1e-6)
    mha.train()
    assert not np.allclose(to_numpy(mha(x, x, x)[0]), to_numpy(mha(x, x, x)[0]))


def test_mha_errors():
    with pytest.raises(ValueError, match=r"divisible by num_heads.*embed_dim=6.*num_heads=4"):
        nn.MultiheadAttention(6, 4)
    mha = nn.MultiheadAttention(4, 2)
    x = mg.randn(3, 2, 4)
    with pytest.raises(ValueError, match=r"query with 4 features.*\(3, 2, 5\)"):
        mha(mg.randn(3, 2, 5), x, x)
    with pytest.raises(ValueError, match=r"2D attn_mask is \(4, 3\), but should be \(3, 3\)"):
        mha(x, x, x, attn_mask=mg.zeros(4, 3))
    with pytest.raises(ValueError, match=r"3D attn_mask is \(3, 3, 3\), but should be \(4, 3, 3\)"):
        mha(x, x, x, attn_mask=mg.zeros(3, 3, 3))
    with pytest.raises(ValueError, match=r"key_padding_mask of shape \(2, 3\).*got \(2, 4\)"):
        mha(x, x, x, key_padding_mask=mg.zeros(2, 4, dtype=mg.bool))
    with pytest.raises(TypeError, match="bool and floating types of key_padding_mask"):
        mha(x, x, x, key_padding_mask=mg.zeros(2, 3, dtype=mg.int64))
    with pytest.raises(ValueError, match="same batch size"):
        mha(x, mg.randn(3, 1, 4), mg.randn(3, 1, 4))
    with pytest.raises(ValueError, match="same sequence length"):
        mha(x, mg.randn(3, 2, 4), mg.randn(4, 2, 4))
    with pytest.raises(ValueError, match="unbatched 2-D or batched 3-D"):
        mha(mg.randn(4), x, x)


# ---------------------------------------------------------------------------- Transformer


def test_encoder_layer_names_and_deep_copies():
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16)
    assert list(layer.state_dict()) == [
        "self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight",
        "self_attn.out_proj.bias", "linear1.weight", "linear1.bias", "linear2.weight",
        "linear2.bias", "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias",
    ]
    assert [n for n, _ in layer.named_children()] == [
        "self_attn", "linear1", "dropout", "linear2", "norm1", "norm2", "dropout1", "dropout2"]
    enc = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(8))
    keys = list(enc.state_dict())
    assert keys[0] == "layers.0.self_attn.in_proj_weight" and keys[-1] == "norm.bias"
    assert len(keys) == 2 * 12 + 2
    a, b = enc.layers[0].linear1.weight, enc.layers[1].linear1.weight
    assert a is not b and a is not layer.linear1.weight
    np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    with pytest.raises(ValueError, match="relu/gelu"):
        nn.TransformerEncoderLayer(8, 2, activation="swish")


@pytest.mark.slow_in_simulator("45 s per case (gradcheck, thousands of launches)")
@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_gradcheck(norm_first, device):
    rng = np.random.default_rng(6)
    layer = nn.TransformerEncoderLayer(4, 2, dim_feedforward=6, dropout=0.0, activation="gelu",
                                       norm_first=norm_first).double().to(device)
    x = tensor64(rng.standard_normal((3, 2, 4)), device, requires_grad=True)  # (T, B, E)
    causal = tensor64(np.triu(np.full((3, 3), -np.inf), 1), device)
    kpm = tensor64(_padding(2, 3), device)
    params = list(layer.parameters())
    assert mg.autograd.gradcheck(
        graph_on_first_call(lambda x, *p: layer(x, src_mask=causal, src_key_padding_mask=kpm)),
        [x, *params],
    )


def test_encoder_layer_dropout_train_vs_eval():
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.3, batch_first=True)
    x = mg.randn(2, 5, 8)
    assert not np.allclose(to_numpy(layer(x)), to_numpy(layer(x)))
    layer.eval()
    np.testing.assert_array_equal(to_numpy(layer(x)), to_numpy(layer(x)))


# ---------------------------------------------------------------------------- PyTorch parity


def _tols(dtype):
    return dict(rtol=1e-5, atol=1e-5) if dtype == "float64" else dict(rtol=1e-4, atol=1e-4)


def _check_grads(torch, tm, m, pairs, tol):
    """Compare input gradients (pairs of (torch, minigrad) tensors) and parameter gradients."""
    for t, o in pairs:
        np.testing.assert_allclose(to_numpy(o.grad), t.grad.numpy(), **tol)
    assert_param_grads_match(tm, m, **tol)


@pytest.mark.torch
@pytest.mark.parametrize("kind", SDPA_MASKS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_sdpa_matches_pytorch(kind, dtype, device):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    arrays = [rng.standard_normal(s).astype(dtype) for s in ((2, 2, 3, 4), (2, 2, 5, 4),
                                                             (2, 2, 5, 3))]
    mask, causal = _sdpa_mask(kind, 3, 5, rng)
    if mask is not None and mask.dtype != np.bool_:
        mask = mask.astype(dtype)
    t_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    m_in = [tensor64(a, device, dtype, requires_grad=True) for a in arrays]
    t_out = torch.nn.functional.scaled_dot_product_attention(
        *t_in, attn_mask=None if mask is None else torch.tensor(mask), is_causal=causal)
    m_out = sdpa(*m_in, attn_mask=None if mask is None else tensor64(mask, device, dtype),
                 is_causal=causal)
    tol = _tols(dtype)
    np.testing.assert_allclose(to_numpy(m_out), t_out.detach().numpy(), **tol)
    w = rng.standard_normal(t_out.shape).astype(dtype)
    (t_out * torch.tensor(w)).sum().backward()
    (m_out * tensor64(w, device, dtype)).sum().backward()
    for t, o in zip(t_in, m_in):
        np.testing.assert_allclose(to_numpy(o.grad), t.grad.numpy(), **tol)


MHA_MASKS = ["none", "kpm_bool", "kpm_float", "attn2d_bool", "attn2d_float", "attn3d_bool",
             "attn3d_float", "kpm_bool+attn2d_bool", "kpm_bool+attn3d_float"]


def _mha_masks(kind, B, h, L, S, rng, dtype):
    """Masks in MultiheadAttention's convention (bool True = may not attend)."""
    masks = {}
    for part in kind.split("+"):
        if part == "kpm_bool":
            masks["key_padding_mask"] = _padding(B, S)
        elif part == "kpm_float":
            masks["key_padding_mask"] = rng.standard_normal((B, S)).astype(dtype)
        elif part.startswith("attn"):
            shape = (L, S) if part.startswith("attn2d") else (B * h, L, S)
            if part.endswith("bool"):
                m = rng.random(shape) > 0.6
                m[..., 0] = False  # every query may attend key 0
                masks["attn_mask"] = m
            else:
                masks["attn_mask"] = rng.standard_normal(shape).astype(dtype)
    return masks


@pytest.mark.torch
@pytest.mark.filterwarnings("ignore:Support for mismatched")
@pytest.mark.parametrize("kind", MHA_MASKS)
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_mha_matches_pytorch(kind, batch_first, dtype, device):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    E, h, B, L = 8, 2, 3, 4
    tm = torch.nn.MultiheadAttention(E, h, batch_first=batch_first)
    tm = tm.double() if dtype == "float64" else tm
    m = nn.MultiheadAttention(E, h, batch_first=batch_first).to(device=device, dtype=dtype)
    if batch_first:
        copy_mg_to_torch(torch, m, tm)
    else:
        copy_torch_to_mg(tm, m)
    x = rng.standard_normal((B, L, E) if batch_first else (L, B, E)).astype(dtype)
    masks = _mha_masks(kind, B, h, L, L, rng, dtype)
    tol = _tols(dtype)
    for need_weights, average in ((True, True), (True, False), (False, True)):
        tx = torch.tensor(x, requires_grad=True)
        mx = tensor64(x, device, dtype, requires_grad=True)
        tm.zero_grad()
        m.zero_grad()
        t_out, t_w = tm(tx, tx, tx, need_weights=need_weights, average_attn_weights=average,
                        **{k: torch.tensor(v) for k, v in masks.items()})
        m_out, m_w = m(mx, mx, mx, need_weights=need_weights, average_attn_weights=average,
                       **{k: tensor64(v, device, dtype) for k, v in masks.items()})
        np.testing.assert_allclose(to_numpy(m_out), t_out.detach().numpy(), **tol)
        loss_t, loss_m = t_out.sum() * 1.0, m_out.sum() * 1.0
        if need_weights:
            assert tuple(m_w.shape) == tuple(t_w.shape)
            np.testing.assert_allclose(to_numpy(m_w), t_w.detach().numpy(), **tol)
            loss_t, loss_m = loss_t + (t_w * t_w).sum(), loss_m + (m_w * m_w).sum()
        else:
            assert m_w is None and t_w is None
        loss_t.backward()
        loss_m.backward()
        _check_grads(torch, tm, m, [(tx, mx)], tol)


@pytest.mark.torch
@pytest.mark.filterwarnings("ignore:Support for mismatched")
@pytest.mark.parametrize("variant", ["unbatched", "cross_kdim_vdim", "no_bias", "key_is_value"])
def test_mha_variants_match_pytorch(variant, device):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(9)
    E, h = 4, 2
    kw = dict(kdim=3, vdim=5) if variant == "cross_kdim_vdim" else {}
    if variant == "no_bias":
        kw["bias"] = False
    tm = torch.nn.MultiheadAttention(E, h, **kw).double()
    m = nn.MultiheadAttention(E, h, **kw).double().to(device)
    assert {k: tuple(v.shape) for k, v in m.state_dict().items()} == {
        k: tuple(v.shape) for k, v in tm.state_dict().items()}
    copy_torch_to_mg(tm, m)
    if variant == "unbatched":
        shapes, masks = [(3, E)] * 3, {"key_padding_mask": np.array([False, False, True]),
                                      "attn_mask": rng.standard_normal((h, 3, 3))}
    else:
        shapes = [(3, 2, E), (4, 2, kw.get("kdim", E)), (4, 2, kw.get("vdim", E))]
        masks = {"key_padding_mask": _padding(2, 4)}
    arrays = [rng.standard_normal(s) for s in shapes]
    if variant == "key_is_value":
        arrays[2] = arrays[1]
    t_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    m_in = [tensor64(a, device, requires_grad=True) for a in arrays]
    if variant in ("unbatched", "key_is_value"):  # the same tensor object, as callers pass it
        t_in, m_in = [t_in[0], t_in[1], t_in[1 if variant == "key_is_value" else 2]], \
                     [m_in[0], m_in[1], m_in[1 if variant == "key_is_value" else 2]]
    t_out, t_w = tm(*t_in, average_attn_weights=False,
                    **{k: torch.tensor(v) for k, v in masks.items()})
    m_out, m_w = m(*m_in, average_attn_weights=False,
                   **{k: tensor64(v, device) for k, v in masks.items()})
    tol = _tols("float64")
    np.testing.assert_allclose(to_numpy(m_out), t_out.detach().numpy(), **tol)
    np.testing.assert_allclose(to_numpy(m_w), t_w.detach().numpy(), **tol)
    (t_out.sum() + (t_w * t_w).sum()).backward()
    (m_out.sum() + (m_w * m_w).sum()).backward()
    pairs = [(t, o) for t, o in zip(t_in, m_in)]
    _check_grads(torch, tm, m, pairs[: 2 if variant == "key_is_value" else 3], tol)


@pytest.mark.torch
def test_mha_fully_padded_matches_pytorch_without_weights():
    torch = pytest.importorskip("torch")
    tm = torch.nn.MultiheadAttention(4, 2, batch_first=True)
    m = nn.MultiheadAttention(4, 2, batch_first=True)
    copy_torch_to_mg(tm, m)
    x = np.random.default_rng(10).standard_normal((2, 3, 4)).astype("float32")
    kpm = np.array([[False, False, True], [True, True, True]])
    t_out, _ = tm(*[torch.tensor(x)] * 3, key_padding_mask=torch.tensor(kpm), need_weights=False)
    m_out, _ = m(*[mg.tensor(x)] * 3, key_padding_mask=mg.tensor(kpm), need_weights=False)
    np.testing.assert_allclose(to_numpy(m_out), t_out.detach().numpy(), atol=1e-5)


ENCODER_MASKS = ["none", "src_mask_bool", "src_mask_float", "kpm", "causal+kpm"]


@pytest.mark.torch
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("masks", ENCODER_MASKS)
@pytest.mark.parametrize("batch_first", [False, True])
def test_encoder_layer_matches_pytorch(norm_first, activation, masks, batch_first, device):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    E, h, B, T = 8, 2, 3, 5
    kw = dict(dim_feedforward=12, dropout=0.1, activation=activation, batch_first=batch_first,
              norm_first=norm_first)
    tm = torch.nn.TransformerEncoderLayer(E, h, **kw).double().eval()  # eval: dropout off
    m = nn.TransformerEncoderLayer(E, h, **kw).double().to(device).eval()
    assert list(m.state_dict()) == list(tm.state_dict())
    if norm_first:
        copy_mg_to_torch(torch, m, tm)
    else:
        copy_torch_to_mg(tm, m)
    x = rng.standard_normal((B, T, E) if batch_first else (T, B, E))
    fw_t, fw_m = {}, {}
    if masks == "src_mask_bool":
        sm = rng.random((T, T)) > 0.6
        np.fill_diagonal(sm, False)
        fw_t["src_mask"], fw_m["src_mask"] = torch.tensor(sm), tensor64(sm, device)
    elif masks == "src_mask_float":
        sm = rng.standard_normal((T, T))
        fw_t["src_mask"], fw_m["src_mask"] = torch.tensor(sm), tensor64(sm, device)
    if "causal" in masks:
        sm = np.triu(np.full((T, T), -np.inf), 1)
        fw_t.update(src_mask=torch.tensor(sm), is_causal=True)
        fw_m.update(src_mask=tensor64(sm, device), is_causal=True)
    if "kpm" in masks:
        kpm = _padding(B, T)
        fw_t["src_key_padding_mask"] = torch.tensor(kpm)
        fw_m["src_key_padding_mask"] = tensor64(kpm, device)
    tx = torch.tensor(x, requires_grad=True)
    mx = tensor64(x, device, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_out = tm(tx, **fw_t)
    m_out = m(mx, **fw_m)
    tol = _tols("float64")
    np.testing.assert_allclose(to_numpy(m_out), t_out.detach().numpy(), **tol)
    w = rng.standard_normal(x.shape)
    (t_out * torch.tensor(w)).sum().backward()
    (m_out * tensor64(w, device)).sum().backward()
    _check_grads(torch, tm, m, [(tx, mx)], tol)


@pytest.mark.torch
def test_encoder_stack_matches_pytorch_float32(device):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(12)
    E, h, B, T = 8, 2, 2, 6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch's nested-tensor notice
        tm = torch.nn.TransformerEncoder(
            torch.nn.TransformerEncoderLayer(E, h, 16, dropout=0.0, activation="gelu",
                                             batch_first=True),
            num_layers=2, norm=torch.nn.LayerNorm(E))
    m = nn.TransformerEncoder(
        nn.TransformerEncoderLayer(E, h, 16, dropout=0.0, activation="gelu", batch_first=True),
        num_layers=2, norm=nn.LayerNorm(E)).to(device)
    assert list(m.state_dict()) == list(tm.state_dict())
    copy_torch_to_mg(tm, m)
    x = rng.standard_normal((B, T, E)).astype("float32")
    causal = np.triu(np.ones((T, T), dtype=bool), 1)
    kpm = _padding(B, T)
    tx = torch.tensor(x, requires_grad=True)
    mx = tensor64(x, device, "float32", requires_grad=True)
    t_out = tm(tx, mask=torch.tensor(causal), src_key_padding_mask=torch.tensor(kpm))
    m_out = m(mx, mask=tensor64(causal, device), src_key_padding_mask=tensor64(kpm, device))
    tol = _tols("float32")
    np.testing.assert_allclose(to_numpy(m_out), t_out.detach().numpy(), **tol)
    t_out.pow(2).sum().backward()
    (m_out * m_out).sum().backward()
    _check_grads(torch, tm, m, [(tx, mx)], dict(rtol=1e-4, atol=2e-4))
