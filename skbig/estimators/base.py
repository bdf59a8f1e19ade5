"""The scikit-learn facade shared by every skbig estimator.

Parameters are declared once, as dataclass fields: the generated ``__init__``
is keyword-only and only stores them, which is exactly scikit-learn's
contract (``clone``, ``get_params`` and ``set_params`` work unchanged), and a
task estimator adds its own fields by subclassing.  ``fit`` does the rest:
validation, backend look-up, seeding, the validation split and a call into
the one training engine.  Backend hyper-parameters are exposed to
``get_params(deep=True)``/``set_params`` as ``backend_params__<name>`` so a
GridSearchCV or Optuna space can tune them by name.
"""

from __future__ import annotations

import abc
import difflib
import hashlib
import itertools
import json
import math
import numbers
import os
import threading
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state

from skbig.backends.base import Backend, TaskSpec
from skbig.backends.registry import get_backend
from skbig.engine._checkpoint import check_writable
from skbig.engine.callbacks import Callback
from skbig.engine.data import TrainData, count_batches, iterate_batches, subset, to_device
from skbig.engine.device import PRECISIONS, autocast, resolve_device, resolve_precision
from skbig.engine.trainer import LR_SCHEDULES, OPTIMIZERS, Trainer, TrainingConfig, effective_warmup
from skbig.exceptions import InvalidParameterError, NotFittedError

__all__ = ["SkbigEstimator", "BACKEND_PARAMS_PREFIX"]

BACKEND_PARAMS_PREFIX = "backend_params__"
DEFAULT_PATIENCE = 5
#: Training settings an estimator leaves to its backend by default (``None``, or
#: ``freeze="auto"``), and what they are when the backend recommends nothing.
TRAINING_FALLBACKS: dict[str, Any] = {
    "max_epochs": 10,
    "batch_size": 32,
    "lr": 1e-3,
    "weight_decay": 0.0,
    "lr_schedule": "constant",
    "warmup": 0.0,
    "validation_fraction": 0.1,
    "freeze": None,
    "backbone_lr_mult": 1.0,
}
#: Recommendations for adapting pretrained weights, ignored when training from scratch.
PRETRAINED_ONLY_SETTINGS = ("freeze", "backbone_lr_mult")


@dataclass(kw_only=True, eq=False, repr=False)
class SkbigEstimator(BaseEstimator, abc.ABC):
    """Parameters and training logic common to all skbig estimators.

    Parameters
    ----------
    backend : str
        Registered backend name (see :func:`skbig.list_backends`), or
        ``"auto"``: the installed backend with the highest priority whose
        weights resolve (an explicit ``pretrained`` path counts), a built-in
        scratch backend otherwise or when ``pretrained=False``; the choice is
        recorded in ``backend_``.
    backend_params : dict, optional
        Backend hyper-parameter overrides, e.g. ``{"embed_dim": 128}``; also
        settable one by one as ``backend_params__embed_dim``.
    max_epochs, batch_size, lr, weight_decay : optional
        ``None`` takes the backend's recommended value (its
        ``training_defaults``; for pretrained backends that is the
        fine-tuning recipe, e.g. lr 5e-5 for transformer encoders).  A
        backend may also recommend a least number of optimiser steps, which
        ``max_epochs=None`` then adds epochs to reach on small data.
    optimizer : {"adamw", "adam", "sgd"}
        SGD uses Nesterov momentum 0.9.
    lr_schedule : {"constant", "cosine", "onecycle"} or None
        Per-step schedule; ``None``: the backend's recommendation, else "constant".
    warmup : float or None
        Fraction of all steps with a linear warm-up, rounded down to whole
        steps; ``None``: the backend's recommendation, else 0 (onecycle
        then warms up for 0.3).
    grad_clip : float or None
        Clip the global gradient norm to this value.
    validation_fraction : float or None
        Share of the training data held out (stratified for classifiers) to
        score each epoch; 0 disables validation and early stopping.  ``None``:
        the backend's recommendation, else 0.1 (the pretrained backends
        train on every row: their short fine-tuning schedules gain more from
        the data than from early stopping).
    early_stopping : bool or int
        Stop when the validation score has not improved for this many epochs
        and restore the best epoch's weights; True uses the backend's
        recommended patience (5 unless the backend says otherwise).
    device : str
        ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    precision : {"auto", "fp32", "bf16", "fp16"}
        ``"auto"`` is bf16 autocast on CUDA GPUs that support it, fp32 elsewhere.
        ``"fp16"`` scales the loss (``torch.amp.GradScaler``) so that small
        gradients do not flush to zero; steps whose gradients overflow are skipped.
    num_workers : int
        DataLoader worker processes for data decoded from files.
    callbacks : list of Callback, optional
        Extra :class:`skbig.engine.callbacks.Callback` objects.
    checkpoint_dir : str, optional
        Write the full training state there after every epoch; a later ``fit``
        with the same parameters and data resumes from the last epoch.  Each
        fit has its own file, so cross-validation folds can share the folder;
        files in ``X`` count by path, size and modification time.  With
        ``random_state=None`` the seed is then derived from the parameters
        and data, so a rerun after a crash resumes the same run.
    warm_start : bool
        Continue from the fitted weights instead of starting over.  The
        fitted module and backend are kept, so ``fit`` refuses a changed
        ``backend`` or ``backend_params`` (set ``warm_start=False`` to apply
        them); ``pretrained`` and ``head_init`` shape the first fit only, and
        later fits continue the fitted weights and head.
    random_state : int, RandomState or None
        Seed for initialisation, shuffling, dropout and the validation split.
    verbose : int
        0 is silent; 1 shows a progress bar.
    pretrained : bool or str
        For backends with pretrained weights: True loads the backend's default
        weights, a path loads weights from there, False starts from random
        initialisation.  Scratch backends ignore it.
    freeze : "auto", None, "backbone" or list of str
        Parameters not trained at first: the backend's backbone, or the
        parameter names matching these glob patterns; None trains everything.
        ``"auto"`` is the backend's recommendation when it starts from
        pretrained weights (e.g. the transformer encoders keep their token
        embeddings), else nothing.  ``fit`` raises when a pattern you pass
        matches no parameter, when the patterns leave nothing to train, or
        when ``"backbone"`` is asked of a backend without one.  Frozen
        batch-norm layers also keep their running statistics.
    unfreeze_at : int or None
        Epoch (0-based) from which frozen parameters train too; None keeps
        them frozen for the whole fit (``fit`` warns when it is not below
        ``max_epochs``, as they would then never train).  Early stopping
        does not end the fit before that epoch has run, and its patience
        starts afresh there.
    backbone_lr_mult : float or None
        Discriminative learning rate: backbone parameters use ``lr *
        backbone_lr_mult``.  ``None``: the backend's recommendation when it
        starts from pretrained weights (0.1 for EfficientNet-Lite0), else 1.
    finetune_mix : float
        WiSE-FT, a weight-space ensemble of the model before and after
        fine-tuning (Wortsman et al., 2022): the fitted weights are ``start +
        finetune_mix * (end - start)``, where ``start`` is where this fit's
        training began (the pretrained weights with the fresh or
        linear-probe head, or the weights ``warm_start`` continues from) and
        ``end`` the weights training kept.  1 keeps the fine-tuned weights;
        0.5 often beats both ends when fine-tuning and a linear probe score
        alike, and keeps more of the pretrained model's robustness.  Costs a
        CPU copy of the weights during the fit.
    """

    _task: ClassVar[str] = ""
    #: Whether ``X``'s string items are file paths (images, audio) rather than the data itself
    #: (texts): a checkpoint's fingerprint then covers each file's size and modification time.
    _items_are_files: ClassVar[bool] = False
    #: What the training settings are when neither the estimator nor its backend sets them.
    _training_fallbacks: ClassVar[Mapping[str, Any]] = TRAINING_FALLBACKS
    # Fitted state (set by ``fit`` or ``skbig.load``); init=False keeps them out of the parameters.
    _backend: Backend = field(init=False, repr=False, compare=False)
    module_: torch.nn.Module = field(init=False, repr=False, compare=False)

    backend: str = "auto"
    backend_params: dict[str, Any] | None = None
    max_epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    optimizer: str = "adamw"
    lr_schedule: str | None = None
    warmup: float | None = None
    grad_clip: float | None = 1.0
    validation_fraction: float | None = None
    early_stopping: bool | int = True
    device: str = "auto"
    precision: str = "auto"
    num_workers: int = 0
    callbacks: list[Callback] | None = None
    checkpoint_dir: str | None = None
    warm_start: bool = False
    random_state: int | np.random.RandomState | None = None
    verbose: int = 0
    pretrained: bool | str = True
    freeze: str | list[str] | None = "auto"
    unfreeze_at: int | None = None
    backbone_lr_mult: float | None = None
    finetune_mix: float = 1.0

    # -- scikit-learn parameter plumbing ---------------------------------------------
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        params = super().get_params(deep=False)
        if deep:
            for key, value in self._backend_hyperparameters().items():
                params[BACKEND_PARAMS_PREFIX + key] = value
        return params

    def set_params(self, **params: Any) -> SkbigEstimator:
        nested = {
            key[len(BACKEND_PARAMS_PREFIX) :]: params.pop(key)
            for key in list(params)
            if key.startswith(BACKEND_PARAMS_PREFIX)
        }
        valid = self.get_params(deep=False)
        for key in params:
            if key not in valid:
                close = difflib.get_close_matches(key, list(valid), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else "; get_params() lists them"
                raise InvalidParameterError(f"{type(self).__name__} has no parameter {key!r}{hint}")
        # As in a Pipeline ("step" then "step__param"): a whole ``backend_params``
        # given in the same call is set first and the nested keys update it.
        super().set_params(**params)
        if nested:
            self.backend_params = {**(self.backend_params or {}), **nested}
        return self

    def _backend_hyperparameters(self) -> dict[str, Any]:
        """Defaults of the chosen backend updated with ``backend_params``."""
        overrides = dict(self.backend_params) if isinstance(self.backend_params, Mapping) else {}
        try:
            cls = get_backend(self._backend_name(), self._task)
        except Exception:
            return overrides
        return {**cls.defaults, **overrides}

    def _backend_name(self) -> str:
        if self.backend == "auto":
            from skbig.backends._auto import choose_backend

            return choose_backend(self._task, self.pretrained)
        return self.backend

    # -- task hooks (overridden by the task estimators) -----------------------------------
    @abc.abstractmethod
    def _check_X(self, X: Any, *, fitting: bool) -> Any:
        """Validate ``X`` and return it as an indexable sequence (or array)."""

    @abc.abstractmethod
    def _prepare_targets(self, y: Any, n_samples: int, backend: Backend) -> tuple[Any, TaskSpec]:
        """Validate and encode ``y``; record what is learned from it; return the task spec."""

    @abc.abstractmethod
    def _evaluate(self, module: torch.nn.Module, data: TrainData) -> dict[str, float]:
        """Return ``{"valid_loss": ..., "valid_score": ...}`` (higher score is better)."""

    def _split(
        self, targets: Any, n_samples: int, seed: int, fraction: float
    ) -> tuple[np.ndarray, np.ndarray | None]:
        return _random_split(n_samples, fraction, seed)

    def _check_continuable(self) -> None:
        """A ``warm_start`` fit continues the fitted module and backend: refuse changes it would ignore."""
        name = self._backend_name()
        if name != self.backend_:
            raise InvalidParameterError(
                f"warm_start=True continues the fitted {self.backend_!r} model, but backend is now "
                f"{name!r}; fit with warm_start=False to train the new backend"
            )
        wanted = type(self._backend)(self.backend_params).params
        changed = sorted(k for k in wanted if self._backend.params.get(k) != wanted[k])
        if changed:
            was = {k: self._backend.params.get(k) for k in changed}
            raise InvalidParameterError(
                f"warm_start=True continues the fitted model, built with backend_params {was}; "
                f"changing {changed} would be ignored, so fit with warm_start=False to apply them"
            )

    def _setting(self, name: str, backend: Backend) -> Any:
        """A training setting: this estimator's value, or (when left at ``None``/"auto") the backend's.

        Recommendations that adapt pretrained weights (``freeze``,
        ``backbone_lr_mult``) apply only when the backend loads them.
        """
        value = getattr(self, name)
        deferred = value == "auto" if name == "freeze" else value is None  # freeze=None trains everything
        if not deferred:
            return value
        fallback = self._training_fallbacks[name]
        if name in PRETRAINED_ONLY_SETTINGS and getattr(backend, "pretrained", False) is False:
            return fallback
        return backend.training_defaults.get(name, fallback)

    def _class_weight(self, targets: Any) -> torch.Tensor | None:
        return None

    # -- fit ----------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> SkbigEstimator:
        """Train on ``X`` and ``y``; see the class docstring for what is learned.

        A fit that fails before its first epoch completes (bad input, bad
        parameters, a callback failing at the start, Ctrl-C in epoch 1)
        leaves the estimator as it was: fitted as before, or unfitted (a
        ``warm_start`` fit's module is trained in place, so it keeps what
        epoch 1 did to it).  After an epoch, a failure keeps the weights
        ``best_epoch_`` names: the best epoch's with early stopping, else the
        last ones trained.

        Returns
        -------
        self
        """
        before = _fitted_attributes(self)
        started: list[bool] = []
        try:
            return self._fit(X, y, started)
        except BaseException:
            if not started:
                _restore_fitted_attributes(self, before)
            raise

    def _fit(self, X: Any, y: Any, started: list[bool]) -> SkbigEstimator:
        """``fit``'s work; appends to ``started`` once a model worth keeping exists (an epoch ran)."""
        self._check_params()
        X = self._check_X(X, fitting=True)
        continuing = self.warm_start and hasattr(self, "module_")
        if continuing:
            self._check_continuable()
            backend = self._backend
        else:
            backend = get_backend(self._backend_name(), self._task)(self.backend_params)
            # Before the targets: a pretrained backend's vocabulary (e.g. a tokenizer) may come
            # from the weights that ``pretrained`` names.
            backend.pretrained = self.pretrained if backend.uses_pretrained_weights else False
        targets, spec = self._prepare_targets(y, len(X), backend)
        fingerprint = ""
        if self.checkpoint_dir:
            check_writable(self.checkpoint_dir)  # now, not after the first epoch
            fingerprint = self._fingerprint(X, targets, self.module_ if continuing else None)
        seed = _fit_seed(self.random_state, fingerprint)
        device = resolve_device(self.device)
        settings = {name: self._setting(name, backend) for name in TRAINING_FALLBACKS}
        train_idx, valid_idx = self._split(targets, len(X), seed, float(settings["validation_fraction"]))
        # torch's RNG is one per process: fits in threads of one process (joblib's "threading"
        # backend) take turns, or they would re-seed each other and random_state would not hold.
        with _TORCH_RNG_LOCK, torch.random.fork_rng(devices=_fork_devices(device)):
            torch.manual_seed(seed)
            if continuing:
                module = self.module_
            else:
                backend.fit_preprocessing([X[i] for i in train_idx])
                module = backend.build_module(spec)
            data = backend.make_data(X, targets, train=True)
            train_data = subset(data, train_idx.tolist())
            valid_data = None
            if valid_idx is not None:
                valid_data = subset(backend.make_data(X, targets, train=False), valid_idx.tolist())
            config = self._training_config(
                backend, module, settings, device, seed, targets, train_idx, fingerprint, valid_data
            )
            config.backbone = backend.backbone_parameter_names(module)
            config.frozen = _frozen_patterns(
                settings["freeze"], config.backbone, module, backend.name, recommended=self.freeze == "auto"
            )
            _check_something_trains(config, module, self.freeze)
            _warn_if_never_unfrozen(config)
            self._backend = backend
            trainer = Trainer(config, backend, self._evaluate)
            completed = False
            try:
                trainer.fit(module, train_data, valid_data)
                completed = True
            finally:
                # A fit that failed before completing an epoch (a logger's bad path, a device
                # this machine lacks, Ctrl-C in epoch 1) trained nothing worth keeping: fit()
                # then restores the model as it was.  After an epoch, the weights are kept.
                if completed or trainer.history:
                    started.append(True)
                    self._store_fit(backend, module, spec, trainer, device, config)
        return self

    def _store_fit(self, backend, module, spec, trainer, device, config) -> None:  # type: ignore[no-untyped-def]
        """Record fitted state; runs even when training raised, keeping the last good weights."""
        self._backend = backend
        self.backend_ = backend.name
        self.module_ = module.eval()
        self.spec_ = spec
        self.history_ = list(trainer.history)
        # 0 when early stopping kept the untrained (pretrained) weights; see Trainer._score_pretrained.
        kept = trainer.kept_epoch
        self.best_epoch_ = kept if kept is not None else len(trainer.history)
        self.device_ = str(device)
        self.precision_ = config.precision
        self.batch_size_ = trainer.micro_batch_size  # smaller than batch_size after an out-of-memory back-off
        self.training_settings_ = _resolved_settings(config)

    def _training_config(
        self, backend, module, settings, device, seed, targets, train_idx, fingerprint, valid_data
    ) -> TrainingConfig:  # type: ignore[no-untyped-def]
        """The loop's knobs from ``settings`` (each already this estimator's value or the backend's)."""
        defaults = backend.training_defaults
        patience = (
            _patience(self.early_stopping, defaults.get("patience")) if valid_data is not None else None
        )
        resolved = dict(settings)
        if self.max_epochs is None and defaults.get("min_steps"):
            # A recommended epoch count is sized for typical data; on a small training set it
            # would end the fit after a handful of steps, so train at least ``min_steps``.
            steps_per_epoch = count_batches(len(train_idx), int(resolved["batch_size"]))
            needed = math.ceil(int(defaults["min_steps"]) / max(steps_per_epoch, 1))
            resolved["max_epochs"] = max(int(resolved["max_epochs"]), needed)
        return TrainingConfig(
            max_epochs=int(resolved["max_epochs"]),
            batch_size=int(resolved["batch_size"]),
            lr=float(resolved["lr"]),
            weight_decay=float(resolved["weight_decay"]),
            device=device,
            precision=resolve_precision(self.precision, device),
            optimizer=self.optimizer,
            lr_schedule=str(resolved["lr_schedule"]),
            warmup=float(resolved["warmup"]),
            grad_clip=self.grad_clip,
            patience=patience,
            num_workers=int(self.num_workers),
            checkpoint_dir=self.checkpoint_dir,
            fingerprint=fingerprint,
            callbacks=list(self.callbacks or ()),
            verbose=bool(self.verbose),
            seed=seed,
            class_weight=self._class_weight([targets[i] for i in train_idx]),
            unfreeze_at=self.unfreeze_at,
            backbone_lr_mult=float(resolved["backbone_lr_mult"]),
            finetune_mix=float(self.finetune_mix),
            validation_fraction=float(resolved["validation_fraction"]),
        )

    # -- inference helpers ---------------------------------------------------------------
    def _check_is_fitted(self) -> None:
        if not hasattr(self, "module_"):
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet; call 'fit' with "
                "appropriate arguments before using this estimator."
            )

    def _inference_device(self) -> torch.device:
        device = torch.device(self.device_)
        if device.type == "cuda" and not torch.cuda.is_available():
            device = torch.device("cpu")
        return device

    def _forward_all(self, X: Any, step: Any) -> list[Any]:
        """Apply ``step(module, batch)`` to every batch of ``X`` in order; gather results."""
        self._check_is_fitted()
        X = self._check_X(X, fitting=False)
        device = self._inference_device()
        precision = self.precision_ if device.type == "cuda" else "fp32"
        module = self.module_
        # Only when needed: ``to()`` re-flattens an RNN's weights even on the same device, which
        # breaks a predict running in another thread on this model (one model, many threads).
        if module.training:
            module.eval()
        current = _device_of(module)
        if current is not None and not _same_device(current, device):
            module.to(device)
        data = self._backend.make_data(X, None, train=False)
        outputs = []
        # A private generator: a DataLoader otherwise seeds itself from torch's global one,
        # and prediction must not move the user's random stream.
        private = torch.Generator().manual_seed(0)
        with torch.inference_mode(), autocast(device, precision):
            for batch in iterate_batches(
                data, self.batch_size_ * 4, shuffle=False, generator=private, num_workers=self.num_workers
            ):
                outputs.append(step(module, to_device(batch, device)))
        return outputs

    # -- persistence -------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the fitted model to ``path`` (safetensors + JSON, no pickle).

        Reload it with :func:`skbig.load`.  Every parameter is saved except
        ``callbacks`` (live objects: pass them again before a ``warm_start``
        fit) and a ``RandomState`` ``random_state``, saved as ``None``
        (an int seed is kept).  Use ``joblib.dump`` to keep those too.
        """
        from skbig.persistence import save

        return save(self, path)

    def _fitted_json(self) -> dict[str, Any]:
        """Fitted facts beyond the weights, as JSON (extended by subclasses)."""
        return {
            "backend": self.backend_,
            "spec": {
                "task": self.spec_.task,
                "n_outputs": self.spec_.n_outputs,
                "extra": dict(self.spec_.extra),
            },
            "history": self.history_,
            "best_epoch": self.best_epoch_,
            "precision": self.precision_,
            "batch_size": self.batch_size_,
            "training_settings": getattr(self, "training_settings_", {}),  # absent from older pickles
        }

    def _restore_fitted(
        self, fitted: Mapping[str, Any], backend: Backend, weights: Mapping[str, torch.Tensor]
    ) -> None:
        spec = TaskSpec(**fitted["spec"])
        module = _rebuild_module(backend, spec)
        module.load_state_dict(dict(weights))
        self._backend = backend
        self.backend_ = fitted["backend"]
        self.spec_ = spec
        self.module_ = module.eval()
        self.history_ = list(fitted["history"])
        self.best_epoch_ = fitted["best_epoch"]
        self.device_ = "cpu" if self.device == "auto" else _device_here(self.device)
        self.precision_ = fitted["precision"]
        self.batch_size_ = int(fitted["batch_size"])
        self.training_settings_ = dict(fitted.get("training_settings", {}))  # {}: saved before it existed

    def __getstate__(self) -> dict[str, Any]:
        """Pickle weights as CPU tensors so a GPU-trained model loads on a CPU-only machine."""
        state = dict(super().__getstate__())  # a copy: Python 3.11 returns __dict__ itself
        module = state.pop("module_", None)
        if module is not None:
            state["_module_weights"] = {k: v.detach().cpu() for k, v in module.state_dict().items()}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        weights = state.pop("_module_weights", None)
        super().__setstate__(state)
        if weights is not None:
            module = _rebuild_module(self._backend, self.spec_)
            module.load_state_dict(weights)
            self.module_ = module.eval()

    # -- validation ----------------------------------------------------------------------------
    def _check_params(self) -> None:
        _check_number("max_epochs", self.max_epochs, integer=True, low=0, allow_none=True)
        _check_number("batch_size", self.batch_size, integer=True, low=1, allow_none=True)
        _check_number("lr", self.lr, low=0, low_open=True, allow_none=True)
        _check_number("weight_decay", self.weight_decay, low=0, allow_none=True)
        _check_number("warmup", self.warmup, low=0, high=1, allow_none=True)
        _check_number("grad_clip", self.grad_clip, low=0, low_open=True, allow_none=True)
        _check_number("validation_fraction", self.validation_fraction, low=0, high=1, allow_none=True)
        _check_number("num_workers", self.num_workers, integer=True, low=0)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES, allow_none=True)
        _check_choice("precision", self.precision, PRECISIONS)
        if not isinstance(self.backend, str):
            raise InvalidParameterError(f"backend must be a str name, got backend={self.backend!r}")
        if self.backend_params is not None and not isinstance(self.backend_params, Mapping):
            raise InvalidParameterError(
                f"backend_params must be a dict or None, got {type(self.backend_params).__name__}"
            )
        if not isinstance(self.early_stopping, (bool, numbers.Integral)) or self.early_stopping < 0:
            raise InvalidParameterError(
                "early_stopping must be True, False or a patience in epochs (0 is False), "
                f"got early_stopping={self.early_stopping!r}"
            )
        _check_number("backbone_lr_mult", self.backbone_lr_mult, low=0, low_open=True, allow_none=True)
        _check_number("finetune_mix", self.finetune_mix, low=0, high=1, high_open=False)
        _check_number("unfreeze_at", self.unfreeze_at, integer=True, low=0, allow_none=True)
        if not (self.freeze is None or self.freeze in ("auto", "backbone") or _is_str_list(self.freeze)):
            raise InvalidParameterError(
                "freeze must be 'auto', None, 'backbone' or a list of parameter-name glob patterns, "
                f"got freeze={self.freeze!r}"
            )
        if not isinstance(self.pretrained, (bool, str, os.PathLike)):
            raise InvalidParameterError(
                f"pretrained must be True, False or a path, got pretrained={self.pretrained!r}"
            )
        if isinstance(self.callbacks, Callback) or not isinstance(self.callbacks, (list, tuple, type(None))):
            raise InvalidParameterError(
                f"callbacks must be a list of skbig Callback instances, got {type(self.callbacks).__name__}; "
                "wrap a single one in a list: callbacks=[cb]"
            )
        for callback in self.callbacks or ():
            if not isinstance(callback, Callback):
                raise InvalidParameterError(
                    f"callbacks must be skbig Callback instances, got {type(callback).__name__}"
                )

    def _fingerprint(self, X: Sequence[Any], targets: Any, continued: torch.nn.Module | None) -> str:
        """Identify this fit so a checkpoint is never resumed by another.

        Covers the parameters (a ``RandomState`` by its state, not its
        address), the data (files by path, size and modification time; PIL
        images by their pixels) and, for a ``warm_start`` fit, the weights it
        continues from: the first fit's finished checkpoint is not the second's.
        """
        ignored = {"callbacks", "verbose", "checkpoint_dir", "num_workers", "device", "warm_start"}
        params = {k: v for k, v in self.get_params(deep=False).items() if k not in ignored}
        if isinstance(params.get("random_state"), np.random.RandomState):
            state = params["random_state"].get_state()
            params["random_state"] = ["RandomState", hashlib.sha256(state[1].tobytes()).hexdigest(), state[2]]
        digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=repr).encode())
        digest.update(type(self).__name__.encode())
        for item in X:
            digest.update(_item_bytes(item, files=self._items_are_files))
        digest.update(repr(_as_plain(targets)).encode())
        if continued is not None:
            digest.update(b"warm_start")
            for name, value in continued.state_dict().items():
                digest.update(name.encode())
                digest.update(value.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
        return digest.hexdigest()


def _resolved_settings(config: TrainingConfig) -> dict[str, Any]:
    """What the fit ran with after the estimator's ``None``/"auto" settings met the backend's recipe."""
    settings = {
        "max_epochs": config.max_epochs,
        "batch_size": config.batch_size,
        "lr": config.lr,
        "weight_decay": config.weight_decay,
        "optimizer": config.optimizer,
        "lr_schedule": config.lr_schedule,
        "warmup": effective_warmup(config.lr_schedule, config.warmup),  # one-cycle's own when 0
        "validation_fraction": config.validation_fraction,
        "patience": config.patience,
        "frozen": list(config.frozen),
        "unfreeze_at": config.unfreeze_at,
        "backbone_lr_mult": config.backbone_lr_mult,
        "head_init": config.head_init,
        "finetune_mix": config.finetune_mix,
        "precision": config.precision,  # "auto" resolved for the device: bf16 or fp32
        "grad_clip": config.grad_clip,
    }
    # Plain numbers: a value from a numpy grid (np.int64) must not stop save() writing JSON.
    return {key: value.item() if isinstance(value, np.generic) else value for key, value in settings.items()}


def _is_str_list(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)


def _frozen_patterns(
    freeze: str | list[str] | None,
    backbone: Sequence[str],
    module: torch.nn.Module,
    backend: str,
    *,
    recommended: bool,
) -> list[str]:
    """The parameter-name globs that ``freeze`` stands for.

    A value the user passed that would freeze nothing raises: a typo must not
    silently train everything.  A backend's own recommendation
    (``recommended``, from ``freeze="auto"``) is not checked: it may name
    layers that some models of a generic backend lack.
    """
    if freeze is None:
        return []
    if freeze == "backbone":
        if not backbone and not recommended:
            raise InvalidParameterError(
                f"freeze='backbone', but backend {backend!r} names no backbone (it has no pretrained "
                "part); pass a list of parameter-name glob patterns instead, or freeze=None"
            )
        return list(backbone)
    patterns = list(freeze)
    if not recommended:
        names = [name for name, _ in module.named_parameters()]
        unmatched = [pattern for pattern in patterns if not any(fnmatch(name, pattern) for name in names)]
        if unmatched:
            examples = ", ".join(repr(name) for name in names[:3])
            raise InvalidParameterError(
                f"freeze pattern(s) {unmatched} match no parameter of backend {backend!r}; patterns "
                f"are fnmatch globs over parameter names such as {examples} (model.named_parameters())"
            )
    return patterns


def _fitted_attributes(estimator: SkbigEstimator) -> dict[str, Any]:
    """What ``fit`` learns (sklearn's trailing-underscore attributes, and the backend)."""
    return {k: v for k, v in vars(estimator).items() if k.endswith("_") or k == "_backend"}


def _restore_fitted_attributes(estimator: SkbigEstimator, before: Mapping[str, Any]) -> None:
    for key in [k for k in _fitted_attributes(estimator) if k not in before]:
        delattr(estimator, key)
    for key, value in before.items():
        setattr(estimator, key, value)


def _rebuild_module(backend: Backend, spec: TaskSpec) -> torch.nn.Module:
    """The fitted module's architecture, randomly initialised: its saved weights are loaded next.

    ``backend.pretrained`` is switched off only while building (nothing needs the
    pretrained weights), then restored: a ``warm_start`` fit of the reloaded
    model must follow the same pretrained-only recommendations (``freeze``,
    ``backbone_lr_mult``) as one that continues in the fitting process.
    """
    pretrained = backend.pretrained
    backend.pretrained = False
    try:
        with torch.random.fork_rng(devices=[]):  # its random init must not move the user's stream
            return backend.build_module(spec)
    finally:
        backend.pretrained = pretrained


def _check_something_trains(config: TrainingConfig, module: torch.nn.Module, freeze: Any) -> None:
    """Refuse a ``freeze`` that leaves no parameter to train (torch would fail deep in backward)."""
    if not config.frozen or config.max_epochs < 1 or config.unfreeze_at == 0:
        return
    names = [name for name, _ in module.named_parameters()]
    if all(any(fnmatch(name, p) for p in config.frozen) for name in names):
        when = "in this fit" if config.unfreeze_at is None else f"before unfreeze_at={config.unfreeze_at}"
        raise InvalidParameterError(
            f"freeze={freeze!r} matches all {len(names)} parameters, so nothing would train {when}; "
            "leave the head out of the patterns (freeze='backbone' does), or pass unfreeze_at=0"
        )


def _warn_if_never_unfrozen(config: TrainingConfig) -> None:
    """Warn when ``unfreeze_at`` falls after the last epoch: an unfreeze asked for that cannot happen."""
    at, epochs = config.unfreeze_at, config.max_epochs
    if config.frozen and at is not None and 0 < epochs <= at:
        warnings.warn(
            f"unfreeze_at={at} is not below max_epochs={epochs}, so the frozen parameters never "
            "train in this fit; lower unfreeze_at, or pass unfreeze_at=None to keep them frozen",
            UserWarning,
            stacklevel=3,
        )


#: Held by a fit while it seeds and draws from torch's process-wide RNG (re-entrant: a
#: callback may fit another estimator in the same thread).
_TORCH_RNG_LOCK = threading.RLock()


def _device_of(module: torch.nn.Module) -> torch.device | None:
    """The device of ``module``'s first parameter or buffer (None when it has neither)."""
    for tensor in itertools.chain(module.parameters(), module.buffers()):
        return tensor.device
    return None


def _same_device(a: torch.device, b: torch.device) -> bool:
    """``cuda`` and ``cuda:0`` alike (an index left out means the current device)."""
    return a.type == b.type and (a.index is None or b.index is None or a.index == b.index)


def _device_here(device: str) -> str:
    """``device`` if this machine has it, else the CPU: a GPU-trained model still loads and predicts."""
    try:
        return str(resolve_device(device))
    except InvalidParameterError:
        return "cpu"


def _fit_seed(random_state: Any, fingerprint: str) -> int:
    """The seed of this fit's split, preprocessing and initial weights.

    With ``random_state=None`` and a checkpoint, the seed comes from the
    fit's fingerprint: a rerun after a crash must split and build exactly as
    the run that wrote the checkpoint, or the resumed weights would not fit
    the vocabulary, and rows trained on would score early stopping.
    """
    if random_state is None and fingerprint:
        return int(fingerprint[:8], 16) & 0x7FFFFFFF
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def _item_bytes(item: Any, *, files: bool) -> bytes:
    if isinstance(item, np.ndarray):
        return item.tobytes()
    if isinstance(item, (bytes, bytearray)):
        return bytes(item)
    if hasattr(item, "tobytes") and hasattr(item, "mode"):  # a PIL image: its pixels, not its repr
        return f"{item.mode}{item.size}".encode() + item.tobytes()
    text = os.fspath(item) if isinstance(item, os.PathLike) else str(item)
    stamp = ""
    if files or isinstance(item, os.PathLike):
        # A file rewritten under the same name is other data: its size or mtime changes.
        try:
            info = os.stat(text)
            stamp = f"\0{info.st_size}\0{info.st_mtime_ns}"
        except (OSError, ValueError):
            pass
    return (text + stamp).encode("utf-8", "surrogatepass")


def _as_plain(targets: Any) -> Any:
    return targets.tolist() if isinstance(targets, np.ndarray) else targets


def _patience(early_stopping: bool | int, backend_default: int | None) -> int | None:
    """True means the backend's recommended patience (or 5); an int is the patience itself."""
    if isinstance(early_stopping, bool):
        return int(backend_default or DEFAULT_PATIENCE) if early_stopping else None
    return int(early_stopping) or None


def _fork_devices(device: torch.device) -> list[int]:
    if device.type == "cuda":
        return [device.index if device.index is not None else torch.cuda.current_device()]
    return []


def _random_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    n_valid = math.ceil(n * fraction) if fraction > 0 else 0
    if n_valid < 1 or n - n_valid < 1:
        return np.arange(n), None
    order = np.random.RandomState(seed).permutation(n)
    return np.sort(order[n_valid:]), np.sort(order[:n_valid])


def _check_number(
    name: str,
    value: Any,
    *,
    integer: bool = False,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = True,
    allow_none: bool = False,
) -> None:
    if value is None and allow_none:
        return
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        raise InvalidParameterError(
            f"{name} must be {'an int' if integer else 'a number'}"
            f"{' or None' if allow_none else ''}, got {name}={value!r}"
        )
    if not math.isfinite(value):
        raise InvalidParameterError(f"{name} must be finite, got {name}={value!r}")
    given = value  # shown as passed: unfreeze_at=-1, not -1.0
    value = float(value)
    if low is not None and (value <= low if low_open else value < low):
        raise InvalidParameterError(f"{name} must be {'>' if low_open else '>='} {low}, got {name}={given!r}")
    if high is not None and (value >= high if high_open else value > high):
        bound = "<" if high_open else "<="
        raise InvalidParameterError(f"{name} must be {bound} {high}, got {name}={given!r}")


def _check_choice(name: str, value: Any, choices: Sequence[str], *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if value not in choices:
        raise InvalidParameterError(
            f"{name} must be one of {list(choices)}{' or None' if allow_none else ''}, got {name}={value!r}"
        )
