"""Review-like texts whose label is decided by one opinion phrase at a controlled position, with contrast
and negation constructions, and the six comments of the classic "LSTMs ignore all other words" tutorial.

Plain NumPy and the standard library, like the rest of `rnnjax.data` (re-exported by
`rnnjax.data.labelled`). A text is a sequence of word tokens joined by single spaces, so that
`labelled.tokenize(texts, level="word", lowercase=True)` gives back exactly the generated tokens:

    filler filler ... [construction] ... filler filler          (min_len to max_len tokens in all)

- the filler: words drawn uniformly from `FILLER`, neutral product-review words that carry no label
  (every word of the six tutorial comments outside their opinion phrases and the connective "but" is
  among them, so no tutorial word is unknown to a vocabulary built on generated texts);
- the construction, one of `CONSTRUCTIONS`, holds the *deciding phrase* (its token span is returned):
  "plain": one phrase of `POSITIVE` or `NEGATIVE` (label: its polarity);
  "negation": "not" + a word of `NEGATABLE` (label: the opposite of the word's polarity, e.g. "not
  satisfied" is negative, "not bad" positive; the span holds "not" and the word);
  "contrast": a decoy phrase of the opposite polarity and the deciding phrase, joined as
  "decoy , but PHRASE" (the deciding phrase after it) or "PHRASE , although decoy" (before it);
- its position, one of `POSITIONS`: "start" (the deciding phrase begins at token 0-2), "middle" (its
  centre within 2 tokens of the text's centre) or "end" (it ends at one of the last 3 tokens). For a
  classifier that reads the last valid step, "start" is the longest way back.

Labels, positions and constructions are each balanced (a seeded permutation of equal shares); "not",
"but" and "although" appear only in their constructions.

    >>> data = opinion_reviews(600, min_len=25, max_len=40, seed=0)
    >>> data.texts[0], data.labels[0], data.spans[0], data.positions[0], data.constructions[0]
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from rnnjax.data import _arguments
from rnnjax.data import text as text_lib

__all__ = [
    "CONSTRUCTIONS",
    "FILLER",
    "LABELS",
    "NEGATABLE",
    "NEGATIVE",
    "POSITIONS",
    "POSITIVE",
    "TUTORIAL",
    "Opinions",
    "TutorialComment",
    "min_length",
    "opinion_reviews",
    "phrase_span",
    "tutorial_comments",
]

LABELS = ("negative", "positive")  # label ids 0 and 1 (`labelled.LabelSet` sorts them so)
POSITIONS = ("start", "middle", "end")
CONSTRUCTIONS = ("plain", "negation", "contrast")
EDGE = 3  # "start": the phrase begins at one of the first EDGE tokens; "end": it ends at one of the last
CENTRE = 2  # "middle": the phrase's centre is within CENTRE tokens of the text's centre

# The lexicon. Opinion phrases (tokens joined by spaces, lowercase, as `text.word_tokens` splits them);
# the tutorial's bold phrases are among them.
POSITIVE = (
    "great", "excellent", "awesome", "definitely recommend", "awesome , a complete price performance product",
    "works perfectly", "satisfied", "happy", "good", "fast",
)  # fmt: skip
NEGATIVE = (
    "worthless", "complete disappointment", "terrible", "awful", "waste of money", "broken", "bad",
    "disappointed", "slow",
)  # fmt: skip
# Words that "not" negates: {word: its own polarity}; "not <word>" has the other one.
NEGATABLE = {
    "satisfied": "positive", "happy": "positive", "good": "positive", "great": "positive",
    "bad": "negative", "disappointed": "negative", "slow": "negative",
}  # fmt: skip
FILLER = (
    # the words of the six tutorial comments outside their bold phrases
    "i've", "been", "saving", "for", "6", "months", "just", "to", "get", "this", "phone", ".", "i", "bought",
    "it", "very", "lovingly", "and", "willingly", "the", "product", "is", "battery", "charges", ",",
    "laptop", "was", "a", "have", "used", "blender", "every", "day", "two", "weeks", "am", "with",
    "headset", "my", "brother", "last", "month", "would", "anyone", "lasts", "days", "camera", "takes",
    "photos", "at", "night", "arrived", "on", "time", "setup", "took", "ten", "minutes", "sound",
    # more of the same kind
    "screen", "box", "delivery", "keyboard", "charger", "cable", "came", "in", "of", "we", "our", "kitchen",
    "office", "week", "color", "size", "black", "white", "order", "store", "online", "package", "music",
    "calls", "app", "update", "after", "before", "home", "work", "uses", "one", "three", "again", "also",
    "today", "yesterday", "mother", "friend", "gift", "price", "shipping", "manual", "button", "case",
)  # fmt: skip


class Opinions(NamedTuple):
    """What `opinion_reviews` returns: n texts and, for each, where its label comes from."""

    texts: list[str]  # tokens joined by single spaces
    labels: list[str]  # "negative" or "positive"
    spans: np.ndarray  # <int64>[n, 2] [start, stop) token indices of the deciding phrase
    decoys: np.ndarray  # <int64>[n, 2] the decoy phrase of a contrast text; (-1, -1) for the others
    positions: list[str]  # "start", "middle" or "end": where the deciding phrase sits
    constructions: list[str]  # "plain", "negation" or "contrast"


def _check_choice(name: str, values, allowed: tuple[str, ...]) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, tuple | list) or not values:
        raise ValueError(f"{name}: expected a non-empty tuple of names from {allowed}, got {values!r}")
    bad = [v for v in values if v not in allowed]
    if bad or len(set(values)) != len(values):
        raise ValueError(f"{name}: expected distinct names from {allowed}, got {list(values)!r}")
    return tuple(values)


def _phrase(rng, polarity: int) -> list[str]:
    return str(rng.choice(POSITIVE if polarity else NEGATIVE)).split()


def _assemble(phrase: list[str], decoy: list[str] | None, after: bool):
    """(tokens, [start, stop) of the deciding phrase within them, [start, stop) of the decoy or None)."""
    if decoy is None:
        return phrase, (0, len(phrase)), None
    if after:  # decoy , but PHRASE
        tokens = [*decoy, ",", "but", *phrase]
        return tokens, (len(decoy) + 2, len(tokens)), (0, len(decoy))
    tokens = [*phrase, ",", "although", *decoy]  # PHRASE , although decoy
    return tokens, (0, len(phrase)), (len(phrase) + 2, len(tokens))


def _construction(rng, polarity: int, construction: str, position: str):
    """A random construction of `polarity` for `position`: `_assemble`'s (tokens, span, decoy span)."""
    if construction == "plain":
        return _assemble(_phrase(rng, polarity), None, False)
    if construction == "negation":
        own = LABELS.index("negative" if polarity else "positive")  # the negated word's polarity
        word = str(rng.choice([w for w, p in NEGATABLE.items() if LABELS.index(p) == own]))
        return _assemble(["not", word], None, False)
    after = position == "end" or (position == "middle" and rng.integers(2) == 1)
    return _assemble(_phrase(rng, polarity), _phrase(rng, 1 - polarity), after)


def _offsets(L: int, position: str, span: tuple[int, int]) -> range:
    """Where a construction may start in a text of L tokens so that its deciding phrase [a, b) sits at
    `position`: the offsets `opinion_reviews` draws from."""
    a, b = span
    if position == "start":
        return range(-a, EDGE - a)
    if position == "end":
        return range(L - EDGE + 1 - b, L + 1 - b)
    return range(L // 2 - CENTRE - (a + b) // 2, L // 2 + CENTRE + 1 - (a + b) // 2)


@functools.cache
def min_length() -> int:
    """The shortest text length at which every construction of the lexicon fits at every position
    (checked over every phrase, decoy and offset): `opinion_reviews`' lower bound for min_len."""
    pos, neg = [p.split() for p in POSITIVE], [p.split() for p in NEGATIVE]
    shapes = [_assemble(p, None, False) for p in pos + neg] + [_assemble(["not", "x"], None, False)]
    for phrases, decoys in ((pos, neg), (neg, pos)):
        shapes += [_assemble(p, d, after) for p in phrases for d in decoys for after in (False, True)]
    for L in range(1, 200):
        fits = all(
            0 <= o and o + len(tokens) <= L
            for tokens, span, _ in shapes
            for position in POSITIONS
            for o in _offsets(L, position, span)
            if position != "start" or span[0] == 0  # a contrast at the start puts the phrase first
            if position != "end" or span[1] == len(tokens)  # ... and at the end, last
        )
        if fits:
            return L
    raise AssertionError("no text length fits the lexicon's constructions")


def opinion_reviews(
    n: int,
    *,
    min_len: int = 25,
    max_len: int = 40,
    positions: tuple[str, ...] = POSITIONS,
    constructions: tuple[str, ...] = CONSTRUCTIONS,
    seed: int = 0,
) -> Opinions:
    """n seeded review-like texts, each labelled by one deciding phrase at a controlled position (see the
    module docstring for the lexicon and the constructions).

    Args:
      n: number of texts (>= 2); labels, positions and constructions are balanced (equal shares, the
        remainder going to the first ones), in a seeded random order.
      min_len, max_len: each text's length in tokens, uniform in [min_len, max_len]; min_len must be at
        least `min_length()`, where every construction fits at every position.
      positions: the positions to draw from (`POSITIONS`).
      constructions: the constructions to draw from (`CONSTRUCTIONS`).
      seed: NumPy seed; the same arguments give the same texts.
    Returns:
      `Opinions(texts, labels, spans, decoys, positions, constructions)`.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 2:
        raise ValueError(f"n: expected an int >= 2, got {n!r}")
    seed = _arguments.seed("seed", seed)
    for name, value in (("min_len", min_len), ("max_len", max_len)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ValueError(f"{name}: expected an int, got {value!r}")
    if not min_length() <= min_len <= max_len:
        raise ValueError(
            f"min_len, max_len: expected {min_length()} <= min_len <= max_len (room for every construction "
            f"of the lexicon at every position, `min_length()`), got {min_len} and {max_len}"
        )
    positions = _check_choice("positions", positions, POSITIONS)
    constructions = _check_choice("constructions", constructions, CONSTRUCTIONS)
    rng = np.random.default_rng(seed)
    polarity = rng.permutation(np.arange(n) % 2)
    where = rng.permutation(np.arange(n) % len(positions))
    how = rng.permutation(np.arange(n) % len(constructions))
    lengths = rng.integers(min_len, max_len + 1, size=n)
    texts, spans, decoys = [], np.zeros((n, 2), np.int64), np.full((n, 2), -1, np.int64)
    for i in range(n):
        position, L = positions[where[i]], int(lengths[i])
        tokens, (a, b), decoy = _construction(rng, int(polarity[i]), constructions[how[i]], position)
        offset = int(rng.choice(_offsets(L, position, (a, b))))  # inside the text: L >= min_length()
        words = [str(w) for w in rng.choice(FILLER, size=L)]
        words[offset : offset + len(tokens)] = tokens
        texts.append(" ".join(words))
        spans[i] = (offset + a, offset + b)
        if decoy is not None:
            decoys[i] = (offset + decoy[0], offset + decoy[1])
    return Opinions(
        texts=texts,
        labels=[LABELS[p] for p in polarity],
        spans=spans,
        decoys=decoys,
        positions=[positions[w] for w in where],
        constructions=[constructions[h] for h in how],
    )


# ------------------------------------------------------------------------------------------- tutorial


class TutorialComment(NamedTuple):
    text: str
    label: str  # "negative" or "positive"
    bold: str  # the phrase the tutorial sets in bold (the words it says the network listens to)
    verbatim: bool  # True: the tutorial's own text; False: written here around the tutorial's bold phrase


# The six comments of the tutorial. Only the first is known verbatim (quoted in issue #21); the other five
# are RECONSTRUCTIONS written for rnnjax around the tutorial's bold phrases and expected labels (from
# `FILLER` words, so that no word is unknown to a model trained on `opinion_reviews`), not its text.
TUTORIAL = (
    TutorialComment(
        "I've been saving for 6 months just to get this phone. I bought it very lovingly and willingly, "
        "but the product is worthless",
        "negative", "worthless", True,
    ),
    TutorialComment(
        "The battery charges fast, but the laptop was a complete disappointment.",
        "negative", "complete disappointment", False,
    ),
    TutorialComment(
        "I have used this blender every day for two weeks and I am not satisfied with it.",
        "negative", "not satisfied", False,
    ),
    TutorialComment(
        "I bought this headset for my brother last month and I would definitely recommend it to anyone.",
        "positive", "definitely recommend", False,
    ),
    TutorialComment(
        "Awesome, a complete price performance product. The battery lasts two days and the camera takes "
        "photos at night.",
        "positive", "Awesome, a complete price performance product", False,
    ),
    TutorialComment(
        "The phone arrived on time, the setup took ten minutes and the sound is great.",
        "positive", "great", False,
    ),
)  # fmt: skip


def _tokens(text: str) -> list[str]:
    """Lowercased word tokens, as `labelled.tokenize(..., level="word", lowercase=True)` reads them."""
    return text_lib.word_tokens(text_lib.normalize(text, lowercase=True, collapse_whitespace=True))


def phrase_span(text: str, phrase: str) -> tuple[int, int]:
    """[start, stop) of the last occurrence of `phrase`'s tokens among `text`'s (lowercased word tokens);
    a ValueError if it does not occur."""
    tokens, want = _tokens(text), _tokens(phrase)
    for start in range(len(tokens) - len(want), -1, -1):
        if tokens[start : start + len(want)] == want:
            return start, start + len(want)
    raise ValueError(f"phrase: expected words of the text {text[:50]!r}..., got {phrase!r}, which it lacks")


def tutorial_comments() -> tuple[list[str], list[str], np.ndarray, list[bool]]:
    """The six tutorial comments: (texts, expected labels, <int64>[6, 2] token spans of their bold
    phrases, which of them are verbatim)."""
    spans = np.array([phrase_span(c.text, c.bold) for c in TUTORIAL], np.int64)
    return [c.text for c in TUTORIAL], [c.label for c in TUTORIAL], spans, [c.verbatim for c in TUTORIAL]
