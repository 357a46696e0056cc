"""The sequence layers learn their toy tasks (examples/toy_tasks.py) to near-perfect accuracy."""

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "toy_tasks", Path(__file__).resolve().parents[1] / "examples" / "toy_tasks.py")
toy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(toy)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_rnn_learns_binary_addition(cell):
    acc, _ = toy.train_adder(cell, steps=400)
    assert acc >= 0.95


def test_causal_transformer_learns_to_copy():
    acc, _ = toy.train_copier(steps=300)
    assert acc >= 0.9
