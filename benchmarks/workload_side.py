"""One side of a standard-workload comparison, run in a fresh process (``benchmarks.fresh``).

The models and data of W1-W5 (DESIGN.md "Standard workloads") are written once here for either
framework (``nn`` is ``minigrad.nn`` or ``torch.nn``), and :func:`run_side` times one side:
minigrad with its fused kernels, minigrad on the composite path, or PyTorch. This module
imports neither framework at its top: the PyTorch side's process never imports minigrad (whose
import tunes the C allocator), and minigrad's never imports torch.

Every side loads the same weights from one ``.npz`` file (written by the driver,
``workloads.run``) and the same data, and reports its evaluation-mode loss before training
(dropout off) so that the driver can check that the sides compute the same thing.
"""

from __future__ import annotations

import os
import resource
import statistics
import sys
import time

import numpy as np

SPECS = {
    "W1": "MLP 784-128-10, dropout 0.5, batch 128",
    "W2": "LSTM 128->256, T64, batch 32",
    "W3": "GRU 128->256, T64, batch 32",
    "W4": "transformer block d256 h4 T128 B16, vocab 1000",
    "W5": "CNN conv32-pool-conv64-pool-128-10, batch 128",
}

SIDES = ("fused", "composite", "torch")


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
    raise ValueError(f"unknown workload {name!r}; expected one of {sorted(SPECS)}")


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


def _training_step(model, opt, F, x, y, mask):
    """One step in either framework (``F`` its functional module): zero_grad, forward (with the
    causal mask for W4), cross-entropy, backward, optimizer update; returns the loss. The step
    carries its three phases (``step.phases``: forward with the loss, backward, optimizer) for
    :func:`phase_ms`, its optimizer (``step.optimizer``) and its loss function
    (``step.loss``, forward and loss without the update)."""
    state = {}

    def loss():
        out = model(x) if mask is None else model(x, mask)
        return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))

    def forward():
        opt.zero_grad()
        state["loss"] = loss()

    def backward():
        state["loss"].backward()

    def step():
        forward()
        backward()
        opt.step()
        return state["loss"]

    step.phases = {"forward": forward, "backward": backward, "optimizer": opt.step}
    step.optimizer = opt
    step.loss = loss
    return step


# ---------------------------------------------------------------------------- one side


def _rss_bytes(field: str = "VmRSS") -> int:
    """This process's resident size now (``VmRSS``) or its peak (``VmHWM``), Linux; 0 elsewhere.

    (Not ``getrusage``'s ``ru_maxrss``: Linux carries the parent's size at the fork into a
    child's maximum across ``exec``, so a fresh process started by a large driver reports the
    driver's size.)"""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _side_setup(name, side, device, weights, threads, scale):
    """(framework module, step, sync, context manager factory) for one side."""
    x_np, y_np = _data(name, np.random.default_rng(0), scale)
    state = np.load(weights)
    if side == "torch":
        import torch

        torch.set_num_threads(threads)
        model = _build(torch.nn, name)
        model.load_state_dict({k: torch.tensor(state[k]) for k in state.files})
        tdev = "cuda" if device.startswith("cuda") else "cpu"
        model = model.to(tdev)
        x, y = torch.tensor(x_np, device=tdev), torch.tensor(y_np, device=tdev)
        mask = _causal_mask(torch, 128).to(tdev) if name == "W4" else None
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        sync = torch.cuda.synchronize if tdev == "cuda" else (lambda: None)
        step = _training_step(model, opt, torch.nn.functional, x, y, mask)
        return torch, model, step, sync, torch.no_grad
    import minigrad as mg
    import minigrad.nn.functional as F

    mg.set_num_threads(threads)
    model = _build(mg.nn, name)
    model.load_state_dict({k: mg.tensor(state[k]) for k in state.files})
    model = model.to(device)
    x, y = mg.tensor(x_np, device=device), mg.tensor(y_np, device=device)
    mask = _causal_mask(mg, 128).to(device) if name == "W4" else None
    opt = mg.optim.Adam(model.parameters(), lr=1e-3)
    sync = (lambda: mg.cuda.synchronize(device)) if device != "cpu" else (lambda: None)
    step = _training_step(model, opt, F, x, y, mask)
    return mg, model, step, sync, mg.no_grad


def phase_ms(step, sync, repeats: int) -> dict:
    """Median ms of each phase of a training step (forward with the loss, backward, optimizer),
    timed phase by phase over ``repeats`` steps after a warm-up, with a synchronisation after
    each phase on a GPU (so the phases add up to a little more than a step timed whole)."""
    for _ in range(2):
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


def _peak_step_mib(lib, side, step, sync, device) -> float:
    """The most MiB one step holds at once beyond what was held before it: NumPy's buffers
    (and Python's objects) through tracemalloc for minigrad on the CPU, CuPy's pool on a GPU;
    for PyTorch its CUDA allocator's peak, or on the CPU (where it keeps no peak) the running
    sum of each op's own allocations in its profiler, in time order."""
    import tracemalloc

    sync()
    if side == "torch":
        if device != "cpu":
            lib.cuda.reset_peak_memory_stats()
            before = lib.cuda.memory_allocated()
            step()
            sync()
            return (lib.cuda.max_memory_allocated() - before) / 2 ** 20
        activity = lib.profiler.ProfilerActivity.CPU
        with lib.profiler.profile(activities=[activity], profile_memory=True) as prof:
            step()
        held = peak = 0
        for event in sorted(prof.events(), key=lambda e: e.time_range.start):
            held += event.self_cpu_memory_usage
            peak = max(peak, held)
        return peak / 2 ** 20
    if device == "cpu":
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            step()
            return (tracemalloc.get_traced_memory()[1] - before) / 2 ** 20
        finally:
            tracemalloc.stop()
    lib.cuda.reset_peak_memory_stats(device)
    before = lib.cuda.memory_allocated(device)
    step()
    sync()
    return (lib.cuda.max_memory_allocated(device) - before) / 2 ** 20


def run_side(name: str, side: str, device: str, weights: str, steps: int, repeats: int,
             threads: int, scale: int = 1, phases: bool = True) -> dict:
    """Time one side of workload ``name`` in this process: ``repeats`` runs of ``steps``
    training steps after three warm-up steps.

    Returns ``{"ms": [ms per step of each run], "ms_median", "eval_loss" (before training,
    dropout off), "phases" (ms of forward/backward/optimizer), "peak_step_mib", "rss_mib"
    (resident size before the first step), "peak_rss_mib" (the process's peak resident size,
    imports and all), "page_faults_per_step"}``.
    """
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, got {side!r}")
    lib, model, step, sync, no_grad = _side_setup(name, side, device, weights, threads, scale)
    fused_ctx = lib.use_fused(side == "fused") if side != "torch" else None
    if fused_ctx is not None:
        fused_ctx.__enter__()
    try:
        model.eval()
        with no_grad():
            eval_loss = float(step.loss().item())
        model.train()
        rss = _rss_bytes()
        for _ in range(3):
            step()
        sync()
        faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        runs = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(steps):
                step()
            sync()
            runs.append((time.perf_counter() - t0) / steps * 1e3)
        faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0) / (
            steps * repeats)
        result = {"ms": runs, "ms_median": statistics.median(runs), "eval_loss": eval_loss,
                  "rss_mib": rss / 2 ** 20, "page_faults_per_step": faults}
        if phases:
            result["phases"] = phase_ms(step, sync, max(5, repeats * steps // 2))
        result["peak_step_mib"] = _peak_step_mib(lib, side, step, sync, device)
        result["peak_rss_mib"] = _rss_bytes("VmHWM") / 2 ** 20
        result["threads"] = threads
        # each framework alone in its process, as users run it (tests check this)
        result["imported"] = sorted(m for m in ("minigrad", "torch") if m in sys.modules)
        result["env_threads"] = os.environ.get("OMP_NUM_THREADS")
        return result
    finally:
        if fused_ctx is not None:
            fused_ctx.__exit__(None, None, None)
