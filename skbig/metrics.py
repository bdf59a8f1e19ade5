"""Error rates for speech recognition, usable directly or as scikit-learn scorers.

``wer`` and ``cer`` are *corpus* rates: total edits over total reference
units, the number ASR papers report, rather than a mean of per-utterance
rates, which over-weights short utterances.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

from skbig.exceptions import InputTypeError, InvalidInputError, InvalidParameterError

__all__ = ["edit_distance", "wer", "cer", "wer_scorer", "cer_scorer"]


def edit_distance(ref: Sequence[Hashable], hyp: Sequence[Hashable]) -> int:
    """Levenshtein distance: the fewest substitutions, insertions and deletions.

    Uses two rows of the dynamic-programming table, so memory is
    O(len(hyp)) however long the reference is.

    Parameters
    ----------
    ref, hyp : sequence
        Sequences of comparable items (words, characters, token ids).

    Returns
    -------
    int
        Number of edits that turn ``ref`` into ``hyp``.

    Examples
    --------
    >>> edit_distance("kitten", "sitting")
    3
    """
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        cur = [i]
        for j, h in enumerate(hyp, start=1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h)))
        prev = cur
    return prev[-1]


def _as_pairs(references: Sequence[str] | str, predictions: Sequence[str] | str) -> list[tuple[str, str]]:
    """Validate the two inputs and pair them up; a lone string is one utterance."""
    if isinstance(references, str) and isinstance(predictions, str):
        return [(references, predictions)]
    if isinstance(references, str) or isinstance(predictions, str):
        raise InputTypeError(
            "references and predictions must both be strings or both be sequences of "
            f"strings, got {type(references).__name__} and {type(predictions).__name__}; "
            "wrap the single string in a list"
        )
    refs, hyps = list(references), list(predictions)
    if len(refs) != len(hyps):
        raise InvalidInputError(
            f"references and predictions must have the same length, got {len(refs)} "
            f"references and {len(hyps)} predictions; pass one prediction per reference"
        )
    if not refs:
        raise InvalidInputError("references is empty; pass at least one utterance")
    for name, items in (("references", refs), ("predictions", hyps)):
        for i, item in enumerate(items):
            if not isinstance(item, str):
                raise InputTypeError(
                    f"{name}[{i}] must be a str, got {type(item).__name__}; "
                    "decode token ids to text before scoring"
                )
    return list(zip(refs, hyps, strict=True))


def _corpus_rate(pairs: Sequence[tuple[Sequence[str], Sequence[str]]]) -> float:
    """Total edits over total reference units; see :func:`wer` for the empty case."""
    total = sum(len(r) for r, _ in pairs)
    if total == 0:
        return 0.0 if all(len(h) == 0 for _, h in pairs) else 1.0
    return sum(edit_distance(r, h) for r, h in pairs) / total


def wer(references: Sequence[str] | str, predictions: Sequence[str] | str) -> float:
    """Corpus word error rate: total word edits divided by total reference words.

    Words are split on whitespace and compared exactly (case and punctuation
    count), so normalise both sides first if they should not.

    Parameters
    ----------
    references : str or sequence of str
        Ground-truth transcripts.
    predictions : str or sequence of str
        Hypotheses, one per reference.

    Returns
    -------
    float
        ``>= 0``; can exceed 1 when the hypotheses insert many words. If every
        reference is empty the ratio is undefined; we return 0.0 when every
        prediction is empty too and 1.0 otherwise, so a cross-validation fold
        of silent clips scores instead of crashing.

    Raises
    ------
    InvalidInputError
        If the lengths differ or no utterances are given.
    InputTypeError
        If an item is not a str, or only one side is a lone str.

    Examples
    --------
    >>> wer(["the cat sat", "hello"], ["the cat sat down", "yellow"])
    0.5
    """
    return _corpus_rate([(r.split(), h.split()) for r, h in _as_pairs(references, predictions)])


def cer(references: Sequence[str] | str, predictions: Sequence[str] | str) -> float:
    """Corpus character error rate: total character edits over total reference characters.

    Characters include spaces, so a missing word boundary counts as an error.
    Inputs, errors and the empty-reference rule are those of :func:`wer`.

    Parameters
    ----------
    references : str or sequence of str
        Ground-truth transcripts.
    predictions : str or sequence of str
        Hypotheses, one per reference.

    Returns
    -------
    float
        ``>= 0``; can exceed 1 with many insertions.

    Raises
    ------
    InvalidInputError
        If the lengths differ or no utterances are given.
    InputTypeError
        If an item is not a str, or only one side is a lone str.

    Examples
    --------
    >>> cer("abcd", "abxd")
    0.25
    """
    return _corpus_rate(_as_pairs(references, predictions))


def _references_as_scored_by(model: Any, references: Any) -> Any:
    """``references`` prepared as ``model.score`` prepares them (for a ``SpeechRecognizer``).

    NFC form and single spaces always (the model writes NFC, so an NFD
    reference would count every accented word wrong), and
    :func:`~skbig.estimators.speech.normalize_transcript` when the model was
    trained with ``normalize_text=True`` (any estimator with that attribute).
    Otherwise the references are returned as given.
    """
    if isinstance(references, str):
        return references
    references = list(references)
    prepare = getattr(model, "_check_transcripts", None)
    if prepare is not None:
        return prepare(references, len(references), allow_empty=True)
    if getattr(model, "normalize_text", False):  # another estimator that promises normalised text
        from skbig.estimators.speech import normalize_transcript

        return [normalize_transcript(r) if isinstance(r, str) else r for r in references]
    return references


class _TranscriptScorer:
    """A scikit-learn scorer: minus ``metric``, with references prepared as the model's ``score`` does.

    A model trained with ``normalize_text=True`` writes lowercase text without
    punctuation; its references are normalised the same way before scoring,
    so ``GridSearchCV`` does not rank models by case and commas; references
    are put in NFC form either way, so the scorer agrees with
    ``SpeechRecognizer.score`` (see :func:`_references_as_scored_by`).  The model may be the last
    step of a ``Pipeline``.
    """

    def __init__(self, metric: Callable[[Sequence[str], Sequence[str]], float], name: str) -> None:
        self.metric, self.name = metric, name

    def __call__(self, estimator: Any, X: Any, y: Any, sample_weight: Any = None) -> float:
        if sample_weight is not None:
            raise InvalidParameterError(f"{self.name} does not support sample_weight")
        model = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
        references = _references_as_scored_by(model, y)
        return -self.metric(references, list(estimator.predict(X)))

    def __repr__(self) -> str:
        return f"skbig.metrics.{self.name}"


#: Scorer for ``GridSearchCV(scoring=wer_scorer)``; returns ``-wer`` so higher is better.
wer_scorer = _TranscriptScorer(wer, "wer_scorer")
#: Scorer for ``GridSearchCV(scoring=cer_scorer)``; returns ``-cer`` so higher is better.
cer_scorer = _TranscriptScorer(cer, "cer_scorer")
