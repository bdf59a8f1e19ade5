"""Command-line interface: ``skbig <command>`` (also ``python -m skbig``).

Commands
--------
fit
    Train a text, image or speech model on files and save it.
predict
    Predict with a saved model; write a CSV (ids, predictions, probabilities).
evaluate
    Score a saved model on labelled files; optionally draw a confusion matrix.
search
    Optuna hyper-parameter search over the backend's space (less the
    parameters fixed with ``--param``); save the best model.
plugins
    Table of installed backends: name, task, status, distribution and version,
    with the reason for every broken one.
search-worker
    Run trials of a study created by ``OptunaSearchCV.fit`` or
    ``OptunaSearchCV.create_study`` (estimator, space, data and pruner are
    read from the study), until the study holds ``--n-trials`` trials.
demo
    Fit a TextClassifier on the bundled SMS spam sample, report accuracy,
    predict new messages, save and reload the model.

The data layouts (CSV, image folders, audio with ``transcripts.tsv``) are
described in :mod:`skbig._cli_data`.  Bad arguments and bad data exit with
code 2 and one line on stderr, ``skbig <command>: error: ...``; any other
failure is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import ast
import csv
import difflib
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from skbig._cli_data import TASKS, TRANSCRIPTS_FILE, load_inputs, load_labelled, task_of
from skbig.exceptions import InvalidInputError, InvalidParameterError, SkbigError

__all__ = ["main", "build_parser"]

_ESTIMATORS = {"text": "TextClassifier", "image": "ImageClassifier", "speech": "SpeechRecognizer"}
_PREDICT_CHUNK = 256

DATA_HELP = (
    "text: a CSV with a header row (columns chosen by --text-column/--label-column); "
    "image: a folder with one sub-folder of images per class; "
    f"speech: a folder of audio files (WAV/FLAC/OGG) with a {TRANSCRIPTS_FILE} whose header is "
    "'filename<TAB>text' and whose rows give each file (relative to the folder) and its transcript"
)


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line, ``skbig <command>: error: ...``, with exit code 2."""

    def error(self, message: str) -> Any:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _fail(command: str, message: object) -> int:
    """Report a domain error the way argparse reports a syntax error: one line, exit code 2."""
    print(f"skbig {command}: error: {' '.join(str(message).split())}", file=sys.stderr)
    return 2


# -- commands ---------------------------------------------------------------------------------------
def _check_output(path: str | None, *, creates_folders: bool) -> None:
    """Refuse an output path that cannot be written, before hours of training or prediction."""
    from pathlib import Path

    if path is None:
        return
    import tempfile

    target = Path(path)
    if target.is_dir():
        raise InvalidInputError(f"output {path!r} is a directory; pass a file path inside it")
    if not creates_folders and not target.parent.is_dir():
        raise InvalidInputError(f"output {path!r}: the folder {str(target.parent)!r} does not exist")
    folder = target.parent
    while not folder.exists():  # save() creates the missing folders below the nearest existing one
        folder = folder.parent
    if not folder.is_dir():
        raise InvalidInputError(f"output {path!r}: {str(folder)!r} is a file, not a folder")
    try:  # a real write: permissions, read-only and pseudo file systems all show here
        with tempfile.TemporaryFile(prefix=".skbig-probe-", dir=folder):
            pass
    except OSError as exc:
        raise InvalidInputError(
            f"output {path!r} cannot be written in {str(folder)!r}: {exc.strerror or exc}"
        ) from exc


def _cmd_fit(args: argparse.Namespace) -> int:
    _check_output(args.output, creates_folders=True)
    X, y = load_labelled(args.task, args.data, text_column=args.text_column, label_column=args.label_column)
    estimator = _make_estimator(args)
    start = time.perf_counter()
    estimator.fit(X, y)
    seconds = time.perf_counter() - start
    path = estimator.save(args.output)
    print(f"{_fit_summary(estimator)}; {len(X)} samples, {seconds:.1f}s; saved to {path}")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    import skbig

    _check_output(args.output, creates_folders=False)
    model = skbig.load(_model_path(args.model))
    task = task_of(model)
    ids, X = load_inputs(task, args.inputs, text_column=args.text_column, id_column=args.id_column)
    header, rows = _predict_rows(model, ids, X, quiet=args.quiet)
    if args.output:
        with open(args.output, "w", encoding="utf-8", newline="") as fh:
            _write_csv(fh, header, rows)
        print(f"wrote {len(rows)} predictions to {args.output}", file=sys.stderr)
    else:
        _write_csv(sys.stdout, header, rows)
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import skbig

    model = skbig.load(_model_path(args.model))
    task = task_of(model)
    if args.confusion_matrix and task == "speech":
        raise InvalidParameterError("--confusion-matrix needs a classifier; MODEL is a SpeechRecognizer")
    X, y = load_labelled(task, args.data, text_column=args.text_column, label_column=args.label_column)
    _, rows = _predict_rows(model, [str(i) for i in range(len(X))], X, quiet=args.quiet)
    predicted = [row[1] for row in rows]
    print(f"{type(model).__name__} ({model.backend_}) on {len(X)} samples of {args.data}")
    if task == "speech":
        from skbig.metrics import _references_as_scored_by, cer, wer

        y = _references_as_scored_by(model, y)  # as model.score: normalize_text applies to them too
        print(f"wer       {wer(y, predicted):.4f}")
        print(f"cer       {cer(y, predicted):.4f}")
        return 0
    from sklearn.metrics import accuracy_score, classification_report, f1_score

    from skbig.plot import labels_with_unseen

    labels = labels_with_unseen([str(c) for c in model.classes_], y)
    print(f"accuracy  {accuracy_score(y, predicted):.4f}")
    print(f"f1_macro  {f1_score(y, predicted, average='macro', labels=labels, zero_division=0):.4f}")
    print()
    print(classification_report(y, predicted, labels=labels, digits=4, zero_division=0))
    if args.confusion_matrix:
        _save_confusion_matrix(args.confusion_matrix, y, predicted, labels, args.normalize)
        print(f"confusion matrix written to {args.confusion_matrix}")
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    from skbig.search import OptunaSearchCV

    _check_output(args.output, creates_folders=True)
    X, y = load_labelled(args.task, args.data, text_column=args.text_column, label_column=args.label_column)
    estimator = _make_estimator(args, verbose=0)
    space, fixed = _space_without_fixed(estimator, args)
    if fixed:
        values = estimator.get_params(deep=True)
        shown = ", ".join(f"{key}={values[key]!r}" for key in fixed)
        print(f"fixed by --param, not searched: {shown}")
    search = OptunaSearchCV(
        estimator,
        space,
        n_trials=args.n_trials,
        timeout=args.timeout,
        cv=args.cv,
        storage=args.storage,
        study_name=args.study,
        random_state=args.random_state,
        refit=args.output is not None,
        callbacks=None if args.quiet else [_report_trial],
    )
    search.fit(X, y)
    print(f"study {search.study_.study_name!r}: {search.n_trials_} trial(s) counted")
    print(f"best CV score {search.best_score_:.4f} (trial {search.best_trial_.number})")
    for key, value in sorted(search.best_params_.items()):
        print(f"  {key} = {value!r}")
    if args.output is not None:
        path = search.best_estimator_.save(args.output)
        print(f"best model refitted on all {len(X)} samples and saved to {path}")
    return 0


def _space_without_fixed(estimator: Any, args: argparse.Namespace) -> tuple[dict[str, Any], list[str]]:
    """The backend's search space less the parameters the user fixed; and those fixed keys.

    In ``OptunaSearchCV`` a searched parameter overrides the estimator's
    value, so a parameter set with ``--param`` (or ``--max-epochs``,
    ``--random-state``) is taken out of the space: what the user fixed wins.
    """
    from skbig.search.spaces import default_space

    given = [key for key, _ in args.param or ()]
    given += [name for name in ("max_epochs", "random_state") if getattr(args, name) is not None]
    space = default_space(estimator)
    fixed = sorted(key for key in space if any(key == g or key.startswith(f"{g}__") for g in given))
    if fixed and len(fixed) == len(space):
        raise InvalidParameterError(
            f"--param fixes every parameter of the backend's search space ({', '.join(fixed)}); nothing "
            "is left to search: drop one of those --param, or train with 'skbig fit'"
        )
    return {key: spec for key, spec in space.items() if key not in fixed}, fixed


def _report_trial(study: Any, trial: Any) -> None:
    """Optuna callback: one line on stderr per finished trial, the search's progress."""
    value = "" if trial.value is None else f" score {trial.value:.4f}"
    print(f"trial {trial.number} {trial.state.name.lower()}{value}", file=sys.stderr, flush=True)


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
    for r in rows:
        if r.status == "broken":
            print(f"\n{r.name} ({r.source}) is broken: {r.error}")
        elif r.error:  # a name clash the listed package won
            print(f"\n{r.name} ({r.distribution}): {r.error}")
    return 0


def _cmd_search_worker(args: argparse.Namespace) -> int:
    import optuna

    from skbig.search._worker import count_trials, make_storage, run_worker
    from skbig.search.optuna_search import objective_from_spec, pruner_from_spec

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = make_storage(
        args.storage, heartbeat_interval=args.heartbeat_interval, grace_period=args.grace_period
    )
    try:
        study = optuna.load_study(study_name=args.study, storage=storage)
    except KeyError as exc:
        raise InvalidInputError(f"no study named {args.study!r} in {args.storage}") from exc
    objective, _ = objective_from_spec(study)
    study.pruner, note = pruner_from_spec(study)  # load_study alone would give Optuna's MedianPruner
    if note:
        print(f"skbig search-worker: note: {note}", file=sys.stderr)
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


# -- helpers ----------------------------------------------------------------------------------------
def _make_estimator(args: argparse.Namespace, verbose: int | None = None) -> Any:
    import skbig

    cls = getattr(skbig, _ESTIMATORS[args.task])
    fixed: dict[str, Any] = {"verbose": (0 if args.quiet else 1) if verbose is None else verbose}
    for name in ("backend", "max_epochs", "random_state"):
        if getattr(args, name) is not None:
            fixed[name] = getattr(args, name)
    params = dict(args.param or ())
    if "backend" in params:  # the backend decides which backend_params__* exist
        fixed["backend"] = params.pop("backend")
    estimator = cls(**fixed)
    valid = estimator.get_params(deep=True)
    unknown = sorted(k for k in params if k not in valid)
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(valid), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise InvalidParameterError(
            f"--param {unknown[0]!r} is not a parameter of {cls.__name__} with backend "
            f"{estimator.backend!r}; {hint}valid: {', '.join(sorted(valid))}"
        )
    return estimator.set_params(**params)


def _parse_param(text: str) -> tuple[str, Any]:
    """``key=value`` with the value read as a Python literal (number, bool, None, list...) or kept as text."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw
    return key.strip(), value


def _model_path(path: str) -> str:
    from pathlib import Path

    if not Path(path).is_file():
        raise InvalidInputError(f"MODEL {path!r} does not exist; create one with 'skbig fit ... -o {path}'")
    return path


def _fit_summary(estimator: Any) -> str:
    history = estimator.history_
    summary = f"{type(estimator).__name__} ({estimator.backend_}): {len(history)} epoch(s)"
    best = next((r for r in history if r["epoch"] == estimator.best_epoch_), None)
    if best is not None and "valid_score" in best:
        summary += f", best epoch {estimator.best_epoch_} with validation score {best['valid_score']:.4f}"
    settings = getattr(estimator, "training_settings_", {})
    if settings:  # what the backend's recipe filled in, so a user can reproduce or vary it
        shown = ("lr", "batch_size", "lr_schedule", "validation_fraction", "frozen")
        summary += " [" + ", ".join(f"{k}={settings[k]}" for k in shown if k in settings) + "]"
    return summary


def _predict_rows(
    model: Any, ids: list[str], X: list[str], *, quiet: bool
) -> tuple[list[str], list[list[Any]]]:
    """Predict in chunks behind a progress bar; return the CSV header and rows."""
    import numpy as np
    from tqdm.auto import tqdm

    classes = getattr(model, "classes_", None)
    header = ["id", "prediction"] + ([f"proba_{c}" for c in classes] if classes is not None else [])
    rows: list[list[Any]] = []
    with tqdm(
        total=len(X), desc="predict", unit="item", file=sys.stderr, disable=quiet or len(X) <= _PREDICT_CHUNK
    ) as bar:
        for start in range(0, len(X), _PREDICT_CHUNK):
            part = X[start : start + _PREDICT_CHUNK]
            part_ids = ids[start : start + _PREDICT_CHUNK]
            if classes is None:
                rows.extend([i, text] for i, text in zip(part_ids, model.predict(part)))
            else:
                proba = model.predict_proba(part)
                labels = classes[np.argmax(proba, axis=1)]
                rows.extend(
                    [i, str(label), *(f"{p:.6f}" for p in row)]
                    for i, label, row in zip(part_ids, labels, proba)
                )
            bar.update(len(part))
    return header, rows


def _write_csv(fh: Any, header: list[str], rows: list[list[Any]]) -> None:
    writer = csv.writer(fh)
    writer.writerow(header)
    writer.writerows(rows)


def _save_confusion_matrix(
    path: str, y: list[str], predicted: list[str], labels: list[str], normalize: Any
) -> None:
    try:
        import matplotlib
    except ImportError as exc:
        raise InvalidParameterError("--confusion-matrix needs matplotlib: pip install 'skbig[plot]'") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skbig.plot import plot_confusion

    ax = plot_confusion(y, predicted, labels=labels, normalize=normalize)
    ax.figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(ax.figure)


# -- parser -----------------------------------------------------------------------------------------
def _add_data_arguments(p: argparse.ArgumentParser, *, with_task: bool) -> None:
    if with_task:
        p.add_argument("--task", required=True, choices=TASKS, help="what kind of model to train")
    p.add_argument("data", metavar="DATA", help=DATA_HELP)
    p.add_argument(
        "--text-column", default="text", metavar="NAME", help="CSV column holding the texts (default: text)"
    )
    p.add_argument(
        "--label-column",
        default="label",
        metavar="NAME",
        help="CSV column holding the labels (default: label)",
    )


def _add_estimator_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--backend",
        metavar="NAME",
        help="backend name (see 'skbig plugins'); default: the estimator's default",
    )
    p.add_argument(
        "--max-epochs", type=int, metavar="N", help="most epochs to train (default: the backend's)"
    )
    p.add_argument("--random-state", type=int, metavar="SEED", help="seed for reproducible results")
    p.add_argument(
        "--param",
        action="append",
        type=_parse_param,
        metavar="KEY=VALUE",
        help="any estimator parameter, repeatable: --param lr=0.01 --param backend_params__embed_dim=32",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def _sub(sub: Any, name: str, help: str, *examples: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=help,
        description=help[0].upper() + help[1:] + ".",
        epilog=("example:\n  " if len(examples) == 1 else "examples:\n  ") + "\n  ".join(examples),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = _Parser(
        prog="skbig",
        description="Big pretrained models with scikit-learn manners.",
        epilog="Run 'skbig COMMAND --help' for a command's options and an example.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = _sub(
        sub,
        "fit",
        "train a model on a CSV, an image folder or transcribed audio and save it",
        "skbig fit --task text sms.csv -o sms.skbig --max-epochs 5 --param lr=0.005",
        "skbig fit --task image photos/ -o photos.skbig --backend resnet",
        "skbig fit --task speech clips/ -o asr.skbig   # clips/transcripts.tsv: filename<TAB>text",
    )
    _add_data_arguments(p, with_task=True)
    p.add_argument("-o", "--output", required=True, metavar="MODEL", help="where to save the fitted model")
    _add_estimator_arguments(p)
    p.set_defaults(func=_cmd_fit)

    p = _sub(
        sub,
        "predict",
        "predict with a saved model and write a CSV of ids, predictions and class probabilities",
        "skbig predict sms.skbig new_messages.csv -o predictions.csv",
    )
    p.add_argument("model", metavar="MODEL", help="a model saved by 'skbig fit' or estimator.save()")
    p.add_argument(
        "inputs",
        metavar="INPUTS",
        nargs="+",
        help="text: one CSV; image/speech: files and/or folders (searched recursively)",
    )
    p.add_argument("-o", "--output", metavar="CSV", help="where to write the predictions (default: stdout)")
    p.add_argument("--text-column", default="text", help="CSV column holding the texts (default: text)")
    p.add_argument("--id-column", help="CSV column to use as the id (default: the row number from 0)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_predict)

    p = _sub(
        sub,
        "evaluate",
        "score a saved model on labelled data (accuracy and macro F1, or WER and CER)",
        "skbig evaluate sms.skbig sms_test.csv --confusion-matrix cm.png",
    )
    p.add_argument("model", metavar="MODEL", help="a model saved by 'skbig fit' or estimator.save()")
    _add_data_arguments(p, with_task=False)
    p.add_argument("--confusion-matrix", metavar="PNG", help="classifiers: draw the confusion matrix there")
    p.add_argument(
        "--normalize",
        choices=["true", "pred", "all"],
        help="confusion matrix of rates over true labels, predictions or all (default: counts)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_evaluate)

    p = _sub(
        sub,
        "search",
        "search hyper-parameters with Optuna over the backend's space (a parameter fixed with --param is "
        "not searched); optionally save the best model",
        "skbig search --task text sms.csv --storage sqlite:///sms.db --study sms --n-trials 20 -o best.skbig",
    )
    _add_data_arguments(p, with_task=True)
    p.add_argument(
        "--storage", help="database URL, e.g. sqlite:///study.db (rerun to resume); default: in memory"
    )
    p.add_argument("--study", help="study name (needed to resume or share a study)")
    p.add_argument("--n-trials", type=int, default=20, help="the study's total trial budget (default 20)")
    p.add_argument("--timeout", type=float, help="stop after this many seconds")
    p.add_argument("--cv", type=_at_least(2), default=3, help="cross-validation folds (default 3)")
    p.add_argument("-o", "--output", metavar="MODEL", help="refit the best parameters on all data, save here")
    _add_estimator_arguments(p)
    p.set_defaults(func=_cmd_search)

    p = _sub(
        sub,
        "plugins",
        "list installed backends and whether they load",
        "skbig plugins --task text-classification",
    )
    p.add_argument(
        "--task",
        choices=["text-classification", "image-classification", "speech-recognition"],
        help="only backends for this task",
    )
    p.set_defaults(func=_cmd_plugins)

    p = _sub(
        sub,
        "search-worker",
        "run trials of a shared Optuna study (see OptunaSearchCV.create_study)",
        "skbig search-worker --storage postgresql://user@host/db --study sms --n-trials 100",
    )
    p.add_argument("--storage", required=True, help="database URL, e.g. postgresql://user@host/db")
    p.add_argument("--study", required=True, help="study name")
    p.add_argument("--n-trials", type=_at_least(1), required=True, help="the study's total trial budget")
    p.add_argument("--timeout", type=float, default=None, help="stop starting trials after this many seconds")
    p.add_argument(
        "--heartbeat-interval", type=_at_least(1), default=10, help="seconds between heartbeats (default 10)"
    )
    p.add_argument(
        "--grace-period",
        type=_at_least(1),
        default=30,
        help="seconds without heartbeat before a trial counts as lost (default 30)",
    )
    p.set_defaults(func=_cmd_search_worker)

    p = _sub(
        sub,
        "demo",
        "fit, evaluate, save and reload a TextClassifier on bundled SMS data",
        "skbig demo -o sms.skbig",
    )
    p.add_argument("-o", "--output", default=None, help="where to save the model (default: a temporary file)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_demo)
    return parser


def _at_least(low: int) -> Callable[[str], int]:
    """An argparse type: an int >= ``low`` (argparse reports anything else as a usage error)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an int, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value

    parse.__name__ = f"int >= {low}"
    return parse


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``skbig`` command; returns the exit code.

    Errors in the arguments or the data (any :class:`~skbig.exceptions.SkbigError`)
    are reported on one line with exit code 2; other exceptions propagate.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except SkbigError as exc:
        return _fail(args.command, exc)
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading: not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # a path the user gave: missing folder, a directory, no permission
        return _fail(args.command, exc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
