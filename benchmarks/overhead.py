"""Engine overhead: TextClassifier.fit vs a plain PyTorch loop vs skorch, same module.

All three train the ``fasttext`` backend's ``FastTextModule`` on the SMS spam
training split with the same features, batch size, epochs, optimizer (AdamW)
and learning rate, no validation split and no gradient clipping, so the only
difference is the loop around the module.  Each contender is timed end to end
including the same feature extraction (vocabulary + encoding), 5 runs each,
interleaved; medians and ratios are printed.

Run: ``.venv/bin/python benchmarks/overhead.py [--runs 5] [--epochs 5]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd
import torch
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from benchmarks._common import data_dir, median, timed, write_result
from skbig import TextClassifier
from skbig.backends.base import TaskSpec
from skbig.backends.fasttext import FastTextBackend

BATCH_SIZE = 16
LR = 5e-3


def load() -> tuple[list[str], list[int]]:
    df = pd.read_csv(data_dir() / "sms_spam" / "sms_spam.csv")
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


def main() -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    X, y = load()
    contenders = {"skbig": run_skbig, "plain": run_plain, "skorch": run_skorch}
    times: dict[str, list[float]] = {name: [] for name in contenders}
    print(
        f"{len(X)} texts, batch {BATCH_SIZE}, {args.epochs} epochs, {args.runs} interleaved runs each, "
        f"{torch.get_num_threads()} torch threads"
    )
    for run in range(args.runs):
        for name, fn in contenders.items():
            seconds, _ = timed(lambda fn=fn: fn(X, y, args.epochs))
            times[name].append(seconds)
            print(f"  run {run + 1} {name:7s} {seconds:7.2f} s")
    medians = {name: median(values) for name, values in times.items()}
    ratios = {
        "skbig/plain": medians["skbig"] / medians["plain"],
        "skbig/skorch": medians["skbig"] / medians["skorch"],
    }
    print("\nmedian seconds: " + "  ".join(f"{k}={v:.2f}" for k, v in medians.items()))
    print(f"skbig/plain  = {ratios['skbig/plain']:.3f}   (target <= 1.05)")
    print(f"skbig/skorch = {ratios['skbig/skorch']:.3f}   (target <= 0.80)")
    figures = {
        "runs": times,
        "medians": medians,
        "ratios": ratios,
        "epochs": args.epochs,
        "batch_size": BATCH_SIZE,
    }
    write_result("overhead", figures)
    return {**medians, **ratios}


if __name__ == "__main__":
    main()
