"""Keras optimizers: Keras's argument names and defaults over `minigrad.optim`.

A Keras optimizer is made before the model has parameters, so each class here holds its
settings until `build` creates the `minigrad.optim` optimizer (``.optimizer``) over the model's
parameters. It then behaves as that optimizer (``zero_grad``, ``step``, ``param_groups``), and
``learning_rate`` reads and sets the rate of every parameter group.

Defaults are Keras's: Adam and AdamW ``learning_rate=0.001``, ``epsilon=1e-7``; SGD
``learning_rate=0.01``.

Example:
    >>> import minigrad as mg
    >>> from minigrad.nn import Parameter
    >>> opt = get("adam")
    >>> opt.learning_rate
    0.001
    >>> opt.build([Parameter(mg.zeros(2))])
    >>> opt.learning_rate = 0.01
    >>> opt.param_groups[0]["lr"]
    0.01
"""

from __future__ import annotations

from typing import Any, Iterable

from minigrad import optim

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "get"]


class Optimizer:
    """Base class: Keras settings now, a `minigrad.optim` optimizer after `build`."""

    def __init__(self, learning_rate: float, **settings: Any) -> None:
        self._learning_rate = float(learning_rate)
        self._settings = settings
        self.optimizer: optim.Optimizer | None = None

    def _make(self, params: list) -> optim.Optimizer:
        raise NotImplementedError

    def build(self, params: Iterable) -> None:
        """Creates the `minigrad.optim` optimizer over `params`."""
        self.optimizer = self._make(list(params))

    @property
    def built(self) -> bool:
        return self.optimizer is not None

    def _inner(self) -> optim.Optimizer:
        if self.optimizer is None:
            raise RuntimeError(
                f"{type(self).__name__} is not built yet: it gets the model's parameters when "
                "training starts (model.fit), or call optimizer.build(model.parameters())"
            )
        return self.optimizer

    @property
    def learning_rate(self) -> float:
        if self.optimizer is None:
            return self._learning_rate
        return self.optimizer.param_groups[0]["lr"]

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self._learning_rate = float(value)
        if self.optimizer is not None:
            for group in self.optimizer.param_groups:
                group["lr"] = float(value)

    lr = learning_rate  # the Keras 2 name

    @property
    def param_groups(self) -> list:
        return self._inner().param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        self._inner().zero_grad(set_to_none)

    def step(self) -> None:
        self._inner().step()

    def state_dict(self) -> dict:
        return self._inner().state_dict()

    def load_state_dict(self, state_dict: dict) -> None:
        self._inner().load_state_dict(state_dict)

    def get_config(self) -> dict:
        return {"learning_rate": self._learning_rate, **self._settings}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Adam(Optimizer):
    """Adam with Keras's defaults; a `weight_decay` makes it decoupled (AdamW), as in Keras.

    Example:
        >>> Adam(learning_rate=3e-4).get_config()["epsilon"]
        1e-07
    """

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, amsgrad: bool = False,
                 weight_decay: float | None = None) -> None:
        super().__init__(learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                         amsgrad=amsgrad, weight_decay=weight_decay)

    def _make(self, params: list) -> optim.Optimizer:
        s = self._settings
        kwargs = dict(lr=self._learning_rate, betas=(s["beta_1"], s["beta_2"]),
                      eps=s["epsilon"], amsgrad=s["amsgrad"])
        if s["weight_decay"]:
            return optim.AdamW(params, weight_decay=s["weight_decay"], **kwargs)
        return optim.Adam(params, **kwargs)


class AdamW(Optimizer):
    """AdamW (decoupled weight decay) with Keras's defaults (``weight_decay=0.004``)."""

    def __init__(self, learning_rate: float = 0.001, weight_decay: float = 0.004,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7,
                 amsgrad: bool = False) -> None:
        super().__init__(learning_rate, weight_decay=weight_decay, beta_1=beta_1,
                         beta_2=beta_2, epsilon=epsilon, amsgrad=amsgrad)

    def _make(self, params: list) -> optim.Optimizer:
        s = self._settings
        return optim.AdamW(params, lr=self._learning_rate, betas=(s["beta_1"], s["beta_2"]),
                           eps=s["epsilon"], weight_decay=s["weight_decay"],
                           amsgrad=s["amsgrad"])


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum; Keras's default rate
    0.01."""

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.0,
                 nesterov: bool = False, weight_decay: float | None = None) -> None:
        super().__init__(learning_rate, momentum=momentum, nesterov=nesterov,
                         weight_decay=weight_decay)

    def _make(self, params: list) -> optim.Optimizer:
        s = self._settings
        return optim.SGD(params, lr=self._learning_rate, momentum=s["momentum"],
                         nesterov=s["nesterov"], weight_decay=s["weight_decay"] or 0)


OPTIMIZERS = {"adam": Adam, "adamw": AdamW, "sgd": SGD}


def get(identifier: Any) -> Any:
    """An optimizer from a name (``'adam'``, ``'adamw'``, ``'sgd'``), a Keras optimizer, or a
    `minigrad.optim` optimizer (returned as is).

    Example:
        >>> get("sgd").learning_rate
        0.01
    """
    if isinstance(identifier, (Optimizer, optim.Optimizer)):
        return identifier
    if isinstance(identifier, str):
        key = identifier.lower()
        if key in OPTIMIZERS:
            return OPTIMIZERS[key]()
        valid = ", ".join(repr(name) for name in OPTIMIZERS)
        raise ValueError(
            f"Unknown optimizer: {identifier!r}. Valid optimizers are {valid}, a "
            "keras.optimizers object (e.g. keras.optimizers.Adam(learning_rate=1e-3)) or a "
            "minigrad.optim optimizer."
        )
    raise TypeError(f"Could not interpret optimizer identifier: {identifier!r}")


def serialize(optimizer: Any) -> Any:
    """A JSON-able description, or None for a `minigrad.optim` object (not rebuilt)."""
    if isinstance(optimizer, Optimizer):
        return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}
    return None


def deserialize(config: Any) -> Optimizer | None:
    if not config:
        return None
    classes = {cls.__name__: cls for cls in OPTIMIZERS.values()}
    return classes[config["class_name"]](**config["config"])
