"""Tests for skbig.data.audio: decoding, resampling, features, augmentation, batching."""

from __future__ import annotations

import functools
import pathlib

import numpy as np
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader

from skbig.data.audio import (
    AudioDataset,
    audio_seconds,
    load_audio,
    log_mel_features,
    log_mel_spectrogram,
    mel_filterbank,
    resample,
    spec_augment,
)
from skbig.datasets._audio_samples import load_fsdd_sample, load_ljspeech_sample
from skbig.exceptions import InputTypeError, InvalidInputError, InvalidParameterError

RATE = 8000


def _sine(freq: float, rate: int, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return np.sin(2 * np.pi * freq * t)


def _dominant_hz(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[spectrum.argmax()])


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


@pytest.fixture(scope="module")
def pcm() -> np.ndarray:
    """A 0.5 s int16 chirp-ish signal, so a sample shift or scaling error shows up."""
    t = np.arange(RATE // 2) / RATE
    return (0.5 * np.sin(2 * np.pi * (300 + 400 * t) * t) * 32767).astype(np.int16)


@pytest.fixture(scope="module")
def audio_files(tmp_path_factory, pcm) -> dict[str, pathlib.Path]:
    folder = tmp_path_factory.mktemp("audio")
    files = {}
    for fmt, subtype in (("wav", "PCM_16"), ("flac", "PCM_16"), ("ogg", "VORBIS")):
        files[fmt] = folder / f"clip.{fmt}"
        sf.write(files[fmt], pcm, RATE, subtype=subtype)
    files["stereo"] = folder / "stereo.wav"
    sf.write(files["stereo"], np.stack([pcm, pcm // 2], axis=1), RATE, subtype="PCM_16")
    files["corrupt"] = folder / "corrupt.wav"
    files["corrupt"].write_bytes(b"RIFF\x00\x00not really a wave file" * 4)
    files["empty"] = folder / "empty.wav"
    sf.write(files["empty"], np.zeros(0, dtype=np.int16), RATE, subtype="PCM_16")
    return files


def _load(item, index=0, sample_rate=None, target_rate=RATE):
    return load_audio(item, index=index, sample_rate=sample_rate, target_rate=target_rate)


# ---------------------------------------------------------------- resample


@pytest.mark.parametrize(("orig", "target"), [(16000, 8000), (44100, 16000), (8000, 22050)])
def test_resample_keeps_a_1khz_sine_at_1khz(orig, target):
    out = resample(_sine(1000, orig), orig, target)
    assert out.dtype == np.float32
    assert len(out) == target  # one second in, one second out
    assert _dominant_hz(out, target) == pytest.approx(1000, abs=1.0)
    assert _rms(out) == pytest.approx(_rms(_sine(1000, orig)), rel=0.02)


def test_resample_removes_content_above_the_new_nyquist():
    # 6 kHz is above 4 kHz, the Nyquist frequency at 8 kHz; a naive decimator folds it to 2 kHz.
    x = _sine(6000, 16000)
    out = resample(x, 16000, 8000)
    middle = out[400:-400]  # skip the filter's start-up and tail (50 ms each side)
    assert _rms(middle) < 0.01 * _rms(x)
    assert _rms(x[::2]) > 0.5 * _rms(x)  # what aliasing would have left


def test_resample_is_a_no_op_at_equal_rates_and_validates_rates():
    x = np.arange(5, dtype=np.float64)
    np.testing.assert_array_equal(resample(x, 16000, 16000), x.astype(np.float32))
    with pytest.raises(InvalidParameterError, match="orig_rate must be a positive int"):
        resample(x, 0, 16000)


# ---------------------------------------------------------------- load_audio


@pytest.mark.parametrize("fmt", ["wav", "flac"])
@pytest.mark.parametrize("form", ["str", "pathlib", "bytes"])
def test_lossless_files_decode_to_the_written_samples(audio_files, pcm, fmt, form):
    path = audio_files[fmt]
    item = {"str": str(path), "pathlib": path, "bytes": path.read_bytes()}[form]
    out = _load(item)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, pcm / np.float32(32768))
    np.testing.assert_array_equal(out, _load(pcm, sample_rate=RATE))  # int16 array form


def test_ogg_decodes_identically_from_every_form_and_close_to_the_original(audio_files, pcm):
    path = audio_files["ogg"]
    outs = [_load(str(path)), _load(path), _load(path.read_bytes())]
    for out in outs[1:]:
        np.testing.assert_array_equal(out, outs[0])
    n = min(len(outs[0]), len(pcm))
    assert np.corrcoef(outs[0][:n], pcm[:n])[0, 1] > 0.99  # Vorbis is lossy


def test_float_arrays_pass_through_and_int16_scales_to_unit_range():
    x = np.array([0.0, 0.5, -1.0])
    np.testing.assert_array_equal(_load(x, sample_rate=RATE), x.astype(np.float32))
    scaled = _load(np.array([-32768, 0, 16384], dtype=np.int16), sample_rate=RATE)
    np.testing.assert_array_equal(scaled, [-1.0, 0.0, 0.5])


def test_int64_samples_are_refused_rather_than_scaled_to_silence():
    # np.array(list_of_ints) is int64: dividing int16 values by 2**63 would be silence.
    with pytest.raises(InputTypeError, match=r"X\[0\] has dtype int64.*astype\(np.int16\)"):
        _load(np.array([0, 1000, -1000]), sample_rate=RATE)


def test_int32_holding_16_bit_samples_is_refused_and_real_int32_pcm_is_scaled():
    with pytest.raises(InvalidInputError, match=r"loudest sample is 1000 of 2\*\*31.*look like 16-bit"):
        _load(np.array([0, 1000, -1000], dtype=np.int32), sample_rate=RATE)
    scaled = _load(np.array([0, 2**30, -(2**31)], dtype=np.int32), sample_rate=RATE)
    np.testing.assert_array_equal(scaled, [0.0, 0.5, -1.0])
    np.testing.assert_array_equal(_load(np.zeros(4, dtype=np.int32), sample_rate=RATE), np.zeros(4))


def test_stereo_is_averaged_to_mono(audio_files, pcm):
    out = _load(audio_files["stereo"])
    expected = (pcm.astype(np.float32) + (pcm // 2).astype(np.float32)) / 2 / 32768
    np.testing.assert_allclose(out, expected, atol=1e-7)


def test_files_are_resampled_from_their_own_rate(audio_files, pcm):
    out = _load(audio_files["wav"], sample_rate=44100, target_rate=16000)  # rate ignored for files
    assert len(out) == 2 * len(pcm)


@pytest.mark.parametrize(
    ("make_item", "exc", "pattern"),
    [
        (lambda f: f["wav"].parent / "no.wav", InvalidInputError, r"X\[7\] \(.*no\.wav\) does not"),
        (lambda f: f["wav"].parent, InvalidInputError, r"X\[7\] \(.*\) is a directory"),
        (lambda f: f["corrupt"], InvalidInputError, r"X\[7\] \(.*corrupt\.wav\) could not be"),
        (lambda f: b"not audio at all", InvalidInputError, r"X\[7\] could not be decoded"),
        (lambda f: f["empty"], InvalidInputError, r"X\[7\] \(.*empty\.wav\) has no samples"),
        (lambda f: np.zeros(0), InvalidInputError, r"X\[7\] has no samples"),
        (lambda f: np.array([0.1, np.nan]), InvalidInputError, r"X\[7\] contains NaN or inf"),
        (lambda f: np.array([0.1, np.inf]), InvalidInputError, r"X\[7\] contains NaN or inf"),
        (lambda f: np.zeros((10, 2)), InvalidInputError, r"X\[7\] must be a 1-D .* \(10, 2\)"),
        (lambda f: np.zeros((2, 3, 4)), InvalidInputError, r"X\[7\] must be a 1-D"),
        (lambda f: [0.1, 0.2], InputTypeError, r"X\[7\] has type list; pass a 1-D numpy array"),
        (lambda f: 3.5, InputTypeError, r"X\[7\] has type float"),
        (lambda f: np.zeros(4, dtype=complex), InputTypeError, r"X\[7\] has dtype complex128"),
    ],
    ids=[
        "missing", "directory", "corrupt-file", "corrupt-bytes", "empty-file", "empty-array",
        "nan", "inf", "2d-array", "3d-array", "list", "float", "complex",
    ],
)  # fmt: skip
def test_bad_items_raise_errors_naming_the_index(audio_files, make_item, exc, pattern):
    with pytest.raises(exc, match=pattern):
        _load(make_item(audio_files), index=7, sample_rate=RATE)


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "stereo"])
def test_audio_seconds_reads_the_duration_of_paths_and_bytes(audio_files, pcm, fmt):
    path = audio_files[fmt]
    assert audio_seconds(path, sample_rate=None) == pytest.approx(len(pcm) / RATE)
    assert audio_seconds(str(path), sample_rate=None) == audio_seconds(path.read_bytes(), sample_rate=None)


def test_audio_seconds_measures_arrays_and_leaves_unreadable_items_to_load_audio(audio_files):
    assert audio_seconds(np.zeros(12000, dtype=np.int16), sample_rate=8000) == 1.5
    for item, rate in [
        (np.zeros(100), None),  # no rate: load_audio names the missing sample_rate
        (np.zeros((10, 2)), 8000),
        (audio_files["corrupt"], None),
        (audio_files["wav"].parent / "no.wav", None),
        (b"not audio at all", None),
        ([0.1, 0.2], None),
    ]:
        assert audio_seconds(item, sample_rate=rate) is None


def test_decode_errors_chain_the_soundfile_error(audio_files):
    with pytest.raises(InvalidInputError) as info:
        _load(audio_files["corrupt"])
    assert isinstance(info.value.__cause__, sf.SoundFileError)


@pytest.mark.parametrize("rate", [None, 0, -8000, 8000.0, True], ids=str)
def test_arrays_need_a_positive_int_sample_rate(rate):
    with pytest.raises(InvalidParameterError, match="sample_rate"):
        _load(np.zeros(10), index=2, sample_rate=rate)


# ---------------------------------------------------------------- features


def _slaney_hz_to_mel(hz: float) -> float:
    return hz * 3 / 200 if hz < 1000 else 15 + np.log(hz / 1000) * 27 / np.log(6.4)


@pytest.mark.parametrize("tone_hz", [440.0, 1000.0, 3000.0])
def test_pure_tone_peaks_in_the_mel_band_centred_nearest_to_it(tone_hz):
    rate, n_mels = 16000, 80
    feats = log_mel_spectrogram(
        torch.from_numpy(_sine(tone_hz, rate)).float(), sample_rate=rate, n_mels=n_mels
    )
    centres_mel = np.linspace(0, _slaney_hz_to_mel(rate / 2), n_mels + 2)[1:-1]
    expected = int(np.abs(centres_mel - _slaney_hz_to_mel(tone_hz)).argmin())
    assert abs(int(feats.mean(dim=0).argmax()) - expected) <= 1


def test_log_mel_shapes_and_batch_consistency():
    wave = torch.randn(2, 16000)
    batch = log_mel_spectrogram(wave, sample_rate=16000, n_mels=40)
    assert batch.shape == (2, 101, 40)
    torch.testing.assert_close(batch[1], log_mel_spectrogram(wave[1], sample_rate=16000, n_mels=40))
    silence = log_mel_spectrogram(torch.zeros(100), sample_rate=16000)  # shorter than n_fft
    assert silence.shape == (1, 80)
    torch.testing.assert_close(silence, torch.full_like(silence, float(np.log(1e-10))))


def test_log_mel_rejects_bad_shapes_and_bands():
    with pytest.raises(InvalidInputError, match=r"got shape \(1, 2, 3\)"):
        log_mel_spectrogram(torch.zeros(1, 2, 3), sample_rate=16000)
    with pytest.raises(InvalidParameterError, match="f_max <= sample_rate / 2"):
        log_mel_spectrogram(torch.zeros(400), sample_rate=8000, f_max=6000.0)


def test_mel_filterbank_is_non_negative_covers_every_band_and_is_a_copy():
    fb = mel_filterbank(sample_rate=16000, n_fft=512, n_mels=40)
    assert fb.shape == (257, 40)
    assert torch.all(fb >= 0)
    assert torch.all(fb.sum(dim=0) > 0)
    fb.zero_()
    assert mel_filterbank(sample_rate=16000, n_fft=512, n_mels=40).sum() > 0


def test_spec_augment_is_deterministic_and_fills_masks_with_the_mean():
    feats = torch.randn(200, 80)
    a = spec_augment(feats, generator=torch.Generator().manual_seed(0))
    b = spec_augment(feats, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(a, b)
    changed = a != feats
    assert changed.any()
    assert torch.all(a[changed] == feats.mean())
    assert not torch.equal(a, feats) and feats.std() > 0.5  # input left untouched
    identity = spec_augment(feats, freq_masks=0, time_masks=0)
    torch.testing.assert_close(identity, feats)


def test_spec_augment_masks_whole_bands_within_the_width_limits():
    feats = torch.arange(100 * 40, dtype=torch.float32).reshape(100, 40) + 1e4
    out = spec_augment(feats, freq_masks=1, freq_width=10, time_masks=0,
                       generator=torch.Generator().manual_seed(3))  # fmt: skip
    masked_cols = (out != feats).all(dim=0)
    assert masked_cols.sum() <= 10
    assert torch.equal((out != feats).any(dim=0), masked_cols)  # masks span all frames


def test_spec_augment_validates_arguments():
    with pytest.raises(InvalidInputError, match="augment one utterance"):
        spec_augment(torch.zeros(2, 3, 4))
    with pytest.raises(InvalidParameterError, match="time_width_fraction must be in"):
        spec_augment(torch.zeros(5, 5), time_width_fraction=1.5)


# ---------------------------------------------------------------- dataset


def test_dataset_decodes_lazily_and_collates_padded_batches(audio_files, pcm):
    items = [audio_files["wav"], pcm[:1000], audio_files["flac"].read_bytes()]
    feature_fn = functools.partial(log_mel_features, sample_rate=RATE, n_mels=20)
    ds = AudioDataset(items, sample_rate=RATE, target_rate=RATE, targets=[[1, 2], [3], []],
                      feature_fn=feature_fn)  # fmt: skip
    batch = next(iter(DataLoader(ds, batch_size=3, collate_fn=AudioDataset.collate)))
    assert batch["x"].shape == (3, len(pcm) // 160 + 1, 20)
    assert batch["x_lengths"].tolist() == [26, 1000 // 160 + 1, 26]
    assert torch.all(batch["x"][1, 7:] == 0)  # padding
    assert batch["y"].tolist() == [[1, 2], [3, 0], [0, 0]]
    assert batch["y_lengths"].tolist() == [2, 1, 0]
    assert batch["y"].dtype == torch.long


def test_dataset_without_features_returns_waveforms(pcm):
    ds = AudioDataset([pcm, pcm[:10]], sample_rate=RATE, target_rate=RATE // 2)
    batch = AudioDataset.collate([ds[0], ds[1]])
    assert batch["x"].shape == (2, len(pcm) // 2)
    assert batch["x_lengths"].tolist() == [len(pcm) // 2, 5]
    assert "y" not in batch


def test_dataset_rejects_misaligned_targets(pcm):
    with pytest.raises(InvalidInputError, match="got 1 targets for 2 items"):
        AudioDataset([pcm, pcm], sample_rate=RATE, target_rate=RATE, targets=[[1]])


def test_worker_decode_error_surfaces_in_the_main_process(audio_files):
    items = [audio_files["wav"], audio_files["corrupt"]]
    ds = AudioDataset(items, sample_rate=None, target_rate=RATE,
                      feature_fn=functools.partial(log_mel_features, sample_rate=RATE))  # fmt: skip
    loader = DataLoader(ds, batch_size=1, num_workers=1, collate_fn=AudioDataset.collate)
    with pytest.raises(InvalidInputError, match=r"X\[1\] \(.*corrupt\.wav\) could not be decoded"):
        list(loader)


# ---------------------------------------------------------------- bundled samples


def test_bundled_fsdd_sample_feeds_the_dataset():
    paths, words = load_fsdd_sample()
    assert len(paths) == 100 and all(pathlib.Path(p).is_absolute() for p in paths)
    assert {w: words.count(w) for w in set(words)} == {w: 10 for w in set(words)}
    assert len(set(words)) == 10 and words[paths.index(next(p for p in paths if "/7_theo_" in p))] == "seven"
    ds = AudioDataset(paths[:4], sample_rate=None, target_rate=16000)
    assert all(ds[i]["x"].ndim == 1 and len(ds[i]["x"]) > 1000 for i in range(4))


def test_bundled_ljspeech_sample_is_resampled_from_22050():
    paths, texts = load_ljspeech_sample()
    assert texts == [
        "in being comparatively modern.",
        "has never been surpassed.",
        "to improve the letter in form.",
    ]
    assert sf.info(paths[0]).samplerate == 22050
    wave = _load(paths[0], target_rate=16000)
    assert len(wave) == pytest.approx(sf.info(paths[0]).frames * 16000 / 22050, abs=1)
