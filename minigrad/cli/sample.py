"""``minigrad sample``: print text sampled from a ``minigrad train-lm`` checkpoint.

The model is rebuilt from the checkpoint (`minigrad.models.charlm_train.load_lm`) and continues
``--start`` by ``--chars`` characters, with ``--temperature``, ``--top-k`` and ``--seed``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from minigrad import backend
from minigrad.cli.report import error
from minigrad.models.charlm_train import CharLMError, default_start, load_lm, sample_text

NAME = "sample"
HELP = "print text sampled from a train-lm checkpoint"
DESCRIPTION = ("Rebuild a character-level language model from a train-lm checkpoint and print "
               "text sampled from it.")


def add_arguments(s: argparse.ArgumentParser) -> None:
    """The options of ``minigrad sample``."""
    s.add_argument("--checkpoint", required=True, metavar="PATH",
                   help="a checkpoint file, or a train-lm --out folder (its latest checkpoint)")
    s.add_argument("--start", default=None, metavar="TEXT",
                   help="the prompt (default: a newline, or the vocabulary's first character)")
    s.add_argument("--chars", type=int, default=500, metavar="N",
                   help="characters to sample (default 500)")
    s.add_argument("--temperature", type=float, default=1.0, metavar="X",
                   help="< 1: more conservative, > 1: more random (default 1.0)")
    s.add_argument("--top-k", type=int, default=None, metavar="K",
                   help="sample among the K most likely characters only")
    s.add_argument("--seed", type=int, default=1337, metavar="N",
                   help="random seed (default 1337)")
    s.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")


def run(args: argparse.Namespace) -> int:
    """``minigrad sample``: print text sampled from a train-lm checkpoint."""
    if args.chars < 0:
        return error(NAME, f"--chars must be >= 0, got {args.chars}", 2)
    if not args.temperature > 0:
        return error(NAME, f"--temperature must be > 0, got {args.temperature}", 2)
    if args.top_k is not None and args.top_k < 1:
        return error(NAME, f"--top-k must be a positive integer, got {args.top_k}", 2)
    try:
        device = backend.get_device(args.device)
        backend.generator(device)
    except (RuntimeError, ValueError) as exc:
        return error(NAME, exc, 2)
    try:
        model, tokenizer, _ = load_lm(Path(args.checkpoint), device)
    except CharLMError as exc:
        return error(NAME, exc, 1)
    start = default_start(tokenizer) if args.start is None else args.start
    if not start:
        return error(NAME, "--start must not be empty", 2)
    try:
        tokenizer.encode(start)
    except ValueError as exc:
        known = f"; the model knows only: {''.join(tokenizer.itos)!r}"
        message = str(exc).replace("; fit the tokenizer on a text that has it", known)
        return error(NAME, f"--start: {message}", 2)
    backend.manual_seed(args.seed)
    text = sample_text(model, tokenizer, args.chars, start, args.temperature, args.top_k,
                       device)
    print(text if args.start is not None else text[len(start):])
    return 0
