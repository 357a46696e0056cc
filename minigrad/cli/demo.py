"""``minigrad demo``: train the classic Keras MNIST model through `minigrad.keras`::

    model = keras.Sequential([
        keras.layers.Dense(128, activation='relu', input_shape=(784,)),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(10, activation='softmax')])
    model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])

on the UCI digits shipped with minigrad (64 inputs; works offline, in seconds), or on the real
MNIST with ``--dataset mnist`` (784 inputs, the exact program). It prints the test accuracy and
the time, saves the model, and writes a training-curve PNG when matplotlib is installed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from minigrad import backend, keras
from minigrad.cli.report import error
from minigrad.data import datasets
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
                 "mnist": {"epochs": 10, "batch_size": 32}}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``minigrad demo``."""
    p.add_argument("--dataset", choices=["digits", "mnist"], default="digits",
                   help="digits: the 8x8 UCI digits bundled with minigrad (default); "
                        "mnist: the real 28x28 MNIST from --data-dir")
    p.add_argument("--data-dir", default=None,
                   help="folder with the four MNIST .gz files (default $MINIGRAD_DATA/mnist, "
                        "else ~/.cache/minigrad/mnist)")
    p.add_argument("--download", action="store_true",
                   help="download MNIST into --data-dir if missing (about 11 MB)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs (default: 30 on digits, 10 on MNIST)")
    p.add_argument("--batch-size", type=int, default=None, help="batch size (default 32)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", default="minigrad-demo",
                   help="folder for the saved model and the curves (default ./minigrad-demo)")
    p.add_argument("--verbose", type=int, choices=[0, 1, 2], default=1,
                   help="0 silent, 1 progress bar (default), 2 one line per epoch")


def _load_data(args: argparse.Namespace) -> tuple:
    """``(x_train, y_train), (x_test, y_test)``, images flattened and scaled to [0, 1]."""
    if args.dataset == "digits":
        return datasets.digits()  # already float32 in [0, 1], 64 pixels
    (x_train, y_train), (x_test, y_test) = datasets.mnist(root=args.data_dir,
                                                          download=args.download)
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
    """``minigrad demo``: train, evaluate and save the classic Keras MNIST model."""
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
    name = "UCI digits (8x8)" if args.dataset == "digits" else "MNIST (28x28)"
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
    model.save(model_dir)
    print(f"Saved the model to {model_dir}/ (config.json, model.safetensors); reload it with "
          f"minigrad.keras.models.load_model({str(model_dir)!r})")
    try:
        png = training_curves(history, out / f"{args.dataset}-training-curves.png",
                              title=f"minigrad demo: {name}")
        print(f"Saved the training curves to {png}")
    except ImportError as exc:
        print(f"(No training-curve PNG: {exc})")
    return 0
