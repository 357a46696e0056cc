"""minigrad.models.cnn: shapes, the speech front end, and that tiny runs learn."""

import numpy as np
import pytest

import minigrad as mg
from minigrad.models import cnn


@pytest.mark.parametrize("builder,shape", [
    (cnn.digits_cnn, (3, 1, 8, 8)),
    (cnn.mnist_cnn, (3, 1, 28, 28)),
    (cnn.mnist1d_cnn, (3, 1, 40)),
    (cnn.speech_cnn, (3, 40, 101)),
    (cnn.speech_cnn, (3, 40, 37)),  # global pooling: any number of frames
])
def test_models_map_inputs_to_ten_logits(builder, shape):
    mg.manual_seed(0)
    model = builder()
    model.eval()
    assert model(mg.zeros(*shape)).shape == (3, 10)


def test_models_backpropagate_to_every_parameter():
    mg.manual_seed(0)
    model = cnn.speech_cnn(n_mels=8, num_classes=3)
    out = model(mg.randn(4, 8, 20))
    mg.nn.functional.cross_entropy(out, mg.tensor([0, 1, 2, 0])).backward()
    assert all(p.grad is not None and np.isfinite(p.grad.numpy()).all()
               for p in model.parameters())


def test_image_and_signal_batches():
    x = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)
    batch = cnn.image_batches(x)
    assert batch.dtype == np.float32 and batch.shape == (1, 1, 2, 2)
    np.testing.assert_allclose(batch[0, 0], [[0, 1], [0.2, 0.4]], rtol=1e-6)
    assert cnn.image_batches(np.ones((2, 8, 8), np.float32)).max() == 1.0
    with pytest.raises(ValueError, match="expects images"):
        cnn.image_batches(np.ones((2, 64)))
    assert cnn.mnist1d_batches(np.zeros((5, 40))).shape == (5, 1, 40)


def test_speech_features_centre_pad_crop_and_standardise():
    rate = 8000
    t = np.arange(12000) / rate
    long_tone = np.sin(2 * np.pi * 500 * t).astype(np.float32)
    short = long_tone[:2000]
    feats = cnn.speech_features([short, long_tone])
    assert feats.shape == (2, 40, 101) and feats.dtype == np.float32
    np.testing.assert_allclose(feats.mean(axis=(1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(feats.std(axis=(1, 2)), 1.0, atol=1e-3)
    # the short recording sits in the middle: its ends are the padding's (silent) frames
    assert feats[0, :, 0].max() < feats[0, :, 50].max()
    # the long one keeps its middle second: every frame holds the tone
    assert np.ptp(feats[1].max(axis=0)[5:-5]) < 0.5


def _tones(n_per_class, rng, n_classes=3):
    """Recordings whose class is the pitch of a tone, with random length, phase and noise."""
    waves, labels = [], []
    for label in range(n_classes):
        for _ in range(n_per_class):
            length = int(rng.integers(2000, 7000))
            t = np.arange(length) / 8000
            wave = np.sin(2 * np.pi * (400 + 900 * label) * t + rng.uniform(0, 6))
            waves.append((0.5 * wave + 0.05 * rng.standard_normal(length)).astype(np.float32))
            labels.append(label)
    return waves, np.array(labels)


def test_a_tiny_speech_run_learns():
    rng = np.random.default_rng(0)
    train_w, train_y = _tones(8, rng)
    test_w, test_y = _tones(5, rng)
    mg.manual_seed(0)
    result = cnn.train_classifier(
        cnn.speech_cnn(num_classes=3), (cnn.speech_features(train_w), train_y),
        (cnn.speech_features(test_w), test_y), epochs=3, batch_size=8, lr=3e-3, verbose=0)
    assert result.test_accuracy >= 0.8
    assert len(result.history.history["val_accuracy"]) == 3 and result.seconds > 0


def test_a_tiny_mnist1d_style_run_learns():
    rng = np.random.default_rng(1)
    templates = rng.standard_normal((2, 40))
    labels = rng.integers(0, 2, 120)
    x = templates[labels] + 0.3 * rng.standard_normal((120, 40))
    mg.manual_seed(0)
    result = cnn.train_classifier(
        cnn.mnist1d_cnn(num_classes=2), (cnn.mnist1d_batches(x[:80]), labels[:80]),
        (cnn.mnist1d_batches(x[80:]), labels[80:]), epochs=3, batch_size=16, lr=3e-3,
        weight_decay=1e-4, verbose=0)
    assert result.test_accuracy >= 0.9
