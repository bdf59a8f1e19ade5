"""The demo behind ``make demo`` and ``skbig demo``: the main job on bundled data."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

__all__ = ["run_demo"]

NEW_MESSAGES = [
    "URGENT! You have won a 1 week FREE membership in our £100,000 prize Jackpot! Txt WIN to 80086",
    "Are we still on for dinner tonight? I'll bring the wine",
    "Congratulations, you've been selected for a free cruise. Call 0800 123 456 now to claim",
    "Sorry, I'll call you later, in a meeting",
]


def run_demo(model_path: str | None = None, *, verbose: bool = True) -> dict[str, float]:
    """Fit a TextClassifier on the bundled SMS sample; print and return the figures."""
    import numpy as np
    from sklearn.metrics import accuracy_score, classification_report, f1_score
    from sklearn.model_selection import train_test_split

    import skbig
    from skbig.datasets import load_sms_spam_sample

    texts, labels = load_sms_spam_sample()
    X_train, X_test, y_train, y_test = train_test_split(
        texts, labels, test_size=0.2, stratify=labels, random_state=0
    )
    print(f"SMS Spam Collection sample: {len(X_train)} train / {len(X_test)} test messages")
    start = time.perf_counter()
    clf = skbig.TextClassifier(random_state=0, verbose=int(verbose)).fit(X_train, y_train)
    fit_seconds = time.perf_counter() - start
    predicted = clf.predict(X_test)
    accuracy = accuracy_score(y_test, predicted)
    spam_f1 = f1_score(y_test, predicted, pos_label="spam")
    epochs = f"epochs={len(clf.history_)} (best {clf.best_epoch_})"
    print(f"\nbackend={clf.backend_}  {epochs}  fit {fit_seconds:.1f}s")
    print(f"accuracy {accuracy:.4f}   spam F1 {spam_f1:.4f}\n")
    print(classification_report(y_test, predicted, digits=4))
    for text, label, proba in zip(NEW_MESSAGES, clf.predict(NEW_MESSAGES), clf.predict_proba(NEW_MESSAGES)):
        print(f"  {label:>4}  p(spam)={proba[list(clf.classes_).index('spam')]:.3f}  {text[:70]}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(model_path) if model_path else Path(tmp) / "sms.skbig"
        clf.save(path)
        reloaded = skbig.load(path)
        same = bool(np.array_equal(reloaded.predict(X_test), predicted))
        print(
            f"\nsaved to {path} ({path.stat().st_size / 1e6:.1f} MB); reloaded predictions identical: {same}"
        )
    if not same:
        raise RuntimeError("reloaded model predicts differently; please report this bug")
    return {"accuracy": accuracy, "spam_f1": spam_f1, "fit_seconds": fit_seconds}
