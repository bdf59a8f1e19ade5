"""Whisper's log-mel input features, computed in torch.

Why not ``transformers.WhisperFeatureExtractor``: it works on numpy arrays
one batch at a time outside the DataLoader; this function is a picklable
``feature_fn`` for :class:`skbig.data.audio.AudioDataset`, so features are
computed lazily inside DataLoader workers like every other skbig audio
backend's.  It reproduces the extractor's numbers (a test compares them):

1. the 16 kHz waveform is zero-padded or cut to 30 s (480,000 samples),
   because Whisper's encoder only accepts 3,000 frames;
2. centred STFT (reflect padding) with a 400-sample periodic Hann window and
   a 160-sample hop, power spectrum, last frame dropped (3,000 frames);
3. 80 mel filters (Slaney scale and area normalisation, 0-8 kHz);
4. ``log10`` with a floor of 1e-10, values more than 8 (80 dB) below the
   clip's maximum raised to that floor, then ``(x + 4) / 4``.

Clips longer than the window are transcribed in pieces
(:func:`split_at_pauses`, :func:`whisper_log_mel_windows`): each piece ends
at the quietest moment of the last seconds before the 30-s limit, so cuts
fall between words when the speaker pauses, and the decoder writes each
piece's text in turn.
"""

from __future__ import annotations

import numpy as np
import torch

from skbig.data.audio import mel_filterbank

__all__ = [
    "N_FRAMES",
    "N_SAMPLES",
    "SAMPLE_RATE",
    "split_at_pauses",
    "whisper_log_mel",
    "whisper_log_mel_windows",
]

#: Rate Whisper's features are defined at, in Hz.
SAMPLE_RATE = 16000
#: Samples in Whisper's 30-second window.
N_SAMPLES = 30 * SAMPLE_RATE
#: Frames the encoder takes (10 ms hop).
N_FRAMES = 3000
_N_FFT = 400
_HOP = 160
#: A long clip's cut is placed in the last this many seconds before the 30-s limit.
_CUT_SEARCH_SECONDS = 5.0
#: Energy is averaged over this many 10-ms frames when looking for the pause to cut at.
_PAUSE_FRAMES = 20
#: Pieces of a long clip whose peak stays below this (-60 dBFS) are silence: not transcribed...
_SILENCE_PEAK = 1e-3
#: ...or below the clip's own peak times this (-40 dB), for a recording quieter than -20 dBFS.
_SILENCE_BELOW_PEAK = 1e-2


def whisper_log_mel(waveform: np.ndarray | torch.Tensor, *, n_mels: int = 80) -> torch.Tensor:
    """Whisper's normalised log-mel spectrogram of one 16 kHz clip.

    Parameters
    ----------
    waveform : ndarray or Tensor of shape (n_samples,)
        Float samples at 16 kHz; clips longer than 30 s are cut.
    n_mels : int, default=80
        Mel bands: 80 for every Whisper checkpoint up to large-v2, 128 for large-v3.

    Returns
    -------
    Tensor of shape (3000, n_mels), float32
        Frames first, so that :meth:`skbig.data.audio.AudioDataset.collate`
        stacks clips into ``(batch, 3000, n_mels)``; the model wants the
        transpose.

    Examples
    --------
    >>> whisper_log_mel(np.zeros(8000, dtype=np.float32)).shape
    torch.Size([3000, 80])
    """
    x = torch.as_tensor(
        np.asarray(waveform, dtype=np.float32) if isinstance(waveform, np.ndarray) else waveform
    )
    x = x.float().reshape(-1)[:N_SAMPLES]
    # Frames of the zero padding have zero power: transform only the clip and one
    # window of zeros after it (so reflect padding at its end sees zeros, as in the
    # full 30 s), and append the silent frames; the numbers are the same.
    x = torch.nn.functional.pad(x, (0, min(N_SAMPLES, x.shape[0] + _N_FFT) - x.shape[0]))
    window = torch.hann_window(_N_FFT, device=x.device)
    spec = torch.stft(x, _N_FFT, _HOP, window=window, center=True, pad_mode="reflect", return_complex=True)
    power = spec[:, :N_FRAMES].abs().pow(2)
    power = torch.nn.functional.pad(power, (0, N_FRAMES - power.shape[1]))  # (n_freqs, 3000)
    fbank = mel_filterbank(sample_rate=SAMPLE_RATE, n_fft=_N_FFT, n_mels=n_mels, device=x.device)
    log_spec = (fbank.T @ power).clamp(min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
    return ((log_spec + 4.0) / 4.0).T.contiguous()


def split_at_pauses(waveform: np.ndarray, *, max_samples: int = N_SAMPLES) -> list[np.ndarray]:
    """Cut a 16 kHz clip into consecutive pieces of at most ``max_samples`` samples.

    Why: Whisper's encoder reads 30 s, so a longer clip would lose its end.
    Each cut is placed at the quietest 200 ms (mean energy) of the last 5 s
    before the limit (the latest such pause; in the middle of a longer
    silence), so pieces run 25-30 s and split between words wherever the
    speaker pauses.

    Parameters
    ----------
    waveform : ndarray of shape (n_samples,)
        Float samples at 16 kHz.
    max_samples : int, default=480000
        Longest piece (30 s).

    Returns
    -------
    list of ndarray
        The pieces, in order; concatenated they give ``waveform`` back. A clip
        that fits is returned whole, as the only piece.

    Examples
    --------
    >>> speech = np.full(70 * 16000, 0.1, dtype=np.float32)
    >>> speech[27 * 16000 : 28 * 16000] = 0.0  # a one-second pause
    >>> [round(len(p) / 16000, 2) for p in split_at_pauses(speech)]
    [27.5, 27.5, 15.0]
    """
    x = np.asarray(waveform, dtype=np.float32).reshape(-1)
    search = min(int(_CUT_SEARCH_SECONDS * SAMPLE_RATE), max_samples)
    pieces, start = [], 0
    while x.shape[0] - start > max_samples:
        low = start + max_samples - search
        frames = search // _HOP
        energy = (x[low : low + frames * _HOP].reshape(frames, _HOP).astype(np.float64) ** 2).mean(axis=1)
        width = min(_PAUSE_FRAMES, frames)
        smoothed = np.convolve(
            energy, np.ones(width) / width, mode="valid"
        )  # window i covers frames i..i+width-1
        quiet = smoothed <= smoothed.min() * (1 + 1e-6) + 1e-12
        last = quiet.shape[0] - 1 - int(np.argmax(quiet[::-1]))  # the latest quietest window...
        first = last
        while first > 0 and quiet[first - 1]:
            first -= 1  # ...and the run of equally quiet ones it ends: cut in its middle
        cut = low + ((first + last) // 2 + width // 2) * _HOP
        pieces.append(x[start:cut])
        start = cut
    pieces.append(x[start:])
    return pieces


def whisper_log_mel_windows(waveform: np.ndarray | torch.Tensor, *, n_mels: int = 80) -> torch.Tensor:
    """:func:`whisper_log_mel` of each piece of a clip: ``(n_pieces, 3000, n_mels)``.

    A clip of up to 30 s is one piece. A longer one is cut by
    :func:`split_at_pauses`; pieces that are silence (peak below -60 dBFS,
    or 40 dB below the clip's peak when that is lower), typically a
    recording's quiet tail, are dropped, since Whisper tends to write text
    for silence, but at least one piece is always kept.

    Examples
    --------
    >>> whisper_log_mel_windows(np.zeros(8000, dtype=np.float32)).shape
    torch.Size([1, 3000, 80])
    """
    x = waveform.numpy() if isinstance(waveform, torch.Tensor) else waveform
    pieces = split_at_pauses(np.asarray(x, dtype=np.float32))
    if len(pieces) > 1:
        # Relative to the clip too: a quiet recording's speech is not silence.
        floor = min(_SILENCE_PEAK, _SILENCE_BELOW_PEAK * float(np.abs(x).max()))
        peaks = [float(np.abs(piece).max()) if piece.size else 0.0 for piece in pieces]
        heard = [piece for piece, peak in zip(pieces, peaks, strict=True) if peak > 0 and peak >= floor]
        pieces = heard or pieces[:1]
    return torch.stack([whisper_log_mel(piece, n_mels=n_mels) for piece in pieces])
