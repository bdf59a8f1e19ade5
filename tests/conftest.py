"""Shared fixtures: seeded RNGs, tiny data sets, and small fitted models reused per module."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _seed_everything():
    """Every test starts from the same global RNG state."""
    import torch

    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def sms_sample():
    """The bundled SMS spam sample: (texts, labels)."""
    from skbig.datasets import load_sms_spam_sample

    return load_sms_spam_sample()


@pytest.fixture(scope="session")
def small_sms(sms_sample):
    """400 stratified messages (fast enough for many fits)."""
    from sklearn.model_selection import train_test_split

    texts, labels = sms_sample
    X, _, y, _ = train_test_split(texts, labels, train_size=400, stratify=labels, random_state=0)
    return list(X), list(y)
