"""Tests for the CTC greedy and prefix beam-search decoders."""

from __future__ import annotations

import itertools
from collections import defaultdict

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from skbig.backends._ctc_decoding import ctc_beam_search, ctc_greedy_decode, ctc_prefix_log_prob
from skbig.exceptions import InvalidInputError, InvalidParameterError


def _log_softmax(rng: np.random.Generator, t: int, v: int, scale: float = 2.0) -> np.ndarray:
    logits = torch.from_numpy(rng.normal(scale=scale, size=(t, v)))
    return torch.log_softmax(logits, dim=-1).numpy()


def _torch_prefix_log_prob(lp: np.ndarray, labels: list[int], blank: int = 0) -> float:
    """Exact log P(labels) from PyTorch's own CTC forward pass, as an independent oracle."""
    loss = torch.nn.functional.ctc_loss(
        torch.from_numpy(lp)[:, None, :],
        torch.tensor([labels], dtype=torch.long).reshape(1, -1),
        torch.tensor([lp.shape[0]]),
        torch.tensor([len(labels)]),
        blank=blank,
        reduction="none",
    )
    return -float(loss[0])


def _brute_force_best(lp: np.ndarray, blank: int = 0) -> tuple[int, ...]:
    """Sum every frame path into its collapsed prefix and return the most probable one."""
    totals: dict[tuple[int, ...], float] = defaultdict(float)
    for path in itertools.product(range(lp.shape[1]), repeat=lp.shape[0]):
        collapsed = tuple(k for i, k in enumerate(path) if k != blank and (i == 0 or path[i - 1] != k))
        totals[collapsed] += float(np.exp(lp[np.arange(len(path)), path].sum()))
    return max(totals, key=totals.__getitem__)


def test_greedy_collapses_repeats_and_drops_blanks():
    # best path per frame: 1 1 0 1 2 2 0 -> [1, 1, 2]
    path = [1, 1, 0, 1, 2, 2, 0]
    lp = np.log(np.full((1, len(path), 3), 0.05))
    lp[0, np.arange(len(path)), path] = np.log(0.9)
    assert ctc_greedy_decode(lp) == [[1, 1, 2]]
    assert ctc_greedy_decode(torch.from_numpy(lp)) == [[1, 1, 2]]


def test_greedy_respects_lengths_and_blank_id():
    lp = np.log(np.array([[[0.9, 0.1], [0.1, 0.9], [0.1, 0.9]]] * 2))
    assert ctc_greedy_decode(lp, [1, 3]) == [[], [1]]
    assert ctc_greedy_decode(lp, torch.tensor([1, 2])) == [[], [1]]
    assert ctc_greedy_decode(lp, blank=1) == [[0], [0]]


def test_beam_beats_greedy_when_probability_is_spread():
    # Each frame favours blank (0.6), but "1" collects 0.64 over three paths.
    lp = np.log(np.array([[[0.6, 0.4], [0.6, 0.4]]]))
    assert ctc_greedy_decode(lp) == [[]]
    assert ctc_beam_search(lp, beam_size=4) == [[1]]


def test_beam_keeps_repeated_labels_separated_by_blank():
    path = [1, 0, 1]
    lp = np.log(np.full((1, 3, 2), 0.1))
    lp[0, np.arange(3), path] = np.log(0.9)
    assert ctc_beam_search(lp) == [[1, 1]]


@pytest.mark.parametrize("seed", range(6))
def test_beam_search_finds_the_brute_force_optimum(seed):
    rng = np.random.default_rng(seed)
    lp = _log_softmax(rng, t=5, v=3, scale=1.0)
    assert tuple(ctc_beam_search(lp[None], beam_size=16)[0]) == _brute_force_best(lp)


def test_beam_size_one_matches_greedy_on_peaky_outputs():
    rng = np.random.default_rng(1)
    lp = np.stack([_log_softmax(rng, 30, 6, scale=6.0) for _ in range(4)])
    assert ctc_beam_search(lp, beam_size=1) == ctc_greedy_decode(lp)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    t=st.integers(1, 12),
    v=st.integers(2, 5),
    beam=st.integers(1, 4),
    scale=st.sampled_from([0.5, 2.0, 5.0]),
)
def test_beam_is_never_less_probable_than_greedy(seed, t, v, beam, scale):
    lp = _log_softmax(np.random.default_rng(seed), t, v, scale)
    greedy = ctc_greedy_decode(lp[None])[0]
    beamed = ctc_beam_search(lp[None], beam_size=beam)[0]
    assert _torch_prefix_log_prob(lp, beamed) >= _torch_prefix_log_prob(lp, greedy) - 1e-9


@pytest.mark.parametrize("labels", [[], [1], [1, 1], [2, 1, 2], [1, 2, 2, 1]], ids=str)
def test_prefix_log_prob_matches_torch_ctc_loss(labels):
    lp = _log_softmax(np.random.default_rng(3), t=9, v=3)
    assert ctc_prefix_log_prob(lp, labels) == pytest.approx(_torch_prefix_log_prob(lp, labels))


def test_prefix_log_prob_is_minus_inf_when_labels_do_not_fit():
    lp = _log_softmax(np.random.default_rng(0), t=2, v=3)
    assert ctc_prefix_log_prob(lp, [1, 1]) == -np.inf  # needs 3 frames: 1, blank, 1


def test_lengths_truncate_each_item():
    rng = np.random.default_rng(2)
    lp = np.stack([_log_softmax(rng, 10, 4) for _ in range(2)])
    out = ctc_beam_search(lp, [4, 10])
    assert out[0] == ctc_beam_search(lp[:1, :4])[0]
    assert out[1] == ctc_beam_search(lp[1:])[0]
    assert ctc_beam_search(lp, [0, 0]) == [[], []]


@pytest.mark.parametrize("decode", [ctc_greedy_decode, ctc_beam_search], ids=["greedy", "beam"])
def test_bad_inputs_raise_clear_errors(decode):
    with pytest.raises(InvalidInputError, match=r"shape \(batch, time, vocab\), got shape \(4, 3\)"):
        decode(np.zeros((4, 3)))
    with pytest.raises(InvalidInputError, match="lengths must hold 1 values in"):
        decode(np.zeros((1, 4, 3)), [5])
    with pytest.raises(InvalidParameterError, match="blank must be in"):
        decode(np.zeros((1, 4, 3)), blank=3)


def test_beam_size_must_be_positive():
    with pytest.raises(InvalidParameterError, match="beam_size must be an int >= 1, got beam_size=0"):
        ctc_beam_search(np.zeros((1, 2, 2)), beam_size=0)
