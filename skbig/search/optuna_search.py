"""OptunaSearchCV: hyper-parameter search that is itself a scikit-learn estimator.

It samples configurations with an Optuna sampler, cross-validates each one,
prunes hopeless trials from the per-epoch validation scores the training
engine reports (no ``partial_fit`` needed), persists every trial in the
study's storage (memory, SQLite, or any SQLAlchemy URL such as PostgreSQL so
workers on many machines share one study) and refits the best configuration.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import numbers
import os
import re
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
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
FINGERPRINT_ATTR = "skbig:fingerprint"


def _refitted_has(attr: str) -> Callable[[Any], bool]:
    """``available_if`` check, as in scikit-learn's searches: ``attr`` needs ``refit=True``.

    Before ``fit`` it asks the estimator, after ``fit`` the refitted ``best_estimator_``.
    """

    def check(self: OptunaSearchCV) -> bool:
        if not self.refit:
            raise AttributeError(
                f"This {type(self).__name__} has refit=False, so it has no best_estimator_ and no "
                f"{attr!r}; refit it with refit=True or fit a clone of the estimator with best_params_"
            )
        if hasattr(self, "best_estimator_"):
            return hasattr(self.best_estimator_, attr)
        return hasattr(self.estimator, attr)

    return check


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
        trials that picked it.  As in scikit-learn's searches, a searched
        parameter overrides the estimator's own value of it: to fix a
        parameter, set it on the estimator and leave it out of the space
        (``skbig search --param`` does that for you).
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
        One metric, as in scikit-learn (a scorer name, or a callable
        ``scorer(estimator, X, y)`` returning a float); defaults to the
        estimator's ``score``.  The multi-metric forms (a list or dict) are
        refused: the study optimises one number.
    sampler : optuna sampler, optional
        Defaults to TPE seeded from ``random_state``, the number of trials
        already in the study and the worker's rank, so that a resumed study,
        and each of ``n_jobs`` workers, proposes new configurations instead
        of repeating the first ones; a fresh study with the same
        ``random_state`` proposes the same ones.
    pruner : optuna pruner, "auto" or None
        "auto" is a median pruner after 2 complete trials and 1 epoch; None
        never prunes.  Worker processes (``n_jobs``) use it too, and the study
        records it for ``skbig search-worker`` (Optuna's built-in pruners are
        recorded with their settings; any other pruner cannot be rebuilt
        there, and ``search-worker`` then uses "auto" and says so).
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
        Optuna-style callbacks ``f(study, frozen_trial)``, called after each
        trial in the process that ran it.  With ``n_jobs > 1`` that is a
        worker process: each callback is pickled (as joblib's loky pickles)
        and sent there, so what it changes in memory stays in that process
        (write to a file or a database instead); a callback that cannot be
        pickled is refused before the search starts.
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
    best_index_ : int
        Index of the best trial in ``cv_results_``.
    study_ : optuna.Study
    cv_results_ : dict
        scikit-learn-shaped results, one entry per counted trial: ``params``,
        ``param_<name>``, ``split<k>_test_score``, ``mean_test_score``,
        ``std_test_score``, ``rank_test_score``, ``mean_fit_time``,
        ``std_fit_time``, ``mean_score_time``, ``std_score_time`` (times over
        the folds a trial finished; NaN for a trial pruned in its first fold)
        and ``state`` (COMPLETE, PRUNED or FAIL; scores are NaN unless
        COMPLETE).  There are no ``train`` scores: trials do not compute them.
    n_trials_ : int
        Counted trials in the study.
    refit_time_ : float
        Seconds the refit took (``refit=True`` only).

    Notes
    -----
    ``predict``, ``predict_proba``, ``predict_log_proba`` and ``score``
    exist only with ``refit=True`` (and when the estimator has them), as in
    scikit-learn's searches.  The study records a fingerprint of the search
    (estimator, parameters, space, scoring, data and splits) and refuses to
    resume a study that holds trials of another search.  The full search
    (estimator, space, splits and data as JSON), which ``skbig
    search-worker`` reads, is stored only when another process can open the
    study (a database storage), never for ``storage=None``.

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
            objective = CVObjective(
                self.estimator,
                space,
                X,
                y,
                splits,
                scorer,
                deadline=deadline,
                # A study in a storage outlives the search: it records the finished trials, so their
                # checkpoints can go, and its interrupted trials are retried (see _objective).
                per_trial_checkpoints=self.storage is not None,
            )
            # Only a study other processes can open needs the full spec `skbig search-worker` reads
            # (the data as JSON); our own worker processes get the objective pickled.
            read_elsewhere = self.storage is not None and not _in_memory(storage)
            _store_spec(study, self, space, splits, X, y, full=read_elsewhere)
            n_before = len(study.get_trials(deepcopy=False))
            if self.n_jobs == 1:
                if self.sampler is None:
                    study.sampler = self._worker_sampler(0, n_before)
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
                self._run_parallel(url, study.study_name, objective, deadline, n_before)
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
        _store_spec(study, self, self._space(), splits, X, y, full=True)
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
        if isinstance(self.scoring, (list, tuple, set, frozenset, Mapping)):
            raise InvalidParameterError(
                f"scoring must be one metric (a scorer name or a callable returning a float), got "
                f"scoring={self.scoring!r}; OptunaSearchCV optimises a single number, so multi-metric "
                "scoring (a list or dict) is not supported: search with one metric and compute the others "
                "on best_estimator_"
            )
        self._check_callbacks_can_be_sent()
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

    def _check_callbacks_can_be_sent(self) -> None:
        """With worker processes each callback runs in the worker: refuse one that cannot be sent there."""
        if self.n_jobs == 1 or not self.callbacks:
            return
        from joblib.externals.loky.backend.reduction import dumps  # how loky sends them

        for callback in self.callbacks:
            try:
                dumps(callback)
            except Exception as exc:
                raise InvalidParameterError(
                    f"callbacks: {callback!r} cannot be pickled ({type(exc).__name__}: {exc}), but with "
                    f"n_jobs={self.n_jobs} each callback runs in the worker process that ran the trial. "
                    "Pass n_jobs=1, or a callback that pickles (e.g. a module-level function)"
                ) from exc

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
        """Create or load the study (``fit`` then gives it the sampler for the trials it holds)."""
        import optuna

        return optuna.create_study(
            storage=storage,
            sampler=self._worker_sampler(0),
            pruner=_make_pruner(self.pruner),
            study_name=self.study_name,
            direction="maximize",
            load_if_exists=self.load_if_exists,
        )

    def _run_parallel(
        self,
        url: str | None,
        study_name: str,
        objective: CVObjective,
        deadline: float | None,
        n_before: int = 0,
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
                self._worker_sampler(rank, n_before),
                rank,
                _make_pruner(self.pruner),
                self.callbacks,
            )
            for rank in range(n_jobs)
        )

    def _worker_sampler(self, rank: int, n_before: int = 0) -> Any:
        """The sampler of worker ``rank``: the user's, or TPE seeded from ``random_state``.

        The seed depends on ``random_state``, the number of trials the study
        held before this ``fit`` (``n_before``) and the worker's rank: the
        same seed would make every worker, and every resumed ``fit``, propose
        the configurations already evaluated.  A fresh study gets
        ``random_state + rank``, so the same ``random_state`` gives the same
        search.
        """
        if self.sampler is not None:
            return self.sampler
        import optuna

        return optuna.samplers.TPESampler(seed=_sampler_seed(self.random_state, n_before, rank))

    # -- results -----------------------------------------------------------------------------------
    def _collect(self, study: Any, splits: list[Any]) -> None:
        from optuna.trial import TrialState

        trials = [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get(SURPLUS_ATTR)]
        trials = [t for t in trials if t.state != TrialState.FAIL or ERROR_ATTR in t.user_attrs]
        trials = [t for t in trials if t.state != TrialState.WAITING]  # a queued retry that never ran
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
                raise InvalidParameterError(_no_result_message(trials))
            best = max(reported, key=lambda t: t.intermediate_values[max(t.intermediate_values)])
            score = float(best.intermediate_values[max(best.intermediate_values)])
        self.best_trial_ = best
        self.best_index_ = next(i for i, t in enumerate(trials) if t is best)
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

    @available_if(_refitted_has("predict"))
    def predict(self, X: Any) -> Any:
        """Predict with ``best_estimator_``."""
        return self._best().predict(X)

    @available_if(_refitted_has("predict_proba"))
    def predict_proba(self, X: Any) -> Any:
        """Class probabilities from ``best_estimator_``."""
        return self._best().predict_proba(X)

    @available_if(_refitted_has("predict_log_proba"))
    def predict_log_proba(self, X: Any) -> Any:
        """Log class probabilities from ``best_estimator_``."""
        return self._best().predict_log_proba(X)

    @available_if(_refitted_has("score"))
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
    pruner: Any = None,
    callbacks: Any = None,
) -> int:
    """Body of one worker process started by ``n_jobs``: the search's sampler, pruner and callbacks."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    gpus = _gpu_count()
    if gpus > 1:
        objective.device = f"cuda:{rank % gpus}"
    if remaining is not None:
        objective.deadline = time.monotonic() + remaining
    storage = make_storage(url)
    # load_study without a pruner would give Optuna's default MedianPruner, whatever the search asked for.
    study = optuna.load_study(
        study_name=study_name,
        storage=storage,
        sampler=sampler,
        pruner=pruner if pruner is not None else _make_pruner(None),
    )
    return run_worker(
        study, storage, objective, budget, deadline=objective.deadline, catch=catch, callbacks=callbacks
    )


def _make_pruner(pruner: Any) -> Any:
    """The Optuna pruner for the ``pruner`` parameter ("auto", None or an Optuna pruner)."""
    import optuna

    if isinstance(pruner, str) and pruner == "auto":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
    if pruner is None:
        return optuna.pruners.NopPruner()
    return pruner


def _sampler_seed(random_state: Any, n_before: int, rank: int) -> int | None:
    """Seed of the default TPE sampler of worker ``rank`` in a study that held ``n_before`` trials.

    A fresh study keeps ``random_state + rank``; a resumed one mixes the three
    numbers (NumPy's ``SeedSequence``), so no resume or worker replays another's
    random stream.
    """
    if random_state is None:
        return None
    if n_before == 0:
        return int(random_state) + rank
    entropy = [int(random_state) % 2**32, int(n_before), int(rank)]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def _in_memory(storage: Any) -> bool:
    import optuna

    return isinstance(storage, optuna.storages.InMemoryStorage)


def _no_result_message(trials: list[Any]) -> str:
    """Why no trial has a score: one error every trial hit, or advice on the space and the budget."""
    errors = [t.user_attrs[ERROR_ATTR] for t in trials if ERROR_ATTR in t.user_attrs]
    distinct = list(dict.fromkeys(errors))
    if errors and len(errors) == len(trials) and len(distinct) == 1:  # not the space: don't say widen it
        which = "the only trial" if len(trials) == 1 else f"all {len(trials)} trials"
        return f"no trial completed: {which} failed with the same error: {distinct[0]}"
    shown = "; ".join(distinct[:3]) + (
        f"; and {len(distinct) - 3} other error(s)" if len(distinct) > 3 else ""
    )
    return (
        f"no trial completed ({len(trials)} pruned or failed"
        + (f"; errors: {shown}" if errors else "")
        + "); widen the space, raise n_trials or timeout"
    )


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
    for kind in ("fit", "score"):
        times = [t.user_attrs.get(f"{kind}_times") or [np.nan] for t in trials]
        results[f"mean_{kind}_time"] = np.array([np.mean(row) for row in times], dtype=float)
        results[f"std_{kind}_time"] = np.array([np.std(row) for row in times], dtype=float)
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


# -- the fingerprint of the search and the spec remote workers read ----------------------------
def _store_spec(
    study: Any,
    search: OptunaSearchCV,
    space: Mapping[str, Any],
    splits: list[Any],
    X: Any,
    y: Any,
    *,
    full: bool = True,
) -> None:
    """Record the search in the study: always its fingerprint, with ``full`` the spec for remote workers.

    A study that already ran trials for another search (estimator, parameters,
    space, scoring, data or splits) is refused: its best trial would be refit
    with parameters the new estimator may not even have.  The check compares
    fingerprints (digests and short reprs, cheap for any estimator, scorer or
    data); the full spec (what ``skbig search-worker`` needs: estimator,
    space, splits and the data as JSON) is built only with ``full``, when
    another process can open the study.
    """
    fingerprint = _fingerprint(search, space, splits, X, y)
    spec = _build_spec(search, space, splits, X, y) if full else None
    if study.get_trials(deepcopy=False):
        stored = study.user_attrs.get(FINGERPRINT_ATTR)
        if stored is not None:
            changed = _spec_differences(json.loads(stored), fingerprint)
        elif spec is not None and study.user_attrs.get(SPEC_ATTR) is not None:  # written before fingerprints
            old = json.loads(study.user_attrs[SPEC_ATTR])
            changed = _spec_differences(
                {**old, "params": _param_reprs(old.get("params", {}))},
                {**spec, "params": _param_reprs(spec["params"])},
            )
        else:
            changed = []
        if changed:
            raise InvalidParameterError(
                f"study {study.study_name!r} already holds trials of another search (different "
                f"{', '.join(changed)}); resuming it would mix them. Use a new study_name, or "
                "delete the study (optuna.delete_study) to start over"
            )
    study.set_user_attr(FINGERPRINT_ATTR, json.dumps(fingerprint))
    if spec is not None:
        study.set_user_attr(SPEC_ATTR, json.dumps(spec))


#: Estimator parameters that change how a fit runs, not what it learns.
_RUN_ONLY_PARAMS = frozenset({"verbose", "num_workers", "device", "checkpoint_dir", "callbacks", "memory"})


def _spec_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    changed = [
        key for key in ("estimator", "space", "scoring", "data", "splits") if old.get(key) != new.get(key)
    ]
    params = set(old.get("params", {})) | set(new.get("params", {}))
    changed += [
        f"{key}={_shown(old.get('params', {}), key)} -> {_shown(new.get('params', {}), key)}"
        for key in sorted(params)
        if key.split("__")[-1] not in _RUN_ONLY_PARAMS
        and old.get("params", {}).get(key) != new.get("params", {}).get(key)
    ]
    return changed


def _shown(params: Mapping[str, str], key: str) -> str:
    return params.get(key, "(absent)")


def _param_reprs(params: Mapping[str, Any]) -> dict[str, str]:
    return {key: _short(_stable_repr(value)) for key, value in params.items()}


def _fingerprint(
    search: OptunaSearchCV, space: Mapping[str, Any], splits: list[Any], X: Any, y: Any
) -> dict[str, Any]:
    """What makes two searches the same search, small enough to store in any study.

    The estimator's class and its parameters (deep, as short stable reprs:
    no memory addresses), a digest of the space, the scoring's repr, a digest
    of ``X`` and ``y`` and one of the splits.
    """
    estimator = search.estimator
    params = _param_reprs(
        {
            k: v
            for k, v in estimator.get_params(deep=True).items()
            if k.split("__")[-1] not in _RUN_ONLY_PARAMS
        }
    )
    splits_digest = hashlib.sha256()
    for train, test in splits:
        for part in (train, test):
            index = np.asarray(part, dtype=np.int64)
            splits_digest.update(f"{index.size}:".encode())
            splits_digest.update(index.tobytes())
    return {
        "version": 1,
        "estimator": _qualname(type(estimator)),
        "params": params,
        "space": hashlib.sha256(json.dumps(space_to_json(space), sort_keys=True).encode()).hexdigest(),
        "scoring": _short(_stable_repr(search.scoring)),
        "data": _data_digest(X, y),
        "splits": splits_digest.hexdigest(),
    }


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', getattr(obj, '__name__', '?'))}"


def _short(text: str, limit: int = 200) -> str:
    """``text``, or for a long one its start and a digest of the whole."""
    if len(text) <= limit:
        return text
    return f"{text[: limit // 2]}...<sha256 {hashlib.sha256(text.encode()).hexdigest()[:16]}>"


def _stable_repr(value: Any) -> str:
    """A repr that is the same in every process for equal values (functions by name, no addresses)."""
    from sklearn.base import BaseEstimator

    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return repr(value)
    if isinstance(value, np.generic):
        return repr(value.item())
    if isinstance(value, np.ndarray):
        return f"array(shape={value.shape}, dtype={value.dtype.str}, sha256={_data_digest(value, None)[:16]})"
    if isinstance(value, BaseEstimator):
        inner = ", ".join(f"{k}={_stable_repr(v)}" for k, v in sorted(value.get_params(deep=False).items()))
        return f"{_qualname(type(value))}({inner})"
    if isinstance(value, Mapping):
        items = sorted((_stable_repr(k), _stable_repr(v)) for k, v in value.items())
        return "{" + ", ".join(f"{k}: {v}" for k, v in items) + "}"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_stable_repr(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    if isinstance(value, (set, frozenset)):
        return "{" + ", ".join(sorted(_stable_repr(v) for v in value)) + "}"
    if isinstance(value, os.PathLike):
        return repr(os.fspath(value))
    if isinstance(value, type) or inspect.isroutine(value):
        return _qualname(value)
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value))


def _data_digest(X: Any, y: Any) -> str:
    """SHA-256 of ``X`` and ``y`` (arrays by their bytes, texts, paths and nested lists item by item)."""
    digest = hashlib.sha256()
    for part in (X, y):
        _digest_update(digest, part)
    return digest.hexdigest()


def _digest_update(digest: Any, value: Any) -> None:
    if value is None:
        digest.update(b"N;")
    elif isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")
        digest.update(b"s%d:" % len(data) + data)
    elif isinstance(value, bytes):
        digest.update(b"b%d:" % len(value) + value)
    elif isinstance(value, os.PathLike):
        _digest_update(digest, os.fspath(value))
    elif isinstance(value, np.ndarray):
        digest.update(f"a{value.dtype.str}{value.shape}:".encode())
        if value.dtype.kind in "biufcmMSUV":
            digest.update(np.ascontiguousarray(value).tobytes())
        else:  # object arrays: item by item
            for item in value.ravel():
                _digest_update(digest, item)
    elif hasattr(value, "to_numpy") and hasattr(value, "shape"):  # pandas
        labels = list(getattr(value, "columns", [getattr(value, "name", None)]))
        digest.update(b"p" + _stable_repr(labels).encode())
        _digest_update(digest, value.to_numpy())
    elif isinstance(value, (list, tuple)):
        digest.update(b"l%d:" % len(value))
        for item in value:
            _digest_update(digest, item)
    else:
        digest.update(b"r" + _stable_repr(value).encode("utf-8", "surrogatepass") + b";")


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
            "pruner": _pruner_to_json(search.pruner),
        }
        json.dumps(payload)
    except (TypeError, ValueError):
        return None
    return payload


def _pruner_to_json(pruner: Any) -> Any:
    """The ``pruner`` parameter as JSON: "auto", None, ``{"class", "kwargs"}`` or ``{"repr"}``.

    ``{"class": name, "kwargs": {...}}`` describes one of Optuna's own
    pruners; any other pruner is only named (``{"repr": ...}``).

    An Optuna pruner is described by its constructor arguments (read back from
    the attributes it keeps them in) and only if rebuilding it from them gives
    the same pruner.
    """
    if pruner is None or (isinstance(pruner, str) and pruner == "auto"):
        return pruner
    described = _describe_pruner(pruner)
    if described is not None:
        try:
            json.dumps(described)
            if _same_pruner(_pruner_from_description(described), pruner):
                return described
        except Exception:  # any failure means: it cannot be described
            pass
    return {"repr": _stable_repr(pruner)}


def _describe_pruner(pruner: Any) -> dict[str, Any] | None:
    import optuna

    cls = type(pruner)
    if getattr(optuna.pruners, cls.__name__, None) is not cls:
        return None
    kwargs: dict[str, Any] = {}
    for name, parameter in inspect.signature(cls.__init__).parameters.items():
        if name == "self" or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if not hasattr(pruner, f"_{name}"):
            return None
        value = getattr(pruner, f"_{name}")
        if isinstance(value, optuna.pruners.BasePruner):
            value = _describe_pruner(value)
            if value is None:
                return None
        kwargs[name] = value
    return {"class": cls.__name__, "kwargs": kwargs}


def _pruner_from_description(described: Mapping[str, Any]) -> Any:
    import optuna

    cls = getattr(optuna.pruners, described["class"])
    kwargs = {
        k: _pruner_from_description(v) if isinstance(v, Mapping) and "class" in v else v
        for k, v in described["kwargs"].items()
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=optuna.exceptions.ExperimentalWarning)
        return cls(**kwargs)


def _same_pruner(a: Any, b: Any) -> bool:
    import optuna

    if type(a) is not type(b):
        return False
    if isinstance(a, optuna.pruners.BasePruner):
        return vars(a).keys() == vars(b).keys() and all(_same_pruner(vars(a)[k], vars(b)[k]) for k in vars(a))
    try:
        return bool(a == b)
    except Exception:  # e.g. arrays: not comparable as one bool
        return False


def pruner_from_spec(study: Any) -> tuple[Any, str | None]:
    """The pruner the search that created ``study`` asked for, and a note when it cannot be rebuilt.

    Used by ``skbig search-worker``.  A pruner that is not one of Optuna's
    own (or a study written before pruners were recorded) cannot be rebuilt;
    the worker then uses ``pruner="auto"`` and the note says so.
    """
    raw = study.user_attrs.get(SPEC_ATTR)
    described = json.loads(raw).get("pruner", "auto") if raw is not None else "auto"
    if described is None or described == "auto":
        return _make_pruner(described), None
    if isinstance(described, Mapping) and "class" in described:
        return _pruner_from_description(described), None
    shown = described.get("repr", "?") if isinstance(described, Mapping) else repr(described)
    return _make_pruner("auto"), (
        f"the study's pruner {shown} cannot be rebuilt here (only Optuna's own pruners, 'auto' and "
        "None are recorded); this worker uses pruner='auto' (median pruner after 2 trials and 1 epoch)"
    )


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
    if raw is None and study.user_attrs.get(FINGERPRINT_ATTR) is not None:
        raise InvalidParameterError(
            f"study {study.study_name!r} was started by a search that cannot be described for remote "
            "workers (it needs a skbig estimator, not a Pipeline, a named scoring, and X/y made of JSON "
            "values); run its trials with OptunaSearchCV(..., n_jobs=k).fit instead"
        )
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
    objective = CVObjective(
        estimator, space_from_json(spec["space"]), X, y, splits, scorer, per_trial_checkpoints=True
    )
    return objective, estimator
