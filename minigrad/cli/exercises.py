"""``minigrad exercises``: the course's graded exercises (list them, start one, check it).

The exercises and their checks are library code (`minigrad.exercises`); this module parses
the arguments and prints.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from minigrad import exercises

NAME = "exercises"
HELP = "the course's graded exercises: list, start NAME, check NAME"
DESCRIPTION = (
    "Graded exercises for the course in docs/course/. `list` names them, one a line; `start "
    "NAME` copies the stub NAME.py into a working folder (default ./minigrad-exercises); "
    "`check NAME` runs the checks on your file there and says what is wrong. Exit status: 0 "
    "all checks pass, 1 some fail.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``list``, ``start NAME [--dir DIR] [--force]``, ``check NAME [--dir DIR]``."""
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("list", help="the exercises, one a line")
    for action, help_text in (("start", "copy the stub of NAME into DIR"),
                              ("check", "run the checks on DIR/NAME.py")):
        sub = actions.add_parser(action, help=help_text)
        sub.add_argument("name", metavar="NAME", help="the exercise (see `list`)")
        sub.add_argument("--dir", type=Path, default=exercises.DEFAULT_DIR,
                         help=f"the working folder (default: {exercises.DEFAULT_DIR})")
        if action == "start":
            sub.add_argument("--force", action="store_true",
                             help="replace an existing file (your work in it is lost)")


def run(args: argparse.Namespace) -> int:
    """Runs the action; 0 when done (or all checks pass), 1 otherwise, 2 for an unknown name."""
    if args.action == "list":
        width = max(len(name) for name in exercises.names())
        for name in exercises.names():
            print(f"{name:<{width}}  {exercises.get(name).title}")
        return 0
    try:
        exercise = exercises.get(args.name)
    except KeyError as exc:
        print(exc.args[0])
        return 2
    if args.action == "start":
        return _start(exercise, args)
    return _check(exercise, args)


def _start(exercise, args) -> int:
    try:
        path = exercises.start(exercise.name, args.dir, overwrite=args.force)
    except FileExistsError as exc:
        print(exc)
        return 1
    print(f"wrote {path}")
    print(f"lesson: docs/course/{exercise.lesson}")
    print(f"fill in the spot that raises NotImplementedError, then run: minigrad exercises "
          f"check {exercise.name}" + (f" --dir {args.dir}" if args.dir != exercises.DEFAULT_DIR
                                      else ""))
    return 0


def _check(exercise, args) -> int:
    path = Path(args.dir) / f"{exercise.name}.py"
    print(f"checking {path}")
    results = exercises.check(exercise.name, args.dir)
    for description, problem in results:
        print(f"  {'ok  ' if problem is None else 'FAIL'}  {description}")
        if problem is not None:
            print(f"        {problem}")
    failed = sum(problem is not None for _, problem in results)
    if failed:
        print(f"{failed} of {len(results)} checks failed. The lesson: docs/course/"
              f"{exercise.lesson}")
        return 1
    print(f"all {len(results)} checks pass. minigrad's own solution: {exercise.solution_in}")
    return 0
