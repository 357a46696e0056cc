"""Keras callbacks: `EarlyStopping`, `ModelCheckpoint`, `LearningRateScheduler`,
`ReduceLROnPlateau`, `CSVLogger`, `TerminateOnNaN`, `LambdaCallback`, `History`.

They use Keras's hook names (`Callback`, shared with `minigrad.train.fit`) and work both with a
`keras.Sequential` model and with a plain `minigrad.nn.Module` trained by `minigrad.train.fit`
(weights are copied through ``state_dict``; a Module is checkpointed with `mg.save`).

Example:
    >>> stop = EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    >>> stop.monitor, stop.mode
    ('val_loss', 'min')
"""

from __future__ import annotations

import collections
import csv
import inspect
import math
import os
import warnings
from typing import Any, Callable

import numpy as np

from minigrad.distributed import run_on_rank_zero
from minigrad.io.serialization import save
from minigrad.tensor import Tensor
from minigrad.train import Callback, History

__all__ = [
    "CSVLogger",
    "Callback",
    "EarlyStopping",
    "History",
    "LambdaCallback",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "ReduceLROnPlateau",
    "TerminateOnNaN",
]


def _resolve_mode(mode: str, monitor: str, who: str) -> str:
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{who}: mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode != "auto":
        return mode
    # Keras's rule: accuracies and AUCs grow, everything else (losses) shrinks
    return "max" if ("acc" in monitor or "auc" in monitor) else "min"


def _param_groups(callback: Callback, who: str) -> list:
    """The parameter groups of the optimizer being trained (their ``'lr'`` is the rate)."""
    optimizer = callback.optimizer or getattr(callback.model, "optimizer", None)
    if optimizer is None:
        raise RuntimeError(f"{who}: the model has no optimizer")
    return optimizer.param_groups


def _plain_logs(logs: dict | None) -> dict:
    """Batch logs with Python floats in place of 0-d Tensors (reads the device once each)."""
    return {k: float(v.item()) if isinstance(v, Tensor) else v for k, v in (logs or {}).items()}


def _snapshot(model: Any) -> dict:
    """A copy of the model's weights (detached clones, on their device)."""
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def _n_positional(fn: Callable) -> int:
    """How many positional arguments `fn` takes (2 for ``schedule(epoch, lr)``)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature
        return 2
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if any(p.kind == inspect.Parameter.VAR_POSITIONAL for p in params):
        return 2
    return sum(p.kind in kinds for p in params)


class EarlyStopping(Callback):
    """Stops training when a monitored metric has stopped improving.

    Args:
        monitor: the metric to watch, e.g. ``'val_loss'`` or ``'val_accuracy'``.
        min_delta: the smallest change that counts as an improvement.
        patience: epochs without improvement after which training stops.
        verbose: 1 prints a line when stopping and when restoring weights.
        mode: ``'min'``, ``'max'`` or ``'auto'`` (max for accuracies, min otherwise).
        baseline: training stops if the metric does not beat this value within `patience`.
        restore_best_weights: at the end of training, put back the weights of the best epoch
            (as Keras 3 does; when no epoch improved, the first epoch's weights).
        start_from_epoch: epochs to wait before watching.

    Attributes:
        stopped_epoch: the epoch (from 0) training stopped at, 0 if it was not stopped.
        best_epoch: the epoch with the best value.
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0,
                 verbose: int = 0, mode: str = "auto", baseline: float | None = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0) -> None:
        super().__init__()
        self.monitor = monitor
        self.min_delta = abs(min_delta)
        self.patience = patience
        self.verbose = verbose
        self.mode = _resolve_mode(mode, monitor, "EarlyStopping")
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch
        self.on_train_begin()

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.wait = 0
        self.stopped_epoch = 0
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_weights: dict | None = None
        self.best_epoch = 0

    def _is_improvement(self, value: float, reference: float) -> bool:
        if self.mode == "min":
            return value < reference - self.min_delta
        return value > reference + self.min_delta

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        value = (logs or {}).get(self.monitor)
        if value is None:
            available = ", ".join(sorted(logs or {}))
            warnings.warn(
                f"Early stopping conditioned on metric {self.monitor!r}, which is not "
                f"available. Available metrics are: {available}. (Pass validation data to "
                "fit() for 'val_' metrics.)",
                stacklevel=2,
            )
            return
        if epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = _snapshot(self.model)  # in case no epoch ever improves
        self.wait += 1
        if self._is_improvement(value, self.best):
            self.best = value
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = _snapshot(self.model)
            if self.baseline is None or self._is_improvement(value, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print("Restoring model weights from the end of the best epoch: "
                      f"{self.best_epoch + 1}.")
            self.model.load_state_dict(self.best_weights)


class ModelCheckpoint(Callback):
    """Saves the model (or only its weights) after every epoch, or only when it improved.

    Args:
        filepath: where to save; may hold ``{epoch}`` and metric fields, e.g.
            ``'ckpt/model-{epoch:02d}-{val_loss:.2f}'``. A Keras model is saved with
            ``model.save`` (a folder), or ``model.save_weights`` with `save_weights_only`
            (one safetensors file); a plain Module's ``state_dict`` goes to `mg.save`.
        monitor: the metric compared with `save_best_only`.
        verbose: 1 prints a line per save.
        save_best_only: save only when `monitor` improved on the best so far.
        save_weights_only: save the weights only.
        mode: ``'min'``, ``'max'`` or ``'auto'``.
    """

    def __init__(self, filepath: str | os.PathLike, monitor: str = "val_loss",
                 verbose: int = 0, save_best_only: bool = False,
                 save_weights_only: bool = False, mode: str = "auto") -> None:
        super().__init__()
        self.filepath = os.fspath(filepath)
        self.monitor = monitor
        self.verbose = verbose
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.mode = _resolve_mode(mode, monitor, "ModelCheckpoint")
        self.best = math.inf if self.mode == "min" else -math.inf

    def _improved(self, value: float) -> bool:
        return value < self.best if self.mode == "min" else value > self.best

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if self.save_best_only:
            value = logs.get(self.monitor)
            if value is None:
                raise KeyError(
                    f"ModelCheckpoint(save_best_only=True) is watching {self.monitor!r}, "
                    f"which is not among the metrics of this run: {', '.join(sorted(logs))}"
                )
            if not self._improved(value):
                if self.verbose > 0:
                    print(f"Epoch {epoch + 1}: {self.monitor} did not improve from "
                          f"{self.best:.5f}")
                return
            if self.verbose > 0:
                print(f"Epoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} to "
                      f"{value:.5f}, saving model to {path}")
            self.best = value
        elif self.verbose > 0:
            print(f"Epoch {epoch + 1}: saving model to {path}")
        run_on_rank_zero(self._save, path)  # under data parallel: rank 0 writes, others wait

    def _save(self, path: str) -> None:
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        if self.save_weights_only and hasattr(self.model, "save_weights"):
            self.model.save_weights(path)
        elif not self.save_weights_only and hasattr(self.model, "save"):
            self.model.save(path)
        else:
            save(self.model.state_dict(), path)


class LearningRateScheduler(Callback):
    """Sets the learning rate at the start of every epoch to ``schedule(epoch, lr)``.

    Args:
        schedule: ``fn(epoch, lr) -> new lr`` (epoch counted from 0), or ``fn(epoch)``.
        verbose: 1 prints the rate set.

    The rate of each epoch is added to its logs (and history) as ``'learning_rate'``.

    Example:
        >>> halve = LearningRateScheduler(lambda epoch, lr: lr if epoch < 2 else lr / 2)
    """

    def __init__(self, schedule: Callable[..., float], verbose: int = 0) -> None:
        super().__init__()
        self.schedule = schedule
        self.verbose = verbose

    def _groups(self) -> list:
        optimizer = self.optimizer or getattr(self.model, "optimizer", None)
        if optimizer is None:
            raise RuntimeError("LearningRateScheduler: the model has no optimizer")
        return optimizer.param_groups

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        groups = self._groups()
        lr = float(groups[0]["lr"])
        if _n_positional(self.schedule) >= 2:
            new_lr = float(self.schedule(epoch, lr))
        else:  # a one-argument schedule(epoch)
            new_lr = float(self.schedule(epoch))
        if not math.isfinite(new_lr):
            raise ValueError(f"LearningRateScheduler: the schedule returned {new_lr}")
        for group in groups:
            group["lr"] = new_lr
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to "
                  f"{new_lr}.")

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["learning_rate"] = float(self._groups()[0]["lr"])


class ReduceLROnPlateau(Callback):
    """Multiplies the learning rate by `factor` when a metric has stopped improving (Keras's
    rule, step for step).

    Args:
        monitor: the metric to watch, e.g. ``'val_loss'``.
        factor: the factor (< 1) applied to the rate: ``new_lr = lr * factor``.
        patience: epochs without improvement after which the rate is reduced.
        verbose: 1 prints a line at each reduction.
        mode: ``'min'``, ``'max'`` or ``'auto'`` (max when the name holds ``'acc'``).
        min_delta: the smallest change that counts as an improvement.
        cooldown: epochs to wait after a reduction before counting again.
        min_lr: the rate is never set below this.

    The rate of each epoch is added to its logs (and history) as ``'learning_rate'``.

    Example:
        >>> reduce = ReduceLROnPlateau(monitor="val_loss", factor=0.2, patience=5)
        >>> reduce.factor, reduce.patience
        (0.2, 5)
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 verbose: int = 0, mode: str = "auto", min_delta: float = 1e-4,
                 cooldown: int = 0, min_lr: float = 0.0, **kwargs: Any) -> None:
        super().__init__()
        if "epsilon" in kwargs:  # Keras 2's name of min_delta
            min_delta = kwargs.pop("epsilon")
        if kwargs:
            raise TypeError(f"ReduceLROnPlateau: unexpected keyword argument(s) {sorted(kwargs)}")
        if factor >= 1.0:
            raise ValueError("ReduceLROnPlateau does not support a factor >= 1.0. Received "
                             f"factor={factor}")
        self.monitor = monitor
        self.factor = factor
        self.patience = patience
        self.verbose = verbose
        self.min_delta = min_delta
        self.cooldown = cooldown
        self.min_lr = min_lr
        if mode not in ("auto", "min", "max"):
            warnings.warn(f"Learning rate reduction mode {mode} is unknown, fallback to auto "
                          "mode.", stacklevel=2)
            mode = "auto"
        self.mode = mode
        self._reset()

    def _reset(self) -> None:
        # NOTE: Keras's 'auto' looks for 'acc' only (not 'auc', unlike EarlyStopping)
        if self.mode == "min" or (self.mode == "auto" and "acc" not in self.monitor):
            self._better = lambda a, b: a < b - self.min_delta
            self.best = math.inf
        else:
            self._better = lambda a, b: a > b + self.min_delta
            self.best = -math.inf
        self.cooldown_counter = 0
        self.wait = 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._reset()

    def in_cooldown(self) -> bool:
        """Whether the callback is waiting out its cooldown after a reduction."""
        return self.cooldown_counter > 0

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs if logs is not None else {}
        groups = _param_groups(self, "ReduceLROnPlateau")
        logs["learning_rate"] = float(groups[0]["lr"])
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(
                f"Learning rate reduction is conditioned on metric `{self.monitor}` which is not "
                f"available. Available metrics are: {','.join(logs)}.", stacklevel=2)
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._better(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience:
                old_lr = float(groups[0]["lr"])
                if old_lr > np.float32(self.min_lr):
                    new_lr = max(old_lr * self.factor, self.min_lr)
                    for group in groups:
                        group["lr"] = new_lr
                    if self.verbose > 0:
                        print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate "
                              f"to {new_lr}.")
                    self.cooldown_counter = self.cooldown
                    self.wait = 0


class CSVLogger(Callback):
    """Writes each epoch's logs as a row of a CSV file: ``epoch`` then the metrics, sorted.

    Args:
        filename: the CSV file, e.g. ``'run/log.csv'``.
        separator: the field separator.
        append: append to an existing file (no second header) instead of replacing it.

    As Keras does, when the first epoch has no ``val_`` metrics (``validation_freq > 1``, or
    no validation) ``val_`` columns are added for them; epochs without a value write ``NA``.

    Example:
        >>> CSVLogger("training.log", separator=";").sep
        ';'
    """

    def __init__(self, filename: str | os.PathLike, separator: str = ",",
                 append: bool = False) -> None:
        super().__init__()
        self.sep = separator
        self.filename = os.fspath(filename)
        self.append = append
        self.writer: Any = None
        self.keys: list | None = None
        self.append_header = True
        self.csv_file: Any = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.append:
            if os.path.exists(self.filename):
                with open(self.filename, encoding="utf-8") as f:
                    self.append_header = not bool(len(f.readline()))
            mode = "a"
        else:
            mode = "w"
        parent = os.path.dirname(self.filename)
        if parent:
            os.makedirs(parent, exist_ok=True)
        self.writer = None
        self.keys = None
        self.csv_file = open(self.filename, mode, newline="", encoding="utf-8")

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}

        def handle_value(value: Any) -> Any:
            if isinstance(value, Tensor):
                value = value.item()
            if isinstance(value, str):
                return value
            if isinstance(value, collections.abc.Iterable) and not (
                isinstance(value, np.ndarray) and value.ndim == 0
            ):
                return f"\"[{', '.join(map(str, value))}]\""
            return value

        if self.keys is None:
            self.keys = sorted(logs)
            if not any(key.startswith("val_") for key in self.keys):
                self.keys.extend(["val_" + key for key in self.keys])
        if self.writer is None:
            dialect = type("CustomDialect", (csv.excel,), {"delimiter": self.sep})
            self.writer = csv.DictWriter(self.csv_file, fieldnames=["epoch", *self.keys],
                                         dialect=dialect)
            if self.append_header:
                self.writer.writeheader()
        row = {"epoch": epoch}
        row.update((key, handle_value(logs.get(key, "NA"))) for key in self.keys)
        self.writer.writerow(row)
        self.csv_file.flush()

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.csv_file is not None:
            self.csv_file.close()
        self.writer = None


class TerminateOnNaN(Callback):
    """Stops training at the first batch whose loss is NaN or infinite (within the epoch).

    Reads each batch's loss from the device (one synchronisation per batch).

    Example:
        >>> TerminateOnNaN().model is None
        True
    """

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        value = float(loss.item()) if isinstance(loss, Tensor) else float(loss)
        if math.isnan(value) or math.isinf(value):
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


class LambdaCallback(Callback):
    """A callback made of functions, e.g. ``LambdaCallback(on_epoch_end=lambda epoch, logs:
    print(epoch, logs['loss']))``.

    Args:
        on_epoch_begin, on_epoch_end: ``fn(epoch, logs)``.
        on_train_begin, on_train_end: ``fn(logs)``.
        on_train_batch_begin, on_train_batch_end: ``fn(batch, logs)`` (``on_batch_begin`` and
            ``on_batch_end`` are their Keras 2 names); batch logs hold floats.
        **kwargs: other hooks (``on_test_batch_end``, ...) are kept as attributes; `fit` does
            not call them.

    Example:
        >>> seen = []
        >>> cb = LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(epoch))
        >>> cb.on_epoch_end(3, {}); seen
        [3]
    """

    _HOOKS = ("on_epoch_begin", "on_epoch_end", "on_train_begin", "on_train_end",
              "on_train_batch_begin", "on_train_batch_end")

    def __init__(self, on_epoch_begin: Callable | None = None,
                 on_epoch_end: Callable | None = None, on_train_begin: Callable | None = None,
                 on_train_end: Callable | None = None,
                 on_train_batch_begin: Callable | None = None,
                 on_train_batch_end: Callable | None = None, **kwargs: Any) -> None:
        super().__init__()
        on_train_batch_begin = on_train_batch_begin or kwargs.pop("on_batch_begin", None)
        on_train_batch_end = on_train_batch_end or kwargs.pop("on_batch_end", None)
        self.__dict__.update(kwargs)
        given = dict(zip(self._HOOKS, (on_epoch_begin, on_epoch_end, on_train_begin,
                                       on_train_end, on_train_batch_begin, on_train_batch_end)))
        self._functions = {name: fn for name, fn in given.items() if fn is not None}

    def _run(self, name: str, *args: Any) -> None:
        fn = self._functions.get(name)
        if fn is not None:
            fn(*args)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._run("on_epoch_begin", epoch, logs)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._run("on_epoch_end", epoch, logs)

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._run("on_train_begin", logs)

    def on_train_end(self, logs: dict | None = None) -> None:
        self._run("on_train_end", logs)

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if "on_train_batch_begin" in self._functions:
            self._run("on_train_batch_begin", batch, _plain_logs(logs))

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if "on_train_batch_end" in self._functions:
            self._run("on_train_batch_end", batch, _plain_logs(logs))
