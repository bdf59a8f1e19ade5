"""What the vocabulary-based text backends share: state, encoding, tensors."""

from __future__ import annotations

import abc
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch

from skbig.backends.base import TextClassificationBackend
from skbig.data.text import Vocabulary, pad_sequences
from skbig.engine.data import TensorData
from skbig.exceptions import InvalidParameterError

__all__ = ["VocabularyBackend"]


class VocabularyBackend(TextClassificationBackend):
    """A text backend whose preprocessing is one learned :class:`Vocabulary`.

    Subclasses say how a text becomes tokens (:meth:`tokens`), whether unknown
    tokens are dropped, and which hyper-parameters size the vocabulary.
    """

    #: Names of the hyper-parameters holding the minimum count and the size cap.
    vocabulary_params: tuple[str, str] = ("min_count", "max_vocab")
    #: Drop tokens never seen in training instead of mapping them to the unknown id.
    drop_unknown: bool = False
    #: Hyper-parameters that size tensors and must be ints >= 1 (checked at construction,
    #: so a bad value is named instead of failing deep inside torch).
    positive_int_params: tuple[str, ...] = ("embed_dim", "max_length")

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(params)
        for key in self.positive_int_params:
            value = self.params.get(key)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise InvalidParameterError(
                    f"backend {self.name!r}: {key} must be an int >= 1, got {key}={value!r}; "
                    f"set it with backend_params__{key}=..."
                )
        self.vocabulary: Vocabulary | None = None

    @abc.abstractmethod
    def tokens(self, text: str) -> list[str]:
        """The tokens (or features) of one text."""

    def _fitted_vocabulary(self) -> Vocabulary:
        if self.vocabulary is None:
            raise RuntimeError(f"{self.name}: fit_preprocessing must run before encoding texts")
        return self.vocabulary

    def fit_preprocessing(self, X: Sequence[str]) -> None:
        min_count, max_size = (int(self.params[k]) for k in self.vocabulary_params)
        texts: Iterable[list[str]] = (self.tokens(t) for t in X)
        self.vocabulary = Vocabulary(min_count=min_count, max_size=max_size).fit(texts)

    def get_state(self) -> dict[str, Any]:
        return {"vocabulary": self._fitted_vocabulary().to_json()}

    def set_state(self, state: Mapping[str, Any]) -> None:
        self.vocabulary = Vocabulary.from_json(state["vocabulary"])

    def make_data(self, X: Sequence[str], targets: Any = None, *, train: bool = False) -> TensorData:
        vocabulary = self._fitted_vocabulary()
        ids = [vocabulary.encode(self.tokens(t), drop_unknown=self.drop_unknown) for t in X]
        x, lengths = pad_sequences(ids, int(self.params["max_length"]))
        tensors = {"x": x, "lengths": lengths}
        if targets is not None:
            tensors["y"] = torch.as_tensor(targets, dtype=torch.long)
        return TensorData(tensors, trim=("x", "lengths"))
