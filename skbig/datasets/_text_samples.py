"""Loader for the SMS spam sample bundled with skbig."""

from __future__ import annotations

import csv
from pathlib import Path

__all__ = ["load_sms_spam_sample"]

_DATA = Path(__file__).parent / "data"


def load_sms_spam_sample() -> tuple[list[str], list[str]]:
    """Return the texts and labels of the bundled SMS spam sample.

    2,500 messages (13.4% spam) cut from the SMS Spam Collection v.1 by
    Almeida and Gómez Hidalgo; see ``skbig/datasets/data/sms_spam/SOURCE.md``
    for the licence, the citation the authors ask for and how it was cut.

    Returns
    -------
    texts : list of str
    labels : list of str
        ``"ham"`` or ``"spam"``.

    Examples
    --------
    >>> texts, labels = load_sms_spam_sample()
    >>> len(texts), sorted(set(labels))
    (2500, ['ham', 'spam'])
    """
    with (_DATA / "sms_spam" / "sms_spam_sample.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [r["text"] for r in rows], [r["label"] for r in rows]
