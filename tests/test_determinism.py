"""Same random_state, same model: across two fresh processes on the CPU."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import hashlib, sys
    from skbig import TextClassifier
    from skbig.datasets import load_sms_spam_sample

    texts, labels = load_sms_spam_sample()
    clf = TextClassifier(backend=sys.argv[1], max_epochs=2, random_state=7).fit(texts[:300], labels[:300])
    print(hashlib.sha256(clf.predict_proba(texts[300:400]).tobytes()).hexdigest())
    """
)


# One process fits every image and speech backend (tiny), so the interpreter start is paid once.
IMAGE_AND_SPEECH = textwrap.dedent(
    """
    import hashlib
    import numpy as np
    from skbig import ImageClassifier, SpeechRecognizer

    rng = np.random.RandomState(0)
    images, classes = rng.randint(0, 256, size=(24, 12, 12, 3)).astype(np.uint8), np.arange(24) % 3
    for backend, params in [
        ("cnn", {"width": 4, "depth": 2, "image_size": 12}),
        ("resnet", {"width": 4, "layers": [1, 1], "image_size": 16}),
    ]:
        clf = ImageClassifier(backend=backend, max_epochs=2, random_state=7, backend_params=params)
        print(backend, hashlib.sha256(clf.fit(images, classes).predict_proba(images).tobytes()).hexdigest())
    clips = [(rng.randn(1600) * 0.1).astype(np.float32) for _ in range(8)]
    asr = SpeechRecognizer(
        max_epochs=2, random_state=7, sample_rate=8000, batch_size=4,
        backend_params={"hidden_size": 8, "num_layers": 1, "conv_channels": 2, "n_mels": 16},
    ).fit(clips, ["yes", "no"] * 4)
    module = asr.module_.state_dict()
    weights = b"".join(module[k].numpy().tobytes() for k in sorted(module))
    print("ctc", hashlib.sha256(weights).hexdigest(), "|".join(asr.predict(clips)))
    """
)


def test_image_and_speech_backends_are_identical_in_two_processes():
    outputs = [
        subprocess.run(
            [sys.executable, "-c", IMAGE_AND_SPEECH], capture_output=True, text=True, timeout=300, check=True
        ).stdout.splitlines()
        for _ in range(2)
    ]
    assert [line.split()[0] for line in outputs[0]] == ["cnn", "resnet", "ctc"]
    assert outputs[0] == outputs[1]


@pytest.mark.parametrize("backend", ["fasttext", "lstm"])
def test_identical_predict_proba_in_two_processes(backend):
    digests = [
        subprocess.run(
            [sys.executable, "-c", SCRIPT, backend], capture_output=True, text=True, timeout=300, check=True
        ).stdout.strip()
        for _ in range(2)
    ]
    assert digests[0] == digests[1] and len(digests[0]) == 64


def test_fit_does_not_disturb_the_global_torch_rng():
    import torch

    from skbig import TextClassifier

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    TextClassifier(max_epochs=1, random_state=0).fit(["a b", "c d", "a c", "b d"], [0, 1, 0, 1])
    assert torch.equal(torch.rand(3), expected)


def test_loading_a_model_does_not_disturb_the_global_torch_rng(tmp_path):
    import torch

    import skbig
    from skbig import TextClassifier

    path = (
        TextClassifier(max_epochs=1, random_state=0)
        .fit(["a b", "c d"] * 4, [0, 1] * 4)
        .save(tmp_path / "m.skbig")
    )
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    skbig.load(path)  # builds the architecture (random init) before loading the weights
    assert torch.equal(torch.rand(3), expected)


def test_fits_in_threads_are_as_reproducible_as_sequential_ones():
    # torch's RNG is one per process: fits in threads (joblib's "threading" backend) must not
    # re-seed each other's weight initialisation and dropout.
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    from skbig import TextClassifier
    from skbig.datasets import load_sms_spam_sample

    texts, labels = load_sms_spam_sample()
    X, y = texts[:200], labels[:200]

    def fit_proba(_):
        clf = TextClassifier(max_epochs=2, random_state=0, backend_params={"dropout": 0.3})
        return clf.fit(X, y).predict_proba(X[:50])

    sequential = fit_proba(None)
    with ThreadPoolExecutor(max_workers=2) as pool:
        threaded = list(pool.map(fit_proba, range(4)))
    for proba in threaded:
        np.testing.assert_array_equal(proba, sequential)
