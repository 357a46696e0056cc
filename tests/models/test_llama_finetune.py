"""LoRA fine-tuning of a Llama (minigrad.finetune.lm, minigrad finetune-lm) on a tiny model
with a byte-level tokenizer: response-only labels, the held-out loss falling, exact resume,
merged export equal to the adapted model."""

import json

import numpy as np
import pytest

import minigrad as mg
from minigrad import cli
from minigrad.finetune.lm import (
    IGNORE, LMBatches, LMFinetuneConfig, encode_example, finetune_lm, read_jsonl,
)
from minigrad.finetune.lora import load_lora, lora_state_dict
from minigrad.models.bpe import CONTROL, NORMAL, BPETokenizer, bytes_to_unicode
from minigrad.models.llama import LlamaConfig, LlamaForCausalLM

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
ROWS = [{"prompt": f"Colour of item {i}?", "response": ["Red.", "Blue."][i % 2]}
        for i in range(24)]


def _tokenizer():
    chars = bytes_to_unicode()
    return BPETokenizer(SPECIALS + [chars[b] for b in range(256)], [],
                        token_types=[CONTROL] * 3 + [NORMAL] * 256, eos_token_id=2,
                        pad_token_id=0)


def _model(seed=0):
    mg.manual_seed(seed)
    config = LlamaConfig(vocab_size=259, hidden_size=32, intermediate_size=48,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         bos_token_id=None, eos_token_id=2, initializer_range=0.1)
    model = LlamaForCausalLM(config)
    model.tokenizer = _tokenizer()
    return model


CONFIG = LMFinetuneConfig(epochs=2, batch_size=2, lr=5e-2, r=4, alpha=8, eval_fraction=0.25,
                          seed=1)


def test_encode_example_labels_the_answer_only():
    tok = _tokenizer()
    ids, labels = encode_example(tok, {"messages": [
        {"role": "system", "content": "S"}, {"role": "user", "content": "Q"},
        {"role": "assistant", "content": "A1"}]})
    assert len(ids) == len(labels)
    assert tok.decode([i for i, lab in zip(ids, labels) if lab != IGNORE]) == "A1<|im_end|>"
    assert tok.decode(ids).endswith("<|im_start|>assistant\nA1<|im_end|>")
    ids, labels = encode_example(tok, ROWS[0], max_length=5)
    assert len(ids) == len(labels) == 5


def test_read_jsonl_errors(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"prompt": "a", "response": "b"}\n\n{"messages": [{"role": "user"}]}\n')
    with pytest.raises(ValueError, match=r"d.jsonl:3"):
        read_jsonl(path)
    path.write_text("not json\n")
    with pytest.raises(ValueError, match=r"d.jsonl:1: not JSON"):
        read_jsonl(path)
    path.write_text('{"prompt": "a", "response": "b"}\n')
    assert read_jsonl(path) == [{"prompt": "a", "response": "b"}]


def test_batches_pad_right_and_shuffle_by_epoch():
    examples = [([1, 2, 3], [IGNORE, 2, 3]), ([4], [IGNORE]), ([5, 6], [IGNORE, 6])]
    batches = LMBatches(examples, 2, shuffle=True, seed=0, pad_token_id=0)
    first = [ids.numpy().tolist() for ids, _ in batches]
    assert [ids.numpy().tolist() for ids, _ in batches] == first  # same epoch: same order
    batches.set_epoch(1)
    assert len(batches) == 2
    ids, labels = next(iter(LMBatches(examples, 3)))
    assert ids.numpy().tolist() == [[1, 2, 3], [4, 0, 0], [5, 6, 0]]
    assert labels.numpy()[1].tolist() == [IGNORE] * 3


def test_finetune_lowers_the_held_out_loss_and_merges(tmp_path):
    model = _model()
    result = finetune_lm(model, ROWS, tmp_path, CONFIG, merge=True, verbose=0)
    assert result["eval_loss_after"] < 0.85 * result["eval_loss_before"]  # a random base
    assert (tmp_path / "adapter_model.safetensors").is_file()
    assert len(result["epoch_seconds"]) == 2 and result["eval_examples"] == 6
    merged = LlamaForCausalLM.from_pretrained(tmp_path / "merged")
    adapted = _model()
    load_lora(adapted, tmp_path / "adapter_model.safetensors")
    ids = mg.tensor([[1, 40, 50, 60, 70]])
    with mg.no_grad():
        np.testing.assert_allclose(merged(ids).logits.numpy(), adapted(ids).logits.numpy(),
                                   rtol=1e-5, atol=1e-5)


def test_resume_is_exact(tmp_path):
    whole = _model()
    finetune_lm(whole, ROWS, tmp_path / "whole", CONFIG, verbose=0)
    part = _model()
    finetune_lm(part, ROWS, tmp_path / "part", LMFinetuneConfig(
        **{**CONFIG.__dict__, "epochs": 1}), verbose=0)
    resumed = _model()
    finetune_lm(resumed, ROWS, tmp_path / "part", CONFIG, resume=True, verbose=0)
    a, b = lora_state_dict(whole), lora_state_dict(resumed)
    assert a.keys() == b.keys() and len(a) == 8  # q_proj, v_proj x 2 layers x (A, B)
    for key in a:
        np.testing.assert_array_equal(a[key].numpy(), b[key].numpy())


def test_gradient_accumulation_runs(tmp_path):
    model = _model()
    config = LMFinetuneConfig(**{**CONFIG.__dict__, "epochs": 1, "batch_size": 2,
                                 "gradient_accumulation_steps": 2})
    result = finetune_lm(model, ROWS, tmp_path, config, verbose=0)
    assert np.isfinite(result["eval_loss_after"])


def test_cli_finetune_lm(tmp_path, capsys):
    folder = tmp_path / "base"
    _model().save_pretrained(folder)
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    out = tmp_path / "run"
    argv = ["finetune-lm", "--data", str(data), "--model", str(folder), "--out", str(out),
            "--epochs", "1", "--batch-size", "4", "--lr", "0.02", "--lora-r", "4",
            "--eval-fraction", "0.25", "--show", "1", "--merge"]
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    assert "held-out response loss before" in text and "lower)" in text
    assert "before | " in text and "after | " in text and "tok/s" in text
    assert (out / "merged" / "config.json").is_file()
    assert cli.main(argv[:-1] + ["--epochs", "2", "--resume"]) == 0
    assert cli.main(["finetune-lm", "--data", str(data), "--epochs", "0"]) == 2
    assert cli.main(["finetune-lm", "--data", str(tmp_path / "none.jsonl")]) == 1
