"""Keras habits of issue 19: the functional API, the ``*_on_batch`` methods, weights in Keras's
layout, sample and class weights, ``validation_freq``, the callbacks ReduceLROnPlateau,
CSVLogger, TerminateOnNaN and LambdaCallback, and ``keras.utils.set_random_seed``."""

import csv
import math

import numpy as np
import pytest

import minigrad as mg
from minigrad import keras
from minigrad.data import digits
from minigrad.keras import callbacks as callbacks_module
from minigrad.keras import weighting


@pytest.fixture(scope="module")
def data():
    (x, y), _ = digits()
    return x[:256], y[:256]


def sequential_mlp():
    return keras.Sequential([keras.Input(shape=(64,)),
                             keras.layers.Dense(16, activation="relu"),
                             keras.layers.Dense(10, activation="softmax")])


def functional_mlp():
    inputs = keras.Input(shape=(64,))
    hidden = keras.layers.Dense(16, activation="relu")(inputs)
    outputs = keras.layers.Dense(10, activation="softmax")(hidden)
    return keras.Model(inputs=inputs, outputs=outputs)


def compiled(model, **kwargs):
    model.compile(**{"optimizer": "adam", "loss": "sparse_categorical_crossentropy",
                     "metrics": ["accuracy"], **kwargs})
    return model


def weights_equal(a, b):
    return len(a) == len(b) and all(np.array_equal(u, v) for u, v in zip(a, b))


# ------------------------------------------------------------------------------------------
# the functional API
# ------------------------------------------------------------------------------------------


def test_symbolic_tensors_and_shapes():
    inputs = keras.Input(shape=(None, 8), name="seq")
    assert inputs.shape == (None, None, 8) and inputs.dtype == "float32"
    out = keras.layers.LSTM(5, return_sequences=True)(inputs)
    assert out.shape == (None, None, 5)  # the time axis follows the input's free axis
    pooled = keras.layers.Flatten()(keras.layers.Dense(3)(keras.Input(shape=(4, 2))))
    assert pooled.shape == (None, 12)
    with pytest.raises(TypeError, match="no value"):
        bool(inputs)


def test_functional_model_is_the_sequential_model(data):
    x, y = data
    runs = []
    for build in (sequential_mlp, functional_mlp):
        keras.utils.set_random_seed(3)
        model = compiled(build())
        history = model.fit(x, y, epochs=2, batch_size=32, validation_split=0.25, verbose=0)
        runs.append((model.get_weights(), history.history, model.predict(x[:5], verbose=0)))
    (w1, h1, p1), (w2, h2, p2) = runs
    assert weights_equal(w1, w2) and h1 == h2 and np.array_equal(p1, p2)
    model = functional_mlp()
    assert isinstance(model, keras.models.Functional) and isinstance(model, keras.Model)
    assert [layer.name for layer in model.layers][1:] == ["dense", "dense_1"]
    assert model.output_shape == (None, 10) and model.count_params() == 64 * 16 + 16 + 170


def test_several_inputs_and_outputs(data, capsys):
    x, y = data
    image = keras.Input(shape=(64,), name="image")
    extra = keras.Input(shape=(2,), name="extra")
    hidden = keras.layers.Dense(16, activation="relu")(image)
    joined = keras.layers.Concatenate()([hidden, extra])
    digit = keras.layers.Dense(10, activation="softmax", name="digit")(joined)
    parity = keras.layers.Dense(1, activation="sigmoid", name="parity")(joined)
    model = keras.Model(inputs=[image, extra], outputs=[digit, parity])
    assert model.input_names == ["image", "extra"] and model.output_names == ["digit", "parity"]
    model.compile(optimizer="adam", loss=["sparse_categorical_crossentropy", "binary_crossentropy"],
                  loss_weights=[1.0, 0.5], metrics={"digit": ["accuracy"]})
    x2 = np.stack([x.mean(axis=1), x.std(axis=1)], axis=1)
    parity_y = (y % 2).astype("float32")
    history = model.fit([x, x2], [y, parity_y], epochs=3, batch_size=32, verbose=0,
                        validation_data=([x, x2], [y, parity_y]))
    keys = set(history.history)
    assert keys == {"loss", "digit_loss", "digit_accuracy", "parity_loss", "val_loss",
                    "val_digit_loss", "val_digit_accuracy", "val_parity_loss"}
    last = {k: v[-1] for k, v in history.history.items()}
    # the total is the weighted sum of the outputs' losses (each a mean over the examples)
    assert math.isclose(last["val_loss"], last["val_digit_loss"] + 0.5 * last["val_parity_loss"],
                        rel_tol=1e-5)
    assert history.history["loss"][-1] < history.history["loss"][0]
    digit_p, parity_p = model.predict({"image": x[:4], "extra": x2[:4]}, verbose=0)
    assert digit_p.shape == (4, 10) and parity_p.shape == (4, 1)
    results = model.evaluate([x, x2], {"digit": y, "parity": parity_y}, verbose=0,
                             return_dict=True)
    assert math.isclose(results["loss"], last["val_loss"], rel_tol=1e-5)
    model.summary()
    assert " concatenate (Concatenate)   (None, 18)                0" in capsys.readouterr().out


def test_shared_layers_share_weights():
    a, b = keras.Input(shape=(3,)), keras.Input(shape=(3,))
    shared = keras.layers.Dense(4)
    out = keras.layers.Subtract()([shared(a), shared(b)])
    model = keras.Model([a, b], out)
    assert model.count_params() == 16 and len(model.get_weights()) == 2
    x = np.random.default_rng(0).normal(size=(5, 3)).astype("float32")
    np.testing.assert_allclose(model.predict([x, x], verbose=0), 0.0, atol=1e-6)
    merged = [keras.layers.Add(), keras.layers.Multiply(), keras.layers.Average(),
              keras.layers.Maximum(), keras.layers.Minimum()]
    p, q = mg.tensor([[1.0, -2.0]]), mg.tensor([[3.0, 4.0]])
    assert [layer([p, q]).tolist() for layer in merged] == [
        [[4.0, 2.0]], [[3.0, -8.0]], [[2.0, 1.0]], [[3.0, 4.0]], [[1.0, -2.0]]]


def test_integer_inputs_and_nested_keras_layers():
    tokens = keras.Input(shape=(6,), dtype="int32")
    vectors = keras.layers.Embedding(20, 4)(tokens)
    out = keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(vectors))
    model = compiled(keras.Model(tokens, out))
    ids = np.random.default_rng(0).integers(0, 20, size=(12, 6))
    model.fit(ids.astype("float64"), ids[:, 0] % 2, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="integers"):
        model.predict(ids + 0.5, verbose=0)


def test_graph_errors():
    a, b = keras.Input(shape=(3,)), keras.Input(shape=(3,))
    out = keras.layers.Add()([a, b])
    with pytest.raises(ValueError, match="Graph disconnected"):
        keras.Model(inputs=a, outputs=out)
    with pytest.raises(ValueError, match="must be keras.Input"):
        keras.Model(inputs=keras.layers.Dense(2)(a), outputs=out)
    with pytest.raises(TypeError, match="symbolic tensors"):
        keras.Model(inputs=a, outputs=np.zeros(3))
    dense = keras.layers.Dense(2, name="same")
    with pytest.raises(ValueError, match="used 2 times"):
        keras.Model(a, keras.layers.Dense(2, name="same")(dense(a)))
    model = keras.Model([a, b], out)
    with pytest.raises(ValueError, match="expects 2 input"):
        model.predict(np.zeros((2, 3)), verbose=0)
    with pytest.raises(ValueError, match="incompatible"):
        model.predict([np.zeros((2, 4)), np.zeros((2, 3))], verbose=0)
    with pytest.raises(ValueError, match="at least 2 inputs"):
        keras.layers.Add()([a])


# ------------------------------------------------------------------------------------------
# one batch
# ------------------------------------------------------------------------------------------


def test_train_on_batch_is_one_fit_step(data):
    x, y = data[0][:32], data[1][:32]
    keras.utils.set_random_seed(0)
    stepped = compiled(functional_mlp())
    keras.utils.set_random_seed(0)
    fitted = compiled(functional_mlp())
    loss, accuracy = stepped.train_on_batch(x, y)
    history = fitted.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0)
    assert weights_equal(stepped.get_weights(), fitted.get_weights())
    assert (loss, accuracy) == (history.history["loss"][0], history.history["accuracy"][0])
    logs = stepped.test_on_batch(x, y, return_dict=True)
    assert logs == stepped.evaluate(x, y, verbose=0, return_dict=True)
    np.testing.assert_array_equal(stepped.predict_on_batch(x), stepped.predict(x, verbose=0))
    assert isinstance(compiled(sequential_mlp(), metrics=[]).train_on_batch(x, y), float)


# ------------------------------------------------------------------------------------------
# weights in Keras's layout
# ------------------------------------------------------------------------------------------


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def keras_lstm(x, kernel, recurrent, bias):
    """Keras's LSTM (gates i, f, c, o) in NumPy, from Keras-layout weights."""
    units = recurrent.shape[0]
    h = c = np.zeros((x.shape[0], units))
    for t in range(x.shape[1]):
        z = x[:, t] @ kernel + h @ recurrent + bias
        i, f, g, o = (z[:, k * units:(k + 1) * units] for k in range(4))
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        h = _sigmoid(o) * np.tanh(c)
    return h


def keras_gru(x, kernel, recurrent, bias):
    """Keras's GRU with reset_after=True (gates z, r, h) in NumPy, from Keras-layout weights."""
    units = recurrent.shape[0]
    h = np.zeros((x.shape[0], units))
    for t in range(x.shape[1]):
        xz = x[:, t] @ kernel + bias[0]
        hz = h @ recurrent + bias[1]
        z = _sigmoid(xz[:, :units] + hz[:, :units])
        r = _sigmoid(xz[:, units:2 * units] + hz[:, units:2 * units])
        hh = np.tanh(xz[:, 2 * units:] + r * hz[:, 2 * units:])
        h = z * h + (1 - z) * hh
    return h


@pytest.mark.parametrize("kind, reference", [("LSTM", keras_lstm), ("GRU", keras_gru)])
def test_recurrent_weights_follow_keras_formulas(kind, reference):
    layer = getattr(keras.layers, kind)(5)
    x = np.random.default_rng(1).normal(size=(3, 4, 2)).astype("float32")
    out = layer(x).detach().numpy()
    weights = layer.get_weights()
    gates = 4 if kind == "LSTM" else 3
    bias_shape = (4 * 5,) if kind == "LSTM" else (2, 3 * 5)
    assert [w.shape for w in weights] == [(2, gates * 5), (5, gates * 5), bias_shape]
    np.testing.assert_allclose(out, reference(x, *weights), rtol=1e-4, atol=1e-5)
    rng = np.random.default_rng(2)  # Keras-layout weights in, same formula out
    new = [rng.normal(scale=0.5, size=w.shape).astype("float32") for w in weights]
    layer.set_weights(new)
    np.testing.assert_allclose(layer(x).detach().numpy(), reference(x, *new), rtol=1e-4, atol=1e-5)
    assert weights_equal(layer.get_weights(), new) or kind == "LSTM"  # LSTM: one bias is two


def test_dense_embedding_attention_layouts():
    dense = keras.layers.Dense(3)
    dense.build((None, 4))
    kernel, bias = dense.get_weights()
    np.testing.assert_array_equal(kernel, dense.linear.weight.detach().numpy().T)
    x = np.random.default_rng(0).normal(size=(2, 4)).astype("float32")
    np.testing.assert_allclose(dense(x).detach().numpy(), x @ kernel + bias, rtol=1e-5)
    dense.set_weights([np.ones((4, 3)), np.arange(3.0)])
    np.testing.assert_allclose(dense(x).detach().numpy(), x.sum(1, keepdims=True) + np.arange(3.0),
                               rtol=1e-5)
    with pytest.raises(ValueError, match="expecting 2 weights"):
        dense.set_weights([np.ones((4, 3))])
    with pytest.raises(ValueError, match="shape"):
        dense.set_weights([np.ones((3, 4)), np.zeros(3)])
    mha = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)
    q = np.random.default_rng(1).normal(size=(1, 3, 8)).astype("float32")
    before = mha(q, q).detach().numpy()
    assert [w.shape for w in mha.get_weights()] == [(8, 2, 4), (2, 4)] * 3 + [(2, 4, 8), (8,)]
    mha.set_weights(mha.get_weights())
    np.testing.assert_allclose(mha(q, q).detach().numpy(), before, rtol=1e-6)


def test_model_weights_are_the_layers_weights():
    model = sequential_mlp()
    weights = model.get_weights()
    assert [w.shape for w in weights] == [(64, 16), (16,), (16, 10), (10,)]
    other = sequential_mlp()
    other.set_weights(weights)
    assert weights_equal(other.get_weights(), weights)
    x = np.random.default_rng(0).random((3, 64)).astype("float32")
    np.testing.assert_array_equal(other.predict(x, verbose=0), model.predict(x, verbose=0))
    with pytest.raises(ValueError, match="expecting 4 weights"):
        other.set_weights(weights[:3])


# ------------------------------------------------------------------------------------------
# sample and class weights, validation_freq
# ------------------------------------------------------------------------------------------


def test_sample_weight_is_keras_reduction(data):
    x, y = data
    model = compiled(sequential_mlp(), metrics=[])
    w = np.random.default_rng(0).random(len(x)).astype("float32")
    p = model.predict(x, verbose=0)
    per_example = -np.log(np.clip(p[np.arange(len(y)), y], 1e-7, 1 - 1e-7))
    got = model.evaluate(x, y, sample_weight=w, batch_size=len(x), verbose=0)
    assert math.isclose(got, float(np.mean(w * per_example)), rel_tol=1e-4)
    assert math.isclose(model.evaluate(x, y, batch_size=len(x), verbose=0),
                        float(per_example.mean()), rel_tol=1e-4)


def test_class_weight_equals_its_sample_weight(data):
    x, y = data
    class_weight = {0: 2.0, 3: 0.5, 7: 4.0}
    runs = []
    for kwargs in ({"class_weight": class_weight},
                   {"sample_weight": np.array([class_weight.get(c, 1.0) for c in y])}):
        keras.utils.set_random_seed(1)
        model = compiled(sequential_mlp())
        runs.append(model.fit(x, y, epochs=2, batch_size=64, verbose=0, **kwargs).history)
        runs.append(model.get_weights())
    assert runs[0] == runs[2] and weights_equal(runs[1], runs[3])
    keras.utils.set_random_seed(1)
    plain = compiled(sequential_mlp())
    assert plain.fit(x, y, epochs=2, batch_size=64, verbose=0).history != runs[0]
    with pytest.raises(ValueError, match="one weight per example"):
        plain.fit(x, y, sample_weight=np.ones(3), verbose=0)
    assert weighting.class_weights_to_sample_weights(np.eye(3)[[2, 0]], {2: 5}).tolist() == [
        5.0, 1.0]


def test_weighted_loss_needs_per_example_values():
    model = compiled(sequential_mlp(), loss=lambda y_true, y_pred: (y_pred ** 2).mean(),
                     metrics=[])
    with pytest.raises(ValueError, match="one loss value per example"):
        model.fit(np.zeros((4, 64)), np.zeros((4, 10)), sample_weight=np.ones(4), verbose=0)


def test_validation_freq(data):
    x, y = data
    model = compiled(sequential_mlp())
    history = model.fit(x, y, epochs=4, verbose=0, validation_split=0.25, validation_freq=2)
    assert len(history.history["loss"]) == 4 and len(history.history["val_loss"]) == 2
    history = model.fit(x, y, epochs=3, verbose=0, validation_split=0.25, validation_freq=[1, 3])
    assert len(history.history["val_accuracy"]) == 2
    with pytest.raises(ValueError, match="validation_freq"):
        model.fit(x, y, epochs=1, verbose=0, validation_freq=0)


# ------------------------------------------------------------------------------------------
# callbacks
# ------------------------------------------------------------------------------------------


class _Model:
    stop_training = False


def test_reduce_lr_on_plateau_follows_keras_rule():
    from minigrad import optim

    opt = optim.SGD([mg.zeros(1, requires_grad=True)], lr=1.0)
    cb = callbacks_module.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2,
                                            cooldown=1, min_lr=0.2)
    cb.set_model(_Model())
    cb.optimizer = opt
    cb.on_train_begin()
    losses = [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95]
    rates = []
    for epoch, value in enumerate(losses):
        logs = {"val_loss": value}
        cb.on_epoch_end(epoch, logs)
        rates.append(opt.param_groups[0]["lr"])
        assert logs["learning_rate"] == (rates[-2] if epoch else 1.0)  # the epoch's own rate
    # Keras: reduce after 2 epochs without improvement; the cooldown epoch resets the count
    # and (no longer in cooldown) counts itself; never below min_lr, and not from min_lr
    assert rates == [1.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.2, 0.2, 0.2]
    with pytest.raises(ValueError, match="factor >= 1.0"):
        callbacks_module.ReduceLROnPlateau(factor=1.0)


def test_reduce_lr_in_fit(data):
    x, y = data
    model = compiled(sequential_mlp())
    cb = keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0,
                                           min_delta=10.0)  # never "improves"
    history = model.fit(x, y, epochs=3, verbose=0, callbacks=[cb])
    # each epoch logs the rate it trained with; the first epoch is an improvement over inf
    assert history.history["learning_rate"] == [0.001, 0.001, 0.0005]
    assert model.optimizer.param_groups[0]["lr"] == 0.00025


def test_csv_logger(tmp_path, data):
    x, y = data
    path = tmp_path / "logs" / "run.csv"
    model = compiled(sequential_mlp())
    model.fit(x, y, epochs=2, verbose=0, validation_split=0.25,
              callbacks=[keras.callbacks.CSVLogger(path)])
    rows = list(csv.DictReader(path.open()))
    assert list(rows[0]) == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert [r["epoch"] for r in rows] == ["0", "1"]
    assert float(rows[1]["val_loss"]) == pytest.approx(model.history.history["val_loss"][1])
    model.fit(x, y, epochs=1, verbose=0, callbacks=[keras.callbacks.CSVLogger(path, ";",
                                                                              append=True)])
    lines = path.read_text().splitlines()
    assert len(lines) == 4 and lines[3].startswith("0;") and lines[3].endswith(";NA;NA")


def test_terminate_on_nan_stops_within_the_epoch(data, capsys):
    x, y = data[0][:64].copy(), data[1][:64]
    x[40] = np.nan  # batch 2 of 8 examples
    seen = []
    model = compiled(sequential_mlp())
    history = model.fit(
        x, y, epochs=3, batch_size=8, shuffle=False, verbose=0,
        callbacks=[keras.callbacks.TerminateOnNaN(),
                   keras.callbacks.LambdaCallback(
                       on_batch_end=lambda batch, logs: seen.append((batch, logs["loss"])))])
    assert "Batch 5: Invalid loss, terminating training" in capsys.readouterr().out
    assert [b for b, _ in seen] == [0, 1, 2, 3, 4, 5] and isinstance(seen[0][1], float)
    assert len(history.history["loss"]) == 1 and model.stop_training


def test_lambda_callback_hooks(data):
    x, y = data
    calls = []
    cb = keras.callbacks.LambdaCallback(
        on_train_begin=lambda logs: calls.append("begin"),
        on_epoch_begin=lambda epoch, logs: calls.append(f"epoch {epoch}"),
        on_epoch_end=lambda epoch, logs: calls.append(round(logs["loss"], 3) > 0),
        on_train_end=lambda logs: calls.append("end"),
        on_test_batch_end=lambda batch, logs: None)
    compiled(sequential_mlp()).fit(x, y, epochs=2, verbose=0, callbacks=[cb])
    assert calls == ["begin", "epoch 0", True, "epoch 1", True, "end"]
    assert callable(cb.on_test_batch_end)


def test_set_random_seed_makes_runs_repeat(data):
    x, y = data
    runs = []
    for _ in range(2):
        keras.utils.set_random_seed(7)
        model = compiled(keras.Sequential([keras.Input(shape=(64,)),
                                           keras.layers.Dense(16, activation="relu"),
                                           keras.layers.Dropout(0.5),
                                           keras.layers.Dense(10, activation="softmax")]))
        runs.append(model.fit(x, y, epochs=2, verbose=0).history)
    assert runs[0] == runs[1]
    with pytest.raises(ValueError, match="integer"):
        keras.utils.set_random_seed(1.5)


def test_conv_and_batch_norm_layouts():
    from minigrad import nn
    from minigrad.keras import weights as keras_weights

    conv = nn.Conv2d(3, 5, (2, 4))
    kernel, bias = keras_weights.module_weights(conv)
    assert kernel.shape == (2, 4, 3, 5) and bias.shape == (5,)  # Keras's (kh, kw, in, out)
    np.testing.assert_array_equal(kernel[1, 2], conv.weight.detach().numpy()[:, :, 1, 2].T)
    new = np.random.default_rng(0).normal(size=kernel.shape).astype("float32")
    keras_weights.set_module_weights(conv, [new, bias])
    np.testing.assert_array_equal(keras_weights.module_weights(conv)[0], new)
    norm = nn.BatchNorm2d(4)
    assert [w.shape for w in keras_weights.module_weights(norm)] == [(4,)] * 4  # no counter
    with pytest.raises(ValueError, match="has 2 weights"):
        keras_weights.set_module_weights(conv, [new])


def test_functional_weighted_fit_on_device(device, data):
    x, y = data
    mg.set_default_device(device)
    try:
        model = compiled(functional_mlp())
        history = model.fit(x, y, epochs=2, verbose=0, sample_weight=np.full(len(x), 2.0),
                            validation_data=(x, y, np.ones(len(x))))
        batch = model.train_on_batch(x[:16], y[:16], class_weight={1: 3.0})
    finally:
        mg.set_default_device("cpu")
    assert all(p.device == mg.device(device) for p in model.parameters())
    assert history.history["loss"][-1] < history.history["loss"][0] and len(batch) == 2
    assert isinstance(model.predict(x[:3], verbose=0), np.ndarray)


def test_dict_outputs_and_functional_merging(tmp_path):
    """The Keras guide's ticket model: variable-length int sequences, dict in and out."""
    title = keras.Input(shape=(None,), name="title")
    tags = keras.Input(shape=(3,), name="tags")
    features = keras.layers.LSTM(8)(keras.layers.Embedding(50, 4)(title))
    joined = keras.layers.concatenate([features, tags])
    model = keras.Model(inputs=[title, tags],
                        outputs={"priority": keras.layers.Dense(1, name="p")(joined),
                                 "department": keras.layers.Dense(4, name="d")(joined)})
    assert model.output_names == ["department", "priority"]
    model.compile(optimizer="adam",
                  loss={"priority": keras.losses.BinaryCrossentropy(from_logits=True),
                        "department": keras.losses.CategoricalCrossentropy(from_logits=True)},
                  loss_weights={"priority": 1.0, "department": 0.2})
    rng = np.random.default_rng(0)
    x = {"title": rng.integers(50, size=(16, 7)), "tags": rng.random((16, 3))}
    y = {"priority": rng.random((16, 1)), "department": np.eye(4)[rng.integers(4, size=16)]}
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    last = {k: v[-1] for k, v in history.history.items()}
    assert set(last) == {"loss", "priority_loss", "department_loss"}
    predicted = model.predict(x, verbose=0)
    assert {k: v.shape for k, v in predicted.items()} == {"department": (16, 4),
                                                         "priority": (16, 1)}
    model.save(tmp_path / "ticket.keras")
    loaded = keras.models.load_model(tmp_path / "ticket.keras")
    again = loaded.predict(x, verbose=0)
    assert all(np.array_equal(again[k], predicted[k]) for k in predicted)
    assert keras.layers.add is not None and keras.layers.Input is keras.Input
