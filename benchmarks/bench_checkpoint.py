"""Activation checkpointing: saved activation memory, peak memory and step time, plain and
checkpointed, minigrad beside PyTorch (``torch.utils.checkpoint``), on three workloads:

- **T12**: W4's block stacked 12 times: token embedding, 12 pre-norm encoder layers (d_model
  256, 4 heads, FFN 1024, dropout 0.1, causal, T 128, batch 16), a linear head over a
  1000-token vocabulary, cross-entropy, Adam. minigrad checkpoints each layer through
  ``nn.TransformerEncoder.gradient_checkpointing_enable()``; PyTorch calls
  ``torch.utils.checkpoint.checkpoint(layer, ..., use_reentrant=False)`` on each layer.
- **W4**: the W4 workload (one post-norm encoder layer, dropout 0, the same sizes), its one
  layer checkpointed the same way.
- **LLM**: a LoRA training step of SmolLM2-135M (rank-8 adapters on q_proj and v_proj, the
  rest frozen, AdamW, batch 4 x 128, labels = inputs): minigrad's ``LlamaForCausalLM.from_gguf``
  + ``finetune.apply_lora`` + ``gradient_checkpointing_enable()``, beside transformers'
  ``LlamaForCausalLM`` (float32, eager attention) loaded from the same weights, with the same
  adapter written as a module and transformers' checkpointing of every decoder layer
  (``activation_checkpointing_enable``, formerly ``gradient_checkpointing_enable``;
  non-reentrant).

Both frameworks get the same weights (T12/W4: minigrad's initialisation copied into PyTorch)
and the same data.

**Method.** Every (workload, framework, mode) runs in a fresh process of its own, so that no
allocator cache, thread pool or page left by another variant is measured; the variants run in
interleaved rounds (``--rounds``, the order rotated each round) and the table gives medians
over the rounds. In each process: build, one warm-up step (the optimizer's state and the
gradients exist), then one measured step for memory, then ``--steps`` timed steps
(ms/step: their median). The gradients are released (``zero_grad``, set to None) before the
memory step on both sides, so no side counts freeing memory that it held before.

Memory (MiB), each the same quantity on both sides:

- **saved**: tensor memory still held when the forward pass has returned the loss, beyond what
  was held before it: what the graph keeps for backward (the activations), plus the loss.
  minigrad on the CPU: NumPy's data buffers, which NumPy reports to tracemalloc under its own
  domain (a snapshot filtered to that domain; Python objects of the graph left out, as
  PyTorch's count has none); PyTorch on the CPU: its profiler's memory events (every CPU tensor
  allocation and free, ``profile_memory=True``), summed in time order up to the start of
  backward. On a GPU: each allocator's ``memory_allocated``.
- **peak**: the most held at once during the whole step (forward, backward, optimizer),
  beyond what was held before it. minigrad on the CPU: tracemalloc's peak (NumPy buffers and
  Python objects); PyTorch: the running sum of its profiler's memory events; on a GPU the
  allocators' ``max_memory_allocated``.
- **saved (malloc)**, CPU only: a framework-independent check of *saved*: the growth of the C
  heap in use (glibc ``mallinfo2``: ``uordblks + hblkhd``) over the forward pass. NumPy and
  PyTorch both take their buffers from malloc; Python's small objects (pymalloc arenas) are
  not in it, PyTorch's C++ autograd nodes are: at tiny sizes that graph dominates PyTorch's
  figure, at full size the activations do.
- **max RSS**: the process's peak resident size (``ru_maxrss``), framework and weights
  included: a coarse whole-process bound.

The memory step is not timed (tracemalloc and the profiler slow it). minigrad's checkpointed
gradients are checked bitwise against its plain run (dropout included) in a separate process.

    OMP_NUM_THREADS=2 python -m benchmarks.bench_checkpoint [--only T12,W4,LLM] [--rounds 3]
        [--steps 3] [--device cuda] [--tiny]

Full size writes ``benchmarks/results/checkpoint.md`` and ``.json`` (``checkpoint_cuda`` on a
GPU); ``--tiny`` (small models, a smoke test) writes nothing unless given ``--write``.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

import minigrad as mg
from benchmarks.common import machine, markdown_table, threads, write_results
from benchmarks.kernel_bench import rotated

WORKLOADS = ("T12", "W4", "LLM")
VARIANTS = [("minigrad", "plain"), ("minigrad", "checkpoint"), ("torch", "plain"),
            ("torch", "checkpoint")]
_TRANSFORMER = {"d_model": 256, "heads": 4, "ffn": 1024, "seq": 128, "batch": 16, "vocab": 1000}
_TRANSFORMER_TINY = {"d_model": 16, "heads": 2, "ffn": 32, "seq": 8, "batch": 2, "vocab": 50}
CONFIGS = {
    "T12": {"full": dict(_TRANSFORMER, blocks=12, dropout=0.1, norm_first=True),
            "tiny": dict(_TRANSFORMER_TINY, blocks=12, dropout=0.1, norm_first=True)},
    "W4": {"full": dict(_TRANSFORMER, blocks=1, dropout=0.0, norm_first=False),
           "tiny": dict(_TRANSFORMER_TINY, blocks=1, dropout=0.0, norm_first=False)},
    "LLM": {"full": {"batch": 4, "seq": 128, "lora_r": 8, "lora_alpha": 16},
            "tiny": {"batch": 2, "seq": 16, "lora_r": 8, "lora_alpha": 16}},
}
LABELS = {"T12": "12-block transformer (d256, T128, B16)",
          "W4": "the W4 workload: 1 post-norm transformer block (d256, T128, B16)",
          "LLM": "SmolLM2-135M LoRA step (B4 x T128)"}
MIB = 2 ** 20
_RESULT = "RESULT "  # a worker's last stdout line: this prefix, then its JSON


# ---------------------------------------------------------------------------- models and steps


class Step:
    """One training step in either framework: ``forward()`` (zero_grad, the forward pass and
    the loss; returns the loss), ``run()`` (forward, backward, optimizer update),
    ``zero_grad()``; ``model`` and ``opt`` kept for the checks."""

    def __init__(self, model, opt, loss_fn):
        self.model, self.opt, self._loss = model, opt, loss_fn

    def zero_grad(self):
        self.opt.zero_grad()

    def forward(self):
        self.opt.zero_grad()
        return self._loss()

    def run(self):
        loss = self.forward()
        loss.backward()
        self.opt.step()
        return loss


def _build_transformer(nn, cfg):
    layer = nn.TransformerEncoderLayer(cfg["d_model"], cfg["heads"], cfg["ffn"],
                                       dropout=cfg["dropout"], batch_first=True,
                                       norm_first=cfg["norm_first"])
    # PyTorch's nested-tensor fast path is for inference; off, as it warns about it
    extra = {} if nn is mg.nn else {"enable_nested_tensor": False}
    return nn.ModuleDict({
        "embed": nn.Embedding(cfg["vocab"], cfg["d_model"]),
        "encoder": nn.TransformerEncoder(layer, cfg["blocks"], **extra),
        "head": nn.Linear(cfg["d_model"], cfg["vocab"]),
    })


def _tokens(cfg, vocab, low=0):
    rng = np.random.default_rng(0)
    shape = (cfg["batch"], cfg["seq"])
    return rng.integers(low, vocab, shape), rng.integers(low, vocab, shape)


def _causal(n):
    return np.triu(np.full((n, n), -np.inf, dtype=np.float32), 1)


def _mg_transformer(cfg, device, checkpointed):
    mg.manual_seed(0)
    model = _build_transformer(mg.nn, cfg).to(device)
    if checkpointed:
        model["encoder"].gradient_checkpointing_enable()
    opt = mg.optim.Adam(model.parameters(), lr=1e-4)
    x_np, y_np = _tokens(cfg, cfg["vocab"])
    x, y = mg.tensor(x_np, device=device), mg.tensor(y_np, device=device)
    mask = mg.tensor(_causal(cfg["seq"]), device=device)

    def loss():
        h = model["encoder"](model["embed"](x), mask=mask, is_causal=True)
        out = model["head"](h)
        return mg.nn.functional.cross_entropy(out.reshape(-1, cfg["vocab"]), y.reshape(-1))

    return Step(model, opt, loss)


def _torch_transformer(cfg, device, checkpointed):
    import torch
    from torch.utils.checkpoint import checkpoint

    state = {k: mg.backend.to_device(v.detach().data, mg.backend.CPU).copy()
             for k, v in _mg_transformer(cfg, "cpu", False).model.state_dict().items()}
    model = _build_transformer(torch.nn, cfg)
    model.load_state_dict({k: torch.tensor(v) for k, v in state.items()})
    model = model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x_np, y_np = _tokens(cfg, cfg["vocab"])
    x, y = torch.tensor(x_np, device=device), torch.tensor(y_np, device=device)
    mask = torch.tensor(_causal(cfg["seq"]), device=device)

    def loss():
        h = model["embed"](x)
        for layer in model["encoder"].layers:
            if checkpointed:
                h = checkpoint(layer, h, src_mask=mask, is_causal=True, use_reentrant=False)
            else:
                h = layer(h, src_mask=mask, is_causal=True)
        out = model["head"](h)
        return torch.nn.functional.cross_entropy(out.reshape(-1, cfg["vocab"]), y.reshape(-1))

    return Step(model, opt, loss)


def _mg_llama(tiny: bool):
    from minigrad.models.llama import LlamaConfig, LlamaForCausalLM, smollm2_path

    if tiny:  # a tiny random Llama: only to check that the benchmark runs
        mg.manual_seed(0)
        config = LlamaConfig(vocab_size=512, hidden_size=64, intermediate_size=128,
                             num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2)
        return LlamaForCausalLM(config)
    return LlamaForCausalLM.from_gguf(smollm2_path())


def _mg_llm(cfg, device, checkpointed, tiny, folder=None):
    from minigrad.finetune import apply_lora

    model = _mg_llama(tiny).to(device)
    mg.manual_seed(0)
    apply_lora(model, ["q_proj", "v_proj"], r=cfg["lora_r"], alpha=cfg["lora_alpha"])
    if checkpointed:
        model.gradient_checkpointing_enable()
    model.train()
    opt = mg.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    ids = mg.tensor(_tokens(cfg, model.config.vocab_size, low=3)[0], device=device)
    return Step(model, opt, lambda: model(ids, labels=ids).loss)


def _torch_llm(cfg, device, checkpointed, tiny, folder):
    import torch

    sys.modules.setdefault("kernels", None)  # transformers would import the top-level kernels/
    import transformers

    model = transformers.LlamaForCausalLM.from_pretrained(
        folder, dtype=torch.float32, attn_implementation="eager", use_kernels=False)

    from benchmarks.bench_llm import torch_lora_class

    LoRA = torch_lora_class(torch)

    for p in model.parameters():
        p.requires_grad_(False)
    torch.manual_seed(0)
    for layer in model.model.layers:
        attn = layer.self_attn
        attn.q_proj = LoRA(attn.q_proj, cfg["lora_r"], cfg["lora_alpha"])
        attn.v_proj = LoRA(attn.v_proj, cfg["lora_r"], cfg["lora_alpha"])
    if checkpointed:  # every decoder layer, non-reentrant (transformers' newer name first)
        if hasattr(model, "activation_checkpointing_enable"):
            model.activation_checkpointing_enable({"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False})
    model = model.to(device).train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    ids = torch.tensor(_tokens(cfg, model.config.vocab_size, low=3)[0], device=device)
    return Step(model, opt, lambda: model(ids, labels=ids, use_cache=False).loss)


def build(framework, workload, mode, device="cpu", tiny=False, folder=None) -> Step:
    """The training step of one variant (``folder``: the LLM's weights for transformers)."""
    cfg = CONFIGS[workload]["tiny" if tiny else "full"]
    checkpointed = mode == "checkpoint"
    if workload == "LLM":
        make = _mg_llm if framework == "minigrad" else _torch_llm
        return make(cfg, device, checkpointed, tiny, folder)
    make = _mg_transformer if framework == "minigrad" else _torch_transformer
    return make(cfg, device, checkpointed)


# ---------------------------------------------------------------------------- measurements


def _heap_in_use() -> int:
    """Bytes of the C heap handed out and not freed (glibc mallinfo2; 0 elsewhere)."""
    try:
        libc = ctypes.CDLL(None)
        fn = libc.mallinfo2
    except (OSError, AttributeError):
        return 0

    class _Mallinfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
            "fordblks", "keepcost")]

    fn.restype = _Mallinfo2
    info = fn()
    return info.uordblks + info.hblkhd


def _numpy_bytes(snapshot) -> int:
    domain = tracemalloc.DomainFilter(True, np.lib.tracemalloc_domain)
    return sum(s.size for s in snapshot.filter_traces([domain]).statistics("filename"))


def mg_memory(step: Step, device: str) -> dict:
    """saved/peak MiB of one minigrad step (see the module docstring)."""
    step.zero_grad()
    if device != "cpu":
        mg.cuda.synchronize(device)
        mg.cuda.reset_peak_memory_stats(device)
        before = mg.cuda.memory_allocated(device)
        loss = step.forward()
        saved = mg.cuda.memory_allocated(device) - before
        loss.backward()
        step.opt.step()
        mg.cuda.synchronize(device)
        peak = mg.cuda.max_memory_allocated(device) - before
        return {"saved_mib": saved / MIB, "peak_mib": peak / MIB}
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        heap = _heap_in_use()
        loss = step.forward()
        heap_saved = _heap_in_use() - heap
        all_saved = tracemalloc.get_traced_memory()[0] - before
        arrays_saved = _numpy_bytes(tracemalloc.take_snapshot())  # traced since start only
        loss.backward()
        step.opt.step()
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    return {"saved_mib": arrays_saved / MIB, "peak_mib": peak / MIB,
            "saved_malloc_mib": heap_saved / MIB,
            "saved_python_mib": (all_saved - arrays_saved) / MIB}


def torch_memory(step: Step, device: str) -> dict:
    """saved/peak MiB of one PyTorch step (see the module docstring)."""
    import torch

    step.zero_grad()
    if device != "cpu":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        loss = step.forward()
        saved = torch.cuda.memory_allocated() - before
        loss.backward()
        step.opt.step()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - before
        return {"saved_mib": saved / MIB, "peak_mib": peak / MIB}
    activity = torch.profiler.ProfilerActivity.CPU
    with torch.profiler.profile(activities=[activity], profile_memory=True) as prof:
        heap = _heap_in_use()
        loss = step.forward()
        heap_saved = _heap_in_use() - heap
        with torch.profiler.record_function("bench_checkpoint_backward"):
            loss.backward()
        step.opt.step()
    held = peak = 0
    saved = None
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        if saved is None and event.name == "bench_checkpoint_backward":
            saved = held
        held += event.self_cpu_memory_usage
        peak = max(peak, held)
    return {"saved_mib": (saved or 0) / MIB, "peak_mib": peak / MIB,
            "saved_malloc_mib": heap_saved / MIB}


def _ms(step: Step, sync, steps: int) -> float:
    step.run()  # warm-up after the measured-memory step
    sync()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step.run()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def _grads(step: Step) -> list:
    return [mg.backend.to_device(p.grad.data, mg.backend.CPU).copy()
            for p in step.model.parameters() if p.grad is not None]


def check_bitwise(workload: str, device: str = "cpu", tiny: bool = False) -> bool:
    """Whether one checkpointed minigrad step's gradients are bitwise the plain step's."""
    grads = []
    for mode in ("plain", "checkpoint"):
        step = build("minigrad", workload, mode, device, tiny)
        step.forward().backward()
        grads.append(_grads(step))
        del step
    plain, ckpt = grads
    return len(plain) == len(ckpt) > 0 and all(
        np.array_equal(a.view(np.uint8), b.view(np.uint8)) for a, b in zip(plain, ckpt))


def measure(framework, workload, mode, device="cpu", tiny=False, steps=3, folder=None) -> dict:
    """Memory and time of one variant, in this process (a worker's job)."""
    if framework == "torch":
        import torch

        torch.set_num_threads(threads())
        tdevice = "cpu" if device == "cpu" else "cuda"
        sync = torch.cuda.synchronize if tdevice != "cpu" else (lambda: None)
        step = build(framework, workload, mode, tdevice, tiny, folder)
        step.run()
        result = torch_memory(step, tdevice)
    else:
        sync = (lambda: mg.cuda.synchronize(device)) if device != "cpu" else (lambda: None)
        step = build(framework, workload, mode, device, tiny, folder)
        step.run()
        result = mg_memory(step, device)
    result["ms"] = _ms(step, sync, steps)
    result["max_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


# ---------------------------------------------------------------------------- processes


def _worker(argv) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("job")  # framework:workload:mode, or check:workload
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--folder", default=None)
    args = parser.parse_args(argv)
    parts = args.job.split(":")
    if parts[0] == "check":
        out = {"bitwise": check_bitwise(parts[1], args.device, args.tiny)}
    else:
        out = measure(*parts, device=args.device, tiny=args.tiny, steps=args.steps,
                      folder=args.folder)
    print(_RESULT + json.dumps(out), flush=True)


def _spawn(job: str, args, folder) -> dict:
    """Run ``job`` in a fresh Python process; its result, or ``{"error": ...}``."""
    root = Path(__file__).resolve().parent.parent
    cmd = [sys.executable, "-m", "benchmarks.bench_checkpoint", "--worker", job,
           "--device", args.device, "--steps", str(args.steps)]
    if args.tiny:
        cmd.append("--tiny")
    if folder:
        cmd += ["--folder", folder]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(root)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(_RESULT):
            return json.loads(line[len(_RESULT):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {"error": " / ".join(tail) or f"exit status {proc.returncode}"}


def _torch_usable(device: str) -> bool:
    try:
        import torch
    except ImportError:
        return False
    return device == "cpu" or torch.cuda.is_available()


def _llm_folder(tiny: bool) -> str:
    """The LLM's weights saved for transformers (from minigrad's loader, so both read the
    same numbers); the caller deletes the folder."""
    folder = tempfile.mkdtemp(prefix="bench_checkpoint_llm_")
    _mg_llama(tiny).save_pretrained(folder)
    return folder


def run(workloads=WORKLOADS, device="cpu", rounds=3, steps=3, tiny=False, log=print) -> dict:
    """Every variant of every workload, each in its own process, in ``rounds`` interleaved
    rounds; returns ``{workload: {"bitwise": bool, "framework/mode": {medians, "runs"}}}``."""
    args = argparse.Namespace(device=device, steps=steps, tiny=tiny)
    variants = [v for v in VARIANTS if v[0] == "minigrad" or _torch_usable(device)]
    folder = _llm_folder(tiny) if "LLM" in workloads and len(variants) > 2 else None
    results = {w: {"bitwise": _spawn(f"check:{w}", args, None).get("bitwise")}
               for w in workloads}
    try:
        for r in range(rounds):
            for w in workloads:
                for framework, mode in rotated(variants, r):
                    out = _spawn(f"{framework}:{w}:{mode}", args, folder if w == "LLM" else None)
                    log(f"round {r + 1}/{rounds} {w} {framework} {mode}: {out}")
                    results[w].setdefault(f"{framework}/{mode}", {"runs": []})["runs"].append(out)
    finally:
        if folder:
            shutil.rmtree(folder, ignore_errors=True)
    for w in workloads:
        for key, entry in results[w].items():
            if key == "bitwise":
                continue
            good = [run for run in entry["runs"] if "error" not in run]
            if not good:
                entry["error"] = entry["runs"][0]["error"]
                continue
            for field in good[0]:
                entry[field] = statistics.median(run[field] for run in good)
    return results


HEADERS = ["workload", "framework", "mode", "saved MiB", "saved MiB (malloc)", "peak MiB/step",
           "max RSS MiB", "ms/step", "saved: plain / this", "time: this / plain"]


def rows(results: dict) -> list:
    """The table rows (HEADERS) of :func:`run`'s results."""
    out = []
    for w, entries in results.items():
        for framework in ("minigrad", "torch"):
            base = entries.get(f"{framework}/plain", {})
            for mode in ("plain", "checkpoint"):
                r = entries.get(f"{framework}/{mode}")
                if r is None:
                    continue
                name = "PyTorch" if framework == "torch" else framework
                if "error" in r:
                    out.append([w, name, mode, "error: " + r["error"][:60]] + [""] * 6)
                    continue
                ok = "saved_mib" in base and "ms" in base
                malloc = r.get("saved_malloc_mib")
                out.append([
                    w, name, mode, f"{r['saved_mib']:.1f}",
                    "-" if malloc is None else f"{malloc:.1f}", f"{r['peak_mib']:.1f}",
                    f"{r['max_rss_mib']:.0f}", f"{r['ms']:.1f}",
                    f"{base['saved_mib'] / r['saved_mib']:.2f}x" if ok and r["saved_mib"] else "-",
                    f"{r['ms'] / base['ms']:.2f}x" if ok else "-"])
    return out


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--worker"]:
        return _worker(argv[1:])
    parser = argparse.ArgumentParser(description="activation checkpointing beside PyTorch")
    parser.add_argument("--only", default=",".join(WORKLOADS), help="e.g. T12,W4,LLM")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per process")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes (a smoke test)")
    parser.add_argument("--write", action="store_true", help="write the results with --tiny")
    args = parser.parse_args(argv)
    workloads = [w.strip() for w in args.only.split(",") if w.strip()]
    unknown = sorted(set(workloads) - set(WORKLOADS))
    if unknown:
        parser.error(f"unknown workloads {unknown}; choose from {', '.join(WORKLOADS)}")
    results = run(workloads, args.device, args.rounds, args.steps, args.tiny)
    table = markdown_table(HEADERS, rows(results))
    bitwise = {w: results[w]["bitwise"] for w in workloads}
    notes = (f"threads: {threads()}, device: {args.device}, {args.rounds} rounds x {args.steps} "
             f"steps, medians; {'tiny sizes' if args.tiny else 'full size'}\n"
             f"minigrad's checkpointed gradients bitwise equal to its plain run: {bitwise}\n"
             + "\n".join(f"- {w}: {LABELS[w] if not args.tiny else CONFIGS[w]['tiny']}"
                         for w in workloads))
    print(notes)
    print(table)
    if args.write or not args.tiny:
        name = "checkpoint" if args.device == "cpu" else f"checkpoint_{args.device.split(':')[0]}"
        cfgs = {w: CONFIGS[w]["tiny" if args.tiny else "full"] for w in workloads}
        write_results(name, notes + "\n\n" + table,
                      {"machine": machine(), "device": args.device, "rounds": args.rounds,
                       "steps": args.steps, "tiny": args.tiny, "configs": cfgs,
                       "results": results})
    return results


if __name__ == "__main__":
    main()
