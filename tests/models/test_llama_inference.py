"""The Llama decoder's no-grad path on arrays (prefill and decoding; minigrad/models/llama.py,
`LlamaModel._infer`) against the autograd path, on the tiny-Llama fixture: logits, the KV
cache, left padding, blocked attention, packed q/k/v and gate/up weights, and the fallbacks
(weights replaced, LoRA wrappers, float64)."""

import os

import numpy as np
import pytest

import minigrad as mg
from minigrad.finetune import apply_lora
from minigrad.models import llama
from minigrad.models.llama import LlamaForCausalLM

TINY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "tiny_llama")


@pytest.fixture
def tiny():
    return LlamaForCausalLM.from_pretrained(TINY)


def _ids(vocab, shape, seed=0):
    return mg.tensor(np.random.default_rng(seed).integers(0, vocab, shape))


def _both(model, *args, **kwargs):
    """Logits from the autograd path (grad on) and from the array path (no_grad)."""
    plain = model(*args, **kwargs).logits.detach().numpy().copy()
    with mg.no_grad():
        fast = model(*args, **kwargs).logits.numpy()
    return plain, fast


def _close(a, b, tol=2e-6):
    assert np.abs(a - b).max() <= tol * np.abs(b).max()


def test_array_path_equals_the_autograd_path(tiny):
    assert tiny.model._array_path_ok()
    ids = _ids(tiny.config.vocab_size, (2, 11))
    _close(*_both(tiny, ids))
    mask = mg.tensor(np.array([[0, 0, 0] + [1] * 8, [1] * 11]))  # left padding: masked rows
    plain, fast = _both(tiny, ids, attention_mask=mask)
    assert np.isfinite(fast).all()
    _close(plain, fast)


def test_array_path_decoding_equals_full_recomputation(tiny):
    ids = _ids(tiny.config.vocab_size, (2, 12), seed=1)
    full = tiny(ids).logits.detach().numpy()
    with mg.no_grad():
        cache = tiny.new_cache(4)  # grown on the way (doubling)
        parts = [tiny(ids[:, :5], past_key_values=cache, use_cache=True).logits.numpy()]
        for t in range(5, 9):
            parts.append(tiny(ids[:, t:t + 1], past_key_values=cache).logits.numpy())
        parts.append(tiny(ids[:, 9:], past_key_values=cache).logits.numpy())  # 3 at once
    assert cache.get_seq_length() == 12
    _close(full, np.concatenate(parts, axis=1))


def test_attention_in_blocks_of_query_rows(tiny, monkeypatch):
    ids = _ids(tiny.config.vocab_size, (2, 13), seed=2)
    mask = mg.tensor(np.array([[0] * 4 + [1] * 9, [1] * 13]))
    expected = _both(tiny, ids, attention_mask=mask)[0]
    monkeypatch.setattr(llama, "_ATTENTION_BLOCK", 1)  # one query row per block
    with mg.no_grad():
        _close(expected, tiny(ids, attention_mask=mask).logits.numpy())
        cache = tiny.new_cache(13)
        head = tiny(ids[:, :6], attention_mask=mask[:, :6], past_key_values=cache)
        tail = tiny(ids[:, 6:], attention_mask=mask, past_key_values=cache)
    _close(expected, np.concatenate([head.logits.numpy(), tail.logits.numpy()], axis=1))


def test_projections_are_packed_and_stay_in_sync(tiny):
    attn, mlp = tiny.model.layers[0].self_attn, tiny.model.layers[0].mlp
    for lin in (attn.q_proj, attn.k_proj, attn.v_proj):
        assert lin.weight.data.base is attn._qkv
    assert mlp.gate_proj.weight.data.base is mlp._gate_up
    rows = attn.q_proj.weight.shape[0]
    np.testing.assert_array_equal(attn._qkv[rows:rows + attn.k_proj.weight.shape[0]],
                                  attn.k_proj.weight.data)
    attn.k_proj.weight.data[...] *= 1.5  # an in-place update (an optimizer's) is the packed one
    assert llama._still_packed([attn.q_proj, attn.k_proj, attn.v_proj], attn._qkv)
    _close(*_both(tiny, _ids(tiny.config.vocab_size, (1, 7))))


def test_replaced_weights_fall_back_to_separate_products(tiny):
    attn, mlp = tiny.model.layers[1].self_attn, tiny.model.layers[1].mlp
    attn.v_proj.weight.data = attn.v_proj.weight.data * 2.0  # no longer a view of _qkv
    mlp.up_proj.weight.data = mlp.up_proj.weight.data - 0.1
    assert not llama._still_packed([attn.q_proj, attn.k_proj, attn.v_proj], attn._qkv)
    assert not llama._still_packed([mlp.gate_proj, mlp.up_proj], mlp._gate_up)
    assert tiny.model._array_path_ok()
    plain, fast = _both(tiny, _ids(tiny.config.vocab_size, (2, 6)))
    _close(plain, fast)
    fresh = LlamaForCausalLM.from_pretrained(TINY)
    with mg.no_grad():  # the replaced weights are the ones used
        other = fresh(_ids(tiny.config.vocab_size, (2, 6))).logits.numpy()
    assert np.abs(other - fast).max() > 1e-3


def test_lora_wrapped_and_float64_models_compute_the_same(tiny):
    ids = _ids(tiny.config.vocab_size, (2, 6), seed=3)
    double = LlamaForCausalLM.from_pretrained(TINY).to(mg.float64)
    attn = double.model.layers[0].self_attn  # to() packed the new arrays again
    assert attn._qkv.dtype == np.float64 and attn.q_proj.weight.data.base is attn._qkv
    plain, fast = _both(double, ids)
    assert fast.dtype == np.float64
    _close(plain, fast, 1e-12)
    _close(fast, _both(tiny, ids)[1], 1e-5)
    apply_lora(tiny, ["q_proj", "v_proj"], r=2, alpha=4)
    assert not tiny.model._array_path_ok()  # the wrappers run through the layers
    _close(*_both(tiny, ids))


def _reference_attention(q, k, v, bias):
    """Float64 softmax attention with the row maximum subtracted, (B, T, Hq * D)."""
    B, T, Hq, D = q.shape
    g = Hq // k.shape[1]
    kk = np.repeat(k.astype(np.float64), g, axis=1)
    vv = np.repeat(v.astype(np.float64), g, axis=1)
    s = q.astype(np.float64).transpose(0, 2, 1, 3) @ kk.swapaxes(-1, -2) / np.sqrt(D) + bias
    s = np.exp(s - s.max(axis=-1, keepdims=True))
    return (s / s.sum(axis=-1, keepdims=True) @ vv).transpose(0, 2, 1, 3).reshape(B, T, Hq * D)


@pytest.mark.parametrize("scale", [1.0, 40.0, -40.0])
def test_array_attention_rows_that_overflow_or_underflow_unshifted(scale):
    # scores of +-hundreds: exp overflows (or a whole row underflows) unless shifted by the
    # row maximum; those rows are redone shifted, the rest stay as computed
    rng = np.random.default_rng(3)
    B, T, Hq, Hkv, D = 2, 7, 4, 2, 8
    q = rng.standard_normal((B, T, Hq, D)).astype(np.float32)
    k = rng.standard_normal((B, Hkv, T, D)).astype(np.float32)
    v = rng.standard_normal((B, Hkv, T, D)).astype(np.float32)
    q[0, 3] *= scale
    if scale < 0:  # every score of a row far below -88: unshifted, the row sums to zero
        k[0] = np.abs(k[0])
        q[0, 3] = -np.abs(q[0, 3]) * 40
    bias = np.triu(np.full((T, T), -np.inf, np.float32), 1)[None, None]
    got = llama._attention_array(q, k, v, 0, bias)
    want = _reference_attention(q, k, v, bias)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
