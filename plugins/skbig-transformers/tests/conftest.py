"""A tiny BERT written to disk once per session, so the tests need neither network nor big weights."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing in these tests may download
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

#: Every word the tests write, plus the words of skbig.testing.tiny_task_data.
WORDS = [
    "good",
    "great",
    "nice",
    "fine",
    "bad",
    "awful",
    "poor",
    "sad",
    "movie",
    "film",
    "a",
    "the",
    "好",
    "坏",
]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


@pytest.fixture(autouse=True)
def _seed_everything():
    import torch

    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


def write_tiny_bert(path):
    """Save a 2-layer, 32-dim BERT and a WordPiece tokenizer over :data:`WORDS` to ``path``."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(SPECIALS + WORDS)}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=64,
    ).save_pretrained(path)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    """Directory of the tiny BERT, as a str (what ``backend_params={"model": ...}`` takes)."""
    return str(write_tiny_bert(tmp_path_factory.mktemp("tiny-bert")))


@pytest.fixture(scope="session")
def sentiment():
    """40 short texts with an obvious rule: (texts, labels)."""
    pos = ["good movie", "great film", "nice film", "a fine movie", "the good film"]
    neg = ["bad movie", "awful film", "poor film", "a sad movie", "the awful film"]
    return (pos + neg) * 4, (["pos"] * 5 + ["neg"] * 5) * 4
