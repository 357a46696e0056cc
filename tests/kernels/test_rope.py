"""The fused rotary embedding (kernels/rope.py) against its composite reference
(``references.rope``), through ``nn.rotary.apply_rotary_pos_emb``."""

import numpy as np
import pytest
from kernel_utils import assert_same, cpu, grad_fn_names, tensor
from kernel_utils import fused_on  # noqa: F401  (autouse: kernels on, whatever the env)

import minigrad as mg
from minigrad import kernels
from minigrad.nn.rotary import RotaryEmbedding, apply_rotary_pos_emb


def _case(device, dtype, B=2, Hq=4, Hk=2, T=5, D=8, cos_batch=None, seed=0):
    rng = np.random.default_rng(seed)
    q = tensor(rng.standard_normal((B, Hq, T, D)), device, dtype, True)
    k = tensor(rng.standard_normal((B, Hk, T, D)), device, dtype, True)
    positions = np.arange(T)[None].repeat(cos_batch or B, 0) + np.arange(cos_batch or B)[:, None]
    cos, sin = RotaryEmbedding(D, 500.0)(tensor(positions, device), dtype=np.dtype(dtype))
    return q, k, cos, sin


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("cos_batch", [None, 1], ids=["per_row", "shared"])
def test_matches_reference(device, dtype, cos_batch):
    q, k, cos, sin = _case(device, dtype, cos_batch=cos_batch)
    out, _ = assert_same(lambda q, k: apply_rotary_pos_emb(q, k, cos, sin), [q, k], dtype=dtype)
    assert out[0].dtype == np.dtype(dtype)


def test_gradcheck_fused_function(device):
    q, _, cos, sin = _case(device, "float64", B=1, Hq=2, T=3, D=4)
    fn = lambda q: kernels.rope.apply(q, cos, sin)  # noqa: E731
    assert "RoPEFn" in grad_fn_names(fn(q))
    assert mg.autograd.gradcheck(fn, [q])


def test_create_graph_differentiates_the_reference(device):
    """RoPE is linear in x: with create_graph the gradient is a function of the upstream
    gradient, recorded through the reference, and equals the kernel's."""
    q, _, cos, sin = _case(device, "float64", B=1, Hq=2, Hk=1, T=3, D=4)
    w = tensor(np.random.default_rng(3).standard_normal(q.shape), device, "float64", True)
    grads = []
    for fused in (True, False):
        with mg.use_fused(fused):
            (g,) = mg.grad((apply_rotary_pos_emb(q, q, cos, sin)[0] * w).sum(), [q],
                           create_graph=True)
            (gw,) = mg.grad((g * g).sum(), [w])
        grads.append((cpu(g), cpu(gw)))
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_noncontiguous_empty_and_switch(device):
    q, k, cos, sin = _case(device, "float32")
    assert_same(lambda q, k: apply_rotary_pos_emb(q.transpose(1, 1), k, cos, sin), [q, k],
                dtype="float32")
    assert "RoPEFn" in grad_fn_names(apply_rotary_pos_emb(q, k, cos, sin)[0])
    with mg.use_fused(False):
        assert "RoPEFn" not in grad_fn_names(apply_rotary_pos_emb(q, k, cos, sin)[0])
    e = tensor(np.zeros((1, 2, 0, 8)), device, "float32", True)
    c0, s0 = cos[:1, :0], sin[:1, :0]
    assert apply_rotary_pos_emb(e, e, c0, s0)[0].shape == (1, 2, 0, 8)
