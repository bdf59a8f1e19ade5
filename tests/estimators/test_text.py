"""TextClassifier used the way scikit-learn users use estimators."""

from __future__ import annotations

import os
import pickle

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.validation import check_is_fitted

import skbig
from skbig import TextClassifier
from skbig.exceptions import (
    BackendNotFoundError,
    InvalidParameterError,
    NotFittedError,
    PersistenceError,
    SkbigError,
)

FAST = {"max_epochs": 4, "random_state": 0}


@pytest.fixture(scope="module")
def fitted(small_sms):
    X, y = small_sms
    return TextClassifier(**FAST).fit(X, y)


# -- the scikit-learn contract ---------------------------------------------------------
def test_init_only_stores_parameters():
    clf = TextClassifier(lr=0.5, backend_params={"embed_dim": 8})
    assert clf.lr == 0.5 and clf.backend_params == {"embed_dim": 8}
    assert not hasattr(clf, "module_")


def test_clone_gives_unfitted_copy_with_same_params(fitted):
    copy = clone(fitted)
    assert not hasattr(copy, "module_") and not hasattr(copy, "classes_")
    assert copy.get_params(deep=False) == fitted.get_params(deep=False)


def test_get_set_params_round_trip_including_backend_hyperparameters():
    clf = TextClassifier()
    params = clf.get_params(deep=True)
    assert params["backend_params__embed_dim"] == 64  # the fasttext default is visible
    clf.set_params(lr=0.01, backend_params__embed_dim=32, backend_params__dropout=0.0)
    assert clf.lr == 0.01 and clf.backend_params == {"embed_dim": 32, "dropout": 0.0}
    assert clf.get_params()["backend_params__embed_dim"] == 32
    other = TextClassifier().set_params(**clf.get_params(deep=False))
    assert other.get_params(deep=True) == clf.get_params(deep=True)


def test_set_params_applies_a_whole_backend_params_before_its_nested_keys():
    # As a Pipeline applies "step" before "step__param", whatever order they come in.
    clf = TextClassifier().set_params(backend_params__dropout=0.0, backend_params={"embed_dim": 8})
    assert clf.backend_params == {"embed_dim": 8, "dropout": 0.0}


def test_set_params_does_not_mutate_a_shared_dict():
    shared = {"embed_dim": 16}
    clf = TextClassifier(backend_params=shared)
    clf.set_params(backend_params__dropout=0.1)
    assert shared == {"embed_dim": 16}


def test_backend_hyperparameter_reaches_the_module(small_sms):
    X, y = small_sms
    clf = TextClassifier(max_epochs=1, backend_params={"embed_dim": 12}).fit(X, y)
    assert clf.module_.embedding.weight.shape[1] == 12


def test_gridsearch_over_backend_hyperparameter_in_parallel(small_sms):
    X, y = small_sms
    grid = GridSearchCV(
        TextClassifier(max_epochs=2, random_state=0),
        {"backend_params__embed_dim": [8, 16]},
        cv=2,
        n_jobs=2,
    ).fit(X, y)
    assert grid.best_params_["backend_params__embed_dim"] in (8, 16)
    assert (
        grid.best_estimator_.module_.embedding.weight.shape[1]
        == grid.best_params_["backend_params__embed_dim"]
    )
    assert grid.best_score_ > 0.85


def _clean(texts):
    return [t.lower().replace("!", " ") for t in texts]


def test_pipeline_with_text_cleaning_step(small_sms):
    X, y = small_sms
    pipe = make_pipeline(FunctionTransformer(_clean), TextClassifier(**FAST)).fit(X, y)
    assert pipe.score(X, y) > 0.9
    assert list(pipe.predict(["WIN A FREE PRIZE!!! call now"])) == ["spam"]


def test_cross_val_score(small_sms):
    X, y = small_sms
    scores = cross_val_score(TextClassifier(max_epochs=3, random_state=0), X, y, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.85


def test_pickle_and_joblib_round_trip(fitted, small_sms, tmp_path):
    X, _ = small_sms
    expected = fitted.predict_proba(X)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(fitted)).predict_proba(X), expected)
    joblib.dump(fitted, tmp_path / "model.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "model.joblib").predict_proba(X), expected)
    assert hasattr(fitted, "module_")  # pickling did not strip the live estimator


def test_save_and_load_without_pickle(fitted, small_sms, tmp_path):
    X, _ = small_sms
    path = fitted.save(tmp_path / "sms.skbig")
    mask = os.umask(0o022)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask  # an ordinary file, not mkstemp's 0600
    with pytest.raises(PersistenceError, match="is a directory"):
        fitted.save(tmp_path)
    loaded = skbig.load(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))
    assert loaded.get_params(deep=False) == {**fitted.get_params(deep=False), "callbacks": None}
    np.testing.assert_array_equal(loaded.classes_, fitted.classes_)


def test_outputs_are_well_formed(fitted, small_sms):
    X, y = small_sms
    proba = fitted.predict_proba(X[:7])
    assert proba.shape == (7, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(np.exp(fitted.predict_log_proba(X[:7])), proba)
    assert set(fitted.predict(X)) <= {"ham", "spam"}
    assert fitted.score(X, y) > 0.9
    assert list(fitted.classes_) == ["ham", "spam"]


def test_history_records_every_epoch(fitted):
    assert len(fitted.history_) >= 1
    for epoch, record in enumerate(fitted.history_, start=1):
        assert record["epoch"] == epoch
        assert {"train_loss", "valid_loss", "valid_score", "lr", "seconds"} <= set(record)
    assert 1 <= fitted.best_epoch_ <= len(fitted.history_)


def test_accepts_arrays_series_and_any_hashable_labels(small_sms):
    X, y = small_sms
    labels = np.array([1 if v == "spam" else 0 for v in y])
    clf = TextClassifier(max_epochs=2, random_state=0).fit(pd.Series(X), labels)
    assert clf.predict(np.array(X[:3], dtype=object)).dtype == labels.dtype
    clf2 = TextClassifier(max_epochs=2, random_state=0).fit(X, [(v,) and v == "spam" for v in y])
    assert set(clf2.classes_.tolist()) == {False, True}


def test_unseen_tokens_at_predict_time(fitted):
    out = fitted.predict(["zzqx wvvk ppqj", "", "😀😀 🎉"])
    assert len(out) == 3


@pytest.mark.parametrize("backend", ["fasttext", "lstm"])
def test_cjk_text_trains_and_predicts(backend):
    pos = [
        "这部电影非常好看",
        "我很喜欢这个故事",
        "演员的表演很精彩",
        "今日はとても楽しかった",
        "素晴らしい映画でした",
    ]
    neg = ["这部电影太无聊了", "剧情很糟糕", "我不喜欢这个结局", "とてもつまらない映画", "最悪の一日でした"]
    X = (pos + neg) * 6
    y = ["pos"] * 5 + ["neg"] * 5
    y = y * 6
    clf = TextClassifier(backend=backend, max_epochs=15, validation_fraction=0.0, random_state=0).fit(X, y)
    assert clf.score(X, y) == 1.0
    assert list(clf.predict(["电影非常好看", "剧情太无聊"])) == ["pos", "neg"]


def test_class_weight_balanced_upweights_rare_class(small_sms):
    X, y = small_sms
    clf = TextClassifier(max_epochs=1, class_weight="balanced", random_state=0).fit(X, y)
    weights = clf._class_weight([0] * 9 + [1])
    assert weights[1] > weights[0]


def test_warm_start_continues_training(small_sms):
    X, y = small_sms
    clf = TextClassifier(max_epochs=1, warm_start=True, validation_fraction=0.0, random_state=0).fit(X, y)
    first_module = clf.module_
    clf.fit(X, y)
    assert clf.module_ is first_module  # continued, not rebuilt


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"backend": "lstm"}, "backend is now 'lstm'"),
        (
            {"backend_params__embed_dim": 8},
            r"built with backend_params \{'embed_dim': 64\}; changing \['embed_dim'\]",
        ),
    ],
)
def test_warm_start_refuses_settings_it_would_ignore(small_sms, change, fragment):
    # The continued module keeps its architecture and backend: a silent no-op would mislead.
    X, y = small_sms
    clf = TextClassifier(backend="fasttext", max_epochs=1, warm_start=True, validation_fraction=0.0)
    clf.fit(X, y).set_params(**change)
    with pytest.raises(InvalidParameterError, match=fragment):
        clf.fit(X, y)
    clf.set_params(warm_start=False).fit(X, y)  # the way out the message names


def test_numpy_scalar_parameters_from_a_grid_save_and_reload(small_sms, tmp_path):
    # GridSearchCV over np.arange(...) hands numpy scalars to the best estimator.
    X, y = small_sms
    clf = TextClassifier(
        max_epochs=np.int64(1),
        lr=np.float64(0.05),
        unfreeze_at=np.int64(0),
        freeze=["embedding.*"],
        class_weight={"ham": 1.0, "spam": np.float64(2.0)},
        backend_params={"embed_dim": np.int64(16)},
        validation_fraction=0.0,
        random_state=0,
    ).fit(X, y)
    loaded = skbig.load(clf.save(tmp_path / "grid.skbig"))
    assert loaded.max_epochs == 1 and type(loaded.max_epochs) is int
    assert loaded.backend_params == {"embed_dim": 16} and loaded.class_weight == {"ham": 1.0, "spam": 2.0}
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def test_dict_parameters_with_non_string_keys_survive_save(tmp_path):
    # JSON objects have string keys only; class_weight={0: ...} must come back with int keys.
    X, y = ["good", "bad", "fine", "awful"] * 5, [1, 0, 1, 0] * 5
    clf = TextClassifier(max_epochs=1, class_weight={0: 1.0, 1: 3.0}, validation_fraction=0.0).fit(X, y)
    loaded = skbig.load(clf.save(tmp_path / "weights.skbig"))
    assert loaded.class_weight == {0: 1.0, 1: 3.0}
    loaded.fit(X, y)  # the reloaded class weights still name the classes


def test_a_fit_that_fails_before_training_leaves_the_fitted_model_as_it_was(small_sms):
    # classes_ must keep describing module_: a half-updated estimator would predict wrong labels.
    X, y = small_sms
    clf = TextClassifier(max_epochs=1, validation_fraction=0.0, random_state=0).fit(X, y)
    before = clf.predict_proba(X[:20])
    clf.set_params(freeze=["no_such_layer.*"])
    with pytest.raises(InvalidParameterError, match="match no parameter"):
        clf.fit([*X, "a third kind"], [*y, "other"])
    assert list(clf.classes_) == sorted(set(y))
    np.testing.assert_array_equal(clf.predict_proba(X[:20]), before)
    fresh = TextClassifier(max_epochs=1, freeze=["no_such_layer.*"])
    with pytest.raises(InvalidParameterError):
        fresh.fit(X, y)
    with pytest.raises(SklearnNotFittedError):
        check_is_fitted(fresh)  # no classes_ left behind by the failed first fit


def test_second_fit_starts_over(small_sms):
    X, y = small_sms
    clf = TextClassifier(max_epochs=1, validation_fraction=0.0, random_state=0).fit(X, y)
    first_module = clf.module_
    clf.fit(X, y)
    assert clf.module_ is not first_module


def test_verbose_shows_progress_and_quiet_is_silent(small_sms, capsys):
    X, y = small_sms
    TextClassifier(max_epochs=1, random_state=0).fit(X, y)
    assert capsys.readouterr().err == ""
    TextClassifier(max_epochs=1, verbose=1, random_state=0, lr=3e-5, lr_schedule="constant").fit(X, y)
    shown = capsys.readouterr().err
    assert "fit" in shown and "lr=3e-05" in shown  # a fine-tuning lr is not rounded to 0.0000


# -- bad input ------------------------------------------------------------------------------
GOOD_X = ["a b", "c d", "e f", "g h"]
GOOD_Y = [0, 1, 0, 1]


@pytest.mark.parametrize(
    ("X", "y", "error", "fragment"),
    [
        ([], [], ValueError, "X is empty"),
        (GOOD_X, [0, 1], ValueError, "different lengths"),
        (["a", None, "b", "c"], GOOD_Y, ValueError, "X[1]"),
        (["a", float("nan"), "b", "c"], GOOD_Y, ValueError, "X[1]"),
        (pd.Series(["a", None, "b", "c"], dtype="string"), GOOD_Y, ValueError, "X[1] is a missing value"),
        (["a", "b", 3, "c"], GOOD_Y, TypeError, "X[2]"),
        ("just one string", [0], TypeError, "single str"),
        (GOOD_X, [0, 1, float("nan"), 1], ValueError, "y[2]"),
        (GOOD_X, ["a", "b", pd.NA, "b"], ValueError, "y[2] is a missing label"),
        (GOOD_X, [1, 1, 1, 1], ValueError, "single class"),
        (GOOD_X, [1, "a", 1, "a"], TypeError, "mixes label types"),
        (np.array([["a", "b"], ["c", "d"]]), [0, 1], ValueError, "1-D"),
    ],
    ids=[
        "empty",
        "length-mismatch",
        "none-item",
        "nan-item",
        "pandas-na-item",
        "int-item",
        "bare-str",
        "nan-label",
        "pandas-na-label",
        "one-class",
        "mixed-labels",
        "2d-array",
    ],
)
def test_bad_input_raises_clear_error(X, y, error, fragment):
    with pytest.raises(error, match=None) as info:
        TextClassifier(max_epochs=1).fit(X, y)
    assert fragment in str(info.value)
    assert isinstance(info.value, SkbigError)


def test_scratch_backend_without_recommendations_uses_the_documented_fallbacks(small_sms):
    """fasttext recommends lr, batch size, epochs and patience only: the other settings fall back."""
    X, y = small_sms
    clf = TextClassifier(backend="fasttext", max_epochs=2, random_state=0).fit(X, y)
    assert clf.get_params()["validation_fraction"] is None and clf.get_params()["freeze"] == "auto"
    assert "valid_score" in clf.history_[-1]  # the 0.1 validation split
    assert clf._setting("lr_schedule", clf._backend) == "constant"
    assert clf._setting("warmup", clf._backend) == 0.0
    assert clf._setting("freeze", clf._backend) is None
    assert clf._setting("backbone_lr_mult", clf._backend) == 1.0
    assert clf._setting("lr", clf._backend) == 5e-3  # fasttext's own recommendation


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"lr": 0}, "lr must be > 0"),
        ({"lr": -1}, "lr=-1"),
        ({"batch_size": 0}, "batch_size must be >= 1"),
        ({"validation_fraction": 1.0}, "validation_fraction must be < 1"),
        ({"validation_fraction": -0.1}, "validation_fraction must be >= 0"),
        ({"max_epochs": 2.5}, "max_epochs must be an int"),
        ({"optimizer": "lion"}, "optimizer must be one of"),
        ({"lr_schedule": "step"}, "lr_schedule must be one of"),
        ({"warmup": 1.5}, "warmup must be < 1"),
        ({"freeze": "encoder"}, "freeze must be 'auto', None, 'backbone' or a list"),
        ({"freeze": ["embedding.*", "encoder.*"]}, "freeze pattern(s) ['encoder.*'] match no parameter"),
        ({"freeze": "backbone"}, "backend 'fasttext' names no backbone"),
        ({"backbone_lr_mult": 0}, "backbone_lr_mult must be > 0"),
        ({"precision": "fp8"}, "precision must be one of"),
        ({"early_stopping": -1}, "early_stopping"),
        ({"class_weight": "auto"}, "class_weight"),
        ({"backend_params": {"embd_dim": 3}}, "did you mean 'embed_dim'"),
        ({"device": "tpu"}, "device"),
        ({"callbacks": [object()]}, "callbacks"),
    ],
    ids=lambda v: str(v) if isinstance(v, str) else None,
)
def test_invalid_parameters_are_named(params, fragment):
    with pytest.raises(InvalidParameterError) as info:
        TextClassifier(**params).fit(GOOD_X, GOOD_Y)
    assert fragment in str(info.value)


def test_unfreeze_after_the_last_epoch_warns(small_sms):
    X, y = small_sms
    clf = TextClassifier(backend="fasttext", freeze=["embedding.*"], unfreeze_at=2, max_epochs=2)
    with pytest.warns(UserWarning, match="unfreeze_at=2 is not below max_epochs=2"):
        clf.fit(X, y)
    TextClassifier(backend="fasttext", freeze=["embedding.*"], unfreeze_at=1, max_epochs=2).fit(X, y)


def test_unknown_backend_suggests_closest_and_lists_installed():
    with pytest.raises(BackendNotFoundError) as info:
        TextClassifier(backend="fastext").fit(GOOD_X, GOOD_Y)
    message = str(info.value)
    assert "did you mean 'fasttext'" in message and "lstm" in message
    assert isinstance(info.value, ValueError)


def test_backend_of_another_task_is_refused():
    with pytest.raises(BackendNotFoundError, match="image-classification"):
        TextClassifier(backend="cnn").fit(GOOD_X, GOOD_Y)


@pytest.mark.parametrize("method", ["predict", "predict_proba", "score", "save"])
def test_use_before_fit_raises_not_fitted(method, tmp_path):
    from sklearn.exceptions import NotFittedError as SklearnNotFitted

    clf = TextClassifier()
    args = {
        "predict": (GOOD_X,),
        "predict_proba": (GOOD_X,),
        "score": (GOOD_X, GOOD_Y),
        "save": (tmp_path / "m",),
    }
    with pytest.raises(NotFittedError) as info:
        getattr(clf, method)(*args[method])
    assert isinstance(info.value, SklearnNotFitted)


def test_predict_validates_input(fitted):
    with pytest.raises(TypeError, match=r"X\[1\]"):
        fitted.predict(["ok", 5])
