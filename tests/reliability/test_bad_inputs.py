"""The bad-input matrix: every way users (and their data) get it wrong, one row each.

Each row names an estimator call and the inputs that break it; the test
asserts the exception class (always a ``ValueError``/``TypeError`` subclass
from :mod:`skbig.exceptions`, or sklearn's ``NotFittedError``) and a message
fragment that names the offending item or parameter.  Rows marked ``VALID``
are edge cases that must work (a 1x1 image, one-sample audio, mixed sample
rates) and check the shape of what comes back.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from skbig import ImageClassifier, OptunaSearchCV, SpeechRecognizer, TextClassifier
from skbig.exceptions import (
    BackendNotFoundError,
    InputTypeError,
    InvalidInputError,
    InvalidParameterError,
    NotFittedError,
)

VALID = None  # the ``raises`` of a row that must succeed

TEXTS = ["good day", "bad day", "good night", "bad night", "fine day", "awful night"]
TEXT_Y = [1, 0, 1, 0, 1, 0]
RATE = 8000


def text(**params: Any) -> TextClassifier:
    return TextClassifier(
        **{"max_epochs": 1, "random_state": 0, "backend_params": {"embed_dim": 4}, **params}
    )


def image(**params: Any) -> ImageClassifier:
    return ImageClassifier(
        **{
            "max_epochs": 1,
            "random_state": 0,
            "validation_fraction": 0.0,
            "backend_params": {"width": 2, "depth": 1, "image_size": 8},
            **params,
        }
    )


def speech(**params: Any) -> SpeechRecognizer:
    tiny = {"hidden_size": 8, "num_layers": 1, "conv_channels": 2, "n_mels": 16}
    return SpeechRecognizer(
        **{
            "max_epochs": 1,
            "random_state": 0,
            "validation_fraction": 0.0,
            "sample_rate": RATE,
            "backend_params": tiny,
            **params,
        }
    )


def images(n: int = 4, size: int = 6) -> np.ndarray:
    return np.random.RandomState(0).randint(0, 256, size=(n, size, size, 3)).astype(np.uint8)


IMAGE_Y = [0, 1, 0, 1]


def clips(n: int = 4, length: int = 2000) -> list[np.ndarray]:
    rng = np.random.RandomState(0)
    return [(rng.randn(length) * 0.1).astype(np.float32) for _ in range(n)]


SPEECH_Y = ["yes", "no", "yes", "no"]


@dataclass
class Row:
    """One case: ``run(ctx)`` calls the estimator; ``ctx`` holds files and fitted models."""

    id: str
    run: Callable[[Any], Any]
    raises: type[BaseException] | None
    match: str = ""
    check: Callable[[Any], None] | None = None


class Ctx:
    """Lazily fitted models and the suite's files, so a row only pays for what it uses."""

    def __init__(self, files: dict[str, Any]) -> None:
        self.files = files
        self._fitted: dict[str, Any] = {}

    def path(self, name: str) -> str:
        return str(self.files[name])

    def fitted(self, kind: str) -> Any:
        if kind not in self._fitted:
            if kind == "text":
                self._fitted[kind] = text().fit(TEXTS, TEXT_Y)
            elif kind == "image":
                self._fitted[kind] = image().fit(images(), IMAGE_Y)
            else:
                self._fitted[kind] = speech().fit(clips(), SPEECH_Y)
        return self._fitted[kind]


@contextlib.contextmanager
def unprivileged():
    """Run the body as user ``nobody`` when we are root, so mode 000 really denies reads."""
    if os.geteuid() != 0:
        yield
        return
    try:
        os.seteuid(65534)
    except OSError as exc:  # pragma: no cover - containers without CAP_SETUID
        pytest.skip(f"running as root and cannot drop privileges to test permission denied: {exc}")
    try:
        yield
    finally:
        os.seteuid(0)


def _proba_rows(n: int) -> Callable[[Any], None]:
    def check(proba: Any) -> None:
        assert proba.shape[0] == n and np.allclose(proba.sum(axis=1), 1.0)

    return check


def _strings(n: int) -> Callable[[Any], None]:
    def check(out: Any) -> None:
        assert len(out) == n and all(isinstance(s, str) for s in out)

    return check


def _fitted_ok(est: Any) -> None:
    assert hasattr(est, "module_") and len(est.history_) == 1


def _fit_image_files(ctx: Ctx, *names: str, **params: Any) -> Any:
    paths = [ctx.path(n) for n in names]
    return image(**params).fit(paths, [i % 2 for i in range(len(paths))])


def _search(**params: Any) -> OptunaSearchCV:
    return OptunaSearchCV(text(), **{"n_trials": 1, "cv": 2, **params})


# --------------------------------------------------------------------------------------------- #
# TextClassifier
# --------------------------------------------------------------------------------------------- #
TEXT_ROWS = [
    Row("text-X-bare-string", lambda c: text().fit("good day", [1]), InputTypeError, "single str"),
    Row("text-X-int", lambda c: text().fit(5, [1]), InputTypeError, "got int"),
    Row("text-X-dict", lambda c: text().fit({"a": 1}, [1]), InputTypeError, "got dict"),
    Row("text-X-empty", lambda c: text().fit([], []), InvalidInputError, "X is empty"),
    Row(
        "text-X-None-item",
        lambda c: text().fit(["a", None, "b"], [0, 1, 0]),
        InvalidInputError,
        r"X\[1\] is a missing value",
    ),
    Row(
        "text-X-NaN-item",
        lambda c: text().fit(["a", "b", float("nan")], [0, 1, 0]),
        InvalidInputError,
        r"X\[2\] is a missing value",
    ),
    Row(
        "text-X-mixed-int",
        lambda c: text().fit(["a", 7, "b"], [0, 1, 0]),
        InputTypeError,
        r"X\[1\] must be a str, got int",
    ),
    Row(
        "text-X-bytes-item",
        lambda c: text().fit(["a", b"b", "c"], [0, 1, 0]),
        InputTypeError,
        r"X\[1\] must be a str, got bytes",
    ),
    Row(
        "text-X-2d-array",
        lambda c: text().fit(np.array([["a", "b"], ["c", "d"]]), [0, 1]),
        InvalidInputError,
        r"shape \(2, 2\)",
    ),
    Row(
        "text-X-float-array",
        lambda c: text().fit(np.array([0.5, 1.5, 2.5]), [0, 1, 0]),
        InputTypeError,
        r"X\[0\] must be a str, got float",
    ),
    Row(
        "text-empty-strings",
        lambda c: text().fit(["", "", "a", "b"], [0, 1, 0, 1]).predict_proba(["", " "]),
        VALID,
        check=_proba_rows(2),
    ),
    Row(
        "text-huge-string",
        lambda c: c.fitted("text").predict_proba(["spam " * 200_000, "x" * 1_000_000]),
        VALID,
        check=_proba_rows(2),
    ),
    Row(
        "text-control-and-emoji",
        lambda c: c.fitted("text").predict_proba(["\x00\x1b[31m\u202e", "\U0001f600\u4e2d\ufffd"]),
        VALID,
        check=_proba_rows(2),
    ),
    Row("text-y-None", lambda c: text().fit(TEXTS, None), InvalidInputError, "y is required"),
    Row(
        "text-y-length",
        lambda c: text().fit(TEXTS, TEXT_Y[:-1]),
        InvalidInputError,
        "X has 6 samples, y has 5",
    ),
    Row(
        "text-y-None-label",
        lambda c: text().fit(TEXTS, [1, 0, None, 0, 1, 0]),
        InvalidInputError,
        r"y\[2\] is a missing label",
    ),
    Row(
        "text-y-NaN-label",
        lambda c: text().fit(TEXTS, [1.0, 0.0, 1.0, np.nan, 1.0, 0.0]),
        InvalidInputError,
        r"y\[3\] is a missing label",
    ),
    Row(
        "text-y-mixed-types",
        lambda c: text().fit(TEXTS, [1, "a", 1, "a", 1, 0]),
        InputTypeError,
        "y mixes label types",
    ),
    Row(
        "text-y-continuous",
        lambda c: text().fit(TEXTS, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]),
        InvalidInputError,
        "continuous",
    ),
    Row("text-y-one-class", lambda c: text().fit(TEXTS, [1] * 6), InvalidInputError, "single class"),
    Row("text-y-2d", lambda c: text().fit(TEXTS, np.ones((6, 2))), InputTypeError, r"y must be 1-D"),
    Row(
        "text-unseen-parameter",
        lambda c: TextClassifier(learning_rate=0.1),
        TypeError,
        "learning_rate",
    ),
    Row(
        "text-set-unseen-parameter",
        lambda c: text().set_params(learning_rate=0.1),
        InvalidParameterError,
        "has no parameter 'learning_rate'",
    ),
    Row("text-lr-negative", lambda c: text(lr=-1).fit(TEXTS, TEXT_Y), InvalidParameterError, "lr="),
    Row("text-lr-nan", lambda c: text(lr=float("nan")).fit(TEXTS, TEXT_Y), InvalidParameterError, "lr"),
    Row(
        "text-batch-size-zero",
        lambda c: text(batch_size=0).fit(TEXTS, TEXT_Y),
        InvalidParameterError,
        "batch_size",
    ),
    Row(
        "text-max-epochs-str",
        lambda c: text(max_epochs="3").fit(TEXTS, TEXT_Y),
        InvalidParameterError,
        "max_epochs",
    ),
    Row(
        "text-validation-fraction",
        lambda c: text(validation_fraction=1.5).fit(TEXTS, TEXT_Y),
        InvalidParameterError,
        "validation_fraction",
    ),
    Row(
        "text-optimizer",
        lambda c: text(optimizer="rmsprop").fit(TEXTS, TEXT_Y),
        InvalidParameterError,
        "optimizer",
    ),
    Row(
        "text-unknown-backend",
        lambda c: text(backend="fasttxt").fit(TEXTS, TEXT_Y),
        BackendNotFoundError,
        "fasttxt",
    ),
    Row(
        "text-unknown-backend-param",
        lambda c: text(backend_params={"embed_dims": 4}).fit(TEXTS, TEXT_Y),
        InvalidParameterError,
        "embed_dims",
    ),
    Row(
        "text-backend-param-value",
        lambda c: text(backend_params={"embed_dim": -4}).fit(TEXTS, TEXT_Y),
        InvalidParameterError,
        "embed_dim",
    ),
    Row(
        "text-class-weight-unknown",
        lambda c: text(class_weight={7: 2.0}).fit(TEXTS, TEXT_Y),
        InvalidParameterError,
        "unknown classes",
    ),
    Row(
        "text-callback-type",
        lambda c: text(callbacks=[print]).fit(TEXTS, TEXT_Y),
        InvalidParameterError,
        "callbacks",
    ),
    Row("text-predict-unfitted", lambda c: text().predict(TEXTS), NotFittedError, "not fitted"),
    Row(
        "text-predict-None-item",
        lambda c: c.fitted("text").predict(["a", None]),
        InvalidInputError,
        r"X\[1\] is a missing value",
    ),
    Row("text-predict-empty", lambda c: c.fitted("text").predict([]), InvalidInputError, "X is empty"),
]

# --------------------------------------------------------------------------------------------- #
# ImageClassifier
# --------------------------------------------------------------------------------------------- #
IMAGE_ROWS = [
    Row("image-X-1d", lambda c: image().fit(np.arange(4.0), IMAGE_Y), InvalidInputError, "1D"),
    Row(
        "image-X-5d",
        lambda c: image().fit(np.zeros((4, 2, 3, 3, 3)), IMAGE_Y),
        InvalidInputError,
        "shape",
    ),
    Row(
        "image-X-NaN",
        lambda c: image().fit(np.where(images() > 250, np.nan, images() / 255.0), IMAGE_Y),
        InvalidInputError,
        "NaN",
    ),
    Row(
        "image-X-inf",
        lambda c: image().fit(np.where(images() > 250, np.inf, images() / 255.0), IMAGE_Y),
        InvalidInputError,
        "inf",
    ),
    Row(
        "image-X-negative",
        lambda c: image().fit(images() / 255.0 - 0.5, IMAGE_Y),
        InvalidInputError,
        "negative",
    ),
    Row(
        "image-X-complex",
        lambda c: image().fit(images().astype(np.complex64), IMAGE_Y),
        InputTypeError,
        "complex",
    ),
    Row(
        "image-X-sparse",
        lambda c: image().fit(sp.random(4, 64, density=0.5, format="csr"), IMAGE_Y),
        InputTypeError,
        "[Ss]parse",
    ),
    Row(
        "image-X-ragged-nested",
        lambda c: image().fit([[1, 2], [3]], [0, 1]),
        InvalidInputError,
        "inhomogeneous|not rectangular",
    ),
    Row("image-X-empty-list", lambda c: image().fit([], []), InvalidInputError, "X is empty"),
    Row(
        "image-X-None-item",
        lambda c: image().fit([c.path("png"), None], [0, 1]),
        InvalidInputError,
        r"X\[1\] is None",
    ),
    Row(
        "image-X-int-item",
        lambda c: image().fit([c.path("png"), 3], [0, 1]),
        InputTypeError,
        r"X\[1\] has type int",
    ),
    Row(
        "image-X-bad-array-item",
        lambda c: image().fit([np.zeros((2, 2, 2, 2)), c.path("png")], [0, 1]),
        InvalidInputError,
        r"X\[0\] is an array of shape",
    ),
    Row(
        "image-shape-mismatch",
        lambda c: image(image_shape=(5, 5)).fit(np.zeros((4, 64)), IMAGE_Y),
        InvalidParameterError,
        "image_shape",
    ),
    Row(
        "image-shape-zero",
        lambda c: image(image_shape=(0, 8)).fit(np.zeros((4, 64)), IMAGE_Y),
        InvalidParameterError,
        "image_shape",
    ),
    Row(
        "image-augment",
        lambda c: image(augment="yes").fit(images(), IMAGE_Y),
        InvalidParameterError,
        "augment",
    ),
    Row(
        "image-backend-param",
        lambda c: image(backend_params={"width": 0}).fit(images(), IMAGE_Y),
        InvalidParameterError,
        "width",
    ),
    Row(
        "image-y-None",
        lambda c: image().fit(images(), None),
        InvalidInputError,
        "y is None",
    ),
    Row(
        "image-y-mixed",
        lambda c: image().fit(images(), ["a", 1, "a", 1]),
        InputTypeError,
        "y mixes label types",
    ),
    Row(
        "image-missing-file",
        lambda c: _fit_image_files(c, "png", "missing"),
        InvalidInputError,
        r"X\[1\] .*missing\.png.*no such file",
    ),
    Row(
        "image-directory",
        lambda c: _fit_image_files(c, "png", "directory"),
        InvalidInputError,
        r"X\[1\] .*a_directory\.png.* is a directory",
    ),
    Row(
        "image-symlink-loop",
        lambda c: _fit_image_files(c, "png", "loop"),
        InvalidInputError,
        r"X\[1\] .*loop\.png.*symbolic link that does not resolve",
    ),
    Row(
        "image-corrupt-file",
        lambda c: _fit_image_files(c, "png", "png_corrupt"),
        InvalidInputError,
        r"X\[1\] .*png_corrupt\.png.* not a recognised image",
    ),
    Row(
        "image-truncated-file",
        lambda c: _fit_image_files(c, "png", "png_truncated"),
        InvalidInputError,
        r"X\[1\] .*png_truncated\.png.* corrupt or truncated",
    ),
    Row(
        "image-empty-file",
        lambda c: _fit_image_files(c, "png", "png_empty"),
        InvalidInputError,
        r"X\[1\] .*png_empty\.png.* is empty \(0 bytes\)",
    ),
    Row(
        "image-huge-file-10000x10000",
        lambda c: _fit_image_files(c, "png", "png_huge"),
        InvalidInputError,
        r"X\[1\] .*png_huge\.png.* too large",
    ),
    Row(
        "image-garbage-bytes",
        lambda c: image().fit([b"\x89PNG not really", c.path("png")], [0, 1]),
        InvalidInputError,
        r"X\[0\] is not a recognised image",
    ),
    Row(
        "image-float64-beyond-float32",
        lambda c: c.fitted("image").predict_proba(np.full((2, 3, 3), 3.4e38)),
        VALID,
        check=_proba_rows(2),
    ),
    Row(
        "image-1x1-array",
        lambda c: image().fit(images(size=1), IMAGE_Y).predict_proba(images(2, size=1)),
        VALID,
        check=_proba_rows(2),
    ),
    Row(
        "image-1x1-file",
        lambda c: _fit_image_files(c, "png_1x1", "png").predict_proba([c.path("png_1x1")]),
        VALID,
        check=_proba_rows(1),
    ),
    Row(
        "image-predict-other-size",
        lambda c: c.fitted("image").predict_proba(images(3, size=40)),
        VALID,
        check=_proba_rows(3),
    ),
    Row(
        "image-predict-unfitted",
        lambda c: image().predict(images()),
        NotFittedError,
        "not fitted",
    ),
    Row(
        "image-predict-corrupt-file",
        lambda c: c.fitted("image").predict([c.path("png"), c.path("png_corrupt")]),
        InvalidInputError,
        r"X\[1\] .*png_corrupt\.png",
    ),
]

# --------------------------------------------------------------------------------------------- #
# SpeechRecognizer
# --------------------------------------------------------------------------------------------- #
SPEECH_ROWS = [
    Row("speech-X-bare-path", lambda c: speech().fit(c.path("wav"), ["a"]), InputTypeError, "single str"),
    Row(
        "speech-X-1d-array",
        lambda c: speech().fit(np.zeros(100, np.float32), ["a"]),
        InputTypeError,
        "single 1-D waveform",
    ),
    Row("speech-X-empty", lambda c: speech().fit([], []), InvalidInputError, "X is empty"),
    Row(
        "speech-zero-samples",
        lambda c: speech().fit([*clips(3), np.zeros(0, np.float32)], SPEECH_Y),
        InvalidInputError,
        r"X\[3\] has no samples",
    ),
    Row(
        "speech-one-sample",
        lambda c: (
            speech()
            .fit([*clips(3), np.full(1, 0.1, np.float32)], SPEECH_Y)
            .predict([np.full(1, 0.1, np.float32)])
        ),
        VALID,
        check=_strings(1),
    ),
    Row(
        "speech-NaN",
        lambda c: speech().fit([*clips(3), np.full(50, np.nan, np.float32)], SPEECH_Y),
        InvalidInputError,
        r"X\[3\] contains NaN or inf",
    ),
    Row(
        "speech-inf",
        lambda c: speech().fit([np.full(50, np.inf, np.float32), *clips(3)], SPEECH_Y),
        InvalidInputError,
        r"X\[0\] contains NaN or inf",
    ),
    Row(
        "speech-float-out-of-range",
        lambda c: speech().fit([*clips(3), np.full(50, 4e17, np.float32)], SPEECH_Y),
        InvalidInputError,
        r"X\[3\] has float samples up to 4e\+17",
    ),
    Row(
        "speech-3d-item",
        lambda c: speech().fit([np.zeros((2, 2, 2), np.float32), *clips(3)], SPEECH_Y),
        InvalidInputError,
        r"X\[0\] must be a 1-D waveform",
    ),
    Row(
        "speech-complex-dtype",
        lambda c: speech().fit([*clips(3), np.zeros(50, np.complex64)], SPEECH_Y),
        InputTypeError,
        r"X\[3\] has dtype complex64",
    ),
    Row(
        "speech-uint16-dtype",
        lambda c: speech().fit([np.zeros(50, np.uint16), *clips(3)], SPEECH_Y),
        InputTypeError,
        r"X\[0\] has dtype uint16",
    ),
    Row(
        "speech-None-item",
        lambda c: speech().fit([None, *clips(3)], SPEECH_Y),
        InputTypeError,
        r"X\[0\] has type NoneType",
    ),
    Row(
        "speech-array-without-rate",
        lambda c: speech(sample_rate=None).fit(clips(), SPEECH_Y),
        InvalidParameterError,
        "sample_rate is required",
    ),
    Row(
        "speech-rate-zero",
        lambda c: speech(sample_rate=0).fit(clips(), SPEECH_Y),
        InvalidParameterError,
        "sample_rate",
    ),
    Row(
        "speech-rate-float",
        lambda c: speech(sample_rate=8000.5).fit(clips(), SPEECH_Y),
        InvalidParameterError,
        "sample_rate=8000.5",
    ),
    Row(
        "speech-mixed-rate-files",
        lambda c: speech().fit([c.path("wav"), c.path("wav_16k")] * 2, SPEECH_Y).predict([c.path("wav_16k")]),
        VALID,
        check=_strings(1),
    ),
    Row(
        "speech-missing-file",
        lambda c: speech().fit([c.path("wav"), "/no/such/clip.wav"], ["a", "b"]),
        InvalidInputError,
        r"X\[1\] \(/no/such/clip\.wav\) does not exist",
    ),
    Row(
        "speech-directory",
        lambda c: speech().fit([c.path("directory"), c.path("wav")], ["a", "b"]),
        InvalidInputError,
        r"X\[0\] .*a_directory\.png.* is a directory",
    ),
    Row(
        "speech-symlink-loop",
        lambda c: speech().fit([c.path("wav"), c.path("loop")], ["a", "b"]),
        InvalidInputError,
        r"X\[1\] .*loop\.png.*symbolic link that does not resolve",
    ),
    Row(
        "speech-corrupt-file",
        lambda c: speech().fit([c.path("wav"), c.path("wav_corrupt")], ["a", "b"]),
        InvalidInputError,
        r"X\[1\] .*wav_corrupt\.wav.* could not be decoded",
    ),
    Row(
        "speech-truncated-file",
        lambda c: speech().fit([c.path("wav_truncated"), c.path("wav")], ["a", "b"]),
        InvalidInputError,
        r"X\[0\] .*wav_truncated\.wav",
    ),
    Row(
        "speech-empty-file",
        lambda c: speech().fit([c.path("wav"), c.path("wav_empty")], ["a", "b"]),
        InvalidInputError,
        r"X\[1\] .*wav_empty\.wav",
    ),
    Row(
        "speech-zero-sample-file",
        lambda c: speech().fit([c.path("wav"), c.path("wav_zero_samples")], ["a", "b"]),
        InvalidInputError,
        r"X\[1\] .*wav_zero_samples\.wav.* has no samples",
    ),
    Row(
        "speech-one-sample-file",
        lambda c: c.fitted("speech").predict([c.path("wav_one_sample")]),
        VALID,
        check=_strings(1),
    ),
    Row(
        "speech-empty-bytes",
        lambda c: speech().fit([b"", *clips(3)], SPEECH_Y),
        InvalidInputError,
        r"X\[0\] is empty bytes",
    ),
    Row("speech-y-None", lambda c: speech().fit(clips(), None), InvalidInputError, "y is required"),
    Row(
        "speech-y-int",
        lambda c: speech().fit(clips(), [1, 2, 3, 4]),
        InputTypeError,
        r"y\[0\] must be a str",
    ),
    Row(
        "speech-y-length",
        lambda c: speech().fit(clips(), ["a", "b"]),
        InvalidInputError,
        "y",
    ),
    Row(
        "speech-beam-size",
        lambda c: speech(beam_size=0).fit(clips(), SPEECH_Y),
        InvalidParameterError,
        "beam_size",
    ),
    Row(
        "speech-backend-param",
        lambda c: speech(backend_params={"encoder": "transformerxl"}).fit(clips(), SPEECH_Y),
        InvalidParameterError,
        "encoder",
    ),
    Row(
        "speech-predict-unfitted",
        lambda c: speech().predict(clips()),
        NotFittedError,
        "not fitted",
    ),
    Row(
        "speech-predict-NaN",
        lambda c: c.fitted("speech").predict([np.full(10, np.nan, np.float32)]),
        InvalidInputError,
        r"X\[0\] contains NaN",
    ),
]

# --------------------------------------------------------------------------------------------- #
# OptunaSearchCV
# --------------------------------------------------------------------------------------------- #
SEARCH_ROWS = [
    Row(
        "search-n-trials-zero",
        lambda c: _search(n_trials=0).fit(TEXTS, TEXT_Y),
        InvalidParameterError,
        "n_trials",
    ),
    Row(
        "search-timeout-negative",
        lambda c: _search(timeout=-1).fit(TEXTS, TEXT_Y),
        InvalidParameterError,
        "timeout",
    ),
    Row(
        "search-n-jobs-zero", lambda c: _search(n_jobs=0).fit(TEXTS, TEXT_Y), InvalidParameterError, "n_jobs"
    ),
    Row(
        "search-unseen-parameter",
        lambda c: _search(param_distributions={"learning_rate": [0.1]}).fit(TEXTS, TEXT_Y),
        InvalidParameterError,
        "learning_rate",
    ),
    Row(
        "search-bad-space-value",
        lambda c: _search(param_distributions={"lr": 0.1}).fit(TEXTS, TEXT_Y),
        InvalidParameterError,
        "lr",
    ),
    Row(
        "search-unseen-constructor-arg",
        lambda c: OptunaSearchCV(text(), n_trails=3),
        TypeError,
        "n_trails",
    ),
    Row(
        "search-X-None-item",
        lambda c: _search().fit(["a", None, "b", "c"], [0, 1, 0, 1]),
        InvalidInputError,
        r"X\[1\] is a missing value",
    ),
    Row(
        "search-y-mixed",
        lambda c: _search().fit(TEXTS, [1, "a", 1, "a", 1, "a"]),
        InputTypeError,
        "y mixes label types",
    ),
    Row(
        "search-predict-unfitted",
        lambda c: _search().predict(TEXTS),
        NotFittedError,
        "not fitted",
    ),
]

ROWS = TEXT_ROWS + IMAGE_ROWS + SPEECH_ROWS + SEARCH_ROWS
# ``c`` is the dict of ``open_files`` here: files in a folder that user ``nobody`` can enter.
_PERMISSION_ROWS = [
    Row(
        "image-permission-denied",
        lambda c: image().fit([str(c["png"]), str(c["unreadable_png"])], [0, 1]),
        InvalidInputError,
        r"X\[1\] .*unreadable\.png.*permission denied",
    ),
    Row(
        "speech-permission-denied",
        lambda c: speech().fit([str(c["wav"]), str(c["unreadable_wav"])], ["a", "b"]),
        InvalidInputError,
        r"X\[1\] .*unreadable\.wav.*permission denied",
    ),
    Row(
        "image-predict-permission-denied",
        lambda c: image().fit(images(), IMAGE_Y).predict([str(c["unreadable_png"])]),
        InvalidInputError,
        r"X\[0\] .*unreadable\.png.*permission denied",
    ),
]


@pytest.fixture(scope="module")
def ctx(files):
    return Ctx(files)


def _run(row: Row, ctx: Ctx) -> None:
    if row.raises is VALID:
        result = row.run(ctx)
        if row.check is not None:
            row.check(result)
        return
    with pytest.raises(row.raises, match=row.match) as info:
        row.run(ctx)
    assert isinstance(info.value, (ValueError, TypeError)), type(info.value).__mro__


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_bad_input(row, ctx):
    _run(row, ctx)


@contextlib.contextmanager
def _reachable_as_nobody(c: dict[str, Any]) -> Any:
    """Make what the rows need reachable after dropping to ``nobody``.

    The interpreter's standard library, the venv or the checkout may sit under
    a folder that ``nobody`` cannot enter (``/root``, a ``mktemp -d`` clone):
    so the rows' code paths run once as root on readable files (every lazy
    import happens now), and the backends are registered in-process so that
    the registry does not need to read the venv's entry-point metadata.
    """
    from skbig.backends.cnn import CNNBackend
    from skbig.backends.ctc import CTCBackend
    from skbig.backends.registry import register_backend, unregister_backend

    image().fit([str(c["png"]), str(c["png"])], [0, 1]).predict([str(c["png"])])
    speech().fit([str(c["wav"]), str(c["wav"])], ["a", "b"]).predict([str(c["wav"])])
    for cls in (CNNBackend, CTCBackend):
        register_backend(cls, replace=True)
    try:
        yield
    finally:
        for cls in (CNNBackend, CTCBackend):
            unregister_backend(cls.name)


@pytest.mark.parametrize("row", _PERMISSION_ROWS, ids=[r.id for r in _PERMISSION_ROWS])
def test_permission_denied(row, open_files):
    with _reachable_as_nobody(open_files), unprivileged():
        _run(row, open_files)


def test_the_matrix_is_large_enough():
    ids = [r.id for r in ROWS + _PERMISSION_ROWS]
    assert len(ids) == len(set(ids)) and len(ids) >= 60
    for prefix in ("text-", "image-", "speech-", "search-"):
        assert sum(i.startswith(prefix) for i in ids) >= 8, prefix
