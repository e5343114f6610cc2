"""Text -> integer token ids -> batches, for next-character and next-word language models.

Plain NumPy and the standard library (no jax), so it can run in data-loading processes. The pipeline is

    text --normalize--> text --char_tokens / word_tokens--> tokens --Vocabulary.encode--> ids
         (`Vocabulary` lives in `rnnjax.data.vocabulary`; it is importable from here too)
         (`tokenize` = normalize, then the tokens of a level in `LEVELS`)
    ids --split--> (train, valid, test) contiguous blocks (`split_sizes` gives their sizes)
    ids --sliding_windows + window_batches--> (x <int32>[B, T], y <int32>[B])      (one next token)
    ids --stream_rows--> rows <int32>[B, n // B] --stream_batch(rows, k)--> (x <int32>[B, T], y <int32>[B, T])
         (`stream_batches` yields them in order: truncated BPTT with the carry passed on)

Example:

    >>> from rnnjax.data import text
    >>> tokens = text.char_tokens(text.normalize("Hello,  world!", lowercase=True, collapse_whitespace=True))
    >>> vocab = text.Vocabulary.build(tokens, unk=None)
    >>> train, valid, _ = text.split(vocab.encode(tokens), valid_fraction=0.25)
    >>> for x, y in text.stream_batches(train, batch_size=2, seq_len=3):
    ...     pass  # x, y: <int32>[2, 3]; y[b, t] is the token after x[b, t]; carry row b to the next batch
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Iterator

import numpy as np

from rnnjax.data import _arguments
from rnnjax.data.vocabulary import Vocabulary  # re-exported: its home until it got a module of its own

__all__ = [
    "LEVELS",
    "normalize",
    "char_tokens",
    "word_tokens",
    "tokenize",
    "WORD_PATTERN",
    "Vocabulary",
    "split",
    "split_sizes",
    "sliding_windows",
    "window_batches",
    "stream_rows",
    "stream_batch",
    "stream_batches",
    "num_stream_batches",
]

# Token levels: a token is one character, or one word or punctuation mark (`word_tokens`).
LEVELS = ("char", "word")

_INT32_MAX = np.iinfo(np.int32).max
_ASCII_PUNCTUATION = frozenset(string.punctuation)

# A word is a run of word characters (Unicode letters, digits, underscore) with optional inner apostrophes,
# so "don't" and "rock’n’roll" stay whole; every other non-space character (punctuation, symbols, emoji) is
# a token of its own; whitespace separates tokens and is dropped.
WORD_PATTERN = re.compile(r"\w+(?:['\u2019]\w+)*|[^\w\s]")


# ------------------------------------------------------------------------------------------------ text


def _is_punctuation(ch: str) -> bool:
    # ASCII string.punctuation (as in the classic tutorials, which includes symbols like $ + < = > ^ ` | ~)
    # plus every Unicode punctuation character (categories Pc Pd Ps Pe Pi Pf Po: “ ” — « » ¿ ...).
    return ch in _ASCII_PUNCTUATION or unicodedata.category(ch).startswith("P")


def normalize(
    text: str, *, lowercase: bool = False, strip_punctuation: bool = False, collapse_whitespace: bool = False
) -> str:
    """Optional clean-ups of raw text before tokenization; with no option set the text is returned as is.

    They are applied in the order lowercase, strip punctuation, collapse whitespace (so that the gaps left
    by removed punctuation are collapsed too).

    Args:
      text: the raw text.
      lowercase: apply `str.lower`.
      strip_punctuation: delete ASCII `string.punctuation` and every Unicode punctuation character
        (category P*). Apostrophes are deleted too, so "don't" becomes "dont".
      collapse_whitespace: replace each run of whitespace (spaces, tabs, newlines) by one space and strip
        both ends.

    Returns:
      The normalized text.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    for name, value in (
        ("lowercase", lowercase),
        ("strip_punctuation", strip_punctuation),
        ("collapse_whitespace", collapse_whitespace),
    ):
        _arguments.flag(name, value)
    if lowercase:
        text = text.lower()
    if strip_punctuation:
        text = "".join(ch for ch in text if not _is_punctuation(ch))
    if collapse_whitespace:
        text = re.sub(r"\s+", " ", text).strip()
    return text


def char_tokens(text: str) -> list[str]:
    """Characters (Unicode code points) of `text`, whitespace included, as tokens.

    Args:
      text: the text, typically after `normalize`.

    Returns:
      A list of one-character strings, `len(text)` long.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return list(text)


def word_tokens(text: str) -> list[str]:
    """Words and punctuation marks of `text`, in order, as tokens (whitespace dropped).

    Tokens are the matches of `WORD_PATTERN` = `\\w+(?:['’]\\w+)*|[^\\w\\s]`: a word is a run of
    letters/digits/underscores with optional inner apostrophes ("don't" is one token); every other
    non-space character is a token by itself ("3.14!" -> "3", ".", "14", "!"). After
    `normalize(..., strip_punctuation=True)` only words remain.

    Args:
      text: the text, typically after `normalize`.

    Returns:
      The list of tokens; `"".join(tokens)` equals `text` with its whitespace removed.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return WORD_PATTERN.findall(text)


def tokenize(text: str, level: str, **options) -> list[str]:
    """`normalize(text, **options)` cut into tokens of `level`: `char_tokens` for "char", `word_tokens`
    for "word" (see `LEVELS`). The one tokenisation of training and of prompts.

    Args:
      text: the raw text.
      level: "char" or "word".
      **options: `normalize`'s options (`lowercase`, `strip_punctuation`, `collapse_whitespace`).

    Returns:
      The list of tokens.
    """
    if level not in LEVELS:
        raise ValueError(f"level: expected one of {LEVELS}, got {level!r}")
    normalized = normalize(text, **options)
    return char_tokens(normalized) if level == "char" else word_tokens(normalized)


# ------------------------------------------------------------------------------------------------ ids


def _as_ids(ids, name: str = "ids") -> np.ndarray:
    """Validate a 1-D array of non-negative integer ids and return it as int32."""
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D <int>[n], got shape {arr.shape}")
    if arr.size == 0:
        return arr.astype(np.int32)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be integers, got dtype {arr.dtype}")
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi > _INT32_MAX:
        raise ValueError(f"{name} must be in [0, {_INT32_MAX}], got {lo if lo < 0 else hi}")
    return arr.astype(np.int32, copy=False)


def _check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)


def split_sizes(n: int, *, valid_fraction: float = 0.1, test_fraction: float = 0.0) -> tuple[int, int, int]:
    """Sizes (n_train, n_valid, n_test) of the contiguous blocks `split` cuts a stream of `n` tokens into:
    `round(n * fraction)` for valid and test, the rest for train. Use it to split a list of tokens the
    same way as ids (e.g. to build a vocabulary on the training block only).

    Args:
      n: the number of tokens (>= 0).
      valid_fraction: fraction of tokens for validation, in [0, 1).
      test_fraction: fraction of tokens for test, in [0, 1).

    Returns:
      (n_train, n_valid, n_test), summing to n. A split with fraction 0 is empty; with a positive fraction
      it must get at least one token, and train always gets at least one.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise ValueError(f"n must be an int >= 0 (a number of tokens), got {n!r}")
    for name, f in (("valid_fraction", valid_fraction), ("test_fraction", test_fraction)):
        if isinstance(f, bool) or not isinstance(f, int | float) or not (0.0 <= f < 1.0):
            raise ValueError(f"{name} must be a number in [0, 1), got {f!r}")
    if valid_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"valid_fraction + test_fraction must be < 1 to leave a training split, got "
            f"{valid_fraction!r} + {test_fraction!r} = {valid_fraction + test_fraction!r}"
        )
    n_valid, n_test = round(n * valid_fraction), round(n * test_fraction)
    n_train = n - n_valid - n_test
    for name, f, size in (
        ("valid_fraction", valid_fraction, n_valid),
        ("test_fraction", test_fraction, n_test),
    ):
        if f > 0 and size == 0:
            raise ValueError(
                f"{name}={f!r} of {n} tokens rounds to an empty split; expected at least one token "
                f"(use a larger fraction, more data, or 0 for no such split)"
            )
    if n_train < 1:
        raise ValueError(
            f"ids has {n} tokens, which leaves an empty training split with "
            f"valid_fraction={valid_fraction!r} "
            f"and test_fraction={test_fraction!r}; expected at least one training token"
        )
    return n_train, n_valid, n_test


def split(
    ids, *, valid_fraction: float = 0.1, test_fraction: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut a token stream into contiguous train / valid / test blocks, in that order.

    Contiguous blocks (not random windows) keep overlapping windows of the same text out of two splits.
    Sizes are `split_sizes(n, ...)`: `round(n * fraction)` for valid and test; train is the rest, at the
    start.

    Args:
      ids: <int>[n] token ids.
      valid_fraction: fraction of tokens for validation, in [0, 1); the block just before test.
      test_fraction: fraction of tokens for test, in [0, 1); the last block.

    Returns:
      (train <int32>[n_train], valid <int32>[n_valid], test <int32>[n_test]), with
      `concatenate([train, valid, test]) == ids`. A split with fraction 0 is empty; with a positive fraction
      it must get at least one token.
    """
    arr = _as_ids(ids)
    n_train, n_valid, _ = split_sizes(
        arr.shape[0], valid_fraction=valid_fraction, test_fraction=test_fraction
    )
    return arr[:n_train], arr[n_train : n_train + n_valid], arr[n_train + n_valid :]


def sliding_windows(ids, seq_len: int, *, stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Windows of `seq_len` tokens and the token that follows each (the classic Keras char-RNN set-up).

    Window i starts at `s = i * stride`: `xs[i] = ids[s : s + seq_len]`, `ys[i] = ids[s + seq_len]`. Every
    window has its target inside `ids` (none crosses the end), so there are
    `N = (n - seq_len - 1) // stride + 1` windows.

    Args:
      ids: <int>[n] token ids, n > seq_len.
      seq_len: tokens per window (>= 1).
      stride: tokens between the starts of consecutive windows (>= 1).

    Returns:
      xs <int32>[N, seq_len] and ys <int32>[N] (fresh arrays, not views of `ids`).
    """
    seq_len = _check_positive_int(seq_len, "seq_len")
    stride = _check_positive_int(stride, "stride")
    arr = _as_ids(ids)
    n = arr.shape[0]
    if n < seq_len + 1:
        raise ValueError(
            f"ids has {n} tokens; expected at least seq_len + 1 = {seq_len + 1} for one window and its target"
        )
    windows = np.lib.stride_tricks.sliding_window_view(arr[:-1], seq_len)[::stride]  # (N, T), a view
    xs = np.ascontiguousarray(windows, dtype=np.int32)
    ys = arr[seq_len::stride].astype(np.int32, copy=True)
    assert xs.shape[0] == ys.shape[0] == (n - seq_len - 1) // stride + 1
    return xs, ys


def window_batches(
    xs,
    ys,
    batch_size: int,
    *,
    rng: np.random.Generator | None = None,
    seed: int | None = None,
    shuffle: bool = True,
    drop_last: bool = True,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One epoch of minibatches of (window, target) pairs, e.g. from `sliding_windows`.

    Arguments are checked when this is called; the batches are produced lazily.

    Args:
      xs: [N, ...] inputs (e.g. <int32>[N, seq_len]).
      ys: [N, ...] targets (e.g. <int32>[N]); row i goes with `xs[i]`.
      batch_size: rows per batch (>= 1).
      rng: NumPy Generator for the shuffle (advanced by it, so successive epochs differ).
      seed: seed of a fresh Generator, instead of `rng`. With `shuffle`, exactly one of `rng`/`seed` is
        required; without it they are not used.
      shuffle: visit rows in a random permutation (else in order).
      drop_last: drop the final partial batch, so every batch has `batch_size` rows (one jit shape).

    Returns:
      An iterator of (x [B, ...], y [B, ...]) with B = batch_size (the last one may be smaller if not
      drop_last); every row appears at most once per epoch.
    """
    batch_size = _check_positive_int(batch_size, "batch_size")
    shuffle, drop_last = _arguments.flag("shuffle", shuffle), _arguments.flag("drop_last", drop_last)
    seed = _arguments.seed("seed", seed)
    xs, ys = np.asarray(xs), np.asarray(ys)
    if xs.ndim < 1 or ys.ndim < 1 or xs.shape[0] != ys.shape[0]:
        raise ValueError(f"xs and ys must have the same number of rows, got shapes {xs.shape} and {ys.shape}")
    if rng is not None and seed is not None:
        raise ValueError(f"give rng or seed, not both; got rng={rng!r} and seed={seed!r}")
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if shuffle and rng is None and seed is None:
        raise ValueError("shuffle=True needs rng= (a numpy.random.Generator) or seed= (an int); got neither")
    n = xs.shape[0]
    if drop_last and n < batch_size:
        raise ValueError(
            f"batch_size={batch_size} exceeds the {n} rows of xs, so drop_last=True would yield no batch; "
            f"expected batch_size <= {n} (or drop_last=False)"
        )
    if shuffle and rng is None:
        rng = np.random.default_rng(seed)

    def batches() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        order = rng.permutation(n) if shuffle else np.arange(n)
        stop = n - n % batch_size if drop_last else n
        for start in range(0, stop, batch_size):
            idx = order[start : start + batch_size]
            yield xs[idx], ys[idx]

    return batches()


def num_stream_batches(ids, batch_size: int, seq_len: int) -> int:
    """Number of batches `stream_batches(ids, batch_size, seq_len)` yields, `(n // batch_size - 1) // seq_len`
    (floored at 0).

    Args:
      ids: <int>[n] token ids, or the int n itself.
      batch_size: rows (>= 1).
      seq_len: time steps per batch (>= 1).

    Returns:
      The number of batches (0 if the stream is too short for one).
    """
    batch_size = _check_positive_int(batch_size, "batch_size")
    seq_len = _check_positive_int(seq_len, "seq_len")
    if isinstance(ids, int | np.integer) and not isinstance(ids, bool):
        if ids < 0:
            raise ValueError(f"ids as a length must be >= 0, got {ids}")
        n = int(ids)
    else:
        n = _as_ids(ids).shape[0]
    # Batch k reads row[k*T : (k+1)*T] and targets row[k*T + 1 : (k+1)*T + 1], so K*T + 1 <= row_len.
    return max(n // batch_size - 1, 0) // seq_len


def stream_rows(ids, batch_size: int) -> np.ndarray:
    """The stream cut into `batch_size` contiguous rows, `row[b] = ids[b*row_len : (b+1)*row_len]` with
    `row_len = n // batch_size` (the trimmed tail of `n % batch_size` tokens is dropped), as in Zaremba et
    al. 2014 / the PyTorch word_language_model `batchify`.

    Args:
      ids: <int>[n] token ids.
      batch_size: rows B (>= 1).

    Returns:
      rows <int32>[B, n // B] (a view of `ids` when it is already int32).
    """
    batch_size = _check_positive_int(batch_size, "batch_size")
    arr = _as_ids(ids)
    row_len = arr.shape[0] // batch_size
    return arr[: batch_size * row_len].reshape(batch_size, row_len)  # (B, row_len): row b continues itself


def stream_batch(rows: np.ndarray, k: int, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Batch k of the rows of `stream_rows`: inputs and their next tokens,

        x[b, t] = rows[b, k*seq_len + t],    y[b, t] = rows[b, k*seq_len + t + 1],

    for t < seq_len, so row b of batch k+1 starts right after row b of batch k ends. Batches
    k < `num_stream_batches` are whole; batch k = num_stream_batches may be a shorter last chunk
    (t < row_len - 1 - k*seq_len), for scoring every token of the rows.

    Args:
      rows: <int>[B, row_len] from `stream_rows`.
      k: the batch index, 0 <= k * seq_len < row_len - 1.
      seq_len: time steps per batch T (>= 1).

    Returns:
      (x <int32>[B, T'], y <int32>[B, T']) with T' = min(seq_len, row_len - 1 - k*seq_len).
    """
    seq_len = _check_positive_int(seq_len, "seq_len")
    if isinstance(k, bool) or not isinstance(k, int | np.integer):
        raise TypeError(f"k must be an int (a batch index), got {k!r} ({type(k).__name__})")
    rows = np.asarray(rows)
    if rows.ndim != 2 or (rows.size and rows.dtype.kind not in "iu"):
        raise ValueError(
            f"rows must be <int>[B, row_len] from stream_rows, got shape {rows.shape} dtype {rows.dtype}"
        )
    row_len = rows.shape[1]
    t0 = k * seq_len
    if not 0 <= t0 < row_len - 1:
        raise ValueError(f"k: expected 0 <= k * seq_len < row_len - 1 = {row_len - 1}, got k={k}")
    t1 = min(t0 + seq_len, row_len - 1)
    return (
        np.ascontiguousarray(rows[:, t0:t1], np.int32),  # (B, T')
        np.ascontiguousarray(rows[:, t0 + 1 : t1 + 1], np.int32),  # (B, T'), shifted by one
    )


def stream_batches(ids, batch_size: int, seq_len: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Batches for truncated backprop-through-time with the carry passed from batch to batch: the whole
    batches `stream_batch(stream_rows(ids, batch_size), k, seq_len)` for k = 0, 1, ...

    Row b of batch k+1 starts right after row b of batch k ends: feed batch k's final carry, row by row,
    as batch k+1's initial carry. Only whole batches are yielded (one jit shape); the tokens at the end of
    each row that do not fill a batch are dropped, as is the trimmed tail of the stream.

    Arguments are checked when this is called; the batches are produced lazily.

    Args:
      ids: <int>[n] token ids, n >= batch_size * (seq_len + 1).
      batch_size: rows B (>= 1).
      seq_len: time steps per batch T (>= 1).

    Returns:
      An iterator of `num_stream_batches(ids, batch_size, seq_len)` pairs (x <int32>[B, T], y <int32>[B, T]).
    """
    arr = _as_ids(ids)
    n = arr.shape[0]
    num = num_stream_batches(n, batch_size, seq_len)
    if num == 0:
        raise ValueError(
            f"ids has {n} tokens; expected at least batch_size * (seq_len + 1) = "
            f"{batch_size} * {seq_len + 1} = {batch_size * (seq_len + 1)} for one batch"
        )
    rows = stream_rows(arr, batch_size)
    return (stream_batch(rows, k, seq_len) for k in range(num))
