"""RMSprop (Hinton's lecture 6e), with PyTorch's options and numerics."""

from __future__ import annotations

from typing import Any, Callable, Optional

from minigrad import backend
from minigrad.optim.optimizer import Optimizer, ParamsT, _state_zeros, _step_counter

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
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= momentum:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= alpha:
            raise ValueError(f"Invalid alpha value: {alpha}")
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

    def step(self, closure: Optional[Callable[[], Any]] = None):
        """Perform one update of every parameter that has a gradient.

        Args:
            closure: optional; re-evaluates the model and returns the loss.
        """
        loss = self._run_closure(closure)
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = _step_counter()
                    state["square_avg"] = _state_zeros(p)
                    if group["momentum"] > 0:
                        state["momentum_buffer"] = _state_zeros(p)
                    if group["centered"]:
                        state["grad_avg"] = _state_zeros(p)
                state["step"].data += 1
                _rmsprop_update(
                    p.data,
                    p.grad.data,
                    state["square_avg"].data,
                    state["grad_avg"].data if group["centered"] else None,
                    state["momentum_buffer"].data if group["momentum"] > 0 else None,
                    lr=group["lr"],
                    alpha=group["alpha"],
                    eps=group["eps"],
                    weight_decay=group["weight_decay"],
                    momentum=group["momentum"],
                    maximize=group["maximize"],
                )
        return loss


def _rmsprop_update(
    param: Array,
    grad: Array,
    square_avg: Array,
    grad_avg: Optional[Array],
    momentum_buffer: Optional[Array],
    *,
    lr: float,
    alpha: float,
    eps: float,
    weight_decay: float,
    momentum: float,
    maximize: bool,
) -> None:
    """One RMSprop step on backend arrays, in place; ``grad`` is never written."""
    xp = backend.array_module(param)
    g = -grad if maximize else grad
    if weight_decay != 0:
        g = g + param * weight_decay
    # v <- alpha v + (1 - alpha) g g   (PyTorch's mul_ then addcmul_)
    square_avg *= alpha
    square_avg += g * (1 - alpha) * g
    if grad_avg is not None:
        # m <- m + (1 - alpha) (g - m)   (PyTorch's lerp_)
        _lerp_(grad_avg, g, 1 - alpha)
        avg = square_avg - grad_avg * grad_avg
        xp.sqrt(avg, out=avg)
    else:
        avg = xp.sqrt(square_avg)
    avg += eps
    if momentum_buffer is not None:
        momentum_buffer *= momentum
        momentum_buffer += g / avg
        param -= momentum_buffer * lr
    else:
        param += g / avg * -lr


def _lerp_(start: Array, end: Array, weight: float) -> None:
    """``start.lerp_(end, weight)`` in place, with PyTorch's two formulas (exact at both ends)."""
    if weight < 0.5:
        start += (end - start) * weight
    else:
        start[...] = end - (end - start) * (1 - weight)
