"""Every built-in backend passes the conformance suite that plugins run too."""

from __future__ import annotations

import pytest

from skbig.backends.fasttext import FastTextBackend
from skbig.backends.lstm import LSTMBackend
from skbig.testing import BackendConformance


class TestFastTextConformance(BackendConformance):
    @pytest.fixture
    def backend_cls(self):
        return FastTextBackend


class TestLSTMConformance(BackendConformance):
    @pytest.fixture
    def backend_cls(self):
        return LSTMBackend
