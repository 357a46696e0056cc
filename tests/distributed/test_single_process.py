"""minigrad.distributed in one process (no launcher, no MPI needed): a world of one, where
every collective leaves its tensor as it is, and the errors that say what to do."""

import datetime
import sys

import numpy as np
import pytest

import minigrad as mg
import minigrad.distributed as dist
from minigrad import nn, optim
from minigrad.distributed import group as group_module
from minigrad.nn.parallel import DistributedDataParallel as DDP


@pytest.fixture
def world_of_one(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_RANK",
                 "PMIX_RANK", "MV2_COMM_WORLD_RANK"):
        monkeypatch.delenv(name, raising=False)
    dist.init_process_group()
    yield
    dist.destroy_process_group()


def test_queries_before_init_say_what_to_call():
    assert not dist.is_initialized()
    with pytest.raises(RuntimeError, match="init_process_group"):
        dist.get_rank()
    with pytest.raises(RuntimeError, match="init_process_group"):
        dist.all_reduce(mg.zeros(1))
    with pytest.raises(RuntimeError, match="init_process_group"):
        DDP(nn.Linear(2, 2))


def test_a_world_of_one(world_of_one):
    assert dist.is_initialized() and dist.is_available()
    assert (dist.get_rank(), dist.get_world_size(), dist.get_local_rank()) == (0, 1, 0)
    t = mg.tensor([1.0, -2.0])
    for op in dist.ReduceOp:
        dist.all_reduce(t, op)
    assert t.tolist() == [1.0, -2.0]
    dist.broadcast(t, src=0)
    outs = [mg.zeros(2)]
    dist.all_gather(outs, t)
    out = mg.zeros(2)
    dist.reduce_scatter(out, [t])
    assert outs[0].tolist() == out.tolist() == [1.0, -2.0]
    assert dist.all_reduce(t, async_op=True).wait()
    dist.barrier()
    assert dist.run_on_rank_zero(lambda a, b: a + b, 1, b=2) == 3
    with pytest.raises(RuntimeError, match="twice"):
        dist.init_process_group()


def test_ddp_in_a_world_of_one_is_the_module(world_of_one):
    mg.manual_seed(0)
    net = nn.Linear(3, 2)
    ddp = DDP(net)
    opt = optim.SGD(ddp.parameters(), lr=0.5)
    x = mg.randn(4, 3)
    out = ddp(x)
    np.testing.assert_array_equal(out.detach().numpy(), net(x).detach().numpy())
    out.sum().backward()
    opt.step()
    assert list(ddp.state_dict()) == ["weight", "bias"]
    ddp.load_state_dict({"module.weight": mg.zeros(2, 3), "module.bias": mg.zeros(2)})
    assert net.weight.detach().numpy().sum() == 0
    with ddp.no_sync():
        assert not ddp.require_backward_grad_sync
    assert ddp.require_backward_grad_sync


def test_arguments_are_checked(monkeypatch):
    with pytest.raises(ValueError, match="backend"):
        dist.init_process_group("gloo")
    with pytest.raises(ValueError, match="init_method"):
        dist.init_process_group(init_method="tcp://10.0.0.1:23456")
    with pytest.raises(ValueError, match="positive"):
        group_module._timeout_seconds(0)
    assert group_module._timeout_seconds(datetime.timedelta(minutes=2)) == 120.0
    monkeypatch.setenv(group_module.TIMEOUT_ENV, "7.5")
    assert group_module._timeout_seconds(None) == 7.5
    monkeypatch.delenv(group_module.TIMEOUT_ENV)
    assert group_module._timeout_seconds(None) == group_module.DEFAULT_TIMEOUT
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(RuntimeError, match="RANK"):
        dist.init_process_group()
    assert not dist.is_initialized()


def test_launcher_world_size_reads_the_environment(monkeypatch):
    for name in ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert dist.launcher_world_size() == 1
    monkeypatch.setenv("WORLD_SIZE", "3")
    assert dist.launcher_world_size() == 3
    monkeypatch.setenv("PMI_RANK", "0")
    monkeypatch.setenv("PMI_SIZE", "4")
    assert dist.launcher_world_size() == 4


def test_nccl_without_a_gpu_says_so(world_of_one):
    dist.destroy_process_group()
    if mg.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(RuntimeError, match="needs CuPy and a GPU"):
        dist.init_process_group("nccl")
    dist.init_process_group()  # for the fixture's teardown


def test_tcp_rendezvous_hands_rank_zeros_id_to_the_others(monkeypatch):
    import socket
    import threading

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(port))
    the_id = tuple(range(-64, 64))
    got = {}
    others = [threading.Thread(target=lambda r=r: got.__setitem__(
        r, group_module._tcp_unique_id(r, 3, None, 20))) for r in (1, 2)]
    for t in others:
        t.start()
    assert group_module._tcp_unique_id(0, 3, lambda: the_id, 20) == the_id
    for t in others:
        t.join(20)
    assert got == {1: the_id, 2: the_id}


def test_the_exit_status_that_aborts_a_job_is_pythons():
    # what the process would exit with: sys.exit(None) and 0 succeed, a message exits 1
    codes = [group_module._failure_code(s) for s in (None, 0, 3, True, "bye", 256)]
    assert codes == [0, 0, 3, 1, 1, 0]


def test_a_world_of_one_leaves_sys_exit_alone(world_of_one):
    assert group_module._original_exit is None and sys.exit.__module__ == "sys"


def test_the_exit_hook_records_the_status_and_is_removed():
    original = sys.exit
    group_module._install_exit_hook()
    try:
        assert sys.exit is not original
        with pytest.raises(SystemExit) as info:
            sys.exit(4)
        assert info.value.code == 4 and group_module._exit_status == 4
    finally:
        group_module._uninstall_exit_hook()
    assert sys.exit is original and group_module._exit_status is None
