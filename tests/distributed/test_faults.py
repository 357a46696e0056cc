"""Failures never hang a job: a rank that raises takes the job down at once with its
traceback, so does one that calls sys.exit with a failure status or is killed, and a collective
that waits past the timeout aborts it, naming rank and operation."""

import sys

from dist_helpers import mpirun, needs_mpi

pytestmark = needs_mpi


def test_a_rank_that_raises_ends_the_job_with_its_traceback(tmp_path):
    launcher = [sys.executable, "-m", "minigrad", "launch", "-n", "2"]  # through the CLI
    run = mpirun("raise", 2, tmp_path, timeout=60, dist_timeout=120, launcher=launcher,
                 check=False)
    assert run.returncode != 0
    assert run.seconds < 30  # not the 120 s timeout: the exception ended the job
    assert "rank 1 of 2 failed" in run.output
    assert "Traceback" in run.output and "ValueError: boom on rank 1" in run.output


def test_a_rank_that_calls_sys_exit_with_a_failure_ends_the_job(tmp_path):
    run = mpirun("exit", 2, tmp_path, timeout=60, dist_timeout=120, check=False)
    assert run.returncode != 0
    assert run.seconds < 30  # not the 120 s timeout
    assert "rank 1 of 2 exited with status 3; aborting the job" in run.output
    assert "rank 1 cleaned up" in run.output  # its finally blocks ran first


def test_a_rank_that_is_killed_ends_the_job(tmp_path):
    run = mpirun("killed", 2, tmp_path, timeout=60, dist_timeout=120, check=False)
    assert run.returncode != 0
    assert run.seconds < 30  # the MPI launcher ends the others


def test_a_collective_past_the_timeout_aborts_naming_rank_and_operation(tmp_path):
    run = mpirun("timeout", 2, tmp_path, timeout=60, extra_env={"WORKER_TIMEOUT": "2"},
                 check=False)
    assert run.returncode != 0
    assert run.seconds < 40  # rank 1 sleeps 60 s: the abort ended it
    assert "rank 0 waited more than 2 s in all_reduce (float32, 3 elements)" in run.output
