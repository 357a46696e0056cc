"""How a ``minigrad`` command reports a problem: one line on standard error, and a status."""

from __future__ import annotations

import sys


def error(command: str, message: object, status: int = 1) -> int:
    """Prints ``minigrad COMMAND: MESSAGE`` to standard error and returns `status`.

    Example:
        >>> import contextlib, io
        >>> err = io.StringIO()
        >>> with contextlib.redirect_stderr(err):
        ...     status = error("demo", "--epochs must be positive", 2)
        >>> status, err.getvalue()
        (2, 'minigrad demo: --epochs must be positive\\n')
    """
    print(f"minigrad {command}: {message}", file=sys.stderr)
    return status
