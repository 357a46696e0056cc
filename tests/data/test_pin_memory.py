"""``DataLoader(pin_memory=True)``: batches in pinned host memory when a GPU is there (on the
CuPy stand-in here), PyTorch's warning and ordinary memory without one."""

from __future__ import annotations

import warnings

import fake_cuda
import numpy as np
import pytest

import minigrad as mg
from minigrad import backend
from minigrad.data import DataLoader, Dataset, TensorDataset

NO_GPU_WARNING = ("'pin_memory' argument is set as true but no accelerator is found, then "
                  "device pinned memory won't be used.")


class Pairs(Dataset):
    """Example i: a dict of a (2, 3) float32 array of i and the label i (the general path)."""

    def __len__(self):
        return 10

    def __getitem__(self, i):
        return {"x": np.full((2, 3), i, np.float32), "y": i}


def _arrays():
    return (np.arange(40, dtype=np.float32).reshape(20, 2), np.arange(20))


def _pinned(t) -> bool:
    """Whether a Tensor's memory came from the stand-in's ``cuda.alloc_pinned_memory``."""
    from fake_cuda._cuda import PinnedMemoryPointer  # noqa: PLC0415

    return t.device.type == "cpu" and isinstance(t.data.base, PinnedMemoryPointer)


def _values(batches):
    out = []
    for batch in batches:
        items = batch.values() if isinstance(batch, dict) else batch
        out.append([t.cpu().numpy() for t in items])
    return out


def _loaders(dataset, **options):
    """The same loader with and without pin_memory (same generator seed, so same order)."""
    return [DataLoader(dataset, batch_size=4, shuffle=True, pin_memory=pin,
                       generator=mg.Generator().manual_seed(3), **options)
            for pin in (True, False)]


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(backend.cuda, "is_available", staticmethod(lambda: False))


def test_without_a_gpu_it_warns_as_pytorch_and_goes_on(no_gpu):
    pinned, plain = _loaders(TensorDataset(*_arrays()))
    with pytest.warns(UserWarning) as record:
        got = list(pinned)
    assert [str(w.message) for w in record] == [NO_GPU_WARNING]
    for a, b in zip(_values(got), _values(plain)):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    assert all(t.device.type == "cpu" for batch in got for t in batch)


def test_the_warning_shows_once_with_pythons_default_filter(no_gpu):
    loader = DataLoader(TensorDataset(*_arrays()), batch_size=8, pin_memory=True)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("default")
        for _ in range(3):
            list(loader)
    assert [str(w.message) for w in record] == [NO_GPU_WARNING]


def test_no_warning_without_pin_memory(no_gpu):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        list(DataLoader(TensorDataset(*_arrays()), batch_size=8))


@pytest.mark.parametrize("path", ["fast", "general", "workers"])
def test_with_a_gpu_batches_are_in_pinned_memory(monkeypatch, path):
    fake_cuda.use(monkeypatch, kernels="emulated")
    dataset = Pairs() if path == "general" else TensorDataset(*_arrays())
    options = {"num_workers": 1} if path == "workers" else {}
    pinned, plain = _loaders(dataset, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = list(pinned)
    plain = list(plain)
    assert got and all(_pinned(t) for batch in got
                       for t in (batch.values() if isinstance(batch, dict) else batch))
    assert not any(_pinned(t) for batch in plain
                   for t in (batch.values() if isinstance(batch, dict) else batch))
    for a, b in zip(_values(got), _values(plain)):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
            assert x.dtype == y.dtype


def test_pinned_batches_then_go_to_the_device(monkeypatch):
    cp = fake_cuda.use(monkeypatch, kernels="emulated")
    copies = []
    real_asarray = cp.asarray

    def asarray(a, *args, **kwargs):  # records where each host -> device copy reads from
        copies.append(_pinned(mg.Tensor._make(a)) if isinstance(a, np.ndarray) else None)
        return real_asarray(a, *args, **kwargs)

    monkeypatch.setattr(cp, "asarray", asarray)
    pinned, plain = _loaders(TensorDataset(*_arrays()), device="cuda")
    got = list(pinned)
    assert all(t.is_cuda for batch in got for t in batch)
    assert copies and all(copies)  # every copy to the device read pinned memory
    for a, b in zip(_values(got), _values(plain)):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


def test_batches_already_on_the_gpu_stay_there(monkeypatch):
    fake_cuda.use(monkeypatch, kernels="emulated")
    x = mg.arange(12, dtype=mg.float32).reshape(6, 2).to("cuda")
    got = list(DataLoader(TensorDataset(x), batch_size=4, pin_memory=True))
    assert all(t.is_cuda for (t,) in got)
    np.testing.assert_array_equal(np.concatenate([t.cpu().numpy() for (t,) in got]),
                                  x.cpu().numpy())


@pytest.mark.torch
def test_pytorch_warns_the_same_without_an_accelerator(no_gpu):
    torch = pytest.importorskip("torch")
    if torch.accelerator.is_available():
        pytest.skip("PyTorch sees an accelerator here")
    for lib in (torch, mg):
        ds = lib.utils.data.TensorDataset(lib.arange(6))
        with pytest.warns(UserWarning) as record:
            list(lib.utils.data.DataLoader(ds, batch_size=4, pin_memory=True))
        assert [str(w.message) for w in record] == [NO_GPU_WARNING]
