"""Adagrad (Duchi et al., 2011), with PyTorch's options and numerics."""

from __future__ import annotations

from typing import Any, Dict, Optional

from minigrad import backend
from minigrad.optim.optimizer import Optimizer, ParamsT, _check_options, _step_counter
from minigrad.tensor import Tensor, full_like

Array = Any


class Adagrad(Optimizer):
    r"""Adagrad: per-coordinate steps shrinking with the sum of all past squared gradients.

    For each parameter :math:`\theta` with gradient :math:`g` (``maximize`` uses :math:`-g`), at
    step :math:`t = 1, 2, \dots`:

    .. code-block:: text

        g     <- g + weight_decay * theta                  if weight_decay != 0
        clr   =  lr / (1 + (t - 1) * lr_decay)
        s     <- s + g * g
        theta <- theta - clr * g / (sqrt(s) + eps)

    The state per parameter is ``step`` (a float32 CPU scalar) and ``sum`` (s, starting at
    ``initial_accumulator_value``); as in PyTorch it is made when the optimizer is built.

    Args:
        params: Parameters, or dicts defining parameter groups.
        lr: learning rate.
        lr_decay: learning-rate decay per step.
        weight_decay: L2 penalty (added to the gradient).
        initial_accumulator_value: the starting value of the sums of squared gradients.
        eps: added to the denominator for numerical stability.
        foreach, differentiable, fused: PyTorch's implementation switches, accepted and kept
            in the param groups for compatibility; minigrad has one implementation.
        maximize: maximize the objective instead of minimizing it.

    Example:
        >>> import minigrad as mg
        >>> from minigrad import optim
        >>> from minigrad.nn import Parameter
        >>> w = Parameter(mg.tensor([1.0, -2.0]))
        >>> opt = optim.Adagrad([w], lr=0.1)
        >>> (w * w).sum().backward()
        >>> opt.step()                 # the first step moves each weight by lr
        >>> w.detach()
        tensor([ 0.9000, -1.9000])
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        foreach: Optional[bool] = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused: Optional[bool] = None,
    ) -> None:
        _check_options(
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
        )
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            eps=eps,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            foreach=foreach,
            maximize=maximize,
            differentiable=differentiable,
            fused=fused,
        )
        super().__init__(params, defaults)
        # NOTE: PyTorch builds Adagrad's state up front, so a fresh state_dict already has it
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, self.state[p], group)

    def _init_state(self, p: Tensor, state: Dict[str, Any], group: Dict[str, Any]) -> None:
        # (also on a later step for a group added later, or a state dict without this parameter)
        state["step"] = _step_counter()
        state["sum"] = full_like(p, group["initial_accumulator_value"])

    def _update(self, param: Array, grad: Array, state, group: Dict[str, Any]) -> None:
        xp = backend.array_module(param)
        g = grad
        step = float(state["step"].data)
        clr = group["lr"] / (1 + (step - 1) * group["lr_decay"])
        state_sum = state["sum"].data
        state_sum += g * g
        std = xp.sqrt(state_sum)
        std += group["eps"]
        param += g / std * -clr
