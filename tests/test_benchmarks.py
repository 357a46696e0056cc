"""The benchmark harness (benchmarks/): every kernel case validates (fused vs composite), the
PyTorch comparison runs on the device minigrad runs on, and a result row is formatted.

Nothing here asserts a speed (timings are for ``python -m benchmarks``); these tests check
that the harness computes and reports what it claims to.
"""

import json
import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from benchmarks import __main__ as bench_main
from benchmarks import kernel_bench, workloads
from benchmarks.kernel_bench import Case, format_row, run_case, torch_for, validate
from minigrad import fused


@pytest.mark.parametrize("name,build", list(bench_main.kernel_cases("cpu")),
                         ids=lambda v: v if isinstance(v, str) else "")
def test_every_kernel_case_validates_on_the_cpu(name, build):
    """The fused kernel agrees with its composite reference at the benchmark's sizes (the
    check ``python -m benchmarks`` runs before timing)."""
    case = build("cpu", True)
    assert case.name == name
    assert validate(case) >= 0.0
    if case.torch_step is not None:
        assert case.torch_device == "cpu"
        case.torch_step()


def _fake_torch(has_cuda):
    def is_available():
        if has_cuda is None:
            raise RuntimeError("broken CUDA install")
        return has_cuda

    return types.SimpleNamespace(cuda=types.SimpleNamespace(is_available=is_available,
                                                            synchronize=lambda: None))


@pytest.mark.parametrize("device,has_cuda,expected", [
    ("cpu", False, "cpu"), ("cpu", True, "cpu"), ("cuda", True, "cuda"),
    ("cuda:0", True, "cuda"), ("cuda", False, None), ("cuda", None, None)])
def test_torch_runs_where_minigrad_runs(monkeypatch, device, has_cuda, expected):
    """A GPU run compares with PyTorch on CUDA, or with nothing: never with PyTorch's CPU."""
    fake = _fake_torch(has_cuda)
    monkeypatch.setattr(kernel_bench, "torch_module", lambda: fake)
    torch, tdev = torch_for(device)
    assert tdev == expected and (torch is fake) == (expected is not None)
    monkeypatch.setattr(kernel_bench, "torch_module", lambda: None)
    assert torch_for(device) == (None, None)


def test_run_case_reports_ratios_and_formats_a_row(monkeypatch):
    calls = {"fused": 0, "composite": 0, "torch": 0}

    def step():
        calls["fused" if fused._Switch.enabled else "composite"] += 1

    case = Case("toy", "(3,)", step, lambda: [np.ones(3)], lambda: calls.__setitem__(
        "torch", calls["torch"] + 1), bytes=12.0)
    r = run_case(case, "cpu", quick=True)
    assert calls["fused"] >= 5 and calls["composite"] >= 5 and calls["torch"] >= 5
    assert r["speedup"] == pytest.approx(r["composite_ms"] / r["fused_ms"])
    assert r["vs_torch"] == pytest.approx(r["fused_ms"] / r["torch_ms"])
    assert r["torch_device"] == "cpu" and "gb_s" not in r  # bandwidth only on a GPU
    row = format_row(r)
    assert row[0] == "toy" and row[4].endswith("x") and row[6].endswith("x") and row[7] == "-"


def test_settle_outlasts_the_blas_threads_spin_on_the_cpu(monkeypatch):
    """Before each timed call on the CPU the harness waits out OpenBLAS's spinning worker
    (about 0.1 s after a GEMM); on a GPU a short pause is enough."""
    slept = []
    monkeypatch.setattr(kernel_bench.time, "sleep", slept.append)
    kernel_bench.settle("cpu")
    kernel_bench.settle("cuda:0")
    assert slept[0] >= 0.15 and slept[0] == kernel_bench.CPU_SETTLE_S
    assert slept[1] <= 0.01


def test_default_devices_are_the_cpu_and_a_usable_gpu(monkeypatch):
    """``python -m benchmarks`` without --device runs on every available device."""
    monkeypatch.setattr(bench_main.mg.cuda, "is_available", lambda: False)
    assert bench_main.devices_for("all") == ["cpu"]
    monkeypatch.setattr(bench_main.mg.cuda, "is_available", lambda: True)
    assert bench_main.devices_for("all") == ["cpu", "cuda:0"]
    assert bench_main.devices_for("cuda") == ["cuda:0"]
    seen = []
    monkeypatch.setattr(bench_main, "run_device", lambda d, q, o, r: seen.append((d, q, o, r)))
    bench_main.main(["--quick", "--only", "gelu"])
    assert seen == [("cpu", True, {"gelu"}, None), ("cuda:0", True, {"gelu"}, None)]


def test_validate_names_the_kernel_on_a_mismatch():
    values = iter([[np.ones(3)], [np.zeros(3)]])
    case = Case("broken", "(3,)", lambda: None, lambda: next(values))
    with pytest.raises(AssertionError, match="broken: fused and composite disagree"):
        validate(case)


def test_workload_w1_runs_and_reports():
    """W1 on the CPU in quick mode: both minigrad paths timed, PyTorch beside them when
    installed, ratios computed from the medians."""
    r = workloads.run(["W1"], "cpu", quick=True)["W1"]
    assert r["minigrad_ms"] > 0 and r["composite_ms"] > 0
    assert r["fused_speedup"] == pytest.approx(r["composite_ms"] / r["minigrad_ms"])
    if "torch_ms" in r:
        assert r["ratio"] == pytest.approx(r["minigrad_ms"] / r["torch_ms"])
        assert r["torch_device"] == "cpu"
    row = workloads.table_row("W1", r)
    assert row[0] == "W1" and len(row) == len(workloads.table_headers("cpu"))
    # the per-phase breakdown: forward (with the loss), backward, optimizer, for each framework
    frameworks = ["minigrad"] + (["torch"] if "torch_ms" in r else [])
    assert list(r["phases"]) == frameworks
    for times in r["phases"].values():
        assert list(times) == ["forward", "backward", "optimizer"]
        assert all(ms > 0 for ms in times.values())
    rows = workloads.phase_rows({"W1": r})
    assert [row[1] for row in rows] == ["forward", "backward", "optimizer"]
    assert all(len(row) == len(workloads.PHASE_HEADERS) for row in rows)


def test_phase_rows_without_pytorch():
    r = {"phases": {"minigrad": {"forward": 1.0, "backward": 2.0, "optimizer": 0.5}}}
    assert workloads.phase_rows({"W2": r}) == [
        ["W2", "forward", "1.00", "n/a", "n/a"], ["W2", "backward", "2.00", "n/a", "n/a"],
        ["W2", "optimizer", "0.50", "n/a", "n/a"]]


def test_phases_make_up_a_step():
    """The phases a step is timed by are the step: running them in order is one training
    step (the same loss and parameters as calling the step)."""
    import minigrad as mg

    _, step_a = workloads.minigrad_step("W1", "cpu")
    _, step_b = workloads.minigrad_step("W1", "cpu")
    before = [p.data.copy() for p in step_a.optimizer.param_groups[0]["params"]]
    mg.manual_seed(1)
    step_a()
    mg.manual_seed(1)
    for phase in step_b.phases.values():
        phase()
    params_a = [p.data for p in step_a.optimizer.param_groups[0]["params"]]
    params_b = [p.data for p in step_b.optimizer.param_groups[0]["params"]]
    for a, b, old in zip(params_a, params_b, before):
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, old)  # the update ran


def test_gpu_rows_report_bandwidth_flops_and_roofline(monkeypatch):
    """On a GPU a row gets GB/s, TFLOP/s and the share of the roofline (the peaks come from
    the device; faked here)."""
    peaks = {"peak_gb_s": 4800.0, "peak_fp32_tflop_s": 60.0}
    monkeypatch.setattr(kernel_bench, "device_peaks", lambda device: peaks)
    monkeypatch.setattr(kernel_bench, "sync_for", lambda device: lambda: None)
    case = Case("toy", "(3,)", lambda: None, lambda: [np.ones(3)], bytes=4.8e9, flops=1e9)
    r = run_case(case, "cuda", quick=True)
    seconds = r["fused_ms"] / 1e3
    assert r["gb_s"] == pytest.approx(4.8 / seconds)
    assert r["tflop_s"] == pytest.approx(1e-3 / seconds)
    assert r["roofline_ms"] == pytest.approx(1.0)  # memory-bound: 4.8 GB at 4.8 TB/s is 1 ms
    assert r["pct_roofline"] == pytest.approx(100 * 1.0 / r["fused_ms"])
    assert "% of roofline" in format_row(r)[7] and "GB/s" in format_row(r)[7]
    assert kernel_bench.roofline_ms(case, {}) == 0.0  # unknown peaks: no roofline


def test_gpu_check_script_fits_its_8_minutes():
    """benchmarks/gpu_check.sh is valid bash, and its steps' time limits (plus the grace
    before SIGKILL) add up to at most 8 minutes, the budget a GPU run has."""
    import re
    import shutil
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_check.sh"
    text = script.read_text()
    if shutil.which("bash"):
        subprocess.run(["bash", "-n", str(script)], check=True)
    limits = re.findall(r"^\s*(?:if\s+|&&\s+)?timeout((?:\s+-[sk]\s+\S+)*)\s+(\d+)\s", text,
                        flags=re.M)
    assert len(limits) == 8, limits
    total = 0
    for options, seconds in limits:
        kill_after = re.search(r"-k\s+(\d+)", options)
        total += int(seconds) + (int(kill_after.group(1)) if kill_after else 0)
    assert total <= 480, total
    assert "-s INT" in text  # pytest steps are interrupted (summary kept), not killed


@pytest.mark.gpu
def test_the_gpu_benchmark_path_runs_end_to_end(tmp_path, monkeypatch):
    """``python -m benchmarks --device cuda`` as gpu_check.sh runs it (one kernel and W1,
    quick): validation, device synchronisation, throughput columns and the files. On the fake
    CuPy (CI) the timings mean nothing, but a crash here would cost a rare GPU run."""
    import minigrad as mg

    if not mg.cuda.is_available():
        pytest.skip("needs CuPy and an NVIDIA GPU (or MINIGRAD_FAKE_CUDA=1)")
    monkeypatch.setattr(bench_main, "RESULTS", tmp_path)
    monkeypatch.setattr(workloads, "QUICK_TIMING", (1, 1))  # W1 is slow in the simulator
    if getattr(sys.modules.get("cupy"), "__fake__", False):  # the fresh processes get it too
        tests = str(Path(__file__).resolve().parent)
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")]))
        monkeypatch.setenv("BENCH_FRESH_PRELOAD", "fake_cuda.autoinstall")
    bench_main.main(["--quick", "--device", "cuda", "--only", "adam_many,W1"])
    text = (tmp_path / "benchmarks_cuda.md").read_text()
    data = json.loads((tmp_path / "benchmarks_cuda.json").read_text())
    assert data["device"] == "cuda:0" and "GB/s" in text
    row = data["kernels"][0]
    assert row["kernel"] == "adam_many" and row["gb_s"] > 0 and "error" not in row
    assert data["workloads"]["W1"]["minigrad_ms"] > 0


@pytest.mark.parametrize("fused_on", [True, False], ids=["fused", "composite"])
@pytest.mark.parametrize("name", ["W1", "W2", "W3", "W4"])
def test_workload_steps_stay_float32(monkeypatch, name, fused_on):
    """No accidental float64 in a float32 training step: every floating tensor a step of each
    standard workload makes (forward, the fused kernels' outputs, every gradient), the
    parameters and the Adam state stay float32, on the fused and on the composite path."""
    import minigrad as mg

    model, step = workloads.minigrad_step(name, "cpu")
    seen = set()
    real_make = mg.Tensor._make

    def spy(data, requires_grad=False):
        if data.dtype.kind == "f":
            seen.add(data.dtype)
        return real_make(data, requires_grad)

    monkeypatch.setattr(mg.Tensor, "_make", spy)
    with mg.use_fused(fused_on):
        loss = step()
        step()  # the second step: Adam's state exists, the fused flat buffers are reused
    assert seen == {np.dtype(np.float32)}, seen
    assert loss.dtype == mg.float32
    for p in model.parameters():
        assert p.dtype == mg.float32 and p.grad.dtype == mg.float32
    opt_state = [v for s in step.optimizer.state.values() for v in s.values()
                 if hasattr(v, "dtype") and v.dtype.kind == "f"]
    assert opt_state and all(v.dtype == np.float32 for v in opt_state)


# ---------------------------------------------------------------------------- fresh processes


def test_fresh_run_returns_the_childs_value_in_its_own_process():
    import os

    from benchmarks import fresh

    assert fresh.run("os:getpid", {}) != os.getpid()
    assert fresh.run("os:getenv", {"key": "MG_FRESH_TEST"}, env={"MG_FRESH_TEST": "7"}) == "7"
    os.environ["MG_FRESH_TEST_GONE"] = "1"
    try:
        assert fresh.run("os:getenv", {"key": "MG_FRESH_TEST_GONE"},
                         env={"MG_FRESH_TEST_GONE": None}) is None
    finally:
        del os.environ["MG_FRESH_TEST_GONE"]


def test_fresh_run_raises_the_childs_error_with_its_traceback():
    from benchmarks import fresh

    with pytest.raises(fresh.FreshProcessError, match="JSONDecodeError"):
        fresh.run("json:loads", {"s": "{"})
    assert fresh.rotated(["a", "b", "c"], 4) == ["b", "c", "a"]


def test_each_workload_side_runs_alone_in_its_process(tmp_path):
    """The PyTorch side never imports minigrad (whose import tunes the C allocator) and the
    minigrad sides never import torch; all sides report the same evaluation loss."""
    from benchmarks import fresh, workload_side

    import minigrad as mg

    mg.manual_seed(0)
    model = workload_side._build(mg.nn, "W1")
    weights = str(tmp_path / "w.npz")
    np.savez(weights, **{k: v.numpy() for k, v in model.state_dict().items()})
    sides = ["fused", "composite"] + (["torch"] if workloads._torch_device("cpu") else [])
    out = {side: fresh.run("benchmarks.workload_side:run_side", {
        "name": "W1", "side": side, "device": "cpu", "weights": weights, "steps": 1,
        "repeats": 2, "threads": 1, "phases": False}, env=workloads.SIDE_ENV[side])
        for side in sides}
    assert out["fused"]["imported"] == ["minigrad"] == out["composite"]["imported"]
    if "torch" in out:
        assert out["torch"]["imported"] == ["torch"]
    losses = [r["eval_loss"] for r in out.values()]
    assert max(losses) - min(losses) < 1e-4
    assert all(len(r["ms"]) == 2 and r["peak_step_mib"] > 0 for r in out.values())


def test_sides_that_disagree_stop_the_run():
    def side(loss):
        return [{"eval_loss": loss, "ms_median": 1.0, "phases": {"forward": 1.0},
                 "peak_step_mib": 1.0, "peak_rss_mib": 1.0, "page_faults_per_step": 0.0}]

    with pytest.raises(AssertionError, match="do not compute the same thing"):
        workloads._summary("W2", {"fused": side(2.30), "composite": side(2.30),
                                  "torch": side(2.50)}, "cpu")
    entry = workloads._summary("W2", {"fused": side(2.3), "composite": side(2.3)}, None)
    assert entry["fused_speedup"] == 1.0 and "torch_ms" not in entry


def test_a_kernel_case_runs_each_variant_in_a_fresh_process():
    r = kernel_bench.run_fresh("dropout", "cpu", quick=True, rounds=1)
    assert r["fused_ms"] > 0 and r["composite_ms"] > 0
    assert r["speedup"] == pytest.approx(r["composite_ms"] / r["fused_ms"])
    assert r["max_abs_diff"] is not None  # the fused variant's process validated it


def test_workloads_time_only_the_sides_asked_for():
    r = workloads.run(["W1"], "cpu", quick=True, sides=("fused",))["W1"]
    assert r["minigrad_ms"] > 0 and "composite_ms" not in r and "torch_ms" not in r
    assert "fused_speedup" not in r


def test_w1_floor_step_is_w1s_training_step():
    """The hand-written NumPy floor of W1 (benchmarks/bench_w1_floor.py) computes what minigrad's
    W1 step computes: with dropout off, the same loss and the same weights after three Adam
    steps."""
    import minigrad as mg
    import minigrad.nn.functional as F
    from benchmarks.bench_w1_floor import FloorW1
    from benchmarks.workload_side import _build, _data

    mg.manual_seed(0)
    model = _build(mg.nn, "W1")
    model[2].p = 0.0
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    x, y = _data("W1", np.random.default_rng(0), 1)
    floor = FloorW1(state, x, y, p=0.0)
    opt = mg.optim.Adam(model.parameters(), lr=1e-3)
    xt, yt = mg.tensor(x), mg.tensor(y)
    assert abs(floor.loss() - float(F.cross_entropy(model(xt), yt).item())) < 1e-5
    for _ in range(3):
        floor.step()
        opt.zero_grad()
        loss = F.cross_entropy(model(xt), yt)
        loss.backward()
        opt.step()
        assert abs(float(floor.last_loss) - float(loss.item())) < 1e-5
    for w, (name, p) in zip(floor.params, model.named_parameters()):
        np.testing.assert_allclose(w, p.detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=name)


def test_w1_floor_benchmark_runs_each_side_in_its_process():
    from benchmarks import bench_w1_floor

    result = bench_w1_floor.run(rounds=1, quick=True, sides=("floor", "fused"))
    assert set(result["ms"]) == {"floor", "fused"} and all(t > 0 for t in result["ms"].values())
    assert "floor" in bench_w1_floor.table(result)
