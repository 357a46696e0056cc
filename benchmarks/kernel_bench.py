"""What every ``bench_<kernel>.py`` shares: a :class:`Case` (one kernel at one size) and
:func:`run_case`, which validates the fused kernel against the composite reference, then times
fused, composite and PyTorch (when installed) and, on a GPU, reports the achieved memory
bandwidth or FLOP rate against the device's peak.

A case's ``step`` runs forward and backward with whatever ``mg.use_fused`` says; ``values``
returns the outputs and gradients (NumPy arrays) used for the validation.
"""

from __future__ import annotations

import importlib
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional

import numpy as np

import minigrad as mg
from benchmarks.common import threads


@dataclass
class Case:
    name: str
    shape: str
    step: Callable[[], object]
    values: Callable[[], List[np.ndarray]]
    torch_step: Optional[Callable[[], object]] = None
    rtol: float = 1e-4
    atol: float = 1e-5
    flops: float = 0.0  # per step, for FLOP/s on a GPU
    bytes: float = 0.0  # per step, for GB/s on a GPU (the minimum traffic)
    notes: dict = field(default_factory=dict)
    torch_device: Optional[str] = "cpu"  # where torch_step runs (see torch_for)
    # more PyTorch variants timed in the same rounds, {label: step}: reported in the last column
    # with the composite's time over theirs (Adam: PyTorch's compiled one-pass fused=True)
    torch_variants: dict = field(default_factory=dict)


def cpu(t) -> np.ndarray:
    return mg.backend.to_device(t.detach().data, mg.backend.CPU)


def sync_for(device: str) -> Callable[[], None]:
    if device.startswith("cuda"):
        return lambda: mg.cuda.synchronize(device)
    return lambda: None


def interleaved_ms(variants: dict, budget_s: float, min_rounds: int = 5,
                   max_rounds: int = 100, device: str = "cpu") -> dict:
    """Median milliseconds per call of each variant, timed in interleaved rounds.

    ``variants`` maps a name to ``(fn, sync, fused)``: the call, how to wait for the device,
    and the ``mg.use_fused`` setting to run it under. Each round times every variant once, in
    turn, so that load from other processes on a shared machine falls on all of them alike
    (timing one variant after the other would hand a burst of load to one of them). Before
    its timed call a variant waits for the previous one's threads to go idle (``settle``) and
    then runs once untimed, so that it is timed in its own steady state: its threads awake,
    its data in cache, as in a training loop.
    """
    for fn, sync, fused in variants.values():  # warm up (and compile, on a GPU)
        with mg.use_fused(fused):
            fn()
            fn()
        sync()
    runs: dict = {name: [] for name in variants}
    names = list(variants)
    start = time.perf_counter()
    rounds = 0
    while rounds < max_rounds and (rounds < min_rounds or time.perf_counter() - start < budget_s):
        for name in rotated(names, rounds):
            fn, sync, fused = variants[name]
            settle(device)
            with mg.use_fused(fused):
                fn()  # untimed: this variant's own threads and caches, as in a training loop
                sync()
                t0 = time.perf_counter()
                fn()
                sync()
                runs[name].append((time.perf_counter() - t0) * 1e3)
        rounds += 1
    return {name: statistics.median(r) for name, r in runs.items()}


def rotated(names: list, k: int) -> list:
    """``names`` starting at position ``k``: each variant in turn runs right after each other
    one (a variant that leaves busy threads behind, PyTorch's OpenMP pool, must not always slow
    the same one down)."""
    k %= len(names)
    return names[k:] + names[:k]


def settle(device: str = "cpu") -> None:
    """A pause before a timed call, so that threads still spinning after the previous variant's
    work go idle first. On the CPU that takes long: NumPy's OpenBLAS keeps a worker spinning on
    a core for about 0.1 s after each GEMM (measured here: one core busy for 100-130 ms), and
    PyTorch timed inside that window ran W1 at 6.3 ms a step instead of 3.1 (a 5 ms pause made
    minigrad look twice as fast as PyTorch). PyTorch's OpenMP threads spin for well under 5 ms.
    """
    time.sleep(CPU_SETTLE_S if device == "cpu" else 0.005)


CPU_SETTLE_S = 0.2


def validate(case: Case) -> float:
    """Largest |fused - composite| relative to the tolerance; raises when out of tolerance."""
    mg.manual_seed(0)
    with mg.use_fused(True):
        fused = case.values()
    mg.manual_seed(0)
    with mg.use_fused(False):
        ref = case.values()
    worst = 0.0
    for a, b in zip(fused, ref):
        np.testing.assert_allclose(a, b, rtol=case.rtol, atol=case.atol,
                                   err_msg=f"{case.name}: fused and composite disagree")
        worst = max(worst, float(np.max(np.abs(a - b))) if a.size else 0.0)
    return worst


def device_peaks(device: str) -> dict:
    """Theoretical peak memory bandwidth (GB/s) and FP32 rate (TFLOP/s) of a CUDA device, from
    its attributes: 2 * memory clock * bus width, and SMs * clock * 128 FP32 lanes * 2 (Hopper
    and Ampere have 128 FP32 lanes per SM). Empty when unknown (or on the CPU)."""
    if not device.startswith("cuda"):
        return {}
    try:
        cp = mg.backend._import_cupy()
        idx = mg.Device(device).index
        attrs = cp.cuda.Device(idx).attributes
        name = cp.cuda.runtime.getDeviceProperties(idx)["name"]
        name = name.decode() if isinstance(name, bytes) else str(name)
        peaks = {"name": name}
        if attrs.get("MemoryClockRate") and attrs.get("GlobalMemoryBusWidth"):
            peaks["peak_gb_s"] = (2 * attrs["MemoryClockRate"] * 1e3 *
                                  attrs["GlobalMemoryBusWidth"] / 8 / 1e9)
        if attrs.get("ClockRate") and attrs.get("MultiProcessorCount"):
            peaks["peak_fp32_tflop_s"] = (attrs["MultiProcessorCount"] * attrs["ClockRate"] *
                                          1e3 * 128 * 2 / 1e12)
        return peaks
    except Exception as exc:  # a missing attribute must not stop the benchmarks
        return {"error": f"{type(exc).__name__}: {exc}"}


def run_case(case: Case, device: str, quick: bool) -> dict:
    """Validate, then time fused, composite and PyTorch in this process; one result row as a
    dict. (``python -m benchmarks`` times each variant in a fresh process instead:
    :func:`run_fresh`.)"""
    err = validate(case)
    times = interleaved_ms(_variants(case, device, "all"), 1.0 if quick else 6.0,
                           device=device)
    return finish_row(case.name, case.shape, device, times, err, case.notes, case.torch_device,
                      case.flops, case.bytes)


VARIANTS = ("fused", "composite", "torch")


def _variants(case: Case, device: str, which: str) -> dict:
    """The timed calls of a case, ``name -> (fn, sync, fused)``: ``which`` is one of
    :data:`VARIANTS` (PyTorch with its extra variants) or ``"all"``."""
    sync = sync_for(device)
    out = {}
    if which in ("fused", "all"):
        out["fused_ms"] = (case.step, sync, True)
    if which in ("composite", "all"):
        out["composite_ms"] = (case.step, sync, False)
    if which in ("torch", "all") and case.torch_step is not None:
        torch_sync = lambda: None  # noqa: E731
        if (case.torch_device or "cpu").startswith("cuda"):
            torch_sync = torch_module().cuda.synchronize
        out["torch_ms"] = (case.torch_step, torch_sync, True)
        for label, step in case.torch_variants.items():
            out[f"torch {label}"] = (step, torch_sync, True)
    return out


def finish_row(kernel, shape, device, times, max_abs_diff, notes, torch_device, flops, nbytes):
    """A result row from the variants' times: ratios, and on a GPU the achieved bandwidth,
    FLOP rate and share of the roofline."""
    result = {"kernel": kernel, "shape": shape, "device": device, "max_abs_diff": max_abs_diff,
              **notes}
    times = dict(times)
    extra = {name.removeprefix("torch "): times.pop(name) for name in list(times)
             if name.startswith("torch ")}
    if extra:
        result["torch_variants_ms"] = extra
    if "torch_ms" in times:
        result["torch_device"] = torch_device
    result.update(times)
    result["speedup"] = result["composite_ms"] / result["fused_ms"]
    if "torch_ms" in result:
        result["vs_torch"] = result["fused_ms"] / result["torch_ms"]
    if device.startswith("cuda"):
        peaks = device_peaks(device)
        seconds = result["fused_ms"] / 1e3
        if nbytes:
            result["gb_s"] = nbytes / seconds / 1e9
            if "peak_gb_s" in peaks:
                result["pct_peak_bw"] = 100 * result["gb_s"] / peaks["peak_gb_s"]
        if flops:
            result["tflop_s"] = flops / seconds / 1e12
            if "peak_fp32_tflop_s" in peaks:
                result["pct_peak_fp32"] = 100 * result["tflop_s"] / peaks["peak_fp32_tflop_s"]
        roofline = roofline_ms(Case(kernel, shape, None, None, flops=flops, bytes=nbytes), peaks)
        if roofline:
            result["roofline_ms"] = roofline
            result["pct_roofline"] = 100 * roofline / result["fused_ms"]
    return result


def run_variant(kernel: str, variant: str, device: str, quick: bool) -> dict:
    """Time one variant of one kernel case in this process (meant for a fresh one: see
    :func:`run_fresh`); the fused variant's process validates it against the composite first.
    """
    builders = dict(kernel_cases(device))
    if kernel not in builders:
        raise ValueError(f"unknown kernel case {kernel!r}; known: {sorted(builders)}")
    case = builders[kernel](device, quick)
    err = validate(case) if variant == "fused" else None
    variants = _variants(case, device, variant)  # none: no PyTorch for this device
    # 2 s per process: the rounds of fresh processes (run_fresh) give the spread
    times = interleaved_ms(variants, 1.0 if quick else 2.0, device=device) if variants else {}
    return {"times": times, "max_abs_diff": err, "shape": case.shape, "notes": case.notes,
            "torch_device": case.torch_device, "flops": case.flops, "bytes": case.bytes}


def run_fresh(kernel: str, device: str, quick: bool, rounds: int) -> dict:
    """One kernel case with each variant (fused, composite, PyTorch) timed in fresh processes
    of its own, in ``rounds`` interleaved rounds; medians over rounds; one result row."""
    from benchmarks import fresh

    variants = ["fused", "composite"] + (["torch"] if torch_module() is not None else [])
    per_round = {v: [] for v in variants}
    for r in range(rounds):
        for variant in fresh.rotated(variants, r):
            env = {"MINIGRAD_MALLOC_TUNING": "0"} if variant == "torch" else {}
            per_round[variant].append(fresh.run(
                "benchmarks.kernel_bench:run_variant",
                {"kernel": kernel, "variant": variant, "device": device, "quick": quick},
                env=env))
    times = {}
    for answers in per_round.values():
        for label in answers[0]["times"]:  # (PyTorch's may be empty: no comparison)
            times[label] = statistics.median(a["times"][label] for a in answers)
    first = per_round["fused"][0]
    return finish_row(kernel, first["shape"], device, times, first["max_abs_diff"],
                      first["notes"], first["torch_device"], first["flops"], first["bytes"])


KERNELS = ["softmax_cross_entropy", "adam", "dropout", "layer_norm", "gelu", "attention",
           "lstm", "gru", "conv", "maxpool", "batch_norm"]


def kernel_cases(device: str):
    """(case name, case builder) for every kernel benchmark to run on ``device``."""
    for name in KERNELS:
        module = importlib.import_module(f"benchmarks.bench_{name}")
        yield name, module.case
        if name == "adam":
            yield "adam_many", module.many_case
        if name == "conv":
            yield "conv_first", module.first_case
            yield "conv_transpose", module.transpose_case
        if name == "attention":
            yield "attention_T1024", module.mid_case
            if device.startswith("cuda"):
                yield "attention_T4096", module.long_case
                yield "attention_T4096_fwd", module.long_forward_case


def torch_module():
    """PyTorch set to minigrad's thread count, or None when it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads())
    return torch


def roofline_ms(case: Case, peaks: dict) -> float:
    """The least time a kernel can take on a device: its minimum memory traffic at peak
    bandwidth or its FLOPs at the FP32 peak, whichever is longer (0 when unknown).

    Example:
        >>> c = Case("k", "", None, None, flops=2e12, bytes=1e9)
        >>> roofline_ms(c, {"peak_gb_s": 1000.0, "peak_fp32_tflop_s": 50.0})  # compute-bound
        40.0
    """
    times = []
    if case.bytes and "peak_gb_s" in peaks:
        times.append(case.bytes / (peaks["peak_gb_s"] * 1e9))
    if case.flops and "peak_fp32_tflop_s" in peaks:
        times.append(case.flops / (peaks["peak_fp32_tflop_s"] * 1e12))
    return 1e3 * max(times) if times else 0.0


def grad_case(name: str, shape: str, fn: Callable, torch_fn: Callable, arrays: list,
              gy_np: np.ndarray, device: str, **case_kw) -> Case:
    """The usual kernel case: forward + backward of ``fn(*inputs)`` against a fixed upstream
    gradient, every input differentiated, beside ``torch_fn`` on the same arrays.

    Args:
        fn: minigrad's function of the input tensors (fused or composite per ``use_fused``).
        torch_fn: the same maths in PyTorch, ``torch_fn(torch.nn.functional, *inputs)``.
        arrays: the inputs as NumPy arrays, each made a tensor that requires grad.
        gy_np: the upstream gradient, shaped like the output.
        case_kw: the rest of :class:`Case` (tolerances, ``flops``, ``bytes``).
    """
    inputs = [mg.tensor(a, device=device, requires_grad=True) for a in arrays]
    gy = mg.tensor(gy_np, device=device)

    def run():
        y = fn(*inputs)
        return y, mg.grad(y, inputs, gy)

    def values():
        y, gs = run()
        return [cpu(y)] + [cpu(g) for g in gs]

    torch, tdev = torch_for(device)
    torch_step = None
    if torch is not None:
        t_inputs = [torch.tensor(a, device=tdev, requires_grad=True) for a in arrays]
        tgy = torch.tensor(gy_np, device=tdev)

        def torch_step():
            torch.autograd.grad(torch_fn(torch.nn.functional, *t_inputs), t_inputs, tgy)

    return Case(name, shape, run, values, torch_step, torch_device=tdev, **case_kw)


def torch_for(device: str):
    """``(torch, torch_device)`` for a comparison with minigrad on ``device``: PyTorch on the
    CPU for a CPU run, on CUDA for a GPU run when PyTorch has CUDA, else ``(None, None)`` (no
    comparison: PyTorch on the CPU against minigrad on a GPU would be a meaningless ratio)."""
    torch = torch_module()
    if torch is None:
        return None, None
    if not device.startswith("cuda"):
        return torch, "cpu"
    try:
        has_cuda = torch.cuda.is_available()
    except Exception:  # a broken CUDA install: no comparison rather than no benchmark
        has_cuda = False
    return (torch, "cuda") if has_cuda else (None, None)


def format_row(r: dict) -> list:
    def ms(key):
        return f"{r[key]:.3f}" if key in r else "n/a"

    extra = []
    if "gb_s" in r:
        pct = f" ({r['pct_peak_bw']:.0f}% of peak)" if "pct_peak_bw" in r else ""
        extra.append(f"{r['gb_s']:.0f} GB/s{pct}")
    if "tflop_s" in r:
        pct = f" ({r['pct_peak_fp32']:.0f}% of FP32 peak)" if "pct_peak_fp32" in r else ""
        extra.append(f"{r['tflop_s']:.1f} TFLOP/s{pct}")
    if "pct_roofline" in r:
        extra.append(f"{r['pct_roofline']:.0f}% of roofline")
    for label, t in r.get("torch_variants_ms", {}).items():
        extra.append(f"PyTorch {label}: {t:.3f} ms (composite / it: "
                     f"{r['composite_ms'] / t:.2f}x)")
    return [r["kernel"], r["shape"], ms("fused_ms"), ms("composite_ms"), f"{r['speedup']:.2f}x",
            ms("torch_ms"), f"{r['vs_torch']:.2f}x" if "vs_torch" in r else "n/a",
            "; ".join(extra) or "-"]


HEADERS = ["kernel", "shape", "fused ms", "composite ms", "composite / fused", "PyTorch ms",
           "fused / PyTorch", "device throughput"]


def main_for(module_case, argv=None) -> None:
    """The ``__main__`` of a bench_<kernel>.py: its case with each variant in fresh processes
    (:func:`run_fresh`), one table row."""
    import argparse

    from benchmarks.common import markdown_table

    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    # (run as ``python -m benchmarks.bench_x``, the case is __main__'s copy of the function)
    names = [name for name, build in kernel_cases(args.device)
             if build.__name__ == module_case.__name__
             and build.__code__.co_filename == module_case.__code__.co_filename]
    if not names:
        raise ValueError(f"{module_case.__module__}.{module_case.__name__} is not a listed "
                         "kernel case (kernel_bench.KERNELS)")
    r = run_fresh(names[0], args.device, args.quick, 1 if args.quick else args.rounds)
    print(markdown_table(HEADERS, [format_row(r)]))
