"""What the text and image classifiers share: labels, stratified splits, probabilities."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import ClassifierMixin
from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit
from torch import nn

from skbig.backends.base import Backend, TaskSpec, _ClassificationMixin
from skbig.data.labels import check_classification_targets
from skbig.engine.data import TrainData, iterate_batches
from skbig.engine.trainer import TrainingConfig
from skbig.estimators.base import SkbigEstimator, _check_choice
from skbig.exceptions import InvalidParameterError

__all__ = ["HEAD_INITS", "SkbigClassifier"]

#: Values of ``head_init`` (besides None, the backend's recommendation).
HEAD_INITS = ("random", "linear_probe")


@dataclass(kw_only=True, eq=False, repr=False)
class SkbigClassifier(ClassifierMixin, SkbigEstimator):
    """Base of the classifiers; adds ``class_weight`` and probability outputs.

    Parameters
    ----------
    class_weight : None, "balanced" or dict
        Weights of the classes in the loss; "balanced" uses
        ``n_samples / (n_classes * count(class))`` on the training split.
    head_init : {"random", "linear_probe"} or None
        How the fresh classification head starts.  ``"linear_probe"`` first
        fits it as a logistic regression (scikit-learn's ``C=1`` objective,
        L-BFGS) on the features the pretrained backbone gives the training
        data, then fine-tunes from there ("LP-FT"): the backbone is not
        pushed around by a random head's first gradients, which on a few
        hundred examples costs accuracy.  Costs one extra forward pass over
        the training data.  ``None`` takes the backend's recommendation when
        it loads pretrained weights, else ``"random"``; with ``max_epochs=0``
        and pretrained weights it is ``"linear_probe"`` whenever the backend
        names its head, since nothing would train a random one (so
        ``max_epochs=0`` gives the frozen-feature linear probe).
    """

    class_weight: str | dict[Any, float] | None = None
    head_init: str | None = None
    classes_: np.ndarray = field(init=False, repr=False, compare=False)  # fitted

    @property
    def _classification_backend(self) -> _ClassificationMixin:
        return self._backend  # type: ignore[return-value]

    def _prepare_targets(self, y: Any, n_samples: int, backend: Backend) -> tuple[Any, TaskSpec]:
        classes, encoded = check_classification_targets(y, n_samples)
        if self.warm_start and hasattr(self, "classes_") and not np.array_equal(classes, self.classes_):
            raise InvalidParameterError(
                f"warm_start=True needs the same classes as the first fit: had {self.classes_.tolist()}, "
                f"got {classes.tolist()}; set warm_start=False to start over"
            )
        if self.class_weight is not None and self.class_weight != "balanced":
            if not isinstance(self.class_weight, Mapping):
                raise InvalidParameterError(
                    f"class_weight must be None, 'balanced' or a dict, got class_weight={self.class_weight!r}"
                )
            unknown = [c for c in self.class_weight if c not in set(classes.tolist())]
            if unknown:
                raise InvalidParameterError(
                    f"class_weight names unknown classes {unknown}; classes: {classes.tolist()}"
                )
        self.classes_ = classes
        return encoded, TaskSpec(self._task, len(classes))

    def _training_config(
        self, backend, module, settings, device, seed, targets, train_idx, fingerprint, valid_data
    ) -> TrainingConfig:  # type: ignore[no-untyped-def]
        config = super()._training_config(
            backend, module, settings, device, seed, targets, train_idx, fingerprint, valid_data
        )
        config.head_init = self._resolve_head_init(backend, module, config.max_epochs)
        return config

    def _check_params(self) -> None:
        super()._check_params()
        _check_choice("head_init", self.head_init, HEAD_INITS, allow_none=True)

    def _resolve_head_init(self, backend: Backend, module: nn.Module, max_epochs: int) -> str:
        if self.warm_start and hasattr(self, "module_"):
            # Continuing: the head is already trained.  head_init shaped the first fit, as
            # scikit-learn's warm_start estimators apply their init settings once.
            return "random"
        if self.head_init is not None:
            return self.head_init
        if getattr(backend, "pretrained", False) is False:
            return "random"  # nothing pretrained to probe
        names_head = isinstance(backend, _ClassificationMixin) and backend.classifier_head(module) is not None
        if max_epochs == 0 and names_head:
            return "linear_probe"  # nothing will train the head: a random one would guess
        return str(backend.training_defaults.get("head_init", "random"))

    def _split(
        self, targets: Any, n_samples: int, seed: int, fraction: float
    ) -> tuple[np.ndarray, np.ndarray | None]:
        n_valid = int(np.ceil(n_samples * fraction)) if fraction > 0 else 0
        if n_valid < 1 or n_samples - n_valid < 1:
            return np.arange(n_samples), None
        counts = np.bincount(targets)
        stratify = (
            counts[counts > 0].min() >= 2 and n_valid >= len(counts) and n_samples - n_valid >= len(counts)
        )
        splitter = (StratifiedShuffleSplit if stratify else ShuffleSplit)(
            n_splits=1, test_size=n_valid, random_state=seed
        )
        train, valid = next(splitter.split(np.zeros(n_samples), targets))
        return np.sort(train), np.sort(valid)

    def _class_weight(self, targets: Any) -> torch.Tensor | None:
        if self.class_weight is None:
            return None
        n_classes = len(self.classes_)
        if self.class_weight == "balanced":
            counts = np.bincount(np.asarray(targets, dtype=np.int64), minlength=n_classes).astype(float)
            weights = np.where(counts > 0, len(targets) / (n_classes * np.maximum(counts, 1)), 1.0)
        else:
            weights = np.array([float(self.class_weight.get(c, 1.0)) for c in self.classes_.tolist()])  # type: ignore[union-attr]
        return torch.tensor(weights, dtype=torch.float32)

    def _evaluate(self, module: torch.nn.Module, data: TrainData) -> dict[str, float]:
        loss_sum, correct, count = 0.0, 0, 0
        device = next(module.parameters()).device
        for batch in iterate_batches(data, 256, shuffle=False, num_workers=self.num_workers):
            batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
            logits = self._classification_backend.predict_logits(module, batch).float()
            loss_sum += float(F.cross_entropy(logits, batch["y"], reduction="sum"))
            correct += int((logits.argmax(dim=1) == batch["y"]).sum())
            count += len(batch["y"])
        return {"valid_loss": loss_sum / count, "valid_score": correct / count}

    # -- inference -------------------------------------------------------------------------
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape ``(n_samples, n_classes)``, columns in ``classes_`` order."""
        return np.exp(self.predict_log_proba(X))

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Logarithm of :meth:`predict_proba` (computed in float64, so rows sum to 1)."""
        chunks = self._forward_all(
            X, lambda module, batch: self._classification_backend.predict_logits(module, batch).cpu()
        )
        logits = torch.cat(chunks).double()
        return torch.log_softmax(logits, dim=1).numpy()

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class of each sample, as labels from ``classes_``."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def _fitted_json(self) -> dict[str, Any]:
        from skbig.persistence import encode_labels

        return {**super()._fitted_json(), "classes": encode_labels(self.classes_)}

    def _restore_fitted(self, fitted, backend, weights) -> None:  # type: ignore[no-untyped-def]
        from skbig.persistence import decode_labels

        self.classes_ = decode_labels(fitted["classes"])
        super()._restore_fitted(fitted, backend, weights)
