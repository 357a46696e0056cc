"""The training loop: one epoch of mini-batch gradient descent, evaluation, and `fit`.

Everything that trains in minigrad (`minigrad.keras`, the char-LM runs of
`minigrad.models.charlm_train`, the fine-tuning experiments of `minigrad.finetune.sms`) goes
through `train_epoch`, whose inner loop is the five lines every PyTorch tutorial shows::

    optimizer.zero_grad()        # forget the previous step's gradients
    out = model(x)               # forward: build the graph
    loss = loss_fn(out, y)       # a scalar
    loss.backward()              # backward: fill every parameter's .grad
    optimizer.step()             # update the parameters from their .grad

Callbacks hook into it with Keras's names: ``on_train_batch_begin`` before the five lines,
``on_before_optimizer_step`` between ``backward`` and ``step`` (where `GradientClipping` clips),
``on_train_batch_end`` after them (where `LRSchedulerCallback` steps a per-batch schedule and a
logger reads the loss), and ``on_epoch_begin``/``on_epoch_end`` around each epoch.

Around it, only bookkeeping: the loss and the metrics of each batch are kept as device arrays
and summed when they are shown (about ten times a second on a terminal, once per epoch in a
log), so a GPU is never made to wait for a number after every step.

Data parallel (`minigrad.distributed`, several processes): give `fit` a model wrapped in
`nn.parallel.DistributedDataParallel` and a loader with a `data.DistributedSampler` (each rank
its shard; `fit` calls its ``set_epoch``). Each rank runs the same loop on its shard; the
gradients are averaged inside ``loss.backward()``, the epoch's loss and metrics over the
examples of every rank, and only rank 0 shows a progress bar or log lines. Checkpoints go
through `distributed.run_on_rank_zero` (rank 0 writes, the others wait). With mixed precision,
a gradient scaler's found-inf flag must be the same on every rank before ``optimizer.step()``
(where ``on_before_optimizer_step`` runs): `distributed.combine_found_inf` makes it so.

Example:
    >>> import numpy as np
    >>> import minigrad as mg
    >>> from minigrad import nn, optim
    >>> from minigrad.data import DataLoader, TensorDataset
    >>> from minigrad.train import accuracy, fit
    >>> mg.manual_seed(0)
    >>> x = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)
    >>> y = (x[:, 0] > 0).astype(np.int64)             # class 1 on the right half
    >>> model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)
    >>> opt = optim.Adam(model.parameters(), lr=0.05)
    >>> history = fit(model, nn.CrossEntropyLoss(), opt, loader, epochs=20,
    ...               metrics={"accuracy": accuracy}, verbose=0)
    >>> history.history["accuracy"][-1] > 0.9
    True
"""

from __future__ import annotations

import itertools
import sys
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Callable, TextIO

import numpy as np

from minigrad import backend
from minigrad import distributed as dist
from minigrad.autograd import no_grad
from minigrad.nn.parallel import DistributedDataParallel
from minigrad.nn.utils import clip_grad_norm_
from minigrad.tensor import Tensor
from minigrad.utils.progress import Progbar

__all__ = [
    "Callback",
    "GradientClipping",
    "History",
    "LRSchedulerCallback",
    "RunningMean",
    "accuracy",
    "binary_accuracy",
    "evaluate",
    "fit",
    "train_epoch",
]

Metric = Callable[[Tensor, Tensor], Tensor]

# How often (seconds) a terminal progress bar is refreshed; each refresh reads the running
# sums back from the device once.
REFRESH_SECONDS = 0.1


# ------------------------------------------------------------------------------------------
# metrics
# ------------------------------------------------------------------------------------------


def accuracy(output: Tensor, target: Tensor) -> Tensor:
    """Per-example correctness of class predictions: ``argmax(output) == target``.

    Works on logits or probabilities (the argmax is the same). Targets are class indices of
    the output's shape without its last dimension, or one-hot/probability rows of the
    output's shape (compared by their argmax).

    Example:
        >>> import minigrad as mg
        >>> accuracy(mg.tensor([[2.0, 1.0], [0.0, 3.0]]), mg.tensor([0, 0])).tolist()
        [True, False]
    """
    predicted = output.argmax(dim=-1)
    if target.shape == output.shape:
        target = target.argmax(dim=-1)  # one-hot or probability rows
    return predicted == target


def binary_accuracy(output: Tensor, target: Tensor, threshold: float = 0.5) -> Tensor:
    """Per-element correctness of yes/no predictions: ``(output > threshold) == (target > 0.5)``.

    Use ``threshold=0.0`` when `output` holds logits rather than probabilities.

    Example:
        >>> import minigrad as mg
        >>> binary_accuracy(mg.tensor([0.9, 0.2]), mg.tensor([1.0, 1.0])).tolist()
        [True, False]
    """
    if target.shape != output.shape and target.data.size == output.data.size:
        target = target.reshape(output.shape)  # (N,) labels for an (N, 1) output
    return (output > threshold) == (target > 0.5)


class RunningMean:
    """The mean of values added batch by batch, kept on the device until it is read.

    `add` costs no synchronisation: a batch's value (a 0-d backend array or Tensor, or a
    number) is stored as it is. `result` sums what was added since the last read in one
    device operation and returns a Python float.

    Example:
        >>> m = RunningMean()
        >>> m.add(1.0, weight=3)   # the mean of a batch of 3
        >>> m.add(3.0, weight=1)
        >>> m.result()
        1.5
    """

    def __init__(self) -> None:
        self._values: list = []
        self._weights: list = []
        self._total = 0.0
        self._count = 0

    def add(self, value: Any, weight: int = 1) -> None:
        """Records `value`, the mean over `weight` examples."""
        self._values.append(value.data if isinstance(value, Tensor) else value)
        self._weights.append(weight)

    def result(self) -> float:
        """The weighted mean of everything added so far (reads the device once)."""
        total, count = self.totals()
        return total / count if count else float("nan")

    def totals(self) -> tuple:
        """``(sum of value * weight, sum of weights)`` of everything added so far."""
        if self._values:
            values = self._values
            xp = backend.array_module(values[0]) if hasattr(values[0], "shape") else np
            # one stack and one cast: a single device operation, however many batches
            stacked = xp.stack([xp.asarray(v) for v in values]).astype(np.float64)
            weights = xp.asarray(self._weights, dtype=np.float64)
            self._total += float((stacked * weights).sum())
            self._count += sum(self._weights)
            self._values, self._weights = [], []
        return self._total, self._count


# ------------------------------------------------------------------------------------------
# callbacks and history
# ------------------------------------------------------------------------------------------


class Callback:
    """Base class of objects that `fit` calls around training, epochs and batches.

    The hooks have Keras's names, plus ``on_before_optimizer_step`` (between ``backward`` and
    ``step``, as PyTorch Lightning's). `fit` sets ``callback.model`` (the model being trained,
    unless it is already set) and ``callback.optimizer``. A callback stops training by setting
    ``self.model.stop_training = True``; `fit` checks it after every epoch.

    Example:
        >>> class PrintLoss(Callback):
        ...     def on_epoch_end(self, epoch, logs=None):
        ...         print(f"epoch {epoch}: loss {logs['loss']:.3f}")
    """

    model: Any = None
    optimizer: Any = None

    def __init__(self) -> None:
        self.model = None
        self.optimizer = None
        self.params: dict = {}

    def set_model(self, model: Any) -> None:
        """Called by the training loop with the model it trains (kept as ``self.model``)."""
        self.model = model

    def set_params(self, params: dict) -> None:
        """Called by the training loop with its settings (``epochs``, ``steps``, ``verbose``)."""
        self.params = params

    def on_train_begin(self, logs: dict | None = None) -> None:
        """Called once before the first epoch."""

    def on_train_end(self, logs: dict | None = None) -> None:
        """Called once after the last epoch (or after a callback stopped training)."""

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        """Called before epoch `epoch` (counted from 0)."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Called after epoch `epoch` with its metrics, e.g. ``{'loss': .., 'val_loss': ..}``."""

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Called before batch `batch` (counted from 0 in every epoch) is trained on."""

    def on_before_optimizer_step(self, batch: int, logs: dict | None = None) -> None:
        """Called after ``loss.backward()``, before ``optimizer.step()``: the gradients are in
        each parameter's ``.grad`` (clip them here)."""

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Called after ``optimizer.step()`` with ``logs={'loss': loss}``, the batch's loss as
        a detached 0-d Tensor (``float(logs['loss'])`` waits for the device)."""


def _hooks(callbacks: Sequence[Any], name: str) -> list:
    """The bound `name` methods of the callbacks that define one: the base class's no-ops are
    left out, so that a loop without such callbacks does no work for them per batch."""
    default = getattr(Callback, name)
    return [getattr(cb, name) for cb in callbacks
            if getattr(type(cb), name, default) is not default]


def _call(hooks: list, *args: Any) -> None:
    for hook in hooks:
        hook(*args)


def _stop_requested(callbacks: Sequence[Any]) -> bool:
    """Whether a callback set ``model.stop_training`` (Keras's way to stop training)."""
    return any(getattr(cb.model, "stop_training", False) for cb in callbacks)


def _should_validate(epoch: int, validation_freq: int | Sequence[int]) -> bool:
    """Keras's rule: every `validation_freq` epochs, or the epochs (from 1) it lists."""
    if isinstance(validation_freq, int):
        return (epoch + 1) % validation_freq == 0
    return epoch + 1 in validation_freq


class LRSchedulerCallback(Callback):
    """Steps a learning-rate scheduler after every batch or after every epoch.

    Args:
        scheduler: an `optim.lr_scheduler` scheduler.
        interval: ``'step'`` (after each ``optimizer.step()``, as warm-up and cosine schedules
            counted in steps want) or ``'epoch'`` (after each epoch's validation).

    Example:
        >>> from minigrad import nn, optim
        >>> opt = optim.SGD(nn.Linear(2, 1).parameters(), lr=0.1)
        >>> cb = LRSchedulerCallback(optim.lr_scheduler.StepLR(opt, 1, gamma=0.5), "step")
        >>> cb.on_train_batch_end(0)
        >>> opt.param_groups[0]["lr"]
        0.05
    """

    def __init__(self, scheduler: Any, interval: str = "epoch") -> None:
        super().__init__()
        if interval not in ("step", "epoch"):
            raise ValueError(f"interval must be 'step' or 'epoch', got {interval!r}")
        self.scheduler = scheduler
        self.interval = interval

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        # (under gradient accumulation only the batches that end with an optimizer step count)
        if self.interval == "step" and (logs is None or logs.get("stepped", True)):
            self.scheduler.step()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.interval == "epoch":
            self.scheduler.step()


class GradientClipping(Callback):
    """Clips the norm of the gradients before every optimizer step (`nn.utils.clip_grad_norm_`).

    Args:
        max_norm: the largest total norm the gradients keep.
        norm_type: the p of the p-norm.
        parameters: the parameters whose gradients are clipped (default: the model's).

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> model = nn.Linear(2, 1, bias=False)
        >>> (model(mg.tensor([[30.0, 40.0]])).sum()).backward()   # gradient norm 50
        >>> cb = GradientClipping(max_norm=1.0)
        >>> cb.set_model(model)
        >>> cb.on_before_optimizer_step(0)
        >>> round(float((model.weight.grad ** 2).sum().sqrt().item()), 4)
        1.0
    """

    def __init__(self, max_norm: float, norm_type: float = 2.0,
                 parameters: Iterable[Tensor] | None = None) -> None:
        super().__init__()
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.parameters = None if parameters is None else list(parameters)

    def on_before_optimizer_step(self, batch: int, logs: dict | None = None) -> None:
        parameters = self.model.parameters() if self.parameters is None else self.parameters
        clip_grad_norm_(parameters, self.max_norm, self.norm_type)


class History(Callback):
    """Records the metrics of every epoch; `fit` returns one.

    Attributes:
        history: metric name -> list of per-epoch values, e.g. ``history['val_loss'][-1]``.
        epoch: the epochs recorded (counted from 0).

    Example:
        >>> h = History()
        >>> h.on_epoch_end(0, {"loss": 0.5})
        >>> h.history
        {'loss': [0.5]}
    """

    def __init__(self) -> None:
        super().__init__()
        self.history: dict = {}
        self.epoch: list = []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch.append(epoch)
        for name, value in (logs or {}).items():
            self.history.setdefault(name, []).append(value)

    def __repr__(self) -> str:
        return f"History(epochs={len(self.epoch)}, metrics={list(self.history)})"


# ------------------------------------------------------------------------------------------
# the loop
# ------------------------------------------------------------------------------------------


def _as_metric_dict(metrics: Mapping[str, Metric] | Sequence[Metric] | None) -> dict:
    if not metrics:
        return {}
    if isinstance(metrics, Mapping):
        return dict(metrics)
    return {getattr(fn, "__name__", f"metric_{i}"): fn for i, fn in enumerate(metrics)}


def _batch_size(y: Any) -> int:
    return int(y.shape[0]) if getattr(y, "ndim", 0) else 1


def _record(meters: dict, loss: Tensor, out: Tensor, y: Tensor, metrics: dict) -> None:
    """Adds one batch's loss and metrics to the running means (no device synchronisation)."""
    meters["loss"].add(loss.detach(), _batch_size(y))
    with no_grad():
        for name, fn in metrics.items():
            scores = fn(out.detach(), y)  # per-example scores, e.g. correct or not
            meters[name].add(scores.data.mean(), scores.data.size)


def _results(meters: dict, average_over_ranks: bool = False) -> dict:
    """The meters' means; with `average_over_ranks` (every rank calling), over the examples of
    every rank of the process group (one all-reduce)."""
    group = dist.world()
    if not average_over_ranks or group is None or group.size == 1:
        return {name: m.result() for name, m in meters.items()}
    sums = np.array([m.totals() for m in meters.values()], dtype=np.float64)  # (metrics, 2)
    group.all_reduce(sums, "sum")
    return {name: total / count if count else float("nan")
            for name, (total, count) in zip(meters, sums)}


def train_epoch(
    model: Any,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    optimizer: Any,
    loader: Iterable,
    metrics: Mapping[str, Metric] | Sequence[Metric] = (),
    progbar: Progbar | None = None,
    refresh: float | None = REFRESH_SECONDS,
    callbacks: Sequence[Callback] = (),
    forward: Callable[[Any], Tensor] | None = None,
    average_over_ranks: bool = False,
    gradient_accumulation_steps: int = 1,
) -> dict:
    """Trains `model` for one pass over `loader`; returns the epoch's mean loss and metrics.

    Args:
        model: a callable module; ``model(x)`` is the output `loss_fn` expects.
        loss_fn: ``loss_fn(output, target)`` -> a scalar Tensor (the batch mean).
        optimizer: has ``zero_grad()`` and ``step()``.
        loader: yields ``(x, y)`` batches of Tensors.
        metrics: name -> ``fn(output, target)`` returning per-example scores (e.g.
            `accuracy`); a sequence of functions is named by their ``__name__``.
        progbar: a `Progbar` to move along; its last update is left to the caller (so that
            validation metrics can join the final line).
        refresh: seconds between two progress-bar updates (each reads the device once);
            None updates it only at the last step.
        callbacks: `Callback` objects whose batch hooks run around every step.
        forward: ``forward(x)`` -> the output, where a batch's `x` is not simply the model's
            one argument (e.g. ``lambda inputs: model(*inputs)``); default ``model``.
        average_over_ranks: under data parallel (every rank calling), average the results
            over the examples of every rank.
        gradient_accumulation_steps: batches whose gradients are summed into one optimizer
            step (k). Each batch's loss is weighted by its share of the k batches' examples,
            so the step equals the step on one batch of all of them (for losses that are
            means over examples); the last group of an epoch may be shorter. Batch hooks run
            for every batch, ``on_before_optimizer_step`` only before a step; the batch-end
            logs say ``'stepped'``.

    Returns:
        ``{'loss': mean loss, name: mean score, ...}`` over the epoch's examples.
    """
    if gradient_accumulation_steps < 1:
        raise ValueError("gradient_accumulation_steps must be a positive integer, got "
                         f"{gradient_accumulation_steps}")
    metrics = _as_metric_dict(metrics)
    meters = {name: RunningMean() for name in ["loss", *metrics]}
    forward = model if forward is None else forward
    batch_begin = _hooks(callbacks, "on_train_batch_begin")
    before_step = _hooks(callbacks, "on_before_optimizer_step")
    batch_end = _hooks(callbacks, "on_train_batch_end")
    total_steps = len(loader) if hasattr(loader, "__len__") else None
    last_shown = time.monotonic()
    model.train()
    batches = _accumulation_groups(loader, gradient_accumulation_steps)
    for batch, (x, y), weight, last in batches:
        _call(batch_begin, batch)
        if weight is None or weight[0]:  # the first batch of a step
            optimizer.zero_grad()
        out = forward(x)
        loss = loss_fn(out, y)
        (loss if weight is None else loss * weight[1]).backward()
        if last:
            _call(before_step, batch)  # e.g. gradient clipping
            optimizer.step()

        _record(meters, loss, out, y, metrics)
        if batch_end:
            logs = {"loss": loss.detach()}
            if weight is not None:
                logs["stepped"] = last
            _call(batch_end, batch, logs)
            if _stop_requested(callbacks):  # e.g. TerminateOnNaN: stop within the epoch
                break
        step = batch + 1
        if progbar is not None and refresh is not None and step != total_steps:
            now = time.monotonic()
            if now - last_shown >= refresh:
                last_shown = now
                values = [(name, m.result()) for name, m in meters.items()]
                progbar.update(step, values=values, finalize=False)
    return _results(meters, average_over_ranks)


def _accumulation_groups(loader: Iterable, steps: int) -> Iterator:
    """``(index, batch, weight, last)`` for every batch of `loader`: `weight` is None without
    accumulation, else ``(first in its group, its share of the group's examples)``; `last`
    says an optimizer step follows it. A group's batches are read before the first runs."""
    if steps == 1:
        for index, batch in enumerate(loader):
            yield index, batch, None, True
        return
    index, group = 0, []
    for batch in itertools.chain(loader, [None]):
        if batch is not None:
            group.append(batch)
            if len(group) < steps:
                continue
        if not group:
            break
        total = sum(_batch_size(y) for _, y in group)
        for i, (x, y) in enumerate(group):
            yield index, (x, y), (i == 0, _batch_size(y) / total), i == len(group) - 1
            index += 1
        group = []


def evaluate(
    model: Any,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    loader: Iterable,
    metrics: Mapping[str, Metric] | Sequence[Metric] = (),
    progbar: Progbar | None = None,
    average_over_ranks: bool = False,
) -> dict:
    """The mean loss and metrics of `model` over `loader`, in eval mode and without a graph.

    The model's train/eval mode is restored afterwards. With `average_over_ranks` (under data
    parallel, every rank calling with its own shard) the means are over every rank's examples.

    Returns:
        ``{'loss': mean loss, name: mean score, ...}``.

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> from minigrad.data import DataLoader, TensorDataset
        >>> model = nn.Linear(2, 2)
        >>> loader = DataLoader(TensorDataset(mg.randn(10, 2), mg.tensor([0, 1] * 5)), 4)
        >>> sorted(evaluate(model, nn.CrossEntropyLoss(), loader, {"accuracy": accuracy}))
        ['accuracy', 'loss']
    """
    metrics = _as_metric_dict(metrics)
    meters = {name: RunningMean() for name in ["loss", *metrics]}
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        with no_grad():
            steps = 0
            for x, y in loader:
                out = model(x)
                _record(meters, loss_fn(out, y), out, y, metrics)
                steps += 1
            logs = _results(meters, average_over_ranks)
            if progbar is not None:
                progbar.update(steps, values=list(logs.items()), finalize=True)
    finally:
        if was_training:
            model.train()
    return logs


def fit(
    model: Any,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    optimizer: Any,
    loader: Iterable,
    epochs: int = 1,
    val_loader: Iterable | None = None,
    metrics: Mapping[str, Metric] | Sequence[Metric] = (),
    callbacks: Sequence[Callback] = (),
    verbose: int = 1,
    scheduler: Any = None,
    file: TextIO | None = None,
    forward: Callable[[Any], Tensor] | None = None,
    initial_epoch: int = 0,
    gradient_accumulation_steps: int = 1,
    validation_freq: int | Sequence[int] = 1,
) -> History:
    """Trains `model` for `epochs` epochs with a Keras-style progress bar.

    Each epoch runs `train_epoch`, then `evaluate` on `val_loader` (its metrics get a
    ``val_`` prefix), then ``scheduler.step()``, then the callbacks' ``on_epoch_end``.

    Under data parallel (a process group of several ranks) every rank calls `fit` with its
    shard: the logs are averaged over all ranks' examples (the same numbers everywhere, so
    callbacks decide alike) and only rank 0 prints.

    Args:
        model: the module to train.
        loss_fn: ``loss_fn(output, target)`` -> scalar Tensor.
        optimizer: a `minigrad.optim` optimizer over the model's parameters.
        loader: training batches ``(x, y)``.
        epochs: passes over `loader`.
        val_loader: validation batches, evaluated after every epoch.
        metrics: name -> ``fn(output, target)`` per-example scores, e.g.
            ``{'accuracy': accuracy}``.
        callbacks: `Callback` objects (e.g. `GradientClipping`, `LRSchedulerCallback`, or
            from `minigrad.keras.callbacks`).
        verbose: 0 silent, 1 progress bar, 2 one line per epoch.
        scheduler: an `optim.lr_scheduler` stepped once per epoch (for one stepped per batch,
            pass ``LRSchedulerCallback(scheduler, 'step')`` in `callbacks`).
        file: where the progress goes (default standard output).
        forward: how a batch's inputs go through the model, as in `train_epoch`.
        initial_epoch: the epoch to start from (Keras's name), to resume a run: epochs
            ``initial_epoch .. epochs - 1`` run, and a `DistributedSampler` gets the same
            epoch numbers as in the uninterrupted run.
        gradient_accumulation_steps: batches per optimizer step, as in `train_epoch` (the
            step equals the step on one batch of all their examples).
        validation_freq: validate every N epochs (an int), or after the epochs (counted
            from 1) of a list, as Keras; the other epochs' logs have no ``val_`` entries.

    Returns:
        A `History` whose ``.history`` maps ``'loss'``, the metric names and their
        ``val_`` versions to per-epoch lists.
    """
    file = sys.stdout if file is None else file
    group = dist.world()
    parallel = group is not None and group.size > 1
    if parallel:
        if group.rank != 0:
            verbose = 0  # one progress bar and one log: rank 0's
        if not isinstance(model, DistributedDataParallel):
            warnings.warn(f"fit: {group.size} ranks are training, but the model is not wrapped "
                          "in nn.parallel.DistributedDataParallel: their gradients are not "
                          "averaged and the replicas drift apart", stacklevel=2)
    history = History()
    callbacks = [*callbacks, history]
    if scheduler is not None:  # first, so the other callbacks see the next epoch's rate
        callbacks.insert(0, LRSchedulerCallback(scheduler, "epoch"))
    params = {"epochs": epochs, "steps": len(loader) if hasattr(loader, "__len__") else None,
              "verbose": verbose}
    for cb in callbacks:
        if getattr(cb, "model", None) is None:
            cb.set_model(model)
        cb.optimizer = optimizer
        cb.set_params(params)
    model.stop_training = False
    metrics = _as_metric_dict(metrics)
    names = ["loss", *metrics]
    names += [f"val_{name}" for name in names]

    for cb in callbacks:
        cb.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        _set_epoch(loader, epoch)
        for cb in callbacks:
            cb.on_epoch_begin(epoch)
        if verbose:
            print(f"Epoch {epoch + 1}/{epochs}", file=file)
        # NOTE: the loop passes exact running means; "stateful" makes the bar show them as given
        bar = Progbar(params["steps"], verbose=verbose, file=file, stateful_metrics=names)
        refresh = REFRESH_SECONDS if verbose == 1 and _isatty(file) else None
        logs = train_epoch(model, loss_fn, optimizer, loader, metrics, bar, refresh,
                           callbacks, forward, average_over_ranks=parallel,
                           gradient_accumulation_steps=gradient_accumulation_steps)
        if val_loader is not None and _should_validate(epoch, validation_freq):
            val_logs = evaluate(model, loss_fn, val_loader, metrics,
                                average_over_ranks=parallel)
            logs.update({f"val_{name}": value for name, value in val_logs.items()})
        if verbose:
            bar.update(params["steps"] or 0, values=list(logs.items()), finalize=True)
        for cb in callbacks:
            cb.on_epoch_end(epoch, logs)
        if _stop_requested(callbacks):
            break
    for cb in callbacks:
        cb.on_train_end()
    return history


def _set_epoch(loader: Any, epoch: int) -> None:
    """Tells the loader's sampler the epoch (a `DistributedSampler` shuffles by it)."""
    sampler = getattr(loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)


def _isatty(file: Any) -> bool:
    try:
        return bool(file.isatty())
    except (AttributeError, ValueError, OSError):
        return False
