"""Transfer learning from pretrained weights: every figure of the transfer issue in one run.

Run from the repository root (offline; the weights come from installed packages)::

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/transfer.py [--parts text,image,speech] [--repeats 3]

Parts (each also runs alone, ``python -m benchmarks._transfer_<part>``):

- ``image``: hymenoptera train/ -> val/; ``ImageClassifier(backend="efficientnet_lite0")``
  fine-tuned against frozen EfficientNet-Lite0 features + LogisticRegression and
  the scratch ``resnet`` backend (targets: accuracy >= 0.95 and >= the frozen peer,
  fit <= 5 min);
- ``text``: SST-2, stratified 4,000-row subset of train.csv -> dev.csv;
  ``TextClassifier(backend="minilm")`` against TF-IDF + LogisticRegression, frozen
  MiniLM embeddings + LogisticRegression and ``fasttext`` (targets: accuracy >=
  0.86, fit <= 15 min);
- ``speech``: FSDD with speaker ``theo`` held out and the LJSpeech subset;
  ``SpeechRecognizer(backend="whisper_tiny_en")`` fine-tuned against the same
  estimator with ``max_epochs=0`` (zero-shot), faster-whisper zero-shot and the
  scratch ``ctc`` backend (targets: FSDD WER <= 0.05; LJSpeech fine-tuned no worse
  than zero-shot).

One JSON file with every figure is written to ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a benchmark never downloads
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import data_dir, write_result

PARTS = {
    "image": "benchmarks._transfer_image",
    "text": "benchmarks._transfer_text",
    "speech": "benchmarks._transfer_speech",
}


#: Parts whose fine-tuned model ``--repeats`` refits with more seeds (speech's WER is 0 already).
REPEATABLE = ("image", "text")


def run(parts: list[str], root: Path, *, quick: bool = False, repeats: int = 1) -> dict[str, Any]:
    """Run the chosen parts in order; a part that fails is recorded with its error, the rest go on."""
    figures: dict[str, Any] = {"quick": quick, "repeats": repeats}
    for part in parts:
        print(f"\n=== transfer: {part} ===", flush=True)
        start = time.perf_counter()
        try:
            module = importlib.import_module(PARTS[part])
            extra = {"repeats": repeats} if part in REPEATABLE else {}
            figures[part] = module.run(root, quick=quick, **extra)
        except Exception as exc:
            figures[part] = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"{part}: FAILED: {type(exc).__name__}: {exc}", flush=True)
        figures[f"{part}_wall_seconds"] = time.perf_counter() - start
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="image,text,speech", help="comma-separated: image,text,speech")
    parser.add_argument("--quick", action="store_true", help="smaller subsets, for a smoke run")
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="also refit the fine-tuned image and text models with seeds 1..N-1 and print the median "
        "(the targets are judged on seed 0, the issue's single run)",
    )
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {unknown}; choose from {sorted(PARTS)}")
    write_result("transfer", run(parts, data_dir(), quick=args.quick, repeats=args.repeats))


if __name__ == "__main__":
    main()
