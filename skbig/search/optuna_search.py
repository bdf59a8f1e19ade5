"""OptunaSearchCV: hyper-parameter search that is itself a scikit-learn estimator.

It samples configurations with an Optuna sampler, cross-validates each one,
prunes hopeless trials from the per-epoch validation scores the training
engine reports (no ``partial_fit`` needed), persists every trial in the
study's storage (memory, SQLite, or any SQLAlchemy URL such as PostgreSQL so
workers on many machines share one study) and refits the best configuration.
"""

from __future__ import annotations

import contextlib
import json
import numbers
import os
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier
from sklearn.metrics import check_scoring
from sklearn.model_selection import check_cv
from sklearn.utils.metaestimators import available_if

from skbig.exceptions import InvalidParameterError, NotFittedError
from skbig.search._objective import CVObjective, release_memory
from skbig.search._worker import ERROR_ATTR, SURPLUS_ATTR, count_trials, make_storage, run_worker
from skbig.search.spaces import default_space, space_from_json, space_to_json

__all__ = ["OptunaSearchCV"]

SPEC_ATTR = "skbig:spec"


class OptunaSearchCV(MetaEstimatorMixin, BaseEstimator):
    """Search hyper-parameters with Optuna, prune by epoch, keep every trial.

    Parameters
    ----------
    estimator : estimator
        A skbig estimator, a Pipeline ending in one, or any scikit-learn
        estimator (pruning needs a skbig estimator).
    param_distributions : dict, optional
        ``{param: spec}`` with specs that are plain lists (categorical),
        :class:`skbig.search.Float`/``Int``/``Categorical`` or Optuna
        distributions. ``None`` uses the space the backend declares. If
        ``"backend"`` is searched, each backend's own space is searched in the
        trials that picked it.
    n_trials : int
        The study's budget of trials (complete, pruned or failed with an
        error); a resumed study only runs what is missing.
    timeout : float, optional
        Seconds for the search; the running trial is pruned at its next epoch
        end.  The refit of the best parameters then runs in full (as in
        scikit-learn), so ``best_estimator_`` is the model ``best_score_``
        describes.
    cv : int or splitter
        As in scikit-learn (stratified for classifiers).  The same splits are
        used by every trial.
    scoring : str or callable, optional
        As in scikit-learn; defaults to the estimator's ``score``.
    sampler : optuna sampler, optional
        Defaults to TPE seeded with ``random_state``.
    pruner : optuna pruner, "auto" or None
        "auto" is a median pruner after 2 complete trials and 1 epoch.
    storage : None, str or optuna storage
        ``None`` keeps the study in memory; ``"sqlite:///study.db"`` persists
        it; a PostgreSQL URL lets many processes and machines share it.
    study_name : str, optional
        Required to resume or share a study (a unique name otherwise).
    load_if_exists : bool
        Resume an existing study of that name, keeping its finished trials.
    n_jobs : int
        Worker processes running trials concurrently (processes, not threads;
        one trial per GPU when several GPUs are present).
    refit : bool
        Fit ``best_estimator_`` on all data with the best parameters.
    random_state : int, optional
        Seeds the default sampler.
    callbacks : list, optional
        Optuna-style callbacks ``f(study, frozen_trial)``, called in the
        process that ran the trial.
    catch : tuple of exception types
        Exceptions in a trial's ``fit`` that mark the trial failed (with its
        error recorded) instead of stopping the search.
    verbose : int
        0 silences Optuna's per-trial log lines.

    Attributes
    ----------
    best_estimator_, best_params_, best_score_, best_trial_
        The winner (``best_estimator_`` only with ``refit=True``): the
        complete trial with the highest mean CV score.  If every trial was
        pruned (a very short ``timeout``), the pruned trial with the highest
        last validation score, and ``best_trial_.state`` is PRUNED.
    study_ : optuna.Study
    cv_results_ : dict
        scikit-learn-shaped results, one entry per counted trial.
    n_trials_ : int
        Counted trials in the study.

    Examples
    --------
    >>> from skbig import TextClassifier, OptunaSearchCV
    >>> texts = ["free prize now", "lunch at noon", "win cash", "see you soon"] * 10
    >>> labels = ["spam", "ham", "spam", "ham"] * 10
    >>> search = OptunaSearchCV(TextClassifier(max_epochs=2), {"lr": [1e-3, 1e-2]}, n_trials=2, cv=2,
    ...                         random_state=0).fit(texts, labels)
    >>> sorted(search.best_params_)
    ['lr']
    """

    def __init__(
        self,
        estimator: Any,
        param_distributions: Mapping[str, Any] | None = None,
        *,
        n_trials: int = 20,
        timeout: float | None = None,
        cv: Any = 3,
        scoring: Any = None,
        sampler: Any = None,
        pruner: Any = "auto",
        storage: Any = None,
        study_name: str | None = None,
        load_if_exists: bool = True,
        n_jobs: int = 1,
        refit: bool = True,
        random_state: int | None = None,
        callbacks: list[Any] | None = None,
        catch: tuple[type[BaseException], ...] = (Exception,),
        verbose: int = 0,
    ) -> None:
        self.estimator = estimator
        self.param_distributions = param_distributions
        self.n_trials = n_trials
        self.timeout = timeout
        self.cv = cv
        self.scoring = scoring
        self.sampler = sampler
        self.pruner = pruner
        self.storage = storage
        self.study_name = study_name
        self.load_if_exists = load_if_exists
        self.n_jobs = n_jobs
        self.refit = refit
        self.random_state = random_state
        self.callbacks = callbacks
        self.catch = catch
        self.verbose = verbose

    # -- fit ---------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> OptunaSearchCV:
        """Run the study until it holds ``n_trials`` counted trials, then refit the best."""
        self._check_params()
        _check_inputs(self.estimator, X, y)
        deadline = time.monotonic() + self.timeout if self.timeout is not None else None
        with _optuna_logging(self.verbose), self._shared_storage() as (storage, url):
            study = self._create_study(storage)
            space = self._space()
            splits = list(check_cv(self.cv, y, classifier=is_classifier(self.estimator)).split(X, y))
            scorer = check_scoring(self.estimator, scoring=self.scoring)
            objective = CVObjective(self.estimator, space, X, y, splits, scorer, deadline=deadline)
            _store_spec(study, self, space, splits, X, y)
            if self.n_jobs == 1:
                run_worker(
                    study,
                    storage,
                    objective,
                    self.n_trials,
                    deadline=deadline,
                    catch=self.catch,
                    callbacks=self.callbacks,
                )
            else:
                self._run_parallel(url, study.study_name, objective, deadline)
            self._collect(study, splits)
            if self.refit:
                self._refit(X, y)
        return self

    def create_study(self, X: Any, y: Any = None) -> Any:
        """Create (or load) the study and store the spec ``skbig search-worker`` reads; run no trial.

        Use it to start a study that workers on other machines fill
        (``skbig search-worker --storage URL --study NAME --n-trials N``);
        a later ``fit`` with the same ``storage`` and ``study_name`` collects
        their trials and refits the best.
        """
        self._check_params()
        if not isinstance(self.storage, str) or self.study_name is None:
            raise InvalidParameterError(
                "create_study needs storage as a database URL and a study_name, so workers can find the study"
            )
        with _optuna_logging(self.verbose):
            study = self._create_study(make_storage(self.storage))
        splits = list(check_cv(self.cv, y, classifier=is_classifier(self.estimator)).split(X, y))
        if _build_spec(self, self._space(), splits, X, y) is None:
            raise InvalidParameterError(
                "this search cannot be described for remote workers: it needs a skbig estimator (not a "
                "Pipeline), a named scoring, and X/y made of JSON values (texts, paths, numbers)"
            )
        _store_spec(study, self, self._space(), splits, X, y)
        return study

    def _check_params(self) -> None:
        if (
            isinstance(self.n_trials, bool)
            or not isinstance(self.n_trials, numbers.Integral)
            or self.n_trials < 1
        ):
            raise InvalidParameterError(f"n_trials must be an int >= 1, got n_trials={self.n_trials!r}")
        if self.timeout is not None and not self.timeout > 0:
            raise InvalidParameterError(f"timeout must be > 0 seconds or None, got timeout={self.timeout!r}")
        if not isinstance(self.n_jobs, int) or self.n_jobs == 0 or self.n_jobs < -1:
            raise InvalidParameterError(f"n_jobs must be >= 1 or -1, got n_jobs={self.n_jobs!r}")
        if self.param_distributions is not None and not isinstance(self.param_distributions, Mapping):
            raise InvalidParameterError(
                f"param_distributions must be a dict or None, got {type(self.param_distributions).__name__}"
            )
        valid = set(self.estimator.get_params(deep=True))
        space = self.param_distributions or {}
        searches_backend = any(k.split("__")[-1] == "backend" for k in space)
        unknown = [k for k in space if k not in valid and k.split("__")[-1] != "backend"]
        if searches_backend:  # each backend has its own hyper-parameters: checked in its trials
            unknown = [k for k in unknown if "backend_params__" not in k]
        if unknown:
            raise InvalidParameterError(
                f"param_distributions names parameter(s) {unknown} that {type(self.estimator).__name__} "
                f"does not have; valid: {sorted(valid)}"
            )

    def _space(self) -> dict[str, Any]:
        if self.param_distributions is None:
            return default_space(self.estimator)
        return dict(self.param_distributions)

    @contextlib.contextmanager
    def _shared_storage(self) -> Iterator[tuple[Any, str | None]]:
        """Worker processes need a storage they can all open: a temporary SQLite file if none was given."""
        if self.n_jobs != 1 and self.storage is None:
            with tempfile.TemporaryDirectory(prefix="skbig-study-") as tmp:
                url = f"sqlite:///{Path(tmp) / 'study.db'}"
                yield make_storage(url), url
            return
        yield make_storage(self.storage), self.storage if isinstance(self.storage, str) else None

    def _create_study(self, storage: Any) -> Any:
        import optuna

        sampler = (
            self.sampler if self.sampler is not None else optuna.samplers.TPESampler(seed=self.random_state)
        )
        pruner = self.pruner
        if pruner == "auto":
            pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
        elif pruner is None:
            pruner = optuna.pruners.NopPruner()
        return optuna.create_study(
            storage=storage,
            sampler=sampler,
            pruner=pruner,
            study_name=self.study_name,
            direction="maximize",
            load_if_exists=self.load_if_exists,
        )

    def _run_parallel(
        self, url: str | None, study_name: str, objective: CVObjective, deadline: float | None
    ) -> None:
        from joblib import Parallel, delayed

        if url is None:
            raise InvalidParameterError(
                "n_jobs > 1 needs a storage URL that worker processes can open (or storage=None for a "
                "temporary SQLite file); an optuna storage object cannot be shared between processes"
            )
        n_jobs = (os.cpu_count() or 1) if self.n_jobs == -1 else self.n_jobs
        remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        Parallel(n_jobs=n_jobs, backend="loky")(
            delayed(_worker_process)(
                url,
                study_name,
                objective,
                self.n_trials,
                remaining,
                self.catch,
                self._worker_sampler(rank),
                rank,
            )
            for rank in range(n_jobs)
        )

    def _worker_sampler(self, rank: int) -> Any:
        """The sampler of worker ``rank``: the user's, or TPE seeded from ``random_state``.

        Each worker gets its own seed (``random_state + rank``): the same seed
        would make every worker propose the same first parameters.
        """
        if self.sampler is not None:
            return self.sampler
        import optuna

        seed = None if self.random_state is None else int(self.random_state) + rank
        return optuna.samplers.TPESampler(seed=seed)

    # -- results -----------------------------------------------------------------------------------
    def _collect(self, study: Any, splits: list[Any]) -> None:
        from optuna.trial import TrialState

        trials = [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get(SURPLUS_ATTR)]
        trials = [t for t in trials if t.state != TrialState.FAIL or ERROR_ATTR in t.user_attrs]
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        self.study_ = study
        self._study_name = study.study_name  # to load it again after unpickling (study_ is not pickled)
        self.n_trials_ = count_trials(study)[0]
        self.cv_results_ = _cv_results(trials, len(splits))
        if complete:
            best = max(complete, key=lambda t: t.value)
            score = float(best.value)
        else:
            # Only when every trial was pruned (e.g. a short timeout): take the trial whose
            # last reported validation score is highest, and say so through best_trial_.state.
            reported = [t for t in trials if t.state == TrialState.PRUNED and t.intermediate_values]
            if not reported:
                errors = [t.user_attrs.get(ERROR_ATTR) for t in trials if ERROR_ATTR in t.user_attrs]
                raise InvalidParameterError(
                    f"no trial completed ({len(trials)} pruned or failed"
                    + (f"; first error: {errors[0]}" if errors else "")
                    + "); widen the space, raise n_trials or timeout"
                )
            best = max(reported, key=lambda t: t.intermediate_values[max(t.intermediate_values)])
            score = float(best.intermediate_values[max(best.intermediate_values)])
        self.best_trial_ = best
        self.best_params_ = dict(best.user_attrs["params"])
        self.best_score_ = score

    def _refit(self, X: Any, y: Any) -> None:
        model = clone(self.estimator).set_params(**self.best_params_)
        start = time.perf_counter()
        self.best_estimator_ = model.fit(X, y)
        self.refit_time_ = time.perf_counter() - start
        release_memory()

    def trials_dataframe(self, **kwargs: Any) -> Any:
        """All trials as a pandas DataFrame (Optuna's ``Study.trials_dataframe``)."""
        return self._study().trials_dataframe(**kwargs)

    def plot_optimization_history(self, path: str | os.PathLike[str]) -> Path:
        """Save Optuna's optimisation-history plot as a PNG file (needs matplotlib)."""
        return self._save_plot("plot_optimization_history", path)

    def plot_param_importances(self, path: str | os.PathLike[str]) -> Path:
        """Save Optuna's parameter-importance plot as a PNG file (needs matplotlib)."""
        return self._save_plot("plot_param_importances", path)

    def _save_plot(self, name: str, path: str | os.PathLike[str]) -> Path:
        study = self._study()
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError as exc:
            raise ImportError("plots need matplotlib: pip install 'skbig[plot]'") from exc
        import optuna.visualization.matplotlib as ovm
        from optuna.exceptions import ExperimentalWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=ExperimentalWarning)
            # Optuna's importance evaluator notes when a small study makes all importances equal.
            warnings.filterwarnings("ignore", message="Target and region quantiles select the same set")
            axes = getattr(ovm, name)(study)
        figure = axes.figure if hasattr(axes, "figure") else plt.gcf()
        path = Path(path)
        figure.savefig(path, dpi=120, bbox_inches="tight")
        plt.close(figure)
        return path

    # -- delegation ----------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "best_params_"):  # not study_: a pickle drops it and keeps the results
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet; call 'fit' first.")

    def _study(self) -> Any:
        """The study: the live one, or after unpickling the one in ``storage``, loaded again."""
        self._check_fitted()
        if not hasattr(self, "study_"):
            if not isinstance(self.storage, str):
                raise NotFittedError(
                    "this search was unpickled and its study lived in memory (storage=None), so its "
                    "trials are gone; best_params_, cv_results_ and best_estimator_ remain. Search with "
                    "storage='sqlite:///study.db' to keep the study"
                )
            import optuna

            self.study_ = optuna.load_study(study_name=self._study_name, storage=self.storage)
        return self.study_

    def _best(self) -> Any:
        self._check_fitted()
        if not hasattr(self, "best_estimator_"):
            raise NotFittedError("refit=False: there is no best_estimator_ to predict with")
        return self.best_estimator_

    def predict(self, X: Any) -> Any:
        """Predict with ``best_estimator_``."""
        return self._best().predict(X)

    @available_if(lambda self: hasattr(self.estimator, "predict_proba"))
    def predict_proba(self, X: Any) -> Any:
        """Class probabilities from ``best_estimator_``."""
        return self._best().predict_proba(X)

    @available_if(lambda self: hasattr(self.estimator, "predict_log_proba"))
    def predict_log_proba(self, X: Any) -> Any:
        """Log class probabilities from ``best_estimator_``."""
        return self._best().predict_log_proba(X)

    def score(self, X: Any, y: Any = None) -> float:
        """Score ``best_estimator_`` with ``scoring`` (or its own ``score``)."""
        scorer = check_scoring(self.estimator, scoring=self.scoring)
        return float(scorer(self._best(), X, y))

    @property
    def classes_(self) -> Any:
        return self._best().classes_

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        inner = self.estimator.__sklearn_tags__()
        tags.estimator_type = inner.estimator_type
        tags.input_tags = inner.input_tags
        tags.target_tags = inner.target_tags
        tags.classifier_tags = inner.classifier_tags
        return tags

    def __getstate__(self) -> dict[str, Any]:
        """The study lives in its storage; pickles keep the results, not the live study object."""
        state = dict(self.__dict__)
        state.pop("study_", None)
        return state


def _check_inputs(estimator: Any, X: Any, y: Any) -> None:
    """Refuse ``X`` and ``y`` that every trial would refuse, before any trial runs.

    Otherwise each trial fails on the same bad item and the search ends with
    "no trial completed", which points at the space instead of the data.
    """
    from skbig.data.labels import check_classification_targets
    from skbig.estimators.base import SkbigEstimator

    if not isinstance(estimator, SkbigEstimator):
        return
    checker = clone(estimator)  # a clone: checking may record facts about the input
    n_samples = len(checker._check_X(X, fitting=True))
    if is_classifier(checker):
        check_classification_targets(y, n_samples)
    elif hasattr(checker, "_check_transcripts"):
        checker._check_transcripts(y, n_samples)


def _worker_process(
    url: str,
    study_name: str,
    objective: CVObjective,
    budget: int,
    remaining: float | None,
    catch: tuple[type[BaseException], ...],
    sampler: Any,
    rank: int,
) -> int:
    """Body of one worker process started by ``n_jobs``."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    gpus = _gpu_count()
    if gpus > 1:
        objective.device = f"cuda:{rank % gpus}"
    if remaining is not None:
        objective.deadline = time.monotonic() + remaining
    storage = make_storage(url)
    study = optuna.load_study(study_name=study_name, storage=storage, sampler=sampler)
    return run_worker(study, storage, objective, budget, deadline=objective.deadline, catch=catch)


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _cv_results(trials: list[Any], n_splits: int) -> dict[str, Any]:
    """scikit-learn-shaped ``cv_results_`` (NaN scores for pruned or failed trials)."""
    from optuna.trial import TrialState

    params = [dict(t.user_attrs.get("params", {})) for t in trials]
    names = sorted({k for p in params for k in p})
    means = np.array([t.value if t.state == TrialState.COMPLETE else np.nan for t in trials], dtype=float)
    results: dict[str, Any] = {"params": params, "state": [t.state.name for t in trials]}
    for name in names:
        values = [p.get(name) for p in params]
        results[f"param_{name}"] = np.ma.MaskedArray(
            np.array(values, dtype=object), mask=[v is None for v in values]
        )
    for split in range(n_splits):
        results[f"split{split}_test_score"] = np.array(
            [_split_score(t, split) if t.state == TrialState.COMPLETE else np.nan for t in trials]
        )
    split_matrix = np.array([results[f"split{s}_test_score"] for s in range(n_splits)]).T.reshape(
        len(trials), -1
    )
    results["mean_test_score"] = means
    results["std_test_score"] = np.array(
        [np.std(row) if np.isfinite(row).all() else np.nan for row in split_matrix], dtype=float
    )
    # As scikit-learn ranks: ties share the best rank ("min"), pruned and failed trials come last.
    from scipy.stats import rankdata

    results["rank_test_score"] = rankdata(-np.nan_to_num(means, nan=-np.inf), method="min").astype(np.int32)
    results["mean_fit_time"] = np.array([np.mean(t.user_attrs.get("fit_times", [np.nan])) for t in trials])
    return results


def _split_score(trial: Any, split: int) -> float:
    scores = trial.user_attrs.get("split_scores", [])
    return float(scores[split]) if split < len(scores) else np.nan


@contextlib.contextmanager
def _optuna_logging(verbose: int) -> Iterator[None]:
    import optuna

    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.INFO if verbose else optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(previous)


# -- the spec remote workers read --------------------------------------------------------------
def _store_spec(
    study: Any, search: OptunaSearchCV, space: Mapping[str, Any], splits: list[Any], X: Any, y: Any
) -> None:
    """Save what ``skbig search-worker`` needs (estimator, space, splits, data) in the study, as JSON.

    A study that already ran trials for another search (estimator, parameters,
    space, scoring, data or splits) is refused: its best trial would be refit
    with parameters the new estimator may not even have.
    """
    spec = _build_spec(search, space, splits, X, y)
    if spec is None:
        return
    stored = study.user_attrs.get(SPEC_ATTR)
    if stored is not None and study.get_trials(deepcopy=False):
        changed = _spec_differences(json.loads(stored), spec)
        if changed:
            raise InvalidParameterError(
                f"study {study.study_name!r} already holds trials of another search (different "
                f"{', '.join(changed)}); resuming it would mix them. Use a new study_name, or "
                "delete the study (optuna.delete_study) to start over"
            )
    study.set_user_attr(SPEC_ATTR, json.dumps(spec))


#: Estimator parameters that change how a fit runs, not what it learns.
_RUN_ONLY_PARAMS = frozenset({"verbose", "num_workers", "device", "checkpoint_dir", "callbacks"})


def _spec_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    changed = [
        key for key in ("estimator", "space", "scoring", "data", "splits") if old.get(key) != new.get(key)
    ]
    params = set(old.get("params", {})) | set(new.get("params", {}))
    changed += [
        f"{key}={old.get('params', {}).get(key)!r} -> {new.get('params', {}).get(key)!r}"
        for key in sorted(params - _RUN_ONLY_PARAMS)
        if old.get("params", {}).get(key) != new.get("params", {}).get(key)
    ]
    return changed


def _build_spec(
    search: OptunaSearchCV, space: Mapping[str, Any], splits: list[Any], X: Any, y: Any
) -> dict[str, Any] | None:
    from skbig.estimators.base import SkbigEstimator

    estimator = search.estimator
    if not isinstance(estimator, SkbigEstimator) or not (
        search.scoring is None or isinstance(search.scoring, str)
    ):
        return None  # only plain skbig estimators with named scorers can be rebuilt without pickle
    params = {k: v for k, v in estimator.get_params(deep=False).items() if k != "callbacks"}
    try:
        data = {"X": _plain(X), "y": _plain(y)}
        payload = {
            "estimator": type(estimator).__name__,
            "params": params,
            "space": space_to_json(space),
            "splits": [[train.tolist(), test.tolist()] for train, test in splits],
            "scoring": search.scoring,
            "data": data,
        }
        json.dumps(payload)
    except (TypeError, ValueError):
        return None
    return payload


def _plain(values: Any) -> Any:
    if values is None:
        return None
    if hasattr(values, "to_numpy"):
        values = values.to_numpy()
    if isinstance(values, np.ndarray):
        return (
            {"array": values.tolist(), "dtype": values.dtype.str}
            if values.dtype.kind in "biufU"
            else values.tolist()
        )
    return [str(v) if isinstance(v, os.PathLike) else v for v in values]


def _unplain(data: Any) -> Any:
    if isinstance(data, dict) and "array" in data:
        return np.asarray(data["array"], dtype=np.dtype(data["dtype"]))
    return data


def objective_from_spec(study: Any) -> tuple[CVObjective, Any]:
    """Rebuild the objective saved by ``fit`` (used by ``skbig search-worker``)."""
    from importlib import import_module

    from skbig.persistence import _ESTIMATORS

    raw = study.user_attrs.get(SPEC_ATTR)
    if raw is None:
        raise InvalidParameterError(
            f"study {study.study_name!r} has no skbig search spec; start it with OptunaSearchCV(...).fit "
            "or OptunaSearchCV(...).create_study(X, y) first"
        )
    spec = json.loads(raw)
    name = spec["estimator"]
    if name not in _ESTIMATORS:
        raise InvalidParameterError(f"unknown estimator {name!r} in the study spec")
    estimator = getattr(import_module(_ESTIMATORS[name]), name)(**spec["params"])
    splits = [(np.asarray(train), np.asarray(test)) for train, test in spec["splits"]]
    X, y = _unplain(spec["data"]["X"]), _unplain(spec["data"]["y"])
    scorer = check_scoring(estimator, scoring=spec["scoring"])
    return CVObjective(estimator, space_from_json(spec["space"]), X, y, splits, scorer), estimator
