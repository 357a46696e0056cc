"""W6: a Llama LLM on minigrad beside PyTorch + transformers (float32, eager attention).

Measured, each side the same way, on the same weights:

- prefill: ms to run a P-token prompt through the model filling the KV cache;
- decode: tokens/s of greedy single-token steps over that cache (N steps);
- LoRA step: ms of one training step (forward with labels, backward, AdamW) with rank-8
  adapters on q_proj and v_proj (minigrad.finetune.apply_lora; on the PyTorch side the same
  adapter written as a module around the frozen Linear);
- memory: the growth of the process's resident size while the model loads, beside the float32
  weights' bytes (PyTorch's is measured after minigrad's, in the same process).

Full size is SmolLM2-135M-Instruct from its GGUF file (P = 128, N = 32, LoRA batch 4 x 128);
``quick`` is a tiny random Llama (P = 16, N = 8), only to check that it runs.

    python -m benchmarks --only W6 [--quick]
"""

from __future__ import annotations

import statistics
import tempfile
import time

import numpy as np

import minigrad as mg
from minigrad.finetune import apply_lora
from minigrad.models.llama import LlamaConfig, LlamaForCausalLM, smollm2_path

HEADERS = ["W6 (Llama)", "minigrad", "PyTorch", "minigrad / PyTorch"]


def _rss_bytes() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def _load(quick: bool):
    if quick:
        mg.manual_seed(0)
        config = LlamaConfig(vocab_size=512, hidden_size=64, intermediate_size=128,
                             num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
        return LlamaForCausalLM(config).eval()
    return LlamaForCausalLM.from_gguf(smollm2_path())


def _ours(model, prompt, new_tokens, batch, repeats):
    def prefill():
        with mg.no_grad():
            cache = model.new_cache(prompt.shape[1] + new_tokens)
            out = model(mg.tensor(prompt), past_key_values=cache, use_cache=True,
                        logits_to_keep=1)
        return cache, out

    def decode():
        cache, out = prefill()
        nxt = out.logits.numpy()[:, -1].argmax(-1)[:, None]
        t0 = time.perf_counter()
        with mg.no_grad():
            for _ in range(new_tokens):
                out = model(mg.tensor(nxt), past_key_values=cache, use_cache=True)
                nxt = out.logits.numpy()[:, -1].argmax(-1)[:, None]
        return time.perf_counter() - t0

    prefill_ms = _median_ms(prefill, repeats)
    decode_s = statistics.median(decode() for _ in range(repeats))
    apply_lora(model, ["q_proj", "v_proj"], r=8, alpha=16)
    opt = mg.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    model.train()
    ids = mg.tensor(batch)

    def step():
        opt.zero_grad()
        model(ids, labels=ids).loss.backward()
        opt.step()

    return prefill_ms, new_tokens / decode_s, _median_ms(step, repeats)


def _theirs(folder, prompt, new_tokens, batch, repeats):
    import torch
    import transformers

    from transformers.models.llama import modeling_llama  # noqa: F401  (imported before the RSS)

    before = _rss_bytes()
    model = transformers.LlamaForCausalLM.from_pretrained(
        folder, dtype=torch.float32, attn_implementation="eager", use_kernels=False).eval()
    rss = _rss_bytes() - before
    ids = torch.tensor(prompt)

    def prefill():
        with torch.no_grad():
            return model(ids, use_cache=True, logits_to_keep=1)

    def decode():
        out = prefill()
        nxt = out.logits[:, -1].argmax(-1, keepdim=True)
        t0 = time.perf_counter()
        with torch.no_grad():
            for _ in range(new_tokens):
                out = model(nxt, past_key_values=out.past_key_values, use_cache=True)
                nxt = out.logits[:, -1].argmax(-1, keepdim=True)
        return time.perf_counter() - t0

    prefill_ms = _median_ms(prefill, repeats)
    decode_s = statistics.median(decode() for _ in range(repeats))

    class LoRA(torch.nn.Module):
        def __init__(self, base, r=8, alpha=16):
            super().__init__()
            self.base, self.scaling = base, alpha / r
            self.A = torch.nn.Parameter(torch.randn(r, base.in_features) * 0.01)
            self.B = torch.nn.Parameter(torch.zeros(base.out_features, r))

        def forward(self, x):
            return self.base(x) + (x @ self.A.T @ self.B.T) * self.scaling

    for p in model.parameters():
        p.requires_grad_(False)
    for layer in model.model.layers:
        layer.self_attn.q_proj = LoRA(layer.self_attn.q_proj)
        layer.self_attn.v_proj = LoRA(layer.self_attn.v_proj)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    model.train()
    labels = torch.tensor(batch)

    def step():
        opt.zero_grad()
        model(labels, labels=labels).loss.backward()
        opt.step()

    return prefill_ms, new_tokens / decode_s, _median_ms(step, repeats), rss


def run(device: str = "cpu", quick: bool = False) -> dict:
    """W6's numbers: ``{"prefill_ms": (ours, theirs), "decode_tok_s": ..., "lora_step_ms":
    ..., "rss_mb": ..., "weights_mb": float}`` (theirs None without transformers)."""
    if device != "cpu":
        raise NotImplementedError("W6 runs on the CPU here")
    P, N, B, T, repeats = (16, 8, 2, 16, 2) if quick else (128, 32, 4, 128, 3)
    before = _rss_bytes()
    model = _load(quick)
    rss = _rss_bytes() - before
    vocab = model.config.vocab_size
    rng = np.random.default_rng(0)
    prompt = rng.integers(3, vocab, size=(1, P))
    batch = rng.integers(3, vocab, size=(B, T))
    weights = sum(int(np.prod(p.shape)) * 4 for p in model.parameters())
    folder = tempfile.mkdtemp(prefix="w6_")
    model.save_pretrained(folder)
    ours = _ours(model, prompt, N, batch, repeats)
    try:
        theirs = _theirs(folder, prompt, N, batch, repeats)
    except ImportError:
        theirs = (None, None, None, None)
    return {"prefill_ms": (ours[0], theirs[0]), "decode_tok_s": (ours[1], theirs[1]),
            "lora_step_ms": (ours[2], theirs[2]), "rss_mb": (rss / 2**20, (theirs[3] or 0) /
                                                            2**20 if theirs[3] else None),
            "weights_mb": weights / 2**20, "prompt": P, "new_tokens": N, "quick": quick}


def rows(result: dict) -> list:
    """Table rows (HEADERS) of a `run` result."""
    out = []
    for key, label in (("prefill_ms", f"prefill {result['prompt']} tokens (ms)"),
                       ("decode_tok_s", f"decode (tokens/s, {result['new_tokens']} steps)"),
                       ("lora_step_ms", "LoRA step (ms)"),
                       ("rss_mb", f"resident growth at load (MB; weights "
                                  f"{result['weights_mb']:.0f})")):
        ours, theirs = result[key]
        ratio = f"{ours / theirs:.2f}" if theirs else "-"
        out.append([label, f"{ours:.1f}", "-" if theirs is None else f"{theirs:.1f}", ratio])
    return out
