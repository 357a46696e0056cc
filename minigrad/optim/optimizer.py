"""The Optimizer base class: parameter groups, per-parameter state and state dicts.

An optimizer holds ``param_groups``, a list of dicts, each with its ``"params"`` (a list of
Parameters) and its options (``"lr"``, ``"weight_decay"``, ...), and ``state``, a dict from
Parameter to that parameter's running buffers (``"exp_avg"``, ``"momentum_buffer"``, ...).
:meth:`Optimizer.step` is the one loop every optimizer shares: for each group, each parameter
with a gradient gets its state (made by the subclass's ``_init_state`` on the first step, its
``"step"`` counted), its gradient as the update sees it (``-grad`` under ``maximize``, plus the
weight decay) and then the subclass's ``_update``, which changes ``p.data`` in place, so the
update records no graph and allocates little. An optimizer whose update needs the whole group at
once (the fused multi-tensor Adam) overrides ``_step_group`` instead.

``state_dict()`` has PyTorch's layout, so the two can be compared and exchanged::

    {"state": {0: {"step": tensor(3.), "exp_avg": tensor(...), ...}, 1: {...}},
     "param_groups": [{"lr": 0.001, ..., "params": [0, 1]}]}

Parameters are numbered in the order the groups list them; a parameter that never had a gradient
has no state entry.
"""

from __future__ import annotations

import copy
import warnings
from collections import defaultdict
from itertools import chain
from typing import Any, Callable, Dict, Iterable, List, Optional, Union

import numpy as np

from minigrad import backend, dtypes, references
from minigrad.autograd import enable_grad
from minigrad.tensor import Tensor, tensor, zeros_like

Array = Any
ParamsT = Union[Iterable[Tensor], Iterable[Dict[str, Any]]]


class _RequiredParameter:
    """Marks a default that every param group must set itself (PyTorch's ``required``)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()

_SET_ERROR = (
    "optimizer parameters need to be organized in ordered collections, but the ordering of "
    "tensors in sets will change between runs (and state dicts number them in order). Please "
    "use a list instead."
)


class Optimizer:
    """Base class of all optimizers.

    Args:
        params: an iterable of Parameters, of ``(name, Parameter)`` pairs, or of dicts (param
            groups), each with a ``"params"`` entry and any options that override ``defaults``.
        defaults: the options of a group that does not set them.

    Example:
        >>> import minigrad as mg
        >>> from minigrad import optim
        >>> from minigrad.nn import Parameter
        >>> w, b = Parameter(mg.ones(2, 2)), Parameter(mg.zeros(2))
        >>> opt = optim.SGD([{"params": [w]}, {"params": [b], "lr": 0.5}], lr=0.1)
        >>> [g["lr"] for g in opt.param_groups]
        [0.1, 0.5]

        A new optimizer writes only its maths: ``_init_state`` (the buffers of a parameter, made
        on its first step, with a ``"step"`` counter) and ``_update`` (one step of one parameter
        on backend arrays, in place); its groups need ``"lr"``, ``"weight_decay"`` and
        ``"maximize"``, which :meth:`step` applies before ``_update``:

        >>> class SignSGD(Optimizer):
        ...     def __init__(self, params, lr=1e-3):
        ...         super().__init__(params, dict(lr=lr, weight_decay=0, maximize=False))
        ...     def _init_state(self, p, state, group):
        ...         state["step"] = _step_counter()
        ...     def _update(self, param, grad, state, group):
        ...         param -= backend.array_module(param).sign(grad) * group["lr"]
        >>> w = Parameter(mg.tensor([1.0, -2.0]))
        >>> opt = SignSGD([w], lr=0.1)
        >>> (w * w).sum().backward()
        >>> opt.step()
        >>> w.detach(), float(opt.state[w]["step"])
        (tensor([ 0.9000, -1.9000]), 1.0)
    """

    def __init__(self, params: ParamsT, defaults: Dict[str, Any]) -> None:
        self.defaults = defaults
        if isinstance(params, Tensor):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or "
                f"dicts, but got {type(params).__name__}"
            )
        if isinstance(params, set):
            raise TypeError(_SET_ERROR)
        self.state: Dict[Tensor, Dict[str, Any]] = defaultdict(dict)
        self.param_groups: List[Dict[str, Any]] = []
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    # ------------------------------------------------------------------ groups
    def add_param_group(self, param_group: Dict[str, Any]) -> None:
        """Add a group of parameters with its own options (e.g. unfreezing a layer mid-training).

        Options the group does not set are taken from ``defaults``.
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(_SET_ERROR)
        else:
            params = list(params)
        # (name, Parameter) pairs, as named_parameters() yields them
        names = [p[0] for p in params if isinstance(p, tuple)]
        params = [p[1] if isinstance(p, tuple) else p for p in params]
        if names:
            if len(names) != len(params):
                raise ValueError(
                    "all optimizer params should be with/without names. Some param names are "
                    "missing"
                )
            param_group["param_names"] = names
        param_group["params"] = params
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"optimizer can only optimize Tensors, but one of the params is "
                    f"{type(p).__name__}"
                )
            if not (p.is_leaf or p.retains_grad):
                raise ValueError("can't optimize a non-leaf Tensor")

        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(
                    f"parameter group didn't specify a value of required optimization "
                    f"parameter {name}"
                )
            param_group.setdefault(name, default)

        ids = [id(p) for p in params]
        if len(ids) != len(set(ids)):
            warnings.warn(
                "optimizer contains a parameter group with duplicate parameters; in future, "
                "this will cause an error",
                stacklevel=3,
            )
        # NOTE: compare by id: `p in list` would call Tensor.__eq__, which is elementwise
        taken = {id(p) for group in self.param_groups for p in group["params"]}
        if not taken.isdisjoint(ids):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    # ------------------------------------------------------------------ the training loop
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of every parameter.

        Args:
            set_to_none: drop ``.grad`` (the default: no memory, no work, and the next backward
                writes a fresh gradient); otherwise fill the existing ``.grad`` with zeros.
                Optimizers skip a parameter whose ``.grad`` is None, but step one whose gradient
                is zero (weight decay and momentum still move it).
        """
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    if p.grad.grad_fn is not None:
                        p.grad = p.grad.detach()
                    p.grad.requires_grad = False
                    p.grad.data.fill(0)

    def step(self, closure: Optional[Callable[[], Any]] = None):
        """Perform one update of every parameter that has a gradient.

        Args:
            closure: optional; re-evaluates the model and returns the loss.

        Returns:
            ``closure()``'s value, or None without a closure.
        """
        loss = self._run_closure(closure)
        for group in self.param_groups:
            self._step_group(group)
        return loss

    def _step_group(self, group: Dict[str, Any]) -> None:
        """Update the parameters of ``group`` that have a gradient, one at a time.

        A parameter whose ``.grad`` is None is skipped entirely: no state, no decay, no step.
        """
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self._advance_state(p, group)
            param = p.data
            self._update(param, _effective_grad(param, p.grad.data, group), state, group)

    def _advance_state(self, p: Tensor, group: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        """The state of ``p`` for this step: made by :meth:`_init_state` on the first, with its
        ``"step"`` counter counted (a float32 CPU scalar, as PyTorch keeps it)."""
        state = self.state[p]
        if not state:
            self._init_state(p, state, group)
        state["step"].data += 1
        return state

    def _init_state(self, p: Tensor, state: Dict[str, Any], group: Dict[str, Any]) -> None:
        """Fill the empty ``state`` of ``p`` before its first step (``"step"`` and buffers)."""
        raise NotImplementedError

    def _update(
        self, param: Array, grad: Array, state: Optional[Dict[str, Any]], group: Dict[str, Any]
    ) -> None:
        """The optimizer's own maths: one step of one parameter on backend arrays, in place.

        Args:
            param: the parameter's array, updated in place.
            grad: the gradient to follow (maximize and weight decay applied; never write it).
            state: the parameter's state, step already counted (see :meth:`_advance_state`).
            group: the parameter's group and its options.
        """
        raise NotImplementedError

    def _run_closure(self, closure: Optional[Callable[[], Any]]):
        """Evaluate the loss (and backward) for optimizers that need it; graph recording on."""
        if closure is None:
            return None
        with enable_grad():
            return closure()

    # ------------------------------------------------------------------ state dicts
    def state_dict(self) -> Dict[str, Any]:
        """The optimizer's state as ``{"state": {index: {...}}, "param_groups": [...]}``.

        Parameters are replaced by their index (counted across the groups, in order), as in
        PyTorch. The state tensors are the optimizer's own (not copies): save the dict, or
        ``copy.deepcopy`` it, to keep a snapshot while training goes on.
        """
        index: Dict[int, int] = {}
        start = 0

        def pack_group(group: Dict[str, Any]) -> Dict[str, Any]:
            nonlocal start
            packed = {k: v for k, v in group.items() if k != "params"}
            for i, p in enumerate(group["params"], start):
                index.setdefault(id(p), i)
            packed["params"] = [index[id(p)] for p in group["params"]]
            start += len(packed["params"])
            return packed

        param_groups = [pack_group(g) for g in self.param_groups]
        packed_state = {
            (index[id(k)] if isinstance(k, Tensor) else k): v for k, v in self.state.items()
        }
        return {"state": packed_state, "param_groups": param_groups}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Load a state from :meth:`state_dict` (this optimizer's, or one with the same layout).

        The groups must match in number and size. Each state tensor is copied onto its
        parameter's device and, for floating-point parameters, cast to the parameter's dtype
        (``"step"`` stays a float32 CPU scalar). Arrays (NumPy, CuPy, or anything NumPy can read,
        such as a CPU ``torch.Tensor``) are accepted in place of Tensors.
        """
        groups = self.param_groups
        saved_groups = copy.deepcopy(state_dict["param_groups"])
        if len(groups) != len(saved_groups):
            raise ValueError(
                f"loaded state dict has a different number of parameter groups "
                f"({len(saved_groups)}) than the optimizer ({len(groups)})"
            )
        for i, (g, sg) in enumerate(zip(groups, saved_groups)):
            if len(g["params"]) != len(sg["params"]):
                raise ValueError(
                    f"loaded state dict contains a parameter group ({i}) that doesn't match the "
                    f"size of optimizer's group: {len(sg['params'])} saved parameters, "
                    f"{len(g['params'])} in the optimizer"
                )
        id_map = dict(
            zip(
                chain.from_iterable(g["params"] for g in saved_groups),
                chain.from_iterable(g["params"] for g in groups),
            )
        )

        state: Dict[Any, Dict[str, Any]] = defaultdict(dict)
        for k, v in state_dict["state"].items():
            # keys may have become strings on the way through a text format (JSON)
            key = int(k) if isinstance(k, str) and k.isdigit() else k
            if key in id_map:
                param = id_map[key]
                state[param] = _cast_state(param, v)
            else:
                state[key] = v

        for g, sg in zip(groups, saved_groups):
            sg["params"] = g["params"]
            if "param_names" in g and "param_names" not in sg:
                sg["param_names"] = g["param_names"]
        self.state = state
        self.param_groups = saved_groups

    # ------------------------------------------------------------------ printing
    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key not in ("params", "param_names"):
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)


# ---------------------------------------------------------------------------- helpers


def _effective_grad(param: Array, grad: Array, group: Dict[str, Any]) -> Array:
    """The gradient an update follows: ``-grad`` under ``maximize``, plus ``weight_decay * param``
    (the L2 penalty), or, with ``decoupled_weight_decay``, ``param`` shrunk in place by
    ``1 - lr * weight_decay`` instead. ``grad`` is never written."""
    weight_decay = group["weight_decay"]
    decoupled = group.get("decoupled_weight_decay", False)
    if weight_decay != 0 and decoupled:
        param *= 1 - group["lr"] * weight_decay
    return references.adam_effective_grad(param, grad, weight_decay, group["maximize"], decoupled)


def _check_options(**options: Any) -> None:
    """Raise PyTorch's ValueError for a negative option or a beta outside [0, 1), in order."""
    for name, value in options.items():
        if name == "betas":
            for i, beta in enumerate(value):
                if not 0.0 <= beta < 1.0:
                    raise ValueError(f"Invalid beta parameter at index {i}: {beta}")
        elif not 0.0 <= value:
            label = {"lr": "learning rate", "eps": "epsilon value"}.get(name, f"{name} value")
            raise ValueError(f"Invalid {label}: {value}")


def _state_zeros(param: Tensor) -> Tensor:
    """A zero buffer shaped, typed and placed like ``param`` (for exp_avg, momentum, ...)."""
    return zeros_like(param)


def _step_counter() -> Tensor:
    """A fresh ``"step"`` entry: a float32 scalar on the CPU, as PyTorch keeps it."""
    return Tensor._make(np.zeros((), dtype=np.float32))


def _lerp_(start: Array, end: Array, weight: float) -> None:
    """``start.lerp_(end, weight)`` in place, with PyTorch's two formulas (exact at both ends)."""
    if weight < 0.5:
        start += (end - start) * weight
    else:
        start[...] = end - (end - start) * (1 - weight)


def _is_array(value) -> bool:
    if isinstance(value, np.ndarray):
        return True
    cp = backend.cupy_if_loaded()
    return cp is not None and isinstance(value, cp.ndarray)


def _cast_state(param: Tensor, value, key: Optional[str] = None):
    """A copy of a saved state value that fits ``param`` (device, and dtype if floating)."""
    if isinstance(value, dict):
        return {k: _cast_state(param, v, key=k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cast_state(param, v) for v in value)
    if isinstance(value, Tensor):
        arr = value.data
    elif _is_array(value):
        arr = value
    elif hasattr(value, "__array__") and not isinstance(value, (int, float, bool)):
        arr = np.asarray(value)  # e.g. a CPU torch.Tensor
    else:
        return value
    if key == "step":
        return Tensor._make(
            np.array(backend.to_device(arr, backend.CPU), dtype=np.float32, copy=True)
        )
    dtype = param.dtype if param.dtype.kind == "f" else dtypes.to_dtype(arr.dtype)
    return tensor(arr, dtype=dtype, device=param.device)
