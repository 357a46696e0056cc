"""benchmarks/bench_checkpoint.py in its tiny mode: every variant builds and measures, the
checkpointed minigrad runs keep less and give bitwise the plain gradients, and the whole
fresh-process driver runs end to end."""

import pytest

from benchmarks import bench_checkpoint as bench


@pytest.mark.parametrize("workload", bench.WORKLOADS)
def test_minigrad_variants_measure_and_checkpointing_saves(workload):
    got = {mode: bench.measure("minigrad", workload, mode, tiny=True, steps=1)
           for mode in ("plain", "checkpoint")}
    for r in got.values():
        assert r["saved_mib"] > 0 and r["peak_mib"] >= r["saved_mib"] and r["ms"] > 0
        assert "saved_malloc_mib" in r and r["max_rss_mib"] > 0  # malloc: noisy at tiny sizes
    assert got["checkpoint"]["saved_mib"] < got["plain"]["saved_mib"]
    assert bench.check_bitwise(workload, tiny=True)


@pytest.mark.torch
@pytest.mark.parametrize("workload", bench.WORKLOADS)
def test_torch_variants_measure(workload, tmp_path):
    pytest.importorskip("torch")
    folder = None
    if workload == "LLM":
        pytest.importorskip("transformers")
        bench._mg_llama(True).save_pretrained(tmp_path)
        folder = str(tmp_path)
    got = {mode: bench.measure("torch", workload, mode, tiny=True, steps=1, folder=folder)
           for mode in ("plain", "checkpoint")}
    for r in got.values():
        assert r["saved_mib"] > 0 and r["peak_mib"] > 0 and r["ms"] > 0
    assert got["checkpoint"]["saved_mib"] < got["plain"]["saved_mib"]


@pytest.mark.slow
@pytest.mark.torch
def test_driver_runs_each_variant_in_its_own_process(capsys):
    pytest.importorskip("torch")
    results = bench.main(["--tiny", "--only", "W4", "--rounds", "1", "--steps", "1"])
    entries = results["W4"]
    assert entries["bitwise"] is True
    for framework, mode in bench.VARIANTS:
        entry = entries[f"{framework}/{mode}"]
        assert "error" not in entry, entry
        assert len(entry["runs"]) == 1 and entry["saved_mib"] > 0
    assert len(bench.rows(results)) == 4
    assert "| W4 | PyTorch | checkpoint |" in capsys.readouterr().out


def test_unknown_workload_is_refused():
    with pytest.raises(SystemExit):
        bench.main(["--tiny", "--only", "W9"])


@pytest.mark.gpu
@pytest.mark.parametrize("workload", ["T12", "W4"])
def test_minigrad_cuda_variants_measure(workload):
    import minigrad as mg

    if not mg.cuda.is_available():
        pytest.skip("needs CuPy and an NVIDIA GPU")
    got = {mode: bench.measure("minigrad", workload, mode, device="cuda", tiny=True, steps=1)
           for mode in ("plain", "checkpoint")}
    for r in got.values():  # the allocator's counters
        assert r["saved_mib"] > 0 and r["peak_mib"] >= r["saved_mib"] and r["ms"] > 0
    assert got["checkpoint"]["saved_mib"] < got["plain"]["saved_mib"]
    assert bench.check_bitwise(workload, device="cuda", tiny=True)
