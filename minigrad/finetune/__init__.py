"""Fine-tuning: checkpoints, freezing, heads, layer-wise learning rates and LoRA.

- :mod:`~minigrad.finetune.checkpoint`: ``save_checkpoint`` / ``load_checkpoint`` (model,
  optimizer, scheduler, counters and RNG state in one safetensors file; exact resume).
- :mod:`~minigrad.finetune.freeze`: ``freeze``, ``unfreeze``, ``trainable_parameters``,
  ``count_parameters``, ``summary``, ``replace_head``.
- :mod:`~minigrad.finetune.groups`: ``layerwise_lr_groups`` (layer-wise learning-rate decay).
- :mod:`~minigrad.finetune.callbacks`: ``GradualUnfreezing``.
- :mod:`~minigrad.finetune.lora`: ``LoRALinear``, ``apply_lora``, ``merge_lora``, adapters
  saved and loaded alone.
- :mod:`~minigrad.finetune.sms`: the experiments of ``minigrad finetune`` (LoRA on MiniLM vs an
  LSTM from scratch, on SMS spam); imported on its own, as it builds on `minigrad.models`.

Example:
    >>> from minigrad import nn
    >>> from minigrad.finetune import freeze, count_parameters
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2))
    >>> freeze(model[0])
    >>> count_parameters(model)
    (58, 18)
"""

from minigrad.finetune.callbacks import GradualUnfreezing
from minigrad.finetune.checkpoint import (
    CheckpointError,
    load_checkpoint,
    read_checkpoint_info,
    save_checkpoint,
)
from minigrad.finetune.freeze import (
    count_parameters,
    freeze,
    replace_head,
    summary,
    trainable_parameters,
    unfreeze,
)
from minigrad.finetune.groups import layerwise_lr_groups
from minigrad.finetune.lora import (
    LoRALinear,
    apply_lora,
    load_lora,
    load_lora_state_dict,
    lora_layers,
    lora_state_dict,
    merge_lora,
    remove_lora,
    save_lora,
    unmerge_lora,
)

__all__ = [
    "CheckpointError",
    "GradualUnfreezing",
    "LoRALinear",
    "apply_lora",
    "count_parameters",
    "freeze",
    "layerwise_lr_groups",
    "load_checkpoint",
    "load_lora",
    "load_lora_state_dict",
    "lora_layers",
    "lora_state_dict",
    "merge_lora",
    "read_checkpoint_info",
    "remove_lora",
    "replace_head",
    "save_checkpoint",
    "save_lora",
    "summary",
    "trainable_parameters",
    "unfreeze",
    "unmerge_lora",
]
