"""Activation checkpointing on a 12-block transformer: saved activation memory and step time,
plain and checkpointed, minigrad (``gradient_checkpointing_enable()``) beside PyTorch
(``torch.utils.checkpoint.checkpoint`` around each layer).

The model is W4's block stacked 12 times: token embedding, 12 pre-norm encoder layers (d_model
256, 4 heads, FFN 1024, dropout 0.1, causal, T 128, batch 16), a linear head over a 1000-token
vocabulary, cross-entropy, Adam. Both frameworks get the same weights and data.

- saved MiB: what the forward pass leaves held for backward (memory after the loss minus
  before the step): NumPy's buffers through tracemalloc on the CPU; PyTorch's CPU allocations
  as the running sum of its ops' own allocations in the profiler; the allocators' counters on
  a GPU.
- peak MiB: the most held at once during the whole step, beyond what was held before it.
- ms/step: median of ``--steps`` steps after two warm-up steps.

It also checks that the checkpointed step's gradients are bitwise those of the plain step.

    OMP_NUM_THREADS=2 python -m benchmarks.bench_checkpoint [--device cuda] [--tiny]
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc

import numpy as np

import minigrad as mg
from benchmarks.common import machine, markdown_table, threads, write_results

FULL = {"blocks": 12, "d_model": 256, "heads": 4, "ffn": 1024, "seq": 128, "batch": 16,
        "vocab": 1000}
TINY = {"blocks": 12, "d_model": 16, "heads": 2, "ffn": 32, "seq": 8, "batch": 2, "vocab": 50}


def _build(nn, cfg):
    layer = nn.TransformerEncoderLayer(cfg["d_model"], cfg["heads"], cfg["ffn"], dropout=0.1,
                                       batch_first=True, norm_first=True)
    return nn.ModuleDict({
        "embed": nn.Embedding(cfg["vocab"], cfg["d_model"]),
        "encoder": nn.TransformerEncoder(layer, cfg["blocks"]),
        "head": nn.Linear(cfg["d_model"], cfg["vocab"]),
    })


def _data(cfg):
    rng = np.random.default_rng(0)
    shape = (cfg["batch"], cfg["seq"])
    return rng.integers(0, cfg["vocab"], shape), rng.integers(0, cfg["vocab"], shape)


def minigrad_step(cfg, device, checkpointed):
    """A training step; ``step.forward()`` alone returns the loss (for the saved memory)."""
    mg.manual_seed(0)
    model = _build(mg.nn, cfg).to(device)
    if checkpointed:
        model["encoder"].gradient_checkpointing_enable()
    opt = mg.optim.Adam(model.parameters(), lr=1e-4)
    x_np, y_np = _data(cfg)
    x, y = mg.tensor(x_np, device=device), mg.tensor(y_np, device=device)
    mask = mg.nn.Transformer.generate_square_subsequent_mask(cfg["seq"]).to(device) \
        if hasattr(mg.nn, "Transformer") else _causal(mg, cfg["seq"]).to(device)

    def forward():
        opt.zero_grad()
        h = model["encoder"](model["embed"](x), mask=mask, is_causal=True)
        out = model["head"](h)
        return mg.nn.functional.cross_entropy(out.reshape(-1, cfg["vocab"]), y.reshape(-1))

    def step():
        loss = forward()
        loss.backward()
        opt.step()
        return loss

    step.forward, step.model, step.opt = forward, model, opt
    return step


def _causal(lib, n):
    return lib.triu(lib.full((n, n), float("-inf")), diagonal=1)


def torch_step(cfg, state_dict, device, checkpointed):
    import torch
    from torch.utils.checkpoint import checkpoint

    model = _build(torch.nn, cfg)
    model.load_state_dict({k: torch.tensor(mg.backend.to_device(v.detach().data, mg.backend.CPU))
                           for k, v in state_dict.items()})
    model = model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x_np, y_np = _data(cfg)
    x, y = torch.tensor(x_np, device=device), torch.tensor(y_np, device=device)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(cfg["seq"], device=device)

    def forward():
        opt.zero_grad()
        h = model["embed"](x)
        for layer in model["encoder"].layers:
            if checkpointed:
                h = checkpoint(layer, h, src_mask=mask, is_causal=True, use_reentrant=False)
            else:
                h = layer(h, src_mask=mask, is_causal=True)
        out = model["head"](h)
        return torch.nn.functional.cross_entropy(out.reshape(-1, cfg["vocab"]), y.reshape(-1))

    def step():
        loss = forward()
        loss.backward()
        opt.step()
        return loss

    step.forward, step.model = forward, model
    return step


def _mg_memory(step, device):
    """(saved MiB after the forward, peak MiB of the step) for a minigrad step."""
    if device == "cpu":
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            loss = step.forward()
            saved = tracemalloc.get_traced_memory()[0] - before
            loss.backward()
            step.opt.step()
            peak = tracemalloc.get_traced_memory()[1] - before
        finally:
            tracemalloc.stop()
        return saved / 2 ** 20, peak / 2 ** 20
    mg.cuda.synchronize(device)
    mg.cuda.reset_peak_memory_stats(device)
    before = mg.cuda.memory_allocated(device)
    loss = step.forward()
    saved = mg.cuda.memory_allocated(device) - before
    loss.backward()
    step.opt.step()
    mg.cuda.synchronize(device)
    return saved / 2 ** 20, (mg.cuda.max_memory_allocated(device) - before) / 2 ** 20


def _torch_memory(torch, step, device):
    if device != "cpu":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        loss = step.forward()
        saved = torch.cuda.memory_allocated() - before
        loss.backward()
        torch.cuda.synchronize()
        return saved / 2 ** 20, (torch.cuda.max_memory_allocated() - before) / 2 ** 20
    activity = torch.profiler.ProfilerActivity.CPU
    with torch.profiler.profile(activities=[activity], profile_memory=True) as prof:
        loss = step.forward()
        with torch.profiler.record_function("minigrad_bench_backward"):
            loss.backward()
    held = peak = 0
    saved = None
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        if saved is None and event.name == "minigrad_bench_backward":
            saved = held
        held += event.self_cpu_memory_usage
        peak = max(peak, held)
    return (saved or 0) / 2 ** 20, peak / 2 ** 20


def _ms(step, sync, steps):
    for _ in range(2):
        step()
    sync()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def _grads(step):
    return [mg.backend.to_device(p.grad.data, mg.backend.CPU).copy()
            for p in step.model.parameters()]


def run(cfg, device="cpu", steps=5):
    try:
        import torch

        torch.set_num_threads(threads())
    except ImportError:
        torch = None
    sync = (lambda: mg.cuda.synchronize(device)) if device != "cpu" else (lambda: None)
    rows, results = [], {}
    # bitwise check first: one step of each from the same seed
    plain = minigrad_step(cfg, device, False)  # (each build reseeds: run before the next)
    plain.forward().backward()
    ckpt = minigrad_step(cfg, device, True)
    ckpt.forward().backward()
    results["grads_bitwise_equal"] = all(
        np.array_equal(a.view(np.uint8), b.view(np.uint8))
        for a, b in zip(_grads(plain), _grads(ckpt)))
    for checkpointed in (False, True):
        mode = "checkpoint" if checkpointed else "plain"
        step = minigrad_step(cfg, device, checkpointed)
        step()  # Adam's state and the gradients exist before measuring
        saved, peak = _mg_memory(step, device)
        entry = {"saved_mib": saved, "peak_mib": peak, "ms": _ms(step, sync, steps)}
        results[f"minigrad_{mode}"] = entry
        if torch is not None:
            tdevice = "cpu" if device == "cpu" else "cuda"
            tsync = torch.cuda.synchronize if tdevice != "cpu" else (lambda: None)
            tstep = torch_step(cfg, step.model.state_dict(), tdevice, checkpointed)
            tstep()
            tsaved, tpeak = _torch_memory(torch, tstep, tdevice)
            results[f"torch_{mode}"] = {"saved_mib": tsaved, "peak_mib": tpeak,
                                        "ms": _ms(tstep, tsync, steps)}
    for framework in ("minigrad", "torch"):
        for mode in ("plain", "checkpoint"):
            r = results.get(f"{framework}_{mode}")
            if r is None:
                continue
            base = results[f"{framework}_plain"]
            rows.append([framework, mode, f"{r['saved_mib']:.2f}", f"{r['peak_mib']:.2f}",
                         f"{r['ms']:.2f}",
                         f"{base['saved_mib'] / r['saved_mib']:.2f}x" if r["saved_mib"] else "-",
                         f"{r['ms'] / base['ms']:.2f}x"])
    return rows, results


HEADERS = ["framework", "mode", "saved MiB (after forward)", "peak MiB/step", "ms/step",
           "saved: plain / this", "time: this / plain"]


def main(argv=None):
    parser = argparse.ArgumentParser(description="activation checkpointing, 12 blocks")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--tiny", action="store_true", help="tiny sizes (a smoke test)")
    args = parser.parse_args(argv)
    cfg = TINY if args.tiny else FULL
    rows, results = run(cfg, args.device, args.steps)
    table = markdown_table(HEADERS, rows)
    print(f"threads: {threads()}, config: {cfg}")
    print(f"checkpointed gradients bitwise equal to plain: {results['grads_bitwise_equal']}")
    print(table)
    if not args.tiny:
        write_results(f"checkpoint_{args.device.split(':')[0]}", table,
                      {"machine": machine(), "device": args.device, "config": cfg,
                       "results": results})
    return results


if __name__ == "__main__":
    main()
