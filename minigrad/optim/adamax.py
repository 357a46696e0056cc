"""Adamax (Kingma & Ba, 2015, section 7), with PyTorch's options and numerics."""

from __future__ import annotations

from typing import Any, Callable, Optional, Tuple

from minigrad import backend
from minigrad.optim.optimizer import Optimizer, ParamsT, _state_zeros, _step_counter
from minigrad.optim.rmsprop import _lerp_

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
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
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

    def step(self, closure: Optional[Callable[[], Any]] = None):
        """Perform one update of every parameter that has a gradient.

        Args:
            closure: optional; re-evaluates the model and returns the loss.
        """
        loss = self._run_closure(closure)
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = _step_counter()
                    state["exp_avg"] = _state_zeros(p)
                    state["exp_inf"] = _state_zeros(p)
                state["step"].data += 1
                xp = backend.array_module(p.data)
                param, exp_avg, exp_inf = p.data, state["exp_avg"].data, state["exp_inf"].data
                g = -p.grad.data if group["maximize"] else p.grad.data
                if group["weight_decay"] != 0:
                    g = g + param * group["weight_decay"]
                _lerp_(exp_avg, g, 1 - beta1)
                exp_inf *= beta2
                norm = xp.abs(g)
                norm += group["eps"]
                xp.maximum(exp_inf, norm, out=exp_inf)
                clr = group["lr"] / (1 - beta1 ** float(state["step"].data))
                param += exp_avg / exp_inf * -clr
        return loss
