"""The standard workloads of DESIGN.md, timed per training step against PyTorch in one run.

W1 the Keras MNIST MLP (784 -> 128 relu -> dropout 0.5 -> 10, batch 128, Adam);
W2 LSTM (input 128, hidden 256, T 64, batch 32, cross-entropy on the last state, Adam);
W3 the same with a GRU; W4 a transformer encoder block (d_model 256, 4 heads, FFN 1024, T 128,
batch 16, causal, cross-entropy over a 1000-token vocabulary, Adam); W5 a CNN on MNIST-shaped
input (conv 32 3x3 relu, maxpool 2, conv 64 3x3 relu, maxpool 2, linear 128 relu, dropout 0.5,
linear 10; batch 128, Adam).

One step = zero_grad + forward + loss + backward + Adam update. Both frameworks get the same
weights and data and the same thread count; the minigrad loss after one step is checked
against PyTorch's before timing. minigrad is timed twice: with its fused kernels (the default)
and on the composite path (``mg.use_fused(False)``). The peak memory of one more step, beyond
what was held before it (activations, gradients, temporaries), is measured untimed beside
PyTorch's (:func:`peak_step_bytes`). Run:

    OMP_NUM_THREADS=2 python -m benchmarks.workloads [--only W1,W2] [--quick] [--device cpu]
        [--scale 8]   (8x the batch sizes)
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc

import numpy as np

import minigrad as mg
from benchmarks.common import machine, markdown_table, threads, write_results
from benchmarks.kernel_bench import rotated, settle

SPECS = {
    "W1": "MLP 784-128-10, dropout 0.5, batch 128",
    "W2": "LSTM 128->256, T64, batch 32",
    "W3": "GRU 128->256, T64, batch 32",
    "W4": "transformer block d256 h4 T128 B16, vocab 1000",
    "W5": "CNN conv32-pool-conv64-pool-128-10, batch 128",
}


# ---------------------------------------------------------------------------- model builders


def _build(nn, name):
    """The same model in either framework (``nn`` is ``mg.nn`` or ``torch.nn``)."""
    if name == "W1":
        return nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10))
    if name in ("W2", "W3"):
        rnn_cls = nn.LSTM if name == "W2" else nn.GRU

        class RNNClassifier(nn.Module):
            def __init__(self):
                super().__init__()
                self.rnn = rnn_cls(128, 256)
                self.head = nn.Linear(256, 10)

            def forward(self, x):
                out = self.rnn(x)[1]
                h = out[0] if isinstance(out, tuple) else out  # LSTM: (h_n, c_n)
                return self.head(h[-1])

        return RNNClassifier()
    if name == "W4":

        class Block(nn.Module):
            def __init__(self):
                super().__init__()
                self.emb = nn.Embedding(1000, 256)
                self.block = nn.TransformerEncoderLayer(256, 4, 1024, dropout=0.0,
                                                        batch_first=True)
                self.head = nn.Linear(256, 1000)

            def forward(self, x, mask):
                return self.head(self.block(self.emb(x), src_mask=mask, is_causal=True))

        return Block()
    if name == "W5":
        return _cnn(nn)
    raise ValueError(name)


def _cnn(nn):
    """W5: the Keras MNIST CNN; its pooling is ``F.max_pool2d`` (W5 is reported as not
    available where the functional module has none)."""
    pool = getattr(nn.functional, "max_pool2d", None)
    if pool is None:
        raise NotImplementedError("W5 needs F.max_pool2d")

    class CNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 32, 3)
            self.conv2 = nn.Conv2d(32, 64, 3)
            self.fc1 = nn.Linear(64 * 5 * 5, 128)  # 28 -> 26 -> 13 -> 11 -> 5
            self.drop = nn.Dropout(0.5)
            self.fc2 = nn.Linear(128, 10)

        def forward(self, x):
            x = pool(self.conv1(x).relu(), 2)
            x = pool(self.conv2(x).relu(), 2)
            return self.fc2(self.drop(self.fc1(x.flatten(1)).relu()))

    return CNN()


def _data(name, rng, scale=1):
    """Inputs and targets of a workload; ``scale`` multiplies the batch size."""
    if name == "W1":
        b = 128 * scale
        return rng.standard_normal((b, 784), dtype=np.float32), rng.integers(0, 10, b)
    if name in ("W2", "W3"):
        b = 32 * scale
        return rng.standard_normal((64, b, 128), dtype=np.float32), rng.integers(0, 10, b)
    if name == "W5":
        b = 128 * scale
        return rng.standard_normal((b, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, b)
    b = 16 * scale
    return rng.integers(0, 1000, (b, 128)), rng.integers(0, 1000, (b, 128))


def _causal_mask(lib, n):
    m = np.triu(np.full((n, n), -np.inf, dtype=np.float32), 1)
    return lib.tensor(m)


# ---------------------------------------------------------------------------- steps


def minigrad_step(name, device, scale=1):
    import minigrad.nn.functional as F

    mg.manual_seed(0)
    model = _build(mg.nn, name).to(device)
    opt = mg.optim.Adam(model.parameters(), lr=1e-3)
    x_np, y_np = _data(name, np.random.default_rng(0), scale)
    x, y = mg.tensor(x_np, device=device), mg.tensor(y_np, device=device)
    mask = _causal_mask(mg, 128).to(device) if name == "W4" else None
    return model, _training_step(model, opt, F, x, y, mask)


def _training_step(model, opt, F, x, y, mask):
    """One step in either framework (``F`` its functional module): zero_grad, forward (with the
    causal mask for W4), cross-entropy, backward, optimizer update; returns the loss. The step
    carries its three phases (``step.phases``: forward with the loss, backward, optimizer) for
    :func:`phase_ms`, and its optimizer (``step.optimizer``)."""
    state = {}

    def forward():
        opt.zero_grad()
        out = model(x) if mask is None else model(x, mask)
        state["loss"] = F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))

    def backward():
        state["loss"].backward()

    def step():
        forward()
        backward()
        opt.step()
        return state["loss"]

    step.phases = {"forward": forward, "backward": backward, "optimizer": opt.step}
    step.optimizer = opt
    return step


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


def _time(variants, n, repeats, device="cpu"):
    """Median ms per step of each variant ``name -> (step, sync, fused)``, timed in
    interleaved rounds of ``n`` steps (so that load from other processes on a shared machine
    falls on every variant alike)."""
    for step, sync, fused in variants.values():
        with mg.use_fused(fused):
            for _ in range(3):
                step()
        sync()
    runs = {name: [] for name in variants}
    for r in range(repeats):
        for name in rotated(list(variants), r):  # each variant follows each other one in turn
            step, sync, fused = variants[name]
            settle(device)  # threads left spinning by the previous variant go idle first
            with mg.use_fused(fused):
                step()  # untimed: this variant's threads awake (see kernel_bench.interleaved_ms)
                sync()
                t0 = time.perf_counter()
                for _ in range(n):
                    step()
                sync()
                runs[name].append((time.perf_counter() - t0) / n * 1e3)
    return {name: statistics.median(r) for name, r in runs.items()}


def phase_ms(step, sync, repeats: int, device: str = "cpu", fused: bool = True) -> dict:
    """Median ms of each phase of a training step (forward with the loss, backward, optimizer),
    timed phase by phase over ``repeats`` steps after a warm-up, with a synchronisation after
    each phase on a GPU (so the phases add up to a little more than a step timed whole)."""
    with mg.use_fused(fused):
        for _ in range(2):
            step()
        sync()
        settle(device)
        step()
        sync()
        times = {name: [] for name in step.phases}
        for _ in range(repeats):
            for name, phase in step.phases.items():
                t0 = time.perf_counter()
                phase()
                sync()
                times[name].append((time.perf_counter() - t0) * 1e3)
    return {name: statistics.median(t) for name, t in times.items()}


def peak_step_bytes(step, sync, device: str = "cpu") -> int:
    """The most bytes one minigrad step holds at once beyond what was held before it: NumPy's
    buffers (and Python's objects) through tracemalloc on the CPU, CuPy's pool on a GPU."""
    sync()
    if device == "cpu":
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            step()
            return tracemalloc.get_traced_memory()[1] - before
        finally:
            tracemalloc.stop()
    mg.cuda.reset_peak_memory_stats(device)
    before = mg.cuda.memory_allocated(device)
    step()
    sync()
    return mg.cuda.max_memory_allocated(device) - before


def torch_peak_step_bytes(torch, step, sync, device: str = "cpu") -> int:
    """PyTorch's :func:`peak_step_bytes`: its CUDA allocator's peak; on the CPU (which keeps
    no peak) the running sum of each op's own allocations in the profiler, in time order."""
    sync()
    if device != "cpu":
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        step()
        sync()
        return torch.cuda.max_memory_allocated() - before
    activity = torch.profiler.ProfilerActivity.CPU
    with torch.profiler.profile(activities=[activity], profile_memory=True) as prof:
        step()
    held = peak = 0
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        held += event.self_cpu_memory_usage
        peak = max(peak, held)
    return peak


def _torch_cuda(torch):
    """'cuda' when PyTorch is installed with a usable GPU, else None (no comparison)."""
    try:
        return "cuda" if torch is not None and torch.cuda.is_available() else None
    except Exception:
        return None


def run(names, device="cpu", quick=False, scale=1):
    try:
        import torch

        torch.set_num_threads(threads())
    except ImportError:
        torch = None
    results = {}
    for name in names:
        n = 20 if name == "W1" else 1  # steps per timed round
        repeats = 5 if quick else 25
        try:
            model, step = minigrad_step(name, device, scale)
        except Exception as exc:  # e.g. no GPU: report it in the table, run the others
            results[name] = {"error": f"not available: {type(exc).__name__}: {exc}"}
            continue
        entry = {}
        sync = (lambda: mg.cuda.synchronize(device)) if device != "cpu" else (lambda: None)
        # the same model and data on the fused and the composite path
        variants = {"minigrad_ms": (step, sync, True), "composite_ms": (step, sync, False)}
        torch_device = "cpu" if device == "cpu" else _torch_cuda(torch)
        if torch is not None and torch_device is not None:
            # validate: identical weights and data give the same first loss (dropout aside)
            tmodel, tstep = torch_step(name, model.state_dict(), torch_device, scale)
            if name not in ("W1", "W5"):  # (their dropout masks differ)
                ours, theirs = float(step().item()), float(tstep().item())
                entry["first_loss"] = {"minigrad": ours, "torch": theirs}
                if abs(ours - theirs) > 1e-3 * max(1.0, abs(theirs)):
                    raise AssertionError(f"{name}: loss {ours} != PyTorch {theirs}")
            tsync = torch.cuda.synchronize if torch_device != "cpu" else (lambda: None)
            variants["torch_ms"] = (tstep, tsync, True)
            entry["torch_device"] = torch_device
        entry.update(_time(variants, n, repeats, device))
        # where the time goes: each phase of a step, minigrad (fused) and PyTorch
        phase_repeats = max(5, repeats * n // 2)
        entry["phases"] = {"minigrad": phase_ms(step, sync, phase_repeats, device)}
        if "torch_ms" in variants:
            entry["phases"]["torch"] = phase_ms(tstep, tsync, phase_repeats, device)
        # memory: one more step each, untimed
        entry["peak_mib"] = {"minigrad": peak_step_bytes(step, sync, device) / 2 ** 20}
        if "torch_ms" in variants:
            try:
                entry["peak_mib"]["torch"] = torch_peak_step_bytes(
                    torch, tstep, tsync, torch_device) / 2 ** 20
            except Exception as exc:  # the profiler is optional machinery: report, go on
                entry["peak_mib"]["torch_error"] = f"{type(exc).__name__}: {exc}"
        entry["fused_speedup"] = entry["composite_ms"] / entry["minigrad_ms"]
        if "torch_ms" in entry:
            entry["ratio"] = entry["minigrad_ms"] / entry["torch_ms"]
            entry["composite_ratio"] = entry["composite_ms"] / entry["torch_ms"]
        results[name] = entry
    return results


def table_headers(device):
    return ["workload", "spec", f"minigrad fused ms/step ({device})", "composite ms/step",
            "PyTorch ms/step", "fused / PyTorch", "composite / PyTorch",
            "peak MiB/step minigrad / PyTorch"]


def table_row(name, r):
    if "error" in r:
        return [name, SPECS[name], "-", "-", "-", r["error"], "-", "-"]

    def ms(key):
        return f"{r[key]:.2f}" if key in r else "n/a"

    def ratio(key):
        return f"{r[key]:.2f}x" if key in r else "n/a"

    peak = r.get("peak_mib", {})
    memory = " / ".join(f"{peak[k]:.1f}" if k in peak else "n/a" for k in ("minigrad", "torch"))
    return [name, SPECS[name], ms("minigrad_ms"), ms("composite_ms"), ms("torch_ms"),
            ratio("ratio"), ratio("composite_ratio"), memory if peak else "n/a"]


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
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",")]
    res = run(names, args.device, args.quick, args.scale)
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
