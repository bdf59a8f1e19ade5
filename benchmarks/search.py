"""OptunaSearchCV vs GridSearchCV, and the PostgreSQL worker figures.

Part 1 (``grid``): ImageClassifier on sklearn's digits over a fixed discrete
grid of 24 configurations, same 3-fold CV splits for both searches.
GridSearchCV evaluates all 24; OptunaSearchCV samples the same grid with TPE
and prunes with a median pruner on per-epoch validation scores.  Printed: best
CV score of each, the gap, both wall times and their ratio (targets: gap <=
0.005, time ratio <= 0.40).

Part 2 (``postgres``): with ``SKBIG_TEST_POSTGRES_URL`` set (``bash
tests/with_postgres.sh python benchmarks/search.py``), 2 ``skbig search-worker``
processes share one study of budget 20; then a study where one worker is
SIGKILLed mid-trial and restarted.  Trial-state counts are printed.

Part 3 (``timeout``): ``timeout=60`` returns within 60 s plus one epoch.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from benchmarks._common import Samples, comparison, measure
from skbig import ImageClassifier, OptunaSearchCV

GRID = {
    "lr": [1e-3, 3e-3, 1e-2, 3e-2],
    "backend_params__width": [16, 32, 64],
    "backend_params__dropout": [0.0, 0.3],
}


#: The quick suite's smaller problem: 8 configurations, 8 epochs at most, 3 trials.
QUICK_GRID = {"lr": [1e-3, 3e-3, 1e-2, 3e-2], "backend_params__width": [16, 32]}
QUICK_MAX_EPOCHS, QUICK_TRIALS = 8, 3
MAX_EPOCHS = 15
TARGET_GAP = 0.005
TARGET_TIME_RATIO = 0.40


def grid_vs_optuna(
    n_trials: int, *, grid_space: dict[str, list[Any]] | None = None, max_epochs: int = MAX_EPOCHS
) -> dict[str, Any]:
    """Both searches over the same grid and CV splits; figures plus ``samples`` for the comparison rows."""
    grid_space = grid_space or GRID
    X, y = load_digits(return_X_y=True)
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    base = ImageClassifier(image_shape=(8, 8), max_epochs=max_epochs, random_state=0)
    found: dict[str, Any] = {}

    def run_grid() -> None:
        found["grid"] = GridSearchCV(base, grid_space, cv=cv, n_jobs=1, refit=False).fit(X, y)

    def run_optuna() -> None:
        import optuna

        found["optuna"] = OptunaSearchCV(
            base,
            grid_space,
            n_trials=n_trials,
            cv=cv,
            pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2),
            refit=False,
            random_state=0,
        ).fit(X, y)

    grid_time, optuna_time = measure(run_grid), measure(run_optuna)
    grid, search = found["grid"], found["optuna"]
    grid_seconds, optuna_seconds = grid_time.value, optuna_time.value
    states = search.cv_results_["state"]
    figures: dict[str, Any] = {
        "grid_best_score": float(grid.best_score_),
        "grid_seconds": grid_seconds,
        "grid_configs": len(grid.cv_results_["params"]),
        "optuna_best_score": float(search.best_score_),
        "optuna_seconds": optuna_seconds,
        "optuna_trials": len(states),
        "optuna_pruned": states.count("PRUNED"),
        "score_gap": float(grid.best_score_ - search.best_score_),
        "time_ratio": optuna_seconds / grid_seconds,
    }
    grid_best, n_configs = figures["grid_best_score"], figures["grid_configs"]
    print(f"GridSearchCV   best {grid_best:.4f}  {grid_seconds:7.1f} s  ({n_configs} configs)")
    print(
        f"OptunaSearchCV best {figures['optuna_best_score']:.4f}  {optuna_seconds:7.1f} s  "
        f"({figures['optuna_trials']} trials, {figures['optuna_pruned']} pruned)"
    )
    gap, ratio = figures["score_gap"], figures["time_ratio"]
    print(f"gap {gap:+.4f} (target <= 0.005)   time ratio {ratio:.3f} (target <= 0.40)")
    figures["samples"] = {
        "grid_seconds": grid_time,
        "optuna_seconds": optuna_time,
        "grid_score": Samples([figures["grid_best_score"]], grid_time.threads[:1]),
        "optuna_score": Samples([figures["optuna_best_score"]], optuna_time.threads[:1]),
    }
    return figures


def _worker(url: str, study: str, budget: int) -> subprocess.Popen[str]:
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
            "2",
            "--grace-period",
            "6",
        ],
        text=True,
    )


def _counts(url: str, name: str) -> dict[str, int]:
    import optuna

    from skbig.search._worker import ERROR_ATTR, make_storage

    study = optuna.load_study(study_name=name, storage=make_storage(url))
    counts: dict[str, int] = {}
    for t in study.trials:
        key = t.state.name
        if key == "FAIL" and ERROR_ATTR not in t.user_attrs:
            key = "FAIL (lost worker)"
        counts[key] = counts.get(key, 0) + 1
    return counts


def postgres_workers(url: str) -> dict[str, object]:
    from skbig import TextClassifier
    from skbig.datasets import load_sms_spam_sample
    from skbig.search import Float

    texts, labels = load_sms_spam_sample()
    stamp = int(time.time())

    def create(name: str) -> None:
        OptunaSearchCV(
            TextClassifier(max_epochs=2, random_state=0),
            {"lr": Float(1e-3, 3e-2, log=True)},
            cv=2,
            storage=url,
            study_name=name,
        ).create_study(texts[:300], labels[:300])

    two = f"bench-two-workers-{stamp}"
    create(two)
    workers = [_worker(url, two, 20) for _ in range(2)]
    for w in workers:
        w.wait()
    two_counts = _counts(url, two)
    print(f"2 workers, budget 20: {two_counts}")

    killed = f"bench-killed-{stamp}"
    create(killed)
    workers = [_worker(url, killed, 20) for _ in range(2)]
    time.sleep(20)
    workers[0].send_signal(signal.SIGKILL)
    workers[0].wait()
    print("worker 1 SIGKILLed mid-trial; restarting it")
    restarted = _worker(url, killed, 20)
    workers[1].wait()
    restarted.wait()
    killed_counts = _counts(url, killed)
    print(f"after kill + restart, budget 20: {killed_counts}")
    return {"two_workers": two_counts, "kill_and_restart": killed_counts}


def timeout_check(seconds: float = 60) -> dict[str, float]:
    X, y = load_digits(return_X_y=True)
    start = time.perf_counter()
    search = OptunaSearchCV(
        ImageClassifier(image_shape=(8, 8), max_epochs=500, early_stopping=False, random_state=0),
        GRID,
        n_trials=1000,
        timeout=seconds,
        cv=3,
        random_state=0,
    ).fit(X, y)
    elapsed = time.perf_counter() - start
    epoch = float(np.median([r["seconds"] for r in search.best_estimator_.history_]))
    trials = search.n_trials_
    print(
        f"timeout={seconds:.0f}: returned after {elapsed:.1f} s (one epoch ~ {epoch:.2f} s), {trials} trials"
    )
    return {"timeout": seconds, "elapsed": elapsed, "epoch_seconds": epoch}


def run(
    data_dir: Path | None = None,
    *,
    quick: bool = False,
    parts: str | None = None,
    n_trials: int | None = None,
) -> dict[str, Any]:
    """The grid comparison (smaller in the quick mode), then the postgres and timeout parts (full only).

    Each search runs once: one search is already dozens of fits, and
    repeating the full grid five times would take half an hour.  ``data_dir``
    is unused (digits ship with scikit-learn).
    """
    parts_set = set((parts or ("grid" if quick else "grid,postgres,timeout")).split(","))
    figures: dict[str, Any] = {"quick": quick}
    if "grid" in parts_set:
        if quick:
            grid = grid_vs_optuna(
                n_trials or QUICK_TRIALS, grid_space=QUICK_GRID, max_epochs=QUICK_MAX_EPOCHS
            )
        else:
            grid = grid_vs_optuna(n_trials or 8)
        samples = grid.pop("samples")
        figures["grid"] = grid
        compared = (
            f"ImageClassifier on digits, {grid['grid_configs']} grid configurations, "
            f"max_epochs={QUICK_MAX_EPOCHS if quick else MAX_EPOCHS}, the same 3-fold CV splits; "
            f"Optuna TPE with {grid['optuna_trials']} trials and a median pruner; one search each"
        )
        figures["comparisons"] = [
            comparison(
                "best CV accuracy",
                skbig=samples["optuna_score"],
                peer=samples["grid_score"],
                peer_name="GridSearchCV",
                compared=compared,
                target=None if quick else ("difference", ">=", -TARGET_GAP),
            ),
            comparison(
                "search wall time",
                skbig=samples["optuna_seconds"],
                peer=samples["grid_seconds"],
                peer_name="GridSearchCV",
                compared=compared,
                unit="s",
                target=None if quick else ("ratio", "<=", TARGET_TIME_RATIO),
            ),
        ]
    if "postgres" in parts_set:
        url = os.environ.get("SKBIG_TEST_POSTGRES_URL")
        if url:
            figures["postgres"] = postgres_workers(url)
        else:
            print("postgres part skipped: run through `bash tests/with_postgres.sh`")
    if "timeout" in parts_set:
        figures["timeout"] = timeout_check()
    return figures


def main() -> None:
    from benchmarks._common import write_result

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="grid,postgres,timeout")
    parser.add_argument("--n-trials", type=int, default=None, help="Optuna trials (default 8, quick 3)")
    parser.add_argument("--quick", action="store_true", help="8 configurations, 8 epochs, 3 trials")
    args = parser.parse_args()
    write_result("search", run(quick=args.quick, parts=args.parts, n_trials=args.n_trials))


if __name__ == "__main__":
    main()
