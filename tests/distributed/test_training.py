"""The training loop and the Keras facade on 2 MPI ranks: metrics over every rank's examples,
one log, checkpoints from rank 0 only, and a resumed run equal to the uninterrupted one."""

import numpy as np
import pytest
from dist_helpers import mpirun, needs_mpi

pytestmark = needs_mpi


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return mpirun("training", 2, tmp_path_factory.mktemp("training"))


def test_fit_logs_are_over_every_rank_and_printed_once(run):
    values = [run.values(r) for r in range(2)]
    assert values[0]["history"] == values[1]["history"]  # every rank decides alike
    history = values[0]["history"]
    assert sorted(history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert len(history["loss"]) == 4
    # the validation shards are disjoint: their average is the whole set's
    full = values[0]["full_val"]
    assert history["val_loss"][-1] == pytest.approx(full["loss"], rel=1e-6)
    assert history["val_accuracy"][-1] == pytest.approx(full["accuracy"], abs=1e-12)
    assert "Epoch 4/4" in values[0]["log"] and values[1]["log"] == ""


def test_replicas_stay_equal_and_a_resumed_run_is_exact(run):
    a0, a1 = run.arrays(0), run.arrays(1)
    np.testing.assert_array_equal(a0["run_a"], a1["run_a"])
    for arrays in (a0, a1):  # 2 epochs + checkpoint + 2 resumed epochs == 4 epochs
        np.testing.assert_array_equal(arrays["run_resumed"], arrays["run_a"])


def test_checkpoints_are_written_by_rank_zero_only(run):
    assert run.values(0)["checkpoint_writes"] == 2
    assert run.values(1)["checkpoint_writes"] == 0
    assert (run.outdir / "ckpt.safetensors").is_file()


def test_keras_fit_trains_data_parallel(run):
    v0, v1 = run.values(0), run.values(1)
    assert v0["keras_history"] == v1["keras_history"]
    assert len(v0["keras_history"]["val_accuracy"]) == 3
    np.testing.assert_array_equal(run.arrays(0)["keras_weights"], run.arrays(1)["keras_weights"])
    assert (v0["keras_writes"], v1["keras_writes"]) == (1, 0)
    assert "multiple of 2" in v0["keras_batch_error"]
