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
"""

from __future__ import annotations

import numpy as np
import torch

from skbig.data.audio import mel_filterbank

__all__ = ["N_FRAMES", "N_SAMPLES", "SAMPLE_RATE", "whisper_log_mel"]

#: Rate Whisper's features are defined at, in Hz.
SAMPLE_RATE = 16000
#: Samples in Whisper's 30-second window.
N_SAMPLES = 30 * SAMPLE_RATE
#: Frames the encoder takes (10 ms hop).
N_FRAMES = 3000
_N_FFT = 400
_HOP = 160


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
