"""Ants vs bees: the ``resnet`` backend (ResNet-18, from scratch) on hymenoptera train -> val.

Run: ``.venv/bin/python benchmarks/image_hymenoptera.py [--max-epochs N]``
or ``python -m benchmarks run --suite full --only image_hymenoptera``
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
from typing import Any

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sklearn.metrics import accuracy_score

from benchmarks._common import Samples, comparison, measure, timed
from skbig import ImageClassifier

QUICK_MAX_EPOCHS = 3


def load_split(data_dir: Path, split: str) -> tuple[list[str], list[str]]:
    root = Path(data_dir) / "hymenoptera" / split
    files = sorted(p for p in root.glob("*/*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    return [str(p) for p in files], [p.parent.name for p in files]


def run(
    data_dir: Path, *, quick: bool = False, max_epochs: int | None = None, num_workers: int = 1
) -> dict[str, Any]:
    """One fit (17 min on a 2-core CPU with the defaults; ``quick`` caps it at 3 epochs).

    One fit, not a median: the figure is an accuracy against the majority
    class, and the fit time has no peer.
    """
    if quick and max_epochs is None:
        max_epochs = QUICK_MAX_EPOCHS
    X_train, y_train = load_split(data_dir, "train")
    X_val, y_val = load_split(data_dir, "val")
    print(f"hymenoptera: {len(X_train)} train / {len(X_val)} val photos\n")
    model = ImageClassifier(backend="resnet", max_epochs=max_epochs, num_workers=num_workers, random_state=0)

    def fit() -> None:
        model.fit(X_train, y_train)

    fit_samples = measure(fit)
    seconds = fit_samples.value
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
    threads = fit_samples.threads[0]
    figures["comparisons"] = [
        comparison(
            "val accuracy",
            skbig=Samples([acc], [threads]),
            peer=Samples([majority], [threads]),
            peer_name="majority class",
            compared=f"hymenoptera train/ -> val/, ResNet-18 from scratch, backend defaults"
            f"{f', max_epochs={max_epochs}' if max_epochs else ''}; one fit ({seconds:.0f} s)",
        )
    ]
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-epochs", type=int, default=None, help="cap on epochs (default: backend's)")
    parser.add_argument("--num-workers", type=int, default=1, help="DataLoader decoding processes")
    args = parser.parse_args()
    from benchmarks._common import data_dir, write_result

    write_result(
        "image_hymenoptera", run(data_dir(), max_epochs=args.max_epochs, num_workers=args.num_workers)
    )
