"""OptunaSearchCV on real storages: memory, SQLite files and a PostgreSQL server."""

from __future__ import annotations

import functools
import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from skbig import OptunaSearchCV, TextClassifier
from skbig.engine.callbacks import Callback
from skbig.exceptions import InvalidParameterError, NotFittedError
from skbig.search import Float
from skbig.search._objective import FOLDERS_ATTR, RETRY_OF_ATTR, _remove_unless_taken_over
from skbig.search._worker import (
    ERROR_ATTR,
    count_trials,
    make_storage,
    remove_abandoned_checkpoints,
    requeue_interrupted_trials,
)
from skbig.search.optuna_search import FINGERPRINT_ATTR

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


def _first_lr(sampler):
    trial = optuna.create_study(sampler=sampler).ask()
    return trial.suggest_float("lr", 1e-5, 1.0, log=True)


def test_parallel_workers_sample_from_random_state_each_with_its_own_seed():
    search = OptunaSearchCV(TextClassifier(), random_state=3)
    assert _first_lr(search._worker_sampler(0)) == _first_lr(search._worker_sampler(0))  # seeded
    assert _first_lr(search._worker_sampler(0)) != _first_lr(search._worker_sampler(1))  # not identical


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


class _InterruptOnce(Callback):
    """Ctrl-C at the end of the second epoch, the first time only (a marker file remembers)."""

    def __init__(self, marker):
        self.marker = marker

    def on_epoch_end(self, trainer, record):
        if trainer.epoch == 2 and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            raise KeyboardInterrupt


class FailAtEpoch(Callback):
    def __init__(self, epoch, error):
        self.epoch, self.error = epoch, error

    def on_epoch_end(self, trainer, record):
        if record["epoch"] == self.epoch:
            raise self.error


class _RecordStart(Callback):
    """Append the epoch each fit starts from (after any resume) to a file."""

    def __init__(self, path):
        self.path = path

    def on_fit_begin(self, trainer):
        with open(self.path, "a") as f:
            f.write(f"{trainer.epoch}\n")


def _checkpoint_files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_trial_checkpoints_in_a_stored_study_are_deleted_when_their_trial_ends(tmp_path, data):
    X, y = data
    ckpt = tmp_path / "ckpt"
    search = OptunaSearchCV(
        TextClassifier(**QUICK, checkpoint_dir=str(ckpt)),
        {"lr": [1e-3, 3e-3]},
        n_trials=2,
        cv=2,
        storage=f"sqlite:///{tmp_path / 'study.db'}",
    ).fit(X, y)
    assert search.n_trials_ == 2
    # The four fold fits' checkpoints went with their trials (the study records the results);
    # the refit's stays, like any fit's.
    files = _checkpoint_files(ckpt)
    assert len(files) == 1 and files[0].startswith("checkpoint-")
    assert not [p for p in ckpt.iterdir() if p.is_dir()]


def test_without_a_storage_an_interrupted_search_resumes_through_its_fold_checkpoints(tmp_path, data):
    # No study survives the fit, so the fold fits keep their checkpoints like any fit: rerun with
    # the same random_state, the search replays the same configurations and resumes them.
    X, y = data
    starts = tmp_path / "starts.txt"
    estimator = TextClassifier(
        max_epochs=3,
        random_state=0,
        checkpoint_dir=str(tmp_path / "ckpt"),
        callbacks=[_InterruptOnce(str(tmp_path / "interrupted")), _RecordStart(str(starts))],
    )
    search = OptunaSearchCV(estimator, {"lr": Float(1e-3, 3e-2, log=True)}, n_trials=1, cv=2, random_state=0)
    with pytest.raises(KeyboardInterrupt):
        clone(search).fit(X, y)
    clone(search).fit(X, y)
    assert starts.read_text().split() == ["0", "1", "0", "0"]  # fold 0 resumed; fold 1 and the refit fresh


def test_an_interrupted_trial_is_retried_and_its_fits_resume_from_their_checkpoints(tmp_path, data):
    X, y = data
    url = f"sqlite:///{tmp_path / 'study.db'}"
    ckpt, starts = tmp_path / "ckpt", tmp_path / "starts.txt"
    estimator = TextClassifier(
        max_epochs=3,
        random_state=0,
        checkpoint_dir=str(ckpt),
        callbacks=[_InterruptOnce(str(tmp_path / "interrupted")), _RecordStart(str(starts))],
    )
    params = {"n_trials": 2, "cv": 2, "storage": url, "study_name": "retry", "random_state": 0}
    space = {"lr": Float(1e-3, 3e-2, log=True)}
    with pytest.raises(KeyboardInterrupt):
        OptunaSearchCV(estimator, space, **params).fit(X, y)
    study = optuna.load_study(study_name="retry", storage=url)
    (interrupted,) = study.get_trials(deepcopy=False)
    assert interrupted.state == TrialState.FAIL and ERROR_ATTR not in interrupted.user_attrs
    assert _checkpoint_files(ckpt)  # fold 0's checkpoint of epoch 1, kept for the retry
    assert starts.read_text().split() == ["0"]

    search = OptunaSearchCV(estimator, space, **params).fit(X, y)
    trials = search.study_.get_trials(deepcopy=False)
    retry = trials[1]
    assert retry.user_attrs[RETRY_OF_ATTR] == interrupted.number
    assert retry.params == interrupted.params and retry.state == TrialState.COMPLETE
    assert search.n_trials_ == 2 and [t.state for t in trials[2:]] == [TrialState.COMPLETE]
    # The retry's first fold resumed after epoch 1; its second fold, the next trial
    # and the refit started afresh.
    assert starts.read_text().split() == ["0", "1", "0", "0", "0", "0"]
    files = _checkpoint_files(ckpt)
    assert len(files) == 1 and files[0].startswith("checkpoint-")  # only the refit's


def test_a_full_budget_queues_no_retry_and_deletes_the_interrupted_trials_checkpoints(tmp_path, data):
    X, y = data
    url = f"sqlite:///{tmp_path / 'study.db'}"
    ckpt = tmp_path / "ckpt"
    interrupting = TextClassifier(
        max_epochs=3,
        random_state=0,
        checkpoint_dir=str(ckpt),
        callbacks=[_InterruptOnce(str(tmp_path / "interrupted"))],
    )
    space = {"lr": Float(1e-3, 3e-2, log=True)}
    params = {"cv": 2, "storage": url, "study_name": "full", "random_state": 0}
    OptunaSearchCV(
        TextClassifier(max_epochs=3, random_state=0, checkpoint_dir=str(ckpt)), space, n_trials=1, **params
    ).fit(X, y)
    with pytest.raises(KeyboardInterrupt):
        OptunaSearchCV(interrupting, space, n_trials=2, **params).fit(X, y)
    assert [p for p in ckpt.iterdir() if p.is_dir()]  # the interrupted trial's folder, kept for a retry
    # The budget is already met: nothing to retry, no queued trial left behind, no folder either.
    search = OptunaSearchCV(
        TextClassifier(max_epochs=3, random_state=0, checkpoint_dir=str(ckpt)), space, n_trials=1, **params
    )
    search.fit(X, y)
    assert [t.state for t in search.study_.get_trials(deepcopy=False)] == [
        TrialState.COMPLETE,
        TrialState.FAIL,
    ]
    assert list(search.cv_results_["state"]) == ["COMPLETE"]
    assert not [p for p in ckpt.iterdir() if p.is_dir()]


def test_two_studies_of_one_name_in_other_storages_keep_their_own_checkpoints(tmp_path, data):
    X, y = data
    ckpt, starts = tmp_path / "ckpt", tmp_path / "starts.txt"
    space = {"lr": Float(1e-3, 3e-2, log=True)}
    interrupting = TextClassifier(
        max_epochs=3,
        random_state=0,
        checkpoint_dir=str(ckpt),
        callbacks=[_InterruptOnce(str(tmp_path / "interrupted")), _RecordStart(str(starts))],
    )
    a = {
        "n_trials": 1,
        "cv": 2,
        "storage": f"sqlite:///{tmp_path / 'a.db'}",
        "study_name": "sms",
        "random_state": 0,
    }
    with pytest.raises(KeyboardInterrupt):
        OptunaSearchCV(interrupting, space, **a).fit(X, y)
    b = {**a, "storage": f"sqlite:///{tmp_path / 'b.db'}"}
    OptunaSearchCV(TextClassifier(**QUICK, checkpoint_dir=str(ckpt)), space, **b).fit(X[:120], y[:120])
    OptunaSearchCV(interrupting, space, **a).fit(X, y)
    assert starts.read_text().split()[:2] == ["0", "1"]  # study A's retry still found its checkpoint


def test_an_error_catch_does_not_list_is_not_retried(tmp_path, data):
    X, y = data
    url = f"sqlite:///{tmp_path / 'study.db'}"
    space = {"lr": Float(1e-3, 3e-2, log=True)}
    params = {"n_trials": 1, "cv": 2, "storage": url, "study_name": "raise", "catch": (ValueError,)}
    broken = TextClassifier(**QUICK, callbacks=[FailAtEpoch(1, RuntimeError("this configuration crashes"))])
    with pytest.raises(RuntimeError, match="crashes"):
        OptunaSearchCV(broken, space, **params).fit(X, y)
    search = OptunaSearchCV(TextClassifier(**QUICK), space, **params).fit(X, y)
    failed, fresh = search.study_.get_trials(deepcopy=False)
    assert RETRY_OF_ATTR not in fresh.user_attrs and "RuntimeError" in failed.user_attrs["skbig:raised"]


def test_a_retry_closed_as_surplus_neither_blocks_cleanup_nor_doubles_a_running_retry(tmp_path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}")
    folder = tmp_path / "ckpt" / "optuna-trial-t"
    folder.mkdir(parents=True)
    original = study.ask()
    original.set_user_attr(FOLDERS_ATTR, [str(folder)])
    study.tell(original, state=TrialState.FAIL)  # interrupted
    running = study.ask()
    running.set_user_attr(RETRY_OF_ATTR, original.number)
    running.set_user_attr(FOLDERS_ATTR, [str(folder)])  # the same folders: it resumes the original
    duplicate = study.ask()  # queued by another worker at the same moment, closed as surplus
    duplicate.set_user_attr(RETRY_OF_ATTR, original.number)
    duplicate.set_user_attr("skbig:surplus", True)
    study.tell(duplicate, state=TrialState.FAIL)
    assert requeue_interrupted_trials(study) == 0  # the running retry is the one
    remove_abandoned_checkpoints(study)
    assert folder.is_dir()  # it resumes from there
    study.tell(running, state=TrialState.FAIL)  # interrupted in turn: not retried, folder deleted
    assert requeue_interrupted_trials(study) == 0
    assert not folder.exists()

    lone = study.ask()
    folder = tmp_path / "ckpt" / "optuna-trial-lone"
    folder.mkdir()
    lone.set_user_attr(FOLDERS_ATTR, [str(folder)])
    study.tell(lone, state=TrialState.FAIL)
    surplus = study.ask()  # its only retry was closed as surplus: the budget was full
    surplus.set_user_attr(RETRY_OF_ATTR, lone.number)
    surplus.set_user_attr("skbig:surplus", True)
    study.tell(surplus, state=TrialState.FAIL)
    remove_abandoned_checkpoints(study)
    assert not folder.exists()


def test_a_worker_whose_trial_was_taken_over_leaves_the_checkpoints_to_the_retry(tmp_path):
    # A worker paused past the grace period finds its trial failed by another worker, whose retry
    # resumes from the same folders: the paused worker must not delete them when it wakes.
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}")
    trial = study.ask()
    folder = tmp_path / "ckpt" / "optuna-trial-x"
    folder.mkdir(parents=True)
    study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)  # what the other worker did
    _remove_unless_taken_over(trial, {"checkpoint_dir": str(folder)})
    assert folder.is_dir()
    own = study.ask()
    _remove_unless_taken_over(own, {"checkpoint_dir": str(folder)})
    assert not folder.exists()


def test_a_retry_interrupted_in_turn_is_not_retried_again(tmp_path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}")
    first = study.ask({"lr": optuna.distributions.FloatDistribution(1e-3, 1e-1)})
    study.tell(first, state=TrialState.FAIL)
    assert requeue_interrupted_trials(study) == 1
    assert requeue_interrupted_trials(study) == 0  # already queued
    retry = study.ask()
    assert retry.user_attrs[RETRY_OF_ATTR] == first.number
    assert retry.suggest_float("lr", 1e-3, 1e-1) == first.params["lr"]  # the same configuration
    study.tell(retry, state=TrialState.FAIL)
    failed = study.ask({"lr": optuna.distributions.FloatDistribution(1e-3, 1e-1)})
    failed.set_user_attr(ERROR_ATTR, "ValueError: bad")
    study.tell(failed, state=TrialState.FAIL)
    assert requeue_interrupted_trials(study) == 0  # neither the retry nor a trial that failed by itself


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


# -- worker processes use the search's pruner and callbacks -------------------------------------------
def _log_trial(path, study, trial):
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(f"{os.getpid()} {trial.number} {trial.state.name}\n")


class _HoldsALock:
    """A callback that cannot be pickled (it holds a lock), so it cannot run in a worker process."""

    def __init__(self):
        self.lock = threading.Lock()

    def __call__(self, study, trial):
        pass


def test_parallel_workers_use_the_searchs_pruner_and_callbacks(data, tmp_path):
    X, y = data
    log = tmp_path / "trials.log"
    search = OptunaSearchCV(
        TextClassifier(max_epochs=2, early_stopping=False, random_state=0),
        {"lr": [1e-3, 1e-2]},
        n_trials=4,
        cv=2,
        n_jobs=2,
        pruner=optuna.pruners.ThresholdPruner(lower=2.0),  # every score is < 2: each trial pruned at once
        callbacks=[functools.partial(_log_trial, log)],
        refit=False,
    ).fit(X, y)
    assert search.cv_results_["state"] == ["PRUNED"] * 4  # not Optuna's default MedianPruner
    lines = log.read_text().splitlines()
    assert sorted(int(line.split()[1]) for line in lines) == [0, 1, 2, 3]
    assert all(int(line.split()[0]) != os.getpid() for line in lines)  # called where the trial ran


def test_callbacks_that_cannot_reach_the_worker_processes_are_refused_up_front(data):
    X, y = data
    search = OptunaSearchCV(
        TextClassifier(**QUICK), {"lr": [1e-3]}, cv=2, n_jobs=2, callbacks=[_HoldsALock()]
    )
    with pytest.raises(InvalidParameterError, match=r"callbacks: .*cannot be pickled.*n_jobs=2"):
        search.fit(X, y)


def test_the_pruner_is_recorded_for_remote_workers():
    from skbig.search.optuna_search import _pruner_from_description, _pruner_to_json

    assert _pruner_to_json("auto") == "auto" and _pruner_to_json(None) is None
    median = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2)
    described = _pruner_to_json(median)
    assert described["class"] == "MedianPruner"
    assert vars(_pruner_from_description(json.loads(json.dumps(described)))) == vars(median)
    assert set(_pruner_to_json(_NeverPrune())) == {"repr"}  # not Optuna's own: named, not rebuilt


class _NeverPrune(optuna.pruners.BasePruner):
    def prune(self, study, trial):
        return False


# -- a paused worker ---------------------------------------------------------------------------------
@pytest.mark.parametrize("catch", [(Exception,), (ValueError,)], ids=["catch-all", "catch-narrow"])
@pytest.mark.parametrize("when", ["at-next-epoch", "after-fit"])
def test_a_trial_failed_by_another_worker_while_this_one_was_paused_is_abandoned(tmp_path, when, catch):
    """A worker paused past the grace period (SIGSTOP, sleep) finds its trial failed and replaced."""
    from skbig.search._worker import run_worker

    storage = make_storage(f"sqlite:///{tmp_path / 'study.db'}")
    study = optuna.create_study(study_name="paused", storage=storage, direction="maximize")
    calls = []

    def objective(trial):
        calls.append(trial.number)
        if len(calls) == 1:  # what fail_stale_trials in another worker does to this paused worker's trial
            storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
            if when == "at-next-epoch":
                trial.report(0.5, step=1)  # PruningReporter at the next epoch end
        return 0.5

    assert run_worker(study, storage, objective, 2, catch=catch) == 2
    states = [(t.state, ERROR_ATTR in t.user_attrs) for t in study.trials]
    assert states == [(TrialState.FAIL, False), (TrialState.COMPLETE, False), (TrialState.COMPLETE, False)]
    assert count_trials(study) == (2, 0)


# -- a resumed study goes on instead of starting over ------------------------------------------------
def test_a_resumed_study_proposes_new_configurations(data, tmp_path):
    X, y = data

    def search(n_trials, name):
        return OptunaSearchCV(
            TextClassifier(max_epochs=1, random_state=0),
            {"lr": Float(1e-4, 3e-2, log=True)},
            n_trials=n_trials,
            cv=2,
            storage=f"sqlite:///{tmp_path / 'study.db'}",
            study_name=name,
            random_state=0,
            pruner=None,
            refit=False,
        ).fit(X, y)

    search(3, "first")
    resumed = [p["lr"] for p in search(6, "first").cv_results_["params"]]
    assert len(set(resumed)) == 6  # the resume did not replay the first session's random stream
    fresh = [p["lr"] for p in search(3, "second").cv_results_["params"]]
    assert fresh == resumed[:3]  # a fresh study with the same random_state is the same search
    # Worker processes: each rank, and each resume, its own stream.
    workers = OptunaSearchCV(TextClassifier(), random_state=0)
    firsts = {_first_lr(workers._worker_sampler(rank, n_before)) for rank in (0, 1) for n_before in (0, 3)}
    assert len(firsts) == 4


# -- the guard against resuming another search -------------------------------------------------------
def _accuracy(estimator, X, y):
    return float(np.mean(estimator.predict(X) == np.asarray(y)))


@pytest.mark.parametrize("kind", ["callable-scoring", "pipeline"])
def test_resuming_another_search_is_refused_whatever_the_estimator_and_scoring(data, tmp_path, kind):
    X, y = data
    if kind == "pipeline":
        estimator, scoring, key = (
            make_pipeline(FunctionTransformer(_lower), TextClassifier(**QUICK)),
            None,
            "textclassifier__lr",
        )
    else:
        estimator, scoring, key = TextClassifier(**QUICK), _accuracy, "lr"
    params = {"cv": 2, "storage": f"sqlite:///{tmp_path / 'study.db'}", "study_name": "s", "scoring": scoring}
    OptunaSearchCV(estimator, {key: [1e-2]}, n_trials=1, refit=False, **params).fit(X[:100], y[:100])
    with pytest.raises(
        InvalidParameterError, match=r"already holds trials of another search \(different space, data"
    ):
        OptunaSearchCV(estimator, {key: [1e-3]}, n_trials=2, refit=False, **params).fit(X, y)
    again = OptunaSearchCV(clone(estimator), {key: [1e-2]}, n_trials=2, refit=False, **params)
    assert again.fit(X[:100], y[:100]).n_trials_ == 2  # the same search resumes
    assert " at 0x" not in again.study_.user_attrs[FINGERPRINT_ATTR]  # no address: the same in every process


# -- scoring -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("scoring", [["accuracy", "f1_macro"], {"acc": "accuracy"}], ids=["list", "dict"])
def test_multi_metric_scoring_is_refused_before_any_trial(data, scoring):
    X, y = data
    with pytest.raises(InvalidParameterError, match="scoring must be one metric"):
        OptunaSearchCV(TextClassifier(**QUICK), {"lr": [1e-2]}, n_trials=1, cv=2, scoring=scoring).fit(X, y)


def _two_metrics(estimator, X, y):
    return {"accuracy": _accuracy(estimator, X, y), "other": 0.0}


def test_when_every_trial_fails_the_same_way_that_error_is_shown_not_the_space_blamed(data):
    X, y = data
    search = OptunaSearchCV(
        TextClassifier(**QUICK), {"lr": [1e-3, 1e-2]}, n_trials=2, cv=2, scoring=_two_metrics
    )
    with pytest.raises(InvalidParameterError) as info:
        search.fit(X, y)
    message = str(info.value)
    assert "all 2 trials failed with the same error: TypeError: scoring returned several metrics" in message
    assert "widen" not in message


# -- scikit-learn's search attributes ------------------------------------------------------------------
def test_cv_results_and_best_index_as_in_scikit_learn_and_refit_false_has_no_predict(data):
    X, y = data
    search = OptunaSearchCV(
        TextClassifier(**QUICK), {"lr": [1e-3, 1e-2]}, n_trials=2, cv=2, refit=False, pruner=None
    )
    assert not any(hasattr(search, name) for name in ("predict", "predict_proba", "score"))
    search.fit(X, y)
    results = search.cv_results_
    expected = {"mean_fit_time", "std_fit_time", "mean_score_time", "std_score_time", "params", "param_lr"}
    expected |= {
        "split0_test_score",
        "split1_test_score",
        "mean_test_score",
        "std_test_score",
        "rank_test_score",
    }
    assert expected <= set(results)
    assert all(
        np.isfinite(results[key]).all() and (results[key] > 0).all()
        for key in ("mean_fit_time", "mean_score_time")
    )
    assert results["params"][search.best_index_] == search.best_params_
    assert results["rank_test_score"][search.best_index_] == 1
    assert not any(hasattr(search, name) for name in ("predict", "predict_proba", "score"))
    assert all(
        hasattr(OptunaSearchCV(TextClassifier()), name) for name in ("predict", "predict_proba", "score")
    )


# -- what the study stores -----------------------------------------------------------------------------
def test_a_study_no_other_process_can_open_stores_the_fingerprint_not_the_data(data, tmp_path):
    from skbig.search.optuna_search import SPEC_ATTR

    X, y = data
    params = {"n_trials": 1, "cv": 2, "refit": False, "study_name": "s"}
    in_memory = OptunaSearchCV(TextClassifier(**QUICK), {"lr": [1e-2]}, **params).fit(X, y)
    assert FINGERPRINT_ATTR in in_memory.study_.user_attrs
    assert SPEC_ATTR not in in_memory.study_.user_attrs  # the data was not serialised for nobody
    url = f"sqlite:///{tmp_path / 'study.db'}"
    on_disk = OptunaSearchCV(TextClassifier(**QUICK), {"lr": [1e-2]}, storage=url, **params).fit(X, y)
    spec = json.loads(on_disk.study_.user_attrs[SPEC_ATTR])  # skbig search-worker reads it
    assert spec["data"]["X"] == list(X) and spec["pruner"] == "auto"
