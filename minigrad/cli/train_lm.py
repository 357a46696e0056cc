"""``minigrad train-lm``: train a character-level language model on a text file.

The run follows nanoGPT's ``train.py`` with its tiny-Shakespeare character config
(`minigrad.models.charlm_train`): a 90/10 train/val split, random blocks, AdamW with warm-up
and cosine decay, gradient clipping, train/val loss estimates every ``--eval-interval`` steps,
checkpoints, and a sample at the end. ``--resume`` continues the latest checkpoint in ``--out``
and reproduces the uninterrupted run's losses (bitwise on the CPU).

nanoGPT's small CPU configuration (val loss about 1.88)::

    minigrad train-lm --text tinyshakespeare/input.txt --model transformer --n-layer 4 \\
        --n-head 4 --n-embd 128 --block-size 64 --batch-size 12 --iters 2000 --dropout 0

``--out`` (default ``./minigrad-lm``) receives ``ckpt-NNNNNN.safetensors`` checkpoints,
``log.jsonl`` (one JSON object per training step and per evaluation) and ``summary.json``.
"""

from __future__ import annotations

import argparse
from typing import Any

from minigrad import backend
from minigrad.cli.report import error
from minigrad.models.charlm import describe
from minigrad.models.charlm_train import (
    DEFAULTS,
    CharLMError,
    CharLMRun,
    OptionsError,
    format_seconds,
    resolve_options,
    sample_text,
)

NAME = "train-lm"
HELP = "train a character-level language model (LSTM, GRU or transformer) on a text file"
DESCRIPTION = (
    "Train a character-level language model on a text file, as nanoGPT's train.py "
    "does with its Shakespeare-char config: 90/10 train/val split, random blocks, AdamW, "
    "warm-up and cosine decay, gradient clipping, periodic train/val loss estimates, "
    "checkpoints (--resume continues the latest one exactly), and a sample at the end."
)


def _option(group: Any, flag: str, kind: type | None = None, help: str = "", **kw: Any) -> None:
    """An option whose help ends with its default. The parser's default stays None, so that
    on --resume an option given on the command line can be told apart from one left out."""
    name = flag[2:].replace("-", "_")
    if DEFAULTS.get(name) is not None and "default" not in help:
        help += f" (default {DEFAULTS[name]})"
    if kind is not None:
        kw.update(type=kind, metavar={int: "N", float: "X"}.get(kind, "VALUE"))
    group.add_argument(flag, help=help, **kw)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``minigrad train-lm``."""
    g = p.add_argument_group("data and model")
    _option(g, "--text", metavar="FILE",
            help="the text file to train on (required unless --resume)")
    _option(g, "--encoding", metavar="CODEC",
            help="the text file's encoding, e.g. latin-1 or utf-16")
    _option(g, "--model", choices=["lstm", "gru", "transformer"],
            help="the model (required unless --resume)")
    _option(g, "--block-size", int, "context length in characters")
    _option(g, "--n-layer", int, "transformer: blocks")
    _option(g, "--n-head", int, "transformer: attention heads")
    _option(g, "--n-embd", int, "transformer: width")
    _option(g, "--hidden", int, "lstm/gru: hidden size")
    _option(g, "--layers", int, "lstm/gru: stacked recurrent layers")
    _option(g, "--dropout", float, "dropout probability")

    g = p.add_argument_group("optimisation")
    _option(g, "--batch-size", int, "blocks per step")
    _option(g, "--iters", int, "training steps")
    _option(g, "--lr", float, "peak learning rate")
    _option(g, "--min-lr", float, "learning rate at the end of the cosine decay (default lr / 10)")
    _option(g, "--warmup", int, "linear warm-up steps (default min(100, iters // 20))")
    _option(g, "--weight-decay", float, "AdamW weight decay of the weight matrices")
    _option(g, "--beta2", float, "AdamW beta2")
    _option(g, "--grad-clip", float, "clip the gradient norm to this; 0: off")
    _option(g, "--seed", int, "random seed")

    g = p.add_argument_group("evaluation, checkpoints and output")
    _option(g, "--eval-interval", int, "estimate the train and val losses every N steps")
    _option(g, "--eval-iters", int, "batches per loss estimate")
    _option(g, "--checkpoint-every", int,
            "write a checkpoint every N steps (default: --eval-interval); one is always "
            "written at the end")
    _option(g, "--keep-checkpoints", int, "keep only the latest N checkpoints; 0 keeps all")
    _option(g, "--stop-at", int, "stop after N steps with a checkpoint, without changing the "
                                 "schedule of --iters steps; continue later with --resume")
    _option(g, "--out", metavar="DIR", help="output folder")
    _option(g, "--resume", action="store_true",
            help="continue the latest checkpoint in --out (its options are reused)")
    _option(g, "--device", help="cpu, cuda or cuda:N")
    _option(g, "--sample-chars", int, "characters to sample at the end; 0: none")


def run(args: argparse.Namespace) -> int:
    """``minigrad train-lm``: train a char-level LM with evaluation, checkpoints and resume."""
    given = {k: v for k, v in vars(args).items() if k not in ("func", "command", "resume")}
    try:
        options, checkpoint = resolve_options(given, resume=args.resume)
    except OptionsError as exc:
        return error(NAME, exc, 2)
    except CharLMError as exc:
        return error(NAME, exc, 1)
    try:
        device = backend.get_device(options["device"])
        backend.generator(device)  # fails early, with what to install, if unusable
    except (RuntimeError, ValueError) as exc:
        return error(NAME, exc, 2)
    try:
        lm = CharLMRun(options, checkpoint, device)
    except CharLMError as exc:
        return error(NAME, exc, 1)

    o, count = options, lm.num_parameters
    count = f"{count / 1e6:.2f}M" if count >= 100_000 else f"{count:,}"
    print(f"minigrad train-lm: {describe(lm.model.config)}, {count} parameters, "
          f"vocabulary {lm.tokenizer.vocab_size}, {len(lm.train_data):,} train / "
          f"{len(lm.val_data):,} val characters, device {device}")
    print(f"batch {o['batch_size']} x block {o['block_size']}, {o['iters']} steps, AdamW lr "
          f"{o['lr']:g} -> {o['min_lr']:g} (warm-up {o['warmup']}, cosine), output {lm.out}")
    if checkpoint is not None:
        print(f"resuming from {checkpoint['path']} at step {lm.start_step}")

    result = lm.train()
    if "val_loss" not in result:
        print(f"stopped at step {result['step']} of {o['iters']} "
              f"({format_seconds(result['elapsed'])}); continue with: minigrad train-lm --out "
              f"{lm.out} --resume")
        return 0
    print(f"final val loss {result['val_loss']:.4f} (train {result['train_loss']:.4f}) after "
          f"{o['iters']} steps; wall time {format_seconds(result['elapsed'])} "
          f"({result['seconds_per_step']:.3f} s/step this run)")
    if o["sample_chars"] > 0:
        sample = sample_text(lm.model, lm.tokenizer, o["sample_chars"], device=device)
        print(f"--- sample ({o['sample_chars']} characters) ---")
        print(sample[1:])  # without the one-character prompt
    return 0
