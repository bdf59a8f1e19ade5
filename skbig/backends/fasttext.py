"""``fasttext``: a bag of word, word-bigram and character n-gram embeddings.

The classic fast text baseline (Joulin et al., 2016): average the embeddings
of every feature of a document and classify with one linear layer.  Character
n-grams make it robust to spelling variants and let it work on scripts
without spaces, where token bigrams are character bigrams.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from skbig.backends._text_common import VocabularyBackend
from skbig.backends.base import TaskSpec
from skbig.data.text import tokenize

__all__ = ["FastTextBackend", "FastTextModule", "fasttext_features"]


def fasttext_features(text: str, *, word_ngrams: int, min_char_ngram: int, max_char_ngram: int) -> list[str]:
    """All features of one document: words, word n-grams up to ``word_ngrams``, char n-grams."""
    words = tokenize(text)
    features = ["w:" + w for w in words]
    for n in range(2, word_ngrams + 1):
        features += ["b:" + " ".join(words[i : i + n]) for i in range(len(words) - n + 1)]
    if min_char_ngram > 0:
        for word in words:
            if len(word) < 2:
                continue
            marked = f"<{word}>"
            for n in range(min_char_ngram, max_char_ngram + 1):
                features += ["c:" + marked[i : i + n] for i in range(len(marked) - n + 1)]
    return features


class FastTextModule(nn.Module):
    """Mean of feature embeddings followed by a linear classifier."""

    def __init__(self, vocab_size: int, embed_dim: int, n_classes: int, dropout: float) -> None:
        super().__init__()
        self.embedding = nn.EmbeddingBag(vocab_size, embed_dim, mode="mean", padding_idx=0)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(embed_dim, n_classes)
        nn.init.uniform_(self.embedding.weight, -1.0 / embed_dim, 1.0 / embed_dim)
        with torch.no_grad():
            self.embedding.weight[0].zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.embedding(x)))


class FastTextBackend(VocabularyBackend):
    """Built-in fast text baseline; see the module docstring.

    Hyper-parameters: ``embed_dim``, ``word_ngrams`` (1 = words only),
    ``min_char_ngram``/``max_char_ngram`` (0 disables character n-grams),
    ``min_count``, ``max_features``, ``max_length`` (features kept per text)
    and ``dropout``.  Features never seen in training are ignored.
    """

    name = "fasttext"
    defaults = {
        "embed_dim": 64,
        "word_ngrams": 2,
        "min_char_ngram": 2,
        "max_char_ngram": 5,
        "min_count": 1,
        "max_features": 300_000,
        "max_length": 3000,
        "dropout": 0.2,
    }
    # Converges in a few epochs; a short patience avoids paying for epochs that cannot help.
    training_defaults = {"lr": 5e-3, "batch_size": 16, "max_epochs": 20, "weight_decay": 0.0, "patience": 3}
    vocabulary_params = ("min_count", "max_features")
    drop_unknown = True

    def tokens(self, text: str) -> list[str]:
        p = self.params
        return fasttext_features(
            text,
            word_ngrams=int(p["word_ngrams"]),
            min_char_ngram=int(p["min_char_ngram"]),
            max_char_ngram=int(p["max_char_ngram"]),
        )

    def build_module(self, spec: TaskSpec) -> nn.Module:
        p = self.params
        vocab_size = len(self._fitted_vocabulary())
        return FastTextModule(vocab_size, int(p["embed_dim"]), spec.n_outputs, float(p["dropout"]))

    @classmethod
    def search_space(cls) -> dict[str, Any]:
        from skbig.search.spaces import Categorical, Float, Int

        return {
            "lr": Float(1e-3, 3e-2, log=True),
            "backend_params__embed_dim": Categorical([32, 64, 128]),
            "backend_params__dropout": Float(0.0, 0.5),
            "backend_params__word_ngrams": Int(1, 3),
        }
