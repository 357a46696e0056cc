"""Graded exercises for the course (``docs/course/``): ``minigrad exercises list | start | check``.

Each exercise is a module here with its checks and a stub in ``stubs/`` (complete but for the
spot the student fills, which raises ``NotImplementedError``); the reference solution is
minigrad's own code, named in the exercise's ``solution_in``. `check` runs the checks on the
student's file and says what is wrong in plain words.

Example:
    >>> names()[:3]
    ['topo_order', 'div_backward', 'sum_to']
    >>> get("div_backward").lesson
    '03-writing-an-op.md'
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from minigrad.exercises import (
    adam_update, attention_backward, col2im, cross_entropy_backward, div_backward,
    kv_cache_append, layer_norm_backward, lora_forward, lstm_step_backward, shard_indices, sum_to,
    topo_order,
)
from minigrad.exercises._base import Exercise, Wrong, load_module, run_checks

__all__ = ["EXERCISES", "DEFAULT_DIR", "Exercise", "check", "get", "names", "start"]

# in the course's order
EXERCISES: Dict[str, Exercise] = {
    m.EXERCISE.name: m.EXERCISE
    for m in (topo_order, div_backward, sum_to, cross_entropy_backward, adam_update,
              lstm_step_backward, attention_backward, layer_norm_backward, col2im, lora_forward,
              kv_cache_append, shard_indices)
}

DEFAULT_DIR = Path("minigrad-exercises")


def names() -> List[str]:
    """The exercises' names, in the course's order."""
    return list(EXERCISES)


def get(name: str) -> Exercise:
    """The exercise called ``name``; a KeyError lists the names there are."""
    if name not in EXERCISES:
        raise KeyError(f"no exercise named {name!r}; there are: {', '.join(EXERCISES)}")
    return EXERCISES[name]


def start(name: str, directory: Path = DEFAULT_DIR, overwrite: bool = False) -> Path:
    """Copy the stub of ``name`` to ``directory/NAME.py`` and return that path.

    An existing file is kept (a FileExistsError says so) unless ``overwrite``: it may hold
    the student's work.
    """
    exercise = get(name)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{name}.py"
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} already exists (your work?); pass --force to replace it")
    shutil.copyfile(exercise.stub_path, target)
    return target


def check(name: str, directory: Path = DEFAULT_DIR,
          module: Optional[object] = None) -> List[Tuple[str, Optional[str]]]:
    """Run the checks of ``name`` on ``directory/NAME.py`` (or on ``module``, already loaded).

    Returns ``(description, problem)`` pairs, the problem None for a check that passed; a file
    that does not import gives one failed check saying why.
    """
    exercise = get(name)
    if module is None:
        try:
            module = load_module(Path(directory) / f"{name}.py")
        except Wrong as exc:
            return [("your file imports", str(exc))]
    return run_checks(exercise, module)
