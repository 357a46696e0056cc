"""minigrad.audio: WAV reading, STFT, mel filterbanks, log-mel and MFCC.

Checked against closed-form cases (a pure tone's bin, Parseval, filterbank sums, the DCT's
orthonormality) and against torch.stft plus torchaudio's formulas written out in torch
(torchaudio itself is not installed here).
"""

import io
import math
import wave

import numpy as np
import pytest

import minigrad as mg
from minigrad import audio
from minigrad.autograd import gradcheck


def _wav_bytes(samples: np.ndarray, width: int, rate: int = 8000, channels: int = 1) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------
# load_wav
# ------------------------------------------------------------------------------------------


def test_load_wav_16_bit_mono_from_path_and_file(tmp_path):
    ints = np.array([0, 1, -1, 32767, -32768, 16384], dtype="<i2")
    path = tmp_path / "a.wav"
    path.write_bytes(_wav_bytes(ints, 2, rate=8000))
    for source in (path, str(path), io.BytesIO(path.read_bytes())):
        waveform, rate = audio.load_wav(source)
        assert rate == 8000
        assert waveform.dtype == np.float32 and waveform.shape == (1, 6)
        np.testing.assert_array_equal(waveform[0], ints.astype(np.float32) / 32768.0)


def test_load_wav_stereo_is_channels_first():
    ints = np.array([[1, -1], [2, -2], [3, -3]], dtype="<i2")  # frames x channels
    waveform, _ = audio.load_wav(io.BytesIO(_wav_bytes(ints, 2, channels=2)))
    np.testing.assert_array_equal(waveform * 32768, [[1, 2, 3], [-1, -2, -3]])


@pytest.mark.parametrize("width", [1, 3, 4])
def test_load_wav_other_widths(width):
    if width == 1:
        raw, expected = np.array([128, 255, 0], np.uint8), [0.0, 127 / 128, -1.0]
    elif width == 3:
        values = np.array([0, 2**23 - 1, -(2**23)], np.int64)
        raw = np.stack([(values >> s) & 0xFF for s in (0, 8, 16)], 1).astype(np.uint8)
        expected = values / 2.0**23
    else:
        values = np.array([0, 2**30, -(2**31)], "<i4")
        raw, expected = values, values / 2.0**31
    waveform, _ = audio.load_wav(io.BytesIO(_wav_bytes(raw, width)))
    np.testing.assert_allclose(waveform[0], expected, rtol=0, atol=1e-7)


def test_load_wav_rejects_non_wav(tmp_path):
    path = tmp_path / "x.wav"
    path.write_bytes(b"not a wave file at all")
    with pytest.raises(ValueError, match="x.wav: not a PCM WAV file"):
        audio.load_wav(path)


# ------------------------------------------------------------------------------------------
# STFT: closed forms
# ------------------------------------------------------------------------------------------


def test_hann_window_matches_formula():
    np.testing.assert_allclose(audio.hann_window(8), np.sin(np.pi * np.arange(8) / 8) ** 2,
                               atol=1e-15)
    np.testing.assert_allclose(audio.hann_window(5, periodic=False), [0, 0.5, 1, 0.5, 0],
                               atol=1e-15)


@pytest.mark.parametrize("as_tensor", [False, True])
def test_pure_tone_peaks_at_its_bin(as_tensor):
    rate, n_fft, k = 8000, 256, 21  # a tone exactly on bin 21 (656.25 Hz)
    t = np.arange(4000) / rate
    x = np.cos(2 * np.pi * k * rate / n_fft * t)
    signal = mg.tensor(x) if as_tensor else x
    power = audio.spectrogram(signal, n_fft=n_fft, hop_length=64)
    power = power.numpy() if as_tensor else power
    interior = power[:, 4:-4]  # frames away from the padded ends
    assert (interior.argmax(axis=0) == k).all()
    # Hann-windowed cosine on a bin: |X_k| = sum(w) / 2 = n_fft / 4
    np.testing.assert_allclose(np.sqrt(interior[k]), n_fft / 4, rtol=1e-9)


def test_parseval_per_frame():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(1024)
    n_fft = 128
    full = audio.stft(x, n_fft, hop_length=n_fft, window=np.ones(n_fft), center=False,
                      onesided=False)
    frames = x.reshape(-1, n_fft)
    np.testing.assert_allclose((np.abs(full) ** 2).sum(axis=0) / n_fft,
                               (frames**2).sum(axis=1), rtol=1e-10)
    normalized = audio.stft(x, n_fft, hop_length=n_fft, window=np.ones(n_fft), center=False,
                            onesided=False, normalized=True)
    np.testing.assert_allclose((np.abs(normalized) ** 2).sum(axis=0), (frames**2).sum(axis=1),
                               rtol=1e-10)


def test_stft_shapes_dtypes_and_errors():
    x = np.zeros((3, 1000), np.float32)
    spec = audio.stft(x, 256, hop_length=100)
    assert spec.shape == (3, 129, 1 + 1000 // 100) and spec.dtype == np.complex64
    t = audio.stft(mg.tensor(x), 256, hop_length=100)
    assert t.shape == (3, 129, 11, 2) and t.dtype == np.float32
    with pytest.raises(ValueError, match="reflect padding of 128"):
        audio.stft(np.zeros(100), 256)
    with pytest.raises(ValueError, match="fewer than n_fft=256"):
        audio.stft(np.zeros(100), 256, center=False)
    with pytest.raises(ValueError, match="win_length"):
        audio.stft(np.zeros(1000), 64, win_length=65)
    with pytest.raises(ValueError, match="pad_mode"):
        audio.stft(np.zeros(1000), 64, pad_mode="mirror")
    with pytest.raises(TypeError, match="floating-point"):
        audio.stft(np.zeros(1000, np.int16), 64)


# ------------------------------------------------------------------------------------------
# Mel filterbank: closed forms
# ------------------------------------------------------------------------------------------


def test_mel_scales_at_known_points():
    assert audio.hz_to_mel(0.0) == 0.0
    assert abs(float(audio.hz_to_mel(1000.0, "htk")) - 2595 * math.log10(1 + 1000 / 700)) < 1e-9
    assert float(audio.hz_to_mel(1000.0, "slaney")) == pytest.approx(15.0)
    assert float(audio.hz_to_mel(500.0, "slaney")) == pytest.approx(7.5)
    assert float(audio.hz_to_mel(6400.0, "slaney")) == pytest.approx(15.0 + 27.0)
    freqs = np.array([0.0, 300.0, 999.0, 1000.0, 4000.0, 11025.0])
    for scale in ("htk", "slaney"):
        np.testing.assert_allclose(audio.mel_to_hz(audio.hz_to_mel(freqs, scale), scale), freqs,
                                   atol=1e-9)
    with pytest.raises(ValueError, match="mel_scale"):
        audio.hz_to_mel(1.0, "bark")


@pytest.mark.parametrize("mel_scale", ["htk", "slaney"])
def test_filterbank_is_a_partition_of_unity_between_the_outer_centres(mel_scale):
    rate, n_freqs, n_mels = 16000, 2049, 20
    fb = audio.mel_filterbank(n_freqs, 0.0, rate / 2, n_mels, rate, mel_scale=mel_scale)
    freqs = np.linspace(0, rate // 2, n_freqs)
    edges = audio.mel_to_hz(np.linspace(0, audio.hz_to_mel(rate / 2, mel_scale), n_mels + 2),
                            mel_scale)
    inside = (freqs >= edges[1]) & (freqs <= edges[-2])
    np.testing.assert_allclose(fb[inside].sum(axis=1), 1.0, atol=1e-9)
    assert fb.min() >= 0 and fb.max() <= 1 + 1e-12


def test_slaney_norm_gives_filters_of_unit_area():
    rate, n_freqs = 16000, 40001  # a fine grid so sums approximate integrals
    fb = audio.mel_filterbank(n_freqs, 0.0, rate / 2, 10, rate, norm="slaney",
                              mel_scale="slaney")
    df = (rate / 2) / (n_freqs - 1)
    np.testing.assert_allclose(fb.sum(axis=0) * df, 1.0, rtol=1e-3)


def test_too_many_mels_warns():
    with pytest.warns(UserWarning, match="all zero values"):
        audio.mel_filterbank(9, 0.0, 4000.0, 40, 8000)


def test_dct_is_orthonormal_and_matches_scipy_definition():
    d = audio.create_dct(13, 40)
    assert d.shape == (40, 13)
    np.testing.assert_allclose(d.T @ d, np.eye(13), atol=1e-12)
    x = np.random.default_rng(1).standard_normal(40)
    n = np.arange(40)
    direct = [np.sum(x * np.cos(np.pi * k * (2 * n + 1) / 80)) for k in range(13)]
    scale = np.full(13, math.sqrt(2 / 40))
    scale[0] = math.sqrt(1 / 40)
    np.testing.assert_allclose(x @ d, scale * np.array(direct), atol=1e-12)


# ------------------------------------------------------------------------------------------
# Against torch.stft and torchaudio's formulas (written out in torch)
# ------------------------------------------------------------------------------------------


def _torch_melscale_fbanks(torch, n_freqs, f_min, f_max, n_mels, sample_rate, norm, mel_scale):
    """torchaudio.functional.melscale_fbanks, line by line, in float64."""

    def hz_to_mel(freq):
        if mel_scale == "htk":
            return 2595.0 * math.log10(1.0 + (freq / 700.0))
        f_sp = 200.0 / 3
        mels = freq / f_sp
        if freq >= 1000.0:
            mels = 1000.0 / f_sp + math.log(freq / 1000.0) / (math.log(6.4) / 27.0)
        return mels

    def mel_to_hz(mels):
        if mel_scale == "htk":
            return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
        f_sp = 200.0 / 3
        freqs = f_sp * mels
        log_t = mels >= 1000.0 / f_sp
        logstep = math.log(6.4) / 27.0
        freqs[log_t] = 1000.0 * torch.exp(logstep * (mels[log_t] - 1000.0 / f_sp))
        return freqs

    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs, dtype=torch.float64)
    m_pts = torch.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2, dtype=torch.float64)
    f_pts = mel_to_hz(m_pts)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)
    down_slopes = (-1.0 * slopes[:, :-2]) / f_diff[:-1]
    up_slopes = slopes[:, 2:] / f_diff[1:]
    fb = torch.clamp(torch.min(down_slopes, up_slopes), min=0.0)
    if norm == "slaney":
        fb *= (2.0 / (f_pts[2 : n_mels + 2] - f_pts[:n_mels])).unsqueeze(0)
    return fb


@pytest.mark.torch
@pytest.mark.parametrize(
    "n_fft,hop,win,center,pad_mode,normalized,onesided",
    [(256, 64, None, True, "reflect", False, True),
     (255, 50, 200, True, "constant", True, True),
     (64, 16, 33, True, "replicate", False, False),
     (128, 32, None, True, "circular", False, True),
     (100, 100, 80, False, "reflect", False, True)],
)
def test_stft_matches_torch(n_fft, hop, win, center, pad_mode, normalized, onesided):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(2).standard_normal((2, 900))
    win_length = n_fft if win is None else win
    window = torch.hann_window(win_length, dtype=torch.float64)
    expected = torch.stft(torch.from_numpy(x), n_fft, hop, win, window, center, pad_mode,
                          normalized, onesided, return_complex=True).numpy()
    got = audio.stft(x, n_fft, hop, win, "hann", center, pad_mode, normalized, onesided)
    np.testing.assert_allclose(got, expected, atol=1e-10)
    got_t = audio.stft(mg.tensor(x), n_fft, hop, win, "hann", center, pad_mode, normalized,
                       onesided).numpy()
    np.testing.assert_allclose(got_t[..., 0] + 1j * got_t[..., 1], expected, atol=1e-10)


@pytest.mark.torch
@pytest.mark.parametrize("norm,mel_scale", [(None, "htk"), ("slaney", "slaney"),
                                            ("slaney", "htk"), (None, "slaney")])
def test_filterbank_matches_torchaudio_formula(norm, mel_scale):
    torch = pytest.importorskip("torch")
    expected = _torch_melscale_fbanks(torch, 201, 20.0, 7600.0, 64, 16000, norm, mel_scale)
    got = audio.mel_filterbank(201, 20.0, 7600.0, 64, 16000, norm, mel_scale)
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-10, atol=1e-12)


def _torch_mfcc_pipeline(torch, x, rate, n_fft, hop, n_mels, n_mfcc):
    """torchaudio's MelSpectrogram -> amplitude_to_DB(top_db=80) -> create_dct, in torch."""
    spec = torch.stft(x, n_fft, hop, n_fft, torch.hann_window(n_fft, dtype=x.dtype),
                      return_complex=True).abs() ** 2
    fb = _torch_melscale_fbanks(torch, n_fft // 2 + 1, 0.0, rate / 2, n_mels, rate, None, "htk")
    mel = torch.matmul(spec.transpose(-1, -2), fb).transpose(-1, -2)
    db = 10.0 * torch.log10(torch.clamp(mel, min=1e-10))
    shape = db.shape
    packed = db.reshape(-1, shape[-3] if db.dim() > 2 else 1, shape[-2], shape[-1])
    packed = torch.max(packed, (packed.amax(dim=(-3, -2, -1)) - 80.0).view(-1, 1, 1, 1))
    db = packed.reshape(shape)
    n = torch.arange(float(n_mels), dtype=x.dtype)
    k = torch.arange(float(n_mfcc), dtype=x.dtype).unsqueeze(1)
    dct = torch.cos(math.pi / float(n_mels) * (n + 0.5) * k)
    dct[0] *= 1.0 / math.sqrt(2.0)
    dct *= math.sqrt(2.0 / float(n_mels))
    return mel, torch.matmul(db.transpose(-1, -2), dct.t()).transpose(-1, -2)


@pytest.mark.torch
def test_melspectrogram_and_mfcc_match_torch_and_gradients_agree():
    torch = pytest.importorskip("torch")
    rate, n_fft, hop, n_mels, n_mfcc = 8000, 256, 128, 40, 13
    x = np.random.default_rng(3).standard_normal((2, 2000)) * 0.1
    x[1, :] *= 1e-7  # a quiet signal, so top_db clips some bins
    xt = torch.from_numpy(x).requires_grad_(True)
    mel_ref, mfcc_ref = _torch_mfcc_pipeline(torch, xt, rate, n_fft, hop, n_mels, n_mfcc)
    kwargs = dict(n_fft=n_fft, hop_length=hop, n_mels=n_mels)
    mel = audio.melspectrogram(x, rate, **kwargs)
    np.testing.assert_allclose(mel, mel_ref.detach().numpy(), rtol=1e-9, atol=1e-20)
    got = audio.mfcc(x, rate, n_mfcc=n_mfcc, **kwargs)
    np.testing.assert_allclose(got, mfcc_ref.detach().numpy(), rtol=1e-8, atol=1e-8)

    xm = mg.tensor(x, requires_grad=True)
    out = audio.mfcc(xm, rate, n_mfcc=n_mfcc, **kwargs)
    np.testing.assert_allclose(out.detach().numpy(), mfcc_ref.detach().numpy(), rtol=1e-8,
                               atol=1e-8)
    weights = np.random.default_rng(4).standard_normal(out.shape)
    (out * mg.tensor(weights)).sum().backward()
    (mfcc_ref * torch.from_numpy(weights)).sum().backward()
    np.testing.assert_allclose(xm.grad.numpy(), xt.grad.numpy(), rtol=1e-6, atol=1e-9)


# ------------------------------------------------------------------------------------------
# Tensors: same values as arrays, gradients by finite differences
# ------------------------------------------------------------------------------------------


def test_tensor_and_array_paths_agree_in_float32():
    x = np.random.default_rng(5).standard_normal(1200).astype(np.float32)
    a = audio.log_melspectrogram(x, 8000, n_fft=200, hop_length=80, n_mels=32)
    t = audio.log_melspectrogram(mg.tensor(x), 8000, n_fft=200, hop_length=80, n_mels=32)
    assert a.dtype == np.float32 and t.dtype == np.float32
    np.testing.assert_allclose(t.numpy(), a, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("pad_mode", ["reflect", "constant"])
def test_gradcheck_stft_and_log_mel(pad_mode):
    x = mg.tensor(np.random.default_rng(6).standard_normal((2, 40)), requires_grad=True)
    assert gradcheck(lambda s: audio.stft(s, 16, hop_length=5, win_length=12,
                                          pad_mode=pad_mode), [x])
    assert gradcheck(lambda s: audio.log_melspectrogram(s, 8000, n_fft=16, hop_length=8,
                                                        n_mels=4, pad_mode=pad_mode), [x])
    assert gradcheck(lambda s: audio.spectrogram(s, n_fft=16, hop_length=8, power=1.0) + 0, [x])


def test_amplitude_to_db_top_db_over_the_last_three_dims():
    # as torchaudio: the floor is per item of the dims before the last three
    x = np.array([[[[1.0, 1e-3]]], [[[1e-5, 1e-6]]]])  # (2 examples, 1 channel, 1 bin, 2 frames)
    db = audio.amplitude_to_db(x, top_db=20.0)
    np.testing.assert_allclose(db, [[[[0.0, -20.0]]], [[[-50.0, -60.0]]]], atol=1e-12)
    t = audio.amplitude_to_db(mg.tensor(x), top_db=20.0)
    np.testing.assert_allclose(t.numpy(), db, atol=1e-12)
    # three dims: one floor for the whole array (the first dim counts as channels)
    np.testing.assert_allclose(audio.amplitude_to_db(x[:, 0], top_db=20.0),
                               [[[0.0, -20.0]], [[-20.0, -20.0]]], atol=1e-12)


def test_tensor_path_on_every_device(device):
    # the Tensor path is made of ops, so it runs wherever they do (CuPy, or its stand-in)
    x = np.random.default_rng(7).standard_normal((2, 600))
    expected = audio.mfcc(x, 8000, n_mfcc=8, n_fft=128, hop_length=64, n_mels=16)
    xt = mg.tensor(x, device=device, requires_grad=True)
    out = audio.mfcc(xt, 8000, n_mfcc=8, n_fft=128, hop_length=64, n_mels=16)
    assert out.device == xt.device
    np.testing.assert_allclose(out.detach().to("cpu").numpy(), expected, rtol=1e-9, atol=1e-9)
    out.sum().backward()
    assert xt.grad.shape == (2, 600) and xt.grad.device == xt.device
