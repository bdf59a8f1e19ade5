"""Command-line interface: ``skbig <command>`` (also ``python -m skbig``).

Commands
--------
plugins
    Table of installed backends: name, task, status, distribution and version,
    with the reason for every broken one.
search-worker
    Run trials of a study created by ``OptunaSearchCV.fit`` or
    ``OptunaSearchCV.create_study`` (estimator, space and data are read from
    the study), until the study holds ``--n-trials`` trials.
demo
    Fit a TextClassifier on the bundled SMS spam sample, report accuracy,
    predict new messages, save and reload the model.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _cmd_plugins(args: argparse.Namespace) -> int:
    from skbig.backends.registry import list_backends

    rows = list_backends(args.task)
    header = ("name", "task", "status", "pretrained", "distribution", "version")
    table = [
        (r.name, r.task or "?", r.status, "yes" if r.pretrained else "no", r.distribution, r.version)
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *table)]
    for line in (header, *table):
        print("  ".join(str(x).ljust(w) for x, w in zip(line, widths)).rstrip())
    broken = [r for r in rows if r.status == "broken"]
    for r in broken:
        print(f"\n{r.name} ({r.source}) is broken: {r.error}")
    return 0


def _cmd_search_worker(args: argparse.Namespace) -> int:
    import time

    import optuna

    from skbig.search._worker import count_trials, make_storage, run_worker
    from skbig.search.optuna_search import objective_from_spec

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = make_storage(
        args.storage, heartbeat_interval=args.heartbeat_interval, grace_period=args.grace_period
    )
    try:
        study = optuna.load_study(study_name=args.study, storage=storage)
    except KeyError:
        print(f"skbig search-worker: no study named {args.study!r} in {args.storage}", file=sys.stderr)
        return 2
    objective, _ = objective_from_spec(study)
    deadline = time.monotonic() + args.timeout if args.timeout else None
    ran = run_worker(study, storage, objective, args.n_trials, deadline=deadline)
    counted, running = count_trials(study)
    print(
        f"worker ran {ran} trial(s); study {args.study!r} holds {counted} counted trial(s), {running} running"
    )
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from skbig._demo import run_demo

    run_demo(model_path=args.output, verbose=not args.quiet)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(
        prog="skbig", description="Big pretrained models with scikit-learn manners."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("plugins", help="list installed backends and whether they load")
    p.add_argument(
        "--task",
        choices=["text-classification", "image-classification", "speech-recognition"],
        help="only backends for this task",
    )
    p.set_defaults(func=_cmd_plugins)

    p = sub.add_parser("search-worker", help="run trials of a shared Optuna study (see OptunaSearchCV)")
    p.add_argument("--storage", required=True, help="database URL, e.g. postgresql://user@host/db")
    p.add_argument("--study", required=True, help="study name")
    p.add_argument("--n-trials", type=int, required=True, help="the study's total trial budget")
    p.add_argument("--timeout", type=float, default=None, help="stop starting trials after this many seconds")
    p.add_argument(
        "--heartbeat-interval", type=int, default=10, help="seconds between heartbeats (default 10)"
    )
    p.add_argument(
        "--grace-period", type=int, default=30, help="seconds without heartbeat before a trial counts as lost"
    )
    p.set_defaults(func=_cmd_search_worker)

    p = sub.add_parser("demo", help="fit, evaluate, save and reload a TextClassifier on bundled SMS data")
    p.add_argument("-o", "--output", default=None, help="where to save the model (default: a temporary file)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``skbig`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
