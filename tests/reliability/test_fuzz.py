"""Property-based fuzzing of fit and predict: well-formed output, or ValueError/TypeError.

Never another exception type, never a hang (each test has a timeout), never a
crash.  The number of examples comes from the hypothesis profile chosen in
``conftest.py``: small by default, large with ``SKBIG_HYPOTHESIS=full``
(``make test-all``).  Models are tiny so an example costs milliseconds.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from skbig import ImageClassifier, SpeechRecognizer, TextClassifier

ALLOWED = (ValueError, TypeError)
TIMEOUT = pytest.mark.timeout(300)

# Text: any Unicode (CJK, emoji, control characters, surrogates excluded as Python strs allow them),
# plus the wrong things users put in lists of texts.
unicode_text = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8"),
        st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),  # CJK ideographs
        st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF),  # emoji
        st.characters(max_codepoint=0x1F),  # control characters
    ),
    max_size=40,
)
text_item = st.one_of(
    unicode_text, unicode_text, st.none(), st.integers(), st.floats(), st.binary(max_size=5)
)
labels = st.sampled_from(["a", "b", "c"])

# Images: random shapes and dtypes, values anywhere (NaN, inf, negative included).
image_dtypes = st.sampled_from([np.uint8, np.int16, np.int64, np.float32, np.float64, np.bool_])
image_arrays = image_dtypes.flatmap(
    lambda dtype: hnp.arrays(dtype, hnp.array_shapes(min_dims=1, max_dims=5, min_side=0, max_side=6))
)

# Audio: lists of clips from 0 samples up, float or integer PCM, with or without bad values.
clip = st.one_of(
    hnp.arrays(np.float32, st.integers(0, 1200), elements=st.floats(-1, 1, width=32)),
    hnp.arrays(np.float32, st.integers(0, 50)),  # any float32, NaN and inf included
    hnp.arrays(np.int16, st.integers(0, 1200)),
    hnp.arrays(np.complex64, st.integers(1, 5)),
)


def _tiny_text() -> TextClassifier:
    return TextClassifier(max_epochs=1, random_state=0, backend_params={"embed_dim": 4, "max_length": 64})


def _tiny_image() -> ImageClassifier:
    return ImageClassifier(
        max_epochs=1,
        random_state=0,
        validation_fraction=0.0,
        backend_params={"width": 2, "depth": 1, "image_size": 8},
    )


def _tiny_speech() -> SpeechRecognizer:
    return SpeechRecognizer(
        max_epochs=1,
        random_state=0,
        validation_fraction=0.0,
        sample_rate=8000,
        backend_params={"hidden_size": 8, "num_layers": 1, "conv_channels": 2, "n_mels": 16},
    )


@pytest.fixture(scope="module")
def text_model():
    return _tiny_text().fit(["good day", "bad day", "good night", "bad night"] * 2, list("abab") * 2)


@pytest.fixture(scope="module")
def image_model():
    X = np.random.RandomState(0).randint(0, 256, size=(6, 5, 5, 3)).astype(np.uint8)
    return _tiny_image().fit(X, [0, 1, 2] * 2)


@pytest.fixture(scope="module")
def speech_model():
    rng = np.random.RandomState(0)
    return _tiny_speech().fit(
        [(rng.randn(800) * 0.1).astype(np.float32) for _ in range(4)], ["yes", "no"] * 2
    )


def _check_proba(model, X, proba) -> None:
    assert proba.shape == (len(X), len(model.classes_))
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)


# -- text --------------------------------------------------------------------------------------------
@TIMEOUT
@given(X=st.lists(text_item, max_size=6))
def test_text_predict(text_model, X):
    try:
        proba = text_model.predict_proba(X)
    except ALLOWED:
        return
    _check_proba(text_model, X, proba)


@TIMEOUT
@given(data=st.lists(st.tuples(text_item, labels), max_size=8))
def test_text_fit(data):
    X, y = [x for x, _ in data], [label for _, label in data]
    try:
        model = _tiny_text().fit(X, y)
    except ALLOWED:
        return
    predictions = model.predict(X)
    assert len(predictions) == len(X) and set(predictions) <= set(y)


# -- images ------------------------------------------------------------------------------------------
@TIMEOUT
@given(X=image_arrays)
def test_image_predict(image_model, X):
    try:
        proba = image_model.predict_proba(X)
    except ALLOWED:
        return
    _check_proba(image_model, X, proba)


@TIMEOUT
@given(X=image_arrays, seed=st.integers(0, 3))
def test_image_fit(X, seed):
    y = np.random.RandomState(seed).randint(0, 2, size=len(X)) if X.ndim else []
    try:
        model = _tiny_image().fit(X, y)
    except ALLOWED:
        return
    assert len(model.predict(X)) == len(X)


# -- speech ------------------------------------------------------------------------------------------
@TIMEOUT
@given(X=st.lists(clip, max_size=4))
def test_speech_predict(speech_model, X):
    try:
        out = speech_model.predict(X)
    except ALLOWED:
        return
    assert len(out) == len(X) and all(isinstance(s, str) for s in out)


@TIMEOUT
@given(data=st.lists(st.tuples(clip, st.sampled_from(["yes", "no", "", "日本"])), max_size=4))
def test_speech_fit(data):
    X, y = [x for x, _ in data], [t for _, t in data]
    try:
        model = _tiny_speech().fit(X, y)
    except ALLOWED:
        return
    out = model.predict(X)
    assert len(out) == len(X) and all(isinstance(s, str) for s in out)
