"""LoRA: low-rank adapters on frozen ``Linear`` layers (Hu et al., 2021).

A wrapped layer keeps its pretrained weight ``W`` (out, in) and bias frozen and learns a
low-rank update ``B A`` instead, with ``A`` (r, in) and ``B`` (out, r), r << in, out::

    y = x W^T + b + (alpha / r) * dropout(x) A^T B^T

``A`` starts like a ``Linear`` weight (kaiming-uniform, as PEFT does) and ``B`` at zero, so a
freshly wrapped model computes exactly what it computed before. Only ``r * (in + out)``
numbers per layer train, and only they need saving: :func:`lora_state_dict` /
:func:`save_lora` keep the adapters alone, to be loaded onto a fresh copy of the base model.
:func:`merge_lora` folds ``(alpha / r) B A`` into ``W`` for inference at the base model's
cost; :func:`unmerge_lora` takes it out again.

The wrapped layer keeps the base layer's parameter names (``weight``, ``bias``) and adds
``lora_A`` and ``lora_B``, so the model's state dict still loads the base model's weights
(``load_state_dict(..., strict=False)``) and ``"...query.weight"`` stays ``"...query.weight"``.

Example:
    >>> import minigrad as mg
    >>> from minigrad import nn
    >>> from minigrad.finetune import apply_lora, count_parameters
    >>> model = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 2))
    >>> x = mg.randn(4, 16)
    >>> before = model(x)
    >>> apply_lora(model, targets=["0"], r=2, trainable=["2"])
    ['0']
    >>> bool((model(x) == before).all())        # B = 0: unchanged at first
    True
    >>> count_parameters(model)                  # 16*16+16 + 2*(16+16) + 16*2+2
    (370, 98)
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Pattern, Sequence, Union

from minigrad import nn
from minigrad.autograd import no_grad
from minigrad.finetune.freeze import freeze, matches, unfreeze
from minigrad.io.safetensors import read_metadata
from minigrad.io.serialization import load, save
from minigrad.nn import functional as F
from minigrad.nn import init
from minigrad.nn.module import Module, Parameter
from minigrad.tensor import Tensor, empty, zeros

__all__ = [
    "LoRALinear",
    "apply_lora",
    "load_lora",
    "load_lora_state_dict",
    "lora_layers",
    "lora_state_dict",
    "merge_lora",
    "remove_lora",
    "save_lora",
    "unmerge_lora",
]

Target = Union[str, Pattern[str]]
LORA_KEYS = ("lora_A", "lora_B")
METADATA_KEY = "minigrad.lora"


class LoRALinear(nn.Linear):
    """A ``Linear`` with a frozen base and a trainable low-rank update.

    ``y = x W^T + b + (alpha / r) * dropout(x) A^T B^T``

    Args:
        base: the ``Linear`` to adapt. Its ``weight`` and ``bias`` Parameters are taken over
            (the same objects) and frozen.
        r: the rank of the update.
        alpha: the scale numerator: the update is multiplied by ``alpha / r``.
        dropout: dropout on the input of the low-rank branch (training only).

    Attributes:
        weight, bias: the base layer's (frozen) parameters.
        lora_A: ``(r, in_features)``, U(-k, k) with k = 1 / sqrt(in_features), trainable.
        lora_B: ``(out_features, r)``, zeros, trainable.
        scaling: ``alpha / r``.
        merged: whether ``scaling * B A`` is currently added into ``weight``.

    Shape:
        input ``(*, in_features)``, output ``(*, out_features)``.

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> layer = LoRALinear(nn.Linear(8, 4), r=2, alpha=4)
        >>> layer
        LoRALinear(in_features=8, out_features=4, bias=True, r=2, alpha=4, dropout=0.0)
        >>> [(n, p.requires_grad) for n, p in layer.named_parameters()]
        [('weight', False), ('bias', False), ('lora_A', True), ('lora_B', True)]
    """

    def __init__(self, base: nn.Linear, r: int = 8, alpha: float = 16, dropout: float = 0.0):
        Module.__init__(self)  # NOTE: not Linear.__init__: the parameters come from `base`
        if not isinstance(base, nn.Linear) or isinstance(base, LoRALinear):
            raise TypeError(f"LoRALinear wraps an nn.Linear, got {type(base).__name__}")
        if int(r) != r or r <= 0:
            raise ValueError(f"LoRA rank r must be a positive integer, got {r!r}")
        self.in_features = base.in_features
        self.out_features = base.out_features
        self.r = int(r)
        self.alpha = alpha
        self.scaling = alpha / self.r
        self.merged = False
        self.weight = base.weight
        if base.bias is not None:
            self.bias = base.bias
        else:
            self.register_parameter("bias", None)
        freeze([self.weight] + ([self.bias] if self.bias is not None else []))
        w = base.weight
        self.lora_A = Parameter(empty((self.r, self.in_features), dtype=w.dtype, device=w.device))
        self.lora_B = Parameter(zeros((self.out_features, self.r), dtype=w.dtype, device=w.device))
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.dropout_p = dropout
        self.reset_lora_parameters()

    def reset_lora_parameters(self) -> None:
        """A kaiming-uniform (as PEFT, and as a Linear weight), B zeros: a zero update."""
        init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        init.zeros_(self.lora_B)

    def reset_parameters(self) -> None:  # the base weights are pretrained: never re-drawn
        self.reset_lora_parameters()

    def delta_weight(self) -> Tensor:
        """The update ``(alpha / r) B A``, shaped like ``weight``."""
        return (self.lora_B @ self.lora_A) * self.scaling

    def forward(self, input: Tensor) -> Tensor:
        out = F.linear(input, self.weight, self.bias)
        if self.merged:
            return out  # NOTE: merged weights already hold the update; A and B get no gradient
        # (*, in) -> (*, r) -> (*, out): two thin products, never the (out, in) update
        low = F.linear(F.linear(self.lora_dropout(input), self.lora_A), self.lora_B)
        return out + low * self.scaling

    def merge(self) -> None:
        """Add ``(alpha / r) B A`` into ``weight`` (in place); forward then costs a Linear."""
        if not self.merged:
            with no_grad():
                self.weight.data += self.delta_weight().data.astype(self.weight.dtype)
            self.merged = True

    def unmerge(self) -> None:
        """Subtract the update merged by :meth:`merge` (equal up to float rounding)."""
        if self.merged:
            with no_grad():
                self.weight.data -= self.delta_weight().data.astype(self.weight.dtype)
            self.merged = False

    def to_linear(self) -> nn.Linear:
        """A plain ``Linear`` holding the merged weights (new Parameters; for export)."""
        with no_grad():
            w = self.weight if self.merged else self.weight + self.delta_weight()
            bias = None if self.bias is None else Parameter(self.bias.detach().clone())
            return _plain_linear(Parameter(w.detach().clone()), bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, r={self.r}, alpha={self.alpha}, "
                f"dropout={self.dropout_p}")

    def __repr__(self) -> str:  # the dropout child is an implementation detail
        return f"LoRALinear({self.extra_repr()})"


# ---------------------------------------------------------------------------- model surgery


def _matches_target(name: str, targets: Sequence[Target]) -> bool:
    for t in targets:
        if isinstance(t, re.Pattern):
            if t.fullmatch(name):
                return True
        elif t.startswith("re:"):
            if re.fullmatch(t[3:], name):
                return True
        elif name == t or name.endswith("." + t) or matches(name, t):
            return True
    return False


def _set_submodule(model: Module, name: str, module: Module) -> None:
    parent = model
    *path, last = name.split(".")
    for part in path:
        parent = parent._modules[part]
    parent._modules[last] = module  # the same slot: the module order is kept


def _get_submodule(model: Module, name: str) -> Optional[Module]:
    m = model
    for part in name.split("."):
        m = m._modules.get(part) if isinstance(m, Module) else None
        if m is None:
            return None
    return m


def lora_layers(model: Module) -> "OrderedDict[str, LoRALinear]":
    """The model's LoRA layers by dotted name."""
    return OrderedDict((n, m) for n, m in model.named_modules() if isinstance(m, LoRALinear))


def apply_lora(
    model: Module,
    targets: Sequence[Target],
    r: int = 8,
    alpha: float = 16,
    dropout: float = 0.0,
    freeze_rest: bool = True,
    trainable: Optional[Sequence[str]] = None,
) -> List[str]:
    """Wrap the ``Linear`` layers named by ``targets`` in :class:`LoRALinear`, in place.

    Args:
        model: the model.
        targets: which ``Linear`` layers; each is
            - a name: the full dotted name, or its last part(s) (``"query"`` matches
              ``"encoder.layer.0.attention.self.query"``, as PEFT's ``target_modules``);
            - a glob over the full name (``"encoder.layer.*.attention.self.[qv]*"``);
            - a regular expression matching the full name: ``re.compile(...)`` or a string
              starting with ``"re:"``.
        r, alpha, dropout: as for :class:`LoRALinear`.
        freeze_rest: freeze every other parameter of the model (PEFT's default), so only the
            adapters train.
        trainable: with ``freeze_rest``, parameters to keep trainable anyway (patterns as for
            :func:`minigrad.finetune.freeze`), e.g. a new head: ``["classifier"]``.

    Returns:
        The dotted names of the wrapped layers.

    Raises:
        ValueError: no ``Linear`` layer matched (the message lists those there are).

    Example:
        >>> import re
        >>> from minigrad import nn
        >>> model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 2))
        >>> apply_lora(model, targets=[re.compile(r"[01]")], r=2)
        ['0', '1']
    """
    if isinstance(targets, (str, re.Pattern)):
        targets = [targets]
    targets = list(targets)
    found = [(n, m) for n, m in model.named_modules()
             if isinstance(m, nn.Linear) and not isinstance(m, LoRALinear) and n]
    chosen = [n for n, _ in found if _matches_target(n, targets)]
    if not chosen:
        available = ", ".join(n for n, _ in found) or "none"
        raise ValueError(f"apply_lora: no Linear layer matches {targets}; the Linear layers "
                         f"are: {available}")
    if freeze_rest:
        freeze(model)
    for name in chosen:
        _set_submodule(model, name, LoRALinear(_get_submodule(model, name), r, alpha, dropout))
    if freeze_rest and trainable:
        unfreeze(model, include=trainable)
    return chosen


def merge_lora(model: Module, unwrap: bool = False) -> List[str]:
    """Fold every LoRA update into its base weight; returns the merged layers' names.

    Args:
        model: the model.
        unwrap: also replace each ``LoRALinear`` by a plain ``Linear`` with the merged weights
            (to export a model without adapters; this cannot be undone).

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> model = nn.Sequential(nn.Linear(4, 4))
        >>> _ = apply_lora(model, ["0"], r=2)
        >>> merge_lora(model, unwrap=True), type(model[0]).__name__
        (['0'], 'Linear')
    """
    names = []
    for name, layer in lora_layers(model).items():
        if unwrap:
            _set_submodule(model, name, layer.to_linear())
        else:
            layer.merge()
        names.append(name)
    return names


def unmerge_lora(model: Module) -> List[str]:
    """Take every merged LoRA update out of its base weight again; returns the names."""
    names = []
    for name, layer in lora_layers(model).items():
        if layer.merged:
            layer.unmerge()
            names.append(name)
    return names


def remove_lora(model: Module) -> List[str]:
    """Put the original ``Linear`` layers back (the adapters are dropped, weights unmerged)."""
    names = []
    for name, layer in lora_layers(model).items():
        layer.unmerge()
        _set_submodule(model, name, _plain_linear(layer.weight, layer.bias))
        names.append(name)
    return names


def _plain_linear(weight: Parameter, bias: Optional[Parameter]) -> nn.Linear:
    """A ``Linear`` around given Parameters (no fresh init: the random stream is untouched)."""
    lin = nn.Linear.__new__(nn.Linear)
    Module.__init__(lin)
    lin.in_features, lin.out_features = int(weight.shape[1]), int(weight.shape[0])
    lin.weight = weight
    if bias is not None:
        lin.bias = bias
    else:
        lin.register_parameter("bias", None)
    return lin


# ---------------------------------------------------------------------------- adapters alone


def lora_state_dict(model: Module) -> "OrderedDict[str, Tensor]":
    """The adapters alone: ``{"<layer>.lora_A": ..., "<layer>.lora_B": ...}`` (detached).

    Example:
        >>> from minigrad import nn
        >>> model = nn.Sequential(nn.Linear(4, 4))
        >>> _ = apply_lora(model, ["0"], r=2)
        >>> list(lora_state_dict(model))
        ['0.lora_A', '0.lora_B']
    """
    out: "OrderedDict[str, Tensor]" = OrderedDict()
    for name, layer in lora_layers(model).items():
        out[f"{name}.lora_A"] = layer.lora_A.detach()
        out[f"{name}.lora_B"] = layer.lora_B.detach()
    return out


def _lora_config(model: Module) -> Dict[str, Dict[str, Any]]:
    return {name: {"r": m.r, "alpha": m.alpha, "dropout": m.dropout_p}
            for name, m in lora_layers(model).items()}


def load_lora_state_dict(model: Module, state_dict: Dict[str, Any], alpha: float = 16,
                         dropout: float = 0.0, config: Optional[Dict[str, Dict]] = None,
                         strict: bool = True) -> List[str]:
    """Load adapters onto a model, wrapping its layers first where they are plain ``Linear``.

    A base model loaded fresh from its pretrained weights plus the adapters from
    :func:`lora_state_dict` gives back the fine-tuned model.

    Args:
        model: the model (with or without LoRA applied).
        state_dict: ``{"<layer>.lora_A": ..., "<layer>.lora_B": ...}``.
        alpha, dropout: for layers this call wraps (``r`` comes from the shapes), unless
            ``config`` (``{layer: {"r", "alpha", "dropout"}}``, as :func:`save_lora` stores)
            names them.
        strict: raise if the model has LoRA layers that ``state_dict`` lacks.

    Returns:
        The names of the layers loaded.

    Raises:
        KeyError: a key is not ``<layer>.lora_A/B`` or its layer is missing or not Linear.
        ValueError: a shape does not fit the layer; with ``strict``, adapters are missing.

    Example:
        >>> import minigrad as mg
        >>> from minigrad import nn
        >>> tuned = nn.Sequential(nn.Linear(4, 4))
        >>> _ = apply_lora(tuned, ["0"], r=2)
        >>> fresh = nn.Sequential(nn.Linear(4, 4))
        >>> fresh.load_state_dict(tuned.state_dict(), strict=False)  # the same base weights
        _IncompatibleKeys(missing_keys=[], unexpected_keys=['0.lora_A', '0.lora_B'])
        >>> load_lora_state_dict(fresh, lora_state_dict(tuned))
        ['0']
    """
    layers: "OrderedDict[str, Dict[str, Any]]" = OrderedDict()
    for key, value in state_dict.items():
        layer, _, kind = key.rpartition(".")
        if kind not in LORA_KEYS:
            raise KeyError(f"{key!r} is not a LoRA adapter key (<layer>.lora_A or .lora_B)")
        layers.setdefault(layer, {})[kind] = value
    for layer, parts in layers.items():
        if set(parts) != set(LORA_KEYS):
            raise KeyError(f"adapters of {layer!r} are incomplete: have {sorted(parts)}")
        module = _get_submodule(model, layer) if layer else None
        if not isinstance(module, nn.Linear):
            linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
            raise KeyError(f"no Linear layer {layer!r} in the model for its adapters; the Linear "
                           f"layers are: {', '.join(linears) or 'none'}")
        if not isinstance(module, LoRALinear):
            cfg = (config or {}).get(layer, {})
            r = int(_shape(parts["lora_A"])[0])
            module = LoRALinear(module, r=cfg.get("r", r), alpha=cfg.get("alpha", alpha),
                                dropout=cfg.get("dropout", dropout))
            _set_submodule(model, layer, module)
        for kind in LORA_KEYS:
            target = getattr(module, kind)
            value = parts[kind]
            if _shape(value) != tuple(target.shape):
                raise ValueError(f"{layer}.{kind}: shape {_shape(value)} from the adapters, "
                                 f"{tuple(target.shape)} in the model (another rank r?)")
    if strict:
        missing = [n for n in lora_layers(model) if n not in layers]
        if missing:
            raise ValueError(f"the adapters lack LoRA layers of the model: {', '.join(missing)}")
    # all checks passed: copy (load_state_dict moves values to each parameter's device/dtype)
    for layer in layers:
        module = _get_submodule(model, layer)
        was_merged = module.merged
        module.unmerge()
        module.load_state_dict(layers[layer], strict=False)
        if was_merged:
            module.merge()
    return list(layers)


def _shape(value) -> tuple:
    return tuple(int(s) for s in value.shape)


def save_lora(model: Module, path: Union[str, "os.PathLike[str]"]) -> None:
    """Write the adapters alone (safetensors, atomic) with each layer's r/alpha/dropout.

    Example:
        >>> import os, tempfile
        >>> from minigrad import nn
        >>> model = nn.Sequential(nn.Linear(4, 4))
        >>> _ = apply_lora(model, ["0"], r=2, alpha=8)
        >>> path = os.path.join(tempfile.mkdtemp(), "adapters.safetensors")
        >>> save_lora(model, path)
        >>> fresh = nn.Sequential(nn.Linear(4, 4))
        >>> load_lora(fresh, path)
        ['0']
        >>> fresh[0].scaling
        4.0
    """
    sd = lora_state_dict(model)
    if not sd:
        raise ValueError("save_lora: the model has no LoRA layers (apply_lora first)")
    save(dict(sd), path, metadata={METADATA_KEY: json.dumps({"layers": _lora_config(model)})})


def load_lora(model: Module, path: Union[str, "os.PathLike[str]"], strict: bool = True,
              device=None) -> List[str]:
    """Load adapters written by :func:`save_lora` onto ``model`` (see
    :func:`load_lora_state_dict`); layers are wrapped with their saved r/alpha/dropout."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"LoRA adapter file not found: {os.fspath(path)!r}")
    metadata = read_metadata(path) or {}
    if METADATA_KEY not in metadata:
        raise ValueError(f"{os.fspath(path)!r} is not a minigrad LoRA adapter file (no "
                         f"{METADATA_KEY!r} metadata)")
    config = json.loads(metadata[METADATA_KEY])["layers"]
    return load_lora_state_dict(model, load(path, device=device), config=config, strict=strict)
