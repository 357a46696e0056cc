"""Stochastic gradient descent, with momentum, dampening, Nesterov and weight decay (PyTorch's)."""

from __future__ import annotations

from typing import Any, Dict, Optional

from minigrad.optim.optimizer import Optimizer, ParamsT, _state_zeros
from minigrad.tensor import Tensor

Array = Any


class SGD(Optimizer):
    r"""Stochastic gradient descent, optionally with momentum: PyTorch's update, step by step.

    For each parameter :math:`\theta` with gradient :math:`g` (``maximize`` uses :math:`-g`):

    .. code-block:: text

        g  <- g + weight_decay * theta                    if weight_decay != 0
        if momentum != 0:
            b <- g                                        on the first step
            b <- momentum * b + (1 - dampening) * g       afterwards
            g <- g + momentum * b                         if nesterov
            g <- b                                        otherwise
        theta <- theta - lr * g

    The buffer ``b`` is ``state[p]["momentum_buffer"]``. Note that ``lr`` multiplies the
    velocity rather than being folded into it (unlike Sutskever et al.), so changing ``lr``
    mid-training takes effect at once. A parameter whose ``.grad`` is None is skipped entirely.

    Args:
        params: Parameters, or dicts defining parameter groups.
        lr: learning rate.
        momentum: momentum factor.
        dampening: dampening of the gradient's contribution to the momentum.
        weight_decay: L2 penalty (added to the gradient).
        nesterov: use Nesterov momentum (needs ``momentum > 0`` and ``dampening == 0``).
        maximize: maximize the objective instead of minimizing it.

    Example:
        >>> import minigrad as mg
        >>> from minigrad import optim
        >>> from minigrad.nn import Parameter
        >>> w = Parameter(mg.tensor([1.0, -2.0]))
        >>> opt = optim.SGD([w], lr=0.1)
        >>> (w * w).sum().backward()   # grad = 2 w
        >>> opt.step()
        >>> w.detach()
        tensor([ 0.8000, -1.6000])
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _advance_state(self, p: Tensor, group: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        """PyTorch's SGD keeps a state only with momentum (its buffer), and counts no steps."""
        return self.state[p] if group["momentum"] != 0 else None

    def _update(self, param: Array, grad: Array, state, group: Dict[str, Any]) -> None:
        g = grad
        momentum = group["momentum"]
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = _state_zeros(Tensor._make(param))
                buf = buf.data
                buf[...] = g  # NOTE: PyTorch starts the buffer at g, not at (1 - dampening) * g
            else:
                buf = buf.data
                buf *= momentum
                dampening = group["dampening"]
                buf += g if dampening == 0 else g * (1 - dampening)
            if group["nesterov"]:
                step = buf * momentum  # g + momentum * b, without touching g (it may be grad)
                step += g
                g = step
            else:
                g = buf
        param -= g * group["lr"]  # theta <- theta - lr * g
