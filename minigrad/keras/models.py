"""Keras models: `Sequential` (and the `Model` base), trained by `minigrad.train`.

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
from minigrad.keras import losses, optimizers
from minigrad.keras.layers import Embedding, InputLayer, Layer, _to_tensor, get_activation
from minigrad.keras.metrics import get as get_metric  # `compile` has an argument `metrics`
from minigrad.nn.parallel import DistributedDataParallel
from minigrad.tensor import Tensor
from minigrad.utils.progress import Progbar

__all__ = ["Model", "Sequential", "load_model"]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
_ACCURACIES = {"accuracy", "acc", "sparse_categorical_accuracy", "categorical_accuracy",
               "binary_accuracy"}


def _snake_case(name: str) -> str:
    """``'LayerNormalization'`` -> ``'layer_normalization'``, ``'LSTM'`` -> ``'lstm'``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


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

    def __init__(self, name: str | None = None) -> None:
        super().__init__()
        self.name = name or _snake_case(type(self).__name__)
        self.optimizer: Any = None
        self.loss: Any = None
        self.compiled_metrics: list = []
        self.stop_training = False
        self.history: train.History | None = None
        self._is_compiled = False
        self._return_logits = False

    # ---------------------------------------------------------------- the forward pass
    def call(self, inputs: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement call(inputs)")

    def forward(self, inputs: Any) -> Tensor:
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
    def compile(self, optimizer: Any = "adam", loss: Any = None,
                metrics: Sequence[Any] | None = None, **kwargs: Any) -> None:
        """Chooses the optimizer, loss and metrics.

        Args:
            optimizer: ``'adam'`` (the default here; Keras's is ``'rmsprop'``, which minigrad
                lacks), ``'adamw'``, ``'sgd'``, a `keras.optimizers` object or a
                `minigrad.optim` optimizer over ``model.parameters()``.
            loss: ``'sparse_categorical_crossentropy'``, ``'categorical_crossentropy'``,
                ``'binary_crossentropy'``, ``'mse'``, ``'mae'``, a `keras.losses.Loss`, or a
                function ``fn(y_true, y_pred)``.
            metrics: e.g. ``['accuracy']`` (see `keras.metrics.NAMES`) or functions
                ``fn(y_true, y_pred)`` returning per-example scores.
        """
        if kwargs:
            unsupported = ", ".join(sorted(kwargs))
            raise TypeError(f"compile() got unsupported argument(s): {unsupported}")
        self.optimizer = optimizers.get(optimizer)
        self.loss = losses.get(loss)
        self.compiled_metrics = list(metrics or [])
        for metric in self.compiled_metrics:
            get_metric(metric, self.loss, logits=False)  # fail now on unknown names
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

    def _sharded_loaders(self, group: dist.ProcessGroup, x: Any, y: Any, x_val: Any, y_val: Any,
                         batch_size: int, shuffle: bool) -> tuple:
        """This rank's training loader (a `DistributedSampler` shard of a `batch_size` global
        batch) and validation loader (every size-th example, from its rank: no padding, so the
        averaged metrics are exactly those of the whole set)."""
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
        train_set = TensorDataset(*[backend.to_device(a, device) for a in (x, y)])
        sampler = DistributedSampler(train_set, group.size, group.rank, shuffle=shuffle,
                                     seed=int(seed[0]))
        loader = DataLoader(train_set, batch_size=per_rank, sampler=sampler)
        val_loader = None
        if x_val is not None:
            val_set = TensorDataset(*[backend.to_device(a, device) for a in (x_val, y_val)])
            mine = Subset(val_set, np.arange(group.rank, len(x_val), group.size))
            val_loader = DataLoader(mine, batch_size=per_rank)
        return loader, val_loader

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
        gradient_accumulation_steps: int | None = None,
    ) -> train.History:
        """Trains the model on NumPy arrays (or Tensors) for `epochs` epochs.

        Args:
            x: inputs (N, ...). uint8 images are cast to float32 as they are; scale them
                yourself (``x / 255``) as in the classic Keras program.
            y: labels (N, ...), in the form the loss expects.
            batch_size: examples per step (default 32).
            epochs: passes over the data.
            verbose: 0 silent, 1 (``'auto'``) progress bar, 2 one line per epoch.
            callbacks: `keras.callbacks` objects.
            validation_split: fraction of the data, taken from the end before shuffling, to
                validate on instead of training.
            validation_data: ``(x_val, y_val)`` to validate on after every epoch.
            shuffle: reshuffle the training data every epoch.
            gradient_accumulation_steps: batches whose gradients make one optimizer step
                (Keras 3 takes it on the optimizer, whose setting of that name is used when
                this is None); the step equals one on a batch of all their examples.

        Returns:
            A `History`; ``history.history`` maps ``'loss'``, the metrics, and their
            ``'val_'`` versions to per-epoch values.
        """
        self._assert_compiled("training")
        x, y = self._data(x, y)
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError(
                    "validation_data must be a tuple (x_val, y_val), got "
                    f"{type(validation_data).__name__}"
                    + (f" of length {len(validation_data)}"
                       if isinstance(validation_data, (tuple, list)) else "")
                )
            x_val, y_val = self._data(*validation_data)
        elif validation_split:
            if not 0.0 < validation_split < 1.0:
                raise ValueError(
                    f"validation_split must be in (0, 1), got {validation_split}"
                )
            split = int(len(x) * (1.0 - validation_split))  # Keras: the last examples
            if split == 0 or split == len(x):
                raise ValueError(
                    f"validation_split={validation_split} leaves no data for "
                    f"{'training' if split == 0 else 'validation'} with {len(x)} examples"
                )
            x, x_val, y, y_val = x[:split], x[split:], y[:split], y[split:]
        else:
            x_val = y_val = None
        batch_size = _batch_size(batch_size)
        group = _data_parallel_group()
        if group is None:
            loader = self._loader(x, y, batch_size=batch_size, shuffle=shuffle)
            val_loader = None
            if x_val is not None:
                val_loader = self._loader(x_val, y_val, batch_size=batch_size)
        else:
            loader, val_loader = self._sharded_loaders(group, x, y, x_val, y_val, batch_size,
                                                       shuffle)

        self._build_optimizer()
        if gradient_accumulation_steps is None:
            gradient_accumulation_steps = getattr(self.optimizer, "gradient_accumulation_steps",
                                                  None)
        accumulation = int(gradient_accumulation_steps or 1)
        loss_fn, metric_fns, fused = self._training_setup()
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
                                    gradient_accumulation_steps=accumulation)
        finally:
            if trained is not self:
                trained.remove_hooks()
        history.set_model(self)
        self.history = history
        return history

    def evaluate(self, x: Any = None, y: Any = None, batch_size: int | None = None,
                 verbose: int | str = "auto", return_dict: bool = False) -> Any:
        """The loss and metrics on `x`, `y`, in inference mode (no dropout).

        Returns:
            The loss (a float) when there are no metrics, else ``[loss, metric, ...]``; with
            ``return_dict=True`` a dict ``{'loss': .., 'accuracy': ..}``.
        """
        self._assert_compiled("evaluating")
        x, y = self._data(x, y)
        loader = self._loader(x, y, batch_size=_batch_size(batch_size))
        loss_fn, metric_fns, fused = self._training_setup()
        verbose = _verbosity(verbose)
        bar = Progbar(len(loader), verbose=verbose) if verbose else None
        with self._logits_output(fused):
            logs = train.evaluate(self, loss_fn, loader, metric_fns, progbar=bar)
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def predict(self, x: Any, batch_size: int | None = None,
                verbose: int | str = "auto") -> np.ndarray:
        """The model's outputs for `x` (with the output activation), as a NumPy array."""
        x = self._inputs(x)
        self._check_inputs(x)
        loader = self._loader(x, batch_size=_batch_size(batch_size))
        verbose = _verbosity(verbose)
        bar = Progbar(len(loader), verbose=verbose) if verbose else None
        was_training = self.training
        self.eval()
        outputs = []
        try:
            with no_grad(), self._logits_output(False):
                for step, (xb,) in enumerate(loader, start=1):
                    outputs.append(self(xb).data)
                    if bar is not None:
                        bar.update(step)
        finally:
            self.train(was_training)
        if not outputs:
            return np.zeros((0,), dtype=np.float32)
        xp = backend.array_module(outputs[0])
        return _to_numpy(xp.concatenate(outputs))  # one transfer from the device

    # ---------------------------------------------------------------- weights
    def count_params(self) -> int:
        return sum(int(np.prod(p.shape)) for p in self.parameters())

    def get_weights(self) -> list:
        """The weights as NumPy arrays, in ``state_dict`` order (PyTorch layouts)."""
        return [_to_numpy(v.detach().data).copy() for v in self.state_dict().values()]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Sets the weights from arrays in `get_weights` order."""
        state = self.state_dict()
        if len(weights) != len(state):
            raise ValueError(
                f"set_weights: the model has {len(state)} weights, got {len(weights)}"
            )
        new = {}
        for (name, old), value in zip(state.items(), weights):
            value = np.asarray(value)
            if tuple(value.shape) != tuple(old.shape):
                raise ValueError(
                    f"set_weights: {name} has shape {tuple(old.shape)}, got {value.shape}"
                )
            new[name] = Tensor._make(backend.to_device(value.astype(old.dtype), old.device))
        self.load_state_dict(new)

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

    def save(self, filepath: str | os.PathLike, overwrite: bool = True) -> None:
        raise NotImplementedError(
            f"{type(self).__name__}.save is not supported for subclassed models; use "
            "save_weights(path) and rebuild the model in code"
        )


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

    def __init__(self, layers: Sequence[Layer] | None = None, name: str | None = None) -> None:
        super().__init__(name=name or "sequential")
        self._layers: list = []
        self._input_shape: tuple | None = None
        self.built = False
        for layer in layers or ():
            self.add(layer)

    @property
    def layers(self) -> list:
        return list(self._layers)

    def add(self, layer: Layer) -> None:
        """Appends a layer (building it if the model's input shape is known)."""
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
        return self._input_shape

    @property
    def output_shape(self) -> tuple | None:
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
        print_fn = print_fn or print
        stops = [int(line_length * f) for f in (0.45, 0.85, 1.0)]

        def row(fields: Sequence[str]) -> str:
            line = ""
            for field, stop in zip(fields, stops):
                line = (line[:-1] + " " if line else "") + field
                line = line[:stop].ljust(stop)
            return line

        print_fn(f'Model: "{self.name}"')
        print_fn("_" * line_length)
        print_fn(row([" Layer (type)", "Output Shape", "Param #"]))
        print_fn("=" * line_length)
        for layer in self._layers:
            shape = layers_module._shape_text(layer.output_shape)
            print_fn(row([f" {layer.name} ({type(layer).__name__})", shape,
                          str(layer.count_params())]))
            print_fn(" " * line_length)
        print_fn("=" * line_length)
        params = list(self.parameters())
        trainable = [p for p in params if p.requires_grad]
        frozen = [p for p in params if not p.requires_grad]
        for label, group in (("Total", params), ("Trainable", trainable),
                             ("Non-trainable", frozen)):
            count = sum(int(np.prod(p.shape)) for p in group)
            size = sum(int(np.prod(p.shape)) * p.dtype.itemsize for p in group)
            print_fn(f"{label} params: {count:,} ({_format_bytes(size)})")
        print_fn("_" * line_length)

    # ---------------------------------------------------------------- saving
    def get_config(self) -> dict:
        return {
            "name": self.name,
            "layers": [{"class_name": type(layer).__name__, "config": layer.get_config()}
                       for layer in self._layers],
            "build_input_shape": list(self._input_shape) if self._input_shape else None,
        }

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> "Sequential":
        classes = {**layers_module.LAYERS, **(custom_objects or {})}
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

    def _compile_config(self) -> dict | None:
        if not self._is_compiled:
            return None
        return {
            "optimizer": optimizers.serialize(self.optimizer),
            "loss": losses.serialize(self.loss),
            "metrics": [m for m in self.compiled_metrics if isinstance(m, str)],
        }

    def save(self, filepath: str | os.PathLike, overwrite: bool = True) -> None:
        """Saves the model to a folder: ``config.json`` (layers, compile settings) and
        ``model.safetensors`` (the weights). No pickle; reload with `load_model`.

        Args:
            filepath: the folder (created if needed).
            overwrite: replace an existing saved model.

        Under data parallel rank 0 writes and the other ranks wait.
        """
        if not self.built:
            raise ValueError("This model has not yet been built; there are no weights to save")
        dist.run_on_rank_zero(self._save_folder, Path(filepath), overwrite)

    def _save_folder(self, path: Path, overwrite: bool) -> None:
        if path.exists() and not path.is_dir():
            raise FileExistsError(f"{path} exists and is not a folder; Model.save writes a folder")
        if (path / CONFIG_FILE).exists() and not overwrite:
            raise FileExistsError(f"{path} already holds a saved model (overwrite=False)")
        path.mkdir(parents=True, exist_ok=True)
        document = {
            "format": "minigrad.keras",
            "format_version": 1,
            "minigrad_version": __version__,
            "class_name": type(self).__name__,
            "config": self.get_config(),
            "compile_config": self._compile_config(),
        }
        save(self.state_dict(), path / WEIGHTS_FILE)
        tmp = path / (CONFIG_FILE + ".tmp")
        tmp.write_text(json.dumps(document, indent=2), encoding="utf-8")
        os.replace(tmp, path / CONFIG_FILE)  # atomic, like mg.save


def _format_bytes(size: int) -> str:
    """Keras's summary sizes: ``'397.54 KB'``."""
    value = float(size)
    for unit in ("Byte", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.2f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def load_model(filepath: str | os.PathLike, custom_objects: dict | None = None,
               compile: bool = True) -> Sequential:
    """Loads a model written by ``model.save(filepath)``.

    Args:
        filepath: the folder given to ``save``.
        custom_objects: ``{'ClassName': cls}`` for custom layers and loss functions.
        compile: compile the model again with the saved settings (when they can be rebuilt:
            loss and optimizer given by name or Keras object).

    Example:
        >>> import tempfile
        >>> from minigrad import keras
        >>> model = keras.Sequential([keras.layers.Dense(2, input_shape=(3,))])
        >>> folder = tempfile.mkdtemp()
        >>> model.save(folder)
        >>> keras.models.load_model(folder).count_params()
        8
    """
    path = Path(filepath)
    config_path = path / CONFIG_FILE
    if not config_path.is_file():
        raise FileNotFoundError(
            f"{path}: no saved model here (expected {CONFIG_FILE} and {WEIGHTS_FILE}, written "
            "by model.save)"
        )
    try:
        document = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{config_path}: damaged model configuration ({exc})") from exc
    if not isinstance(document, dict) or document.get("format") != "minigrad.keras":
        raise ValueError(f"{config_path}: not a minigrad.keras model configuration")
    if document.get("class_name") != "Sequential":
        raise ValueError(f"{config_path}: unsupported model class {document.get('class_name')!r}")
    model = Sequential.from_config(document["config"], custom_objects)
    model.load_state_dict(load(path / WEIGHTS_FILE, device=model._device()))
    settings = document.get("compile_config")
    if compile and settings:
        loss = losses.deserialize(settings.get("loss"), custom_objects)
        optimizer = optimizers.deserialize(settings.get("optimizer"))
        if loss is not None and optimizer is not None:
            model.compile(optimizer=optimizer, loss=loss, metrics=settings.get("metrics"))
    return model
