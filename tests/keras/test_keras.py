"""Tests for minigrad.keras (and the loop in minigrad.train it runs on)."""

import doctest
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import to_numpy

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import keras, nn, optim, train
from minigrad.data import DataLoader, TensorDataset, digits
from minigrad.keras import callbacks as callbacks_module
from minigrad.keras import layers as layers_module
from minigrad.keras import losses as losses_module
from minigrad.keras import metrics as metrics_module
from minigrad.keras import models as models_module
from minigrad.keras import optimizers as optimizers_module

MNIST_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mnist"


@pytest.fixture(scope="module")
def digit_data():
    return digits()


def classic_model(n_inputs=784):
    """The classic Keras MNIST model, exactly as in the Keras program."""
    model = keras.Sequential([
        keras.layers.Dense(128, activation="relu", input_shape=(n_inputs,)),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def small_model(n_inputs=64, **compile_kwargs):
    model = keras.Sequential([keras.layers.Dense(16, activation="relu", input_shape=(n_inputs,)),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(**{"optimizer": "adam", "loss": "sparse_categorical_crossentropy",
                     "metrics": ["accuracy"], **compile_kwargs})
    return model


@pytest.mark.parametrize("module", [train, layers_module, losses_module, metrics_module,
                                    models_module, optimizers_module, callbacks_module,
                                    keras.utils, keras.datasets, keras])
def test_doctests(module):
    result = doctest.testmod(module)
    assert result.failed == 0


# ------------------------------------------------------------------------------------------
# the classic program
# ------------------------------------------------------------------------------------------


def test_classic_program_on_digits(digit_data, capsys):
    (x_train, y_train), (x_test, y_test) = digit_data
    model = keras.Sequential([
        keras.layers.Dense(128, activation="relu", input_shape=(64,)),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x_train, y_train, epochs=10, validation_data=(x_test, y_test))
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 10 for v in history.history.values())
    assert history.history["val_accuracy"][-1] >= 0.90
    assert history.history["loss"][-1] < history.history["loss"][0]
    out = capsys.readouterr().out
    assert "Epoch 1/10" in out and "Epoch 10/10" in out
    # the Keras-like line: steps, bar, time, per-step time, metrics
    line = [ln for ln in out.splitlines() if ln.startswith("45/45")][-1]
    assert "[==============================]" in line and "/step - loss: " in line
    assert " - accuracy: " in line and " - val_loss: " in line and " - val_accuracy: " in line
    # the numbers on the bar are the ones in the history
    assert f"val_accuracy: {history.history['val_accuracy'][-1]:.4f}" in line

    loss, acc = model.evaluate(x_test, y_test, verbose=0)
    assert acc == pytest.approx(history.history["val_accuracy"][-1])
    assert loss == pytest.approx(history.history["val_loss"][-1], rel=1e-5)
    probs = model.predict(x_test, verbose=0)
    assert isinstance(probs, np.ndarray) and probs.shape == (360, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert np.mean(probs.argmax(1) == y_test) == pytest.approx(acc)


def test_facade_is_built_from_nn_modules():
    model = classic_model()
    dense, dropout, out = model.layers
    assert isinstance(model, nn.Module)
    assert isinstance(dense.linear, nn.Linear) and dense.linear.weight.shape == (128, 784)
    assert isinstance(dropout.dropout, nn.Dropout)
    assert list(model.state_dict()) == ["dense.linear.weight", "dense.linear.bias",
                                        "dense_1.linear.weight", "dense_1.linear.bias"]
    assert model.layers[0].linear.bias.detach().numpy().tolist() == [0.0] * 128  # Keras init


def test_uint8_images_and_tensors_are_accepted(digit_data):
    (x_train, y_train), _ = digit_data
    x_uint8 = (x_train * 16).astype(np.uint8)
    model = small_model()
    model.fit(x_uint8 / 16.0, y_train, epochs=1, verbose=0)  # float64 -> float32
    h = model.fit(mg.tensor(x_train), mg.tensor(y_train), epochs=1, verbose=0)
    assert np.isfinite(h.history["loss"][0])
    model.fit(x_uint8, y_train, epochs=1, verbose=0)  # unscaled uint8 works, as in Keras


def test_validation_split_takes_the_last_examples(digit_data):
    (x_train, y_train), _ = digit_data
    model = small_model()
    seen = []

    class Spy(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(self.params["steps"])

    h = model.fit(x_train, y_train, epochs=1, batch_size=100, validation_split=0.2,
                  callbacks=[Spy()], verbose=0)
    assert seen == [math.ceil(int(1437 * 0.8) / 100)]
    assert "val_accuracy" in h.history


def test_verbose_modes(digit_data, capsys):
    (x_train, y_train), _ = digit_data
    model = small_model()
    model.fit(x_train, y_train, epochs=1, verbose=0)
    assert capsys.readouterr().out == ""
    model.fit(x_train, y_train, epochs=2, verbose=2)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Epoch 1/2" and lines[1].startswith("45/45 - ") and "[" not in lines[1]


def test_evaluate_returns_like_keras(digit_data):
    _, (x_test, y_test) = digit_data
    model = small_model(metrics=None)
    assert isinstance(model.evaluate(x_test, y_test, verbose=0), float)
    model = small_model()
    assert len(model.evaluate(x_test, y_test, verbose=0)) == 2
    logs = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
    assert set(logs) == {"loss", "accuracy"}


# ------------------------------------------------------------------------------------------
# softmax / sigmoid outputs computed from logits
# ------------------------------------------------------------------------------------------


def huge_logit_model(activation, units):
    model = keras.Sequential([keras.layers.Dense(units, activation=activation,
                                                 input_shape=(4,))])
    w = model.layers[0].linear.weight
    w.data[...] = np.arange(w.data.size, dtype=np.float32).reshape(w.shape) * 1e4
    return model


def test_softmax_cross_entropy_uses_logits_and_is_stable():
    model = huge_logit_model("softmax", 3)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x = np.ones((2, 4), dtype=np.float32)
    y = np.array([0, 2])
    logits = model.layers[0].linear(mg.tensor(x))  # magnitudes around 1e5
    expected = F.cross_entropy(logits, mg.tensor(y)).item()
    assert np.isfinite(expected) and expected > 1e4
    assert model.evaluate(x, y, verbose=0) == pytest.approx(expected, rel=1e-6)
    h = model.fit(x, y, epochs=1, batch_size=2, verbose=0)
    assert np.isfinite(h.history["loss"][0])
    assert all(np.isfinite(to_numpy(p)).all() for p in model.parameters())
    # predict still applies the softmax
    probs = model.predict(x, verbose=0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)


def test_sigmoid_binary_cross_entropy_uses_logits():
    model = huge_logit_model("sigmoid", 1)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    x = np.ones((2, 4), dtype=np.float32)
    y = np.array([1.0, 0.0])
    loss, acc = model.evaluate(x, y, verbose=0)
    logits = model.layers[0].linear(mg.tensor(x))
    expected = F.binary_cross_entropy_with_logits(logits, mg.tensor([[1.0], [0.0]])).item()
    assert loss == pytest.approx(expected, rel=1e-6) and np.isfinite(loss)
    assert acc == 0.5  # sigmoid(huge) = 1 for both: one right
    assert model.predict(x, verbose=0).max() <= 1.0


def test_probabilities_without_softmax_are_clipped():
    # a linear output with a from-probabilities loss is clipped as Keras does (no inf)
    model = keras.Sequential([keras.layers.Dense(3, input_shape=(2,))])
    model.compile(loss="sparse_categorical_crossentropy")
    loss = model.evaluate(np.ones((2, 2), np.float32), np.array([0, 1]), verbose=0)
    assert np.isfinite(loss)


@pytest.mark.parametrize("loss, y, activation", [
    ("categorical_crossentropy", np.eye(3, dtype=np.float32)[[0, 1, 2, 1]], "softmax"),
    (keras.losses.SparseCategoricalCrossentropy(from_logits=True), np.array([0, 1, 2, 1]),
     None),
    ("mse", np.arange(4, dtype=np.float32), "linear"),
    ("mae", np.arange(4, dtype=np.float32).reshape(4, 1), None),
])
def test_other_losses_train(loss, y, activation):
    units = 1 if isinstance(loss, str) and loss in ("mse", "mae") else 3
    model = keras.Sequential([keras.layers.Dense(8, activation="tanh", input_shape=(2,)),
                              keras.layers.Dense(units, activation=activation)])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.05), loss=loss)
    x = np.random.default_rng(0).normal(size=(4, 2)).astype(np.float32)
    h = model.fit(x, y, epochs=30, batch_size=4, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]


def test_custom_loss_and_metric_functions():
    def my_loss(y_true, y_pred):
        return ((y_true - y_pred) ** 2).mean()

    def within_one(y_true, y_pred):
        return (y_true - y_pred).abs() < 1

    model = keras.Sequential([keras.layers.Dense(1, input_shape=(2,))])
    model.compile(optimizer="sgd", loss=my_loss, metrics=[within_one, "mae"])
    x, y = np.ones((8, 2), np.float32), np.ones((8, 1), np.float32)
    h = model.fit(x, y, epochs=2, verbose=0)
    assert set(h.history) == {"loss", "within_one", "mae"}


# ------------------------------------------------------------------------------------------
# callbacks
# ------------------------------------------------------------------------------------------


class Recorder(keras.callbacks.Callback):
    """Keeps a copy of the weights after every epoch."""

    def __init__(self):
        super().__init__()
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.model.get_weights())


def test_early_stopping_stops_and_restores_best_weights(digit_data):
    (x_train, y_train), (x_test, y_test) = digit_data
    model = small_model(optimizer=keras.optimizers.SGD(learning_rate=3.0))  # diverges
    recorder = Recorder()
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=1,
                                         restore_best_weights=True)
    h = model.fit(x_train, y_train, epochs=30, validation_data=(x_test, y_test),
                  callbacks=[recorder, stop], verbose=0)
    n = len(h.history["val_loss"])
    assert n < 30 and stop.stopped_epoch == n - 1
    best = int(np.argmin(h.history["val_loss"]))
    assert stop.best_epoch == best
    assert stop.best == h.history["val_loss"][best]
    for got, want in zip(model.get_weights(), recorder.weights[best]):
        np.testing.assert_array_equal(got, want)


def test_early_stopping_rules_with_a_plain_module():
    model = nn.Linear(2, 1)
    stop = keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=2, min_delta=0.01)
    assert stop.mode == "max"
    stop.set_model(model)
    stop.on_train_begin()
    model.stop_training = False
    for epoch, value in enumerate([0.5, 0.6, 0.605, 0.609]):  # +0.005, +0.009: no progress
        stop.on_epoch_end(epoch, {"val_accuracy": value})
    assert model.stop_training and stop.stopped_epoch == 3 and stop.best == 0.6
    with pytest.warns(UserWarning, match="not available"):
        stop.on_epoch_end(4, {"loss": 1.0})


def test_model_checkpoint(tmp_path, digit_data):
    (x_train, y_train), (x_test, y_test) = digit_data
    model = small_model()
    every = keras.callbacks.ModelCheckpoint(str(tmp_path / "every-{epoch:02d}"))
    best = keras.callbacks.ModelCheckpoint(str(tmp_path / "best.safetensors"),
                                           monitor="val_accuracy", save_best_only=True,
                                           save_weights_only=True)
    model.fit(x_train, y_train, epochs=3, validation_data=(x_test, y_test),
              callbacks=[every, best], verbose=0)
    assert sorted(p.name for p in tmp_path.glob("every-*")) == ["every-01", "every-02",
                                                                "every-03"]
    assert (tmp_path / "every-03" / "config.json").is_file()
    assert (tmp_path / "best.safetensors").is_file()
    assert best.best == max(model.history.history["val_accuracy"])


def test_learning_rate_scheduler(digit_data):
    (x_train, y_train), _ = digit_data
    model = small_model()
    sched = keras.callbacks.LearningRateScheduler(lambda epoch, lr: 0.01 * 0.5 ** epoch)
    h = model.fit(x_train, y_train, epochs=3, callbacks=[sched], verbose=0)
    assert h.history["learning_rate"] == [0.01, 0.005, 0.0025]
    assert model.optimizer.learning_rate == 0.0025
    one_arg = keras.callbacks.LearningRateScheduler(lambda epoch: 0.1)
    model.fit(x_train, y_train, epochs=1, callbacks=[one_arg], verbose=0)
    assert model.optimizer.param_groups[0]["lr"] == 0.1


def test_callback_hooks_order(digit_data):
    (x_train, y_train), _ = digit_data
    calls = []

    class Hooks(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            calls.append("train_begin")

        def on_epoch_begin(self, epoch, logs=None):
            calls.append(f"begin{epoch}")

        def on_epoch_end(self, epoch, logs=None):
            calls.append(f"end{epoch}:{sorted(logs)}")

        def on_train_end(self, logs=None):
            calls.append("train_end")

    small_model().fit(x_train, y_train, epochs=2, callbacks=[Hooks()], verbose=0)
    assert calls == ["train_begin", "begin0", "end0:['accuracy', 'loss']", "begin1",
                     "end1:['accuracy', 'loss']", "train_end"]


# ------------------------------------------------------------------------------------------
# summary, save / load
# ------------------------------------------------------------------------------------------


def test_summary_matches_keras_counts():
    model = classic_model()
    log = io.StringIO()
    model.summary(print_fn=lambda line: print(line, file=log))
    text = log.getvalue()
    assert 'Model: "sequential"' in text
    assert " dense (Dense)               (None, 128)               100480" in text
    assert " dropout (Dropout)           (None, 128)               0" in text
    assert " dense_1 (Dense)             (None, 10)                1290" in text
    assert "Total params: 101,770 (397.54 KB)" in text  # 784*128+128 + 128*10+10
    assert "Trainable params: 101,770" in text and "Non-trainable params: 0 (" in text
    assert model.count_params() == 101_770
    model.layers[0].trainable = False
    log = io.StringIO()
    model.summary(print_fn=lambda line: print(line, file=log))
    assert "Trainable params: 1,290" in log.getvalue()
    assert "Non-trainable params: 100,480" in log.getvalue()


def test_keras_parameter_counts_of_other_layers():
    model = keras.Sequential([
        keras.Input(shape=(12,)),
        keras.layers.Embedding(1000, 32),
        keras.layers.GRU(16, return_sequences=True),
        keras.layers.MultiHeadAttention(num_heads=2, key_dim=8),
        keras.layers.LayerNormalization(),
        keras.layers.Flatten(),
        keras.layers.Dense(4, activation="softmax"),
    ])
    counts = [layer.count_params() for layer in model.layers]
    # Keras: Embedding 1000*32; GRU (reset_after) 3*(16*(32+16)) + 2*3*16;
    # MHA 3*(16*2*8 + 2*8) + (2*8*16 + 16); LayerNorm 2*16; Dense 12*16*4 + 4
    assert counts == [32000, 2400, 1088, 32, 0, 772]
    assert [layer.output_shape for layer in model.layers] == [
        (None, 12, 32), (None, 12, 16), (None, 12, 16), (None, 12, 16), (None, 192),
        (None, 4)]


def test_summary_before_build_says_how():
    model = keras.Sequential([keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="not yet been built"):
        model.summary()
    model.build((None, 5))
    assert model.count_params() == 18


def test_save_load_round_trip(tmp_path, digit_data):
    (x_train, y_train), (x_test, y_test) = digit_data
    model = classic_model(64)
    model.fit(x_train, y_train, epochs=1, verbose=0)
    before = model.predict(x_test, verbose=0)
    model.save(tmp_path / "model")
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["format"] == "minigrad.keras"
    assert [entry["class_name"] for entry in config["config"]["layers"]] == [
        "Dense", "Dropout", "Dense"]
    loaded = keras.models.load_model(tmp_path / "model")
    np.testing.assert_array_equal(loaded.predict(x_test, verbose=0), before)
    assert [layer.name for layer in loaded.layers] == ["dense", "dropout", "dense_1"]
    # compiled again from the saved settings: evaluate and fit work at once
    assert loaded.evaluate(x_test, y_test, verbose=0) == pytest.approx(
        model.evaluate(x_test, y_test, verbose=0))
    loaded.fit(x_train, y_train, epochs=1, verbose=0)
    # weights alone
    model.save_weights(tmp_path / "w.safetensors")
    fresh = classic_model(64)
    fresh.load_weights(tmp_path / "w.safetensors")
    np.testing.assert_array_equal(fresh.predict(x_test, verbose=0), before)


def test_save_load_sequence_model(tmp_path):
    model = keras.Sequential([keras.layers.Embedding(30, 8, input_shape=(6,)),
                              keras.layers.LSTM(5), keras.layers.Dense(2)])
    x = np.random.default_rng(0).integers(0, 30, (4, 6))
    model.save(tmp_path / "seq")
    loaded = keras.models.load_model(tmp_path / "seq")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_load_model_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no saved model"):
        keras.models.load_model(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="damaged"):
        keras.models.load_model(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({
        "format": "minigrad.keras", "class_name": "Sequential",
        "config": {"name": "m", "layers": [{"class_name": "Mystery", "config": {}}]}}))
    with pytest.raises(ValueError, match="Unknown layer: 'Mystery'.*custom_objects"):
        keras.models.load_model(tmp_path)


# ------------------------------------------------------------------------------------------
# errors
# ------------------------------------------------------------------------------------------


def test_fit_before_compile():
    model = keras.Sequential([keras.layers.Dense(2, input_shape=(3,))])
    with pytest.raises(RuntimeError, match="You must compile your model before training"):
        model.fit(np.zeros((4, 3)), np.zeros(4))
    with pytest.raises(RuntimeError, match="compile"):
        model.evaluate(np.zeros((4, 3)), np.zeros(4))


def test_unknown_loss_optimizer_metric_activation():
    model = keras.Sequential([keras.layers.Dense(2, input_shape=(3,))])
    with pytest.raises(ValueError, match="Unknown loss function: 'cross_entropy'.*"
                                         "'sparse_categorical_crossentropy'.*'mse'"):
        model.compile(loss="cross_entropy")
    with pytest.raises(ValueError, match="Unknown optimizer: 'adadelta'.*'adam', 'adamw', 'sgd'"):
        model.compile(optimizer="adadelta", loss="mse")
    with pytest.raises(ValueError, match="Unknown metric function: 'f1'"):
        model.compile(loss="mse", metrics=["f1"])
    with pytest.raises(ValueError, match="No loss"):
        model.compile(optimizer="adam")
    with pytest.raises(ValueError, match="Unknown activation function: 'relu6'.*'relu'"):
        keras.layers.Dense(3, activation="relu6")


def test_label_errors():
    model = small_model(n_inputs=4)
    x = np.zeros((5, 4), np.float32)
    with pytest.raises(ValueError, match=r"labels of shape \(N,\).*\(5, 10\).*one-hot.*"
                                         r"categorical_crossentropy"):
        model.fit(x, np.eye(10)[[0, 1, 2, 3, 4]])
    with pytest.raises(ValueError, match=r"label value of 10 .*\[0, 9\]"):
        model.fit(x, np.array([0, 1, 2, 3, 10]))
    with pytest.raises(ValueError, match="integer class labels, got float labels such as 0.5"):
        model.fit(x, np.array([0, 1, 2, 3, 0.5]))
    with pytest.raises(ValueError, match="(?s)Data cardinality is ambiguous.*'x' sizes: 5\n'y' "
                                         "sizes: 4"):
        model.fit(x, np.array([0, 1, 2, 3]))
    # (N, 1) columns and integral floats are fine, as in Keras
    model.fit(x, np.array([[0], [1], [2], [3], [4]]), verbose=0)
    model.fit(x, np.array([0.0, 1, 2, 3, 4]), verbose=0)

    cat = small_model(n_inputs=4, loss="categorical_crossentropy")
    with pytest.raises(ValueError, match="one-hot labels.*class indices.*to_categorical"):
        cat.fit(x, np.arange(5))
    binary = keras.Sequential([keras.layers.Dense(1, activation="sigmoid", input_shape=(4,))])
    binary.compile(loss="binary_crossentropy")
    with pytest.raises(ValueError, match=r"labels in \[0, 1\]"):
        binary.fit(x, np.arange(5))


def test_input_shape_errors():
    model = small_model(n_inputs=4)
    with pytest.raises(ValueError, match="expected axis -1 of input shape to have value 4, but "
                                         r"received input with shape \(None, 3\)"):
        model.fit(np.zeros((5, 3)), np.zeros(5))
    with pytest.raises(ValueError, match="expected ndim=2, found ndim=3"):
        model.predict(np.zeros((5, 2, 4)))
    with pytest.raises(TypeError, match="instance of class keras.layers.Layer.*nn module"):
        keras.Sequential([nn.Linear(2, 2)])
    with pytest.raises(ValueError, match="unique names"):
        keras.Sequential([keras.layers.Dense(2, name="a"), keras.layers.Dense(2, name="a")])


# ------------------------------------------------------------------------------------------
# sequence layers
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rnn", ["LSTM", "GRU"])
def test_recurrent_classifier_learns(rnn):
    # is the first token's id even? the net must carry it through the sequence
    rng = np.random.default_rng(0)
    x = rng.integers(0, 10, (256, 5))
    y = (x[:, 0] % 2 == 0).astype(np.int64)
    model = keras.Sequential([keras.layers.Embedding(10, 8),
                              getattr(keras.layers, rnn)(16),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.01),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    h = model.fit(x, y, epochs=15, batch_size=32, verbose=0)
    assert h.history["accuracy"][-1] > 0.9
    assert isinstance(model.layers[1].rnn, getattr(nn, rnn))
    assert model.layers[1].rnn.batch_first


def test_return_sequences_and_sequence_labels():
    model = keras.Sequential([keras.layers.Embedding(7, 4, input_shape=(5,)),
                              keras.layers.LSTM(6, return_sequences=True),
                              keras.layers.Dense(7, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    assert model.output_shape == (None, 5, 7)
    x = np.random.default_rng(0).integers(0, 7, (8, 5))
    h = model.fit(x, x, epochs=2, verbose=0)  # labels (N, T) for outputs (N, T, C)
    assert np.isfinite(h.history["loss"]).all()
    assert model.predict(x, verbose=0).shape == (8, 5, 7)


def test_multi_head_attention_call_and_mask():
    mha = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3)
    q, v = mg.randn(2, 4, 5), mg.randn(2, 6, 7)
    out, scores = mha(q, v, return_attention_scores=True)
    assert out.shape == (2, 4, 5) and scores.shape == (2, 2, 4, 6)
    np.testing.assert_allclose(to_numpy(scores).sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(to_numpy(mha(q, v)), to_numpy(out), rtol=1e-5, atol=1e-6)
    mask = np.ones((2, 4, 6), dtype=bool)
    mask[:, :, 3:] = False  # the last keys are hidden
    _, scores = mha(q, v, attention_mask=mask, return_attention_scores=True)
    assert float(to_numpy(scores)[..., 3:].max()) == 0.0
    masked_out = mha(q, v, attention_mask=mask)
    np.testing.assert_allclose(to_numpy(masked_out), to_numpy(mha(q, v[:, :3])), rtol=1e-4,
                               atol=1e-5)
    self_attention = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3)
    x = mg.randn(1, 4, 5)
    causal = self_attention(x, x, use_causal_mask=True)
    # the first position sees only itself: changing later positions leaves it unchanged
    x2 = x.detach().clone()
    x2.data[:, 1:] += 1.0
    np.testing.assert_allclose(to_numpy(self_attention(x2, x2, use_causal_mask=True))[:, 0],
                               to_numpy(causal)[:, 0], rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------
# the loop itself, devices, optimizers
# ------------------------------------------------------------------------------------------


def test_train_fit_with_plain_modules_and_scheduler(capsys):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2)).astype(np.float32)
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int64)
    model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 2))
    opt = optim.Adam(model.parameters(), lr=0.05)
    sched = optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
    stop = keras.callbacks.EarlyStopping(monitor="loss", patience=100)
    history = train.fit(model, nn.CrossEntropyLoss(), opt, loader, epochs=30,
                        val_loader=DataLoader(TensorDataset(x, y), batch_size=64),
                        metrics={"accuracy": train.accuracy}, callbacks=[stop],
                        scheduler=sched, verbose=2)
    assert history.history["val_accuracy"][-1] > 0.9
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05 * 0.5 ** 3)
    assert stop.model is model
    assert capsys.readouterr().out.count("7/7 - ") == 30


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_redraws_on_a_terminal(monkeypatch):
    monkeypatch.setattr(train, "REFRESH_SECONDS", 0.0)  # refresh after every step
    x = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    model = nn.Sequential(nn.Linear(3, 2))
    opt = optim.SGD(model.parameters(), lr=0.1)
    term = FakeTerminal()
    history = train.fit(model, nn.CrossEntropyLoss(), opt,
                        DataLoader(TensorDataset(x, y), batch_size=8), epochs=1,
                        metrics={"accuracy": train.accuracy}, file=term)
    frames = term.getvalue().split("\r")
    assert len(frames) >= 3  # redrawn in place (the bar itself limits redraws to 20 a second)
    assert frames[1].startswith("1/8 [") and " - ETA: " in frames[1]
    final = frames[-1]
    assert final.startswith("8/8 [") and final.endswith("\n")
    assert f"loss: {history.history['loss'][0]:.4f}" in final


def test_running_mean_weights_batches():
    m = train.RunningMean()
    m.add(mg.tensor(2.0), 3)
    m.add(np.float32(6.0), 1)
    assert m.result() == 3.0
    m.add(0.0, 4)
    assert m.result() == 1.5


@pytest.mark.slow_in_simulator("55 s (3 epochs of fused kernels)")
def test_fit_on_device(device, digit_data):
    (x_train, y_train), (x_test, y_test) = digit_data
    mg.set_default_device(device)
    try:
        model = classic_model(64)
        h = model.fit(x_train, y_train, epochs=3, validation_data=(x_test, y_test), verbose=0)
    finally:
        mg.set_default_device("cpu")
    assert all(p.device == mg.device(device) for p in model.parameters())
    assert h.history["val_accuracy"][-1] > 0.8
    assert isinstance(model.predict(x_test, verbose=0), np.ndarray)


def test_subclassed_model_trains(digit_data):
    (x_train, y_train), (x_test, y_test) = digit_data

    class Classifier(keras.Model):
        def __init__(self):
            super().__init__()
            self.hidden = keras.layers.Dense(32, activation="relu")
            self.out = keras.layers.Dense(10)

        def call(self, inputs):
            return self.out(self.hidden(inputs))

    model = Classifier()
    model.compile(optimizer="adam",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    h = model.fit(x_train, y_train, epochs=5, validation_data=(x_test, y_test), verbose=0)
    assert h.history["val_accuracy"][-1] > 0.85
    assert model.name == "classifier" and model.count_params() == 64 * 32 + 32 + 32 * 10 + 10


def test_optimizer_objects():
    model = keras.Sequential([keras.layers.Dense(2, input_shape=(3,))])
    model.compile(optimizer=optim.SGD(model.parameters(), lr=0.1), loss="mse")
    model.fit(np.ones((4, 3)), np.ones((4, 2)), verbose=0)
    adam = keras.optimizers.Adam(learning_rate=0.01, weight_decay=0.1)
    model.compile(optimizer=adam, loss="mse")
    model.fit(np.ones((4, 3)), np.ones((4, 2)), verbose=0)
    assert isinstance(adam.optimizer, optim.AdamW)
    assert adam.optimizer.param_groups[0]["eps"] == 1e-7  # Keras's epsilon


@pytest.mark.skipif(not MNIST_DIR.is_dir(), reason="needs ../shared/data/mnist")
def test_real_mnist_classic_program_one_epoch_on_a_subset(monkeypatch):
    monkeypatch.setenv("MINIGRAD_DATA", str(MNIST_DIR.parent))
    # the classic program, with only the import changed (and a subset, one epoch)
    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    x_train = x_train.reshape(60000, 784).astype("float32") / 255
    x_test = x_test.reshape(10000, 784).astype("float32") / 255
    x_train, y_train, x_test, y_test = x_train[:12000], y_train[:12000], x_test[:2000], y_test[
        :2000]
    model = classic_model(784)
    h = model.fit(x_train, y_train, epochs=1, batch_size=32,
                  validation_data=(x_test, y_test), verbose=0)
    assert h.history["val_accuracy"][0] > 0.85
