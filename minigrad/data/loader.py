"""Datasets and the DataLoader: mini-batches of tensors, shuffled reproducibly.

A `Dataset` maps an index to one example; a `DataLoader` groups examples into mini-batches.
Data that is already a set of arrays (`TensorDataset`, or a `Subset` of one) takes a fast
path: each batch is a single fancy-index per array, ``x[perm[i:i + batch_size]]``, with no
Python loop over examples. Any other dataset is read one example at a time and the examples
are stacked by `default_collate`.

Shuffling draws one permutation per epoch from the CPU generator that `mg.manual_seed` seeds,
or from the loader's own generator when it is given one (``generator=mg.Generator()...``, as in
PyTorch, or a `seed`), so runs repeat exactly.

Example:
    >>> import numpy as np
    >>> import minigrad as mg
    >>> x = np.arange(10, dtype=np.float32).reshape(5, 2)
    >>> y = np.array([0, 1, 0, 1, 1])
    >>> loader = DataLoader(TensorDataset(x, y), batch_size=2)
    >>> [tuple(xb.shape) for xb, yb in loader]
    [(2, 2), (2, 2), (1, 2)]
    >>> next(iter(loader))[1]
    tensor([0, 1])
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Callable

import numpy as np

from minigrad import backend
from minigrad.data.worker import _MultiProcessIter, _WorkerPool
from minigrad.tensor import Tensor

__all__ = ["DataLoader", "Dataset", "Subset", "TensorDataset", "default_collate", "random_split"]

Array = Any


class Dataset:
    """Base class of map-style data sets: ``dataset[i]`` is one example, ``len(dataset)`` the
    number of examples.

    Subclasses write ``__getitem__`` and ``__len__``.

    Example:
        >>> class Squares(Dataset):
        ...     def __len__(self):
        ...         return 4
        ...     def __getitem__(self, i):
        ...         return float(i), float(i * i)
        >>> [tuple(b.tolist() for b in batch) for batch in DataLoader(Squares(), batch_size=2)]
        [([0.0, 1.0], [0.0, 1.0]), ([2.0, 3.0], [4.0, 9.0])]
    """

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must implement __len__")


def _as_array(value: Any, name: str) -> Array:
    """The backend array of a Tensor, or a NumPy array (no copy when possible)."""
    if isinstance(value, Tensor):
        return value.detach().data
    cp = backend.cupy_if_loaded()
    if isinstance(value, np.ndarray) or (cp is not None and isinstance(value, cp.ndarray)):
        return value
    array = np.asarray(value)
    if array.dtype == object:
        raise TypeError(f"{name}: cannot make an array from {type(value).__name__}")
    return array


class TensorDataset(Dataset):
    """Examples drawn from arrays that share their first dimension: example i is
    ``(t[i] for t in tensors)``.

    Args:
        *tensors: Tensors or NumPy (or CuPy) arrays with the same length along dim 0.

    Example:
        >>> import numpy as np
        >>> ds = TensorDataset(np.zeros((3, 2)), np.array([7, 8, 9]))
        >>> len(ds), ds[1][1]
        (3, tensor(8))
    """

    def __init__(self, *tensors: Any) -> None:
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor or array")
        arrays = [_as_array(t, f"TensorDataset argument {i}") for i, t in enumerate(tensors)]
        for i, a in enumerate(arrays):
            if a.ndim == 0:
                raise ValueError(f"TensorDataset argument {i} is 0-d; every tensor needs dim 0")
        sizes = [a.shape[0] for a in arrays]
        if len(set(sizes)) != 1:
            raise ValueError(
                f"Size mismatch between tensors: TensorDataset needs the same length along "
                f"dim 0, got {sizes}"
            )
        self.arrays = arrays

    @property
    def tensors(self) -> tuple:
        """The data as Tensors (sharing memory with the arrays given)."""
        return tuple(Tensor._make(a) for a in self.arrays)

    def __getitem__(self, index: int) -> tuple:
        return tuple(Tensor._make(a[index]) for a in self.arrays)

    def __len__(self) -> int:
        return self.arrays[0].shape[0]


class Subset(Dataset):
    """The examples of `dataset` at `indices`, in that order.

    Example:
        >>> ds = Subset(TensorDataset(np.arange(5)), [4, 0])
        >>> len(ds), ds[0]
        (2, (tensor(4),))
    """

    def __init__(self, dataset: Dataset, indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[int(self.indices[index])]

    def __len__(self) -> int:
        return len(self.indices)


def random_split(
    dataset: Dataset, lengths: Sequence[float], generator: Any = None, seed: int | None = None
) -> list[Subset]:
    """Splits a data set into non-overlapping random subsets.

    Args:
        dataset: the data set to split.
        lengths: the sizes of the parts, either counts that sum to ``len(dataset)`` or
            fractions that sum to 1 (then the remainder of the rounding goes one example at a
            time to the first parts, as PyTorch does).
        generator: an ``mg.Generator`` (on the CPU) the permutation is drawn from, as in
            PyTorch's ``random_split(ds, lengths, generator=torch.Generator().manual_seed(0))``.
        seed: seeds the permutation instead of `generator`; with neither, it is drawn from the
            generator `mg.manual_seed` seeds.

    Returns:
        One `Subset` per entry of `lengths`.

    Example:
        >>> train, val = random_split(TensorDataset(np.arange(10)), [0.8, 0.2], seed=0)
        >>> len(train), len(val)
        (8, 2)
        >>> sorted(np.concatenate([train.indices, val.indices]).tolist()) == list(range(10))
        True
    """
    n = len(dataset)
    lengths = list(lengths)
    if lengths and all(0 <= f <= 1 for f in lengths) and math.isclose(sum(lengths), 1.0) and (
        sum(lengths) != n
    ):
        counts = [int(math.floor(n * f)) for f in lengths]
        for i in range(n - sum(counts)):  # NOTE: the rounding remainder, round-robin
            counts[i % len(counts)] += 1
        lengths = counts
    if any(int(c) != c or c < 0 for c in lengths):
        raise ValueError(f"random_split: lengths must be counts or fractions, got {lengths}")
    if sum(lengths) != n:
        raise ValueError(
            f"random_split: the lengths {lengths} sum to {sum(lengths)}, but the data set has "
            f"{n} examples (or pass fractions that sum to 1)"
        )
    if generator is not None and seed is not None:
        raise ValueError("random_split: give a generator or a seed, not both")
    if seed is not None:
        generator = np.random.default_rng(seed)
    perm = backend.generator(backend.CPU, generator).permutation(n)
    parts, start = [], 0
    for count in lengths:
        parts.append(Subset(dataset, perm[start : start + int(count)]))
        start += int(count)
    return parts


def default_collate(examples: list) -> Any:
    """Stacks a list of examples into a batch, keeping their structure.

    Tuples and lists are collated field by field, dicts key by key; Tensors, arrays and
    numbers are stacked along a new first dimension into a Tensor.

    Example:
        >>> batch = default_collate([(np.ones(2), 1), (np.zeros(2), 0)])
        >>> batch[0].shape, batch[1]
        ((2, 2), tensor([1, 0]))
    """
    first = examples[0]
    if isinstance(first, Mapping):
        return {key: default_collate([e[key] for e in examples]) for key in first}
    if isinstance(first, (tuple, list)):
        return type(first)(default_collate(list(field)) for field in zip(*examples))
    if isinstance(first, Tensor):
        xp = first.xp
        return Tensor._make(xp.stack([e.detach().data for e in examples]))
    arrays = [_as_array(e, "default_collate") for e in examples]
    xp = backend.array_module(arrays[0])
    stacked = xp.stack(arrays)
    if stacked.dtype == np.float64 and not isinstance(first, np.ndarray):
        stacked = stacked.astype(np.float32)  # Python floats become float32, as mg.tensor does
    return Tensor._make(stacked)


def _batch_to(batch: Any, device: backend.Device | None) -> Any:
    """Moves every Tensor in a (nested) batch to `device` (None: leave it where it is)."""
    if device is None:
        return batch
    if isinstance(batch, Tensor):
        return Tensor._make(backend.to_device(batch.data, device))
    if isinstance(batch, Mapping):
        return {key: _batch_to(value, device) for key, value in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(_batch_to(value, device) for value in batch)
    return batch


def _pin(batch: Any) -> Any:
    """Copies every CPU Tensor of a (nested) batch into pinned host memory (PyTorch's
    ``pin_memory``); Tensors already on a GPU and other values stay as they are."""
    if isinstance(batch, Tensor):
        if batch.device.type != "cpu":
            return batch
        pinned = backend.pinned_empty(batch.shape, batch.dtype)
        pinned[...] = batch.data
        return Tensor._make(pinned)
    if isinstance(batch, Mapping):
        return {key: _pin(value) for key, value in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(_pin(value) for value in batch)
    return batch


def _array_source(dataset: Dataset) -> tuple[list, Array | None] | None:
    """For the fast path: the arrays behind `dataset` and the index map (None: identity)."""
    if isinstance(dataset, TensorDataset):
        return dataset.arrays, None
    if isinstance(dataset, Subset):
        inner = _array_source(dataset.dataset)
        if inner is not None:
            arrays, index = inner
            return arrays, dataset.indices if index is None else index[dataset.indices]
    return None


class DataLoader:
    """Iterates over a data set in mini-batches of tensors (PyTorch's arguments, in order).

    Args:
        dataset: a `Dataset` (a `TensorDataset` or a `Subset` of one takes the fast path).
        batch_size: examples per batch.
        shuffle: draw a new random order every epoch (every ``iter(loader)``).
        sampler: yields the indices of the examples, in order, instead of `shuffle` (e.g. a
            `RandomSampler`, or a `DistributedSampler`, each rank its shard).
        batch_sampler: yields one list of indices per batch (excludes `batch_size`,
            `shuffle`, `sampler` and `drop_last`).
        num_workers: worker processes that load batches ahead, in parallel with training
            (0: load in the main process). See `minigrad.data.worker`.
        collate_fn: turns a list of examples into a batch (default: `default_collate`);
            giving one makes the loader read examples one at a time.
        pin_memory: put the batches in page-locked (pinned) host memory, from which copies
            to the GPU are faster (with `device`, before the copy). As in PyTorch this needs a
            GPU: without one the loader warns (each epoch; Python shows the warning once) and
            goes on with ordinary memory.
        drop_last: drop the last batch when it is smaller than `batch_size`.
        timeout: with workers, the seconds to wait for a batch before raising (0: forever).
        worker_init_fn: called as ``worker_init_fn(worker_id)`` in each worker, after seeding.
        multiprocessing_context: ``"fork"``, ``"spawn"``, ``"forkserver"`` or a context
            (default: the platform's).
        generator: an ``mg.Generator`` (on the CPU; a ``numpy.random.Generator`` is taken
            too) the shuffle and the workers' base seed are drawn from, instead of the CPU
            generator `mg.manual_seed` seeds: the same seed gives the same order.
        prefetch_factor: batches loaded ahead per worker (default 2; only with workers).
        persistent_workers: keep the workers alive between epochs.
        pin_memory_device, in_order: accepted for PyTorch compatibility (pinned memory is for
            the CUDA device; batches always come in order).
        seed: seeds the loader's own generator; None (and no `generator`) uses the CPU
            generator that `mg.manual_seed` seeds.
        device: the device batches are put on; None leaves them where the data is (the CPU
            for NumPy arrays). Moving a whole `TensorDataset` to the device once, before
            training, is faster than moving every batch.

    Example:
        >>> import minigrad as mg
        >>> mg.manual_seed(0)
        >>> loader = DataLoader(TensorDataset(np.arange(6)), batch_size=4, shuffle=True)
        >>> [len(b) for (b,) in loader]
        [4, 2]
        >>> mg.manual_seed(0)
        >>> first = [b.tolist() for (b,) in loader]
        >>> mg.manual_seed(0)
        >>> first == [b.tolist() for (b,) in loader]
        True
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int | None = 1,
        shuffle: bool | None = None,
        sampler: Any = None,
        batch_sampler: Any = None,
        num_workers: int = 0,
        collate_fn: Callable[[list], Any] | None = None,
        pin_memory: bool = False,
        drop_last: bool = False,
        timeout: float = 0,
        worker_init_fn: Callable[[int], None] | None = None,
        multiprocessing_context: Any = None,
        generator: Any = None,
        *,
        prefetch_factor: int | None = None,
        persistent_workers: bool = False,
        pin_memory_device: str = "",
        in_order: bool = True,
        seed: int | None = None,
        device: str | backend.Device | None = None,
    ) -> None:
        shuffle = bool(shuffle)
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError(
                    "batch_sampler option is mutually exclusive with batch_size, shuffle, "
                    "sampler, and drop_last"
                )
            batch_size = None
        elif batch_size is None:
            raise ValueError("batch_size=None (no automatic batching) is not supported")
        elif isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or (
            batch_size <= 0
        ):
            raise ValueError(f"batch_size should be a positive integer, got {batch_size!r}")
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(
                "num_workers option should be non-negative; use num_workers=0 to disable "
                "multiprocessing."
            )
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError(
                "prefetch_factor option could only be specified in multiprocessing. let "
                "num_workers > 0 to enable multiprocessing, otherwise set prefetch_factor to None."
            )
        if num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        if prefetch_factor is not None and prefetch_factor < 1:
            raise ValueError("prefetch_factor option should be a positive integer")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")
        if generator is not None and seed is not None:
            raise ValueError("give a generator or a seed, not both")
        if generator is not None:
            backend.generator(backend.CPU, generator)  # a clear error now for a wrong one
        self.dataset = dataset
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.batch_size = None if batch_size is None else int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.collate_fn = collate_fn
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.pin_memory_device = pin_memory_device
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.prefetch_factor = prefetch_factor
        self.persistent_workers = persistent_workers
        self.in_order = in_order
        self.seed = seed
        self.generator = generator
        self.device = backend.get_device(device) if device is not None else None
        # NOTE: an mg.Generator is resolved at each draw, so re-seeding it after the loader was
        # made takes effect, as in PyTorch
        self._rng = np.random.default_rng(seed) if seed is not None else generator
        self._source = None if collate_fn is not None else _array_source(dataset)
        if num_workers > 0 and self._source is not None and (
            backend.array_module(self._source[0][0]) is not np
        ):
            raise ValueError(
                "DataLoader workers cannot read a data set held on the GPU; use num_workers=0 "
                "(the GPU fast path needs no workers), or keep the data on the CPU and pass "
                "device="
            )
        self._pool = None  # the worker processes, when persistent
        self._pinning = False  # this epoch's batches go to pinned memory
        self._epoch = 0

    def __len__(self) -> int:
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        n = len(self.dataset) if self.sampler is None else len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _order(self) -> np.ndarray | None:
        """This epoch's order of the examples (None: in order)."""
        if self.sampler is not None:
            return np.fromiter(iter(self.sampler), dtype=np.int64)
        if not self.shuffle:
            return None
        return backend.generator(backend.CPU, self._rng).permutation(len(self.dataset))

    def __iter__(self) -> Iterator:
        self._pinning = self.pin_memory and backend.cuda.is_available()
        if self.pin_memory and not self._pinning:
            warnings.warn("'pin_memory' argument is set as true but no accelerator is found, "
                          "then device pinned memory won't be used.", stacklevel=2)
        if self.num_workers > 0:
            return self._iter_workers()
        if self.batch_sampler is not None:
            return self._iter_batches(list(self.batch_sampler))
        return self._iter_main()

    def _iter_batches(self, batches: list) -> Iterator:
        """In the main process, batches given as lists of indices."""
        fetch = self._fetcher()
        for indices in batches:
            yield self._deliver(fetch(indices))

    def _batch_indices(self) -> list:
        """This epoch's batches, as arrays of example indices (for the workers)."""
        if self.batch_sampler is not None:
            return [np.asarray(b, dtype=np.int64) for b in self.batch_sampler]
        order = self._order()
        n = len(self.dataset) if order is None else len(order)
        if order is None:
            order = np.arange(n, dtype=np.int64)
        stop = (n // self.batch_size) * self.batch_size if self.drop_last else n
        return [order[i : min(i + self.batch_size, stop)] for i in range(0, stop, self.batch_size)]

    def _iter_workers(self) -> Iterator:
        """With worker processes: the same batches as in the main process, loaded ahead."""
        batches = self._batch_indices()  # NOTE: the order first, as with num_workers=0
        pool = self._pool
        if pool is None or not pool.alive:
            rng = backend.generator(backend.CPU, self._rng)
            base_seed = int(rng.integers(0, 2**63 - 1))
            pool = _WorkerPool(self, base_seed)
            if self.persistent_workers:
                self._pool = pool
        self._epoch += 1
        return _MultiProcessIter(self, pool, self._epoch, batches)

    def _fetcher(self) -> "_Fetcher":
        return _Fetcher(self.dataset, self.collate_fn, self._source)

    def _deliver(self, batch: Any) -> Any:
        """A batch as the user gets it: pinned if asked, then on `device`."""
        return _batch_to(_pin(batch) if self._pinning else batch, self.device)

    def __del__(self):
        pool = self.__dict__.get("_pool")
        if pool is not None:
            pool.shutdown()

    def _iter_main(self) -> Iterator:
        """In the main process (``num_workers=0``)."""
        order = self._order()
        n = len(self.dataset) if order is None else len(order)
        stop = (n // self.batch_size) * self.batch_size if self.drop_last else n
        if self._source is None:
            yield from self._iter_examples(order, stop)
            return
        arrays, index = self._source
        if order is not None:
            index = order if index is None else index[order]
        # The index array lives where the data does (a CuPy array indexes with a CuPy index).
        xp = backend.array_module(arrays[0])
        if index is not None and xp is not np:
            index = xp.asarray(index)
        for start in range(0, stop, self.batch_size):
            end = min(start + self.batch_size, stop)
            if index is None:
                batch = [a[start:end] for a in arrays]  # in order: a view, no copy
            else:
                rows = index[start:end]
                batch = [a[rows] for a in arrays]  # one fancy-index per array
            yield self._deliver(tuple(Tensor._make(b) for b in batch))

    def _iter_examples(self, order: np.ndarray | None, stop: int) -> Iterator:
        """The general path: read examples one by one and collate them."""
        collate = self.collate_fn or default_collate
        for start in range(0, stop, self.batch_size):
            ids = range(start, min(start + self.batch_size, stop))
            if order is not None:
                ids = order[start : start + len(ids)]
            batch = collate([self.dataset[int(i)] for i in ids])
            yield self._deliver(batch)


class _Fetcher:
    """Reads one batch given its example indices (picklable: workers get one)."""

    def __init__(self, dataset: Dataset, collate_fn: Callable | None, source) -> None:
        self.dataset = dataset
        self.collate_fn = collate_fn or default_collate
        self.source = source

    def __call__(self, indices) -> Any:
        if self.source is not None:  # the fast path: one fancy-index per array
            arrays, index = self.source
            rows = np.asarray(indices, dtype=np.int64)
            if index is not None:
                rows = index[rows]
            return tuple(Tensor._make(a[rows]) for a in arrays)
        return self.collate_fn([self.dataset[int(i)] for i in indices])
