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


def fake_mpiexec(tmp_path, version_text):
    """An executable that answers ``--version`` as an MPI launcher would."""
    path = tmp_path / f"mpiexec{abs(hash(version_text))}"
    path.write_text(f"#!/bin/sh\necho '{version_text}'\n")
    path.chmod(0o755)
    return str(path)


@pytest.mark.parametrize("text, version", [
    ("mpiexec (Open MPI) 5.0.11\n\nReport bugs to https://www.open-mpi.org/community/help/",
     (5, 0)),
    ("mpirun (Open MPI) 4.1.4", (4, 1)),
    ("HYDRA build details:\n    Version: 5.0.2", None),
])
def test_open_mpi_is_told_apart_from_mpich(tmp_path, text, version):
    assert launch.open_mpi_version(fake_mpiexec(tmp_path, text)) == version


@pytest.mark.parametrize("text, flags", [
    ("mpiexec (Open MPI) 5.0.11", ["--map-by", ":OVERSUBSCRIBE"]),
    ("mpirun (Open MPI) 4.1.4", ["--oversubscribe"]),
])
def test_open_mpi_gets_root_and_more_processes_than_cores(tmp_path, monkeypatch, text, flags):
    mpiexec = fake_mpiexec(tmp_path, text)
    monkeypatch.setattr(launch.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(launch.os, "geteuid", lambda: 0)
    assert launch.open_mpi_options(mpiexec, 3) == ["--allow-run-as-root", *flags]
    assert launch.open_mpi_options(mpiexec, 2) == ["--allow-run-as-root"]  # fits the cores
    assert launch.open_mpi_options(mpiexec, 8, "hosts") == ["--allow-run-as-root"]  # machines
    monkeypatch.setattr(launch.os, "geteuid", lambda: 1000)
    assert launch.open_mpi_options(mpiexec, 3) == flags
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cmd, env = launch.build_command(launch_args(["-n", "3", "train.py"]), mpiexec)
    assert cmd[:3 + len(flags)] == [mpiexec, "-n", "3", *flags]
    assert ["-x", "OMP_NUM_THREADS"] == cmd[3 + len(flags):5 + len(flags)]  # passed on
    assert cmd[-2:] == [sys.executable, "train.py"]


def test_mpich_gets_no_open_mpi_options(tmp_path, monkeypatch):
    mpiexec = fake_mpiexec(tmp_path, "HYDRA build details:\n    Version: 5.0.2")
    assert launch.open_mpi_options(mpiexec, 64) is None
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    cmd, _ = launch.build_command(launch_args(["-n", "64", "train.py"]), mpiexec)
    assert cmd == [mpiexec, "-n", "64", sys.executable, "train.py"]
