"""Keras optimizers: Keras's argument names and defaults over `minigrad.optim`.

A Keras optimizer is made before the model has parameters, so each class here holds its
settings until `build` creates the `minigrad.optim` optimizer (``.optimizer``) over the model's
parameters. It then behaves as that optimizer (``zero_grad``, ``step``, ``param_groups``), and
``learning_rate`` reads and sets the rate of every parameter group.

Defaults are Keras's: ``learning_rate=0.001`` and ``epsilon=1e-7`` (SGD: ``learning_rate=0.01``).
RMSprop, Adagrad, Adamax and Nadam follow Keras's own update rules, which differ from PyTorch's
classes of the same names: Keras adds ``epsilon`` inside the square root in RMSprop and Adagrad
(PyTorch outside), starts Adagrad's accumulator at 0.1 (PyTorch 0), adds ``epsilon`` after the
infinity norm in Adamax and uses its own momentum schedule in Nadam. Adam and AdamW are
PyTorch's, with Keras's defaults: Keras adds ``epsilon`` to the raw root ``sqrt(v)``, PyTorch to
the bias-corrected one, a difference of order ``epsilon`` that does not show at 1e-7. A
``weight_decay`` is decoupled in every class, as in Keras (``w <- w - learning_rate *
weight_decay * w`` before the step).

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

from typing import Any, Dict, Iterable

import numpy as np

from minigrad import backend, optim
from minigrad.optim.optimizer import _state_zeros, _step_counter
from minigrad.tensor import Tensor, full_like

__all__ = [
    "SGD", "Adagrad", "Adam", "AdamW", "Adamax", "Nadam", "Optimizer", "RMSprop", "get",
]


# Keras's arguments common to every optimizer that minigrad takes (see `Optimizer`)
COMMON_OPTIONS = ("clipnorm", "clipvalue", "global_clipnorm", "gradient_accumulation_steps")


class Optimizer:
    """Base class: Keras settings now, a `minigrad.optim` optimizer after `build`.

    Every optimizer also takes Keras's common arguments ``clipnorm`` (each gradient's norm
    clipped to it), ``global_clipnorm`` (all gradients scaled together so their joint norm is
    at most it), ``clipvalue`` (each element clipped to ``[-clipvalue, clipvalue]``), at most
    one of the three, applied before the step as in Keras, and ``gradient_accumulation_steps``
    (read by ``model.fit``). Any other argument raises, as in Keras.
    """

    def __init__(self, learning_rate: float, options: dict | None = None,
                 **settings: Any) -> None:
        options = dict(options or {})
        unknown = {k: v for k, v in options.items() if k not in COMMON_OPTIONS}
        if unknown:
            raise ValueError(f"Argument(s) not recognized: {unknown}")
        clipping = {k: options.get(k) for k in ("clipnorm", "clipvalue", "global_clipnorm")}
        if sum(v is not None for v in clipping.values()) > 1:
            raise ValueError(
                "Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. "
                "Received: " + ", ".join(f"{k}={v}" for k, v in clipping.items()))
        self._learning_rate = float(learning_rate)
        # NOTE: only the common options given go into the config, so it rebuilds the same
        self._settings = {**settings, **{k: v for k, v in options.items() if v is not None}}
        self.clipnorm = clipping["clipnorm"]
        self.clipvalue = clipping["clipvalue"]
        self.global_clipnorm = clipping["global_clipnorm"]
        self.gradient_accumulation_steps = options.get("gradient_accumulation_steps")
        self.optimizer: optim.Optimizer | None = None

    def _make(self, params: list) -> optim.Optimizer:
        raise NotImplementedError

    def build(self, params: Iterable) -> None:
        """Creates the `minigrad.optim` optimizer over `params`."""
        self.optimizer = self._make(list(params))

    @property
    def built(self) -> bool:
        """Whether `build` has made the inner `minigrad.optim` optimizer."""
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
        """The learning rate (``lr`` is its Keras 2 name); setting it updates every parameter group.
        """
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
        """The inner optimizer's parameter groups (built first)."""
        return self._inner().param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients of the optimized parameters."""
        self._inner().zero_grad(set_to_none)

    def step(self) -> None:
        """One update of the optimized parameters from their gradients (clipped first when
        ``clipnorm``, ``global_clipnorm`` or ``clipvalue`` is set)."""
        inner = self._inner()
        self._clip_gradients(inner)
        inner.step()

    def _clip_gradients(self, inner: optim.Optimizer) -> None:
        """Keras's ``_clip_gradients``: each ``.grad`` replaced by its clipped copy."""
        params = [p for group in inner.param_groups for p in group["params"]
                  if p.grad is not None]
        if not params or (self.clipnorm, self.global_clipnorm, self.clipvalue) == (None,) * 3:
            return
        grads = [p.grad.data for p in params]
        xp = backend.array_module(grads[0])
        if self.clipnorm is not None:
            c = self.clipnorm
            clipped = [g * g.dtype.type(c) / xp.maximum(xp.sqrt((g * g).sum()), c)
                       for g in grads]
        elif self.global_clipnorm is not None:
            c = self.global_clipnorm
            norm = xp.sqrt(sum((g.astype(np.float64) ** 2).sum() for g in grads))
            # NOTE: an infinite or NaN norm makes every gradient NaN, as in Keras
            scale = xp.where(xp.isfinite(norm), c / xp.maximum(norm, c), xp.nan)
            clipped = [g * scale.astype(g.dtype) for g in grads]
        else:
            v = self.clipvalue
            clipped = [xp.clip(g, -v, v) for g in grads]
        for p, g in zip(params, clipped):
            p.grad = Tensor._make(g.astype(p.grad.dtype, copy=False))

    def state_dict(self) -> dict:
        """The inner optimizer's state, as ``minigrad.optim`` writes it."""
        return self._inner().state_dict()

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore a state from `state_dict`."""
        self._inner().load_state_dict(state_dict)

    def get_config(self) -> dict:
        """The constructor arguments, enough to rebuild the optimizer (saved with the model)."""
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
                 weight_decay: float | None = None, **kwargs: Any) -> None:
        super().__init__(learning_rate, kwargs, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
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
                 amsgrad: bool = False, **kwargs: Any) -> None:
        super().__init__(learning_rate, kwargs, weight_decay=weight_decay, beta_1=beta_1,
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
                 nesterov: bool = False, weight_decay: float | None = None, **kwargs: Any) -> None:
        super().__init__(learning_rate, kwargs, momentum=momentum, nesterov=nesterov,
                         weight_decay=weight_decay)

    def _make(self, params: list) -> optim.Optimizer:
        s = self._settings
        # NOTE: Keras decays the weights before the step, outside the momentum (PyTorch's SGD
        # adds weight_decay * w to the gradient instead)
        return optim.SGD([{"params": params, "decoupled_weight_decay": True}],
                         lr=self._learning_rate, momentum=s["momentum"],
                         nesterov=s["nesterov"], weight_decay=s["weight_decay"] or 0)


def _keras_defaults(lr: float, weight_decay: float | None, **options: Any) -> dict:
    """A param group's options: Keras's weight decay is decoupled (see the module docstring)."""
    return dict(lr=lr, weight_decay=weight_decay or 0, decoupled_weight_decay=True,
                maximize=False, **options)


class _RMSpropRule(optim.Optimizer):
    """Keras's RMSprop update (``epsilon`` inside the square root)::

        v <- rho * v + (1 - rho) * g * g
        a <- rho * a + (1 - rho) * g                  (centered only)
        d <- v - a * a + epsilon   (centered)   or   v + epsilon
        s <- learning_rate * g / sqrt(d)
        m <- momentum * m + s;  w <- w - m           (momentum > 0)   or   w <- w - s
    """

    def _init_state(self, p: Tensor, state: Dict[str, Any], group: Dict[str, Any]) -> None:
        state["step"] = _step_counter()
        state["velocity"] = _state_zeros(p)
        if group["momentum"] > 0:
            state["momentum"] = _state_zeros(p)
        if group["centered"]:
            state["average_gradient"] = _state_zeros(p)

    def _update(self, param, grad, state, group: Dict[str, Any]) -> None:
        xp = backend.array_module(param)
        rho = group["rho"]
        v = state["velocity"].data
        v[...] = rho * v + (1 - rho) * (grad * grad)
        if group["centered"]:
            a = state["average_gradient"].data
            a[...] = rho * a + (1 - rho) * grad
            denominator = v - a * a + group["epsilon"]
        else:
            denominator = v + group["epsilon"]
        increment = group["lr"] * grad / xp.sqrt(denominator)
        if group["momentum"] > 0:
            m = state["momentum"].data
            m[...] = group["momentum"] * m + increment
            param -= m
        else:
            param -= increment


class _AdagradRule(optim.Optimizer):
    """Keras's Adagrad update: ``acc <- acc + g * g`` (``acc`` starts at
    ``initial_accumulator_value``), ``w <- w - learning_rate * g / sqrt(acc + epsilon)``."""

    def _init_state(self, p: Tensor, state: Dict[str, Any], group: Dict[str, Any]) -> None:
        state["step"] = _step_counter()
        state["accumulator"] = full_like(p, group["initial_accumulator_value"])

    def _update(self, param, grad, state, group: Dict[str, Any]) -> None:
        xp = backend.array_module(param)
        acc = state["accumulator"].data
        acc += grad * grad
        param -= group["lr"] * grad / xp.sqrt(acc + group["epsilon"])


class _AdamaxRule(optim.Optimizer):
    """Keras's Adamax update at step t: ``m <- m + (g - m) * (1 - beta_1)``,
    ``u <- max(beta_2 * u, |g|)``, ``w <- w - learning_rate * m / ((1 - beta_1^t) * (u +
    epsilon))``."""

    def _init_state(self, p: Tensor, state: Dict[str, Any], group: Dict[str, Any]) -> None:
        state["step"] = _step_counter()
        state["momentum"] = _state_zeros(p)
        state["norm"] = _state_zeros(p)

    def _update(self, param, grad, state, group: Dict[str, Any]) -> None:
        xp = backend.array_module(param)
        beta_1, beta_2 = group["beta_1"], group["beta_2"]
        t = float(state["step"].item())
        m, u = state["momentum"].data, state["norm"].data
        m += (grad - m) * (1 - beta_1)
        xp.maximum(beta_2 * u, xp.abs(grad), out=u)
        param -= group["lr"] * m / ((1 - beta_1**t) * (u + group["epsilon"]))


class _NadamRule(optim.Optimizer):
    """Keras's Nadam update at step t, with ``mu_t = beta_1 * (1 - 0.5 * 0.96^t)`` and
    ``P_t = mu_1 * ... * mu_t`` (kept per param group as ``u_product``)::

        m <- m + (g - m) * (1 - beta_1);   v <- v + (g * g - v) * (1 - beta_2)
        m_hat = mu_{t+1} * m / (1 - P_t * mu_{t+1}) + (1 - mu_t) * g / (1 - P_t)
        v_hat = v / (1 - beta_2^t)
        w <- w - learning_rate * m_hat / (sqrt(v_hat) + epsilon)
    """

    def _init_state(self, p: Tensor, state: Dict[str, Any], group: Dict[str, Any]) -> None:
        state["step"] = _step_counter()
        state["momentum"] = _state_zeros(p)
        state["velocity"] = _state_zeros(p)

    def _step_group(self, group: Dict[str, Any]) -> None:
        # NOTE: Keras advances the product once per step, before any variable's update
        t = group["iterations"] + 1
        group["u_product"] *= group["beta_1"] * (1.0 - 0.5 * 0.96**t)
        super()._step_group(group)
        group["iterations"] = t

    def _update(self, param, grad, state, group: Dict[str, Any]) -> None:
        xp = backend.array_module(param)
        beta_1, beta_2 = group["beta_1"], group["beta_2"]
        t = group["iterations"] + 1
        u_t = beta_1 * (1.0 - 0.5 * 0.96**t)
        u_t_1 = beta_1 * (1.0 - 0.5 * 0.96 ** (t + 1))
        u_product_t = group["u_product"]
        m, v = state["momentum"].data, state["velocity"].data
        m += (grad - m) * (1 - beta_1)
        v += (grad * grad - v) * (1 - beta_2)
        m_hat = u_t_1 * m / (1 - u_product_t * u_t_1) + (1 - u_t) * grad / (1 - u_product_t)
        v_hat = v / (1 - beta_2**t)
        param -= m_hat * group["lr"] / (xp.sqrt(v_hat) + group["epsilon"])


def _check_positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"Argument `{name}` must be positive. Received: {name}={value}")


def _check_unit(name: str, value: float) -> None:
    if not 0 <= value <= 1:
        raise ValueError(f"`{name}` must be in the range [0, 1]. Received: {name}={value}")


class RMSprop(Optimizer):
    """RMSprop with Keras's defaults and update rule (``epsilon`` inside the square root;
    PyTorch's `minigrad.optim.RMSprop` adds it outside, with ``alpha=0.99``, ``eps=1e-8``).

    Args:
        learning_rate: the step size (0.001).
        rho: the discounting factor of the running mean of squared gradients (0.9).
        momentum: plain (not Nesterov) momentum (0).
        epsilon: added to the mean square before its square root (1e-7).
        centered: divide by the gradient's estimated variance instead of its second moment.
        weight_decay: decoupled weight decay (see the module docstring).
        **kwargs: Keras's common arguments, ``clipnorm`` and the others (see `Optimizer`).

    Example:
        >>> import minigrad as mg
        >>> from minigrad.nn import Parameter
        >>> w = Parameter(mg.tensor(10.0))
        >>> opt = RMSprop(learning_rate=0.1)
        >>> opt.build([w])
        >>> (w * w / 2).backward()          # the gradient is w, as in Keras's docstring
        >>> opt.step()
        >>> round(float(w), 4)              # Keras prints 9.683772
        9.6838
    """

    def __init__(self, learning_rate: float = 0.001, rho: float = 0.9, momentum: float = 0.0,
                 epsilon: float = 1e-7, centered: bool = False,
                 weight_decay: float | None = None, **kwargs: Any) -> None:
        _check_unit("rho", rho)
        _check_unit("momentum", momentum)
        _check_positive("epsilon", epsilon)
        super().__init__(learning_rate, kwargs, rho=rho, momentum=momentum, epsilon=epsilon,
                         centered=centered, weight_decay=weight_decay)

    def _make(self, params: list) -> optim.Optimizer:
        s = self._settings
        return _RMSpropRule(params, _keras_defaults(
            self._learning_rate, s["weight_decay"], rho=s["rho"], momentum=s["momentum"],
            epsilon=s["epsilon"], centered=s["centered"]))


class Adagrad(Optimizer):
    """Adagrad with Keras's defaults and update rule (the accumulator starts at 0.1 and
    ``epsilon`` goes inside the square root).

    Args:
        learning_rate: the step size (0.001).
        initial_accumulator_value: the accumulators' starting value (0.1; non-negative).
        epsilon: added to the accumulator before its square root (1e-7).
        weight_decay: decoupled weight decay.
        **kwargs: Keras's common arguments (see `Optimizer`).
    """

    def __init__(self, learning_rate: float = 0.001, initial_accumulator_value: float = 0.1,
                 epsilon: float = 1e-7, weight_decay: float | None = None, **kwargs: Any) -> None:
        if initial_accumulator_value < 0:
            raise ValueError(f"initial_accumulator_value must be non-negative, got "
                             f"{initial_accumulator_value}")
        super().__init__(learning_rate, kwargs, initial_accumulator_value=initial_accumulator_value,
                         epsilon=epsilon, weight_decay=weight_decay)

    def _make(self, params: list) -> optim.Optimizer:
        s = self._settings
        return _AdagradRule(params, _keras_defaults(
            self._learning_rate, s["weight_decay"],
            initial_accumulator_value=s["initial_accumulator_value"], epsilon=s["epsilon"]))


class _TwoMoments(Optimizer):
    """The Keras optimizers of the Adam family with their own rule (``_rule``, a torch-style
    optimizer with the group settings plus ``_state``): Keras's arguments and defaults."""

    _rule: type
    _state: dict = {}

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, weight_decay: float | None = None, **kwargs: Any) -> None:
        super().__init__(learning_rate, kwargs, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                         weight_decay=weight_decay)

    def _make(self, params: list) -> optim.Optimizer:
        s = self._settings
        return self._rule(params, _keras_defaults(
            self._learning_rate, s["weight_decay"], beta_1=s["beta_1"], beta_2=s["beta_2"],
            epsilon=s["epsilon"], **self._state))


class Adamax(_TwoMoments):
    """Adamax (Adam with the infinity norm) with Keras's defaults and update rule.

    Args:
        learning_rate: the step size (0.001).
        beta_1: decay of the first moment (0.9).
        beta_2: decay of the infinity norm (0.999).
        epsilon: added to the norm (1e-7).
        weight_decay: decoupled weight decay.
        **kwargs: Keras's common arguments (see `Optimizer`).
    """

    _rule = _AdamaxRule


class Nadam(_TwoMoments):
    """Nadam (Adam with Nesterov momentum) with Keras's defaults and update rule (its momentum
    schedule ``beta_1 * (1 - 0.5 * 0.96^t)`` differs from PyTorch's NAdam).

    Args:
        learning_rate: the step size (0.001).
        beta_1: decay of the first moment (0.9).
        beta_2: decay of the second moment (0.999).
        epsilon: added to the root of the second moment (1e-7).
        weight_decay: decoupled weight decay.
        **kwargs: Keras's common arguments (see `Optimizer`).
    """

    _rule = _NadamRule
    _state = {"u_product": 1.0, "iterations": 0}  # Keras's momentum schedule


OPTIMIZERS = {
    "adam": Adam, "adamw": AdamW, "sgd": SGD, "rmsprop": RMSprop, "adagrad": Adagrad,
    "adamax": Adamax, "nadam": Nadam,
}


def get(identifier: Any) -> Any:
    """An optimizer from a name (``'adam'``, ``'adamw'``, ``'sgd'``, ``'rmsprop'``,
    ``'adagrad'``, ``'adamax'``, ``'nadam'``, any case), a Keras optimizer, or a
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
