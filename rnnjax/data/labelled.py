"""Labelled sequences for many-to-one classifiers: a checked CSV reader, label ids, right-padding with
lengths, a seeded train/valid split, and a synthetic sentiment set whose label hangs on one early word.

Plain NumPy and the standard library (no jax), like the rest of `rnnjax.data`. The pipeline is

    CSV --read_csv--> (texts, labels)          or   synthetic_sentiment(n) --> (texts, labels)
    CSV --read_columns--> {argument: column}   (any named columns, e.g. ids; optional ones may be missing)
    texts --tokenize--> token lists --text.Vocabulary.encode--> id lists --pad_sequences--> (tokens, lengths)
    (tokens, lengths) --unknown_counts--> <int64>[N] tokens of each row missing from the vocabulary
    labels --LabelSet.build(...).encode--> <int32>[N]
    split_indices(N) --> (train rows, valid rows);   split_rows(N, (0.1, 0.1)) --> (train, valid, test)

Example:

    >>> from rnnjax.data import labelled, text
    >>> texts, labels = labelled.synthetic_sentiment(100, seq_len=20, seed=0)
    >>> token_lists = labelled.tokenize(texts, level="word")
    >>> vocab = text.Vocabulary.build(tok for toks in token_lists for tok in toks)
    >>> tokens, lengths = labelled.pad_sequences([vocab.encode(t) for t in token_lists])
    >>> ys = labelled.LabelSet.build(labels).encode(labels)   # negative -> 0, positive -> 1
    >>> train_rows, valid_rows = labelled.split_indices(len(texts), valid_fraction=0.2, seed=0)
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from rnnjax.data import _arguments
from rnnjax.data import text as text_lib
from rnnjax.data.opinions import opinion_reviews  # noqa: F401  (re-exported: opinion phrases, issue #21)

__all__ = [
    "LEVELS",
    "NEGATIVE_WORDS",
    "NEUTRAL_WORDS",
    "POSITIVE_WORDS",
    "SYNTHETIC_LABELS",
    "LabelSet",
    "pad_sequences",
    "read_columns",
    "read_csv",
    "split_indices",
    "split_rows",
    "synthetic_sentiment",
    "tokenize",
    "unknown_counts",
]

_INT32_MAX = np.iinfo(np.int32).max
LEVELS = text_lib.LEVELS  # the one definition lives in rnnjax.data.text

# ------------------------------------------------------------------------------------------------ CSV


def _decode(path: Path, data: bytes, encoding: str, errors: str) -> str:
    try:
        return data.decode(encoding, errors=errors)
    except LookupError as e:
        raise ValueError(f"encoding: expected a Python codec name such as 'utf-8', got {encoding!r}") from e
    except UnicodeDecodeError as e:
        bad = data[e.start : min(e.end, e.start + 8)]
        raise ValueError(
            f"path: {os.fspath(path)!r} is not valid {encoding} text: byte offset {e.start} ({bad!r}) "
            f"{e.reason}; expected {encoding} (pass encoding= for another codec, e.g. 'latin-1', or "
            f"errors='replace' to decode bad bytes as U+FFFD)"
        ) from None


def _lines(numbers: list[int], limit: int = 10) -> str:
    shown = ", ".join(str(n) for n in numbers[:limit])
    return shown + (f", ... ({len(numbers)} in all)" if len(numbers) > limit else "")


def read_csv(
    path: str | os.PathLike,
    *,
    text_column: str,
    label_column: str,
    encoding: str = "utf-8",
    errors: str = "strict",
    delimiter: str = ",",
) -> tuple[list[str], list[str]]:
    """The text and label columns of a CSV file with a header row (read with the `csv` module).

    Quoted fields may hold delimiters, quotes (doubled, `""`) and newlines. Header names are matched after
    stripping surrounding whitespace, and a UTF-8 byte-order mark is ignored. Blank lines are skipped.
    Texts are returned exactly as written (clean them with `tokenize`); labels are stripped of
    surrounding whitespace, so " pos" and "pos" are one class. (`read_columns` reads other columns too.)

    Args:
      path: the CSV file.
      text_column: name of the column holding the text of each example.
      label_column: name of the column holding its label (any string; see `LabelSet`).
      encoding: codec of the file.
      errors: "strict" (undecodable bytes raise, naming the byte offset) or "replace" (they become U+FFFD).
      delimiter: field separator, one character ("," or "\\t" or ";", ...).

    Returns:
      (texts, labels): two lists of N strings, in file order, N >= 1.

    Raises:
      FileNotFoundError: `path` does not exist.
      ValueError: the file is a folder, empty, not decodable, malformed CSV, lacks a column (the columns
        found are listed), has rows too short to hold a column, or rows with an empty text or label
        (listed by data row, 1 = first row after the header, and by file line).
    """
    got = read_columns(
        path,
        dict(text_column=text_column, label_column=label_column),
        strip=("label_column",),
        encoding=encoding,
        errors=errors,
        delimiter=delimiter,
    )
    return got["text_column"], got["label_column"]


def read_columns(
    path: str | os.PathLike,
    columns: Mapping[str, str],
    *,
    optional: Collection[str] = (),
    strip: Collection[str] = (),
    encoding: str = "utf-8",
    errors: str = "strict",
    delimiter: str = ",",
) -> dict[str, list[str] | None]:
    """Named columns of a CSV file with a header row, read as `read_csv` reads its two.

    Args:
      path: the CSV file.
      columns: {argument: column name}, e.g. {"text_column": "review", "id_column": "review_id"}; each
        argument is the caller's name for that column, used in error messages. Two arguments may name
        the same column.
      optional: arguments whose column may be missing from the header (their value is then None) and
        whose cells may be empty; every other column must be present once with no empty cell.
      strip: arguments whose values are stripped of surrounding whitespace (e.g. labels).
      encoding, errors, delimiter: as for `read_csv`.

    Returns:
      {argument: its column's N strings in file order, N >= 1, or None for a missing optional column}.

    Raises:
      FileNotFoundError, ValueError: as `read_csv`; a column's error names its argument and lists the
        columns found.
    """
    if errors not in ("strict", "replace"):
        raise ValueError(f"errors: expected 'strict' or 'replace', got {errors!r}")
    if not isinstance(columns, Mapping) or not columns:
        raise TypeError(f"columns: expected a non-empty dict {{argument: column name}}, got {columns!r}")
    for name, value in columns.items():
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{name}: expected a non-empty column name, got {value!r}")
    for what, names in (("optional", optional), ("strip", strip)):
        unknown = sorted(set(names) - set(columns))
        if isinstance(names, str) or unknown:
            raise ValueError(f"{what}: expected arguments of columns {list(columns)}, got {names!r}")
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise ValueError(f"delimiter: expected one character, got {delimiter!r}")
    if not isinstance(encoding, str):
        raise TypeError(f"encoding: expected a codec name such as 'utf-8', got {type(encoding).__name__}")
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"path: expected a str or os.PathLike to a CSV file, got {type(path).__name__}")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"path: no such file {os.fspath(path)!r}; expected a CSV file")
    if path.is_dir():
        raise ValueError(f"path: {os.fspath(path)!r} is a folder; expected a CSV file")
    content = _decode(path, path.read_bytes(), encoding, errors)
    content = content.removeprefix("\ufeff")
    nul = content.find("\x00")
    if nul >= 0:
        raise ValueError(
            f"path: {os.fspath(path)!r}: expected a CSV text file, got binary data (a NUL character at "
            f"character {nul} of the decoded text)"
        )
    required = [arg for arg in columns if arg not in optional]
    if not content.strip():
        raise ValueError(
            f"path: {os.fspath(path)!r} is empty; expected a header row naming the columns "
            f"{' and '.join(repr(columns[arg].strip()) for arg in required)}, then one row per example"
        )

    # newline="" leaves "\r\n" and newlines inside quoted fields to the csv module, as its docs require.
    reader = csv.reader(io.StringIO(content, newline=""), delimiter=delimiter, strict=True)
    where = f"path: {os.fspath(path)!r}"
    # The csv module refuses fields longer than its limit (128 KiB by default): a long text is valid, and
    # no field is longer than the file, so the limit is raised to the file's length while it is read.
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, len(content) + 1))
    try:
        header = next(reader)
        while not header:  # leading blank lines
            header = next(reader)
        names = [h.strip() for h in header]
        index = {}  # argument -> field index, for the columns present
        for arg, name in columns.items():
            count = names.count(name.strip())
            if count == 0 and arg in optional:
                continue
            if count != 1:
                problem = "not found" if count == 0 else f"found {count} times"
                raise ValueError(
                    f"{arg}: column {name.strip()!r} {problem} in the header of {os.fspath(path)!r}; "
                    f"expected exactly one, columns found: {names!r}"
                )
            index[arg] = names.index(name.strip())
        need = max(index.values(), default=-1) + 1
        values = {arg: [] for arg in index}
        empty = {arg: [] for arg in index if arg not in optional}
        rows, lines = [], []
        while True:
            line = reader.line_num + 1  # the line where the next record starts
            try:
                row = next(reader)
            except StopIteration:
                break
            if not row:  # blank line
                continue
            rows.append(len(rows) + 1)
            lines.append(line)
            if len(row) < need:
                raise ValueError(
                    f"{where}: data row {rows[-1]} (line {line}) has {len(row)} field(s); expected at least "
                    f"{need} to reach columns {', '.join(repr(columns[a].strip()) for a in index)} "
                    f"(header: {names!r})"
                )
            for arg, i in index.items():
                value = row[i].strip() if arg in strip else row[i]
                if arg in empty and not value.strip():
                    empty[arg].append(len(rows) - 1)
                values[arg].append(value)
    except csv.Error as e:
        raise ValueError(f"{where}: malformed CSV near line {reader.line_num}: {e}") from None
    finally:
        csv.field_size_limit(limit)
    if not rows:
        raise ValueError(f"{where} has a header {names!r} but no data rows; expected at least one example")
    for arg, bad in empty.items():
        if bad:
            raise ValueError(
                f"{arg}: column {columns[arg].strip()!r} of {os.fspath(path)!r} is empty in {len(bad)} of "
                f"{len(rows)} rows: data rows {_lines([rows[i] for i in bad])} "
                f"(file lines {_lines([lines[i] for i in bad])}); "
                f"expected a non-empty value in every row (drop or fill those rows)"
            )
    return {arg: values.get(arg) for arg in columns}


# -------------------------------------------------------------------------------------------- labels

_LABELS_FORMAT = "rnnjax.data.labelled.LabelSet"


def _label_key(labels: Sequence[str]):
    """Integers sort by value ("2" before "10") when every label is one; otherwise labels sort as text."""
    try:
        values = [int(y) for y in labels]
    except ValueError:
        return None
    return dict(zip(labels, values)).__getitem__ if values else None


class LabelSet:
    """Class label <-> id: the sorted unique labels get ids 0, 1, ..., C-1.

    Sorting (not order of appearance) makes the ids independent of row order, so a shuffled copy of the
    same data gives the same ids. When every label is an integer literal ("0", "1", "10") labels sort by
    value, else as strings. Persist with `to_json`/`from_json` next to a model.
    """

    def __init__(self, labels: Sequence[str]):
        """Args:
        labels: the distinct labels in id order (use `LabelSet.build` to sort them).
        """
        labels = tuple(_arguments.iterable("labels", labels, "a sequence of str"))
        for i, y in enumerate(labels):
            if not isinstance(y, str):
                raise TypeError(f"labels[{i}]: expected a str, got {type(y).__name__} {y!r}")
        if len(set(labels)) != len(labels):
            dups = sorted({y for y in labels if labels.count(y) > 1})
            raise ValueError(f"labels: expected distinct labels, got duplicates {dups[:10]!r}")
        if len(labels) < 2:
            raise ValueError(f"labels: expected at least 2 classes to classify, got {list(labels)!r}")
        self._labels = labels
        self._index = {y: i for i, y in enumerate(labels)}

    @classmethod
    def build(cls, labels: Iterable[str]) -> LabelSet:
        """The LabelSet of the distinct values in `labels` (one per example), sorted (see the class).

        Args:
          labels: the training labels, strings.

        Returns:
          The LabelSet; it raises if fewer than 2 distinct labels are present.
        """
        if isinstance(labels, str):
            raise TypeError(f"labels: expected a sequence of str (one per example), got the str {labels!r}")
        labels = list(_arguments.iterable("labels", labels, "a sequence of str (one per example)"))
        for i, y in enumerate(labels):
            if not isinstance(y, str):
                raise TypeError(f"labels[{i}]: expected a str, got {type(y).__name__} {y!r}")
        unique = sorted(set(labels))
        key = _label_key(unique)
        return cls(sorted(unique, key=key) if key else unique)

    @property
    def labels(self) -> tuple[str, ...]:
        """The labels in id order."""
        return self._labels

    def __len__(self) -> int:
        return len(self._labels)

    def __eq__(self, other) -> bool:
        return isinstance(other, LabelSet) and self._labels == other._labels

    def __hash__(self) -> int:
        return hash(self._labels)

    def __repr__(self) -> str:
        return f"LabelSet({list(self._labels)!r})"

    def encode(self, labels: Iterable[str]) -> np.ndarray:
        """Class ids of `labels`.

        Args:
          labels: N label strings, each one of `self.labels`.

        Returns:
          ids <int32>[N].

        Raises:
          ValueError: naming the first label not in the set and its position.
        """
        if isinstance(labels, str):
            raise TypeError(f"labels: expected a sequence of str (one per example), got the str {labels!r}")
        ids = []
        for i, y in enumerate(_arguments.iterable("labels", labels, "a sequence of str (one per example)")):
            j = self._index.get(y)
            if j is None:
                raise ValueError(
                    f"labels[{i}]: {y!r} is not a known class; expected one of {list(self._labels)!r}"
                )
            ids.append(j)
        return np.asarray(ids, dtype=np.int32).reshape(-1)

    def decode(self, ids) -> list[str]:
        """Labels of class ids.

        Args:
          ids: <int>[N] in [0, len(self)).

        Returns:
          The list of N label strings.
        """
        arr = np.asarray(ids)
        if arr.ndim != 1:
            raise ValueError(f"ids: expected a 1-D array <int>[N], got shape {arr.shape}")
        if arr.size and arr.dtype.kind not in "iu":
            raise TypeError(f"ids: expected integer class ids, got dtype {arr.dtype}")
        if arr.size and (arr.min() < 0 or arr.max() >= len(self)):
            raise ValueError(
                f"ids: expected class ids in [0, {len(self)}), got values in [{arr.min()}, {arr.max()}]"
            )
        return [self._labels[i] for i in arr.tolist()]

    def to_json(self) -> str:
        """JSON text: format tag and the labels in id order."""
        return json.dumps({"format": _LABELS_FORMAT, "labels": list(self._labels)}, ensure_ascii=False)

    @classmethod
    def from_json(cls, data: str) -> LabelSet:
        """Inverse of `to_json`."""
        obj = _arguments.tagged_json(data, _LABELS_FORMAT, "LabelSet.to_json")
        labels = obj.get("labels")
        if not isinstance(labels, list):
            raise ValueError(f"data['labels']: expected a list of str, got {type(labels).__name__}")
        return cls(labels)


# ------------------------------------------------------------------------------------- token sequences


def tokenize(texts: Sequence[str], *, level: str = "word", lowercase: bool = False) -> list[list[str]]:
    """Token lists of texts: `text.normalize` (whitespace runs collapsed; optional lowercase), then
    `text.word_tokens` (words and punctuation marks) or `text.char_tokens` (characters, spaces included).

    Args:
      texts: N strings.
      level: "word" or "char".
      lowercase: lowercase before tokenizing.

    Returns:
      A list of N token lists (a text of only whitespace gives an empty list, which `pad_sequences` rejects).
    """
    if level not in LEVELS:
        raise ValueError(f"level: expected one of {LEVELS}, got {level!r}")
    if isinstance(texts, str):
        raise TypeError(f"texts: expected a sequence of str (one per example), got the str {texts!r}")
    _arguments.iterable("texts", texts, "a sequence of str (one per example)")
    _arguments.flag("lowercase", lowercase)
    split = text_lib.word_tokens if level == "word" else text_lib.char_tokens
    out = []
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"texts[{i}]: expected a str, got {type(t).__name__}")
        out.append(split(text_lib.normalize(t, lowercase=lowercase, collapse_whitespace=True)))
    return out


def pad_sequences(
    sequences: Sequence[Sequence[int] | np.ndarray], max_len: int | None = None, *, truncate: str = "pre"
) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad id sequences of different lengths into one array, with each one's length.

    Padding positions hold id 0. Their value does not matter: the classifier is given `lengths`, and
    `rnnjax.unroll` zeroes the inputs at padded steps, keeps the carry unchanged and outputs zeros there,
    so the logits depend only on each row's first `lengths[i]` ids (tests/train/test_classify.py checks this
    against padding to 3x the length with random ids). 0 is used because it is a valid id of every
    vocabulary (the unknown token in `text.Vocabulary`), which the models' input checks require.

    Args:
      sequences: N >= 1 sequences of non-negative integer ids, each at least one id long.
      max_len: the padded length T; None means the longest sequence. Longer sequences are truncated.
      truncate: which end of a too-long sequence is dropped: "pre" keeps its last `max_len` ids (as Keras
        `pad_sequences` does), "post" keeps its first `max_len` ids. Use "post" when the evidence sits
        early (as in `synthetic_sentiment`).

    Returns:
      (tokens <int32>[N, T], lengths <int32>[N]) with `tokens[i, :lengths[i]]` the (kept) ids of
      sequence i and `tokens[i, lengths[i]:] == 0`; every length is in [1, T].
    """
    if truncate not in ("pre", "post"):
        raise ValueError(f"truncate: expected 'pre' or 'post', got {truncate!r}")
    if max_len is not None and (
        isinstance(max_len, bool) or not isinstance(max_len, int | np.integer) or max_len < 1
    ):
        raise ValueError(f"max_len: expected None or an int >= 1, got {max_len!r}")
    if isinstance(sequences, np.ndarray) and sequences.ndim != 2 and sequences.dtype != object:
        raise ValueError(
            f"sequences: expected a list of 1-D id sequences, got an array of shape {sequences.shape}"
        )
    arrays = []
    for i, seq in enumerate(_arguments.iterable("sequences", sequences, "a list of 1-D id sequences")):
        arr = np.asarray(seq)
        if arr.ndim != 1:
            raise ValueError(f"sequences[{i}]: expected a 1-D sequence of ids, got shape {arr.shape}")
        if arr.size == 0:
            raise ValueError(f"sequences[{i}]: expected at least one id, got an empty sequence")
        if arr.dtype.kind not in "iu":
            raise TypeError(f"sequences[{i}]: expected integer ids, got dtype {arr.dtype}")
        if arr.min() < 0 or arr.max() > _INT32_MAX:
            raise ValueError(
                f"sequences[{i}]: expected ids in [0, {_INT32_MAX}], got values in [{arr.min()}, {arr.max()}]"
            )
        arrays.append(arr)
    if not arrays:
        raise ValueError("sequences: expected at least one sequence, got none")
    T = int(max_len) if max_len is not None else max(a.shape[0] for a in arrays)
    tokens = np.zeros((len(arrays), T), dtype=np.int32)  # (N, T)
    lengths = np.empty(len(arrays), dtype=np.int32)  # (N,)
    for i, arr in enumerate(arrays):
        kept = arr if arr.shape[0] <= T else (arr[-T:] if truncate == "pre" else arr[:T])
        tokens[i, : kept.shape[0]] = kept
        lengths[i] = kept.shape[0]
    return tokens, lengths


def unknown_counts(tokens, lengths, unk_id: int | None = 0) -> np.ndarray:
    """How many of each row's tokens are the unknown id (tokens missing from the vocabulary).

    Only each row's first `lengths[i]` ids are counted (the padding is id 0 too, but it is not read).
    A text's share of unknown tokens is `unknown_counts(...) / lengths`; a split's is the ratio of sums.

    Args:
      tokens: <int>[N, T] padded ids (`pad_sequences`).
      lengths: <int>[N] in [0, T].
      unk_id: the vocabulary's unknown id (`text.Vocabulary.unk_id`); None (a closed vocabulary) counts 0.

    Returns:
      <int64>[N] counts, each in [0, lengths[i]].
    """
    tokens, lengths = np.asarray(tokens), np.asarray(lengths)
    if tokens.ndim != 2 or lengths.shape != tokens.shape[:1]:
        raise ValueError(
            f"tokens, lengths: expected shapes [N, T] and [N], got {tokens.shape} and {lengths.shape}"
        )
    if lengths.size and (lengths.min() < 0 or lengths.max() > tokens.shape[1]):
        raise ValueError(
            f"lengths: expected values in [0, T={tokens.shape[1]}], got [{lengths.min()}, {lengths.max()}]"
        )
    if unk_id is None:
        return np.zeros(tokens.shape[0], np.int64)
    read = np.arange(tokens.shape[1]) < lengths[:, None]  # (N, T) the ids a model reads
    return np.sum((tokens == unk_id) & read, axis=1).astype(np.int64)


# --------------------------------------------------------------------------------------------- split


def split_indices(
    n: int, *, valid_fraction: float = 0.2, seed: int | None = 0, shuffle: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Rows of a train / valid split of n labelled examples: `split_rows(n, (valid_fraction,), ...)`.

    A seeded random split is right here, unlike for a language model's text: each example is a separate
    sequence with its own label and no example overlaps another, so no input or target of a validation
    example is seen in training (for one long text, `text.split` keeps contiguous blocks instead, since
    windows cut from one stream share tokens). Shuffling also avoids a biased split when a file is sorted
    by label or by date. It is not a guard against duplicate rows in the data: a text present twice can
    land on both sides. Use `shuffle=False` for the contiguous split (the last rows are validation).

    Args:
      n: number of examples (>= 2).
      valid_fraction: fraction for validation, in (0, 1); round(n * valid_fraction) rows, at least 1, and
        at least 1 row is left for training.
      seed: seed of the shuffle (ignored with `shuffle=False`).
      shuffle: random rows (seeded) or the contiguous tail.

    Returns:
      (train <int64>[n_train], valid <int64>[n_valid]): disjoint row indices covering range(n), each sorted.
    """
    if isinstance(valid_fraction, bool) or not isinstance(valid_fraction, int | float):
        raise ValueError(f"valid_fraction: expected a number in (0, 1), got {valid_fraction!r}")
    if not 0.0 < valid_fraction < 1.0:
        raise ValueError(f"valid_fraction: expected a number in (0, 1), got {valid_fraction!r}")
    train, valid = split_rows(n, (valid_fraction,), seed=seed, shuffle=shuffle)
    return train, valid


def split_rows(
    n: int, held_out: Sequence[float], *, seed: int | None = 0, shuffle: bool = True
) -> tuple[np.ndarray, ...]:
    """Rows of a split of n labelled examples into training rows and held-out parts (e.g. valid, test).

    The rows are permuted once (seeded; `shuffle=False` keeps file order); the training rows come first
    and each held-out part takes the next round(n * fraction) rows, at least 1, while leaving at least one
    row for every later part and for training. With one fraction this is `split_indices`; with the same
    seed and total held-out size, the training rows do not depend on how the held-out rows are divided.

    Args:
      n: number of examples (>= len(held_out) + 1).
      held_out: the fraction of each held-out part, each in (0, 1), summing to less than 1.
      seed: seed of the shuffle (ignored with `shuffle=False`).
      shuffle: random rows (seeded) or the contiguous tail.

    Returns:
      (train, part_1, ..., part_k): disjoint sorted row indices <int64>[...] covering range(n).
    """
    held_out = tuple(_arguments.iterable("held_out", held_out, "a sequence of fractions, e.g. (0.1,)"))
    _arguments.flag("shuffle", shuffle)
    seed = _arguments.seed("seed", seed)
    if (
        not held_out
        or any(isinstance(f, bool) or not isinstance(f, int | float) or not 0.0 < f < 1.0 for f in held_out)
        or sum(held_out) >= 1.0
    ):
        raise ValueError(f"held_out: expected fractions in (0, 1) summing to less than 1, got {held_out!r}")
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < len(held_out) + 1:
        raise ValueError(
            f"n: expected an int >= {len(held_out) + 1} (one training example and one per held-out part), "
            f"got {n!r}"
        )
    sizes, left = [], n
    for k, f in enumerate(held_out):
        later = len(held_out) - k - 1  # parts still to fill, one row each at least
        sizes.append(min(max(round(n * f), 1), left - 1 - later))
        left -= sizes[-1]
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    bounds = np.cumsum([left, *sizes])
    return tuple(np.sort(part) for part in np.split(order, bounds[:-1]))


# ----------------------------------------------------------------------------------------- synthetic

POSITIVE_WORDS = ("good", "great", "excellent", "wonderful", "superb")
NEGATIVE_WORDS = ("bad", "awful", "terrible", "boring", "poor")
# Filler words carry no sentiment, so only the one sentiment word of each text decides its label.
NEUTRAL_WORDS = (
    "the", "a", "movie", "film", "plot", "actor", "scene", "story", "was", "is", "and", "it", "this",
    "with", "of", "to", "in", "director", "camera", "music", "script", "character", "ending", "screen",
    "two", "hours", "some", "then", "there", "they", "we", "saw", "watched", "cinema", "night", "friend",
    "after", "before", "long", "about",
)  # fmt: skip
SYNTHETIC_LABELS = ("negative", "positive")


def synthetic_sentiment(
    n: int,
    *,
    seq_len: int = 100,
    min_len: int | None = None,
    seed: int = 0,
    signal_position: int | tuple[int, int] = (0, 5),
) -> tuple[list[str], list[str]]:
    """A sentiment-style set where the label is decided by one word near the start of a long text.

    Each text is `length` words, `length` uniform in [min_len, seq_len]: filler drawn uniformly from
    `NEUTRAL_WORDS`, except for ONE sentiment word at a position drawn uniformly from `signal_position`,
    from `POSITIVE_WORDS` (label "positive") or `NEGATIVE_WORDS` (label "negative"). Labels are exactly
    balanced (n // 2 of one class, in random order), so chance accuracy is 50%. A classifier reading the
    last valid step must carry the word across at least `min_len - signal_position_max` steps of
    distraction: the long-range memory problem in a text-classification setting.

    Texts and labels are strings (words joined by single spaces) so that they take the same path as a CSV:
    `tokenize(texts, level="word")` gives back exactly the generated words.

    Args:
      n: number of examples (>= 2).
      seq_len: the longest text, in words.
      min_len: the shortest text; None means `seq_len // 2` (at least the signal window).
      seed: NumPy seed; the same arguments give the same set.
      signal_position: position of the sentiment word (0-based, in words): an int, or a half-open range
        (lo, hi) to draw it from uniformly; must fit in the shortest text (hi <= min_len).

    Returns:
      (texts, labels): lists of n strings; labels are "negative" or "positive".
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 2:
        raise ValueError(f"n: expected an int >= 2, got {n!r}")
    seed = _arguments.seed("seed", seed)
    if isinstance(seq_len, bool) or not isinstance(seq_len, int | np.integer) or seq_len < 1:
        raise ValueError(f"seq_len: expected an int >= 1, got {seq_len!r}")
    if isinstance(signal_position, int | np.integer) and not isinstance(signal_position, bool):
        lo, hi = int(signal_position), int(signal_position) + 1
    elif (
        isinstance(signal_position, tuple | list)
        and len(signal_position) == 2
        and all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in signal_position)
    ):
        lo, hi = (int(v) for v in signal_position)
    else:
        raise ValueError(
            f"signal_position: expected an int or a (lo, hi) pair of ints, got {signal_position!r}"
        )
    if not 0 <= lo < hi:
        raise ValueError(f"signal_position: expected 0 <= lo < hi, got {signal_position!r}")
    if min_len is None:
        min_len = max(seq_len // 2, hi)
    if isinstance(min_len, bool) or not isinstance(min_len, int | np.integer) or not hi <= min_len <= seq_len:
        raise ValueError(
            f"min_len: expected an int in [{hi}, seq_len={seq_len}] (long enough to hold the sentiment word "
            f"at signal_position={signal_position!r}), got {min_len!r}"
        )
    rng = np.random.default_rng(seed)
    polarity = rng.permutation(np.arange(n) % 2)  # (n,) exactly balanced
    lengths = rng.integers(min_len, seq_len + 1, size=n)  # (n,)
    positions = rng.integers(lo, hi, size=n)  # (n,)
    choice = rng.integers(len(POSITIVE_WORDS), size=n)  # which sentiment word
    filler = rng.integers(len(NEUTRAL_WORDS), size=(n, seq_len))  # (n, seq_len)
    texts, labels = [], []
    for i in range(n):
        words = [NEUTRAL_WORDS[j] for j in filler[i, : lengths[i]]]
        words[positions[i]] = (POSITIVE_WORDS if polarity[i] else NEGATIVE_WORDS)[choice[i]]
        texts.append(" ".join(words))
        labels.append(SYNTHETIC_LABELS[polarity[i]])
    return texts, labels
