"""``minigrad generate``: continue a prompt with an LLM and print the text as it comes.

``--chat`` wraps the prompt in the model's chat template (as one user message, with
``--system``); without it the prompt is continued as plain text. Decoding options as
``minigrad chat``.
"""

from __future__ import annotations

import argparse

import numpy as np

from minigrad import backend
from minigrad.cli.chat import (
    _write, add_model_arguments, check_model_arguments, generate_options, open_model,
)
from minigrad.cli.report import error
from minigrad.models.chat import TextStreamer
from minigrad.tensor import Tensor

NAME = "generate"
HELP = "continue a prompt with an LLM (SmolLM2-135M-Instruct by default)"
DESCRIPTION = ("Continue --prompt with a Llama-family model from a GGUF file or a Hugging Face "
               "folder and print the new text as it is generated.")


def add_arguments(s: argparse.ArgumentParser) -> None:
    """The options of ``minigrad generate``."""
    s.add_argument("--prompt", required=True, metavar="TEXT", help="the text to continue")
    s.add_argument("--chat", action="store_true",
                   help="format the prompt as a user message with the chat template")
    s.add_argument("--system", default=None, metavar="TEXT",
                   help="the system prompt with --chat (default: the model's own)")
    add_model_arguments(s)


def run(args: argparse.Namespace) -> int:
    """``minigrad generate``: print the continuation of --prompt."""
    problem = check_model_arguments(args)
    if problem:
        return error(NAME, problem, 2)
    if not args.prompt:
        return error(NAME, "--prompt must not be empty", 2)
    backend.manual_seed(args.seed)
    model, status = open_model(args)
    if model is None:
        return status
    tok = model.tokenizer
    if args.chat:
        messages = ([] if args.system is None else [{"role": "system", "content": args.system}])
        ids = tok.apply_chat_template(messages + [{"role": "user", "content": args.prompt}],
                                      add_generation_prompt=True, tokenize=True)
    else:
        ids = tok.encode(args.prompt)
    try:
        model.generate(Tensor._make(np.array([ids])), streamer=TextStreamer(tok, _write),
                       **generate_options(args))
    except KeyboardInterrupt:
        print()
        return 130
    print()
    return 0
