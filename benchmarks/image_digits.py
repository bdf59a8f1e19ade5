"""Digits: default ImageClassifier(image_shape=(8, 8)) vs sklearn's SVC, same split.

Run: ``.venv/bin/python benchmarks/image_digits.py [--seeds 1]``.
Split: ``load_digits``, stratified 75/25, random_state=0 (1,347 train / 450 test).
The classifier uses every default (``cnn`` backend, its training defaults,
early stopping on a 10% validation split); ``--seeds N`` repeats it with
random_state 0..N-1 and prints each accuracy, so one lucky seed cannot pass
for the typical result.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sklearn.datasets import load_digits
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.svm import SVC

from benchmarks._common import timed, write_result
from skbig import ImageClassifier

TARGET = 0.98


def main(seeds: int = 1) -> dict[str, object]:
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    print(f"digits: {len(X_train)} train / {len(X_test)} test, 8x8 grayscale\n")
    print(f"{'model':45s} {'accuracy':>9s} {'fit s':>7s}")
    figures: dict[str, object] = {}

    skbig_acc, skbig_fit = [], []
    for seed in range(seeds):
        model = ImageClassifier(image_shape=(8, 8), random_state=seed)
        seconds, _ = timed(lambda m=model: m.fit(X_train, y_train))
        acc = accuracy_score(y_test, model.predict(X_test))
        skbig_acc.append(acc)
        skbig_fit.append(seconds)
        print(
            f"{f'skbig ImageClassifier [cnn] random_state={seed}':45s} {acc:9.4f} {seconds:7.1f}"
            f"   ({len(model.history_)} epochs, best {model.best_epoch_})"
        )

    svc = SVC()
    seconds, _ = timed(lambda: svc.fit(X_train, y_train))
    svc_acc = accuracy_score(y_test, svc.predict(X_test))
    print(f"{'sklearn SVC() (RBF, defaults)':45s} {svc_acc:9.4f} {seconds:7.2f}")

    figures.update(
        {
            "skbig_accuracy": skbig_acc[0],
            "skbig_accuracy_per_seed": skbig_acc,
            "skbig_accuracy_mean": statistics.mean(skbig_acc),
            "skbig_fit_seconds": skbig_fit[0],
            "skbig_fit_seconds_per_seed": skbig_fit,
            "svc_accuracy": svc_acc,
            "svc_fit_seconds": seconds,
        }
    )
    met = min(skbig_acc) >= TARGET
    print(
        f"\ntarget accuracy >= {TARGET} with default settings: {'met' if met else 'NOT met'}"
        + (f" (min over {seeds} seeds {min(skbig_acc):.4f})" if seeds > 1 else "")
    )
    write_result("image_digits", figures)
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=1, help="fits with random_state 0..N-1")
    main(parser.parse_args().seeds)
