"""The toy plugin, installed as a real distribution, passes skbig's conformance suite."""

from __future__ import annotations

from importlib import metadata

import pytest
from skbig_toy.backend import BagOfWordsBackend

import skbig
from skbig.testing import BackendConformance


class TestBagOfWordsConformance(BackendConformance):
    @pytest.fixture
    def backend_cls(self):
        return BagOfWordsBackend


def test_installed_as_a_distribution_and_discovered():
    assert metadata.version("skbig-toy") == "0.1.0"
    row = {r.name: r for r in skbig.list_backends("text-classification")}["toy_bow"]
    assert (row.distribution, row.status) == ("skbig-toy", "ok")


def test_learns_a_simple_rule():
    X = ["good movie", "great film", "bad movie", "awful film"] * 10
    y = ["pos", "pos", "neg", "neg"] * 10
    clf = skbig.TextClassifier(backend="toy_bow", max_epochs=30, validation_fraction=0.0, random_state=0).fit(
        X, y
    )
    assert list(clf.predict(["good film", "awful movie"])) == ["pos", "neg"]
