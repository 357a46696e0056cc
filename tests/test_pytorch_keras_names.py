"""Issue 19's acceptance list: every PyTorch and Keras name a course or a small project reaches
for is there and runs, written as PyTorch and Keras code writes it. (Each name's semantics and
its parity with PyTorch are tested in its own file; this file keeps the list whole.)"""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import keras, nn, optim

X = np.array([[3.0, -1.0, 2.0], [0.0, 5.0, -4.0]], np.float32)

TENSOR_CALLS = {
    "sort": lambda t: t.sort(dim=1).values,
    "argsort": lambda t: mg.argsort(t, dim=1),
    "topk": lambda t: t.topk(2, dim=1).indices,
    "cumsum": lambda t: t.cumsum(1),
    "cumprod": lambda t: mg.cumprod(t, 1),
    "flip": lambda t: t.flip(0),
    "roll": lambda t: mg.roll(t, 1, 1),
    "repeat": lambda t: t.repeat(2, 1),
    "repeat_interleave": lambda t: mg.repeat_interleave(t, 2, dim=0),
    "unique": lambda t: mg.unique(t),
    "nonzero": lambda t: t.nonzero(),
    "allclose": lambda t: mg.tensor(mg.allclose(t, t)),
    "isclose": lambda t: t.isclose(t),
    "norm": lambda t: t.norm(dim=1),
    "linalg.norm": lambda t: mg.linalg.norm(t, ord="fro"),
    "type": lambda t: t.type("torch.DoubleTensor"),
    "is_contiguous": lambda t: mg.tensor(t.is_contiguous()),
    "multinomial": lambda t: mg.multinomial(t.abs() + 1, 2),
    "bernoulli": lambda t: mg.bernoulli(mg.full((2, 3), 0.5)),
    "diag": lambda t: mg.diag(t[0]),
    "triu": lambda t: mg.triu(t),
    "outer": lambda t: mg.outer(t[0], t[1]),
    "baddbmm": lambda t: mg.baddbmm(mg.zeros(1, 2, 2), t[None], t.t()[None]),
    "addmm": lambda t: mg.addmm(mg.zeros(2, 2), t, t.t()),
    "lerp": lambda t: mg.lerp(t, mg.zeros_like(t), 0.5),
    "sign": lambda t: t.sign(),
    "floor": lambda t: mg.floor(t / 3),
    "ceil": lambda t: t.ceil(),
    "round": lambda t: mg.round(t / 3, decimals=1),
    "fmod": lambda t: mg.fmod(t, 3),
    "remainder": lambda t: t % 3,
    "any": lambda t: mg.any(t > 4),
    "all": lambda t: (t > -5).all(),
    "count_nonzero": lambda t: mg.count_nonzero(t),
}


@pytest.mark.parametrize("name", sorted(TENSOR_CALLS))
def test_tensor_functions_and_methods(name):
    out = TENSOR_CALLS[name](mg.tensor(X))
    assert isinstance(out, mg.Tensor)


def test_inference_mode_and_threads():
    with mg.inference_mode():
        y = mg.tensor(X, requires_grad=True) * 2
    assert not y.requires_grad
    n = mg.get_num_threads()
    mg.set_num_threads(n)
    assert mg.get_num_threads() == n


NN_MODULES = {
    "LeakyReLU": lambda: nn.LeakyReLU(0.1), "SiLU": nn.SiLU, "ELU": nn.ELU,
    "Softplus": nn.Softplus, "Mish": nn.Mish, "Hardtanh": nn.Hardtanh, "PReLU": nn.PReLU,
    "Dropout1d": lambda: nn.Dropout1d(0.5), "Dropout2d": lambda: nn.Dropout2d(0.5),
    "Identity": nn.Identity,
}


@pytest.mark.parametrize("name", sorted(NN_MODULES))
def test_nn_layers(name):
    x = mg.tensor(X)[None, :, :, None] if name == "Dropout2d" else mg.tensor(X)  # (N, C, H, W)
    assert NN_MODULES[name]()(x).shape == x.shape


def test_nn_containers_and_transformer():
    params = nn.ParameterList([nn.Parameter(mg.zeros(2))])
    table = nn.ParameterDict({"w": nn.Parameter(mg.ones(3))})
    assert len(params) == 1 and "w" in table
    layer = nn.TransformerDecoderLayer(8, 2, dim_feedforward=16, batch_first=True)
    decoder = nn.TransformerDecoder(layer, num_layers=1)
    model = nn.Transformer(d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=1,
                           dim_feedforward=16, batch_first=True)
    src, tgt = mg.randn(2, 5, 8), mg.randn(2, 4, 8)
    mask = nn.Transformer.generate_square_subsequent_mask(4)
    assert decoder(tgt, src, tgt_mask=mask).shape == (2, 4, 8)
    assert model(src, tgt, tgt_mask=mask).shape == (2, 4, 8)


def test_functional_and_init():
    t = mg.tensor(X)
    for fn in (F.silu, F.leaky_relu, F.elu, F.softplus, F.normalize):
        assert fn(t).shape == X.shape
    assert F.cosine_similarity(t, t + 1).shape == (2,)
    logp = F.log_softmax(t, dim=1)
    assert F.kl_div(logp, F.softmax(t + 1, dim=1), reduction="batchmean").shape == ()
    assert F.smooth_l1_loss(t, t * 2).shape == () and F.huber_loss(t, t * 2).shape == ()
    nn.init.orthogonal_(mg.empty(3, 4))
    nn.init.trunc_normal_(mg.empty(10), std=0.02)


def test_optimizers_and_schedulers():
    w = nn.Parameter(mg.tensor([1.0, -2.0]))
    for cls in (optim.RMSprop, optim.Adagrad, optim.Adamax, optim.NAdam):
        opt = cls([w], lr=0.01)
        (w * w).sum().backward()
        opt.step()
        opt.zero_grad()
    opt = optim.SGD([w], lr=0.1, momentum=0.9)
    schedulers = [
        optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=10),
        optim.lr_scheduler.ExponentialLR(opt, gamma=0.9),
        optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=3),
        optim.lr_scheduler.MultiStepLR(opt, milestones=[2, 4]),
    ]
    plateau = optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0)
    for _ in range(3):
        opt.step()
        for s in schedulers:
            s.step()
        plateau.step(1.0)


def test_data_saving_and_refused_inputs(tmp_path):
    from minigrad.utils.data import DataLoader, TensorDataset, random_split

    ds = TensorDataset(mg.arange(12, dtype=mg.float32).reshape(6, 2), mg.arange(6))
    train, _ = random_split(ds, [4, 2], generator=mg.Generator().manual_seed(0))
    loader = DataLoader(train, batch_size=2, shuffle=True, num_workers=1, collate_fn=None,
                        persistent_workers=True, worker_init_fn=lambda i: None,
                        generator=mg.Generator().manual_seed(1))
    assert sum(len(y) for _, y in loader) == 4
    assert mg.data.DataLoader is DataLoader and mg.utils.data.DataLoader is DataLoader
    obj = {"w": mg.ones(2), "n": 3, "nested": [None, "x", (1.5, mg.zeros(1))]}
    mg.save(obj, tmp_path / "o.pt")
    back = mg.load(tmp_path / "o.pt")
    assert back["n"] == 3 and back["nested"][1] == "x"
    layer = nn.Linear(3, 2)
    with pytest.raises(TypeError):
        layer(X)  # a NumPy array, as PyTorch refuses
    with pytest.raises(RuntimeError):
        layer(mg.tensor(X.astype(np.float64)))  # float64 into a float32 layer
    with pytest.raises(RuntimeError, match="in_features"):
        layer(mg.zeros(2, 4))


def test_keras_habits(tmp_path):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(4, activation="relu")(inputs)
    model = keras.Model(inputs, [keras.layers.Dense(1)(hidden), keras.layers.Dense(2)(hidden)])
    model.compile(optimizer="rmsprop", loss=["mse", "mse"])
    x = np.ones((8, 3), np.float32)
    ys = [np.ones((8, 1), np.float32), np.zeros((8, 2), np.float32)]
    callbacks = [keras.callbacks.ReduceLROnPlateau(monitor="loss"),
                 keras.callbacks.TerminateOnNaN(),
                 keras.callbacks.CSVLogger(str(tmp_path / "log.csv")),
                 keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: None)]
    model.fit(x, ys, epochs=2, verbose=0, validation_data=(x, ys), validation_freq=2,
              sample_weight=np.ones(8, np.float32), callbacks=callbacks)
    model.train_on_batch(x, ys)
    model.test_on_batch(x, ys)
    assert [p.shape for p in model.predict_on_batch(x)] == [(8, 1), (8, 2)]
    dense = model.layers[1]
    kernel, _ = dense.get_weights()
    assert kernel.shape == (3, 4)  # Keras's (in, out) layout
    dense.set_weights(dense.get_weights())
    model.save(tmp_path / "m.keras")
    assert keras.models.load_model(tmp_path / "m.keras").count_params() == model.count_params()
    classifier = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    classifier.compile(optimizer=keras.optimizers.RMSprop(),
                       loss="sparse_categorical_crossentropy")
    classifier.fit(x, np.array([0, 1] * 4), class_weight={0: 1.0, 1: 2.0}, verbose=0)


# A PyTorch program as a course writes it; run with torch and with minigrad, only the imports
# changed (the acceptance of issue 19).
PROGRAM = '''
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset, random_split

torch.manual_seed(0)
device = "cuda" if torch.cuda.is_available() else "cpu"
rng = np.random.default_rng(0)
x = rng.normal(size=(240, 8)).astype(np.float32)
y = (x[:, 0] + x[:, 1] > 0).astype(np.int64) + 2 * (x[:, 2] > 0.5)
data = TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
train_set, val_set = random_split(data, [0.8, 0.2], generator=torch.Generator().manual_seed(42))
train_loader = DataLoader(train_set, batch_size=32, shuffle=True, pin_memory=True,
                          generator=torch.Generator().manual_seed(1))
val_loader = DataLoader(val_set, batch_size=64)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 32)
        self.drop = nn.Dropout(0.1)
        self.fc2 = nn.Linear(32, 4)

    def forward(self, x):
        return self.fc2(self.drop(F.silu(self.fc1(x))))


model = Net().to(device)
optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-2)
scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.95)
loss_fn = nn.CrossEntropyLoss()
for epoch in range(8):
    model.train()
    for xb, yb in train_loader:
        xb, yb = xb.to(device), yb.to(device)
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
    scheduler.step()
model.eval()
correct = 0
with torch.inference_mode():
    for xb, yb in val_loader:
        correct += (model(xb.to(device)).argmax(dim=1) == yb.to(device)).sum().item()
accuracy = correct / len(val_set)
torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, PATH)
state = torch.load(PATH)
model.load_state_dict(state["model"])
optimizer.load_state_dict(state["optimizer"])
'''


@pytest.mark.parametrize("lib", ["minigrad", pytest.param("torch", marks=pytest.mark.torch)])
def test_a_pytorch_program_runs_unchanged_apart_from_the_import(lib, tmp_path):
    if lib == "torch":
        pytest.importorskip("torch")
    source = PROGRAM if lib == "torch" else PROGRAM.replace("import torch.nn as nn",
                                                            "import minigrad.nn as nn").replace(
        "import torch.nn.functional as F", "import minigrad.nn.functional as F").replace(
        "import torch\n", "import minigrad as torch\n").replace(
        "from torch.utils.data", "from minigrad.utils.data")
    namespace = {"PATH": str(tmp_path / "checkpoint.pt")}
    with pytest.warns(UserWarning, match="pin_memory"):  # no GPU here: PyTorch's warning
        exec(compile(source, f"<{lib} program>", "exec"), namespace)  # noqa: S102
    assert namespace["accuracy"] > 0.7, namespace["accuracy"]
