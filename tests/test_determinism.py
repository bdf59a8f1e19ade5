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
