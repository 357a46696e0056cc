"""The watchdog: a collective that waits longer than the timeout aborts the whole job.

A rank that died, or that took another path through the program, leaves the others waiting in
a collective for ever. A daemon thread watches the blocking call now running (MPI releases
Python's lock while it waits) and the device work still queued (NCCL runs on a CUDA stream);
past the deadline it prints which rank waited in which operation, and aborts the job.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any, Callable


class Watchdog:
    """Calls ``abort()`` when one watched operation outlives ``timeout`` seconds.

    Args:
        rank: this process's rank, named in the message.
        timeout: seconds an operation may wait.
        abort: ends the job (MPI_Abort, or ``os._exit`` without MPI); it does not return.
    """

    def __init__(self, rank: int, timeout: float, abort: Callable[[], Any]) -> None:
        self.rank = rank
        self.timeout = float(timeout)
        self._abort = abort
        self._current: tuple | None = None  # (what, deadline) of the blocking call now running
        self._queued: list = []  # [(done, what, deadline)] of device work not yet finished
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._interval = min(1.0, max(0.01, self.timeout / 10))
        self._thread = threading.Thread(target=self._run, name="minigrad-distributed-watchdog",
                                        daemon=True)
        self._thread.start()

    def begin(self, what: Any) -> tuple | None:
        """Starts watching the blocking call `what` (a string, or a callable giving one);
        returns the watch it replaces, for `end`."""
        previous = self._current
        self._current = (what, time.monotonic() + self.timeout)
        return previous

    def end(self, previous: tuple | None = None) -> None:
        """Stops watching the call `begin` started."""
        self._current = previous

    def watch_queued(self, done: Callable[[], bool], what: Any) -> None:
        """Watches device work that finishes when ``done()`` turns true (a CUDA event)."""
        with self._lock:
            self._queued.append((done, what, time.monotonic() + self.timeout))

    def stop(self) -> None:
        """Ends the thread (at ``destroy_process_group``)."""
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            now = time.monotonic()
            current = self._current
            if current is not None and now > current[1]:
                self._fire(current[0])
            if self._queued:
                with self._lock:
                    queued, self._queued = self._queued, []
                waiting = []
                for done, what, deadline in queued:
                    if done():
                        continue
                    if now > deadline:
                        self._fire(what)
                    waiting.append((done, what, deadline))
                with self._lock:
                    self._queued[:0] = waiting

    def _fire(self, what: Any) -> None:
        what = what() if callable(what) else what
        sys.stderr.write(
            f"minigrad.distributed: rank {self.rank} waited more than {self.timeout:g} s in "
            f"{what}; another rank has probably failed, exited, or not reached this "
            "collective. Aborting the job.\n")
        sys.stderr.flush()
        try:
            self._abort()
        finally:
            os._exit(1)  # the abort did not end this process
