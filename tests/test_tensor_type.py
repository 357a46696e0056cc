"""``Tensor.type()``: minigrad's names (PyTorch's with ``minigrad`` for ``torch``); conversion
by a dtype, by PyTorch's names and by minigrad's, the device included as in PyTorch."""

from __future__ import annotations

import fake_cuda
import numpy as np
import pytest

import minigrad as mg

NAMES = {  # the type name of each dtype, as PyTorch's (after its module)
    "float32": "FloatTensor", "float64": "DoubleTensor", "float16": "HalfTensor",
    "int64": "LongTensor", "int32": "IntTensor", "int16": "ShortTensor", "int8": "CharTensor",
    "uint8": "ByteTensor", "bool": "BoolTensor",
}


@pytest.mark.parametrize("dtype", sorted(NAMES))
def test_the_name_is_pytorchs_with_minigrad(dtype):
    x = mg.zeros(3, dtype=getattr(mg, dtype))
    assert x.type() == f"minigrad.{NAMES[dtype]}"


@pytest.mark.parametrize("prefix", ["torch", "minigrad"])
@pytest.mark.parametrize("dtype", sorted(NAMES))
def test_converting_by_name(prefix, dtype):
    x = mg.tensor([0.0, 1.5, -2.0])
    y = x.type(f"{prefix}.{NAMES[dtype]}")
    assert y.dtype == np.dtype(dtype) and y.device == mg.device("cpu")
    np.testing.assert_array_equal(y.numpy(), x.numpy().astype(dtype))


def test_converting_by_dtype_and_same_type_is_no_copy():
    x = mg.tensor([1.0, 2.0])
    assert x.type(mg.int64).dtype == np.int64
    assert x.type(np.float64).dtype == np.float64
    assert x.type("torch.FloatTensor") is x and x.type(mg.float32) is x


@pytest.mark.parametrize("bad", ["FloatTensor", "torch.float64", "numpy.FloatTensor",
                                 "torch.FooTensor", "minigrad.cuda.Float", "float32"])
def test_other_names_are_invalid_as_in_pytorch(bad):
    with pytest.raises(ValueError, match=f"invalid type: '{bad}'"):
        mg.zeros(2).type(bad)


def test_bfloat16_name():
    bf16 = pytest.importorskip("ml_dtypes")
    assert bf16 is not None
    x = mg.zeros(2).type("torch.BFloat16Tensor")
    assert x.dtype == mg.bfloat16 and x.type() == "minigrad.BFloat16Tensor"


def test_a_cuda_name_moves_the_tensor(monkeypatch):
    fake_cuda.use(monkeypatch, kernels="emulated")
    x = mg.tensor([1.0, 2.0])
    y = x.type("torch.cuda.DoubleTensor")
    assert y.is_cuda and y.dtype == np.float64 and y.type() == "minigrad.cuda.DoubleTensor"
    assert y.type("minigrad.cuda.LongTensor").is_cuda
    z = y.type("torch.FloatTensor")  # a CPU name brings it back, as in PyTorch
    assert not z.is_cuda and z.type() == "minigrad.FloatTensor"
    np.testing.assert_array_equal(z.numpy(), [1.0, 2.0])
    assert y.type(mg.float32).is_cuda  # a dtype keeps the device


@pytest.mark.torch
def test_names_and_conversions_match_pytorch():
    torch = pytest.importorskip("torch")
    for dtype in NAMES:
        t = torch.zeros(2, dtype=getattr(torch, dtype))
        assert mg.zeros(2, dtype=getattr(mg, dtype)).type() == t.type().replace("torch",
                                                                                   "minigrad")
        name = f"torch.{NAMES[dtype]}"
        got = mg.tensor([0.0, 1.5, -2.0]).type(name)
        want = torch.tensor([0.0, 1.5, -2.0]).type(name)
        assert str(want.dtype) == f"torch.{got.dtype}"
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    for bad in ["FloatTensor", "torch.float64", "torch.FooTensor"]:
        for x in (torch.zeros(2), mg.zeros(2)):
            with pytest.raises(ValueError, match="invalid type"):
                x.type(bad)
