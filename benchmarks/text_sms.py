"""SMS spam: default TextClassifier vs TF-IDF + LogisticRegression, same split.

Run: ``.venv/bin/python benchmarks/text_sms.py`` (data from ../shared/data/sms_spam).
Split: stratified 80/20, random_state=0 (4,459 train / 1,115 test).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline

from benchmarks._common import data_dir, timed, write_result
from skbig import TextClassifier


def main() -> dict[str, float]:
    df = pd.read_csv(data_dir() / "sms_spam" / "sms_spam.csv")
    X_train, X_test, y_train, y_test = train_test_split(
        df.text.tolist(), df.label.tolist(), test_size=0.2, stratify=df.label, random_state=0
    )
    models = {
        "skbig TextClassifier() [fasttext]": TextClassifier(random_state=0),
        "TF-IDF + LogisticRegression(balanced)": make_pipeline(
            TfidfVectorizer(), LogisticRegression(class_weight="balanced", max_iter=1000)
        ),
    }
    figures: dict[str, float] = {}
    print(f"SMS spam: {len(X_train)} train / {len(X_test)} test\n")
    print(f"{'model':40s} {'accuracy':>9s} {'spam F1':>8s} {'fit s':>7s}")
    for name, model in models.items():
        seconds, _ = timed(lambda m=model: m.fit(X_train, y_train))
        predicted = model.predict(X_test)
        acc = accuracy_score(y_test, predicted)
        f1 = f1_score(y_test, predicted, pos_label="spam")
        print(f"{name:40s} {acc:9.4f} {f1:8.4f} {seconds:7.1f}")
        key = "skbig" if name.startswith("skbig") else "tfidf_logreg"
        figures.update({f"{key}_accuracy": acc, f"{key}_spam_f1": f1, f"{key}_fit_seconds": seconds})
    ok = figures["skbig_accuracy"] >= 0.985 and figures["skbig_spam_f1"] >= 0.94
    print(f"\ntarget accuracy >= 0.985 and spam F1 >= 0.94: {'met' if ok else 'NOT met'}")
    write_result("text_sms", figures)
    return figures


if __name__ == "__main__":
    main()
