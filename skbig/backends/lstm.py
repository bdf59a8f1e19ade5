"""``lstm``: word embeddings, a bidirectional LSTM and a dense head.

The classic recurrent text model.  Tokens come from
:func:`skbig.data.text.tokenize`, so scripts without spaces are read
character by character.  Tokens seen fewer than ``min_count`` times share the
unknown id, which therefore gets trained and stands for unseen words later.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from skbig.backends._text_common import VocabularyBackend
from skbig.backends.base import TaskSpec
from skbig.data.text import tokenize

__all__ = ["LSTMBackend", "LSTMModule"]


class LSTMModule(nn.Module):
    """Embedding -> BiLSTM -> concatenated max and mean pooling -> Linear."""

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        hidden_size: int,
        num_layers: int,
        n_classes: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.lstm = nn.LSTM(
            embed_dim,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(4 * hidden_size, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lengths = (x != 0).sum(dim=1).clamp(min=1)
        embedded = self.dropout(self.embedding(x))
        packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        mask = (torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]).unsqueeze(-1)
        mean = (out * mask).sum(dim=1) / lengths[:, None].to(out.dtype)
        maxed = out.masked_fill(~mask, float("-inf")).amax(dim=1)
        return self.head(self.dropout(torch.cat([maxed, mean], dim=1)))


class LSTMBackend(VocabularyBackend):
    """Built-in recurrent text classifier; see the module docstring."""

    name = "lstm"
    defaults = {
        "embed_dim": 128,
        "hidden_size": 128,
        "num_layers": 1,
        "dropout": 0.3,
        "min_count": 2,
        "max_vocab": 30_000,
        "max_length": 256,
    }
    training_defaults = {"lr": 2e-3, "batch_size": 32, "max_epochs": 15, "weight_decay": 0.0}
    positive_int_params = ("embed_dim", "hidden_size", "num_layers", "max_length")

    def tokens(self, text: str) -> list[str]:
        return tokenize(text)

    def build_module(self, spec: TaskSpec) -> nn.Module:
        p = self.params
        return LSTMModule(
            len(self._fitted_vocabulary()),
            int(p["embed_dim"]),
            int(p["hidden_size"]),
            int(p["num_layers"]),
            spec.n_outputs,
            float(p["dropout"]),
        )

    @classmethod
    def search_space(cls) -> dict[str, Any]:
        from skbig.search.spaces import Categorical, Float

        return {
            "lr": Float(5e-4, 1e-2, log=True),
            "backend_params__hidden_size": Categorical([64, 128, 256]),
            "backend_params__dropout": Float(0.0, 0.5),
        }
