"""benchmarks/bench_peers.py runs (tiny sizes, nothing timed): every framework starts from the
same W5 weights and data, so their first losses agree; a missing framework is reported, not
fatal; the peers themselves are checked where they are installed."""

import importlib.util

import numpy as np
import pytest

from benchmarks import bench_peers


def _first_loss_and_step(name, batch=4):
    step, first, dtype = bench_peers.build(name, bench_peers.make_inputs(batch), threads=1)
    loss = step()
    value = float(np.asarray(loss.item() if hasattr(loss, "item") else loss.data))
    return first, value, dtype


def test_minigrad_fused_and_composite_agree():
    fused = _first_loss_and_step("minigrad")
    composite = _first_loss_and_step("minigrad-composite")
    assert fused[2] == composite[2] == "float32"
    np.testing.assert_allclose(fused[0], composite[0], rtol=1e-6)
    assert np.isfinite(fused[1]) and np.isfinite(composite[1])


@pytest.mark.torch
def test_pytorch_starts_from_the_same_loss():
    pytest.importorskip("torch")
    minigrad_first = _first_loss_and_step("minigrad")[0]
    torch_first = _first_loss_and_step("torch")[0]
    np.testing.assert_allclose(minigrad_first, torch_first, rtol=1e-5)


@pytest.mark.parametrize("peer", ["mygrad", "dezero"])
def test_installed_peers_start_from_the_same_loss(peer):
    if importlib.util.find_spec(peer) is None:
        pytest.skip(f"{peer} is not installed (python -m benchmarks.bench_peers --install DIR)")
    first, value, _ = _first_loss_and_step(peer)
    np.testing.assert_allclose(first, _first_loss_and_step("minigrad")[0], rtol=1e-5)
    assert np.isfinite(value)


def test_adam_matches_the_formula():
    p = np.array([1.0, -2.0])
    adam = bench_peers.NumpyAdam([p], lr=0.1)
    adam.step([np.array([0.5, 0.5])])
    # the first step of Adam moves each parameter by lr * sign(g) (bias-corrected moments)
    np.testing.assert_allclose(p, [0.9, -2.1], rtol=1e-6)


def test_quick_run_reports_a_missing_framework(capsys):
    assert bench_peers.main(["--quick", "--only", "minigrad,chainer", "--peers",
                             "/nonexistent"]) == 0
    out = capsys.readouterr().out
    rows = {line.split("|")[1].strip(): line for line in out.splitlines()
            if line.startswith("| ") and not line.startswith("| framework")}
    assert "unavailable" not in rows["minigrad"]
    if importlib.util.find_spec("chainer") is None:
        assert "unavailable" in rows["chainer"] and "chainer" in rows["chainer"]


def test_unknown_framework_is_an_error():
    with pytest.raises(SystemExit):
        bench_peers.main(["--only", "caffe"])
