"""NAdam (Dozat, 2016): Adam with Nesterov momentum, with PyTorch's options and numerics."""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import numpy as np

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
        _check_options(
            lr=lr, eps=eps, betas=betas, weight_decay=weight_decay, momentum_decay=momentum_decay
        )
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

    def _init_state(self, p: Tensor, state: Dict[str, Any], group: Dict[str, Any]) -> None:
        state["step"] = _step_counter()
        state["mu_product"] = Tensor._make(np.ones((), dtype=np.float32))
        state["exp_avg"] = _state_zeros(p)
        state["exp_avg_sq"] = _state_zeros(p)

    def _update(self, param: Array, grad: Array, state, group: Dict[str, Any]) -> None:
        xp = backend.array_module(param)
        beta1, beta2 = group["betas"]
        lr, momentum_decay = group["lr"], group["momentum_decay"]
        g, exp_avg, exp_avg_sq = grad, state["exp_avg"].data, state["exp_avg_sq"].data
        step = float(state["step"].data)
        # NOTE: the schedule in Python floats, its running product in float32 (PyTorch's)
        mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
        mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
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
