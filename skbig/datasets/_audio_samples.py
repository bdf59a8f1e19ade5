"""Loaders for the small spoken-digit and read-speech samples bundled with skbig."""

from __future__ import annotations

import csv
from pathlib import Path

__all__ = ["load_fsdd_sample", "load_ljspeech_sample"]

_DATA = Path(__file__).parent / "data"


def _read_table(path: Path, delimiter: str) -> list[dict[str, str]]:
    """Read a header-first UTF-8 table; QUOTE_NONE because LJSpeech texts hold bare quotes."""
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter=delimiter, quoting=csv.QUOTE_NONE))


def load_fsdd_sample() -> tuple[list[str], list[str]]:
    """Return the paths and transcripts of the bundled spoken-digit sample.

    The sample is a 100-clip cut of the Free Spoken Digit Dataset (CC BY-SA
    4.0): speakers ``jackson`` and ``theo`` say every digit 4 times and
    ``nicolas`` twice, as 8 kHz mono WAV. It ships inside the package so
    speech examples and tests run offline in seconds; see
    ``skbig/datasets/data/fsdd/SOURCE.md`` for origin, licence and the cut.

    Returns
    -------
    paths : list of str
        Absolute WAV paths in ``metadata.csv`` order (speaker, then digit).
    transcripts : list of str
        The digit spoken, as an English word (``"zero"`` to ``"nine"``),
        so the pair can be fed straight to a speech recognizer.

    Examples
    --------
    >>> paths, words = load_fsdd_sample()
    >>> len(paths), sorted(set(words))[:3]
    (100, ['eight', 'five', 'four'])
    """
    root = _DATA / "fsdd"
    rows = _read_table(root / "metadata.csv", ",")
    return [str((root / r["filename"]).resolve()) for r in rows], [r["word"] for r in rows]


def load_ljspeech_sample() -> tuple[list[str], list[str]]:
    """Return the paths and transcripts of the bundled LJ Speech sample.

    Three short (about 2 s) public-domain clips of continuous English speech at
    22.05 kHz, the shortest of LJ001-0001 to 0100. They are too few to train
    on; they exist to smoke-test transcription of real sentences with
    resampling. See ``skbig/datasets/data/ljspeech/SOURCE.md``.

    Returns
    -------
    paths : list of str
        Absolute WAV paths, sorted by clip id.
    transcripts : list of str
        LJSpeech's normalized transcription, casing and punctuation kept.

    Examples
    --------
    >>> paths, texts = load_ljspeech_sample()
    >>> texts[1]
    'has never been surpassed.'
    """
    root = _DATA / "ljspeech"
    rows = _read_table(root / "transcripts.tsv", "\t")
    return [str((root / r["filename"]).resolve()) for r in rows], [r["text"] for r in rows]
