"""Activation and channel-dropout layers with PyTorch's names and arguments: ``LeakyReLU``,
``ELU``, ``Softplus``, ``Mish``, ``Hardtanh``, ``PReLU`` (a learned slope, state-dict key
``weight``), ``Dropout1d``, ``Dropout2d``. Each calls its ``nn.functional`` function.
"""

from __future__ import annotations

from minigrad.nn import functional as F
from minigrad.nn.init import constant_
from minigrad.nn.module import Module, Parameter
from minigrad.tensor import Tensor, empty

__all__ = ["ELU", "Dropout1d", "Dropout2d", "Hardtanh", "LeakyReLU", "Mish", "PReLU", "Softplus"]


class LeakyReLU(Module):
    """x where x > 0, else ``negative_slope * x``.

    Example:
        >>> import minigrad as mg
        >>> mg.nn.LeakyReLU(0.1)(mg.tensor([-1.0, 1.0]))
        tensor([-0.1000,  1.0000])
    """

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.leaky_relu(input, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class ELU(Module):
    """x where x > 0, else ``alpha * (exp(x) - 1)``.

    Example:
        >>> import minigrad as mg
        >>> mg.nn.ELU()(mg.tensor([1.0]))
        tensor([1.])
    """

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.elu(input, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class Softplus(Module):
    """``log(1 + exp(beta x)) / beta``, and x where ``beta x > threshold``.

    Example:
        >>> import minigrad as mg
        >>> mg.nn.Softplus()(mg.tensor([0.0]))
        tensor([0.6931])
    """

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, input: Tensor) -> Tensor:
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Mish(Module):
    """``x * tanh(softplus(x))``.

    Example:
        >>> import minigrad as mg
        >>> mg.nn.Mish()(mg.tensor([0.0]))
        tensor([0.])
    """

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.mish(input)


class Hardtanh(Module):
    """x clipped to ``[min_val, max_val]``.

    Example:
        >>> import minigrad as mg
        >>> mg.nn.Hardtanh()(mg.tensor([-2.0, 0.5]))
        tensor([-1.0000,  0.5000])
    """

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False):
        super().__init__()
        if min_val > max_val:
            raise ValueError("min_val cannot be greater than max_val")
        self.min_val, self.max_val, self.inplace = min_val, max_val, inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.hardtanh(input, self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}"


class PReLU(Module):
    """x where x > 0, else ``weight * x`` with a learned slope: one, or one per channel
    (``num_parameters = C``), starting at ``init``.

    Example:
        >>> import minigrad as mg
        >>> mg.nn.PReLU()(mg.tensor([-4.0, 1.0]))
        tensor([-1.,  1.], grad_fn=<WhereFn>)
    """

    def __init__(self, num_parameters: int = 1, init: float = 0.25, device=None, dtype=None):
        super().__init__()
        self.num_parameters, self.init = num_parameters, init
        self.weight = Parameter(empty(num_parameters, dtype=dtype, device=device))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every slope to ``init``."""
        constant_(self.weight, self.init)

    def forward(self, input: Tensor) -> Tensor:
        return F.prelu(input, self.weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"



class Dropout1d(Module):
    """Zero whole channels of ``(N, C, L)`` / ``(C, L)`` inputs with probability ``p`` while
    training (kept ones scaled by ``1 / (1 - p)``).

    Example:
        >>> import minigrad as mg
        >>> mg.nn.Dropout1d().eval()(mg.ones(1, 2, 3)).shape
        (1, 2, 3)
    """

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if p < 0 or p > 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p, self.inplace = p, inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout1d(input, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout2d(Dropout1d):
    """Zero whole channels of ``(N, C, H, W)`` / ``(C, H, W)`` inputs with probability ``p``
    while training (kept ones scaled by ``1 / (1 - p)``).

    Example:
        >>> import minigrad as mg
        >>> mg.nn.Dropout2d().eval()(mg.ones(1, 2, 3, 3)).shape
        (1, 2, 3, 3)
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout2d(input, self.p, self.training)
