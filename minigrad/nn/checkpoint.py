"""Activation checkpointing: keep a block's inputs, recompute its activations in backward.

``checkpoint(fn, *args)`` runs ``fn`` without recording its graph, so none of its intermediate
activations are kept; the backward pass runs ``fn`` again from the saved inputs, this time
recording, and backpropagates through that copy. Memory for activations falls from one set per
block to one block's worth plus the blocks' inputs, for about one extra forward pass of time.

The replay draws the same random numbers as the forward did (dropout masks are equal): the
generators' states are saved before the forward and restored around the recomputation, after
which they are put back where they were, i.e. where a run without checkpointing leaves them.
The autocast state is replayed too. Gradients are bitwise those of the plain run.

This lives in the nn layer so that modules (``nn.TransformerEncoder``) can checkpoint their
layers; ``minigrad.utils.checkpoint`` is its public home, as ``torch.utils.checkpoint``.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from minigrad import autograd, backend
from minigrad.autocast_state import state as _autocast
from minigrad.autograd import Function, enable_grad, is_grad_enabled
from minigrad.nn.module import Module
from minigrad.tensor import Tensor


class CheckpointFn(Function):
    """One node standing for ``fn(*inputs)``; backward recomputes ``fn`` and backpropagates.

    The gradients of parameters used inside ``fn`` (not inputs of the node) are accumulated
    into their ``.grad`` by the inner backward pass, as the parameters' own graph would.
    """

    def forward(self, *arrays, fn=None, template=(), kwargs=None, rng=None, autocast=None):
        self.fn, self.template, self.kwargs = fn, template, kwargs
        self.rng, self.autocast = rng, autocast
        with autograd.no_grad():
            out = fn(*_fill(template, [Tensor._make(a) for a in arrays]), **kwargs)
        self.single = isinstance(out, Tensor)
        outs = (out,) if self.single else tuple(out)
        for o in outs:
            if not isinstance(o, Tensor):
                raise TypeError("checkpoint: the function must return a Tensor or a tuple of "
                                f"Tensors, got {type(o).__name__} in its output")
        arrays_out = tuple([o.data for o in outs])
        return arrays_out[0] if self.single else arrays_out

    def backward(self, *grad_outputs):
        create_graph = is_grad_enabled()  # the engine records backward only for create_graph
        leaves = [Tensor._make(t.data, requires_grad=t.requires_grad) for t in self.inputs]
        now = backend.fork_rng_states() if self.rng is not None else None
        saved_autocast = _autocast.dtypes
        try:
            if self.rng is not None:
                backend.restore_rng_states(self.rng)
            _autocast.dtypes, _autocast.on = self.autocast, bool(self.autocast)
            with enable_grad():
                out = self.fn(*_fill(self.template, leaves), **self.kwargs)
        finally:
            _autocast.dtypes, _autocast.on = saved_autocast, bool(saved_autocast)
            if now is not None:
                backend.restore_rng_states(now)
        outs = (out,) if self.single else tuple(out)
        pairs = [(o, g) for o, g in zip(outs, grad_outputs)
                 if g is not None and o.requires_grad]
        if pairs:
            autograd.run_backward([o for o, _ in pairs], [g for _, g in pairs],
                                  retain_graph=False, create_graph=create_graph)
        grads = tuple([leaf.grad if need else None
                       for leaf, need in zip(leaves, self.needs_input_grad)])
        return grads[0] if len(grads) == 1 else grads


def _fill(template: tuple, tensors: list) -> list:
    """The call's positional arguments: ``template`` with its ``None`` tensor slots filled."""
    it = iter(tensors)
    return [next(it) if slot is _TENSOR else slot for slot in template]


_TENSOR = object()  # marks a tensor argument's place in the template


def _dropping_last(function: Callable) -> Callable:
    """``function`` called without its last positional argument (the dummy input)."""
    def call(*args: Any, **kwargs: Any) -> Any:
        return function(*args[:-1], **kwargs)
    return call


def checkpoint(function: Callable, *args: Any, use_reentrant: bool = False,
               preserve_rng_state: bool = True, **kwargs: Any) -> Any:
    """``function(*args, **kwargs)``, its activations recomputed in backward instead of kept.

    Args:
        function: returns a Tensor or a tuple of Tensors.
        *args: its positional arguments; the Tensors among them get gradients.
        use_reentrant: accepted for PyTorch's signature; both values run the same way.
        preserve_rng_state: replay the forward's random numbers (same dropout masks).
        **kwargs: keyword arguments passed to ``function`` (not differentiated).

    Returns:
        What ``function`` returns.

    Example:
        >>> import minigrad as mg
        >>> from minigrad.utils.checkpoint import checkpoint
        >>> lin = mg.nn.Linear(3, 3)
        >>> x = mg.randn(2, 3, requires_grad=True)
        >>> y = checkpoint(lambda t: lin(t).relu(), x)
        >>> y.sum().backward(); x.grad.shape, lin.weight.grad.shape
        ((2, 3), (3, 3))
    """
    if not is_grad_enabled():
        return function(*args, **kwargs)  # nothing recorded anyway: nothing to save
    tensors = [a for a in args if isinstance(a, Tensor)]
    template = tuple([_TENSOR if isinstance(a, Tensor) else a for a in args])
    if not any(t.requires_grad for t in tensors):
        # NOTE: a dummy input that requires grad makes the node exist, so the parameters
        # used inside still get their gradients from the recomputation
        device = tensors[0].device if tensors else backend.CPU
        dummy = Tensor._make(backend.xp_for(device).empty(0, np.float32), requires_grad=True)
        tensors.append(dummy)
        template, function = template + (_TENSOR,), _dropping_last(function)
    rng = backend.fork_rng_states() if preserve_rng_state else None
    return CheckpointFn.apply(*tensors, fn=function, template=template, kwargs=kwargs, rng=rng,
                              autocast=_autocast.dtypes)


def checkpoint_sequential(functions: Any, segments: int, input: Tensor,  # noqa: A002
                          use_reentrant: bool = False, **kwargs: Any) -> Tensor:
    """Run a sequence of modules in ``segments`` parts, each but the last checkpointed.

    Args:
        functions: an ``nn.Sequential`` or a list of modules/functions run in order.
        segments: how many parts; each but the last is one checkpoint.
        input: the first function's input.
        use_reentrant: accepted for PyTorch's signature.
        **kwargs: passed to :func:`checkpoint` (``preserve_rng_state``).

    Example:
        >>> import minigrad as mg
        >>> from minigrad.utils.checkpoint import checkpoint_sequential
        >>> model = mg.nn.Sequential(mg.nn.Linear(4, 4), mg.nn.ReLU(), mg.nn.Linear(4, 2))
        >>> checkpoint_sequential(model, 2, mg.randn(3, 4, requires_grad=True)).shape
        (3, 2)
    """
    if isinstance(functions, Module):
        functions = list(functions.children())
    functions = list(functions)
    if segments < 1:
        raise ValueError(f"checkpoint_sequential: segments must be >= 1, got {segments}")

    def run(start: int, end: int) -> Callable:
        def forward(x):
            for fn in functions[start:end + 1]:
                x = fn(x)
            return x
        return forward

    size = len(functions) // segments
    end = -1
    for start in range(0, size * (segments - 1), size):
        end = start + size - 1
        input = checkpoint(run(start, end), input, use_reentrant=use_reentrant, **kwargs)
    return run(end + 1, len(functions) - 1)(input)


class GradientCheckpointing:
    """A mixin for models made of repeated blocks: ``gradient_checkpointing_enable()`` makes
    ``self.run_block(block, x, ...)`` checkpoint each block while training.

    A model calls ``x = self.run_block(block, x)`` in its loop over blocks; with the switch
    off (the default) or in eval mode that is just ``block(x)``.
    """

    gradient_checkpointing = False

    def gradient_checkpointing_enable(self, preserve_rng_state: bool = True) -> None:
        """Recompute each block's activations in backward instead of keeping them."""
        self.gradient_checkpointing = True
        self._checkpoint_rng = preserve_rng_state

    def gradient_checkpointing_disable(self) -> None:
        """Keep every activation again (the default)."""
        self.gradient_checkpointing = False

    @property
    def is_gradient_checkpointing(self) -> bool:
        """Whether the switch is on."""
        return self.gradient_checkpointing

    def run_block(self, block: Callable, *args: Any, **kwargs: Any) -> Any:
        """``block(*args, **kwargs)``, checkpointed when the switch is on and training."""
        if self.gradient_checkpointing and self.training and is_grad_enabled():
            return checkpoint(block, *args, preserve_rng_state=self._checkpoint_rng, **kwargs)
        return block(*args, **kwargs)

