"""What every exercise shares: the `Exercise` record, loading a student's file, and checks that
say what is wrong in plain words (which value, its largest error, expected and got shapes).

A check is a function of the student's module that raises `Wrong` with a sentence for the
student, or returns when all is well. `run_checks` runs them all (one failure never hides the
next) and turns an exception from the student's code into a sentence as well: a
``NotImplementedError`` is "not written yet", anything else names the exception and the line.
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

__all__ = ["Exercise", "Wrong", "close", "load_module", "numeric_grad", "run_checks"]

STUBS = Path(__file__).parent / "stubs"


class Wrong(Exception):
    """A check failed; the message is the sentence the student reads."""


@dataclass(frozen=True)
class Exercise:
    """One graded exercise.

    Attributes:
        name: what ``minigrad exercises start NAME`` takes; also the stub's file name.
        title: one line for ``minigrad exercises list``.
        lesson: the course page that teaches it (under ``docs/course/``).
        solution_in: where minigrad's own code solves it (``path: name``).
        checks: ``(description, check)`` pairs; a check takes the student's module.
        solution: builds minigrad's own code wrapped to the stub's interface (a module-like
            namespace), which the tests run the checks on.
    """

    name: str
    title: str
    lesson: str
    solution_in: str
    checks: Tuple[Tuple[str, Callable[[ModuleType], None]], ...]
    solution: Callable[[], object]

    @property
    def stub_path(self) -> Path:
        """The stub shipped with minigrad (``minigrad/exercises/stubs/NAME.py``)."""
        return STUBS / f"{self.name}.py"


_loaded = itertools.count()


def load_module(path: Path) -> ModuleType:
    """Import the student's file at ``path`` as a fresh module (a new name on every call, so a
    second check sees the edited file). Raises `Wrong` when it does not import."""
    path = Path(path)
    if not path.is_file():
        raise Wrong(f"{path} does not exist: run `minigrad exercises start {path.stem}` first "
                    f"(or pass --dir with the folder you started it in)")
    name = f"_minigrad_exercise_{path.stem}_{next(_loaded)}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look modules up by name
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise Wrong(f"{path.name} does not import: {_describe(exc)}") from None
    return module


def _describe(exc: BaseException) -> str:
    """An exception from the student's code as one line: type, message, and the line."""
    if isinstance(exc, NotImplementedError):
        return f"not written yet ({exc})" if str(exc) else "not written yet"
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (line {frames[-1].lineno} of {Path(frames[-1].filename).name})" if frames else ""
    if isinstance(exc, SyntaxError):
        where = f" (line {exc.lineno})"
        return f"SyntaxError: {exc.msg}{where}"
    return f"{type(exc).__name__}: {exc}{where}"


def run_checks(exercise: Exercise, module) -> List[Tuple[str, Optional[str]]]:
    """Every check of ``exercise`` on ``module``: ``(description, None)`` when it passed,
    ``(description, the problem in words)`` when not."""
    results = []
    for description, check in exercise.checks:
        try:
            check(module)
        except Wrong as exc:
            results.append((description, str(exc)))
        except Exception as exc:  # the student's code raised
            results.append((description, _describe(exc)))
        else:
            results.append((description, None))
    return results


# ---------------------------------------------------------------------------- comparisons


def _shape(value) -> tuple:
    return tuple(np.shape(value))


def close(what: str, got, expected, rtol: float = 1e-5, atol: float = 1e-7) -> None:
    """Raise `Wrong` unless ``got`` has ``expected``'s shape and values (within tolerance).

    The message names ``what``, the shapes, or the largest error with its index and both
    values, and a hint when the error has a telling form (the negative, a constant factor).
    """
    if got is None:
        raise Wrong(f"{what} is None; expected an array of shape {_shape(expected)}")
    if hasattr(got, "numpy") and not isinstance(got, np.ndarray):  # a minigrad Tensor
        got = got.detach().numpy()
    got, expected = np.asarray(got), np.asarray(expected)
    if got.shape != expected.shape:
        raise Wrong(f"{what} has shape {got.shape}, expected {expected.shape}")
    if not np.all(np.isfinite(got)):
        raise Wrong(f"{what} holds NaN or inf values (expected finite numbers)")
    if np.allclose(got, expected, rtol=rtol, atol=atol):
        return
    err = np.abs(got - expected)
    worst = np.unravel_index(int(np.argmax(err)), err.shape) if err.ndim else ()
    at = f" at index {tuple(int(i) for i in worst)}" if err.ndim else ""
    message = (f"{what} is wrong: largest error {err.max():.3g}{at}: expected "
               f"{expected[worst]:.6g}, got {got[worst]:.6g}")
    raise Wrong(message + _hint(got, expected, rtol, atol))


def _hint(got, expected, rtol, atol) -> str:
    if np.allclose(got, -expected, rtol=rtol, atol=atol):
        return " (exactly the negative: a sign error?)"
    if np.allclose(got, 0) and not np.allclose(expected, 0):
        return " (yours is all zeros)"
    mask = np.abs(expected) > 1e-6
    if mask.any():
        ratio = got[mask] / expected[mask]
        if np.allclose(ratio, ratio.flat[0], rtol=1e-4) and np.allclose(
                got[~mask], 0, atol=atol):
            return f" (off by a constant factor {ratio.flat[0]:.4g})"
    return ""


def numeric_grad(f: Callable[..., float], arrays: Sequence[np.ndarray], i: int,
                 eps: float = 1e-6) -> np.ndarray:
    """Central finite differences of the scalar ``f(*arrays)`` with respect to ``arrays[i]``
    (float64: each element nudged by ``±eps`` in turn)."""
    arrays = [np.array(a, dtype=np.float64) for a in arrays]
    x = arrays[i]
    grad = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        orig = x[idx]
        x[idx] = orig + eps
        up = f(*arrays)
        x[idx] = orig - eps
        down = f(*arrays)
        x[idx] = orig
        grad[idx] = (up - down) / (2 * eps)
    return grad


def expect_tuple(what: str, value, n: int) -> tuple:
    """``value`` as a tuple of ``n`` entries, or `Wrong` saying what came back instead."""
    if not isinstance(value, (tuple, list)) or len(value) != n:
        got = f"a {type(value).__name__}" if not isinstance(value, (tuple, list)) else (
            f"{len(value)} values")
        raise Wrong(f"{what} should return {n} values, returned {got}")
    return tuple(value)
