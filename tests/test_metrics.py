"""Tests for skbig.metrics: edit distance, corpus WER/CER and the sklearn scorers."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import BaseEstimator
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from skbig.exceptions import InputTypeError, InvalidInputError, InvalidParameterError
from skbig.metrics import cer, cer_scorer, edit_distance, wer, wer_scorer


@pytest.mark.parametrize(
    ("ref", "hyp", "expected"),
    [
        ("kitten", "sitting", 3),
        ("", "abc", 3),
        ("abc", "", 3),
        ("", "", 0),
        ("flaw", "lawn", 2),
        (["a", "b", "c"], ["a", "c"], 1),
        ((1, 2, 3), (3, 2, 1), 2),
    ],
    ids=["kitten", "all-insert", "all-delete", "empty", "flaw-lawn", "word-delete", "ids"],
)
def test_edit_distance_hand_cases(ref, hyp, expected):
    assert edit_distance(ref, hyp) == expected


def test_edit_distance_is_symmetric_on_random_strings():
    rng = np.random.default_rng(0)
    for _ in range(50):
        a = "".join(rng.choice(list("abc"), rng.integers(0, 8)))
        b = "".join(rng.choice(list("abc"), rng.integers(0, 8)))
        assert edit_distance(a, b) == edit_distance(b, a)
        assert abs(len(a) - len(b)) <= edit_distance(a, b) <= max(len(a), len(b))


def test_wer_is_corpus_level_not_mean_of_utterances():
    # utterance 1: 1 insertion over 3 words; utterance 2: 1 substitution over 1 word.
    # corpus WER = 2 / 4 = 0.5 (the mean of per-utterance rates would be 0.667).
    assert wer(["the cat sat", "hello"], ["the cat sat down", "yellow"]) == 0.5


def test_wer_hand_cases():
    assert wer("a b c d", "a x c") == pytest.approx(2 / 4)  # 1 sub + 1 del
    assert wer("one two", "one two") == 0.0
    assert wer("one", "two three four") == 3.0  # insertions push WER above 1
    assert wer("  spaced   out ", "spaced out") == 0.0  # whitespace split


def test_cer_hand_cases():
    assert cer("abcd", "abxd") == 0.25
    assert cer(["ab", "cd"], ["ab", "c"]) == 0.25
    assert cer("a b", "ab") == pytest.approx(1 / 3)  # the space is a character


def test_empty_references_rule():
    assert wer(["", ""], ["", ""]) == 0.0
    assert wer(["", ""], ["", "oops"]) == 1.0
    assert cer([""], ["x"]) == 1.0


def test_accepts_numpy_string_arrays():
    assert wer(np.array(["a b", "c"]), np.array(["a b", "d"])) == pytest.approx(1 / 3)


@pytest.mark.parametrize("metric", [wer, cer], ids=["wer", "cer"])
def test_length_mismatch_raises_value_error(metric):
    with pytest.raises(InvalidInputError, match="same length, got 2 references and 1 pred"):
        metric(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="empty"):
        metric([], [])


def test_type_errors_name_the_position():
    with pytest.raises(InputTypeError, match=r"predictions\[1\] must be a str, got int"):
        wer(["a", "b"], ["a", 3])
    with pytest.raises(InputTypeError, match="both be strings or both be sequences"):
        wer("a b", ["a b"])


class _EchoRecognizer(BaseEstimator):
    """Reads the transcript hidden in each ``"id|text"`` input; garbles it unless ``exact``."""

    def __init__(self, *, exact: bool = False):
        self.exact = exact

    def fit(self, X, y):
        self.n_seen_ = len(X)
        return self

    def predict(self, X):
        return [x.split("|")[1] if self.exact else "garbled" for x in X]


def test_scorers_work_in_grid_search_with_list_predictions():
    y = ["one two" if i % 2 else "three" for i in range(12)]
    X = [f"{i}|{text}" for i, text in enumerate(y)]
    search = GridSearchCV(_EchoRecognizer(), {"exact": [False, True]}, scoring=wer_scorer, cv=3)
    search.fit(X, y)
    assert search.best_params_ == {"exact": True}
    assert search.best_score_ == 0.0  # scorer returns -WER
    model = _EchoRecognizer(exact=False).fit(X, y)
    assert wer_scorer(model, X, y) == pytest.approx(-wer(y, model.predict(X)))
    assert cer_scorer(model, X, y) == pytest.approx(-cer(y, model.predict(X)))
    assert cer_scorer(model, X, y) < 0


class _NormalizingEcho(_EchoRecognizer):
    """Writes what a ``normalize_text=True`` model writes: lowercase, no punctuation."""

    normalize_text = True

    def predict(self, X):
        return [x.split("|")[1].lower().rstrip(".") for x in X]


def test_scorers_normalise_references_like_a_normalize_text_model():
    # Otherwise GridSearchCV ranks models trained on written transcripts by case and full stops.
    y = ["Turn left.", "Stop."] * 3
    X = [f"{i}|{text}" for i, text in enumerate(y)]
    model = _NormalizingEcho(exact=True).fit(X, y)
    assert wer_scorer(model, X, y) == 0.0 and cer_scorer(model, X, y) == 0.0
    assert wer_scorer(make_pipeline(FunctionTransformer(), model), X, y) == 0.0
    assert wer_scorer(_EchoRecognizer(exact=True).fit(X, y), X, [t.lower() for t in y]) < 0
    with pytest.raises(InvalidParameterError, match="sample_weight"):
        wer_scorer(model, X, y, sample_weight=[1.0] * len(y))
