"""Run every benchmark: each fused kernel (fused vs composite vs PyTorch) and the standard
workloads W1-W6, on each available device (the CPU, and the GPU when CuPy has one) or the one
given; write markdown, JSON and a PNG chart per device under ``benchmarks/results/``.

    python -m benchmarks [--quick] [--device all|cpu|cuda] [--only lstm,gru,W2]

The benchmarks live in the checkout, not in the installed package (``pip install .`` installs
`minigrad` only): run ``python -m benchmarks`` from the checkout's root folder, or
``python PATH/TO/CHECKOUT/benchmarks`` from any folder.

Every comparison runs each side in a fresh process of its own, as users run a framework:
minigrad fused, minigrad composite and PyTorch, in interleaved rounds (``--rounds``, 3 by
default), medians over the rounds (``fresh.py`` says why). Kernels are validated against their
composite reference before they are timed, and the workloads' sides must give the same loss
(a mismatch stops the run). CPU timings follow ``OMP_NUM_THREADS`` (PyTorch gets the same
thread count).
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path

if not __package__:  # run as ``python PATH/TO/CHECKOUT/benchmarks``: import it as a package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import minigrad as mg  # noqa: E402
from benchmarks import bench_llm, workloads  # noqa: E402
from benchmarks.common import RESULTS, machine, markdown_table, threads  # noqa: E402
from benchmarks.kernel_bench import (  # noqa: E402, F401  (kernel_cases: re-exported)
    HEADERS, device_peaks, format_row, kernel_cases, run_fresh,
)

def run_kernels(device: str, quick: bool, only, rounds: int) -> list:
    """Every kernel case, each variant in fresh processes (``kernel_bench.run_fresh``)."""
    rows = []
    for name, _ in kernel_cases(device):
        if only and name not in only and name.split("_T")[0] not in only:
            continue
        try:
            result = run_fresh(name, device, quick, rounds)
        except Exception as exc:  # one failing kernel does not stop the others
            traceback.print_exc()
            result = {"kernel": name, "error": f"{type(exc).__name__}: {exc}"}
        print(_row_text(result), flush=True)
        rows.append(result)
    return rows


def _row_text(r: dict) -> str:
    if "error" in r:
        return f"{r['kernel']}: FAILED {r['error']}"
    return " | ".join(str(c) for c in format_row(r))


def chart(kernel_rows: list, workload_rows: dict, device: str, path) -> str:
    """A two-panel PNG: fused speed-up over the composite per kernel, and minigrad / PyTorch
    per workload. Returns a note when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "chart skipped: matplotlib is not installed (pip install matplotlib)"
    ok = [r for r in kernel_rows if "speedup" in r]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    ax = axes[0]
    ax.barh([r["kernel"] for r in ok], [r["speedup"] for r in ok], color="tab:blue")
    ax.axvline(1.0, color="grey", lw=1)
    ax.axvline(1.5, color="tab:green", lw=1, ls="--", label="goal 1.5x")
    ax.set_xlabel("composite time / fused time (higher is better)")
    ax.set_title(f"fused kernels ({device})")
    ax.legend(loc="lower right")
    ax = axes[1]
    names = [n for n, r in workload_rows.items() if "ratio" in r]
    if names:
        x = range(len(names))
        ax.bar([i - 0.2 for i in x], [workload_rows[n]["ratio"] for n in names], width=0.4,
               label="fused", color="tab:blue")
        ax.bar([i + 0.2 for i in x], [workload_rows[n]["composite_ratio"] for n in names],
               width=0.4, label="composite", color="tab:orange")
        ax.set_xticks(list(x))
        ax.set_xticklabels(names)
        ax.axhline(1.0, color="grey", lw=1)
        ax.set_ylabel("minigrad time / PyTorch time (lower is better)")
        ax.legend()
    ax.set_title(f"workloads ({device}, {threads()} threads)" if device == "cpu"
                 else f"workloads ({device})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"chart: {path.name}"


def devices_for(choice: str) -> list:
    """The devices to benchmark: ``all`` is the CPU and, when one is usable, the GPU.

    Example:
        >>> devices_for("cpu")
        ['cpu']
    """
    if choice != "all":
        return [str(mg.Device(choice))]
    return ["cpu"] + (["cuda:0"] if mg.cuda.is_available() else [])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="minigrad kernel and workload benchmarks")
    parser.add_argument("--device", default="all",
                        help="cpu, cuda[:N], or all (the default: the CPU and a usable GPU)")
    parser.add_argument("--quick", action="store_true", help="short timings (one GPU run)")
    parser.add_argument("--only", default="", help="comma-separated kernels and/or W1..W6")
    parser.add_argument("--rounds", type=int, default=None,
                        help="interleaved rounds of fresh processes per comparison "
                             f"(default {workloads.ROUNDS}, 1 with --quick)")
    args = parser.parse_args(argv)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    for device in devices_for(args.device):
        run_device(device, args.quick, only, args.rounds)


def run_device(device: str, quick: bool, only: set, rounds: int = None) -> None:
    """Every kernel and workload on one device; tables, JSON and chart under results/."""
    rounds = rounds or (1 if quick else workloads.ROUNDS)
    print(f"device {device}, threads {threads()}, quick {quick}, rounds {rounds} (each "
          "framework in fresh processes of its own)", flush=True)

    kernel_rows = run_kernels(device, quick, only, rounds)
    names = [w for w in ("W1", "W2", "W3", "W4", "W5") if not only or w in only]
    workload_rows = workloads.run(names, device, quick, rounds=rounds) if names else {}

    RESULTS.mkdir(parents=True, exist_ok=True)
    tables = []
    ok = [r for r in kernel_rows if "error" not in r]
    tables.append("## Fused kernels\n\n" + markdown_table(HEADERS, [format_row(r) for r in ok]))
    failed = [r for r in kernel_rows if "error" in r]
    if failed:
        tables.append("Failed: " + "; ".join(f"{r['kernel']} ({r['error']})" for r in failed))
    if workload_rows:
        tables.append("## Workloads (ms per training step)\n\n" + markdown_table(
            workloads.table_headers(device),
            [workloads.table_row(n, workload_rows[n]) for n in names]))
        phases = workloads.phase_rows(workload_rows)
        if phases:
            tables.append("## Where a step's time goes (ms per phase, fused)\n\n" +
                          markdown_table(workloads.PHASE_HEADERS, phases))
    llm = None
    if device == "cpu" and ("W6" in only or not only):  # W6: the Llama LLM (bench_llm.py)
        try:
            llm = bench_llm.run(device, quick)
            tables.append("## W6: Llama LLM (SmolLM2-135M; tiny when --quick)\n\n" +
                          markdown_table(bench_llm.HEADERS, bench_llm.rows(llm)))
        except FileNotFoundError as exc:  # SmolLM2 not installed
            tables.append(f"W6 skipped: {exc}")
    png = RESULTS / f"benchmarks_{device.split(':')[0]}.png"
    tables.append(chart(kernel_rows, workload_rows, device, png))
    info = machine()
    peaks = device_peaks(device)
    header = (f"# minigrad benchmarks ({device})\n\nmachine: {info}" +
              (f"\n\ndevice: {peaks}" if peaks else ""))
    text = header + "\n\n" + "\n\n".join(tables) + "\n"
    stem = f"benchmarks_{device.split(':')[0]}"
    (RESULTS / f"{stem}.md").write_text(text)
    (RESULTS / f"{stem}.json").write_text(json.dumps(
        {"machine": info, "device": device, "peaks": peaks, "quick": quick,
         "kernels": kernel_rows, "workloads": workload_rows, "llm": llm}, indent=2,
        default=str) + "\n")
    print(text)


if __name__ == "__main__":
    main()
