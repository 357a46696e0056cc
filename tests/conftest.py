"""Shared fixtures: the ``device`` fixture runs a test on the CPU and, when CuPy and an NVIDIA GPU
are present, on ``cuda`` (those cases are marked ``gpu``; CPU CI runs ``-m "not gpu"``).

``MINIGRAD_FAKE_CUDA=1`` runs the ``cuda`` cases without a GPU: CuPy is replaced by a strict CPU
stand-in whose kernels are the CUDA C, simulated (tests/fake_cuda; the kernel tests use the same
stand-in for one test at a time through ``fake_cuda.use``).
"""

import os
import sys

import fake_cuda
import numpy as np
import pytest

# The checkout's kernels/ folder is minigrad.kernels. With the repository root on sys.path (as
# `python -m pytest` puts it) it would also pass for a top-level package named `kernels`, a
# name that belongs to another PyPI project which libraries such as transformers probe for.
sys.modules.setdefault("kernels", None)
# transformers (the parity references) would fetch compiled layers from its hub: never here
os.environ.setdefault("USE_HUB_KERNELS", "0")

if fake_cuda.enabled():
    fake_cuda.install()  # before minigrad first imports cupy

import minigrad as mg  # noqa: E402

FAKE_CUDA = fake_cuda.enabled()


def _cuda_ok() -> bool:
    return mg.cuda.is_available()


@pytest.fixture(
    params=[
        "cpu",
        pytest.param("cuda", marks=[pytest.mark.gpu]),
    ]
)
def device(request):
    if request.param == "cuda" and not _cuda_ok():
        pytest.skip("needs CuPy and an NVIDIA GPU")
    slow = request.node.get_closest_marker("slow_in_simulator")
    if request.param == "cuda" and FAKE_CUDA and slow and not fake_cuda.run_slow():
        pytest.skip(f"{slow.args[0]} under the CUDA simulator: {fake_cuda.ENV}=all runs it")
    return request.param


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same random state, and with no deferred device check left
    pending by another test (a failed one would raise in this test's first synchronisation)."""
    mg.manual_seed(0)
    np.random.seed(0)
    mg.backend._deferred.clear()
    yield
    mg.backend._deferred.clear()


def to_numpy(t):
    """A tensor's values as a NumPy array, wherever it lives."""
    return mg.backend.to_device(t.detach().data, mg.backend.CPU)



def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """One line for the skipped tests, grouped by reason (``-ra`` would list each of them;
    ``pytest -rs`` still does)."""
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped or set("saA") & set(config.option.reportchars or ""):
        return
    counts: dict = {}
    for report in skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ").strip()
        counts[reason] = counts.get(reason, 0) + 1
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    shown = [f"{n} {reason[:70]}" for reason, n in ranked[:4]]
    if len(ranked) > 4:
        rest = sum(n for _, n in ranked[4:])
        shown.append(f"{rest} for {len(ranked) - 4} other reasons (pytest -rs lists them)")
    terminalreporter.write_line(f"skipped {len(skipped)}: " + "; ".join(shown))
