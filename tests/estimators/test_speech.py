"""SpeechRecognizer used the way scikit-learn users use estimators, on real spoken digits."""

from __future__ import annotations

import copy
import io
import json
import pickle
import unicodedata
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

import skbig
from skbig import SpeechRecognizer
from skbig.backends._ctc_decoding import ctc_prefix_log_prob
from skbig.engine.data import iterate_batches
from skbig.estimators.speech import normalize_transcript
from skbig.exceptions import InputTypeError, InvalidInputError, InvalidParameterError, NotFittedError
from skbig.metrics import cer, wer, wer_scorer

RATE = 8000  # the bundled FSDD clips
TINY = {"hidden_size": 24, "num_layers": 1, "conv_channels": 4, "n_mels": 24}
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
CHINESE = dict(zip(DIGITS, "零一二三四五六七八九"))


def tiny(**params) -> SpeechRecognizer:
    return SpeechRecognizer(
        **{"max_epochs": 3, "batch_size": 8, "random_state": 0, "backend_params": dict(TINY), **params}
    )


def fitted_copy(asr: SpeechRecognizer, **params) -> SpeechRecognizer:
    """The same fitted model with some parameters changed (they only matter at predict time)."""
    return copy.deepcopy(asr).set_params(**params)


def read_int16(paths) -> list[np.ndarray]:
    return [sf.read(p, dtype="int16")[0] for p in paths]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def train(fsdd) -> tuple[list[str], list[str]]:
    """Jackson's and nicolas's clips: (paths, words); theo's are kept as unseen ``clips``."""
    paths, words = fsdd
    keep = [i for i, p in enumerate(paths) if "_theo_" not in p]
    return [paths[i] for i in keep], [words[i] for i in keep]


@pytest.fixture(scope="module")
def clips(fsdd) -> list[str]:
    return [p for p in fsdd[0] if "_theo_" in p][::4]


@pytest.fixture(scope="module")
def fitted(train) -> SpeechRecognizer:
    return tiny().fit(*train)


# ---------------------------------------------------------------- fit / predict / score


def test_fit_learns_the_alphabet_and_a_history_and_predict_returns_strings(fitted, train, clips):
    assert fitted.alphabet_ == sorted(set("".join(train[1])))
    assert fitted.backend_ == "ctc" and 1 <= fitted.best_epoch_ <= 3
    assert [r["epoch"] for r in fitted.history_] == [1, 2, 3]
    assert all({"train_loss", "valid_loss", "valid_score"} <= set(r) for r in fitted.history_)
    predictions = fitted.predict(clips)
    assert isinstance(predictions, list) and len(predictions) == len(clips)
    assert all(isinstance(p, str) and set(p) <= set(fitted.alphabet_) for p in predictions)


def test_score_is_one_minus_wer(fitted, fsdd):
    paths, words = fsdd[0][::9], fsdd[1][::9]
    assert fitted.score(paths, words) == pytest.approx(1 - wer(words, fitted.predict(paths)))


def test_validation_score_is_one_minus_greedy_cer(fitted, train):
    paths, words = train[0][:12], train[1][:12]
    backend = fitted._backend
    data = backend.make_data(paths, backend.encode_targets(words))
    with torch.inference_mode():
        scores = fitted._evaluate(fitted.module_, data)
    assert scores["valid_score"] == pytest.approx(1 - cer(words, fitted.predict(paths)))
    assert scores["valid_loss"] > 0


def test_every_accepted_input_form_gives_the_same_predictions(fitted, clips, tmp_path):
    int16 = read_int16(clips)
    stereo_files = []
    for i, pcm in enumerate(int16):
        stereo_files.append(tmp_path / f"stereo{i}.flac")
        sf.write(stereo_files[-1], np.stack([pcm, pcm], axis=1), RATE, subtype="PCM_16")
    forms = {
        "str": list(clips),
        "pathlib": [Path(p) for p in clips],
        "bytes": [Path(p).read_bytes() for p in clips],
        "int16": int16,
        "float32": [x / np.float32(32768) for x in int16],
        "stereo (n, 2)": [np.stack([x, x], axis=1) for x in int16],
        "stereo (2, n)": [np.stack([x, x]) for x in int16],
        "stereo flac": stereo_files,
        "torch": [torch.from_numpy(x) for x in int16],
        "mixed": [clips[0], int16[1], Path(clips[2]).read_bytes(), *clips[3:]],
    }
    asr = fitted_copy(fitted, sample_rate=RATE)
    expected = fitted.predict(clips)
    for name, X in forms.items():
        assert asr.predict(X) == expected, name
    shortest = min(len(x) for x in int16)
    equal_length = np.stack([x[:shortest] for x in int16])  # a 2-D array: one clip per row
    assert asr.predict(equal_length) == asr.predict(list(equal_length))


def test_arrays_at_another_rate_are_resampled(fitted, clips):
    from skbig.data.audio import resample

    at_16k = [resample(x / np.float32(32768), RATE, 16000) for x in read_int16(clips)]
    assert len(fitted_copy(fitted, sample_rate=16000).predict(at_16k)) == len(clips)


def test_beam_search_never_scores_below_greedy(fitted, clips):
    backend = fitted._backend
    batch = next(iterate_batches(backend.make_data(clips, None), len(clips), shuffle=False))
    with torch.inference_mode():
        log_probs, lengths = backend.forward(fitted.module_, batch)
        greedy = backend.decode_ids(fitted.module_, batch, beam_size=1)
        beamed = backend.decode_ids(fitted.module_, batch, beam_size=8)
    assert [backend.ids_to_text(ids) for ids in beamed] == fitted_copy(fitted, beam_size=8).predict(clips)
    assert [backend.ids_to_text(ids) for ids in greedy] == fitted.predict(clips)
    for i, (g, b) in enumerate(zip(greedy, beamed)):
        lp = log_probs[i, : lengths[i]].numpy()
        assert ctc_prefix_log_prob(lp, b) >= ctc_prefix_log_prob(lp, g) - 1e-9


def test_chinese_transcripts_train_and_predict_strings_and_survive_save(train, clips, tmp_path):
    words = ["数字" + CHINESE[w] for w in train[1]]
    asr = tiny(max_epochs=2).fit(train[0], words)
    assert {"数", "字", "五"} <= set(asr.alphabet_)
    predictions = asr.predict(clips)
    assert all(isinstance(p, str) and set(p) <= set(asr.alphabet_) | {" "} for p in predictions)
    assert skbig.load(asr.save(tmp_path / "zh.skbig")).predict(clips) == predictions


def test_normalize_text_lowercases_and_strips_punctuation(train, clips):
    shouted = [w.upper() + "!" for w in train[1]]
    asr = tiny(max_epochs=1, normalize_text=True).fit(train[0], shouted)
    assert asr.alphabet_ == sorted(set("".join(train[1])))
    words = [f"{w.title()}." for w in train[1][:4]]
    assert asr.score(train[0][:4], words) == pytest.approx(1 - wer(train[1][:4], asr.predict(train[0][:4])))
    assert normalize_transcript("Don't STOP, ¡Señor! 你好。") == "dont stop señor 你好"


def test_warm_start_keeps_the_alphabet_and_refuses_new_characters(train):
    asr = tiny(max_epochs=1, warm_start=True).fit(train[0][::2], train[1][::2])  # every digit
    alphabet = asr.alphabet_
    asr.fit(train[0][1::2], train[1][1::2])
    assert asr.alphabet_ == alphabet and len(asr.history_) == 1
    with pytest.raises(InvalidParameterError, match=r"new characters \['X'\]"):
        asr.fit(train[0][:2], ["zerX", "one"])
    # The first fit's single words had no space: a two-word transcript cannot be learned either
    # (the space would be dropped, teaching "zero one" as "zeroone").
    with pytest.raises(InvalidParameterError, match=r"new characters \[' '\]"):
        asr.fit(train[0][:2], ["zero one", "one"])


# ---------------------------------------------------------------- scikit-learn integration


def test_params_round_trip_through_get_set_params_and_clone(fitted):
    params = fitted.get_params(deep=True)
    assert params["backend"] == "ctc" and params["beam_size"] == 1 and params["sample_rate"] is None
    assert params["backend_params__hidden_size"] == 24 and params["backend_params__encoder"] == "gru"
    copy = clone(fitted).set_params(backend_params__encoder="lstm", beam_size=4)
    assert copy.backend_params["encoder"] == "lstm" and copy.beam_size == 4
    assert not hasattr(copy, "module_") and fitted.backend_params == TINY


def test_tags_say_x_is_not_a_2d_array():
    tags = SpeechRecognizer().__sklearn_tags__()
    assert tags.estimator_type is None and not tags.input_tags.two_d_array
    assert tags.target_tags.required and tags.requires_fit


def test_pickle_and_save_load_give_identical_predictions(fitted, clips, tmp_path):
    expected = fitted.predict(clips)
    assert pickle.loads(pickle.dumps(fitted)).predict(clips) == expected
    path = fitted.save(tmp_path / "digits.skbig")
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("skbig.json"))
    assert config["backend_state"]["alphabet"] == fitted.alphabet_
    loaded = skbig.load(path)
    assert type(loaded) is SpeechRecognizer and loaded.alphabet_ == fitted.alphabet_
    assert loaded.predict(clips) == expected


def test_pipeline_from_paths_to_arrays_matches_fitting_on_paths(fitted, train, clips):
    pipe = make_pipeline(FunctionTransformer(read_int16), tiny(sample_rate=RATE)).fit(*train)
    assert pipe.predict(clips) == fitted.predict(clips)  # same seed, same waveforms, same model
    assert pipe.score(clips[:3], ["zero"] * 3) == fitted.score(clips[:3], ["zero"] * 3)


def test_grid_search_with_the_wer_scorer(train, clips):
    search = GridSearchCV(
        tiny(max_epochs=1), {"backend_params__hidden_size": [8, 16]}, cv=2, scoring=wer_scorer
    ).fit(*train)
    assert search.best_params_["backend_params__hidden_size"] in (8, 16)
    assert all(s <= 0 for s in search.cv_results_["mean_test_score"])
    best = tiny(
        max_epochs=1,
        backend_params={**TINY, **{"hidden_size": search.best_params_["backend_params__hidden_size"]}},
    ).fit(*train)
    assert search.predict(clips) == search.best_estimator_.predict(clips) == best.predict(clips)


def test_wer_scorer_reads_decomposed_references_like_score(fsdd):
    # The model writes NFC; a reference typed in NFD ("e" + combining accent) is the same text,
    # so the scorer GridSearchCV uses must agree with score() on it.
    X = fsdd[0][::10]
    y = ["\u00e9t\u00e9"] * len(X)  # every prediction is made of "é" and "t"
    asr = tiny(max_epochs=1, validation_fraction=0.0).fit(X, y)
    predicted = asr.predict(X)
    decomposed = [unicodedata.normalize("NFD", text) for text in predicted]
    assert decomposed != predicted  # some prediction has an accent: the case under test
    assert wer_scorer(asr, X, decomposed) == -wer(predicted, predicted) == asr.score(X, decomposed) - 1


def test_predict_from_several_threads_matches_sequential_calls(fitted, clips):
    # Eval mode swaps the averaged weights into the shared module: threads must take turns.
    from concurrent.futures import ThreadPoolExecutor

    expected = fitted.predict(clips)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: fitted.predict(clips), range(12)))
    assert all(result == expected for result in results)


def test_predict_does_not_disturb_the_global_torch_rng(fitted, clips):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    fitted.predict(clips)  # file clips: a DataLoader, which seeds itself from a generator
    assert torch.equal(torch.rand(3), expected)


# ---------------------------------------------------------------- errors


@pytest.fixture(scope="module")
def files(tmp_path_factory, fsdd, corrupt_wav) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("speech")
    missing = str(folder / "nope.wav")
    return {"good": fsdd[0][0], "corrupt": corrupt_wav, "missing": missing, "dir": str(folder)}


WAVE = np.zeros(800, dtype=np.float32)


@pytest.mark.parametrize(
    ("X", "y", "params", "exc", "pattern"),
    [
        (["good", "good"], ["one", ""], {}, InvalidInputError, r"y\[1\] is an empty transcript"),
        (["good", "good"], ["one", "  "], {}, InvalidInputError, r"y\[1\] is an empty transcript"),
        (["good", "good"], ["one", "?!"], {"normalize_text": True}, InvalidInputError,
         r"y\[1\] is an empty transcript after normalize_text"),
        (["good", "good"], ["one"], {}, InvalidInputError,
         r"same length, got 2 clips in X and 1 transcripts"),
        (["good", "good"], ["one", 5], {}, InputTypeError, r"y\[1\] must be a str, got int"),
        (["good", "good"], None, {}, InvalidInputError, r"y is required"),
        (["good", np.zeros(0)], ["a", "b"], {"sample_rate": RATE}, InvalidInputError,
         r"X\[1\] has no samples"),
        (["good", np.array([0.1, np.nan])], ["a", "b"], {"sample_rate": RATE}, InvalidInputError,
         r"X\[1\] contains NaN or inf"),
        (["good", np.array([0.1, np.inf])], ["a", "b"], {"sample_rate": RATE}, InvalidInputError,
         r"X\[1\] contains NaN or inf"),
        (["good", np.zeros((2, 3, 400))], ["a", "b"], {"sample_rate": RATE}, InvalidInputError,
         r"X\[1\] must be a 1-D waveform or a 2-D .* got shape \(2, 3, 400\)"),
        (["good", np.zeros((400, 300))], ["a", "b"], {"sample_rate": RATE}, InvalidInputError,
         r"X\[1\] has shape \(400, 300\)"),
        (["good", np.zeros(4, dtype=complex)], ["a", "b"], {"sample_rate": RATE}, InputTypeError,
         r"X\[1\] has dtype complex128"),
        (["good", np.array([0, 900, -900])], ["a", "b"], {"sample_rate": RATE}, InputTypeError,
         r"X\[1\] has dtype int64, which is no PCM format"),
        (["good", np.array([0, 900, -900], dtype=np.int32)], ["a", "b"], {"sample_rate": RATE},
         InvalidInputError, r"X\[1\] is int32 PCM whose loudest sample is 900"),
        (["good", np.array([0.0, 900.0, -900.0], dtype=np.float32)], ["a", "b"], {"sample_rate": RATE},
         InvalidInputError, r"X\[1\] has float samples up to 900; .* unscaled PCM"),
        (["good", WAVE], ["a", "b"], {}, InvalidParameterError,
         r"X\[1\] is a waveform array, so sample_rate is required"),
        (["good", WAVE], ["a", "b"], {"sample_rate": 0}, InvalidParameterError,
         r"sample_rate must be a positive int in Hz or None, got sample_rate=0"),
        (["good", WAVE], ["a", "b"], {"sample_rate": -8000}, InvalidParameterError, r"sample_rate=-8000"),
        (["good", WAVE], ["a", "b"], {"sample_rate": 8000.0}, InvalidParameterError, r"sample_rate=8000.0"),
        (["good", "missing"], ["a", "b"], {}, InvalidInputError, r"X\[1\] \(.*nope\.wav\) does not exist"),
        (["good", "dir"], ["a", "b"], {}, InvalidInputError, r"X\[1\] \(.*\) is a directory"),
        (["good", b""], ["a", "b"], {}, InvalidInputError, r"X\[1\] is empty bytes"),
        (["good", [0.1, 0.2]], ["a", "b"], {}, InputTypeError, r"X\[1\] has type list; pass a 1-D"),
        ("good", ["a"], {}, InputTypeError, r"X must be a sequence of clips, got a single str"),
        (WAVE, ["a"], {"sample_rate": RATE}, InputTypeError, r"X is a single 1-D waveform"),
        ([], [], {}, InvalidInputError, r"X is empty"),
        (["good"], ["a"], {"beam_size": 0}, InvalidParameterError, r"beam_size must be an int >= 1"),
    ],
    ids=[
        "empty-transcript", "blank-transcript", "empty-after-normalize", "length-mismatch", "non-str-y",
        "no-y", "zero-length", "nan", "inf", "3d-array", "square-2d", "complex", "int64", "int32-16-bit",
        "float-pcm", "no-sample-rate", "zero-rate", "negative-rate", "float-rate", "missing-path",
        "directory", "empty-bytes", "list", "lone-path", "lone-waveform", "empty-X", "beam-size",
    ],
)  # fmt: skip
def test_bad_inputs_fail_before_training_naming_the_item(files, X, y, params, exc, pattern):
    if isinstance(X, list):
        X = [files.get(x, x) if isinstance(x, str) else x for x in X]
    elif isinstance(X, str):
        X = files[X]
    with pytest.raises(exc, match=pattern):
        tiny(**params).fit(X, y)


def test_a_corrupt_file_read_in_a_dataloader_worker_names_its_index_and_path(fitted, files, clips):
    asr = fitted_copy(fitted, num_workers=1)
    with pytest.raises(InvalidInputError, match=r"X\[2\] \(.*corrupt\.wav\) could not be decoded as audio"):
        asr.predict([clips[0], clips[1], files["corrupt"]])


def test_predict_before_fit_and_bad_beam_size_at_predict(fitted, clips):
    with pytest.raises(NotFittedError, match="not fitted yet"):
        SpeechRecognizer().predict(clips)
    asr = fitted_copy(fitted, beam_size=-1)
    with pytest.raises(InvalidParameterError, match="beam_size=-1"):
        asr.predict(clips)


def test_item_errors_name_bytes_that_do_not_decode(fitted):
    with pytest.raises(InvalidInputError, match=r"X\[0\] could not be decoded"):
        fitted.predict([io.BytesIO(b"junk").getvalue()])


def test_schedule_left_to_the_backend_falls_back_to_onecycle_for_speech():
    from skbig.backends.registry import get_backend

    asr = SpeechRecognizer()
    assert asr.get_params()["lr_schedule"] is None
    backend = get_backend("ctc", "speech-recognition")()
    assert asr._setting("lr_schedule", backend) == "onecycle"  # not the classifiers' "constant"
    assert asr._setting("validation_fraction", backend) == 0.1
    assert SpeechRecognizer(lr_schedule="cosine")._setting("lr_schedule", backend) == "cosine"
