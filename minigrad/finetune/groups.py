"""Optimizer parameter groups with layer-wise learning-rate decay.

Fine-tuning a pretrained network usually changes its top layers most and its bottom layers
(embeddings, first blocks) least. Layer-wise decay gives each layer its own learning rate::

    lr(depth d) = base_lr * decay ** (L - 1 - d),      d = 0 (input side) ... L - 1 (head)

How depth is determined: ``layers`` is an ordered list from the input to the head. Each entry
is a pattern, or a list of patterns, over dotted parameter names (see
:func:`minigrad.finetune.freeze.matches`: a name prefix at a dot such as
``"encoder.layer.3"``, or a glob such as ``"encoder.layer.3.*"``). A parameter belongs to the
first entry that matches it, scanning from the input side; its entry's index is its depth.
Without ``layers``, the model's direct children that hold parameters are the layers, in
registration order (the order of ``__init__``, which for most models is input to output).

Example:
    >>> from minigrad import nn, optim
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 8), nn.Linear(8, 2))
    >>> groups = layerwise_lr_groups(model, base_lr=1e-3, decay=0.5)
    >>> [(g["name"], g["lr"]) for g in groups]
    [('0', 0.00025), ('1', 0.0005), ('2', 0.001)]
    >>> opt = optim.AdamW(groups)
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Union

from minigrad.finetune.freeze import matches
from minigrad.nn.module import Module

__all__ = ["layerwise_lr_groups"]

LayerSpec = Union[str, Sequence[str]]


def _label(entry: LayerSpec) -> str:
    return entry if isinstance(entry, str) else "+".join(entry)


def layerwise_lr_groups(
    model: Module,
    base_lr: float,
    decay: float,
    layers: Optional[Sequence[LayerSpec]] = None,
    weight_decay: Optional[float] = None,
    no_decay: Optional[Sequence[str]] = None,
    trainable_only: bool = True,
) -> List[Dict[str, Any]]:
    """Param groups whose learning rates decay by ``decay`` per layer from the head down.

    Args:
        model: the model.
        base_lr: the learning rate of the last entry of ``layers`` (the head).
        decay: the factor per layer towards the input (e.g. 0.8; 1.0 gives one rate).
        layers: the layers, ordered from the input to the head; each a pattern or a list of
            patterns over parameter names (see the module doc). Default: the model's direct
            children that have parameters, in order.
        weight_decay: if given, every group gets this ``"weight_decay"``, except that the
            parameters matching ``no_decay`` go into a twin group with ``weight_decay=0``.
        no_decay: patterns of parameters without weight decay (e.g. ``["*.bias",
            "*LayerNorm.weight"]``); used only with ``weight_decay``.
        trainable_only: leave out frozen parameters (``requires_grad=False``). Pass False to
            keep them in their groups, e.g. for :class:`GradualUnfreezing`, which unfreezes
            them later (an optimizer skips a parameter that has no gradient).

    Returns:
        A list of dicts for an optimizer: ``"params"`` as ``(name, Parameter)`` pairs (the
        optimizer records ``"param_names"``), ``"lr"``, ``"name"`` (the layer) and
        ``"weight_decay"`` when asked. Empty groups are left out.

    Raises:
        ValueError: some parameters match no layer (their names are listed; add a pattern,
            or ``"*"`` as the last entry to put the rest with the head).

    Example:
        >>> from minigrad import nn
        >>> from minigrad.models import BertConfig, BertForSequenceClassification
        >>> cfg = BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=2,
        ...                  num_attention_heads=2, intermediate_size=16)
        >>> model = BertForSequenceClassification(cfg, num_labels=2)
        >>> layers = ["bert.embeddings", "bert.encoder.layer.0", "bert.encoder.layer.1", "*"]
        >>> groups = layerwise_lr_groups(model, 1e-3, 0.5, layers, weight_decay=0.01,
        ...                              no_decay=["*.bias", "*LayerNorm.weight"])
        >>> [(g["name"], g["lr"], g["weight_decay"]) for g in groups][:2]
        [('bert.embeddings', 0.000125, 0.01), ('bert.embeddings', 0.000125, 0.0)]
    """
    if layers is None:
        # children without parameters (activations, dropout) are not layers of their own
        layers = [name for name, m in model.named_children() if next(m.parameters(), None)
                  is not None]
    layers = list(layers)
    if not layers:
        raise ValueError("layerwise_lr_groups: no layers (the model has no children)")
    n_layers = len(layers)
    members: List[List[tuple]] = [[] for _ in layers]
    unmatched = []
    for name, p in model.named_parameters():
        if trainable_only and not p.requires_grad:
            continue
        for depth, entry in enumerate(layers):
            if matches(name, entry):
                members[depth].append((name, p))
                break
        else:
            unmatched.append(name)
    if unmatched:
        shown = ", ".join(unmatched[:20]) + (" ..." if len(unmatched) > 20 else "")
        raise ValueError(
            f"layerwise_lr_groups: {len(unmatched)} parameter(s) match no layer: {shown}; add "
            "patterns for them to `layers` (\"*\" as the last entry puts the rest with the head)"
        )

    groups: List[Dict[str, Any]] = []
    for depth, (entry, named) in enumerate(zip(layers, members)):
        lr = base_lr * decay ** (n_layers - 1 - depth)
        if weight_decay is None:
            parts = [(named, None)]
        else:
            decayed = [(n, p) for n, p in named if not matches(n, no_decay)]
            plain = [(n, p) for n, p in named if matches(n, no_decay)]
            parts = [(decayed, weight_decay), (plain, 0.0)]
        for params, wd in parts:
            if not params:
                continue
            group: Dict[str, Any] = {"params": params, "lr": lr, "name": _label(entry)}
            if wd is not None:
                group["weight_decay"] = wd
            groups.append(group)
    return groups
