"""Shared fixtures: the ``device`` fixture runs a test on the CPU and, when CuPy and an NVIDIA GPU
are present, on ``cuda`` (those cases are marked ``gpu``; CPU CI runs ``-m "not gpu"``)."""

import numpy as np
import pytest

import minigrad as mg


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
    return request.param


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same random state."""
    mg.manual_seed(0)
    np.random.seed(0)
    yield


def to_numpy(t):
    """A tensor's values as a NumPy array, wherever it lives."""
    return mg.backend.to_device(t.detach().data, mg.backend.CPU)
