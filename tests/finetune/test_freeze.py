"""Freezing, counts, summary, head replacement, layer-wise groups, gradual unfreezing."""

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, optim
from minigrad.finetune import (
    GradualUnfreezing,
    count_parameters,
    freeze,
    layerwise_lr_groups,
    replace_head,
    summary,
    trainable_parameters,
    unfreeze,
)
from minigrad.nn import functional as F


def _mlp():
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))


def _snapshot(model):
    return {n: p.detach().numpy().copy() for n, p in model.named_parameters()}


def test_frozen_params_get_no_grad_no_decay_and_do_not_change():
    model = _mlp()
    freeze(model, exclude=["4.*"])
    before = _snapshot(model)
    opt = optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.5)  # all params, strong decay
    x, y = mg.randn(16, 5), mg.randint(0, 3, (16,))
    for _ in range(3):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        for name, p in model.named_parameters():
            assert (p.grad is None) == (not name.startswith("4.")), name
        opt.step()
    after = _snapshot(model)
    for name in before:
        if name.startswith("4."):
            assert not np.array_equal(before[name], after[name])
        else:
            np.testing.assert_array_equal(before[name], after[name])


def test_frozen_input_layers_record_no_graph():
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 1))
    freeze(model[0])
    hidden = model[0](mg.randn(2, 3))
    assert not hidden.requires_grad and hidden.grad_fn is None


def test_freeze_drops_stale_gradients_and_unfreeze_patterns():
    model = _mlp()
    model(mg.randn(2, 5)).sum().backward()
    freeze(model)
    assert all(p.grad is None and not p.requires_grad for p in model.parameters())
    unfreeze(model, include=["2", "*.bias"])
    names = [n for n, _ in trainable_parameters(model, named=True)]
    assert names == ["0.bias", "2.weight", "2.bias", "4.bias"]
    with pytest.raises(ValueError, match="no parameter matches"):
        freeze(model, include=["encoder.*"])


def test_counts_and_summary(capsys):
    model = _mlp()
    total = 5 * 8 + 8 + 8 * 8 + 8 + 8 * 3 + 3
    assert count_parameters(model) == (total, total)
    freeze(model[0])
    assert count_parameters(model) == (total, total - 48)
    text = summary(model)
    assert capsys.readouterr().out.strip() == text.strip()
    assert f"Total params: {total:,}" in text and "Frozen params: 48" in text
    assert "Linear" in text and "(model)" in text
    assert summary(model, max_depth=0, print_fn=None).count("Linear") == 0


def test_shared_parameter_counted_once():
    emb = nn.Embedding(10, 4)
    head = nn.Linear(4, 10, bias=False)
    head.weight = emb.weight
    model = nn.Sequential(emb, head)
    assert count_parameters(model) == (40, 40)


def test_replace_head_keeps_device_dtype_and_order():
    model = _mlp().double()
    old = replace_head(model, "4", nn.Linear(8, 2))
    assert old.out_features == 3
    assert model[4].weight.dtype == np.float64
    assert model(mg.randn(2, 5, dtype=mg.float64)).shape == (2, 2)
    assert [n for n, _ in model.named_children()] == ["0", "1", "2", "3", "4"]
    with pytest.raises(AttributeError, match="has no sub-module 'head'"):
        replace_head(model, "head", nn.Linear(8, 2))


def test_layerwise_lr_groups_default_and_explicit():
    model = _mlp()
    groups = layerwise_lr_groups(model, base_lr=1.0, decay=0.5)
    assert [(g["name"], g["lr"]) for g in groups] == [("0", 0.25), ("2", 0.5), ("4", 1.0)]
    opt = optim.SGD(groups, lr=0.1)
    assert [g["param_names"] for g in opt.param_groups][0] == ["0.weight", "0.bias"]

    groups = layerwise_lr_groups(model, 1.0, 0.1, layers=[["0", "2"], "4"], weight_decay=0.1,
                                 no_decay=["*.bias"])
    summary_ = [(g["name"], g["lr"], g["weight_decay"], len(g["params"])) for g in groups]
    assert summary_ == [("0+2", 0.1, 0.1, 2), ("0+2", 0.1, 0.0, 2), ("4", 1.0, 0.1, 1),
                        ("4", 1.0, 0.0, 1)]
    with pytest.raises(ValueError, match="match no layer: 4.weight, 4.bias"):
        layerwise_lr_groups(model, 1.0, 0.5, layers=["0", "2"])
    freeze(model[0])
    assert [g["name"] for g in layerwise_lr_groups(model, 1.0, 0.5)] == ["2", "4"]
    assert len(layerwise_lr_groups(model, 1.0, 0.5, trainable_only=False)) == 3


def test_gradual_unfreezing_with_fit():
    from minigrad.data.loader import DataLoader, TensorDataset
    from minigrad.train import fit

    model = _mlp()
    x = np.random.default_rng(0).standard_normal((32, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    opt = optim.Adam(layerwise_lr_groups(model, 1e-2, 0.5, trainable_only=False))
    before = _snapshot(model)
    seen = []

    class Spy(GradualUnfreezing):
        def on_epoch_begin(self, epoch, logs=None):
            super().on_epoch_begin(epoch, logs)
            seen.append((self.unfrozen, count_parameters(model)[1]))

    cb = Spy(model, layers=["0", "2", "4"], every=1)
    fit(model, F.cross_entropy, opt, loader, epochs=1, callbacks=[cb], verbose=0)
    after = _snapshot(model)
    assert seen == [(1, 27)]
    assert np.array_equal(before["0.weight"], after["0.weight"])
    assert np.array_equal(before["2.weight"], after["2.weight"])
    assert not np.array_equal(before["4.weight"], after["4.weight"])
    fit(model, F.cross_entropy, opt, loader, epochs=3, callbacks=[cb], verbose=0)
    assert seen[1:] == [(1, 27), (2, 99), (3, 147)]
    assert not np.array_equal(before["0.weight"], _snapshot(model)["0.weight"])
