"""Shared helpers for the benchmark scripts: data location, machine facts, repeated timings, comparisons.

Every benchmark module exposes ``run(data_dir, *, quick=False) -> dict``.  The
dict it returns holds its raw figures and, under ``"comparisons"``, one row
per skbig figure with its peer measured in the same run (see
:func:`comparison`).  :mod:`benchmarks.runner` turns those rows into the
Markdown table and refuses a row whose two sides ran with different torch
thread counts, which is why every measured value here carries the thread
count it ran with (:class:`Samples`).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"

#: What a target can be set on: skbig / peer, skbig's own figure, or skbig - peer.
TARGET_ON = ("ratio", "skbig", "difference")
#: Repeats of every timing: the runner's ``--suite quick`` and ``--suite full``.
REPEATS = {True: 3, False: 5}

__all__ = [
    "BenchmarkUnavailable",
    "REPEATS",
    "Samples",
    "comparison",
    "data_dir",
    "default_data_dir",
    "fit_and_score",
    "interleaved",
    "machine_info",
    "measure",
    "median",
    "timed",
    "write_result",
]


class BenchmarkUnavailable(RuntimeError):
    """A benchmark cannot run here (a plugin, a package or weights are missing); not a failure."""


def default_data_dir() -> Path:
    """``$SKBIG_DATA_DIR`` or ``../shared/data`` next to the repository (it may not exist)."""
    return Path(os.environ.get("SKBIG_DATA_DIR", REPO.parent / "shared" / "data"))


def data_dir() -> Path:
    """:func:`default_data_dir`, or exit with a message saying how to point at the data."""
    path = default_data_dir()
    if not path.is_dir():
        sys.exit(f"benchmark data not found at {path}; set SKBIG_DATA_DIR to the shared data folder")
    return path


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(distribution: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("-dirty" if dirty else "")


def machine_info() -> dict[str, Any]:
    """What the figures depend on: CPU, cores, torch threads, library versions, commit and date."""
    import torch

    usable: int | None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": _git_commit(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cores": usable,
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "versions": {
            name: _version(name)
            for name in ("torch", "skbig", "scikit-learn", "optuna", "transformers", "skorch", "numpy")
        },
    }


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def fit_and_score(
    figures: dict[str, Any], key: str, fit: Callable[[], Any], predict: Callable[[], Any], y_true: Any
) -> None:
    """Time ``fit()`` then ``predict()``, and record accuracy and both times in ``figures`` under ``key``.

    The accuracy benchmarks (transfer learning) compare several models on
    one split; this keeps their keys uniform: ``<key>_accuracy``,
    ``<key>_fit_seconds`` and ``<key>_predict_seconds``.  Prints one line.
    """
    import numpy as np

    start = time.perf_counter()
    fit()
    fitted = time.perf_counter()
    predicted = predict()
    done = time.perf_counter()
    accuracy = float(np.mean(np.asarray(y_true) == np.asarray(predicted)))
    figures[f"{key}_accuracy"] = accuracy
    figures[f"{key}_fit_seconds"] = fitted - start
    figures[f"{key}_predict_seconds"] = done - fitted
    print(f"  {key:28s} accuracy {accuracy:.4f}  fit {fitted - start:7.1f} s", flush=True)


def other_seeds(
    figures: dict[str, Any],
    key: str,
    make: Callable[[int], Any],
    X_train: Any,
    y_train: Any,
    X_test: Any,
    y_test: Any,
    repeats: int,
) -> None:
    """Refit ``make(seed)`` for seeds 1..repeats-1 and record every seed's accuracy beside seed 0's.

    One fit is one draw of the initialisation and shuffling; on a test set of
    a few hundred items that moves accuracy by a point or more, so the
    median over seeds is printed next to the seed-0 acceptance figure:
    ``<key>_seed_accuracies`` (seed -> accuracy, seed 0 included) and
    ``<key>_median_accuracy``.
    """
    accuracies = {0: figures[f"{key}_accuracy"]}
    for seed in range(1, repeats):
        scratch: dict[str, Any] = {}
        model = make(seed)
        fit_and_score(
            scratch,
            f"{key} seed {seed}",
            lambda m=model: m.fit(X_train, y_train),
            lambda m=model: m.predict(X_test),
            y_test,
        )
        accuracies[seed] = scratch[f"{key} seed {seed}_accuracy"]
    figures[f"{key}_seed_accuracies"] = accuracies
    figures[f"{key}_median_accuracy"] = median(list(accuracies.values()))
    listed = ", ".join(f"{v:.4f}" for v in accuracies.values())
    print(
        f"  {key:28s} seeds 0..{repeats - 1}: {listed}; median {figures[f'{key}_median_accuracy']:.4f}",
        flush=True,
    )


@dataclass
class Samples:
    """Repeated measurements of one figure and the torch thread count each one ran with.

    ``value`` is the median, which is what tables and ratios use.
    """

    values: list[float] = field(default_factory=list)
    threads: list[int] = field(default_factory=list)

    @property
    def value(self) -> float:
        if not self.values:
            raise ValueError("no measurement was recorded")
        return median(self.values)

    def add(self, value: float, threads: int) -> None:
        self.values.append(float(value))
        self.threads.append(int(threads))


def measure(fn: Callable[[], float | None], samples: Samples | None = None) -> Samples:
    """Call ``fn`` once; record what it returns (or its wall seconds if None) and the thread count.

    A call that changed torch's thread count records both counts, so the
    runner sees the mismatch instead of a silently mixed figure.
    """
    import torch

    samples = samples if samples is not None else Samples()
    before = torch.get_num_threads()
    start = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - start
    after = torch.get_num_threads()
    samples.add(seconds if value is None else value, before)
    if after != before:
        samples.threads.append(after)
    return samples


def interleaved(
    contenders: Mapping[str, Callable[[], float | None]], repeats: int, *, warmup: int = 0, label: str = ""
) -> dict[str, Samples]:
    """Run each contender ``repeats`` times in turn (A B A B ...), so load changes hit all alike.

    Each callable returns its own figure (e.g. samples/s) or None to be timed
    in wall seconds.  ``warmup`` unrecorded rounds go first.
    """
    results = {name: Samples() for name in contenders}
    for round_ in range(warmup + repeats):
        for name, fn in contenders.items():
            if round_ < warmup:
                fn()
                continue
            measure(fn, results[name])
            value = results[name].values[-1]
            print(f"  {label}run {round_ - warmup + 1}/{repeats} {name:24s} {value:12.4g}", flush=True)
    return results


def comparison(
    metric: str,
    *,
    skbig: Samples,
    peer: Samples,
    peer_name: str,
    compared: str,
    unit: str = "",
    target: tuple[str, str, float] | None = None,
) -> dict[str, Any]:
    """One row of the results table: skbig's figure, its peer's, their ratio and the target.

    Parameters
    ----------
    metric : str
        What is measured, e.g. ``"predict samples/s"``.
    skbig, peer : Samples
        The two sides, measured in the same run; the medians are compared.
    peer_name : str
        What the peer is, e.g. ``"plain torch.inference_mode loop"``.
    compared : str
        What was held equal: data, split, batch size, model...
    unit : str
        Unit of both figures.
    target : (on, op, value), optional
        ``on`` is ``"ratio"`` (skbig / peer), ``"skbig"`` or ``"difference"``
        (skbig - peer); ``op`` is ``">="`` or ``"<="``; e.g. ``("ratio", ">=", 0.95)``.
        None: reported, no target.
    """
    skbig_value, peer_value = skbig.value, peer.value
    ratio = skbig_value / peer_value if peer_value else None
    row: dict[str, Any] = {
        "metric": metric,
        "unit": unit,
        "skbig": skbig_value,
        "peer": peer_value,
        "peer_name": peer_name,
        "ratio": ratio,
        "compared": compared,
        "skbig_runs": skbig.values,
        "peer_runs": peer.values,
        "skbig_threads": sorted(set(skbig.threads)),
        "peer_threads": sorted(set(peer.threads)),
        "target": None,
        "met": None,
    }
    if target is not None:
        on, op, value = target
        if on not in TARGET_ON or op not in (">=", "<="):
            raise ValueError(f"target must be ({'|'.join(TARGET_ON)}, >=|<=, number), got target={target!r}")
        row["target"] = {"on": on, "op": op, "value": value}
        actual = {"ratio": ratio, "skbig": skbig_value, "difference": skbig_value - peer_value}[on]
        if actual is not None:
            row["met"] = bool(actual >= value if op == ">=" else actual <= value)
    return row


def write_result(name: str, figures: dict[str, Any]) -> Path:
    """Write ``benchmarks/results/<name>-<timestamp>.json`` and return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = RESULTS / f"{name}-{stamp}.json"
    path.write_text(
        json.dumps({"benchmark": name, "machine": machine_info(), **figures}, indent=2, default=str)
    )
    print(f"\nresults written to {path.relative_to(REPO)}")
    return path
