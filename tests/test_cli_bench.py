"""``minigrad bench``: the checkout's benchmarks from any folder, after ``pip install .`` too."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from minigrad import cli
from minigrad.cli import bench

REPO = Path(__file__).resolve().parents[1]

# a stand-in for benchmarks/__main__.py: writes where it ran and with which arguments
FAKE_MAIN = """import json, os, sys
from pathlib import Path
Path(__file__).with_name("ran.json").write_text(json.dumps(
    {"argv": sys.argv[1:], "cwd": os.getcwd()}))
"""


def _fake_checkout(root: Path) -> Path:
    (root / "benchmarks").mkdir(parents=True)
    (root / "benchmarks" / "__main__.py").write_text(FAKE_MAIN)
    return root


def test_runs_the_checkouts_benchmarks_with_the_options_from_any_folder(tmp_path, monkeypatch):
    checkout = _fake_checkout(tmp_path / "checkout")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    status = cli.main(["bench", "--checkout", str(checkout), "--quick", "--only", "W1,lstm",
                       "--device", "cpu", "--rounds", "2"])
    assert status == 0
    ran = json.loads((checkout / "benchmarks" / "ran.json").read_text())
    assert ran["argv"] == ["--device", "cpu", "--quick", "--only", "W1,lstm", "--rounds", "2"]
    assert Path(ran["cwd"]) == elsewhere


def test_the_exit_status_is_the_benchmarks(tmp_path):
    checkout = _fake_checkout(tmp_path / "c")
    (checkout / "benchmarks" / "__main__.py").write_text("raise SystemExit(3)\n")
    assert cli.main(["bench", "--checkout", str(checkout)]) == 3


def test_without_a_checkout_it_says_both_ways(tmp_path, capsys):
    assert cli.main(["bench", "--checkout", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path} has no benchmarks/ folder" in err
    assert "minigrad bench --checkout PATH/TO/CHECKOUT" in err and "python -m benchmarks" in err


def test_the_checkout_is_where_pip_installed_from(tmp_path, monkeypatch):
    checkout = _fake_checkout(tmp_path / "my checkout")  # a space: the URL quotes it

    class Installed:
        @staticmethod
        def read_text(name):
            assert name == "direct_url.json"
            return json.dumps({"url": checkout.as_uri(), "dir_info": {}})

    monkeypatch.setattr(bench.metadata, "distribution",
                        lambda name: Installed() if name == "minigrad-dl" else None)
    assert bench.installed_from() == checkout
    assert bench.find_checkout() == checkout
    # installed from an index (no direct_url.json): the checkout on sys.path, here this one
    monkeypatch.setattr(Installed, "read_text", staticmethod(lambda name: None))
    assert bench.installed_from() is None
    assert bench.find_checkout() == REPO


def test_the_options_are_the_benchmarks_options():
    result = subprocess.run([sys.executable, str(REPO / "benchmarks"), "--help"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    theirs = set(re.findall(r"(--[a-z][a-z-]*)", result.stdout)) - {"--help"}
    parser = cli.build_parser()
    sub = parser._subparsers._group_actions[0].choices["bench"]
    ours = {o for a in sub._actions for o in a.option_strings if o.startswith("--")}
    assert ours - {"--help", "--checkout"} == theirs


@pytest.mark.slow
def test_after_pip_install_it_finds_the_checkout_from_any_folder(tmp_path):
    src = tmp_path / "src"
    for name in ("minigrad", "kernels"):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.py", "pyproject.toml", "README.md", "MANIFEST.in"):
        shutil.copy(REPO / name, src / name)
    _fake_checkout(src)
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--target", str(target), str(src)],
                   check=True, capture_output=True, timeout=300)
    shutil.rmtree(target / "bin", ignore_errors=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = dict(os.environ, PYTHONPATH=str(target))
    result = subprocess.run([sys.executable, "-m", "minigrad", "bench", "--quick"], cwd=elsewhere,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    ran = json.loads((src / "benchmarks" / "ran.json").read_text())
    assert ran["argv"] == ["--quick"] and Path(ran["cwd"]) == elsewhere
