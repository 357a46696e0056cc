"""Stochastic gradient descent, with momentum, dampening, Nesterov and weight decay (PyTorch's)."""

from __future__ import annotations

from typing import Any, Callable, Optional

from minigrad.optim.optimizer import Optimizer, ParamsT, _state_zeros

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

    def step(self, closure: Optional[Callable[[], Any]] = None):
        """Perform one update of every parameter that has a gradient.

        Args:
            closure: optional; re-evaluates the model and returns the loss.
        """
        loss = self._run_closure(closure)
        for group in self.param_groups:
            momentum = group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                buf, first_step = None, False
                if momentum != 0:
                    state = self.state[p]
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = state["momentum_buffer"] = _state_zeros(p)
                        first_step = True
                _sgd_update(
                    p.data,
                    p.grad.data,
                    None if buf is None else buf.data,
                    first_step=first_step,
                    lr=group["lr"],
                    momentum=momentum,
                    dampening=group["dampening"],
                    weight_decay=group["weight_decay"],
                    nesterov=group["nesterov"],
                    maximize=group["maximize"],
                )
        return loss


def _sgd_update(
    param: Array,
    grad: Array,
    momentum_buffer: Optional[Array],
    *,
    first_step: bool,
    lr: float,
    momentum: float,
    dampening: float,
    weight_decay: float,
    nesterov: bool,
    maximize: bool,
) -> None:
    """One SGD step on backend arrays, in place (``param`` and ``momentum_buffer``).

    ``grad`` is never written: it may be read again (gradient accumulation, logging).
    """
    # g: the effective gradient; a fresh array as soon as it differs from grad
    if weight_decay != 0:
        g = param * weight_decay
        if maximize:
            g -= grad  # -grad + wd * param
        else:
            g += grad
    elif maximize:
        g = -grad
    else:
        g = grad

    if momentum != 0:
        buf = momentum_buffer
        if first_step:
            buf[...] = g  # NOTE: PyTorch starts the buffer at g, not at (1 - dampening) * g
        else:
            buf *= momentum
            buf += g if dampening == 0 else g * (1 - dampening)
        if nesterov:
            step = buf * momentum  # g + momentum * b, without touching g (it may be grad)
            step += g
            g = step
        else:
            g = buf

    param -= g * lr  # theta <- theta - lr * g
