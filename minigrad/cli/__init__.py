"""The ``minigrad`` command (also ``python -m minigrad``): argparse subcommands, one module each.

A command module holds its options and its printing only; the work is library code
(`minigrad.keras`, `minigrad.models.charlm_train`, `minigrad.finetune.sms`). Each module names
``NAME``, ``HELP`` (one line for ``minigrad --help``), ``DESCRIPTION`` (for ``minigrad NAME
--help``), ``add_arguments(parser)`` and ``run(args)``, which returns the exit status: 0 done,
1 a problem to fix (a missing file, say), 2 bad arguments.

Example:
    >>> build_parser().parse_args(["demo", "--epochs", "1"]).epochs
    1
"""

from __future__ import annotations

import argparse
from typing import List, Optional

from minigrad.cli import (
    bench, chat, demo, exercises, finetune, finetune_lm, generate, info, launch, sample,
    train_lm,
)

__all__ = ["COMMANDS", "build_parser", "main"]

COMMANDS = (info, demo, train_lm, sample, finetune, launch, generate, chat, finetune_lm,
            exercises, bench)


def build_parser() -> argparse.ArgumentParser:
    """The parser of the ``minigrad`` command, with a subparser per module of `COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="minigrad",
        description="minigrad: a deep learning framework on NumPy and CuPy.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        sub = subparsers.add_parser(command.NAME, help=command.HELP,
                                    description=command.DESCRIPTION)
        command.add_arguments(sub)
        sub.set_defaults(func=command.run)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Runs ``minigrad ARGV`` (default: the command line); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)
