"""Text pipeline: every result is checked against hand-written examples or a plain Python loop written
independently of rnnjax.data.text (counting, sorting, windowing and batching done index by index)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnnjax.data import text
from rnnjax.data.text import Vocabulary

ids_strategy = st.lists(st.integers(0, 50), min_size=0, max_size=120)


# ------------------------------------------------------------------------------------------ normalize


def test_normalize_hand_examples():
    raw = "  Hello,\tWORLD!  It's   “fine” — $5.\n"
    assert text.normalize(raw) == raw
    assert text.normalize(raw, lowercase=True) == "  hello,\tworld!  it's   “fine” — $5.\n"
    assert text.normalize(raw, strip_punctuation=True) == "  Hello\tWORLD  Its   fine  5\n"
    assert text.normalize(raw, collapse_whitespace=True) == "Hello, WORLD! It's “fine” — $5."
    everything = dict(lowercase=True, strip_punctuation=True, collapse_whitespace=True)
    assert text.normalize(raw, **everything) == "hello world its fine 5"


def test_char_tokens():
    assert text.char_tokens("ab c\n") == ["a", "b", " ", "c", "\n"]
    assert text.char_tokens("") == []


def test_word_tokens_hand_examples():
    assert text.word_tokens("Don't stop, it's 3.14!") == ["Don't", "stop", ",", "it's", "3", ".", "14", "!"]
    assert text.word_tokens("rock’n’roll (live)\n--end") == ["rock’n’roll", "(", "live", ")", "-", "-", "end"]
    assert text.word_tokens("'quoted'") == ["'", "quoted", "'"]
    stripped = text.normalize("Don't stop, it's 3.14!", strip_punctuation=True)
    assert text.word_tokens(stripped) == ["Dont", "stop", "its", "314"]


@given(st.text(max_size=60))
def test_word_tokens_cover_all_non_space(s):
    tokens = text.word_tokens(s)
    assert "".join(tokens) == "".join(ch for ch in s if not ch.isspace())
    assert all(tok and not any(ch.isspace() for ch in tok) for tok in tokens)


# ------------------------------------------------------------------------------------------------ split


def test_split_hand_example():
    train, valid, test = text.split(np.arange(10), valid_fraction=0.2, test_fraction=0.1)
    assert train.tolist() == [0, 1, 2, 3, 4, 5, 6]
    assert valid.tolist() == [7, 8]
    assert test.tolist() == [9]
    assert train.dtype == valid.dtype == test.dtype == np.int32
    train, valid, test = text.split(list(range(5)), valid_fraction=0.0)
    assert train.tolist() == [0, 1, 2, 3, 4] and valid.size == 0 and test.size == 0


@given(
    st.lists(st.integers(0, 1000), min_size=20, max_size=300),
    st.floats(0.05, 0.45),
    st.sampled_from([0.0, 0.05, 0.2, 0.4]),
)
def test_split_sizes_and_contiguity(ids, valid_fraction, test_fraction):
    train, valid, test = text.split(ids, valid_fraction=valid_fraction, test_fraction=test_fraction)
    n = len(ids)
    n_valid = int(np.floor(n * valid_fraction + 0.5))  # round-half-up; differs from round() only at .5 ties
    n_test = int(np.floor(n * test_fraction + 0.5))
    assert abs(valid.size - n_valid) <= 1 and abs(test.size - n_test) <= 1
    assert valid.size + test.size + train.size == n
    assert np.concatenate([train, valid, test]).tolist() == ids  # contiguous, in order, nothing lost
    assert test.tolist() == (ids[n - test.size :] if test.size else [])  # test is the LAST block


def test_split_errors():
    ids = np.arange(100)
    for bad in (-0.1, 1.0, 1.5, float("nan")):
        with pytest.raises(ValueError, match=rf"valid_fraction must be a number in \[0, 1\), got {bad!r}"):
            text.split(ids, valid_fraction=bad)
        with pytest.raises(ValueError, match=r"test_fraction must be a number in \[0, 1\)"):
            text.split(ids, test_fraction=bad)
    with pytest.raises(ValueError, match="valid_fraction \\+ test_fraction must be < 1"):
        text.split(ids, valid_fraction=0.5, test_fraction=0.5)
    with pytest.raises(ValueError, match="valid_fraction=0.1 of 4 tokens rounds to an empty split"):
        text.split(np.arange(4), valid_fraction=0.1)
    with pytest.raises(ValueError, match="test_fraction=0.1 of 4 tokens rounds to an empty split"):
        text.split(np.arange(4), valid_fraction=0.5, test_fraction=0.1)
    with pytest.raises(ValueError, match="empty training split"):
        text.split(np.arange(1), valid_fraction=0.6)
    with pytest.raises(ValueError, match="ids must be 1-D"):
        text.split(np.zeros((2, 3), np.int32))
    with pytest.raises(ValueError, match="ids must be in"):
        text.split(np.array([1, -2, 3]))
    with pytest.raises(TypeError, match="ids must be integers"):
        text.split(np.array([1.0, 2.0]))


# ------------------------------------------------------------------------------------- sliding windows


def test_sliding_windows_hand_example():
    xs, ys = text.sliding_windows([10, 11, 12, 13, 14, 15], 3, stride=2)
    assert xs.dtype == ys.dtype == np.int32
    assert xs.tolist() == [[10, 11, 12], [12, 13, 14]]
    assert ys.tolist() == [13, 15]
    xs, ys = text.sliding_windows([1, 2, 3], 2)
    assert xs.tolist() == [[1, 2]] and ys.tolist() == [3]


@given(st.lists(st.integers(0, 99), min_size=2, max_size=60), st.integers(1, 8), st.integers(1, 5))
def test_sliding_windows_match_loop(ids, seq_len, stride):
    if len(ids) < seq_len + 1:
        with pytest.raises(ValueError, match=f"at least seq_len \\+ 1 = {seq_len + 1}"):
            text.sliding_windows(ids, seq_len, stride=stride)
        return
    expected_x, expected_y = [], []
    s = 0
    while s + seq_len < len(ids):  # the target ids[s + seq_len] must exist
        expected_x.append(ids[s : s + seq_len])
        expected_y.append(ids[s + seq_len])
        s += stride
    xs, ys = text.sliding_windows(np.asarray(ids), seq_len, stride=stride)
    assert xs.shape == (len(expected_x), seq_len) and ys.shape == (len(expected_y),)
    assert xs.tolist() == expected_x and ys.tolist() == expected_y


def test_sliding_windows_errors():
    with pytest.raises(ValueError, match="seq_len must be an int >= 1, got 0"):
        text.sliding_windows(np.arange(5), 0)
    with pytest.raises(ValueError, match="stride must be an int >= 1, got 0"):
        text.sliding_windows(np.arange(5), 2, stride=0)
    with pytest.raises(ValueError, match="ids has 3 tokens; expected at least seq_len \\+ 1 = 4"):
        text.sliding_windows(np.arange(3), 3)


# ------------------------------------------------------------------------------------- window batches


def test_window_batches_in_order():
    xs, ys = text.sliding_windows(np.arange(12), 2)  # 10 windows
    batches = list(text.window_batches(xs, ys, 4, shuffle=False))
    assert len(batches) == 2  # 10 // 4, last partial batch dropped
    for k, (x, y) in enumerate(batches):
        assert x.shape == (4, 2) and y.shape == (4,)
        for i in range(4):
            row = 4 * k + i
            assert x[i].tolist() == [row, row + 1] and y[i] == row + 2
    kept = list(text.window_batches(xs, ys, 4, shuffle=False, drop_last=False))
    assert [x.shape[0] for x, _ in kept] == [4, 4, 2]


def test_window_batches_shuffle_is_a_seeded_permutation():
    xs, ys = text.sliding_windows(np.arange(40), 3)  # 37 windows; y == x[:, -1] + 1
    batches = list(text.window_batches(xs, ys, 5, seed=7))
    assert len(batches) == 7
    seen = []
    for x, y in batches:
        assert x.shape == (5, 3) and (y == x[:, -1] + 1).all()  # pairs stay together
        seen.extend(x[:, 0].tolist())
    assert len(set(seen)) == 35 and set(seen) <= set(range(37))  # no row twice
    assert seen != sorted(seen)
    again = [x[:, 0].tolist() for x, _ in text.window_batches(xs, ys, 5, seed=7)]
    assert sum(again, []) == seen
    rng = np.random.default_rng(7)
    epoch1 = [x[:, 0].tolist() for x, _ in text.window_batches(xs, ys, 5, rng=rng)]
    epoch2 = [x[:, 0].tolist() for x, _ in text.window_batches(xs, ys, 5, rng=rng)]
    assert sum(epoch1, []) == seen and epoch1 != epoch2  # the Generator advances between epochs
    everything = sum(
        (x[:, 0].tolist() for x, _ in text.window_batches(xs, ys, 5, seed=1, drop_last=False)), []
    )
    assert sorted(everything) == list(range(37))


def test_window_batches_errors():
    xs, ys = text.sliding_windows(np.arange(10), 2)  # 8 windows
    with pytest.raises(ValueError, match="needs rng= .* or seed="):
        text.window_batches(xs, ys, 2)
    with pytest.raises(ValueError, match="give rng or seed, not both"):
        text.window_batches(xs, ys, 2, rng=np.random.default_rng(0), seed=0)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        text.window_batches(xs, ys, 2, rng=0)
    with pytest.raises(ValueError, match="same number of rows"):
        text.window_batches(xs, ys[:-1], 2, seed=0)
    with pytest.raises(ValueError, match="batch_size=9 exceeds the 8 rows"):
        text.window_batches(xs, ys, 9, seed=0)
    with pytest.raises(ValueError, match="batch_size must be an int >= 1, got 0"):
        text.window_batches(xs, ys, 0, seed=0)


# ------------------------------------------------------------------------------------- stream batches


def loop_stream_batches(ids, batch_size, seq_len):
    """Reference: rows by explicit index arithmetic on the raw stream, time step by time step."""
    row_len = len(ids) // batch_size
    batches = []
    k = 0
    while (k + 1) * seq_len + 1 <= row_len:  # the last target of the batch must lie inside the row
        x = [[ids[b * row_len + k * seq_len + t] for t in range(seq_len)] for b in range(batch_size)]
        y = [[ids[b * row_len + k * seq_len + t + 1] for t in range(seq_len)] for b in range(batch_size)]
        batches.append((x, y))
        k += 1
    return batches


def test_stream_batches_hand_example():
    # 14 tokens, 2 rows of 7: [0..6] and [7..13]; seq_len 3 -> 2 batches ((7 - 1) // 3).
    batches = list(text.stream_batches(np.arange(14) + 100, 2, 3))
    assert (
        len(batches) == 2 == text.num_stream_batches(np.arange(14), 2, 3) == text.num_stream_batches(14, 2, 3)
    )
    (x0, y0), (x1, y1) = batches
    assert x0.dtype == y0.dtype == np.int32 and x0.shape == y0.shape == (2, 3)
    assert x0.tolist() == [[100, 101, 102], [107, 108, 109]]
    assert y0.tolist() == [[101, 102, 103], [108, 109, 110]]
    assert x1.tolist() == [[103, 104, 105], [110, 111, 112]]
    assert y1.tolist() == [[104, 105, 106], [111, 112, 113]]


@given(st.integers(0, 200), st.integers(1, 6), st.integers(1, 9))
def test_stream_batches_continuity_and_targets(n, batch_size, seq_len):
    positions = np.arange(n)  # token value == its position in the raw stream
    expected = loop_stream_batches(positions.tolist(), batch_size, seq_len)
    assert text.num_stream_batches(n, batch_size, seq_len) == len(expected)
    assert text.num_stream_batches(positions, batch_size, seq_len) == len(expected)
    if not expected:
        with pytest.raises(ValueError, match="expected at least batch_size \\* \\(seq_len \\+ 1\\)"):
            text.stream_batches(positions, batch_size, seq_len)
        return
    batches = list(text.stream_batches(positions, batch_size, seq_len))
    assert len(batches) == len(expected)
    for (x, y), (ex, ey) in zip(batches, expected):
        assert x.shape == y.shape == (batch_size, seq_len)
        assert x.tolist() == ex and y.tolist() == ey
        for b in range(batch_size):
            for t in range(seq_len):
                assert y[b, t] == x[b, t] + 1  # y is the next token of the raw stream
                if t + 1 < seq_len:
                    assert x[b, t + 1] == x[b, t] + 1  # each row is contiguous
    for (x_prev, _), (x_next, _) in zip(batches, batches[1:]):
        for b in range(batch_size):
            assert x_next[b, 0] == x_prev[b, -1] + 1  # row b of batch k+1 continues row b of batch k
    # Row b covers its own contiguous block of the stream: rows never overlap.
    firsts = [int(batches[0][0][b, 0]) for b in range(batch_size)]
    assert firsts == [b * (n // batch_size) for b in range(batch_size)]


@given(st.lists(st.integers(0, 30), min_size=0, max_size=150), st.integers(1, 4), st.integers(1, 6))
def test_stream_batches_match_loop_on_random_tokens(ids, batch_size, seq_len):
    expected = loop_stream_batches(ids, batch_size, seq_len)
    if not expected:
        return
    got = [(x.tolist(), y.tolist()) for x, y in text.stream_batches(ids, batch_size, seq_len)]
    assert got == expected


def test_stream_batches_errors():
    with pytest.raises(ValueError, match="ids has 7 tokens; expected at least .* = 8 for one batch"):
        text.stream_batches(np.arange(7), 2, 3)
    with pytest.raises(ValueError, match="batch_size must be an int >= 1, got 0"):
        text.stream_batches(np.arange(20), 0, 3)
    with pytest.raises(ValueError, match="seq_len must be an int >= 1, got -1"):
        text.num_stream_batches(20, 2, -1)
    with pytest.raises(ValueError, match="ids must be 1-D"):
        text.stream_batches(np.zeros((4, 5), np.int64), 2, 2)
    with pytest.raises(ValueError, match="ids as a length must be >= 0, got -3"):
        text.num_stream_batches(-3, 2, 2)


@given(st.lists(st.integers(0, 30), min_size=2, max_size=150), st.integers(1, 4), st.integers(1, 6))
def test_stream_batch_with_the_last_partial_chunk_matches_index_arithmetic(ids, batch_size, seq_len):
    # Every chunk, the shorter last one included, by explicit indices into the raw stream.
    row_len = len(ids) // batch_size
    if row_len < 2:
        return
    rows = text.stream_rows(ids, batch_size)
    assert rows.dtype == np.int32 and rows.shape == (batch_size, row_len)
    k, scored = 0, 0
    while k * seq_len < row_len - 1:
        width = min(seq_len, row_len - 1 - k * seq_len)
        x, y = text.stream_batch(rows, k, seq_len)
        assert x.tolist() == [
            [ids[b * row_len + k * seq_len + t] for t in range(width)] for b in range(batch_size)
        ]
        assert y.tolist() == [
            [ids[b * row_len + k * seq_len + t + 1] for t in range(width)] for b in range(batch_size)
        ]
        scored += width
        k += 1
    assert scored == row_len - 1  # every token of a row but its first is a target exactly once
    with pytest.raises(ValueError, match=r"k: expected 0 <= k \* seq_len < row_len - 1"):
        text.stream_batch(rows, k, seq_len)


def test_tokenize_is_normalize_then_the_level_tokens():
    raw = "Don't  STOP, me now!"
    assert text.tokenize(raw, "char", lowercase=True) == list("don't  stop, me now!")
    assert text.tokenize(raw, "word") == ["Don't", "STOP", ",", "me", "now", "!"]
    assert text.tokenize(raw, "word", lowercase=True, strip_punctuation=True) == ["dont", "stop", "me", "now"]
    assert text.LEVELS == ("char", "word")
    with pytest.raises(ValueError, match=r"level: expected one of \('char', 'word'\), got 'byte'"):
        text.tokenize(raw, "byte")


def test_split_sizes_are_the_sizes_of_split():
    for n, valid, test in ((10, 0.2, 0.1), (101, 0.1, 0.0), (7, 0.3, 0.3)):
        blocks = text.split(np.arange(n), valid_fraction=valid, test_fraction=test)
        assert text.split_sizes(n, valid_fraction=valid, test_fraction=test) == tuple(b.size for b in blocks)
    assert text.split_sizes(10, valid_fraction=0.2, test_fraction=0.1) == (7, 2, 1)  # by hand
    with pytest.raises(ValueError, match="valid_fraction=0.1 of 4 tokens rounds to an empty split"):
        text.split_sizes(4, valid_fraction=0.1)


def test_end_to_end_char_pipeline():
    corpus = text.normalize("The quick brown fox.\nJumps over   the lazy dog!", collapse_whitespace=True)
    vocab = Vocabulary.build(text.char_tokens(corpus), unk=None)
    ids = vocab.encode(text.char_tokens(corpus))
    train, valid, _ = text.split(ids, valid_fraction=0.2)
    assert "".join(vocab.decode(np.concatenate([train, valid]))) == corpus
    for x, y in text.stream_batches(train, 2, 4):
        for b in range(2):
            row = "".join(vocab.decode(x[b])) + vocab.decode(y[b])[-1]
            assert row in corpus  # x then its last target spell a contiguous piece of the text
