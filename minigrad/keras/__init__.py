"""``minigrad.keras``: the Keras API over minigrad, so Keras programs run with one import changed.

The classic Keras MNIST program::

    from minigrad import keras          # instead of: from tensorflow import keras

    model = keras.Sequential([
        keras.layers.Dense(128, activation='relu', input_shape=(784,)),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(10, activation='softmax')])
    model.compile(optimizer='adam', loss='sparse_categorical_crossentropy',
                  metrics=['accuracy'])
    history = model.fit(x_train, y_train, epochs=10, validation_data=(x_test, y_test))

The facade is thin: layers build `minigrad.nn` modules (`Dense` is an `nn.Linear`), the model is
an `nn.Module`, and `fit` runs `minigrad.train.fit`, the same loop a PyTorch-style program uses.

Example:
    >>> from minigrad import keras
    >>> model = keras.Sequential([keras.layers.Dense(10, input_shape=(784,))])
    >>> model.count_params()
    7850
"""

from minigrad.keras import (  # noqa: F401
    callbacks, datasets, layers, losses, metrics, models, optimizers, utils,
)
from minigrad.keras.layers import Input  # noqa: F401
from minigrad.keras.models import Model, Sequential, load_model  # noqa: F401

__all__ = [
    "Input",
    "Model",
    "Sequential",
    "callbacks",
    "datasets",
    "layers",
    "load_model",
    "losses",
    "metrics",
    "models",
    "optimizers",
    "utils",
]
