"""`rnnjax.data.ngram`: the sparse add-k bigram against a dense table counted with plain loops."""

import math

import numpy as np
import pytest

from rnnjax.data import ngram

TOL = 1e-12  # float64 sums of at most a few hundred terms


def dense_table(ids, vocab_size, k):
    counts = np.zeros((vocab_size, vocab_size))
    for a, b in zip(ids[:-1], ids[1:]):
        counts[a, b] += 1
    return (counts + k) / (counts.sum(axis=1, keepdims=True) + k * vocab_size)


@pytest.mark.parametrize("k", [1e-3, 0.5, 1.0])
def test_log_probs_match_a_dense_table(k):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 7, 300)
    model = ngram.fit(ids, 9, k)  # ids 7 and 8 never occur: their rows are uniform
    table = dense_table(ids, 9, k)
    prev, nxt = np.meshgrid(np.arange(9), np.arange(9), indexing="ij")
    got = np.exp(ngram.log_probs(model, prev.ravel(), nxt.ravel())).reshape(9, 9)
    np.testing.assert_allclose(got, table, rtol=TOL, atol=0)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=TOL)
    np.testing.assert_allclose(got[8], 1 / 9, rtol=TOL)


def test_perplexity_is_exp_of_mean_nll_and_uniform_in_the_limit():
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 5, 200)
    test = rng.integers(0, 5, 50)
    model = ngram.fit(ids, 5, 0.1)
    table = dense_table(ids, 5, 0.1)
    nll = -np.mean([math.log(table[a, b]) for a, b in zip(test[:-1], test[1:])])
    assert ngram.perplexity(model, test[:-1], test[1:]) == pytest.approx(math.exp(nll), rel=TOL)
    huge = ngram.fit(ids, 5, 1e12)  # smoothing swamps the counts: uniform over V
    assert ngram.perplexity(huge, test[:-1], test[1:]) == pytest.approx(5.0, rel=1e-9)


def test_choose_k_uses_only_the_training_stream():
    rng = np.random.default_rng(2)
    ids = rng.integers(0, 20, 2000)
    k, scores = ngram.choose_k(ids, 20)
    assert set(scores) == set(ngram.DEFAULT_KS) and scores[k] == min(scores.values())
    cut = 2000 - 200
    head, tail = ids[:cut], ids[cut - 1 :]
    assert scores[k] == pytest.approx(ngram.perplexity(ngram.fit(head, 20, k), tail[:-1], tail[1:]), rel=TOL)


def test_bad_input():
    with pytest.raises(ValueError, match=r"k: expected a finite number > 0, got 0"):
        ngram.fit([0, 1], 2, 0)
    with pytest.raises(ValueError, match=r"ids: expected ids in \[0, 2\), got values in \[0, 5\]"):
        ngram.fit([0, 5], 2, 1.0)
    with pytest.raises(ValueError, match=r"ids: expected at least 2 tokens"):
        ngram.fit([1], 2, 1.0)
    with pytest.raises(ValueError, match=r"prev, nxt: expected the same length"):
        ngram.log_probs(ngram.fit([0, 1, 0], 2, 1.0), [0, 1], [1])
