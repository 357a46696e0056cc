"""Audio front end: WAV files, STFT, mel filterbanks, log-mel spectrograms and MFCCs.

The functions follow ``torch.stft`` and ``torchaudio`` (names of arguments, defaults, formulas),
written here in NumPy/CuPy so that minigrad needs no audio package:

- `load_wav`: a PCM ``.wav`` file read with Python's `wave` module, as ``torchaudio.load``.
- `stft`: ``torch.stft``'s framing (centre padding, reflect by default, onesided), with a
  periodic Hann window by default (``torch.stft``'s default window is rectangular).
- `spectrogram`, `mel_filterbank` (``torchaudio.functional.melscale_fbanks``: HTK or Slaney
  mel scale, Slaney area normalisation), `melspectrogram`, `amplitude_to_db`,
  `log_melspectrogram`, `create_dct` and `mfcc` (DCT-II, ``'ortho'``), as torchaudio's
  transforms of the same names.

Every function takes a NumPy or CuPy array (computed with that array's module: the FFT for
`stft`) or a minigrad `Tensor`, on which it is built from tensor ops (the STFT as a product
with the DFT matrices), so gradients flow back to the waveform.

Example:
    >>> t = np.arange(8000) / 8000.0
    >>> tone = np.sin(2 * np.pi * 1000.0 * t).astype(np.float32)
    >>> spec = spectrogram(tone, n_fft=256)  # (129 frequencies, 63 frames)
    >>> spec.shape, int(spec[:, 10].argmax())  # 1000 Hz = bin 1000 / (8000 / 256) = 32
    ((129, 63), 32)
    >>> melspectrogram(tone, sample_rate=8000, n_fft=256, n_mels=40).shape
    (40, 63)
"""

from __future__ import annotations

import math
import os
import warnings
import wave
from typing import Any, BinaryIO

import numpy as np

from minigrad import backend, ops
from minigrad.tensor import Tensor, tensor

__all__ = [
    "amplitude_to_db",
    "create_dct",
    "hann_window",
    "hz_to_mel",
    "load_wav",
    "log_melspectrogram",
    "mel_filterbank",
    "mel_to_hz",
    "melspectrogram",
    "mfcc",
    "spectrogram",
    "stft",
]

Array = Any
Signal = Any  # a NumPy/CuPy array or a Tensor

_PAD_MODES = {"reflect": "reflect", "constant": "constant", "replicate": "edge",
              "circular": "wrap"}


# ------------------------------------------------------------------------------------------
# WAV files
# ------------------------------------------------------------------------------------------


def _pcm_to_float(raw: bytes, width: int) -> np.ndarray:
    """Interleaved little-endian PCM samples -> float32 in [-1, 1), torchaudio's scaling."""
    if width == 1:  # 8-bit WAV is unsigned, centred on 128
        return (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    if width == 2:
        return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    if width == 3:  # 24-bit: place the three bytes in the top of an int32
        triples = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        ints = (triples[:, 0] << 8) | (triples[:, 1] << 16) | (triples[:, 2] << 24)
        return (ints / 2.0**31).astype(np.float32)
    if width == 4:
        return (np.frombuffer(raw, dtype="<i4") / 2.0**31).astype(np.float32)
    raise ValueError(f"unsupported sample width of {width} bytes (expected 1, 2, 3 or 4)")


def load_wav(source: str | os.PathLike | BinaryIO) -> tuple[np.ndarray, int]:
    """Reads a PCM ``.wav`` file (8, 16, 24 or 32-bit integer samples), as ``torchaudio.load``.

    Args:
        source: a path, or a binary file object (e.g. a member of a tar archive).

    Returns:
        ``(waveform, sample_rate)``: waveform float32 of shape (channels, frames), scaled to
        [-1, 1) (16-bit samples divided by 32768), and the sample rate in Hz.

    Raises:
        ValueError: not a PCM WAV file (the message names the file and what `wave` found).

    Example:
        >>> import io
        >>> buffer = io.BytesIO()
        >>> with wave.open(buffer, "wb") as w:
        ...     w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000)
        ...     w.writeframes(np.array([0, 16384, -32768], "<i2").tobytes())
        >>> _ = buffer.seek(0)
        >>> load_wav(buffer)
        (array([[ 0. ,  0.5, -1. ]], dtype=float32), 8000)
    """
    name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else getattr(
        source, "name", "<file object>")
    try:
        with wave.open(source if not isinstance(source, os.PathLike) else os.fspath(source),
                       "rb") as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            raw = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"{name}: not a PCM WAV file ({exc})") from exc
    samples = _pcm_to_float(raw, width)
    frames = len(samples) // channels
    return samples[: frames * channels].reshape(frames, channels).T.copy(), rate


# ------------------------------------------------------------------------------------------
# Helpers shared by arrays and Tensors
# ------------------------------------------------------------------------------------------


def _xp(x: Signal):
    return x.xp if isinstance(x, Tensor) else backend.array_module(x)


def _constant(values: np.ndarray, like: Signal) -> Signal:
    """`values` (NumPy) on the device and in the float dtype of `like`."""
    if isinstance(like, Tensor):
        return tensor(values, dtype=like.dtype, device=like.device)
    return _xp(like).asarray(values.astype(like.dtype))


def _check_float(x: Signal, name: str) -> None:
    if not isinstance(x, Tensor):
        x = _xp(x).asarray(x)
    if not np.issubdtype(np.dtype(x.dtype), np.floating):
        raise TypeError(f"{name} expects a floating-point signal, got dtype {x.dtype}")


def _log(x: Signal) -> Signal:
    return x.log() if isinstance(x, Tensor) else _xp(x).log(x)


def _apply_matrix(x: Signal, matrix: np.ndarray) -> Signal:
    """``(..., A, T) -> (..., B, T)`` with the (A, B) matrix: ``(x^T @ matrix)^T``."""
    m = _constant(matrix, x)
    if isinstance(x, Tensor):
        return (x.transpose(-1, -2) @ m).transpose(-1, -2)
    return _xp(x).swapaxes(_xp(x).swapaxes(x, -1, -2) @ m, -1, -2)


def hann_window(window_length: int, periodic: bool = True) -> np.ndarray:
    """``torch.hann_window``: ``0.5 - 0.5 cos(2 pi n / N)``, N = length (periodic) or length-1.

    Example:
        >>> hann_window(4).round(6).tolist()
        [0.0, 0.5, 1.0, 0.5]
    """
    if window_length <= 1:
        return np.ones(max(window_length, 0))
    n = window_length if periodic else window_length - 1
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(window_length) / n)


def _pad_index(length: int, pad: int, mode: str) -> np.ndarray:
    """Indices into the signal that build its padded copy (`mode` not 'constant')."""
    return np.pad(np.arange(length), pad, mode=_PAD_MODES[mode])


def _window_array(window, n_fft: int, win_length: int) -> np.ndarray:
    """The window as a NumPy array of n_fft values, zero-padded on both sides as torch does."""
    if window is None or (isinstance(window, str) and window == "hann"):
        values = hann_window(win_length)
    elif isinstance(window, str):
        raise ValueError(f"unknown window {window!r}; pass 'hann', None or an array")
    else:
        data = window.data if isinstance(window, Tensor) else window
        values = np.asarray(backend.to_device(data, backend.get_device("cpu")), np.float64)
        if values.shape != (win_length,):
            raise ValueError(f"window has shape {values.shape}, expected ({win_length},) "
                             "(win_length)")
    left = (n_fft - win_length) // 2
    return np.pad(values, (left, n_fft - win_length - left))


# ------------------------------------------------------------------------------------------
# STFT and spectrograms
# ------------------------------------------------------------------------------------------


def stft(
    x: Signal,
    n_fft: int,
    hop_length: int | None = None,
    win_length: int | None = None,
    window="hann",
    center: bool = True,
    pad_mode: str = "reflect",
    normalized: bool = False,
    onesided: bool = True,
) -> Signal:
    """Short-time Fourier transform with ``torch.stft``'s framing.

    ``X[..., k, t] = sum_n w[n] x_pad[t * hop + n] exp(-2 pi i k n / n_fft)``, where ``x_pad``
    is `x` padded by ``n_fft // 2`` on both sides when `center` (as ``torch.stft``).

    Args:
        x: the signal, shape (..., L): a NumPy/CuPy float array or a Tensor.
        n_fft: the FFT size (frame length).
        hop_length: samples between frames (default ``n_fft // 4``, as torch).
        win_length: window length, at most n_fft (default n_fft); a shorter window is
            zero-padded on both sides to n_fft, as torch does.
        window: ``'hann'`` (periodic Hann, the default here), None (also Hann) or the window
            values (win_length of them).
        center: pad both ends by ``n_fft // 2`` so frame t is centred on sample ``t * hop``.
        pad_mode: ``'reflect'`` (default), ``'constant'``, ``'replicate'`` or ``'circular'``.
        normalized: multiply by ``n_fft ** -0.5``.
        onesided: keep the ``n_fft // 2 + 1`` non-negative frequencies (default).

    Returns:
        For an array: a complex array of shape (..., n_freq, n_frames), as
        ``torch.stft(..., return_complex=True)``. For a Tensor: a real Tensor of shape
        (..., n_freq, n_frames, 2) holding the real and imaginary parts (as
        ``torch.view_as_real``), differentiable. ``n_frames = 1 + (L_pad - n_fft) // hop``.

    Raises:
        ValueError: bad sizes, a signal shorter than one frame, or reflect padding wider than
            the signal allows (the message names the sizes).
    """
    _check_float(x, "stft")
    hop_length = n_fft // 4 if hop_length is None else hop_length
    win_length = n_fft if win_length is None else win_length
    if n_fft <= 0 or hop_length <= 0 or not 0 < win_length <= n_fft:
        raise ValueError(f"stft: expected n_fft > 0, hop_length > 0 and 0 < win_length <= "
                         f"n_fft, got n_fft={n_fft}, hop_length={hop_length}, "
                         f"win_length={win_length}")
    if pad_mode not in _PAD_MODES:
        raise ValueError(f"stft: pad_mode must be one of {sorted(_PAD_MODES)}, got {pad_mode!r}")
    length = x.shape[-1]
    pad = n_fft // 2 if center else 0
    if pad and pad_mode == "reflect" and pad >= length:
        raise ValueError(f"stft: reflect padding of {pad} needs a signal longer than {pad} "
                         f"samples, got {length}")
    padded = length + 2 * pad
    if padded < n_fft:
        raise ValueError(f"stft: the (padded) signal has {padded} samples, fewer than "
                         f"n_fft={n_fft}")
    n_frames = 1 + (padded - n_fft) // hop_length
    # frames[t, n] indexes the padded signal; with padding folded in, one gather builds them all
    starts = np.arange(n_frames)[:, None] * hop_length + np.arange(n_fft)[None, :]
    if pad and pad_mode != "constant":
        index = _pad_index(length, pad, pad_mode)[starts]
        source = x
    else:
        index = starts
        source = _pad_constant(x, pad) if pad else x
    w = _window_array(window, n_fft, win_length)
    scale = n_fft**-0.5 if normalized else 1.0
    n_freq = n_fft // 2 + 1 if onesided else n_fft
    if isinstance(x, Tensor):
        frames = source[..., index] * _constant(w * scale, x)  # (..., T, n_fft)
        phase = 2.0 * np.pi * np.outer(np.arange(n_fft), np.arange(n_freq)) / n_fft
        real = frames @ _constant(np.cos(phase), x)
        imag = frames @ _constant(-np.sin(phase), x)
        return ops.stack([real, imag], dim=-1).transpose(-3, -2)  # (..., F, T, 2)
    xp = _xp(x)
    frames = xp.asarray(source)[..., xp.asarray(index)] * xp.asarray(w * scale).astype(x.dtype)
    spec = xp.fft.rfft(frames, axis=-1) if onesided else xp.fft.fft(frames, axis=-1)
    complex_dtype = np.result_type(x.dtype, np.complex64)
    return xp.swapaxes(spec.astype(complex_dtype, copy=False), -1, -2)


def _pad_constant(x: Signal, pad: int) -> Signal:
    """`x` with `pad` zeros at both ends of its last dimension."""
    if isinstance(x, Tensor):
        zeros = _constant(np.zeros(tuple(x.shape[:-1]) + (pad,)), x)
        return ops.cat([zeros, x, zeros], dim=-1)
    xp = _xp(x)
    return xp.pad(x, [(0, 0)] * (x.ndim - 1) + [(pad, pad)])


def spectrogram(
    x: Signal,
    n_fft: int = 400,
    win_length: int | None = None,
    hop_length: int | None = None,
    power: float | None = 2.0,
    normalized: bool = False,
    center: bool = True,
    pad_mode: str = "reflect",
    window="hann",
) -> Signal:
    """``torchaudio.transforms.Spectrogram``: ``|stft(x)| ** power`` with a Hann window.

    Args:
        x: the signal, shape (..., L): an array or a Tensor.
        n_fft, win_length, pad_mode, center, normalized, window: as `stft`.
        hop_length: samples between frames (default ``win_length // 2``, as torchaudio).
        power: 2.0 for power (default), 1.0 for magnitude; None returns `stft`'s output.

    Returns:
        Shape (..., n_fft // 2 + 1, n_frames), the type of `x` (real).
    """
    win_length = n_fft if win_length is None else win_length
    hop_length = win_length // 2 if hop_length is None else hop_length
    spec = stft(x, n_fft, hop_length, win_length, window, center, pad_mode, normalized)
    if power is None:
        return spec
    if isinstance(spec, Tensor):
        energy = (spec * spec).sum(dim=-1)  # re^2 + im^2
        return energy if power == 2.0 else energy ** (power / 2.0)
    xp = _xp(spec)
    energy = xp.real(spec) ** 2 + xp.imag(spec) ** 2
    return energy if power == 2.0 else energy ** (power / 2.0)


# ------------------------------------------------------------------------------------------
# Mel scale
# ------------------------------------------------------------------------------------------

_SLANEY_F_SP = 200.0 / 3  # Hz per mel below 1 kHz
_SLANEY_MIN_LOG_HZ = 1000.0
_SLANEY_MIN_LOG_MEL = _SLANEY_MIN_LOG_HZ / _SLANEY_F_SP
_SLANEY_LOGSTEP = math.log(6.4) / 27.0


def _check_mel_scale(mel_scale: str) -> None:
    if mel_scale not in ("htk", "slaney"):
        raise ValueError(f"mel_scale must be 'htk' or 'slaney', got {mel_scale!r}")


def hz_to_mel(freq, mel_scale: str = "htk"):
    """Hertz to mels: HTK ``2595 log10(1 + f / 700)``, or Slaney's (linear below 1 kHz, then
    logarithmic), as torchaudio.

    Example:
        >>> round(float(hz_to_mel(1000.0)), 3), round(float(hz_to_mel(1000.0, "slaney")), 3)
        (999.986, 15.0)
    """
    _check_mel_scale(mel_scale)
    freq = np.asarray(freq, dtype=np.float64)
    if mel_scale == "htk":
        return 2595.0 * np.log10(1.0 + freq / 700.0)
    linear = freq / _SLANEY_F_SP
    with np.errstate(divide="ignore"):
        logarithmic = _SLANEY_MIN_LOG_MEL + np.log(freq / _SLANEY_MIN_LOG_HZ) / _SLANEY_LOGSTEP
    return np.where(freq >= _SLANEY_MIN_LOG_HZ, logarithmic, linear)


def mel_to_hz(mels, mel_scale: str = "htk"):
    """Mels to hertz, the inverse of `hz_to_mel`.

    Example:
        >>> round(float(mel_to_hz(hz_to_mel(440.0))), 6)
        440.0
    """
    _check_mel_scale(mel_scale)
    mels = np.asarray(mels, dtype=np.float64)
    if mel_scale == "htk":
        return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    linear = _SLANEY_F_SP * mels
    logarithmic = _SLANEY_MIN_LOG_HZ * np.exp(_SLANEY_LOGSTEP * (mels - _SLANEY_MIN_LOG_MEL))
    return np.where(mels >= _SLANEY_MIN_LOG_MEL, logarithmic, linear)


def mel_filterbank(
    n_freqs: int,
    f_min: float,
    f_max: float,
    n_mels: int,
    sample_rate: int,
    norm: str | None = None,
    mel_scale: str = "htk",
) -> np.ndarray:
    """Triangular mel filters, as ``torchaudio.functional.melscale_fbanks``.

    The ``n_mels + 2`` edges are equally spaced in mels from `f_min` to `f_max`; filter m rises
    linearly from edge m to 1 at edge m+1 and falls back to 0 at edge m+2, evaluated at the
    STFT bin frequencies ``linspace(0, sample_rate // 2, n_freqs)``.

    Args:
        n_freqs: the number of STFT frequencies (``n_fft // 2 + 1``).
        f_min, f_max: the lowest and highest frequencies covered, in Hz.
        n_mels: the number of filters.
        sample_rate: the sample rate in Hz.
        norm: None (peaks of 1) or ``'slaney'`` (each filter divided by its width in Hz / 2,
            so that all filters have the same area).
        mel_scale: ``'htk'`` (default) or ``'slaney'``.

    Returns:
        A float64 NumPy array of shape (n_freqs, n_mels); ``spec^T @ fb`` applies it.

    Example:
        >>> fb = mel_filterbank(129, 0.0, 4000.0, 40, 8000)
        >>> fb.shape, float(fb.max()) <= 1.0
        ((129, 40), True)
    """
    if norm not in (None, "slaney"):
        raise ValueError(f"norm must be None or 'slaney', got {norm!r}")
    all_freqs = np.linspace(0, sample_rate // 2, n_freqs)
    m_pts = np.linspace(hz_to_mel(f_min, mel_scale), hz_to_mel(f_max, mel_scale), n_mels + 2)
    f_pts = mel_to_hz(m_pts, mel_scale)
    f_diff = f_pts[1:] - f_pts[:-1]  # (n_mels + 1,)
    slopes = f_pts[None, :] - all_freqs[:, None]  # (n_freqs, n_mels + 2)
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    fb = np.maximum(0.0, np.minimum(down, up))
    if norm == "slaney":
        fb *= 2.0 / (f_pts[2 : n_mels + 2] - f_pts[:n_mels])
    if (fb.max(axis=0) == 0.0).any():
        warnings.warn(
            f"at least one mel filter has all zero values: n_mels ({n_mels}) may be too high "
            f"or n_freqs ({n_freqs}) too low", stacklevel=2)
    return fb


def melspectrogram(
    x: Signal,
    sample_rate: int = 16000,
    n_fft: int = 400,
    win_length: int | None = None,
    hop_length: int | None = None,
    f_min: float = 0.0,
    f_max: float | None = None,
    n_mels: int = 128,
    power: float = 2.0,
    normalized: bool = False,
    center: bool = True,
    pad_mode: str = "reflect",
    norm: str | None = None,
    mel_scale: str = "htk",
) -> Signal:
    """``torchaudio.transforms.MelSpectrogram``: `spectrogram` through `mel_filterbank`.

    Args:
        x: the signal, shape (..., L): an array or a Tensor.
        sample_rate: in Hz.
        f_max: default ``sample_rate / 2``. The other arguments are `spectrogram`'s and
            `mel_filterbank`'s.

    Returns:
        Shape (..., n_mels, n_frames), the type of `x`.

    Example:
        >>> melspectrogram(np.zeros(8000, np.float32), sample_rate=8000, n_fft=256,
        ...                n_mels=40, hop_length=128).shape
        (40, 63)
    """
    spec = spectrogram(x, n_fft, win_length, hop_length, power, normalized, center, pad_mode)
    f_max = sample_rate / 2.0 if f_max is None else f_max
    fb = mel_filterbank(n_fft // 2 + 1, f_min, f_max, n_mels, sample_rate, norm, mel_scale)
    return _apply_matrix(spec, fb)


def amplitude_to_db(
    x: Signal,
    multiplier: float = 10.0,
    amin: float = 1e-10,
    db_multiplier: float = 0.0,
    top_db: float | None = None,
) -> Signal:
    """``torchaudio.functional.amplitude_to_DB``: ``multiplier * log10(max(x, amin))``.

    Args:
        x: a power (multiplier 10) or magnitude (multiplier 20) spectrogram, (..., F, T).
        db_multiplier: ``log10(max(amin, ref))``, subtracted after scaling (0 for ref 1).
        top_db: if given, values more than `top_db` below the maximum of each spectrogram
            (over its last three dimensions, as torchaudio) are raised to that floor.
    """
    xp = _xp(x)
    if isinstance(x, Tensor):
        x_db = x.clamp(min=amin).log() * (multiplier / math.log(10.0))
    else:
        x_db = xp.log10(xp.maximum(x, amin)) * multiplier
    x_db = x_db - multiplier * db_multiplier
    if top_db is None:
        return x_db
    shape = tuple(x_db.shape)
    channels = shape[-3] if len(shape) > 2 else 1
    packed = x_db.reshape(-1, channels, shape[-2], shape[-1])
    if isinstance(x, Tensor):
        floor = packed.amax(dim=(-3, -2, -1), keepdim=True) - top_db
        return ops.maximum(packed, floor).reshape(*shape)
    floor = packed.max(axis=(-3, -2, -1), keepdims=True) - top_db
    return xp.maximum(packed, floor).reshape(shape)


def log_melspectrogram(x: Signal, *args, eps: float = 1e-6, **kwargs) -> Signal:
    """``log(melspectrogram(x) + eps)`` (natural log; torchaudio's MFCC with ``log_mels=True``).

    Arguments after `x` are `melspectrogram`'s.
    """
    return _log(melspectrogram(x, *args, **kwargs) + eps)


def create_dct(n_mfcc: int, n_mels: int, norm: str | None = "ortho") -> np.ndarray:
    """The DCT-II matrix, shape (n_mels, n_mfcc), as ``torchaudio.functional.create_dct``.

    ``D[n, k] = cos(pi / n_mels * (n + 0.5) * k)``, times ``sqrt(2 / n_mels)`` (and row
    ``k = 0`` times ``1 / sqrt(2)``) with ``norm='ortho'``, times 2 with ``norm=None``.

    Example:
        >>> d = create_dct(4, 4)
        >>> bool(np.allclose(d.T @ d, np.eye(4)))  # orthonormal
        True
    """
    if norm not in (None, "ortho"):
        raise ValueError(f"norm must be None or 'ortho', got {norm!r}")
    n = np.arange(n_mels, dtype=np.float64)
    k = np.arange(n_mfcc, dtype=np.float64)[:, None]
    dct = np.cos(math.pi / n_mels * (n + 0.5) * k)  # (n_mfcc, n_mels)
    if norm is None:
        dct *= 2.0
    else:
        dct[0] *= 1.0 / math.sqrt(2.0)
        dct *= math.sqrt(2.0 / n_mels)
    return dct.T


def mfcc(
    x: Signal,
    sample_rate: int = 16000,
    n_mfcc: int = 40,
    dct_type: int = 2,
    norm: str | None = "ortho",
    log_mels: bool = False,
    **melkwargs,
) -> Signal:
    """``torchaudio.transforms.MFCC``: the DCT-II of the log-mel spectrogram.

    The mel spectrogram (`melspectrogram` with `melkwargs`, 128 mels by default) is taken to
    decibels (`amplitude_to_db` with ``top_db=80``), or to ``log(mel + 1e-6)`` with
    `log_mels`, then multiplied by `create_dct` over the mel axis.

    Returns:
        Shape (..., n_mfcc, n_frames), the type of `x`.
    """
    if dct_type != 2:
        raise ValueError(f"only DCT type 2 is supported, got dct_type={dct_type}")
    mel = melspectrogram(x, sample_rate, **melkwargs)
    n_mels = mel.shape[-2]
    if n_mfcc > n_mels:
        raise ValueError(f"n_mfcc ({n_mfcc}) must be at most the number of mels ({n_mels})")
    mel = _log(mel + 1e-6) if log_mels else amplitude_to_db(mel, 10.0, 1e-10, 0.0, 80.0)
    return _apply_matrix(mel, create_dct(n_mfcc, n_mels, norm))
