"""Optimizers (SGD, Adam, AdamW, RMSprop, Adagrad, Adamax, NAdam) and LR schedulers,
with PyTorch's numbers.

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
from minigrad.optim.adagrad import Adagrad  # noqa: F401
from minigrad.optim.adam import Adam, AdamW  # noqa: F401
from minigrad.optim.adamax import Adamax  # noqa: F401
from minigrad.optim.nadam import NAdam  # noqa: F401
from minigrad.optim.optimizer import Optimizer  # noqa: F401
from minigrad.optim.rmsprop import RMSprop  # noqa: F401
from minigrad.optim.sgd import SGD  # noqa: F401

__all__ = [
    "Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adamax", "NAdam", "lr_scheduler",
]
