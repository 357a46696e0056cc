"""Packaging for minigrad.

The distribution is ``minigrad-dl`` (``pip install minigrad-dl``; the name ``minigrad`` on PyPI
belongs to an unrelated 2020 project); the import name stays ``minigrad``. The top-level
``kernels/`` folder installs as ``minigrad.kernels`` (never as a top-level ``kernels`` package:
that name belongs to another project on PyPI). ``.ci/check_dist.py`` builds the wheel and the
sdist and checks what they hold.
"""

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(
    r'__version__ = "([^"]+)"', (HERE / "minigrad" / "_version.py").read_text()
).group(1)

packages = find_packages(include=["minigrad", "minigrad.*"])
packages.append("minigrad.kernels")

setup(
    name="minigrad-dl",
    version=VERSION,
    description="A deep learning framework written from scratch on NumPy (CPU) and CuPy (GPU)",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=packages,
    package_dir={"minigrad.kernels": "kernels"},
    package_data={"minigrad.kernels": ["*.cu", "*.cuh"], "minigrad.data": ["*.npz", "*.gz", "*.txt"]},
    include_package_data=True,
    install_requires=["numpy>=1.22"],
    extras_require={
        "cuda12": ["cupy-cuda12x>=13"],
        "cuda13": ["cupy-cuda13x>=13.6"],
        "test": ["pytest>=7", "hypothesis>=6"],
        "plot": ["matplotlib>=3.5"],
        "bf16": ["ml_dtypes>=0.3"],
        "mpi": ["mpi4py>=3.1", "mpich"],  # data parallel on CPUs; mpich brings mpiexec
        # the documentation site: mkdocs build --strict (mkdocs.yml)
        "docs": ["mkdocs>=1.6", "mkdocs-material>=9.5", "mkdocstrings[python]>=1.0"],
    },
    entry_points={"console_scripts": ["minigrad=minigrad.cli:main"]},
    classifiers=["Programming Language :: Python :: 3", "License :: OSI Approved :: MIT License"],
)
