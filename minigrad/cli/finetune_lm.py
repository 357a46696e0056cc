"""``minigrad finetune-lm``: LoRA fine-tuning of an LLM (SmolLM2 by default) on chat data.

``--data FILE.jsonl`` holds ``{"messages": [...]}`` or ``{"prompt", "response"}`` lines; the
loss is on the answers only. After each epoch the adapters and a checkpoint go to ``--out``
(``--resume`` goes on from them); ``--merge`` also writes ``OUT/merged``, a Hugging Face folder
with the adapters folded in. The work is `minigrad.finetune.lm`; the example data set
``examples/finetune_lm/brambleton.jsonl`` teaches facts about a fictional garden robot.
"""

from __future__ import annotations

import argparse
import os

from minigrad import backend
from minigrad.cli.report import error
from minigrad.finetune.lm import (
    LMFinetuneConfig, answer, finetune_lm, read_jsonl, split_examples,
)
from minigrad.io.gguf import GGUFError
from minigrad.models.chat import load_causal_lm

NAME = "finetune-lm"
HELP = "LoRA fine-tuning of an LLM (SmolLM2-135M-Instruct by default) on chat data"
DESCRIPTION = ("Fine-tune a Llama-family model with LoRA adapters on a JSON-lines file of "
               "conversations; loss on the answers only, held-out evaluation, checkpoints "
               "after each epoch (--resume), adapters as safetensors, --merge exports a "
               "Hugging Face folder.")


def add_arguments(s: argparse.ArgumentParser) -> None:
    """The options of ``minigrad finetune-lm``."""
    d = LMFinetuneConfig()
    s.add_argument("--data", required=True, metavar="FILE.jsonl", help="the training data")
    s.add_argument("--model", default=None, metavar="PATH",
                   help="a .gguf file or a Hugging Face folder (default: SmolLM2-135M-Instruct)")
    s.add_argument("--out", default="finetune-lm-out", metavar="DIR",
                   help="where adapters, checkpoints and merged/ go (default finetune-lm-out)")
    s.add_argument("--epochs", type=int, default=d.epochs, metavar="N")
    s.add_argument("--batch-size", type=int, default=d.batch_size, metavar="N")
    s.add_argument("--grad-accum", type=int, default=d.gradient_accumulation_steps,
                   metavar="K", help="batches per optimizer step (default 1)")
    s.add_argument("--lr", type=float, default=d.lr, metavar="X",
                   help=f"AdamW learning rate (default {d.lr})")
    s.add_argument("--weight-decay", type=float, default=d.weight_decay, metavar="X")
    s.add_argument("--lora-r", type=int, default=d.r, metavar="R", help="LoRA rank (default 8)")
    s.add_argument("--lora-alpha", type=float, default=d.alpha, metavar="A",
                   help="LoRA alpha: the update is scaled by alpha / r (default 16)")
    s.add_argument("--lora-dropout", type=float, default=d.dropout, metavar="P")
    s.add_argument("--targets", default=",".join(d.targets), metavar="NAMES",
                   help="comma-separated Linear layers to adapt (default q_proj,v_proj)")
    s.add_argument("--eval-fraction", type=float, default=d.eval_fraction, metavar="F",
                   help="the held-out share of the examples (default 0.1)")
    s.add_argument("--max-length", type=int, default=d.max_length, metavar="N",
                   help="tokens per example at most (default 256)")
    s.add_argument("--seed", type=int, default=d.seed, metavar="N")
    s.add_argument("--resume", action="store_true", help="go on from --out's checkpoint")
    s.add_argument("--merge", action="store_true",
                   help="also write OUT/merged: the model with the adapters folded in")
    s.add_argument("--show", type=int, default=3, metavar="N",
                   help="print the answers to N held-out prompts before and after (default 3)")


def _config(args: argparse.Namespace) -> LMFinetuneConfig:
    targets = tuple(t.strip() for t in args.targets.split(",") if t.strip())
    return LMFinetuneConfig(
        epochs=args.epochs, batch_size=args.batch_size,
        gradient_accumulation_steps=args.grad_accum, lr=args.lr, weight_decay=args.weight_decay,
        r=args.lora_r, alpha=args.lora_alpha, dropout=args.lora_dropout, targets=targets,
        eval_fraction=args.eval_fraction, max_length=args.max_length, seed=args.seed)


def _problem(args: argparse.Namespace) -> str | None:
    for flag, value in (("--epochs", args.epochs), ("--batch-size", args.batch_size),
                        ("--grad-accum", args.grad_accum), ("--lora-r", args.lora_r),
                        ("--max-length", args.max_length)):
        if value < 1:
            return f"{flag} must be >= 1, got {value}"
    if not 0 <= args.eval_fraction < 1:
        return f"--eval-fraction must be in [0, 1), got {args.eval_fraction}"
    if not args.lr > 0:
        return f"--lr must be > 0, got {args.lr}"
    if not args.targets.strip(","):
        return "--targets must name at least one layer"
    return None


def _show(title: str, model, prompts: list) -> None:
    for prompt in prompts:
        print(f"{title} | {prompt}\n    -> {answer(model, prompt)}", flush=True)


def run(args: argparse.Namespace) -> int:
    """``minigrad finetune-lm``: train LoRA adapters and report the held-out loss."""
    problem = _problem(args)
    if problem:
        return error(NAME, problem, 2)
    if args.resume and not os.path.isfile(os.path.join(args.out, "checkpoint.safetensors")):
        return error(NAME, f"--resume: no checkpoint.safetensors in {args.out!r}", 1)
    try:
        rows = read_jsonl(args.data)
    except (OSError, ValueError) as exc:
        return error(NAME, exc, 1)
    backend.manual_seed(args.seed)
    try:
        model = load_causal_lm(args.model)
    except (FileNotFoundError, ValueError, GGUFError, NotImplementedError) as exc:
        return error(NAME, exc, 1)
    config = _config(args)
    held = split_examples(rows, config.eval_fraction, config.seed)[1]
    prompts = [_last_user(r) for r in held[:args.show]]
    if prompts and not args.resume:
        _show("before", model, prompts)

    def started(facts: dict) -> None:
        print(f"LoRA r={config.r} alpha={config.alpha} on {','.join(config.targets)}: "
              f"{facts['trainable']:,} of {facts['parameters']:,} parameters train; "
              f"{facts['train_examples']} training / {facts['eval_examples']} held-out examples",
              flush=True)
        if facts["eval_loss_before"] is not None:
            print(f"held-out response loss before: {facts['eval_loss_before']:.4f}", flush=True)

    try:
        result = finetune_lm(model, rows, args.out, config, resume=args.resume,
                             merge=args.merge, on_start=started)
    except (ValueError, RuntimeError) as exc:
        return error(NAME, exc, 1)
    if result["eval_loss_after"] is not None:
        line = f"held-out response loss after: {result['eval_loss_after']:.4f}"
        if result["eval_loss_before"]:
            drop = 1 - result["eval_loss_after"] / result["eval_loss_before"]
            line += f" ({drop:.0%} lower)"
        print(line)
    if result["epoch_seconds"]:
        print("seconds per epoch: " + ", ".join(f"{s:.1f}" for s in result["epoch_seconds"]))
    if prompts:
        _show("after", model, prompts)
    print(f"adapters: {os.path.join(args.out, 'adapter_model.safetensors')}"
          + (f"; merged model: {os.path.join(args.out, 'merged')}" if args.merge else ""))
    return 0


def _last_user(row: dict) -> str:
    if "messages" in row:
        return [m for m in row["messages"] if m["role"] == "user"][-1]["content"]
    return row["prompt"]
