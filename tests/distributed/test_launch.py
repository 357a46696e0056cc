"""``minigrad launch``: finds mpiexec, builds the command, says what to install without one."""

import argparse
import sys

import pytest

from minigrad.cli import COMMANDS, launch, main


def launch_args(argv):
    parser = argparse.ArgumentParser()
    launch.add_arguments(parser)
    return parser.parse_args(argv)


def test_registered():
    assert launch in COMMANDS


def test_dry_run_prints_the_mpiexec_command(tmp_path, capsys, monkeypatch):
    script = tmp_path / "train.py"
    script.write_text("print('hi')\n")
    monkeypatch.setenv(launch.MPIEXEC_ENV, sys.executable)  # any executable will do here
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert main(["launch", "-n", "3", "--dry-run", str(script), "--lr", "0.1"]) == 0
    words = capsys.readouterr().out.split()
    assert words[1:3] == ["-n", "3"]
    assert words[-4:] == [sys.executable, str(script), "--lr", "0.1"]


def test_hostfile_threads_and_module(tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    args = launch_args(["-n", "2", "--hostfile", "hosts", "--threads", "3", "-m", "minigrad",
                        "demo", "--epochs", "1"])
    cmd, env = launch.build_command(args, "mpiexec")
    assert cmd[:5] == ["mpiexec", "-n", "2", "-hostfile", "hosts"]
    assert cmd[-6:] == [sys.executable, "-m", "minigrad", "demo", "--epochs", "1"]
    assert env["OMP_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == "3"
    cmd, env = launch.build_command(launch_args(["-n", "2", "x.py"]), "mpiexec")
    assert int(env["OMP_NUM_THREADS"]) >= 1  # cores // N by default


def test_without_mpiexec_it_says_what_to_install(tmp_path, capsys, monkeypatch):
    script = tmp_path / "train.py"
    script.write_text("")
    monkeypatch.delenv(launch.MPIEXEC_ENV, raising=False)
    assert main(["launch", "-n", "2", "--mpiexec", "no-such-mpiexec", str(script)]) == 1
    err = capsys.readouterr().err
    assert 'pip install ".[mpi]"' in err and "pip install mpi4py mpich" in err


def test_without_mpi4py_it_says_what_to_install(tmp_path, capsys, monkeypatch):
    script = tmp_path / "train.py"
    script.write_text("")
    monkeypatch.setenv(launch.MPIEXEC_ENV, sys.executable)
    real = launch.importlib.util.find_spec
    monkeypatch.setattr(launch.importlib.util, "find_spec",
                        lambda name, *a: None if name == "mpi4py" else real(name, *a))
    assert main(["launch", "-n", "2", str(script)]) == 1
    assert "mpi4py is not installed" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["-n", "0", "x.py"], "-n must be positive"),
    (["-n", "2"], "give the script"),
    (["-n", "2", "missing.py"], "no such script"),
])
def test_bad_arguments(argv, message, capsys):
    assert main(["launch", *argv]) == 2
    assert message in capsys.readouterr().err
