"""The rank side of the multi-process tests: ``mpiexec -n N python mpi_worker.py SCENARIO OUT``.

Each scenario runs on every rank and writes what the test checks into OUT (``rank{r}.npz`` for
arrays, ``rank{r}.json`` for numbers and strings); the assertions are in the test modules.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

SCENARIO, OUT = sys.argv[1], Path(sys.argv[2])

if SCENARIO.startswith("nccl"):  # the fake CuPy and NCCL go in before minigrad looks for CuPy
    import fake_cuda
    import fake_nccl

    fake_cuda.install()
    import cupy  # noqa: E402  (the fake)

    from fake_cuda import _cuda as fake_cuda_module

    fake_cuda_module.DEVICE_COUNT = int(os.environ.get("PMI_SIZE", "2"))
    fake_cuda_module.Stream.wait_event = lambda self, event: None  # its work is already done
    _use = fake_cuda_module.Device.use

    def _use_and_remember(self):
        _use(self)
        fake_nccl.CURRENT_DEVICE[0] = self.id

    fake_cuda_module.Device.use = _use_and_remember
    cupy.cuda.nccl = fake_nccl
    sys.modules["cupy.cuda.nccl"] = fake_nccl

import minigrad as mg  # noqa: E402
import minigrad.distributed as dist  # noqa: E402
from minigrad import nn, optim  # noqa: E402
from minigrad.nn import functional as F  # noqa: E402
from minigrad.nn.parallel import DistributedDataParallel as DDP  # noqa: E402

from dist_cases import DTYPES, OPS, rank_input  # noqa: E402


def save(rank: int, arrays: dict, values: dict) -> None:
    np.savez(OUT / f"rank{rank}.npz", **arrays)
    (OUT / f"rank{rank}.json").write_text(json.dumps(values))


def numpy_of(t) -> np.ndarray:
    """A copy (the CPU array of a tensor is the tensor's own memory)."""
    return np.array(mg.backend.to_device(t.detach().data, mg.backend.CPU))


def flat_params(module) -> np.ndarray:
    return np.concatenate([numpy_of(p).ravel() for p in module.parameters()])


class CallCounter:
    """Counts the MPI calls of the process group (wraps its MPIBackend's methods)."""

    def __init__(self, group) -> None:
        self.calls: list = []
        for name in ("all_reduce", "iall_reduce", "start", "broadcast", "all_gather",
                     "reduce_scatter", "ibarrier"):
            method = getattr(group.mpi, name)
            setattr(group.mpi, name, self._counting(name, method))

    def _counting(self, name, method):
        def counted(*args, **kwargs):
            self.calls.append(name)
            return method(*args, **kwargs)
        return counted

    def __len__(self) -> int:
        return len(self.calls)


# ------------------------------------------------------------------------------------------
def scenario_collectives() -> None:
    dist.init_process_group()
    r, n = dist.get_rank(), dist.get_world_size()
    arrays, values = {}, {"rank": r, "size": n, "backend": dist.get_backend()}
    for dtype in DTYPES:
        for op in OPS:
            if dtype == "bool" and op == "AVG":
                continue
            t = mg.tensor(rank_input(r, dtype))
            dist.all_reduce(t, getattr(dist.ReduceOp, op))
            arrays[f"all_reduce/{dtype}/{op}"] = numpy_of(t)
        t = mg.tensor(rank_input(r, dtype))
        dist.broadcast(t, src=n - 1)
        arrays[f"broadcast/{dtype}"] = numpy_of(t)
        outs = [mg.tensor(np.zeros((2, 3), dtype=dtype)) for _ in range(n)]
        dist.all_gather(outs, mg.tensor(rank_input(r, dtype)))
        arrays[f"all_gather/{dtype}"] = np.stack([numpy_of(o) for o in outs])
        for op in ("SUM", "MAX", "AVG"):
            if dtype == "bool" and op == "AVG":
                continue
            out = mg.tensor(np.zeros((2, 3), dtype=dtype))
            dist.reduce_scatter(out, [mg.tensor(rank_input(r + 7 * i, dtype))
                                      for i in range(n)], getattr(dist.ReduceOp, op))
            arrays[f"reduce_scatter/{dtype}/{op}"] = numpy_of(out)
    # a non-contiguous tensor, a 0-d one, an empty one, asynchronously, a barrier
    t = mg.tensor(rank_input(r, "float32").T)
    dist.all_reduce(t)
    arrays["all_reduce/transposed"] = numpy_of(t)
    t = mg.tensor(float(r + 1))
    dist.all_reduce(t, dist.ReduceOp.PRODUCT)
    arrays["all_reduce/scalar"] = numpy_of(t)
    t = mg.zeros(0)
    dist.all_reduce(t)
    arrays["all_reduce/empty"] = numpy_of(t)
    t = mg.tensor(rank_input(r, "float64"))
    work = dist.all_reduce(t, async_op=True)
    work.wait()
    arrays["all_reduce/async"] = numpy_of(t)
    dist.barrier()
    # a persistent all-reduce: set up once, started three times on new contents
    group = dist.world()
    buf = np.zeros((2, 3), np.float32)
    persistent = group.all_reduce_init(buf)
    values["persistent_made"] = persistent is not None
    for k in range(3):
        buf[...] = rank_input(r + k, "float32")
        persistent.start().wait()
        arrays[f"persistent/{k}"] = buf.copy()
    persistent.free()
    values["persistent_declined"] = {  # the cases that need a conversion around the call
        "avg": group.all_reduce_init(np.zeros(3, np.float32), "avg") is None,
        "bool": group.all_reduce_init(np.zeros(3, np.bool_)) is None,
        "strided": group.all_reduce_init(np.zeros((3, 2), np.float32).T) is None,
        "float32": group.all_reduce_init(np.zeros(3, np.float32)) is not None}
    arrays["found_inf"] = numpy_of(dist.combine_found_inf(mg.tensor([float(r == n - 1)])))
    errors = {}
    for name, call in {
        "bad_src": lambda: dist.broadcast(mg.zeros(1), src=n),
        "bad_list": lambda: dist.all_gather([mg.zeros(1)] * (n + 1), mg.zeros(1)),
        "bad_op": lambda: dist.all_reduce(mg.zeros(1), "sum"),
        "bool_avg": lambda: dist.all_reduce(mg.tensor([True]), dist.ReduceOp.AVG),
    }.items():
        try:
            call()
            errors[name] = None
        except (ValueError, TypeError) as exc:
            errors[name] = f"{type(exc).__name__}: {exc}"
    values["errors"] = errors
    save(r, arrays, values)


# ------------------------------------------------------------------------------------------
BUCKET_MB = 0.001  # about 262 float32 per bucket: the test model's 2125 fill 9


def make_net() -> nn.Module:
    return nn.Sequential(nn.Linear(6, 40), nn.Tanh(), nn.Linear(40, 40), nn.Tanh(),
                         nn.Linear(40, 5))


class Branchy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 3)
        self.b = nn.Linear(4, 3)
        self.never = nn.Linear(4, 3)

    def forward(self, x, use_b: bool):
        out = self.a(x)
        return out + self.b(x) if use_b else out


class WithBuffer(nn.Module):
    def __init__(self, rank: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
        self.register_buffer("stat", mg.full((3,), float(rank)))

    def forward(self, x):
        return self.body(x)


def scenario_ddp() -> None:
    dist.init_process_group()
    group = dist.world()
    r, n = group.rank, group.size
    arrays, values = {}, {}
    rng = np.random.default_rng(0)
    per_rank, steps = 8, 20
    X = rng.normal(size=(steps, per_rank * n, 6)).astype(np.float32)
    Y = rng.integers(0, 5, size=(steps, per_rank * n))

    # 1. N ranks on 1/N shards == one process on the whole batch, after 20 Adam steps
    mg.manual_seed(100 + r)  # a different start on every rank: the wrap broadcasts rank 0's
    net = make_net()
    start = {k: numpy_of(v).copy() for k, v in net.state_dict().items()}
    counter = CallCounter(group)
    ddp = DDP(net, bucket_cap_mb=BUCKET_MB)
    values["wrap_calls"] = len(counter)
    finish, launched_in_backward = ddp._finish, []

    def recording_finish():
        launched_in_backward.append(ddp._next)
        finish()

    ddp._finish = recording_finish
    opt = optim.Adam(ddp.parameters(), lr=1e-2)
    per_step = []
    for step in range(steps):
        before = len(counter)
        shard = slice(r * per_rank, (r + 1) * per_rank)
        opt.zero_grad()
        loss = F.cross_entropy(ddp(mg.tensor(X[step, shard])), mg.tensor(Y[step, shard]))
        loss.backward()
        opt.step()
        per_step.append(len(counter) - before)
    values["calls_per_step"] = per_step
    values["chunks"] = len(ddp._chunks)
    values["persistent_chunks"] = sum(c.persistent is not None for c in ddp._chunks)
    values["blocking_chunks"] = sum(c.blocking for c in ddp._chunks)
    values["open_mpi"] = group.mpi.nonblocking_is_slow
    values["launched_in_backward"] = launched_in_backward
    values["param_bytes"] = int(sum(p.data.nbytes for p in net.parameters()))
    values["bucket_bytes"] = ddp.bucket_bytes
    arrays["ddp_params"] = flat_params(net)
    values["state_dict_keys"] = list(ddp.state_dict())
    if r == 0:  # the reference: rank 0's start, the whole batch, one process
        ref = make_net()
        ref.load_state_dict(start)
        opt = optim.Adam(ref.parameters(), lr=1e-2)
        for step in range(steps):
            opt.zero_grad()
            F.cross_entropy(ref(mg.tensor(X[step])), mg.tensor(Y[step])).backward()
            opt.step()
        arrays["single_params"] = flat_params(ref)

    # 1a. the same steps with Iallreduce at each launch (no persistent all-reduce), and with a
    # blocking Allreduce at each launch (Open MPI's default)
    iallreduce = {"MINIGRAD_MPI_PERSISTENT": "0", "MINIGRAD_MPI_BLOCKING": "0"}
    for name, env in (("iallreduce", iallreduce), ("blocking", {"MINIGRAD_MPI_BLOCKING": "1"})):
        os.environ.update(env)
        mg.manual_seed(100 + r)
        net = make_net()
        ddp = DDP(net, bucket_cap_mb=BUCKET_MB)
        for key in env:
            del os.environ[key]
        values[f"{name}_persistent_chunks"] = sum(c.persistent is not None for c in ddp._chunks)
        values[f"{name}_blocking_chunks"] = sum(c.blocking for c in ddp._chunks)
        opt = optim.Adam(ddp.parameters(), lr=1e-2)
        for step in range(steps):
            shard = slice(r * per_rank, (r + 1) * per_rank)
            opt.zero_grad()
            F.cross_entropy(ddp(mg.tensor(X[step, shard])), mg.tensor(Y[step, shard])).backward()
            opt.step()
        arrays[f"{name}_params"] = flat_params(net)

    # 1b. gradient_as_bucket_view: the same steps, .grad a view of the bucket (set to None by
    # zero_grad, or kept and zeroed in place: then the engine accumulates into the bucket)
    for set_to_none in (True, False):
        mg.manual_seed(100 + r)
        net = make_net()
        ddp = DDP(net, bucket_cap_mb=BUCKET_MB, gradient_as_bucket_view=True)
        opt = optim.Adam(ddp.parameters(), lr=1e-2)
        grad_ids, in_bucket = set(), True
        for step in range(steps):
            opt.zero_grad(set_to_none=set_to_none)
            shard = slice(r * per_rank, (r + 1) * per_rank)
            F.cross_entropy(ddp(mg.tensor(X[step, shard])), mg.tensor(Y[step, shard])).backward()
            grad_ids.update(id(p.grad.data) for p in net.parameters())
            in_bucket &= all(any(np.shares_memory(p.grad.data, g.flat) for g in ddp._groups)
                             for p in net.parameters())
            opt.step()
        arrays[f"view_params_{set_to_none}"] = flat_params(net)
        values[f"view_in_bucket_{set_to_none}"] = bool(in_bucket)
        # one .grad array per parameter for the whole run: nothing allocated per step
        values[f"view_grad_arrays_{set_to_none}"] = len(grad_ids)
    values["n_params"] = len(list(net.parameters()))

    # 2. no_sync: two micro-batches, gradients averaged once, over their sum
    mg.manual_seed(5)
    net = make_net()
    start = {k: numpy_of(v).copy() for k, v in net.state_dict().items()}
    ddp = DDP(net, bucket_cap_mb=BUCKET_MB)
    shard = slice(r * per_rank, (r + 1) * per_rank)
    before = len(counter)
    with ddp.no_sync():
        F.cross_entropy(ddp(mg.tensor(X[0, shard])), mg.tensor(Y[0, shard])).backward()
    values["no_sync_calls"] = len(counter) - before
    F.cross_entropy(ddp(mg.tensor(X[1, shard])), mg.tensor(Y[1, shard])).backward()
    arrays["no_sync_grads"] = np.concatenate([numpy_of(p.grad).ravel()
                                              for p in net.parameters()])
    if r == 0:
        ref = make_net()
        ref.load_state_dict(start)
        total = None
        for k in range(n):
            part = slice(k * per_rank, (k + 1) * per_rank)
            for step in (0, 1):
                term = F.cross_entropy(ref(mg.tensor(X[step, part])),
                                       mg.tensor(Y[step, part]))
                total = term if total is None else total + term
        (total / n).backward()
        arrays["no_sync_reference"] = np.concatenate([numpy_of(p.grad).ravel()
                                                      for p in ref.parameters()])

    # 3. a parameter used on some ranks only, one used nowhere
    mg.manual_seed(9)
    model = Branchy()
    ddp = DDP(model)
    opt = optim.SGD(ddp.parameters(), lr=0.1)
    x = mg.tensor(rng.normal(size=(4, 4)).astype(np.float32) + r)
    opt.zero_grad()
    loss = ddp(x, use_b=(r == 0)).sum()
    if r == 0:
        (local_b,) = mg.grad(loss, [model.b.weight], retain_graph=True)
        arrays["unused_local_b"] = numpy_of(local_b)
    loss.backward()
    arrays["unused_b_grad"] = numpy_of(model.b.weight.grad)
    values["unused_never_grad_is_none"] = model.never.weight.grad is None
    opt.step()
    opt.zero_grad()
    ddp(x, use_b=False).sum().backward()  # b unused on every rank
    values["unused_everywhere_b_grad_is_none"] = model.b.weight.grad is None
    opt.step()
    opt.zero_grad()
    ddp(x, use_b=True).sum().backward()
    opt.step()
    arrays["unused_params"] = flat_params(model)

    # 4. frozen parameters and buffers, then unfrozen; a mismatched freeze is an error
    mg.manual_seed(200 + r)
    model = WithBuffer(r)
    model.body[0].requires_grad_(False)
    ddp = DDP(model)
    arrays["frozen_after_wrap"] = numpy_of(model.body[0].weight)
    arrays["buffer_after_wrap"] = numpy_of(model.stat)
    opt = optim.SGD(ddp.parameters(), lr=0.1)
    for step in range(3):
        opt.zero_grad()
        ddp(mg.tensor(X[step, :4, :4])).sum().backward()
        opt.step()
    values["frozen_grad_is_none"] = model.body[0].weight.grad is None
    arrays["frozen_after_steps"] = numpy_of(model.body[0].weight)
    model.body[0].requires_grad_(True)
    for step in range(2):
        opt.zero_grad()
        ddp(mg.tensor(X[step, :4, :4] * (r + 1))).sum().backward()
        opt.step()
    values["unfrozen_has_grad"] = model.body[0].weight.grad is not None
    arrays["unfrozen_params"] = flat_params(model)
    if n > 1:  # rank 0 freezes one layer, the others another: every rank sees a change
        model.body[2 if r == 0 else 0].requires_grad_(False)
        try:
            ddp(mg.tensor(X[0, :4, :4])).sum().backward()
            values["freeze_error"] = None
        except RuntimeError as exc:
            values["freeze_error"] = str(exc)
    save(r, arrays, values)


# ------------------------------------------------------------------------------------------
def scenario_training() -> None:
    from minigrad import keras
    from minigrad.data import DataLoader, DistributedSampler, Subset, TensorDataset
    from minigrad.finetune import checkpoint, load_checkpoint, save_checkpoint
    from minigrad.train import Callback, accuracy, evaluate, fit

    dist.init_process_group()
    r, n = dist.get_rank(), dist.get_world_size()
    arrays, values = {}, {}
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 5)).astype(np.float32)
    Y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0.5)
    Xv = rng.normal(size=(25, 5)).astype(np.float32)
    Yv = (Xv[:, 0] > 0).astype(np.int64) + (Xv[:, 1] > 0.5)
    train_set, val_set = TensorDataset(X, Y), TensorDataset(Xv, Yv)
    sampler = DistributedSampler(train_set, seed=3)
    loader = DataLoader(train_set, batch_size=6, sampler=sampler)
    val_loader = DataLoader(Subset(val_set, np.arange(r, len(val_set), n)), batch_size=6)

    def make() -> nn.Module:
        mg.manual_seed(0)
        return nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))

    writes = []
    real_save = checkpoint.save

    def counting_save(*args, **kwargs):
        writes.append(args[1])
        return real_save(*args, **kwargs)

    checkpoint.save = counting_save

    # A: four epochs in one go
    mg.manual_seed(7)
    net_a = make()
    ddp_a = DDP(net_a)
    opt_a = optim.Adam(ddp_a.parameters(), lr=0.02)
    log = io.StringIO()
    history = fit(ddp_a, nn.CrossEntropyLoss(), opt_a, loader, epochs=4, val_loader=val_loader,
                  metrics={"accuracy": accuracy}, verbose=2, file=log)
    values["history"] = history.history
    values["log"] = log.getvalue()
    arrays["run_a"] = flat_params(net_a)
    full = evaluate(net_a, nn.CrossEntropyLoss(), DataLoader(val_set, batch_size=7),
                    {"accuracy": accuracy})
    values["full_val"] = full

    # B: two epochs and a checkpoint (rank 0 writes), then new objects resume to four
    path = OUT / "ckpt.safetensors"

    class Checkpoint(Callback):
        def on_epoch_end(self, epoch, logs=None):
            save_checkpoint(path, model=net_b, optimizer=opt_b, epoch=epoch + 1)

    mg.manual_seed(7)
    net_b = make()
    ddp_b = DDP(net_b)
    opt_b = optim.Adam(ddp_b.parameters(), lr=0.02)
    fit(ddp_b, nn.CrossEntropyLoss(), opt_b, loader, epochs=2, callbacks=[Checkpoint()],
        verbose=0)
    values["checkpoint_writes"] = len(writes)
    mg.manual_seed(123)
    net_c = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))
    ddp_c = DDP(net_c)
    opt_c = optim.Adam(ddp_c.parameters(), lr=0.02)
    info = load_checkpoint(path, model=net_c, optimizer=opt_c)
    fit(ddp_c, nn.CrossEntropyLoss(), opt_c, loader, epochs=4, initial_epoch=info["epoch"],
        verbose=0)
    arrays["run_resumed"] = flat_params(net_c)

    # the Keras facade: global batch split over the ranks, rank 0 saves
    mg.manual_seed(0)
    model = keras.Sequential([keras.layers.Dense(16, activation="relu", input_shape=(5,)),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    keras_history = model.fit(X, Y, batch_size=4 * n, epochs=3, validation_data=(Xv, Yv),
                              verbose=0)
    values["keras_history"] = keras_history.history
    arrays["keras_weights"] = np.concatenate([w.ravel() for w in model.get_weights()])
    from minigrad.keras import models as keras_models

    keras_writes = []
    real_keras_save = keras_models.save
    keras_models.save = lambda *a, **k: (keras_writes.append(a[1]), real_keras_save(*a, **k))
    model.save_weights(OUT / "keras.safetensors")
    values["keras_writes"] = len(keras_writes)
    try:
        model.fit(X, Y, batch_size=4 * n + 1, epochs=1, verbose=0)
        values["keras_batch_error"] = None
    except ValueError as exc:
        values["keras_batch_error"] = str(exc)
    save(r, arrays, values)


# ------------------------------------------------------------------------------------------
def scenario_raise() -> None:
    dist.init_process_group()
    r = dist.get_rank()
    dist.barrier()
    if r == 1:
        raise ValueError("boom on rank 1")
    dist.all_reduce(mg.zeros(3))  # rank 0 waits here for a rank that is gone
    time.sleep(60)


def scenario_exit() -> None:
    dist.init_process_group()
    dist.barrier()
    if dist.get_rank() == 1:
        try:
            sys.exit(3)
        finally:
            print("rank 1 cleaned up", flush=True)
    dist.all_reduce(mg.zeros(3))  # rank 0 waits here for a rank that is gone
    time.sleep(60)


def scenario_killed() -> None:
    dist.init_process_group()
    dist.barrier()
    if dist.get_rank() == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    dist.all_reduce(mg.zeros(3))
    time.sleep(60)


def scenario_timeout() -> None:
    dist.init_process_group(timeout=float(os.environ["WORKER_TIMEOUT"]))
    if dist.get_rank() == 1:
        time.sleep(60)  # never reaches the all-reduce
    dist.all_reduce(mg.zeros(3))


# ------------------------------------------------------------------------------------------
def scenario_nccl() -> None:
    import fake_nccl

    dist.init_process_group(backend="nccl")
    group = dist.world()
    r, n = group.rank, group.size
    arrays, values = {}, {"backend": dist.get_backend(), "local_rank": dist.get_local_rank()}
    counter = CallCounter(group)
    for op in ("SUM", "AVG", "MAX"):
        t = mg.tensor(rank_input(r, "float32"), device="cuda")
        dist.all_reduce(t, getattr(dist.ReduceOp, op))
        arrays[f"all_reduce/float32/{op}"] = numpy_of(t)
    t = mg.tensor(rank_input(r, "int64"), device="cuda")
    dist.all_reduce(t)
    arrays["all_reduce/int64/SUM"] = numpy_of(t)
    t = mg.tensor(rank_input(r, "bool"), device="cuda")
    dist.all_reduce(t)
    arrays["all_reduce/bool/SUM"] = numpy_of(t)
    t = mg.tensor(rank_input(r, "float32"), device="cuda")
    dist.broadcast(t, src=n - 1)
    arrays["broadcast/float32"] = numpy_of(t)
    outs = [mg.zeros(2, 3, device="cuda") for _ in range(n)]
    dist.all_gather(outs, mg.tensor(rank_input(r, "float32"), device="cuda"))
    arrays["all_gather/float32"] = np.stack([numpy_of(o) for o in outs])
    out = mg.zeros(2, 3, device="cuda")
    dist.reduce_scatter(out, [mg.tensor(rank_input(r + 7 * i, "float32"), device="cuda")
                              for i in range(n)])
    arrays["reduce_scatter/float32/SUM"] = numpy_of(out)
    values["mpi_calls_for_gpu_arrays"] = len(counter)
    t = mg.tensor(rank_input(r, "float32"))  # a CPU tensor: through MPI
    dist.all_reduce(t)
    arrays["cpu/all_reduce"] = numpy_of(t)
    values["mpi_calls_for_cpu_array"] = len(counter) - values["mpi_calls_for_gpu_arrays"]

    # DDP on the GPU (NCCL on a side stream) and on the CPU (MPI) from one start
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5, 4 * n, 6)).astype(np.float32)
    Y = rng.integers(0, 5, size=(5, 4 * n))
    results = {}
    for device in ("cuda", "cpu"):
        mg.manual_seed(11)
        net = make_net().to(device)
        ddp = DDP(net, bucket_cap_mb=BUCKET_MB)
        opt = optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
        shard = slice(4 * r, 4 * r + 4)
        for step in range(5):
            opt.zero_grad()
            F.cross_entropy(ddp(mg.tensor(X[step, shard], device=device)),
                            mg.tensor(Y[step, shard], device=device)).backward()
            opt.step()
        results[device] = flat_params(net)
    arrays["ddp_cuda"], arrays["ddp_cpu"] = results["cuda"], results["cpu"]
    values["nccl_calls"] = [list(c[:3]) for c in fake_nccl.CALLS]
    save(r, arrays, values)


def scenario_nccl_without_mpi() -> None:
    """As a launcher other than MPI's would start it: RANK/WORLD_SIZE, MASTER_ADDR/PORT (the
    stand-in itself still exchanges its bytes through MPI)."""
    from minigrad.distributed import group as dist_group

    rank, size = dist_group.launcher_rank(), dist_group.launcher_world_size()
    os.environ["RANK"], os.environ["WORLD_SIZE"] = str(rank), str(size)
    for name in dist_group._MPI_RANK_VARS + dist_group._MPI_SIZE_VARS:  # MPICH's, Open MPI's
        os.environ.pop(name, None)
    dist.init_process_group()
    group = dist.world()
    r = group.rank
    values = {"backend": group.backend, "has_mpi": group.mpi is not None}
    t = mg.tensor(rank_input(r, "float32"))  # a CPU tensor, by way of the GPU
    dist.all_reduce(t)
    arrays = {"cpu/all_reduce": numpy_of(t)}
    dist.barrier()
    mg.manual_seed(20 + r)
    net = make_net().to("cuda")
    ddp = DDP(net, bucket_cap_mb=BUCKET_MB)  # its model check gathers host arrays
    opt = optim.SGD(ddp.parameters(), lr=0.1)
    x = mg.tensor(np.full((3, 6), r + 1.0, dtype=np.float32), device="cuda")
    for _ in range(2):
        opt.zero_grad()
        ddp(x).sum().backward()
        opt.step()
    arrays["ddp_cuda"] = flat_params(net)
    save(r, arrays, values)


# ------------------------------------------------------------------------------------------
def scenario_torch_ddp() -> None:
    import torch
    import torch.distributed as tdist
    from torch.nn.parallel import DistributedDataParallel as TorchDDP

    dist.init_process_group()
    r, n = dist.get_rank(), dist.get_world_size()
    os.environ.update({"RANK": str(r), "WORLD_SIZE": str(n)})
    tdist.init_process_group("gloo")
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    steps, per_rank = 20, 8
    X = rng.normal(size=(steps, per_rank * n, 6)).astype(np.float32)
    Y = rng.integers(0, 5, size=(steps, per_rank * n))
    mg.manual_seed(0)
    net = make_net()
    tnet = torch.nn.Sequential(torch.nn.Linear(6, 40), torch.nn.Tanh(), torch.nn.Linear(40, 40),
                               torch.nn.Tanh(), torch.nn.Linear(40, 5))
    tnet.load_state_dict({k: torch.from_numpy(numpy_of(v).copy())
                          for k, v in net.state_dict().items()})
    ddp, tddp = DDP(net), TorchDDP(tnet)
    opt = optim.Adam(ddp.parameters(), lr=1e-2)
    topt = torch.optim.Adam(tddp.parameters(), lr=1e-2)
    shard = slice(r * per_rank, (r + 1) * per_rank)
    for step in range(steps):
        opt.zero_grad()
        F.cross_entropy(ddp(mg.tensor(X[step, shard])), mg.tensor(Y[step, shard])).backward()
        opt.step()
        topt.zero_grad()
        torch.nn.functional.cross_entropy(tddp(torch.from_numpy(X[step, shard])),
                                          torch.from_numpy(Y[step, shard])).backward()
        topt.step()
    arrays = {"minigrad": flat_params(net),
              "torch": np.concatenate([p.detach().numpy().ravel() for p in tnet.parameters()])}
    tdist.destroy_process_group()
    save(r, arrays, {})


if __name__ == "__main__":
    globals()[f"scenario_{SCENARIO}"]()
