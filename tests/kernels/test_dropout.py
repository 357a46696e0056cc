"""The fused dropout (kernels/dropout.py) against its composite reference
(``references.dropout``)."""

import numpy as np
import pytest
from kernel_utils import cpu, grad_fn_names, tensor
from kernel_utils import fused_on  # noqa: F401  (autouse: kernels on, whatever the env)

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import kernels


def _both(x, p, seed=3):
    """Outputs and input gradients of both paths from the same seed."""
    res = []
    for fused in (True, False):
        x.grad = None
        mg.manual_seed(seed)
        with mg.use_fused(fused):
            y = F.dropout(x, p)
            w = mg.tensor(np.linspace(-1, 1, y.data.size).reshape(y.shape), dtype=y.dtype,
                          device=y.device)
            (y * w).sum().backward()
        res.append((cpu(y), cpu(x.grad)))
    return res


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_cpu_same_law_as_the_reference(dtype, p):
    """The fused CPU mask compares raw 32-bit words with an integer threshold, the reference
    compares float32 uniforms: both paths drop each element with probability p, independently
    of its neighbours, and each path is reproducible from the seed."""
    x = tensor(np.ones((400, 250)), "cpu", dtype, True)
    (y_f, g_f), (y_r, g_r) = _both(x, p)
    assert y_f.dtype == np.dtype(dtype)
    n = y_f.size
    sigma = (p * (1 - p) / n) ** 0.5
    for y, g in ((y_f, g_f), (y_r, g_r)):
        kept = y != 0
        np.testing.assert_array_equal(y[kept], np.asarray(1 / (1 - p), dtype))
        assert abs(kept.mean() - (1 - p)) < 5 * sigma
        # neighbours (the two halves of one 64-bit word, and of one uniform) are independent
        pairs = kept.reshape(-1)[: n // 2 * 2].reshape(-1, 2)
        both = (pairs[:, 0] & pairs[:, 1]).mean()
        assert abs(both - (1 - p) ** 2) < 5 * ((1 - p) ** 2 * (1 - (1 - p) ** 2) / (n / 2)) ** 0.5
        np.testing.assert_allclose(g / np.linspace(-1, 1, n).reshape(g.shape),
                                   y, rtol=1e-6, atol=1e-300)
    (y_f2, _), _ = _both(x, p)
    np.testing.assert_array_equal(y_f, y_f2)  # the same seed: the same mask


def test_cpu_mask_follows_the_generator_state():
    """The fused mask comes from the CPU generator: saving and restoring its state (what
    checkpoints do) replays the mask; the next call draws a new one."""
    x = tensor(np.ones((64, 64)), "cpu", "float32", True)
    mg.manual_seed(5)
    state = mg.backend.get_rng_state()
    a = cpu(F.dropout(x, 0.5))
    b = cpu(F.dropout(x, 0.5))
    mg.backend.set_rng_state(state)
    np.testing.assert_array_equal(cpu(F.dropout(x, 0.5)), a)
    assert not np.array_equal(a, b)


def test_cpu_mask_for_one_half_is_one_bit_per_element():
    """p = 1/2: each element keeps on one random bit (w >= 2**31 is w's top bit), the bits of
    ceil(n / 64) words in order; the generator moves by that many words."""
    shape = (37, 29)
    n = shape[0] * shape[1]
    mg.manual_seed(11)
    mask = kernels.dropout._keep_mask(shape, 0.5)
    after = mg.backend.generator(mg.backend.CPU).bit_generator.random_raw(1)
    mg.manual_seed(11)
    bits = mg.backend.generator(mg.backend.CPU).bit_generator
    words = bits.random_raw((n + 63) // 64)
    expected = np.unpackbits(words.view(np.uint8))[:n].astype(bool).reshape(shape)
    np.testing.assert_array_equal(mask, expected)
    assert bits.random_raw(1) == after


@pytest.mark.parametrize("p", [0.25, 0.75, 0.3])
def test_cpu_mask_is_the_word_threshold_comparison(p):
    """keep = (w >= round(p 2**32)) for each element's 32-bit word w, whose top byte is the
    element's byte of the first draw and whose low 24 bits come from one more word drawn per
    tie, in order (for p a multiple of 1/256 a tie always keeps and nothing more is drawn)."""
    shape = (37, 29)
    n = shape[0] * shape[1]
    mg.manual_seed(11)
    mask = kernels.dropout._keep_mask(shape, p)
    mg.manual_seed(11)
    bits = mg.backend.generator(mg.backend.CPU).bit_generator
    threshold = round(p * 2.0**32)
    top = bits.random_raw((n + 7) // 8).view(np.uint8)[:n].astype(np.uint64)
    ties = np.flatnonzero(top == threshold >> 24)
    words = top << np.uint64(24)
    if threshold & 0xFFFFFF:
        words[ties] += bits.random_raw(ties.size) & np.uint64(0xFFFFFF)
    else:  # nothing more drawn: the generator is where the first draw left it
        words[ties] += np.uint64(0xFFFFFF)
    np.testing.assert_array_equal(mask, (words >= threshold).reshape(shape))
    after = bits.random_raw(1)
    mg.manual_seed(11)
    kernels.dropout._keep_mask(shape, p)
    assert mg.backend.generator(mg.backend.CPU).bit_generator.random_raw(1) == after


@pytest.mark.parametrize("p", [0.2, 0.7])
def test_mask_semantics(device, p):
    """Each element is dropped or scaled by 1/(1 - p); the gradient uses the same mask; the
    kept fraction is about 1 - p."""
    x = tensor(np.random.default_rng(1).random((200, 300)) + 1, device, "float32", True)
    mg.manual_seed(0)
    y = F.dropout(x, p)
    assert "DropoutFn" in grad_fn_names(y)
    y.sum().backward()
    y, g, xv = cpu(y), cpu(x.grad), cpu(x)
    kept = y != 0
    np.testing.assert_allclose(y[kept], xv[kept] / (1 - p), rtol=1e-6)
    np.testing.assert_allclose(g, kept / np.float32(1 - p), rtol=1e-6)
    assert abs(kept.mean() - (1 - p)) < 0.01


def test_gradcheck_fused_function(device):
    x = tensor(np.random.default_rng(2).standard_normal((3, 5)), device, "float64", True)
    mg.manual_seed(0)
    y = kernels.dropout.DropoutFn.apply(x, p=0.4)
    mask = cpu(y) / cpu(x)
    # the mask is drawn once per call: check the Function's backward against it
    (gx,) = mg.grad(y, [x], mg.ones(3, 5, dtype=mg.float64, device=device))
    np.testing.assert_allclose(cpu(gx), mask, rtol=1e-12)
    fn_calls = []

    def fn(x):  # gradcheck re-runs fn: the same seed each time gives the same mask
        mg.manual_seed(0)
        fn_calls.append(1)
        return kernels.dropout.DropoutFn.apply(x, p=0.4)

    assert mg.autograd.gradcheck(fn, [x]) and fn_calls


def test_create_graph(device):
    x = tensor(np.random.default_rng(3).standard_normal((4, 6)), device, "float64", True)
    mg.manual_seed(0)
    y = F.dropout(x, 0.5)
    (g,) = mg.grad((y * y).sum(), [x], create_graph=True)
    (g2,) = mg.grad(g.sum(), [x])
    m = cpu(y) / cpu(x)  # m / (1 - p) per element
    np.testing.assert_allclose(cpu(g), 2 * cpu(x) * m * m, rtol=1e-12)
    np.testing.assert_allclose(cpu(g2), 2 * m * m, rtol=1e-12)


def test_odd_and_noncontiguous(device):
    x = tensor(np.random.default_rng(4).standard_normal((5, 3, 7)), device, "float32", True)
    xt = x.transpose(0, 2)
    assert not xt.data.flags.c_contiguous
    mg.manual_seed(1)
    y = F.dropout(xt, 0.3)
    y.sum().backward()
    yv, xv = cpu(y), cpu(xt)
    kept = yv != 0
    np.testing.assert_allclose(yv[kept], xv[kept] / np.float32(0.7), rtol=1e-6)
    np.testing.assert_allclose(cpu(x.grad).transpose(2, 1, 0), kept / np.float32(0.7),
                               rtol=1e-6)
    e = tensor(np.zeros((0, 3)), device, "float32", True)  # empty
    assert F.dropout(e, 0.5).shape == (0, 3)


def test_p_one_and_extreme_values(device):
    x = tensor(np.full((3, 4), 1e30), device, "float32", True)
    y = F.dropout(x, 1.0)
    np.testing.assert_array_equal(cpu(y), 0.0)
    y = F.dropout(x, 0.5)
    assert np.all(np.isfinite(cpu(y)))


def test_use_fused_switch(device):
    x = tensor(np.ones((3, 3)), device, "float32", True)
    with mg.use_fused(False):
        assert "DropoutFn" not in grad_fn_names(F.dropout(x, 0.5))
    assert "DropoutFn" in grad_fn_names(F.dropout(x, 0.5))
    assert F.dropout(x, 0.5, training=False) is x



def test_cpu_p_rounding_to_one_drops_everything():
    x = tensor(np.ones((4, 4)), "cpu", "float32", True)
    np.testing.assert_array_equal(cpu(F.dropout(x, 1 - 1e-9)), 0.0)
    assert np.all(cpu(F.dropout(x, 1e-12)) > 0)
