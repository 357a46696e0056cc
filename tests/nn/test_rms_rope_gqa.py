"""The Llama building blocks: RMSNorm, SiLU/SwiGLU, rotary embeddings and grouped-query
attention, against PyTorch (and transformers' formulas written out in torch) and gradcheck."""

import numpy as np
import pytest
from conftest import to_numpy

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import nn
from minigrad.nn.llm import swiglu
from minigrad.nn.rotary import RotaryEmbedding, apply_rotary_pos_emb, rotate_half


def _t(a, device, requires_grad=False):
    return mg.tensor(np.asarray(a), device=device, requires_grad=requires_grad)


# ---------------------------------------------------------------------------- RMSNorm


@pytest.mark.torch
@pytest.mark.parametrize("shape,norm,eps,affine", [
    ((2, 3, 8), (8,), None, True),
    ((4, 6), 6, 1e-5, False),
    ((2, 3, 4), (3, 4), 1e-6, True),
])
def test_rms_norm_matches_torch(shape, norm, eps, affine, device):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    ours = nn.RMSNorm(norm, eps=eps, elementwise_affine=affine)
    theirs = torch.nn.RMSNorm(norm, eps=eps, elementwise_affine=affine)
    if affine:
        w = rng.standard_normal(theirs.weight.shape).astype(np.float32)
        ours.weight.data[...] = w
        with torch.no_grad():
            theirs.weight.copy_(torch.tensor(w))
    ours.to(device)
    xm, xt = _t(x, device, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, yt = ours(xm), theirs(xt)
    np.testing.assert_allclose(to_numpy(y), yt.detach().numpy(), rtol=1e-5, atol=1e-6)
    g = rng.standard_normal(shape).astype(np.float32)
    y.backward(_t(g, device))
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(to_numpy(xm.grad), xt.grad.numpy(), rtol=1e-4, atol=1e-5)
    if affine:
        np.testing.assert_allclose(to_numpy(ours.weight.grad), theirs.weight.grad.numpy(),
                                   rtol=1e-4, atol=1e-5)


def test_rms_norm_gradcheck(device):
    rng = np.random.default_rng(1)
    x = _t(rng.standard_normal((3, 5)), device, requires_grad=True)
    w = _t(rng.standard_normal(5), device, requires_grad=True)
    assert mg.autograd.gradcheck(lambda x, w: F.rms_norm(x, (5,), w, eps=1e-6), [x, w])


def test_rms_norm_errors():
    with pytest.raises(RuntimeError, match="normalized_shape"):
        F.rms_norm(mg.randn(2, 4), (3,))
    with pytest.raises(RuntimeError, match="weight of shape"):
        F.rms_norm(mg.randn(2, 4), (4,), mg.ones(3))


@pytest.mark.torch
def test_silu_and_swiglu_match_torch(device):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((2, 4, 6)), rng.standard_normal((2, 4, 6))
    np.testing.assert_allclose(to_numpy(F.silu(_t(a, device))),
                               torch.nn.functional.silu(torch.tensor(a)).numpy(), rtol=1e-12)
    np.testing.assert_allclose(to_numpy(nn.SiLU()(_t(a, device))),
                               torch.nn.functional.silu(torch.tensor(a)).numpy(), rtol=1e-12)
    expect = (torch.nn.functional.silu(torch.tensor(a)) * torch.tensor(b)).numpy()
    np.testing.assert_allclose(to_numpy(swiglu(_t(a, device), _t(b, device))), expect,
                               rtol=1e-12)
    ga, gb = _t(a[0, :2, :3], device, True), _t(b[0, :2, :3], device, True)
    assert mg.autograd.gradcheck(swiglu, [ga, gb])


# ---------------------------------------------------------------------------- RoPE


def _torch_rope(torch, q, k, positions, dim, base):
    """transformers' LlamaRotaryEmbedding + apply_rotary_pos_emb (default rope), written out."""
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    pos = torch.tensor(positions).float()
    freqs = (inv_freq[None, :, None] @ pos[:, None, :]).transpose(1, 2)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[:, None], emb.sin()[:, None]

    def rot(x):
        x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
        return torch.cat((-x2, x1), dim=-1)

    return q * cos + rot(q) * sin, k * cos + rot(k) * sin


@pytest.mark.torch
def test_rope_matches_transformers_formula(device):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    q = rng.standard_normal((2, 3, 5, 8)).astype(np.float32)
    k = rng.standard_normal((2, 1, 5, 8)).astype(np.float32)
    positions = [[0, 1, 2, 3, 4], [0, 0, 0, 1, 2]]  # the second row left-padded by two
    rope = RotaryEmbedding(8, base=100000.0)
    cos, sin = rope(_t(np.array(positions), device))
    qm, km = apply_rotary_pos_emb(_t(q, device), _t(k, device), cos, sin)
    qt, kt = _torch_rope(torch, torch.tensor(q), torch.tensor(k), positions, 8, 100000.0)
    np.testing.assert_allclose(to_numpy(qm), qt.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_numpy(km), kt.numpy(), rtol=1e-5, atol=1e-6)


def test_rope_keeps_norms_and_relative_positions(device):
    rng = np.random.default_rng(4)
    rope = RotaryEmbedding(6)
    q = _t(rng.standard_normal((1, 1, 1, 6)), device)
    k = _t(rng.standard_normal((1, 1, 1, 6)), device)

    def score(pq, pk):
        cq, sq = rope(_t(np.array([[pq]]), device), dtype=np.float64)
        ck, sk = rope(_t(np.array([[pk]]), device), dtype=np.float64)
        rq, _ = apply_rotary_pos_emb(q, q, cq, sq)
        _, rk = apply_rotary_pos_emb(k, k, ck, sk)
        assert abs(float((rq * rq).sum().item()) - float((q * q).sum().item())) < 1e-5
        return float((rq * rk).sum().item())

    assert abs(score(3, 1) - score(12, 10)) < 1e-4  # only the distance matters


def test_rotate_half_and_gradcheck(device):
    x = _t(np.arange(4.0)[None], device)
    assert to_numpy(rotate_half(x)).tolist() == [[-2.0, -3.0, 0.0, 1.0]]
    rng = np.random.default_rng(5)
    cos, sin = RotaryEmbedding(4)(_t(np.array([[0, 3]]), device), dtype=np.float64)
    q = _t(rng.standard_normal((1, 2, 2, 4)), device, True)
    k = _t(rng.standard_normal((1, 1, 2, 4)), device, True)
    assert mg.autograd.gradcheck(lambda q, k: apply_rotary_pos_emb(q, k, cos, sin)[0].sum()
                                 + apply_rotary_pos_emb(q, k, cos, sin)[1].sum() * 2, [q, k])
    with pytest.raises(ValueError, match="even"):
        RotaryEmbedding(5)


# ---------------------------------------------------------------------------- GQA


@pytest.mark.torch
@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("mask", ["none", "causal", "bool"])
def test_gqa_sdpa_matches_torch(fused, mask, device):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    q = rng.standard_normal((2, 6, 4, 8)).astype(np.float32)
    k = rng.standard_normal((2, 2, 5, 8)).astype(np.float32)
    v = rng.standard_normal((2, 2, 5, 8)).astype(np.float32)
    m = rng.random((2, 1, 4, 5)) > 0.3
    m[..., 0] = True
    kw = {"is_causal": mask == "causal"}
    qm, km, vm = (_t(a, device, True) for a in (q, k, v))
    qt, kt, vt = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    with mg.use_fused(fused):
        out = F.scaled_dot_product_attention(
            qm, km, vm, attn_mask=_t(m, device) if mask == "bool" else None, enable_gqa=True,
            **kw)
    ref = torch.nn.functional.scaled_dot_product_attention(
        qt, kt, vt, attn_mask=torch.tensor(m) if mask == "bool" else None, enable_gqa=True, **kw)
    np.testing.assert_allclose(to_numpy(out), ref.detach().numpy(), rtol=1e-5, atol=1e-5)
    g = rng.standard_normal(out.shape).astype(np.float32)
    out.backward(_t(g, device))
    ref.backward(torch.tensor(g))
    for ours, theirs in ((qm, qt), (km, kt), (vm, vt)):
        np.testing.assert_allclose(to_numpy(ours.grad), theirs.grad.numpy(), rtol=1e-4,
                                   atol=1e-5)


def test_gqa_gradcheck_and_errors(device):
    rng = np.random.default_rng(7)
    q = _t(rng.standard_normal((1, 4, 3, 2)), device, True)
    k = _t(rng.standard_normal((1, 2, 3, 2)), device, True)
    v = _t(rng.standard_normal((1, 2, 3, 2)), device, True)
    fn = lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                                        enable_gqa=True)
    assert mg.autograd.gradcheck(fn, [q, k, v])
    with pytest.raises(ValueError, match="multiple"):
        F.scaled_dot_product_attention(q, k[:, :1].expand(1, 3, 3, 2),
                                       v[:, :1].expand(1, 3, 3, 2), enable_gqa=True)
