"""The fused attention (kernels/attention.py) against its composite reference
(``references.scaled_dot_product_attention``), through ``F.scaled_dot_product_attention`` and
``MultiheadAttention``. (Named ``test_attention_kernel`` so that it does not clash with
tests/nn/test_attention.py.)"""

import numpy as np
import pytest
from kernel_utils import assert_same, assert_same_second_order, cpu, grad_fn_names, tensor
from kernel_utils import fused_on  # noqa: F401  (autouse: kernels on, whatever the env)

import minigrad as mg
from minigrad import kernels, nn
from minigrad.nn.attention import scaled_dot_product_attention as sdpa

MASKS = ["none", "bool", "padding", "float", "causal", "dead_row", "wide_mask"]


def _case(device, dtype, kind, B=2, H=3, L=5, S=7, E=4, Ev=6, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    q = tensor(rng.standard_normal((B, H, L, E)) * scale, device, dtype, True)
    k = tensor(rng.standard_normal((B, H, S, E)), device, dtype, True)
    v = tensor(rng.standard_normal((B, H, S, Ev)), device, dtype, True)
    mask, causal = None, False
    if kind == "bool":
        m = rng.random((L, S)) > 0.4
        m[:, 0] = True
        mask = tensor(m, device)
    elif kind == "padding":  # key padding, broadcast over heads and queries
        m = np.ones((B, 1, 1, S), dtype=bool)
        m[1, ..., -3:] = False
        mask = tensor(m, device)
    elif kind == "float":
        m = rng.standard_normal((B, 1, L, S))
        m[0, 0, 1, 2:] = -np.inf
        mask = tensor(m, device, dtype)
    elif kind == "causal":
        causal = True
    elif kind == "dead_row":
        m = np.ones((L, S), dtype=bool)
        m[1] = False  # query 1 may attend nothing: zeros, as PyTorch 2.13
        mask = tensor(m, device)
    elif kind == "wide_mask":  # a mask with a batch dim that q, k, v broadcast over
        q, k, v = (tensor(cpu(t)[0], device, dtype, True) for t in (q, k, v))
        m = rng.random((B, H, L, S)) > 0.3
        m[..., 0] = True
        mask = tensor(m, device)
    return q, k, v, mask, causal


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kind", MASKS)
def test_matches_reference(device, dtype, kind):
    q, k, v, mask, causal = _case(device, dtype, kind)
    out, grads = assert_same(lambda q, k, v: sdpa(q, k, v, mask, is_causal=causal),
                             [q, k, v], dtype=dtype)
    assert out[0].dtype == np.dtype(dtype)
    if kind == "dead_row":
        np.testing.assert_array_equal(out[0][:, :, 1], 0.0)
        np.testing.assert_array_equal(grads[0][:, :, 1], 0.0)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("L,S", [(128, 128), (200, 130), (130, 300), (300, 40)])
def test_causal_at_larger_sizes(device, dtype, L, S):
    """Causal masks over several cache-sized groups, with as many queries as keys, more (the
    last rows see every key) and fewer: the same output and gradients as the reference."""
    q, k, v, _, _ = _case(device, dtype, "none", B=1, H=2, L=L, S=S, E=8, Ev=5)
    assert_same(lambda q, k, v: sdpa(q, k, v, is_causal=True), [q, k, v], dtype=dtype)


def _structured_mask(kind, L, S):
    """2-D masks whose row blocks attend only part of the keys (True = may attend)."""
    i, j = np.arange(L)[:, None], np.arange(S)[None, :]
    if kind == "band":  # a sliding window of 24 keys: blocks start past key 0
        return (j <= i) & (j > i - 24)
    if kind == "dead_block":  # the first 130 queries attend nothing (a whole empty block)
        return (j <= i) & (i >= 130)
    if kind == "unused_keys":  # the last 40 keys are attended by no query: zero dk, dv
        return (j <= i) & (j < S - 40)
    raise ValueError(kind)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kind", ["band", "dead_block", "unused_keys", "band_float"])
def test_masks_that_skip_key_ranges(device, dtype, kind):
    """Masks under which whole key ranges of a row block are skipped (``_row_blocks``): the
    same output and gradients as the reference, exact zeros where nothing is attended."""
    L, S = 300, 290
    allowed = _structured_mask(kind.replace("_float", ""), L, S)
    blocks = kernels.attention._row_blocks(np.where(allowed, 0.0, -np.inf), L, S)
    assert len(blocks) == 3  # the path under test: blocks of 128 rows, not one
    if kind == "band":
        assert sum(ks > 0 for _, _, ks, _, _ in blocks) == 2  # rows 128-299 start past 0
    if kind == "dead_block":
        assert (0, 128, 0, 0) in [b[:4] for b in blocks]
    q, k, v, _, _ = _case(device, dtype, "none", B=1, H=2, L=L, S=S, E=8, Ev=5)
    mask = tensor(allowed, device)
    if kind == "band_float":  # an additive mask, finite where allowed
        rng = np.random.default_rng(4)
        mask = tensor(np.where(allowed, rng.standard_normal((L, S)), -np.inf), device, dtype)
    out, grads = assert_same(lambda q, k, v: sdpa(q, k, v, mask), [q, k, v], dtype=dtype)
    if kind == "dead_block":
        np.testing.assert_array_equal(out[0][..., :130, :], 0.0)
        np.testing.assert_array_equal(grads[0][..., :130, :], 0.0)
    if kind == "unused_keys":
        np.testing.assert_array_equal(grads[1][..., -40:, :], 0.0)
        np.testing.assert_array_equal(grads[2][..., -40:, :], 0.0)


def test_row_blocks_plan():
    causal = np.where(np.tri(512, 512, dtype=bool), 0.0, -np.inf)
    blocks = kernels.attention._row_blocks(causal, 512, 512)
    assert [b[:4] for b in blocks] == [(384, 512, 0, 512), (256, 384, 0, 384),
                                       (128, 256, 0, 256), (0, 128, 0, 128)]
    assert all(b[4] is not None and b[4].shape == (128, b[3]) for b in blocks)
    band = np.where(np.abs(np.subtract.outer(np.arange(512), np.arange(512))) < 8, 0.0, -np.inf)
    assert [b[2:4] for b in kernels.attention._row_blocks(band, 512, 512)][-1] == (377, 512)
    # nothing worth skipping, a mask per batch entry, no mask, a short sequence: one block
    for bias, L in ((np.zeros((512, 512)), 512), (causal[None], 512), (None, 512),
                    (causal[:128, :128], 128)):
        assert kernels.attention._row_blocks(bias, L, 512 if L == 512 else 128) == [
            (0, L, 0, 512 if L == 512 else 128, bias)]


@pytest.mark.parametrize("kind", MASKS)
def test_gradcheck_fused_function(device, kind):
    q, k, v, mask, causal = _case(device, "float64", kind, B=2, H=1, L=3, S=4, E=2, Ev=3)
    fn = lambda q, k, v: kernels.attention.apply(q, k, v, mask, causal)  # noqa: E731
    assert "AttentionFn" in grad_fn_names(fn(q, k, v))
    assert mg.autograd.gradcheck(fn, [q, k, v])


@pytest.mark.parametrize("kind", ["float", "causal"])
def test_create_graph_differentiates_the_reference(device, kind):
    q, k, v, mask, causal = _case(device, "float64", kind, B=1, H=2, L=3, S=3, E=2, Ev=2)
    assert_same_second_order(lambda q, k, v: sdpa(q, k, v, mask, is_causal=causal), [q, k, v])


@pytest.mark.parametrize("shape", [((1, 4), (3, 4), (3, 5)), ((2, 9, 1), (2, 2, 1), (2, 2, 3)),
                                   ((3, 1, 33, 8), (3, 1, 17, 8), (3, 1, 17, 1))])
def test_odd_shapes(device, shape):
    rng = np.random.default_rng(1)
    q, k, v = (tensor(rng.standard_normal(s), device, "float64", True) for s in shape)
    assert_same(lambda q, k, v: sdpa(q, k, v, scale=0.3), [q, k, v])
    assert_same(lambda q, k, v: sdpa(q, k, v, is_causal=True), [q, k, v])


def test_noncontiguous_inputs(device):
    rng = np.random.default_rng(2)
    # (B, L, H, E) projections viewed as (B, H, L, E), as MultiheadAttention makes them
    q, k, v = (tensor(rng.standard_normal((2, 6, 3, 4)), device, "float32", True)
               for _ in range(3))

    def fn(q, k, v):
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        assert not q.data.flags.c_contiguous
        return sdpa(q, k, v, is_causal=True)

    assert_same(fn, [q, k, v], dtype="float32")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_extreme_logits(device, dtype):
    q, k, v, mask, causal = _case(device, dtype, "padding", scale=1e4)
    out, grads = assert_same(lambda q, k, v: sdpa(q, k, v, mask), [q, k, v], dtype=dtype)
    assert all(np.all(np.isfinite(a)) for a in out + grads)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_multihead_attention_paths(device, dtype):
    mha = nn.MultiheadAttention(12, 3, batch_first=True).to(device=device, dtype=dtype)
    rng = np.random.default_rng(3)
    x = tensor(rng.standard_normal((2, 5, 12)), device, dtype, True)
    kpm = np.zeros((2, 5), dtype=bool)
    kpm[1, -2:] = True
    kpm = tensor(kpm, device)

    def fn(x, *params):
        return mha(x, x, x, key_padding_mask=kpm, need_weights=False, is_causal=True)[0]

    assert "PackedAttentionFn" in grad_fn_names(fn(x))  # self-attention: the packed kernel
    assert_same(fn, [x, *mha.parameters()], dtype=dtype)
    # with the weights asked for, the composite runs (the fused kernel does not return them)
    assert not {"AttentionFn", "PackedAttentionFn"} & grad_fn_names(mha(x, x, x)[0])


def test_fallback_rule(device):
    q, k, v, mask, _ = _case(device, "float64", "float")
    assert "AttentionFn" not in grad_fn_names(sdpa(q, k, v, dropout_p=0.5))
    mask_grad = tensor(cpu(mask), device, "float64", True)
    assert "AttentionFn" not in grad_fn_names(sdpa(q, k, v, mask_grad))
    assert "AttentionFn" in grad_fn_names(sdpa(q, k, v, mask))
    mha = nn.MultiheadAttention(6, 2, dropout=0.5).to(device)  # training with dropout
    x = tensor(np.ones((3, 1, 6)), device, "float32", True)
    assert not {"AttentionFn", "PackedAttentionFn"} & grad_fn_names(
        mha(x, x, x, need_weights=False)[0])
    mha.eval()
    assert "PackedAttentionFn" in grad_fn_names(mha(x, x, x, need_weights=False)[0])


def test_use_fused_switch(device):
    q, k, v, _, _ = _case(device, "float32", "none")
    with mg.use_fused(False):
        assert "AttentionFn" not in grad_fn_names(sdpa(q, k, v))
    assert "AttentionFn" in grad_fn_names(sdpa(q, k, v))


def test_flash_geometry():
    grid, block, smem, tile = kernels.attention.flash_geometry(4096, 64, 64, 32)
    assert grid == (32, 64) and block == (64,) and smem == 64 * 128 * 4 and tile == 64
    assert kernels.attention.flash_geometry(1, 128, 128, 1)[0] == (1, 1)
    for E, Ev, itemsize, extra in ((128, 128, 4, 2), (128, 128, 8, 2), (16, 8, 8, 0)):
        _, _, smem, tile = kernels.attention.flash_geometry(100, E, Ev, 3, itemsize, extra)
        assert smem <= 48 * 1024 and smem == tile * (E + Ev + extra) * itemsize and tile >= 8


@pytest.mark.parametrize("scale", [0.3, -0.7])
@pytest.mark.parametrize("kind", ["none", "causal", "bool", "float"])
def test_scale_taken_out_of_zero_or_minus_inf_masks(device, kind, scale):
    """Under masks of 0 / -inf (none, causal, bool) and a positive scale, the NumPy kernel
    scales the shifted scores instead of q; a negative scale or a float mask scales q."""
    q, k, v, mask, causal = _case(device, "float64", kind, seed=4)
    assert_same(lambda q, k, v: sdpa(q, k, v, mask, is_causal=causal, scale=scale), [q, k, v])
    if device == "cpu":
        fn = sdpa(q, k, v, mask, is_causal=causal, scale=scale).grad_fn
        assert fn.fold_scale == (scale > 0 and kind != "float")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_unshifted_and_shifted_softmax(device, dtype):
    """The NumPy forward takes the exponentials unshifted where a chunk's scaled scores are
    small: a query whose scores all sit far below exp's range (a float mask: -3000, in float32
    -200, where the scores keep more digits) underflows there and is redone shifted; large
    scores are shifted from the start; a query with no key stays zero."""
    rng = np.random.default_rng(6)
    q, k, v = (tensor(rng.standard_normal((2, 2, 6, 4)), device, dtype, True) for _ in range(3))
    m = rng.standard_normal((6, 6))
    m[2] = -3000.0 if dtype == "float64" else -200.0  # query 2: every exp underflows
    mask = tensor(m, device, dtype)
    out, grads = assert_same(lambda q, k, v: sdpa(q, k, v, mask), [q, k, v], dtype=dtype)
    assert np.all(np.isfinite(out[0])) and np.abs(out[0][:, :, 2]).max() > 0
    big = tensor(cpu(q) * 300, device, dtype, True)
    assert_same(lambda q, k, v: sdpa(q, k, v, is_causal=True), [big, k, v], dtype=dtype)
    allowed = np.ones((6, 6), dtype=bool)
    allowed[4] = False  # query 4 may attend nothing: zeros
    out, _ = assert_same(lambda q, k, v: sdpa(q, k, v, tensor(allowed, device)), [q, k, v],
                         dtype=dtype)
    np.testing.assert_array_equal(out[0][:, :, 4], 0.0)


@pytest.mark.parametrize("kind", ["causal", "padding", "float", "dead_row", "none"])
def test_batch_parts_on_threads(monkeypatch, kind):
    """With two kernel threads (and OpenBLAS workers that can be stopped) the NumPy kernel
    spreads parts of the batch over them (the BLAS on one thread meanwhile, its count restored
    after): the same numbers as in one thread, forward and backward, and the same for the
    packed self-attention."""
    att = kernels.attention
    if not att._blas.can_quiet():
        pytest.skip("no OpenBLAS whose workers can be stopped: the kernel stays on one thread")
    q, k, v, mask, causal = _case("cpu", "float64", kind, B=5, H=3, L=6, S=6, E=4, Ev=4)
    qkv = tensor(np.random.default_rng(1).standard_normal((5, 6, 36)), "cpu", "float64", True)
    packed_mask = None if kind != "padding" else tensor(
        np.arange(6)[None, None, None, :] < np.array([6, 4, 5, 3, 6])[:, None, None, None],
        "cpu")

    def run():
        out = sdpa(q, k, v, mask, is_causal=causal)
        out_p = att.apply_packed(qkv, 3, packed_mask, is_causal=causal)
        gy = np.random.default_rng(2)
        grads = mg.grad(out, [q, k, v], tensor(gy.standard_normal(out.shape), "cpu", "float64"))
        grads_p = mg.grad(out_p, [qkv], tensor(gy.standard_normal(out_p.shape), "cpu",
                                               "float64"))
        return [cpu(out), cpu(out_p)] + [cpu(g) for g in grads + grads_p]

    monkeypatch.setenv("MINIGRAD_NUM_THREADS", "1")
    one = run()
    calls = []
    real = att._blas.run_quiet
    monkeypatch.setattr(att._blas, "run_quiet",
                        lambda fn, parts: calls.append(1) or real(fn, parts))
    monkeypatch.setattr(att, "ROW_CHUNK", 2 * 3 * 6 * 6)  # parts of 2 batch entries: 3 parts
    monkeypatch.setenv("MINIGRAD_NUM_THREADS", "2")
    can_quiet = att._blas.can_quiet
    monkeypatch.setattr(att._blas, "can_quiet", lambda: False)
    assert run() is not None and not calls  # BLAS workers that cannot be stopped: one thread
    monkeypatch.setattr(att._blas, "can_quiet", can_quiet)
    before = mg.get_num_threads()
    two = run()
    assert len(calls) == 4  # forward and backward of each kernel, threaded
    assert mg.get_num_threads() == before
    for a, b in zip(one, two):
        np.testing.assert_allclose(b, a, rtol=1e-13, atol=1e-15)

