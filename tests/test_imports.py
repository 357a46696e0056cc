"""``import minigrad`` works both ways a user gets the code: a plain checkout (``git clone`` and
run, nothing installed) and an installed package; both give the fused kernels as
``minigrad.kernels``. Each case runs in a fresh interpreter with setuptools' editable-install
finder removed, so that only the layout under test can supply the package."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Drop the editable-install hook (present when the tests run after `pip install -e .`), then
# import and report where the package and its kernels came from.
PROBE = """
import sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
import minigrad, minigrad.kernels, minigrad.kernels.lstm
from minigrad.kernels import _cuda
x = minigrad.randn(2, 3, requires_grad=True)
minigrad.nn.functional.layer_norm(x, (3,)).sum().backward()
print(minigrad.__file__)
print(minigrad.kernels.__file__)
print(_cuda.source("lstm")[:2])
"""


def _probe(cwd: Path, pythonpath: str = "") -> list:
    env = dict(os.environ, PYTHONPATH=pythonpath)
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def test_plain_checkout_imports_kernels_as_minigrad_kernels():
    package, kernels, cu = _probe(ROOT)
    assert Path(package).parent == ROOT / "minigrad"
    assert Path(kernels).parent == ROOT / "kernels"  # the top-level folder, mounted
    assert cu == "//"  # the .cu sources are found beside it


def test_plain_checkout_without_kernels_folder_says_what_is_missing(tmp_path):
    shutil.copytree(ROOT / "minigrad", tmp_path / "minigrad",
                    ignore=shutil.ignore_patterns("__pycache__"))
    env = dict(os.environ, PYTHONPATH="")
    code = PROBE.split("import minigrad,")[0] + "import minigrad"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "minigrad.kernels is missing" in out.stderr
    assert "circular import" not in out.stderr


@pytest.mark.slow
def test_installed_package_has_kernels_as_subpackage(tmp_path):
    src = tmp_path / "src"
    for name in ("minigrad", "kernels"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--target", str(target), str(src)],
                   check=True, capture_output=True, timeout=300)
    package, kernels, cu = _probe(tmp_path, pythonpath=str(target))
    assert Path(package).parent == target / "minigrad"
    assert Path(kernels).parent == target / "minigrad" / "kernels"  # a real subpackage
    assert cu == "//"  # the .cu files are installed with it
