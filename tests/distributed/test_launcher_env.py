"""The launcher's rank and size read from the environment, before any process group exists
(what `minigrad demo` uses to print and write on rank 0 only)."""

import minigrad.distributed as dist

MPI_VARS = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "MV2_COMM_WORLD_RANK", "RANK",
            "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "WORLD_SIZE")


def test_launcher_rank_reads_mpi_then_torchrun_variables(monkeypatch):
    for name in MPI_VARS:
        monkeypatch.delenv(name, raising=False)
    assert dist.launcher_rank() == 0 and dist.launcher_world_size() == 1
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert dist.launcher_rank() == 3 and dist.launcher_world_size() == 4
    monkeypatch.setenv("PMI_RANK", "1")  # an MPI launcher's numbering wins
    assert dist.launcher_rank() == 1
    assert not dist.is_initialized()  # nothing was started by asking
