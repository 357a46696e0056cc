"""``minigrad demo`` with the convolutional networks: --model cnn, --dataset fashion-mnist and
mnist1d, --task speech. Tiny synthetic data sets (no network), a few steps each."""

import io
import pickle
import re
import tarfile
import wave

import numpy as np
import pytest

import minigrad as mg
from minigrad import cli
from minigrad.cli import demo
from minigrad.data import fsdd as real_fsdd
from minigrad.data import mnist1d as real_mnist1d
from minigrad.models import cnn


def _wav(samples) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.asarray(samples, "<i2").tobytes())
    return buffer.getvalue()


def _speech_archive(path, digits=range(10), speakers=("ann",), indices=range(8)):
    """Tones whose pitch is the digit, packed as FSDD's recordings.tar.gz."""
    rng = np.random.default_rng(0)
    with tarfile.open(path, "w:gz") as archive:
        for digit in digits:
            for speaker in speakers:
                for index in indices:
                    t = np.arange(int(rng.integers(2500, 6000))) / 8000
                    tone = np.sin(2 * np.pi * (300 + 300 * digit) * t + rng.uniform(0, 6))
                    data = _wav(8000 * tone + 300 * rng.standard_normal(len(t)))
                    info = tarfile.TarInfo(f"recordings/{digit}_{speaker}_{index}.wav")
                    info.size = len(data)
                    archive.addfile(info, io.BytesIO(data))
    return path


def test_options_and_defaults():
    args = cli.build_parser().parse_args(["demo"])
    assert (args.model, args.task, args.lr) == (None, "image", None)
    args = cli.build_parser().parse_args(["demo", "--task", "speech", "--dataset",
                                          "fashion-mnist", "--model", "cnn", "--lr", "0.01"])
    assert (args.task, args.dataset, args.model, args.lr) == ("speech", "fashion-mnist",
                                                              "cnn", 0.01)
    assert set(demo.CNN_DEFAULTS) == {"digits", "mnist", "fashion-mnist", "mnist1d", "speech"}
    assert demo.CNN_DEFAULTS["mnist"]["epochs"] <= 12  # the "within 12 epochs"


def test_cnn_on_the_bundled_digits(tmp_path, capsys):
    code = cli.main(["demo", "--model", "cnn", "--epochs", "1", "--verbose", "0",
                     "--out", str(tmp_path)])
    assert code == 0
    text = capsys.readouterr().out
    assert "a CNN on UCI digits (8x8): 1,437 training and 360 test examples" in text
    accuracy = float(re.search(r"Test accuracy: (\d+\.\d\d)%", text).group(1))
    assert accuracy > 50.0  # one epoch already learns (about 94%)
    model = cnn.digits_cnn()
    model.load_state_dict(mg.load(tmp_path / "digits-cnn.safetensors"))


def test_speech_task_on_a_tiny_fsdd(tmp_path, monkeypatch, capsys):
    archive = _speech_archive(tmp_path / "recordings.tar.gz")
    # the tiny set is not FSDD's 3,000 recordings: skip the content check
    monkeypatch.setattr(demo, "fsdd", lambda root, download: real_fsdd(root, sha256=None))
    code = cli.main(["demo", "--task", "speech", "--data-dir", str(archive), "--epochs", "3",
                     "--batch-size", "10", "--lr", "0.003", "--verbose", "2",
                     "--out", str(tmp_path / "out")])
    assert code == 0
    text = capsys.readouterr().out
    assert "a CNN on FSDD spoken digits (8 kHz): 30 training and 50 test examples of shape " \
           "(40, 101)" in text
    assert "Conv1d(40, 64" in text and "Epoch 3/3" in text
    accuracy = float(re.search(r"Test accuracy: (\d+\.\d\d)%", text).group(1))
    assert accuracy > 30.0  # ten classes: chance is 10%
    assert (tmp_path / "out" / "speech-cnn.safetensors").is_file()


def test_mnist1d_on_a_tiny_pickle(tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng(0)
    templates = 2 * rng.standard_normal((10, 40))
    y, y_test = rng.integers(0, 10, 200), rng.integers(0, 10, 100)
    content = {"x": templates[y] + 0.3 * rng.standard_normal((200, 40)), "y": y,
               "x_test": templates[y_test] + 0.3 * rng.standard_normal((100, 40)),
               "y_test": y_test}
    path = tmp_path / "mnist1d_data.pkl"
    path.write_bytes(pickle.dumps(content))
    monkeypatch.setattr(demo, "mnist1d", lambda p: real_mnist1d(p, sha256=None))
    code = cli.main(["demo", "--dataset", "mnist1d", "--data-dir", str(path), "--epochs", "3",
                     "--verbose", "0", "--out", str(tmp_path / "out")])
    assert code == 0
    text = capsys.readouterr().out
    assert "a CNN on MNIST-1D (40 points): 200 training and 100 test examples" in text
    assert float(re.search(r"Test accuracy: (\d+\.\d\d)%", text).group(1)) > 50.0


def test_missing_data_and_bad_options(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MINIGRAD_DATA", str(tmp_path / "none"))
    assert cli.main(["demo", "--task", "speech", "--out", str(tmp_path)]) == 1
    assert "minigrad demo: FSDD not found" in capsys.readouterr().err
    assert cli.main(["demo", "--dataset", "fashion-mnist", "--model", "cnn",
                     "--out", str(tmp_path)]) == 1
    assert "apt-get install dataset-fashion-mnist" in capsys.readouterr().err
    assert cli.main(["demo", "--dataset", "mnist1d", "--out", str(tmp_path)]) == 1
    assert "MNIST-1D not found" in capsys.readouterr().err
    assert cli.main(["demo", "--task", "speech", "--model", "mlp"]) == 2
    assert "--task speech trains a CNN" in capsys.readouterr().err
    assert cli.main(["demo", "--model", "cnn", "--lr", "-1"]) == 2
    assert "must be positive" in capsys.readouterr().err


@pytest.mark.parametrize("dataset", ["fashion-mnist", "mnist1d"])
def test_the_mlp_runs_on_the_new_data_sets(dataset, tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng(0)
    if dataset == "mnist1d":
        path = tmp_path / "mnist1d_data.pkl"
        path.write_bytes(pickle.dumps({"x": rng.standard_normal((40, 40)),
                                       "y": rng.integers(0, 10, 40),
                                       "x_test": rng.standard_normal((20, 40)),
                                       "y_test": rng.integers(0, 10, 20)}))
        monkeypatch.setattr(demo, "mnist1d", lambda p: real_mnist1d(p, sha256=None))
        data_dir, inputs = str(path), "Total params: 6,538"  # 40*128+128 + 1290
    else:
        images = rng.integers(0, 256, (30, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, 30)
        monkeypatch.setattr(demo.datasets, "fashion_mnist",
                            lambda root, download: ((images, labels), (images[:10], labels[:10])))
        data_dir, inputs = str(tmp_path), "Total params: 101,770"  # 784*128+128 + 1290
    code = cli.main(["demo", "--dataset", dataset, "--model", "mlp", "--data-dir", data_dir,
                     "--epochs", "1", "--out", str(tmp_path / "out")])
    assert code == 0
    assert inputs in capsys.readouterr().out


def test_keras_cnn_on_tiny_fashion_mnist(tmp_path, monkeypatch, capsys):
    """--model keras-cnn: the image CNN through the Keras facade (channels-last), the same
    trainable parameters as --model cnn; only for the 28x28 data sets."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (24, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 24)
    monkeypatch.setattr(demo.datasets, "fashion_mnist",
                        lambda root, download: ((images, labels), (images[:8], labels[:8])))
    code = cli.main(["demo", "--dataset", "fashion-mnist", "--model", "keras-cnn",
                     "--epochs", "1", "--batch-size", "8", "--out", str(tmp_path)])
    text = capsys.readouterr().out
    assert code == 0
    assert "Total params: 131,050" in text and "conv2d (Conv2D)" in text
    assert (tmp_path / "fashion-mnist-keras-cnn.safetensors").exists()
    assert "keras_mnist_cnn().load_state_dict" in text
    assert cli.main(["demo", "--dataset", "mnist1d", "--model", "keras-cnn"]) == 2
    assert "use it with --dataset mnist or fashion-mnist" in capsys.readouterr().err


def test_keras_cnn_matches_the_cnn():
    """keras_mnist_cnn and mnist_cnn: the same trainable parameter shapes, logits of the same
    shape from channels-last and channels-first inputs."""
    keras_model, model = cnn.keras_mnist_cnn(), cnn.mnist_cnn()
    shapes = sorted(tuple(p.shape) for p in keras_model.parameters())
    # Keras keeps 3x3 kernels as (kh, kw, in, out) and Dense as (in, out): compare sizes
    assert sorted(int(np.prod(s)) for s in shapes) == sorted(
        int(np.prod(p.shape)) for p in model.parameters())
    x = np.zeros((2, 28, 28, 1), dtype=np.float32)
    assert keras_model(mg.tensor(x)).shape == (2, 10)
    assert model(mg.tensor(x.transpose(0, 3, 1, 2))).shape == (2, 10)
