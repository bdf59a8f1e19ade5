"""Shared helpers for the benchmark scripts: data location, timing, result files."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"


def data_dir() -> Path:
    """``$SKBIG_DATA_DIR`` or ``../shared/data`` next to the repository."""
    path = Path(os.environ.get("SKBIG_DATA_DIR", REPO.parent / "shared" / "data"))
    if not path.is_dir():
        sys.exit(f"benchmark data not found at {path}; set SKBIG_DATA_DIR to the shared data folder")
    return path


def machine_info() -> dict[str, Any]:
    import torch

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def median(values: list[float]) -> float:
    return float(statistics.median(values))


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
