"""Numerical faults: a NaN or inf loss (or gradient) stops training, names where, keeps good weights.

``tests/engine/test_trainer.py`` checks the NaN case end to end; here the
weights are compared exactly with those after the last good step, and inf
losses and inf gradients are covered too.
"""

from __future__ import annotations

import math

import pytest
import torch

from skbig import TextClassifier
from skbig.backends.fasttext import FastTextBackend
from skbig.backends.registry import register_backend, unregister_backend
from skbig.engine.callbacks import Callback
from skbig.exceptions import NumericalError

X = ["good day", "bad day", "good night", "bad night"] * 4
Y = [1, 0, 1, 0] * 4
FAIL_AT_CALL = 7  # with 16 samples in batches of 4: epoch 2, batch 2


class _InfGradient(torch.autograd.Function):
    """Identity forward; infinite gradient backward (a finite loss with an exploding gradient)."""

    @staticmethod
    def forward(ctx, value):
        return value.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * math.inf


class FaultyBackend(FastTextBackend):
    name = "faulty"
    fault = "nan"
    calls = 0

    def loss(self, module, batch, *, class_weight=None):
        FaultyBackend.calls += 1
        value = super().loss(module, batch, class_weight=class_weight)
        if FaultyBackend.calls < FAIL_AT_CALL:
            return value
        if FaultyBackend.fault == "gradient":
            return _InfGradient.apply(value)
        return value * {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}[FaultyBackend.fault]


class LastGoodWeights(Callback):
    def on_batch_end(self, trainer, *, batch_index, loss):
        self.weights = {k: v.detach().clone() for k, v in trainer.module.state_dict().items()}


@pytest.fixture
def faulty():
    register_backend(FaultyBackend, replace=True)
    FaultyBackend.calls = 0
    yield FaultyBackend
    unregister_backend("faulty")


@pytest.mark.parametrize(
    "fault, what",
    [
        ("nan", "loss became nan"),
        ("inf", "loss became inf"),
        ("-inf", "loss became -inf"),
        ("gradient", "gradient norm became"),
    ],
)
def test_non_finite_training_stops_naming_epoch_and_batch_and_keeps_last_good_weights(faulty, fault, what):
    FaultyBackend.fault = fault
    last_good = LastGoodWeights()
    clf = TextClassifier(
        backend="faulty",
        batch_size=4,
        max_epochs=5,
        validation_fraction=0.0,
        callbacks=[last_good],
        random_state=0,
    )
    with pytest.raises(NumericalError, match=rf"{what}.* at epoch 2, batch 2") as info:
        clf.fit(X, Y)
    assert isinstance(info.value, ArithmeticError)
    assert len(clf.history_) == 1  # the completed epoch is kept in the history
    for key, value in clf.module_.state_dict().items():
        assert torch.equal(value, last_good.weights[key]), key  # exactly the weights after the last good step
    assert len(clf.predict(X)) == len(X)


def test_with_early_stopping_the_best_epoch_is_restored(faulty):
    FaultyBackend.fault = "nan"
    clf = TextClassifier(
        backend="faulty", batch_size=2, max_epochs=5, validation_fraction=0.25, random_state=0
    )
    with pytest.raises(NumericalError, match="epoch 2"):
        clf.fit(X, Y)
    assert clf.best_epoch_ == 1 and all(torch.isfinite(p).all() for p in clf.module_.parameters())
