"""Plots of a fitted estimator: learning curves and confusion matrices.

Needs matplotlib (``pip install 'skbig[plot]'``), imported only when a plot
is drawn, so ``import skbig`` never pays for it.  Each function draws on the
``ax`` it is given (or a new figure) and returns the Axes, so plots compose
with the user's own figures; save them with ``ax.figure.savefig(path)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from skbig.exceptions import InvalidParameterError, NotFittedError

__all__ = ["learning_curves", "confusion_matrix"]

_NORMALIZE = (None, "true", "pred", "all")


def learning_curves(estimator: Any, ax: Any = None) -> Any:
    """Plot per-epoch losses and the validation score from ``estimator.history_``.

    Training and validation losses share the left axis; the validation score
    (accuracy for classifiers, 1 - CER for speech) is on a right-hand axis,
    and a dotted vertical line marks ``best_epoch_``, the epoch whose
    weights were kept.

    Parameters
    ----------
    estimator : fitted skbig estimator
        Anything with ``history_`` (a list of per-epoch dicts with ``epoch``
        and ``train_loss``, optionally ``valid_loss`` and ``valid_score``)
        and ``best_epoch_``; or a Pipeline ending in one.
    ax : matplotlib Axes, optional
        Where to draw; a new figure when None.

    Returns
    -------
    ax : matplotlib Axes
        The loss axes; the validation score is drawn on its twin
        (``ax.figure.axes[-1]``) when the history has one.

    Raises
    ------
    NotFittedError
        If the estimator has no ``history_``.
    InvalidParameterError
        If it was fitted without training epochs (``max_epochs=0``).
    ImportError
        If matplotlib is not installed.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skbig import TextClassifier
    >>> from skbig.plot import learning_curves
    >>> clf = TextClassifier(max_epochs=3, random_state=0).fit(["good", "bad"] * 20, ["+", "-"] * 20)
    >>> ax = learning_curves(clf)
    >>> [line.get_label() for line in ax.get_lines()][:2]
    ['train loss', 'valid loss']
    """
    if hasattr(estimator, "steps"):  # a Pipeline: its model is the last step
        estimator = estimator.steps[-1][1]
    history = getattr(estimator, "history_", None)
    if history is None:
        raise NotFittedError(
            f"learning_curves needs a fitted estimator with a history_; {type(estimator).__name__} has none. "
            "Call fit first."
        )
    if not history:
        raise InvalidParameterError(
            f"this {type(estimator).__name__} was fitted without training epochs (max_epochs=0, or a "
            "fit resumed after its last epoch): there are no learning curves to draw"
        )
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    epochs = [record["epoch"] for record in history]
    ax.plot(epochs, [r["train_loss"] for r in history], marker="o", label="train loss")
    if all("valid_loss" in r for r in history):
        ax.plot(epochs, [r["valid_loss"] for r in history], marker="o", label="valid loss")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    best = getattr(estimator, "best_epoch_", None)
    if best is not None:
        ax.axvline(best, linestyle=":", color="grey", label=f"best epoch ({best})")
    handles, labels = ax.get_legend_handles_labels()
    if all("valid_score" in r for r in history):
        right = ax.twinx()
        right.plot(
            epochs, [r["valid_score"] for r in history], marker="s", color="tab:green", label="valid score"
        )
        right.set_ylabel("validation score")
        more_handles, more_labels = right.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    # Below the plot: inside, it would hide curves of one of the two axes.
    ax.legend(
        handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=len(labels), frameon=False
    )
    ax.set_title(f"{type(estimator).__name__} ({getattr(estimator, 'backend_', '?')})")
    return ax


def confusion_matrix(estimator: Any, X: Any, y: Any, ax: Any = None, normalize: str | None = None) -> Any:
    """Plot the confusion matrix of a fitted classifier's predictions on ``X`` against ``y``.

    Parameters
    ----------
    estimator : fitted classifier
        A skbig classifier (or any scikit-learn classifier with ``classes_``).
    X, y : array-like
        Inputs and true labels.
    ax : matplotlib Axes, optional
        Where to draw; a new figure when None.
    normalize : {None, "true", "pred", "all"}
        As in :func:`sklearn.metrics.confusion_matrix`: counts, or rates over
        the true labels (rows), the predictions (columns) or everything.

    Returns
    -------
    ax : matplotlib Axes

    Raises
    ------
    InvalidParameterError
        If ``estimator`` is not a classifier or ``normalize`` is unknown.
    NotFittedError
        If ``estimator`` is not fitted.
    ImportError
        If matplotlib is not installed.
    """
    _check_is_classifier(estimator)
    labels = labels_with_unseen(estimator.classes_, y)
    return plot_confusion(y, estimator.predict(X), labels=labels, ax=ax, normalize=normalize)


def labels_with_unseen(classes: Sequence[Any], y: Any) -> list[Any]:
    """The model's ``classes`` first, then the labels of ``y`` it never saw (always predicted wrong).

    Leaving those out would drop their samples from the matrix and its rates.
    """
    known = list(classes)
    seen = set(known)
    return known + sorted({label for label in list(y) if label not in seen}, key=str)


def plot_confusion(
    y_true: Any, y_pred: Any, *, labels: Sequence[Any], ax: Any = None, normalize: str | None = None
) -> Any:
    """Draw the confusion matrix of ``y_pred`` against ``y_true`` over ``labels``; return the Axes."""
    if normalize not in _NORMALIZE:
        raise InvalidParameterError(
            f"normalize must be one of {list(_NORMALIZE)}, got normalize={normalize!r}"
        )
    plt = _pyplot()
    from sklearn.metrics import ConfusionMatrixDisplay

    if ax is None:
        size = max(4.0, 0.6 * len(labels) + 2)
        _, ax = plt.subplots(figsize=(size, size))
    display = ConfusionMatrixDisplay.from_predictions(
        y_true,
        y_pred,
        labels=list(labels),
        normalize=normalize,
        ax=ax,
        colorbar=False,
        values_format=".2f" if normalize else "d",
    )
    return display.ax_


def _check_is_classifier(estimator: Any) -> None:
    from sklearn.base import is_classifier

    if not is_classifier(estimator):
        raise InvalidParameterError(
            f"confusion_matrix needs a classifier, got {type(estimator).__name__}; "
            "for speech recognizers use skbig.metrics.wer/cer"
        )
    if not hasattr(estimator, "classes_"):
        raise NotFittedError(f"This {type(estimator).__name__} instance is not fitted yet; call 'fit' first.")


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("skbig.plot needs matplotlib: pip install 'skbig[plot]'") from exc
    return plt
