"""Optimizers (SGD, Adam, AdamW) and learning-rate schedulers, with PyTorch's numbers.

Example:
    >>> import minigrad as mg
    >>> from minigrad import optim
    >>> from minigrad.nn import Parameter
    >>> w = Parameter(mg.tensor([3.0]))
    >>> opt = optim.SGD([w], lr=0.1, momentum=0.9)
    >>> sched = optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)
    >>> for _ in range(3):
    ...     opt.zero_grad()
    ...     loss = (w * w).sum()
    ...     loss.backward()
    ...     opt.step()
    ...     sched.step()
    >>> round(w.item(), 4)
    0.186
"""

from minigrad.optim import lr_scheduler  # noqa: F401
from minigrad.optim.adam import Adam, AdamW  # noqa: F401
from minigrad.optim.optimizer import Optimizer  # noqa: F401
from minigrad.optim.sgd import SGD  # noqa: F401

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "lr_scheduler"]
