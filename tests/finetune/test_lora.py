"""LoRA: unchanged at init, only adapters train, merge/unmerge, adapters-only save/load."""

import re

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, optim
from minigrad.finetune import (
    LoRALinear,
    apply_lora,
    count_parameters,
    load_checkpoint,
    load_lora,
    load_lora_state_dict,
    lora_state_dict,
    merge_lora,
    remove_lora,
    save_checkpoint,
    save_lora,
    trainable_parameters,
    unmerge_lora,
)
from minigrad.nn import functional as F


class Block(nn.Module):
    def __init__(self, d=12):
        super().__init__()
        self.query = nn.Linear(d, d)
        self.key = nn.Linear(d, d)
        self.value = nn.Linear(d, d)
        self.out = nn.Linear(d, d)

    def forward(self, x):
        att = F.softmax(self.query(x) @ self.key(x).transpose(-1, -2), dim=-1)
        return x + self.out(att @ self.value(x))


class Net(nn.Module):
    def __init__(self, d=12, classes=3):
        super().__init__()
        self.blocks = nn.ModuleList([Block(d), Block(d)])
        self.norm = nn.LayerNorm(d)
        self.classifier = nn.Linear(d, classes)

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return self.classifier(self.norm(x).mean(dim=1))


def _numpy(t):
    return t.detach().numpy()


def _train(model, steps=5, lr=0.05):
    opt = optim.Adam(trainable_parameters(model), lr=lr)
    x, y = mg.randn(8, 5, 12), mg.randint(0, 3, (8,))
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()


def test_output_unchanged_at_init_and_names():
    model = Net()
    x = mg.randn(4, 5, 12)
    before = _numpy(model(x))
    names = apply_lora(model, targets=["query", "value"], r=4, alpha=8)
    assert names == ["blocks.0.query", "blocks.0.value", "blocks.1.query", "blocks.1.value"]
    np.testing.assert_array_equal(_numpy(model(x)), before)
    layer = model.blocks[0].query
    assert isinstance(layer, LoRALinear) and layer.scaling == 2.0
    assert layer.lora_A.shape == (4, 12) and layer.lora_B.shape == (12, 4)
    assert np.all(_numpy(layer.lora_B) == 0)
    assert np.abs(_numpy(layer.lora_A)).max() <= 1 / np.sqrt(12)  # kaiming-uniform(a=sqrt(5))
    assert np.abs(_numpy(layer.lora_A)).max() > 0
    # the base layer's parameter names stay: a base checkpoint still loads
    keys = list(model.state_dict())
    assert "blocks.0.query.weight" in keys and "blocks.0.query.lora_A" in keys


def test_target_forms_and_no_match_error():
    model = Net()
    assert apply_lora(model, ["blocks.*.out"], r=2) == ["blocks.0.out", "blocks.1.out"]
    assert apply_lora(Net(), [re.compile(r"blocks\.1\.(key|value)")], r=2) == [
        "blocks.1.key", "blocks.1.value"]
    assert apply_lora(Net(), ["re:.*0\\.query"], r=2) == ["blocks.0.query"]
    with pytest.raises(ValueError, match="the Linear layers are: blocks.0.query"):
        apply_lora(Net(), ["attention.q_proj"])


def test_only_adapters_and_head_train():
    model = Net()
    apply_lora(model, ["query", "value"], r=2, trainable=["classifier"])
    names = [n for n, _ in trainable_parameters(model, named=True)]
    assert all(n.endswith(("lora_A", "lora_B")) or n.startswith("classifier") for n in names)
    assert len(names) == 4 * 2 + 2
    total, trainable = count_parameters(model)
    assert trainable == 4 * (2 * 12 + 12 * 2) + 12 * 3 + 3
    before = {n: _numpy(p).copy() for n, p in model.named_parameters()}
    _train(model)
    for n, p in model.named_parameters():
        changed = not np.array_equal(before[n], _numpy(p))
        assert changed == (n in names), n


def test_merge_unmerge_equal_outputs():
    model = Net()
    apply_lora(model, ["query", "key", "value", "out"], r=4, trainable=["classifier"])
    _train(model)
    model.eval()
    x = mg.randn(3, 5, 12)
    ref = _numpy(model(x))
    assert not np.allclose(_numpy(model.blocks[0].query.lora_B), 0)
    w0 = _numpy(model.blocks[0].query.weight).copy()
    assert len(merge_lora(model)) == 8
    np.testing.assert_allclose(_numpy(model(x)), ref, atol=1e-6, rtol=0)
    assert not np.array_equal(_numpy(model.blocks[0].query.weight), w0)
    assert len(unmerge_lora(model)) == 8
    np.testing.assert_allclose(_numpy(model(x)), ref, atol=1e-6, rtol=0)
    np.testing.assert_allclose(_numpy(model.blocks[0].query.weight), w0, atol=1e-7)
    merge_lora(model, unwrap=True)
    assert type(model.blocks[0].query) is nn.Linear
    np.testing.assert_allclose(_numpy(model(x)), ref, atol=1e-6, rtol=0)


def test_remove_lora_restores_base():
    model = Net()
    x = mg.randn(2, 5, 12)
    before = _numpy(model(x))
    apply_lora(model, ["query"], r=2)
    _train(model)
    remove_lora(model)
    assert type(model.blocks[0].query) is nn.Linear
    np.testing.assert_array_equal(_numpy(model(x)), before)


def test_adapters_only_roundtrip_onto_fresh_base(tmp_path):
    mg.manual_seed(1)
    base = Net()
    base_path = tmp_path / "base.safetensors"
    mg.save(base.state_dict(), base_path)

    tuned = Net()
    tuned.load_state_dict(mg.load(base_path))
    apply_lora(tuned, ["query", "value"], r=3, alpha=6, trainable=["classifier"])
    _train(tuned)
    tuned.eval()
    x = mg.randn(4, 5, 12)
    ref = _numpy(tuned(x))

    # the adapters alone: only lora_A/lora_B (the head would be saved separately)
    sd = lora_state_dict(tuned)
    assert all(k.endswith(("lora_A", "lora_B")) for k in sd) and len(sd) == 8
    adapter_path = tmp_path / "adapters.safetensors"
    save_lora(tuned, adapter_path)
    head = {k: v for k, v in tuned.state_dict().items() if k.startswith("classifier")}

    for loader in ("dict", "file"):
        fresh = Net()
        fresh.load_state_dict(mg.load(base_path))
        fresh.load_state_dict(head, strict=False)
        if loader == "dict":
            loaded = load_lora_state_dict(fresh, lora_state_dict(tuned), alpha=6)
        else:
            loaded = load_lora(fresh, adapter_path)
        assert loaded == ["blocks.0.query", "blocks.0.value", "blocks.1.query", "blocks.1.value"]
        assert fresh.blocks[0].query.scaling == 2.0
        fresh.eval()
        np.testing.assert_array_equal(_numpy(fresh(x)), ref)


def test_load_lora_errors():
    model = Net()
    apply_lora(model, ["query"], r=2)
    sd = lora_state_dict(model)
    with pytest.raises(ValueError, match="another rank"):
        other = Net()
        apply_lora(other, ["query"], r=4)
        load_lora_state_dict(other, sd)
    with pytest.raises(KeyError, match="not a LoRA adapter key"):
        load_lora_state_dict(Net(), {"blocks.0.query.weight": mg.zeros(12, 12)})
    with pytest.raises(KeyError, match="no Linear layer 'blocks.5.query'"):
        load_lora_state_dict(Net(), {"blocks.5.query.lora_A": mg.zeros(2, 12),
                                     "blocks.5.query.lora_B": mg.zeros(12, 2)})


def test_lora_model_checkpoint_roundtrip(tmp_path):
    model = Net()
    apply_lora(model, ["query", "value"], r=2)
    opt = optim.AdamW(trainable_parameters(model), lr=1e-2)
    _train(model)
    path = tmp_path / "ckpt.safetensors"
    save_checkpoint(path, model, opt)
    fresh = Net()
    apply_lora(fresh, ["query", "value"], r=2)
    load_checkpoint(path, fresh, optim.AdamW(trainable_parameters(fresh), lr=1e-2))
    x = mg.randn(2, 5, 12)
    np.testing.assert_array_equal(_numpy(fresh(x)), _numpy(model(x)))


def test_gradcheck_lora_linear_float64():
    base = nn.Linear(5, 4).double()
    layer = LoRALinear(base, r=2, alpha=3)
    mg.nn.init.normal_(layer.lora_B)  # nonzero B, so A's gradient is nonzero too
    x = mg.randn(3, 5, dtype=mg.float64, requires_grad=True)
    assert mg.autograd.gradcheck(lambda x, a, b: layer(x), [x, layer.lora_A, layer.lora_B])
    unfrozen = LoRALinear(nn.Linear(5, 4).double(), r=2)
    for p in (unfrozen.weight, unfrozen.bias):
        p.requires_grad_(True)
    mg.nn.init.normal_(unfrozen.lora_B)
    assert mg.autograd.gradcheck(
        lambda x, w, b, a, bb: unfrozen(x),
        [x, unfrozen.weight, unfrozen.bias, unfrozen.lora_A, unfrozen.lora_B],
    )


def test_lora_dropout_only_in_training():
    layer = LoRALinear(nn.Linear(6, 6), r=2, dropout=0.5)
    mg.nn.init.normal_(layer.lora_B)
    x = mg.randn(4, 6)
    layer.eval()
    a, b = _numpy(layer(x)), _numpy(layer(x))
    np.testing.assert_array_equal(a, b)
    layer.train()
    assert not np.array_equal(_numpy(layer(x)), _numpy(layer(x)))


def test_lora_moves_with_model_dtype():
    model = Net()
    apply_lora(model, ["query"], r=2)
    model.double()
    assert model.blocks[0].query.lora_A.dtype == np.float64
    assert model(mg.randn(1, 5, 12, dtype=mg.float64)).dtype == np.float64
