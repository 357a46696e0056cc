"""Gradient accumulation in the training loop and the Keras facade: k batches summed into one
step equal one step on a batch of all their examples (uneven last batches included)."""

import numpy as np
import pytest

import minigrad as mg
from minigrad import keras, nn, train
from minigrad.data import DataLoader, TensorDataset


def _model(seed=0):
    mg.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))


def _data(n, seed=1):
    rng = np.random.default_rng(seed)
    return (mg.tensor(rng.standard_normal((n, 5)).astype(np.float32)),
            mg.tensor(rng.integers(0, 3, n)))


def _params(model):
    return [p.detach().numpy().copy() for p in model.parameters()]


@pytest.mark.parametrize("opt_name", ["SGD", "Adam"])
@pytest.mark.parametrize("n,batch,k", [(24, 4, 3), (10, 4, 2), (10, 3, 4), (7, 2, 1)])
def test_train_epoch_equals_the_large_batch_step(opt_name, n, batch, k):
    x, y = _data(n)
    loss_fn = nn.CrossEntropyLoss()

    def make_opt(model):
        return getattr(mg.optim, opt_name)(model.parameters(), lr=0.05)

    accumulated = _model()
    opt = make_opt(accumulated)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch)
    logs = train.train_epoch(accumulated, loss_fn, opt, loader, gradient_accumulation_steps=k)

    big = _model()
    big_opt = make_opt(big)
    step = batch * k
    for start in range(0, n, step):
        big_opt.zero_grad()
        loss_fn(big(x[start:start + step]), y[start:start + step]).backward()
        big_opt.step()
    for a, b in zip(_params(accumulated), _params(big)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert set(logs) == {"loss"}


def test_hooks_and_schedule_follow_the_optimizer_steps():
    x, y = _data(10)
    model = _model()
    opt = mg.optim.SGD(model.parameters(), lr=0.1)
    sched = mg.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    seen = []

    class Recorder(train.Callback):
        def on_before_optimizer_step(self, batch, logs=None):
            seen.append(("step", batch))

        def on_train_batch_end(self, batch, logs=None):
            seen.append(("end", batch, logs["stepped"]))

    loader = DataLoader(TensorDataset(x, y), batch_size=2)  # 5 batches, k=2: 3 steps
    train.train_epoch(model, nn.CrossEntropyLoss(), opt, loader,
                      callbacks=[Recorder(), train.LRSchedulerCallback(sched, "step")],
                      gradient_accumulation_steps=2)
    assert [s for s in seen if s[0] == "step"] == [("step", 1), ("step", 3), ("step", 4)]
    assert [s[2] for s in seen if s[0] == "end"] == [False, True, False, True, True]
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5 ** 3)
    with pytest.raises(ValueError, match="positive"):
        train.train_epoch(model, nn.CrossEntropyLoss(), opt, loader,
                          gradient_accumulation_steps=0)


def _keras_model():
    mg.manual_seed(0)
    model = keras.Sequential([keras.layers.Input((5,)), keras.layers.Dense(8, activation="tanh"),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1),
                  loss="sparse_categorical_crossentropy")
    return model


def test_keras_fit_gradient_accumulation_steps():
    x, y = _data(20)
    x, y = x.numpy(), y.numpy()
    accumulated = _keras_model()
    accumulated.fit(x, y, batch_size=5, epochs=2, shuffle=False, verbose=0,
                    gradient_accumulation_steps=2)
    big = _keras_model()
    big.fit(x, y, batch_size=10, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(accumulated.get_weights(), big.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
