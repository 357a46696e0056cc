"""Adam and AdamW (PyTorch's update, operation by operation).

The per-parameter maths is :func:`minigrad.references.adam_update`, on backend arrays, so that
the fused multi-tensor kernel (``kernels/adam.py``) can replace it without touching the
bookkeeping around it (:meth:`Adam._step_group`).
"""

from __future__ import annotations

from typing import Any, Dict, Tuple

from minigrad import kernels, references
from minigrad.fused import fused_enabled
from minigrad.optim.optimizer import (
    Optimizer,
    ParamsT,
    _check_options,
    _state_zeros,
    _step_counter,
)
from minigrad.tensor import Tensor


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015), with PyTorch's numerics.

    For each parameter :math:`\theta` with gradient :math:`g` (``maximize`` uses :math:`-g`), at
    step :math:`t = 1, 2, \dots`:

    .. code-block:: text

        g      <- g + weight_decay * theta        if weight_decay != 0 (L2 penalty, "coupled")
        m      <- m + (1 - beta1) * (g - m)       i.e. beta1 * m + (1 - beta1) * g
        v      <- beta2 * v + (1 - beta2) * g * g
        v_max  <- max(v_max, v)                   if amsgrad; then v_max replaces v below
        step_size = lr / (1 - beta1 ** t)
        denom     = sqrt(v) / sqrt(1 - beta2 ** t) + eps
        theta  <- theta - step_size * m / denom

    i.e. :math:`\theta \leftarrow \theta - lr\,\hat m / (\sqrt{\hat v} + \epsilon)` with the
    bias-corrected moments :math:`\hat m = m/(1-\beta_1^t)`, :math:`\hat v = v/(1-\beta_2^t)`.
    Note that ``eps`` is added to :math:`\sqrt{\hat v}`, after the bias correction, and that
    AMSGrad keeps the maximum of the raw :math:`v`. The state per parameter is ``step`` (a float32
    CPU scalar), ``exp_avg`` (m), ``exp_avg_sq`` (v) and, with amsgrad, ``max_exp_avg_sq``, as
    in PyTorch. A parameter whose ``.grad`` is None is skipped entirely (no state, no decay).

    Args:
        params: Parameters, or dicts defining parameter groups.
        lr: learning rate.
        betas: decay rates of the first and second moment averages.
        eps: added to the denominator for numerical stability.
        weight_decay: L2 penalty added to the gradient (see :class:`AdamW` for the decoupled
            form).
        amsgrad: use the AMSGrad variant (Reddi et al., 2018).
        maximize: maximize the objective instead of minimizing it.
        decoupled_weight_decay: decay the weights directly, as :class:`AdamW` does.

    Example:
        >>> import minigrad as mg
        >>> from minigrad import optim
        >>> from minigrad.nn import Parameter
        >>> w = Parameter(mg.tensor([1.0, -2.0]))
        >>> opt = optim.Adam([w], lr=0.1)
        >>> (w * w).sum().backward()
        >>> opt.step()                 # the first step moves each weight by about lr
        >>> w.detach()
        tensor([ 0.9000, -1.9000])
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
    ) -> None:
        _check_options(lr=lr, eps=eps, betas=betas, weight_decay=weight_decay)
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            decoupled_weight_decay=decoupled_weight_decay,
        )
        super().__init__(params, defaults)

    def _init_state(self, p: Tensor, state: Dict[str, Any], group: Dict[str, Any]) -> None:
        state["step"] = _step_counter()
        state["exp_avg"] = _state_zeros(p)
        state["exp_avg_sq"] = _state_zeros(p)  # (AMSGrad's max_exp_avg_sq: _step_group)

    def _step_group(self, group: Dict[str, Any]) -> None:
        """The whole group at once: the fused multi-tensor kernel when it is on, else the
        reference update parameter by parameter."""
        amsgrad = group["amsgrad"]
        params = [p for p in group["params"] if p.grad is not None]
        fused = fused_enabled("adam", *group["params"][:1])
        # where the fused kernel's flat buffers hold these parameters' state as on the last
        # step, it counts their steps and updates them itself; a subclass that counts its own
        # way (its _advance_state) keeps the loop below
        if fused and type(self)._advance_state is Optimizer._advance_state:
            if kernels.adam.step_again(self, group, params):
                return
        steps = [float(self._advance_state(p, group)["step"].data) for p in params]
        if amsgrad:  # also for a state saved without it (loaded, or amsgrad switched on later)
            for p in params:
                state = self.state[p]
                if "max_exp_avg_sq" not in state:
                    state["max_exp_avg_sq"] = _state_zeros(p)
        if fused:  # one multi-tensor update
            kernels.adam.step_group(self, group, params, steps)
            return
        beta1, beta2 = group["betas"]
        for p, step in zip(params, steps):
            state = self.state[p]
            references.adam_update(
                p.data,
                p.grad.data,
                state["exp_avg"].data,
                state["exp_avg_sq"].data,
                state["max_exp_avg_sq"].data if amsgrad else None,
                step=step,
                lr=group["lr"],
                beta1=beta1,
                beta2=beta2,
                eps=group["eps"],
                weight_decay=group["weight_decay"],
                maximize=group["maximize"],
                decoupled_weight_decay=group.get("decoupled_weight_decay", False),
            )


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter, 2019), with PyTorch's numerics.

    The weights decay directly instead of through the gradient, so the decay is not rescaled
    by Adam's per-coordinate step size. At step :math:`t`:

    .. code-block:: text

        theta  <- theta * (1 - lr * weight_decay)
        m      <- m + (1 - beta1) * (g - m)
        v      <- beta2 * v + (1 - beta2) * g * g
        v_max  <- max(v_max, v)                   if amsgrad; then v_max replaces v below
        theta  <- theta - lr / (1 - beta1 ** t) * m / (sqrt(v) / sqrt(1 - beta2 ** t) + eps)

    Args:
        params: Parameters, or dicts defining parameter groups.
        lr: learning rate.
        betas: decay rates of the first and second moment averages.
        eps: added to the denominator for numerical stability.
        weight_decay: decoupled weight decay coefficient.
        amsgrad: use the AMSGrad variant.
        maximize: maximize the objective instead of minimizing it.

    Example:
        >>> import minigrad as mg
        >>> from minigrad import optim
        >>> from minigrad.nn import Parameter
        >>> w = Parameter(mg.tensor([1.0, -2.0]))
        >>> opt = optim.AdamW([w], lr=0.1, weight_decay=0.5)
        >>> w.grad = mg.zeros(2)       # no gradient signal: only the decay acts
        >>> opt.step()
        >>> w.detach()
        tensor([ 0.9500, -1.9000])
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(
            params,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            decoupled_weight_decay=True,
        )
