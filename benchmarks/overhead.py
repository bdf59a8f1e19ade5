"""Engine overhead: TextClassifier.fit vs a plain PyTorch loop vs skorch, same module.

All three train the ``fasttext`` backend's ``FastTextModule`` on the SMS spam
training split with the same features, batch size, epochs, optimizer (AdamW)
and learning rate, no validation split and no gradient clipping, so the only
difference is the loop around the module.  Each contender is timed end to end
including the same feature extraction (vocabulary + encoding), 5 runs each
(3 in the quick mode), interleaved; medians and ratios are printed.

Run: ``.venv/bin/python benchmarks/overhead.py [--quick] [--runs N] [--epochs N]``,
or through ``python -m benchmarks run``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd
import torch
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from benchmarks._common import REPEATS, comparison, data_dir, interleaved, write_result
from skbig import TextClassifier
from skbig.backends.base import TaskSpec
from skbig.backends.fasttext import FastTextBackend

BATCH_SIZE = 16
LR = 5e-3
QUICK_TEXTS = 1000
TARGET_VS_PLAIN = 1.05
TARGET_VS_SKORCH = 0.80


def load(data_dir: Path) -> tuple[list[str], list[int]]:
    """The SMS training split (stratified 80/20, random_state=0), labels as 0/1."""
    df = pd.read_csv(Path(data_dir) / "sms_spam" / "sms_spam.csv")
    X, _, y, _ = train_test_split(
        df.text.tolist(),
        (df.label == "spam").astype(int).tolist(),
        test_size=0.2,
        stratify=df.label,
        random_state=0,
    )
    return X, y


def features(X: list[str], y: list[int]) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """The fasttext backend's own preprocessing and module, outside of skbig's engine."""
    backend = FastTextBackend()
    backend.fit_preprocessing(X)
    data = backend.make_data(X, y)
    torch.manual_seed(0)
    module = backend.build_module(TaskSpec("text-classification", 2))
    return module, data.tensors["x"], data.tensors["y"]


def run_skbig(X: list[str], y: list[int], epochs: int) -> None:
    TextClassifier(
        max_epochs=epochs,
        batch_size=BATCH_SIZE,
        lr=LR,
        validation_fraction=0.0,
        early_stopping=False,
        grad_clip=None,
        random_state=0,
    ).fit(X, y)


def run_plain(X: list[str], y: list[int], epochs: int) -> None:
    module, x_ids, targets = features(X, y)
    loader = DataLoader(TensorDataset(x_ids, targets), batch_size=BATCH_SIZE, shuffle=True)
    optimizer = torch.optim.AdamW(module.parameters(), lr=LR, weight_decay=0.0)
    loss_fn = nn.CrossEntropyLoss()
    module.train()
    for _ in range(epochs):
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = loss_fn(module(xb), yb)
            loss.backward()
            optimizer.step()


def run_skorch(X: list[str], y: list[int], epochs: int) -> None:
    from skorch import NeuralNetClassifier

    module, x_ids, targets = features(X, y)
    NeuralNetClassifier(
        module,
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.AdamW,
        optimizer__weight_decay=0.0,
        lr=LR,
        batch_size=BATCH_SIZE,
        max_epochs=epochs,
        train_split=None,
        iterator_train__shuffle=True,
        verbose=0,
    ).fit(x_ids, targets)


def run(
    data_dir: Path, *, quick: bool = False, epochs: int | None = None, runs: int | None = None
) -> dict[str, Any]:
    """Time the three loops, interleaved; return the medians and the two ratios with their targets.

    The quick mode trains on a stratified 1,000-text subset for 2 epochs, 3
    runs each; the full mode on the whole training split for 3 epochs, 5 runs.
    """
    X, y = load(data_dir)
    if quick:
        X, _, y, _ = train_test_split(X, y, train_size=QUICK_TEXTS, stratify=y, random_state=0)
    epochs = epochs if epochs is not None else (2 if quick else 3)
    runs = runs if runs is not None else REPEATS[quick]
    contenders = {"skbig": run_skbig, "plain": run_plain, "skorch": run_skorch}
    print(
        f"{len(X)} texts, batch {BATCH_SIZE}, {epochs} epochs, {runs} interleaved runs each, "
        f"{torch.get_num_threads()} torch threads"
    )
    times = interleaved(
        {name: (lambda fn=fn: fn(X, y, epochs)) for name, fn in contenders.items()}, runs, label="fit "
    )
    compared = (
        f"fasttext FastTextModule on {len(X)} SMS training texts, same features, batch {BATCH_SIZE}, "
        f"{epochs} epochs, AdamW lr {LR}, no validation, no clipping; fit wall time incl. feature "
        f"extraction, median of {runs} interleaved runs"
    )
    return {
        "texts": len(X),
        "epochs": epochs,
        "batch_size": BATCH_SIZE,
        "runs": {name: samples.values for name, samples in times.items()},
        "comparisons": [
            comparison(
                "fit time vs plain loop",
                skbig=times["skbig"],
                peer=times["plain"],
                peer_name="plain PyTorch loop",
                compared=compared,
                unit="s",
                target=("ratio", "<=", TARGET_VS_PLAIN),
            ),
            comparison(
                "fit time vs skorch",
                skbig=times["skbig"],
                peer=times["skorch"],
                peer_name="skorch NeuralNetClassifier",
                compared=compared,
                unit="s",
                target=("ratio", "<=", TARGET_VS_SKORCH),
            ),
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=None, help="interleaved runs (default 5, quick 3)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per fit (default 3, quick 2)")
    parser.add_argument("--quick", action="store_true", help="1,000 texts, 2 epochs, 3 runs")
    args = parser.parse_args()
    figures = run(data_dir(), quick=args.quick, epochs=args.epochs, runs=args.runs)
    for row in figures["comparisons"]:
        print(f"{row['metric']:24s} skbig/peer = {row['ratio']:.3f}   met: {row['met']}")
    write_result("overhead", figures)


if __name__ == "__main__":
    main()
