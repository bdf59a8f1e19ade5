"""ImageClassifier used the way scikit-learn users use estimators.

Photos come from the bundled hymenoptera sample; flattened images from
``load_digits``.  Every model is tiny (a few thousand weights, two or three
epochs) so the whole module runs in well under a minute on two cores.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, MinMaxScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import skbig
from skbig import ImageClassifier
from skbig.data.image import decode_image
from skbig.datasets import load_hymenoptera_sample
from skbig.exceptions import InputTypeError, InvalidInputError, InvalidParameterError, NotFittedError

SIZE = 24  # input size of the photo models: small, so fits take a fraction of a second
TINY = {"width": 4, "depth": 2}


def tiny(**params) -> ImageClassifier:
    backend_params = {**TINY, **params.pop("backend_params", {})}
    return ImageClassifier(**{"max_epochs": 2, "random_state": 0, "backend_params": backend_params, **params})


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models gain nothing from intra-op threads, and on a busy machine the pool thrashes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def photos() -> tuple[list[str], list[str]]:
    """The 24 bundled training photos (various sizes, longer side 224): (paths, labels)."""
    return load_hymenoptera_sample("train")


@pytest.fixture(scope="module")
def fitted_on_files(photos) -> ImageClassifier:
    paths, labels = photos
    return tiny(backend_params={"image_size": SIZE}).fit(paths, labels)


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_digits(return_X_y=True)
    return X[:300], y[:300]


@pytest.fixture(scope="module")
def fitted_on_digits(digits) -> ImageClassifier:
    X, y = digits
    return tiny(image_shape=(8, 8), max_epochs=5, backend_params={"width": 8}).fit(X, y)


@pytest.fixture(scope="module")
def same_size_photos(photos, tmp_path_factory) -> dict[str, object]:
    """The first 6 photos at exactly SIZE x SIZE, in every accepted form."""
    pixels = [
        np.asarray(decode_image(p, index=0).resize((SIZE, SIZE), Image.Resampling.BILINEAR))
        for p in photos[0][:6]
    ]
    folder = tmp_path_factory.mktemp("same_size")
    png_paths = []
    for i, array in enumerate(pixels):
        Image.fromarray(array).save(folder / f"{i}.png")
        png_paths.append(str(folder / f"{i}.png"))
    return {
        "str paths": png_paths,
        "pathlib paths": [Path(p) for p in png_paths],
        "bytes": [Path(p).read_bytes() for p in png_paths],
        "PIL images": [Image.fromarray(a) for a in pixels],
        "list of arrays": pixels,
        "uint8 array": np.stack(pixels),
        "pandas Series of paths": pd.Series(png_paths),
    }


# -- fitting on files ------------------------------------------------------------------
def test_fit_on_paths_learns_classes_and_the_input_size(fitted_on_files):
    assert fitted_on_files.classes_.tolist() == ["ants", "bees"]
    assert fitted_on_files.backend_ == "cnn"
    assert fitted_on_files._backend.input_size == (SIZE, SIZE)
    assert fitted_on_files.scale_ is None
    assert not hasattr(fitted_on_files, "n_features_in_")
    assert len(fitted_on_files.history_) == 2


def test_file_inputs_default_to_64_pixels(photos):
    paths, labels = photos
    clf = tiny(max_epochs=1, validation_fraction=0.0).fit(paths[:4] + paths[-4:], labels[:4] + labels[-4:])
    assert clf._backend.input_size == (64, 64)


def test_every_input_form_gives_the_same_predictions(fitted_on_files, same_size_photos):
    reference = fitted_on_files.predict_proba(same_size_photos["str paths"])
    for form, X in same_size_photos.items():
        np.testing.assert_allclose(fitted_on_files.predict_proba(X), reference, atol=1e-6, err_msg=form)
    as_floats = same_size_photos["uint8 array"].astype(np.float64) / 255.0
    np.testing.assert_allclose(fitted_on_files.predict_proba(as_floats), reference, atol=1e-6)


def test_images_of_any_size_are_resized_to_the_input_size(fitted_on_files, photos):
    paths = photos[0][:5]
    sizes = {decode_image(p, index=0).size for p in paths}
    assert len(sizes) > 1  # the bundled photos really differ in size
    assert fitted_on_files.predict(paths).shape == (5,)
    big = np.random.RandomState(0).randint(0, 256, size=(3, 40, 50, 3)).astype(np.uint8)
    gray = np.random.RandomState(1).randint(0, 256, size=(2, 10, 12)).astype(np.uint8)
    assert fitted_on_files.predict_proba(big).shape == (3, 2)
    assert fitted_on_files.predict_proba(gray).shape == (2, 2)
    assert fitted_on_files.predict([paths[0], big[0], gray[0]]).shape == (3,)  # mixed list


# -- arrays --------------------------------------------------------------------------------
def test_2d_input_with_image_shape(fitted_on_digits, digits):
    X, y = digits
    assert fitted_on_digits.n_features_in_ == 64
    assert fitted_on_digits.scale_ == 16.0  # load_digits holds 0..16
    assert fitted_on_digits._backend.input_size == (8, 8)  # native size for arrays
    assert fitted_on_digits.score(X, y) > 0.5


def test_3d_array_gives_the_same_predictions_as_its_flattened_form(fitted_on_digits, digits):
    X, _ = digits
    np.testing.assert_array_equal(
        fitted_on_digits.predict_proba(X[:20].reshape(-1, 8, 8)), fitted_on_digits.predict_proba(X[:20])
    )


def test_array_scale_is_fixed_at_fit(fitted_on_digits, digits):
    # A dim batch is scaled like the training data, not stretched to its own maximum.
    X, _ = digits
    dim = X[:10] / 2
    full = fitted_on_digits.predict_proba(np.vstack([dim, X[10:20]]))[:10]
    np.testing.assert_allclose(fitted_on_digits.predict_proba(dim), full, atol=1e-6)


def test_2d_input_without_image_shape_reads_rows_as_one_pixel_high_images(digits):
    X, y = digits
    clf = tiny().fit(X, y)
    assert clf._backend.input_size == (1, 64)
    assert clf.n_features_in_ == 64
    with pytest.raises(InvalidInputError, match="X has 10 features, but ImageClassifier is expecting 64"):
        clf.predict(X[:5, :10])


def test_dataframe_columns_are_remembered(digits):
    X, y = digits
    frame = pd.DataFrame(X, columns=[f"px{i}" for i in range(64)])
    clf = tiny(image_shape=(8, 8)).fit(frame, y)
    assert list(clf.feature_names_in_[:2]) == ["px0", "px1"]
    expected = clf.predict_proba(frame[:5])
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        np.testing.assert_array_equal(clf.predict_proba(frame[:5].to_numpy()), expected)


def test_refit_on_files_forgets_the_columns(digits, photos):
    X, y = digits
    clf = tiny(image_shape=(8, 8), max_epochs=1).fit(X, y)
    clf.set_params(image_shape=None).fit(*photos)
    assert not hasattr(clf, "n_features_in_") and clf.scale_ is None


# -- augmentation ----------------------------------------------------------------------
def test_augmentation_is_seeded_and_actually_applied(photos):
    paths, labels = photos
    params = {"backend_params": {"image_size": 16}, "validation_fraction": 0.0}
    auto_a = tiny(**params).fit(paths, labels)
    auto_b = tiny(**params).fit(paths, labels)
    plain = tiny(augment=None, **params).fit(paths, labels)
    np.testing.assert_array_equal(auto_a.predict_proba(paths), auto_b.predict_proba(paths))
    assert not np.allclose(auto_a.predict_proba(paths), plain.predict_proba(paths))


def test_arrays_are_augmented_on_the_fast_path_too():
    X = np.random.RandomState(0).rand(16, 20, 20, 3).astype(np.float32)
    y = np.array([0, 1] * 8)
    runs = [
        tiny(augment=a, validation_fraction=0.0).fit(X, y).predict_proba(X) for a in ("auto", "auto", None)
    ]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.allclose(runs[0], runs[2])


def test_auto_leaves_small_images_alone_and_crop_flip_forces_it(digits):
    X, y = digits
    auto = tiny(image_shape=(8, 8)).fit(X, y).predict_proba(X[:20])
    off = tiny(image_shape=(8, 8), augment=None).fit(X, y).predict_proba(X[:20])
    forced = tiny(image_shape=(8, 8), augment="crop+flip").fit(X, y).predict_proba(X[:20])
    np.testing.assert_array_equal(auto, off)  # 8x8 is below the 16-pixel threshold
    assert not np.allclose(auto, forced)


def test_unknown_augment_is_refused(digits):
    X, y = digits
    with pytest.raises(InvalidParameterError, match=r"augment must be one of \['auto', 'crop\+flip'\]"):
        tiny(image_shape=(8, 8), augment="mixup").fit(X, y)


# -- scikit-learn composition ---------------------------------------------------------------
def test_clone_gives_an_unfitted_copy_and_exposes_backend_hyperparameters(fitted_on_digits):
    copy = clone(fitted_on_digits)
    assert not hasattr(copy, "module_") and not hasattr(copy, "scale_")
    assert copy.get_params(deep=False) == fitted_on_digits.get_params(deep=False)
    params = ImageClassifier().get_params(deep=True)
    assert params["backend_params__width"] == 32 and params["backend_params__image_size"] is None
    assert ImageClassifier(backend="resnet").get_params()["backend_params__layers"] == [2, 2, 2, 2]


def test_grid_search_over_a_backend_hyperparameter(digits):
    X, y = digits
    search = GridSearchCV(tiny(image_shape=(8, 8)), {"backend_params__width": [2, 4]}, cv=2).fit(X, y)
    assert search.best_params_["backend_params__width"] in (2, 4)
    direct = tiny(image_shape=(8, 8), backend_params={"width": search.best_params_["backend_params__width"]})
    np.testing.assert_allclose(
        search.predict_proba(X[:20]), direct.fit(X, y).predict_proba(X[:20]), atol=1e-6
    )


def test_pipeline_with_a_scaler(digits):
    X, y = digits
    pipe = make_pipeline(MinMaxScaler(), tiny(image_shape=(8, 8))).fit(X, y)
    manual = tiny(image_shape=(8, 8)).fit(MinMaxScaler().fit_transform(X), y)
    np.testing.assert_allclose(
        pipe.predict_proba(X[:20]), manual.predict_proba(MinMaxScaler().fit(X).transform(X[:20])), atol=1e-6
    )
    assert pipe[-1].scale_ == 1.0  # MinMaxScaler output is already in [0, 1]


def test_pipeline_with_a_function_transformer_reshaping_rows(digits):
    X, y = digits
    to_images = FunctionTransformer(lambda rows: rows.reshape(-1, 8, 8))
    pipe = make_pipeline(to_images, tiny()).fit(X, y)
    direct = tiny(image_shape=(8, 8)).fit(X, y)
    np.testing.assert_allclose(pipe.predict_proba(X[:20]), direct.predict_proba(X[:20]), atol=1e-6)


@pytest.mark.parametrize("model", ["fitted_on_files", "fitted_on_digits"])
def test_pickle_and_save_load_give_identical_predictions(request, model, tmp_path, photos, digits):
    fitted = request.getfixturevalue(model)
    X = photos[0][:6] if model == "fitted_on_files" else digits[0][:30]
    expected = fitted.predict_proba(X)
    unpickled = pickle.loads(pickle.dumps(fitted))
    loaded = skbig.load(fitted.save(tmp_path / "model.skbig"))
    for copy in (unpickled, loaded):
        np.testing.assert_array_equal(copy.predict_proba(X), expected)
        assert copy.scale_ == fitted.scale_
        assert getattr(copy, "n_features_in_", None) == getattr(fitted, "n_features_in_", None)
        assert copy._backend.input_size == fitted._backend.input_size


def test_dataframe_feature_names_survive_save_load(digits, tmp_path):
    X, y = digits
    frame = pd.DataFrame(X, columns=[f"px{i}" for i in range(64)])
    clf = tiny(image_shape=(8, 8), max_epochs=1).fit(frame, y)
    loaded = skbig.load(clf.save(tmp_path / "m.skbig"))
    np.testing.assert_array_equal(loaded.feature_names_in_, clf.feature_names_in_)


@parametrize_with_checks(
    # 2-D X without image_shape: each row is a one-pixel-high image (the documented fallback).
    [ImageClassifier(max_epochs=10, lr=3e-3, backend_params={"width": 8, "depth": 2}, random_state=0)],
    expected_failed_checks=lambda est: {
        "check_class_weight_classifiers": (
            "feeds make_blobs features with negative values without honouring the positive_only "
            "tag; pixel intensities must be >= 0, so fit refuses them"
        ),
    },
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


# -- bad input --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bad_files(photos, tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("bad")
    data = Path(photos[0][0]).read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (folder / "notes.jpg").write_text("these are my notes, not a picture\n")
    return {"corrupt": str(folder / "truncated.jpg"), "text": str(folder / "notes.jpg")}


@pytest.mark.parametrize(
    "kind, message",
    [("corrupt", "corrupt or truncated"), ("text", "not a recognised image")],
    ids=["truncated-jpeg", "text-file"],
)
def test_a_bad_file_is_named_by_index_and_path(photos, bad_files, kind, message):
    paths, labels = photos
    X = [*paths[:3], bad_files[kind], *paths[-4:]]
    y = [*labels[:3], "ants", *labels[-4:]]
    pattern = rf"X\[3\] \('{bad_files[kind]}'\).*{message}"
    with pytest.raises(InvalidInputError, match=pattern):
        tiny(validation_fraction=0.0, backend_params={"image_size": 8}).fit(X, y)


def test_a_bad_file_inside_a_dataloader_worker_surfaces_as_the_same_error(photos, bad_files):
    paths, labels = photos
    X = [*paths[:3], bad_files["corrupt"], *paths[-4:]]
    y = [*labels[:3], "ants", *labels[-4:]]
    clf = tiny(num_workers=1, validation_fraction=0.0, backend_params={"image_size": 8})
    with pytest.raises(InvalidInputError, match=r"X\[3\] .*truncated\.jpg"):
        clf.fit(X, y)


def test_a_bad_file_at_predict_is_named(fitted_on_files, photos, bad_files):
    with pytest.raises(InvalidInputError, match=r"X\[1\] .*notes\.jpg"):
        fitted_on_files.predict([photos[0][0], bad_files["text"]])


def test_a_missing_path_fails_before_training(photos, tmp_path):
    paths, labels = photos
    missing = str(tmp_path / "nope.jpg")
    with pytest.raises(InvalidInputError, match=r"X\[2\] .*nope\.jpg'\): no such file"):
        tiny().fit([*paths[:2], missing, paths[3]], labels[:4])


def test_mismatched_x_and_y(photos, digits):
    paths, labels = photos
    with pytest.raises(InvalidInputError, match="X has 5 samples, y has 4"):
        tiny().fit(paths[:5], labels[:4])
    X, y = digits
    with pytest.raises(InvalidInputError, match="X has 300 samples, y has 299"):
        tiny(image_shape=(8, 8)).fit(X, y[:-1])


@pytest.mark.parametrize(
    "X, error, message",
    [
        (np.full((4, 8, 8), -1.0), InvalidInputError, "negative pixel values"),
        (np.full((4, 64), -1.0), InvalidInputError, "Negative values in data"),
        (np.full((4, 64), np.nan), InvalidInputError, "NaN"),
        (np.zeros((4, 63)), InvalidParameterError, "image_shape=.8, 8. holds 64 values but X has 63"),
        ([1, 2, 3, 4], InputTypeError, r"X\[0\] has type int, which is not an image"),
        ([None, None, None, None], InvalidInputError, r"X\[0\] is None"),
    ],
    ids=["negative-3d", "negative-2d", "nan", "wrong-width", "numbers-list", "none-items"],
)
def test_bad_arrays_are_refused_with_the_rule(X, error, message):
    with pytest.raises(error, match=message):
        tiny(image_shape=(8, 8) if np.ndim(X) == 2 else None).fit(X, [0, 1, 0, 1])


def test_predict_before_fit():
    with pytest.raises(NotFittedError):
        ImageClassifier().predict(np.zeros((1, 8, 8)))


def test_bad_backend_hyperparameters_are_refused_at_fit(digits):
    X, y = digits
    with pytest.raises(InvalidParameterError, match="width must be an int >= 1, got width=0"):
        tiny(image_shape=(8, 8), backend_params={"width": 0}).fit(X, y)
    with pytest.raises(InvalidParameterError, match="image_size must be a positive int"):
        tiny(image_shape=(8, 8), backend_params={"image_size": -3}).fit(X, y)
