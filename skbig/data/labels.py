"""Classification targets: validation and the label <-> index mapping."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from sklearn.exceptions import DataConversionWarning

from skbig.exceptions import InputTypeError, InvalidInputError

__all__ = ["check_classification_targets", "is_missing"]


def check_classification_targets(y: Any, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``y`` and return ``(classes, encoded)`` with ``classes`` sorted.

    Raises
    ------
    InvalidInputError
        For a length that differs from ``X``, a missing label (None/NaN, named
        by index), or fewer than two classes.
    InputTypeError
        For labels that cannot be compared (e.g. a mix of str and int) or a
        2-D ``y``.
    """
    if y is None:
        raise InvalidInputError("y is required for a classifier; got y=None")
    if hasattr(y, "to_numpy"):
        y = y.to_numpy()
    labels = np.asarray(y, dtype=object) if not isinstance(y, np.ndarray) else y
    if labels.ndim == 2 and labels.shape[1] == 1:
        warnings.warn(
            "A column-vector y was passed when a 1d array was expected; change the shape of y "
            "to (n_samples,), for example using ravel()",
            DataConversionWarning,
            stacklevel=3,
        )
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise InputTypeError(
            f"y must be 1-D (one label per sample), got shape {labels.shape}; "
            "multi-output classification is not supported"
        )
    if len(labels) != n_samples:
        raise InvalidInputError(
            f"X and y have different lengths: X has {n_samples} samples, y has {len(labels)}"
        )
    for index, label in enumerate(labels):
        if is_missing(label):
            raise InvalidInputError(f"y[{index}] is a missing label ({label!r}); drop that sample")
    if _is_continuous(labels):
        raise InvalidInputError(
            "y holds continuous float values; a classifier needs discrete labels "
            "(Unknown label type: continuous)"
        )
    try:
        classes, encoded = np.unique(labels, return_inverse=True)
    except TypeError as exc:
        kinds = sorted({type(v).__name__ for v in labels})
        raise InputTypeError(f"y mixes label types {kinds}; use one type for all labels") from exc
    if classes.dtype == object:
        classes = _plain_dtype(classes)
    if len(classes) < 2:
        raise InvalidInputError(
            f"y has a single class ({classes[0]!r}); a classifier needs at least 2 classes"
        )
    return classes, encoded.astype(np.int64).ravel()


def _is_continuous(labels: np.ndarray) -> bool:
    """Whether ``labels`` hold floats that are not whole numbers (in a float or object array)."""
    if labels.dtype.kind == "f":
        return not np.all(np.mod(labels, 1) == 0)
    if labels.dtype != object:
        return False
    return any(isinstance(v, (float, np.floating)) and not float(v).is_integer() for v in labels)


def _plain_dtype(classes: np.ndarray) -> np.ndarray:
    """Give labels that came in a list their natural dtype (int, float, bool, str).

    Lists are read as ``object`` so that mixed types are caught rather than
    coerced; once they are known to be one kind, an ``object`` array of ints
    would make ``predict`` return labels that sklearn's metrics call
    "unknown" targets.
    """
    kinds = {type(v.item() if isinstance(v, np.generic) else v) for v in classes}
    for plain in (bool, int, float, str):
        if kinds == {plain}:
            return np.asarray(classes.tolist())
    return classes


def is_missing(value: object) -> bool:
    """None, NaN, pandas' NA and NaT: the values pandas treats as missing."""
    if value is None or (isinstance(value, (float, np.floating)) and math.isnan(value)):
        return True
    return type(value).__name__ in ("NAType", "NaTType")  # without importing pandas
