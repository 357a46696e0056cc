"""W6: a Llama LLM on minigrad beside PyTorch + transformers (float32, eager attention).

Measured, each side the same way, on the same weights:

- prefill: ms to run a P-token prompt through the model filling the KV cache;
- decode: tokens/s of greedy single-token steps over that cache (N steps);
- LoRA step: ms of one training step (forward with labels, backward, AdamW) with rank-8
  adapters on q_proj and v_proj (minigrad.finetune.apply_lora; on the PyTorch side the same
  adapter written as a module around the frozen Linear);
- memory: the growth of the process's resident size while the model loads (and the growth of
  its peak), and after the first prefill (transformers maps the safetensors file: its weights
  become resident as they are first read), beside the float32 weights' bytes.

Each side runs in a fresh process of its own (this module with ``--side minigrad|torch``,
one JSON line on stdout), so neither side's memory or caches disturb the other's numbers; the
runner interleaves the sides over ``rounds`` rounds (the order alternating) and keeps the
medians. Before anything is compared, both sides must compute the same thing: the prefill's
last-position logits within 1e-3 of the largest and the first greedy tokens equal (a mismatch
raises).

Full size is SmolLM2-135M-Instruct (minigrad loads its GGUF file; PyTorch the same weights
saved as a Hugging Face folder): P = 128, N = 32, LoRA batch 4 x 128. ``quick`` is a tiny
random Llama (P = 16, N = 8), only to check that it runs.

    python -m benchmarks --only W6 [--quick]
    python -m benchmarks.bench_llm [--quick] [--rounds 3]          # W6 alone, JSON + table
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HEADERS = ["W6 (Llama)", "minigrad", "PyTorch", "minigrad / PyTorch"]
SIDES = ("minigrad", "torch")
CHECK_STEPS = 4  # greedy tokens that must agree between the sides
LOGITS_RTOL = 1e-3  # last-position logits: max |diff| <= this x max |logit|
ROOT = Path(__file__).resolve().parents[1]  # the checkout (benchmarks/ is not installed)


def _sizes(quick: bool) -> dict:
    if quick:
        return {"prompt": 16, "new_tokens": 8, "batch": 2, "seq": 16, "repeats": 2}
    return {"prompt": 128, "new_tokens": 32, "batch": 4, "seq": 128, "repeats": 3}


def _inputs(vocab: int, sizes: dict):
    rng = np.random.default_rng(0)
    prompt = rng.integers(3, vocab, size=(1, sizes["prompt"]))
    batch = rng.integers(3, vocab, size=(sizes["batch"], sizes["seq"]))
    return prompt, batch


def _memory() -> dict:
    """This process's resident size and its peak so far, in bytes (Linux; zeros elsewhere)."""
    out = {"VmRSS": 0, "VmHWM": 0}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                key = line.split(":")[0]
                if key in out:
                    out[key] = int(line.split()[1]) * 1024
    except OSError:
        pass
    return out


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def _tiny_config():
    from minigrad.models.llama import LlamaConfig

    return LlamaConfig(vocab_size=512, hidden_size=64, intermediate_size=128,
                       num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)


# ---------------------------------------------------------------------------- the two sides


def _result(model, opt, ids, repeats, prefill_ms, decode_tok_s, tokens, memory, weights):
    """A side's numbers: times its LoRA training step (either framework: the same calls) and
    adds the memory readings ``(before load, after load, after one prefill)``."""
    model.train()

    def step():
        opt.zero_grad()
        model(ids, labels=ids).loss.backward()
        opt.step()

    before, after, used = memory
    return {"prefill_ms": prefill_ms, "decode_tok_s": decode_tok_s,
            "lora_step_ms": _median_ms(step, repeats), "tokens": tokens,
            "rss_mb": (after["VmRSS"] - before["VmRSS"]) / 2**20,
            "peak_mb": (after["VmHWM"] - before["VmRSS"]) / 2**20,
            "rss_used_mb": (used["VmRSS"] - before["VmRSS"]) / 2**20, "weights_mb": weights / 2**20}


def _side_minigrad(folder: str, quick: bool) -> dict:
    import minigrad as mg
    from minigrad.finetune import apply_lora
    from minigrad.models.llama import LlamaForCausalLM, smollm2_path

    sizes = _sizes(quick)
    before = _memory()
    if quick:
        model = LlamaForCausalLM.from_pretrained(folder)
    else:
        model = LlamaForCausalLM.from_gguf(smollm2_path())
    after = _memory()
    weights = sum(p.data.nbytes for p in model.parameters())
    prompt, batch = _inputs(model.config.vocab_size, sizes)
    N, repeats = sizes["new_tokens"], sizes["repeats"]

    def prefill():
        with mg.no_grad():
            cache = model.new_cache(prompt.shape[1] + N)
            out = model(mg.tensor(prompt), past_key_values=cache, use_cache=True,
                        logits_to_keep=1)
        return cache, out

    def decode():
        cache, out = prefill()
        nxt = out.logits.numpy()[:, -1].argmax(-1)[:, None]
        tokens = []
        t0 = time.perf_counter()
        with mg.no_grad():
            for _ in range(N):
                tokens.append(int(nxt[0, 0]))
                out = model(mg.tensor(nxt), past_key_values=cache, use_cache=True)
                nxt = out.logits.numpy()[:, -1].argmax(-1)[:, None]
        return time.perf_counter() - t0, tokens

    _, out = prefill()
    used = _memory()  # (after a first forward: PyTorch's weights are read from their file then)
    np.save(os.path.join(folder, "logits_minigrad.npy"), out.logits.numpy()[0, -1])
    tokens = decode()[1]
    prefill_ms = _median_ms(prefill, repeats)
    decode_s = statistics.median(decode()[0] for _ in range(repeats))

    apply_lora(model, ["q_proj", "v_proj"], r=8, alpha=16)
    opt = mg.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    return _result(model, opt, mg.tensor(batch), repeats, prefill_ms, N / decode_s, tokens,
                   (before, after, used), weights)


def torch_lora_class(torch):
    """minigrad.finetune.LoRALinear written as a PyTorch module (the PyTorch side of the LoRA
    step here and in bench_checkpoint): ``base(x) + x A^T B^T * alpha / r``, B zero."""

    class LoRA(torch.nn.Module):
        def __init__(self, base, r=8, alpha=16):
            super().__init__()
            self.base, self.scaling = base, alpha / r
            self.A = torch.nn.Parameter(torch.randn(r, base.in_features) * 0.01)
            self.B = torch.nn.Parameter(torch.zeros(base.out_features, r))

        def forward(self, x):
            return self.base(x) + (x @ self.A.T @ self.B.T) * self.scaling

    return LoRA


def _side_torch(folder: str, quick: bool) -> dict:
    # this folder's kernels/ is minigrad's, not the PyPI `kernels` that transformers probes for
    sys.modules.setdefault("kernels", None)
    os.environ.setdefault("USE_HUB_KERNELS", "0")
    import torch
    import transformers
    from transformers.models.llama import modeling_llama  # noqa: F401  (imported before the RSS)

    sizes = _sizes(quick)
    before = _memory()
    model = transformers.LlamaForCausalLM.from_pretrained(
        folder, dtype=torch.float32, attn_implementation="eager").eval()
    after = _memory()
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    prompt, batch = _inputs(model.config.vocab_size, sizes)
    N, repeats = sizes["new_tokens"], sizes["repeats"]
    ids = torch.tensor(prompt)

    def prefill():
        with torch.no_grad():
            return model(ids, use_cache=True, logits_to_keep=1)

    def decode():
        out = prefill()
        nxt = out.logits[:, -1].argmax(-1, keepdim=True)
        tokens = []
        t0 = time.perf_counter()
        with torch.no_grad():
            for _ in range(N):
                tokens.append(int(nxt[0, 0]))
                out = model(nxt, past_key_values=out.past_key_values, use_cache=True)
                nxt = out.logits[:, -1].argmax(-1, keepdim=True)
        return time.perf_counter() - t0, tokens

    first = prefill()
    used = _memory()  # from_pretrained maps the file: the weights are resident once read
    np.save(os.path.join(folder, "logits_torch.npy"), first.logits[0, -1].numpy())
    tokens = decode()[1]
    prefill_ms = _median_ms(prefill, repeats)
    decode_s = statistics.median(decode()[0] for _ in range(repeats))

    LoRA = torch_lora_class(torch)

    for p in model.parameters():
        p.requires_grad_(False)
    for layer in model.model.layers:
        layer.self_attn.q_proj = LoRA(layer.self_attn.q_proj)
        layer.self_attn.v_proj = LoRA(layer.self_attn.v_proj)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    return _result(model, opt, torch.tensor(batch), repeats, prefill_ms, N / decode_s, tokens,
                   (before, after, used), weights)


def _export(folder: str, quick: bool) -> None:
    """The weights both sides load, as a Hugging Face folder (PyTorch's input)."""
    import minigrad as mg
    from minigrad.models.llama import LlamaForCausalLM, smollm2_path

    if quick:
        mg.manual_seed(0)
        model = LlamaForCausalLM(_tiny_config())
    else:
        model = LlamaForCausalLM.from_gguf(smollm2_path())
    model.save_pretrained(folder)


# ---------------------------------------------------------------------------- the runner


def _child(args: list) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
    proc = subprocess.run([sys.executable, "-m", "benchmarks.bench_llm"] + args, cwd=ROOT,
                          env=env, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"W6 {' '.join(args[:2])} failed:\n{proc.stderr[-4000:]}")
    lines = proc.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else {}


def _check(folder: str, results: dict) -> dict:
    """Both sides computed the same thing: logits close, the first greedy tokens equal."""
    ours = np.load(os.path.join(folder, "logits_minigrad.npy"))
    theirs = np.load(os.path.join(folder, "logits_torch.npy"))
    diff = float(np.abs(ours - theirs).max() / max(np.abs(theirs).max(), 1e-30))
    t_ours = results["minigrad"]["tokens"][:CHECK_STEPS]
    t_theirs = results["torch"]["tokens"][:CHECK_STEPS]
    if diff > LOGITS_RTOL or t_ours != t_theirs:
        raise RuntimeError(
            f"W6: minigrad and PyTorch disagree (last-position logits max |diff| {diff:.2e} of "
            f"the largest, greedy tokens {t_ours} vs {t_theirs}): nothing is timed"
        )
    return {"logits_rel_diff": diff, "tokens_equal": CHECK_STEPS}


def run(device: str = "cpu", quick: bool = False, rounds: int = None) -> dict:
    """W6's numbers, each side in fresh processes, interleaved, medians over ``rounds``.

    Returns:
        ``{"prefill_ms": (ours, theirs), "decode_tok_s": ..., "lora_step_ms": ..., "rss_mb":
        ..., "peak_mb": ..., "weights_mb": (ours, theirs), "check": {...}, "rounds": n,
        "raw": {side: [per-round dicts]}, ...}``; theirs is None without transformers.
    """
    if device != "cpu":
        raise NotImplementedError("W6 runs on the CPU here")
    rounds = rounds or (1 if quick else 3)
    sizes = _sizes(quick)
    folder = tempfile.mkdtemp(prefix="w6_")
    mode = ["--quick"] if quick else []
    try:
        _child(["--side", "export", "--folder", folder] + mode)
        try:
            import torch  # noqa: F401
            import transformers  # noqa: F401
            sides = SIDES
        except ImportError:
            sides = ("minigrad",)
        raw: dict = {side: [] for side in sides}
        check = None
        for r in range(rounds):
            for side in (sides if r % 2 == 0 else sides[::-1]):
                raw[side].append(_child(["--side", side, "--folder", folder] + mode))
            if check is None and len(sides) == 2:
                check = _check(folder, {s: raw[s][0] for s in sides})
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    out = {"prompt": sizes["prompt"], "new_tokens": sizes["new_tokens"], "quick": quick,
           "rounds": rounds, "check": check, "raw": raw}
    for key in ("prefill_ms", "decode_tok_s", "lora_step_ms", "rss_mb", "peak_mb",
                "rss_used_mb", "weights_mb"):
        out[key] = tuple(statistics.median(run[key] for run in raw[side]) if side in raw
                         else None for side in SIDES)
    return out


def rows(result: dict) -> list:
    """Table rows (HEADERS) of a `run` result."""
    out = []
    weights = result["weights_mb"][0]
    for key, label in (("prefill_ms", f"prefill {result['prompt']} tokens (ms)"),
                       ("decode_tok_s", f"decode (tokens/s, {result['new_tokens']} steps)"),
                       ("lora_step_ms", "LoRA step (ms)"),
                       ("rss_mb", f"resident growth at load (MB; weights {weights:.0f})"),
                       ("peak_mb", "peak resident growth at load (MB)"),
                       ("rss_used_mb", "resident growth after load + one prefill (MB)")):
        ours, theirs = result[key]
        ratio = f"{ours / theirs:.2f}" if theirs else "-"
        out.append([label, f"{ours:.1f}", "-" if theirs is None else f"{theirs:.1f}", ratio])
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tiny random Llama")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (3)")
    parser.add_argument("--side", choices=SIDES + ("export",), help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.side == "export":
        _export(args.folder, args.quick)
    elif args.side:
        side = _side_minigrad if args.side == "minigrad" else _side_torch
        print(json.dumps(side(args.folder, args.quick)), flush=True)
    else:
        result = run("cpu", args.quick, args.rounds)
        print(json.dumps({k: v for k, v in result.items() if k != "raw"}, default=str))
        for row in [HEADERS] + rows(result):
            print(" | ".join(row))


if __name__ == "__main__":
    main()
