"""Text inputs: validation, tokenisation and learned vocabularies.

Tokenisation must work for scripts written without spaces (Chinese, Japanese,
Thai, ...): every character of such a script is its own token, and the
backends add character n-grams or token bigrams on top, so a sequence of
Chinese characters yields the same kind of features as a sequence of words.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from skbig.data.labels import is_missing
from skbig.exceptions import InputTypeError, InvalidInputError

__all__ = ["check_texts", "tokenize", "Vocabulary", "PAD_ID", "UNK_ID"]

# Scripts that do not separate words with spaces: Thai, Lao, Myanmar, Khmer,
# Hiragana, Katakana, CJK ideographs (with extension A and compatibility).
_NO_SPACE = (
    "\u0e00-\u0e7f\u0e80-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
)
_TOKEN_RE = re.compile(rf"[{_NO_SPACE}]|[^\W{_NO_SPACE}]+|[^\w\s]")

PAD_ID = 0
UNK_ID = 1


def check_texts(X: Any, *, name: str = "X") -> list[str]:
    """Validate a 1-D collection of strings and return it as a list.

    Accepts a list, tuple, 1-D array, pandas Series or a single-column 2-D
    array/DataFrame.  A bare string is refused (it is almost always a bug).

    Raises
    ------
    InputTypeError
        For a non-sequence, a bare string or a non-string item (named by index).
    InvalidInputError
        For an empty collection or a missing value (None/NaN) at an index.
    """
    if isinstance(X, (str, bytes)):
        raise InputTypeError(
            f"{name} must be a sequence of strings, got a single {type(X).__name__}; "
            f"wrap it in a list: [{name}]"
        )
    if hasattr(X, "to_numpy"):  # pandas Series / DataFrame
        X = X.to_numpy()
    if isinstance(X, np.ndarray):
        if X.ndim == 2 and X.shape[1] == 1:
            X = X[:, 0]
        if X.ndim != 1:
            raise InvalidInputError(
                f"{name} must be 1-D (one text per sample), got an array of shape {X.shape}"
            )
        X = X.tolist()
    elif not isinstance(X, Sequence):
        raise InputTypeError(f"{name} must be a list, array or Series of strings, got {type(X).__name__}")
    texts = list(X)
    if not texts:
        raise InvalidInputError(f"{name} is empty: at least one text is required")
    for index, item in enumerate(texts):
        if isinstance(item, str):
            continue
        if is_missing(item):
            raise InvalidInputError(
                f"{name}[{index}] is a missing value ({item!r}); drop it or fill it with a string"
            )
        raise InputTypeError(f"{name}[{index}] must be a str, got {type(item).__name__} ({item!r:.50})")
    return texts


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens; one token per character in scripts without spaces."""
    return _TOKEN_RE.findall(text.lower())


class Vocabulary:
    """A frequency-ranked mapping from token to id, learned in ``fit``.

    Id 0 is padding and id 1 stands for tokens never seen (or too rare) in
    training.  The mapping is plain JSON-serialisable data.

    Parameters
    ----------
    min_count : int
        Tokens seen in fewer training documents are mapped to the unknown id.
    max_size : int
        Keep at most this many tokens (the most frequent; ties by token).
    """

    def __init__(self, *, min_count: int = 1, max_size: int = 100_000) -> None:
        self.min_count = min_count
        self.max_size = max_size
        self.index: dict[str, int] = {}

    def fit(self, documents: Iterable[Iterable[str]]) -> Vocabulary:
        counts: Counter[str] = Counter()
        for tokens in documents:
            counts.update(set(tokens))
        kept = sorted(
            (tok for tok, c in counts.items() if c >= self.min_count),
            key=lambda tok: (-counts[tok], tok),
        )[: self.max_size]
        self.index = {tok: i + 2 for i, tok in enumerate(kept)}
        return self

    def __len__(self) -> int:
        """Number of ids, padding and unknown included."""
        return len(self.index) + 2

    def encode(self, tokens: Iterable[str], *, drop_unknown: bool = False) -> list[int]:
        get = self.index.get
        if drop_unknown:
            ids = [i for i in map(get, tokens) if i is not None]
            return ids or [UNK_ID]
        return [get(tok, UNK_ID) for tok in tokens] or [UNK_ID]

    def to_json(self) -> dict[str, Any]:
        tokens = sorted(self.index, key=self.index.__getitem__)
        return {"min_count": self.min_count, "max_size": self.max_size, "tokens": tokens}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Vocabulary:
        vocab = cls(min_count=int(data["min_count"]), max_size=int(data["max_size"]))
        vocab.index = {tok: i + 2 for i, tok in enumerate(data["tokens"])}
        return vocab


def pad_sequences(sequences: Sequence[Sequence[int]], max_length: int) -> tuple[Any, Any]:
    """Right-pad id lists into a ``(n, L)`` LongTensor plus their lengths."""
    import torch

    lengths = torch.tensor([min(len(s), max_length) for s in sequences], dtype=torch.long)
    out = torch.zeros((len(sequences), max(int(lengths.max()), 1)), dtype=torch.long)
    for row, seq in enumerate(sequences):
        seq = seq[:max_length]
        out[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
    return out, lengths
