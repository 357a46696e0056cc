"""Inputs PyTorch's layers refuse are refused by minigrad's, clearly: NumPy arrays, a float64
input to a float32 layer, a Linear input of the wrong width. Every built-in layer is checked."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn

# name -> (constructor, input shape, inputs per call); a float input unless said otherwise
LAYERS = {
    "AdaptiveAvgPool1d": (lambda: nn.AdaptiveAvgPool1d(2), (1, 2, 8), 1),
    "AdaptiveAvgPool2d": (lambda: nn.AdaptiveAvgPool2d(2), (1, 2, 8, 8), 1),
    "AvgPool1d": (lambda: nn.AvgPool1d(2), (1, 2, 8), 1),
    "AvgPool2d": (lambda: nn.AvgPool2d(2), (1, 2, 8, 8), 1),
    "BCELoss": (lambda: nn.BCELoss(), (2, 3), 2),
    "BCEWithLogitsLoss": (lambda: nn.BCEWithLogitsLoss(), (2, 3), 2),
    "BatchNorm1d": (lambda: nn.BatchNorm1d(4), (3, 4), 1),
    "BatchNorm2d": (lambda: nn.BatchNorm2d(2), (2, 2, 3, 3), 1),
    "Conv1d": (lambda: nn.Conv1d(2, 3, 3), (1, 2, 8), 1),
    "Conv2d": (lambda: nn.Conv2d(2, 3, 3), (1, 2, 8, 8), 1),
    "ConvTranspose1d": (lambda: nn.ConvTranspose1d(2, 3, 3), (1, 2, 8), 1),
    "ConvTranspose2d": (lambda: nn.ConvTranspose2d(2, 3, 3), (1, 2, 8, 8), 1),
    "CrossEntropyLoss": (lambda: nn.CrossEntropyLoss(), (2, 3), 2),
    "Dropout": (lambda: nn.Dropout(), (2, 3), 1),
    "Dropout1d": (lambda: nn.Dropout1d(), (2, 3, 4), 1),
    "Dropout2d": (lambda: nn.Dropout2d(), (2, 3, 4, 4), 1),
    "ELU": (lambda: nn.ELU(), (2, 3), 1),
    "Embedding": (lambda: nn.Embedding(10, 4), "index", 1),
    "Flatten": (lambda: nn.Flatten(), (2, 3, 4), 1),
    "Unflatten": (lambda: nn.Unflatten(1, (2, 2)), (2, 4), 1),
    "Upsample": (lambda: nn.Upsample(scale_factor=2), (1, 2, 4, 4), 1),
    "GELU": (lambda: nn.GELU(), (2, 3), 1),
    "GRU": (lambda: nn.GRU(4, 5), (3, 2, 4), 1),
    "GRUCell": (lambda: nn.GRUCell(4, 5), (2, 4), 1),
    "GroupNorm": (lambda: nn.GroupNorm(2, 4), (2, 4, 3), 1),
    "Hardtanh": (lambda: nn.Hardtanh(), (2, 3), 1),
    "HuberLoss": (lambda: nn.HuberLoss(), (2, 3), 2),
    "Identity": (lambda: nn.Identity(), (2, 3), 1),
    "L1Loss": (lambda: nn.L1Loss(), (2, 3), 2),
    "LSTM": (lambda: nn.LSTM(4, 5), (3, 2, 4), 1),
    "LSTMCell": (lambda: nn.LSTMCell(4, 5), (2, 4), 1),
    "LayerNorm": (lambda: nn.LayerNorm(4), (2, 4), 1),
    "LeakyReLU": (lambda: nn.LeakyReLU(), (2, 3), 1),
    "Linear": (lambda: nn.Linear(4, 3), (2, 4), 1),
    "LogSoftmax": (lambda: nn.LogSoftmax(dim=-1), (2, 3), 1),
    "MSELoss": (lambda: nn.MSELoss(), (2, 3), 2),
    "MaxPool1d": (lambda: nn.MaxPool1d(2), (1, 2, 8), 1),
    "MaxPool2d": (lambda: nn.MaxPool2d(2), (1, 2, 8, 8), 1),
    "Mish": (lambda: nn.Mish(), (2, 3), 1),
    "MultiheadAttention": (lambda: nn.MultiheadAttention(4, 2), (3, 2, 4), 3),
    "NLLLoss": (lambda: nn.NLLLoss(), (2, 3), 2),
    "PReLU": (lambda: nn.PReLU(), (2, 4), 1),
    "RMSNorm": (lambda: nn.RMSNorm(4), (2, 4), 1),
    "ReLU": (lambda: nn.ReLU(), (2, 3), 1),
    "Sequential": (lambda: nn.Sequential(nn.Linear(4, 3), nn.ReLU()), (2, 4), 1),
    "SiLU": (lambda: nn.SiLU(), (2, 3), 1),
    "Sigmoid": (lambda: nn.Sigmoid(), (2, 3), 1),
    "SmoothL1Loss": (lambda: nn.SmoothL1Loss(), (2, 3), 2),
    "Softmax": (lambda: nn.Softmax(dim=-1), (2, 3), 1),
    "Softplus": (lambda: nn.Softplus(), (2, 3), 1),
    "Tanh": (lambda: nn.Tanh(), (2, 3), 1),
    "Transformer": (lambda: nn.Transformer(4, 2, 1, 1, 8), (3, 2, 4), 2),
    "TransformerDecoder": (
        lambda: nn.TransformerDecoder(nn.TransformerDecoderLayer(4, 2, 8), 1), (3, 2, 4), 2),
    "TransformerDecoderLayer": (lambda: nn.TransformerDecoderLayer(4, 2, 8), (3, 2, 4), 2),
    "TransformerEncoder": (
        lambda: nn.TransformerEncoder(nn.TransformerEncoderLayer(4, 2, 8), 1), (3, 2, 4), 1),
    "TransformerEncoderLayer": (lambda: nn.TransformerEncoderLayer(4, 2, 8), (3, 2, 4), 1),
}
# containers without a forward of their own, and the base class
NOT_CALLABLE = {"Module", "ModuleDict", "ModuleList", "ParameterDict", "ParameterList"}
# layers with floating parameters that PyTorch refuses a float64 input for
DTYPE_CHECKED = {
    "BatchNorm1d", "BatchNorm2d", "Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d",
    "GRU", "GRUCell", "GroupNorm", "LSTM", "LSTMCell", "LayerNorm", "Linear",
    "MultiheadAttention", "PReLU", "Sequential", "Transformer", "TransformerDecoder",
    "TransformerDecoderLayer", "TransformerEncoder", "TransformerEncoderLayer",
}


def _inputs(name, shape, count, dtype=np.float32, kind="tensor"):
    rng = np.random.default_rng(0)
    if shape == "index":
        arrays = [rng.integers(0, 10, (2, 3))]
    else:
        arrays = [rng.uniform(0.1, 0.9, shape).astype(dtype) for _ in range(count)]
        if name in ("CrossEntropyLoss", "NLLLoss"):
            arrays[1] = np.array([0, 2])
    if kind == "numpy":
        return arrays
    return [mg.tensor(a) for a in arrays]


def test_the_table_covers_every_built_in_layer():
    layers = {n for n in dir(nn)
              if inspect.isclass(getattr(nn, n)) and issubclass(getattr(nn, n), nn.Module)}
    assert layers - NOT_CALLABLE <= set(LAYERS), sorted(layers - NOT_CALLABLE - set(LAYERS))


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_float32_inputs_work(name):
    make, shape, count = LAYERS[name]
    make().eval()(*_inputs(name, shape, count))


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_numpy_input_is_refused(name):
    make, shape, count = LAYERS[name]
    layer = make()
    with pytest.raises(TypeError, match=r"must be a Tensor, not numpy.ndarray.*mg.tensor"):
        layer(*_inputs(name, shape, count, kind="numpy"))


@pytest.mark.parametrize("name", sorted(DTYPE_CHECKED))
def test_float64_input_to_a_float32_layer_is_refused(name):
    make, shape, count = LAYERS[name]
    layer = make()
    with pytest.raises(RuntimeError, match="dtype float64 but the layer's parameters are float32"):
        layer(*_inputs(name, shape, count, dtype=np.float64))
    # converted either way, it runs
    layer.double()(*_inputs(name, shape, count, dtype=np.float64))


@pytest.mark.torch
@pytest.mark.parametrize("name", sorted(DTYPE_CHECKED - {"Sequential"}))
def test_pytorch_refuses_the_same_float64_inputs(name):
    torch = pytest.importorskip("torch")
    make, shape, count = LAYERS[name]
    layer = make()
    tlayer = {
        "Transformer": lambda: torch.nn.Transformer(4, 2, 1, 1, 8, batch_first=True),
        "TransformerDecoder": lambda: torch.nn.TransformerDecoder(
            torch.nn.TransformerDecoderLayer(4, 2, 8), 1),
        "TransformerEncoder": lambda: torch.nn.TransformerEncoder(
            torch.nn.TransformerEncoderLayer(4, 2, 8), 1, enable_nested_tensor=False),
    }.get(name, lambda: getattr(torch.nn, type(layer).__name__)(*_ARGS[name]))()
    inputs = [torch.from_numpy(a) for a in _inputs(name, shape, count, np.float64, "numpy")]
    with pytest.raises((RuntimeError, ValueError)):
        tlayer(*inputs)


_ARGS = {
    "BatchNorm1d": (4,), "BatchNorm2d": (2,), "Conv1d": (2, 3, 3), "Conv2d": (2, 3, 3),
    "ConvTranspose1d": (2, 3, 3), "ConvTranspose2d": (2, 3, 3), "GRU": (4, 5),
    "GRUCell": (4, 5), "GroupNorm": (2, 4), "LSTM": (4, 5), "LSTMCell": (4, 5),
    "LayerNorm": (4,), "Linear": (4, 3), "MultiheadAttention": (4, 2), "PReLU": (),
    "TransformerDecoderLayer": (4, 2, 8), "TransformerEncoderLayer": (4, 2, 8),
}


def test_other_float_dtypes_are_refused_too_and_ints_pass():
    layer = nn.Linear(4, 3).half()
    with pytest.raises(RuntimeError, match="dtype float32 but the layer's parameters are float16"):
        layer(mg.ones(2, 4))
    emb = nn.Embedding(10, 4)
    assert emb(mg.tensor([1, 2], dtype=mg.int32)).shape == (2, 4)


def test_rms_norm_promotes_as_pytorch_does():
    out = nn.RMSNorm(4)(mg.ones(2, 4, dtype=mg.float64))
    assert out.dtype == np.float64


def test_linear_shape_error_names_the_layer_and_in_features():
    layer = nn.Linear(4, 3)
    with pytest.raises(RuntimeError, match=r"Linear\(in_features=4, out_features=3, bias=True\)"
                                           r".*in_features=4.*shape \(2, 5\)"):
        layer(mg.ones(2, 5))
    with pytest.raises(RuntimeError, match=r"in_features=5, got an input of shape \(1, 4\)"):
        nn.Sequential(nn.Linear(3, 4), nn.Linear(5, 2))(mg.ones(1, 3))


def test_user_modules_may_take_numpy():
    class Wrapper(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(2, 1)

        def forward(self, x):
            return self.linear(mg.tensor(np.asarray(x, dtype=np.float32)))

    assert Wrapper()(np.ones((3, 2))).shape == (3, 1)


def test_autocast_lets_a_float32_layer_take_half_inputs():
    layer = nn.Linear(4, 3)
    with mg.autocast("cpu", dtype=mg.float16):
        assert layer(mg.ones(2, 4, dtype=mg.float16)).shape == (2, 3)
