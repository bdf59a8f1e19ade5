"""skbig.plot: learning curves from history_, confusion matrices, and the missing-matplotlib message."""

from __future__ import annotations

import builtins

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from skbig import TextClassifier
from skbig.exceptions import InvalidParameterError, NotFittedError
from skbig.plot import confusion_matrix, learning_curves

TEXTS = ["free prize call now", "win cash today", "see you at lunch", "meeting moved to noon"] * 10
LABELS = ["spam", "spam", "ham", "ham"] * 10


@pytest.fixture(scope="module")
def clf():
    return TextClassifier(max_epochs=3, early_stopping=False, random_state=0).fit(TEXTS, LABELS)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_learning_curves_draw_every_epoch_and_mark_the_best(clf):
    ax = learning_curves(clf)
    lines = {line.get_label(): line for line in ax.get_lines()}
    epochs = [r["epoch"] for r in clf.history_]
    np.testing.assert_allclose(lines["train loss"].get_ydata(), [r["train_loss"] for r in clf.history_])
    np.testing.assert_allclose(lines["valid loss"].get_ydata(), [r["valid_loss"] for r in clf.history_])
    assert list(lines["train loss"].get_xdata()) == epochs
    best = lines[f"best epoch ({clf.best_epoch_})"]
    assert list(best.get_xdata()) == [clf.best_epoch_] * 2
    score_axes = ax.figure.axes[-1]
    assert score_axes is not ax
    np.testing.assert_allclose(
        score_axes.get_lines()[0].get_ydata(), [r["valid_score"] for r in clf.history_]
    )
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["train loss", "valid loss", f"best epoch ({clf.best_epoch_})", "valid score"]


def test_learning_curves_draw_on_a_given_axes_and_skip_missing_validation():
    fitted = TextClassifier(max_epochs=2, validation_fraction=0.0, random_state=0).fit(TEXTS, LABELS)
    _, ax = plt.subplots()
    assert learning_curves(fitted, ax=ax) is ax
    assert [line.get_label() for line in ax.get_lines()] == ["train loss", "best epoch (2)"]
    assert len(ax.figure.axes) == 1  # no score axis without validation


def test_learning_curves_need_a_fitted_estimator():
    with pytest.raises(NotFittedError, match="Call fit first"):
        learning_curves(TextClassifier())


def test_confusion_matrix_counts_and_normalizes(clf):
    ax = confusion_matrix(clf, TEXTS, LABELS)
    predicted = clf.predict(TEXTS)
    cells = np.array([[int(t.get_text()) for t in row] for row in _cell_texts(ax)])
    expected = [
        [np.sum((np.array(LABELS) == a) & (predicted == b)) for b in clf.classes_] for a in clf.classes_
    ]
    np.testing.assert_array_equal(cells, expected)
    assert [t.get_text() for t in ax.get_xticklabels()] == list(clf.classes_)

    _, ax = plt.subplots()
    assert confusion_matrix(clf, TEXTS, LABELS, ax=ax, normalize="true") is ax
    rates = np.array([[float(t.get_text()) for t in row] for row in _cell_texts(ax)])
    np.testing.assert_allclose(rates.sum(axis=1), 1.0, atol=0.01)


def _cell_texts(ax):
    """The matrix's cell annotations, as rows (ConfusionMatrixDisplay draws them in row-major order)."""
    texts = [t for t in ax.texts if t.get_text()]
    n = round(len(texts) ** 0.5)
    return [texts[i * n : (i + 1) * n] for i in range(n)]


def test_confusion_matrix_rejects_a_bad_normalize_and_a_non_classifier(clf):
    with pytest.raises(InvalidParameterError, match="normalize must be one of"):
        confusion_matrix(clf, TEXTS, LABELS, normalize="rows")
    from skbig import SpeechRecognizer

    with pytest.raises(InvalidParameterError, match="needs a classifier, got SpeechRecognizer"):
        confusion_matrix(SpeechRecognizer(), ["a.wav"], ["yes"])
    with pytest.raises(NotFittedError):
        confusion_matrix(TextClassifier(), TEXTS, LABELS)


def test_missing_matplotlib_names_the_extra(clf, monkeypatch):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(ImportError, match=r"pip install 'skbig\[plot\]'"):
        learning_curves(clf)


def test_importing_plot_and_callbacks_imports_neither_matplotlib_nor_tensorboard():
    import json
    import subprocess
    import sys

    probe = (
        "import json, sys, skbig; skbig.plot, skbig.callbacks; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('matplotlib', 'tensorboard')))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(out.stdout) == []


def test_confusion_matrix_counts_samples_of_labels_the_model_never_saw(clf):
    y = ["spam", "ham", "phishing", "phishing"]
    ax = confusion_matrix(clf, TEXTS[:4], y)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["ham", "spam", "phishing"]
    counts = [int(t.get_text()) for t in ax.texts]
    assert sum(counts) == len(y)  # none dropped


def test_learning_curves_of_a_pipeline_and_of_a_fit_without_epochs(clf):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    pipe = make_pipeline(FunctionTransformer(), TextClassifier(max_epochs=2, random_state=0)).fit(
        TEXTS, LABELS
    )
    assert len(learning_curves(pipe).get_lines()) >= 2
    probe = TextClassifier(backend="fasttext", max_epochs=0, random_state=0).fit(TEXTS, LABELS)
    with pytest.raises(InvalidParameterError, match="without training epochs"):
        learning_curves(probe)
