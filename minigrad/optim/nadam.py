"""NAdam (Dozat, 2016): Adam with Nesterov momentum, with PyTorch's options and numerics."""

from __future__ import annotations

from typing import Any, Callable, Optional, Tuple

import numpy as np

from minigrad import backend
from minigrad.optim.optimizer import Optimizer, ParamsT, _state_zeros, _step_counter
from minigrad.optim.rmsprop import _lerp_
from minigrad.tensor import Tensor


class NAdam(Optimizer):
    r"""NAdam: Adam whose momentum looks one step ahead, with a momentum schedule.

    For each parameter :math:`\theta` with gradient :math:`g` (``maximize`` uses :math:`-g`), at
    step :math:`t = 1, 2, \dots`:

    .. code-block:: text

        theta <- theta * (1 - lr * weight_decay)           if decoupled_weight_decay
        g     <- g + weight_decay * theta                  otherwise, if weight_decay != 0
        mu_t  =  beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
        P_t   =  mu_1 * ... * mu_t                         (state "mu_product", float32)
        m     <- m + (1 - beta1) * (g - m)
        v     <- beta2 * v + (1 - beta2) * g * g
        denom =  sqrt(v / (1 - beta2 ** t)) + eps
        theta <- theta - lr * (1 - mu_t) / (1 - P_t) * g / denom
        theta <- theta - lr * mu_{t+1} / (1 - P_t * mu_{t+1}) * m / denom

    The state per parameter is ``step`` and ``mu_product`` (float32 CPU scalars), ``exp_avg``
    (m) and ``exp_avg_sq`` (v), as in PyTorch.

    Args:
        params: Parameters, or dicts defining parameter groups.
        lr: learning rate.
        betas: decay rates of the first and second moment averages.
        eps: added to the denominator for numerical stability.
        weight_decay: weight decay coefficient (an L2 penalty unless decoupled).
        momentum_decay: the momentum schedule's decay.
        decoupled_weight_decay: decay the weights directly, as AdamW does (NAdamW).
        foreach, capturable, differentiable: PyTorch's implementation switches, accepted and
            kept in the param groups for compatibility; minigrad has one implementation.
        maximize: maximize the objective instead of minimizing it.

    Example:
        >>> import minigrad as mg
        >>> from minigrad import optim
        >>> from minigrad.nn import Parameter
        >>> w = Parameter(mg.tensor([1.0, -2.0]))
        >>> opt = optim.NAdam([w], lr=0.1)
        >>> (w * w).sum().backward()
        >>> opt.step()                 # Nesterov: the step looks ahead, a little past lr
        >>> w.detach()
        tensor([ 0.8944, -1.8944])
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 2e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        *,
        foreach: Optional[bool] = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
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
        if not 0.0 <= momentum_decay:
            raise ValueError(f"Invalid momentum_decay value: {momentum_decay}")
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            momentum_decay=momentum_decay,
            decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize,
            foreach=foreach,
            capturable=capturable,
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
            beta1, beta2 = group["betas"]
            lr, weight_decay = group["lr"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = _step_counter()
                    state["mu_product"] = Tensor._make(np.ones((), dtype=np.float32))
                    state["exp_avg"] = _state_zeros(p)
                    state["exp_avg_sq"] = _state_zeros(p)
                state["step"].data += 1
                step = float(state["step"].data)
                xp = backend.array_module(p.data)
                param, exp_avg = p.data, state["exp_avg"].data
                exp_avg_sq = state["exp_avg_sq"].data
                g = -p.grad.data if group["maximize"] else p.grad.data
                if weight_decay != 0:
                    if group["decoupled_weight_decay"]:
                        param *= 1 - lr * weight_decay
                    else:
                        g = g + param * weight_decay
                # NOTE: the schedule in Python floats, its running product in float32 (PyTorch's)
                mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * group["momentum_decay"])))
                mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * group["momentum_decay"])))
                # NOTE: a loaded state holds mu_product in the parameter's dtype, as PyTorch's
                mu_product_t = state["mu_product"].data
                mu_product_t *= mu
                mu_product = float(mu_product_t)
                mu_product_next = mu_product * mu_next
                _lerp_(exp_avg, g, 1 - beta1)
                exp_avg_sq *= beta2
                exp_avg_sq += g * (1 - beta2) * g
                denom = exp_avg_sq / (1 - beta2**step)
                xp.sqrt(denom, out=denom)
                denom += group["eps"]
                param += g / denom * (-lr * (1.0 - mu) / (1.0 - mu_product))
                param += exp_avg / denom * ((-lr * mu_next) / (1.0 - mu_product_next))
        return loss
