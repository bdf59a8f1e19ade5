"""Backend conformance suite, shipped with skbig for plugin authors.

Subclass :class:`BackendConformance` in your plugin's tests and override the
``backend_cls`` fixture (and, if your backend needs particular inputs,
``sample_data`` and ``estimator_params``)::

    from skbig.testing import BackendConformance

    class TestMyBackend(BackendConformance):
        @pytest.fixture
        def backend_cls(self):
            return MyBackend

Every built-in backend and every plugin under ``plugins/`` runs this suite.
It checks the declared contract, then fits the task's estimator on tiny data
and checks outputs, persistence and determinism.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from skbig.backends.base import API_VERSION, TASKS, Backend, TaskSpec
from skbig.exceptions import InvalidParameterError

__all__ = ["BackendConformance", "estimator_for_task", "tiny_task_data"]

try:  # pytest is a test-time dependency only
    import pytest
except ImportError:  # pragma: no cover
    pytest = None  # type: ignore[assignment]


def estimator_for_task(task: str) -> type:
    """The skbig estimator class that serves ``task``."""
    import skbig

    names = {
        "text-classification": "TextClassifier",
        "image-classification": "ImageClassifier",
        "speech-recognition": "SpeechRecognizer",
    }
    return getattr(skbig, names[task])  # import only the estimator this task needs


def tiny_task_data(task: str, *, n: int = 24, seed: int = 0) -> tuple[Any, Any, dict[str, Any]]:
    """A small learnable data set for ``task``: ``(X, y, extra estimator params)``."""
    rng = np.random.RandomState(seed)
    if task == "text-classification":
        vocabulary = {"a": ["good", "great", "nice", "好"], "b": ["bad", "awful", "poor", "坏"]}
        labels = ["a", "b"] * (n // 2)
        texts = [" ".join(rng.choice(vocabulary[label], size=4)) for label in labels]
        return texts, labels, {}
    if task == "image-classification":
        classes = np.array([0, 1] * (n // 2))
        images = rng.rand(n, 16, 16, 3).astype(np.float32) * 0.2
        images[classes == 1, :8] += 0.8  # class 1 is bright in the upper half
        return images, classes, {}
    if task == "speech-recognition":
        rate = 8000
        t = np.arange(int(0.4 * rate)) / rate
        words = ["ba", "di"] * (n // 2)
        clips = [
            (np.sin(2 * np.pi * (300 if w == "ba" else 1200) * t) * 0.5 + rng.randn(len(t)) * 0.01).astype(
                np.float32
            )
            for w in words
        ]
        return clips, words, {"sample_rate": rate}
    raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")


if pytest is not None:

    class BackendConformance:
        """Contract tests every backend must pass; override ``backend_cls``."""

        @pytest.fixture
        def backend_cls(self) -> type[Backend]:
            raise pytest.UsageError("override the `backend_cls` fixture to return your Backend class")

        @pytest.fixture
        def estimator_params(self) -> dict[str, Any]:
            """Estimator parameters that keep the fit tiny; override for big models."""
            return {"max_epochs": 2, "batch_size": 8, "random_state": 0, "validation_fraction": 0.0}

        @pytest.fixture
        def sample_data(self, backend_cls: type[Backend]) -> tuple[Any, Any, dict[str, Any]]:
            return tiny_task_data(backend_cls.task)

        @pytest.fixture
        def fitted(self, backend_cls, estimator_params, sample_data):  # type: ignore[no-untyped-def]
            X, y, extra = sample_data
            cls = estimator_for_task(backend_cls.task)
            return cls(backend=backend_cls.name, **estimator_params, **extra).fit(X, y)

        # -- the declared contract ------------------------------------------------------
        def test_declares_contract(self, backend_cls: type[Backend]) -> None:
            assert issubclass(backend_cls, Backend)
            assert isinstance(backend_cls.name, str) and backend_cls.name
            assert backend_cls.task in TASKS
            assert backend_cls.api_version == API_VERSION
            json.dumps(dict(backend_cls.defaults))  # hyper-parameters must be JSON values
            assert not getattr(backend_cls, "__abstractmethods__", None)

        def test_registered_under_its_name(self, backend_cls: type[Backend]) -> None:
            from skbig.backends.registry import get_backend

            assert get_backend(backend_cls.name, backend_cls.task) is backend_cls

        def test_rejects_unknown_hyperparameter(self, backend_cls: type[Backend]) -> None:
            with pytest.raises(InvalidParameterError, match="no_such_param"):
                backend_cls({"no_such_param": 1})

        def test_search_space_names_real_parameters(self, backend_cls: type[Backend]) -> None:
            cls = estimator_for_task(backend_cls.task)
            estimator_params = set(cls().get_params(deep=False))
            for name in backend_cls.search_space():
                if name.startswith("backend_params__"):
                    assert name.split("__", 1)[1] in backend_cls.defaults, name
                else:
                    assert name in estimator_params, name

        # -- behaviour through the estimator ---------------------------------------------
        def test_fit_predict_well_formed(self, fitted, sample_data) -> None:  # type: ignore[no-untyped-def]
            X, _y, _ = sample_data
            predictions = fitted.predict(X)
            assert len(predictions) == len(X)
            if hasattr(fitted, "predict_proba"):
                proba = fitted.predict_proba(X)
                assert proba.shape == (len(X), len(fitted.classes_))
                np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
                assert set(np.asarray(predictions).tolist()) <= set(fitted.classes_.tolist())
            else:
                assert all(isinstance(p, str) for p in predictions)
            assert fitted.history_ and all(np.isfinite(r["train_loss"]) for r in fitted.history_)

        def test_state_is_json_and_save_load_round_trips(self, fitted, sample_data, tmp_path) -> None:  # type: ignore[no-untyped-def]
            import skbig

            X, _, _ = sample_data
            json.dumps(fitted._backend.get_state())
            path = fitted.save(tmp_path / "model.skbig")
            reloaded = skbig.load(path)
            _assert_same_predictions(fitted, reloaded, X)

        def test_pickle_round_trips(self, fitted, sample_data) -> None:  # type: ignore[no-untyped-def]
            import pickle

            X, _, _ = sample_data
            _assert_same_predictions(fitted, pickle.loads(pickle.dumps(fitted)), X)

        def test_image_inputs_of_every_form(self, backend_cls, estimator_params, tmp_path) -> None:  # type: ignore[no-untyped-def]
            """Image backends: small grayscale arrays and files of mixed modes, not only 16x16 RGB."""
            if backend_cls.task != "image-classification":
                pytest.skip("image backends only")
            from PIL import Image

            cls = estimator_for_task(backend_cls.task)
            params = {**estimator_params, "max_epochs": 1}
            rng = np.random.RandomState(0)
            gray = (rng.rand(12, 8, 8) * 255).astype(np.uint8)  # like sklearn's digits: (n, H, W)
            labels = np.array(["a", "b"] * 6)
            assert len(cls(backend=backend_cls.name, **params).fit(gray, labels).predict(gray)) == 12
            paths = []
            for i, pixels in enumerate(gray):
                image = Image.fromarray(pixels).resize((24, 20))
                paths.append(str(tmp_path / f"{i}.png"))
                (image if i % 2 else image.convert("RGB")).save(paths[-1])  # grayscale and RGB files
            model = cls(backend=backend_cls.name, **params).fit(paths, labels)
            assert model.predict_proba(paths).shape == (12, 2)

        def test_same_seed_same_model(self, backend_cls, estimator_params, sample_data, fitted) -> None:  # type: ignore[no-untyped-def]
            X, y, extra = sample_data
            cls = estimator_for_task(backend_cls.task)
            again = cls(backend=backend_cls.name, **estimator_params, **extra).fit(X, y)
            _assert_same_predictions(fitted, again, X)

        def test_head_inputs_reproduce_the_scores(self, backend_cls, fitted, sample_data) -> None:  # type: ignore[no-untyped-def]
            """A backend naming its head (``head_init="linear_probe"``) must report what the head reads."""
            if not backend_cls.task.endswith("classification"):
                pytest.skip("only classifiers have a head to probe")
            backend, module = fitted._backend, fitted.module_.eval()
            head = backend.classifier_head(module)
            if head is None:
                pytest.skip(f"{backend_cls.name} names no classifier_head(): no head_init='linear_probe'")
            import torch

            from skbig.engine.data import iterate_batches

            X, _y, _ = sample_data
            batch = next(iter(iterate_batches(backend.make_data(X), len(X), shuffle=False)))
            with torch.inference_mode():
                features = backend.head_inputs(module, batch)
                assert features.shape == (len(X), head.in_features)
                scores = backend.predict_logits(module, batch).float()
                torch.testing.assert_close(head(features).float(), scores, rtol=1e-4, atol=1e-4)

        def test_build_module_sizes_head_to_task(self, backend_cls, fitted) -> None:  # type: ignore[no-untyped-def]
            spec = TaskSpec(fitted.spec_.task, fitted.spec_.n_outputs + 1, fitted.spec_.extra)
            fitted._backend.pretrained = False
            module = fitted._backend.build_module(spec)
            n_params = sum(p.numel() for p in module.parameters())
            assert n_params > 0


def _assert_same_predictions(a: Any, b: Any, X: Any) -> None:
    if hasattr(a, "predict_proba"):
        np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), rtol=1e-5, atol=1e-6)
    else:
        assert list(a.predict(X)) == list(b.predict(X))
