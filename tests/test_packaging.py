"""Packaging: the distribution name, what the wheel and the sdist hold (.ci/check_dist.py),
and the benchmarks run from any folder."""

import importlib.util
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("check_dist", REPO / ".ci" / "check_dist.py")
check_dist = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_dist)


def test_distribution_name_is_ours():
    # "minigrad" on PyPI is an unrelated 2020 project: `pip install -U minigrad` would replace us
    setup = (REPO / "setup.py").read_text()
    assert re.findall(r'^\s+name="([^"]+)",', setup, re.M) == [check_dist.DIST_NAME]
    assert check_dist.DIST_NAME == "minigrad-dl"
    assert '"minigrad=minigrad.cli:main"' in setup  # the import and command names stay


def test_expected_files_cover_the_sources_and_data():
    expected = check_dist.expected_files()
    cu = {p.name for p in (REPO / "kernels").iterdir() if p.suffix in (".cu", ".cuh")}
    assert cu and {f"minigrad/kernels/{name}" for name in cu} <= set(expected)
    assert "minigrad/data/digits.npz" in expected


@pytest.mark.parametrize("name, reason", [
    ("minigrad/__pycache__/tensor.cpython-311.pyc", "a cache"),
    ("minigrad/ops/x.pyc", "a cache"),
    ("tests/test_ops.py", "a test"),
    ("minigrad/nn/test_thing.py", "a test"),
    (".pytest_cache/v/cache", "a cache"),
    ("minigrad/tensor.py", None),
    ("minigrad/kernels/adam.cu", None),
])
def test_unwanted_members(name, reason):
    assert check_dist.unwanted(name) == reason


def _wheel(path, members, entry_points="[console_scripts]\nminigrad = minigrad.cli:main\n",
           name="minigrad-dl"):
    with zipfile.ZipFile(path, "w") as archive:
        for member in members:
            archive.writestr(member, "")
        archive.writestr("m-0.1.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {name}\n")
        archive.writestr("m-0.1.dist-info/entry_points.txt", entry_points)
    return path


def test_check_wheel_finds_every_problem(tmp_path):
    expected = list(check_dist.expected_files())
    good = _wheel(tmp_path / "good.whl", [*expected, "minigrad/__init__.py"])
    assert check_dist.check_wheel(good) == []
    bad = _wheel(tmp_path / "bad.whl", [*expected[1:], "tests/test_ops.py",
                                        "minigrad/__pycache__/a.pyc", "kernels/adam.py",
                                        "benchmarks/__main__.py"],
                 entry_points="", name="minigrad")
    problems = "\n".join(check_dist.check_wheel(bad))
    assert f"missing {check_dist.expected_files()[expected[0]]} {expected[0]}" in problems
    for text in ("ships a test: tests/test_ops.py", "ships a cache", "top-level kernels",
                 "top-level benchmarks package: benchmarks/__main__.py",
                 "not named minigrad-dl", "no console script"):
        assert text in problems


def test_benchmarks_run_from_any_folder(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "benchmarks"), "--help"],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "--quick" in result.stdout


@pytest.mark.slow
def test_built_wheel_and_sdist_hold_what_they_should(tmp_path):
    pytest.importorskip("build", reason="needs the build package (pip install build)")
    result = subprocess.run([sys.executable, str(REPO / ".ci" / "check_dist.py"), "--outdir",
                             str(tmp_path)], capture_output=True, text=True, timeout=600)
    unavailable = ("Could not find a version", "No matching distribution",
                   "Failed to establish a new connection")
    if result.returncode and any(text in result.stderr for text in unavailable):
        pytest.skip("no package index to install the build requirements from")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "minigrad_dl-" in result.stdout and result.stdout.count(": ok") == 2
