"""OptunaSearchCV on real storages: memory, SQLite files and a PostgreSQL server."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from skbig import OptunaSearchCV, TextClassifier
from skbig.exceptions import InvalidParameterError, NotFittedError
from skbig.search import Float
from skbig.search._worker import ERROR_ATTR, count_trials, make_storage

POSTGRES_URL = os.environ.get("SKBIG_TEST_POSTGRES_URL")
needs_postgres = pytest.mark.skipif(
    POSTGRES_URL is None,
    reason="SKBIG_TEST_POSTGRES_URL unset: run through `make test`, which starts PostgreSQL",
)

QUICK = {"max_epochs": 2, "random_state": 0}


@pytest.fixture(scope="module")
def data(sms_sample):
    texts, labels = sms_sample
    return texts[:160], labels[:160]


def _states(study):
    counts = {}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    return counts


def test_best_result_is_the_best_trial(data):
    X, y = data
    search = OptunaSearchCV(
        TextClassifier(**QUICK), {"lr": [1e-4, 3e-3, 3e-2]}, n_trials=4, cv=2, pruner=None, random_state=0
    ).fit(X, y)
    complete = [t for t in search.study_.trials if t.state == TrialState.COMPLETE]
    best = max(complete, key=lambda t: t.value)
    assert search.best_score_ == pytest.approx(best.value)
    assert search.best_params_ == best.user_attrs["params"]
    assert search.best_estimator_.lr == search.best_params_["lr"]
    assert search.n_trials_ == 4
    results = search.cv_results_
    assert len(results["params"]) == 4 and results["rank_test_score"].min() == 1
    assert results["mean_test_score"][results["rank_test_score"].argmin()] == pytest.approx(
        search.best_score_
    )
    assert len(search.predict(X[:5])) == 5
    assert search.trials_dataframe().shape[0] == 4


def test_an_unpickled_search_predicts_and_reloads_its_study_from_storage(data, tmp_path):
    # The live study is not pickled; the results and best_estimator_ are.
    X, y = data
    url = f"sqlite:///{tmp_path / 'study.db'}"
    for storage in (None, url):
        search = OptunaSearchCV(
            TextClassifier(**QUICK), {"lr": [3e-3, 3e-2]}, n_trials=2, cv=2, storage=storage, random_state=0
        ).fit(X, y)
        loaded = pickle.loads(pickle.dumps(search))
        np.testing.assert_array_equal(loaded.predict_proba(X[:5]), search.predict_proba(X[:5]))
        assert loaded.score(X, y) == search.score(X, y)
        if storage is None:
            with pytest.raises(NotFittedError, match="storage=None"):
                loaded.trials_dataframe()
        else:
            assert loaded.trials_dataframe().shape[0] == 2


def test_probability_methods_exist_only_when_the_estimator_has_them():
    from skbig import SpeechRecognizer

    assert hasattr(OptunaSearchCV(TextClassifier()), "predict_proba")
    assert hasattr(OptunaSearchCV(TextClassifier()), "predict_log_proba")
    assert not hasattr(OptunaSearchCV(SpeechRecognizer()), "predict_proba")


def test_parallel_workers_sample_from_random_state_each_with_its_own_seed():
    def first_lr(sampler):
        trial = optuna.create_study(sampler=sampler).ask()
        return trial.suggest_float("lr", 1e-5, 1.0, log=True)

    search = OptunaSearchCV(TextClassifier(), random_state=3)
    assert first_lr(search._worker_sampler(0)) == first_lr(search._worker_sampler(0))  # seeded
    assert first_lr(search._worker_sampler(0)) != first_lr(search._worker_sampler(1))  # not identical


def test_default_space_comes_from_the_backend(data):
    X, y = data
    search = OptunaSearchCV(TextClassifier(**QUICK), n_trials=2, cv=2, random_state=0).fit(X, y)
    assert set(search.best_params_) == {
        "lr",
        "backend_params__embed_dim",
        "backend_params__dropout",
        "backend_params__word_ngrams",
    }


def test_backend_is_part_of_the_space_with_conditional_parameters(data):
    X, y = data
    search = OptunaSearchCV(
        TextClassifier(**QUICK), {"backend": ["fasttext", "lstm"]}, n_trials=4, cv=2, random_state=1
    ).fit(X, y)
    for params in search.cv_results_["params"]:
        if params["backend"] == "lstm":
            assert "backend_params__hidden_size" in params and "backend_params__word_ngrams" not in params
        else:
            assert "backend_params__word_ngrams" in params and "backend_params__hidden_size" not in params


def test_clone_and_pipelines(data):
    X, y = data
    search = OptunaSearchCV(TextClassifier(**QUICK), {"lr": Float(1e-3, 1e-2, log=True)}, n_trials=2, cv=2)
    copy = clone(search)
    assert copy.get_params()["n_trials"] == 2 and not hasattr(copy, "study_")
    inner = make_pipeline(FunctionTransformer(_lower), TextClassifier(**QUICK))
    over_pipeline = OptunaSearchCV(inner, {"textclassifier__lr": [1e-3, 1e-2]}, n_trials=2, cv=2).fit(X, y)
    assert "textclassifier__lr" in over_pipeline.best_params_
    as_step = make_pipeline(FunctionTransformer(_lower), clone(search)).fit(X, y)
    assert len(as_step.predict(X[:3])) == 3


def _lower(texts):
    return [t.lower() for t in texts]


def test_pruning_stops_hopeless_trials(data):
    X, y = data
    search = OptunaSearchCV(
        TextClassifier(max_epochs=6, early_stopping=False, random_state=0),
        {"lr": [3e-2, 1e-7]},
        n_trials=8,
        cv=2,
        pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0),
        sampler=optuna.samplers.RandomSampler(seed=0),
    ).fit(X, y)
    states = _states(search.study_)
    assert states.get("PRUNED", 0) >= 1, states
    pruned = [t for t in search.study_.trials if t.state == TrialState.PRUNED]
    assert all(t.user_attrs["params"]["lr"] == 1e-7 for t in pruned)


def test_failed_trials_are_recorded_and_the_search_goes_on(data):
    X, y = data
    search = OptunaSearchCV(
        TextClassifier(**QUICK),
        {"backend": ["fasttext", "no_such_backend"]},
        n_trials=4,
        cv=2,
        sampler=optuna.samplers.RandomSampler(seed=0),
    ).fit(X, y)
    failed = [t for t in search.study_.trials if t.state == TrialState.FAIL]
    assert failed and all("unknown text-classification backend" in t.user_attrs[ERROR_ATTR] for t in failed)
    assert search.best_params_["backend"] == "fasttext"


def test_timeout_ends_the_search_and_the_refit_runs_in_full(data):
    # best_estimator_ must be the model best_score_ describes, not one cut short at the deadline.
    X, y = data
    start = time.monotonic()
    search = OptunaSearchCV(
        TextClassifier(max_epochs=300, early_stopping=False, random_state=0),
        {"lr": [1e-3, 1e-2]},
        n_trials=100,
        timeout=4,
        cv=2,
    ).fit(X, y)
    searching = time.monotonic() - start - search.refit_time_
    epoch_seconds = max(r["seconds"] for r in search.best_estimator_.history_)
    assert searching < 4 + 10 * epoch_seconds + 10  # the deadline, the epochs it finishes, set-up slack
    assert search.n_trials_ < 100
    assert len(search.best_estimator_.history_) == 300
    assert search.best_estimator_.callbacks is None  # nothing of the search left in its parameters


def test_invalid_arguments_are_named(data):
    X, y = data
    with pytest.raises(InvalidParameterError, match="n_trials must be"):
        OptunaSearchCV(TextClassifier(), n_trials=0).fit(X, y)
    with pytest.raises(InvalidParameterError, match="does not have"):
        OptunaSearchCV(TextClassifier(), {"learning_rate": [0.1]}).fit(X, y)
    # A typo in a backend hyper-parameter fails before any trial spends a persistent study's budget.
    with pytest.raises(InvalidParameterError, match=r"\['backend_params__embd_dim'\]"):
        OptunaSearchCV(TextClassifier(), {"backend_params__embd_dim": [8]}).fit(X, y)
    with pytest.raises(NotFittedError):
        OptunaSearchCV(TextClassifier()).predict(X)


def test_plots_are_written_as_png(data, tmp_path):
    X, y = data
    search = OptunaSearchCV(
        TextClassifier(**QUICK), {"lr": Float(1e-3, 3e-2, log=True)}, n_trials=3, cv=2
    ).fit(X, y)
    for method in ("plot_optimization_history", "plot_param_importances"):
        path = getattr(search, method)(tmp_path / f"{method}.png")
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_parallel_workers_are_processes_and_share_the_budget(data):
    X, y = data
    search = OptunaSearchCV(TextClassifier(**QUICK), {"lr": [1e-3, 1e-2]}, n_trials=4, cv=2, n_jobs=2).fit(
        X, y
    )
    assert search.n_trials_ == 4
    assert len({t.number for t in search.study_.trials}) == len(search.study_.trials)


# -- persistence and resume --------------------------------------------------------------------
SEARCH_CHILD = textwrap.dedent(
    """
    import sys
    from skbig import OptunaSearchCV, TextClassifier
    from skbig.datasets import load_sms_spam_sample

    texts, labels = load_sms_spam_sample()
    search = OptunaSearchCV(TextClassifier(max_epochs=2, random_state=0), {"lr": [1e-3, 3e-3, 1e-2]},
                            n_trials=40, cv=2, storage=sys.argv[1], study_name="resume", random_state=0)
    search.fit(texts[:160], labels[:160])
    """
)


def _wait_for(predicate, timeout=240):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError("condition not reached in time")


def test_sqlite_study_resumes_after_the_search_process_is_killed(tmp_path, data):
    X, y = data
    url = f"sqlite:///{tmp_path / 'study.db'}"
    child = subprocess.Popen([sys.executable, "-c", SEARCH_CHILD, url])
    storage = make_storage(url)

    def finished():
        try:
            study = optuna.load_study(study_name="resume", storage=storage)
        except KeyError:
            return False
        return sum(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False)) >= 2

    try:
        _wait_for(finished)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    before = optuna.load_study(study_name="resume", storage=storage)
    kept = {t.number: t.value for t in before.trials if t.state == TrialState.COMPLETE}
    search = OptunaSearchCV(
        TextClassifier(max_epochs=2, random_state=0),
        {"lr": [1e-3, 3e-3, 1e-2]},
        n_trials=len(kept) + 2,
        cv=2,
        storage=url,
        study_name="resume",
    ).fit(X, y)
    after = {t.number: t.value for t in search.study_.trials if t.state == TrialState.COMPLETE}
    assert all(after[n] == v for n, v in kept.items())  # finished trials kept as they were
    assert search.n_trials_ == len(kept) + 2


def test_resuming_a_study_of_another_search_is_refused_before_any_trial(tmp_path, data):
    X, y = data
    url = f"sqlite:///{tmp_path / 'study.db'}"
    params = {"n_trials": 1, "cv": 2, "storage": url, "study_name": "one"}
    OptunaSearchCV(TextClassifier(backend="lstm", **QUICK), {"lr": [1e-3]}, **params).fit(X, y)
    with pytest.raises(
        InvalidParameterError, match=r"'one' already holds trials of another search.*backend="
    ):
        OptunaSearchCV(TextClassifier(backend="fasttext", **QUICK), {"lr": [1e-3]}, **params).fit(X, y)
    with pytest.raises(InvalidParameterError, match=r"different data"):
        OptunaSearchCV(TextClassifier(backend="lstm", **QUICK), {"lr": [1e-3]}, **params).fit(
            X[:100], y[:100]
        )
    more = {**params, "n_trials": 2}
    again = OptunaSearchCV(TextClassifier(backend="lstm", **QUICK, verbose=0), {"lr": [1e-3]}, **more).fit(
        X, y
    )
    assert again.n_trials_ == 2  # the same search resumes


# -- PostgreSQL: several worker processes, one study ----------------------------------------------
def _worker(url, study, budget, *extra):
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "skbig",
            "search-worker",
            "--storage",
            url,
            "--study",
            study,
            "--n-trials",
            str(budget),
            "--heartbeat-interval",
            "1",
            "--grace-period",
            "3",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _create(url, name, data):
    X, y = data
    search = OptunaSearchCV(
        TextClassifier(max_epochs=1, random_state=0),
        {"lr": Float(1e-3, 1e-2, log=True)},
        cv=2,
        storage=url,
        study_name=name,
    )
    search.create_study(X, y)
    return search


@needs_postgres
@pytest.mark.postgres
def test_two_workers_finish_exactly_the_budget_on_postgres(data):
    name = f"two-workers-{os.getpid()}"
    _create(POSTGRES_URL, name, data)
    workers = [_worker(POSTGRES_URL, name, 8) for _ in range(2)]
    for w in workers:
        _out, err = w.communicate(timeout=600)
        assert w.returncode == 0, err
    study = optuna.load_study(study_name=name, storage=make_storage(POSTGRES_URL))
    counted, running = count_trials(study)
    assert (counted, running) == (8, 0)
    assert _states(study).get("COMPLETE", 0) + _states(study).get("PRUNED", 0) == 8
    assert sorted(t.number for t in study.trials) == list(range(len(study.trials)))


@needs_postgres
@pytest.mark.postgres
def test_killed_worker_is_replaced_and_the_budget_completes(data):
    name = f"killed-worker-{os.getpid()}"
    search = _create(POSTGRES_URL, name, data)
    storage = make_storage(POSTGRES_URL, heartbeat_interval=1, grace_period=3)
    victim = _worker(POSTGRES_URL, name, 6)

    def running_after_one_done():
        study = optuna.load_study(study_name=name, storage=storage)
        trials = study.get_trials(deepcopy=False)
        return any(t.state == TrialState.COMPLETE for t in trials) and any(
            t.state == TrialState.RUNNING for t in trials
        )

    _wait_for(running_after_one_done)
    victim.send_signal(signal.SIGKILL)
    victim.communicate()  # reap it and close its pipes
    restarted = _worker(POSTGRES_URL, name, 6)
    _out, err = restarted.communicate(timeout=600)
    assert restarted.returncode == 0, err
    study = optuna.load_study(study_name=name, storage=storage)
    states = _states(study)
    lost = [t for t in study.trials if t.state == TrialState.FAIL and ERROR_ATTR not in t.user_attrs]
    assert len(lost) == 1  # the killed trial, marked failed through its missing heartbeat
    assert states.get("COMPLETE", 0) + states.get("PRUNED", 0) == 6  # budget completed, nothing duplicated
    assert count_trials(study) == (6, 0)
    fitted = search.set_params(n_trials=6).fit(*data)  # collects the workers' trials, runs none
    assert fitted.n_trials_ == 6
    assert np.isfinite(fitted.best_score_)


def test_space_forms_become_the_right_distributions():
    import optuna.distributions as d

    from skbig.search.spaces import Categorical, Int, _as_distribution

    assert _as_distribution("a", ("log_float", 1e-4, 1e-2)) == d.FloatDistribution(1e-4, 1e-2, log=True)
    assert _as_distribution("a", ("int", 1, 3)) == d.IntDistribution(1, 3)
    choices = [None, "backbone"]
    assert _as_distribution("a", ("categorical", choices)) == d.CategoricalDistribution(choices)
    assert _as_distribution("a", Int(2, 8, log=True)) == d.IntDistribution(2, 8, log=True)
    assert _as_distribution("a", Categorical(["x", "y"])) == d.CategoricalDistribution(["x", "y"])
    assert _as_distribution("a", [0.1, 0.2]) == d.CategoricalDistribution([0.1, 0.2])
    with pytest.raises(InvalidParameterError, match="must be str, int, float"):
        _as_distribution("a", [object()])


def test_trial_of_a_worker_killed_before_its_first_heartbeat_is_failed(tmp_path):
    """Optuna's fail_stale_trials skips trials without a heartbeat record; the worker does not."""
    from skbig.search._worker import fail_trials_killed_before_first_heartbeat, quiet_heartbeat_warnings

    storage = make_storage(f"sqlite:///{tmp_path / 'study.db'}", heartbeat_interval=1, grace_period=1)
    study = optuna.create_study(study_name="unborn", storage=storage)
    with quiet_heartbeat_warnings():
        orphan = study.ask()  # its worker "dies" here, before recording a heartbeat
        alive = study.ask()
    storage.record_heartbeat(alive._trial_id)
    assert fail_trials_killed_before_first_heartbeat(study, storage) == 0  # too young to judge
    time.sleep(2.5)
    storage.record_heartbeat(alive._trial_id)
    assert fail_trials_killed_before_first_heartbeat(study, storage) == 1
    states = {t.number: t.state for t in study.trials}
    assert states == {orphan.number: TrialState.FAIL, alive.number: TrialState.RUNNING}
