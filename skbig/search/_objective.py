"""One trial: sample a configuration, cross-validate it, report every epoch for pruning."""

from __future__ import annotations

import gc
import math
import shutil
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import clone

from skbig.engine.callbacks import Callback
from skbig.search.spaces import suggest

__all__ = [
    "CVObjective",
    "take",
    "STEP_STRIDE",
    "RETRY_OF_ATTR",
    "TOKEN_ATTR",
    "FOLDERS_ATTR",
    "remove_folders",
]

#: User attribute of a trial that re-runs the configuration of an interrupted
#: trial (its value: that trial's number); see ``_worker.requeue_interrupted_trials``.
RETRY_OF_ATTR = "skbig:retry_of"
#: The token naming a trial's checkpoint folders, and the folders (see :func:`_trial_checkpoint_dirs`).
TOKEN_ATTR = "skbig:checkpoint_token"
FOLDERS_ATTR = "skbig:checkpoint_folders"

#: Intermediate values of fold ``k`` are reported at steps ``k * STEP_STRIDE + epoch``,
#: so the pruner compares the same epoch of the same fold across trials.
STEP_STRIDE = 10_000


def take(X: Any, index: Sequence[int] | np.ndarray) -> Any:
    """Rows ``index`` of an array, DataFrame/Series or list."""
    if hasattr(X, "iloc"):
        return X.iloc[list(index)]
    if isinstance(X, np.ndarray):
        return X[np.asarray(index)]
    return [X[i] for i in index]


class PruningReporter(Callback):
    """Send each epoch's validation score to the trial; prune hopeless or overdue trials."""

    def __init__(self, trial: Any, fold: int, deadline: float | None) -> None:
        self.trial = trial
        self.fold = fold
        self.deadline = deadline

    def on_epoch_end(self, trainer: Any, record: Mapping[str, Any]) -> bool | None:
        import optuna

        score = record.get("valid_score")
        if score is not None and math.isfinite(score):
            self.trial.report(float(score), step=self.fold * STEP_STRIDE + int(record["epoch"]))
            if self.trial.should_prune():
                raise optuna.TrialPruned(f"pruned at fold {self.fold}, epoch {record['epoch']}")
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise optuna.TrialPruned("the search timeout was reached during this trial")
        return None


class CVObjective:
    """Cross-validated score of one sampled configuration (picklable for worker processes).

    The trial's value is the mean over folds of ``scorer`` on the held-out fold,
    computed with the weights early stopping kept (the best epoch).  Per fold
    it records the user attributes ``split_scores``, ``fit_times`` and
    ``score_times`` (seconds), which ``cv_results_`` reads.
    """

    def __init__(
        self,
        estimator: Any,
        space: Mapping[str, Any],
        X: Any,
        y: Any,
        splits: Sequence[tuple[np.ndarray, np.ndarray]],
        scorer: Any,
        *,
        deadline: float | None = None,
        device: str | None = None,
        per_trial_checkpoints: bool = False,
    ) -> None:
        self.estimator = estimator
        self.space = dict(space)
        self.X = X
        self.y = y
        self.splits = list(splits)
        self.scorer = scorer
        self.deadline = deadline
        self.device = device
        #: For studies that outlive the search (a storage): see :func:`_trial_checkpoint_dirs`.
        self.per_trial_checkpoints = per_trial_checkpoints

    def __call__(self, trial: Any) -> float:
        params = suggest(trial, self.space, self.estimator)
        trial.set_user_attr("params", _jsonable(params))
        folders = _trial_checkpoint_dirs(self.estimator, trial) if self.per_trial_checkpoints else {}
        try:
            value = self._cross_validate(trial, params, folders)
        except Exception:
            # Pruned or failed: never resumed, so its checkpoints are of no further use.  An
            # interruption (KeyboardInterrupt, SIGKILL) keeps them for the retry that resumes it.
            _remove_unless_taken_over(trial, folders)
            raise
        _remove_unless_taken_over(trial, folders)
        return value

    def _cross_validate(self, trial: Any, params: Mapping[str, Any], folders: Mapping[str, str]) -> float:
        scores, fit_times, score_times = [], [], []
        for fold, (train, test) in enumerate(self.splits):
            model = clone(self.estimator).set_params(**{**params, **folders})
            _add_callback(model, PruningReporter(trial, fold, self.deadline), self.device)
            start = time.perf_counter()
            model.fit(take(self.X, train), None if self.y is None else take(self.y, train))
            fit_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            score = self.scorer(model, take(self.X, test), None if self.y is None else take(self.y, test))
            score_times.append(time.perf_counter() - start)
            scores.append(_single_score(score))
            trial.set_user_attr("split_scores", scores)
            trial.set_user_attr("fit_times", fit_times)
            trial.set_user_attr("score_times", score_times)
            del model
            release_memory()
        return float(np.mean(scores))


def _trial_checkpoint_dirs(estimator: Any, trial: Any) -> dict[str, str]:
    """``{param: folder}``: a folder of its own under every ``checkpoint_dir`` of ``estimator``.

    For studies kept in a storage, whose finished trials the study itself
    records: one folder per trial (also inside a Pipeline), deleted when the
    trial ends, so the fold fits' checkpoints (each with the optimizer's
    state) do not pile up over a long study.  The folder is named by a random
    token, not by the configuration or the study's name: two trials that
    sample the same configuration, or two studies of the same name in other
    storages, must not delete each other's files.  A retry of an interrupted
    trial (``RETRY_OF_ATTR``) gets the token of the trial it retries, so its
    fits resume from their checkpoints.  The folders are recorded in the
    trial (``FOLDERS_ATTR``) for the worker to delete those of an
    interrupted trial that will not be retried.
    """
    token = trial.user_attrs.get(TOKEN_ATTR) or uuid.uuid4().hex[:16]
    folders = {
        key: str(Path(value) / f"optuna-trial-{token}")
        for key, value in estimator.get_params(deep=True).items()
        if (key == "checkpoint_dir" or key.endswith("__checkpoint_dir")) and value
    }
    if folders:
        trial.set_user_attr(TOKEN_ATTR, token)
        trial.set_user_attr(FOLDERS_ATTR, sorted(folders.values()))
    return folders


def remove_folders(folders: Any) -> None:
    """Delete checkpoint folders, whole (missing ones are fine)."""
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def _remove_unless_taken_over(trial: Any, folders: Mapping[str, str]) -> None:
    """Delete the trial's folders, unless another worker already failed the trial and may be retrying it.

    That happens to a worker paused (SIGSTOP, a laptop's sleep) past the
    storage's grace period: its trial was marked failed and its retry may
    be resuming from these very folders.
    """
    if not folders:
        return
    storage = trial.study._storage
    if storage.get_trial(trial._trial_id).state.is_finished():
        return
    remove_folders(folders.values())


def _single_score(score: Any) -> float:
    """The fold's score as a float; a scorer returning several metrics is refused by name."""
    if isinstance(score, Mapping):
        raise TypeError(
            f"scoring returned several metrics {sorted(score)}; OptunaSearchCV optimises one number, "
            "so scoring must return a single float"
        )
    return float(score)


def _add_callback(model: Any, callback: Callback, device: str | None) -> None:
    """Attach ``callback`` to the skbig estimator inside ``model`` (also inside a Pipeline)."""
    params = model.get_params(deep=True)
    keys = [k for k in params if k == "callbacks" or k.endswith("__callbacks")]
    updates: dict[str, Any] = {key: [*(params[key] or []), callback] for key in keys}
    if device is not None:
        for key in params:
            if (key == "device" or key.endswith("__device")) and params[key] == "auto":
                updates[key] = device
    if updates:
        model.set_params(**updates)


def release_memory() -> None:
    """Free what a finished trial held, so a long study does not creep up in memory."""
    gc.collect()
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _jsonable(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in params.items()}
