"""LoRA fine-tuning of a causal LLM (SmolLM2 and the Llama family) on chat data.

The data is a JSON-lines file, one conversation a line: ``{"messages": [{"role": "user",
"content": ...}, {"role": "assistant", "content": ...}, ...]}`` (the last message is the
assistant's answer to learn) or ``{"prompt": ..., "response": ...}`` (one user turn). Each is
laid out with the model's chat template; the loss is on the answer's tokens only (and its
closing ``<|im_end|>``, so the model learns to stop), every prompt token labelled -100.

Training goes through `minigrad.train.fit` (gradient accumulation, a progress bar with the loss
and tokens/s, evaluation on the held-out split after each epoch). After each epoch the adapters
(`minigrad.finetune.save_lora`) and a checkpoint (optimizer state, epoch, random states) are
written, and `finetune_lm` with ``resume=True`` goes on from them exactly where the run
stopped. ``merge=True`` folds the adapters into the weights and writes a Hugging Face folder.

Example:
    >>> from minigrad.models.bpe import BPETokenizer, bytes_to_unicode
    >>> tok = BPETokenizer(["<|im_start|>", "<|im_end|>"] + list(bytes_to_unicode().values()),
    ...                    [], token_types=[3, 3] + [1] * 256)
    >>> ids, labels = encode_example(tok, {"prompt": "Hi", "response": "Yo"})
    >>> tok.decode([i for i, l in zip(ids, labels) if l != -100])
    'Yo<|im_end|>'
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any, Callable, Optional, Sequence, TextIO, Union

import numpy as np

from minigrad import backend, optim
from minigrad.autograd import no_grad
from minigrad.finetune.checkpoint import load_checkpoint, save_checkpoint
from minigrad.finetune.freeze import count_parameters
from minigrad.finetune.lora import apply_lora, load_lora, lora_layers, merge_lora, save_lora
from minigrad.models.llama import LlamaForCausalLM
from minigrad.nn import functional as F
from minigrad.nn.module import Module
from minigrad.tensor import Tensor
from minigrad.train import Callback, fit

__all__ = [
    "LMBatches", "LMFinetuneConfig", "TokensPerSecond", "answer", "causal_lm_loss",
    "encode_example", "finetune_lm", "read_jsonl", "split_examples",
]

PathLike = Union[str, "os.PathLike[str]"]
IGNORE = -100
ADAPTERS = "adapter_model.safetensors"
CHECKPOINT = "checkpoint.safetensors"


def read_jsonl(path: PathLike) -> list:
    """The examples of a JSON-lines file (blank lines skipped); a clear error names the line
    of a malformed one."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{os.fspath(path)}:{number}: not JSON ({exc.msg})") from None
            if not _is_example(row):
                raise ValueError(f"{os.fspath(path)}:{number}: expected {{\"messages\": [...]}} "
                                 "ending with an assistant message, or {\"prompt\", "
                                 "\"response\"}")
            rows.append(row)
    if not rows:
        raise ValueError(f"{os.fspath(path)} holds no examples")
    return rows


def _is_example(row: Any) -> bool:
    if not isinstance(row, dict):
        return False
    if "messages" in row:
        messages = row["messages"]
        return (isinstance(messages, list) and len(messages) >= 2
                and all(isinstance(m, dict) and isinstance(m.get("content"), str)
                        and m.get("role") in ("system", "user", "assistant") for m in messages)
                and messages[-1]["role"] == "assistant")
    return isinstance(row.get("prompt"), str) and isinstance(row.get("response"), str)


def _messages(row: dict) -> list:
    if "messages" in row:
        return row["messages"]
    return [{"role": "user", "content": row["prompt"]},
            {"role": "assistant", "content": row["response"]}]


def encode_example(tokenizer, row: dict, max_length: Optional[int] = None) -> tuple:
    """``(ids, labels)`` of one example: the chat-template tokens, labels -100 on the prompt
    (everything before the last assistant message's text), cut to ``max_length``."""
    messages = _messages(row)
    prompt = tokenizer.apply_chat_template(messages[:-1], add_generation_prompt=True,
                                           tokenize=True)
    full = tokenizer.apply_chat_template(messages, tokenize=True)
    if full[:len(prompt)] != prompt:  # a merge across the boundary: tokenize the parts alone
        full = prompt + tokenizer.encode(messages[-1]["content"] + "<|im_end|>\n",
                                         add_special_tokens=False)
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    answer_ids = full[len(prompt):]
    if end in answer_ids:  # the newline after <|im_end|> is template, not answer
        answer_ids = answer_ids[:answer_ids.index(end) + 1]
    ids = prompt + answer_ids
    labels = [IGNORE] * len(prompt) + answer_ids
    if max_length is not None:
        ids, labels = ids[:max_length], labels[:max_length]
    return ids, labels


def causal_lm_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean next-token cross-entropy: logits at t against ``labels[t + 1]``, -100 ignored."""
    # the targets shifted instead of the logits (the last position ignored): no copy of them
    targets = labels.xp.full(labels.shape, IGNORE, dtype=labels.data.dtype)
    targets[:, :-1] = labels.data[:, 1:]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                           Tensor._make(targets.reshape(-1)), ignore_index=IGNORE)


class LMBatches:
    """Batches ``(input_ids, labels)`` of encoded examples, right-padded (the padding is
    after every real token, so a causal model needs no mask; its labels are -100).

    Shuffled with a generator seeded by ``seed + epoch`` (`set_epoch`, which `fit` calls), so
    a resumed run sees the same batches as the uninterrupted one.
    """

    def __init__(self, examples: Sequence[tuple], batch_size: int, shuffle: bool = False,
                 seed: int = 0, pad_token_id: int = 0):
        self.examples = list(examples)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = seed
        self.pad_token_id = pad_token_id
        self.epoch = 0
        self.sampler = self  # fit tells the sampler the epoch

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch``'s shuffle for the next pass, as ``DistributedSampler.set_epoch``."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return -(-len(self.examples) // self.batch_size)

    def __iter__(self):
        order = np.arange(len(self.examples))
        if self.shuffle:
            order = np.random.default_rng(self.seed + self.epoch).permutation(order)
        for start in range(0, len(order), self.batch_size):
            rows = [self.examples[i] for i in order[start:start + self.batch_size]]
            width = max(len(ids) for ids, _ in rows)
            ids = np.full((len(rows), width), self.pad_token_id, np.int64)
            labels = np.full((len(rows), width), IGNORE, np.int64)
            for r, (row_ids, row_labels) in enumerate(rows):
                ids[r, :len(row_ids)] = row_ids
                labels[r, :len(row_labels)] = row_labels
            yield Tensor._make(ids), Tensor._make(labels)


class TokensPerSecond(Callback):
    """A `fit` metric (and callback) shown in the progress bar: the tokens (padding included)
    the model went through per second since the epoch began."""

    __name__ = "tok/s"

    def __init__(self):
        super().__init__()
        self.on_epoch_begin(0)

    def on_epoch_begin(self, epoch: int, logs: Optional[dict] = None) -> None:
        self.start, self.tokens = time.perf_counter(), 0

    def __call__(self, output: Tensor, target: Tensor) -> Tensor:
        self.tokens += int(np.prod(target.shape))
        rate = self.tokens / max(time.perf_counter() - self.start, 1e-9)
        return Tensor._make(np.full(target.shape[0], rate))


@dataclasses.dataclass
class LMFinetuneConfig:
    """The options of a LoRA fine-tuning run (``minigrad finetune-lm``'s flags)."""

    epochs: int = 3
    batch_size: int = 8
    gradient_accumulation_steps: int = 1
    lr: float = 1e-3
    weight_decay: float = 0.0
    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    targets: tuple = ("q_proj", "v_proj")
    eval_fraction: float = 0.1
    max_length: int = 256
    seed: int = 0


def answer(model: LlamaForCausalLM, question: str, max_new_tokens: int = 48) -> str:
    """The model's greedy answer to one user message (special tokens left out)."""
    tok = model.tokenizer
    ids = tok.apply_chat_template([{"role": "user", "content": question}],
                                  add_generation_prompt=True, tokenize=True)
    out = model.generate(Tensor._make(np.array([ids])), max_new_tokens=max_new_tokens)
    new = np.asarray(backend.to_device(out.data, backend.CPU))[0, len(ids):]
    return tok.decode(new.tolist(), skip_special_tokens=True).strip()


def split_examples(rows: list, eval_fraction: float, seed: int) -> tuple:
    """``(train rows, held-out rows)``: a seeded shuffle, the held-out part at least one row
    when ``eval_fraction > 0``."""
    order = np.random.default_rng(seed).permutation(len(rows))
    n_eval = int(round(len(rows) * eval_fraction))
    if eval_fraction > 0:
        n_eval = min(max(n_eval, 1), len(rows) - 1)
    held = [rows[i] for i in order[:n_eval]]
    return [rows[i] for i in order[n_eval:]], held


class _SaveEachEpoch(Callback):
    def __init__(self, out: str, model, config: LMFinetuneConfig):
        super().__init__()
        self.out, self.lm, self.config = out, model, config

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        save_lora(self.lm, os.path.join(self.out, ADAPTERS))
        save_checkpoint(os.path.join(self.out, CHECKPOINT), optimizer=self.optimizer,
                        epoch=epoch, extra={"config": dataclasses.asdict(self.config),
                                            "logs": {k: float(v) for k, v in
                                                     (logs or {}).items()}})


def finetune_lm(model: LlamaForCausalLM, rows: list, out: PathLike,
                config: LMFinetuneConfig = LMFinetuneConfig(), resume: bool = False,
                merge: bool = False, verbose: int = 1, file: Optional[TextIO] = None,
                on_start: Optional[Callable[[dict], None]] = None) -> dict:
    """Fine-tune ``model`` with LoRA on ``rows`` (see `read_jsonl`), writing to ``out``.

    Args:
        model: the base model, with its ``.tokenizer``; LoRA layers are added in place.
        rows: the examples.
        out: the run's folder: ``adapter_model.safetensors`` and ``checkpoint.safetensors``
            after each epoch, ``merged/`` (a Hugging Face folder) with ``merge``.
        config: the run's options.
        resume: go on from the folder's adapters and checkpoint (same data and options).
        merge: at the end, fold the adapters into the weights and save ``out/merged``.
        verbose: `fit`'s (0 silent, 1 progress bar, 2 a line per epoch).
        file: where the progress goes.
        on_start: called with the run's facts (parameter counts, split sizes, the held-out
            loss before training) before the first epoch.

    Returns:
        ``{"history": {...}, "eval_loss_before": float or None, "eval_loss_after": ...,
        "train_examples": n, "eval_examples": n, "epoch_seconds": [...]}``.
    """
    out = os.fspath(out)
    os.makedirs(out, exist_ok=True)
    tok = model.tokenizer
    train_rows, held_rows = split_examples(rows, config.eval_fraction, config.seed)
    encode = lambda r: encode_example(tok, r, config.max_length)  # noqa: E731
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    train = LMBatches([encode(r) for r in train_rows], config.batch_size, shuffle=True,
                      seed=config.seed, pad_token_id=pad)
    held = LMBatches([encode(r) for r in held_rows], config.batch_size, pad_token_id=pad)
    net = _Hidden(model)
    if resume:
        load_lora(model, os.path.join(out, ADAPTERS))
        for p in model.parameters():
            p.requires_grad = False
        for layer in lora_layers(model).values():
            layer.lora_A.requires_grad = layer.lora_B.requires_grad = True
    else:
        apply_lora(model, list(config.targets), r=config.r, alpha=config.alpha,
                   dropout=config.dropout)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    initial_epoch, before = 0, None
    if resume:
        info = load_checkpoint(os.path.join(out, CHECKPOINT), optimizer=optimizer)
        initial_epoch = int(info["epoch"]) + 1
    elif held_rows:
        before = _eval_loss(model, held, net)
    total, trainable = count_parameters(model)
    if on_start is not None:
        on_start({"parameters": total, "trainable": trainable, "train_examples": len(train_rows),
                  "eval_examples": len(held_rows), "eval_loss_before": before,
                  "initial_epoch": initial_epoch})
    timer, speed = _EpochTimer(), TokensPerSecond()
    # the loss applies the head: while training, with the cross-entropy in blocks of rows
    history = fit(net, model.causal_lm_loss, optimizer, train, epochs=config.epochs,
                  val_loader=held if held_rows else None, metrics={"tok/s": speed},
                  callbacks=[timer, speed, _SaveEachEpoch(out, model, config)], verbose=verbose,
                  file=file, initial_epoch=initial_epoch,
                  gradient_accumulation_steps=config.gradient_accumulation_steps)
    after = _eval_loss(model, held, net) if held_rows else None
    model.eval()
    if merge:
        merge_lora(model, unwrap=True)
        model.save_pretrained(os.path.join(out, "merged"))
    return {"history": history.history, "eval_loss_before": before, "eval_loss_after": after,
            "train_examples": len(train_rows), "eval_examples": len(held_rows),
            "epoch_seconds": timer.seconds}


def _eval_loss(model, batches: LMBatches, net) -> float:
    """The held-out response loss (mean over the answer tokens of all batches)."""
    total = count = 0.0
    model.eval()
    with no_grad():
        for ids, labels in batches:
            n = float((labels.numpy()[:, 1:] != IGNORE).sum())
            total += model.causal_lm_loss(net(ids), labels).item() * n
            count += n
    return total / max(count, 1.0)


class _Hidden(Module):
    """The model as ``ids -> last hidden states``, the form `fit` and `evaluate` call; the
    loss (`LlamaForCausalLM.causal_lm_loss`) applies the head."""

    def __init__(self, lm: LlamaForCausalLM):
        super().__init__()
        self.lm = lm

    def forward(self, input_ids: Tensor) -> Tensor:
        return self.lm.model(input_ids)


class _EpochTimer(Callback):
    def __init__(self):
        super().__init__()
        self.seconds: list = []

    def on_epoch_begin(self, epoch: int, logs: Optional[dict] = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        self.seconds.append(time.perf_counter() - self._start)
