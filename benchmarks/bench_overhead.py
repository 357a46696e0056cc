"""Per-op framework overhead: microseconds per small op, minigrad vs plain NumPy vs PyTorch.

On 64x64 float32 tensors the arithmetic takes a few microseconds, so what is measured is mostly
what a framework adds around it (graph bookkeeping, dispatch, allocation). Run:

    python -m benchmarks.bench_overhead [--size 64] [--quick]
"""

from __future__ import annotations

import argparse

import numpy as np

import minigrad as mg
from benchmarks.common import machine, markdown_table, median_time, threads, write_results


def run(size: int = 64, number: int = 2000, repeats: int = 7) -> dict:
    rng = np.random.default_rng(0)
    a_np = rng.standard_normal((size, size), dtype=np.float32)
    b_np = rng.standard_normal((size, size), dtype=np.float32)
    results = {}

    # -- plain NumPy: the floor
    def np_add():
        return a_np + b_np

    def np_mm_fb():
        y = a_np @ b_np
        gy = np.ones_like(y)
        return gy @ b_np.T, a_np.T @ gy

    results["numpy"] = {"add": median_time(np_add, number, repeats),
                        "matmul_fwd_bwd": median_time(np_mm_fb, number // 4, repeats)}

    # -- minigrad
    a = mg.tensor(a_np, requires_grad=True)
    b = mg.tensor(b_np, requires_grad=True)
    a_c, b_c = mg.tensor(a_np), mg.tensor(b_np)

    def mg_add():
        return a_c + b_c

    def mg_add_graph():
        return a + b

    def mg_mm_fb():
        a.grad = b.grad = None
        (a @ b).backward(mg.ones(size, size))

    results["minigrad"] = {"add": median_time(mg_add, number, repeats),
                           "add_with_graph": median_time(mg_add_graph, number, repeats),
                           "matmul_fwd_bwd": median_time(mg_mm_fb, number // 4, repeats)}

    # -- PyTorch, same thread count, when installed
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        torch.set_num_threads(threads())
        ta, tb = torch.tensor(a_np, requires_grad=True), torch.tensor(b_np, requires_grad=True)
        ta_c, tb_c = torch.tensor(a_np), torch.tensor(b_np)
        ones = torch.ones(size, size)

        def t_mm_fb():
            ta.grad = tb.grad = None
            (ta @ tb).backward(ones)

        results["torch"] = {"add": median_time(lambda: ta_c + tb_c, number, repeats),
                            "add_with_graph": median_time(lambda: ta + tb, number, repeats),
                            "matmul_fwd_bwd": median_time(t_mm_fb, number // 4, repeats),
                            "version": torch.__version__}
    return results


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args(argv)
    res = run(args.size, number=500 if args.quick else 2000, repeats=5 if args.quick else 9)
    rows = []
    for op in ("add", "add_with_graph", "matmul_fwd_bwd"):
        row = [op]
        for fw in ("numpy", "minigrad", "torch"):
            v = res.get(fw, {}).get(op if not (fw == "numpy" and op == "add_with_graph")
                                    else "add")
            row.append(f"{v * 1e6:.1f}" if v is not None else "n/a")
        m, t = res["minigrad"][op], res.get("torch", {}).get(op)
        row.append(f"{m / t:.2f}x" if t else "n/a")
        rows.append(row)
    table = markdown_table(
        [f"op ({args.size}x{args.size} float32)", "NumPy us", "minigrad us", "PyTorch us",
         "minigrad / PyTorch"], rows)
    print(table)
    write_results("overhead", table, {"size": args.size, "machine": machine(), "results": res})


if __name__ == "__main__":
    main()
