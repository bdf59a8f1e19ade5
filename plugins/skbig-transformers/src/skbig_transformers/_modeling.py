"""The network and the Hugging Face calls behind the backends.

``transformers`` is imported inside the functions, never at module level: the
registry imports :mod:`skbig_transformers.backend` whenever backends are
listed, and that must not cost the seconds ``import transformers`` takes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from skbig.exceptions import InvalidParameterError, SkbigError
from skbig.pretrained import WeightsNotFoundError

#: Files one of which a saved tokenizer writes (fast, WordPiece, BPE, SentencePiece).
TOKENIZER_FILES = (
    "tokenizer.json",
    "vocab.txt",
    "vocab.json",
    "spiece.model",
    "sentencepiece.bpe.model",
    "tokenizer.model",
)

__all__ = ["EncoderClassifier", "load_config", "load_encoder", "load_tokenizer", "POOLINGS"]

POOLINGS = ("mean", "cls")


class EncoderClassifier(nn.Module):
    """A Hugging Face encoder, a pooling step, dropout and a fresh linear head.

    Parameters
    ----------
    encoder : nn.Module
        A ``transformers`` base model whose output has ``last_hidden_state``.
    n_classes : int
        Output size of the head.
    dropout : float
        Dropout on the pooled vector, before the head.
    pooling : {"mean", "cls"}
        ``"mean"`` averages the token vectors the attention mask keeps (what
        sentence-transformers models are trained for); ``"cls"`` takes the
        first token's vector (what BERT-style classifiers use).
    group_size : int, default=8
        Texts per length group on a CPU (see :meth:`forward`); 0 disables grouping.

    Notes
    -----
    Parameter names start with ``encoder.`` (the backbone) or ``head.``, which
    is what the backend's ``backbone_parameter_names`` relies on.
    """

    def __init__(
        self, encoder: nn.Module, n_classes: int, dropout: float, pooling: str, *, group_size: int = 8
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise InvalidParameterError(f"pooling must be one of {list(POOLINGS)}, got pooling={pooling!r}")
        self.encoder = encoder
        self.pooling = pooling
        self.group_size = group_size
        self.dropout = nn.Dropout(dropout)
        config: Any = encoder.config
        hidden = int(config.hidden_size)
        std = float(getattr(config, "initializer_range", 0.02))
        self.head = nn.Linear(hidden, n_classes)
        # The encoder's own initialisation scale: a head much larger than the
        # pretrained features would push big gradients into the backbone at first.
        nn.init.normal_(self.head.weight, std=std)
        nn.init.zeros_(self.head.bias)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Class scores ``(batch, n_classes)`` of right-padded token ids.

        On a CPU, a batch of mixed lengths runs as groups of ``group_size``
        texts of similar length, each cut to its own longest text: the same
        scores for a fraction of the work (padding is computed like any other
        token, and short texts padded to a long one's length waste most of
        it).  GPUs prefer one large batch, so they get the batch whole.
        """
        return self._grouped(self._scores, input_ids, attention_mask)

    def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The pooled vectors ``(batch, hidden)`` the head reads, in batch order (for a linear probe)."""
        return self._grouped(self._pooled, input_ids, attention_mask)

    def _grouped(self, fn: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        n = input_ids.shape[0]
        if input_ids.device.type != "cpu" or self.group_size < 1 or n <= self.group_size:
            return fn(input_ids, attention_mask)  # type: ignore[no-any-return]
        lengths = attention_mask.sum(dim=1)
        order = torch.argsort(lengths, stable=True)
        outputs = []
        for group in torch.split(order, self.group_size):
            longest = max(int(lengths[group].max()), 1)
            outputs.append(fn(input_ids[group, :longest], attention_mask[group, :longest]))
        return torch.cat(outputs)[torch.argsort(order)]  # back to batch order

    def _pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.pooling == "cls":
            return hidden[:, 0]  # type: ignore[no-any-return]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)  # type: ignore[no-any-return]

    def _scores(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self._pooled(input_ids, attention_mask)))  # type: ignore[no-any-return]


@contextlib.contextmanager
def _no_progress_bars() -> Iterator[None]:
    """Hide transformers' "Loading weights" bar for one call; restore the user's setting."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    if enabled:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


@contextlib.contextmanager
def _loading(what: str, path: Path) -> Iterator[None]:
    """Turn transformers' errors for an unreadable directory into one that names it."""
    try:
        yield
    except SkbigError:
        raise
    except (OSError, ValueError, KeyError) as exc:
        raise WeightsNotFoundError(
            f"could not load the {what} from {str(path)!r} ({type(exc).__name__}: {exc}); pass a "
            "directory written by save_pretrained() of both the model and its tokenizer"
        ) from exc


def load_config(path: Path) -> Any:
    """The model configuration in ``path`` (never downloads)."""
    from transformers import AutoConfig

    with _loading("model configuration", path):
        config = AutoConfig.from_pretrained(str(path), local_files_only=True)
    if getattr(config, "is_encoder_decoder", False):
        raise InvalidParameterError(
            "hf_encoder needs an encoder-only model (BERT, RoBERTa, DeBERTa, MiniLM, ...), but "
            f"{str(path)!r} holds an encoder-decoder model of type {config.model_type!r}; "
            "pick an encoder checkpoint"
        )
    return config


#: Model types whose position ids start after the padding index (RoBERTa's scheme),
#: so ``pad_token_id + 1`` of their position embeddings are never used by text.
_PADDING_OFFSET_POSITIONS = frozenset(
    {"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "longformer", "data2vec-text",
     "ibert", "mpnet", "roberta-prelayernorm", "xmod", "luke", "markuplm"}
)  # fmt: skip


def position_limit(config: Any) -> int | None:
    """The most tokens the encoder's absolute position embeddings can number, or None."""
    positions = getattr(config, "max_position_embeddings", None)
    if not isinstance(positions, int) or positions <= 0:
        return None
    if getattr(config, "model_type", None) in _PADDING_OFFSET_POSITIONS:
        positions -= int(getattr(config, "pad_token_id", None) or 0) + 1
    return positions


def load_encoder(path: Path, *, pretrained: bool) -> nn.Module:
    """The base model of ``path``: its weights when ``pretrained``, else a random init from its config."""
    from transformers import AutoModel

    config = load_config(path)
    with _no_progress_bars(), _loading("encoder weights", path):
        if pretrained:
            encoder = AutoModel.from_pretrained(str(path), config=config, local_files_only=True)
        else:
            encoder = AutoModel.from_config(config)
    return encoder.float()  # type: ignore[no-any-return]


def load_tokenizer(path: Path) -> Any:
    """The tokenizer of ``path``, padding on the right (the backend relies on it)."""
    from transformers import AutoTokenizer

    if not any((Path(path) / name).is_file() for name in TOKENIZER_FILES):
        # Without this check transformers may build an empty default tokenizer
        # that maps every word to [UNK]: a fit that "works" and learns nothing.
        raise WeightsNotFoundError(
            f"{str(path)!r} holds no tokenizer (none of {', '.join(TOKENIZER_FILES)}); save it "
            "beside the model: tokenizer.save_pretrained(path)"
        )
    with _loading("tokenizer", path):
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    if tokenizer.pad_token is None:
        raise InvalidParameterError(
            f"the tokenizer in {str(path)!r} has no padding token, which batching needs; "
            "set one (tokenizer.pad_token = ...) and save_pretrained it again, or pick an encoder model"
        )
    tokenizer.padding_side = "right"
    return tokenizer
