"""What ``minigrad.allocator`` buys: the workloads' fused steps with glibc's malloc tuned (the
default since ``import minigrad`` tunes it) and untuned (``MINIGRAD_MALLOC_TUNING=0``), each in
fresh processes of its own, interleaved rounds; ms per step, page faults per step, peak RSS.

It also reproduces the measurement that found the mechanism: minigrad's untuned step timed in
a process where PyTorch's own step of the same workload ran first (``after-torch``).

    OMP_NUM_THREADS=2 python -m benchmarks.bench_allocator [--only W2,W4] [--rounds 3] [--quick]

Writes benchmarks/results/allocator.md and .json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile

import numpy as np

from benchmarks import fresh
from benchmarks.common import machine, markdown_table, threads, write_results
from benchmarks.workload_side import _build, run_side

VARIANTS = {"tuned": {"MINIGRAD_MALLOC_TUNING": "1"},
            "untuned": {"MINIGRAD_MALLOC_TUNING": "0"},
            "untuned after torch": {"MINIGRAD_MALLOC_TUNING": "0"}}


def after_torch(name: str, weights: str, steps: int, repeats: int, threads: int) -> dict:
    """PyTorch's step of ``name`` five times, then minigrad's fused step timed, in this
    process (untuned: the variable is set by the caller)."""
    run_side(name, "torch", "cpu", weights, 1, 5, threads, phases=False)
    return run_side(name, "fused", "cpu", weights, steps, repeats, threads, phases=False)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="W1,W2,W3,W4,W5")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    import minigrad as mg

    try:
        import torch  # noqa: F401
        variants = list(VARIANTS)
    except ImportError:
        variants = ["tuned", "untuned"]
    rows, data = [], {}
    for name in [n.strip() for n in args.only.split(",")]:
        mg.manual_seed(0)
        model = _build(mg.nn, name)
        weights = os.path.join(tempfile.mkdtemp(prefix="alloc_"), "w.npz")
        np.savez(weights, **{k: v.numpy() for k, v in model.state_dict().items()})
        steps, repeats = (1, 3) if args.quick else ((20, 15) if name == "W1" else (1, 15))
        runs = {v: [] for v in variants}
        for r in range(1 if args.quick else args.rounds):
            for variant in fresh.rotated(variants, r):
                kwargs = {"name": name, "weights": weights, "steps": steps, "repeats": repeats,
                          "threads": threads()}
                if variant == "untuned after torch":
                    out = fresh.run("benchmarks.bench_allocator:after_torch", kwargs,
                                    env=VARIANTS[variant])
                else:
                    out = fresh.run("benchmarks.workload_side:run_side",
                                    {**kwargs, "side": "fused", "device": "cpu",
                                     "phases": False}, env=VARIANTS[variant])
                runs[variant].append(out)
        data[name] = {v: {"ms": statistics.median(o["ms_median"] for o in outs),
                          "faults": statistics.median(o["page_faults_per_step"] for o in outs),
                          "peak_rss_mib": statistics.median(o["peak_rss_mib"] for o in outs),
                          "rounds_ms": [o["ms_median"] for o in outs]}
                      for v, outs in runs.items()}
        base = data[name]["untuned"]["ms"]
        for v in variants:
            d = data[name][v]
            rows.append([name, v, f"{d['ms']:.2f}", f"{base / d['ms']:.2f}x",
                         f"{d['faults']:.0f}", f"{d['peak_rss_mib']:.0f}"])
        print(markdown_table(HEADERS, rows[-len(variants):]), flush=True)
    table = markdown_table(HEADERS, rows)
    print(table)
    write_results("allocator", table, {"machine": machine(), "results": data})


HEADERS = ["workload", "malloc", "fused ms/step", "speed-up over untuned", "page faults/step",
           "peak RSS MiB"]

if __name__ == "__main__":
    main()
