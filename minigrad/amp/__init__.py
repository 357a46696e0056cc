"""Automatic mixed precision: :class:`autocast` and :class:`GradScaler` (as ``torch.amp``).

Example:
    >>> import minigrad as mg
    >>> model = mg.nn.Linear(4, 2)
    >>> with mg.amp.autocast("cpu", dtype=mg.float16):
    ...     out = model(mg.ones(3, 4))
    >>> out.dtype, model.weight.dtype
    (dtype('float16'), dtype('float32'))
"""

from minigrad.amp.autocast_mode import autocast, get_autocast_dtype, is_autocast_enabled
from minigrad.amp.grad_scaler import GradScaler

__all__ = ["GradScaler", "autocast", "get_autocast_dtype", "is_autocast_enabled"]
