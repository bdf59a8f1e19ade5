"""``toy_bow``: word counts (learned vocabulary) fed to one linear layer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from skbig.backends.base import TaskSpec, TextClassificationBackend
from skbig.data.text import Vocabulary, tokenize
from skbig.engine.data import TensorData


class BagOfWordsBackend(TextClassificationBackend):
    """Normalised bag-of-words counts and a linear classifier.

    Examples
    --------
    Installed, the plugin's entry point makes the backend a name to pass:

    >>> from skbig import TextClassifier
    >>> clf = TextClassifier(backend="toy_bow", random_state=0)
    >>> reviews = ["great film", "awful film", "great cast", "awful plot"] * 10
    >>> clf = clf.fit(reviews, ["+", "-", "+", "-"] * 10)
    >>> clf.predict(["a great plot", "awful"]).tolist()
    ['+', '-']
    """

    name = "toy_bow"
    defaults = {"max_vocab": 5000, "min_count": 1}
    training_defaults = {"lr": 0.05, "batch_size": 32, "max_epochs": 10}

    def __init__(self, params: dict[str, Any] | None = None) -> None:
        super().__init__(params)
        self.vocabulary: Vocabulary | None = None

    def fit_preprocessing(self, X: Sequence[str]) -> None:
        vocab = Vocabulary(min_count=int(self.params["min_count"]), max_size=int(self.params["max_vocab"]))
        self.vocabulary = vocab.fit(tokenize(text) for text in X)

    def get_state(self) -> dict[str, Any]:
        assert self.vocabulary is not None
        return {"vocabulary": self.vocabulary.to_json()}

    def set_state(self, state: dict[str, Any]) -> None:
        self.vocabulary = Vocabulary.from_json(state["vocabulary"])

    def make_data(self, X: Sequence[str], targets: Any = None, *, train: bool = False) -> TensorData:
        assert self.vocabulary is not None
        counts = torch.zeros((len(X), len(self.vocabulary)))
        for row, text in enumerate(X):
            for token_id in self.vocabulary.encode(tokenize(text)):
                counts[row, token_id] += 1.0
        counts = counts / counts.sum(dim=1, keepdim=True).clamp(min=1.0)
        tensors = {"x": counts}
        if targets is not None:
            tensors["y"] = torch.as_tensor(targets, dtype=torch.long)
        return TensorData(tensors)

    def build_module(self, spec: TaskSpec) -> nn.Module:
        assert self.vocabulary is not None
        return nn.Linear(len(self.vocabulary), spec.n_outputs)
