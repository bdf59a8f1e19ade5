"""SST-2 transfer learning: fine-tuned MiniLM against three baselines, same data.

Data: ``<data_dir>/sst2``.  A stratified 4,000-row subset of ``train.csv``
(``random_state=0``) trains every model; ``dev.csv`` (872 sentences) scores
them.  Nothing is tuned on ``dev.csv``: the backend's default recipe was chosen on
:func:`held_out_sentences`, 1,000 full sentences of ``train.csv`` outside the
subset that share no phrase of three or more words with it (``train.csv``
also holds every sentence's sub-phrases, and the subset is mostly short
phrases, so held-out phrases overstate accuracy on whole sentences).

Timings depend on what else the machine runs: on a busy 2-core CPU, PyTorch
with 2 threads was 4-6 times slower than with 1 (``OMP_NUM_THREADS=1``), so
the figures record the thread count and the load average.

Models:

- ``TextClassifier(backend="minilm")`` (the backend's default recipe): all-MiniLM-L6-v2
  fine-tuned for 4 epochs at lr 5e-5, batch 16, with a cosine schedule and
  warm-up, the word embeddings frozen and every row used for training
  (target: accuracy >= 0.86, fit <= 15 min on a 2-core CPU);
- TF-IDF + LogisticRegression;
- frozen all-MiniLM-L6-v2 sentence embeddings (attention-masked mean,
  L2-normalised, as sentence-transformers computes them) + LogisticRegression;
- ``TextClassifier(backend="fasttext")``, the built-in scratch baseline.

Run ``python -m benchmarks._transfer_text`` from the repository root, or call
:func:`run` (``benchmarks/transfer.py`` does).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = [
    "TARGET_ACCURACY",
    "TARGET_FIT_SECONDS",
    "held_out_sentences",
    "load_sst2",
    "run",
]

TRAIN_ROWS = 4000
QUICK_ROWS = 1000
# The fine-tuning recipe is the backend's default (``training_defaults`` of
# ``skbig_transformers.HFEncoderBackend``): ``TextClassifier(backend="minilm")``
# runs it with nothing passed.  Starting from the backend's earlier defaults
# (lr 1e-4, batch 32, 4 epochs, weight decay 0.01, constant lr, 10% validation
# split), it was chosen on :func:`held_out_sentences` (accuracy there): cosine +
# 10% warm-up with a 10% validation split 0.839; all rows, no validation split
# 0.839; + frozen word embeddings 0.854; then + also layers 0-1 frozen 0.846;
# + probe head 0.848; 6 epochs 0.849; 3 epochs 0.848; layer-wise lr decay 0.8
# 0.847; lr 2e-4 0.838; CLS pooling 0.853; **lr 5e-5 with batch 16 0.860
# (kept)**; lr 3e-5 with batch 8 0.854; lr 5e-5, batch 16, 6 epochs 0.851.
# Later, not adopted: the head reading the L2-normalised pooled vector (scaled
# by sqrt(384), as sentence-transformers compares its embeddings) 0.858; the
# linear-probe head 0.856/0.853 (seeds 0/1) against 0.860/0.856; label
# smoothing 0.1 0.859/0.854; token cutoff (10% of the tokens dropped from the
# attention mask in training; Shen et al., 2020) 0.848/0.866; FGM adversarial
# training (Miyato et al., 2017; the word-embedding output perturbed along its
# gradient, norm 1.0 per batch; twice the fit time) 0.854/0.860.
TARGET_ACCURACY = 0.86
TARGET_FIT_SECONDS = 15 * 60


def load_sst2(data_dir: Path) -> tuple[list[str], list[int], list[str], list[int]]:
    """The stratified 4,000-row training subset and the whole dev set: ``X_train, y_train, X_dev, y_dev``."""
    import pandas as pd
    from sklearn.model_selection import train_test_split

    folder = Path(data_dir) / "sst2"
    if not (folder / "train.csv").is_file():
        raise FileNotFoundError(f"SST-2 not found at {folder}; pass the shared data folder (../shared/data)")
    train = pd.read_csv(folder / "train.csv")
    dev = pd.read_csv(folder / "dev.csv")
    X_train, _, y_train, _ = train_test_split(
        train.text.tolist(), train.label.tolist(), train_size=TRAIN_ROWS, stratify=train.label, random_state=0
    )
    return list(X_train), [int(v) for v in y_train], dev.text.tolist(), [int(v) for v in dev.label]


def held_out_sentences(data_dir: Path, n: int = 1000) -> tuple[list[str], list[int]]:
    """Sentences of ``train.csv`` to tune on instead of ``dev.csv``: ``texts, labels``.

    Rows of 12 or more words outside the training subset that contain no
    subset row of three or more words and are not part of a longer subset
    row: whole sentences, as in ``dev.csv``, whose phrases the model has not
    been trained on.  ``n`` of them, sampled with ``random_state=1``.
    """
    import pandas as pd

    X_train, _, _, _ = load_sst2(data_dir)
    train = pd.read_csv(Path(data_dir) / "sst2" / "train.csv")
    pieces = [t.strip() for t in X_train if len(t.split()) >= 3]
    longer = [t for t in X_train if len(t.split()) >= 12]
    rest = train[~train.text.isin(set(X_train)) & (train.text.str.split().str.len() >= 12)]
    keep = [
        not any(p in text for p in pieces) and not any(text in big for big in longer) for text in rest.text
    ]
    chosen = rest[keep].sample(n, random_state=1)
    return chosen.text.tolist(), [int(v) for v in chosen.label]


def _minilm_embeddings(texts: list[str], batch_size: int = 128) -> Any:
    """Frozen all-MiniLM-L6-v2 sentence embeddings: masked mean of the token vectors, L2-normalised."""
    import numpy as np
    import torch
    from skbig_transformers._modeling import load_encoder
    from skbig_transformers.backend import MiniLMBackend

    backend = MiniLMBackend()
    backend.fit_preprocessing(texts)
    assert backend.model_path is not None
    encoder: Any = load_encoder(backend.model_path, pretrained=True).eval()
    tokenizer = backend.tokenizer()
    order = np.argsort([len(t) for t in texts])  # similar lengths together: less padding
    out = np.zeros((len(texts), int(encoder.config.hidden_size)), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            index = order[start : start + batch_size]
            encoded = tokenizer(
                [texts[i] for i in index], truncation=True, max_length=128, padding=True, return_tensors="pt"
            )
            hidden = encoder(**encoded).last_hidden_state
            mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            out[index] = torch.nn.functional.normalize(pooled, dim=1).numpy()
    return out


def run(data_dir: Path, *, quick: bool = False, repeats: int = 1) -> dict[str, Any]:
    """Fit the four models on the SST-2 subset, print a table and return the figures.

    Parameters
    ----------
    data_dir : Path
        The shared data folder, holding ``sst2/train.csv`` and ``sst2/dev.csv``.
    quick : bool, default=False
        A smoke run: the first 1,000 rows of the subset and one MiniLM epoch;
        its figures are not the acceptance figures.
    repeats : int, default=1
        Above 1, the fine-tuned MiniLM is fitted again with ``random_state``
        1..repeats-1 and every seed's accuracy and their median are printed
        (the target is still judged on the seed-0 fit).

    Returns
    -------
    dict
        ``<model>_accuracy``, ``<model>_fit_seconds`` and ``<model>_predict_seconds``
        for ``minilm``, ``tfidf_logreg``, ``minilm_frozen_logreg`` and ``fasttext``;
        ``minilm_history`` (per-epoch records), ``targets_met``, the training
        and dev sizes, torch's thread count and the load average before and
        after (other processes on the machine slow every timing down).
    """
    import torch
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from benchmarks._common import fit_and_score, other_seeds
    from skbig import TextClassifier
    from skbig.backends.registry import get_backend

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a benchmark never downloads
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    X_train, y_train, X_dev, y_dev = load_sst2(data_dir)
    if quick:
        X_train, y_train = X_train[:QUICK_ROWS], y_train[:QUICK_ROWS]
    figures: dict[str, Any] = {
        "train_rows": len(X_train),
        "dev_rows": len(X_dev),
        "minilm_settings": dict(get_backend("minilm", "text-classification").training_defaults),
        "torch_threads": torch.get_num_threads(),
        "load_average_before": os.getloadavg()[0],
    }
    print(f"SST-2: {len(X_train)} training rows (stratified subset, random_state=0), {len(X_dev)} dev rows")

    def record(key: str, fit: Any, predict: Any) -> None:
        fit_and_score(figures, key, fit, predict, y_dev)

    tfidf = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=1000))
    record("tfidf_logreg", lambda: tfidf.fit(X_train, y_train), lambda: tfidf.predict(X_dev))

    frozen = LogisticRegression(max_iter=1000)
    embedded: dict[str, Any] = {}

    def fit_frozen() -> None:
        embedded["train"] = _minilm_embeddings(X_train)
        frozen.fit(embedded["train"], y_train)

    record("minilm_frozen_logreg", fit_frozen, lambda: frozen.predict(_minilm_embeddings(X_dev)))

    fasttext = TextClassifier(backend="fasttext", random_state=0)
    record("fasttext", lambda: fasttext.fit(X_train, y_train), lambda: fasttext.predict(X_dev))

    minilm = TextClassifier(backend="minilm", random_state=0, max_epochs=1 if quick else None)
    record("minilm", lambda: minilm.fit(X_train, y_train), lambda: minilm.predict(X_dev))
    figures["minilm_history"] = minilm.history_
    figures["minilm_best_epoch"] = minilm.best_epoch_
    if repeats > 1:
        epochs = 1 if quick else None
        other_seeds(
            figures,
            "minilm",
            lambda s: TextClassifier(backend="minilm", random_state=s, max_epochs=epochs),
            X_train,
            y_train,
            X_dev,
            y_dev,
            repeats,
        )
    figures["load_average_after"] = os.getloadavg()[0]
    figures["targets_met"] = not quick and bool(
        figures["minilm_accuracy"] >= TARGET_ACCURACY and figures["minilm_fit_seconds"] <= TARGET_FIT_SECONDS
    )

    print(f"\n{'model':46s} {'dev accuracy':>12s} {'fit s':>8s} {'predict s':>10s}")
    names = {
        "minilm": 'TextClassifier(backend="minilm")',
        "minilm_frozen_logreg": "frozen MiniLM embeddings + LogisticRegression",
        "tfidf_logreg": "TF-IDF + LogisticRegression",
        "fasttext": 'TextClassifier(backend="fasttext")',
    }
    for key, name in names.items():
        print(
            f"{name:46s} {figures[f'{key}_accuracy']:12.4f} {figures[f'{key}_fit_seconds']:8.1f} "
            f"{figures[f'{key}_predict_seconds']:10.1f}"
        )
    figures["comparisons"] = _comparisons(figures, figures["torch_threads"], len(X_train))
    verdict = "met" if figures["targets_met"] else "NOT met"
    print(
        f"\ntarget: minilm accuracy >= {TARGET_ACCURACY} and fit <= {TARGET_FIT_SECONDS / 60:.0f} min: "
        f"{verdict} (load average {figures['load_average_before']:.1f} before, "
        f"{figures['load_average_after']:.1f} after, on {os.cpu_count()} CPUs)"
    )
    return figures


def _comparisons(figures: dict[str, Any], threads: int, rows: int) -> list[dict[str, Any]]:
    """Rows for the benchmark runner's table: fine-tuned MiniLM against each peer."""
    from benchmarks._common import Samples, comparison

    peers = {
        "minilm_frozen_logreg": "frozen MiniLM embeddings + LogisticRegression",
        "tfidf_logreg": "TF-IDF + LogisticRegression",
        "fasttext": "fasttext backend",
    }
    return [
        comparison(
            "SST-2 dev accuracy",
            skbig=Samples([figures["minilm_accuracy"]], [threads]),
            peer=Samples([figures[f"{key}_accuracy"]], [threads]),
            peer_name=name,
            compared=f"SST-2, {rows} stratified train.csv rows -> dev.csv; one fit each",
            target=("skbig", ">=", TARGET_ACCURACY) if key == "minilm_frozen_logreg" else None,
        )
        for key, name in peers.items()
    ]


if __name__ == "__main__":
    from benchmarks._common import data_dir, write_result

    write_result("transfer_text", run(data_dir()))
