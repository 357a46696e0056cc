"""The Llama model on the tiny-Llama fixture that transformers made (tests/models/
make_llama_fixture.py): logits, loss and gradients against transformers' values, the KV cache,
left padding, greedy and sampled generation, GGUF loading and save_pretrained."""

import json
import os

import numpy as np
import pytest

from conftest import to_numpy

import minigrad as mg
from minigrad.io.gguf import GGUFWriter
from minigrad.models.generation import (
    repetition_penalty, sample, top_k_filter, top_p_filter,
)
from minigrad.models.llama import KVCache, LlamaConfig, LlamaForCausalLM

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
TINY = os.path.join(FIXTURES, "tiny_llama")


@pytest.fixture(scope="module")
def expected():
    return dict(np.load(os.path.join(FIXTURES, "tiny_llama_expected.npz")))


@pytest.fixture
def tiny():
    return LlamaForCausalLM.from_pretrained(TINY)


def _rel(ours, theirs):
    return float(np.abs(ours - theirs).max() / np.abs(theirs).max())


# ---------------------------------------------------------------------------- parity


def test_tiny_llama_logits_loss_and_gradients_match_transformers(tiny, expected):
    tiny.train()
    out = tiny(mg.tensor(expected["input_ids"]),
               attention_mask=mg.tensor(expected["attention_mask"]),
               labels=mg.tensor(expected["labels"]))
    keep = expected["attention_mask"].astype(bool)  # padding positions' logits are unspecified
    assert _rel(out.logits.detach().numpy()[keep], expected["logits"][keep]) < 1e-4
    assert abs(out.loss.item() - float(expected["loss"])) < 1e-4 * float(expected["loss"])
    out.loss.backward()
    names = [n for n, _ in tiny.named_parameters()]
    assert sorted(names) == sorted(k[5:] for k in expected if k.startswith("grad."))
    for name, p in tiny.named_parameters():
        assert _rel(p.grad.numpy(), expected["grad." + name]) < 1e-3, name


def test_config_reads_rope_parameters_and_ties():
    config = LlamaConfig.from_pretrained(TINY)
    assert config.rope_theta == 10000.0 and config.num_key_value_heads == 2
    assert config.head_dim == 8 and config.tie_word_embeddings
    assert LlamaConfig.from_dict({"rope_parameters": {"rope_theta": 5.0}}).rope_theta == 5.0
    with pytest.raises(NotImplementedError, match="rope scaling"):
        LlamaConfig.from_dict({"rope_scaling": {"rope_type": "yarn", "factor": 2.0}})
    model = LlamaForCausalLM(config)
    assert model.lm_head.weight is model.model.embed_tokens.weight


def test_left_padded_row_equals_the_row_alone(tiny, expected):
    ids, mask = expected["input_ids"], expected["attention_mask"]
    with mg.no_grad():
        padded = tiny(mg.tensor(ids), attention_mask=mg.tensor(mask)).logits.numpy()
        alone = tiny(mg.tensor(ids[1:, 3:])).logits.numpy()
    np.testing.assert_allclose(padded[1, 3:], alone[0], rtol=1e-5, atol=1e-5)


def test_forward_generate_and_backward_on_each_device(tiny, device, expected):
    ids = expected["input_ids"][:1]
    with mg.no_grad():
        ref = tiny(mg.tensor(ids)).logits.numpy()
    greedy = tiny.generate(mg.tensor(ids), max_new_tokens=3, eos_token_id=-1).numpy()
    tiny.to(device)
    with mg.no_grad():
        out = tiny(mg.tensor(ids, device=device)).logits
    np.testing.assert_allclose(to_numpy(out), ref, rtol=1e-5, atol=1e-5)
    there = tiny.generate(mg.tensor(ids, device=device), max_new_tokens=3, eos_token_id=-1)
    assert to_numpy(there).tolist() == greedy.tolist()
    tiny.train()
    loss = tiny(mg.tensor(ids, device=device), labels=mg.tensor(ids, device=device)).loss
    loss.backward()
    assert np.isfinite(to_numpy(tiny.model.norm.weight.grad)).all()


def test_labels_ignore_minus_100_and_shift(tiny):
    ids = mg.tensor([[5, 6, 7, 8]])
    with mg.no_grad():
        out = tiny(ids, labels=mg.tensor([[-100, 6, -100, 8]]))
        logp = mg.nn.functional.log_softmax(out.logits, dim=-1).numpy()[0]
    assert out.loss.item() == pytest.approx(-(logp[0, 6] + logp[2, 8]) / 2, rel=1e-5)


# ---------------------------------------------------------------------------- KV cache


def test_cache_decoding_equals_full_recomputation(tiny, expected):
    ids = expected["input_ids"][:1]
    with mg.no_grad():
        full = tiny(mg.tensor(ids)).logits.numpy()
        cache = tiny.new_cache()
        out = tiny(mg.tensor(ids[:, :4]), past_key_values=cache, use_cache=True)
        steps = [out.logits.numpy()]
        for t in range(4, ids.shape[1]):
            out = tiny(mg.tensor(ids[:, t:t + 1]), past_key_values=out.past_key_values,
                       use_cache=True)
            steps.append(out.logits.numpy())
        tail = tiny(mg.tensor(ids[:, 7:]), past_key_values=_prefilled(tiny, ids[:, :7]),
                    use_cache=True).logits.numpy()  # several new tokens after a past
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(tail, full[:, 7:], rtol=1e-5, atol=1e-5)
    assert cache.get_seq_length() == ids.shape[1]


def _prefilled(model, ids):
    cache = model.new_cache()
    model(mg.tensor(ids), past_key_values=cache, use_cache=True)
    return cache


def test_cache_is_preallocated_and_grows_by_doubling():
    cache = KVCache(1, capacity=8)
    k = mg.randn(1, 2, 3, 4)
    cache.update(0, k, k)
    buffer = cache.keys[0]
    cache.advance(3)
    cache.update(0, k[:, :, :1], k[:, :, :1])
    assert cache.keys[0] is buffer and buffer.shape[-2] == 8  # written in place
    cache.advance(1)
    cache.update(0, mg.randn(1, 2, 5, 4), mg.randn(1, 2, 5, 4))
    assert cache.keys[0].shape[-2] == 16
    np.testing.assert_array_equal(cache.keys[0][..., :3, :], k.numpy())


def test_training_through_the_cache_keeps_the_new_tokens_graph(tiny):
    tiny.train()
    cache = _prefilled(tiny, np.array([[3, 4, 5]]))
    out = tiny(mg.tensor([[6, 7]]), past_key_values=cache, labels=mg.tensor([[6, 7]]))
    out.loss.backward()
    assert np.abs(tiny.model.layers[0].self_attn.k_proj.weight.grad.numpy()).max() > 0


# ---------------------------------------------------------------------------- generation


def test_greedy_generation_is_the_argmax_of_full_recomputation(tiny):
    prompt = np.array([[1, 17, 33, 9]])
    out = tiny.generate(mg.tensor(prompt), max_new_tokens=8, eos_token_id=-1).numpy()
    assert out.shape == (1, 12) and (out[:, :4] == prompt).all()
    with mg.no_grad():
        for t in range(4, 12):
            logits = tiny(mg.tensor(out[:, :t])).logits.numpy()[0, -1]
            assert out[0, t] == logits.argmax()


def test_batch_generation_with_left_padding_equals_one_by_one(tiny):
    a, b = [1, 17, 33, 9, 40], [1, 50, 60]
    ids = np.array([a, [0, 0] + b])
    mask = np.array([[1] * 5, [0, 0, 1, 1, 1]])
    batch = tiny.generate(mg.tensor(ids), attention_mask=mg.tensor(mask), max_new_tokens=6,
                          eos_token_id=-1).numpy()
    for row, prompt in zip(batch, (a, b)):
        alone = tiny.generate(mg.tensor([prompt]), max_new_tokens=6, eos_token_id=-1).numpy()
        assert row[-6:].tolist() == alone[0, -6:].tolist()


def test_eos_stops_and_pads_and_the_streamer_sees_every_token(tiny):
    prompt = np.array([[1, 17, 33, 9]])
    free = tiny.generate(mg.tensor(prompt), max_new_tokens=6, eos_token_id=-1).numpy()
    eos = int(free[0, 6])  # the third new token: make it the end
    seen = []
    out = tiny.generate(mg.tensor(prompt), max_new_tokens=6, eos_token_id=eos,
                        streamer=seen.append).numpy()
    first = free[0, 4:].tolist().index(eos)  # it may come earlier than the third
    assert out[0].tolist() == free[0, :4 + first + 1].tolist()
    assert [s[0] for s in seen] == out[0, 4:].tolist()

    class Streamer:
        def __init__(self):
            self.calls, self.ended = [], False

        def put(self, ids):
            self.calls.append(np.asarray(ids).tolist())

        def end(self):
            self.ended = True

    streamer = Streamer()
    tiny.generate(mg.tensor(prompt), max_new_tokens=2, eos_token_id=-1, streamer=streamer)
    assert streamer.calls[0] == prompt.tolist() and len(streamer.calls) == 3 and streamer.ended


def test_sampling_is_seeded_and_respects_top_k(tiny):
    prompt = mg.tensor([[1, 17, 33]])
    a = tiny.generate(prompt, max_new_tokens=5, do_sample=True, top_k=3, temperature=0.7,
                      seed=4, eos_token_id=-1).numpy()
    b = tiny.generate(prompt, max_new_tokens=5, do_sample=True, top_k=3, temperature=0.7,
                      seed=4, eos_token_id=-1).numpy()
    assert (a == b).all()
    mg.manual_seed(0)
    c = tiny.generate(prompt, max_new_tokens=5, do_sample=True, eos_token_id=-1).numpy()
    mg.manual_seed(0)
    d = tiny.generate(prompt, max_new_tokens=5, do_sample=True, eos_token_id=-1).numpy()
    assert (c == d).all()
    with mg.no_grad():  # with top_k=1, sampling is greedy
        greedy = tiny.generate(prompt, max_new_tokens=5, eos_token_id=-1).numpy()
    assert (tiny.generate(prompt, max_new_tokens=5, do_sample=True, top_k=1, seed=1,
                          eos_token_id=-1).numpy() == greedy).all()


def test_logits_processors():
    logits = np.array([[1.0, 3.0, 2.0, 0.0]])
    assert top_k_filter(logits, 2).tolist() == [[-np.inf, 3.0, 2.0, -np.inf]]
    probs = np.exp(logits) / np.exp(logits).sum()  # 0.032, 0.644, 0.237, 0.087
    assert np.isfinite(top_p_filter(logits, 0.5)).tolist() == [[False, True, False, False]]
    assert np.isfinite(top_p_filter(logits, 0.8)).tolist() == [[False, True, True, False]]
    assert np.isfinite(top_p_filter(logits, 0.99)).sum() == 4 and probs[0, 1] > 0.5
    assert repetition_penalty(logits, np.array([[1, 1, 3]]), 2.0).tolist() == [
        [1.0, 1.5, 2.0, 0.0]]
    rng = np.random.default_rng(0)
    draws = sample(np.log(np.array([[0.2, 0.8]] * 4000)), rng)
    assert abs(draws.mean() - 0.8) < 0.03


@pytest.mark.torch
def test_processors_match_transformers():
    pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    from transformers.generation.logits_process import (
        RepetitionPenaltyLogitsProcessor, TopKLogitsWarper, TopPLogitsWarper,
    )
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((3, 50)).astype(np.float32)
    ids = rng.integers(0, 50, (3, 7))
    t, i = torch.tensor(logits), torch.tensor(ids)
    cases = [
        (top_k_filter(logits, 5), TopKLogitsWarper(5)(i, t.clone())),
        (top_p_filter(logits, 0.7), TopPLogitsWarper(0.7)(i, t.clone())),
        (repetition_penalty(logits, ids, 1.3), RepetitionPenaltyLogitsProcessor(1.3)(i, t.clone())),
    ]
    for ours, theirs in cases:
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-6)


# ---------------------------------------------------------------------------- files


def _llama_cpp_permute(w, heads):
    """llama.cpp's convert_hf_to_gguf permutation of q/k rows (for adjacent-pair RoPE)."""
    return (w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2)
            .reshape(w.shape))


TINY_GGUF_METADATA = {
    "general.architecture": "llama", "llama.block_count": 2, "llama.context_length": 64,
    "llama.embedding_length": 32, "llama.feed_forward_length": 48,
    "llama.attention.head_count": 4, "llama.attention.head_count_kv": 2,
    "llama.rope.freq_base": 10000.0, "llama.attention.layer_norm_rms_epsilon": 1e-5,
    "llama.vocab_size": 96, "tokenizer.ggml.bos_token_id": 1, "tokenizer.ggml.eos_token_id": 2,
}


def _tiny_gguf_writer():
    writer = GGUFWriter()
    for key, value in TINY_GGUF_METADATA.items():
        writer.add_metadata(key, value)
    return writer


def test_from_gguf_names_missing_and_unexpected_tensors(tmp_path):
    writer = _tiny_gguf_writer()
    writer.add_tensor("token_embd.weight", np.zeros((96, 32), np.float32))
    writer.write(tmp_path / "a.gguf")
    with pytest.raises(ValueError, match="lacks .*model.norm.weight"):
        LlamaForCausalLM.from_gguf(tmp_path / "a.gguf")
    writer = _tiny_gguf_writer()
    writer.add_tensor("blk.9.attn_q.weight", np.zeros((32, 32), np.float32))
    writer.write(tmp_path / "b.gguf")
    with pytest.raises(ValueError, match="unexpected tensor 'blk.9.attn_q.weight'"):
        LlamaForCausalLM.from_gguf(tmp_path / "b.gguf")
    writer = _tiny_gguf_writer()
    writer.add_tensor("token_embd.weight", np.zeros((90, 32), np.float32))
    writer.write(tmp_path / "c.gguf")
    with pytest.raises(ValueError, match="shape"):
        LlamaForCausalLM.from_gguf(tmp_path / "c.gguf")


def test_from_gguf_undoes_the_qk_permutation(tiny, tmp_path):
    writer = _tiny_gguf_writer()
    names = {"model.embed_tokens.weight": "token_embd.weight",
             "model.norm.weight": "output_norm.weight"}
    parts = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
             "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
             "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
             "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}
    for name, value in tiny.state_dict().items():
        if name == "lm_head.weight":
            continue  # tied: GGUF has no output.weight
        array = value.numpy()
        if name.startswith("model.layers."):
            _, _, i, rest = name.split(".", 3)
            part = rest.rsplit(".", 1)[0]
            if part == "self_attn.q_proj":
                array = _llama_cpp_permute(array, 4)
            elif part == "self_attn.k_proj":
                array = _llama_cpp_permute(array, 2)
            names[name] = f"blk.{i}.{parts[part]}.weight"
        writer.add_tensor(names[name], array, "F32")
    path = tmp_path / "tiny.gguf"
    writer.write(path)
    loaded = LlamaForCausalLM.from_gguf(path)
    assert loaded.config.num_key_value_heads == 2 and loaded.tokenizer is None
    assert loaded.config.tie_word_embeddings
    for name, value in tiny.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[name].numpy(), value.numpy())


def test_save_pretrained_round_trip(tiny, tmp_path):
    tiny.save_pretrained(tmp_path)
    with open(tmp_path / "config.json") as f:
        saved = json.load(f)
    assert saved["model_type"] == "llama" and saved["num_key_value_heads"] == 2
    again = LlamaForCausalLM.from_pretrained(tmp_path)
    ids = mg.tensor([[3, 4, 5, 6]])
    with mg.no_grad():
        np.testing.assert_array_equal(again(ids).logits.numpy(), tiny(ids).logits.numpy())


@pytest.mark.torch
def test_transformers_loads_what_save_pretrained_writes(tiny, tmp_path):
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    tiny.save_pretrained(tmp_path)
    theirs = transformers.LlamaForCausalLM.from_pretrained(tmp_path, dtype=torch.float32,
                                                           use_kernels=False)
    ids = [[3, 4, 5, 6, 7]]
    with torch.no_grad():
        expect = theirs(torch.tensor(ids)).logits.numpy()
    with mg.no_grad():
        assert _rel(tiny(mg.tensor(ids)).logits.numpy(), expect) < 1e-4
