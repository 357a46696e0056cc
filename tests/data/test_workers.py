"""DataLoader worker processes: the same batches as in the main process, PyTorch's seeding,
worker errors re-raised with their traceback, clean shutdown; samplers; the PyTorch paths."""

from __future__ import annotations

import glob
import os
import random
import time

import numpy as np
import pytest

import minigrad as mg
from minigrad.data import (
    BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler, SubsetRandomSampler,
    TensorDataset, WeightedRandomSampler, get_worker_info,
)
from minigrad.data.worker import _generate_state


class Examples(Dataset):
    """Example i: a (3, 4) float32 array filled with i, the label i, and who loaded it."""

    def __init__(self, n=23, shape=(3, 4)):
        self.n, self.shape = n, shape

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        info = get_worker_info()
        return {"x": np.full(self.shape, i, np.float32), "y": i,
                "worker": -1 if info is None else info.id, "pid": os.getpid()}


class RandomDraws(Dataset):
    """Each example draws from every global generator a worker seeds."""

    def __len__(self):
        return 8

    def __getitem__(self, i):
        info = get_worker_info()
        return (np.random.randint(0, 2**31), random.randint(0, 2**31),
                float(mg.rand(1).item()), info.seed)


def batches(loader):
    out = []
    for batch in loader:
        items = batch.items() if isinstance(batch, dict) else enumerate(batch)
        out.append({k: v.numpy() if isinstance(v, mg.Tensor) else v for k, v in items})
    return out


def same_batches(a, b, keys):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        for k in keys:
            np.testing.assert_array_equal(x[k], y[k])


def shm_files():
    return glob.glob("/dev/shm/minigrad-*")


@pytest.mark.parametrize("kw", [
    dict(batch_size=4),
    dict(batch_size=4, shuffle=True),
    dict(batch_size=5, shuffle=True, drop_last=True),
    dict(batch_size=3, sampler=SubsetRandomSampler(list(range(0, 23, 2)))),
    dict(batch_sampler=BatchSampler(SequentialSampler(range(23)), 6, drop_last=False)),
    dict(batch_size=4, collate_fn=lambda examples: [e["y"] for e in examples]),
])
@pytest.mark.parametrize("num_workers", [1, 3])
def test_same_batches_as_the_main_process(kw, num_workers):
    keys = [0] if "collate_fn" in kw else ["x", "y"]
    mg.manual_seed(5)
    expected = batches(DataLoader(Examples(), **kw))
    mg.manual_seed(5)
    got = batches(DataLoader(Examples(), num_workers=num_workers, **kw))
    same_batches(expected, got, keys)


def test_tensor_dataset_fast_path_with_workers_and_shared_memory():
    x = np.random.default_rng(0).standard_normal((300, 100)).astype(np.float32)  # 40 KB batches
    y = np.arange(300)
    loader = DataLoader(TensorDataset(x, y), batch_size=200, shuffle=True, seed=3, num_workers=2)
    plain = DataLoader(TensorDataset(x, y), batch_size=200, shuffle=True, seed=3)
    for (xb, yb), (xe, ye) in zip(loader, plain):
        np.testing.assert_array_equal(xb.numpy(), xe.numpy())
        np.testing.assert_array_equal(yb.numpy(), ye.numpy())
        assert xb.dtype == np.float32 and xb.numpy().flags.writeable
    assert shm_files() == []


def test_batches_round_robin_over_the_workers_and_get_worker_info():
    got = batches(DataLoader(Examples(n=24), batch_size=4, num_workers=3))
    assert [int(b["worker"][0]) for b in got] == [0, 1, 2, 0, 1, 2]
    assert len({int(b["pid"][0]) for b in got}) == 3
    assert all(int(b["pid"][0]) != os.getpid() for b in got)
    assert get_worker_info() is None


def test_pytorch_seeding_scheme():
    """Worker k: seed = base_seed + k for random and mg; NumPy from _generate_state."""
    mg.manual_seed(11)
    got = batches(DataLoader(RandomDraws(), batch_size=2, num_workers=2))
    mg.manual_seed(11)
    again = batches(DataLoader(RandomDraws(), batch_size=2, num_workers=2))
    same_batches(got, again, [0, 1, 2, 3])  # reproducible
    seed0, seed1 = int(got[0][3][0]), int(got[1][3][0])
    assert seed1 == seed0 + 1
    base = seed0
    np.random.seed(_generate_state(base, 0))
    assert got[0][0].tolist() == [np.random.randint(0, 2**31) for _ in range(2)]
    random.seed(base + 1)
    assert got[1][1].tolist() == [random.randint(0, 2**31) for _ in range(2)]
    mg.manual_seed(base)
    assert np.allclose(got[0][2], [mg.rand(1).item() for _ in range(2)])
    # a new epoch draws a new base seed: new random streams
    loader = DataLoader(RandomDraws(), batch_size=2, num_workers=2)
    first, second = batches(loader), batches(loader)
    assert int(first[0][3][0]) != int(second[0][3][0])


@pytest.mark.torch
def test_generate_state_is_pytorchs():
    pytest.importorskip("torch")
    from torch.utils.data._utils.worker import _generate_state as torch_generate_state

    for base, worker in [(0, 0), (1, 3), (2**62 + 12345, 7), (987654321987, 1)]:
        assert _generate_state(base, worker) == torch_generate_state(base, worker)


class Offset(Dataset):
    offset = 0

    def __len__(self):
        return 6

    def __getitem__(self, i):
        return i + self.offset


def _set_offset(worker_id):
    get_worker_info().dataset.offset = 100 * (worker_id + 1)


def test_worker_init_fn_runs_in_each_worker():
    got = [b.tolist() for b in DataLoader(Offset(), batch_size=2, num_workers=2,
                                          worker_init_fn=_set_offset)]
    assert got == [[100, 101], [202, 203], [104, 105]]
    assert Offset.offset == 0  # the main process's dataset is untouched


class Failing(Dataset):
    def __init__(self, exc):
        self.exc = exc

    def __len__(self):
        return 8

    def __getitem__(self, i):
        if i == 5:
            raise self.exc
        return i


def test_worker_errors_are_raised_with_the_workers_traceback():
    loader = DataLoader(Failing(ValueError("bad example 5")), batch_size=2, num_workers=2)
    seen = []
    with pytest.raises(ValueError) as info:
        for batch in loader:
            seen.append(batch.tolist())
    assert seen == [[0, 1], [2, 3]]  # the batches before the failing one came through
    message = str(info.value)
    assert "Caught ValueError in DataLoader worker process 0" in message
    assert "Original Traceback" in message and "__getitem__" in message
    assert "bad example 5" in message
    with pytest.raises(KeyError, match="Caught KeyError"):
        list(DataLoader(Failing(KeyError("k")), batch_size=2, num_workers=1))
    assert shm_files() == []


def _failing_init(worker_id):
    raise OSError(f"no data for worker {worker_id}")


def test_worker_init_fn_errors_are_raised():
    with pytest.raises(OSError, match="in worker_init_fn"):
        list(DataLoader(Offset(), batch_size=2, num_workers=2, worker_init_fn=_failing_init))


class Dying(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        if i == 2:
            os._exit(3)
        return i


def test_a_dead_worker_is_reported():
    with pytest.raises(RuntimeError, match="exited unexpectedly with exit code 3"):
        list(DataLoader(Dying(), batch_size=2, num_workers=2))


class Slow(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        time.sleep(3)
        return i


def test_timeout():
    with pytest.raises(RuntimeError, match="timed out after 0.5 seconds"):
        list(DataLoader(Slow(), batch_size=2, num_workers=1, timeout=0.5))


def test_workers_stop_after_an_epoch_and_after_a_break():
    loader = DataLoader(Examples(), batch_size=4, num_workers=2)
    it = iter(loader)
    next(it)
    workers = list(it.pool.workers)
    assert all(w.is_alive() for w in workers)
    for _ in it:
        pass
    assert not any(w.is_alive() for w in workers)
    it = iter(loader)  # abandoned mid-epoch
    next(it)
    workers = list(it.pool.workers)
    del it
    for w in workers:
        w.join(timeout=10)
    assert not any(w.is_alive() for w in workers)
    assert shm_files() == []


def test_persistent_workers_live_across_epochs():
    loader = DataLoader(Examples(), batch_size=4, num_workers=2, persistent_workers=True)
    pids = [{int(b["pid"][0]) for b in batches(loader)} for _ in range(3)]
    assert pids[0] == pids[1] == pids[2] and len(pids[0]) == 2
    it = iter(loader)
    next(it)  # abandon an epoch: the next one still gets exactly its own batches
    same_batches(batches(DataLoader(Examples(), batch_size=4)), batches(loader), ["x", "y"])
    workers = list(loader._pool.workers)
    del it, loader
    for w in workers:
        w.join(timeout=10)
    assert not any(w.is_alive() for w in workers)


def test_spawn_context():
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    loader = DataLoader(TensorDataset(x), batch_size=4, num_workers=1,
                        multiprocessing_context="spawn")
    np.testing.assert_array_equal(np.concatenate([b.numpy() for (b,) in loader]), x)


def test_pytorch_options_are_checked():
    with pytest.raises(ValueError, match="prefetch_factor"):
        DataLoader(Examples(), prefetch_factor=2)
    with pytest.raises(ValueError, match="persistent_workers"):
        DataLoader(Examples(), persistent_workers=True)
    with pytest.raises(ValueError, match="num_workers"):
        DataLoader(Examples(), num_workers=-1)
    with pytest.raises(ValueError, match="batch_sampler"):
        DataLoader(Examples(), batch_size=2, batch_sampler=[[0]])
    loader = DataLoader(Examples(), batch_size=4, num_workers=2, pin_memory=True,
                        prefetch_factor=4)
    assert len(loader) == 6 and len(list(loader)) == 6


# ---------------------------------------------------------------------------- samplers


def test_samplers():
    g = np.random.default_rng(0)
    perm = list(RandomSampler(range(10), generator=g))
    assert sorted(perm) == list(range(10))
    assert len(list(RandomSampler(range(10), num_samples=25))) == 25
    draws = list(RandomSampler(range(3), replacement=True, num_samples=50))
    assert set(draws) <= {0, 1, 2}
    weighted = list(WeightedRandomSampler([0.0, 1.0, 0.0, 3.0], 100))
    assert set(weighted) <= {1, 3} and weighted.count(3) > weighted.count(1)
    assert sorted(WeightedRandomSampler([1, 1, 1], 3, replacement=False)) == [0, 1, 2]
    with pytest.raises(ValueError):
        WeightedRandomSampler([1, 0], 2, replacement=False)
    assert sorted(SubsetRandomSampler([3, 5, 7])) == [3, 5, 7]
    assert list(BatchSampler(range(5), 2, drop_last=True)) == [[0, 1], [2, 3]]
    assert len(BatchSampler(range(5), 2, drop_last=False)) == 3
    mg.manual_seed(1)
    a = list(RandomSampler(range(10)))
    mg.manual_seed(1)
    assert a == list(RandomSampler(range(10)))  # no generator: mg.manual_seed decides
    loader = DataLoader(Examples(), batch_size=4, sampler=RandomSampler(Examples(), generator=g))
    assert sorted(np.concatenate([b["y"].numpy() for b in loader]).tolist()) == list(range(23))


def test_the_pytorch_import_paths():
    from minigrad.utils import data as utils_data
    from minigrad.utils.data.distributed import DistributedSampler

    assert utils_data.DataLoader is mg.data.DataLoader is DataLoader
    assert DistributedSampler is mg.data.DistributedSampler
    for name in ("Dataset", "TensorDataset", "Subset", "random_split", "default_collate",
                 "RandomSampler", "SequentialSampler", "BatchSampler", "WeightedRandomSampler",
                 "SubsetRandomSampler", "Sampler", "get_worker_info"):
        assert getattr(utils_data, name) is getattr(mg.data, name)
