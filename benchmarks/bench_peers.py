"""W5 (DESIGN.md's CNN) in the NumPy frameworks of ``../shared/peers.md`` that have convolutions,
beside minigrad (fused and composite) and PyTorch: each framework in a fresh process of its own
(as users run them), rounds interleaved so that load from other processes falls on all alike.

W5: (B, 1, 28, 28) -> conv 32 3x3 relu -> maxpool 2 -> conv 64 3x3 relu -> maxpool 2 -> flatten
1600 -> linear 128 relu -> dropout 0.5 -> linear 10; cross-entropy; Adam (lr 1e-3); batch 128.
Every framework starts from the same weights and data (written once by the parent) and checks
its first loss, computed without dropout, against the others (the ``loss0`` column).

The peers, installed without their dependencies (NumPy is the only one they need) into a folder
of their own, so that nothing else in the environment changes::

    python -m benchmarks.bench_peers --install /tmp/minigrad-peers
    OMP_NUM_THREADS=2 python -m benchmarks.bench_peers --peers /tmp/minigrad-peers \\
        [--rounds 5] [--steps 20] [--only minigrad,torch,mygrad] [--quick]

- MyGrad 2.5 (``mygrad.nnet``: ``conv_nd``, ``max_pool``, ``softmax_crossentropy``; it has no
  optimizer or dropout: Adam and the dropout mask are written in NumPy, as its users do).
- DeZero 0.0.13 (``dezero.functions`` conv2d/pooling/dropout, ``optimizers.Adam``). Under
  NumPy 2 it may compute in float64 (peers.md); its ``dtype`` column says what it ran in.
- tinygrad 0.14 (``nn.Conv2d``, ``max_pool2d``, ``nn.optim.Adam``, no TinyJit): its CPU device
  compiles kernels with clang (``apt-get install clang``); without it the row says why. (Its
  worker was checked on tinygrad's pure-Python device, ``DEV=PYTHON``, at batch 2 only.)
- Chainer 7.8 is also in peers.md but not installable here (its sdist does not build with this
  pip/setuptools): reported as unavailable unless importable from ``--peers``.

A framework that cannot be imported or fails is reported with its error, not timed. Nothing is
timed in ``--quick`` (batch 16, 2 steps, 1 round): it checks that every worker runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.workload_side import _cnn

FRAMEWORKS = ["minigrad", "minigrad-composite", "torch", "mygrad", "dezero", "tinygrad",
              "chainer"]
# what --install fetches (pip, no dependencies: each needs only NumPy)
PEER_PACKAGES = ["mygrad==2.5.0", "dezero==0.0.13", "tinygrad==0.14.0"]
DROPOUT = 0.5
LR = 1e-3
ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------- shared inputs


def make_inputs(batch: int, seed: int = 0) -> dict:
    """W5's weights (PyTorch's default uniform init, PyTorch's layouts), data and labels."""
    rng = np.random.default_rng(seed)

    def uniform(shape, fan_in):
        bound = 1.0 / np.sqrt(fan_in)
        return rng.uniform(-bound, bound, shape).astype(np.float32)

    arrays = {
        "conv1.weight": uniform((32, 1, 3, 3), 9), "conv1.bias": uniform((32,), 9),
        "conv2.weight": uniform((64, 32, 3, 3), 288), "conv2.bias": uniform((64,), 288),
        "fc1.weight": uniform((128, 1600), 1600), "fc1.bias": uniform((128,), 1600),
        "fc2.weight": uniform((10, 128), 128), "fc2.bias": uniform((10,), 128),
    }
    arrays["x"] = rng.standard_normal((batch, 1, 28, 28), dtype=np.float32)
    arrays["y"] = rng.integers(0, 10, batch)
    return arrays


class NumpyAdam:
    """Adam (PyTorch's update, bias-corrected) on arrays in place: for frameworks without one."""

    def __init__(self, params, lr=LR, betas=(0.9, 0.999), eps=1e-8):
        self.params, self.lr, (self.b1, self.b2), self.eps = params, lr, betas, eps
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, grads):
        self.t += 1
        c1, c2 = 1 - self.b1 ** self.t, 1 - self.b2 ** self.t
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= self.b1
            m += (1 - self.b1) * g
            v *= self.b2
            v += (1 - self.b2) * g * g
            p -= (self.lr / c1) * m / (np.sqrt(v / c2) + self.eps)


# ---------------------------------------------------------------------------- the frameworks
# Each builder takes the shared arrays and returns (step, first_loss, dtype): step() runs one
# training step; first_loss is the loss of the initial weights without dropout.


def _minigrad(a: dict, fused: bool):
    import minigrad as mg
    import minigrad.nn.functional as F
    from minigrad import nn

    model = _cnn(nn)  # W5's network, written once for both frameworks
    model.load_state_dict({k: mg.tensor(v) for k, v in a.items() if "." in k})
    x, y = mg.tensor(a["x"]), mg.tensor(a["y"])
    opt = mg.optim.Adam(model.parameters(), lr=LR)
    model.eval()
    with mg.no_grad(), mg.use_fused(fused):
        first = float(F.cross_entropy(model(x), y).item())
    model.train()

    def step():
        with mg.use_fused(fused):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
        return loss

    return step, first, str(model.conv1.weight.dtype)


def _torch(a: dict, threads: int):
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.set_num_threads(threads)

    model = _cnn(nn)  # W5's network, written once for both frameworks
    model.load_state_dict({k: torch.tensor(v) for k, v in a.items() if "." in k})
    x, y = torch.tensor(a["x"]), torch.tensor(a["y"])
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    model.eval()
    with torch.no_grad():
        first = float(F.cross_entropy(model(x), y))
    model.train()

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return step, first, str(model.conv1.weight.dtype).replace("torch.", "")


def _mygrad(a: dict):
    import mygrad as mgd
    from mygrad.nnet.activations import relu
    from mygrad.nnet.layers import conv_nd, max_pool
    from mygrad.nnet.losses import softmax_crossentropy

    names = ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight",
             "fc1.bias", "fc2.weight", "fc2.bias"]
    params = [mgd.tensor(a[n].copy()) for n in names]
    x, y = a["x"], a["y"]
    rng = np.random.default_rng(1)
    adam = NumpyAdam([p.data for p in params])

    def forward(dropout: bool):
        w1, b1, w2, b2, f1, c1, f2, c2 = params
        h = max_pool(relu(conv_nd(x, w1, stride=1) + b1.reshape(1, -1, 1, 1)), (2, 2), 2)
        h = relu(conv_nd(h, w2, stride=1) + b2.reshape(1, -1, 1, 1))
        # MyGrad's windows must tile the input: the 11th row and column (which floor-mode
        # pooling never reads) cut off first
        h = max_pool(h[:, :, :10, :10], (2, 2), 2)
        h = relu(mgd.matmul(h.reshape(h.shape[0], -1), f1.T) + c1)
        if dropout:  # inverted dropout with a NumPy mask (MyGrad has no dropout op)
            keep = rng.random(h.shape, dtype=np.float32) >= DROPOUT
            h = h * (keep / np.float32(1 - DROPOUT))
        return softmax_crossentropy(mgd.matmul(h, f2.T) + c2, y)

    with mgd.no_autodiff:
        first = float(forward(False).item())

    def step():
        loss = forward(True)
        loss.backward()
        adam.step([p.grad for p in params])
        return loss

    return step, first, str(params[0].dtype)


def _dezero(a: dict):
    # dezero's package imports pyplot and PIL for its data sets' plots and image transforms,
    # which W5 never uses: placeholder modules (every attribute another placeholder) stand in
    # where they are not installed
    import importlib.util
    import types

    class Placeholder(types.ModuleType):
        def __getattr__(self, name):
            return Placeholder(f"{self.__name__}.{name}")

    for package, modules in (("matplotlib", ["matplotlib", "matplotlib.pyplot"]),
                             ("PIL", ["PIL", "PIL.Image"])):
        if importlib.util.find_spec(package) is None:
            for module in modules:
                sys.modules.setdefault(module, Placeholder(module))
    if not hasattr(np, "int"):  # (a default argument in dezero.transforms; gone in NumPy 1.24)
        np.int = int
    import dezero
    import dezero.functions as F
    from dezero import optimizers

    model = dezero.Model()
    # DeZero's linear is x @ W (in, out): PyTorch's weights transposed
    for name, value in a.items():
        if "." in name:
            value = value.T.copy() if name.startswith("fc") and name.endswith("weight") else value
            setattr(model, name.replace(".", "_"), dezero.Parameter(value.copy()))
    m = model
    x, y = a["x"], a["y"]
    opt = optimizers.Adam(alpha=LR).setup(model)

    def forward():
        h = F.pooling(F.relu(F.conv2d(x, m.conv1_weight, m.conv1_bias)), 2, 2)
        h = F.pooling(F.relu(F.conv2d(h, m.conv2_weight, m.conv2_bias)), 2, 2)
        h = F.relu(F.linear(F.reshape(h, (h.shape[0], -1)), m.fc1_weight, m.fc1_bias))
        h = F.dropout(h, DROPOUT)
        return F.softmax_cross_entropy(F.linear(h, m.fc2_weight, m.fc2_bias), y)

    with dezero.test_mode(), dezero.no_grad():
        first = float(forward().data)

    dtypes = set()

    def step():
        loss = forward()
        model.cleargrads()
        loss.backward()
        opt.update()
        dtypes.add(str(m.conv2_weight.grad.data.dtype))
        return loss

    step()
    return step, first, "/".join(sorted(dtypes | {str(m.conv2_weight.data.dtype)}))


def _tinygrad(a: dict):
    from tinygrad import Context, Tensor, nn

    class CNN:
        def __init__(self):
            self.conv1, self.conv2 = nn.Conv2d(1, 32, 3), nn.Conv2d(32, 64, 3)
            self.fc1, self.fc2 = nn.Linear(1600, 128), nn.Linear(128, 10)
            for name, value in a.items():
                if "." in name:
                    layer, attr = name.split(".")
                    setattr(getattr(self, layer), attr, Tensor(value.copy()))

        def __call__(self, x):
            x = self.conv1(x).relu().max_pool2d(2)
            x = self.conv2(x).relu().max_pool2d(2)
            return self.fc2(self.fc1(x.flatten(1)).relu().dropout(DROPOUT))

    model = CNN()
    x, y = Tensor(a["x"]), Tensor(a["y"].astype(np.int32))
    opt = nn.optim.Adam(nn.state.get_parameters(model), lr=LR)
    first = float(model(x).sparse_categorical_crossentropy(y).item())  # (training off)

    def step():
        with Context(TRAINING=1):  # (dropout and the optimizer act only when TRAINING is set)
            opt.zero_grad()
            loss = model(x).sparse_categorical_crossentropy(y)
            loss.backward()
            opt.step()
            return loss.realize()

    return step, first, str(model.conv1.weight.dtype)


def _chainer(a: dict):
    import chainer
    import chainer.functions as F
    import chainer.links as L

    model = chainer.Chain()
    with model.init_scope():
        model.conv1 = L.Convolution2D(1, 32, 3, initialW=a["conv1.weight"],
                                      initial_bias=a["conv1.bias"])
        model.conv2 = L.Convolution2D(32, 64, 3, initialW=a["conv2.weight"],
                                      initial_bias=a["conv2.bias"])
        model.fc1 = L.Linear(1600, 128, initialW=a["fc1.weight"], initial_bias=a["fc1.bias"])
        model.fc2 = L.Linear(128, 10, initialW=a["fc2.weight"], initial_bias=a["fc2.bias"])
    x, y = a["x"], a["y"].astype(np.int32)
    opt = chainer.optimizers.Adam(alpha=LR)
    opt.setup(model)

    def forward():
        h = F.max_pooling_2d(F.relu(model.conv1(x)), 2)
        h = F.max_pooling_2d(F.relu(model.conv2(h)), 2)
        h = F.dropout(F.relu(model.fc1(h)), DROPOUT)
        return F.softmax_cross_entropy(model.fc2(h), y)

    with chainer.using_config("train", False), chainer.no_backprop_mode():
        first = float(forward().array)

    def step():
        loss = forward()
        model.cleargrads()
        loss.backward()
        opt.update()
        return loss

    return step, first, str(model.conv1.W.dtype)


def build(name: str, arrays: dict, threads: int):
    """``(step, first_loss, dtype)`` of one framework."""
    if name in ("minigrad", "minigrad-composite"):
        return _minigrad(arrays, fused=name == "minigrad")
    if name == "torch":
        return _torch(arrays, threads)
    return {"mygrad": _mygrad, "dezero": _dezero, "tinygrad": _tinygrad,
            "chainer": _chainer}[name](arrays)


# ---------------------------------------------------------------------------- worker and parent


def worker(name: str, inputs: str, steps: int, warmup: int, threads: int) -> dict:
    """Runs in the fresh process: build, warm up, time ``steps`` steps one by one."""
    with np.load(inputs) as f:
        arrays = {k: f[k] for k in f.files}
    step, first, dtype = build(name, arrays, threads)
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1e3)
    return {"ms": statistics.median(times), "loss0": first, "dtype": dtype}


def run_fresh(name: str, inputs: str, steps: int, warmup: int, threads: int, peers: str | None,
              timeout: float) -> dict:
    """One framework in a new Python process; its result, or ``{"error": ...}``."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    paths = [str(ROOT)] + ([peers] if peers else []) + [env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    if name == "tinygrad":
        env.setdefault("DEV", "CPU")
    args = [sys.executable, "-m", "benchmarks.bench_peers", "--worker", name, "--inputs", inputs,
            "--steps", str(steps), "--warmup", str(warmup), "--threads", str(threads)]
    try:
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout,
                              cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {done.returncode}: {last}"}
    return json.loads(lines[-1])


def install(folder: str) -> None:
    """pip-installs the peers (no dependencies) into ``folder``."""
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--target", folder,
                    *PEER_PACKAGES], check=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--install", metavar="DIR", help="pip-install the peers into DIR and exit")
    p.add_argument("--peers", metavar="DIR", help="folder the peers are installed in")
    p.add_argument("--only", default=",".join(FRAMEWORKS), help="frameworks, comma-separated")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (fresh processes)")
    p.add_argument("--steps", type=int, default=20, help="timed steps per process")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", 2)))
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per process")
    p.add_argument("--quick", action="store_true", help="batch 16, 2 steps, 1 round")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--inputs", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.worker:
        print(json.dumps(worker(args.worker, args.inputs, args.steps, args.warmup,
                                args.threads)))
        return 0
    if args.install:
        install(args.install)
        return 0
    if args.quick:
        args.batch, args.steps, args.warmup, args.rounds = 16, 2, 1, 1
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = sorted(set(names) - set(FRAMEWORKS))
    if unknown:
        p.error(f"unknown framework(s) {unknown}; choose from {FRAMEWORKS}")

    results = {n: [] for n in names}
    with tempfile.TemporaryDirectory() as tmp:
        inputs = os.path.join(tmp, "w5.npz")
        np.savez(inputs, **make_inputs(args.batch))
        for r in range(args.rounds):
            for name in names[r % len(names):] + names[:r % len(names)]:  # each leads in turn
                results[name].append(run_fresh(name, inputs, args.steps, args.warmup,
                                               args.threads, args.peers, args.timeout))
                print(f"round {r + 1}/{args.rounds} {name}: {results[name][-1]}", flush=True)

    summary = {}
    for name, runs in results.items():
        ok = [run for run in runs if "error" not in run]
        if ok:
            summary[name] = {"ms": statistics.median(run["ms"] for run in ok),
                             "loss0": ok[0]["loss0"], "dtype": ok[0]["dtype"],
                             "runs": [run["ms"] for run in ok]}
        else:
            summary[name] = {"error": runs[0]["error"]}
    base = summary.get("torch", {}).get("ms")
    print(f"\nW5, batch {args.batch}, {args.threads} threads, median ms per step over "
          f"{args.rounds} fresh processes of {args.steps} steps"
          + (" (quick: nothing meaningful timed)" if args.quick else ""))
    print("| framework | ms/step | vs PyTorch | loss0 | dtype |\n|---|---|---|---|---|")
    for name, s in summary.items():
        if "error" in s:
            print(f"| {name} | unavailable: {s['error'][:120]} | | | |")
        else:
            ratio = f"{s['ms'] / base:.2f}x" if base else "-"
            print(f"| {name} | {s['ms']:.1f} | {ratio} | {s['loss0']:.5f} | {s['dtype']} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"batch": args.batch, "threads": args.threads,
                                               "results": summary}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
