"""The Llama training loss through `LMHeadLossFn` (the LM head and the cross-entropy in blocks of
rows, minigrad/models/llama.py) against the composite (head, then F.cross_entropy): loss and
gradients in float64, ignored targets, blocks of one row, LoRA (a frozen head), second order."""

import os

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F
from minigrad.finetune import apply_lora
from minigrad.models import llama
from minigrad.models.llama import LlamaForCausalLM, LMHeadLossFn

TINY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "tiny_llama")


def _model(dtype=mg.float64):
    return LlamaForCausalLM.from_pretrained(TINY).to(dtype).train()


def _batch(vocab, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, vocab, (2, 9))
    labels = ids.copy()
    labels[0, :3] = -100  # a prompt that is not learned
    return mg.tensor(ids), mg.tensor(labels)


def _loss_and_grads(model, ids, labels, fused):
    for p in model.parameters():
        p.grad = None
    with mg.use_fused(fused):
        out = model(ids, labels=labels)
        out.loss.backward()
    grads = {n: p.grad.numpy().copy() for n, p in model.named_parameters() if p.grad is not None}
    return out, grads


@pytest.mark.parametrize("block", [None, 1])
def test_loss_and_gradients_equal_the_composite(block, monkeypatch):
    model = _model()
    ids, labels = _batch(model.config.vocab_size)
    if block:  # one row per block
        monkeypatch.setattr(llama, "_LOSS_BLOCK", block)
    fused, g_fused = _loss_and_grads(model, ids, labels, True)
    assert type(fused.loss.grad_fn) is LMHeadLossFn
    plain, g_plain = _loss_and_grads(model, ids, labels, False)
    assert type(plain.loss.grad_fn) is not LMHeadLossFn
    assert abs(fused.loss.item() - plain.loss.item()) < 1e-12
    assert model.lm_head.weight is model.model.embed_tokens.weight  # tied: head + embedding
    assert sorted(g_fused) == sorted(g_plain) and "model.embed_tokens.weight" in g_fused
    for name in g_plain:
        np.testing.assert_allclose(g_fused[name], g_plain[name], rtol=1e-9, atol=1e-12)
    # the logits are still there, computed when asked for
    np.testing.assert_allclose(fused.logits.detach().numpy(), plain.logits.detach().numpy(),
                               rtol=1e-9, atol=1e-12)


def test_lora_frozen_head_float32():
    model = _model(mg.float32)
    apply_lora(model, ["q_proj", "v_proj"], r=2, alpha=4)
    for name, p in model.named_parameters():
        if name.endswith("lora_B"):
            p.data[...] = np.random.default_rng(1).standard_normal(p.shape) * 0.1
    ids, labels = _batch(model.config.vocab_size, seed=2)
    fused, g_fused = _loss_and_grads(model, ids, labels, True)
    plain, g_plain = _loss_and_grads(model, ids, labels, False)
    assert type(fused.loss.grad_fn) is LMHeadLossFn and len(g_fused) == len(g_plain) > 0
    assert abs(fused.loss.item() - plain.loss.item()) < 1e-5 * plain.loss.item()
    for name in g_plain:
        np.testing.assert_allclose(g_fused[name], g_plain[name], rtol=1e-3, atol=1e-6)


def test_every_target_ignored_and_bad_targets():
    rng = np.random.default_rng(3)
    h = mg.tensor(rng.standard_normal((4, 5)), requires_grad=True)
    w = mg.tensor(rng.standard_normal((7, 5)), requires_grad=True)
    loss = LMHeadLossFn.apply(h, w, target=np.full(4, -100), ignore_index=-100)
    ref = F.cross_entropy(F.linear(h, w), mg.tensor(np.full(4, -100)), ignore_index=-100)
    assert np.isnan(loss.item()) and np.isnan(ref.item())
    loss.backward()
    assert not h.grad.numpy().any() and not w.grad.numpy().any()
    with pytest.raises(IndexError, match="target 7 is out of bounds for 7 classes"):
        LMHeadLossFn.apply(h, w, target=np.array([0, 7, 1, -100]), ignore_index=-100)


def test_second_order_through_the_composite():
    rng = np.random.default_rng(4)
    h = mg.tensor(rng.standard_normal((5, 3)), requires_grad=True)
    w = mg.tensor(rng.standard_normal((6, 3)), requires_grad=True)
    target = np.array([1, 5, -100, 0, 2])

    def grad_norm(loss):
        (gh,) = mg.grad(loss, [h], create_graph=True)
        return (gh * gh).sum()

    fused = grad_norm(LMHeadLossFn.apply(h, w, target=target, ignore_index=-100))
    (g_fused,) = mg.grad(fused, [w])
    plain = grad_norm(F.cross_entropy(F.linear(h, w), mg.tensor(target), ignore_index=-100))
    (g_plain,) = mg.grad(plain, [w])
    assert abs(fused.item() - plain.item()) < 1e-12
    np.testing.assert_allclose(g_fused.numpy(), g_plain.numpy(), rtol=1e-10, atol=1e-12)


def test_finetune_loss_shifts_the_targets_not_the_logits():
    from minigrad.finetune.lm import causal_lm_loss

    rng = np.random.default_rng(5)
    logits = mg.tensor(rng.standard_normal((2, 6, 11)), requires_grad=True)
    labels = rng.integers(0, 11, (2, 6))
    labels[1, :2] = -100
    loss = causal_lm_loss(logits, mg.tensor(labels))
    sliced = F.cross_entropy(logits[:, :-1].reshape(-1, 11), mg.tensor(labels[:, 1:].reshape(-1)),
                             ignore_index=-100)
    assert abs(loss.item() - sliced.item()) < 1e-12
    (g,) = mg.grad(loss, [logits])
    (g_sliced,) = mg.grad(sliced, [logits])
    np.testing.assert_allclose(g.numpy(), g_sliced.numpy(), rtol=1e-12, atol=1e-15)


def test_model_causal_lm_loss_is_forwards_loss():
    model = _model()
    ids, labels = _batch(model.config.vocab_size, seed=6)
    hidden = model.model(ids)
    np.testing.assert_allclose(model.causal_lm_loss(hidden, labels).item(),
                               model(ids, labels=labels).loss.item(), rtol=1e-12)
    model.eval()
    with mg.no_grad():
        assert abs(model.causal_lm_loss(model.model(ids), labels).item()
                   - model(ids, labels=labels).loss.item()) < 1e-12
    with pytest.raises(ValueError, match="labels must be"):
        model.causal_lm_loss(hidden, labels[:, :4])
