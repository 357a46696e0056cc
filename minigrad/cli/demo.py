"""``minigrad demo``: train the classic Keras MNIST model through `minigrad.keras`::

    model = keras.Sequential([
        keras.layers.Dense(128, activation='relu', input_shape=(784,)),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(10, activation='softmax')])
    model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])

on the UCI digits shipped with minigrad (64 inputs; works offline, in seconds), or on the real
MNIST with ``--dataset mnist`` (784 inputs, the exact program). It prints the test accuracy and
the time, saves the model, and writes a training-curve PNG when matplotlib is installed.

``--model cnn`` trains a small convolutional network instead (minigrad.models.cnn: conv,
BatchNorm, max-pool; Adam with a cosine decay) on the same images, ``--dataset fashion-mnist``
uses Fashion-MNIST, ``--dataset mnist1d`` MNIST-1D's 40-point signals (a Conv1d network), and
``--task speech`` recognises the spoken digits of FSDD (a Conv1d network over 40 log-mel
channels; ``--data-dir`` the recordings or their archive).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from minigrad import backend, keras
from minigrad.cli.report import error
from minigrad.data import datasets, fsdd, mnist1d
from minigrad.distributed import launcher_rank, run_on_rank_zero
from minigrad.io.serialization import save
from minigrad.models import cnn
from minigrad.plot import training_curves

NAME = "demo"
HELP = "train the classic Keras MNIST model (digits offline, or real MNIST)"
DESCRIPTION = (
    "Train the classic Keras MNIST model (Dense 128 relu, Dropout 0.5, Dense 10 "
    "softmax, Adam, sparse categorical cross-entropy) with minigrad.keras, print its "
    "test accuracy and time, and save the model and its training curves."
)

# Defaults per data set: digits is small, so more epochs; MNIST runs the classic 10 epochs.
DEMO_DEFAULTS = {"digits": {"epochs": 30, "batch_size": 32},
                 "mnist": {"epochs": 10, "batch_size": 32},
                 "fashion-mnist": {"epochs": 10, "batch_size": 32},
                 "mnist1d": {"epochs": 30, "batch_size": 32}}
# The convolutional networks (--model cnn, --dataset mnist1d, --task speech).
# Measured with seed 0: MNIST 99.31% test accuracy after these 3 epochs (the issue asks
# >= 99.2% within 12), Fashion-MNIST 92.37% after 5 (the issue asks >= 91.5%).
CNN_DEFAULTS = {"digits": {"epochs": 20, "batch_size": 32, "lr": 1e-3},
                "mnist": {"epochs": 3, "batch_size": 128, "lr": 2e-3},
                "fashion-mnist": {"epochs": 5, "batch_size": 128, "lr": 2e-3},
                "mnist1d": {"epochs": 20, "batch_size": 64, "lr": 3e-3},
                "speech": {"epochs": 20, "batch_size": 32, "lr": 1e-3}}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``minigrad demo``."""
    p.add_argument("--dataset", choices=["digits", "mnist", "fashion-mnist", "mnist1d"],
                   default="digits",
                   help="digits: the 8x8 UCI digits bundled with minigrad (default); "
                        "mnist: the real 28x28 MNIST from --data-dir; fashion-mnist: "
                        "Fashion-MNIST (found where Debian's dataset-fashion-mnist puts it); "
                        "mnist1d: MNIST-1D's 40-point signals (a Conv1d network)")
    p.add_argument("--model", choices=["mlp", "cnn", "keras-cnn"], default=None,
                   help="mlp: the classic Keras MNIST model (default for images); cnn: a "
                        "small convolutional network (default for mnist1d and speech); "
                        "keras-cnn: the 28x28 image CNN written with the Keras facade")
    p.add_argument("--task", choices=["image", "speech"], default="image",
                   help="image: classify --dataset (default); speech: the spoken digits of "
                        "FSDD (3,000 recordings, official split) with a Conv1d network over "
                        "40 log-mel channels")
    p.add_argument("--data-dir", default=None,
                   help="where the data set is: the folder of the four MNIST/Fashion-MNIST "
                        ".gz files, mnist1d_data.pkl or its folder, or FSDD's recordings "
                        "(a folder or recordings.tar.gz). Default $MINIGRAD_DATA/<name>, "
                        "else ~/.cache/minigrad/<name>")
    p.add_argument("--download", action="store_true",
                   help="download MNIST, Fashion-MNIST or FSDD into --data-dir if missing")
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate of the CNNs' Adam (default per data set)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs (default: 30 on digits, 10 on MNIST; see CNN_DEFAULTS for "
                        "the CNNs)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="batch size (default 32; see CNN_DEFAULTS for the CNNs)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", default="minigrad-demo",
                   help="folder for the saved model and the curves (default ./minigrad-demo)")
    p.add_argument("--verbose", type=int, choices=[0, 1, 2], default=1,
                   help="0 silent, 1 progress bar (default), 2 one line per epoch")


def _load_data(args: argparse.Namespace) -> tuple:
    """``(x_train, y_train), (x_test, y_test)``, images flattened and scaled to [0, 1]."""
    if args.dataset == "digits":
        return datasets.digits()  # already float32 in [0, 1], 64 pixels
    if args.dataset == "mnist1d":
        return mnist1d(args.data_dir)  # float32 signals (N, 40)
    load = datasets.mnist if args.dataset == "mnist" else datasets.fashion_mnist
    (x_train, y_train), (x_test, y_test) = load(root=args.data_dir, download=args.download)
    # As in the classic program: flatten the 28x28 images and scale the pixels to [0, 1]
    x_train = x_train.reshape(len(x_train), 784).astype("float32") / 255.0
    x_test = x_test.reshape(len(x_test), 784).astype("float32") / 255.0
    return (x_train, y_train), (x_test, y_test)


def _unwritable(folder: Path) -> str | None:
    """Why the run could not write its outputs into `folder` (created if missing), or None."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return f"cannot write there ({exc.strerror or exc})"
    return None


def run(args: argparse.Namespace) -> int:
    """``minigrad demo``: train, evaluate and save the classic Keras MNIST model (or a CNN).
    Under ``minigrad launch`` every rank trains; rank 0 alone prints and writes."""
    if launcher_rank() != 0:
        with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
            return _run(args)
    return _run(args)


def _run(args: argparse.Namespace) -> int:
    model = args.model or ("cnn" if args.dataset == "mnist1d" else "mlp")
    if args.task == "speech" or model in ("cnn", "keras-cnn"):
        if args.task == "speech" and args.model == "mlp":
            return error(NAME, "--task speech trains a CNN; leave out --model mlp", 2)
        return _run_cnn(args)
    defaults = DEMO_DEFAULTS[args.dataset]
    epochs = args.epochs if args.epochs is not None else defaults["epochs"]
    batch_size = args.batch_size if args.batch_size is not None else defaults["batch_size"]
    if epochs <= 0 or batch_size <= 0:
        return error(NAME, "--epochs and --batch-size must be positive", 2)
    try:
        backend.set_default_device(args.device)
    except (RuntimeError, ValueError) as exc:
        return error(NAME, exc, 2)
    problem = _unwritable(Path(args.out))
    if problem:  # found before training, not after it
        return error(NAME, f"--out {args.out}: {problem}; choose another folder with --out", 2)
    try:
        (x_train, y_train), (x_test, y_test) = _load_data(args)
    except datasets.DatasetError as exc:
        return error(NAME, exc, 1)

    backend.manual_seed(args.seed)
    n_inputs = x_train.shape[1]
    model = keras.Sequential([
        keras.layers.Dense(128, activation="relu", input_shape=(n_inputs,)),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    name = DATASET_NAMES[args.dataset]
    print(f"minigrad demo: the classic Keras MNIST model on {name}: {len(x_train):,} training "
          f"and {len(x_test):,} test images; {epochs} epochs, batch {batch_size}, "
          f"device {backend.default_device()}")
    if args.verbose:
        model.summary()

    start = time.perf_counter()
    history = model.fit(x_train, y_train, epochs=epochs, batch_size=batch_size,
                        validation_data=(x_test, y_test), verbose=args.verbose)
    seconds = time.perf_counter() - start
    test_loss, test_accuracy = model.evaluate(x_test, y_test, verbose=0)

    print(f"Test accuracy: {test_accuracy * 100:.2f}% (test loss {test_loss:.4f})")
    print(f"Training time: {seconds:.1f} s ({seconds / len(history.epoch):.2f} s/epoch)")

    out = Path(args.out)
    model_dir = out / f"{args.dataset}-model"
    model.save(model_dir)  # under data parallel every rank calls it; rank 0 writes
    print(f"Saved the model to {model_dir}/ (config.json, model.safetensors); reload it with "
          f"minigrad.keras.models.load_model({str(model_dir)!r})")
    if launcher_rank() != 0:
        return 0
    try:
        png = training_curves(history, out / f"{args.dataset}-training-curves.png",
                              title=f"minigrad demo: {name}")
        print(f"Saved the training curves to {png}")
    except ImportError as exc:
        print(f"(No training-curve PNG: {exc})")
    return 0


DATASET_NAMES = {"digits": "UCI digits (8x8)", "mnist": "MNIST (28x28)",
                 "fashion-mnist": "Fashion-MNIST (28x28)", "mnist1d": "MNIST-1D (40 points)",
                 "speech": "FSDD spoken digits (8 kHz)"}


def _load_cnn_data(args: argparse.Namespace, key: str) -> tuple:
    """The CNN's ``(x_train, y_train), (x_test, y_test)``: channels-first float32 inputs."""
    if key == "speech":
        (wav_train, y_train), (wav_test, y_test) = fsdd(root=args.data_dir,
                                                        download=args.download)
        return ((cnn.speech_features(wav_train), y_train),
                (cnn.speech_features(wav_test), y_test))
    if key == "mnist1d":
        (x_train, y_train), (x_test, y_test) = mnist1d(args.data_dir)
        return (cnn.mnist1d_batches(x_train), y_train), (cnn.mnist1d_batches(x_test), y_test)
    if key == "digits":
        (x_train, y_train), (x_test, y_test) = datasets.digits(flatten=False)
    else:
        load = datasets.mnist if key == "mnist" else datasets.fashion_mnist
        (x_train, y_train), (x_test, y_test) = load(root=args.data_dir, download=args.download)
    return (cnn.image_batches(x_train), y_train), (cnn.image_batches(x_test), y_test)


CNN_BUILDERS = {"digits": cnn.digits_cnn, "mnist": cnn.mnist_cnn,
                "fashion-mnist": cnn.mnist_cnn, "mnist1d": cnn.mnist1d_cnn,
                "speech": cnn.speech_cnn}


def _run_cnn(args: argparse.Namespace) -> int:
    """Trains, evaluates and saves one of minigrad.models.cnn's networks."""
    key = "speech" if args.task == "speech" else args.dataset
    defaults = CNN_DEFAULTS[key]
    epochs = args.epochs if args.epochs is not None else defaults["epochs"]
    batch_size = args.batch_size if args.batch_size is not None else defaults["batch_size"]
    lr = args.lr if args.lr is not None else defaults["lr"]
    if epochs <= 0 or batch_size <= 0 or lr <= 0:
        return error(NAME, "--epochs, --batch-size and --lr must be positive", 2)
    keras_model = args.model == "keras-cnn"
    if keras_model and key not in ("mnist", "fashion-mnist"):
        return error(NAME, "--model keras-cnn is the 28x28 image CNN: use it with --dataset "
                     "mnist or fashion-mnist", 2)
    try:
        backend.set_default_device(args.device)
    except (RuntimeError, ValueError) as exc:
        return error(NAME, exc, 2)
    try:
        train, test = _load_cnn_data(args, key)
    except datasets.DatasetError as exc:
        return error(NAME, exc, 1)

    backend.manual_seed(args.seed)
    builder = cnn.keras_mnist_cnn if keras_model else CNN_BUILDERS[key]
    model = builder()
    n_params = sum(int(np.prod(p.shape)) for p in model.parameters())
    print(f"minigrad demo: a CNN on {DATASET_NAMES[key]}: {len(train[0]):,} training and "
          f"{len(test[0]):,} test examples of shape {tuple(train[0].shape[1:])}; {epochs} "
          f"epochs, batch {batch_size}, Adam lr {lr:g} (cosine decay), device "
          f"{backend.default_device()}")
    if args.verbose:
        if keras_model:
            model.summary()
        else:
            print(model)
        print(f"Total params: {n_params:,}")
    if keras_model:  # the same network and recipe through the Keras facade, channels-last
        result = cnn.train_keras_classifier(
            model, (train[0].transpose(0, 2, 3, 1), train[1]),
            (test[0].transpose(0, 2, 3, 1), test[1]), epochs, batch_size, lr,
            verbose=args.verbose)
    else:
        result = cnn.train_classifier(model, train, test, epochs, batch_size, lr,
                                      seed=args.seed, verbose=args.verbose)
    print(f"Test accuracy: {result.test_accuracy * 100:.2f}% (test loss {result.test_loss:.4f})")
    print(f"Training time: {result.seconds:.1f} s ({result.seconds / epochs:.2f} s/epoch)")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    weights = out / f"{key}-{args.model if keras_model else 'cnn'}.safetensors"
    run_on_rank_zero(save, model.state_dict(), weights)  # written once under data parallel
    print(f"Saved the weights to {weights}; load them with "
          f"minigrad.models.cnn.{builder.__name__}().load_state_dict("
          f"minigrad.load({str(weights)!r}))")
    if launcher_rank() != 0:
        return 0
    try:
        png = training_curves(result.history, out / f"{key}-cnn-training-curves.png",
                              title=f"minigrad demo: a CNN on {DATASET_NAMES[key]}")
        print(f"Saved the training curves to {png}")
    except ImportError as exc:
        print(f"(No training-curve PNG: {exc})")
    return 0
