"""Loss modules: thin wrappers of the functions in ``minigrad.nn.functional``, with PyTorch's
constructor arguments. Class weights are buffers (``weight``, ``pos_weight``), so they appear in
``state_dict`` exactly as in PyTorch.

Example:
    >>> import minigrad as mg
    >>> from minigrad import nn
    >>> loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    >>> loss_fn(mg.randn(4, 3), mg.tensor([0, 2, 1, 0])).shape
    ()
"""

from __future__ import annotations

from typing import Optional

from minigrad.nn import functional as F
from minigrad.nn.module import Module
from minigrad.tensor import Tensor

__all__ = [
    "CrossEntropyLoss", "NLLLoss", "BCELoss", "BCEWithLogitsLoss", "MSELoss", "L1Loss",
    "SmoothL1Loss", "HuberLoss",
]


class _Loss(Module):
    def __init__(self, size_average=None, reduce=None, reduction: str = "mean"):
        super().__init__()
        self.reduction = F._reduction(reduction, size_average, reduce)


class _WeightedLoss(_Loss):
    def __init__(self, weight: Optional[Tensor] = None, size_average=None, reduce=None,
                 reduction: str = "mean"):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)


class CrossEntropyLoss(_WeightedLoss):
    """Cross-entropy from logits, with class-index or class-probability targets.

    See :func:`minigrad.nn.functional.cross_entropy` for the formulas.

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> loss = nn.CrossEntropyLoss(ignore_index=-1)
        >>> round(loss(mg.zeros(2, 4), mg.tensor([3, -1])).item(), 4)  # log(4)
        1.3863
    """

    def __init__(self, weight: Optional[Tensor] = None, size_average=None,
                 ignore_index: int = -100, reduce=None, reduction: str = "mean",
                 label_smoothing: float = 0.0):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(input, target, weight=self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood of class indices given log-probabilities.

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> nn.NLLLoss()(mg.tensor([[-1.0, -2.0]]), mg.tensor([1]))
        tensor(2.)
    """

    def __init__(self, weight: Optional[Tensor] = None, size_average=None,
                 ignore_index: int = -100, reduce=None, reduction: str = "mean"):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index,
                          reduction=self.reduction)


class BCELoss(_WeightedLoss):
    """Binary cross-entropy of probabilities (logs clamped at -100).

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> round(nn.BCELoss()(mg.tensor([0.5]), mg.tensor([0.0])).item(), 4)
        0.6931
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy(input, target, weight=self.weight,
                                      reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy from logits (stable), with optional ``pos_weight``.

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> loss = nn.BCEWithLogitsLoss(pos_weight=mg.tensor([2.0]))
        >>> round(loss(mg.tensor([0.0]), mg.tensor([1.0])).item(), 4)
        1.3863
    """

    def __init__(self, weight: Optional[Tensor] = None, size_average=None, reduce=None,
                 reduction: str = "mean", pos_weight: Optional[Tensor] = None):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(input, target, self.weight,
                                                  pos_weight=self.pos_weight,
                                                  reduction=self.reduction)


class MSELoss(_Loss):
    """Mean squared error.

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> nn.MSELoss(reduction="sum")(mg.tensor([1.0, 2.0]), mg.tensor([0.0, 0.0]))
        tensor(5.)
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.mse_loss(input, target, reduction=self.reduction)


class L1Loss(_Loss):
    """Mean absolute error.

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> nn.L1Loss()(mg.tensor([1.0, -2.0]), mg.tensor([0.0, 0.0]))
        tensor(1.5000)
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.l1_loss(input, target, reduction=self.reduction)


class SmoothL1Loss(_Loss):
    """Squared error below ``beta``, absolute error above it.

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> nn.SmoothL1Loss()(mg.tensor([0.5]), mg.tensor([0.0]))
        tensor(0.1250)
    """

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean",
                 beta: float = 1.0):
        super().__init__(size_average, reduce, reduction)
        self.beta = beta

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class HuberLoss(_Loss):
    """Squared error below ``delta``, ``delta``-scaled absolute error above it.

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> nn.HuberLoss(delta=2.0)(mg.tensor([3.0]), mg.tensor([0.0]))
        tensor(4.)
    """

    def __init__(self, reduction: str = "mean", delta: float = 1.0):
        super().__init__(reduction=reduction)
        self.delta = delta

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.huber_loss(input, target, reduction=self.reduction, delta=self.delta)
