"""TransformerDecoderLayer, TransformerDecoder and Transformer: PyTorch's state-dict keys
(loaded both ways), forward and gradient parity with masks, shapes and gradcheck."""

import numpy as np
import pytest
from conftest import to_numpy
from helpers import assert_param_grads_match, copy_mg_to_torch, copy_torch_to_mg

import minigrad as mg
from minigrad import nn

E, H, FF = 8, 2, 16


def _assert_matches_torch(torch, tm, m, out, ref, inputs, rng, param_rtol):
    """``out`` equals PyTorch's ``ref``; then, backward from a random weighting of both, the
    gradients of the ``inputs`` (pairs of minigrad and torch tensors) and of the parameters."""
    np.testing.assert_allclose(to_numpy(out), ref.detach().numpy(), rtol=1e-9, atol=1e-10)
    w = rng.standard_normal(ref.shape)
    (out * mg.tensor(w)).sum().backward()
    (ref * torch.tensor(w)).sum().backward()
    for ours, theirs in inputs:
        np.testing.assert_allclose(to_numpy(ours.grad), theirs.grad.numpy(), rtol=1e-8,
                                   atol=1e-10)
    assert_param_grads_match(tm, m, rtol=param_rtol, atol=1e-10)


@pytest.mark.torch
@pytest.mark.filterwarnings("ignore:enable_nested_tensor")
def test_state_dict_keys_match_torch_both_ways():
    torch = pytest.importorskip("torch")
    pairs = [
        (nn.TransformerDecoderLayer(E, H, FF), torch.nn.TransformerDecoderLayer(E, H, FF)),
        (nn.TransformerDecoder(nn.TransformerDecoderLayer(E, H, FF), 2, norm=nn.LayerNorm(E)),
         torch.nn.TransformerDecoder(torch.nn.TransformerDecoderLayer(E, H, FF), 2,
                                     norm=torch.nn.LayerNorm(E))),
        (nn.Transformer(E, H, 2, 1, FF), torch.nn.Transformer(E, H, 2, 1, FF)),
    ]
    for m, tm in pairs:
        ours, theirs = m.state_dict(), tm.state_dict()
        assert list(ours) == list(theirs)
        for k in ours:
            assert tuple(ours[k].shape) == tuple(theirs[k].shape), k
        copy_torch_to_mg(tm, m)
        for k, v in m.state_dict().items():
            np.testing.assert_array_equal(to_numpy(v), theirs[k].numpy())
        copy_mg_to_torch(torch, m, tm)  # and back: torch accepts our state dict (strict)


@pytest.mark.torch
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
def test_decoder_layer_matches_torch_with_masks(norm_first, batch_first):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    tm = torch.nn.TransformerDecoderLayer(E, H, FF, dropout=0.0, norm_first=norm_first,
                                          batch_first=batch_first, dtype=torch.float64)
    m = nn.TransformerDecoderLayer(E, H, FF, dropout=0.0, norm_first=norm_first,
                                   batch_first=batch_first, dtype=mg.float64)
    copy_torch_to_mg(tm, m)
    rng = np.random.default_rng(0)
    T, S, B = 4, 5, 3
    tgt = rng.standard_normal((B, T, E) if batch_first else (T, B, E))
    mem = rng.standard_normal((B, S, E) if batch_first else (S, B, E))
    causal = np.triu(np.ones((T, T), dtype=bool), 1)
    mem_pad = np.zeros((B, S), dtype=bool)
    mem_pad[1, -2:] = True
    x, mx = mg.tensor(tgt, requires_grad=True), mg.tensor(mem, requires_grad=True)
    tx = torch.tensor(tgt, requires_grad=True)
    tmx = torch.tensor(mem, requires_grad=True)
    out = m(x, mx, tgt_mask=mg.tensor(causal), memory_key_padding_mask=mg.tensor(mem_pad))
    ref = tm(tx, tmx, tgt_mask=torch.tensor(causal),
             memory_key_padding_mask=torch.tensor(mem_pad))
    _assert_matches_torch(torch, tm, m, out, ref, [(x, tx), (mx, tmx)], rng, param_rtol=1e-8)


@pytest.mark.torch
def test_transformer_matches_torch_forward_and_gradients():
    torch = pytest.importorskip("torch")
    torch.manual_seed(1)
    tm = torch.nn.Transformer(E, H, 2, 2, FF, dropout=0.0, batch_first=True,
                              dtype=torch.float64)
    m = nn.Transformer(E, H, 2, 2, FF, dropout=0.0, batch_first=True, dtype=mg.float64)
    copy_torch_to_mg(tm, m)
    rng = np.random.default_rng(1)
    src, tgt = rng.standard_normal((2, 6, E)), rng.standard_normal((2, 4, E))
    tgt_mask = nn.Transformer.generate_square_subsequent_mask(4, dtype=mg.float64)
    ttgt_mask = torch.nn.Transformer.generate_square_subsequent_mask(4, dtype=torch.float64)
    np.testing.assert_array_equal(to_numpy(tgt_mask), ttgt_mask.numpy())
    xs, xt = mg.tensor(src, requires_grad=True), mg.tensor(tgt, requires_grad=True)
    ts, tt = torch.tensor(src, requires_grad=True), torch.tensor(tgt, requires_grad=True)
    out = m(xs, xt, tgt_mask=tgt_mask, tgt_is_causal=True)
    ref = tm(ts, tt, tgt_mask=ttgt_mask, tgt_is_causal=True)
    _assert_matches_torch(torch, tm, m, out, ref, [(xs, ts), (xt, tt)], rng, param_rtol=1e-7)


def test_transformer_xavier_init_shapes_and_errors():
    model = nn.Transformer(E, H, 1, 1, FF)
    w = to_numpy(model.decoder.layers[0].linear1.weight)
    bound = np.sqrt(6.0 / (E + FF))
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.5 * bound
    out = model(mg.randn(7, 2, E), mg.randn(3, 2, E))
    assert out.shape == (3, 2, E)
    with pytest.raises(RuntimeError, match="batch number"):
        model(mg.randn(7, 2, E), mg.randn(3, 3, E))
    with pytest.raises(RuntimeError, match="d_model"):
        model(mg.randn(7, 2, 4), mg.randn(3, 2, 4))


def test_decoder_gradcheck_small():
    layer = nn.TransformerDecoderLayer(4, 2, 6, dropout=0.0, dtype=mg.float64)
    rng = np.random.default_rng(2)
    tgt = mg.tensor(rng.standard_normal((3, 1, 4)), requires_grad=True)
    mem = mg.tensor(rng.standard_normal((2, 1, 4)), requires_grad=True)
    assert mg.autograd.gradcheck(lambda a, b: layer(a, b, tgt_is_causal=True), [tgt, mem])


def test_decoder_dropout_train_vs_eval():
    dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(E, H, FF, dropout=0.3), 2)
    tgt, mem = mg.randn(4, 2, E), mg.randn(5, 2, E)
    assert not np.allclose(to_numpy(dec(tgt, mem)), to_numpy(dec(tgt, mem)))
    dec.eval()
    np.testing.assert_array_equal(to_numpy(dec(tgt, mem)), to_numpy(dec(tgt, mem)))


def test_decoder_gradient_checkpointing_gives_the_same_gradients():
    mg.manual_seed(0)
    dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(E, H, FF, dropout=0.0), 2)
    tgt, mem = mg.randn(4, 2, E), mg.randn(5, 2, E, requires_grad=True)
    dec(tgt, mem).sum().backward()
    plain = [to_numpy(p.grad).copy() for p in dec.parameters()] + [to_numpy(mem.grad).copy()]
    dec.zero_grad()
    mem.grad = None
    dec.gradient_checkpointing_enable()
    dec(tgt, mem).sum().backward()
    again = [to_numpy(p.grad) for p in dec.parameters()] + [to_numpy(mem.grad)]
    for a, b in zip(plain, again):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
