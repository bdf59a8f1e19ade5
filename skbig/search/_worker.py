"""The worker loop shared by in-process search, worker processes and ``skbig search-worker``.

A study has a *budget* of trials.  Each worker asks for a trial, runs it and
tells the result, until the study holds ``budget`` counted trials: complete,
pruned, or failed with a recorded error.  Trials of a worker that died
(SIGKILL, power loss) are found by their missing heartbeat, marked failed
without an error, not counted, and replaced, so a restarted worker completes
the budget and no trial is lost.  A trial created in a race beyond the budget
is marked surplus and closed at once, so the budget is never exceeded.

Such an interrupted trial (killed, or stopped by Ctrl-C) is retried once with
the same configuration (``RETRY_OF_ATTR``): with ``checkpoint_dir`` set, its
fold fits resume from their checkpoints instead of starting over.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from skbig.exceptions import InvalidParameterError
from skbig.search._objective import FOLDERS_ATTR, RETRY_OF_ATTR, TOKEN_ATTR, remove_folders

__all__ = [
    "make_storage",
    "run_worker",
    "count_trials",
    "requeue_interrupted_trials",
    "ERROR_ATTR",
    "SURPLUS_ATTR",
]

ERROR_ATTR = "skbig:error"
SURPLUS_ATTR = "skbig:surplus"
#: A trial that raised an error ``catch`` does not list (the search stopped with it): not
#: counted, like an interrupted trial, but not retried either.
RAISED_ATTR = "skbig:raised"
DEFAULT_HEARTBEAT = 10
DEFAULT_GRACE = 30

_logger = logging.getLogger(__name__)


@contextlib.contextmanager
def quiet_heartbeat_warnings() -> Iterator[None]:
    """Silence Optuna's notices that heartbeats are experimental and meant for ``Study.optimize``.

    skbig drives trials with ask/tell and records heartbeats itself (see
    :class:`_Heartbeat`), which is exactly what those notices warn about.
    """
    from optuna.exceptions import ExperimentalWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        warnings.filterwarnings(
            "ignore", message="Heartbeat of storage is supposed to be used with Study.optimize"
        )
        yield


def make_storage(
    storage: Any, *, heartbeat_interval: int = DEFAULT_HEARTBEAT, grace_period: int = DEFAULT_GRACE
) -> Any:
    """``None`` -> in memory; a URL -> RDB storage with heartbeats; a storage object as is."""
    import optuna

    if storage is None:
        return optuna.storages.InMemoryStorage()
    if isinstance(storage, str):
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError, SQLAlchemyError

        try:
            make_url(storage)
        except ArgumentError as exc:
            raise InvalidParameterError(
                f"storage={storage!r} is not a database URL; use e.g. 'sqlite:///study.db' or "
                "'postgresql://user:password@host/dbname'"
            ) from exc
        storage = _with_available_driver(storage)
        engine_kwargs = (
            {"connect_args": {"timeout": 60}} if storage.startswith("sqlite") else {"pool_pre_ping": True}
        )
        _check_sqlite_folder(storage)
        try:
            with quiet_heartbeat_warnings():
                return optuna.storages.RDBStorage(
                    storage,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=heartbeat_interval,
                    grace_period=grace_period,
                )
        except SQLAlchemyError as exc:
            reason = " ".join(str(getattr(exc, "orig", None) or exc).split())
            raise InvalidParameterError(
                f"cannot open storage={_shown(storage)!r}: {reason}; check that the database exists, "
                "is reachable and is writable"
            ) from exc
    return storage


def _shown(url: str) -> str:
    """``url`` with its password masked, to name it in a message."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _check_sqlite_folder(url: str) -> None:
    """Refuse a SQLite file in a folder that does not exist (SQLite only says "unable to open")."""
    import os

    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    folder = os.path.dirname(parsed.database) or "."
    if not os.path.isdir(folder):
        raise InvalidParameterError(
            f"cannot open storage={url!r}: the folder {folder!r} does not exist; create it or choose "
            "another path"
        )


def _with_available_driver(url: str) -> str:
    """Point a bare ``postgresql://`` URL at whichever PostgreSQL driver is installed."""
    import importlib.util

    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            rest = url[len(prefix) :]
            for module, dialect in (("psycopg2", "psycopg2"), ("psycopg", "psycopg")):
                if importlib.util.find_spec(module) is not None:
                    return f"postgresql+{dialect}://{rest}"
            raise ImportError(
                "a PostgreSQL storage needs a driver: pip install 'skbig[postgres]' (psycopg2-binary)"
            )
    return url


def _is_counted(trial: Any) -> bool:
    from optuna.trial import TrialState

    if trial.user_attrs.get(SURPLUS_ATTR):
        return False
    if trial.state == TrialState.FAIL:
        return ERROR_ATTR in trial.user_attrs  # failed by its own exception, not lost
    # A waiting trial (a queued retry) counts once a worker runs it: ask() takes waiting trials first.
    return trial.state != TrialState.WAITING  # complete, pruned, running


def count_trials(study: Any) -> tuple[int, int]:
    """``(counted, running)`` trials of ``study``."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    counted = sum(1 for t in trials if _is_counted(t))
    running = sum(1 for t in trials if t.state == TrialState.RUNNING)
    return counted, running


def fail_trials_killed_before_first_heartbeat(study: Any, storage: Any) -> int:
    """Mark failed the running trials that never sent a heartbeat and are older than the grace period.

    Optuna's ``fail_stale_trials`` only looks at trials with a heartbeat
    record, so a worker killed between ``study.ask()`` and its first
    heartbeat would leave a trial RUNNING forever and the budget could never
    complete.  Returns how many trials were failed.
    """
    import datetime

    import optuna
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    if not isinstance(storage, optuna.storages.RDBStorage) or storage.heartbeat_interval is None:
        return 0
    grace = storage.grace_period or 2 * storage.heartbeat_interval
    cutoff = datetime.datetime.now() - datetime.timedelta(seconds=grace + storage.heartbeat_interval)
    failed = 0
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if trial.datetime_start is None or trial.datetime_start > cutoff:
            continue
        with _create_scoped_session(storage.scoped_session) as session:
            has_heartbeat = models.TrialHeartbeatModel.where_trial_id(trial._trial_id, session) is not None
        if has_heartbeat:
            continue  # fail_stale_trials' job
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):  # finished meanwhile
            failed += storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
    return failed


def _was_interrupted(trial: Any) -> bool:
    """Failed without an error of its own: its worker died or was stopped (see :func:`_is_counted`)."""
    from optuna.trial import TrialState

    attrs = trial.user_attrs
    return trial.state == TrialState.FAIL and not {ERROR_ATTR, SURPLUS_ATTR, RAISED_ATTR} & set(attrs)


def requeue_interrupted_trials(study: Any, room: int | None = None) -> int:
    """Queue one retry, with the same configuration, of each interrupted trial; return how many.

    The retry re-runs the configuration the sampler chose (it was worth
    running then) and, through the same checkpoint folders, resumes its fold
    fits where they stopped.  At most ``room`` retries wait at a time (the
    trials the budget still has room for).  A retry that is interrupted in
    turn is not retried again: a configuration that kills its worker (the
    kernel's out-of-memory killer) must not do so forever; its checkpoint
    folders are deleted.
    """
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    retried = _retried(trials)
    if room is not None:
        room -= sum(1 for t in trials if t.state == TrialState.WAITING)
    queued = 0
    for trial in trials:
        if not _was_interrupted(trial) or trial.number in retried:
            continue
        if RETRY_OF_ATTR in trial.user_attrs:
            remove_folders(trial.user_attrs.get(FOLDERS_ATTR, ()))
        elif room is None or queued < room:
            attrs = {RETRY_OF_ATTR: trial.number}
            if TOKEN_ATTR in trial.user_attrs:
                attrs[TOKEN_ATTR] = trial.user_attrs[TOKEN_ATTR]
            study.enqueue_trial(trial.params, user_attrs=attrs)
            queued += 1
    return queued


def remove_abandoned_checkpoints(study: Any) -> None:
    """Delete the checkpoint folders of interrupted trials no retry will resume (the budget is full)."""
    trials = study.get_trials(deepcopy=False)
    retried = _retried(trials)
    for trial in trials:
        if _was_interrupted(trial) and trial.number not in retried:
            remove_folders(trial.user_attrs.get(FOLDERS_ATTR, ()))


def _retried(trials: Any) -> set[int]:
    """Numbers of the trials a retry was queued for (a retry closed as surplus never ran)."""
    return {
        t.user_attrs[RETRY_OF_ATTR]
        for t in trials
        if RETRY_OF_ATTR in t.user_attrs and not t.user_attrs.get(SURPLUS_ATTR)
    }


def _duplicate_retry(study: Any, trial: Any) -> bool:
    """Whether another worker queued the same retry first (two workers can requeue at once)."""
    original = trial.user_attrs.get(RETRY_OF_ATTR)
    return original is not None and any(
        t.user_attrs.get(RETRY_OF_ATTR) == original and t.number < trial.number
        for t in study.get_trials(deepcopy=False)
    )


def _rank(study: Any, number: int) -> int:
    """How many counted trials were created before trial ``number``."""
    return sum(1 for t in study.get_trials(deepcopy=False) if t.number < number and _is_counted(t))


class _Heartbeat:
    """Record a heartbeat for the running trial in the background (RDB storages only)."""

    def __init__(self, storage: Any, trial_id: int) -> None:
        self.storage = storage
        self.trial_id = trial_id
        self.stop = threading.Event()
        interval = getattr(storage, "get_heartbeat_interval", lambda: None)()
        self.thread = None
        if interval:
            storage.record_heartbeat(trial_id)
            self.thread = threading.Thread(target=self._beat, args=(interval,), daemon=True)
            self.thread.start()

    def _beat(self, interval: float) -> None:
        while not self.stop.wait(interval):
            self.storage.record_heartbeat(self.trial_id)

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join()


def run_worker(
    study: Any,
    storage: Any,
    objective: Callable[[Any], float],
    budget: int,
    *,
    deadline: float | None = None,
    catch: tuple[type[BaseException], ...] = (Exception,),
    callbacks: Any = None,
    poll_seconds: float = 1.0,
) -> int:
    """Run trials of ``study`` until it holds ``budget`` counted trials; return how many ran here.

    A trial that another worker marked failed while this one ran it (this
    process was paused, e.g. by SIGSTOP or a laptop's sleep, for longer than
    the storage's grace period, so its heartbeat looked dead) has already been
    replaced: it is abandoned, not counted here, and the worker goes on.
    """
    import optuna
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    ran = 0
    while deadline is None or time.monotonic() < deadline:
        with quiet_heartbeat_warnings():
            optuna.storages.fail_stale_trials(study)
        fail_trials_killed_before_first_heartbeat(study, storage)
        counted, running = count_trials(study)
        if counted < budget:
            requeue_interrupted_trials(study, room=budget - counted)
        if counted >= budget:
            if running == 0:
                remove_abandoned_checkpoints(study)
                break
            time.sleep(poll_seconds)  # a running trial may still be lost and need replacing
            continue
        with quiet_heartbeat_warnings():
            trial = study.ask()
        if _rank(study, trial.number) >= budget or _duplicate_retry(study, trial):
            trial.set_user_attr(SURPLUS_ATTR, True)
            study.tell(trial, state=TrialState.FAIL)
            continue
        heartbeat = _Heartbeat(storage, trial._trial_id)
        state, value, error = TrialState.COMPLETE, None, None
        try:
            value = objective(trial)
        except optuna.TrialPruned:
            state = TrialState.PRUNED
        except UpdateFinishedTrialError as exc:  # the trial was finished elsewhere: abandoned below
            state, error = TrialState.FAIL, f"{type(exc).__name__}: {exc}"
        except catch as exc:
            state, error = TrialState.FAIL, f"{type(exc).__name__}: {exc}"
        except BaseException as exc:
            # Not counted, replaced on resume: by a retry of the same configuration when it was
            # interrupted (Ctrl-C), by a fresh one when it raised an error `catch` does not list.
            if isinstance(exc, Exception):
                with contextlib.suppress(Exception):
                    trial.set_user_attr(RAISED_ATTR, f"{type(exc).__name__}: {exc}")
            study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            raise
        finally:
            heartbeat.close()
        try:
            if _finished_elsewhere(storage, trial):
                raise UpdateFinishedTrialError(f"trial {trial.number} was finished by another worker")
            if error is not None:
                trial.set_user_attr(ERROR_ATTR, error)
            study.tell(trial, value if state == TrialState.COMPLETE else None, state=state)
        except (UpdateFinishedTrialError, ValueError):  # tell says "Cannot tell a FAIL trial"
            if not _finished_elsewhere(storage, trial):
                raise
            _logger.warning(
                "trial %d was marked failed by another worker while this one ran it (this process "
                "was paused longer than the grace period?); it has been replaced, so it is abandoned",
                trial.number,
            )
            continue
        ran += 1
        for callback in callbacks or ():
            callback(study, storage.get_trial(trial._trial_id))
    return ran


def _finished_elsewhere(storage: Any, trial: Any) -> bool:
    """Whether ``trial``, still running here, is already finished in the storage."""
    return bool(storage.get_trial(trial._trial_id).state.is_finished())
