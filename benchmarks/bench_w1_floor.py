"""W1 against its NumPy floor: the same training step written by hand on arrays, no framework.

W1 (the Keras MNIST MLP: 784 -> 128 relu -> dropout 0.5 -> 10, batch 128, Adam) is small
enough that a step is a few BLAS calls and a few dozen array passes. This benchmark times three
sides, each in a fresh process of its own, in interleaved rounds (``benchmarks.fresh``):

- ``floor``: the step as an expert writes it in NumPy for this one model (:class:`FloorW1`):
  every buffer made once and written with ``out=``, no Tensor, no graph, no module, no checks;
  ReLU in place, the dropout mask from one random bit per element, cross-entropy and its
  gradient by hand, Adam in the fused kernel's seven passes (BLAS ``axpby``/``axpy`` found by
  :mod:`minigrad.blas`; the process imports minigrad for that finder, so it runs with the same
  allocator settings);
- ``fused``: minigrad as users write the step (``benchmarks.workload_side``);
- ``torch``: PyTorch, the same.

The floor is what NumPy and its OpenBLAS allow on this machine for this step, whatever a
framework does around them: minigrad / floor is what the framework costs, and floor / PyTorch
the best ratio any NumPy framework could report. Run (quiet machine):

    OMP_NUM_THREADS=2 python -m benchmarks.bench_w1_floor [--rounds 5] [--quick]

Writes benchmarks/results/w1_floor.md and .json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np

from benchmarks import fresh
from benchmarks.common import machine, markdown_table, threads, write_results

SIDES = ("floor", "fused", "torch")
TIMING = (20, 25)  # steps per timed run, timed runs per process (as W1 in workloads.py)


class FloorW1:
    """W1's training step on plain NumPy arrays (float32), for the weights ``state`` (W1's
    state dict: ``0.weight`` (128, 784), ``0.bias``, ``3.weight`` (10, 128), ``3.bias``),
    inputs ``x`` (N, 784) and class indices ``y`` (N,). ``p`` is the dropout probability
    (0.5, or 0 to compare with a framework); Adam with PyTorch's defaults and ``lr``."""

    def __init__(self, state: dict, x: np.ndarray, y: np.ndarray, p: float = 0.5,
                 lr: float = 1e-3, seed: int = 0):
        from minigrad.blas import blas_function

        f32 = np.float32
        self.params = [np.array(state[k], dtype=f32) for k in
                       ("0.weight", "0.bias", "3.weight", "3.bias")]
        self.grads = [np.empty_like(w) for w in self.params]
        self.m = [np.zeros_like(w) for w in self.params]
        self.v = [np.zeros_like(w) for w in self.params]
        self.tmp = [np.empty(w.size, dtype=f32) for w in self.params]
        self.x, self.y = np.ascontiguousarray(x, dtype=f32), np.asarray(y)
        n, hidden = len(x), self.params[0].shape[0]
        self.rows = np.arange(n)
        self.h = np.empty((n, hidden), dtype=f32)  # relu(x W1^T + b1)
        self.hd = np.empty_like(self.h)  # after dropout
        self.gh = np.empty_like(self.h)
        self.o = np.empty((n, self.params[2].shape[0]), dtype=f32)
        self.e = np.empty_like(self.o)  # exp(o - max), then the logits' gradient
        self.s = np.empty(n, dtype=f32)
        self.ones_n = np.ones(n, dtype=f32)
        self.p, self.scale = p, f32(1.0 / (1.0 - p))
        self.bits = np.random.default_rng(seed).bit_generator
        self.lr, self.beta1, self.beta2, self.eps = lr, 0.9, 0.999, 1e-8
        self.t = 0
        self.axpy, self.axpby = blas_function("axpy", f32), blas_function("axpby", f32)
        if self.axpy is None:
            raise RuntimeError("the floor needs NumPy's own OpenBLAS (axpy/axpby)")

    def loss(self) -> float:
        """The loss with dropout off (evaluation mode), nothing updated."""
        w1, b1, w2, b2 = self.params
        h = np.maximum(self.x @ w1.T + b1, 0)
        o = h @ w2.T + b2
        o = o - o.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(o).sum(axis=1)) - o[self.rows, self.y]))

    def step(self) -> None:
        w1, b1, w2, b2 = self.params
        gw1, gb1, gw2, gb2 = self.grads
        x, h, hd, gh, o, e, s = self.x, self.h, self.hd, self.gh, self.o, self.e, self.s
        n = len(x)
        # forward: h = relu(x W1^T + b1); hd = dropout(h); o = hd W2^T + b2
        np.matmul(x, w1.T, out=h)
        h += b1
        np.maximum(h, 0, out=h)
        if self.p > 0:  # p = 1/2: keep where a random bit is set
            words = self.bits.random_raw((h.size + 63) // 64)
            keep = np.unpackbits(words.view(np.uint8), count=h.size).view(np.bool_)
            keep = keep.reshape(h.shape)
            np.multiply(h, self.scale, out=hd)
            hd *= keep
        else:
            hd[...] = h
        np.matmul(hd, w2.T, out=o)
        o += b2
        # cross-entropy (mean) and its gradient: e = softmax(o) / n - onehot(y) / n
        np.subtract(o, np.maximum.reduce(o, axis=1, keepdims=True), out=e)
        picked = e[self.rows, self.y]  # (the shifted logit of each target)
        np.exp(e, out=e)
        np.matmul(e, np.ones(e.shape[1], dtype=e.dtype), out=s)
        self.last_loss = np.mean(np.log(s) - picked)  # (as a framework reports it)
        s *= n
        e /= s[:, None]
        e[self.rows, self.y] -= np.float32(1.0 / n)
        # backward
        np.matmul(e.T, hd, out=gw2)
        np.matmul(self.ones_n, e, out=gb2)
        np.matmul(e, w2, out=gh)
        if self.p > 0:
            gh *= keep
            gh *= self.scale
        gh *= h > 0
        np.matmul(gh.T, x, out=gw1)
        np.matmul(self.ones_n, gh, out=gb1)
        self._adam()

    def _adam(self) -> None:
        """Adam, PyTorch's defaults, in the fused kernel's seven passes per parameter."""
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        c = (1 - b2 ** self.t) ** 0.5
        neg_step = -self.lr / (1 - b1 ** self.t) * c
        eps_c = np.float32(self.eps * c)
        addr = lambda a: a.__array_interface__["data"][0]  # noqa: E731
        for w, g, m, v, tmp in zip(self.params, self.grads, self.m, self.v, self.tmp):
            k = w.size
            self.axpby(k, 1 - b1, addr(g), 1, b1, addr(m), 1)
            np.multiply(g.reshape(-1), g.reshape(-1), out=tmp)
            self.axpby(k, 1 - b2, addr(tmp), 1, b2, addr(v), 1)
            np.sqrt(v.reshape(-1), out=tmp)
            tmp += eps_c
            np.divide(m.reshape(-1), tmp, out=tmp)
            self.axpy(k, neg_step, addr(tmp), 1, addr(w), 1)


def floor_side(weights: str, steps: int, repeats: int) -> dict:
    """Time :class:`FloorW1` in this process: ``repeats`` runs of ``steps`` steps after three
    warm-up steps (the same schedule as ``workload_side.run_side``)."""
    from benchmarks.workload_side import _data

    x, y = _data("W1", np.random.default_rng(0), 1)
    with np.load(weights) as state:
        floor = FloorW1(dict(state), x, y)
    eval_loss = floor.loss()
    for _ in range(3):
        floor.step()
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            floor.step()
        runs.append((time.perf_counter() - t0) / steps * 1e3)
    return {"ms": runs, "ms_median": statistics.median(runs), "eval_loss": eval_loss}


def run(rounds: int = 5, quick: bool = False, sides=SIDES) -> dict:
    """Each side in fresh processes, interleaved rounds; medians over rounds (ms per step)."""
    import minigrad as mg
    from benchmarks.workload_side import _build
    from benchmarks.workloads import SIDE_ENV, _torch_available

    steps, repeats = (1, 5) if quick else TIMING
    mg.manual_seed(0)
    model = _build(mg.nn, "W1")
    weights = os.path.join(tempfile.mkdtemp(prefix="minigrad_w1_floor_"), "weights.npz")
    np.savez(weights, **{k: v.detach().numpy() for k, v in model.state_dict().items()})
    chosen = [s for s in sides if s != "torch" or _torch_available()]
    runs = {side: [] for side in chosen}
    for r in range(rounds):
        for side in fresh.rotated(chosen, r):
            print(f"  W1 {side} round {r + 1}/{rounds}", flush=True)
            if side == "floor":
                result = fresh.run("benchmarks.bench_w1_floor:floor_side",
                                   {"weights": weights, "steps": steps, "repeats": repeats},
                                   env={"OPENBLAS_NUM_THREADS": threads()})
            else:
                kwargs = {"name": "W1", "side": side, "device": "cpu", "weights": weights,
                          "steps": steps, "repeats": repeats, "threads": threads(),
                          "phases": False}
                result = fresh.run("benchmarks.workload_side:run_side", kwargs,
                                   env=SIDE_ENV[side])
            runs[side].append(result)
    losses = {side: statistics.median(r["eval_loss"] for r in rs) for side, rs in runs.items()}
    for side, loss in losses.items():  # the same model, weights and data on every side
        if abs(loss - losses["fused"]) > 1e-4 * max(1.0, abs(losses["fused"])):
            raise AssertionError(f"W1 floor: evaluation loss {side} {loss} != fused "
                                 f"{losses['fused']}: the sides do not compute the same thing")
    ms = {side: statistics.median(r["ms_median"] for r in rs) for side, rs in runs.items()}
    return {"ms": ms, "rounds": {side: [r["ms_median"] for r in rs] for side, rs in runs.items()},
            "eval_loss": losses, "machine": machine()}


def table(result: dict) -> str:
    ms = result["ms"]
    rows = [[side, f"{ms[side]:.3f}", " ".join(f"{t:.3f}" for t in result["rounds"][side]),
             f"{ms['fused'] / ms[side]:.2f}x",
             f"{ms[side] / ms['torch']:.2f}x" if "torch" in ms else "n/a"] for side in ms]
    return markdown_table(["side", "ms/step (median of rounds)", "each round", "minigrad / side",
                           "side / PyTorch"], rows)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="W1: minigrad against its NumPy floor")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="one tiny round: it runs")
    args = parser.parse_args(argv)
    result = run(1 if args.quick else args.rounds, args.quick)
    text = table(result)
    print(text)
    if not args.quick:
        write_results("w1_floor", text, result)


if __name__ == "__main__":
    main()
