"""Exercise topo_order: a reverse topological order of a graph without recursion, checked on
a diamond, a shared subexpression and a chain of 20,000 ops against the set of nodes minigrad's
engine visits (``autograd._topo_order``)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from minigrad import autograd
from minigrad.exercises._base import Exercise, Wrong
from minigrad.tensor import Tensor

__all__ = ["EXERCISE", "solution"]  # the checks are reached through EXERCISE.checks


def _leaf(*shape):
    return Tensor(np.random.default_rng(0).normal(size=shape), requires_grad=True)


def _check(module, y, what):
    root = y.grad_fn
    order = module.topo_order(root)
    if not isinstance(order, (list, tuple)):
        raise Wrong(f"topo_order should return a list, returned a {type(order).__name__}")
    expected = autograd._topo_order([root])
    names = {id(n): type(n).__name__ for n in expected}
    ids = [id(n) for n in order]
    if len(set(ids)) != len(ids):
        twice = next(names.get(i, "?") for i in ids if ids.count(i) > 1)
        raise Wrong(f"{what}: a {twice} node is listed twice (remember the nodes you visited)")
    missing = set(names) - set(ids)
    if missing:
        raise Wrong(f"{what}: {len(missing)} of the {len(names)} nodes are missing (e.g. a "
                    f"{names[next(iter(missing))]})")
    if set(ids) - set(names):
        raise Wrong(f"{what}: the list holds {len(set(ids) - set(names))} things that are not "
                    "nodes of the graph")
    if ids[0] != id(root):
        raise Wrong(f"{what}: the root ({names[id(root)]}) should come first, it is at "
                    f"position {ids.index(id(root))}")
    position = {i: k for k, i in enumerate(ids)}
    for node in expected:
        for t in node.inputs:
            if t.grad_fn is not None and position[id(t.grad_fn)] < position[id(node)]:
                raise Wrong(f"{what}: {type(t.grad_fn).__name__} (position "
                            f"{position[id(t.grad_fn)]}) produced an input of "
                            f"{names[id(node)]} (position {position[id(node)]}) but comes "
                            "before it: consumers first")


def check_diamond(module):
    x = _leaf(3)
    a = x.exp()
    y = (a * x + a.sin()).sum()  # a feeds two consumers
    _check(module, y, "y = sum(exp(x) * x + sin(exp(x)))")


def check_shared(module):
    x, w = _leaf(2, 3), _leaf(3, 4)
    h = (x @ w).tanh()
    y = (h * h + h @ w.T @ w).mean()  # h used three times, w three times
    _check(module, y, "a graph where h = tanh(x @ w) is used three times")


def check_long_chain(module):
    h = _leaf(2)
    out = h
    for _ in range(20000):
        out = out * 1.0001
    try:
        _check(module, out.sum(), "a chain of 20,000 ops")
    except RecursionError:
        raise Wrong("a chain of 20,000 ops hits Python's recursion limit: keep your own "
                    "stack instead of calling topo_order recursively") from None


def solution():
    """minigrad's own engine order, under the stub's name."""
    return SimpleNamespace(topo_order=lambda root: autograd._topo_order([root]))


EXERCISE = Exercise(
    name="topo_order",
    title="the backward engine's visiting order, without recursion",
    lesson="02-backward-engine.md",
    solution_in="minigrad/autograd.py: _topo_order",
    checks=(
        ("a diamond: exp(x) feeds two ops", check_diamond),
        ("a subexpression used three times", check_shared),
        ("a chain of 20,000 ops (no recursion)", check_long_chain),
    ),
    solution=solution,
)
