"""Make the tiny-Llama parity fixture (run once, with transformers installed; CI only reads it).

A random 2-layer Llama with grouped-query attention (4 query heads, 2 key/value heads) and tied
embeddings, created and saved by ``transformers`` (float32, eager attention), plus what it
computes on a left-padded batch: the logits, the loss with labels (-100 on the padding) and
every parameter's gradient of that loss. Written to tests/models/fixtures/tiny_llama/ and
tests/models/fixtures/tiny_llama_expected.npz.

    python tests/models/make_llama_fixture.py
"""

import os

import numpy as np
import torch
from transformers import LlamaConfig, LlamaForCausalLM

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


def main():
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=96, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5, rope_theta=10000.0,
        max_position_embeddings=64, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2,
        initializer_range=0.2,  # larger than the default so every layer matters
    )
    model = LlamaForCausalLM(config).float()
    model.config._attn_implementation = "eager"
    folder = os.path.join(HERE, "tiny_llama")
    model.save_pretrained(folder)

    rng = np.random.default_rng(0)
    ids = rng.integers(3, 96, size=(2, 9))
    mask = np.ones((2, 9), dtype=np.int64)
    mask[1, :3] = 0  # row 1 left-padded by three
    ids[1, :3] = 2
    labels = np.where(mask == 1, ids, -100)
    labels[1, 3] = -100  # its first token is predicted from padding only: left out
    positions = np.where(mask == 1, np.cumsum(mask, axis=1) - 1, 1)
    out = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask),
                position_ids=torch.tensor(positions), labels=torch.tensor(labels))
    out.loss.backward()
    expected = {"input_ids": ids, "attention_mask": mask, "labels": labels,
                "logits": out.logits.detach().numpy(), "loss": out.loss.detach().numpy()}
    for name, p in model.named_parameters():
        expected["grad." + name] = p.grad.numpy()
    np.savez_compressed(os.path.join(HERE, "tiny_llama_expected.npz"), **expected)
    print("wrote", folder, "and tiny_llama_expected.npz; loss", float(out.loss.detach()))


if __name__ == "__main__":
    main()
