"""Data-parallel training across processes and machines, on MPI and NCCL.

minigrad does not move bytes between processes itself: CPU arrays go through MPI (`mpi4py`,
over any MPI library; ``pip install ".[mpi]"`` brings mpi4py and the `mpich` wheel, whose
``mpiexec`` runs as root with no setup), GPU arrays through NCCL (``cupy.cuda.nccl``), one GPU
per rank. The API is torch.distributed's::

    import minigrad.distributed as dist
    from minigrad.nn.parallel import DistributedDataParallel as DDP
    from minigrad.data import DataLoader, DistributedSampler

    dist.init_process_group()                 # rank and world size from the launcher
    model = DDP(net)                          # rank 0's weights everywhere; gradients averaged
    sampler = DistributedSampler(dataset)     # each rank its shard
    loader = DataLoader(dataset, batch_size=64, sampler=sampler)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for x, y in loader:
            opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step()

and run with ``mpiexec -n 4 python train.py`` or ``minigrad launch -n 4 train.py``.
`minigrad.train.fit` and `minigrad.keras` do the sharding, the metric averaging and the
rank-0-only printing and checkpointing themselves.

On several machines, list them in an MPI hosts file (one ``hostname:slots`` line each, slots
being the processes it runs) and pass it along: ``minigrad launch -n 8 --hostfile hosts
train.py`` (``mpiexec -n 8 -f hosts python train.py`` with MPICH, ``--hostfile`` with Open
MPI). Every machine needs the same Python environment at the same path and password-less ssh
from the first one; NCCL finds its own network between GPUs.

Mixed precision: a gradient scaler's found-inf flag goes through `combine_found_inf` (the
maximum over the ranks), so that every rank skips the same steps.

A rank that raises prints its traceback and aborts the whole job (no rank is left waiting), so
does a rank that ends with ``sys.exit(status)``, status not 0 (after its ``finally`` blocks; a
``raise SystemExit`` written out is not seen: call ``sys.exit``), a rank that is killed ends it
through the MPI launcher, and a collective that waits longer than the timeout
(``init_process_group(timeout=...)``, ``$MINIGRAD_DIST_TIMEOUT``, 30 minutes by default) aborts
it with a message naming the rank and the operation.
"""

from minigrad.distributed.collectives import (  # noqa: F401
    ReduceOp, Work, all_gather, all_reduce, broadcast, combine_found_inf, reduce_scatter,
    run_on_rank_zero,
)
from minigrad.distributed.group import (  # noqa: F401
    ProcessGroup, barrier, destroy_process_group, get_backend, get_local_rank, get_rank,
    get_world_size, init_process_group, is_available, is_initialized, is_mpi_available,
    is_nccl_available, launcher_rank, launcher_world_size, world,
)

__all__ = [
    "ProcessGroup", "ReduceOp", "Work", "all_gather", "all_reduce", "barrier", "broadcast",
    "combine_found_inf", "destroy_process_group", "get_backend", "get_local_rank", "get_rank",
    "get_world_size", "init_process_group", "is_available", "is_initialized",
    "is_mpi_available", "is_nccl_available", "launcher_rank", "launcher_world_size",
    "reduce_scatter", "run_on_rank_zero", "world",
]
