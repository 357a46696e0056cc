"""The NCCL backend without a GPU: 2 ranks on the fake CuPy (tests/fake_cuda) with a stand-in
for cupy.cuda.nccl (fake_nccl.py: NCCL's calls checked and recorded, the maths in NumPy)."""

import socket

import numpy as np
import pytest
from dist_helpers import mpirun, needs_mpi, rank_input

pytestmark = needs_mpi


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return mpirun("nccl", 2, tmp_path_factory.mktemp("nccl"))


def _inputs(dtype, shift=0):
    return np.stack([rank_input(k + shift, dtype) for k in range(2)])


def test_gpu_collectives_go_through_nccl(run):
    for r in range(2):
        values, arrays = run.values(r), run.arrays(r)
        assert values["backend"] == "nccl" and values["local_rank"] == r
        assert values["mpi_calls_for_gpu_arrays"] == 0
        assert values["mpi_calls_for_cpu_array"] == 1  # CPU tensors still go through MPI
        x = _inputs("float32")
        np.testing.assert_array_equal(arrays["all_reduce/float32/SUM"], x.sum(0))
        np.testing.assert_array_equal(arrays["all_reduce/float32/AVG"], x.sum(0) / 2)
        np.testing.assert_array_equal(arrays["all_reduce/float32/MAX"], x.max(0))
        np.testing.assert_array_equal(arrays["all_reduce/int64/SUM"], _inputs("int64").sum(0))
        np.testing.assert_array_equal(arrays["all_reduce/bool/SUM"], _inputs("bool").any(0))
        np.testing.assert_array_equal(arrays["broadcast/float32"], rank_input(1, "float32"))
        np.testing.assert_array_equal(arrays["all_gather/float32"], x)
        np.testing.assert_array_equal(arrays["reduce_scatter/float32/SUM"],
                                      _inputs("float32", shift=7 * r).sum(0))
        np.testing.assert_array_equal(arrays["cpu/all_reduce"], x.sum(0))
        calls = [c[0] for c in values["nccl_calls"]]
        assert {"allReduce", "bcast", "allGather", "reduceScatter"} <= set(calls)


def test_ddp_on_the_gpu_matches_ddp_on_the_cpu(run):
    a0, a1 = run.arrays(0), run.arrays(1)
    np.testing.assert_array_equal(a0["ddp_cuda"], a1["ddp_cuda"])
    np.testing.assert_allclose(a0["ddp_cuda"], a0["ddp_cpu"], rtol=1e-6, atol=1e-7)
    buckets = [c for c in run.values(0)["nccl_calls"] if c[0] == "allReduce" and c[2] ==
               "float32" and c[1] > 6]
    assert len(buckets) >= 5 * 9  # 5 steps of 9 gradient buckets, through NCCL


def test_a_nccl_group_started_without_mpi(tmp_path):
    with socket.socket() as s:  # a free port for rank 0's rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = mpirun("nccl_without_mpi", 2, tmp_path,
                 extra_env={"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    for r in range(2):
        assert run.values(r) == {"backend": "nccl", "has_mpi": False}
        np.testing.assert_array_equal(run.arrays(r)["cpu/all_reduce"], _inputs("float32").sum(0))
    np.testing.assert_array_equal(run.arrays(0)["ddp_cuda"], run.arrays(1)["ddp_cuda"])
