"""Speaker-independent spoken digits: SpeechRecognizer() against a log-mel + SVC baseline.

Data: the Free Spoken Digit Dataset in ``/work/shared/data/fsdd`` (3,000 clips,
6 speakers, 8 kHz).  Train on every speaker but ``theo``; test on theo's 500
clips, whom neither model (nor its validation split or early stopping) ever
sees during training.  Transcripts are the English digit words.

* ``SpeechRecognizer()`` with default settings: word error rate and fit time.
* Baseline: mean and standard deviation of each log-mel band over time,
  ``StandardScaler`` and an RBF ``SVC``; its error rate (1 - accuracy) is the
  WER of a model that always outputs exactly one digit word.

The ``ctc`` backend's defaults were chosen with ``--dev-speaker``: theo is
dropped altogether, the model trains on four speakers and is scored on a
fifth (``jackson`` and ``nicolas`` were used), so the test speaker played no
part in choosing them.

Run by hand (never in the test suite), or through ``python -m benchmarks run``
(:func:`run`; the quick suite trains on 800 clips for at most 8 epochs)::

    .venv/bin/python benchmarks/speech_fsdd.py              # the benchmark
    .venv/bin/python benchmarks/speech_fsdd.py --threads 1  # on a busy shared machine
    .venv/bin/python benchmarks/speech_fsdd.py --dev-speaker jackson --params '{"max_epochs": 20}'

Prints the figures and writes them as JSON to ``benchmarks/results/``.
On a machine whose cores are shared with other jobs, ``--threads 1`` is much
faster than torch's default pool, which spins waiting for busy cores.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from skbig import SpeechRecognizer
from skbig.engine.callbacks import Callback
from skbig.engine.data import iterate_batches
from skbig.metrics import cer, wer

DATA = Path(os.environ.get("SKBIG_FSDD", "/work/shared/data/fsdd"))
RESULTS = Path(__file__).parent / "results"
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
TEST_SPEAKER = "theo"
QUICK_TRAIN_CLIPS = 800
QUICK_MAX_EPOCHS = 8


def load_split(
    test_speaker: str = TEST_SPEAKER, root: Path = DATA
) -> tuple[list[str], list[str], list[str], list[str]]:
    """Paths and digit words for the training speakers and for the test speaker.

    With a development speaker as ``test_speaker``, theo is left out entirely.
    ``root`` is the FSDD folder (``<data_dir>/fsdd``).
    """
    with (root / "metadata.csv").open(encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if test_speaker == TEST_SPEAKER or r["speaker"] != TEST_SPEAKER]
    train = [r for r in rows if r["speaker"] != test_speaker]
    test = [r for r in rows if r["speaker"] == test_speaker]

    def unpack(part: list[dict[str, str]]) -> tuple[list[str], list[str]]:
        return [str(root / r["filename"]) for r in part], [WORDS[int(r["digit"])] for r in part]

    return (*unpack(train), *unpack(test))


def svc_baseline(
    train_paths: list[str], train_words: list[str], test_paths: list[str], test_words: list[str]
) -> dict:
    """Mean+std pooled log-mel features, StandardScaler, SVC."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    from skbig.data.audio import load_audio, log_mel_features

    def pooled(paths: list[str]) -> np.ndarray:
        rows = []
        for i, path in enumerate(paths):
            wave = load_audio(path, index=i, sample_rate=None, target_rate=16000)
            feats = log_mel_features(wave, sample_rate=16000, n_mels=40).numpy()
            rows.append(np.concatenate([feats.mean(axis=0), feats.std(axis=0)]))
        return np.asarray(rows)

    start = time.perf_counter()
    model = make_pipeline(StandardScaler(), SVC()).fit(pooled(train_paths), train_words)
    fit_seconds = time.perf_counter() - start
    accuracy = float(np.mean(model.predict(pooled(test_paths)) == np.asarray(test_words)))
    return {"accuracy": accuracy, "error_rate": 1.0 - accuracy, "fit_seconds": fit_seconds}


def run(data_dir: Path, *, quick: bool = False) -> dict[str, Any]:
    """SpeechRecognizer() and log-mel + SVC on the same speaker-independent split; WER and fit-time rows.

    The quick mode trains both on a stratified 800-clip subset of the
    training speakers, and SpeechRecognizer for at most 8 epochs; the test
    speaker is always all of theo's 500 clips.  Each model is fitted once
    (a full fit takes about 6 minutes on a 2-core CPU).
    """
    from benchmarks._common import Samples, comparison, measure

    train_paths, train_words, test_paths, test_words = load_split(TEST_SPEAKER, Path(data_dir) / "fsdd")
    if quick:
        from sklearn.model_selection import train_test_split

        train_paths, _, train_words, _ = train_test_split(
            train_paths, train_words, train_size=QUICK_TRAIN_CLIPS, stratify=train_words, random_state=0
        )
    overrides = {"max_epochs": QUICK_MAX_EPOCHS} if quick else {}
    print(f"train: {len(train_paths)} clips; test: {len(test_paths)} clips of {TEST_SPEAKER}", flush=True)
    svc: dict[str, Any] = {}

    def fit_svc() -> None:
        svc.update(svc_baseline(train_paths, train_words, test_paths, test_words))

    svc_time = measure(fit_svc)
    print(f"log-mel + SVC: error rate {svc['error_rate']:.3f}, fit {svc_time.value:.1f} s", flush=True)
    asr = SpeechRecognizer(random_state=0, **overrides)

    def fit_asr() -> None:
        asr.fit(train_paths, train_words)

    asr_time = measure(fit_asr)
    predictions = asr.predict(test_paths)
    error = wer(test_words, predictions)
    print(
        f"SpeechRecognizer(): WER {error:.3f}, fit {asr_time.value:.0f} s ({len(asr.history_)} epochs)",
        flush=True,
    )
    capped = f", SpeechRecognizer max_epochs={QUICK_MAX_EPOCHS}" if quick else ""
    compared = (
        f"FSDD, speaker {TEST_SPEAKER} held out ({len(test_paths)} test clips), {len(train_paths)} training "
        f"clips{capped}; one fit each; the SVC's WER is its error rate (it always outputs one digit word)"
    )
    threads = asr_time.threads[:1]
    return {
        "n_train": len(train_paths),
        "n_test": len(test_paths),
        "overrides": overrides,
        "svc": svc,
        "speech_recognizer": {
            "wer": error,
            "cer": cer(test_words, predictions),
            "fit_seconds": asr_time.value,
            "epochs": len(asr.history_),
            "best_epoch": asr.best_epoch_,
            "history": asr.history_,
        },
        "comparisons": [
            comparison(
                "test WER (lower is better)",
                skbig=Samples([error], threads),
                peer=Samples([svc["error_rate"]], svc_time.threads[:1]),
                peer_name="log-mel + SVC",
                compared=compared,
            ),
            comparison(
                "fit time",
                skbig=asr_time,
                peer=Samples([svc["fit_seconds"]], svc_time.threads[:1]),
                peer_name="log-mel + SVC (incl. features)",
                compared=compared,
                unit="s",
            ),
        ],
    }


class DevReport(Callback):
    """Print each epoch, and the development speaker's WER every 5 epochs.

    Diagnostics only: nothing here feeds back into training or early stopping.
    """

    def __init__(self, paths: list[str], words: list[str]) -> None:
        self.paths, self.words = paths, words

    def on_epoch_end(self, trainer: Any, record: Any) -> None:
        print({k: round(v, 4) if isinstance(v, float) else v for k, v in record.items()}, flush=True)
        module = getattr(trainer, "module", None)
        if record["epoch"] % 5 or module is None:
            return
        was_training = module.training
        module.eval()
        predictions: list[str] = []
        with torch.inference_mode():
            for batch in iterate_batches(trainer.backend.make_data(self.paths, None), 128, shuffle=False):
                predictions += trainer.backend.decode(module, batch)
        module.train(was_training)
        print(f"  dev WER after epoch {record['epoch']}: {wer(self.words, predictions):.3f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="{}", help="JSON overrides for SpeechRecognizer (default: none)")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--tag", default="", help="suffix of the results file name")
    parser.add_argument(
        "--dev-speaker",
        default=None,
        help="choose settings honestly: drop theo altogether, train on the other speakers but this one, "
        "test on this one, and print its WER every few epochs",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0, help="random_state of SpeechRecognizer")
    args = parser.parse_args()
    overrides = json.loads(args.params)
    if args.threads:
        torch.set_num_threads(args.threads)

    test_speaker = args.dev_speaker or TEST_SPEAKER
    train_paths, train_words, test_paths, test_words = load_split(test_speaker)
    print(f"train: {len(train_paths)} clips; test: {len(test_paths)} clips of {test_speaker}")
    result: dict = {
        "benchmark": "fsdd speaker-independent digits",
        "test_speaker": test_speaker,
        "n_train": len(train_paths),
        "n_test": len(test_paths),
        "overrides": overrides,
        "seed": args.seed,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "machine": platform.platform(),
    }
    if not args.skip_baseline:
        result["svc"] = svc_baseline(train_paths, train_words, test_paths, test_words)
        print(
            f"log-mel + SVC: error rate {result['svc']['error_rate']:.3f} "
            f"(accuracy {result['svc']['accuracy']:.3f}), fit {result['svc']['fit_seconds']:.1f} s"
        )

    callbacks = [DevReport(test_paths, test_words)] if args.dev_speaker else None
    asr = SpeechRecognizer(random_state=args.seed, callbacks=callbacks, **overrides)
    start = time.perf_counter()
    asr.fit(train_paths, train_words)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    predictions = asr.predict(test_paths)
    predict_seconds = time.perf_counter() - start
    result["speech_recognizer"] = {
        "wer": wer(test_words, predictions),
        "cer": cer(test_words, predictions),
        "fit_seconds": fit_seconds,
        "predict_seconds": predict_seconds,
        "epochs": len(asr.history_),
        "best_epoch": asr.best_epoch_,
        "history": asr.history_,
        "backend_params": {
            k[len("backend_params__") :]: v
            for k, v in asr.get_params().items()
            if k.startswith("backend_params__")
        },
        "errors": sorted({(r, p) for r, p in zip(test_words, predictions) if r != p})[:40],
    }
    sr = result["speech_recognizer"]
    for record in asr.history_:
        print({k: round(v, 4) if isinstance(v, float) else v for k, v in record.items()})
    print(
        f"SpeechRecognizer(): WER {sr['wer']:.3f}, CER {sr['cer']:.3f}, fit {fit_seconds:.0f} s "
        f"({sr['epochs']} epochs, best {sr['best_epoch']}), predict {predict_seconds:.1f} s"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"speech_fsdd{('_' + args.tag) if args.tag else ''}.json"
    out.write_text(json.dumps(result, indent=2, default=str))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
