"""Collectives on tensors, in place, with torch.distributed's signatures.

Each works on a tensor's backend array: a CPU tensor through MPI, a GPU tensor through NCCL (or
MPI by way of the host; see `minigrad.distributed.group`). Any float or integer dtype (and
bool) is accepted. With one process they leave the tensors as they are.
"""

from __future__ import annotations

import enum
from typing import Any, Callable

from minigrad.distributed.group import Work, _world, world
from minigrad.tensor import Tensor

__all__ = ["ReduceOp", "Work", "all_gather", "all_reduce", "broadcast", "combine_found_inf",
           "reduce_scatter", "run_on_rank_zero"]


class ReduceOp(enum.Enum):
    """How `all_reduce` and `reduce_scatter` combine the ranks' values (PyTorch's names).

    ``AVG`` is the sum divided by the world size (integers round toward zero). On bool
    tensors ``SUM`` is a logical or and ``PRODUCT`` a logical and.
    """

    SUM = "sum"
    AVG = "avg"
    PRODUCT = "prod"
    MIN = "min"
    MAX = "max"


def _op(op: Any) -> str:
    if isinstance(op, ReduceOp):
        return op.value
    raise TypeError(f"op must be a ReduceOp (e.g. ReduceOp.SUM), got {op!r}")


def _array(tensor: Any, name: str) -> Any:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{name} must be a Tensor, got {type(tensor).__name__}")
    return tensor.data


def _rank_arrays(fn: str, tensors: list, name: str, size: int, like: Any,
                 roles: tuple) -> list:
    """The arrays of ``tensors``, one per rank, each with ``like``'s shape and dtype (else a
    ValueError: ``roles`` names the list's tensors and ``like`` in it)."""
    arrays = [_array(t, f"{name}[i]") for t in tensors]
    if len(arrays) != size:
        raise ValueError(f"{fn}: {name} has {len(arrays)} tensors for a world of {size}")
    for t in arrays:
        if t.shape != like.shape or t.dtype != like.dtype:
            raise ValueError(f"{fn}: every {roles[0]} must have the {roles[1]}'s shape "
                             f"{tuple(like.shape)} and dtype {like.dtype}; got {tuple(t.shape)} "
                             f"{t.dtype}")
    return arrays


def _check_group(group: Any) -> None:
    if group is not None and group is not world():
        raise ValueError("only the default process group (group=None) is supported")


def all_reduce(tensor: Tensor, op: ReduceOp = ReduceOp.SUM, group: Any = None,
               async_op: bool = False) -> Work | None:
    """Reduces `tensor` over all ranks; every rank ends with the result, in place.

    Args:
        tensor: the input and the output.
        op: a `ReduceOp`.
        group: None (the default group).
        async_op: return a `Work` to ``wait()`` on instead of waiting here.

    Example:
        >>> import minigrad as mg
        >>> import minigrad.distributed as dist
        >>> dist.init_process_group()
        >>> t = mg.tensor([1.0, 2.0])
        >>> dist.all_reduce(t, op=dist.ReduceOp.SUM)   # one rank: unchanged
        >>> t
        tensor([1., 2.])
        >>> dist.destroy_process_group()
    """
    _check_group(group)
    return _world("all_reduce").all_reduce(_array(tensor, "tensor"), _op(op), async_op)


def broadcast(tensor: Tensor, src: int, group: Any = None, async_op: bool = False) -> Work | None:
    """Copies rank `src`'s `tensor` into `tensor` on every rank."""
    _check_group(group)
    _world("broadcast").broadcast(_array(tensor, "tensor"), int(src))
    return Work() if async_op else None


def all_gather(tensor_list: list, tensor: Tensor, group: Any = None,
               async_op: bool = False) -> Work | None:
    """Fills ``tensor_list[r]`` with rank r's `tensor` on every rank.

    Args:
        tensor_list: world-size tensors of `tensor`'s shape and dtype, allocated by the caller.
        tensor: this rank's contribution.
    """
    _check_group(group)
    pg = _world("all_gather")
    array = _array(tensor, "tensor")
    outputs = _rank_arrays("all_gather", tensor_list, "tensor_list", pg.size, array,
                           ("output", "input"))
    pg.all_gather(outputs, array)
    return Work() if async_op else None


def reduce_scatter(output: Tensor, input_list: list, op: ReduceOp = ReduceOp.SUM,
                   group: Any = None, async_op: bool = False) -> Work | None:
    """``output`` on rank r receives the reduction over all ranks of their ``input_list[r]``.

    Args:
        output: this rank's share of the result.
        input_list: world-size tensors of `output`'s shape and dtype.
        op: a `ReduceOp`.
    """
    _check_group(group)
    pg = _world("reduce_scatter")
    out = _array(output, "output")
    inputs = _rank_arrays("reduce_scatter", input_list, "input_list", pg.size, out,
                          ("input", "output"))
    pg.reduce_scatter(out, inputs, _op(op))
    return Work() if async_op else None


def combine_found_inf(found_inf: Tensor) -> Tensor:
    """The hook point of mixed precision under data parallel: a gradient scaler's "found an
    inf or NaN" flag made the maximum over the ranks, in place, so that every rank skips the
    same steps and shrinks its scale alike. Every rank must call it (a GradScaler's
    ``unscale_`` would, when a process group exists). Without one it returns the flag as is.

    Gradients averaged by `DistributedDataParallel` are already the same on every rank (an
    inf on one rank is an inf in the sum), so this matters for gradients not averaged by it.

    Example:
        >>> import minigrad as mg
        >>> combine_found_inf(mg.tensor([0.0])).tolist()
        [0.0]
    """
    group = world()
    if group is not None and group.size > 1:
        group.all_reduce(found_inf.data, "max")
    return found_inf


_on_rank_zero_depth = 0


def run_on_rank_zero(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """Calls ``fn(*args, **kwargs)`` on rank 0 only, then every rank waits for it: how a
    checkpoint or a log file is written once. Every rank must call it.

    Without a process group (or with one process) it simply calls `fn`; a call nested inside
    another runs `fn` directly (the outer call already chose the rank and waits).

    Returns:
        `fn`'s result on rank 0, None on the other ranks.
    """
    global _on_rank_zero_depth
    pg = world()
    if pg is None or pg.size == 1 or _on_rank_zero_depth:
        return fn(*args, **kwargs)
    result = None
    if pg.rank == 0:
        _on_rank_zero_depth += 1
        try:
            result = fn(*args, **kwargs)
        finally:
            _on_rank_zero_depth -= 1
    pg.barrier()
    return result
