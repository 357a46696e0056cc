"""Adamax (Kingma & Ba, 2015, section 7), with PyTorch's options and numerics."""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

from minigrad import backend
from minigrad.optim.optimizer import (
    Optimizer,
    ParamsT,
    _check_options,
    _lerp_,
    _state_zeros,
    _step_counter,
)
from minigrad.tensor import Tensor

Array = Any


class Adamax(Optimizer):
    r"""Adamax: Adam with the infinity norm in place of the second moment.

    For each parameter :math:`\theta` with gradient :math:`g` (``maximize`` uses :math:`-g`), at
    step :math:`t = 1, 2, \dots`:

    .. code-block:: text

        g     <- g + weight_decay * theta                  if weight_decay != 0
        m     <- m + (1 - beta1) * (g - m)
        u     <- max(beta2 * u, |g| + eps)
        theta <- theta - lr / (1 - beta1 ** t) * m / u

    The state per parameter is ``step`` (a float32 CPU scalar), ``exp_avg`` (m) and
    ``exp_inf`` (u), as in PyTorch.

    Args:
        params: Parameters, or dicts defining parameter groups.
        lr: learning rate.
        betas: decay rates of the first moment and of the infinity norm.
        eps: added to ``|g|`` for numerical stability.
        weight_decay: L2 penalty (added to the gradient).
        foreach, differentiable, capturable: PyTorch's implementation switches, accepted and
            kept in the param groups for compatibility; minigrad has one implementation.
        maximize: maximize the objective instead of minimizing it.

    Example:
        >>> import minigrad as mg
        >>> from minigrad import optim
        >>> from minigrad.nn import Parameter
        >>> w = Parameter(mg.tensor([1.0, -2.0]))
        >>> opt = optim.Adamax([w], lr=0.1)
        >>> (w * w).sum().backward()
        >>> opt.step()                 # the first step moves each weight by about lr
        >>> w.detach()
        tensor([ 0.9000, -1.9000])
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 2e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        foreach: Optional[bool] = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        _check_options(lr=lr, eps=eps, betas=betas, weight_decay=weight_decay)
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            foreach=foreach,
            maximize=maximize,
            differentiable=differentiable,
            capturable=capturable,
        )
        super().__init__(params, defaults)

    def _init_state(self, p: Tensor, state: Dict[str, Any], group: Dict[str, Any]) -> None:
        state["step"] = _step_counter()
        state["exp_avg"] = _state_zeros(p)
        state["exp_inf"] = _state_zeros(p)

    def _update(self, param: Array, grad: Array, state, group: Dict[str, Any]) -> None:
        xp = backend.array_module(param)
        beta1, beta2 = group["betas"]
        g, exp_avg, exp_inf = grad, state["exp_avg"].data, state["exp_inf"].data
        _lerp_(exp_avg, g, 1 - beta1)
        exp_inf *= beta2
        norm = xp.abs(g)
        norm += group["eps"]
        xp.maximum(exp_inf, norm, out=exp_inf)
        clr = group["lr"] / (1 - beta1 ** float(state["step"].data))
        param += exp_avg / exp_inf * -clr
