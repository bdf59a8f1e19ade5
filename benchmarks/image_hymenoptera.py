"""Ants vs bees: the ``resnet`` backend (ResNet-18, from scratch) on hymenoptera train -> val.

Run: ``.venv/bin/python benchmarks/image_hymenoptera.py [--max-epochs N]``
(data from ``../shared/data/hymenoptera``: 244 train / 153 val photos).

No pretrained weights: this is the scratch baseline that a pretrained
backbone plugin should beat by a wide margin.  Every setting is the
backend's default (128x128 input, AdamW lr 1e-3, batch 32, at most 30
epochs with early stopping on a 10% validation split, crop + flip
augmentation) unless ``--max-epochs`` caps the epochs to fit a time budget.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sklearn.metrics import accuracy_score

from benchmarks._common import data_dir, timed, write_result
from skbig import ImageClassifier


def load_split(split: str) -> tuple[list[str], list[str]]:
    root = data_dir() / "hymenoptera" / split
    files = sorted(p for p in root.glob("*/*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    return [str(p) for p in files], [p.parent.name for p in files]


def main(max_epochs: int | None = None, num_workers: int = 1) -> dict[str, object]:
    X_train, y_train = load_split("train")
    X_val, y_val = load_split("val")
    print(f"hymenoptera: {len(X_train)} train / {len(X_val)} val photos\n")
    model = ImageClassifier(backend="resnet", max_epochs=max_epochs, num_workers=num_workers, random_state=0)
    seconds, _ = timed(lambda: model.fit(X_train, y_train))
    predict_seconds, predicted = timed(lambda: model.predict(X_val))
    acc = accuracy_score(y_val, predicted)
    majority = max(y_val.count(c) for c in set(y_val)) / len(y_val)
    print(f"{'model':44s} {'val acc':>8s} {'fit s':>7s}")
    print(f"{'skbig ImageClassifier(backend=resnet)':44s} {acc:8.4f} {seconds:7.1f}")
    print(f"{'majority class':44s} {majority:8.4f}")
    print(
        f"\n{len(model.history_)} epochs (best {model.best_epoch_}), input "
        f"{model._backend.input_size}, predict {predict_seconds:.1f} s"
    )
    figures = {
        "val_accuracy": acc,
        "fit_seconds": seconds,
        "predict_seconds": predict_seconds,
        "epochs": len(model.history_),
        "best_epoch": model.best_epoch_,
        "max_epochs": max_epochs,
        "num_workers": num_workers,
        "majority_accuracy": majority,
        "history": model.history_,
    }
    write_result("image_hymenoptera", figures)
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-epochs", type=int, default=None, help="cap on epochs (default: backend's)")
    parser.add_argument("--num-workers", type=int, default=1, help="DataLoader decoding processes")
    args = parser.parse_args()
    main(args.max_epochs, args.num_workers)
