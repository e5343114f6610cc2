"""Add-k smoothed bigram language model: the baseline a recurrent language model has to beat on the same
split (NumPy only; counts stored sparsely, so word vocabularies of any size fit).

    P(w_t = j | w_{t-1} = i) = (c(i, j) + k) / (c(i) + k V)

with c(i, j) the count of the pair (i, j) in the training stream, c(i) = Σ_j c(i, j) the count of i as a
context and V the vocabulary size (Jurafsky & Martin, *Speech and Language Processing*, ch. 3). `k` is
chosen on the tail of the training stream (`choose_k`), never on the validation text.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

__all__ = ["DEFAULT_KS", "Bigram", "choose_k", "fit", "log_probs", "perplexity"]

# Candidate smoothing constants for `choose_k`, log-spaced from near-ML estimates to Laplace (k = 1).
DEFAULT_KS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)


class Bigram(NamedTuple):
    """Sparse bigram counts with add-k smoothing."""

    codes: np.ndarray  # <int64>[P] sorted codes i * V + j of the pairs seen
    counts: np.ndarray  # <float64>[P] c(i, j) for those pairs
    context_counts: np.ndarray  # <float64>[V] c(i)
    k: float
    vocab_size: int


def _ids(ids, vocab_size: int, name: str) -> np.ndarray:
    arr = np.asarray(ids)
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise ValueError(
            f"{name}: expected a 1-D integer array of token ids, got shape {arr.shape} dtype {arr.dtype}"
        )
    if arr.size and (arr.min() < 0 or arr.max() >= vocab_size):
        raise ValueError(
            f"{name}: expected ids in [0, {vocab_size}), got values in [{arr.min()}, {arr.max()}]"
        )
    return arr.astype(np.int64)


def _vocab_size(vocab_size) -> int:
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int | np.integer) or vocab_size < 1:
        raise ValueError(f"vocab_size: expected an int >= 1, got {vocab_size!r}")
    return int(vocab_size)


def _is_k(k) -> bool:
    return isinstance(k, int | float) and not isinstance(k, bool) and k > 0 and math.isfinite(k)


def fit(ids, vocab_size: int, k: float) -> Bigram:
    """Count the consecutive pairs of the stream `ids` <int>[n] (n >= 2); `k` > 0 is the smoothing."""
    vocab_size = _vocab_size(vocab_size)
    if not _is_k(k):
        raise ValueError(f"k: expected a finite number > 0, got {k!r}")
    arr = _ids(ids, vocab_size, "ids")
    if arr.size < 2:
        raise ValueError(f"ids: expected at least 2 tokens (one pair), got {arr.size}")
    codes, counts = np.unique(arr[:-1] * vocab_size + arr[1:], return_counts=True)
    context = np.bincount(arr[:-1], minlength=vocab_size).astype(np.float64)
    return Bigram(codes, counts.astype(np.float64), context, float(k), vocab_size)


def log_probs(model: Bigram, prev, nxt) -> np.ndarray:
    """Natural-log probabilities log P(nxt | prev) <float64>[n] for aligned ids `prev`, `nxt` <int>[n]."""
    if not isinstance(model, Bigram):
        raise TypeError(f"model: expected an ngram.Bigram (from ngram.fit), got {type(model).__name__}")
    prev = _ids(np.ravel(prev), model.vocab_size, "prev")
    nxt = _ids(np.ravel(nxt), model.vocab_size, "nxt")
    if prev.shape != nxt.shape:
        raise ValueError(f"prev, nxt: expected the same length, got {prev.size} and {nxt.size}")
    query = prev * model.vocab_size + nxt
    pos = np.clip(np.searchsorted(model.codes, query), 0, max(model.codes.size - 1, 0))
    pair = np.where(model.codes[pos] == query, model.counts[pos], 0.0)
    return np.log(pair + model.k) - np.log(model.context_counts[prev] + model.k * model.vocab_size)


def perplexity(model: Bigram, prev, nxt) -> float:
    """exp of the mean negative log-probability of `nxt` given `prev`."""
    return float(np.exp(-np.mean(log_probs(model, prev, nxt))))


def choose_k(ids, vocab_size: int, ks=DEFAULT_KS, *, holdout_fraction: float = 0.1) -> tuple[float, dict]:
    """The k of `ks` with the lowest perplexity on the last `holdout_fraction` of the training stream `ids`
    when fitted on the rest (the validation text is never looked at).

    Returns:
      (best k, {k: held-out perplexity}).
    """
    if (
        isinstance(holdout_fraction, bool)
        or not isinstance(holdout_fraction, int | float)
        or not 0.0 < holdout_fraction < 1.0
    ):
        raise ValueError(f"holdout_fraction: expected a number in (0, 1), got {holdout_fraction!r}")
    ks = tuple(ks) if isinstance(ks, list | tuple) else ks
    if not isinstance(ks, tuple) or not ks or not all(_is_k(k) for k in ks):
        raise ValueError(f"ks: expected a non-empty list or tuple of finite numbers > 0, got {ks!r}")
    vocab_size = _vocab_size(vocab_size)
    arr = _ids(ids, vocab_size, "ids")
    cut = arr.size - max(2, round(arr.size * holdout_fraction))
    if cut < 2:
        raise ValueError(f"ids: expected enough tokens to hold some out, got {arr.size}")
    head, tail = arr[:cut], arr[cut - 1 :]  # the tail's first pair crosses the cut, as text would
    scores = {float(k): perplexity(fit(head, vocab_size, k), tail[:-1], tail[1:]) for k in ks}
    return min(scores, key=scores.get), scores
