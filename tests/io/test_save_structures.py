"""mg.save / mg.load like torch.save / torch.load: any nesting of tensors, numbers, strings and
None, to a path or a file object, without pickle; plain tensor dicts stay plain safetensors."""

from __future__ import annotations

import io
import json
import math
import struct
from collections import OrderedDict

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, optim
from minigrad.io import serialization
from minigrad.io.safetensors import SafetensorsError, read_metadata, save_file


def same(a, b):
    """Deep equality, with Tensors compared by dtype, shape and values."""
    if isinstance(a, mg.Tensor):
        return (isinstance(b, mg.Tensor) and a.dtype == b.dtype and a.shape == b.shape
                and np.array_equal(a.detach().numpy(), b.detach().numpy(), equal_nan=True)
                and a.requires_grad == b.requires_grad)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    if isinstance(a, dict):
        return (type(a) is type(b) and list(a) == list(b)
                and all(same(a[k], b[k]) for k in a))
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    return type(a) is type(b) and a == b


STRUCTURES = [
    mg.arange(6).reshape(2, 3),
    mg.tensor(2.5),
    {"a": 1, "b": [1.5, "x", None, True], "c": (mg.ones(2), {"d": mg.zeros(1, dtype=mg.int64)})},
    [mg.ones(2), mg.ones(3), 3, -7, 1e-300, float("inf"), float("nan"), "naïve ✓", ""],
    {0: "int key", 1.5: "float key", None: "none", (1, "a"): "tuple key", "s": False},
    OrderedDict([("z", mg.ones(1)), ("a", 2)]),
    {"empty": [], "nested": [[[[]]]], "t": ()},
    {"big": 2**80, "neg": -(2**70)},
    {"arr": np.arange(4, dtype=np.int16), "scalar": np.float32(1.5)},
    {"a.b": mg.ones(1), "a": {"b": mg.zeros(1)}},  # tensor paths that collide
    None,
    "just a string",
]


@pytest.mark.parametrize("obj", STRUCTURES, ids=range(len(STRUCTURES)))
def test_round_trip_through_a_path_and_a_file_object(obj, tmp_path):
    path = tmp_path / "obj.safetensors"
    mg.save(obj, path)
    assert same(obj, mg.load(path))
    buffer = io.BytesIO()
    mg.save(obj, buffer)
    buffer.seek(0)
    assert same(obj, mg.load(buffer))
    assert buffer.getvalue() == path.read_bytes()


def test_requires_grad_and_sharing_survive(tmp_path):
    w = mg.ones(3, requires_grad=True)
    mg.save({"w": w, "again": [w], "n": 1}, tmp_path / "s.safetensors")
    back = mg.load(tmp_path / "s.safetensors")
    assert back["w"].requires_grad
    assert back["again"][0] is back["w"]  # one tensor stored, one object loaded


def test_model_and_optimizer_checkpoint(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    opt = optim.Adam(model.parameters(), lr=0.01, amsgrad=True)
    sched = optim.lr_scheduler.StepLR(opt, step_size=2)
    for _ in range(3):
        opt.zero_grad()
        model(mg.randn(5, 3)).sum().backward()
        opt.step()
        sched.step()
    checkpoint = {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3,
                  "scheduler": {k: v for k, v in sched.state_dict().items()}}
    mg.save(checkpoint, tmp_path / "ckpt.safetensors")
    back = mg.load(tmp_path / "ckpt.safetensors")
    assert same(checkpoint["optimizer"], back["optimizer"])
    assert back["epoch"] == 3 and back["scheduler"] == checkpoint["scheduler"]
    # and it resumes: a fresh optimizer loaded from it takes the same next step
    model2 = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    model2.load_state_dict(back["model"])
    opt2 = optim.Adam(model2.parameters(), lr=0.01, amsgrad=True)
    opt2.load_state_dict(back["optimizer"])
    x = mg.randn(5, 3)
    for m, o in ((model, opt), (model2, opt2)):
        o.zero_grad()
        m(x).sum().backward()
        o.step()
    for p, q in zip(model.parameters(), model2.parameters()):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())


def test_optimizer_state_dict_alone_keeps_int_keys(tmp_path):
    w = nn.Parameter(mg.ones(2))
    opt = optim.SGD([w], lr=0.1, momentum=0.9)
    w.grad = mg.ones(2)
    opt.step()
    mg.save(opt.state_dict(), tmp_path / "opt.safetensors")
    back = mg.load(tmp_path / "opt.safetensors")
    assert list(back["state"]) == [0]
    assert back["param_groups"][0]["params"] == [0]


@pytest.mark.torch
def test_plain_state_dict_is_an_ordinary_safetensors_file(tmp_path):
    """Other tools read it as it is: the safetensors library, and PyTorch through it."""
    st = pytest.importorskip("safetensors.numpy")
    pytest.importorskip("safetensors.torch")
    from safetensors.torch import load_file as torch_load_file

    model = nn.Linear(3, 2)
    path = tmp_path / "model.safetensors"
    mg.save(model.state_dict(), path)
    assert read_metadata(path) is None  # no structure: nothing for other tools to skip
    arrays = st.load_file(str(path))
    assert sorted(arrays) == ["bias", "weight"]
    np.testing.assert_array_equal(arrays["weight"], model.weight.detach().numpy())
    tensors = torch_load_file(str(path))
    np.testing.assert_array_equal(tensors["bias"].numpy(), model.bias.detach().numpy())
    # and a file the safetensors library writes loads here
    st.save_file({"x": np.arange(3, dtype=np.float32)}, str(tmp_path / "ref.safetensors"))
    assert mg.load(tmp_path / "ref.safetensors")["x"].tolist() == [0.0, 1.0, 2.0]


def test_structured_file_is_still_valid_safetensors(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    path = tmp_path / "s.safetensors"
    mg.save({"state": {0: {"exp_avg": mg.ones(2)}}, "lr": 0.1}, path)
    arrays = st.load_file(str(path))
    assert list(arrays) == ["state.0.exp_avg"]  # tensors stored under their path


def test_user_metadata_and_map_location(tmp_path):
    path = tmp_path / "m.safetensors"
    mg.save({"w": mg.ones(1)}, path, metadata={"note": "hi"})
    assert read_metadata(path) == {"note": "hi"}
    assert mg.load(path, map_location="cpu", weights_only=True)["w"].device == mg.device("cpu")
    with pytest.raises(ValueError, match="reserved"):
        mg.save([1], path, metadata={serialization.STRUCTURE_KEY: "x"})


@pytest.mark.parametrize("obj,where", [
    ({"f": lambda: 0}, "'f'"),
    ([1, {2, 3}], "'1'"),
    ({"x": {object(): 1}}, "dict key"),
    ({"a": [np.array([object()])]}, "objects"),
    (1 + 2j, "complex"),
])
def test_unstorable_objects_are_refused_with_their_path(obj, where, tmp_path):
    with pytest.raises(TypeError, match=where):
        mg.save(obj, tmp_path / "bad.safetensors")
    assert not (tmp_path / "bad.safetensors").exists()


def _with_structure(tmp_path, structure, tensors=None):
    path = tmp_path / "hostile.safetensors"
    text = structure if isinstance(structure, str) else json.dumps(structure)
    save_file(tensors or {}, path, metadata={serialization.STRUCTURE_KEY: text})
    return path


HOSTILE = [
    ("{not json", "not JSON"),
    ("[1, 2]", "'root'"),
    ({"format": 99, "root": None}, "unknown format"),
    ({"format": 1, "root": {"tensor": "missing"}}, "does not hold"),
    ({"format": 1, "root": {"tensor": 5}}, "must be a string"),
    ({"format": 1, "root": {"pickle": "os.system"}}, "unknown node"),
    ({"format": 1, "root": {"int": "12"}}, "unknown node"),
    ({"format": 1, "root": {"float": "1e999"}}, "not a float"),
    ({"format": 1, "root": {"float": "x" * 100}}, "too long"),
    ({"format": 1, "root": {"dict": [[{"list": []}, None]]}}, "hashable"),
    ({"format": 1, "root": {"dict": [[{"int": 1}, None], [{"int": 1}, None]]}}, "twice"),
    ({"format": 1, "root": {"dict": [[{"int": 1}]]}}, r"\[key, value\]"),
    ({"format": 1, "root": {"list": [], "extra": 1}}, "unexpected entries"),
    ({"format": 1, "root": "a bare string"}, "one-entry object"),
    ('{"format": 1, "root": ' + '{"list": [' * 5000 + "]}" * 5000 + "}", "nesting|not JSON"),
    ('{"format": 1, "root": NaN}', "not JSON"),
]


@pytest.mark.parametrize("structure,message", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_structure_metadata_gives_a_clear_error(structure, message, tmp_path):
    path = _with_structure(tmp_path, structure)
    with pytest.raises(SafetensorsError, match=message) as info:
        mg.load(path)
    assert "minigrad.structure" in str(info.value) and str(path) in str(info.value)


def test_hostile_tensor_flags(tmp_path):
    path = _with_structure(
        tmp_path, {"format": 1, "root": {"tensor": "i", "requires_grad": True}},
        {"i": np.arange(3)})
    with pytest.raises(SafetensorsError, match="not floating"):
        mg.load(path)
    path = _with_structure(
        tmp_path, {"format": 1, "root": {"tensor": "i", "requires_grad": "yes"}},
        {"i": np.arange(3)})
    with pytest.raises(SafetensorsError, match="bad tensor node"):
        mg.load(path)


def test_damaged_file_object_raises(tmp_path):
    buffer = io.BytesIO()
    mg.save([mg.ones(2)], buffer)
    data = buffer.getvalue()
    with pytest.raises(SafetensorsError):
        mg.load(io.BytesIO(data[:-3]))
    with pytest.raises(SafetensorsError):
        mg.load(io.BytesIO(struct.pack("<Q", 2**40) + data[8:]))
    with pytest.raises(TypeError, match="path or a binary file"):
        mg.load(12)
