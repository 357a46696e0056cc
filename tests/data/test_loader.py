"""Tests for minigrad.data.loader: Dataset, TensorDataset, DataLoader, random_split."""

import doctest

import numpy as np
import pytest
from conftest import to_numpy

import minigrad as mg
from minigrad.data import DataLoader, Dataset, Subset, TensorDataset, default_collate, loader
from minigrad.data import random_split


def make_data(n=10):
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    y = np.arange(n, dtype=np.int64)
    return x, y


class ListDataset(Dataset):
    """A dataset read example by example (the general path)."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def test_doctests():
    result = doctest.testmod(loader)
    assert result.attempted > 0 and result.failed == 0


# ------------------------------------------------------------------------------------------
# TensorDataset, Subset
# ------------------------------------------------------------------------------------------


def test_tensor_dataset_items_and_len():
    x, y = make_data(4)
    ds = TensorDataset(mg.tensor(x), y)
    assert len(ds) == 4
    xi, yi = ds[2]
    np.testing.assert_array_equal(xi.numpy(), x[2])
    assert yi.item() == 2
    assert [t.shape for t in ds.tensors] == [(4, 3), (4,)]


def test_tensor_dataset_size_mismatch():
    with pytest.raises(ValueError, match=r"Size mismatch.*\[3, 2\]"):
        TensorDataset(np.zeros((3, 2)), np.zeros(2))
    with pytest.raises(ValueError, match="at least one"):
        TensorDataset()
    with pytest.raises(ValueError, match="0-d"):
        TensorDataset(np.float32(1.0))


def test_subset_indexes_the_dataset():
    x, y = make_data(5)
    sub = Subset(TensorDataset(x, y), [3, 1])
    assert len(sub) == 2
    assert sub[0][1].item() == 3 and sub[1][1].item() == 1


# ------------------------------------------------------------------------------------------
# DataLoader
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("drop_last, sizes", [(False, [4, 4, 2]), (True, [4, 4])])
def test_batches_in_order(drop_last, sizes):
    x, y = make_data(10)
    dl = DataLoader(TensorDataset(x, y), batch_size=4, drop_last=drop_last)
    batches = list(dl)
    assert len(dl) == len(sizes) == len(batches)
    assert [len(yb) for _, yb in batches] == sizes
    got = np.concatenate([yb.numpy() for _, yb in batches])
    np.testing.assert_array_equal(got, y[: sum(sizes)])
    for xb, yb in batches:
        assert isinstance(xb, mg.Tensor) and xb.dtype == np.float32 and yb.dtype == np.int64
        np.testing.assert_array_equal(xb.numpy(), x[yb.numpy()])


def test_shuffle_is_a_permutation_each_epoch_and_changes():
    x, y = make_data(50)
    dl = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True)
    epochs = [np.concatenate([yb.numpy() for _, yb in dl]) for _ in range(3)]
    for order in epochs:
        assert sorted(order.tolist()) == list(range(50))
    assert not np.array_equal(epochs[0], epochs[1])
    # inputs and labels stay paired
    for xb, yb in dl:
        np.testing.assert_array_equal(xb.numpy(), x[yb.numpy()])


def test_shuffle_reproducible_under_manual_seed():
    x, y = make_data(30)
    dl = DataLoader(TensorDataset(x, y), batch_size=7, shuffle=True)

    def run():
        mg.manual_seed(123)
        return [yb.tolist() for _ in range(2) for _, yb in dl]

    assert run() == run()


def test_shuffle_reproducible_with_own_seed():
    x, y = make_data(30)

    def run():
        dl = DataLoader(TensorDataset(x, y), batch_size=7, shuffle=True, seed=5)
        return [yb.tolist() for _ in range(2) for _, yb in dl]

    first = run()
    mg.manual_seed(999)  # the global seed does not matter
    assert run() == first


def test_fast_path_never_reads_single_examples(monkeypatch):
    x, y = make_data(20)
    ds = TensorDataset(x, y)

    def refuse(self, i):
        raise AssertionError("the fast path must not index example by example")

    monkeypatch.setattr(TensorDataset, "__getitem__", refuse)
    for shuffle in (False, True):
        assert sum(len(yb) for _, yb in DataLoader(ds, batch_size=6, shuffle=shuffle)) == 20
    sub = Subset(ds, [5, 2, 9])
    assert [yb.tolist() for _, yb in DataLoader(sub, batch_size=2)] == [[5, 2], [9]]


def test_general_path_matches_fast_path():
    x, y = make_data(11)
    fast = [(xb.numpy(), yb.numpy()) for xb, yb in DataLoader(TensorDataset(x, y), 4)]
    slow = [(xb.numpy(), yb.numpy()) for xb, yb in DataLoader(ListDataset(x, y), 4)]
    assert len(fast) == len(slow)
    for (a, b), (c, d) in zip(fast, slow):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)


def test_custom_collate_fn():
    x, y = make_data(5)

    def collate(examples):
        return len(examples)

    assert list(DataLoader(ListDataset(x, y), batch_size=2, collate_fn=collate)) == [2, 2, 1]


def test_default_collate_structures():
    batch = default_collate([{"a": np.ones(2), "b": 1.5}, {"a": np.zeros(2), "b": 2.5}])
    assert batch["a"].shape == (2, 2)
    assert batch["b"].dtype == np.float32 and batch["b"].tolist() == [1.5, 2.5]
    t = default_collate([mg.ones(3), mg.zeros(3)])
    assert t.shape == (2, 3)


def test_uint8_data_keeps_dtype():
    x = np.arange(12, dtype=np.uint8).reshape(4, 3)
    (xb,) = next(iter(DataLoader(TensorDataset(x), batch_size=4)))
    assert xb.dtype == np.uint8


def test_batch_size_validation():
    with pytest.raises(ValueError, match="positive integer"):
        DataLoader(TensorDataset(np.zeros(3)), batch_size=0)


def test_batches_on_device(device):
    x, y = make_data(9)
    dl = DataLoader(TensorDataset(x, y), batch_size=4, shuffle=True, device=device)
    seen = []
    for xb, yb in dl:
        assert xb.device == mg.device(device) and yb.device == mg.device(device)
        np.testing.assert_array_equal(to_numpy(xb), x[to_numpy(yb)])
        seen += to_numpy(yb).tolist()
    assert sorted(seen) == list(range(9))
    # data already on the device is indexed there
    on_device = TensorDataset(mg.tensor(x, device=device), mg.tensor(y, device=device))
    for xb, yb in DataLoader(on_device, batch_size=4, shuffle=True):
        assert xb.device == mg.device(device)
        np.testing.assert_array_equal(to_numpy(xb), x[to_numpy(yb)])
    # the general path moves collated batches too
    for xb, _ in DataLoader(ListDataset(x, y), batch_size=4, device=device):
        assert xb.device == mg.device(device)


# ------------------------------------------------------------------------------------------
# random_split
# ------------------------------------------------------------------------------------------


def test_random_split_counts_and_fractions():
    ds = TensorDataset(np.arange(10))
    a, b = random_split(ds, [7, 3], seed=0)
    assert (len(a), len(b)) == (7, 3)
    assert sorted(np.concatenate([a.indices, b.indices]).tolist()) == list(range(10))
    parts = random_split(ds, [0.34, 0.33, 0.33], seed=0)
    assert [len(p) for p in parts] == [4, 3, 3]  # the remainder goes to the first part


def test_random_split_reproducible():
    ds = TensorDataset(np.arange(20))
    assert random_split(ds, [10, 10], seed=3)[0].indices.tolist() == random_split(
        ds, [10, 10], seed=3)[0].indices.tolist()
    mg.manual_seed(1)
    first = random_split(ds, [10, 10])[0].indices.tolist()
    mg.manual_seed(1)
    assert random_split(ds, [10, 10])[0].indices.tolist() == first


def test_random_split_errors():
    ds = TensorDataset(np.arange(10))
    with pytest.raises(ValueError, match="sum to 9"):
        random_split(ds, [5, 4])
    with pytest.raises(ValueError, match="counts or fractions"):
        random_split(ds, [5.5, 4.5])
