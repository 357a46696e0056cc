"""Keras's convolutional layers (minigrad/keras/convolutional.py): channels-last inputs,
Keras's (TensorFlow's) output-shape and 'same'-padding rules, weights in Keras's layouts,
BatchNormalization's moving statistics, summary() as Keras prints it, fit/save/load."""

import io

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import keras
from minigrad.keras import convolutional as C


def npy(t):
    return mg.backend.to_device(t.detach().data, mg.backend.CPU)


def mnist_convnet():
    """Keras's example "Simple MNIST convnet", layer for layer."""
    return keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        keras.layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        keras.layers.MaxPooling2D(pool_size=(2, 2)),
        keras.layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        keras.layers.MaxPooling2D(pool_size=(2, 2)),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(10, activation="softmax"),
    ])


def test_summary_of_keras_mnist_convnet_as_keras_prints_it():
    model = mnist_convnet()
    log = io.StringIO()
    model.summary(print_fn=lambda line: print(line, file=log))
    text = log.getvalue()
    # the numbers of Keras's own printout of this model (keras.io, "Simple MNIST convnet")
    for row in [" conv2d (Conv2D)             (None, 26, 26, 32)        320",
                " max_pooling2d (MaxPooling2D (None, 13, 13, 32)        0",
                " conv2d_1 (Conv2D)           (None, 11, 11, 64)        18496",
                " max_pooling2d_1 (MaxPooling (None, 5, 5, 64)          0",
                " flatten (Flatten)           (None, 1600)              0",
                " dropout (Dropout)           (None, 1600)              0",
                " dense (Dense)               (None, 10)                16010"]:
        assert row in text, row
    assert "Total params: 34,826 (136.04 KB)" in text
    assert "Trainable params: 34,826 (136.04 KB)" in text
    assert model.count_params() == 34_826


def test_batch_normalization_counts_moving_statistics_as_non_trainable():
    model = keras.Sequential([keras.Input(shape=(8, 8, 3)), keras.layers.Conv2D(4, 3),
                              keras.layers.BatchNormalization(),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    log = io.StringIO()
    model.summary(print_fn=lambda line: print(line, file=log))
    text = log.getvalue()
    assert " batch_normalization (BatchN (None, 6, 6, 4)           16" in text
    assert " global_average_pooling2d (G (None, 4)                 0" in text
    assert "Total params: 138" in text  # 3*3*3*4+4 + 16 + 4*2+2
    assert "Trainable params: 130" in text and "Non-trainable params: 8 (" in text
    assert model.count_params() == 138


@pytest.mark.parametrize("size, kernel, stride, padding, dilation, out", [
    (28, 3, 1, "valid", 1, 26), (28, 3, 1, "same", 1, 28), (28, 3, 2, "same", 1, 14),
    (28, 3, 2, "valid", 1, 13), (7, 3, 2, "same", 1, 4), (7, 2, 3, "same", 1, 3),
    (10, 3, 1, "valid", 2, 6), (10, 3, 1, "same", 2, 10), (10, 4, 3, "same", 1, 4)])
def test_conv_output_shape_rules(size, kernel, stride, padding, dilation, out):
    layer = keras.layers.Conv2D(5, kernel, strides=stride, padding=padding,
                                dilation_rate=dilation)
    y = layer(mg.randn(2, size, size + 1, 3))
    expected_w = C.output_length(size + 1, kernel, stride, padding, dilation)
    assert y.shape == (2, out, expected_w, 5)
    assert layer.output_shape == (None, out, expected_w, 5)
    layer1 = keras.layers.Conv1D(5, kernel, strides=stride, padding=padding,
                                 dilation_rate=dilation)
    assert layer1(mg.randn(2, size, 3)).shape == (2, out, 5)


def test_same_padding_puts_the_odd_pad_at_the_end():
    assert C.same_pads(28, 3, 2) == (0, 1)
    assert C.same_pads(7, 4, 1) == (1, 2)
    assert C.same_pads(6, 3, 2) == (0, 1)
    assert C.same_pads(5, 3, 2) == (1, 1)


@pytest.mark.parametrize("stride, size", [(2, 8), (2, 7), (1, 6), (3, 10)])
def test_conv2d_same_values_are_tensorflows(stride, size):
    """'same' with strides pads (total // 2, the rest) before the convolution."""
    rng = np.random.default_rng(0)
    x = mg.tensor(rng.standard_normal((2, size, size, 3)), dtype=mg.float32)
    layer = keras.layers.Conv2D(4, 3, strides=stride, padding="same")
    y = layer(x)
    kernel, bias = layer.get_weights()
    assert kernel.shape == (3, 3, 3, 4)  # Keras's layout (kh, kw, in, out)
    before, after = C.same_pads(size, 3, stride)
    xp = np.pad(npy(x), ((0, 0), (before, after), (before, after), (0, 0)))
    OH = -(-size // stride)
    ref = np.zeros((2, OH, OH, 4))
    for i in range(OH):
        for j in range(OH):
            patch = xp[:, i * stride:i * stride + 3, j * stride:j * stride + 3, :]
            ref[:, i, j] = np.einsum("nhwc,hwco->no", patch, kernel) + bias
    np.testing.assert_allclose(npy(y), ref, rtol=1e-5, atol=1e-5)


def test_conv1d_causal_pads_before():
    layer = keras.layers.Conv1D(1, 3, padding="causal", use_bias=False)
    x = np.arange(5.0).reshape(1, 5, 1)
    layer.build((None, 5, 1))
    layer.set_weights([np.ones((3, 1, 1))])
    np.testing.assert_allclose(npy(layer(x))[0, :, 0], [0, 1, 3, 6, 9])


def _pool_reference(x, k, s, padding, mode):
    """Keras's pooling in NumPy: windows over the padded input; 'same' averages divide by the
    window's part inside the input."""
    N, H, W, Ch = x.shape
    if padding == "same":
        (t, b), (left, r) = C.same_pads(H, k, s), C.same_pads(W, k, s)
    else:
        t = b = left = r = 0
    fill = -np.inf if mode == "max" else np.nan
    xp = np.pad(x, ((0, 0), (t, b), (left, r), (0, 0)), constant_values=fill)
    OH = C.output_length(H, k, s, padding)
    OW = C.output_length(W, k, s, padding)
    out = np.zeros((N, OH, OW, Ch))
    for i in range(OH):
        for j in range(OW):
            win = xp[:, i * s:i * s + k, j * s:j * s + k, :]
            out[:, i, j] = win.max(axis=(1, 2)) if mode == "max" else np.nanmean(win, (1, 2))
    return out


@pytest.mark.parametrize("cls, mode", [(keras.layers.MaxPooling2D, "max"),
                                       (keras.layers.AveragePooling2D, "avg")])
@pytest.mark.parametrize("k, s, padding", [(2, 2, "valid"), (3, 2, "valid"), (3, 2, "same"),
                                            (2, 2, "same"), (3, 1, "same")])
@pytest.mark.parametrize("size", [7, 8])
def test_pooling_values_and_shapes(cls, mode, k, s, padding, size):
    x = np.random.default_rng(1).standard_normal((2, size, size + 1, 3))
    layer = cls(k, strides=s, padding=padding)
    y = layer(mg.tensor(x))
    ref = _pool_reference(x, k, s, padding, mode)
    assert y.shape == ref.shape
    assert layer.output_shape == (None, *ref.shape[1:])
    np.testing.assert_allclose(npy(y), ref, rtol=1e-6, atol=1e-6)
    one_d = (keras.layers.MaxPooling1D if mode == "max" else keras.layers.AveragePooling1D)(
        k, strides=s, padding=padding)
    y1 = one_d(mg.tensor(x[:, 0]))
    np.testing.assert_allclose(npy(y1), _pool_1d(x[:, 0], k, s, padding, mode), rtol=1e-6,
                               atol=1e-6)


def _pool_1d(x, k, s, padding, mode):
    N, L, Ch = x.shape
    before, after = C.same_pads(L, k, s) if padding == "same" else (0, 0)
    fill = -np.inf if mode == "max" else np.nan
    xp = np.pad(x, ((0, 0), (before, after), (0, 0)), constant_values=fill)
    out = [xp[:, i * s:i * s + k] for i in range(C.output_length(L, k, s, padding))]
    return np.stack([w.max(1) if mode == "max" else np.nanmean(w, 1) for w in out], axis=1)


def test_global_pooling_and_reshape():
    x = mg.randn(2, 5, 6, 7)
    np.testing.assert_allclose(npy(keras.layers.GlobalAveragePooling2D()(x)),
                               npy(x).mean(axis=(1, 2)), rtol=1e-6)
    np.testing.assert_allclose(npy(keras.layers.GlobalMaxPooling2D()(x)),
                               npy(x).max(axis=(1, 2)))
    assert keras.layers.GlobalAveragePooling2D(keepdims=True)(x).shape == (2, 1, 1, 7)
    assert keras.layers.GlobalAveragePooling1D()(mg.randn(2, 9, 4)).shape == (2, 4)
    layer = keras.layers.Reshape((7, -1))
    assert layer(mg.randn(3, 14, 2)).shape == (3, 7, 4)
    assert layer.output_shape == (None, 7, 4)
    with pytest.raises(ValueError, match="total size"):
        keras.layers.Reshape((5, 5)).build((None, 24))


def test_batch_normalization_moving_statistics_and_modes():
    rng = np.random.default_rng(2)
    bn = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-3)
    x = rng.standard_normal((8, 3, 3, 4)) * 2 + 1
    y = bn(x)  # NumPy input: float32, as Keras
    flat = x.reshape(-1, 4)
    np.testing.assert_allclose(npy(y).reshape(-1, 4),
                               (flat - flat.mean(0)) / np.sqrt(flat.var(0) + 1e-3), rtol=1e-4,
                               atol=1e-5)
    gamma, beta, mean, var = bn.get_weights()
    np.testing.assert_allclose(mean, 0.1 * flat.mean(0), rtol=1e-5)
    np.testing.assert_allclose(var, 0.9 + 0.1 * flat.var(0, ddof=1), rtol=1e-5)
    bn.eval()
    y = bn(x)
    np.testing.assert_allclose(npy(y), (x - mean) / np.sqrt(var + 1e-3), rtol=1e-4, atol=1e-5)
    assert bn.count_params() == 16
    bn.set_weights([np.full(4, 2.0), np.ones(4), np.zeros(4), np.ones(4)])
    np.testing.assert_allclose(npy(bn(np.ones((1, 3, 3, 4)))),
                               np.full((1, 3, 3, 4), 2 / np.sqrt(1.001) + 1), rtol=1e-5)


def test_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"expected ndim=4, found ndim=3"):
        keras.layers.Conv2D(3, 3)(mg.randn(2, 8, 8))
    layer = keras.layers.Conv2D(3, 3)
    layer(mg.randn(2, 8, 8, 2))
    with pytest.raises(ValueError, match=r"axis -1 of input shape to have value 2"):
        layer(mg.randn(2, 8, 8, 5))
    with pytest.raises(ValueError, match=r"padding"):
        keras.layers.Conv2D(3, 3, padding="full")
    with pytest.raises(ValueError, match=r"<= 0"):
        keras.layers.Conv2D(3, 5)(mg.randn(1, 3, 3, 1))
    with pytest.raises(NotImplementedError, match="channels_last"):
        keras.layers.Conv2D(3, 3, data_format="channels_first")


def test_fit_save_and_load_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((64, 8, 8, 1)).astype("float32")
    y = (x[:, :4].mean(axis=(1, 2, 3)) > x[:, 4:].mean(axis=(1, 2, 3))).astype("int64")
    model = keras.Sequential([
        keras.Input(shape=(8, 8, 1)),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
        keras.layers.BatchNormalization(),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(2, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, y, epochs=15, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    path = tmp_path / "cnn.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    assert [type(layer).__name__ for layer in loaded.layers] == [
        type(layer).__name__ for layer in model.layers]


def test_functional_api_with_conv_layers():
    inputs = keras.Input(shape=(12, 12, 3))
    h = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    h = keras.layers.AveragePooling2D()(h)
    outputs = keras.layers.Dense(2)(keras.layers.Flatten()(h))
    model = keras.Model(inputs, outputs)
    assert model(mg.randn(2, 12, 12, 3)).shape == (2, 2)
    assert model.count_params() == 3 * 3 * 3 * 4 + 4 + 5 * 5 * 4 * 2 + 2


def test_conv_matches_nn_conv_in_channels_last():
    """The Keras layer is nn.Conv2d on the channels-first view."""
    x = mg.randn(2, 9, 9, 3)
    layer = keras.layers.Conv2D(5, (3, 2), strides=(2, 1))
    y = layer(x)
    ref = F.conv2d(x.permute(0, 3, 1, 2), layer.conv.weight, layer.conv.bias, stride=(2, 1))
    np.testing.assert_allclose(npy(y), npy(ref.permute(0, 2, 3, 1)), rtol=1e-5, atol=1e-6)


def test_layers_on_the_device_match_the_cpu(device):
    """Conv, pooling ('same' averages too), batch norm and global pooling on ``cuda`` (a GPU or
    the CuPy stand-in) give the CPU's outputs with the same weights."""
    a = np.random.default_rng(4).standard_normal((2, 7, 7, 3)).astype("float32")

    def build():
        return [keras.layers.Conv2D(4, 3, strides=2, padding="same"),
                keras.layers.AveragePooling2D(3, strides=1, padding="same"),
                keras.layers.MaxPooling2D(2, padding="same"),
                keras.layers.BatchNormalization(),
                keras.layers.GlobalAveragePooling2D()]

    outs = []
    weights = None
    for dev in ("cpu", device):
        x = mg.tensor(a, device=dev)
        for i, layer in enumerate(build()):
            layer.build((None, *x.shape[1:]))
            layer.to(dev)
            if weights is None or len(weights) <= i:
                weights = (weights or []) + [layer.get_weights()]
            else:
                layer.set_weights(weights[i])
            x = layer(x)
        outs.append(npy(x))
    np.testing.assert_allclose(outs[1], outs[0], rtol=1e-5, atol=1e-6)
