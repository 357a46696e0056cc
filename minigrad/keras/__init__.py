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

The functional API works as in Keras: ``inputs = keras.Input(shape=(784,))``, layers called on
symbolic tensors, ``keras.Model(inputs, outputs)`` with several inputs and outputs and shared
layers (`minigrad.keras.functional`). ``model.save("m.keras")`` writes one zip (config.json and
safetensors weights) that ``keras.models.load_model`` reads; ``get_weights`` uses Keras's
layouts; ``fit`` takes ``sample_weight``, ``class_weight`` and ``validation_freq``.

The facade is thin: layers build `minigrad.nn` modules (`Dense` is an `nn.Linear`), the model is
an `nn.Module`, and `fit` runs `minigrad.train.fit`, the same loop a PyTorch-style program uses.

Example:
    >>> from minigrad import keras
    >>> model = keras.Sequential([keras.layers.Dense(10, input_shape=(784,))])
    >>> model.count_params()
    7850
"""

from minigrad.keras import (  # noqa: F401
    callbacks, datasets, functional, layers, losses, metrics, models, optimizers, saving, utils,
)
from minigrad.keras.functional import Input  # noqa: F401
from minigrad.keras.models import Model, Sequential, load_model  # noqa: F401

# keras.layers.Input and the merging layers (Add, Concatenate, ...) live in keras.functional,
# which builds on keras.layers; Keras programs reach them as keras.layers.<Name>
for _name in ("Input", *functional.MERGING_LAYERS, *functional.MERGING_FUNCTIONS):
    setattr(layers, _name, getattr(functional, _name))
del _name
from minigrad.keras import convolutional  # noqa: E402  (Conv2D, MaxPooling2D, ...)

for _name, _cls in convolutional.CNN_LAYERS.items():  # keras.layers.Conv2D, ...
    setattr(layers, _name, _cls)
del _name, _cls

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
