"""benchmarks/bench_distributed.py's launcher: PyTorch's gloo ranks meet through a file (no
port to race for), and a configuration that fails is run once more, said and recorded."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from dist_helpers import needs_mpi

from benchmarks import bench_distributed as bench


def test_a_failed_configuration_runs_once_more_and_is_recorded(monkeypatch, capsys):
    calls = []

    def flaky(ranks, worker_args, timeout):
        calls.append(worker_args)
        if len(calls) == 1:
            raise subprocess.CalledProcessError(15, ["mpiexec"])
        return {"samples_per_s": 1.0}

    monkeypatch.setattr(bench, "_launch_once", flaky)
    monkeypatch.setattr(bench, "RETRIES", [])
    assert bench._launch(2, ["throughput", "torch", "W5", "2"], 10) == {"samples_per_s": 1.0}
    assert len(calls) == 2 and len(bench.RETRIES) == 1
    assert "throughput torch W5 2" in bench.RETRIES[0]["config"]
    assert "retrying once" in capsys.readouterr().err


def test_a_second_failure_is_not_hidden(monkeypatch):
    def broken(ranks, worker_args, timeout):
        raise subprocess.CalledProcessError(1, ["mpiexec"])

    monkeypatch.setattr(bench, "_launch_once", broken)
    monkeypatch.setattr(bench, "RETRIES", [])
    with pytest.raises(subprocess.CalledProcessError):
        bench._launch(2, ["throughput", "torch", "W1", "2"], 10)


@needs_mpi
@pytest.mark.torch
def test_pytorch_ddp_ranks_meet_through_a_file():
    pytest.importorskip("torch")
    result = bench._launch_once(2, ["throughput", "torch", "W1", "2"], 240)
    assert result["ranks"] == 2 and result["samples_per_s"] > 0


@needs_mpi
@pytest.mark.parametrize("mode", ["ddp", "keep"])
def test_the_ddp_cost_runner_runs(mode):
    root = Path(bench.__file__).resolve().parent.parent
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-m", "benchmarks.bench_distributed", "--ddp-cost",
                           mode, "2"], cwd=root, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr


@needs_mpi
def test_the_in_step_reproduction_runs(capsys):
    bench.in_step(2, 3, 1)
    table = capsys.readouterr().out
    for mode in bench.INSTEP_MODES:
        assert f"| {mode} |" in table
