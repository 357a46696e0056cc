"""DistributedDataParallel on 2 and 3 MPI ranks: the same training as one process on the whole
batch, replicas equal bit for bit, bucketed all-reduce during backward, no_sync, unused and
frozen parameters (and against PyTorch's DDP on gloo, where torch is installed)."""

import math
import socket

import numpy as np
import pytest
from dist_helpers import mpirun, needs_mpi

pytestmark = needs_mpi


@pytest.fixture(scope="module", params=[2, 3], ids=lambda n: f"{n}ranks")
def run(request, tmp_path_factory):
    n = request.param
    return mpirun("ddp", n, tmp_path_factory.mktemp(f"ddp{n}"))


def _same_on_every_rank(run, key):
    first = run.arrays(0)[key]
    for r in range(1, run.n):
        np.testing.assert_array_equal(run.arrays(r)[key], first, err_msg=f"{key}, rank {r}")
    return first


def test_shards_train_as_one_process_on_the_whole_batch(run):
    params = _same_on_every_rank(run, "ddp_params")  # bit for bit
    single = run.arrays(0)["single_params"]
    assert np.abs(params - single).max() <= 1e-5


def test_gradient_as_bucket_view_trains_bit_for_bit_as_the_copying_mode(run):
    params = run.arrays(0)["ddp_params"]
    for set_to_none in (True, False):
        np.testing.assert_array_equal(_same_on_every_rank(run, f"view_params_{set_to_none}"),
                                      params)
        values = run.values(0)
        assert values[f"view_in_bucket_{set_to_none}"]  # every .grad is a view of a bucket
        # the .grad arrays are the bucket's slices, the same ones every step
        assert values[f"view_grad_arrays_{set_to_none}"] == values["n_params"]


def test_calls_per_step_and_overlap(run):
    values = run.values(0)
    bound = math.ceil(values["param_bytes"] / values["bucket_bytes"]) + 1
    assert values["chunks"] > 1  # the test model fills several buckets
    assert all(calls <= bound for calls in values["calls_per_step"]), values["calls_per_step"]
    assert all(calls == values["chunks"] for calls in values["calls_per_step"])
    # every bucket was started from a gradient hook, before the backward pass ended
    assert values["launched_in_backward"] == [values["chunks"]] * len(values["calls_per_step"])
    assert values["wrap_calls"] == 2  # the model check and one packed broadcast


def test_buckets_use_a_persistent_all_reduce_and_iallreduce_trains_the_same(run):
    values = run.values(0)
    chunks = values["chunks"]
    if values["open_mpi"]:  # its non-blocking collectives are the slow ones: blocking calls
        assert (values["persistent_chunks"], values["blocking_chunks"]) == (0, chunks)
    else:  # MPI_Allreduce_init at wrap time
        assert (values["persistent_chunks"], values["blocking_chunks"]) == (chunks, 0)
    # MINIGRAD_MPI_PERSISTENT=0 MINIGRAD_MPI_BLOCKING=0: Iallreduce at each launch
    assert (values["iallreduce_persistent_chunks"], values["iallreduce_blocking_chunks"]) == (0, 0)
    # MINIGRAD_MPI_BLOCKING=1: a blocking Allreduce at each launch, on any MPI
    assert (values["blocking_persistent_chunks"], values["blocking_blocking_chunks"]) == (
        0, chunks)
    for name in ("iallreduce", "blocking"):
        params = _same_on_every_rank(run, f"{name}_params")
        np.testing.assert_allclose(params, run.arrays(0)["ddp_params"], rtol=1e-6, atol=1e-7)


def test_no_sync_accumulates_locally_then_averages_the_sum(run):
    assert run.values(0)["no_sync_calls"] == 0
    grads = _same_on_every_rank(run, "no_sync_grads")
    np.testing.assert_allclose(grads, run.arrays(0)["no_sync_reference"], rtol=1e-5, atol=1e-6)


def test_unused_parameters(run):
    b_grad = _same_on_every_rank(run, "unused_b_grad")
    # used on rank 0 only: its gradient averaged with zeros from the others
    np.testing.assert_allclose(b_grad, run.arrays(0)["unused_local_b"] / run.n, rtol=1e-6)
    _same_on_every_rank(run, "unused_params")
    for r in range(run.n):
        values = run.values(r)
        assert values["unused_never_grad_is_none"]
        assert values["unused_everywhere_b_grad_is_none"]


def test_frozen_parameters_and_buffers(run):
    frozen = _same_on_every_rank(run, "frozen_after_wrap")  # rank 0's, broadcast at wrap
    buffer = _same_on_every_rank(run, "buffer_after_wrap")
    np.testing.assert_array_equal(buffer, np.zeros(3, np.float32))
    for r in range(run.n):
        np.testing.assert_array_equal(run.arrays(r)["frozen_after_steps"], frozen)
        values = run.values(r)
        assert values["frozen_grad_is_none"] and values["unfrozen_has_grad"]
    unfrozen = _same_on_every_rank(run, "unfrozen_params")
    assert not np.array_equal(unfrozen[: frozen.size], frozen.ravel())  # it trained


def test_mismatched_freezing_is_a_clear_error(run):
    for r in range(run.n):
        message = run.values(r)["freeze_error"]
        assert message is not None and "'body.0.weight'" in message
        assert "requires_grad" in message


def test_state_dict_has_no_prefix(run):
    keys = run.values(0)["state_dict_keys"]
    assert keys[:2] == ["0.weight", "0.bias"] and not any(k.startswith("module.") for k in keys)


@pytest.mark.torch
def test_same_parameters_as_pytorch_ddp_on_gloo(tmp_path):
    pytest.importorskip("torch")
    with socket.socket() as s:  # a free port for gloo's rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = mpirun("torch_ddp", 2, tmp_path, timeout=240,
                 extra_env={"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    for r in range(2):
        arrays = run.arrays(r)
        assert np.abs(arrays["minigrad"] - arrays["torch"]).max() <= 1e-5
