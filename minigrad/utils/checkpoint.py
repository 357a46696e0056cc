"""``mg.utils.checkpoint``: activation checkpointing, as ``torch.utils.checkpoint``.

The implementation is in ``minigrad.nn.checkpoint`` (the nn layer, so that modules can
checkpoint their blocks); see its docstring for how the recomputation and the random state work.

Example:
    >>> import minigrad as mg
    >>> from minigrad.utils.checkpoint import checkpoint
    >>> block = mg.nn.Sequential(mg.nn.Linear(4, 4), mg.nn.Dropout(0.5), mg.nn.GELU())
    >>> x = mg.randn(2, 4, requires_grad=True)
    >>> checkpoint(block, x).sum().backward()
    >>> x.grad.shape
    (2, 4)
"""

from minigrad.nn.checkpoint import GradientCheckpointing, checkpoint, checkpoint_sequential

__all__ = ["GradientCheckpointing", "checkpoint", "checkpoint_sequential"]
