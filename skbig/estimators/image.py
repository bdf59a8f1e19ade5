"""ImageClassifier: images (arrays, files, bytes or PIL images) in, labels out."""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.utils import Tags
from sklearn.utils.validation import check_non_negative, validate_data

from skbig.backends.base import Backend, TaskSpec
from skbig.backends.image_common import check_augment
from skbig.data.image import array_scale, check_image_inputs
from skbig.estimators._classifier import SkbigClassifier
from skbig.exceptions import InputTypeError, InvalidInputError, SkbigError

__all__ = ["ImageClassifier"]


@dataclass(kw_only=True, eq=False, repr=False)
class ImageClassifier(SkbigClassifier):
    """Classify images with a convolutional backend, the scikit-learn way.

    Takes every parameter of :class:`skbig.estimators.base.SkbigEstimator`
    and :class:`skbig.estimators._classifier.SkbigClassifier`; the defaults
    train the built-in ``cnn`` backend, which needs no pretrained weights and
    fits small images in seconds on a CPU.

    ``X`` may be:

    - a numeric array of images, ``(n, H, W)`` or ``(n, H, W, C)`` with C in
      1, 3, 4 (uint8 0..255, 16-bit integers, or floats; see
      :func:`skbig.data.image.array_scale` for how values map onto [0, 1]);
    - a 2-D array ``(n, H*W*C)`` of flattened images with ``image_shape``.
      Without ``image_shape`` each row is read as a one-pixel-high
      single-channel image of ``n_features`` pixels (a 1-D signal), which
      lets any non-negative tabular data through but ignores 2-D structure:
      pass e.g. ``image_shape=(8, 8)`` for ``load_digits().data``;
    - a list (or pandas Series) of file paths (str or pathlib.Path), encoded
      file bytes, PIL images or single arrays, mixed freely.  Files are
      decoded lazily, inside ``DataLoader`` workers when ``num_workers > 0``,
      so memory stays bounded by the batch.

    Images of different sizes are resized to the backend's input size, which
    is fixed at ``fit`` (``backend_params__image_size``).  Arrays go through
    an in-memory fast path; the backend owns the normalisation.

    Parameters
    ----------
    backend : str, default="cnn"
        ``"cnn"`` (small, fast), ``"resnet"`` (ResNet-18 from scratch), a
        plugin backend such as ``"efficientnet_lite0"``, or ``"auto"``.
    image_shape : (H, W) or (H, W, C), optional
        Shape of one image when ``X`` is 2-D (one flattened image per row).
    augment : {"auto", "crop+flip"} or None, default="auto"
        ``"crop+flip"``: random resized crop (60-100% of the area) and
        horizontal flip of the training images; ``"auto"``: the same when the
        backend's input is at least 16 pixels on each side, nothing below
        (crops of tiny images destroy them); prediction and validation never
        augment.  ``None`` switches augmentation off.

    Attributes
    ----------
    classes_ : ndarray
        The sorted class labels seen in ``fit``.
    scale_ : float or None
        Divisor mapping the pixel values of array input onto [0, 1], learned
        at ``fit`` (:func:`skbig.data.image.array_scale`) and applied to
        every later array; None when fitted on files or images.
    n_features_in_ : int
        Number of columns of 2-D array input (only set for 2-D input).
    feature_names_in_ : ndarray of str
        Column names of a 2-D DataFrame input (only set for such input).
    history_ : list of dict
        One record per epoch: ``epoch``, ``train_loss``, ``valid_loss``,
        ``valid_score`` (accuracy), ``lr`` and ``seconds``.
    best_epoch_ : int
        The epoch whose weights were kept.
    training_settings_ : dict
        What the fit ran with once the settings left at ``None``/"auto" took
        the backend's recommendation: ``lr``, ``batch_size``, ``max_epochs``,
        ``lr_schedule``, ``warmup``, ``validation_fraction``, ``frozen``
        (parameter-name patterns), ``backbone_lr_mult``, ``head_init``...
    backend_ : str
        The backend actually used.
    module_ : torch.nn.Module
        The trained network.

    Raises
    ------
    InvalidInputError
        At ``fit``/``predict``, for a missing path, an empty ``X``, NaN or
        negative pixels; while reading a corrupt or non-image file, naming
        ``X[index]`` and the path.
    InvalidParameterError
        For a malformed ``image_shape`` or ``augment``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skbig import ImageClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = ImageClassifier(image_shape=(8, 8), max_epochs=5, random_state=0)
    >>> clf.fit(X[:500], y[:500]).predict(X[500:505]).shape
    (5,)
    >>> bool(clf.score(X[500:700], y[500:700]) > 0.8)
    True
    """

    _task = "image-classification"
    _items_are_files = True

    backend: str = "cnn"
    image_shape: tuple[int, ...] | None = None
    augment: str | None = "auto"

    # -- validation ----------------------------------------------------------------------------
    def _check_params(self) -> None:
        super()._check_params()
        check_augment(self.augment)

    def _check_X(self, X: Any, *, fitting: bool) -> np.ndarray | list[Any]:
        """Validate ``X``; return float32 ``(n, H, W, C)`` pixels in [0, 1] or a list of items."""
        image_shape = self.image_shape
        if _is_numeric_table(X):
            X = self._validate_table(X, fitting=fitting)
            if image_shape is None:
                image_shape = (1, X.shape[1])
        elif fitting:
            for name in ("n_features_in_", "feature_names_in_"):
                self.__dict__.pop(name, None)  # a refit on images forgets columns
        scale = None if fitting else getattr(self, "scale_", None)
        kind, data = check_image_inputs(X, image_shape=image_shape, scale=scale)
        if fitting:
            self.scale_ = array_scale(X) if kind == "array" else None
        return data  # type: ignore[return-value]

    def _validate_table(self, X: Any, *, fitting: bool) -> np.ndarray:
        """sklearn's checks for 2-D (and stray 1-D) numeric input, as skbig errors."""
        try:
            X = validate_data(self, X, reset=fitting, dtype="numeric", ensure_min_samples=2 if fitting else 1)
            check_non_negative(X, f"{type(self).__name__} (pixel values must be >= 0)")
        except TypeError as exc:
            raise InputTypeError(str(exc)) from exc
        except ValueError as exc:
            if isinstance(exc, SkbigError):
                raise
            raise InvalidInputError(str(exc)) from exc
        return X

    def _prepare_targets(self, y: Any, n_samples: int, backend: Backend) -> tuple[Any, TaskSpec]:
        # The one hook that sees the backend before ``make_data``: hand it the
        # augmentation setting (the contract: ImageClassificationBackend.augment).
        if y is None:
            raise InvalidInputError(
                f"{type(self).__name__} requires y to be passed, but the target y is None; "
                "pass one label per image"
            )
        backend.augment = self.augment  # type: ignore[attr-defined]
        return super()._prepare_targets(y, n_samples, backend)

    # -- persistence -------------------------------------------------------------------------
    def _fitted_json(self) -> dict[str, Any]:
        fitted = {**super()._fitted_json(), "scale": self.scale_}
        if hasattr(self, "n_features_in_"):
            fitted["n_features_in"] = int(self.n_features_in_)
        if hasattr(self, "feature_names_in_"):
            fitted["feature_names_in"] = [str(v) for v in self.feature_names_in_]
        return fitted

    def _restore_fitted(self, fitted, backend, weights) -> None:  # type: ignore[no-untyped-def]
        super()._restore_fitted(fitted, backend, weights)
        self.scale_ = fitted["scale"]
        if "n_features_in" in fitted:
            self.n_features_in_ = int(fitted["n_features_in"])
        if "feature_names_in" in fitted:
            self.feature_names_in_ = np.asarray(fitted["feature_names_in"], dtype=object)

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True  # pixel intensities
        tags.input_tags.three_d_array = True
        tags.non_deterministic = self.random_state is None
        return tags


def _is_numeric_table(X: Any) -> bool:
    """Whether ``X`` is a 1-D/2-D numeric container (array, DataFrame, sparse, nested lists).

    Such ``X`` goes through sklearn's validation (feature counts and names,
    finiteness, sparse refusal); 3-D/4-D arrays and lists of images do not.
    A 1-D numeric array is refused there, with sklearn's "reshape" hint.
    """
    if sp.issparse(X):
        return True
    if isinstance(X, (list, tuple)):
        first = X[0] if X else None
        return isinstance(first, (list, tuple)) and bool(first) and isinstance(first[0], numbers.Number)
    if not (hasattr(X, "iloc") or hasattr(X, "__array__")):
        return False
    if hasattr(X, "iloc"):  # pandas: a DataFrame is a table, a Series a list of items
        return getattr(X, "ndim", 1) == 2
    array = np.asarray(X)
    if array.ndim == 2:
        return array.dtype.kind in "biufcO"  # object columns are converted (or refused) by sklearn
    return array.ndim == 1 and array.dtype.kind in "biufc"
