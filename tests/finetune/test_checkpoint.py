"""Checkpoints: exact resume (bitwise on CPU), round trips and clear errors."""

import json

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, optim
from minigrad.data.loader import DataLoader, TensorDataset
from minigrad.finetune import CheckpointError, load_checkpoint, save_checkpoint
from minigrad.finetune.checkpoint import METADATA_KEY
from minigrad.io.safetensors import read_metadata
from minigrad.nn import functional as F
from minigrad.optim import lr_scheduler

STEPS_PER_EPOCH = 4


def _data():
    rng = np.random.default_rng(123)
    x = rng.standard_normal((64, 6)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    return TensorDataset(x, y)


def _build(scheduler_kind="sequential"):
    """A fresh model/optimizer/scheduler; weights come from mg's RNG (re-seeded by caller)."""
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 2))
    opt = optim.Adam(
        [
            {"params": model[0].parameters()},
            {"params": model[3].parameters(), "lr": 5e-3, "weight_decay": 1e-4},
        ],
        lr=1e-2,
    )
    if scheduler_kind == "sequential":
        sched = lr_scheduler.SequentialLR(
            opt,
            [lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=3),
             lr_scheduler.CosineAnnealingLR(opt, T_max=20)],
            milestones=[3],
        )
    else:
        sched = lr_scheduler.MultiStepLR(opt, milestones=[2, 2, 5], gamma=0.5)
    return model, opt, sched


def _train_epochs(model, opt, sched, loader, epochs):
    losses = []
    model.train()
    for _ in range(epochs):
        for xb, yb in loader:  # shuffle drawn from mg's CPU generator at each epoch
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb)  # dropout draws from the same generator
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
    return losses


@pytest.mark.parametrize("scheduler_kind", ["sequential", "multistep"])
def test_exact_resume_bitwise(tmp_path, scheduler_kind):
    epochs, k = 5, 2
    loader = DataLoader(_data(), batch_size=16, shuffle=True)

    mg.manual_seed(7)
    model, opt, sched = _build(scheduler_kind)
    full = _train_epochs(model, opt, sched, loader, epochs)

    mg.manual_seed(7)
    model, opt, sched = _build(scheduler_kind)
    first = _train_epochs(model, opt, sched, loader, k)
    path = tmp_path / "ckpt.safetensors"
    save_checkpoint(path, model, opt, sched, step=k * STEPS_PER_EPOCH, epoch=k,
                    extra={"losses": first})
    del model, opt, sched

    # a fresh process would start from a different RNG state: disturb it on purpose
    mg.manual_seed(999)
    mg.randn(10)
    model, opt, sched = _build(scheduler_kind)
    info = load_checkpoint(path, model, opt, sched)
    assert info["epoch"] == k and info["step"] == k * STEPS_PER_EPOCH
    assert info["extra"]["losses"] == first
    rest = _train_epochs(model, opt, sched, loader, epochs - k)

    assert len(full) == epochs * STEPS_PER_EPOCH
    assert first + rest == full  # bitwise: Python floats compared exactly
    assert first != rest[: len(first)]  # the run really moved on


def test_roundtrip_of_optimizer_and_scheduler_state(tmp_path):
    mg.manual_seed(0)
    model, opt, sched = _build()
    loader = DataLoader(_data(), batch_size=16, shuffle=True)
    _train_epochs(model, opt, sched, loader, 1)
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, model, opt, sched)
    model2, opt2, sched2 = _build()
    load_checkpoint(path, model2, opt2, sched2)
    for g1, g2 in zip(opt.param_groups, opt2.param_groups):
        assert {k: v for k, v in g1.items() if k != "params"} == \
            {k: v for k, v in g2.items() if k != "params"}
        assert isinstance(g2["betas"], tuple)
    for p1, p2 in zip(model.parameters(), model2.parameters()):
        s1, s2 = opt.state[p1], opt2.state[p2]
        assert set(s1) == set(s2)
        for name in s1:
            np.testing.assert_array_equal(s1[name].numpy(), s2[name].numpy())
            assert s1[name].dtype == s2[name].dtype
    assert sched.state_dict()["last_epoch"] == sched2.state_dict()["last_epoch"]
    assert sched.get_last_lr() == sched2.get_last_lr()


def test_file_layout_is_safetensors_with_json_metadata(tmp_path):
    model, opt, sched = _build()
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, model, opt, sched, step=3, extra={"note": "hi", "big": 2**100})
    tensors = mg.load(path)
    assert "model.0.weight" in tensors and "model.3.bias" in tensors
    doc = json.loads(read_metadata(path)[METADATA_KEY])
    assert doc["step"] == 3 and doc["optimizer"]["param_groups"][1]["params"] == [2, 3]
    assert load_checkpoint(path)["extra"] == {"note": "hi", "big": 2**100}


def test_model_only_and_returned_state(tmp_path):
    model = nn.Linear(3, 2)
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, model=model)
    info = load_checkpoint(path)
    np.testing.assert_array_equal(info["model"]["weight"].numpy(), model.weight.detach().numpy())
    with pytest.raises(CheckpointError, match="no optimizer state"):
        load_checkpoint(path, optimizer=optim.SGD(model.parameters(), lr=0.1))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "nope.safetensors")


def test_not_a_checkpoint(tmp_path):
    plain = tmp_path / "plain.safetensors"
    mg.save({"w": mg.ones(2)}, plain)
    with pytest.raises(CheckpointError, match="not a minigrad checkpoint"):
        load_checkpoint(plain)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"hello, I am not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a minigrad checkpoint"):
        load_checkpoint(junk)


def test_mismatched_model_keys(tmp_path):
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, model=nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1)))
    with pytest.raises(RuntimeError, match="Missing key"):
        load_checkpoint(path, model=nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1),
                                                  nn.Linear(1, 1)))
    with pytest.raises(RuntimeError, match="size mismatch"):
        load_checkpoint(path, model=nn.Sequential(nn.Linear(2, 4), nn.Linear(4, 1)))


def test_optimizer_group_mismatch(tmp_path):
    model, opt, _ = _build()
    model(mg.randn(2, 6)).sum().backward()
    opt.step()
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, model, opt)
    model2 = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 2))
    one_group = optim.Adam(model2.parameters(), lr=1e-2)
    with pytest.raises(CheckpointError, match="param groups do not match"):
        load_checkpoint(path, model2, one_group)
    with pytest.raises(CheckpointError, match="is a Adam, not a SGD"):
        load_checkpoint(path, model2, optim.SGD(model2.parameters(), lr=0.1))


def test_non_json_extra_is_refused_before_writing(tmp_path):
    path = tmp_path / "c.safetensors"
    with pytest.raises(CheckpointError, match="not JSON-able"):
        save_checkpoint(path, extra={"f": object()})
    assert not path.exists()


def test_roundtrip_on_device(tmp_path, device):
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)).to(device)
    opt = optim.AdamW(model.parameters(), lr=1e-2)
    x = mg.randn(5, 4, device=device)
    model(x).sum().backward()
    opt.step()
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, model, opt, epoch=1)
    fresh = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)).to(device)
    fresh_opt = optim.AdamW(fresh.parameters(), lr=1e-2)
    load_checkpoint(path, fresh, fresh_opt)
    for p, q in zip(model.parameters(), fresh.parameters()):
        assert q.device == p.device
        np.testing.assert_array_equal(mg.backend.to_device(p.data, mg.backend.CPU),
                                      mg.backend.to_device(q.data, mg.backend.CPU))
        assert fresh_opt.state[q]["exp_avg"].device == p.device
