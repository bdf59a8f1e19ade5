"""``python -m benchmarks``: run the suites, list the benchmarks, compare two runs.

Examples (from the repository root)::

    python -m benchmarks run --suite quick                      # < 15 min on a 2-core CPU
    python -m benchmarks run --suite full --data-dir ../shared/data
    python -m benchmarks run --suite quick --only predict_throughput minilm_throughput
    python -m benchmarks compare benchmarks/results/A benchmarks/results/B
    python -m benchmarks list
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

# A benchmark never downloads: weights come from installed packages or the local cache.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def build_parser() -> argparse.ArgumentParser:
    from benchmarks._common import default_data_dir

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run a suite; write <benchmark>.json files and results.md")
    run.add_argument("--suite", choices=("quick", "full"), required=True, help="quick: < 15 min; full: ~1 h")
    run.add_argument(
        "--data-dir",
        type=Path,
        default=default_data_dir(),
        help="the shared data folder (default: $SKBIG_DATA_DIR or ../shared/data)",
    )
    run.add_argument(
        "--out", type=Path, default=None, help="result folder (default: benchmarks/results/<timestamp>)"
    )
    run.add_argument("--only", nargs="+", metavar="NAME", help="run only these benchmarks (see `list`)")
    run.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch.set_num_threads for the whole run (default: torch's choice); runs are only "
        "comparable at equal thread counts",
    )

    compare = commands.add_parser("compare", help="compare the skbig figures of two result folders")
    compare.add_argument("a", type=Path, help="first result folder")
    compare.add_argument("b", type=Path, help="second result folder")

    commands.add_parser("list", help="list the benchmarks and their suites")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 1 a benchmark failed or was refused, 2 bad usage)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from benchmarks import runner

    if args.command == "list":
        for bench in runner.BENCHMARKS:
            print(f"{bench.name:20s} {'/'.join(bench.suites):11s} {bench.description}")
        return 0
    if args.command == "compare":
        try:
            print(runner.compare_dirs(args.a, args.b))
        except (runner.ThreadCountMismatch, FileNotFoundError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return 0

    if args.threads is not None:
        if args.threads < 1:
            parser.error(f"--threads must be >= 1, got --threads {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    try:
        runner.select(args.suite, args.only)
    except ValueError as exc:
        parser.error(str(exc))
    if not args.data_dir.is_dir():
        print(
            f"warning: data folder {args.data_dir} not found; benchmarks that need it will fail "
            "(pass --data-dir ../shared/data or set SKBIG_DATA_DIR)",
            file=sys.stderr,
        )
    command = "python -m benchmarks " + shlex.join(list(argv) if argv is not None else sys.argv[1:])
    _, records = runner.run_suite(
        args.suite, data_dir=args.data_dir, out=args.out, only=args.only, command=command
    )
    bad = [r for r in records if r.status in ("failed", "refused")]
    for record in bad:
        print(f"{record.benchmark}: {record.status}: {record.error}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
