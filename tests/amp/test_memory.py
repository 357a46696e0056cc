"""mg.cuda memory counters (CuPy's pool) on the GPU or its stand-in."""

import pytest

import minigrad as mg

pytestmark = pytest.mark.gpu


@pytest.fixture(autouse=True)
def _needs_cuda():
    if not mg.cuda.is_available():
        pytest.skip("needs CuPy and an NVIDIA GPU")


def test_allocated_and_peak():
    base = mg.cuda.memory_allocated()
    x = mg.zeros(1024, 256, device="cuda")  # 1 MiB
    assert mg.cuda.memory_allocated() - base >= 2 ** 20
    mg.cuda.reset_peak_memory_stats()
    start = mg.cuda.max_memory_allocated()
    assert start == mg.cuda.memory_allocated("cuda:0")
    y = mg.ones(2048, 256, device="cuda")  # 2 MiB more, then freed
    del y
    peak = mg.cuda.max_memory_allocated()
    assert peak - start >= 2 * 2 ** 20
    assert mg.cuda.memory_allocated() < peak
    mg.cuda.reset_peak_memory_stats(0)
    assert mg.cuda.max_memory_allocated() == mg.cuda.memory_allocated()
    assert mg.cuda.memory_reserved() >= mg.cuda.memory_allocated()
    del x


def test_a_training_step_peak_exceeds_the_weights():
    model = mg.nn.Sequential(mg.nn.Linear(64, 256), mg.nn.ReLU(), mg.nn.Linear(256, 10))
    model = model.to("cuda")
    x = mg.randn(128, 64, device="cuda")
    mg.cuda.reset_peak_memory_stats()
    before = mg.cuda.memory_allocated()
    model(x).sum().backward()
    activations = 128 * 256 * 4
    assert mg.cuda.max_memory_allocated() - before >= activations
