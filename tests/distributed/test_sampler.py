"""DistributedSampler: PyTorch's split and, when shuffling, PyTorch's very order."""

import numpy as np
import pytest

from minigrad.data import DataLoader, DistributedSampler, TensorDataset, randperm


def test_split_pads_by_wrapping_round():
    shards = [list(DistributedSampler(range(10), 4, r, shuffle=False)) for r in range(4)]
    assert shards == [[0, 4, 8], [1, 5, 9], [2, 6, 0], [3, 7, 1]]
    assert all(len(DistributedSampler(range(10), 4, r)) == 3 for r in range(4))
    # more padding than data: wraps round several times
    assert [list(DistributedSampler(range(2), 5, r, shuffle=False)) for r in range(5)] == \
        [[0], [1], [0], [1], [0]]


def test_drop_last_cuts_the_tail():
    shards = [list(DistributedSampler(range(10), 4, r, shuffle=False, drop_last=True))
              for r in range(4)]
    assert shards == [[0, 4], [1, 5], [2, 6], [3, 7]]


def test_shuffle_is_the_same_on_every_rank_and_changes_with_the_epoch():
    samplers = [DistributedSampler(range(50), 3, r, seed=4) for r in range(3)]
    first = [list(s) for s in samplers]
    assert sorted(sum(first, [])) == sorted([*range(50), first[0][0]])  # one index padded
    for s in samplers:
        s.set_epoch(1)
    assert [list(s) for s in samplers] != first
    padded = randperm(50, 4).tolist()
    padded += padded[:1]
    assert first == [padded[r::3] for r in range(3)]


def test_randperm_known_values():
    # torch.randperm(10, generator=torch.Generator().manual_seed(5))
    assert randperm(10, 5).tolist() == [1, 4, 9, 6, 3, 5, 0, 2, 8, 7]
    assert randperm(0, 1).tolist() == [] and randperm(1, 1).tolist() == [0]


def test_bad_rank_and_no_process_group():
    with pytest.raises(ValueError, match="Invalid rank 3"):
        DistributedSampler(range(4), num_replicas=3, rank=3)
    with pytest.raises(RuntimeError, match="init_process_group"):
        DistributedSampler(range(4))


def test_dataloader_takes_a_sampler():
    x = np.arange(10, dtype=np.float32)
    data = TensorDataset(x, x)
    sampler = DistributedSampler(data, 2, 1, shuffle=True, seed=3)
    loader = DataLoader(data, batch_size=2, sampler=sampler)
    assert len(loader) == 3
    got = np.concatenate([xb.numpy() for xb, _ in loader])
    np.testing.assert_array_equal(got, np.array(list(sampler), dtype=np.float32))
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader(data, batch_size=2, shuffle=True, sampler=sampler)


@pytest.mark.torch
@pytest.mark.parametrize("n", [0, 1, 2, 7, 10, 97, 1000])
@pytest.mark.parametrize("seed", [0, 5, 2**32 + 3])
def test_randperm_is_torchs(n, seed):
    torch = pytest.importorskip("torch")
    g = torch.Generator()
    g.manual_seed(seed)
    assert randperm(n, seed).tolist() == torch.randperm(n, generator=g).tolist()


@pytest.mark.torch
@pytest.mark.parametrize("n", [0, 5, 10, 13, 64])
@pytest.mark.parametrize("replicas", [1, 2, 3, 4])
@pytest.mark.parametrize("shuffle, drop_last", [(False, False), (True, False), (True, True)])
def test_same_indices_as_torchs_sampler(n, replicas, shuffle, drop_last):
    torch_data = pytest.importorskip("torch.utils.data")
    for rank in range(replicas):
        ours = DistributedSampler(range(n), replicas, rank, shuffle, seed=11, drop_last=drop_last)
        theirs = torch_data.DistributedSampler(range(n), replicas, rank, shuffle, seed=11,
                                               drop_last=drop_last)
        for epoch in (0, 3):
            ours.set_epoch(epoch)
            theirs.set_epoch(epoch)
            assert list(ours) == list(theirs) and len(ours) == len(theirs)
