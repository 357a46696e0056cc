"""Timing helpers shared by the benchmarks: warm-up, repeats, medians, tables, JSON."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Callable, Dict, List

RESULTS = Path(__file__).resolve().parent / "results"


def median_time(fn: Callable[[], object], number: int, repeats: int = 7, warmup: int = 3,
                sync: Callable[[], None] = lambda: None) -> float:
    """Median seconds per call of ``fn`` over ``repeats`` runs of ``number`` calls each."""
    for _ in range(warmup):
        fn()
    sync()
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        sync()
        runs.append((time.perf_counter() - t0) / number)
    return statistics.median(runs)


def threads() -> int:
    """The thread count BLAS libraries are told to use (OMP_NUM_THREADS, else the cores)."""
    return int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1))


def machine() -> Dict[str, object]:
    import numpy as np

    return {"python": platform.python_version(), "numpy": np.__version__,
            "machine": platform.machine(), "cpus": os.cpu_count(), "threads": threads()}


def markdown_table(headers: List[str], rows: List[List[object]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(out)


def write_results(name: str, table: str, data: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.md").write_text(table + "\n")
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
