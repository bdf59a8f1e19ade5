"""Out-of-memory back-off: halve the micro-batch, double gradient accumulation, same effective batch.

On the CPU the fault is injected by a backend whose loss raises
``torch.OutOfMemoryError`` for batches above a size, which is exactly how a
real CUDA OOM depends on the batch.  The ``gpu`` test provokes a real one by
capping the process's share of GPU memory.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from skbig import ImageClassifier, TextClassifier
from skbig.backends.fasttext import FastTextBackend
from skbig.backends.registry import register_backend, unregister_backend
from skbig.engine.callbacks import Callback
from skbig.engine.data import split_batch
from skbig.exceptions import DeviceMemoryError

TEXTS = [f"{w} {v} item {i}" for i, (w, v) in enumerate(zip(["good", "bad"] * 20, ["day", "night"] * 20))]
LABELS = [i % 2 for i in range(40)]


class OomAboveBackend(FastTextBackend):
    """Runs out of "memory" for any batch of more than ``limit`` samples."""

    name = "oom_above"
    limit = 4
    seen: list[int] = []

    def loss(self, module, batch, *, class_weight=None):
        n = len(batch["y"])
        OomAboveBackend.seen.append(n)
        if n > OomAboveBackend.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected)")
        return super().loss(module, batch, class_weight=class_weight)


class CountSteps(Callback):
    def __init__(self):
        self.steps = 0

    def on_batch_end(self, trainer, *, batch_index, loss):
        self.steps += 1


@pytest.fixture
def oom_backend():
    register_backend(OomAboveBackend, replace=True)
    OomAboveBackend.seen = []
    yield OomAboveBackend
    unregister_backend("oom_above")


def _clf(backend: str, **params) -> TextClassifier:
    return TextClassifier(
        **{
            "backend": backend,
            "batch_size": 16,
            "max_epochs": 2,
            "validation_fraction": 0.0,
            "random_state": 0,
            "backend_params": {"embed_dim": 8, "dropout": 0.0},
            **params,
        }
    )


def test_oom_halves_the_micro_batch_and_keeps_the_effective_batch(oom_backend):
    steps = CountSteps()
    clf = _clf("oom_above", callbacks=[steps]).fit(TEXTS, LABELS)
    # 16 fails, 8 fails, 4 fits: four micro-batches of 4 per optimizer step from then on.
    assert OomAboveBackend.seen[:3] == [16, 8, 4]
    assert max(OomAboveBackend.seen[3:]) <= 4
    assert [(r["micro_batch_size"], r["accumulation"]) for r in clf.history_] == [(4, 4), (4, 4)]
    assert steps.steps == 2 * 3  # ceil(40 / 16) optimizer steps per epoch, as without the back-off
    assert clf.batch_size_ == 4  # prediction keeps to the size that fitted

    plain = _clf("fasttext").fit(TEXTS, LABELS)  # the same fit with memory to spare
    assert "accumulation" not in plain.history_[0]
    for key, value in plain.module_.state_dict().items():
        torch.testing.assert_close(clf.module_.state_dict()[key], value, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(clf.predict_proba(TEXTS), plain.predict_proba(TEXTS), atol=1e-5)


def test_oom_at_the_floor_raises_naming_the_batch_size(oom_backend):
    clf = _clf("oom_above", batch_size=8).fit(TEXTS, LABELS)  # fits with micro-batches of 4
    before = clf.predict_proba(TEXTS)
    OomAboveBackend.limit, OomAboveBackend.seen = 0, []
    try:
        with pytest.raises(
            DeviceMemoryError, match=r"micro-batches of 1 sample\(s\) \(batch_size=8\)"
        ) as info:
            clf.fit(TEXTS, LABELS)
    finally:
        OomAboveBackend.limit = 4
    assert isinstance(info.value, MemoryError)
    assert isinstance(info.value.__cause__, torch.OutOfMemoryError)
    assert OomAboveBackend.seen == [8, 4, 2, 1]
    # No epoch completed, so the model fitted before is kept as it was, and predicts as before.
    assert all(p.grad is None for p in clf.module_.parameters())  # nothing left attached
    np.testing.assert_array_equal(clf.predict_proba(TEXTS), before)


def test_gradients_are_released_after_fit():
    clf = _clf("fasttext", max_epochs=1).fit(TEXTS, LABELS)
    assert all(p.grad is None for p in clf.module_.parameters())


def test_split_batch_slices_per_sample_tensors_only():
    shared = torch.arange(3)
    batch = {"x": torch.arange(10).reshape(5, 2), "y": torch.arange(5), "shared": shared, "name": "b"}
    parts = split_batch(batch, 2)
    assert [len(p["y"]) for p in parts] == [2, 2, 1]
    assert [len(p["y"]) for p in split_batch(batch, 4)] == [3, 2]  # balanced: no part of one
    assert torch.equal(torch.cat([p["x"] for p in parts]), batch["x"])
    assert all(p["shared"] is shared and p["name"] == "b" for p in parts)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_real_cuda_oom_backs_off_and_memory_is_released():
    """A batch of large images that cannot fit in 2% of the GPU; the fit must still finish."""
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(min(0.02, 3 * 2**30 / total))
    try:
        X = np.random.RandomState(0).randint(0, 256, size=(256, 64, 64, 3)).astype(np.uint8)
        y = np.arange(256) % 2
        clf = ImageClassifier(
            backend="resnet",
            batch_size=256,
            max_epochs=1,
            validation_fraction=0.0,
            precision="fp32",
            random_state=0,
            device="cuda",
            backend_params={"image_size": 224},
        ).fit(X, y)
        assert clf.history_[0]["accumulation"] > 1  # it really ran out at 256
        assert len(clf.predict(X[:4])) == 4
        torch.cuda.synchronize()
        assert torch.cuda.memory_reserved() < torch.cuda.get_device_properties(0).total_memory * 0.02
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()
