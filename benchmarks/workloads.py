"""The standard workloads of DESIGN.md, timed per training step against PyTorch in one run.

W1 the Keras MNIST MLP (784 -> 128 relu -> dropout 0.5 -> 10, batch 128, Adam);
W2 LSTM (input 128, hidden 256, T 64, batch 32, cross-entropy on the last state, Adam);
W3 the same with a GRU; W4 a transformer encoder block (d_model 256, 4 heads, FFN 1024, T 128,
batch 16, causal, cross-entropy over a 1000-token vocabulary, Adam).

One step = zero_grad + forward + loss + backward + Adam update. Both frameworks get the same
weights and data and the same thread count; the minigrad loss after one step is checked
against PyTorch's before timing. Run:

    OMP_NUM_THREADS=2 python -m benchmarks.workloads [--only W1,W2] [--quick] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import minigrad as mg
from benchmarks.common import machine, markdown_table, threads, write_results

SPECS = {
    "W1": "MLP 784-128-10, dropout 0.5, batch 128",
    "W2": "LSTM 128->256, T64, batch 32",
    "W3": "GRU 128->256, T64, batch 32",
    "W4": "transformer block d256 h4 T128 B16, vocab 1000",
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
    raise ValueError(name)


def _data(name, rng):
    if name == "W1":
        return rng.standard_normal((128, 784), dtype=np.float32), rng.integers(0, 10, 128)
    if name in ("W2", "W3"):
        return rng.standard_normal((64, 32, 128), dtype=np.float32), rng.integers(0, 10, 32)
    return rng.integers(0, 1000, (16, 128)), rng.integers(0, 1000, (16, 128))


def _causal_mask(lib, n):
    m = np.triu(np.full((n, n), -np.inf, dtype=np.float32), 1)
    return lib.tensor(m)


# ---------------------------------------------------------------------------- steps


def minigrad_step(name, device):
    import minigrad.nn.functional as F

    mg.manual_seed(0)
    model = _build(mg.nn, name).to(device)
    opt = mg.optim.Adam(model.parameters(), lr=1e-3)
    x_np, y_np = _data(name, np.random.default_rng(0))
    x, y = mg.tensor(x_np, device=device), mg.tensor(y_np, device=device)
    mask = _causal_mask(mg, 128).to(device) if name == "W4" else None

    def step():
        opt.zero_grad()
        out = model(x, mask) if name == "W4" else model(x)
        loss = F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
        loss.backward()
        opt.step()
        return loss

    return model, step


def torch_step(name, state_dict):
    import torch
    import torch.nn.functional as F

    model = _build(torch.nn, name)
    model.load_state_dict({k: torch.tensor(np.asarray(v.detach().data)) for k, v in
                           state_dict.items()})
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x_np, y_np = _data(name, np.random.default_rng(0))
    x, y = torch.tensor(x_np), torch.tensor(y_np)
    mask = _causal_mask(torch, 128) if name == "W4" else None

    def step():
        opt.zero_grad()
        out = model(x, mask) if name == "W4" else model(x)
        loss = F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
        loss.backward()
        opt.step()
        return loss

    return model, step


def _time(step, n, repeats, sync=lambda: None):
    for _ in range(3):
        step()
    sync()
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        sync()
        runs.append((time.perf_counter() - t0) / n * 1e3)
    return statistics.median(runs)


def run(names, device="cpu", quick=False):
    try:
        import torch

        torch.set_num_threads(threads())
    except ImportError:
        torch = None
    results = {}
    for name in names:
        n = {"W1": 50, "W2": 3, "W3": 3, "W4": 3}[name] if quick else \
            {"W1": 200, "W2": 10, "W3": 10, "W4": 10}[name]
        repeats = 3 if quick else 5
        try:
            model, step = minigrad_step(name, device)
        except (AttributeError, ImportError) as exc:
            results[name] = {"error": f"not available yet: {exc}"}
            continue
        entry = {}
        if torch is not None and device == "cpu":
            # validate: identical weights and data give the same first loss (dropout aside)
            tmodel, tstep = torch_step(name, model.state_dict())
            if name != "W1":
                ours, theirs = float(step().item()), float(tstep().item())
                entry["first_loss"] = {"minigrad": ours, "torch": theirs}
                if abs(ours - theirs) > 1e-3 * max(1.0, abs(theirs)):
                    raise AssertionError(f"{name}: loss {ours} != PyTorch {theirs}")
            entry["torch_ms"] = _time(tstep, n, repeats)
        sync = (lambda: mg.cuda.synchronize(device)) if device != "cpu" else (lambda: None)
        entry["minigrad_ms"] = _time(step, n, repeats, sync)
        if "torch_ms" in entry:
            entry["ratio"] = entry["minigrad_ms"] / entry["torch_ms"]
        results[name] = entry
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description="minigrad standard workloads vs PyTorch")
    parser.add_argument("--only", default="W1,W2,W3,W4")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",")]
    res = run(names, args.device, args.quick)
    rows = []
    for name in names:
        r = res[name]
        if "error" in r:
            rows.append([name, SPECS[name], "-", "-", r["error"]])
            continue
        rows.append([name, SPECS[name], f"{r['minigrad_ms']:.2f}",
                     f"{r['torch_ms']:.2f}" if "torch_ms" in r else "n/a",
                     f"{r['ratio']:.2f}x" if "ratio" in r else "n/a"])
    table = markdown_table(["workload", "spec", f"minigrad ms/step ({args.device})",
                            "PyTorch ms/step", "ratio"], rows)
    print(f"threads: {threads()}")
    print(table)
    write_results(f"workloads_{args.device}", table,
                  {"machine": machine(), "device": args.device, "results": res})


if __name__ == "__main__":
    main()
