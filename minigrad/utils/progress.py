"""Progress bars: a Keras-style `Progbar` for training and a tqdm-style `progress` for loops.

Both write to a text file (standard output or error by default) and behave well in logs: on a
terminal they redraw one line in place with a carriage return; when the file is not a terminal
(`file.isatty()` is false: a log file, a pipe, CI, an ``io.StringIO``) they write only the final
line of each bar, so a log never fills with thousands of partial updates.

Example:
    >>> import io
    >>> log = io.StringIO()
    >>> bar = Progbar(4, width=10, file=log)
    >>> for step in range(1, 5):
    ...     bar.update(step, values=[("loss", 1.0 / step)])
    >>> print(log.getvalue().split(" - ")[0])
    4/4 [==========]
    >>> sum(1.0 / s for s in range(1, 5)) / 4  # the loss shown is the running average
    0.5208333333333333
    >>> print(log.getvalue().rstrip().split(" - ")[-1])
    loss: 0.5208
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TextIO

import numpy as np

# The clock every bar reads. Tests replace it to get exact, repeatable times.
_clock = time.monotonic


def _isatty(file: Any) -> bool:
    """True when `file` is an open interactive terminal."""
    isatty = getattr(file, "isatty", None)
    if isatty is None:
        return False
    try:
        return bool(isatty())
    except (ValueError, OSError):  # a closed or detached stream
        return False


def _write(file: TextIO, text: str) -> None:
    file.write(text)
    flush = getattr(file, "flush", None)
    if flush is not None:
        flush()


def format_eta(seconds: float) -> str:
    """Formats a duration as Keras shows an ETA: ``'7s'``, ``'2:05'`` or ``'1:02:03'``.

    Example:
        >>> format_eta(7.4), format_eta(125), format_eta(3723)
        ('7s', '2:05', '1:02:03')
    """
    seconds = round(seconds)  # an int
    if seconds >= 3600:
        return f"{seconds // 3600}:{(seconds % 3600) // 60:02d}:{seconds % 60:02d}"
    if seconds >= 60:
        return f"{seconds // 60}:{seconds % 60:02d}"
    return f"{seconds}s"


def format_clock(seconds: float) -> str:
    """Formats a duration as tqdm does: ``'00:07'``, ``'02:05'`` or ``'1:02:03'``.

    Example:
        >>> format_clock(7.4), format_clock(125), format_clock(3723)
        ('00:07', '02:05', '1:02:03')
    """
    seconds = int(seconds)
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes:02d}:{secs:02d}"


def format_size(num_bytes: float) -> str:
    """Formats a byte count with decimal (SI) prefixes, as download tools do.

    Example:
        >>> format_size(512), format_size(28_881), format_size(9_912_422), format_size(3e9)
        ('512B', '28.9kB', '9.9MB', '3.0GB')
    """
    value = float(num_bytes)
    if abs(value) < 1000:
        return f"{int(value)}B"
    for prefix in ("k", "M", "G", "T", "P"):
        value /= 1000.0
        if abs(value) < 999.95 or prefix == "P":
            return f"{value:.1f}{prefix}B"
    raise AssertionError("unreachable")


def _format_per_unit(seconds: float, unit_name: str) -> str:
    """``'2s/step'``, ``'20ms/step'`` or ``'350us/step'``, as Keras prints time per step."""
    if seconds >= 1:
        return f"{seconds:.0f}s/{unit_name}"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/{unit_name}"
    return f"{seconds * 1e6:.0f}us/{unit_name}"


def _format_metric(value: float) -> str:
    # Keras's rule: four decimals, or scientific notation for tiny values.
    return f"{value:.4f}" if abs(value) > 1e-3 else f"{value:.4e}"


class Progbar:
    """A Keras-style progress bar for steps of a known (or unknown) count.

    On a terminal the bar is redrawn in place while it runs::

        12/100 [==>...........................] - ETA: 3s - loss: 0.1234 - accuracy: 0.9000

    and the final line stays::

        100/100 [==============================] - 2s 20ms/step - loss: 0.1034 - accuracy: 0.9312

    Metrics passed in `values` are shown as their running average over the steps so far
    (weighted by the number of steps each update covers), except those named in
    `stateful_metrics`, which are shown as passed (their latest value).

    When `file` is not a terminal, only the final line is written (like Keras's ``verbose=2``).

    Args:
        target: total number of steps, or None when unknown (then pass ``finalize=True``).
        width: width of the bar in characters.
        verbose: 0 prints nothing; 1 prints the bar (redrawn on a terminal, final line only
            elsewhere); 2 prints only the final line, without the bar.
        stateful_metrics: names of metrics shown as passed rather than averaged.
        interval: minimum seconds between two redraws on a terminal.
        unit_name: name of a step in the time-per-step figure (``'20ms/step'``).
        file: the text stream to write to; None means ``sys.stdout`` at construction time.

    Example:
        >>> import io
        >>> log = io.StringIO()
        >>> bar = Progbar(target=3, width=6, file=log, stateful_metrics=["lr"])
        >>> bar.add(1, values=[("loss", 3.0), ("lr", 0.1)])
        >>> bar.add(2, values=[("loss", 0.0), ("lr", 0.05)])
        >>> bar.values  # loss averaged over 3 steps; lr as last passed
        {'loss': 1.0, 'lr': 0.05}
        >>> log.getvalue().startswith("3/3 [======] - ")
        True
    """

    def __init__(
        self,
        target: int | None,
        width: int = 30,
        verbose: int = 1,
        stateful_metrics: Iterable[str] | None = None,
        interval: float = 0.05,
        unit_name: str = "step",
        file: TextIO | None = None,
    ) -> None:
        self.target = target
        self.width = width
        self.verbose = verbose
        self.stateful_metrics = set(stateful_metrics or ())
        self.interval = interval
        self.unit_name = unit_name
        self.file = sys.stdout if file is None else file
        self._dynamic = _isatty(self.file)
        # name -> [weighted sum, weight] for averaged metrics, or the latest value for stateful
        self._values: dict = {}
        self._order: list = []
        self._seen_so_far = 0
        self._start = _clock()
        self._last_update = 0.0
        self._line_width = 0  # width of the line on screen, to blank out leftovers

    @property
    def values(self) -> dict:
        """The metrics as currently shown: running averages, or latest values if stateful."""
        return {name: self._current(name) for name in self._order}

    def _current(self, name: str) -> float:
        entry = self._values[name]
        if name in self.stateful_metrics:
            return entry
        total, weight = entry
        return total / max(weight, 1)

    def update(
        self,
        current: int,
        values: Sequence[tuple[str, Any]] | None = None,
        finalize: bool | None = None,
    ) -> None:
        """Moves the bar to step `current` and records metric values.

        Args:
            current: the index of the current step (steps done so far).
            values: ``(name, value)`` pairs; a value may be a number, an array or anything
                ``np.mean`` accepts.
            finalize: whether this is the last update of the bar. Defaults to
                ``current >= target`` (never, when the target is unknown).
        """
        if finalize is None:
            finalize = self.target is not None and current >= self.target

        # Each value counts once per step it covers, so `add(5, ...)` weighs 5 steps.
        steps = max(current - self._seen_so_far, 1)
        for name, value in values or ():
            value = float(np.mean(value))
            if name not in self._values:
                self._order.append(name)
            if name in self.stateful_metrics:
                self._values[name] = value
            elif name in self._values:
                self._values[name][0] += value * steps
                self._values[name][1] += steps
            else:
                self._values[name] = [value * steps, steps]
        self._seen_so_far = current

        if self.verbose == 0:
            return
        now = _clock()
        if not finalize:
            if not self._dynamic or self.verbose == 2:
                return  # logs get the final line only
            if self.interval and now - self._last_update < self.interval:
                return
        self._last_update = now
        line = self._format_line(current, now, finalize)
        if self._dynamic:
            pad = " " * max(self._line_width - len(line), 0)
            self._line_width = len(line)
            _write(self.file, "\r" + line + pad + ("\n" if finalize else ""))
        else:
            _write(self.file, line + "\n")

    def add(self, n: int, values: Sequence[tuple[str, Any]] | None = None) -> None:
        """Advances the bar by `n` steps (see `update`)."""
        self.update(self._seen_so_far + n, values)

    def _format_bar(self, current: int) -> str:
        if self.target is None:
            return f"{current:7d}/Unknown"
        digits = len(str(self.target))
        text = f"{current:{digits}d}/{self.target}"
        if self.verbose == 2:
            return text
        fraction = min(current / self.target, 1.0) if self.target else 1.0
        filled = int(self.width * fraction)
        bar = ""
        if filled > 0:
            bar += "=" * (filled - 1)
            bar += ">" if current < self.target else "="
        bar += "." * (self.width - filled)
        return f"{text} [{bar}]"

    def _format_line(self, current: int, now: float, finalize: bool) -> str:
        elapsed = now - self._start
        per_unit = elapsed / current if current else 0.0
        parts = [self._format_bar(current)]
        if finalize or self.target is None:
            parts.append(f"{elapsed:.0f}s {_format_per_unit(per_unit, self.unit_name)}")
        else:
            parts.append(f"ETA: {format_eta(per_unit * (self.target - current))}")
        for name in self._order:
            parts.append(f"{name}: {_format_metric(self._current(name))}")
        return " - ".join(parts)


class ProgressBar:
    """A tqdm-style progress bar over an iterable, or updated by hand (e.g. bytes downloaded).

    The line reads ``desc: 45%|#########           | 45/100 [00:02<00:03, 19.50it/s]``, or
    ``train-images.gz: 45%|...| 4.5MB/9.9MB [00:01<00:01, 4.1MB/s]`` when ``unit='B'`` (sizes
    are then written with SI prefixes). Without a total it shows the count and the rate.
    On a terminal it is redrawn in place at most every `mininterval` seconds; elsewhere only the
    final line is written, when the bar closes (at the end of the iteration or on `close`).

    Args:
        iterable: what to iterate over, or None to call `update` by hand.
        total: the expected number of items (or bytes); defaults to ``len(iterable)``.
        desc: a label written before the bar.
        unit: the name of one item; ``'B'`` means bytes, shown as ``kB``, ``MB``, ...
        file: the text stream to write to; None means ``sys.stderr`` at construction time.
        width: width of the bar in characters.
        mininterval: minimum seconds between two redraws on a terminal.
        disable: if True, print nothing.

    Example:
        >>> import io
        >>> log = io.StringIO()
        >>> with ProgressBar(total=2_000_000, desc="data.gz", unit="B", file=log) as bar:
        ...     for chunk in range(4):
        ...         bar.update(500_000)
        >>> log.getvalue().split(" [")[0]
        'data.gz: 100%|####################| 2.0MB/2.0MB'
    """

    def __init__(
        self,
        iterable: Iterable | None = None,
        total: float | None = None,
        desc: str = "",
        unit: str = "it",
        file: TextIO | None = None,
        width: int = 20,
        mininterval: float = 0.1,
        disable: bool = False,
    ) -> None:
        if total is None and iterable is not None:
            try:
                total = len(iterable)  # type: ignore[arg-type]
            except TypeError:
                total = None
        self.iterable = iterable
        self.total = total
        self.desc = desc
        self.unit = unit
        self.file = sys.stderr if file is None else file
        self.width = width
        self.mininterval = mininterval
        self.disable = disable
        self.n = 0
        self._dynamic = _isatty(self.file)
        self._start = _clock()
        self._last_draw = -math.inf
        self._line_width = 0
        self._closed = False

    def __len__(self) -> int:
        if self.total is None:
            raise TypeError("this ProgressBar has no total")
        return int(self.total)

    def __iter__(self) -> Iterator:
        if self.iterable is None:
            raise TypeError("this ProgressBar wraps no iterable; call update() instead")
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _format_count(self, count: float) -> str:
        return format_size(count) if self.unit == "B" else f"{int(count)}"

    def __str__(self) -> str:
        """The bar's current line."""
        elapsed = _clock() - self._start
        rate = self.n / elapsed if elapsed > 0 else None
        if rate is None:
            rate_text = f"?{self.unit}/s"
        elif self.unit == "B":
            rate_text = f"{format_size(rate)}/s"
        else:
            rate_text = f"{rate:.2f}{self.unit}/s"
        head = f"{self.desc}: " if self.desc else ""
        if self.total is None:
            count = self._format_count(self.n) + ("" if self.unit == "B" else self.unit)
            return f"{head}{count} [{format_clock(elapsed)}, {rate_text}]"
        fraction = min(self.n / self.total, 1.0) if self.total else 1.0
        filled = int(self.width * fraction)
        bar = "#" * filled + " " * (self.width - filled)
        if rate and self.n < self.total:
            remaining = format_clock((self.total - self.n) / rate)
        elif self.n >= self.total:
            remaining = "00:00"
        else:
            remaining = "?"
        return (
            f"{head}{fraction * 100:3.0f}%|{bar}| "
            f"{self._format_count(self.n)}/{self._format_count(self.total)} "
            f"[{format_clock(elapsed)}<{remaining}, {rate_text}]"
        )

    def update(self, n: float = 1) -> None:
        """Records `n` more items (or bytes) done, redrawing the bar on a terminal."""
        self.n += n
        if self.disable or not self._dynamic:
            return
        now = _clock()
        if now - self._last_draw >= self.mininterval:
            self._last_draw = now
            self._draw(final=False)

    def _draw(self, final: bool) -> None:
        line = str(self)
        if self._dynamic:
            pad = " " * max(self._line_width - len(line), 0)
            self._line_width = len(line)
            _write(self.file, "\r" + line + pad + ("\n" if final else ""))
        else:
            _write(self.file, line + "\n")

    def close(self) -> None:
        """Writes the final line (once). Iteration and the ``with`` block call it for you."""
        if self._closed:
            return
        self._closed = True
        if not self.disable:
            self._draw(final=True)


def progress(
    iterable: Iterable,
    total: float | None = None,
    desc: str = "",
    unit: str = "it",
    file: TextIO | None = None,
    disable: bool = False,
) -> ProgressBar:
    """Wraps an iterable in a tqdm-style progress bar (see `ProgressBar`).

    Args:
        iterable: the items to iterate over.
        total: the number of items, when ``len(iterable)`` does not give it.
        desc: a label written before the bar.
        unit: the name of one item (``'B'`` for bytes, shown as ``kB``, ``MB``, ...).
        file: the text stream to write to; None means ``sys.stderr``.
        disable: if True, print nothing.

    Returns:
        A `ProgressBar` that yields the items of `iterable`.

    Example:
        >>> import io
        >>> log = io.StringIO()
        >>> sum(progress(range(100), desc="sum", file=log))
        4950
        >>> log.getvalue().split(" [")[0]
        'sum: 100%|####################| 100/100'
    """
    return ProgressBar(iterable, total=total, desc=desc, unit=unit, file=file, disable=disable)
