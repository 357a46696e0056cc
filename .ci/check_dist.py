"""Build the wheel and the sdist (``python -m build``) and check what they hold.

    python3 .ci/check_dist.py [--outdir DIR] [--no-isolation]

Checks, in both archives: every CUDA source of ``kernels/`` (``*.cu``, ``*.cuh``) and every
bundled data file of ``minigrad/data`` (``*.npz``, ``*.gz``, ``*.txt``) and every exercise
stub (``minigrad/exercises/stubs/*.py``) is there, and no tests,
``__pycache__`` folders, ``.pyc`` files or pytest/ruff caches are. In the wheel: the
distribution name is `DIST_NAME`, the kernels install as ``minigrad/kernels/`` (never as a
top-level ``kernels`` package), no top-level ``benchmarks`` package is installed (they run from
the checkout: ``minigrad bench``), and the console script ``minigrad = minigrad.cli:main`` is
declared. Exits 1 and lists every problem found; prints one line per archive when all is well.
Needs the ``build`` package (``pip install build``).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIST_NAME = "minigrad-dl"
CONSOLE_SCRIPT = "minigrad = minigrad.cli:main"
DATA_PATTERNS = ("*.npz", "*.gz", "*.txt")
CACHE_PARTS = ("__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache", ".hypothesis")


def expected_files() -> dict:
    """The package files each archive must hold: path inside the installed package -> why."""
    expected = {}
    for pattern in ("*.cu", "*.cuh"):
        for path in sorted((ROOT / "kernels").glob(pattern)):
            expected[f"minigrad/kernels/{path.name}"] = "CUDA source"
    for pattern in DATA_PATTERNS:
        for path in sorted((ROOT / "minigrad" / "data").glob(pattern)):
            expected[f"minigrad/data/{path.name}"] = "bundled data"
    # `minigrad exercises start NAME` copies these: an installed minigrad must have them
    for path in sorted((ROOT / "minigrad" / "exercises" / "stubs").glob("*.py")):
        expected[f"minigrad/exercises/stubs/{path.name}"] = "exercise stub"
    return expected


def unwanted(name: str) -> str | None:
    """Why the archive member `name` should not be shipped, or None."""
    parts = name.split("/")
    if any(part in CACHE_PARTS for part in parts) or name.endswith((".pyc", ".pyo")):
        return "a cache"
    if "tests" in parts or any(part.startswith("test_") and part.endswith(".py") for part in parts):
        return "a test"
    return None


def check_wheel(path: Path) -> list:
    """The problems of the wheel at `path` (an empty list when it is as it should be)."""
    problems = []
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        for member, why in expected_files().items():
            if member not in names:
                problems.append(f"{path.name}: missing {why} {member}")
        for name in names:
            reason = unwanted(name)
            if reason:
                problems.append(f"{path.name}: ships {reason}: {name}")
            if name.startswith("kernels/"):
                problems.append(f"{path.name}: a top-level kernels package: {name}")
            if name.startswith("benchmarks/"):  # NOTE: they run from the checkout (minigrad bench)
                problems.append(f"{path.name}: a top-level benchmarks package: {name}")
        info = [n for n in names if n.endswith(".dist-info/METADATA")]
        points = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        if not info:
            problems.append(f"{path.name}: no METADATA")
        else:
            metadata = archive.read(info[0]).decode("utf-8")
            if f"Name: {DIST_NAME}\n" not in metadata:
                problems.append(f"{path.name}: the distribution is not named {DIST_NAME}")
        entry_points = archive.read(points[0]).decode("utf-8") if points else ""
        if "[console_scripts]" not in entry_points or CONSOLE_SCRIPT not in entry_points:
            problems.append(f"{path.name}: no console script '{CONSOLE_SCRIPT}'")
    return problems


def check_sdist(path: Path) -> list:
    """The problems of the sdist at `path` (an empty list when it is as it should be)."""
    problems = []
    with tarfile.open(path) as archive:
        # members are "<name>-<version>/<path in the checkout>"
        names = {m.name.split("/", 1)[1] for m in archive.getmembers() if "/" in m.name}
    for member, why in expected_files().items():
        source = member.replace("minigrad/kernels/", "kernels/", 1)
        if source not in names:
            problems.append(f"{path.name}: missing {why} {source}")
    for required in ("setup.py", "pyproject.toml", "README.md"):
        if required not in names:
            problems.append(f"{path.name}: missing {required}")
    for name in sorted(names):
        reason = unwanted(name)
        if reason:
            problems.append(f"{path.name}: ships {reason}: {name}")
    return problems


def build(outdir: Path, isolation: bool = True) -> tuple:
    """Runs ``python -m build`` on the checkout (the sdist, then the wheel built from the
    sdist, so the sdist is known to be complete); returns ``(wheel, sdist)`` paths."""
    command = [sys.executable, "-m", "build", "--outdir", str(outdir)]
    if not isolation:
        command.append("--no-isolation")
    egg_info = ROOT / f"{DIST_NAME.replace('-', '_')}.egg-info"
    had_egg_info = egg_info.exists()
    try:
        subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    finally:
        if not had_egg_info:  # leave the checkout as it was
            shutil.rmtree(egg_info, ignore_errors=True)
    wheels = sorted(outdir.glob("*.whl"))
    sdists = sorted(outdir.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        raise SystemExit(f"expected one wheel and one sdist in {outdir}, found "
                         f"{[p.name for p in [*wheels, *sdists]]}")
    return wheels[0], sdists[0]


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outdir", type=Path, default=None,
                        help="where to build (default: a temporary folder, removed after)")
    parser.add_argument("--no-isolation", action="store_true",
                        help="build with the installed setuptools and wheel (no download)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        outdir = args.outdir or Path(tmp)
        outdir.mkdir(parents=True, exist_ok=True)
        wheel, sdist = build(outdir, isolation=not args.no_isolation)
        problems = check_wheel(wheel) + check_sdist(sdist)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            return 1
        n = len(expected_files())
        print(f"check_dist: {wheel.name}: ok ({n} CUDA/data/stub files, console script, no tests "
              "or caches)")
        print(f"check_dist: {sdist.name}: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
