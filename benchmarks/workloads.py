"""The standard workloads of DESIGN.md, each framework timed in a fresh process of its own.

W1 the Keras MNIST MLP (784 -> 128 relu -> dropout 0.5 -> 10, batch 128, Adam);
W2 LSTM (input 128, hidden 256, T 64, batch 32, cross-entropy on the last state, Adam);
W3 the same with a GRU; W4 a transformer encoder block (d_model 256, 4 heads, FFN 1024, T 128,
batch 16, causal, cross-entropy over a 1000-token vocabulary, Adam); W5 a CNN on MNIST-shaped
input (conv 32 3x3 relu, maxpool 2, conv 64 3x3 relu, maxpool 2, linear 128 relu, dropout 0.5,
linear 10; batch 128, Adam). The models are written once for both frameworks in
``workload_side.py``.

One step = zero_grad + forward + loss + backward + Adam update. Three sides are timed: minigrad
with its fused kernels (the default), minigrad on the composite path (``mg.use_fused(False)``)
and PyTorch, each in a fresh process of its own (``benchmarks.fresh``), as users run them, in
interleaved rounds (each round starts every side once, in rotated order); a side's time is the
median over rounds of its process's median step. All sides load the same weights (an ``.npz``
written here) and data, with the same thread count, and their evaluation-mode losses before
training must agree (checked before any time is reported). Beside the times: the peak memory
one step holds (tracemalloc for minigrad, PyTorch's profiler), the process's resident size and
the page faults per step. Run:

    OMP_NUM_THREADS=2 python -m benchmarks.workloads [--only W1,W2] [--quick] [--device cpu]
        [--rounds 3] [--scale 8]   (8x the batch sizes)
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile

import numpy as np

import minigrad as mg
from benchmarks import fresh
from benchmarks.common import machine, markdown_table, threads, write_results
from benchmarks.workload_side import (  # noqa: F401  (re-exported: bench_distributed, tests)
    SIDES, SPECS, _build, _causal_mask, _cnn, _data, _training_step,
)

# (steps per timed run, timed runs per process) for each workload, and quick
TIMING = {"W1": (20, 25), "W2": (1, 25), "W3": (1, 25), "W4": (1, 25), "W5": (1, 25)}
QUICK_TIMING = (1, 5)
ROUNDS = 3
# the environment of each side's process: PyTorch's never tunes the C allocator
SIDE_ENV = {"fused": {}, "composite": {}, "torch": {"MINIGRAD_MALLOC_TUNING": "0"}}


# ---------------------------------------------------------------------------- steps (in-process)


def minigrad_step(name, device, scale=1):
    import minigrad.nn.functional as F

    mg.manual_seed(0)
    model = _build(mg.nn, name).to(device)
    opt = mg.optim.Adam(model.parameters(), lr=1e-3)
    x_np, y_np = _data(name, np.random.default_rng(0), scale)
    x, y = mg.tensor(x_np, device=device), mg.tensor(y_np, device=device)
    mask = _causal_mask(mg, 128).to(device) if name == "W4" else None
    return model, _training_step(model, opt, F, x, y, mask)


def torch_step(name, state_dict, device="cpu", scale=1):
    import torch
    import torch.nn.functional as F

    model = _build(torch.nn, name)
    model.load_state_dict({k: torch.tensor(mg.backend.to_device(v.detach().data, mg.backend.CPU))
                           for k, v in state_dict.items()})
    model = model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x_np, y_np = _data(name, np.random.default_rng(0), scale)
    x, y = torch.tensor(x_np, device=device), torch.tensor(y_np, device=device)
    mask = _causal_mask(torch, 128).to(device) if name == "W4" else None
    return model, _training_step(model, opt, F, x, y, mask)


def _torch_available() -> bool:
    try:
        import importlib.util

        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


def _torch_device(device: str):
    """Where PyTorch runs for a comparison on ``device``: the CPU for a CPU run, CUDA for a GPU
    run when PyTorch has CUDA, else None (no comparison)."""
    if not _torch_available():
        return None
    if device == "cpu":
        return "cpu"
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else None
    except Exception:  # a broken CUDA install: no comparison rather than no benchmark
        return None


def run(names, device="cpu", quick=False, scale=1, rounds=None, sides=SIDES):
    """Each workload's sides, each in fresh processes, in interleaved rounds; one result dict
    per workload (times in ms per step: ``minigrad_ms`` fused, ``composite_ms``, ``torch_ms``;
    their ratios; ``phases``; ``peak_mib``; ``rss_mib``; ``page_faults``), or ``{"error"}``."""
    rounds = rounds or (1 if quick else ROUNDS)
    results = {}
    for name in names:
        try:  # the weights every side loads (and a check that minigrad can build the model)
            mg.manual_seed(0)
            model = _build(mg.nn, name)
        except Exception as exc:  # e.g. a layer missing: reported in the table, others run
            results[name] = {"error": f"not available: {type(exc).__name__}: {exc}"}
            continue
        folder = tempfile.mkdtemp(prefix=f"minigrad_{name}_")
        weights = os.path.join(folder, "weights.npz")
        np.savez(weights, **{k: mg.backend.to_device(v.detach().data, mg.backend.CPU)
                             for k, v in model.state_dict().items()})
        steps, repeats = QUICK_TIMING if quick else TIMING[name]
        torch_device = _torch_device(device)
        chosen = [side for side in SIDES if side in sides and
                  (side != "torch" or torch_device is not None)]
        runs = {side: [] for side in chosen}
        for r in range(rounds):
            for side in fresh.rotated(chosen, r):
                kwargs = {"name": name, "side": side, "device": device, "weights": weights,
                          "steps": steps, "repeats": repeats, "threads": threads(),
                          "scale": scale, "phases": side != "composite"}
                print(f"  {name} {side} round {r + 1}/{rounds}", flush=True)
                runs[side].append(fresh.run("benchmarks.workload_side:run_side", kwargs,
                                            env=SIDE_ENV[side]))
        results[name] = _summary(name, runs, torch_device)
    return results


def _summary(name, runs, torch_device):
    """One workload's entry from its sides' per-process results (medians over rounds)."""
    losses = {side: statistics.median(r["eval_loss"] for r in rs) for side, rs in runs.items()}
    for side, loss in losses.items():
        if abs(loss - losses["fused"]) > 1e-3 * max(1.0, abs(losses["fused"])):
            raise AssertionError(f"{name}: the sides do not compute the same thing: "
                                 f"evaluation loss {side} {loss} != fused {losses['fused']}")
    key = {"fused": "minigrad_ms", "composite": "composite_ms", "torch": "torch_ms"}
    entry = {key[side]: statistics.median(r["ms_median"] for r in rs)
             for side, rs in runs.items()}
    entry["rounds"] = {key[side]: [r["ms_median"] for r in rs] for side, rs in runs.items()}
    entry["eval_loss"] = losses
    framework = {"fused": "minigrad", "torch": "torch"}
    entry["phases"] = {framework[side]: {phase: statistics.median(r["phases"][phase] for r in rs)
                                         for phase in rs[0]["phases"]}
                       for side, rs in runs.items() if side in framework}
    entry["peak_mib"] = {framework[side]: statistics.median(r["peak_step_mib"] for r in rs)
                         for side, rs in runs.items() if side in framework}
    entry["rss_mib"] = {side: statistics.median(r["peak_rss_mib"] for r in rs)
                        for side, rs in runs.items()}
    entry["page_faults"] = {side: statistics.median(r["page_faults_per_step"] for r in rs)
                            for side, rs in runs.items()}
    if "composite_ms" in entry:
        entry["fused_speedup"] = entry["composite_ms"] / entry["minigrad_ms"]
    if "torch_ms" in entry:
        entry["torch_device"] = torch_device
        entry["ratio"] = entry["minigrad_ms"] / entry["torch_ms"]
        if "composite_ms" in entry:
            entry["composite_ratio"] = entry["composite_ms"] / entry["torch_ms"]
    return entry

def table_headers(device):
    return ["workload", "spec", f"minigrad fused ms/step ({device})", "composite ms/step",
            "PyTorch ms/step", "fused / PyTorch", "composite / PyTorch",
            "peak MiB/step minigrad / PyTorch", "peak RSS MiB minigrad / PyTorch"]


def table_row(name, r):
    if "error" in r:
        return [name, SPECS[name], "-", "-", "-", r["error"], "-", "-", "-"]

    def ms(key):
        return f"{r[key]:.2f}" if key in r else "n/a"

    def ratio(key):
        return f"{r[key]:.2f}x" if key in r else "n/a"

    peak = r.get("peak_mib", {})
    memory = " / ".join(f"{peak[k]:.1f}" if k in peak else "n/a" for k in ("minigrad", "torch"))
    rss = r.get("rss_mib", {})
    resident = " / ".join(f"{rss[k]:.0f}" if k in rss else "n/a" for k in ("fused", "torch"))
    return [name, SPECS[name], ms("minigrad_ms"), ms("composite_ms"), ms("torch_ms"),
            ratio("ratio"), ratio("composite_ratio"), memory if peak else "n/a",
            resident if rss else "n/a"]


PHASE_HEADERS = ["workload", "phase", "minigrad fused ms", "PyTorch ms", "minigrad / PyTorch"]


def phase_rows(results: dict) -> list:
    """Rows of the per-phase table: each workload's forward, backward and optimizer times."""
    rows = []
    for name, r in results.items():
        phases = r.get("phases", {})
        ours, theirs = phases.get("minigrad", {}), phases.get("torch", {})
        for phase, ms in ours.items():
            other = theirs.get(phase)
            rows.append([name, phase, f"{ms:.2f}",
                         "n/a" if other is None else f"{other:.2f}",
                         "n/a" if not other else f"{ms / other:.2f}x"])
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description="minigrad standard workloads vs PyTorch")
    parser.add_argument("--only", default="W1,W2,W3,W4,W5")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--scale", type=int, default=1, help="multiply every batch size")
    parser.add_argument("--rounds", type=int, default=None,
                        help=f"interleaved rounds of fresh processes (default {ROUNDS}, quick 1)")
    parser.add_argument("--sides", default=",".join(SIDES),
                        help="which sides to time (default: fused,composite,torch)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",")]
    sides = [s.strip() for s in args.sides.split(",")]
    unknown = set(sides) - set(SIDES)
    if unknown or "fused" not in sides:
        parser.error(f"--sides takes fused (always) and any of composite, torch; got {args.sides}")
    res = run(names, args.device, args.quick, args.scale, args.rounds, sides)
    rows = []
    for name in names:
        r = res[name]
        rows.append(table_row(name, r))
    table = markdown_table(table_headers(args.device), rows)
    if phase_rows(res):
        table += "\n\nPer phase (medians over steps timed phase by phase):\n\n" + \
            markdown_table(PHASE_HEADERS, phase_rows(res))
    print(f"threads: {threads()}, batch scale: {args.scale}")
    print(table)
    suffix = "" if args.scale == 1 else f"_x{args.scale}"
    write_results(f"workloads_{args.device.split(':')[0]}{suffix}", table,
                  {"machine": machine(), "device": args.device, "scale": args.scale,
                   "results": res})


if __name__ == "__main__":
    main()
