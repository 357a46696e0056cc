"""``linalg.embedding`` (F.embedding's op) and its row scatter-add ``_add_rows``: the same sums
as ``np.add.at`` to the bit, gradients checked in float64 (PyTorch parity: test_layers.py)."""

import numpy as np
import pytest
from conftest import to_numpy

import minigrad as mg
import minigrad.nn.functional as F
from minigrad.ops import linalg


@pytest.mark.parametrize("n, rows, repeat", [(2048, 1000, 1), (300, 7, 1), (50, 50, 1),
                                             (0, 5, 1), (100, 4, 40)])
def test_add_rows_equals_add_at_bitwise(n, rows, repeat):
    rng = np.random.default_rng(n + rows)
    idx = np.repeat(rng.integers(0, rows, n // repeat), repeat)  # repeat=40: > _MAX_ROUNDS
    rng.shuffle(idx)
    values = rng.standard_normal((idx.size, 3, 2)).astype(np.float32)
    out, ref = np.zeros((rows, 3, 2), np.float32), np.zeros((rows, 3, 2), np.float32)
    linalg._add_rows(np, out, idx, values)
    np.add.at(ref, idx, values)
    np.testing.assert_array_equal(out, ref)


def test_embedding_is_one_node_with_checked_gradients(device):
    rng = np.random.default_rng(0)
    w = mg.tensor(rng.standard_normal((6, 3)), device=device, requires_grad=True)
    idx = mg.tensor(np.array([[1, 4, 1], [0, 1, 5]]), device=device)
    y = F.embedding(idx, w)
    assert type(y.grad_fn).__name__ == "EmbeddingFn" and y.shape == (2, 3, 3)
    np.testing.assert_array_equal(to_numpy(y), to_numpy(w)[to_numpy(idx)])
    y.backward(mg.ones(2, 3, 3, device=device, dtype=mg.float64))
    np.testing.assert_array_equal(to_numpy(w.grad)[:, 0], [1, 3, 0, 0, 1, 1])
    assert mg.autograd.gradcheck(lambda w: F.embedding(idx, w), [w])
    assert mg.autograd.gradgradcheck(lambda w: F.embedding(idx, w) ** 2, [w])


def test_scalar_and_empty_indices():
    w = mg.tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    y = linalg.embedding(w, mg.tensor(np.array(2)))
    np.testing.assert_array_equal(to_numpy(y), [4.0, 5.0])
    y.sum().backward()
    np.testing.assert_array_equal(to_numpy(w.grad), [[0, 0], [0, 0], [1, 1]])
    e = linalg.embedding(w, mg.tensor(np.zeros((0, 2), dtype=np.int64)))
    assert e.shape == (0, 2, 2)
