"""Checkpoints: resume after a real SIGKILL, atomic writes, refusal to mix runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from sklearn.model_selection import cross_val_score

from skbig import TextClassifier
from skbig.engine import _checkpoint
from skbig.exceptions import CheckpointError

# The child fits on the bundled SMS sample and SIGKILLs itself in the middle of
# epoch `kill_epoch`, after the checkpoint of the previous epoch was written.
CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from skbig import TextClassifier
    from skbig.datasets import load_sms_spam_sample
    from skbig.engine.callbacks import Callback

    class KillMidEpoch(Callback):
        def __init__(self, epoch):
            self.epoch = epoch
        def on_batch_end(self, trainer, *, batch_index, loss):
            if trainer.epoch + 1 == self.epoch and batch_index == 3:
                os.kill(os.getpid(), signal.SIGKILL)

    texts, labels = load_sms_spam_sample()
    params = dict(max_epochs=5, early_stopping=False, random_state=0, checkpoint_dir=sys.argv[1])
    kill_epoch = int(sys.argv[2])
    TextClassifier(**params, callbacks=[KillMidEpoch(kill_epoch)]).fit(texts[:300], labels[:300])
    """
)


def _fit_params(checkpoint_dir=None):
    return dict(max_epochs=5, early_stopping=False, random_state=0, checkpoint_dir=checkpoint_dir)


@pytest.fixture(scope="module")
def sample300():
    from skbig.datasets import load_sms_spam_sample

    texts, labels = load_sms_spam_sample()
    return texts[:300], labels[:300]


def test_killed_fit_resumes_from_last_epoch_and_matches_uninterrupted_run(tmp_path, sample300):
    X, y = sample300
    ckpt = tmp_path / "ckpt"
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(ckpt), "3"], capture_output=True, text=True, timeout=300
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    (saved,) = ckpt.glob("checkpoint-*.pt")
    state = torch.load(saved, weights_only=True)
    assert state["epoch"] == 2  # epochs 1 and 2 completed before the kill
    assert not [p for p in os.listdir(ckpt) if p.endswith(".tmp")]

    resumed = TextClassifier(**_fit_params(str(ckpt))).fit(X, y)
    assert [r["epoch"] for r in resumed.history_] == [1, 2, 3, 4, 5]
    assert resumed.history_[:2] == state["history"]  # the first two epochs were not redone

    uninterrupted = TextClassifier(**_fit_params()).fit(X, y)
    for key, value in uninterrupted.module_.state_dict().items():
        assert torch.equal(value, resumed.module_.state_dict()[key]), key
    np.testing.assert_array_equal(resumed.predict_proba(X), uninterrupted.predict_proba(X))


class _Crash(Exception):
    pass


def _untimed(history):
    return [{k: v for k, v in record.items() if k != "seconds"} for record in history]


@pytest.mark.parametrize("crash_epoch", [2, 3, 4], ids=["before-unfreeze", "at-unfreeze", "after-unfreeze"])
def test_resumed_fit_unfreezes_like_the_uninterrupted_one(tmp_path, sample300, crash_epoch):
    from skbig.engine.callbacks import Callback

    class CrashMidEpoch(Callback):
        def on_batch_end(self, trainer, *, batch_index, loss):
            if trainer.epoch + 1 == crash_epoch and batch_index == 3:
                raise _Crash

    X, y = sample300
    # The embedding trains from epoch index 2 (the third epoch) on, at 0.3 x lr.
    params = dict(**_fit_params(), freeze=["embedding.*"], unfreeze_at=2, backbone_lr_mult=0.3)
    with pytest.raises(_Crash):
        TextClassifier(**{**params, "checkpoint_dir": str(tmp_path)}, callbacks=[CrashMidEpoch()]).fit(X, y)
    resumed = TextClassifier(**{**params, "checkpoint_dir": str(tmp_path)}).fit(X, y)
    uninterrupted = TextClassifier(**params).fit(X, y)
    assert _untimed(resumed.history_) == _untimed(uninterrupted.history_)
    for key, value in uninterrupted.module_.state_dict().items():
        assert torch.equal(value, resumed.module_.state_dict()[key]), key


def test_completed_checkpoint_is_not_retrained(tmp_path, sample300):
    X, y = sample300
    first = TextClassifier(**_fit_params(str(tmp_path))).fit(X, y)
    again = TextClassifier(**_fit_params(str(tmp_path))).fit(X, y)
    assert again.history_ == first.history_
    np.testing.assert_array_equal(again.predict_proba(X), first.predict_proba(X))


def test_fits_of_other_parameters_or_data_keep_their_own_checkpoints(tmp_path, sample300):
    # The folds of cross_val_score share one checkpoint_dir; none may resume another's run.
    X, y = sample300
    params = {"max_epochs": 1, "random_state": 0, "checkpoint_dir": str(tmp_path)}
    first = TextClassifier(**params).fit(X, y)
    other_lr = TextClassifier(**params, lr=0.1).fit(X, y)
    other_data = TextClassifier(**params).fit(X[:200], y[:200])
    assert len(list(tmp_path.glob("checkpoint-*.pt"))) == 3
    assert other_lr.history_ != first.history_ and other_data.history_ != first.history_
    cv = cross_val_score(TextClassifier(**params), X, y, cv=3)
    assert len(cv) == 3 and len(list(tmp_path.glob("checkpoint-*.pt"))) == 6


def test_a_checkpoint_whose_fingerprint_differs_is_refused(tmp_path):
    _checkpoint.save(tmp_path, {"fingerprint": "abc-one-fit", "epoch": 1})
    _checkpoint.checkpoint_path(tmp_path, "abc-one-fit").rename(_checkpoint.checkpoint_path(tmp_path, "abc"))
    with pytest.raises(CheckpointError, match="other parameters or data"):
        _checkpoint.load(tmp_path, "abc")


def test_corrupt_checkpoint_is_refused_with_clear_error(tmp_path):
    _checkpoint.checkpoint_path(tmp_path, "anything").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot be read"):
        _checkpoint.load(tmp_path, "anything")


def test_write_is_atomic_when_interrupted(tmp_path, monkeypatch):
    _checkpoint.save(tmp_path, {"fingerprint": "f", "epoch": 1})

    def explode(*args, **kwargs):
        raise KeyboardInterrupt  # e.g. Ctrl-C in the middle of torch.save

    monkeypatch.setattr(torch, "save", explode)
    with pytest.raises(KeyboardInterrupt):
        _checkpoint.save(tmp_path, {"fingerprint": "f", "epoch": 2})
    monkeypatch.undo()
    assert _checkpoint.load(tmp_path, "f")["epoch"] == 1  # previous checkpoint intact
    assert os.listdir(tmp_path) == ["checkpoint-f.pt"]  # no temp file left behind


def test_a_fit_without_random_state_resumes_its_own_checkpoint(tmp_path, sample300):
    # The rerun after a crash must split and build the vocabulary as the run that wrote the
    # checkpoint did; with a fresh random seed the weights would not even load.
    X, y = sample300
    params = {
        "max_epochs": 2,
        "early_stopping": False,
        "validation_fraction": 0.2,
        "checkpoint_dir": str(tmp_path),
    }
    first = TextClassifier(**params).fit(X, y)
    again = TextClassifier(**params).fit(X, y)
    assert len(list(tmp_path.glob("checkpoint-*.pt"))) == 1
    assert again.history_ == first.history_
    np.testing.assert_array_equal(again.predict_proba(X), first.predict_proba(X))


def test_a_random_state_instance_is_fingerprinted_by_its_state(tmp_path, sample300):
    X, y = sample300
    params = {"max_epochs": 1, "checkpoint_dir": str(tmp_path)}
    first = TextClassifier(**params, random_state=np.random.RandomState(3)).fit(X, y)
    again = TextClassifier(**params, random_state=np.random.RandomState(3)).fit(X, y)
    TextClassifier(**params, random_state=np.random.RandomState(4)).fit(X, y)
    assert again.history_ == first.history_
    assert len(list(tmp_path.glob("checkpoint-*.pt"))) == 2  # seed 3 resumed once, seed 4 its own


def test_a_warm_start_fit_does_not_resume_the_fit_it_continues(tmp_path, sample300):
    X, y = sample300
    clf = TextClassifier(max_epochs=1, random_state=0, warm_start=True, checkpoint_dir=str(tmp_path))
    clf.fit(X, y)
    before = {k: v.clone() for k, v in clf.module_.state_dict().items()}
    clf.fit(X, y)
    assert any(not torch.equal(before[k], v) for k, v in clf.module_.state_dict().items())
    assert len(list(tmp_path.glob("checkpoint-*.pt"))) == 2


def test_image_files_rewritten_under_the_same_names_are_other_data(tmp_path):
    from PIL import Image

    from skbig import ImageClassifier

    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    paths, labels = [], []
    for i in range(12):
        path = folder / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
        labels.append(i % 2)
    params = {"backend": "cnn", "max_epochs": 1, "random_state": 0, "checkpoint_dir": str(tmp_path / "ckpt")}
    ImageClassifier(**params).fit(paths, labels)
    ImageClassifier(**params).fit(paths, labels)  # unchanged files: resumed, no new checkpoint
    assert len(list((tmp_path / "ckpt").glob("checkpoint-*.pt"))) == 1
    for path in paths:
        Image.fromarray(rng.integers(0, 256, (9, 9, 3), dtype=np.uint8)).save(path)
    ImageClassifier(**params).fit(paths, labels)
    assert len(list((tmp_path / "ckpt").glob("checkpoint-*.pt"))) == 2
    # PIL images count by their pixels (their repr holds a memory address): equal ones resume.
    images = [Image.open(p).convert("RGB") for p in paths]
    ImageClassifier(**params).fit(images, labels)
    ImageClassifier(**params).fit([im.copy() for im in images], labels)
    assert len(list((tmp_path / "ckpt").glob("checkpoint-*.pt"))) == 3


def test_an_unwritable_checkpoint_dir_is_named_before_training(tmp_path, sample300):
    X, y = sample300
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    clf = TextClassifier(max_epochs=1, checkpoint_dir=str(blocker / "ckpt"))
    with pytest.raises(CheckpointError, match=r"checkpoint_dir .*a-file/ckpt.* cannot be written"):
        clf.fit(X, y)
    assert not hasattr(clf, "history_")  # refused before the first epoch


def test_a_failed_checkpoint_write_names_the_directory_and_keeps_the_last_one(tmp_path, monkeypatch):
    _checkpoint.save(tmp_path, {"fingerprint": "f", "epoch": 1})

    def disk_full(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 3008 vs 2902")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(CheckpointError, match=r"could not write the checkpoint to .*free disk space"):
        _checkpoint.save(tmp_path, {"fingerprint": "f", "epoch": 2})
    monkeypatch.undo()
    assert _checkpoint.load(tmp_path, "f")["epoch"] == 1
    assert os.listdir(tmp_path) == ["checkpoint-f.pt"]
