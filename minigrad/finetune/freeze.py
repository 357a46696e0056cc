"""Freezing, parameter counts, model summaries and head replacement.

Freezing a parameter sets ``requires_grad=False``: the backward pass then never computes its
gradient (an op whose inputs are all frozen records no graph at all), its ``.grad`` stays
None, and every minigrad optimizer skips a parameter without a gradient, so a frozen
parameter gets no update and no weight decay, even from ``AdamW``.

Names and patterns: a parameter is selected by its dotted name from ``named_parameters()``
(``"encoder.layer.0.attention.self.query.weight"``). A pattern selects a name when

- it equals the name, or is a prefix of it at a dot (``"encoder.layer.0"`` selects all of
  that layer's parameters), or
- it matches it as a shell glob (``fnmatch``: ``"*.bias"``, ``"classifier.*"``,
  ``"encoder.layer.[0-3].*"``).

Example:
    >>> from minigrad import nn
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> freeze(model, exclude=["2.*"])          # train only the last layer
    >>> count_parameters(model)
    (58, 18)
    >>> [name for name, _ in trainable_parameters(model, named=True)]
    ['2.weight', '2.bias']
"""

from __future__ import annotations

import fnmatch
from typing import Any, List, Optional, Sequence, Tuple, Union

from minigrad.nn.module import Module
from minigrad.tensor import Tensor

__all__ = [
    "count_parameters",
    "freeze",
    "matches",
    "replace_head",
    "summary",
    "trainable_parameters",
    "unfreeze",
]

Patterns = Union[str, Sequence[str], None]


def _as_list(patterns: Patterns) -> List[str]:
    if patterns is None:
        return []
    if isinstance(patterns, str):
        return [patterns]
    return list(patterns)


def matches(name: str, patterns: Patterns) -> bool:
    """Whether the dotted ``name`` is selected by any of ``patterns`` (see the module doc).

    Example:
        >>> matches("encoder.layer.10.output.dense.bias", ["encoder.layer.1"])
        False
        >>> matches("encoder.layer.1.output.dense.bias", ["encoder.layer.1"])
        True
        >>> matches("classifier.weight", "classifier.*"), matches("a.bias", "*.bias")
        (True, True)
    """
    for pattern in _as_list(patterns):
        if name == pattern or name.startswith(pattern + ".") or fnmatch.fnmatchcase(name, pattern):
            return True
    return False


def _select(target, include: Patterns, exclude: Patterns) -> List[Tuple[str, Tensor]]:
    """The ``(name, parameter)`` pairs of a module, a parameter or an iterable of either."""
    if isinstance(target, Module):
        named = list(target.named_parameters())
    elif isinstance(target, Tensor):
        named = [("", target)]
    else:
        named = []
        for i, item in enumerate(target):
            if isinstance(item, Module):
                named.extend(item.named_parameters(prefix=str(i)))
            elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Tensor):
                named.append(item)
            elif isinstance(item, Tensor):
                named.append((str(i), item))
            else:
                raise TypeError(
                    f"freeze/unfreeze take Modules, Parameters or (name, Parameter) pairs; item "
                    f"{i} is a {type(item).__name__}"
                )
    include, exclude = _as_list(include), _as_list(exclude)
    if include:
        selected = [(n, p) for n, p in named if matches(n, include)]
        if not selected:
            raise ValueError(
                f"no parameter matches {include}; the parameters are: "
                + ", ".join(n for n, _ in named[:40]) + (" ..." if len(named) > 40 else "")
            )
        named = selected
    if exclude:
        named = [(n, p) for n, p in named if not matches(n, exclude)]
    return named


def freeze(module_or_params, include: Patterns = None, exclude: Patterns = None) -> None:
    """Stop training parameters: ``requires_grad=False`` and their gradients dropped.

    Args:
        module_or_params: a Module, a Parameter, or an iterable of Modules, Parameters or
            ``(name, Parameter)`` pairs.
        include: if given, freeze only the parameters whose names match these patterns.
        exclude: leave the parameters whose names match these patterns as they are.

    Example:
        >>> from minigrad import nn
        >>> model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
        >>> freeze(model, include=["*.weight"])
        >>> [(n, p.requires_grad) for n, p in model.named_parameters()]
        [('0.weight', False), ('0.bias', True), ('1.weight', False), ('1.bias', True)]
    """
    for _, p in _select(module_or_params, include, exclude):
        p.requires_grad_(False)
        p.grad = None  # a stale gradient would still be applied by an optimizer


def unfreeze(module_or_params, include: Patterns = None, exclude: Patterns = None) -> None:
    """Train parameters again: ``requires_grad=True`` (same arguments as :func:`freeze`).

    The optimizer must hold these parameters: build it over all the model's parameters (a
    frozen one is simply skipped until it gets a gradient), or ``add_param_group`` them.

    Example:
        >>> from minigrad import nn
        >>> model = nn.Linear(2, 2)
        >>> freeze(model); unfreeze(model, include="bias")
        >>> [(n, p.requires_grad) for n, p in model.named_parameters()]
        [('weight', False), ('bias', True)]
    """
    for _, p in _select(module_or_params, include, exclude):
        if p.dtype.kind != "f":
            continue  # only floating tensors can require gradients
        p.requires_grad_(True)


def trainable_parameters(model: Module, named: bool = False) -> List[Any]:
    """The parameters that require gradients, for an optimizer: ``Adam(trainable_parameters(m))``.

    Args:
        model: the module.
        named: return ``(name, Parameter)`` pairs instead of Parameters.

    Example:
        >>> from minigrad import nn
        >>> model = nn.Linear(3, 2)
        >>> freeze(model, include="weight")
        >>> [tuple(p.shape) for p in trainable_parameters(model)]
        [(2,)]
    """
    pairs = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return pairs if named else [p for _, p in pairs]


def count_parameters(model: Module) -> Tuple[int, int]:
    """``(total, trainable)`` numbers of parameter elements (a shared parameter counts once).

    Example:
        >>> from minigrad import nn
        >>> count_parameters(nn.Linear(3, 2))
        (8, 8)
    """
    total = trainable = 0
    for p in model.parameters():
        n = _numel(p)
        total += n
        trainable += n if p.requires_grad else 0
    return total, trainable


def _numel(p: Tensor) -> int:
    n = 1
    for s in p.shape:
        n *= int(s)
    return n


def summary(model: Module, max_depth: Optional[int] = None, print_fn=print) -> str:
    """A table of the model's modules with their total and trainable parameter counts.

    Each row counts the parameters of a module and its sub-modules. The last lines give the
    totals and the trainable share.

    Args:
        model: the module.
        max_depth: show modules nested at most this deep (the model itself is depth 0;
            None shows all).
        print_fn: called with the table (default ``print``; ``None`` prints nothing).

    Returns:
        The table as a string.

    Example:
        >>> from minigrad import nn
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> freeze(model[0])
        >>> _ = summary(model)
        Module   Type        Params  Trainable
        --------------------------------------
        (model)  Sequential      58         18
        0        Linear          40          0
        1        ReLU             0          0
        2        Linear          18         18
        --------------------------------------
        Total params: 58
        Trainable params: 18 (31.03%)
        Frozen params: 40
    """
    rows = []
    for name, module in model.named_modules():
        depth = 0 if name == "" else name.count(".") + 1
        if max_depth is not None and depth > max_depth:
            continue
        total, trainable = count_parameters(module)
        rows.append((name or "(model)", type(module).__name__, f"{total:,}", f"{trainable:,}"))
    header = ("Module", "Type", "Params", "Trainable")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]

    def fmt(row) -> str:
        return (f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}  "
                f"{row[3]:>{widths[3]}}")

    rule = "-" * (sum(widths) + 6)
    total, trainable = count_parameters(model)
    share = 100.0 * trainable / total if total else 0.0
    lines = [fmt(header), rule, *(fmt(r) for r in rows), rule,
             f"Total params: {total:,}",
             f"Trainable params: {trainable:,} ({share:.2f}%)",
             f"Frozen params: {total - trainable:,}"]
    text = "\n".join(lines)
    if print_fn is not None:
        print_fn(text)
    return text


def _resolve(model: Module, dotted: str) -> Tuple[Module, str]:
    """The parent module of a dotted attribute path and the last name."""
    parts = dotted.split(".")
    parent = model
    for i, part in enumerate(parts[:-1]):
        child = parent._modules.get(part)
        if child is None:
            raise AttributeError(
                f"{type(parent).__name__} at {'.'.join(parts[:i]) or '(model)'!r} has no "
                f"sub-module {part!r}; it has: {', '.join(parent._modules) or 'none'}"
            )
        parent = child
    return parent, parts[-1]


def replace_head(model: Module, attr_name: str, new_module: Module) -> Module:
    """Swap a sub-module (e.g. a classifier) for a new one, on the old one's device and dtype.

    Args:
        model: the model to change, in place.
        attr_name: the sub-module's dotted path (``"classifier"``, ``"head.2"``, ``"fc"``).
        new_module: the replacement. Its floating parameters are moved to the device and dtype
            of the old head's first parameter, if it had one.

    Returns:
        The old module.

    Raises:
        AttributeError: no sub-module at ``attr_name`` (the message lists those there are).

    Example:
        >>> from minigrad import nn
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 10))
        >>> old = replace_head(model, "2", nn.Linear(8, 3))
        >>> old.out_features, model[2].out_features
        (10, 3)
    """
    if not isinstance(new_module, Module):
        raise TypeError(f"the new head must be a Module, got {type(new_module).__name__}")
    parent, name = _resolve(model, attr_name)
    old = parent._modules.get(name)
    if old is None:
        raise AttributeError(
            f"{type(parent).__name__} has no sub-module {name!r} to replace; it has: "
            f"{', '.join(parent._modules) or 'none'}"
        )
    ref = next(iter(old.parameters()), None)
    if ref is not None:
        new_module.to(ref.device)
        if ref.dtype.kind == "f":
            new_module.to(ref.dtype)
    parent._modules[name] = new_module  # keeps the registration order of the old head
    return old

