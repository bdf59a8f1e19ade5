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


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run a module's tests on one intra-op torch thread, restoring the count afterwards.

    Tiny models gain nothing from more threads, and on a busy machine the pool
    thrashes.  A module opts in with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def fsdd():
    """The bundled spoken digits, 100 8 kHz clips: (paths, words).  Shared: slice it, never mutate it."""
    from skbig.datasets._audio_samples import load_fsdd_sample

    return load_fsdd_sample()


@pytest.fixture(scope="session")
def corrupt_wav(tmp_path_factory) -> str:
    """Path of a ``corrupt.wav`` that starts like a WAV file but does not decode."""
    path = tmp_path_factory.mktemp("audio") / "corrupt.wav"
    path.write_bytes(b"RIFF\x00\x00 not a wave file" * 4)
    return str(path)
