"""The opinion-phrase generator against its definition, read back from the generated text alone (the
tokens between the spans, the words before and after them), and the tutorial comments' bold phrases."""

import collections

import numpy as np
import pytest

from rnnjax.data import labelled, opinions

POSITIVE = {tuple(p.split()) for p in opinions.POSITIVE}
NEGATIVE = {tuple(p.split()) for p in opinions.NEGATIVE}


def polarity(phrase) -> str:
    """The label of a deciding phrase, by the lexicon: a listed phrase, or "not" + a negatable word."""
    phrase = tuple(phrase)
    if phrase[0] == "not":
        return "negative" if opinions.NEGATABLE[phrase[1]] == "positive" else "positive"
    assert (phrase in POSITIVE) != (phrase in NEGATIVE), phrase
    return "positive" if phrase in POSITIVE else "negative"


def test_every_text_is_labelled_by_its_deciding_phrase_at_its_position():
    data = opinions.opinion_reviews(900, min_len=25, max_len=34, seed=3)
    tokens = labelled.tokenize(data.texts, level="word", lowercase=True)
    assert tokens == [t.split() for t in data.texts]  # the same tokens a classifier reads
    opinion_words = {w for p in POSITIVE | NEGATIVE for w in p} - set(opinions.FILLER)
    for toks, label, (a, b), (c, d), where, how in zip(tokens, data.labels, data.spans, data.decoys,
                                                        data.positions, data.constructions):  # fmt: skip
        L, phrase = len(toks), toks[a:b]
        assert 25 <= L <= 34 and polarity(phrase) == label
        assert (phrase[0] == "not") == (how == "negation")
        if where == "start":
            assert a < opinions.EDGE
        elif where == "end":
            assert b > L - opinions.EDGE
        else:
            assert abs((a + b) // 2 - L // 2) <= opinions.CENTRE
        if how == "contrast":  # a decoy of the other polarity, joined by ", but" (before) or ", although"
            assert polarity(toks[c:d]) != label
            assert toks[c - 2 : c] == [",", "although"] if c > a else toks[a - 2 : a] == [",", "but"]
        else:
            assert (c, d) == (-1, -1)
        rest = [w for i, w in enumerate(toks) if not (a <= i < b or c <= i < d)]
        connectives = {"but", "although"} if how == "contrast" else set()
        assert set(rest) <= set(opinions.FILLER) | connectives and not set(rest) & opinion_words
    for values, names in ((data.labels, opinions.LABELS), (data.positions, opinions.POSITIONS),
                          (data.constructions, opinions.CONSTRUCTIONS)):  # fmt: skip
        assert sorted(collections.Counter(values).values()) in ([450, 450], [300, 300, 300]), names


def test_the_same_seed_gives_the_same_texts_and_subsets_are_honoured():
    a = opinions.opinion_reviews(20, seed=7, positions=("start",), constructions=("negation",))
    b = opinions.opinion_reviews(20, seed=7, positions=("start",), constructions=("negation",))
    assert a.texts == b.texts and np.array_equal(a.spans, b.spans)
    assert set(a.positions) == {"start"} and set(a.constructions) == {"negation"}
    assert labelled.opinion_reviews is opinions.opinion_reviews  # reachable where the issue asks
    # the bound on min_len: the longest contrast in the middle of a text of min_length() tokens fits
    assert opinions.min_length() == 25


def test_tutorial_comments_and_their_bold_phrases():
    texts, labels, spans, verbatim = opinions.tutorial_comments()
    assert verbatim == [True, False, False, False, False, False]  # only the first is the tutorial's text
    assert labels == ["negative"] * 3 + ["positive"] * 3
    tokens = labelled.tokenize(texts, level="word", lowercase=True)
    bold = [" ".join(t[a:b]) for t, (a, b) in zip(tokens, spans)]
    assert bold == [
        "worthless", "complete disappointment", "not satisfied", "definitely recommend",
        "awesome , a complete price performance product", "great",
    ]  # fmt: skip
    assert [polarity(t[a:b]) for t, (a, b) in zip(tokens, spans)] == labels  # the lexicon agrees
    known = set(opinions.FILLER) | {w for p in POSITIVE | NEGATIVE for w in p} | {"not", "but"}
    assert {w for t in tokens for w in t} <= known  # no tutorial word is unknown to a generated vocabulary


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n=1), "^n: expected an int >= 2"),
        (dict(n=10, min_len=24), r"^min_len, max_len: expected 25 <= min_len <= max_len"),
        (dict(n=10, min_len=30, max_len=29), r"^min_len, max_len: expected 25 <= min_len"),
        (dict(n=10, positions=("top",)), "^positions: expected distinct names from"),
        (dict(n=10, constructions=()), "^constructions: expected a non-empty tuple"),
    ],
)
def test_bad_arguments_are_refused_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        opinions.opinion_reviews(**kwargs)
    with pytest.raises(ValueError, match="^phrase: expected words of the text"):
        opinions.phrase_span("a good phone", "great")
