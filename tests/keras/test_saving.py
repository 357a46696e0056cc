"""``model.save("m.keras")``: one zip holding config.json and safetensors weights, and
``keras.models.load_model`` of it (Sequential and functional models)."""

import json
import zipfile

import numpy as np
import pytest

import minigrad as mg
from minigrad import keras
from minigrad.io import safetensors
from minigrad.keras import saving


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6)).astype("float32")
    return x, (x[:, 0] > 0).astype("int64")


def test_sequential_to_one_keras_file(tmp_path, data):
    x, y = data
    model = keras.Sequential([keras.Input(shape=(6,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dropout(0.2),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, epochs=2, verbose=0)
    path = tmp_path / "m.keras"
    keras.models.save_model(model, path)
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == ["config.json", "metadata.json",
                                              "model.weights.safetensors"]
        config = json.loads(archive.read("config.json"))
        weights = safetensors.load(archive.read("model.weights.safetensors"))
    assert config["class_name"] == "Sequential" and config["compile_config"]["metrics"] == [
        "accuracy"]
    assert sorted(weights) == sorted(model.state_dict())  # a plain safetensors file
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)
    loaded.fit(x, y, epochs=1, verbose=0)  # compiled again from the saved settings
    assert not list(tmp_path.glob(".tmp-*"))  # written through a temporary file


def test_functional_model_round_trip(tmp_path, data):
    x, y = data
    a, b = keras.Input(shape=(6,), name="a"), keras.Input(shape=(3,), name="b")
    shared = keras.layers.Dense(4, activation="tanh")
    joined = keras.layers.Concatenate(name="join")([shared(a), b])
    first = keras.layers.Dense(2, activation="softmax", name="first")(joined)
    second = keras.layers.Dense(1, name="second")(keras.layers.Add()([shared(a), shared(a)]))
    model = keras.Model(inputs=[a, b], outputs=[first, second], name="two_heads")
    model.compile(optimizer="adam", loss={"first": "sparse_categorical_crossentropy",
                                          "second": "mse"},
                  loss_weights={"second": 0.1}, metrics=[["accuracy"], []])
    xb = x[:, :3] * 2
    model.fit([x, xb], [y, x[:, :1]], epochs=1, verbose=0)
    path = tmp_path / "two.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded).__name__ == "Functional" and loaded.name == "two_heads"
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    for got, want in zip(loaded.predict([x, xb], verbose=0), model.predict([x, xb], verbose=0)):
        np.testing.assert_array_equal(got, want)
    assert loaded.loss_weights == [1.0, 0.1]
    assert loaded.evaluate([x, xb], [y, x[:, :1]], verbose=0, return_dict=True) == (
        model.evaluate([x, xb], [y, x[:, :1]], verbose=0, return_dict=True))
    assert loaded.count_params() == model.count_params()


def test_functional_call_arguments_and_folder_format(tmp_path):
    q = keras.Input(shape=(5, 8))
    attended = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)(q, q,
                                                                      use_causal_mask=True)
    model = keras.Model(q, keras.layers.Dense(3)(attended))
    x = np.random.default_rng(1).normal(size=(2, 5, 8)).astype("float32")
    model.save(tmp_path / "folder")  # without .keras: the folder format
    assert (tmp_path / "folder" / "config.json").is_file()
    for path in (tmp_path / "folder", tmp_path / "one.keras"):
        model.save(path)
        loaded = keras.models.load_model(path, compile=False)
        np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


class Scale(keras.layers.Layer):
    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, inputs):
        return inputs * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def test_custom_layers_and_errors(tmp_path):
    inputs = keras.Input(shape=(3,))
    model = keras.Model(inputs, Scale(3.0)(keras.layers.Dense(2)(inputs)))
    path = tmp_path / "custom.keras"
    model.save(path)
    with pytest.raises(ValueError, match="custom_objects"):
        keras.models.load_model(path)
    loaded = keras.models.load_model(path, custom_objects={"Scale": Scale})
    x = np.ones((1, 3), dtype="float32")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    with pytest.raises(FileExistsError):
        model.save(path, overwrite=False)
    (tmp_path / "bad.keras").write_bytes(b"not a zip")
    with pytest.raises(FileNotFoundError, match="no saved model"):
        keras.models.load_model(tmp_path / "bad.keras")  # not a zip: not a .keras file
    with zipfile.ZipFile(tmp_path / "empty.keras", "w") as archive:
        archive.writestr("config.json", "{}")
    with pytest.raises(ValueError, match="model.weights.safetensors missing"):
        keras.models.load_model(tmp_path / "empty.keras")

    class Sub(keras.Model):
        def call(self, inputs):
            return inputs

    with pytest.raises(NotImplementedError, match="subclassed"):
        Sub().save(tmp_path / "sub.keras")


def test_keras_file_module(tmp_path):
    path = tmp_path / "w.keras"
    saving.write_keras_file(path, {"format": "x"}, {"w": mg.ones(2, 3)})
    document, arrays = saving.read_keras_file(path)
    assert document == {"format": "x"} and arrays["w"].shape == (2, 3)
    assert saving.is_keras_file(path) and not saving.is_keras_file(tmp_path)
    with pytest.raises(ValueError, match="not a minigrad.keras model"):
        keras.models.load_model(path)
