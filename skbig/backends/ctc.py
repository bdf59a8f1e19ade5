"""``ctc``: log-mel features, a subsampling conv front end, an encoder and CTC.

The built-in speech recognizer, trained from scratch:

1. **Features.** Every clip is decoded and resampled to ``sample_rate`` by
   :func:`skbig.data.audio.load_audio` and turned into a log-mel spectrogram
   in torch (:func:`skbig.data.audio.log_mel_spectrogram`).  Energies more
   than ``top_db`` below the loudest are raised to that floor (background
   noise and empty bands look alike at any level); with ``cepstral_lifter``
   the spectrum of each frame is smoothed by keeping that many cepstral
   coefficients, which removes the harmonics of the voice's pitch (a speaker
   trait) and keeps the vocal-tract envelope (the words).  Each utterance is
   then normalised: every band's mean over time is subtracted (cepstral mean
   normalisation, removing the microphone's colouring) and the whole is
   divided by its standard deviation (removing loudness).
2. **Augmentation, training only.** On the log-mel spectrogram: a random
   tempo change (up to ``time_stretch``), a vocal tract length perturbation
   (frequencies scaled by up to ``freq_warp``, as by a longer or shorter
   vocal tract), and for half the utterances each, reverberation (decay time
   up to ``reverb_time``) and a noise floor (``noise_snr_db`` dB or more
   below the peak); after normalisation, SpecAugment band masking
   (:func:`skbig.data.audio.spec_augment`).  With few training speakers,
   rooms and microphones, these are what lets the model hear new ones.  The
   randomness is seeded by (fit seed, epoch, item), so a fit is reproducible
   with any number of DataLoader workers.
3. **Model.** Two 3x3 convolutions with stride 2 (4x fewer frames, 40 ms per
   frame at the default 10 ms hop), a linear projection, then a
   bidirectional GRU or LSTM or a stack of conformer blocks, and a linear
   layer to the output tokens.  That layer emits ``output_upsample`` CTC
   frames per encoder frame: character CTC needs at least one frame per
   character (two for a doubled letter), and at 40 ms per frame fast speech
   does not fit, while running the encoder at 20 ms would double its cost.
   With ``average_decay`` the evaluation-mode network uses an exponential
   moving average of the weights over the training steps (Polyak averaging),
   which generalises better and varies less from epoch to epoch than the
   last step's weights; the average is part of the module's ``state_dict``.
4. **Output tokens.** The characters of the training transcripts (Unicode
   code points after NFC normalisation, so any script works; whitespace runs
   are one space) plus, with ``units="bpe"``, up to ``bpe_merges`` byte-pair
   merges seen at least ``bpe_min_count`` times (see :class:`Units`):
   frequent words become single tokens, so the network cannot spell half of
   one word and half of another; rare words are spelled.  Characters never
   seen in training are dropped when encoding, since no output exists for them.
5. **Loss and decoding.** CTC with the blank at id 0; greedy best-path or
   prefix beam search (:mod:`skbig.backends._ctc_decoding`), chosen by the
   ``beam_size`` argument of :meth:`CTCBackend.decode`, which the estimator
   passes from its own ``beam_size`` parameter.

Log-mel spectrograms are cached in memory before augmentation (up to
``feature_cache_mb`` per data set, in the process that decodes them), so
from the second epoch on a small data set trains without touching the disk
or recomputing spectrograms.  With
``num_workers > 0`` each worker has its own cache, which lives for one epoch.
"""

from __future__ import annotations

import itertools
import math
import re
import threading
import unicodedata
import weakref
from collections.abc import Mapping, Sequence
from functools import lru_cache, partial
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from skbig.backends._ctc_decoding import ctc_beam_search, ctc_greedy_decode
from skbig.backends.base import SpeechRecognitionBackend, TaskSpec
from skbig.data.audio import AudioDataset, _hz_to_mel, _mel_to_hz, log_mel_spectrogram, spec_augment
from skbig.engine.data import DatasetData
from skbig.exceptions import InvalidParameterError

__all__ = ["CTCBackend", "CTCModule", "ENCODERS", "UNITS", "Units"]

ENCODERS = ("gru", "lstm", "conformer")
UNITS = ("bpe", "char")
_WHITESPACE = re.compile(r"\s+")


def canonical_text(text: str) -> str:
    """NFC-normalise ``text`` and collapse whitespace runs into single spaces."""
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


# -- features and augmentation (module level so they pickle into DataLoader workers) ------------
def utterance_log_mel(
    waveform: np.ndarray, *, sample_rate: int, n_fft: int, hop_length: int, n_mels: int, top_db: float
) -> torch.Tensor:
    """Log-mel spectrogram of one clip with its dynamic range limited to ``top_db``.

    Energies more than ``top_db`` below the utterance's loudest bin are
    raised to that floor, so silence, empty bands (audio recorded at a lower
    rate) and quantisation noise look the same at any recording level.
    Returns a ``(n_frames, n_mels)`` float32 tensor (natural log of power).
    """
    feats = log_mel_spectrogram(
        torch.from_numpy(np.ascontiguousarray(waveform, dtype=np.float32)),
        sample_rate=sample_rate,
        n_fft=n_fft,
        hop_length=hop_length,
        n_mels=n_mels,
    )
    return feats.clamp(min=float(feats.max()) - top_db * math.log(10) / 10)


def normalise_features(feats: torch.Tensor, *, cepstral_lifter: int = 0) -> torch.Tensor:
    """Smooth each frame's spectrum (optional), then normalise the utterance.

    With ``0 < cepstral_lifter < n_mels`` each frame keeps only its first
    ``cepstral_lifter`` DCT (cepstral) coefficients.  Then every band's mean
    over time is subtracted and the whole is divided by its standard
    deviation, so the result has zero-mean bands and unit variance.
    """
    n_mels = feats.shape[1]
    if 0 < cepstral_lifter < n_mels:
        basis = _dct_basis(n_mels)[:, :cepstral_lifter]
        feats = (feats @ basis) @ basis.T
    feats = feats - feats.mean(dim=0, keepdim=True)
    return feats / feats.std(unbiased=False).clamp(min=1e-5)


def utterance_features(
    waveform: np.ndarray,
    *,
    sample_rate: int,
    n_fft: int,
    hop_length: int,
    n_mels: int,
    top_db: float,
    cepstral_lifter: int = 0,
) -> torch.Tensor:
    """What the network sees of a clip at prediction time: :func:`utterance_log_mel`, normalised."""
    feats = utterance_log_mel(
        waveform, sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels, top_db=top_db
    )
    return normalise_features(feats, cepstral_lifter=cepstral_lifter)


@lru_cache(maxsize=8)
def _dct_basis(n: int) -> torch.Tensor:
    """Orthonormal DCT-II basis as columns, ``(n, n)``: column k is the k-th cosine."""
    grid = (torch.arange(n, dtype=torch.float64)[:, None] + 0.5) * torch.arange(n)[None, :] * math.pi / n
    basis = torch.cos(grid) * math.sqrt(2.0 / n)
    basis[:, 0] /= math.sqrt(2.0)
    return basis.float()


def _stretch_time(feats: torch.Tensor, factor: float) -> torch.Tensor:
    """Resample the time axis linearly to ``factor`` times as many frames (a tempo change)."""
    n = max(1, round(feats.shape[0] * factor))
    return F.interpolate(feats.T[None], size=n, mode="linear", align_corners=True)[0].T.contiguous()


def _warp_frequency(feats: torch.Tensor, alpha: float, f_max: float) -> torch.Tensor:
    """Vocal tract length perturbation: the band centred at ``f`` Hz takes the value at ``f / alpha``.

    Band centres are equally spaced on the mel scale up to ``f_max``, so the
    warp is computed in Hz and mapped back to fractional band positions;
    positions past the top band repeat it.
    """
    n = feats.shape[1]
    top = float(_hz_to_mel(torch.tensor(f_max, dtype=torch.float64)))
    centres = torch.linspace(0.0, top, n + 2, dtype=torch.float64)[1:-1]
    source = _hz_to_mel(_mel_to_hz(centres) / alpha)
    pos = ((source - centres[0]) / (centres[1] - centres[0])).clamp(0, n - 1).float()
    lo = pos.floor().long()
    hi = (lo + 1).clamp(max=n - 1)
    frac = pos - lo
    return feats[:, lo] * (1 - frac) + feats[:, hi] * frac


def _reverberate(feats: torch.Tensor, decay_frames: float, wet: float) -> torch.Tensor:
    """Add an exponentially decaying tail (reverberation time ``decay_frames``) to every band's power."""
    length = max(1, min(int(decay_frames), 4 * feats.shape[0]))
    lags = torch.arange(length, 0, -1, dtype=torch.float32)  # oldest frame first
    kernel = torch.cat([wet * torch.exp(-math.log(1e6) * lags / decay_frames), torch.ones(1)])
    power = F.pad(feats.exp().T[:, None, :], (length, 0))
    tail = F.conv1d(power, kernel.view(1, 1, -1))[:, 0, :].T
    return tail.clamp(min=1e-10).log()


def augment_log_mel(
    feats: torch.Tensor,
    generator: torch.Generator,
    *,
    f_max: float,
    frame_seconds: float,
    time_stretch: float,
    freq_warp: float,
    reverb_time: float,
    noise_snr_db: float,
) -> torch.Tensor:
    """Training-time changes of an utterance's log-mel spectrogram (before normalisation).

    Each draws from ``generator``: a tempo change of up to ``time_stretch``,
    a vocal tract length warp of up to ``freq_warp``; and, each for half the
    utterances, reverberation with a decay time of up to ``reverb_time``
    seconds and a flat noise floor ``noise_snr_db`` to 30 dB higher below
    the loudest bin.
    """
    u = torch.rand(6, generator=generator).tolist()
    if time_stretch > 0:
        feats = _stretch_time(feats, 1.0 + (2 * u[0] - 1) * time_stretch)
    if freq_warp > 0 and feats.shape[1] > 1:
        feats = _warp_frequency(feats, 1.0 + (2 * u[1] - 1) * freq_warp, f_max)
    if reverb_time > 0 and u[2] < 0.5:
        feats = _reverberate(feats, max(u[3] * reverb_time / frame_seconds, 1.0), wet=0.5 + 0.5 * u[3])
    if noise_snr_db > 0 and u[4] < 0.5:
        snr_db = noise_snr_db + 30.0 * u[5]
        feats = torch.logaddexp(feats, torch.tensor(float(feats.max()) - snr_db * math.log(10) / 10))
    return feats


def mask_features(
    feats: torch.Tensor,
    generator: torch.Generator,
    *,
    freq_masks: int,
    freq_mask_fraction: float,
    time_masks: int,
    time_mask_fraction: float,
) -> torch.Tensor:
    """SpecAugment on normalised features; mask widths are shares of the bands and frames."""
    return spec_augment(
        feats,
        freq_masks=freq_masks,
        freq_width=int(freq_mask_fraction * feats.shape[1]),
        time_masks=time_masks,
        time_width_fraction=time_mask_fraction,
        generator=generator,
    )


class CTCDataset(torch.utils.data.Dataset):
    """Lazily decoded, cached and (for training) augmented utterances.

    Wraps :class:`skbig.data.audio.AudioDataset`, whose errors name the item's
    index and path, and batches with its ``collate``.
    """

    def __init__(
        self,
        audio: AudioDataset,
        *,
        cepstral_lifter: int,
        augment: Mapping[str, Any] | None,
        masks: Mapping[str, Any] | None,
        seed: int,
        cache_bytes: int,
    ) -> None:
        self.audio = audio
        self.cepstral_lifter = cepstral_lifter
        self.augment = dict(augment) if augment else None
        self.masks = dict(masks) if masks else None
        self.seed = seed
        self.cache_bytes = cache_bytes
        self.epoch = 0
        self._cache: dict[int, dict[str, torch.Tensor]] = {}
        self._cached = 0

    def __len__(self) -> int:
        return len(self.audio)

    def set_epoch(self, epoch: int) -> None:
        """Called by the engine before each epoch; augmentation draws depend on it."""
        self.epoch = epoch

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        sample = self._cache.get(index)
        if sample is None:
            sample = self.audio[index]  # log-mel spectrogram, cached before augmentation
            size = sample["x"].numel() * sample["x"].element_size()
            if self._cached + size <= self.cache_bytes:
                self._cache[index] = sample
                self._cached += size
        feats = sample["x"]
        generator = None
        if self.augment is not None or self.masks is not None:
            state = np.random.SeedSequence([self.seed, self.epoch, index]).generate_state(1, np.uint64)[0]
            generator = torch.Generator().manual_seed(int(state))
        if self.augment is not None and generator is not None:
            feats = augment_log_mel(feats, generator, **self.augment)
        feats = normalise_features(feats, cepstral_lifter=self.cepstral_lifter)
        if self.masks is not None and generator is not None:
            feats = mask_features(feats, generator, **self.masks)
        return {**sample, "x": feats}


# -- output units ---------------------------------------------------------------------------------
class Units:
    """The CTC output tokens: the transcripts' characters plus learned byte-pair merges.

    Byte-pair encoding (Sennrich et al., 2016) repeatedly merges the most
    frequent pair of adjacent symbols inside words into a new token, as long
    as the pair occurs at least ``min_count`` times.  Frequent words and word
    pieces thus become single tokens that the network must emit as a whole,
    so it cannot spell half of one word and half of another, and rare words
    are still spelled from characters.  Spaces are tokens of their own.

    Parameters
    ----------
    alphabet : sequence of str
        The characters (sorted); token ids ``1..len(alphabet)``.
    merges : sequence of (str, str)
        Merges in the order learned; merge ``k`` is token ``len(alphabet) + 1 + k``.
    """

    def __init__(self, alphabet: Sequence[str], merges: Sequence[Sequence[str]] = ()) -> None:
        self.alphabet = list(alphabet)
        self.merges = [(str(a), str(b)) for a, b in merges]
        self.tokens = self.alphabet + [a + b for a, b in self.merges]
        self._index: dict[str, int] = {}
        for i, token in enumerate(self.tokens):
            self._index.setdefault(token, i + 1)  # 0 is the CTC blank
        self._chars = set(self.alphabet)
        self._words: dict[str, list[int]] = {}

    @classmethod
    def learn(cls, transcripts: Sequence[str], *, max_merges: int, min_count: int) -> Units:
        """Characters of ``transcripts`` and up to ``max_merges`` merges seen ``min_count`` times."""
        texts = [canonical_text(t) for t in transcripts]
        alphabet = sorted({c for t in texts for c in t})
        counts: dict[tuple[str, ...], int] = {}
        for text in texts:
            for word in text.split(" "):
                if word:
                    counts[tuple(word)] = counts.get(tuple(word), 0) + 1
        merges: list[tuple[str, str]] = []
        for _ in range(max_merges):
            pairs: dict[tuple[str, str], int] = {}
            for symbols, n in counts.items():
                for pair in itertools.pairwise(symbols):
                    pairs[pair] = pairs.get(pair, 0) + n
            if not pairs:
                break
            best, n = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))  # ties: deterministic
            if n < min_count:
                break
            merges.append(best)
            counts = {_merge(symbols, best): n for symbols, n in counts.items()}
        return cls(alphabet, merges)

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``; characters outside the alphabet are dropped."""
        ids: list[int] = []
        for i, word in enumerate(canonical_text(text).split(" ")):
            if i and " " in self._chars:
                ids.append(self._index[" "])
            ids += self._encode_word(word)
        return ids

    def _encode_word(self, word: str) -> list[int]:
        cached = self._words.get(word)
        if cached is None:
            symbols = tuple(c for c in word if c in self._chars)
            for pair in self.merges:
                symbols = _merge(symbols, pair)
            cached = self._words[word] = [self._index[s] for s in symbols]
        return cached

    def decode(self, ids: Sequence[int]) -> str:
        """Text of token ids (the blank, 0, must not occur)."""
        return canonical_text("".join(self.tokens[i - 1] for i in ids))

    def to_json(self) -> dict[str, Any]:
        return {"alphabet": list(self.alphabet), "merges": [list(m) for m in self.merges]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Units:
        return cls([str(c) for c in data["alphabet"]], data.get("merges", ()))


def _merge(symbols: tuple[str, ...], pair: tuple[str, str]) -> tuple[str, ...]:
    """Replace every adjacent occurrence of ``pair`` in ``symbols`` by the joined token."""
    a, b = pair
    if len(symbols) < 2 or a not in symbols:
        return symbols
    out: list[str] = []
    i = 0
    while i < len(symbols):
        if i + 1 < len(symbols) and symbols[i] == a and symbols[i + 1] == b:
            out.append(a + b)
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return tuple(out)


# -- the network ---------------------------------------------------------------------------------
def _conv_length(lengths: torch.Tensor) -> torch.Tensor:
    """Frames left after a kernel-3, stride-2, padding-1 convolution: ceil(n / 2)."""
    return torch.div(lengths + 1, 2, rounding_mode="floor")


def _padding_mask(lengths: torch.Tensor, size: int) -> torch.Tensor:
    """``(B, size)`` bool, True at padded positions."""
    return torch.arange(size, device=lengths.device)[None, :] >= lengths[:, None]


class ConvSubsampling(nn.Module):
    """Two stride-2 3x3 convolutions over (time, mel), then a projection to ``d_model``.

    Positions past each utterance's end are zeroed between the convolutions,
    so an utterance's output does not depend on what it is batched with.
    """

    def __init__(self, n_mels: int, channels: int, d_model: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=2, padding=1)
        n_freq = (n_mels + 1) // 2
        n_freq = (n_freq + 1) // 2
        self.proj = nn.Linear(channels * n_freq, d_model)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.relu(self.conv1(x.unsqueeze(1)))
        lengths = _conv_length(lengths)
        h = h.masked_fill(_padding_mask(lengths, h.shape[2])[:, None, :, None], 0.0)
        h = F.relu(self.conv2(h))
        lengths = _conv_length(lengths)
        b, c, t, f = h.shape
        return self.proj(h.permute(0, 2, 1, 3).reshape(b, t, c * f)), lengths


class RecurrentEncoder(nn.Module):
    """Bidirectional GRU or LSTM over packed sequences; output size ``2 * hidden_size``."""

    def __init__(self, kind: str, d_model: int, hidden_size: int, num_layers: int, dropout: float) -> None:
        super().__init__()
        rnn = nn.GRU if kind == "gru" else nn.LSTM
        self.rnn = rnn(
            d_model,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.out_size = 2 * hidden_size

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return out


class _FeedForward(nn.Sequential):
    def __init__(self, d_model: int, dropout: float) -> None:
        super().__init__(
            nn.LayerNorm(d_model),
            nn.Linear(d_model, 4 * d_model),
            nn.SiLU(),
            nn.Dropout(dropout),
            nn.Linear(4 * d_model, d_model),
            nn.Dropout(dropout),
        )


class _ConformerBlock(nn.Module):
    """Macaron feed-forward, self-attention, depthwise convolution (Gulati et al., 2020).

    LayerNorm replaces the convolution module's BatchNorm so that results do
    not depend on batch composition.
    """

    def __init__(self, d_model: int, num_heads: int, kernel_size: int, dropout: float) -> None:
        super().__init__()
        self.ff1 = _FeedForward(d_model, dropout)
        self.attn_norm = nn.LayerNorm(d_model)
        self.attn = nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True)
        self.conv_norm = nn.LayerNorm(d_model)
        self.pointwise_in = nn.Linear(d_model, 2 * d_model)
        self.depthwise = nn.Conv1d(d_model, d_model, kernel_size, padding=kernel_size // 2, groups=d_model)
        self.depthwise_norm = nn.LayerNorm(d_model)
        self.pointwise_out = nn.Linear(d_model, d_model)
        self.ff2 = _FeedForward(d_model, dropout)
        self.out_norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        keep = ~pad[..., None]
        x = x + 0.5 * self.ff1(x)
        h = self.attn_norm(x)
        h, _ = self.attn(h, h, h, key_padding_mask=pad, need_weights=False)
        x = x + self.dropout(h.masked_fill(~keep, 0.0))
        h = F.glu(self.pointwise_in(self.conv_norm(x)), dim=-1).masked_fill(~keep, 0.0)
        h = self.depthwise(h.transpose(1, 2)).transpose(1, 2)
        h = self.pointwise_out(F.silu(self.depthwise_norm(h)))
        x = x + self.dropout(h)
        x = x + 0.5 * self.ff2(x)
        return self.out_norm(x).masked_fill(~keep, 0.0)


class ConformerEncoder(nn.Module):
    """Sinusoidal positions then ``num_layers`` conformer blocks; output size ``d_model``."""

    def __init__(
        self, d_model: int, num_layers: int, num_heads: int, kernel_size: int, dropout: float
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            _ConformerBlock(d_model, num_heads, kernel_size, dropout) for _ in range(num_layers)
        )
        self.out_size = d_model

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        t, d = x.shape[1], x.shape[2]
        position = torch.arange(t, device=x.device, dtype=torch.float32)[:, None]
        freqs = torch.exp(torch.arange(0, d, 2, device=x.device, dtype=torch.float32) * (-math.log(1e4) / d))
        table = torch.zeros(t, d, device=x.device)
        table[:, 0::2] = torch.sin(position * freqs)
        table[:, 1::2] = torch.cos(position * freqs[: d // 2])
        x = x + table.to(x.dtype)
        pad = _padding_mask(lengths, t)
        for block in self.blocks:
            x = block(x, pad)
        return x


#: Set while this thread runs a module with its averaged weights swapped in.
_AVERAGING = threading.local()
_AVERAGE_LOCKS: weakref.WeakKeyDictionary[nn.Module, threading.Lock] = weakref.WeakKeyDictionary()
_AVERAGE_LOCKS_GUARD = threading.Lock()


def _average_lock(module: nn.Module) -> threading.Lock:
    """The lock of ``module``'s eval-mode weight swap (one per module; not pickled with it)."""
    with _AVERAGE_LOCKS_GUARD:
        lock = _AVERAGE_LOCKS.get(module)
        if lock is None:
            lock = _AVERAGE_LOCKS[module] = threading.Lock()
        return lock


class CTCModule(nn.Module):
    """Features ``(B, T, n_mels)`` -> CTC log-probabilities ``(B, T', n_outputs)`` and ``T'`` per item."""

    def __init__(
        self,
        *,
        n_mels: int,
        n_outputs: int,
        encoder: str,
        conv_channels: int,
        hidden_size: int,
        num_layers: int,
        num_heads: int,
        conv_kernel: int,
        dropout: float,
        output_upsample: int,
        average_decay: float = 0.0,
    ) -> None:
        super().__init__()
        self.subsampling = ConvSubsampling(n_mels, conv_channels, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.encoder: RecurrentEncoder | ConformerEncoder
        if encoder == "conformer":
            self.encoder = ConformerEncoder(hidden_size, num_layers, num_heads, conv_kernel, dropout)
        else:
            self.encoder = RecurrentEncoder(encoder, hidden_size, hidden_size, num_layers, dropout)
        self.upsample = output_upsample
        self.n_outputs = n_outputs
        self.head = nn.Linear(self.encoder.out_size, n_outputs * output_upsample)
        self.average_decay = average_decay
        self.average = nn.Module()  # running average of every parameter, as buffers
        if average_decay > 0:
            for name, param in self.named_parameters():
                self.average.register_buffer(name.replace(".", "__"), param.detach().clone())
            self.average.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training mode updates the average and uses the raw weights; eval mode uses the average.

        ``functional_call`` swaps the averaged weights into this very module for the
        call, so eval-mode calls from several threads (one model serving a thread
        pool) take turns; the nested call it makes in this thread runs ``_forward``.
        """
        if self.average_decay > 0 and not getattr(_AVERAGING, "active", False):
            if self.training:
                self._update_average()
            elif int(self.average.get_buffer("steps")) > 0:
                with _average_lock(self):
                    averaged = {
                        n: getattr(self.average, n.replace(".", "__")) for n, _ in self.named_parameters()
                    }
                    _AVERAGING.active = True
                    try:
                        return torch.func.functional_call(self, averaged, (x, lengths), strict=False)  # type: ignore[no-any-return]
                    finally:
                        _AVERAGING.active = False
        return self._forward(x, lengths)

    @torch.no_grad()
    def _update_average(self) -> None:
        """Fold the current weights (those after the last optimiser step) into the average."""
        steps = int(self.average.get_buffer("steps"))
        decay = min(self.average_decay, (1 + steps) / (10 + steps))  # short memory at first
        for name, param in self.named_parameters():
            getattr(self.average, name.replace(".", "__")).lerp_(param.detach(), 1.0 - decay)
        self.average.get_buffer("steps").add_(1)

    def _forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, lengths = self.subsampling(x, lengths)
        h = self.encoder(self.dropout(h), lengths)
        logits = self.head(self.dropout(h))
        b, t = logits.shape[:2]
        logits = logits.reshape(b, t * self.upsample, self.n_outputs)
        return logits.float().log_softmax(dim=-1), lengths * self.upsample


# -- the backend ---------------------------------------------------------------------------------
_INT_PARAMS = {
    "sample_rate": 1,
    "n_mels": 4,
    "conv_channels": 1,
    "hidden_size": 2,
    "num_layers": 1,
    "num_heads": 1,
    "conv_kernel": 1,
    "output_upsample": 1,
    "freq_masks": 0,
    "time_masks": 0,
    "feature_cache_mb": 0,
    "cepstral_lifter": 0,
    "bpe_merges": 0,
    "bpe_min_count": 1,
}
_FRACTIONS = (
    "dropout",
    "time_stretch",
    "freq_warp",
    "freq_mask_fraction",
    "time_mask_fraction",
    "average_decay",
)


class CTCBackend(SpeechRecognitionBackend):
    """Built-in from-scratch speech recognizer; see the module docstring.

    Hyper-parameters
    ----------------
    sample_rate : int
        Rate every clip is resampled to, in Hz.
    n_mels, window_ms, hop_ms
        Log-mel front end: bands, analysis window and hop in milliseconds.
    top_db : float
        Dynamic range kept below each utterance's loudest bin, in decibels.
    cepstral_lifter : int
        Cepstral coefficients kept when smoothing each frame's spectrum
        (0 keeps the spectrum as it is).
    encoder : {"gru", "lstm", "conformer"}
        Encoder after the convolutional subsampling.
    conv_channels, hidden_size, num_layers
        Sizes; ``hidden_size`` is per direction for the recurrent encoders and
        the model width for the conformer.
    num_heads, conv_kernel
        Conformer attention heads and depthwise kernel size (ignored otherwise).
    dropout : float
        Dropout on the encoder's input, between its layers and before the head.
    output_upsample : int
        CTC frames emitted per encoder frame (1 disables).
    average_decay : float
        Decay of the moving average of the weights used for evaluation and
        prediction (0 uses the last weights).
    units : {"bpe", "char"}
        Output tokens: characters plus byte-pair merges, or characters only.
    bpe_merges, bpe_min_count : int
        Most merges learned, and how often a pair must occur to be merged.
    time_stretch, freq_warp : float
        Largest relative tempo change and vocal-tract warp of the training
        augmentation (0 disables).
    reverb_time, noise_snr_db : float
        Training augmentation of half the utterances each: reverberation with
        a decay time of up to ``reverb_time`` seconds, and a flat noise floor
        ``noise_snr_db`` to ``noise_snr_db + 30`` dB below the loudest bin
        (0 disables either).
    freq_masks, freq_mask_fraction, time_masks, time_mask_fraction
        SpecAugment: number and largest width of the frequency masks (share
        of the bands) and of the time masks (share of the utterance).
    feature_cache_mb : int
        Memory for cached features per data set, in MiB (0 disables).
    """

    name = "ctc"
    # Chosen on the Free Spoken Digit Dataset with held-out *development*
    # speakers (jackson, nicolas; theo never seen): see benchmarks/speech_fsdd.py.
    defaults = {
        "sample_rate": 16000,
        "n_mels": 40,
        "window_ms": 25.0,
        "hop_ms": 10.0,
        "top_db": 60.0,
        "cepstral_lifter": 16,
        "encoder": "gru",
        "conv_channels": 32,
        "hidden_size": 160,
        "num_layers": 3,
        "num_heads": 4,
        "conv_kernel": 15,
        "dropout": 0.3,
        "output_upsample": 2,
        "average_decay": 0.995,
        "units": "bpe",
        "bpe_merges": 200,
        "bpe_min_count": 20,
        "time_stretch": 0.2,
        "freq_warp": 0.2,
        "reverb_time": 0.8,
        "noise_snr_db": 10.0,
        "freq_masks": 2,
        "freq_mask_fraction": 0.25,
        "time_masks": 2,
        "time_mask_fraction": 0.1,
        "feature_cache_mb": 512,
    }
    # With SpeechRecognizer's one-cycle schedule the best epochs come late, hence the patience.
    training_defaults = {"lr": 2e-3, "batch_size": 32, "max_epochs": 30, "weight_decay": 1e-2, "patience": 10}

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(params)
        _check_params(self.params)
        self.units: Units | None = None

    # -- output vocabulary -------------------------------------------------------------------
    @property
    def alphabet(self) -> list[str] | None:
        """The characters learned from the transcripts (None before :meth:`fit_targets`)."""
        return None if self.units is None else list(self.units.alphabet)

    def fit_targets(self, transcripts: Sequence[str]) -> None:
        """Learn the output units: the transcripts' characters, plus BPE merges if ``units="bpe"``."""
        p = self.params
        self.units = Units.learn(
            transcripts,
            max_merges=int(p["bpe_merges"]) if p["units"] == "bpe" else 0,
            min_count=int(p["bpe_min_count"]),
        )

    def encode_targets(self, transcripts: Sequence[str]) -> list[list[int]]:
        """Token ids (1-based; 0 is the blank); characters outside the alphabet are dropped."""
        units = self._require_units()
        return [units.encode(text) for text in transcripts]

    def ids_to_text(self, ids: Sequence[int]) -> str:
        """The transcript spelled by token ids (inverse of :meth:`encode_targets`)."""
        return self._require_units().decode(ids)

    def output_size(self) -> int:
        """Number of tokens plus one for the blank."""
        return len(self._require_units()) + 1

    def _require_units(self) -> Units:
        if self.units is None:
            raise RuntimeError("CTCBackend.fit_targets (or set_state) must run before this call")
        return self.units

    def get_state(self) -> dict[str, Any]:
        return self._require_units().to_json()

    def set_state(self, state: Mapping[str, Any]) -> None:
        self.units = Units.from_json(state)

    # -- data ------------------------------------------------------------------------------------------
    def feature_fn(self) -> partial[torch.Tensor]:
        """The picklable waveform -> log-mel function whose output is cached (:func:`utterance_log_mel`)."""
        p = self.params
        rate = int(p["sample_rate"])
        return partial(
            utterance_log_mel,
            sample_rate=rate,
            n_fft=max(1, round(rate * float(p["window_ms"]) / 1000)),
            hop_length=max(1, round(rate * float(p["hop_ms"]) / 1000)),
            n_mels=int(p["n_mels"]),
            top_db=float(p["top_db"]),
        )

    def make_data(self, X: Sequence[Any], targets: Any = None, *, train: bool = False) -> DatasetData:
        p = self.params
        audio = AudioDataset(
            X,
            sample_rate=self.input_sample_rate,
            target_rate=int(p["sample_rate"]),
            targets=targets,
            feature_fn=self.feature_fn(),
        )
        augment = masks = None
        seed = 0
        if train:
            augment = {
                "f_max": int(p["sample_rate"]) / 2,
                "frame_seconds": max(1, round(int(p["sample_rate"]) * float(p["hop_ms"]) / 1000))
                / int(p["sample_rate"]),
                "time_stretch": float(p["time_stretch"]),
                "freq_warp": float(p["freq_warp"]),
                "reverb_time": float(p["reverb_time"]),
                "noise_snr_db": float(p["noise_snr_db"]),
            }
            masks = {
                "freq_masks": int(p["freq_masks"]),
                "freq_mask_fraction": float(p["freq_mask_fraction"]),
                "time_masks": int(p["time_masks"]),
                "time_mask_fraction": float(p["time_mask_fraction"]),
            }
            seed = int(torch.randint(0, 2**31 - 1, ()))  # from the fit's seeded generator
        dataset = CTCDataset(
            audio,
            cepstral_lifter=int(p["cepstral_lifter"]),
            augment=augment,
            masks=masks,
            seed=seed,
            cache_bytes=int(p["feature_cache_mb"]) * 2**20,
        )
        return DatasetData(dataset, AudioDataset.collate)

    # -- model -------------------------------------------------------------------------------------------
    def build_module(self, spec: TaskSpec) -> nn.Module:
        p = self.params
        return CTCModule(
            n_mels=int(p["n_mels"]),
            n_outputs=spec.n_outputs,
            encoder=str(p["encoder"]),
            conv_channels=int(p["conv_channels"]),
            hidden_size=int(p["hidden_size"]),
            num_layers=int(p["num_layers"]),
            num_heads=int(p["num_heads"]),
            conv_kernel=int(p["conv_kernel"]),
            dropout=float(p["dropout"]),
            output_upsample=int(p["output_upsample"]),
            average_decay=float(p["average_decay"]),
        )

    def decode(self, module: nn.Module, batch: Mapping[str, Any], *, beam_size: int = 1) -> list[str]:
        """Transcribe a batch: greedy best path for ``beam_size=1``, else CTC prefix beam search."""
        units = self._require_units()
        return [units.decode(ids) for ids in self.decode_ids(module, batch, beam_size=beam_size)]

    def decode_ids(
        self, module: nn.Module, batch: Mapping[str, Any], *, beam_size: int = 1
    ) -> list[list[int]]:
        """Token ids that :meth:`decode` spells out."""
        log_probs, lengths = self.forward(module, batch)
        if beam_size == 1:
            return ctc_greedy_decode(log_probs, lengths)
        return ctc_beam_search(log_probs, lengths, beam_size=beam_size)

    @classmethod
    def search_space(cls) -> dict[str, Any]:
        return {
            "lr": ("log_float", 5e-4, 5e-3),
            "backend_params__hidden_size": ("categorical", [96, 160, 256]),
            "backend_params__num_layers": ("int", 2, 4),
            "backend_params__dropout": ("float", 0.1, 0.4),
            "backend_params__encoder": ("categorical", list(ENCODERS)),
            "backend_params__units": ("categorical", list(UNITS)),
            "backend_params__time_stretch": ("float", 0.0, 0.3),
            "backend_params__freq_warp": ("float", 0.0, 0.3),
            "backend_params__reverb_time": ("float", 0.0, 1.0),
            "backend_params__freq_mask_fraction": ("float", 0.0, 0.4),
        }


def _check_params(p: Mapping[str, Any]) -> None:
    """Raise InvalidParameterError naming the first hyper-parameter out of range."""
    if p["units"] not in UNITS:
        raise InvalidParameterError(
            f"backend_params['units'] must be one of {list(UNITS)}, got units={p['units']!r}"
        )
    if p["encoder"] not in ENCODERS:
        raise InvalidParameterError(
            f"backend_params['encoder'] must be one of {list(ENCODERS)}, got encoder={p['encoder']!r}"
        )
    for name, low in _INT_PARAMS.items():
        value = p[name]
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise InvalidParameterError(
                f"backend_params['{name}'] must be an int >= {low}, got {name}={value!r}"
            )
    for name in _FRACTIONS:
        value = p[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise InvalidParameterError(
                f"backend_params['{name}'] must be a number in [0, 1), got {name}={value!r}"
            )
    for name in ("reverb_time", "noise_snr_db"):
        value = p[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise InvalidParameterError(
                f"backend_params['{name}'] must be >= 0 (0 disables), got {name}={value!r}"
            )
    for name in ("window_ms", "hop_ms", "top_db"):
        value = p[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise InvalidParameterError(f"backend_params['{name}'] must be > 0, got {name}={value!r}")
    if p["encoder"] == "conformer" and p["hidden_size"] % (2 * p["num_heads"]):
        raise InvalidParameterError(
            "with encoder='conformer', hidden_size must be a multiple of 2 * num_heads, got "
            f"hidden_size={p['hidden_size']}, num_heads={p['num_heads']}; e.g. hidden_size=160, num_heads=4"
        )
