"""Predict throughput: ``predict_proba`` against a plain ``torch.inference_mode`` loop over ``module_``.

Two in-memory sets, each scored by one fitted estimator:

- text: the SMS spam messages (all 5,574; twice over in the full mode)
  scored by a ``TextClassifier`` (``fasttext``) fitted on the training split;
- images: the 1,797 sklearn digits as ``(n, 8, 8, 1)`` float arrays (twice
  over; four times in the full mode) scored by an ``ImageClassifier``
  (``cnn``).

Both contenders start from the same raw inputs, run the backend's own
preprocessing (``make_data``: tokenising, or wrapping the pixel array) and
the same trained ``estimator.module_`` in batches of the size skbig predicts
with (``4 * batch_size_``), and return probabilities.  The plain loop slices
the tensors itself (cutting each text batch to its longest text, as skbig
does) and applies a softmax; skbig adds its input validation, its batching
and a float64 log-softmax.  The outputs are checked to agree.  Samples per
second are medians of interleaved runs after one unrecorded warm-up round.
When skbig comes out below the target, the result also holds a cProfile
summary of one ``predict_proba`` call, so it says where the time went.

Run: ``.venv/bin/python benchmarks/predict_throughput.py [--quick]``, or through
``python -m benchmarks run``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch

from benchmarks._common import REPEATS, comparison, interleaved

TARGET = 0.95
QUICK_FIT_ROWS = 1000


def plain_text_proba(estimator: Any, X: list[str]) -> np.ndarray:
    """What a user would write around the fitted fasttext module: encode, slice, forward, softmax."""
    backend, module = estimator._backend, estimator.module_.eval()
    tensors = backend.make_data(X).tensors
    ids, lengths = tensors["x"], tensors["lengths"]
    batch_size = estimator.batch_size_ * 4
    out = []
    with torch.inference_mode():
        for start in range(0, len(ids), batch_size):
            longest = max(int(lengths[start : start + batch_size].max()), 1)
            logits = module(ids[start : start + batch_size, :longest])
            out.append(torch.softmax(logits, dim=1))
    return torch.cat(out).numpy()


def plain_image_proba(estimator: Any, X: np.ndarray) -> np.ndarray:
    """The same for the cnn module: the backend's resize + normalisation, forward, softmax."""
    backend, module = estimator._backend, estimator.module_.eval()
    pixels = backend.make_data(X).tensors["pixels"]
    batch_size = estimator.batch_size_ * 4
    out = []
    with torch.inference_mode():
        for start in range(0, len(pixels), batch_size):
            x = backend.prepare_pixels(pixels[start : start + batch_size])
            out.append(torch.softmax(module(x), dim=1))
    return torch.cat(out).numpy()


def _throughput(fn: Callable[[], Any], n: int) -> Callable[[], float]:
    def timed_call() -> float:
        import time

        start = time.perf_counter()
        fn()
        return n / (time.perf_counter() - start)

    return timed_call


def profile_call(fn: Callable[[], Any], top: int = 12) -> list[dict[str, Any]]:
    """The functions where one call of ``fn`` spends its own time (cProfile, by total time)."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.runcall(fn)
    stats = pstats.Stats(profiler)
    rows = []
    for (filename, line, name), (_, calls, tottime, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append(
            {
                "function": f"{Path(filename).name}:{line}({name})",
                "calls": calls,
                "tottime": tottime,
                "cumtime": cumtime,
            }
        )
    rows.sort(key=lambda r: r["tottime"], reverse=True)
    return rows[:top]


def _one(
    name: str, estimator: Any, X: Any, plain: Callable[[Any, Any], np.ndarray], repeats: int, what: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    skbig_proba = estimator.predict_proba(X)
    plain_proba = plain(estimator, X)
    if not np.allclose(skbig_proba, plain_proba, atol=1e-5):
        raise RuntimeError(
            f"{name}: the plain loop's probabilities differ from predict_proba "
            f"(max difference {np.abs(skbig_proba - plain_proba).max():.2e}); the comparison would be unfair"
        )
    n = len(X)
    samples = interleaved(
        {
            "skbig predict_proba": _throughput(lambda: estimator.predict_proba(X), n),
            "plain inference_mode": _throughput(lambda: plain(estimator, X), n),
        },
        repeats,
        warmup=1,
        label=f"{name} ",
    )
    skbig, peer = samples["skbig predict_proba"], samples["plain inference_mode"]
    row = comparison(
        f"{name} predict samples/s",
        skbig=skbig,
        peer=peer,
        peer_name="plain torch.inference_mode loop",
        compared=f"{what}; {n} samples in memory, batch {estimator.batch_size_ * 4}, the same module_ and "
        f"preprocessing, median of {repeats} interleaved runs",
        unit="/s",
        target=("ratio", ">=", TARGET),
    )
    details: dict[str, Any] = {"samples": n, "batch_size": estimator.batch_size_ * 4}
    if row["met"] is False:
        details["profile_skbig"] = profile_call(lambda: estimator.predict_proba(X))
        details["profile_plain"] = profile_call(lambda: plain(estimator, X))
    print(
        f"{name}: skbig {skbig.value:,.0f}/s, plain {peer.value:,.0f}/s, ratio {row['ratio']:.3f}", flush=True
    )
    return row, details


def run(data_dir: Path, *, quick: bool = False) -> dict[str, Any]:
    """Fit a small text and image classifier, then time predict_proba against the plain loop."""
    import pandas as pd
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from skbig import ImageClassifier, TextClassifier

    repeats = REPEATS[quick]
    df = pd.read_csv(Path(data_dir) / "sms_spam" / "sms_spam.csv")
    texts, labels = df.text.tolist(), df.label.tolist()
    X_fit, _, y_fit, _ = train_test_split(
        texts, labels, train_size=QUICK_FIT_ROWS if quick else 0.8, stratify=labels, random_state=0
    )
    text_model = TextClassifier(max_epochs=1 if quick else 2, random_state=0).fit(X_fit, y_fit)
    text_set = texts * (1 if quick else 2)

    digits, digit_labels = load_digits(return_X_y=True)
    images = (digits / 16.0).astype(np.float32).reshape(-1, 8, 8, 1)
    image_model = ImageClassifier(max_epochs=1 if quick else 2, random_state=0).fit(images, digit_labels)
    image_set = np.concatenate([images] * (2 if quick else 4))

    text_row, text_details = _one(
        "text",
        text_model,
        text_set,
        plain_text_proba,
        repeats,
        f"SMS messages, TextClassifier(backend='fasttext') fitted on {len(X_fit)} rows",
    )
    image_row, image_details = _one(
        "image",
        image_model,
        image_set,
        plain_image_proba,
        repeats,
        "sklearn digits 8x8, ImageClassifier (cnn)",
    )
    return {"text": text_details, "image": image_details, "comparisons": [text_row, image_row]}


if __name__ == "__main__":
    from benchmarks._common import data_dir, write_result

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sets, 3 runs")
    write_result("predict_throughput", run(data_dir(), quick=parser.parse_args().quick))
