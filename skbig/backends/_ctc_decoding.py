"""CTC decoders: greedy best-path and prefix beam search over ``(B, T, V)`` log-probs.

Both return token-id lists; mapping ids to text is the caller's job, so the
decoders serve character, word-piece and digit vocabularies alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from skbig.exceptions import InvalidInputError, InvalidParameterError

__all__ = ["ctc_greedy_decode", "ctc_beam_search", "ctc_prefix_log_prob"]

_NEG_INF = -np.inf
Beams = dict[tuple[int, ...], list[float]]


def _prepare(
    log_probs: torch.Tensor | np.ndarray,
    lengths: torch.Tensor | np.ndarray | Sequence[int] | None,
    blank: int,
) -> tuple[np.ndarray, list[int]]:
    """Check shapes and return float64 log-probs with one valid length per item."""
    if isinstance(log_probs, torch.Tensor):
        log_probs = log_probs.detach().cpu().numpy()
    lp = np.asarray(log_probs, dtype=np.float64)
    if lp.ndim != 3:
        raise InvalidInputError(
            f"log_probs must have shape (batch, time, vocab), got shape {lp.shape}; "
            "add a batch axis with log_probs[None] for a single utterance"
        )
    n, t, v = lp.shape
    if not 0 <= blank < v:
        raise InvalidParameterError(f"blank must be in [0, {v}), got blank={blank}")
    if lengths is None:
        return lp, [t] * n
    if isinstance(lengths, torch.Tensor):
        lengths = lengths.detach().cpu().numpy()
    lens = [int(x) for x in np.asarray(lengths).reshape(-1)]
    if len(lens) != n or any(not 0 <= x <= t for x in lens):
        raise InvalidInputError(
            f"lengths must hold {n} values in [0, {t}], got {lens}; "
            "pass the number of valid frames of each utterance"
        )
    return lp, lens


def _collapse(path: Sequence[int], blank: int) -> list[int]:
    """Merge runs of the same token, then drop blanks (the CTC many-to-one map)."""
    out: list[int] = []
    prev = -1
    for tok in path:
        if tok != prev and tok != blank:
            out.append(int(tok))
        prev = tok
    return out


def ctc_greedy_decode(
    log_probs: torch.Tensor | np.ndarray,
    lengths: torch.Tensor | np.ndarray | Sequence[int] | None = None,
    *,
    blank: int = 0,
) -> list[list[int]]:
    """Decode each utterance by its single most likely frame path.

    Fast and usually within a hair of beam search for well-trained models.

    Parameters
    ----------
    log_probs : tensor or ndarray of shape (B, T, V)
        Per-frame log-probabilities (any monotone score works for greedy).
    lengths : array-like of shape (B,), optional
        Valid frames per item; frames past it are padding. Default: all ``T``.
    blank : int, default=0
        Id of the CTC blank token.

    Returns
    -------
    list of list of int
        Token ids per item, repeats collapsed and blanks removed.

    Raises
    ------
    InvalidInputError
        If the shape or lengths are wrong.
    InvalidParameterError
        If ``blank`` is not a valid id.

    Examples
    --------
    >>> lp = np.log(np.array([[[.1, .9], [.1, .9], [.9, .1], [.1, .9]]]))
    >>> ctc_greedy_decode(lp)
    [[1, 1]]
    """
    lp, lens = _prepare(log_probs, lengths, blank)
    best = lp.argmax(axis=2)
    return [_collapse(best[b, : lens[b]], blank) for b in range(lp.shape[0])]


def ctc_prefix_log_prob(log_probs: np.ndarray, labels: Sequence[int], *, blank: int = 0) -> float:
    """Exact log-probability that a ``(T, V)`` CTC output collapses to ``labels``.

    The standard CTC forward recursion over the blank-interleaved label
    sequence; used to rescore beam-search survivors exactly.

    Parameters
    ----------
    log_probs : ndarray of shape (T, V)
        Per-frame log-probabilities of one utterance.
    labels : sequence of int
        Target ids, without blanks.
    blank : int, default=0
        Id of the CTC blank token.

    Returns
    -------
    float
        ``log P(labels | log_probs)``; ``-inf`` when ``labels`` cannot fit in ``T`` frames.

    Raises
    ------
    InvalidInputError
        If ``labels`` contains the blank id.
    """
    if blank in labels:
        raise InvalidInputError(
            f"labels must not contain the blank id {blank}, got {list(labels)}; "
            "pass the collapsed label sequence"
        )
    ext = np.full(2 * len(labels) + 1, blank, dtype=np.int64)
    ext[1::2] = labels
    if len(log_probs) == 0:
        return 0.0 if not labels else float(_NEG_INF)
    # Skipping a blank is allowed only between two different labels.
    skip = np.zeros(len(ext), dtype=bool)
    skip[2:] = (ext[2:] != blank) & (ext[2:] != ext[:-2])
    alpha = np.full(len(ext), _NEG_INF)
    alpha[:2] = log_probs[0, ext[:2]]
    for frame in log_probs[1:]:
        prev1 = np.full_like(alpha, _NEG_INF)
        prev1[1:] = alpha[:-1]
        prev2 = np.full_like(alpha, _NEG_INF)
        prev2[2:] = np.where(skip[2:], alpha[:-2], _NEG_INF)
        alpha = np.logaddexp(np.logaddexp(alpha, prev1), prev2) + frame[ext]
    return float(np.logaddexp(alpha[-1], alpha[-2]) if labels else alpha[-1])


def _extend(beams: Beams, frame: np.ndarray, candidates: np.ndarray, blank: int) -> Beams:
    """One time step of prefix beam search: every prefix by blank, repeat or new token."""
    out: Beams = {}

    def add(prefix: tuple[int, ...], slot: int, value: float) -> None:
        cell = out.setdefault(prefix, [_NEG_INF, _NEG_INF])
        cell[slot] = np.logaddexp(cell[slot], value)

    for prefix, (p_b, p_nb) in beams.items():
        total = np.logaddexp(p_b, p_nb)
        add(prefix, 0, total + frame[blank])
        last = prefix[-1] if prefix else -1
        for tok in set(candidates.tolist()) | ({last} if prefix else set()):
            if tok == last:
                add(prefix, 1, p_nb + frame[tok])  # repeat collapses into the prefix
                add((*prefix, tok), 1, p_b + frame[tok])  # a blank separated the repeat
            else:
                add((*prefix, tok), 1, total + frame[tok])
    return out


def _beam_search_one(lp: np.ndarray, beam_size: int, blank: int) -> list[int]:
    """Prefix beam search for one ``(T, V)`` utterance, with exact final rescoring."""
    beams: Beams = {(): [0.0, _NEG_INF]}
    nonblank = np.delete(np.arange(lp.shape[1]), blank)
    for frame in lp:
        top = nonblank[np.argsort(-frame[nonblank], kind="stable")[:beam_size]]
        beams = _extend(beams, frame, top, blank)
        ranked = sorted(beams.items(), key=lambda kv: -float(np.logaddexp(kv[1][0], kv[1][1])))
        beams = dict(ranked[:beam_size])
    # Tracked scores are lower bounds once paths are pruned; rescoring the
    # survivors and the greedy path exactly makes the result never worse than greedy.
    finalists: list[tuple[int, ...]] = sorted(set(beams) | {tuple(_collapse(lp.argmax(1), blank))})
    best: tuple[int, ...] = max(finalists, key=lambda p: ctc_prefix_log_prob(lp, p, blank=blank))
    return list(best)


def ctc_beam_search(
    log_probs: torch.Tensor | np.ndarray,
    lengths: torch.Tensor | np.ndarray | Sequence[int] | None = None,
    *,
    beam_size: int = 8,
    blank: int = 0,
) -> list[list[int]]:
    """Decode each utterance by CTC prefix beam search.

    Unlike greedy decoding, which follows one frame path, this sums the
    probability of *all* paths that collapse to the same prefix, so a label
    spread over many moderately likely paths can win. Per frame only the
    ``beam_size`` most likely tokens extend a prefix. The survivors plus the
    greedy output are rescored with the exact CTC forward probability, so the
    returned prefix is never less probable than greedy's.

    Parameters
    ----------
    log_probs : tensor or ndarray of shape (B, T, V)
        Per-frame log-probabilities (log-softmax outputs).
    lengths : array-like of shape (B,), optional
        Valid frames per item. Default: all ``T``.
    beam_size : int, default=8
        Prefixes kept per step; larger is slower and closer to exact.
    blank : int, default=0
        Id of the CTC blank token.

    Returns
    -------
    list of list of int
        The most probable prefix found for each item.

    Raises
    ------
    InvalidInputError
        If the shape or lengths are wrong.
    InvalidParameterError
        If ``beam_size < 1`` or ``blank`` is not a valid id.

    Examples
    --------
    >>> lp = np.log(np.array([[[.6, .4], [.6, .4]]]))
    >>> ctc_greedy_decode(lp), ctc_beam_search(lp)
    ([[]], [[1]])
    """
    if isinstance(beam_size, bool) or not isinstance(beam_size, (int, np.integer)) or beam_size < 1:
        raise InvalidParameterError(
            f"beam_size must be an int >= 1, got beam_size={beam_size!r}; use 1 for near-greedy speed"
        )
    lp, lens = _prepare(log_probs, lengths, blank)
    return [_beam_search_one(lp[b, : lens[b]], int(beam_size), blank) for b in range(lp.shape[0])]
