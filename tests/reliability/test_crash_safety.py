"""Crash safety: SIGKILL a fitting process, rerun it, and get the run that was never interrupted.

``tests/engine/test_checkpoint.py`` kills a TextClassifier in the middle of an
epoch and ``tests/search/test_optuna_search.py`` kills an SQLite-backed
search; this module adds a kill *during the checkpoint write* (the previous
checkpoint must stay loadable) and kill-and-resume for the image and speech
estimators, whose data pipelines carry per-epoch randomness (augmentation).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from skbig.engine import _checkpoint

# The child builds the same estimator as `_make` below, then dies by SIGKILL either in the
# middle of epoch `kill_epoch` (after the previous epoch's checkpoint was written) or halfway
# through writing the checkpoint of epoch `kill_epoch` (a torn temporary file on disk).
CHILD = textwrap.dedent(
    """
    import io, os, signal, sys
    import torch
    torch.set_num_threads(1)
    sys.path.insert(0, sys.argv[5])
    from test_crash_safety import make

    kind, ckpt, kill_epoch, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    estimator, X, y = make(kind, ckpt)
    real_save = torch.save

    def torn_save(state, handle, *args, **kwargs):
        if state.get("epoch") == kill_epoch:
            buffer = io.BytesIO()
            real_save(state, buffer)
            handle.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
            handle.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        return real_save(state, handle, *args, **kwargs)

    if mode == "during-write":
        torch.save = torn_save
    else:
        from skbig.engine.callbacks import Callback

        class KillMidEpoch(Callback):
            def on_batch_end(self, trainer, *, batch_index, loss):
                if trainer.epoch + 1 == kill_epoch and batch_index == 1:
                    os.kill(os.getpid(), signal.SIGKILL)

        estimator.set_params(callbacks=[KillMidEpoch()])
    estimator.fit(X, y)
    """
)


def make(kind: str, checkpoint_dir: str | None):
    """The estimator and data of each kill-and-resume run (also imported by the child)."""
    rng = np.random.RandomState(0)
    common = {"max_epochs": 4, "early_stopping": False, "random_state": 0, "checkpoint_dir": checkpoint_dir}
    if kind == "text":
        from skbig import TextClassifier
        from skbig.datasets import load_sms_spam_sample

        texts, labels = load_sms_spam_sample()
        est = TextClassifier(**common, batch_size=32, backend_params={"embed_dim": 8})
        return est, texts[:200], labels[:200]
    if kind == "image":
        from skbig import ImageClassifier

        X = rng.randint(0, 256, size=(48, 12, 12, 3)).astype(np.uint8)
        y = np.arange(48) % 3
        est = ImageClassifier(
            **common, batch_size=8, backend_params={"width": 4, "depth": 2, "image_size": 12}
        )
        return est, X, y
    from skbig import SpeechRecognizer

    X = [(rng.randn(1600) * 0.1).astype(np.float32) for _ in range(12)]
    y = ["yes", "no", "up"] * 4
    tiny = {"hidden_size": 8, "num_layers": 1, "conv_channels": 2, "n_mels": 16}
    est = SpeechRecognizer(**common, batch_size=4, sample_rate=8000, backend_params=tiny)
    return est, X, y


def _kill(kind: str, ckpt, kill_epoch: int, mode: str) -> subprocess.CompletedProcess:
    here = os.path.dirname(__file__)
    child = subprocess.run(
        [sys.executable, "-c", CHILD, kind, str(ckpt), str(kill_epoch), mode, here],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    return child


def _assert_same_weights(a, b) -> None:
    sa, sb = a.module_.state_dict(), b.module_.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


@pytest.fixture(autouse=True)
def _one_thread():
    # Bit-identical resumes need the same reduction order as the child, which is single-threaded.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_kill_during_checkpoint_write_keeps_the_previous_checkpoint(tmp_path):
    ckpt = tmp_path / "ckpt"
    _kill("text", ckpt, 2, "during-write")
    torn = [p for p in os.listdir(ckpt) if p.endswith(".tmp")]
    assert torn, "the child should have died with a half-written temporary file"
    (saved,) = ckpt.glob("checkpoint-*.pt")
    raw = torch.load(saved, weights_only=True)
    state = _checkpoint.load(ckpt, raw["fingerprint"])  # what the resuming fit reads
    assert state is not None and state["epoch"] == 1  # the complete previous checkpoint

    est, X, y = make("text", str(ckpt))
    resumed = est.fit(X, y)
    assert [r["epoch"] for r in resumed.history_] == [1, 2, 3, 4]
    assert resumed.history_[0] == state["history"][0]  # epoch 1 was not redone
    uninterrupted = make("text", None)[0].fit(X, y)
    _assert_same_weights(resumed, uninterrupted)


@pytest.mark.parametrize("kind", ["image", pytest.param("speech", marks=pytest.mark.slow)])
def test_killed_fit_resumes_and_matches_the_uninterrupted_run(kind, tmp_path):
    ckpt = tmp_path / "ckpt"
    _kill(kind, ckpt, 3, "mid-epoch")
    (saved,) = ckpt.glob("checkpoint-*.pt")
    assert torch.load(saved, weights_only=True)["epoch"] == 2

    est, X, y = make(kind, str(ckpt))
    resumed = est.fit(X, y)
    assert [r["epoch"] for r in resumed.history_] == [1, 2, 3, 4]
    uninterrupted = make(kind, None)[0].fit(X, y)
    _assert_same_weights(resumed, uninterrupted)
