"""Small real data sets that ship inside skbig, for examples, tests and the demo.

Each loader returns plain Python lists (texts or absolute file paths, and
labels or transcripts).  Sources, licences and how each sample was cut are in
the ``SOURCE.md`` next to the data under ``skbig/datasets/data/``.
"""

from __future__ import annotations

from skbig.datasets._audio_samples import load_fsdd_sample, load_ljspeech_sample
from skbig.datasets._image_samples import load_hymenoptera_sample
from skbig.datasets._text_samples import load_sms_spam_sample

__all__ = ["load_fsdd_sample", "load_hymenoptera_sample", "load_ljspeech_sample", "load_sms_spam_sample"]
