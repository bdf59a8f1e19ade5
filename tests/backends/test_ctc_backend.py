"""Tests for the built-in ``ctc`` speech backend: alphabet, features, data, network, decoding."""

from __future__ import annotations

import json
import math
import unicodedata
import warnings

import numpy as np
import pytest
import soundfile as sf
import torch

import skbig
from skbig.backends._ctc_decoding import ctc_prefix_log_prob
from skbig.backends.base import TaskSpec
from skbig.backends.ctc import (
    CTCBackend,
    CTCModule,
    Units,
    _warp_frequency,
    augment_log_mel,
    utterance_features,
)
from skbig.backends.registry import get_backend
from skbig.data.audio import load_audio
from skbig.engine.data import iterate_batches
from skbig.exceptions import InvalidInputError, InvalidParameterError
from skbig.testing import BackendConformance

TINY = {"hidden_size": 16, "num_layers": 1, "conv_channels": 4, "n_mels": 24}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def fsdd(fsdd) -> tuple[list[str], list[str]]:
    """One clip per digit of the shared sample: (paths, words)."""
    paths, words = fsdd
    return paths[::10], words[::10]


def _backend(**params) -> CTCBackend:
    return CTCBackend({**TINY, **params})


def _fitted(words: list[str], **params) -> tuple[CTCBackend, torch.nn.Module]:
    backend = _backend(**params)
    backend.fit_targets(words)
    return backend, backend.build_module(TaskSpec("speech-recognition", backend.output_size())).eval()


# ---------------------------------------------------------------- registry and parameters


def test_ctc_is_the_registered_speech_backend():
    assert get_backend("ctc", "speech-recognition") is CTCBackend
    row = next(b for b in skbig.list_backends("speech-recognition") if b.name == "ctc")
    assert (row.status, row.pretrained) == ("ok", False)


@pytest.mark.parametrize(
    ("params", "pattern"),
    [
        ({"encoder": "transformer"}, r"encoder.* must be one of \['gru', 'lstm', 'conformer'\]"),
        ({"units": "words"}, r"units.* must be one of \['bpe', 'char'\]"),
        ({"hidden_size": 0}, r"hidden_size.* must be an int >= 2, got hidden_size=0"),
        ({"dropout": 1.5}, r"dropout.* must be a number in \[0, 1\), got dropout=1.5"),
        ({"hop_ms": 0}, r"hop_ms.* must be > 0"),
        ({"encoder": "conformer", "hidden_size": 30}, r"multiple of 2 \* num_heads"),
        ({"hiden_size": 8}, r"no hyper-parameter.*did you mean 'hidden_size'"),
    ],
    ids=["encoder", "units", "hidden-size", "dropout", "hop", "conformer-width", "typo"],
)
def test_bad_hyperparameters_are_refused_when_the_backend_is_built(params, pattern):
    with pytest.raises(InvalidParameterError, match=pattern):
        CTCBackend(params)


def test_search_space_only_names_real_parameters():
    for key in CTCBackend.search_space():
        assert key == "lr" or key.removeprefix("backend_params__") in CTCBackend.defaults


# ---------------------------------------------------------------- alphabet


def test_alphabet_is_learned_from_any_script_and_round_trips_through_json():
    backend = _backend()
    backend.fit_targets(["turn  left", "你好 世界", "Ünïcode"])
    assert backend.alphabet[0] == " " and "你" in backend.alphabet and "Ü" in backend.alphabet
    assert backend.output_size() == len(backend.alphabet) + 1
    ids = backend.encode_targets(["你好", "left  turn"])
    assert all(0 not in seq for seq in ids)  # 0 is the blank
    state = json.loads(json.dumps(backend.get_state(), ensure_ascii=False))
    restored = _backend()
    restored.set_state(state)
    assert restored.alphabet == backend.alphabet
    assert restored.encode_targets(["你好", "left  turn"]) == ids


def test_unseen_characters_are_dropped_and_unicode_forms_agree():
    backend = _backend()
    backend.fit_targets(["café"])  # NFC: é is one code point
    decomposed = unicodedata.normalize("NFD", "café")
    assert backend.encode_targets([decomposed]) == backend.encode_targets(["café"])
    assert backend.encode_targets(["cafè!"]) == backend.encode_targets(["caf"])


def test_bpe_makes_frequent_words_single_tokens_and_spells_rare_ones():
    units = Units.learn(["seven"] * 30 + ["six"] * 30 + ["sixty"] * 3, max_merges=50, min_count=20)
    assert len(units.encode("seven")) == 1 and len(units.encode("six")) == 1
    assert units.decode(units.encode("sixty")) == "sixty"
    assert len(units.encode("sixty")) > 1  # 'ty' occurs 3 times, below min_count
    assert Units.learn(["seven"] * 30, max_merges=0, min_count=1).tokens == sorted(set("seven"))


@pytest.mark.parametrize("units", ["bpe", "char"])
def test_token_ids_round_trip_to_text_and_through_json(units):
    words = ["turn left", "turn right", "stop"] * 10
    backend = _backend(units=units, bpe_min_count=5)
    backend.fit_targets(words)
    ids = backend.encode_targets(words[:3])
    assert [backend.ids_to_text(x) for x in ids] == words[:3]
    assert (len(ids[2]) == 1) == (units == "bpe")
    restored = _backend(units=units)
    restored.set_state(json.loads(json.dumps(backend.get_state())))
    assert restored.encode_targets(words[:3]) == ids and restored.output_size() == backend.output_size()


def test_output_size_before_fit_targets_says_what_to_do():
    with pytest.raises(RuntimeError, match="fit_targets"):
        _backend().output_size()


# ---------------------------------------------------------------- features and data


@pytest.mark.parametrize("lifter", [0, 8], ids=["spectrum", "liftered"])
def test_features_are_normalised_per_utterance_and_ignore_loudness(fsdd, lifter):
    wave = load_audio(fsdd[0][3], index=0, sample_rate=None, target_rate=16000)
    kwargs = {"sample_rate": 16000, "n_fft": 400, "hop_length": 160, "n_mels": 24, "top_db": 60.0}
    log_mel = _backend(top_db=60.0).feature_fn()(wave)  # what the cache holds
    assert log_mel.shape == (len(wave) // 160 + 1, TINY["n_mels"])
    assert float(log_mel.max() - log_mel.min()) == pytest.approx(6 * math.log(10), rel=1e-5)  # 60 dB
    feats = utterance_features(wave, cepstral_lifter=lifter, **kwargs)
    torch.testing.assert_close(feats.mean(dim=0), torch.zeros(TINY["n_mels"]), atol=1e-4, rtol=0)
    assert float(feats.std(unbiased=False)) == pytest.approx(1.0, abs=1e-4)
    quieter = utterance_features(wave * 0.1, cepstral_lifter=lifter, **kwargs)
    torch.testing.assert_close(quieter, feats, atol=2e-3, rtol=0)


def test_reverberation_and_noise_fill_in_quiet_frames():
    feats = torch.full((40, 24), -20.0)
    feats[10:14] = 0.0  # a short loud burst in silence
    generator = torch.Generator().manual_seed(0)
    common = {"f_max": 8000.0, "frame_seconds": 0.01, "time_stretch": 0.0, "freq_warp": 0.0}
    outs = [augment_log_mel(feats, generator, reverb_time=0.3, noise_snr_db=0.0, **common) for _ in range(8)]
    reverberant = [o for o in outs if not torch.equal(o, feats)]
    assert reverberant and all(float(o[16].mean()) > -20.0 for o in reverberant)  # a decaying tail
    noisy = [
        augment_log_mel(feats, generator, reverb_time=0.0, noise_snr_db=20.0, **common) for _ in range(8)
    ]
    floors = [float(o[30].mean()) for o in noisy if not torch.equal(o, feats)]
    assert floors and all(-20.0 < f <= -20 * math.log(10) / 10 + 1e-4 for f in floors)


def test_arrays_are_resampled_from_the_input_rate(fsdd):
    wave, rate = sf.read(fsdd[0][0], dtype="float32")
    backend = _backend()
    backend.input_sample_rate = rate
    from_array = backend.make_data([wave], None).dataset[0]["x"]
    from_path = backend.make_data([fsdd[0][0]], None).dataset[0]["x"]
    torch.testing.assert_close(from_array, from_path)
    assert len(from_array) == math.ceil(len(wave) * 16000 / rate) // 160 + 1


def test_training_data_is_augmented_reproducibly_per_epoch_and_validation_data_is_not(fsdd):
    backend = _backend()
    backend.fit_targets(fsdd[1])
    targets = backend.encode_targets(fsdd[1])
    train = backend.make_data(fsdd[0], targets, train=True).dataset
    plain = backend.make_data(fsdd[0], targets, train=False).dataset
    first = train[2]["x"]
    assert not torch.equal(first, plain[2]["x"])
    torch.testing.assert_close(train[2]["x"], first)  # same seed, epoch and index
    train.set_epoch(1)
    assert not torch.equal(train[2]["x"], first)
    assert torch.equal(plain[2]["x"], plain[2]["x"]) and train[2]["y"].tolist() == targets[2]


@pytest.mark.parametrize(("cache_mb", "decodes"), [(1, 3), (0, 6)], ids=["cached", "no-cache"])
def test_features_are_cached_within_the_memory_bound(fsdd, monkeypatch, cache_mb, decodes):
    calls = []
    dataset = _backend(feature_cache_mb=cache_mb).make_data(fsdd[0][:3], None).dataset
    real = type(dataset.audio).__getitem__
    monkeypatch.setattr(type(dataset.audio), "__getitem__", lambda self, i: calls.append(i) or real(self, i))
    for _ in range(2):
        [dataset[i] for i in range(3)]
    assert len(calls) == decodes


def test_a_corrupt_file_read_in_a_worker_raises_an_error_naming_it(fsdd, corrupt_wav):
    data = _backend().make_data([fsdd[0][0], corrupt_wav], None)
    with pytest.raises(InvalidInputError, match=r"X\[1\] \(.*corrupt\.wav\) could not be decoded"):
        list(iterate_batches(data, 1, shuffle=False, num_workers=1))


# ---------------------------------------------------------------- network


@pytest.mark.parametrize("encoder", ["gru", "lstm", "conformer"])
def test_module_shapes_and_batch_invariance(fsdd, encoder):
    backend, module = _fitted(fsdd[1], encoder=encoder, num_heads=2)
    data = backend.make_data([fsdd[0][1], fsdd[0][7]], None)  # a short and a long clip
    batch = next(iterate_batches(data, 2, shuffle=False))
    with torch.inference_mode():
        log_probs, lengths = backend.forward(module, batch)
        alone, alone_len = backend.forward(module, {k: v[:1] for k, v in batch.items()})
    frames = batch["x_lengths"]
    expected = 2 * ((frames + 1) // 2 + 1).div(2, rounding_mode="floor")
    assert lengths.tolist() == expected.tolist()
    assert log_probs.shape == (2, int(expected.max()), backend.output_size())
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(log_probs.shape[:2]))
    n = int(alone_len[0])
    torch.testing.assert_close(log_probs[0, :n], alone[0, :n], atol=1e-4, rtol=1e-4)


def test_eval_mode_uses_the_running_average_of_the_weights():
    def make(decay):
        return CTCModule(
            n_mels=24, n_outputs=5, encoder="gru", conv_channels=4, hidden_size=8, num_layers=1,
            num_heads=1, conv_kernel=3, dropout=0.0, output_upsample=2, average_decay=decay,
        )  # fmt: skip

    module = make(0.9)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.5)
    x, lengths = torch.randn(2, 30, 24), torch.tensor([30, 12])
    for _ in range(4):
        module(x, lengths)[0].mean().backward()
        optimizer.step()
        optimizer.zero_grad()
    module.eval()
    averaged = make(0.0).eval()
    averaged.load_state_dict(
        {n: getattr(module.average, n.replace(".", "__")) for n, _ in module.named_parameters()}
    )
    reloaded = make(0.9).eval()
    reloaded.load_state_dict(module.state_dict())
    with torch.inference_mode():
        out = module(x, lengths)[0]
        torch.testing.assert_close(out, averaged(x, lengths)[0])
        torch.testing.assert_close(out, reloaded(x, lengths)[0])
        assert not torch.allclose(out, module._forward(x, lengths)[0])  # the raw weights differ
    assert int(module.average.steps) == 4


def test_vocal_tract_warp_moves_formants_and_is_the_identity_at_alpha_one():
    feats = torch.zeros(3, 40)
    feats[:, 20] = 1.0
    torch.testing.assert_close(_warp_frequency(feats, 1.0, 8000.0), feats)
    assert int(_warp_frequency(feats, 1.15, 8000.0)[0].argmax()) > 20
    assert int(_warp_frequency(feats, 0.85, 8000.0)[0].argmax()) < 20


def test_beam_search_is_never_less_probable_than_greedy(fsdd):
    backend, module = _fitted(fsdd[1])
    batch = next(iterate_batches(backend.make_data(fsdd[0], None), 10, shuffle=False))
    with torch.inference_mode():
        log_probs, lengths = backend.forward(module, batch)
        greedy = backend.decode_ids(module, batch, beam_size=1)
        beam = backend.decode_ids(module, batch, beam_size=6)
    for i, (g, b) in enumerate(zip(greedy, beam)):
        lp = log_probs[i, : lengths[i]].numpy()
        assert ctc_prefix_log_prob(lp, b) >= ctc_prefix_log_prob(lp, g) - 1e-9


def test_a_tiny_model_learns_to_spell_two_clips(fsdd):
    backend, module = _fitted(fsdd[1][:2], hidden_size=32, dropout=0.0)
    targets = backend.encode_targets(fsdd[1][:2])
    data = backend.make_data(fsdd[0][:2], targets)
    batch = next(iterate_batches(data, 2, shuffle=False))
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-2)
    module.train()
    losses = []
    for _ in range(300):
        loss = backend.loss(module, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    module.eval()
    with torch.inference_mode():
        assert backend.decode(module, batch) == fsdd[1][:2]
    assert losses[-1] < 0.1 * losses[0]


def test_clips_too_short_for_their_transcripts_are_warned_about(fsdd):
    # 0.05 s gives a handful of output frames; a 40-letter transcript has no CTC alignment,
    # so the loss would silently be 0 (zero_infinity) and the clip teach nothing.
    short = [np.zeros(800, dtype=np.float32) + 0.01 * np.sin(np.arange(800)) for _ in range(4)]
    words = ["one two three four five six seven eight"] * 4
    asr = skbig.SpeechRecognizer(max_epochs=1, sample_rate=16000, validation_fraction=0.0, random_state=0)
    with pytest.warns(UserWarning, match="fewer output frames than their transcripts need"):
        asr.fit(short, words)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # real clips with their own words: no warning
        skbig.SpeechRecognizer(max_epochs=1, validation_fraction=0.0, random_state=0).fit(
            fsdd[0][:8], fsdd[1][:8]
        )


# ---------------------------------------------------------------- conformance


class TestCTCConformance(BackendConformance):
    @pytest.fixture
    def backend_cls(self):
        return CTCBackend

    @pytest.fixture
    def estimator_params(self):
        return {
            "max_epochs": 2,
            "batch_size": 8,
            "random_state": 0,
            "validation_fraction": 0.0,
            "backend_params": TINY,
        }
