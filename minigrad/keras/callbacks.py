"""Keras callbacks: `EarlyStopping`, `ModelCheckpoint`, `LearningRateScheduler`, `History`.

They use Keras's hook names (`Callback`, shared with `minigrad.train.fit`) and work both with a
`keras.Sequential` model and with a plain `minigrad.nn.Module` trained by `minigrad.train.fit`
(weights are copied through ``state_dict``; a Module is checkpointed with `mg.save`).

Example:
    >>> stop = EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    >>> stop.monitor, stop.mode
    ('val_loss', 'min')
"""

from __future__ import annotations

import inspect
import math
import os
import warnings
from typing import Any, Callable

from minigrad.distributed import run_on_rank_zero
from minigrad.io.serialization import save
from minigrad.train import Callback, History

__all__ = ["Callback", "EarlyStopping", "History", "LearningRateScheduler", "ModelCheckpoint"]


def _resolve_mode(mode: str, monitor: str, who: str) -> str:
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{who}: mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode != "auto":
        return mode
    # Keras's rule: accuracies and AUCs grow, everything else (losses) shrinks
    return "max" if ("acc" in monitor or "auc" in monitor) else "min"


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
