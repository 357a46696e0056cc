"""kernels/_blas.py: OpenBLAS's workers stopped for a section run on the kernel threads (the
layer norm's and cross-entropy's chunks, attention's batch parts): the BLAS thread count inside
and after, products after the workers restart, and the kernels' numbers with the section
threaded against one thread."""

import numpy as np
import pytest
from kernel_utils import fused_on  # noqa: F401  (autouse: kernels on, whatever the env)

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import kernels

blas = kernels._blas

needs_quiet = pytest.mark.skipif(not blas.can_quiet(),
                                 reason="no OpenBLAS whose workers can be stopped")


@needs_quiet
def test_quiet_runs_the_blas_on_the_calling_thread_and_restores_it(monkeypatch):
    monkeypatch.setenv("MINIGRAD_NUM_THREADS", "2")
    previous = mg.get_num_threads()
    mg.set_num_threads(2)
    try:
        a = np.random.default_rng(0).standard_normal((300, 300))
        expected = a @ a
        with blas.quiet(chunks=3):
            assert mg.get_num_threads() == 1
            np.testing.assert_allclose(a @ a, expected, rtol=1e-10, atol=1e-10)
        assert mg.get_num_threads() == 2
        np.testing.assert_allclose(a @ a, expected, rtol=1e-10, atol=1e-10)  # restarted
        with pytest.raises(ValueError, match="inside"):
            with blas.quiet(chunks=3):
                raise ValueError("inside")
        assert mg.get_num_threads() == 2
    finally:
        mg.set_num_threads(previous)


@pytest.mark.parametrize("threads, chunks", [("1", 4), ("2", 1)])
def test_quiet_changes_nothing_without_two_threads_at_work(monkeypatch, threads, chunks):
    monkeypatch.setenv("MINIGRAD_NUM_THREADS", threads)
    before = mg.get_num_threads()
    with blas.quiet(chunks=chunks):
        assert mg.get_num_threads() == before


@needs_quiet
def test_layer_norm_and_cross_entropy_threaded_equal_one_thread(monkeypatch):
    """Two chunks or more (ROW_CHUNK values each) on two threads with the workers stopped:
    the same numbers as on one thread, forward and backward."""
    rng = np.random.default_rng(1)
    x_np = rng.standard_normal((1100, 256))  # 281,600 values: two chunks
    logits_np = rng.standard_normal((300, 1000))  # three chunks
    target = mg.tensor(rng.integers(0, 1000, 300))
    w = mg.tensor(rng.standard_normal(256), requires_grad=True)
    b = mg.tensor(rng.standard_normal(256), requires_grad=True)

    def run():
        x = mg.tensor(x_np, requires_grad=True)
        logits = mg.tensor(logits_np, requires_grad=True)
        y = F.layer_norm(x, (256,), w, b)
        loss = F.cross_entropy(logits, target)
        grads = mg.grad((y * y).sum() + loss, [x, w, b, logits])
        return [t.detach().numpy() for t in [y, loss, *grads]]

    calls = []
    quiet = blas.quiet

    def counted(chunks=2):
        calls.append(chunks)
        return quiet(chunks)

    monkeypatch.setattr(blas, "quiet", counted)
    monkeypatch.setenv("MINIGRAD_NUM_THREADS", "1")
    one = run()
    monkeypatch.setenv("MINIGRAD_NUM_THREADS", "2")
    two = run()
    assert len(calls) == 8 and min(calls) >= 2  # each kernel's forward and backward, per run
    for a, c in zip(one, two):
        np.testing.assert_allclose(c, a, rtol=1e-13, atol=1e-15)
