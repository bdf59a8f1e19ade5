"""SMS spam: default TextClassifier vs TF-IDF + LogisticRegression, same split.

Run: ``.venv/bin/python benchmarks/text_sms.py [--quick]`` (data from ../shared/data/sms_spam),
or through ``python -m benchmarks run``.
Split: stratified 80/20, random_state=0 (4,459 train / 1,115 test).  The
quick mode trains on a stratified 600-row subset of the training split (same
test split), so its accuracy is below the full figure and carries no target.
Both models are fitted once per repeat (random_state 0, 1, ...): accuracy,
spam F1 and fit time are medians over the repeats.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import REPEATS, Samples, comparison, measure

QUICK_TRAIN_ROWS = 600
TARGET_ACCURACY = 0.985
TARGET_SPAM_F1 = 0.94


def load(data_dir: Path, *, quick: bool) -> tuple[list[str], list[str], list[str], list[str]]:
    """``X_train, y_train, X_test, y_test``; the quick mode keeps a stratified subset of the training rows."""
    import pandas as pd
    from sklearn.model_selection import train_test_split

    df = pd.read_csv(Path(data_dir) / "sms_spam" / "sms_spam.csv")
    X_train, X_test, y_train, y_test = train_test_split(
        df.text.tolist(), df.label.tolist(), test_size=0.2, stratify=df.label, random_state=0
    )
    if quick:
        X_train, _, y_train, _ = train_test_split(
            X_train, y_train, train_size=QUICK_TRAIN_ROWS, stratify=y_train, random_state=0
        )
    return list(X_train), list(y_train), list(X_test), list(y_test)


def run(data_dir: Path, *, quick: bool = False) -> dict[str, Any]:
    """Fit both models ``REPEATS[quick]`` times; return accuracy, spam F1 and fit-time comparisons."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.pipeline import make_pipeline

    from skbig import TextClassifier

    X_train, y_train, X_test, y_test = load(data_dir, quick=quick)
    repeats = REPEATS[quick]
    print(f"SMS spam: {len(X_train)} train / {len(X_test)} test, {repeats} repeats\n")
    print(f"{'model':40s} {'accuracy':>9s} {'spam F1':>8s} {'fit s':>7s}")
    figures: dict[str, Any] = {"train_rows": len(X_train), "test_rows": len(X_test), "repeats": repeats}
    sides = {"skbig": "skbig TextClassifier() [fasttext]", "tfidf": "TF-IDF + LogisticRegression(balanced)"}
    fit = {key: Samples() for key in sides}
    acc = {key: Samples() for key in sides}
    f1 = {key: Samples() for key in sides}
    for seed in range(repeats):
        models = {
            "skbig": TextClassifier(random_state=seed),
            "tfidf": make_pipeline(
                TfidfVectorizer(), LogisticRegression(class_weight="balanced", max_iter=1000)
            ),
        }
        for key, model in models.items():

            def fit_model(model: Any = model) -> None:
                model.fit(X_train, y_train)

            measure(fit_model, fit[key])
            threads = fit[key].threads[-1]
            predicted = model.predict(X_test)
            acc[key].add(accuracy_score(y_test, predicted), threads)
            f1[key].add(f1_score(y_test, predicted, pos_label="spam"), threads)
            print(
                f"{sides[key] + f' seed {seed}':40s} {acc[key].values[-1]:9.4f} {f1[key].values[-1]:8.4f} "
                f"{fit[key].values[-1]:7.1f}",
                flush=True,
            )
    split = f"SMS spam, stratified 80/20 split (random_state=0), {len(X_train)} training rows"
    compared = f"{split}; median of {repeats} fits (random_state 0..{repeats - 1})"
    figures["comparisons"] = [
        comparison(
            "test accuracy",
            skbig=acc["skbig"],
            peer=acc["tfidf"],
            peer_name="TF-IDF + LogisticRegression",
            compared=compared,
            target=None if quick else ("skbig", ">=", TARGET_ACCURACY),
        ),
        comparison(
            "spam F1",
            skbig=f1["skbig"],
            peer=f1["tfidf"],
            peer_name="TF-IDF + LogisticRegression",
            compared=compared,
            target=None if quick else ("skbig", ">=", TARGET_SPAM_F1),
        ),
        comparison(
            "fit time",
            skbig=fit["skbig"],
            peer=fit["tfidf"],
            peer_name="TF-IDF + LogisticRegression",
            compared=compared,
            unit="s",
        ),
    ]
    return figures


def _print_summary(figures: dict[str, Any]) -> None:
    for row in figures["comparisons"]:
        print(
            f"{row['metric']:14s} skbig {row['skbig']:.4g}  {row['peer_name']} {row['peer']:.4g}  "
            f"met: {row['met']}"
        )


if __name__ == "__main__":
    from benchmarks._common import data_dir, write_result

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="600 training rows, 3 repeats")
    result = run(data_dir(), quick=parser.parse_args().quick)
    _print_summary(result)
    write_result("text_sms", result)
