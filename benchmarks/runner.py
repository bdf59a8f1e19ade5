"""Run the benchmark suites, write their results, and compare two result folders.

Why one runner: every skbig figure must come with its peer measured in the
same run, on the same machine and thread count, and every run must leave
files that can be checked later.  The runner calls each benchmark's
``run(data_dir, *, quick)``, writes one JSON file per benchmark (machine
facts and every figure) and a Markdown table of all comparisons, and refuses
ratios whose two sides ran with different torch thread counts.

A benchmark that cannot run here (plugin, package or weights missing) gets a
"not available" row and the others go on; one that raises gets a "failed"
row with its error.  Use it through ``python -m benchmarks`` (see
:mod:`benchmarks.__main__`).
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import json
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks._common import RESULTS, BenchmarkUnavailable, machine_info

__all__ = [
    "BENCHMARKS",
    "Benchmark",
    "ThreadCountMismatch",
    "QUICK_BUDGET_SECONDS",
    "check_threads",
    "compare_dirs",
    "load_results",
    "markdown_table",
    "run_suite",
    "select",
]

SUITES = ("quick", "full")
#: ``--suite quick`` must finish within this on the 2-core development CPU.
QUICK_BUDGET_SECONDS = 15 * 60


class ThreadCountMismatch(RuntimeError):
    """Two measurements that would be compared ran with different torch thread counts."""


@dataclass(frozen=True)
class Benchmark:
    """One entry of the registry.

    Parameters
    ----------
    name : str
        What ``--only`` and the result file are called.
    target : str or callable
        ``"module:function"`` imported only when the benchmark runs, or the
        function itself; it is called as ``fn(data_dir, quick=quick)``.
    suites : tuple of str
        The suites it belongs to (``"quick"``, ``"full"``).
    description : str
        One line for ``python -m benchmarks list``.
    """

    name: str
    target: str | Callable[..., Mapping[str, Any]]
    suites: tuple[str, ...] = SUITES
    description: str = ""

    def load(self) -> Callable[..., Mapping[str, Any]]:
        if callable(self.target):
            return self.target
        module_name, _, attr = self.target.partition(":")
        module = importlib.import_module(module_name)
        return getattr(module, attr or "run")  # type: ignore[no-any-return]


BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark(
        "text_sms",
        "benchmarks.text_sms:run",
        description="SMS spam: TextClassifier() vs TF-IDF + LogisticRegression, accuracy and fit time",
    ),
    Benchmark(
        "overhead",
        "benchmarks.overhead:run",
        description="engine overhead: TextClassifier.fit vs a plain PyTorch loop vs skorch, same module",
    ),
    Benchmark(
        "predict_throughput",
        "benchmarks.predict_throughput:run",
        description="predict_proba samples/s vs a plain torch.inference_mode loop over module_",
    ),
    Benchmark(
        "minilm_throughput",
        "benchmarks.minilm_throughput:run",
        description="MiniLM fine-tuning samples/s vs the transformers Trainer, same weights and batches",
    ),
    Benchmark(
        "image_digits",
        "benchmarks.image_digits:run",
        description="digits: ImageClassifier(image_shape=(8, 8)) vs SVC, accuracy and fit time",
    ),
    Benchmark(
        "search",
        "benchmarks.search:run",
        description="OptunaSearchCV vs GridSearchCV on digits, best CV score and wall time",
    ),
    Benchmark(
        "speech_fsdd",
        "benchmarks.speech_fsdd:run",
        description="FSDD, speaker theo held out: SpeechRecognizer() (ctc) vs log-mel + SVC",
    ),
    Benchmark(
        "transfer_text",
        "benchmarks._transfer_text:run",
        description="SST-2: fine-tuned MiniLM vs TF-IDF, frozen embeddings + LogisticRegression, fasttext",
    ),
    Benchmark(
        "transfer_image",
        "benchmarks._transfer_image:run",
        description="hymenoptera: fine-tuned EfficientNet-Lite0 vs frozen features + LogisticRegression",
    ),
    Benchmark(
        "transfer_speech",
        "benchmarks._transfer_speech:run",
        description="Whisper tiny.en fine-tuned vs zero-shot (faster-whisper) vs ctc",
    ),
    Benchmark(
        "image_hymenoptera",
        "benchmarks.image_hymenoptera:run",
        suites=("full",),
        description="hymenoptera: ResNet-18 from scratch vs the majority class",
    ),
    Benchmark(
        "image_memory",
        "benchmarks.image_memory:run",
        suites=("full",),
        description="peak RSS of ImageClassifier.fit on 2,000 vs 200 image paths",
    ),
)


def select(
    suite: str, only: Sequence[str] | None = None, registry: Sequence[Benchmark] = BENCHMARKS
) -> list[Benchmark]:
    """The benchmarks of ``suite`` (all of them, or the names in ``only``), in registry order.

    Raises
    ------
    ValueError
        For an unknown suite, or a name in ``only`` that is not registered or
        not part of ``suite``.
    """
    if suite not in SUITES:
        raise ValueError(f"suite must be one of {list(SUITES)}, got suite={suite!r}")
    names = [b.name for b in registry]
    for name in only or ():
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown benchmark {name!r}{hint}; known: {', '.join(names)}")
        bench = next(b for b in registry if b.name == name)
        if suite not in bench.suites:
            raise ValueError(
                f"benchmark {name!r} is not part of the {suite!r} suite (only of {list(bench.suites)}); "
                f"use --suite {bench.suites[0]}"
            )
    chosen = [b for b in registry if suite in b.suites]
    return [b for b in chosen if not only or b.name in only]


def _call(fn: Callable[..., Mapping[str, Any]], data_dir: Path, quick: bool) -> Mapping[str, Any]:
    """``fn(data_dir, quick=quick)``; a benchmark without a quick mode is unavailable to the quick suite."""
    try:
        accepts_quick = "quick" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        accepts_quick = True
    if accepts_quick:
        return fn(data_dir, quick=quick)
    if quick:
        raise BenchmarkUnavailable(f"{fn.__module__}.{fn.__name__} has no quick mode (no `quick` parameter)")
    return fn(data_dir)


def _unavailable_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean "cannot run here" rather than "broken": missing imports, plugins, weights."""
    errors: list[type[BaseException]] = [ImportError, BenchmarkUnavailable]
    try:
        from skbig.exceptions import BackendNotFoundError
        from skbig.pretrained import WeightsNotFoundError
    except ImportError:  # pragma: no cover - skbig itself is missing
        return tuple(errors)
    return (*errors, BackendNotFoundError, WeightsNotFoundError)


def check_threads(name: str, figures: Mapping[str, Any]) -> None:
    """Refuse a benchmark whose compared sides ran with different torch thread counts.

    Raises
    ------
    ThreadCountMismatch
        Naming the benchmark, the metric and both thread counts.
    """
    for row in figures.get("comparisons", ()):
        skbig, peer = list(row.get("skbig_threads", ())), list(row.get("peer_threads", ()))
        if not skbig or not peer:
            raise ThreadCountMismatch(
                f"benchmark {name!r}, metric {row.get('metric')!r}: the torch thread count of "
                f"{'skbig' if not skbig else 'the peer'} was not recorded, so the ratio cannot be trusted; "
                "measure both sides with benchmarks._common.measure/interleaved"
            )
        if len(set(skbig) | set(peer)) > 1:
            raise ThreadCountMismatch(
                f"benchmark {name!r}, metric {row.get('metric')!r}: skbig ran with {skbig} torch threads "
                f"and the peer ({row.get('peer_name')}) with {peer}; refusing to compare them. Rerun with "
                "one fixed count for both, e.g. `python -m benchmarks run --threads 2`"
            )


@dataclass
class RunRecord:
    """What one benchmark left: its status, figures or error, and the machine it ran on."""

    benchmark: str
    suite: str
    status: str  # "ok", "not available", "failed" or "refused"
    wall_seconds: float
    machine: dict[str, Any]
    figures: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "suite": self.suite,
            "status": self.status,
            "error": self.error,
            "wall_seconds": self.wall_seconds,
            "machine": self.machine,
            "figures": self.figures,
        }


def run_one(bench: Benchmark, *, suite: str, data_dir: Path) -> RunRecord:
    """Run one benchmark and classify the outcome; never raises for the benchmark's own errors."""
    machine = machine_info()
    start = time.perf_counter()
    status, error, figures = "ok", None, {}
    try:
        figures = dict(_call(bench.load(), data_dir, suite == "quick"))
        check_threads(bench.name, figures)
    except ThreadCountMismatch as exc:
        status, error = "refused", str(exc)
    except _unavailable_errors() as exc:
        status, error = "not available", f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # one broken benchmark must not stop the suite
        status, error = "failed", f"{type(exc).__name__}: {exc}"
        figures = {"traceback": traceback.format_exc()}
    record = RunRecord(bench.name, suite, status, time.perf_counter() - start, machine, figures, error)
    record.machine["torch_threads_after"] = machine_info()["torch_threads"]
    return record


def run_suite(
    suite: str,
    *,
    data_dir: Path,
    out: Path | None = None,
    only: Sequence[str] | None = None,
    registry: Sequence[Benchmark] = BENCHMARKS,
    command: str = "",
) -> tuple[Path, list[RunRecord]]:
    """Run the chosen benchmarks in order, writing ``<name>.json`` after each and ``results.md`` at the end.

    Returns
    -------
    out : Path
        The folder the files were written to (default ``benchmarks/results/<timestamp>/``).
    records : list of RunRecord
        One per benchmark, in order.
    """
    chosen = select(suite, only, registry)
    out = Path(out) if out is not None else RESULTS / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    records: list[RunRecord] = []
    start = time.perf_counter()
    for bench in chosen:
        print(f"\n=== {bench.name} ({suite}) ===", flush=True)
        record = run_one(bench, suite=suite, data_dir=data_dir)
        records.append(record)
        (out / f"{bench.name}.json").write_text(json.dumps(record.as_json(), indent=2, default=str))
        suffix = f": {record.error}" if record.error else ""
        print(f"=== {bench.name}: {record.status} in {record.wall_seconds:.0f} s{suffix}", flush=True)
    total = time.perf_counter() - start
    (out / "results.md").write_text(
        markdown_table(records, suite=suite, total_seconds=total, command=command)
    )
    print(f"\nwrote {len(records)} result files and results.md to {out} ({total / 60:.1f} min)")
    if suite == "quick" and not only and total > QUICK_BUDGET_SECONDS:
        print(
            f"WARNING: the quick suite took {total / 60:.1f} min, "
            f"over its {QUICK_BUDGET_SECONDS // 60} min budget"
        )
    return out, records


# -- the Markdown table ---------------------------------------------------------------------------
def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    magnitude = abs(value)
    text = f"{value:,.0f}" if magnitude >= 100 else f"{value:.2f}" if magnitude >= 1 else f"{value:.4f}"
    return f"{text} {unit}".strip()


def _ratio(value: Any) -> str:
    return "—" if value is None else f"{value:.3f}"


def _target(row: Mapping[str, Any]) -> str:
    target = row.get("target")
    if not target:
        return "—"
    on = {"ratio": "skbig/peer", "skbig": "skbig", "difference": "skbig - peer"}[target["on"]]
    op = "≥" if target["op"] == ">=" else "≤"
    return f"{on} {op} {target['value']:g}"


def _met(row: Mapping[str, Any]) -> str:
    met = row.get("met")
    return "—" if met is None else "yes" if met else "**no**"


def markdown_table(
    records: Iterable[RunRecord], *, suite: str, total_seconds: float | None = None, command: str = ""
) -> str:
    """The summary every README "Performance" section quotes: one row per comparison."""
    records = list(records)
    machine = records[0].machine if records else machine_info()
    threads = sorted({int(r.machine["torch_threads"]) for r in records if r.machine.get("torch_threads")})
    lines = [f"# Benchmark results ({suite} suite)", ""]
    if command:
        lines += [f"Command: `{command}`", ""]
    lines += [
        f"- date: {machine.get('date')}; commit: {machine.get('git_commit')}",
        f"- CPU: {machine.get('cpu_model')}, {machine.get('cpu_count')} cores "
        f"({machine.get('usable_cores')} usable); torch threads: {', '.join(map(str, threads))}; "
        f"GPU: {machine.get('cuda') or 'none'}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in machine.get("versions", {}).items() if v),
        "- timings are medians of repeated runs; ratio = skbig / peer",
    ]
    if total_seconds is not None:
        lines.append(f"- wall time of the whole run: {total_seconds / 60:.1f} min")
    lines += [
        "",
        "| benchmark | metric | skbig | peer | ratio | target | met? |",
        "|---|---|---|---|---|---|---|",
    ]
    notes: list[str] = []
    for record in records:
        if record.status != "ok":
            reason = (record.error or "").replace("|", "\\|").splitlines()[0] if record.error else ""
            lines.append(f"| {record.benchmark} | — | {record.status}: {reason} | — | — | — | — |")
            continue
        rows = record.figures.get("comparisons", [])
        if not rows:
            lines.append(f"| {record.benchmark} | — | ran, no comparison reported | — | — | — | — |")
        for row in rows:
            unit = row.get("unit", "")
            notes.append(f"{len(notes) + 1}. {record.benchmark}, {row['metric']}: {row.get('compared', '')}")
            lines.append(
                f"| {record.benchmark} | {row['metric']} [{len(notes)}] | {_fmt(row['skbig'], unit)} | "
                f"{_fmt(row['peer'], unit)} ({row.get('peer_name', '')}) | {_ratio(row.get('ratio'))} | "
                f"{_target(row)} | {_met(row)} |"
            )
    if notes:
        lines += ["", "What was compared:", "", *notes]
    return "\n".join(lines) + "\n"


# -- comparing two runs ------------------------------------------------------------------------
def load_results(folder: Path) -> dict[str, dict[str, Any]]:
    """The per-benchmark JSON files of a result folder, by benchmark name.

    Raises
    ------
    FileNotFoundError
        If ``folder`` holds no result file.
    """
    folder = Path(folder)
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(data, dict) and "benchmark" in data and "machine" in data and "figures" in data:
            found[data["benchmark"]] = data
    if not found:
        raise FileNotFoundError(
            f"no benchmark result files in {str(folder)!r}; pass a folder written by "
            "`python -m benchmarks run` (it holds <benchmark>.json files and results.md)"
        )
    return found


def _threads_of(results: Mapping[str, Mapping[str, Any]]) -> set[int]:
    counts: set[int] = set()
    for data in results.values():
        machine = data["machine"]
        counts.update(
            machine[k] for k in ("torch_threads", "torch_threads_after") if machine.get(k) is not None
        )
        for row in data["figures"].get("comparisons", ()):
            counts.update(row.get("skbig_threads", ()))
            counts.update(row.get("peer_threads", ()))
    return counts


def compare_dirs(a: Path, b: Path) -> str:
    """A Markdown table of the skbig figures of two runs, side by side.

    Raises
    ------
    ThreadCountMismatch
        If the runs used different torch thread counts (or one run mixed several).
    FileNotFoundError
        If a folder holds no result file.
    """
    first, second = load_results(a), load_results(b)
    threads_a, threads_b = _threads_of(first), _threads_of(second)
    if threads_a != threads_b or len(threads_a) > 1:
        raise ThreadCountMismatch(
            f"refusing to compare {str(a)!r} (torch threads {sorted(threads_a)}) with {str(b)!r} "
            f"(torch threads {sorted(threads_b)}): timings at different thread counts are not comparable; "
            "rerun one of them with `python -m benchmarks run --threads N`"
        )
    lines = [
        f"Comparing A = {a} with B = {b} (torch threads {sorted(threads_a)})",
        "",
        "| benchmark | metric | skbig A | skbig B | B/A | ratio A | ratio B |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in sorted(set(first) & set(second)):
        rows_b = {row["metric"]: row for row in second[name]["figures"].get("comparisons", ())}
        for row_a in first[name]["figures"].get("comparisons", ()):
            row_b = rows_b.get(row_a["metric"])
            if row_b is None:
                continue
            change = row_b["skbig"] / row_a["skbig"] if row_a["skbig"] else None
            unit = row_a.get("unit", "")
            lines.append(
                f"| {name} | {row_a['metric']} | {_fmt(row_a['skbig'], unit)} | "
                f"{_fmt(row_b['skbig'], unit)} | "
                f"{_ratio(change)} | {_ratio(row_a.get('ratio'))} | {_ratio(row_b.get('ratio'))} |"
            )
    only = sorted(set(first) ^ set(second))
    if only:
        lines += ["", f"In one run only: {', '.join(only)}"]
    return "\n".join(lines) + "\n"
