"""DataLoader workers: loading overlapped with training, with a slow ``__getitem__``.

A data set whose ``__getitem__`` sleeps ``--delay`` ms per example (standing in for decoding an
image or reading a file) feeds a training loop whose step busy-waits ``--step-ms`` ms. With
``num_workers=0`` each epoch costs about loading + training; with workers the batches load in
other processes while the step runs, so an epoch costs about the larger of the two (divided
among the workers). The loader's batches are first checked to be the very ones
``num_workers=0`` gives.

    python -m benchmarks.bench_dataloader [--workers 0 1 2 4] [--quick]

Writes benchmarks/results/bench_dataloader.{md,json}: the median seconds per epoch for each
number of workers.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import minigrad as mg
from benchmarks.common import machine, markdown_table, write_results
from minigrad.data import DataLoader, Dataset


class SlowImages(Dataset):
    """``n`` 32x32x3 float32 "images", each taking ``delay`` seconds to load."""

    def __init__(self, n: int, delay: float) -> None:
        self.n, self.delay = n, delay

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        time.sleep(self.delay)  # NOTE: sleeping, not computing: the overlap, not the cores
        rng = np.random.default_rng(i)
        return rng.standard_normal((3, 32, 32)).astype(np.float32), i % 10


def _busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def epoch_seconds(loader: DataLoader, step: float) -> float:
    start = time.perf_counter()
    for _batch in loader:
        _busy(step)  # the training step
    return time.perf_counter() - start


def check_same_batches(dataset: Dataset, batch_size: int, workers: int) -> None:
    mg.manual_seed(0)
    plain = [(x.numpy(), y.numpy()) for x, y in DataLoader(dataset, batch_size, shuffle=True)]
    mg.manual_seed(0)
    loader = DataLoader(dataset, batch_size, shuffle=True, num_workers=workers)
    for (x, y), (xe, ye) in zip(loader, plain, strict=True):
        if not (np.array_equal(x.numpy(), xe) and np.array_equal(y.numpy(), ye)):
            raise AssertionError(f"num_workers={workers} changed the batches")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2, 4])
    parser.add_argument("--examples", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--delay", type=float, default=2.0, help="ms per example")
    parser.add_argument("--step-ms", type=float, default=40.0, help="ms per training step")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a few seconds in all")
    args = parser.parse_args()
    if args.quick:
        args.examples, args.epochs, args.workers = 64, 1, [0, 2]

    dataset = SlowImages(args.examples, args.delay / 1000)
    rows, results = [], {}
    for workers in args.workers:
        if workers:
            check_same_batches(SlowImages(args.examples, 0.0), args.batch_size, workers)
        loader = DataLoader(dataset, args.batch_size, shuffle=True, num_workers=workers,
                            persistent_workers=workers > 0)
        times = [epoch_seconds(loader, args.step_ms / 1000) for _ in range(args.epochs)]
        median = statistics.median(times)
        results[str(workers)] = {"epoch_s": median, "all_epoch_s": times}
        rows.append([workers, f"{median:.3f}"])
        del loader
    loading = args.examples * args.delay / 1000
    training = -(-args.examples // args.batch_size) * args.step_ms / 1000
    table = markdown_table(["num_workers", "s/epoch (median)"], rows)
    table += (f"\n\nLoading alone: {loading:.2f} s/epoch, training alone: {training:.2f} "
              f"s/epoch ({args.examples} examples, batch {args.batch_size}).")
    print(table)
    write_results("bench_dataloader", table, {
        "machine": machine(), "args": vars(args), "results": results,
        "loading_s": loading, "training_s": training,
    })


if __name__ == "__main__":
    main()
