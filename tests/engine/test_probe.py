"""head_init="linear_probe": the fresh head starts as a logistic regression on the backbone's features."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn

from skbig import TextClassifier
from skbig.backends.fasttext import FastTextBackend
from skbig.backends.registry import register_backend, unregister_backend
from skbig.engine._probe import capture_head_inputs, fit_logistic_regression
from skbig.engine.callbacks import Callback
from skbig.engine.data import iterate_batches
from skbig.exceptions import InvalidParameterError

TEXTS = ["good day", "bad day", "good night", "bad night", "great fun", "awful mess", "fine", "poor"] * 4
LABELS = ["pos", "neg", "pos", "neg", "pos", "neg", "pos", "neg"] * 4


class ProbedFastText(FastTextBackend):
    """FastText that names its head, so the generic (hook-based) probe applies."""

    name = "probed_fasttext"

    def classifier_head(self, module: nn.Module) -> nn.Linear:
        return module.head  # type: ignore[return-value]


class HeadAtStart(Callback):
    """Keep the head's weights and the module as they are when training starts (after the probe)."""

    def on_fit_begin(self, trainer):  # type: ignore[no-untyped-def]
        head = trainer.module.head
        self.weight, self.bias = head.weight.detach().clone(), head.bias.detach().clone()
        self.trainer = trainer


@pytest.fixture
def probed_backend():
    register_backend(ProbedFastText, replace=True)
    yield "probed_fasttext"
    unregister_backend("probed_fasttext")


# -- the solver ---------------------------------------------------------------------------------
@pytest.mark.parametrize("n_classes", [2, 3], ids=["binary", "three-classes"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "class-weighted"])
def test_solver_matches_scikit_learn_logistic_regression(n_classes: int, weighted: bool) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 6))
    y = (X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=0.8, size=120) > 0).astype(int)
    if n_classes == 3:
        y = y + (X[:, 2] > 0.7)
    class_weight = {0: 2.0, 1: 1.0, 2: 0.5} if weighted else None
    reference = LogisticRegression(C=1.0, class_weight=class_weight, tol=1e-10, max_iter=10_000).fit(X, y)
    weights = torch.tensor([class_weight[c] for c in range(n_classes)]) if weighted else None
    weight, bias = fit_logistic_regression(torch.tensor(X), torch.tensor(y), n_classes, class_weight=weights)
    proba = torch.softmax(torch.tensor(X) @ weight.T + bias, dim=1).numpy()
    np.testing.assert_allclose(proba, reference.predict_proba(X), atol=2e-4)


# -- through the estimator -------------------------------------------------------------------------
def test_probe_head_matches_scikit_learn_on_the_same_features(probed_backend: str) -> None:
    class ProbeThenStop(Callback):
        """Stop before any optimisation step: the module is exactly what the probe produced."""

        def on_fit_begin(self, trainer):  # type: ignore[no-untyped-def]
            self.module = {k: v.detach().clone() for k, v in trainer.module.state_dict().items()}

    spy = ProbeThenStop()
    clf = TextClassifier(
        backend=probed_backend,
        head_init="linear_probe",
        max_epochs=1,
        lr=1e-12,
        validation_fraction=0.0,
        callbacks=[spy],
        random_state=0,
    ).fit(TEXTS, LABELS)
    module = clf.module_
    module.load_state_dict(spy.module)
    targets = clf.classes_.searchsorted(LABELS)
    batch = next(iter(iterate_batches(clf._backend.make_data(TEXTS, targets), 64, shuffle=False)))
    module.eval()
    with torch.no_grad():
        features = capture_head_inputs(module, module.head, clf._backend.forward, batch).double().numpy()
        logits = module.head(torch.tensor(features, dtype=torch.float32)).double()
    reference = LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000).fit(features, targets)
    np.testing.assert_allclose(torch.softmax(logits, 1).numpy(), reference.predict_proba(features), atol=1e-3)


class PretrainedProbedFastText(ProbedFastText):
    """Stands in for a backend that loads pretrained weights (there are none to load here)."""

    name = "pretrained_probed_fasttext"
    uses_pretrained_weights = True


def test_zero_epochs_with_pretrained_weights_fits_the_probe_head() -> None:
    register_backend(PretrainedProbedFastText, replace=True)
    try:
        fit = dict(backend="pretrained_probed_fasttext", validation_fraction=0.0, random_state=0)
        zero = TextClassifier(**fit, max_epochs=0).fit(TEXTS, LABELS)
        probed = TextClassifier(**fit, max_epochs=0, head_init="linear_probe").fit(TEXTS, LABELS)
        random = TextClassifier(**fit, max_epochs=0, head_init="random").fit(TEXTS, LABELS)
        spy = HeadAtStart()
        TextClassifier(**fit, max_epochs=1, callbacks=[spy]).fit(TEXTS, LABELS)
    finally:
        unregister_backend("pretrained_probed_fasttext")
    # Nothing trains with max_epochs=0, so the head is the probe, not a random guess...
    assert torch.equal(zero.module_.head.weight, probed.module_.head.weight)
    assert not torch.equal(zero.module_.head.weight, random.module_.head.weight)
    assert zero.score(TEXTS, LABELS) == 1.0
    # ...while a fit that trains keeps the backend's recommendation (a random head for this one).
    assert torch.equal(spy.weight, random.module_.head.weight)


def test_backend_without_a_named_head_refuses_linear_probe() -> None:
    clf = TextClassifier(backend="fasttext", head_init="linear_probe", max_epochs=1)
    with pytest.raises(
        InvalidParameterError, match="not supported by backend 'fasttext'.*head_init='random'"
    ):
        clf.fit(TEXTS, LABELS)


def test_unknown_head_init_is_named() -> None:
    with pytest.raises(InvalidParameterError, match="head_init must be one of .*got head_init='probe'"):
        TextClassifier(backend="fasttext", head_init="probe", max_epochs=1).fit(TEXTS, LABELS)


def test_warm_start_keeps_the_trained_head(probed_backend: str) -> None:
    clf = TextClassifier(
        backend=probed_backend,
        head_init="linear_probe",
        max_epochs=1,
        validation_fraction=0.0,
        warm_start=True,
        random_state=0,
    ).fit(TEXTS, LABELS)
    trained = clf.module_.head.weight.detach().clone()
    spy = HeadAtStart()
    clf.set_params(callbacks=[spy]).fit(TEXTS, LABELS)
    assert torch.equal(spy.weight, trained)  # continued from, not re-probed


def test_head_that_runs_twice_per_batch_gets_a_clear_error() -> None:
    head = nn.Linear(3, 2)

    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.head = head

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(x[:2]) + 0 * self.head(x[2:]).sum()

    with pytest.raises(InvalidParameterError, match="ran 2 time.*override head_inputs"):
        capture_head_inputs(
            Twice(), head, lambda m, b: m(b["x"]), {"x": torch.zeros(4, 3), "y": torch.zeros(4)}
        )
