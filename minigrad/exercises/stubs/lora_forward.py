"""Exercise lora_forward: a LoRA linear layer's forward, in minigrad ops.

Lesson: docs/course/10-finetuning-lora.md. minigrad's own answer: ``LoRALinear.forward`` in
minigrad/finetune/lora.py.

LoRA (Hu et al., 2021) freezes a pretrained weight ``W`` (out, in) and learns a low-rank
update ``B A`` beside it: ``A`` (r, in), ``B`` (out, r), scaled by ``alpha / r``:

    y = x W^T + bias + (alpha / r) * (x A^T) B^T

Compute it as two thin products, ``x -> (*, r) -> (*, out)``: never form the (out, in)
matrix ``B A``, which costs as much as ``W`` itself. Use minigrad ops on Tensors
(``@``, ``.T``, ``+``, ``*``) so that gradients reach ``A`` and ``B``; ``bias`` may be None.

Check your work with ``minigrad exercises check lora_forward``.
"""


def lora_linear(x, weight, bias, lora_A, lora_B, alpha):
    """``x`` (*, in) -> (*, out); r is ``lora_A.shape[0]``."""
    raise NotImplementedError("write lora_linear: the base Linear plus the scaled B A path")
