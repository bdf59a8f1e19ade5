"""bf16 fine-tuning on one CUDA GPU: samples/s and peak memory of the pretrained backends vs their peers.

For each pretrained backend (``minilm`` through ``TextClassifier``,
``efficientnet_lite0`` through ``ImageClassifier``, ``whisper_tiny_en`` through
``SpeechRecognizer``; a backend whose plugin is not installed is skipped with
a note) three contenders train on the same GPU, the same data and batch size:

- skbig: the estimator with ``device="cuda"``, ``precision="bf16"`` (bf16
  autocast, fp32 weights), AdamW, gradient clipping 1.0, no validation,
  ``freeze=None`` (every parameter trains, as in the peers);
- a plain PyTorch loop over a copy of the module skbig trained: the same
  backend data (``make_data``), ``torch.autocast(bfloat16)``, fused AdamW,
  clipping 1.0; the backend's loss function is the only skbig code in it;
- for ``minilm`` only, the transformers ``Trainer`` (``bf16=True``) on
  ``AutoModelForSequenceClassification`` from the same weights.

Every contender trains two epochs of ``--steps`` steps over the same samples
and is timed over the second (:mod:`benchmarks._clocks`; the clock
synchronises the GPU at each step, for all alike).  Peak memory is
``torch.cuda.max_memory_allocated`` over the whole fit, after a reset, minus
what was allocated before.  In-memory data (token ids, decoded image arrays)
sits on the GPU during training for skbig and the plain loop alike; audio is
decoded from files by DataLoader workers for both.

Sized to finish in under 8 minutes on an H200 (defaults: 40 steps per epoch,
3 interleaved runs; ``--budget`` stops starting new runs after 420 s).  On a
machine without CUDA it exits at once with a message.  ``--cpu-smoke`` runs
every contender through the same code on the CPU instead (bf16 autocast on
the CPU, 2 steps, 1 run, no memory figures): its speeds are not the GPU
figures; it proves the script runs end to end before GPU time is spent on it.

Run: ``HF_HUB_OFFLINE=1 python benchmarks/gpu.py [--only minilm ...] [--data-dir ../shared/data]``.
Figures are printed as a Markdown table and written to ``benchmarks/results/gpu-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._clocks import EPOCHS, StepClock, steady_samples_per_second, trainer_clock
from benchmarks._common import Samples, comparison, default_data_dir

BACKENDS = ("minilm", "efficientnet_lite0", "whisper_tiny_en")
#: Per-backend batch size (the same for every contender).
BATCH_SIZES = {"minilm": 64, "efficientnet_lite0": 64, "whisper_tiny_en": 16}
LR = {"minilm": 1e-4, "efficientnet_lite0": 1e-3, "whisper_tiny_en": 1e-5}
WEIGHT_DECAY = 0.01
TASKS = {
    "minilm": "text-classification",
    "efficientnet_lite0": "image-classification",
    "whisper_tiny_en": "speech-recognition",
}
IMAGE_SIZE = 224
#: DataLoader workers for audio (skbig and the plain loop alike), at most one per core.
NUM_WORKERS = min(8, os.cpu_count() or 1)


class NoCudaError(SystemExit):
    """Raised (as a clean exit) when no CUDA GPU is visible."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="benchmarks/gpu.py", description=(__doc__ or "").splitlines()[0], epilog="Needs a CUDA GPU."
    )
    parser.add_argument(
        "--only", nargs="+", choices=BACKENDS, default=list(BACKENDS), help="backends to measure"
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="optimisation steps per epoch (default 40; 2 with --cpu-smoke)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="interleaved runs per contender (default 3; 1 with --cpu-smoke)",
    )
    parser.add_argument(
        "--budget", type=float, default=420.0, help="seconds after which no new run starts (default 420)"
    )
    parser.add_argument("--data-dir", type=Path, default=default_data_dir(), help="the shared data folder")
    parser.add_argument(
        "--out", type=Path, default=None, help="JSON file to write (default benchmarks/results/)"
    )
    parser.add_argument(
        "--cpu-smoke",
        action="store_true",
        help="run every contender on the CPU (2 steps, 1 run unless given): a dry run, not GPU figures",
    )
    return parser


def check_cuda() -> str:
    """The GPU's name; exit with a clear message when there is none."""
    import torch

    if not torch.cuda.is_available():
        raise NoCudaError(
            "benchmarks/gpu.py measures bf16 training on a CUDA GPU, but torch.cuda.is_available() is False "
            f"(torch {torch.__version__}); run it on a machine with an NVIDIA GPU and a CUDA build of torch"
        )
    if not torch.cuda.is_bf16_supported():
        raise NoCudaError(
            f"{torch.cuda.get_device_name(0)} does not support bf16; use an Ampere or newer GPU"
        )
    return torch.cuda.get_device_name(0)


# -- data -------------------------------------------------------------------------------------------
def text_data(data_dir: Path, n: int) -> tuple[list[str], list[int]]:
    from benchmarks.minilm_throughput import load_sentences

    return load_sentences(data_dir, n)


def image_data(data_dir: Path, n: int) -> tuple[Any, list[str]]:
    """``n`` hymenoptera photos (tiled) decoded to a float32 ``(n, 224, 224, 3)`` array and their labels."""
    import numpy as np
    from PIL import Image, ImageOps

    files = sorted(
        p for p in (Path(data_dir) / "hymenoptera").glob("*/*/*") if p.suffix.lower() in (".jpg", ".jpeg")
    )
    if not files:
        raise FileNotFoundError(f"no hymenoptera photos under {data_dir}; pass --data-dir ../shared/data")
    decoded = []
    for path in files:
        with Image.open(path) as img:
            img = ImageOps.fit(ImageOps.exif_transpose(img).convert("RGB"), (IMAGE_SIZE, IMAGE_SIZE))
            decoded.append(np.asarray(img, dtype=np.float32) / 255.0)
    index = [i % len(files) for i in range(n)]
    return np.stack([decoded[i] for i in index]), [files[i].parent.name for i in index]


def speech_data(data_dir: Path, n: int) -> tuple[list[str], list[str]]:
    """``n`` FSDD clip paths (all speakers) and their digit words."""
    from benchmarks.speech_fsdd import load_split

    paths, words, test_paths, test_words = load_split("theo", Path(data_dir) / "fsdd")
    paths, words = paths + test_paths, words + test_words
    return paths[:n], words[:n]


# -- contenders -------------------------------------------------------------------------------------
def _estimator(backend: str, clock: StepClock, device: str) -> Any:
    from skbig import ImageClassifier, SpeechRecognizer, TextClassifier

    cls = {
        "minilm": TextClassifier,
        "efficientnet_lite0": ImageClassifier,
        "whisper_tiny_en": SpeechRecognizer,
    }[backend]
    # freeze=None: every parameter trains, as in the peers (the backends' own recommendations
    # freeze Whisper's encoder and MiniLM's embeddings, which would make skbig's step cheaper).
    extra: dict[str, Any] = {"lr_schedule": "constant", "freeze": None}
    if backend == "whisper_tiny_en":
        extra["num_workers"] = NUM_WORKERS
    return cls(
        backend=backend,
        device=device,
        precision="bf16",
        batch_size=BATCH_SIZES[backend],
        lr=LR[backend],
        weight_decay=WEIGHT_DECAY,
        grad_clip=1.0,
        max_epochs=EPOCHS,
        validation_fraction=0.0,
        early_stopping=False,
        random_state=0,
        callbacks=[clock],
        **extra,
    )


def _peak_memory(fn: Callable[[], Any], device: str) -> tuple[Any, float]:
    """Run ``fn``; return its result and the peak GPU memory it added, in MiB (NaN on the CPU)."""
    import torch

    if device != "cuda":
        return fn(), float("nan")
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    result = fn()
    torch.cuda.synchronize()
    return result, (torch.cuda.max_memory_allocated() - base) / 2**20


def run_skbig(backend: str, X: Any, y: Any, steps: int, device: str) -> tuple[Any, float, float]:
    """Fit the estimator; return it (module moved back to the CPU), samples/s and peak MiB."""
    from benchmarks._clocks import cuda_sync

    clock = StepClock(cuda_sync())
    estimator, peak = _peak_memory(lambda: _estimator(backend, clock, device).fit(X, y), device)
    estimator.module_.cpu()
    return estimator, steady_samples_per_second(clock.times, steps, len(X)), peak


def run_plain(estimator: Any, X: Any, y: Any, steps: int, backend: str, device: str) -> tuple[float, float]:
    """A hand-written bf16 loop over a copy of ``estimator.module_``; samples/s and peak MiB."""
    import torch

    from benchmarks._clocks import cuda_sync

    target = torch.device(device)
    skbig_backend = estimator._backend
    targets = estimator._prepare_targets(y, len(X), skbig_backend)[0]
    data = skbig_backend.make_data(X, targets, train=True)
    module = copy.deepcopy(estimator.module_)
    batch_size = BATCH_SIZES[backend]
    clock = StepClock(cuda_sync())

    def train() -> None:
        net = module.to(target).train()
        optimizer = torch.optim.AdamW(net.parameters(), lr=LR[backend], weight_decay=WEIGHT_DECAY, fused=True)
        tensors = getattr(data, "tensors", None)
        if tensors is not None:
            on_gpu = {k: v.to(target) for k, v in tensors.items()}
            trim = data.trim
        else:
            loader = torch.utils.data.DataLoader(
                data.dataset,
                batch_size=batch_size,
                shuffle=True,
                collate_fn=data.collate,
                num_workers=NUM_WORKERS,
                pin_memory=target.type == "cuda",
            )
        for _ in range(EPOCHS):
            if tensors is not None:
                order = torch.randperm(len(X), device=target)
                batches: Any = (
                    {k: v[order[i : i + batch_size]] for k, v in on_gpu.items()}
                    for i in range(0, len(X), batch_size)
                )
            else:
                batches = loader
            for batch in batches:
                batch = {
                    k: v.to(target, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()
                }
                if tensors is not None and trim is not None:
                    key, lengths = trim
                    batch[key] = batch[key][:, : max(int(batch[lengths].max()), 1)]
                with torch.autocast(target.type, dtype=torch.bfloat16):
                    loss = skbig_backend.loss(net, batch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
                optimizer.step()
                clock.tick()
        net.cpu()

    _, peak = _peak_memory(train, device)
    return steady_samples_per_second(clock.times, steps, len(X)), peak


def run_trainer(X: list[str], y: list[int], steps: int, device: str) -> tuple[float, float]:
    """transformers ``Trainer`` (``bf16=True``) on AutoModelForSequenceClassification; samples/s, peak MiB."""
    import tempfile

    from transformers import (
        AutoModelForSequenceClassification,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    from benchmarks._clocks import cuda_sync
    from benchmarks.minilm_throughput import _tokenized, minilm_dir

    path = minilm_dir()
    tokenizer, rows = _tokenized(path, X, y)
    callback = trainer_clock(cuda_sync())

    def train() -> None:
        model = AutoModelForSequenceClassification.from_pretrained(
            str(path), num_labels=2, local_files_only=True
        )
        with tempfile.TemporaryDirectory(prefix="skbig-gpu-trainer-") as tmp:
            args = TrainingArguments(
                output_dir=tmp,
                per_device_train_batch_size=BATCH_SIZES["minilm"],
                num_train_epochs=EPOCHS,
                learning_rate=LR["minilm"],
                weight_decay=WEIGHT_DECAY,
                max_grad_norm=1.0,
                lr_scheduler_type="constant",
                bf16=True,
                use_cpu=device != "cuda",
                eval_strategy="no",
                save_strategy="no",
                logging_strategy="no",
                report_to="none",
                dataloader_num_workers=0,
                disable_tqdm=True,
                seed=0,
            )
            trainer = Trainer(
                model=model,
                args=args,
                train_dataset=rows,  # type: ignore[arg-type]
                data_collator=DataCollatorWithPadding(tokenizer),
                callbacks=[callback],
            )
            trainer.train()
            model.cpu()

    _, peak = _peak_memory(train, device)
    return steady_samples_per_second(callback.clock.times, steps, len(X)), peak


# -- one backend ----------------------------------------------------------------------------------------
def _available(backend: str) -> str | None:
    """None when the backend loads, else why not (plugin missing or broken)."""
    from skbig.backends.registry import get_backend

    try:
        get_backend(backend, TASKS[backend])
    except Exception as exc:  # an uninstalled or broken plugin only skips its backend
        return f"{type(exc).__name__}: {exc}"
    return None


def measure_backend(
    backend: str, data_dir: Path, steps: int, repeats: int, deadline: float, device: str = "cuda"
) -> dict[str, Any]:
    """Interleaved runs of every contender for one backend; comparison rows for speed and memory."""
    n = steps * BATCH_SIZES[backend]
    loaders: dict[str, Callable[[Path, int], tuple[Any, Any]]] = {
        "minilm": text_data,
        "efficientnet_lite0": image_data,
        "whisper_tiny_en": speech_data,
    }
    X, y = loaders[backend](data_dir, n)
    speed = {"skbig": Samples(), "plain": Samples(), "Trainer": Samples()}
    memory = {"skbig": Samples(), "plain": Samples(), "Trainer": Samples()}
    import torch

    for run in range(repeats):
        if time.perf_counter() > deadline:
            print(f"  {backend}: budget reached after {run} runs", flush=True)
            break
        # The thread count after each contender: one that changed it shows up as a mismatch.
        estimator, sps, peak = run_skbig(backend, X, y, steps, device)
        speed["skbig"].add(sps, torch.get_num_threads())
        memory["skbig"].add(peak, torch.get_num_threads())
        sps, peak = run_plain(estimator, X, y, steps, backend, device)
        speed["plain"].add(sps, torch.get_num_threads())
        memory["plain"].add(peak, torch.get_num_threads())
        if backend == "minilm":
            sps, peak = run_trainer(X, y, steps, device)
            speed["Trainer"].add(sps, torch.get_num_threads())
            memory["Trainer"].add(peak, torch.get_num_threads())
        done = {
            k: f"{v.values[-1]:.0f}/s, {memory[k].values[-1]:.0f} MiB" for k, v in speed.items() if v.values
        }
        print(f"  {backend} run {run + 1}: {done}", flush=True)
    if not speed["skbig"].values:
        return {"error": "no run finished within the budget"}
    what = (
        f"{n} samples, batch {BATCH_SIZES[backend]}, bf16 autocast, AdamW lr {LR[backend]}, clip 1.0; "
        f"samples/s over the 2nd of 2 epochs ({steps} steps), peak memory over the fit; "
        f"median of {len(speed['skbig'].values)} interleaved runs"
    )
    rows = []
    for peer, name in (
        ("plain", "plain PyTorch bf16 loop, same module"),
        ("Trainer", "transformers Trainer bf16"),
    ):
        if not speed[peer].values:
            continue
        rows.append(
            comparison(
                f"{backend} samples/s",
                skbig=speed["skbig"],
                peer=speed[peer],
                peer_name=name,
                compared=what,
                unit="/s",
                target=("ratio", ">=", 1.0 if peer == "Trainer" else 0.95),
            )
        )
        if device != "cuda":
            continue  # no GPU memory to compare
        rows.append(
            comparison(
                f"{backend} peak GPU memory",
                skbig=memory["skbig"],
                peer=memory[peer],
                peer_name=name,
                compared=what,
                unit="MiB",
            )
        )
    return {"samples": n, "batch_size": BATCH_SIZES[backend], "comparisons": rows}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.cpu_smoke:
        device, gpu = "cpu", "CPU (--cpu-smoke: a dry run, not GPU figures)"
    else:
        device, gpu = "cuda", check_cuda()
    steps = args.steps if args.steps is not None else (2 if args.cpu_smoke else 40)
    repeats = args.repeats if args.repeats is not None else (1 if args.cpu_smoke else 3)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from benchmarks._common import machine_info, write_result
    from benchmarks.runner import RunRecord, ThreadCountMismatch, check_threads, markdown_table

    start = time.perf_counter()
    deadline = start + args.budget
    records = []
    for backend in args.only:
        print(f"\n=== {backend} on {gpu} ===", flush=True)
        began = time.perf_counter()
        why = _available(backend)
        if why is not None:
            print(f"  skipped: {why}", flush=True)
            records.append(RunRecord(backend, "gpu", "not available", 0.0, machine_info(), error=why))
            continue
        try:
            figures = measure_backend(backend, args.data_dir, steps, repeats, deadline, device)
            status, error = ("failed", figures["error"]) if "error" in figures else ("ok", None)
            check_threads(backend, figures)
        except ThreadCountMismatch as exc:
            status, error = "refused", str(exc)
        except Exception as exc:  # report and go on to the next backend
            figures, status, error = {}, "failed", f"{type(exc).__name__}: {exc}"
        records.append(
            RunRecord(backend, "gpu", status, time.perf_counter() - began, machine_info(), figures, error)
        )
    total = time.perf_counter() - start
    table = markdown_table(
        records,
        suite=f"gpu: {gpu}",
        total_seconds=total,
        command="python benchmarks/gpu.py" + (" --cpu-smoke" if args.cpu_smoke else ""),
    )
    print("\n" + table)
    result = {"gpu": gpu, "wall_seconds": total, "records": [r.as_json() for r in records], "markdown": table}
    if args.out is not None:
        import json

        args.out.write_text(
            json.dumps({"benchmark": "gpu", "machine": machine_info(), **result}, indent=2, default=str)
        )
    else:
        write_result("gpu-cpu-smoke" if args.cpu_smoke else "gpu", result)
    return 0 if all(r.status != "failed" for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
