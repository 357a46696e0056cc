"""Keras's optimizers by name and class ('rmsprop', 'adagrad', 'adamax', 'nadam', 'sgd', 'adam',
'adamw') with Keras's defaults and update rules, checked against the numbers Keras's own tests
print (keras/src/optimizers/*_test.py: single step, five golden steps, weight decay) and against
the rules written out in float64 NumPy."""

from __future__ import annotations

import json

import numpy as np
import pytest

import minigrad as mg
from minigrad import keras, optim
from minigrad.keras import optimizers
from minigrad.nn import Parameter


def _apply(opt, var, grads):
    """Keras's ``optimizer.apply_gradients(zip([grads], [var]))``, one step."""
    if not opt.built:
        opt.build([var])
    var.grad = mg.tensor(np.asarray(grads, dtype=var.dtype))
    opt.step()


SINGLE_STEP = {  # learning_rate=0.5, grads [1, 6, 7, 2] on [1, 2, 3, 4]
    "RMSprop": [-0.5811, 0.4189, 1.4189, 2.4189],
    "Adagrad": [0.5233, 1.5007, 2.5005, 3.5061],
    "Adamax": [0.5, 1.5, 2.5, 3.5],
    "Nadam": [0.4686, 1.4686, 2.4686, 3.4686],
}


@pytest.mark.parametrize("name", sorted(SINGLE_STEP))
def test_single_step_as_keras(name):
    var = Parameter(mg.tensor([1.0, 2.0, 3.0, 4.0]))
    _apply(getattr(keras.optimizers, name)(learning_rate=0.5), var, [1.0, 6.0, 7.0, 2.0])
    np.testing.assert_allclose(var.detach().numpy(), SINGLE_STEP[name], rtol=1e-4, atol=1e-4)


GOLDEN = {  # after a first step with gradient 0.01, steps with gradient 0.1, 0.2, ..., 1.0
    "RMSprop": (dict(centered=True), np.tile([[0.9967], [0.9933], [0.9908], [0.9885], [0.9864]],
                                             (1, 10))),
    "Adagrad": (dict(learning_rate=0.2, initial_accumulator_value=0.3, epsilon=1e-6), [
        [0.9963] * 10,
        [0.9604, 0.9278, 0.9003, 0.8784, 0.8615, 0.8487, 0.8388, 0.8313, 0.8255, 0.8209],
        [0.9251, 0.8629, 0.8137, 0.7768, 0.7497, 0.7298, 0.7151, 0.704, 0.6956, 0.6891],
        [0.8903, 0.8012, 0.7342, 0.6862, 0.6521, 0.6277, 0.6099, 0.5967, 0.5867, 0.579],
        [0.856, 0.7422, 0.6604, 0.6037, 0.5644, 0.5367, 0.5168, 0.5021, 0.491, 0.4825]]),
    "Adamax": (dict(learning_rate=0.2, beta_1=0.85, beta_2=0.95, epsilon=1e-6), [
        [0.8] * 10,
        [0.6827, 0.6873, 0.6888, 0.6896, 0.6901, 0.6904, 0.6906, 0.6908, 0.6909, 0.691],
        [0.5333, 0.5407, 0.5431, 0.5444, 0.5451, 0.5456, 0.546, 0.5462, 0.5464, 0.5466],
        [0.368, 0.3773, 0.3804, 0.382, 0.3829, 0.3835, 0.384, 0.3843, 0.3846, 0.3848],
        [0.1933, 0.204, 0.2076, 0.2094, 0.2105, 0.2112, 0.2117, 0.2121, 0.2124, 0.2126]]),
    "Nadam": (dict(learning_rate=0.5, beta_1=0.5, beta_2=0.67, epsilon=1e-5), [
        [0.4281] * 10,
        [-0.1738, -0.1731, -0.1726, -0.1723, -0.1721, -0.172, -0.1719, -0.1718, -0.1718, -0.1717],
        [-0.7115, -0.7103, -0.7096, -0.7092, -0.709, -0.7088, -0.7086, -0.7085, -0.7085, -0.7084],
        [-1.2335, -1.2322, -1.2313, -1.2309, -1.2306, -1.2304, -1.2302, -1.2301, -1.23, -1.2299],
        [-1.7492, -1.7478, -1.7469, -1.7464, -1.7461, -1.7459, -1.7457, -1.7456, -1.7455,
         -1.7454]]),
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_five_steps_equal_keras_golden_values(name):
    settings, golden = GOLDEN[name]
    opt = getattr(keras.optimizers, name)(**settings)
    var = Parameter(mg.ones(10))
    _apply(opt, var, np.full(10, 0.01))
    for expected in golden:
        np.testing.assert_allclose(var.detach().numpy(), expected, rtol=5e-4, atol=5e-4)
        _apply(opt, var, np.arange(0.1, 1.1, 0.1))


@pytest.mark.parametrize("name", ["RMSprop", "Adagrad", "Adamax", "Nadam", "SGD"])
def test_weight_decay_is_keras_decoupled_decay(name):
    var = Parameter(mg.tensor(2.0))
    for _ in range(3):  # Keras's test: three optimizers in turn decay the same variable
        _apply(getattr(keras.optimizers, name)(learning_rate=1.0, weight_decay=0.004), var, 0.0)
    assert float(var) == pytest.approx(1.9760959, abs=1e-6)


def test_sgd_weight_decay_stays_outside_the_momentum():
    """Keras: w <- w - lr * wd * w, then m <- momentum * m - lr * g, w <- w + m."""
    lr, wd, mom = 0.1, 0.05, 0.9
    opt = keras.optimizers.SGD(learning_rate=lr, momentum=mom, weight_decay=wd)
    var = Parameter(mg.tensor([1.0, -2.0], dtype=mg.float64))
    w, m = np.array([1.0, -2.0]), np.zeros(2)
    for g in ([0.5, 0.1], [0.2, -0.3], [0.0, 0.4]):
        _apply(opt, var, g)
        w = w - lr * wd * w
        m = mom * m - lr * np.asarray(g)
        w = w + m
        np.testing.assert_allclose(var.detach().numpy(), w, rtol=1e-12)


def _rules_in_numpy(name, settings, grads):
    """Keras's update rules in float64 NumPy (from keras/src/optimizers/<name>.py)."""
    lr, eps = settings.get("learning_rate", 0.001), settings.get("epsilon", 1e-7)
    w = np.array([0.5, -1.0, 2.0])
    zeros = np.zeros_like(w)
    state = {"v": zeros, "a": zeros, "m": zeros, "u": zeros, "p": 1.0,
             "acc": np.full_like(w, settings.get("initial_accumulator_value", 0.1))}
    b1, b2 = settings.get("beta_1", 0.9), settings.get("beta_2", 0.999)
    for t, g in enumerate(grads, start=1):
        g = np.asarray(g)
        w = w - lr * settings.get("weight_decay", 0.0) * w
        if name == "RMSprop":
            rho, mom = settings.get("rho", 0.9), settings.get("momentum", 0.0)
            state["v"] = rho * state["v"] + (1 - rho) * g * g
            denominator = state["v"] + eps
            if settings.get("centered"):
                state["a"] = rho * state["a"] + (1 - rho) * g
                denominator = state["v"] - state["a"] ** 2 + eps
            increment = lr * g / np.sqrt(denominator)
            if mom > 0:
                state["m"] = mom * state["m"] + increment
                increment = state["m"]
            w = w - increment
        elif name == "Adagrad":
            state["acc"] = state["acc"] + g * g
            w = w - lr * g / np.sqrt(state["acc"] + eps)
        elif name == "Adamax":
            state["m"] = state["m"] + (g - state["m"]) * (1 - b1)
            state["u"] = np.maximum(b2 * state["u"], np.abs(g))
            w = w - lr * state["m"] / ((1 - b1**t) * (state["u"] + eps))
        elif name == "Nadam":
            u_t, u_next = b1 * (1 - 0.5 * 0.96**t), b1 * (1 - 0.5 * 0.96 ** (t + 1))
            state["p"] *= u_t
            state["m"] = state["m"] + (g - state["m"]) * (1 - b1)
            state["v"] = state["v"] + (g * g - state["v"]) * (1 - b2)
            m_hat = (u_next * state["m"] / (1 - state["p"] * u_next)
                     + (1 - u_t) * g / (1 - state["p"]))
            w = w - lr * m_hat / (np.sqrt(state["v"] / (1 - b2**t)) + eps)
    return w


RULE_CASES = [
    ("RMSprop", {}), ("RMSprop", dict(learning_rate=0.01, momentum=0.5, centered=True)),
    ("RMSprop", dict(rho=0.8, momentum=0.9, weight_decay=0.01)),
    ("Adagrad", {}), ("Adagrad", dict(learning_rate=0.1, initial_accumulator_value=0.0,
                                      weight_decay=0.02)),
    ("Adamax", {}), ("Adamax", dict(learning_rate=0.02, beta_1=0.8, weight_decay=0.01)),
    ("Nadam", {}), ("Nadam", dict(learning_rate=0.01, beta_2=0.9, weight_decay=0.01)),
]


@pytest.mark.parametrize("name,settings", RULE_CASES)
def test_twenty_steps_follow_kerass_rules_in_float64(name, settings):
    rng = np.random.default_rng(0)
    grads = rng.normal(size=(20, 3))
    opt = getattr(keras.optimizers, name)(**settings)
    var = Parameter(mg.tensor([0.5, -1.0, 2.0], dtype=mg.float64))
    for g in grads:
        _apply(opt, var, g)
    np.testing.assert_allclose(var.detach().numpy(), _rules_in_numpy(name, settings, grads),
                               rtol=1e-12, atol=1e-14)


def test_keras_defaults():
    rms = keras.optimizers.RMSprop()
    assert rms.get_config() == {"learning_rate": 0.001, "rho": 0.9, "momentum": 0.0,
                                "epsilon": 1e-7, "centered": False, "weight_decay": None}
    assert keras.optimizers.Adagrad().get_config()["initial_accumulator_value"] == 0.1
    for cls in (keras.optimizers.Adamax, keras.optimizers.Nadam):
        config = cls().get_config()
        assert (config["learning_rate"], config["beta_1"], config["beta_2"],
                config["epsilon"]) == (0.001, 0.9, 0.999, 1e-7)


def test_bad_settings_are_refused_as_keras_does():
    with pytest.raises(ValueError, match="`rho` must be in"):
        keras.optimizers.RMSprop(rho=1.1)
    with pytest.raises(ValueError, match="`momentum` must be in"):
        keras.optimizers.RMSprop(momentum=-0.1)
    with pytest.raises(ValueError, match="must be positive"):
        keras.optimizers.RMSprop(epsilon=0)
    with pytest.raises(ValueError, match="initial_accumulator_value must be non-negative"):
        keras.optimizers.Adagrad(initial_accumulator_value=-1)
    with pytest.raises(ValueError, match="Unknown optimizer: 'adadelta'.*'rmsprop'"):
        optimizers.get("adadelta")


@pytest.mark.parametrize("name", ["rmsprop", "RMSprop", "adagrad", "adamax", "nadam", "sgd",
                                  "adam", "adamw"])
def test_every_keras_string_trains_a_model(name):
    mg.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]], np.float32)).astype(np.float32)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=name, loss="mse")
    assert type(model.optimizer).__name__.lower() == name.lower()
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    assert model.evaluate(x, y, verbose=0) < before


@pytest.mark.parametrize("name", ["RMSprop", "Adagrad", "Adamax", "Nadam"])
def test_state_dict_resume_is_exact(name):
    rng = np.random.default_rng(1)
    grads = rng.normal(size=(8, 3))
    settings = dict(learning_rate=0.05, weight_decay=0.01)
    straight = Parameter(mg.tensor([1.0, 2.0, 3.0]))
    opt = getattr(keras.optimizers, name)(**settings)
    for g in grads:
        _apply(opt, straight, g)
    resumed = Parameter(mg.tensor([1.0, 2.0, 3.0]))
    first = getattr(keras.optimizers, name)(**settings)
    for g in grads[:4]:
        _apply(first, resumed, g)
    second = getattr(keras.optimizers, name)(**settings)
    second.build([resumed])
    second.load_state_dict(first.state_dict())
    for g in grads[4:]:
        _apply(second, resumed, g)
    np.testing.assert_array_equal(resumed.detach().numpy(), straight.detach().numpy())


def test_config_round_trip_and_model_save(tmp_path):
    opt = keras.optimizers.RMSprop(learning_rate=0.01, rho=0.8, momentum=0.1, centered=True)
    again = optimizers.deserialize(json.loads(json.dumps(optimizers.serialize(opt))))
    assert type(again) is keras.optimizers.RMSprop and again.get_config() == opt.get_config()
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.Nadam(learning_rate=0.002), loss="mse")
    model.fit(np.ones((8, 3), np.float32), np.ones((8, 2), np.float32), verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert type(loaded.optimizer) is keras.optimizers.Nadam
    assert loaded.optimizer.learning_rate == 0.002


def test_pytorch_optimizers_still_pass_through():
    w = Parameter(mg.zeros(2))
    opt = optim.RMSprop([w])
    assert optimizers.get(opt) is opt


# ---------------------------------------------------------------------------- common arguments


def test_clipnorm_and_clipvalue_as_kerass_tests():
    for settings, expected in ((dict(clipnorm=1), [2**0.5 / 2, 2**0.5 / 2]),
                               (dict(clipvalue=1), [1.0, 1.0])):
        var = Parameter(mg.zeros(2))
        _apply(keras.optimizers.SGD(learning_rate=1.0, **settings), var, [100.0, 100.0])
        np.testing.assert_allclose(var.detach().numpy(), -np.asarray(expected), rtol=1e-6)


@pytest.mark.parametrize("settings, grad_b, want_a, want_b", [
    (dict(clipnorm=1.0), 0.5, [0.6, 0.8], [0.5]),  # each alone: [3, 4] has norm 5, [0.5] stays
    (dict(global_clipnorm=1.0), 1.0, np.array([3.0, 4.0]) / 26**0.5, [1 / 26**0.5]),
    (dict(global_clipnorm=10.0), 1.0, [3.0, 4.0], [1.0]),  # joint norm sqrt(26) < 10
])
def test_clipnorm_is_per_gradient_and_global_clipnorm_joint(settings, grad_b, want_a, want_b):
    a, b = Parameter(mg.zeros(2, dtype=mg.float64)), Parameter(mg.zeros(1, dtype=mg.float64))
    opt = keras.optimizers.SGD(learning_rate=1.0, **settings)
    opt.build([a, b])
    a.grad = mg.tensor([3.0, 4.0], dtype=mg.float64)
    b.grad = mg.tensor([grad_b], dtype=mg.float64)
    opt.step()
    np.testing.assert_allclose(-a.detach().numpy(), want_a, rtol=1e-12)
    np.testing.assert_allclose(-b.detach().numpy(), want_b, rtol=1e-12)


def test_a_non_finite_global_norm_makes_nan_as_keras():
    var = Parameter(mg.zeros(2))
    _apply(keras.optimizers.SGD(learning_rate=1.0, global_clipnorm=1.0), var, [np.inf, 1.0])
    assert np.isnan(var.detach().numpy()).all()


def test_common_arguments_are_checked_and_kept_in_the_config():
    with pytest.raises(ValueError, match="Only one of `clipnorm`, `clipvalue` and "
                                         "`global_clipnorm` can be set"):
        keras.optimizers.Adam(clipnorm=1.0, clipvalue=0.5)
    with pytest.raises(ValueError, match="Argument\\(s\\) not recognized: \\{'lr_decay': 0.1\\}"):
        keras.optimizers.RMSprop(lr_decay=0.1)
    opt = keras.optimizers.Nadam(learning_rate=0.01, clipnorm=2.0)
    again = optimizers.deserialize(json.loads(json.dumps(optimizers.serialize(opt))))
    assert again.clipnorm == 2.0 and again.get_config() == opt.get_config()
    assert "clipnorm" not in keras.optimizers.Nadam().get_config()


def test_gradient_accumulation_steps_on_the_optimizer_as_keras_3():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 3)).astype(np.float32)
    y = rng.normal(size=(16, 1)).astype(np.float32)
    weights = []
    for optimizer, fit_kwargs in (
        (keras.optimizers.SGD(learning_rate=0.1, gradient_accumulation_steps=2), {}),
        (keras.optimizers.SGD(learning_rate=0.1), {"gradient_accumulation_steps": 2}),
        (keras.optimizers.SGD(learning_rate=0.1), {}),
    ):
        mg.manual_seed(0)
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        model.compile(optimizer=optimizer, loss="mse")
        model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0, **fit_kwargs)
        weights.append(model.get_weights()[0])
    np.testing.assert_array_equal(weights[0], weights[1])
    assert not np.array_equal(weights[0], weights[2])


def test_compile_defaults_to_rmsprop_as_keras():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(loss="mse")
    assert type(model.optimizer) is keras.optimizers.RMSprop
    assert model.optimizer.get_config() == keras.optimizers.RMSprop().get_config()
    inputs = keras.Input((3,))
    functional = keras.Model(inputs, [keras.layers.Dense(1)(inputs), keras.layers.Dense(2)(inputs)])
    functional.compile(loss=["mse", "mse"])
    assert type(functional.optimizer) is keras.optimizers.RMSprop
