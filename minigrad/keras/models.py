"""Keras models: `Sequential`, `Functional` (``keras.Model(inputs, outputs)``) and the `Model`
base, trained by `minigrad.train`.

A model is an `nn.Module` whose children are Keras layers. `compile` picks the optimizer,
loss and metrics; `fit` turns NumPy arrays into a `DataLoader` on the model's device and hands
everything to `minigrad.train.fit`, the one training loop (zero_grad, forward, loss, backward,
step). `evaluate` and `predict` use the same pieces.

Started as several processes (``minigrad launch -n 2 train.py``, or ``mpiexec``), `fit` trains
data-parallel by itself, as Keras does under a distribution strategy: `batch_size` is the
global batch, split evenly over the ranks; each rank trains on its shard (PyTorch's
`DistributedSampler` order) with gradients averaged by `nn.parallel.DistributedDataParallel`;
the metrics are over all ranks' examples, rank 0 alone prints, and `save`/`save_weights` write
on rank 0 while the others wait.

Softmax + cross-entropy (and sigmoid + binary cross-entropy) are computed from the logits:
while `fit` and `evaluate` run, the last layer's activation is left out of the forward pass
and the loss takes the logits instead, which is exact and never overflows. `predict` and
calling the model apply the activation as usual.

Example:
    >>> import numpy as np
    >>> from minigrad import keras
    >>> model = keras.Sequential([
    ...     keras.layers.Dense(16, activation="relu", input_shape=(4,)),
    ...     keras.layers.Dense(3, activation="softmax")])
    >>> model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
    ...               metrics=["accuracy"])
    >>> x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    >>> y = np.arange(32) % 3
    >>> history = model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    >>> sorted(history.history)
    ['accuracy', 'loss']
    >>> model.predict(x[:2], verbose=0).sum(axis=1).round(5).tolist()
    [1.0, 1.0]
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Callable

import numpy as np

from minigrad import backend, nn, train
from minigrad import distributed as dist
from minigrad._version import __version__
from minigrad.autograd import no_grad
from minigrad.data.loader import DataLoader, Subset, TensorDataset
from minigrad.data.sampler import DistributedSampler
from minigrad.io.serialization import load, save
from minigrad.keras import layers as layers_module
from minigrad.keras import losses, optimizers, saving
from minigrad.keras.convolutional import CNN_LAYERS
from minigrad.keras.functional import MERGING_LAYERS, Input, KerasTensor, flatten, map_structure
from minigrad.keras.layers import Embedding, InputLayer, Layer, _to_tensor, get_activation
from minigrad.keras.metrics import get as get_metric  # `compile` has an argument `metrics`
from minigrad.keras.weighting import (
    class_weights_to_sample_weights,
    per_example_loss,
    weighted_loss,
)
from minigrad.keras.weights import module_weights, set_module_weights
from minigrad.nn.parallel import DistributedDataParallel
from minigrad.tensor import Tensor
from minigrad.utils.progress import Progbar

__all__ = ["Functional", "Model", "Sequential", "load_model", "save_model"]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
_ONE_BATCH = 2**31 - 1  # a batch size that takes every example at once
_ACCURACIES = {"accuracy", "acc", "sparse_categorical_accuracy", "categorical_accuracy",
               "binary_accuracy"}


def _snake_case(name: str) -> str:
    """``'LayerNormalization'`` -> ``'layer_normalization'``, ``'LSTM'`` -> ``'lstm'``."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)  # Keras's rule: Conv2D is conv2d
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _verbosity(verbose: Any) -> int:
    return 1 if verbose == "auto" else int(verbose)


def _batch_size(batch_size: int | None) -> int:
    if batch_size is None:
        return 32
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or (
        batch_size <= 0
    ):
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)


def _array(value: Any, name: str) -> Any:
    """A NumPy (or, for GPU tensors, CuPy) array from arrays, Tensors or nested lists."""
    if value is None:
        raise ValueError(f"{name} is None; pass the data as a NumPy array")
    if isinstance(value, Tensor):
        return value.detach().data
    cp = backend.cupy_if_loaded()
    if cp is not None and isinstance(value, cp.ndarray):
        return value
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold numbers, got an array of dtype {array.dtype}")
    if array.ndim == 0:
        raise ValueError(f"{name} must have a batch dimension, got a scalar")
    return array


def _data_parallel_group() -> dist.ProcessGroup | None:
    """The process group `fit` trains over: the default one when it has several ranks, made
    here when a launcher started several processes; None to train alone."""
    if not dist.is_initialized() and dist.launcher_world_size() > 1:
        dist.init_process_group()
    group = dist.world()
    return group if group is not None and group.size > 1 else None


def _to_numpy(array: Any) -> np.ndarray:
    return backend.to_device(array, backend.CPU) if not isinstance(array, np.ndarray) else array


class Model(nn.Module):
    """Base class of Keras models: compile, fit, evaluate, predict, weights.

    Subclass it and write ``call(inputs)`` (Keras's subclassing API), or use `Sequential`.

    Example:
        >>> from minigrad import keras
        >>> class TwoLayers(keras.Model):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.hidden = keras.layers.Dense(8, activation="relu")
        ...         self.out = keras.layers.Dense(1)
        ...     def call(self, inputs):
        ...         return self.out(self.hidden(inputs))
        >>> import minigrad as mg
        >>> TwoLayers()(mg.ones(2, 3)).shape
        (2, 1)
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> "Model":
        # keras.Model(inputs, outputs) is a functional model, as in Keras
        if cls is Model and (args or "inputs" in kwargs or "outputs" in kwargs):
            return super().__new__(Functional)
        return super().__new__(cls)

    def __init__(self, name: str | None = None) -> None:
        super().__init__()
        self.name = name or _snake_case(type(self).__name__)
        self.optimizer: Any = None
        self.loss: Any = None
        self.loss_weights: Any = None
        self.compiled_metrics: list = []
        self.stop_training = False
        self.history: train.History | None = None
        self._is_compiled = False
        self._return_logits = False

    # ---------------------------------------------------------------- the forward pass
    def call(self, inputs: Tensor) -> Tensor:
        """The model's computation on its inputs; a subclassed model defines it."""
        raise NotImplementedError(f"{type(self).__name__} must implement call(inputs)")

    def forward(self, inputs: Any) -> Tensor:
        """Turn the inputs into a tensor and run `call` (what calling the model does)."""
        return self.call(_to_tensor(inputs))

    @property
    def output_shape(self) -> tuple | None:
        """The output shape, batch first (None where unknown)."""
        return None

    def _output_activation(self) -> str | None:
        """The name of the activation of the output layer, if it is a plain one."""
        return None

    def _wants_integer_inputs(self) -> bool:
        return False

    def _ensure_built(self, x: Any) -> None:
        """Builds lazily-made layers by running one example through the model."""
        if not any(True for _ in self.parameters()):
            with no_grad():
                self(Tensor._make(backend.to_device(x[:1], backend.default_device())))

    def _device(self) -> backend.Device:
        for p in self.parameters():
            return p.device
        return backend.default_device()

    @contextlib.contextmanager
    def _logits_output(self, enabled: bool) -> Iterator[None]:
        """Within the block the output layer leaves out its activation (the loss applies it)."""
        previous, self._return_logits = self._return_logits, enabled
        try:
            yield
        finally:
            self._return_logits = previous

    # ---------------------------------------------------------------- compile
    def compile(self, optimizer: Any = "rmsprop", loss: Any = None,
                metrics: Sequence[Any] | None = None, loss_weights: Any = None,
                **kwargs: Any) -> None:
        """Chooses the optimizer, loss and metrics.

        Args:
            optimizer: a name (``'rmsprop'``, the default as in Keras, ``'adam'``, ``'adamw'``,
                ``'sgd'``, ``'adagrad'``, ``'adamax'``, ``'nadam'``), a `keras.optimizers`
                object or a `minigrad.optim` optimizer over ``model.parameters()``.
            loss: ``'sparse_categorical_crossentropy'``, ``'categorical_crossentropy'``,
                ``'binary_crossentropy'``, ``'mse'``, ``'mae'``, a `keras.losses.Loss`, or a
                function ``fn(y_true, y_pred)``.
            metrics: e.g. ``['accuracy']`` (see `keras.metrics.NAMES`) or functions
                ``fn(y_true, y_pred)`` returning per-example scores.
            loss_weights: a factor on the loss (a list or dict, one per output, for a
                functional model with several outputs).
        """
        if kwargs:
            unsupported = ", ".join(sorted(kwargs))
            raise TypeError(f"compile() got unsupported argument(s): {unsupported}")
        self.optimizer = optimizers.get(optimizer)
        self.loss = losses.get(loss)
        self.compiled_metrics = list(metrics or [])
        for metric in self.compiled_metrics:
            get_metric(metric, self.loss, logits=False)  # fail now on unknown names
        if isinstance(loss_weights, (list, tuple)) and len(loss_weights) == 1:
            loss_weights = loss_weights[0]
        if loss_weights is not None and not isinstance(loss_weights, (int, float)):
            raise ValueError(f"loss_weights: one number for a model with one output, got "
                             f"{loss_weights!r}")
        self.loss_weights = None if loss_weights is None else float(loss_weights)
        self._is_compiled = True

    def _assert_compiled(self, what: str) -> None:
        if not self._is_compiled:
            raise RuntimeError(
                f"You must compile your model before {what}. Use `model.compile(optimizer, "
                "loss)`, e.g. model.compile(optimizer='adam', "
                "loss='sparse_categorical_crossentropy', metrics=['accuracy'])."
            )

    def _build_optimizer(self) -> None:
        if isinstance(self.optimizer, optimizers.Optimizer) and not self.optimizer.built:
            self.optimizer.build(self.parameters())

    def _training_setup(self) -> tuple[Callable, dict, bool]:
        """The loss function and metrics the loop uses, and whether they receive logits."""
        loss = self.loss
        fused = (isinstance(loss, losses.Loss) and not loss.from_logits
                 and loss.absorbs is not None and self._output_activation() == loss.absorbs)
        if fused:
            loss = loss.with_logits()  # NOTE: softmax/sigmoid left out of the model, see above
        logits = isinstance(loss, losses.Loss) and loss.from_logits

        def loss_fn(output: Tensor, target: Tensor) -> Tensor:
            return loss(target, output)  # Keras's argument order

        metric_fns = {}
        for metric in self.compiled_metrics:
            name = metric if isinstance(metric, str) else getattr(metric, "__name__", "metric")
            fn = get_metric(metric, self.loss, logits=logits)
            if fused and name not in _ACCURACIES:
                fn = _after_activation(fn, get_activation(self._output_activation()))
            metric_fns[name] = fn
        return loss_fn, metric_fns, fused

    # ---------------------------------------------------------------- data
    def _inputs(self, x: Any) -> Any:
        x = _array(x, "x")
        if self._wants_integer_inputs():
            if x.dtype.kind == "f" and bool((x != x.round()).any()):
                raise ValueError("the model starts with an Embedding: x must hold integer ids")
            return x.astype(np.int64, copy=False)
        return x.astype(np.float32, copy=False)  # uint8 images, float64, ... as Keras does

    def _check_inputs(self, x: Any) -> None:
        """Builds the model for `x` or checks that `x` fits it."""
        self._ensure_built(x)

    def _targets(self, y: Any) -> Any:
        y = _array(y, "y")
        if isinstance(self.loss, losses.Loss):
            y = _to_numpy(y)
            return self.loss.prepare_targets(y, self.output_shape)
        return y.astype(np.float32, copy=False) if y.dtype.kind == "f" else y

    def _data(self, x: Any, y: Any) -> tuple[Any, Any]:
        x = self._inputs(x)
        y_array = _array(y, "y")
        if len(x) != len(y_array):
            raise ValueError(
                "Data cardinality is ambiguous. Make sure all arrays contain the same number "
                f"of samples.\n'x' sizes: {len(x)}\n'y' sizes: {len(y_array)}"
            )
        self._check_inputs(x)
        return x, self._targets(y_array)

    def _loader(self, *arrays: Any, batch_size: int, shuffle: bool = False) -> DataLoader:
        """A loader over arrays moved once to the model's device (batches index them there)."""
        device = self._device()
        on_device = [backend.to_device(a, device) for a in arrays]
        return DataLoader(TensorDataset(*on_device), batch_size=batch_size, shuffle=shuffle)

    def _sharded_loaders(self, group: dist.ProcessGroup, arrays: list, val_arrays: list | None,
                         batch_size: int, shuffle: bool) -> tuple:
        """This rank's training loader (a `DistributedSampler` shard of a `batch_size` global
        batch) and validation loader (every size-th example, from its rank: no padding, so the
        averaged metrics are exactly those of the whole set), over the arrays ``[x, y]`` (or
        every input, target and weight array)."""
        if batch_size % group.size:
            raise ValueError(
                f"batch_size={batch_size} is the global batch, split over {group.size} ranks: "
                f"it must be a multiple of {group.size}")
        per_rank = batch_size // group.size
        seed = np.zeros(1, dtype=np.int64)
        if shuffle:  # drawn on every rank (their generators stay in step), rank 0's used
            seed[0] = backend.generator(backend.CPU).integers(2**31)
            group.broadcast(seed, 0)
        device = self._device()
        train_set = TensorDataset(*[backend.to_device(a, device) for a in arrays])
        sampler = DistributedSampler(train_set, group.size, group.rank, shuffle=shuffle,
                                     seed=int(seed[0]))
        loader = DataLoader(train_set, batch_size=per_rank, sampler=sampler)
        val_loader = None
        if val_arrays is not None:
            val_set = TensorDataset(*[backend.to_device(a, device) for a in val_arrays])
            mine = Subset(val_set, np.arange(group.rank, len(val_arrays[0]), group.size))
            val_loader = DataLoader(mine, batch_size=per_rank)
        return loader, val_loader

    # ---------------------------------------------------------------- several arrays, weights
    # A model with several inputs or outputs, or trained with sample weights or a loss weight,
    # gets batches ``(x, _Targets)``; the plain case keeps its ``(x, y)`` loaders untouched.
    def _n_outputs(self) -> int:
        return 1

    def _structured(self, x: Any, weights: Any) -> bool:
        return (isinstance(x, list) or self._n_outputs() > 1 or weights is not None
                or self.loss_weights is not None)

    def _sample_weights(self, y: Any, sample_weight: Any, class_weight: Any) -> Any:
        """Each example's weight from `sample_weight` and `class_weight` (None when neither)."""
        n = _num_examples(y)
        weights = None
        if sample_weight is not None:
            weights = np.asarray(_to_numpy(_array(sample_weight, "sample_weight")),
                                 dtype=np.float32)
            if weights.ndim == 2 and weights.shape[1] == 1:
                weights = weights.reshape(-1)
            if weights.shape != (n,):
                raise ValueError(f"sample_weight must hold one weight per example, shape "
                                 f"({n},); got shape {weights.shape}")
        if class_weight is not None:
            if self._n_outputs() > 1:
                raise ValueError("`class_weight` is only supported for Models with a single "
                                 "output.")
            per_class = class_weights_to_sample_weights(_to_numpy(y), class_weight)
            weights = per_class if weights is None else weights * per_class
        return weights

    def _batches(self, x: Any, y: Any, weights: Any, batch_size: int, shuffle: bool = False,
                 structured: bool | None = None) -> Any:
        """The loader `fit`, `evaluate` and the ``*_on_batch`` methods read."""
        if structured is None:
            structured = self._structured(x, weights)
        if not structured:
            return self._loader(x, y, batch_size=batch_size, shuffle=shuffle)
        arrays = _flat_arrays(x, y, weights)
        return _StructuredBatches(self._loader(*arrays, batch_size=batch_size, shuffle=shuffle),
                                  x, y, weights)

    def _output_losses(self) -> list:
        return [self.loss]

    def _output_metrics(self) -> list:
        return [self.compiled_metrics]

    def _output_loss_weights(self) -> list:
        return [1.0 if self.loss_weights is None else self.loss_weights]

    def _output_names(self) -> list:
        return [self.name]

    def _structured_setup(self) -> tuple[Callable, dict, bool]:
        """The loss function and metrics for `_Targets` batches, and whether they take
        logits: the sum over outputs of ``loss_weight * loss`` (each loss weighted per example
        when the batch has weights); with several outputs, each output's loss and metrics are
        logged under ``<output name>_<name>``."""
        multi = self._n_outputs() > 1
        if multi:
            fused = False
            losses_ = self._output_losses()
            per_output = [{_metric_name(m): get_metric(m, loss, logits=False) for m in metrics}
                          for loss, metrics in zip(losses_, self._output_metrics())]
        else:
            _, metric_fns, fused = self._training_setup()
            losses_ = [self.loss.with_logits() if fused else self.loss]
            per_output = [metric_fns]
        factors = self._output_loss_weights()

        def loss_fn(output: Any, target: _Targets) -> Tensor:
            outputs = _output_list(output) if multi else [output]
            total = None
            for loss, factor, out, y in zip(losses_, factors, outputs, target.ys):
                if target.weights is None:
                    value = loss(y, out)  # Keras's argument order
                else:
                    value = weighted_loss(loss, y, out, target.weights)
                if factor != 1.0:
                    value = value * factor
                total = value if total is None else total + value
            return total

        metric_fns = {}
        for i, (name, fns) in enumerate(zip(self._output_names(), per_output)):
            prefix = f"{name}_" if multi else ""
            if multi:
                metric_fns[f"{prefix}loss"] = _on_output(
                    lambda out, y, loss=losses_[i]: per_example_loss(loss, y, out), i, multi)
            for metric_name, fn in fns.items():
                metric_fns[prefix + metric_name] = _on_output(fn, i, multi)
        return loss_fn, metric_fns, fused

    def _setup_for(self, x: Any, weights: Any) -> tuple[Callable, dict, bool]:
        if self._structured(x, weights):
            return self._structured_setup()
        return self._training_setup()

    # ---------------------------------------------------------------- fit / evaluate / predict
    def fit(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        epochs: int = 1,
        verbose: int | str = "auto",
        callbacks: Sequence[train.Callback] | None = None,
        validation_split: float = 0.0,
        validation_data: tuple | None = None,
        shuffle: bool = True,
        class_weight: dict | None = None,
        sample_weight: Any = None,
        initial_epoch: int = 0,
        validation_freq: int | Sequence[int] = 1,
        gradient_accumulation_steps: int | None = None,
    ) -> train.History:
        """Trains the model on NumPy arrays (or Tensors) for `epochs` epochs.

        Args:
            x: inputs (N, ...); a list (or a dict by input name) for a functional model with
                several inputs. uint8 images are cast to float32 as they are; scale them
                yourself (``x / 255``) as in the classic Keras program.
            y: labels (N, ...), in the form the loss expects; a list for several outputs.
            batch_size: examples per step (default 32).
            epochs: passes over the data.
            verbose: 0 silent, 1 (``'auto'``) progress bar, 2 one line per epoch.
            callbacks: `keras.callbacks` objects.
            validation_split: fraction of the data, taken from the end before shuffling, to
                validate on instead of training.
            validation_data: ``(x_val, y_val)`` or ``(x_val, y_val, val_sample_weight)`` to
                validate on.
            shuffle: reshuffle the training data every epoch.
            class_weight: ``{class: weight}``: each example's loss is multiplied by its
                class's weight (1 for a class not listed), as Keras.
            sample_weight: ``(N,)`` weights multiplying each example's loss (Keras's
                reduction: ``mean(w * loss)`` over the batch).
            initial_epoch: the epoch to start at (to resume a run).
            validation_freq: validate every N epochs, or after the epochs (from 1) listed.
            gradient_accumulation_steps: batches whose gradients make one optimizer step
                (Keras 3 takes it on the optimizer, whose setting of that name is used when
                this is None); the step equals one on a batch of all their examples.

        Returns:
            A `History`; ``history.history`` maps ``'loss'``, the metrics, and their
            ``'val_'`` versions to per-epoch values.
        """
        self._assert_compiled("training")
        if isinstance(validation_freq, bool) or not (
            (isinstance(validation_freq, int) and validation_freq >= 1)
            or (isinstance(validation_freq, (list, tuple)) and validation_freq)
        ):
            raise ValueError(f"validation_freq must be a positive integer or a list of epochs, "
                             f"got {validation_freq!r}")
        x, y = self._data(x, y)
        weights = self._sample_weights(y, sample_weight, class_weight)
        w_val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (
                2, 3
            ):
                raise ValueError(
                    "validation_data must be a tuple (x_val, y_val) or (x_val, y_val, "
                    f"val_sample_weight), got {type(validation_data).__name__}"
                    + (f" of length {len(validation_data)}"
                       if isinstance(validation_data, (tuple, list)) else "")
                )
            x_val, y_val = self._data(*validation_data[:2])
            if len(validation_data) == 3 and validation_data[2] is not None:
                w_val = self._sample_weights(y_val, validation_data[2], None)
        elif validation_split:
            if not 0.0 < validation_split < 1.0:
                raise ValueError(
                    f"validation_split must be in (0, 1), got {validation_split}"
                )
            n = _num_examples(x)
            split = int(n * (1.0 - validation_split))  # Keras: the last examples
            if split == 0 or split == n:
                raise ValueError(
                    f"validation_split={validation_split} leaves no data for "
                    f"{'training' if split == 0 else 'validation'} with {n} examples"
                )
            x, x_val = _rows(x, slice(None, split)), _rows(x, slice(split, None))
            y, y_val = _rows(y, slice(None, split)), _rows(y, slice(split, None))
            if weights is not None:
                weights, w_val = weights[:split], weights[split:]
        else:
            x_val = y_val = None
        batch_size = _batch_size(batch_size)
        # NOTE: one structure for training and validation, so one loss function serves both
        structured = self._structured(x, weights) or w_val is not None
        group = _data_parallel_group()
        if group is None:
            loader = self._batches(x, y, weights, batch_size, shuffle, structured)
            val_loader = None
            if x_val is not None:
                val_loader = self._batches(x_val, y_val, w_val, batch_size, False, structured)
        elif not structured:
            loader, val_loader = self._sharded_loaders(
                group, [x, y], None if x_val is None else [x_val, y_val], batch_size, shuffle)
        else:
            val_arrays = None if x_val is None else _flat_arrays(x_val, y_val, w_val)
            loader, val_loader = self._sharded_loaders(
                group, _flat_arrays(x, y, weights), val_arrays, batch_size, shuffle)
            loader = _StructuredBatches(loader, x, y, weights)
            if val_loader is not None:
                val_loader = _StructuredBatches(val_loader, x_val, y_val, w_val)

        self._build_optimizer()
        if gradient_accumulation_steps is None:
            gradient_accumulation_steps = getattr(self.optimizer, "gradient_accumulation_steps",
                                                  None)
        accumulation = int(gradient_accumulation_steps or 1)
        loss_fn, metric_fns, fused = (self._structured_setup() if structured
                                      else self._training_setup())
        callbacks = list(callbacks or [])
        for cb in callbacks:
            cb.set_model(self)
        # under data parallel the loop trains a wrapper that averages the gradients
        trained = self if group is None else DistributedDataParallel(self)
        try:
            with self._logits_output(fused):
                history = train.fit(trained, loss_fn, self.optimizer, loader, epochs=epochs,
                                    val_loader=val_loader, metrics=metric_fns,
                                    callbacks=callbacks, verbose=_verbosity(verbose),
                                    initial_epoch=initial_epoch,
                                    gradient_accumulation_steps=accumulation,
                                    validation_freq=validation_freq)
        finally:
            if trained is not self:
                trained.remove_hooks()
        history.set_model(self)
        self.history = history
        return history

    def evaluate(self, x: Any = None, y: Any = None, batch_size: int | None = None,
                 verbose: int | str = "auto", sample_weight: Any = None,
                 return_dict: bool = False) -> Any:
        """The loss and metrics on `x`, `y`, in inference mode (no dropout).

        Args:
            sample_weight: ``(N,)`` weights of the examples' losses, as in `fit`.

        Returns:
            The loss (a float) when there are no metrics, else ``[loss, metric, ...]``; with
            ``return_dict=True`` a dict ``{'loss': .., 'accuracy': ..}``.
        """
        self._assert_compiled("evaluating")
        x, y = self._data(x, y)
        weights = self._sample_weights(y, sample_weight, None)
        loader = self._batches(x, y, weights, _batch_size(batch_size))
        loss_fn, metric_fns, fused = self._setup_for(x, weights)
        verbose = _verbosity(verbose)
        bar = Progbar(len(loader), verbose=verbose) if verbose else None
        with self._logits_output(fused):
            logs = train.evaluate(self, loss_fn, loader, metric_fns, progbar=bar)
        return _logs_result(logs, return_dict)

    def predict(self, x: Any, batch_size: int | None = None,
                verbose: int | str = "auto") -> Any:
        """The model's outputs for `x` (with the output activation), as a NumPy array (a list
        of arrays for a model with several outputs)."""
        x = self._inputs(x)
        self._check_inputs(x)
        several = isinstance(x, list)
        loader = self._loader(*(x if several else [x]), batch_size=_batch_size(batch_size))
        verbose = _verbosity(verbose)
        bar = Progbar(len(loader), verbose=verbose) if verbose else None
        was_training = self.training
        self.eval()
        outputs = []
        try:
            with no_grad(), self._logits_output(False):
                for step, batch in enumerate(loader, start=1):
                    out = self(tuple(batch) if several else batch[0])
                    if isinstance(out, dict):
                        outputs.append({name: o.data for name, o in out.items()})
                    else:
                        outputs.append([o.data for o in out] if isinstance(out, list)
                                       else out.data)
                    if bar is not None:
                        bar.update(step)
        finally:
            self.train(was_training)
        if not outputs:
            return np.zeros((0,), dtype=np.float32)
        if isinstance(outputs[0], dict):
            return {name: _concatenate([batch[name] for batch in outputs])
                    for name in outputs[0]}
        if isinstance(outputs[0], list):
            return [_concatenate([batch[i] for batch in outputs])
                    for i in range(len(outputs[0]))]
        return _concatenate(outputs)

    # ---------------------------------------------------------------- one batch
    def train_on_batch(self, x: Any, y: Any = None, sample_weight: Any = None,
                       class_weight: dict | None = None, return_dict: bool = False) -> Any:
        """One gradient step on one batch (`x`, `y`), as Keras's ``train_on_batch``.

        Returns:
            The batch's loss (a float) when there are no metrics, else ``[loss, metric, ...]``
            (a dict with ``return_dict=True``); computed before the step, as in `fit`.
        """
        self._assert_compiled("training")
        x, y = self._data(x, y)
        weights = self._sample_weights(y, sample_weight, class_weight)
        batch = self._batches(x, y, weights, max(_num_examples(x), 1))
        self._build_optimizer()
        loss_fn, metric_fns, fused = self._setup_for(x, weights)
        with self._logits_output(fused):
            logs = train.train_epoch(self, loss_fn, self.optimizer, batch, metric_fns)
        return _logs_result(logs, return_dict)

    def test_on_batch(self, x: Any, y: Any = None, sample_weight: Any = None,
                      return_dict: bool = False) -> Any:
        """The loss and metrics on one batch, in inference mode (`evaluate` on one batch)."""
        return self.evaluate(x, y, batch_size=_ONE_BATCH, verbose=0,
                             sample_weight=sample_weight, return_dict=return_dict)

    def predict_on_batch(self, x: Any) -> Any:
        """The outputs for one batch (`predict` on one batch, without a progress bar)."""
        return self.predict(x, batch_size=_ONE_BATCH, verbose=0)

    # ---------------------------------------------------------------- weights
    def count_params(self) -> int:
        """Every weight, the moving statistics of batch normalisation included."""
        weights = list(self.parameters()) + _moving_statistics(self)
        return sum(int(np.prod(p.shape)) for p in weights)

    def _weight_holders(self) -> list:
        """The layers (and plain `nn` modules) holding the weights, in Keras's order."""
        return [m for m in self._modules.values() if m is not None]

    def get_weights(self) -> list:
        """The weights as NumPy arrays in Keras's order and layout: each layer's
        ``layer.get_weights()`` in turn (a Dense kernel is ``(in, out)``)."""
        return [w for holder in self._weight_holders()
                for w in (holder.get_weights() if isinstance(holder, (Layer, Model))
                          else module_weights(holder))]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Sets the weights from arrays in `get_weights`'s order and layout."""
        weights = list(weights)
        counts = [len(h.get_weights() if isinstance(h, (Layer, Model)) else module_weights(h))
                  for h in self._weight_holders()]
        if len(weights) != sum(counts):
            raise ValueError(
                f"You called `set_weights(weights)` on model '{self.name}' with a weight list "
                f"of length {len(weights)}, but the model was expecting {sum(counts)} weights."
            )
        for holder, n in zip(self._weight_holders(), counts):
            if not n:
                continue
            if isinstance(holder, (Layer, Model)):
                holder.set_weights(weights[:n])
            else:
                set_module_weights(holder, weights[:n])
            weights = weights[n:]

    def save_weights(self, filepath: str | os.PathLike) -> None:
        """Writes the weights to one safetensors file (`mg.save`); under data parallel rank 0
        writes and the other ranks wait."""
        dist.run_on_rank_zero(save, self.state_dict(), os.fspath(filepath))

    def load_weights(self, filepath: str | os.PathLike) -> None:
        """Reads weights written by `save_weights` (the model must be built)."""
        if not any(True for _ in self.parameters()):
            raise ValueError(
                "Unable to load weights into a model that has not been built yet: build it "
                "first with model.build((None, *input_shape)) or by calling it on data"
            )
        self.load_state_dict(load(os.fspath(filepath), device=self._device()))

    # ---------------------------------------------------------------- saving
    _savable = False  # Sequential and functional models have a config; subclassed ones not

    def _compile_config(self) -> dict | None:
        if not self._is_compiled:
            return None
        return {
            "optimizer": optimizers.serialize(self.optimizer),
            "loss": losses.serialize(self.loss),
            "metrics": [m for m in self.compiled_metrics if isinstance(m, str)],
            "loss_weights": self.loss_weights,
        }

    def _document(self) -> dict:
        """What ``config.json`` holds: the architecture and the compile settings."""
        return {
            "format": "minigrad.keras",
            "format_version": 1,
            "minigrad_version": __version__,
            "class_name": type(self).__name__,
            "config": self.get_config(),
            "compile_config": self._compile_config(),
        }

    def save(self, filepath: str | os.PathLike, overwrite: bool = True) -> None:
        """Saves the model: to one ``.keras`` file when `filepath` ends in ``.keras`` (a zip
        of ``config.json``, ``metadata.json`` and ``model.weights.safetensors``, as Keras 3),
        else to a folder holding ``config.json`` (layers, compile settings) and
        ``model.safetensors`` (the weights). No pickle; reload with `load_model`.

        Args:
            filepath: ``'model.keras'``, or a folder (created if needed).
            overwrite: replace an existing saved model.

        Under data parallel rank 0 writes and the other ranks wait.
        """
        if not self._savable:
            raise NotImplementedError(
                f"{type(self).__name__}.save is not supported for subclassed models; use "
                "save_weights(path) and rebuild the model in code"
            )
        if not self.built:
            raise ValueError("This model has not yet been built; there are no weights to save")
        path = Path(filepath)
        if path.suffix == saving.EXTENSION:
            dist.run_on_rank_zero(saving.write_keras_file, path, self._document(),
                                  self.state_dict(), overwrite)
        else:
            dist.run_on_rank_zero(self._save_folder, path, overwrite)

    def _save_folder(self, path: Path, overwrite: bool) -> None:
        if path.exists() and not path.is_dir():
            raise FileExistsError(f"{path} exists and is not a folder; Model.save writes a folder")
        if (path / CONFIG_FILE).exists() and not overwrite:
            raise FileExistsError(f"{path} already holds a saved model (overwrite=False)")
        path.mkdir(parents=True, exist_ok=True)
        document = self._document()
        save(self.state_dict(), path / WEIGHTS_FILE)
        tmp = path / (CONFIG_FILE + ".tmp")
        tmp.write_text(json.dumps(document, indent=2), encoding="utf-8")
        os.replace(tmp, path / CONFIG_FILE)  # atomic, like mg.save


def _num_examples(data: Any) -> int:
    """The number of examples of an array, or of a list of arrays (several inputs)."""
    return len(data[0]) if isinstance(data, list) else len(data)


def _rows(data: Any, rows: slice) -> Any:
    return [a[rows] for a in data] if isinstance(data, list) else data[rows]


def _flat_arrays(x: Any, y: Any, weights: Any) -> list:
    """``[inputs..., targets..., weights]``: the arrays one `TensorDataset` holds."""
    xs = x if isinstance(x, list) else [x]
    ys = y if isinstance(y, list) else [y]
    return [*xs, *ys, *([] if weights is None else [weights])]


def _concatenate(arrays: list) -> np.ndarray:
    xp = backend.array_module(arrays[0])
    return _to_numpy(xp.concatenate(arrays))  # one transfer from the device


def _metric_name(metric: Any) -> str:
    return metric if isinstance(metric, str) else getattr(metric, "__name__", "metric")


def _logs_result(logs: dict, return_dict: bool) -> Any:
    """Keras's return value: the dict, the loss alone, or ``[loss, metric, ...]``."""
    if return_dict:
        return logs
    values = list(logs.values())
    return values[0] if len(values) == 1 else values


class _Targets(tuple):
    """A batch's targets in the structured case: ``(ys, weights)``, the targets of each output
    and the examples' weights (None when unweighted). ``shape`` gives the loop the batch size."""

    def __new__(cls, ys: Sequence[Tensor], weights: Tensor | None) -> "_Targets":
        return super().__new__(cls, (tuple(ys), weights))

    @property
    def ys(self) -> tuple:
        return self[0]

    @property
    def weights(self) -> Tensor | None:
        return self[1]

    @property
    def shape(self) -> tuple:
        return (self[0][0].shape[0],)

    ndim = 1


class _Outputs(list):
    """The outputs of a model with several: a list, as Keras returns, that can be detached."""

    def detach(self) -> "_Outputs":
        return _Outputs(out.detach() for out in self)


class _OutputDict(dict):
    """The outputs of a model whose outputs are a dict, that can be detached."""

    def detach(self) -> "_OutputDict":
        return _OutputDict({name: out.detach() for name, out in self.items()})


def _output_list(output: Any) -> list:
    """A model's several outputs in `flatten` order (a dict's by sorted key)."""
    return [output[k] for k in sorted(output)] if isinstance(output, dict) else list(output)


class _StructuredBatches:
    """Batches ``(x, _Targets)`` from a loader over `_flat_arrays` (x a tuple of Tensors for
    several inputs). Keeps the loader's length and sampler (for ``set_epoch``)."""

    def __init__(self, loader: Any, x: Any, y: Any, weights: Any) -> None:
        self.loader = loader
        self.sampler = getattr(loader, "sampler", None)
        self.n_x = len(x) if isinstance(x, list) else 1
        self.n_y = len(y) if isinstance(y, list) else 1
        self.several_inputs = isinstance(x, list)
        self.weighted = weights is not None

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator:
        for batch in self.loader:
            xs, rest = batch[: self.n_x], batch[self.n_x:]
            weights = rest[self.n_y] if self.weighted else None
            x = tuple(xs) if self.several_inputs else xs[0]
            yield x, _Targets(rest[: self.n_y], weights)


def _on_output(fn: Callable, index: int, several: bool) -> Callable:
    """A metric ``fn(output, target)`` of output `index`, called with the structured batch."""

    def metric(output: Any, target: _Targets) -> Tensor:
        return fn(_output_list(output)[index] if several else output, target.ys[index])

    return metric


def _after_activation(fn: Callable, activation: Callable | None) -> Callable:
    if activation is None:
        return fn

    def on_activated(output: Tensor, target: Tensor) -> Tensor:
        return fn(activation(output), target)

    return on_activated


class Sequential(Model):
    """A linear stack of layers: each layer's output is the next one's input.

    Args:
        layers: the layers, in order; may start with ``keras.Input(shape=...)``.
        name: the model's name (shown by `summary`).

    The model builds as soon as it knows its input shape (from ``keras.Input``, the first
    layer's ``input_shape``, `build`, or the first data it sees).

    Example:
        >>> from minigrad import keras
        >>> model = keras.Sequential()
        >>> model.add(keras.layers.Dense(128, activation="relu", input_shape=(784,)))
        >>> model.add(keras.layers.Dense(10, activation="softmax"))
        >>> [layer.name for layer in model.layers], model.count_params()
        (['dense', 'dense_1'], 101770)
    """

    _savable = True

    def __init__(self, layers: Sequence[Layer] | None = None, name: str | None = None) -> None:
        super().__init__(name=name or "sequential")
        self._layers: list = []
        self._input_shape: tuple | None = None
        self.built = False
        for layer in layers or ():
            self.add(layer)

    @property
    def layers(self) -> list:
        """The model's layers, in order (a copy of the list)."""
        return list(self._layers)

    def add(self, layer: Layer) -> None:
        """Appends a layer (building it if the model's input shape is known)."""
        if isinstance(layer, KerasTensor) and isinstance(layer.node.layer, InputLayer):
            layer = layer.node.layer  # keras.Input(shape=...) as the first entry
        if isinstance(layer, InputLayer):
            if self._layers or self._input_shape is not None:
                raise ValueError("keras.Input / InputLayer must be the first entry of the model")
            self._input_shape = layer.input_shape
            return
        if not isinstance(layer, Layer):
            hint = (" (a minigrad.nn module: use keras.layers, or train it with "
                    "minigrad.train.fit)" if isinstance(layer, nn.Module) else "")
            raise TypeError(
                "The added layer must be an instance of class keras.layers.Layer. Received: "
                f"layer={layer!r} of type {type(layer).__name__}{hint}"
            )
        if layer.name is None:
            base = _snake_case(type(layer).__name__)
            name, k = base, 0
            while name in self._modules:
                k += 1
                name = f"{base}_{k}"
            layer.name = name
        elif layer.name in self._modules:
            raise ValueError(
                "All layers added to a Sequential model should have unique names. Name "
                f"{layer.name!r} is already the name of a layer in this model."
            )
        self.add_module(layer.name, layer)
        self._layers.append(layer)
        if len(self._layers) == 1 and self._input_shape is None and (
            layer._input_shape_arg is not None
        ):
            self._input_shape = (None, *layer._input_shape_arg)
        if self._input_shape is not None:
            self.build(self._input_shape)

    def pop(self) -> Layer:
        """Removes and returns the last layer."""
        if not self._layers:
            raise TypeError("There are no layers in the model.")
        layer = self._layers.pop()
        del self._modules[layer.name]
        return layer

    def build(self, input_shape: Sequence[int | None] | None = None) -> None:
        """Builds every layer for inputs of `input_shape`, batch first: ``(None, 784)``."""
        if input_shape is None:
            input_shape = self._input_shape
        if input_shape is None:
            raise ValueError("You must provide an `input_shape` argument, e.g. (None, 784).")
        shape = tuple(None if d is None else int(d) for d in input_shape)
        self._input_shape = shape
        for layer in self._layers:
            if not layer.built:
                layer.build(shape)
            shape = layer.output_shape
        self.built = bool(self._layers)

    @property
    def input_shape(self) -> tuple | None:
        """The input shape, batch first (None until known)."""
        return self._input_shape

    @property
    def output_shape(self) -> tuple | None:
        """The last layer's output shape, batch first (None until built)."""
        if not self.built:
            return None
        return self._layers[-1].output_shape

    def _output_activation(self) -> str | None:
        activation = self._layers[-1].activation if self._layers else None
        return activation if isinstance(activation, str) else None

    def _wants_integer_inputs(self) -> bool:
        return bool(self._layers) and isinstance(self._layers[0], Embedding)

    def _check_inputs(self, x: Any) -> None:
        if not self._layers:
            raise ValueError("The model has no layers; add some with model.add(layer)")
        if not self.built:
            self.build((None, *x.shape[1:]))
        else:
            self._layers[0]._check_input_shape(tuple(x.shape))

    def _ensure_built(self, x: Any) -> None:
        self._check_inputs(x)

    def call(self, inputs: Tensor) -> Tensor:
        if not self.built:
            self.build((None, *inputs.shape[1:]))
        x = inputs
        last = len(self._layers) - 1
        for i, layer in enumerate(self._layers):
            if i == last and self._return_logits:
                x = layer.call_without_activation(x)  # the loss applies the activation
            else:
                x = layer(x)
        return x

    # ---------------------------------------------------------------- summary
    def summary(self, line_length: int = 65, print_fn: Callable[[str], Any] | None = None) -> None:
        """Prints the layers, their output shapes and parameter counts, as Keras does."""
        if not self.built:
            raise ValueError(
                "This model has not yet been built. Build the model first by calling "
                "`build()` or by calling the model on a batch of data (or give the first "
                "layer an `input_shape`)."
            )
        rows = [(f"{layer.name} ({type(layer).__name__})",
                 layers_module._shape_text(layer.output_shape), layer.count_params())
                for layer in self._layers]
        _print_summary(self, rows, line_length, print_fn or print)

    # ---------------------------------------------------------------- saving
    def get_config(self) -> dict:
        """The model's name, each layer's class and config, and its build input shape."""
        return {
            "name": self.name,
            "layers": [{"class_name": type(layer).__name__, "config": layer.get_config()}
                       for layer in self._layers],
            "build_input_shape": list(self._input_shape) if self._input_shape else None,
        }

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> "Sequential":
        """A new model from a `get_config` dict; ``custom_objects`` names extra layer classes."""
        classes = {**layers_module.LAYERS, **CNN_LAYERS, **(custom_objects or {})}
        model = cls(name=config.get("name"))
        for entry in config["layers"]:
            name = entry["class_name"]
            if name not in classes:
                raise ValueError(
                    f"Unknown layer: {name!r}. Known layers: {', '.join(sorted(classes))}. A "
                    "custom layer must be passed in custom_objects={'" + name + "': " + name
                    + "}."
                )
            model.add(classes[name].from_config(dict(entry["config"])))
        if config.get("build_input_shape") and not model.built:
            model.build(config["build_input_shape"])
        return model


class Functional(Model):
    """A model defined by a graph of layers: ``keras.Model(inputs, outputs)``.

    `inputs` are `keras.Input` tensors (one, a list, or a dict by name) and `outputs` the
    symbolic tensors the layers returned (one, a list, or a dict by name: the model then
    returns a dict). Calling the model runs the recorded
    layer calls in order; a layer called several times (a shared layer) has one set of weights.
    Several outputs each get a loss (``compile(loss=[...] or {name: ...})``, weighted by
    ``loss_weights``), and targets are given as a list (or a dict by output layer name).

    Example:
        >>> import numpy as np
        >>> from minigrad import keras
        >>> inputs = keras.Input(shape=(4,))
        >>> hidden = keras.layers.Dense(8, activation="relu")(inputs)
        >>> outputs = keras.layers.Dense(3, activation="softmax")(hidden)
        >>> model = keras.Model(inputs=inputs, outputs=outputs)
        >>> model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        >>> x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
        >>> _ = model.fit(x, np.arange(16) % 3, epochs=1, verbose=0)
        >>> model.predict(x[:2], verbose=0).shape, model.count_params()
        ((2, 3), 67)
    """

    _savable = True

    def __init__(self, inputs: Any, outputs: Any, name: str | None = None,
                 **kwargs: Any) -> None:
        if kwargs:
            raise TypeError(f"keras.Model: unexpected keyword argument(s) {sorted(kwargs)}")
        super().__init__(name=name or "functional")
        self._input_structure = inputs
        self._output_structure = outputs
        self.inputs = flatten(inputs)
        self.outputs = flatten(outputs)
        for role, tensors in (("inputs", self.inputs), ("outputs", self.outputs)):
            for t in tensors:
                if not isinstance(t, KerasTensor):
                    raise TypeError(
                        f"keras.Model({role}=...) takes the symbolic tensors of keras.Input "
                        f"and of layers called on them; got a {type(t).__name__}"
                    )
        for t in self.inputs:
            if not isinstance(t.node.layer, InputLayer):
                raise ValueError(f"keras.Model inputs must be keras.Input tensors; {t.name!r} "
                                 "is a layer's output")
        self._nodes = self._computation_order()
        self._layers: list = []
        for node in [t.node for t in self.inputs] + self._nodes:
            if all(node.layer is not layer for layer in self._layers):
                self._layers.append(node.layer)
        self._name_and_register_layers()
        self._logits_node = self._find_logits_node()
        self.built = True

    # ---------------------------------------------------------------- the graph
    def _computation_order(self) -> list:
        """The nodes that lead to the outputs, each after the nodes it reads (no inputs)."""
        order: list = []
        done: set = set()
        stack = [(t.node, False) for t in reversed(self.outputs)]
        while stack:  # NOTE: iterative, so a very deep model never hits the recursion limit
            node, expanded = stack.pop()
            if id(node) in done:
                continue
            if expanded:
                done.add(id(node))
                order.append(node)
                continue
            stack.append((node, True))
            stack.extend((t.node, False) for t in reversed(node.inputs) if id(t.node) not in done)
        given = {id(t.node) for t in self.inputs}
        for node in order:
            if isinstance(node.layer, InputLayer) and id(node) not in given:
                raise ValueError(
                    f"Graph disconnected: the outputs depend on the input "
                    f"{node.outputs[0].name!r}, which is not among the model's inputs"
                )
        return [node for node in order if not isinstance(node.layer, InputLayer)]

    def _name_and_register_layers(self) -> None:
        names: set = set()
        for layer in self._layers:
            if layer.name is None:
                base = _snake_case(type(layer).__name__)
                name, k = base, 0
                while name in names:
                    k += 1
                    name = f"{base}_{k}"
                layer.name = name
            if layer.name in names:
                raise ValueError(f'The name "{layer.name}" is used 2 times in the model. All '
                                 "layer names should be unique.")
            names.add(layer.name)
            self.add_module(layer.name, layer)

    def _find_logits_node(self) -> Any:
        """The node whose activation a fused loss may leave out: the single output's, when
        nothing else reads that output."""
        if len(self.outputs) != 1:
            return None
        out = self.outputs[0]
        node = out.node
        if isinstance(node.layer, InputLayer) or len(node.outputs) != 1:
            return None
        if any(any(t is out for t in other.inputs) for other in self._nodes):
            return None
        return node if isinstance(getattr(node.layer, "activation", None), str) else None

    @property
    def layers(self) -> list:
        """The model's layers, inputs first, in the order they run (a copy of the list)."""
        return list(self._layers)

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """A layer by name or by index in `layers`."""
        if index is not None:
            return self._layers[index]
        for layer in self._layers:
            if layer.name == name:
                return layer
        raise ValueError(f"No such layer: {name}. Existing layers are: "
                         f"{[layer.name for layer in self._layers]}.")

    @property
    def input_names(self) -> list:
        """The names of the model's `Input` layers, in input order."""
        return [t.node.layer.name for t in self.inputs]

    @property
    def output_names(self) -> list:
        """The outputs' names: their dict keys (sorted, as `flatten`), else their layers'."""
        if isinstance(self._output_structure, dict):
            return sorted(self._output_structure)
        return [t.node.layer.name for t in self.outputs]

    @property
    def input_shape(self) -> Any:
        """The input shape, batch first; a list of them for a model of several inputs."""
        shapes = [t.shape for t in self.inputs]
        return shapes[0] if len(shapes) == 1 else shapes

    @property
    def output_shape(self) -> Any:
        """The output shape, batch first; a list of them for a model of several outputs."""
        shapes = [t.shape for t in self.outputs]
        return shapes[0] if len(shapes) == 1 else shapes

    def _output_activation(self) -> str | None:
        return self._logits_node.layer.activation if self._logits_node is not None else None

    # ---------------------------------------------------------------- calling
    def _input_values(self, inputs: Any, convert: Callable) -> list:
        """One value per input from a single value, a list/tuple or a dict by input name."""
        n = len(self.inputs)
        if isinstance(inputs, dict):
            missing = [name for name in self.input_names if name not in inputs]
            if missing:
                raise ValueError(f"Missing data for input(s) {missing}; the model's inputs are "
                                 f"{self.input_names}")
            values = [inputs[name] for name in self.input_names]
        elif isinstance(inputs, (list, tuple)) and n > 1:
            values = list(inputs)
        elif (isinstance(inputs, (list, tuple)) and len(inputs) == 1
              and isinstance(inputs[0], (Tensor, np.ndarray))):
            values = [inputs[0]]
        else:
            values = [inputs]
        if len(values) != n:
            raise ValueError(f'Model "{self.name}" expects {n} input(s) '
                             f"{self.input_names}, but it received {len(values)}")
        return [convert(value, t) for value, t in zip(values, self.inputs)]

    def forward(self, inputs: Any, training: bool | None = None) -> Any:
        def to_tensor(value: Any, spec: KerasTensor) -> Tensor:
            value = _to_tensor(value)
            if np.dtype(spec.dtype).kind in "iu" and value.dtype.kind == "f":
                value = value.long()
            return value

        flat = self._input_values(inputs, to_tensor)
        if training is None or training == self.training:
            return self.call(flat)
        was_training = self.training
        self.train(training)
        try:
            return self.call(flat)
        finally:
            self.train(was_training)

    def call(self, inputs: list) -> Any:
        values = {id(t): value for t, value in zip(self.inputs, inputs)}

        def resolve(v: Any) -> Any:
            return values[id(v)] if isinstance(v, KerasTensor) else v

        for node in self._nodes:
            args = map_structure(resolve, node.args)
            kwargs = map_structure(resolve, node.kwargs)
            if node is self._logits_node and self._return_logits:
                out = node.layer.call_without_activation(*args, **kwargs)  # the loss applies it
            else:
                out = node.layer(*args, **kwargs)
            for t, value in zip(node.outputs, flatten(out)):
                values[id(t)] = value
        if isinstance(self._output_structure, KerasTensor):
            return values[id(self.outputs[0])]
        if isinstance(self._output_structure, dict):
            return _OutputDict({name: values[id(t)]
                                for name, t in zip(self.output_names, self.outputs)})
        return _Outputs(values[id(t)] for t in self.outputs)

    # ---------------------------------------------------------------- data
    def _inputs(self, x: Any) -> Any:
        def convert(value: Any, spec: KerasTensor) -> Any:
            array = _array(value, f"x ({spec.name})")
            if np.dtype(spec.dtype).kind in "iu":
                if array.dtype.kind == "f" and bool((array != array.round()).any()):
                    raise ValueError(f"input {spec.name!r} has dtype {spec.dtype}: it must hold "
                                     "integers")
                return array.astype(np.int64, copy=False)
            return array.astype(np.float32, copy=False)

        arrays = self._input_values(x, convert)
        return arrays if len(arrays) > 1 else arrays[0]

    def _check_inputs(self, x: Any) -> None:
        for array, spec in zip(x if isinstance(x, list) else [x], self.inputs):
            shape = tuple(array.shape)
            if len(shape) != len(spec.shape) or any(
                d is not None and d != shape[i] for i, d in enumerate(spec.shape) if i
            ):
                raise ValueError(
                    f'Input "{spec.name}" of model "{self.name}" is incompatible: expected '
                    f"shape {spec.shape}, but received input with shape "
                    f"{(None, *shape[1:])}"
                )

    def _data(self, x: Any, y: Any) -> tuple[Any, Any]:
        x = self._inputs(x)
        n = _num_examples(x)
        if isinstance(x, list) and any(len(a) != n for a in x):
            raise ValueError("Data cardinality is ambiguous: the inputs have "
                             f"{[len(a) for a in x]} examples")
        self._check_inputs(x)
        if len(self.outputs) == 1:
            if isinstance(y, (list, tuple)) and len(y) == 1 and hasattr(y[0], "shape"):
                y = y[0]
            if isinstance(y, dict):
                y = y[self.output_names[0]]
            y_array = _array(y, "y")
            if len(y_array) != n:
                raise ValueError(
                    "Data cardinality is ambiguous. Make sure all arrays contain the same "
                    f"number of samples.\n'x' sizes: {n}\n'y' sizes: {len(y_array)}"
                )
            return x, self._targets(y_array)
        ys = self._per_output(y, "y")
        targets = []
        for value, loss, t, name in zip(ys, self._output_losses(), self.outputs,
                                        self.output_names):
            array = _array(value, f"y ({name})")
            if len(array) != n:
                raise ValueError(f"Data cardinality is ambiguous: 'x' has {n} examples, the "
                                 f"targets of {name!r} {len(array)}")
            if isinstance(loss, losses.Loss):
                array = loss.prepare_targets(_to_numpy(array), t.shape)
            elif array.dtype.kind == "f":
                array = array.astype(np.float32, copy=False)
            targets.append(array)
        return x, targets

    # ---------------------------------------------------------------- several outputs
    def _per_output(self, value: Any, what: str) -> list:
        """One entry per output from a list/tuple or a dict by output name."""
        names = self.output_names
        if isinstance(value, dict):
            missing = [name for name in names if name not in value]
            if missing:
                raise ValueError(f"{what}: no entry for the output(s) {missing}; the outputs "
                                 f"are {names}")
            return [value[name] for name in names]
        if isinstance(value, (list, tuple)) and len(value) == len(names):
            return list(value)
        raise ValueError(f"{what}: the model has {len(names)} outputs {names}; give a list of "
                         f"{len(names)} or a dict by output name")

    def _n_outputs(self) -> int:
        return len(self.outputs)

    def _output_losses(self) -> list:
        return self.loss if len(self.outputs) > 1 else [self.loss]

    def _output_metrics(self) -> list:
        return self.compiled_metrics if len(self.outputs) > 1 else [self.compiled_metrics]

    def _output_loss_weights(self) -> list:
        if len(self.outputs) > 1:
            return self.loss_weights
        return [1.0 if self.loss_weights is None else self.loss_weights]

    def _output_names(self) -> list:
        return self.output_names

    def compile(self, optimizer: Any = "rmsprop", loss: Any = None, metrics: Any = None,
                loss_weights: Any = None, **kwargs: Any) -> None:
        """As `Model.compile`; with several outputs `loss` is one loss for all, a list or a
        dict by output name, `metrics` a list for all outputs, a list of lists or a dict, and
        `loss_weights` a list or dict (default 1 each). The logs then hold ``loss`` (the
        weighted sum) and ``<output>_loss``, ``<output>_<metric>`` per output."""
        n = len(self.outputs)
        if n == 1:
            if isinstance(loss, (list, tuple)) and len(loss) == 1:
                loss = loss[0]
            if isinstance(loss, dict):
                loss = self._per_output(loss, "loss")[0]
            if isinstance(metrics, dict):
                metrics = self._per_output(metrics, "metrics")[0]
            if isinstance(metrics, (list, tuple)) and len(metrics) == 1 and isinstance(
                metrics[0], (list, tuple)
            ):
                metrics = metrics[0]
            if isinstance(loss_weights, dict):
                loss_weights = self._per_output(loss_weights, "loss_weights")[0]
            super().compile(optimizer, loss, metrics, loss_weights, **kwargs)
            return
        if kwargs:
            raise TypeError(f"compile() got unsupported argument(s): {', '.join(sorted(kwargs))}")
        self.optimizer = optimizers.get(optimizer)
        given = loss if isinstance(loss, (list, tuple, dict)) else [loss] * n
        self.loss = [losses.get(entry) for entry in self._per_output(given, "loss")]
        if metrics is None:
            per_output = [[] for _ in range(n)]
        elif isinstance(metrics, dict):
            per_output = [list(m) if isinstance(m, (list, tuple)) else [m]
                          for m in (metrics.get(name, []) for name in self.output_names)]
        elif all(isinstance(m, (list, tuple)) or m is None for m in metrics):
            per_output = [list(m or []) for m in self._per_output(list(metrics), "metrics")]
        else:  # one list for every output
            per_output = [list(metrics) for _ in range(n)]
        for loss_i, entries in zip(self.loss, per_output):
            for metric in entries:
                get_metric(metric, loss_i, logits=False)  # fail now on unknown names
        self.compiled_metrics = per_output
        if loss_weights is None:
            self.loss_weights = [1.0] * n
        elif isinstance(loss_weights, dict):
            self.loss_weights = [float(loss_weights.get(name, 1.0)) for name in self.output_names]
        else:
            self.loss_weights = [float(w) for w in self._per_output(list(loss_weights),
                                                                    "loss_weights")]
        self._is_compiled = True

    # ---------------------------------------------------------------- summary and saving
    def summary(self, line_length: int = 65, print_fn: Callable[[str], Any] | None = None) -> None:
        """Prints the layers, their output shapes and parameter counts, as Keras does."""
        shapes = {}
        for node in [t.node for t in self.inputs] + self._nodes:
            if id(node.layer) not in shapes:
                outs = [layers_module._shape_text(t.shape) for t in node.outputs]
                shapes[id(node.layer)] = outs[0] if len(outs) == 1 else ", ".join(outs)
        rows = [(f"{layer.name} ({type(layer).__name__})", shapes[id(layer)],
                 layer.count_params()) for layer in self._layers]
        _print_summary(self, rows, line_length, print_fn or print)

    def _compile_config(self) -> dict | None:
        if not self._is_compiled or len(self.outputs) == 1:
            return super()._compile_config()
        return {
            "optimizer": optimizers.serialize(self.optimizer),
            "loss": [losses.serialize(loss) for loss in self.loss],
            "metrics": [[m for m in ms if isinstance(m, str)] for ms in self.compiled_metrics],
            "loss_weights": self.loss_weights,
        }

    def get_config(self) -> dict:
        """The graph: the layers' configs and every layer call, in order, with tensors given as
        ``{"tensor": [node, output index]}`` (the nodes list starts with the inputs)."""
        index = {}
        nodes = []
        for t in self.inputs:
            index[id(t.node)] = len(nodes)
            nodes.append({"input": {"name": t.node.layer.name, "shape": list(t.shape[1:]),
                                    "dtype": t.dtype}})

        def ref(value: Any) -> Any:
            if isinstance(value, KerasTensor):
                return {"tensor": [index[id(value.node)], value.index]}
            return value

        for node in self._nodes:
            index[id(node)] = len(nodes)
            nodes.append({"layer": node.layer.name, "args": map_structure(ref, list(node.args)),
                          "kwargs": map_structure(ref, node.kwargs)})
        return {
            "name": self.name,
            "layers": [{"class_name": type(layer).__name__, "config": layer.get_config()}
                       for layer in self._layers if not isinstance(layer, InputLayer)],
            "nodes": nodes,
            "inputs": map_structure(ref, self._input_structure),
            "outputs": map_structure(ref, self._output_structure),
        }

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> "Functional":
        """A new model from a `get_config` dict; ``custom_objects`` names extra layer classes."""
        classes = {**layers_module.LAYERS, **MERGING_LAYERS, **CNN_LAYERS,
                   **(custom_objects or {})}
        layers = {}
        for entry in config["layers"]:
            layer = _layer_from_config(entry, classes)
            layers[layer.name] = layer
        outputs: list = []

        def resolve(value: Any) -> Any:
            if isinstance(value, dict) and set(value) == {"tensor"}:
                node, i = value["tensor"]
                return outputs[node][i]
            if isinstance(value, dict):
                return {k: resolve(v) for k, v in value.items()}
            if isinstance(value, list):
                return [resolve(v) for v in value]
            return value

        for entry in config["nodes"]:
            if "input" in entry:
                spec = entry["input"]
                outputs.append([Input(shape=spec["shape"], dtype=spec["dtype"],
                                      name=spec["name"])])
            else:
                out = layers[entry["layer"]](*resolve(entry["args"]), **resolve(entry["kwargs"]))
                outputs.append(flatten(out))
        return cls(resolve(config["inputs"]), resolve(config["outputs"]),
                   name=config.get("name"))


def _layer_from_config(entry: dict, classes: dict) -> Layer:
    name = entry["class_name"]
    if name not in classes:
        raise ValueError(
            f"Unknown layer: {name!r}. Known layers: {', '.join(sorted(classes))}. A "
            "custom layer must be passed in custom_objects={'" + name + "': " + name + "}."
        )
    return classes[name].from_config(dict(entry["config"]))


def _print_summary(model: Model, rows: list, line_length: int,
                   print_fn: Callable[[str], Any]) -> None:
    """Keras's summary table: one row ``(layer (type), output shape, params)`` per layer."""
    stops = [int(line_length * f) for f in (0.45, 0.85, 1.0)]

    def row(fields: Sequence[str]) -> str:
        line = ""
        for field, stop in zip(fields, stops):
            line = (line[:-1] + " " if line else "") + field
            line = line[:stop].ljust(stop)
        return line

    print_fn(f'Model: "{model.name}"')
    print_fn("_" * line_length)
    print_fn(row([" Layer (type)", "Output Shape", "Param #"]))
    print_fn("=" * line_length)
    for layer_text, shape, count in rows:
        print_fn(row([f" {layer_text}", shape, str(count)]))
        print_fn(" " * line_length)
    print_fn("=" * line_length)
    params = list(model.parameters())
    trainable = [p for p in params if p.requires_grad]
    frozen = [p for p in params if not p.requires_grad] + _moving_statistics(model)
    params = trainable + frozen
    for label, group in (("Total", params), ("Trainable", trainable),
                         ("Non-trainable", frozen)):
        count = sum(int(np.prod(p.shape)) for p in group)
        size = sum(int(np.prod(p.shape)) * p.dtype.itemsize for p in group)
        print_fn(f"{label} params: {count:,} ({_format_bytes(size)})")
    print_fn("_" * line_length)


def _moving_statistics(model: nn.Module) -> list:
    """BatchNormalization's moving mean and variance: non-trainable weights in Keras's counts."""
    return [b for name, b in model.named_buffers()
            if name.endswith(("running_mean", "running_var"))]


def _format_bytes(size: int) -> str:
    """Keras's summary sizes: ``'397.54 KB'``."""
    value = float(size)
    for unit in ("Byte", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.2f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def save_model(model: Model, filepath: str | os.PathLike, overwrite: bool = True) -> None:
    """``keras.models.save_model(model, "m.keras")``: the same as ``model.save(...)``."""
    model.save(filepath, overwrite=overwrite)


def load_model(filepath: str | os.PathLike, custom_objects: dict | None = None,
               compile: bool = True) -> Model:
    """Loads a model written by ``model.save(filepath)``: a ``.keras`` file or a folder.

    Args:
        filepath: the ``.keras`` file, or the folder, given to ``save``.
        custom_objects: ``{'ClassName': cls}`` for custom layers and loss functions.
        compile: compile the model again with the saved settings (when they can be rebuilt:
            loss and optimizer given by name or Keras object).

    Example:
        >>> import os, tempfile
        >>> from minigrad import keras
        >>> model = keras.Sequential([keras.layers.Dense(2, input_shape=(3,))])
        >>> folder = tempfile.mkdtemp()
        >>> model.save(os.path.join(folder, "model.keras"))
        >>> keras.models.load_model(os.path.join(folder, "model.keras")).count_params()
        8
        >>> model.save(folder)  # a folder: config.json and model.safetensors
        >>> keras.models.load_model(folder).count_params()
        8
    """
    path = Path(filepath)
    if saving.is_keras_file(path):
        document, arrays = saving.read_keras_file(path)
        source = str(path)
    else:
        config_path = path / CONFIG_FILE
        if not config_path.is_file():
            raise FileNotFoundError(
                f"{path}: no saved model here (expected a .keras file, or a folder with "
                f"{CONFIG_FILE} and {WEIGHTS_FILE}, written by model.save)"
            )
        try:
            document = json.loads(config_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{config_path}: damaged model configuration ({exc})") from exc
        arrays = None
        source = str(config_path)
    if not isinstance(document, dict) or document.get("format") != "minigrad.keras":
        raise ValueError(f"{source}: not a minigrad.keras model configuration")
    classes = {"Sequential": Sequential, "Functional": Functional}
    if document.get("class_name") not in classes:
        raise ValueError(f"{source}: unsupported model class {document.get('class_name')!r}")
    model = classes[document["class_name"]].from_config(document["config"], custom_objects)
    device = model._device()
    if arrays is None:
        state = load(path / WEIGHTS_FILE, device=device)
    else:
        state = {name: Tensor._make(backend.to_device(a, device)) for name, a in arrays.items()}
    model.load_state_dict(state)
    settings = document.get("compile_config")
    if compile and settings:
        saved_loss = settings.get("loss")
        if isinstance(saved_loss, list):
            loss = [losses.deserialize(entry, custom_objects) for entry in saved_loss]
            rebuilt = all(entry is not None for entry in loss)
        else:
            loss = losses.deserialize(saved_loss, custom_objects)
            rebuilt = loss is not None
        optimizer = optimizers.deserialize(settings.get("optimizer"))
        if rebuilt and optimizer is not None:
            model.compile(optimizer=optimizer, loss=loss, metrics=settings.get("metrics"),
                          loss_weights=settings.get("loss_weights"))
    return model
