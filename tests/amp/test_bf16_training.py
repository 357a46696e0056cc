"""bfloat16 autocast on the CPU trains the digits demo model (the Keras MNIST MLP on the 8x8
UCI digits shipped with minigrad) to the float32 result."""

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F
from minigrad.data import datasets

pytest.importorskip("ml_dtypes")


def _train(autocast: bool, epochs: int = 6) -> float:
    (x_train, y_train), (x_test, y_test) = datasets.digits()
    mg.manual_seed(0)
    model = mg.nn.Sequential(mg.nn.Linear(64, 128), mg.nn.ReLU(), mg.nn.Dropout(0.5),
                             mg.nn.Linear(128, 10))
    opt = mg.optim.Adam(model.parameters(), lr=1e-3)
    x_train, y_train = mg.tensor(x_train), mg.tensor(y_train.astype(np.int64))
    order = np.random.default_rng(0)
    for _ in range(epochs):
        perm = order.permutation(len(x_train))
        for start in range(0, len(perm), 32):
            idx = mg.tensor(perm[start:start + 32])
            opt.zero_grad()
            with mg.autocast("cpu", enabled=autocast):
                out = model(x_train[idx])
                loss = F.cross_entropy(out, y_train[idx])
            if autocast:
                assert out.dtype == mg.bfloat16 and loss.dtype == mg.float32
            loss.backward()
            opt.step()
    model.eval()
    with mg.no_grad(), mg.autocast("cpu", enabled=autocast):
        pred = model(mg.tensor(x_test)).float().argmax(dim=1).numpy()
    assert all(p.dtype == mg.float32 for p in model.parameters())
    return float((pred == y_test).mean())


def test_bfloat16_autocast_trains_digits_like_float32():
    full, low = _train(False), _train(True)
    assert full > 0.9
    assert low >= full - 0.02, (low, full)
