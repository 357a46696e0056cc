"""The engine's accumulating products: a matmul whose input already has a running gradient sum
in a buffer the engine made adds its term into that buffer by one BLAS GEMM with beta = 1
(``Function.accumulates``, ``minigrad.blas.add_product``). The values must equal the sum
computed the plain way; every case the engine must not hand a buffer for keeps the plain path.
"""

import numpy as np
import pytest

import minigrad as mg
from minigrad import blas
from minigrad.ops import linalg

# the tests of the BLAS path (all but the plain-backward section) need the wheels' OpenBLAS
needs_blas = pytest.mark.skipif(blas.blas_function("gemm", np.float32) is None,
                                reason="NumPy's BLAS is not the wheels' OpenBLAS")

DTYPES = [np.float32, np.float64]
TOL = {np.float32: 1e-5, np.float64: 1e-12}


@pytest.fixture
def added(monkeypatch):
    """The matrices ``MatmulFn`` added into an engine buffer, one entry per ``add_product``
    call that did the addition (its shape)."""
    calls = []

    def spy(c, a, b):
        done = blas.add_product(c, a, b)
        if done:
            calls.append(c.shape)
        return done

    monkeypatch.setattr(linalg, "add_product", spy)
    return calls


def _plain(monkeypatch, fn):
    """``fn()`` with the accumulating path switched off (the gradients the old way)."""
    with monkeypatch.context() as m:
        m.setattr(linalg.MatmulFn, "accumulates", False)
        return fn()


def _check_against_plain(monkeypatch, added, leaf, run, accumulated: bool):
    """Runs ``run`` (a backward into ``leaf.grad``), checks whether the GEMM path added
    anything (``accumulated``), and that ``leaf.grad`` equals the plain path's."""
    run()
    got = leaf.grad.numpy().copy()
    assert (len(added) > 0) == accumulated
    leaf.grad = None
    _plain(monkeypatch, run)
    np.testing.assert_allclose(got, leaf.grad.numpy(), rtol=1e-12)


def _unrolled(w, h0, steps=6, transposed=False):
    """A small recurrence that uses ``w`` at every step, as an unrolled RNN does."""
    h, total = h0, 0
    w_t = w.T  # (once, as the GRU's W_hh^T: the products' operand is one node's output)
    for _ in range(steps):
        y = (h @ w_t if transposed else w @ h).tanh()
        h = y[: h0.shape[0]] * 0.5 if not transposed else y[:, : h0.shape[1]] * 0.5
        total = total + (y * y).sum()
    return total


def _leaves(dtype, transposed=False, seed=0):
    rng = np.random.default_rng(seed)
    w = mg.tensor(rng.standard_normal((8, 5)).astype(dtype), requires_grad=True)
    shape = (3, 5) if transposed else (5, 3)
    h0 = mg.tensor(rng.standard_normal(shape).astype(dtype), requires_grad=True)
    return w, h0


@needs_blas
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("transposed", [False, True])
def test_sum_equals_the_plain_sum(monkeypatch, added, dtype, transposed):
    """W used at six steps: its gradient (and h0's) as the plain path's, the third to sixth
    terms added by GEMM (the first is the term itself, the second the engine's new buffer);
    ``h @ W.T`` sums the transposed weight's terms in a column-major buffer."""
    w, h0 = _leaves(dtype, transposed)
    _unrolled(w, h0, transposed=transposed).backward()
    got_w, got_h = w.grad.numpy().copy(), h0.grad.numpy().copy()
    assert len(added) == 4 and w.grad.dtype == dtype
    w.grad = h0.grad = None
    _plain(monkeypatch, lambda: _unrolled(w, h0, transposed=transposed).backward())
    np.testing.assert_allclose(got_w, w.grad.numpy(), rtol=TOL[dtype], atol=TOL[dtype])
    np.testing.assert_allclose(got_h, h0.grad.numpy(), rtol=TOL[dtype], atol=TOL[dtype])


@needs_blas
@pytest.mark.parametrize("dtype", DTYPES)
def test_against_numpy(added, dtype):
    """The summed gradient against NumPy: sum over steps of gy_t @ x_t^T, with W also the
    right operand of a product (its other gradient formula) in the same sum."""
    rng = np.random.default_rng(1)
    w = mg.tensor(rng.standard_normal((4, 4)).astype(dtype), requires_grad=True)
    xs = [rng.standard_normal((4, 3)).astype(dtype) for _ in range(4)]
    ws = [rng.standard_normal((4, 3)).astype(dtype) for _ in range(4)]
    us = [rng.standard_normal((3, 4)).astype(dtype) for _ in range(2)]
    vs = [rng.standard_normal((3, 4)).astype(dtype) for _ in range(2)]
    total = 0
    for x, s in zip(xs, ws):
        total = total + ((w @ mg.tensor(x)) * mg.tensor(s)).sum()
    for u, v in zip(us, vs):
        total = total + ((mg.tensor(u) @ w) * mg.tensor(v)).sum()
    total.backward()
    expected = sum(s @ x.T for x, s in zip(xs, ws)) + sum(u.T @ v for u, v in zip(us, vs))
    np.testing.assert_allclose(w.grad.numpy(), expected, rtol=TOL[dtype], atol=TOL[dtype])
    assert len(added) == 4


@needs_blas
def test_leaf_grad_accumulates_across_backward_calls(added):
    """A second backward adds to .grad (the engine's buffer becomes .grad only once), and
    retain_graph re-runs the graph with fresh buffers, not the previous pass's."""
    w, h0 = _leaves(np.float64)
    loss = _unrolled(w, h0)
    loss.backward(retain_graph=True)
    first = w.grad.numpy().copy()
    loss.backward()
    np.testing.assert_allclose(w.grad.numpy(), 2 * first, rtol=1e-12)
    assert len(added) == 8


@needs_blas
def test_mg_grad_returns_the_sum(monkeypatch, added):
    """``mg.grad`` (gradients returned, .grad untouched) gets the accumulated sum."""
    w, h0 = _leaves(np.float64)
    (gw,) = mg.grad(_unrolled(w, h0), w)
    assert w.grad is None and len(added) == 4
    (plain,) = _plain(monkeypatch, lambda: mg.grad(_unrolled(w, h0), w))
    np.testing.assert_allclose(gw.numpy(), plain.numpy(), rtol=1e-12)


@needs_blas
def test_non_leaf_weight(monkeypatch, added):
    """A weight that is itself computed (a cast, a scaled copy) accumulates in the engine's
    buffer for that node's output the same way."""
    w, h0 = _leaves(np.float64)
    _unrolled(w * 2.0, h0).backward()
    got = w.grad.numpy().copy()
    assert len(added) == 4
    w.grad = None
    _plain(monkeypatch, lambda: _unrolled(w * 2.0, h0).backward())
    np.testing.assert_allclose(got, w.grad.numpy(), rtol=1e-12)


@needs_blas
def test_same_tensor_both_operands(monkeypatch, added):
    """``a @ a`` at every step: both terms go into the one buffer."""
    rng = np.random.default_rng(2)
    a = mg.tensor(rng.standard_normal((4, 4)), requires_grad=True)

    def run():
        total = 0
        for k in range(4):
            total = total + ((a @ a) * float(k + 1)).sum()
        total.backward()

    _check_against_plain(monkeypatch, added, a, run, accumulated=True)


# ---------------------------------------------------------------------------- fallbacks


@needs_blas
def test_hooks_keep_the_plain_path(monkeypatch, added):
    """A leaf with a hook: no buffer handed out; the hook sees the whole sum once."""
    w, h0 = _leaves(np.float64)
    seen = []
    w.register_hook(lambda g: seen.append(g.numpy().copy()))
    _unrolled(w, h0).backward()
    assert added == [] and len(seen) == 1
    np.testing.assert_allclose(seen[0], w.grad.numpy())
    w.grad = None
    _plain(monkeypatch, lambda: _unrolled(w, h0).backward())
    np.testing.assert_allclose(seen[0], w.grad.numpy(), rtol=1e-12)


@needs_blas
def test_retain_grad_keeps_the_plain_path(monkeypatch, added):
    """A non-leaf weight that retains its gradient: no buffer; its .grad is the whole sum."""
    w, h0 = _leaves(np.float64)
    w2 = w * 1.0
    w2.retain_grad()
    _unrolled(w2, h0).backward()
    assert added == []
    np.testing.assert_allclose(w2.grad.numpy(), w.grad.numpy())


@needs_blas
def test_create_graph_keeps_the_plain_path(monkeypatch, added):
    """Under create_graph no buffer is handed out (the sum must stay a recorded graph): the
    second derivative is the plain path's, and gradgradcheck holds."""
    w, h0 = _leaves(np.float64)
    (gw,) = mg.grad(_unrolled(w, h0), w, create_graph=True)
    assert added == []
    (gg,) = mg.grad((gw * gw).sum(), h0)
    (gw0,) = _plain(monkeypatch, lambda: mg.grad(_unrolled(w, h0), w, create_graph=True))
    (gg0,) = mg.grad((gw0 * gw0).sum(), h0)
    np.testing.assert_allclose(gg.numpy(), gg0.numpy(), rtol=1e-12)
    w, h0 = _leaves(np.float64, seed=3)
    assert mg.autograd.gradgradcheck(lambda a, b: _unrolled(a, b, steps=3), [w, h0])


@needs_blas
def test_weight_used_once_gets_no_buffer(added):
    """A weight used once has a single term: nothing to add it to."""
    w, h0 = _leaves(np.float32)
    _unrolled(w, h0, steps=1).backward()
    assert added == [] and w.grad is not None


@needs_blas
def test_non_contiguous_operand_falls_back(monkeypatch, added):
    """An operand BLAS cannot read as a matrix (every other row and column): the plain
    product, the same numbers."""
    rng = np.random.default_rng(4)
    w = mg.tensor(rng.standard_normal((8, 5)), requires_grad=True)
    big = rng.standard_normal((10, 6))

    def run():
        total = 0
        for k in range(4):
            x = mg.tensor(big[::2, ::2][:5] * (k + 1))  # strided both ways
            total = total + (w @ x).sum()
        total.backward()

    _check_against_plain(monkeypatch, added, w, run, accumulated=False)


@needs_blas
def test_batched_product_falls_back(monkeypatch, added):
    """A batched (3-D) product is not handed to the GEMM path: the plain one, with the
    engine's reduction of the broadcast batch."""
    rng = np.random.default_rng(5)
    w = mg.tensor(rng.standard_normal((4, 4)), requires_grad=True)
    xs = rng.standard_normal((3, 2, 4, 2))

    def run():
        total = 0
        for x in xs:
            total = total + (w @ mg.tensor(x)).sum()
        total.backward()

    _check_against_plain(monkeypatch, added, w, run, accumulated=False)


@needs_blas
def test_float16_falls_back(added):
    """A dtype without a BLAS GEMM (float16) keeps the plain path."""
    w, h0 = _leaves(np.float16)
    _unrolled(w, h0).backward()
    assert added == [] and w.grad.dtype == np.float16


# ---------------------------------------------------------------------------- add_product


@needs_blas
@pytest.mark.parametrize("dtype", DTYPES)
def test_add_product_layouts(dtype):
    """c += a @ b for C- and F-ordered c, transposed and row-strided operands."""
    rng = np.random.default_rng(6)
    wide = rng.standard_normal((4, 9)).astype(dtype)
    operands = [
        (rng.standard_normal((6, 4)).astype(dtype), wide[:, 2:5]),  # a row stride of 9
        (rng.standard_normal((4, 6)).astype(dtype).T, rng.standard_normal((3, 4)).astype(dtype).T),
        (wide.T[1:7], rng.standard_normal((4, 3)).astype(dtype)),  # columns apart by 9
    ]
    for a, b in operands:
        for order in "CF":
            c = np.asarray(rng.standard_normal((6, 3)).astype(dtype), order=order)
            expected = c + a @ b
            assert blas.add_product(c, a, b)
            np.testing.assert_allclose(c, expected, rtol=TOL[dtype], atol=TOL[dtype])


@needs_blas
def test_add_product_refuses():
    """False, c untouched: a non-contiguous or read-only c, a dtype mismatch or a dtype
    without GEMM, shared memory, mismatched or empty shapes, a non-matrix."""
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((3, 5))
    c = rng.standard_normal((4, 5))
    read_only = c.copy()
    read_only.flags.writeable = False
    big = rng.standard_normal((8, 10))
    cases = [
        (big[::2, ::2], a, b),  # c not contiguous
        (read_only, a, b),
        (c, a.astype(np.float32), b),  # mixed dtypes
        (c.astype(np.float16), a.astype(np.float16), b.astype(np.float16)),
        (c.astype(np.int64), a.astype(np.int64), b.astype(np.int64)),
        (c.astype(">f8"), a.astype(">f8"), b.astype(">f8")),  # byte-swapped
        (c, c[:, :3], b),  # a shares c's memory
        (c, a, b[:, :4]),  # c's shape is not a @ b's
        (np.zeros((4, 0)), a, b[:, :0]),
        (c[None], a[None], b[None]),  # 3-D
        (c, rng.standard_normal((8, 6))[::2, ::2], b),  # a strided both ways
    ]
    for c_, a_, b_ in cases:
        before = c_.copy()
        assert not blas.add_product(c_, a_, b_)
        np.testing.assert_array_equal(c_, before)


# ---------------------------------------------------------------------------- plain backward


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
@pytest.mark.parametrize("case", ["2d", "a column-major", "b column-major", "batched"])
def test_matmul_backward_on_arrays_equals_recorded(dtype, case):
    """A plain backward runs MatmulFn's two products on the arrays (no nodes); under
    create_graph they are recorded as ops. Both give the same numbers, bit for bit, in the
    same memory order (a column-major operand, W.t(), gets a column-major gradient)."""
    rng = np.random.default_rng(9)
    shapes = {"2d": ((4, 5), (5, 3)), "a column-major": ((5, 4), (5, 3)),
              "b column-major": ((4, 5), (3, 5)), "batched": ((2, 4, 5), (5, 3))}[case]
    a, b = (mg.tensor(rng.standard_normal(s).astype(dtype), requires_grad=True) for s in shapes)

    def product():
        x = a.t() if case == "a column-major" else a
        y = b.t() if case == "b column-major" else b
        return x @ y

    gy = mg.tensor(rng.standard_normal(product().shape).astype(dtype))
    plain = mg.grad(product(), [a, b], gy)
    recorded = mg.grad(product(), [a, b], gy, create_graph=True)
    assert recorded[0].grad_fn is not None and recorded[1].grad_fn is not None
    for p, r, t in zip(plain, recorded, (a, b)):
        assert p.grad_fn is None and p.dtype == t.dtype and p.shape == t.shape
        assert p.data.flags.c_contiguous == r.data.flags.c_contiguous
        np.testing.assert_array_equal(p.numpy(), r.detach().numpy())
