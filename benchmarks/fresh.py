"""Run a benchmark function in a fresh Python process of its own, as users run a framework.

Timing two frameworks in one process measures something no user runs: each one inherits the
other's allocator state, thread pools and caches (minigrad ran 25-35% faster after PyTorch had
run in its process, because of the heap PyTorch left behind: see ``minigrad/allocator.py``).
So every side of a comparison (minigrad fused, minigrad composite, PyTorch) is timed in a
process of its own, started for that measurement; the sides run in interleaved rounds (each
round starts each side once, in rotated order) so that load from elsewhere on a shared machine
falls on all of them alike, and the result of a side is the median over its rounds.

    result = run("benchmarks.workload_side:run_side", {"name": "W1", ...})

runs ``benchmarks.workload_side.run_side(**kwargs)`` in ``python -m benchmarks.fresh`` and
returns what it returned (JSON-serialisable). The child's output goes to this process's
stderr as it comes, so a long run shows progress; an exception in the child is raised here as
:class:`FreshProcessError` with the child's traceback.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_MARK = "@@fresh-result@@"


class FreshProcessError(RuntimeError):
    """The function failed (or the process died) in its fresh process."""


def run(target: str, kwargs: dict, env: dict = None, timeout: float = 1800) -> object:
    """``module:function(**kwargs)`` in a fresh ``python`` process; its return value.

    Args:
        target: ``"package.module:function"``.
        kwargs: JSON-serialisable keyword arguments.
        env: variables to add to (or, with value None, remove from) this process's
            environment for the child.
        timeout: seconds before the child is killed and :class:`FreshProcessError` raised.
    """
    child_env = dict(os.environ)
    for key, value in (env or {}).items():
        if value is None:
            child_env.pop(key, None)
        else:
            child_env[key] = str(value)
    child_env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT)] + [p for p in child_env.get("PYTHONPATH", "").split(os.pathsep) if p])
    payload = json.dumps({"target": target, "kwargs": kwargs})
    try:
        proc = subprocess.run([sys.executable, "-m", "benchmarks.fresh", payload], cwd=ROOT,
                              env=child_env, stdout=subprocess.PIPE, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise FreshProcessError(f"{target} did not finish within {timeout:.0f} s") from exc
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(_MARK):
            answer = json.loads(line[len(_MARK):])
            if "error" in answer:
                raise FreshProcessError(f"{target} failed in its process:\n{answer['error']}")
            return answer["result"]
    raise FreshProcessError(f"{target}: the process exited with code {proc.returncode} and no "
                            f"result; its output:\n{proc.stdout[-2000:]}")


def rotated(items: list, k: int) -> list:
    """``items`` starting at position ``k`` (each side in turn goes first).

    Example:
        >>> rotated(["a", "b", "c"], 1)
        ['b', 'c', 'a']
    """
    k %= len(items)
    return items[k:] + items[:k]


def _main(argv) -> int:
    # modules to import first, e.g. the tests' CuPy stand-in (tests/fake_cuda/autoinstall.py)
    for module in filter(None, os.environ.get("BENCH_FRESH_PRELOAD", "").split(",")):
        importlib.import_module(module.strip())
    request = json.loads(argv[0])
    module_name, _, func_name = request["target"].partition(":")
    try:
        func = getattr(importlib.import_module(module_name), func_name)
        answer = {"result": func(**request["kwargs"])}
    except BaseException:  # noqa: BLE001  (reported to the parent, which raises it)
        answer = {"error": traceback.format_exc()}
    sys.stdout.flush()
    print(_MARK + json.dumps(answer, default=float), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
