"""RMSprop (Hinton's lecture 6e), with PyTorch's options and numerics."""

from __future__ import annotations

from typing import Any, Dict, Optional

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


class RMSprop(Optimizer):
    r"""RMSprop: divide the gradient by a running root mean square of recent gradients.

    For each parameter :math:`\theta` with gradient :math:`g` (``maximize`` uses :math:`-g`):

    .. code-block:: text

        g     <- g + weight_decay * theta                  if weight_decay != 0
        v     <- alpha * v + (1 - alpha) * g * g
        avg   <- sqrt(v) + eps
        if centered:
            m   <- m + (1 - alpha) * (g - m)               (running mean of g)
            avg <- sqrt(v - m * m) + eps
        if momentum > 0:
            b     <- momentum * b + g / avg
            theta <- theta - lr * b
        else:
            theta <- theta - lr * g / avg

    The state per parameter is ``step`` (a float32 CPU scalar), ``square_avg`` (v),
    ``momentum_buffer`` (b, with momentum) and ``grad_avg`` (m, when centered), as in PyTorch.
    ``eps`` is added outside the square root.

    Args:
        params: Parameters, or dicts defining parameter groups.
        lr: learning rate.
        alpha: smoothing constant of the running average of squared gradients.
        eps: added to the denominator for numerical stability.
        weight_decay: L2 penalty (added to the gradient).
        momentum: momentum factor.
        centered: normalise by an estimate of the gradient's variance instead of its raw
            second moment.
        capturable, foreach, differentiable: PyTorch's implementation switches, accepted and
            kept in the param groups for compatibility; minigrad has one implementation.
        maximize: maximize the objective instead of minimizing it.

    Example:
        >>> import minigrad as mg
        >>> from minigrad import optim
        >>> from minigrad.nn import Parameter
        >>> w = Parameter(mg.tensor([1.0, -2.0]))
        >>> opt = optim.RMSprop([w], lr=0.01)
        >>> (w * w).sum().backward()
        >>> opt.step()                 # the first step moves each weight by lr / sqrt(0.01)
        >>> w.detach()
        tensor([ 0.9000, -1.9000])
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        capturable: bool = False,
        foreach: Optional[bool] = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        _check_options(lr=lr, eps=eps, momentum=momentum, weight_decay=weight_decay, alpha=alpha)
        defaults = dict(
            lr=lr,
            momentum=momentum,
            alpha=alpha,
            eps=eps,
            centered=centered,
            weight_decay=weight_decay,
            capturable=capturable,
            foreach=foreach,
            maximize=maximize,
            differentiable=differentiable,
        )
        super().__init__(params, defaults)

    def _init_state(self, p: Tensor, state: Dict[str, Any], group: Dict[str, Any]) -> None:
        state["step"] = _step_counter()
        state["square_avg"] = _state_zeros(p)
        if group["momentum"] > 0:
            state["momentum_buffer"] = _state_zeros(p)
        if group["centered"]:
            state["grad_avg"] = _state_zeros(p)

    def _update(self, param: Array, grad: Array, state, group: Dict[str, Any]) -> None:
        xp = backend.array_module(param)
        alpha, g = group["alpha"], grad
        # v <- alpha v + (1 - alpha) g g   (PyTorch's mul_ then addcmul_)
        square_avg = state["square_avg"].data
        square_avg *= alpha
        square_avg += g * (1 - alpha) * g
        if group["centered"]:
            # m <- m + (1 - alpha) (g - m)   (PyTorch's lerp_)
            grad_avg = state["grad_avg"].data
            _lerp_(grad_avg, g, 1 - alpha)
            avg = square_avg - grad_avg * grad_avg
            xp.sqrt(avg, out=avg)
        else:
            avg = xp.sqrt(square_avg)
        avg += group["eps"]
        if group["momentum"] > 0:
            momentum_buffer = state["momentum_buffer"].data
            momentum_buffer *= group["momentum"]
            momentum_buffer += g / avg
            param -= momentum_buffer * group["lr"]
        else:
            param += g / avg * -group["lr"]
