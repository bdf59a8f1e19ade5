"""Audio input handling for speech estimators: decode, resample, featurise, batch.

Every item of ``X`` (an array, a file path or the bytes of a file) goes through
:func:`load_audio`, which turns it into float32 mono at one rate or raises an
error that names ``X[index]`` and the path. Decoding happens lazily in
:class:`AudioDataset`, so it runs inside ``DataLoader`` workers.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from functools import lru_cache
from math import gcd
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import soundfile as sf
import torch
from scipy.signal import resample_poly
from torch.nn.utils.rnn import pad_sequence

from skbig.exceptions import InputTypeError, InvalidInputError, InvalidParameterError

__all__ = [
    "audio_seconds",
    "check_pcm_width",
    "load_audio",
    "resample",
    "mel_filterbank",
    "log_mel_spectrogram",
    "log_mel_features",
    "spec_augment",
    "AudioDataset",
]

_ACCEPTED = "a 1-D numpy array, a str or pathlib.Path to a WAV/FLAC/OGG file, or the file's bytes"


def _check_rate(name: str, rate: object) -> int:
    """Return ``rate`` as int, or raise if it is not a positive integer."""
    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or rate <= 0:
        raise InvalidParameterError(
            f"{name} must be a positive int in Hz, got {name}={rate!r}; e.g. {name}=16000"
        )
    return int(rate)


def check_pcm_width(item: np.ndarray, where: str) -> None:
    """Refuse integer arrays whose scaling by the dtype's range would turn speech into silence."""
    if item.dtype == np.int64:
        # No PCM format has 64-bit samples: this is np.array(list_of_ints) or a pandas
        # column, usually holding int16 values that full-range scaling would turn to silence.
        raise InputTypeError(
            f"{where} has dtype int64, which is no PCM format; cast it to the samples' real "
            "width (x.astype(np.int16) for 16-bit audio) or pass float samples in [-1, 1]"
        )
    if item.dtype == np.int32 and 0 < np.abs(item).max() <= np.iinfo(np.int16).max:
        raise InvalidInputError(
            f"{where} is int32 PCM whose loudest sample is {np.abs(item).max()} of 2**31, "
            "i.e. below -90 dBFS: these look like 16-bit samples; pass x.astype(np.int16)"
        )


def _array_to_float(item: np.ndarray, where: str) -> np.ndarray:
    """Convert a user array to float32 in [-1, 1), scaling integer PCM by its full range."""
    if item.ndim != 1:
        raise InvalidInputError(
            f"{where} must be a 1-D waveform array, got shape {item.shape}; "
            "average channels first, e.g. x.mean(axis=1) for an (n, channels) array"
        )
    if np.issubdtype(item.dtype, np.floating):
        return item.astype(np.float32)
    check_pcm_width(item, where)
    if np.issubdtype(item.dtype, np.signedinteger):
        return (item / -float(np.iinfo(item.dtype).min)).astype(np.float32)
    if item.dtype == np.uint8:
        return ((item.astype(np.float32) - 128.0) / 128.0).astype(np.float32)
    raise InputTypeError(
        f"{where} has dtype {item.dtype}, which is not audio; "
        "pass float samples in [-1, 1] or int16/int32/uint8 PCM"
    )


def _decode(source: BinaryIO, where: str) -> tuple[np.ndarray, int]:
    """Decode a file (or its bytes) with soundfile and average the channels to mono."""
    try:
        data, rate = sf.read(source, dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError, ValueError, TypeError) as exc:
        raise InvalidInputError(
            f"{where} could not be decoded as audio ({exc}); "
            "pass a WAV, FLAC or OGG file (convert MP3 and others with ffmpeg first)"
        ) from exc
    return data.mean(axis=1, dtype=np.float32), int(rate)


def _from_path(path: Path, where: str) -> tuple[np.ndarray, int]:
    """Decode a file path, telling a missing path and a directory apart from a bad file."""
    if not path.exists() and path.is_symlink():
        raise InvalidInputError(
            f"{where} is a symbolic link that does not resolve (its target is missing, or the links "
            "form a loop); point it at a real audio file"
        )
    if not path.exists():
        raise InvalidInputError(f"{where} does not exist; check the path and working directory")
    if path.is_dir():
        raise InvalidInputError(f"{where} is a directory; pass one audio file per item")
    try:
        # Opened here rather than by libsndfile, whose error for an unreadable file is "System error".
        handle = path.open("rb")
    except PermissionError as exc:
        raise InvalidInputError(
            f"{where}: permission denied; make the file readable by this process"
        ) from exc
    except OSError as exc:
        raise InvalidInputError(f"{where}: cannot read the file ({exc})") from exc
    with handle:
        return _decode(handle, where)


def _read_item(item: Any, index: int, sample_rate: int | None) -> tuple[np.ndarray, int, str]:
    """Dispatch on the item's type; returns samples, their rate and a label for errors."""
    where = f"X[{index}]"
    if isinstance(item, np.ndarray):
        wave = _array_to_float(item, where)
        if sample_rate is None:
            raise InvalidParameterError(
                f"{where} is an array, so sample_rate is required, got sample_rate=None; "
                "pass the rate the samples were recorded at, e.g. sample_rate=16000"
            )
        return wave, _check_rate("sample_rate", sample_rate), where
    if isinstance(item, (str, os.PathLike)):
        where = f"X[{index}] ({os.fspath(item)!s})"
        return (*_from_path(Path(item), where), where)
    if isinstance(item, (bytes, bytearray, memoryview)):
        return (*_decode(io.BytesIO(bytes(item)), where), where)
    raise InputTypeError(f"X[{index}] has type {type(item).__name__}; pass {_ACCEPTED}")


def load_audio(item: Any, *, index: int, sample_rate: int | None, target_rate: int) -> np.ndarray:
    """Turn one item of ``X`` into a float32 mono waveform at ``target_rate``.

    Parameters
    ----------
    item : ndarray, str, pathlib.Path or bytes
        A 1-D waveform (float in [-1, 1], or integer PCM scaled by its range,
        so int16 maps to [-1, 1)); a path to a WAV/FLAC/OGG file; or the bytes of
        such a file. Multi-channel files are averaged to mono.
    index : int
        Position of ``item`` in ``X``; every error message names ``X[index]``.
    sample_rate : int or None
        Rate of array items in Hz; required for arrays. Files carry their own
        rate, so it is ignored for paths and bytes.
    target_rate : int
        Rate of the returned waveform in Hz.

    Returns
    -------
    ndarray of shape (n_samples,), float32
        Finite samples at ``target_rate``.

    Raises
    ------
    InvalidInputError
        Missing path, directory, undecodable file, empty audio, NaN or inf
        samples, or an array that is not 1-D.
    InputTypeError
        Unsupported item type or array dtype.
    InvalidParameterError
        Missing or non-positive ``sample_rate`` for an array, or a bad ``target_rate``.

    Examples
    --------
    >>> x = load_audio(np.zeros(16000, dtype=np.int16) + 1, index=0,
    ...                sample_rate=16000, target_rate=8000)
    >>> x.shape, x.dtype
    ((8000,), dtype('float32'))
    """
    target_rate = _check_rate("target_rate", target_rate)
    wave, rate, where = _read_item(item, index, sample_rate)
    if wave.size == 0:
        raise InvalidInputError(f"{where} has no samples; drop empty recordings from X")
    if not np.isfinite(wave).all():
        raise InvalidInputError(f"{where} contains NaN or inf samples; clean it, e.g. np.nan_to_num(x)")
    return resample(wave, rate, target_rate)


def audio_seconds(item: Any, *, sample_rate: int | None) -> float | None:
    """Duration of one item of ``X`` in seconds, without decoding its samples.

    Why: a backend with a length limit can check every clip before training
    starts, instead of failing mid-epoch.  Files are asked for their header
    only; arrays are measured.

    Parameters
    ----------
    item : ndarray, str, pathlib.Path or bytes
        As for :func:`load_audio`.
    sample_rate : int or None
        Rate of array items in Hz.

    Returns
    -------
    float or None
        Seconds, or None when the duration cannot be read cheaply (an array
        without ``sample_rate``, an unreadable file): :func:`load_audio`
        raises the error that explains it when the item is decoded.

    Examples
    --------
    >>> audio_seconds(np.zeros(24000, dtype=np.float32), sample_rate=16000)
    1.5
    """
    try:
        if isinstance(item, np.ndarray):
            return item.shape[0] / sample_rate if sample_rate and item.ndim == 1 else None
        if isinstance(item, (str, os.PathLike)):
            info = sf.info(os.fspath(item))
        elif isinstance(item, (bytes, bytearray, memoryview)):
            info = sf.info(io.BytesIO(bytes(item)))
        else:
            return None
    except (sf.SoundFileError, RuntimeError, ValueError, TypeError, OSError):
        return None
    return info.frames / info.samplerate if info.samplerate else None


def resample(x: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """Band-limited resampling by a rational factor (polyphase FIR filtering).

    Content above the new Nyquist frequency is filtered out rather than folded
    back, so downsampling does not alias.

    Parameters
    ----------
    x : ndarray of shape (n_samples,)
        Waveform at ``orig_rate``.
    orig_rate, target_rate : int
        Rates in Hz; the ratio is reduced by their gcd, so 44100 -> 16000
        uses up=160, down=441.

    Returns
    -------
    ndarray of shape (ceil(n_samples * target_rate / orig_rate),), float32

    Raises
    ------
    InvalidParameterError
        If either rate is not a positive int.

    Examples
    --------
    >>> resample(np.ones(160, dtype=np.float32), 16000, 8000).shape
    (80,)
    """
    orig_rate = _check_rate("orig_rate", orig_rate)
    target_rate = _check_rate("target_rate", target_rate)
    if orig_rate == target_rate:
        return np.asarray(x, dtype=np.float32)
    g = gcd(orig_rate, target_rate)
    return resample_poly(np.asarray(x, dtype=np.float64), target_rate // g, orig_rate // g).astype(np.float32)


def _hz_to_mel(hz: torch.Tensor) -> torch.Tensor:
    """Slaney mel scale: linear below 1 kHz, logarithmic above (librosa's default)."""
    log_part = 15.0 + torch.log(hz.clamp(min=1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return torch.where(hz >= 1000.0, log_part, hz * 3.0 / 200.0)


def _mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`_hz_to_mel`."""
    log_part = 1000.0 * torch.exp((np.log(6.4) / 27.0) * (mel - 15.0))
    return torch.where(mel >= 15.0, log_part, mel * 200.0 / 3.0)


@lru_cache(maxsize=32)
def _cached_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, f_min: float, f_max: float, device: str
) -> torch.Tensor:
    """Build the filterbank once per configuration; callers must not modify it."""
    freqs = torch.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1, dtype=torch.float64)
    mels = torch.linspace(
        float(_hz_to_mel(torch.tensor(f_min))),
        float(_hz_to_mel(torch.tensor(f_max))),
        n_mels + 2,
        dtype=torch.float64,
    )
    edges = _mel_to_hz(mels)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (freqs[:, None] - lower) / (center - lower)
    falling = (upper - freqs[:, None]) / (upper - center)
    weights = torch.minimum(rising, falling).clamp(min=0.0)
    weights = weights * (2.0 / (upper - lower))  # Slaney norm: equal area per filter
    return weights.to(device=device, dtype=torch.float32)


def _check_stft_params(sample_rate: int, n_fft: int, hop_length: int, n_mels: int) -> None:
    """Raise if an STFT or mel parameter is not a positive int."""
    _check_rate("sample_rate", sample_rate)
    for name, value in (("n_fft", n_fft), ("hop_length", hop_length), ("n_mels", n_mels)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise InvalidParameterError(f"{name} must be a positive int, got {name}={value!r}")


def mel_filterbank(
    *,
    sample_rate: int,
    n_fft: int = 400,
    n_mels: int = 80,
    f_min: float = 0.0,
    f_max: float | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Triangular mel filters (Slaney scale and area normalisation, as librosa).

    Parameters
    ----------
    sample_rate : int
        Rate of the audio in Hz.
    n_fft : int, default=400
        FFT size; the filterbank has ``n_fft // 2 + 1`` rows.
    n_mels : int, default=80
        Number of filters.
    f_min, f_max : float, default=0.0 and sample_rate / 2
        Band covered by the filters, in Hz.
    device : torch.device or str, default="cpu"
        Where the returned tensor lives.

    Returns
    -------
    Tensor of shape (n_fft // 2 + 1, n_mels), float32
        Multiply a power spectrum ``(..., n_freqs)`` by it to get mel energies.
        A fresh copy; the cached original is never exposed.

    Raises
    ------
    InvalidParameterError
        If a size is not positive or the band is not ``0 <= f_min < f_max <= sample_rate / 2``.

    Examples
    --------
    >>> mel_filterbank(sample_rate=16000, n_fft=400, n_mels=40).shape
    torch.Size([201, 40])
    """
    return _filterbank(sample_rate, n_fft, n_mels, f_min, f_max, torch.device(device)).clone()


def _filterbank(
    sample_rate: int,
    n_fft: int,
    n_mels: int,
    f_min: float,
    f_max: float | None,
    device: torch.device,
) -> torch.Tensor:
    """Validate the band and return the cached filterbank for this configuration."""
    _check_stft_params(sample_rate, n_fft, 1, n_mels)
    top = sample_rate / 2.0 if f_max is None else float(f_max)
    if not 0.0 <= f_min < top <= sample_rate / 2.0:
        raise InvalidParameterError(
            f"need 0 <= f_min < f_max <= sample_rate / 2 = {sample_rate / 2}, got "
            f"f_min={f_min}, f_max={f_max}; leave f_max=None for the Nyquist frequency"
        )
    return _cached_filterbank(sample_rate, n_fft, n_mels, float(f_min), top, str(device))


def log_mel_spectrogram(
    waveform: torch.Tensor,
    *,
    sample_rate: int,
    n_fft: int = 400,
    hop_length: int = 160,
    n_mels: int = 80,
    f_min: float = 0.0,
    f_max: float | None = None,
) -> torch.Tensor:
    """Log mel power spectrogram in pure torch (runs on the waveform's device).

    Hann-windowed, centred STFT; power spectrum; mel filterbank; natural log
    with a floor of 1e-10 so silence gives -23 instead of -inf. The defaults
    (25 ms window, 10 ms hop at 16 kHz, 80 mels) are the usual ASR front end.

    Parameters
    ----------
    waveform : Tensor of shape (T,) or (B, T)
        Audio samples at ``sample_rate``.
    sample_rate : int
        Rate in Hz.
    n_fft : int, default=400
        Window and FFT size in samples.
    hop_length : int, default=160
        Step between frames in samples.
    n_mels : int, default=80
        Number of mel bands.
    f_min, f_max : float, default=0.0 and sample_rate / 2
        Band covered by the mel filters, in Hz.

    Returns
    -------
    Tensor of shape (n_frames, n_mels) or (B, n_frames, n_mels)
        ``n_frames = T // hop_length + 1``.

    Raises
    ------
    InvalidInputError
        If the waveform is not 1-D or 2-D or has no samples.
    InvalidParameterError
        If a size or the band is invalid.

    Examples
    --------
    >>> log_mel_spectrogram(torch.zeros(16000), sample_rate=16000).shape
    torch.Size([101, 80])
    """
    _check_stft_params(sample_rate, n_fft, hop_length, n_mels)
    if waveform.ndim not in (1, 2) or waveform.shape[-1] == 0:
        raise InvalidInputError(
            f"waveform must have shape (T,) or (B, T) with T > 0, got shape {tuple(waveform.shape)}"
        )
    fbank = _filterbank(sample_rate, n_fft, n_mels, f_min, f_max, waveform.device)
    x = waveform.float()
    # Reflect padding needs more samples than the half window; very short clips get zeros.
    pad_mode = "reflect" if x.shape[-1] > n_fft // 2 else "constant"
    window = torch.hann_window(n_fft, device=x.device)
    spec = torch.stft(
        x, n_fft, hop_length, window=window, center=True, pad_mode=pad_mode, return_complex=True
    )
    power = spec.abs().pow(2).transpose(-1, -2)
    return torch.log((power @ fbank).clamp(min=1e-10))


def log_mel_features(
    waveform: np.ndarray,
    *,
    sample_rate: int,
    n_mels: int = 80,
    n_fft: int = 400,
    hop_length: int = 160,
) -> torch.Tensor:
    """NumPy-in adapter around :func:`log_mel_spectrogram` for ``AudioDataset(feature_fn=...)``.

    Module-level so that ``functools.partial(log_mel_features, sample_rate=16000)``
    pickles into ``DataLoader`` workers.

    Parameters
    ----------
    waveform : ndarray of shape (T,)
        Output of :func:`load_audio`.
    sample_rate, n_mels, n_fft, hop_length
        As in :func:`log_mel_spectrogram`.

    Returns
    -------
    Tensor of shape (n_frames, n_mels), float32

    Examples
    --------
    >>> log_mel_features(np.zeros(8000, np.float32), sample_rate=8000, n_mels=40).shape
    torch.Size([51, 40])
    """
    return log_mel_spectrogram(
        torch.from_numpy(np.ascontiguousarray(waveform, dtype=np.float32)),
        sample_rate=sample_rate,
        n_fft=n_fft,
        hop_length=hop_length,
        n_mels=n_mels,
    )


def _check_augment_params(freq_masks: int, freq_width: int, time_masks: int, fraction: float) -> None:
    """Raise if a SpecAugment setting is negative or the fraction is outside [0, 1]."""
    for name, value in (
        ("freq_masks", freq_masks),
        ("freq_width", freq_width),
        ("time_masks", time_masks),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise InvalidParameterError(f"{name} must be an int >= 0, got {name}={value!r}")
    if not 0.0 <= fraction <= 1.0:
        raise InvalidParameterError(
            f"time_width_fraction must be in [0, 1], got time_width_fraction={fraction!r}"
        )


def _draw_band(size: int, max_width: int, generator: torch.Generator | None) -> tuple[int, int]:
    """Draw a mask width in [0, max_width] and a start that keeps it inside ``size``."""
    width = int(torch.randint(0, min(max_width, size) + 1, (1,), generator=generator))
    start = int(torch.randint(0, size - width + 1, (1,), generator=generator))
    return start, start + width


def spec_augment(
    features: torch.Tensor,
    *,
    freq_masks: int = 2,
    freq_width: int = 15,
    time_masks: int = 2,
    time_width_fraction: float = 0.05,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """SpecAugment frequency and time masking (Park et al., 2019), without time warping.

    Hiding random bands forces the model not to rely on any single one, a cheap
    and strong regulariser for small speech datasets. Masks are filled with the
    mean of ``features`` so the masked input stays in range.

    Parameters
    ----------
    features : Tensor of shape (n_frames, n_mels)
        One utterance's features (e.g. a log-mel spectrogram).
    freq_masks : int, default=2
        Number of frequency bands to mask.
    freq_width : int, default=15
        Largest frequency mask width, in bins.
    time_masks : int, default=2
        Number of time spans to mask.
    time_width_fraction : float, default=0.05
        Largest time mask width as a fraction of ``n_frames``.
    generator : torch.Generator, optional
        CPU source of randomness, for reproducible masks.

    Returns
    -------
    Tensor of shape (n_frames, n_mels)
        A masked copy; the input is not modified.

    Raises
    ------
    InvalidInputError
        If ``features`` is not 2-D.
    InvalidParameterError
        If a count or width is negative or the fraction is outside [0, 1].

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> spec_augment(torch.randn(100, 80), generator=g).shape
    torch.Size([100, 80])
    """
    if features.ndim != 2:
        raise InvalidInputError(
            f"features must have shape (n_frames, n_mels), got shape {tuple(features.shape)}; "
            "augment one utterance at a time"
        )
    _check_augment_params(freq_masks, freq_width, time_masks, time_width_fraction)
    out = features.clone()
    fill = features.mean()
    n_frames, n_mels = features.shape
    for _ in range(freq_masks):
        lo, hi = _draw_band(n_mels, freq_width, generator)
        out[:, lo:hi] = fill
    for _ in range(time_masks):
        lo, hi = _draw_band(n_frames, int(time_width_fraction * n_frames), generator)
        out[lo:hi, :] = fill
    return out


class AudioDataset(torch.utils.data.Dataset):
    """Map-style dataset that decodes audio lazily, inside ``DataLoader`` workers.

    Parameters
    ----------
    items : sequence
        Items accepted by :func:`load_audio` (arrays, paths or bytes).
    sample_rate : int or None
        Rate of array items in Hz; see :func:`load_audio`.
    target_rate : int
        Rate every item is resampled to before ``feature_fn``.
    targets : sequence of sequence of int, optional
        Token ids per item (e.g. CTC labels), returned as ``"y"``.
    feature_fn : callable, optional
        Maps the float32 waveform to a ``(n_frames, n_feats)`` tensor. Must
        pickle for worker processes: a module-level function or a
        ``functools.partial`` of one, e.g. ``partial(log_mel_features, sample_rate=16000)``.
        ``None`` returns the raw waveform as a ``(T,)`` tensor.

    Raises
    ------
    InvalidInputError
        If ``targets`` is not aligned with ``items``; decoding errors surface
        from ``__getitem__`` naming the index and path.

    Examples
    --------
    >>> ds = AudioDataset([np.zeros(800, np.float32)], sample_rate=8000,
    ...                   target_rate=8000, targets=[[3, 1]])
    >>> batch = AudioDataset.collate([ds[0]])
    >>> tuple(batch["x"].shape), batch["y"].tolist()
    ((1, 800), [[3, 1]])
    """

    def __init__(
        self,
        items: Sequence[Any],
        *,
        sample_rate: int | None,
        target_rate: int,
        targets: Sequence[Sequence[int]] | None = None,
        feature_fn: Callable[[np.ndarray], torch.Tensor] | None = None,
    ) -> None:
        if targets is not None and len(targets) != len(items):
            raise InvalidInputError(
                f"targets must have one entry per item, got {len(targets)} targets for "
                f"{len(items)} items; pass aligned X and y"
            )
        self.items = items
        self.sample_rate = sample_rate
        self.target_rate = _check_rate("target_rate", target_rate)
        self.targets = targets
        self.feature_fn = feature_fn

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        wave = load_audio(
            self.items[index],
            index=index,
            sample_rate=self.sample_rate,
            target_rate=self.target_rate,
        )
        x = torch.from_numpy(wave) if self.feature_fn is None else torch.as_tensor(self.feature_fn(wave))
        sample = {"x": x}
        if self.targets is not None:
            sample["y"] = torch.as_tensor(list(self.targets[index]), dtype=torch.long)
        return sample

    @staticmethod
    def collate(samples: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """Pad a list of samples into a batch, keeping the true lengths.

        Parameters
        ----------
        samples : sequence of dict
            Outputs of ``__getitem__``.

        Returns
        -------
        dict
            ``"x"``: ``(B, T, F)`` features (``(B, T)`` for raw waveforms)
            zero-padded to the longest item; ``"x_lengths"``: ``(B,)`` long.
            With targets also ``"y"``: ``(B, L)`` long padded with 0 and
            ``"y_lengths"``: ``(B,)`` long.
        """
        xs = [s["x"] for s in samples]
        batch = {
            "x": pad_sequence(xs, batch_first=True),
            "x_lengths": torch.tensor([len(x) for x in xs], dtype=torch.long),
        }
        if samples and "y" in samples[0]:
            ys = [s["y"] for s in samples]
            batch["y"] = pad_sequence(ys, batch_first=True, padding_value=0)
            batch["y_lengths"] = torch.tensor([len(y) for y in ys], dtype=torch.long)
        return batch
