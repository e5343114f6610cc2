"""Token <-> id mapping for language models and classifiers, saved as JSON next to a model.

Plain Python and NumPy (no jax). Re-exported as `rnnjax.data.text.Vocabulary`, its name in saved files.

Example:

    >>> from rnnjax.data.vocabulary import Vocabulary
    >>> vocab = Vocabulary.build("hello world".split() * 2 + ["once"], min_count=2)
    >>> vocab.encode(["hello", "once"]).tolist()         # "once" is rarer than min_count: <unk> = 0
    [1, 0]
    >>> Vocabulary.from_json(vocab.to_json()) == vocab    # save(path) / load(path) write and read this
    True
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from rnnjax.data import _arguments, corpora

__all__ = ["Vocabulary"]

_INT32_MAX = np.iinfo(np.int32).max
# The format tag of saved files keeps the class's original module path, so old vocab.json files load.
_FORMAT = "rnnjax.data.text.Vocabulary"
_VERSION = 1


class Vocabulary:
    """Token <-> id mapping. With an unknown token, id 0 is `unk` and unknown tokens encode to 0.

    Build with `Vocabulary.build`; persist with `save`/`load` (or `to_json`/`from_json`) next to a model
    so that its ids keep their meaning.
    """

    def __init__(self, tokens: Sequence[str], unk: str | None = "<unk>"):
        """Args:
        tokens: every token, in id order; if `unk` is not None, `tokens[0]` must be `unk`.
        unk: the unknown token, or None for a closed vocabulary (encoding an unknown token raises).
        """
        tokens = tuple(_iterable(tokens, "tokens"))
        if unk is not None and not isinstance(unk, str):
            raise TypeError(f"unk must be a str or None, got {type(unk).__name__} {unk!r}")
        for i, tok in enumerate(tokens):
            if not isinstance(tok, str):
                raise TypeError(f"tokens[{i}] must be a str, got {type(tok).__name__} {tok!r}")
        if unk is not None and (not tokens or tokens[0] != unk):
            first = repr(tokens[0]) if tokens else "an empty vocabulary"
            raise ValueError(f"tokens[0] must be the unknown token unk={unk!r}, got {first}")
        index = {tok: i for i, tok in enumerate(tokens)}
        if len(index) != len(tokens):
            dups = sorted({t for t in tokens if tokens.count(t) > 1})
            raise ValueError(f"tokens must be unique, got duplicates {dups[:10]!r}")
        if len(tokens) > _INT32_MAX:
            raise ValueError(f"tokens must fit int32 ids, got {len(tokens)} tokens")
        self._tokens = tokens
        self._unk = unk
        self._index = index

    @classmethod
    def build(
        cls,
        tokens: Iterable[str],
        *,
        min_count: int = 1,
        max_size: int | None = None,
        unk: str | None = "<unk>",
    ) -> Vocabulary:
        """Vocabulary of the tokens seen, most frequent first.

        Order (deterministic): `unk` (if any) at id 0, then tokens by descending count, ties broken by
        first occurrence in `tokens`. Occurrences of `unk` itself in `tokens` are not counted.

        Args:
          tokens: the training tokens (e.g. `char_tokens(text)` or `word_tokens(text)`).
          min_count: keep only tokens seen at least this many times (>= 1).
          max_size: keep at most this many entries, `unk` included (>= 1); None for no limit.
          unk: the unknown token at id 0, or None for no unknown token (usual for characters; then every
            token dropped by `min_count`/`max_size` cannot be encoded).

        Returns:
          The Vocabulary.
        """
        if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
            raise ValueError(f"min_count must be an int >= 1, got {min_count!r}")
        if max_size is not None and (
            isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1
        ):
            raise ValueError(f"max_size must be None or an int >= 1, got {max_size!r}")
        if unk is not None and not isinstance(unk, str):
            raise TypeError(f"unk must be a str or None, got {type(unk).__name__} {unk!r}")
        tokens = _iterable(tokens, "tokens")  # a str is read as its characters
        counts: Counter[str] = Counter()
        for i, tok in enumerate(tokens):
            if not isinstance(tok, str):
                raise TypeError(f"tokens[{i}] must be a str, got {type(tok).__name__} {tok!r}")
            counts[tok] += 1  # Counter keeps first-insertion order, i.e. first occurrence
        counts.pop(unk, None)
        # sorted() is stable, so equal counts keep their first-occurrence order.
        ranked = [tok for tok, c in sorted(counts.items(), key=lambda kv: -kv[1]) if c >= min_count]
        head = [unk] if unk is not None else []
        if max_size is not None:
            ranked = ranked[: max(max_size - len(head), 0)]
        return cls(head + ranked, unk=unk)

    # --- lookups

    @property
    def tokens(self) -> tuple[str, ...]:
        """Every token in id order (`unk` first if there is one)."""
        return self._tokens

    @property
    def unk(self) -> str | None:
        """The unknown token, or None."""
        return self._unk

    @property
    def unk_id(self) -> int | None:
        """0 if there is an unknown token, else None."""
        return None if self._unk is None else 0

    def __len__(self) -> int:
        return len(self._tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._index

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vocabulary):
            return NotImplemented
        return self._tokens == other._tokens and self._unk == other._unk

    __hash__ = None  # type: ignore[assignment]  # mutable-looking container semantics: not hashable

    def __repr__(self) -> str:
        return f"Vocabulary(size={len(self)}, unk={self._unk!r}, first={list(self._tokens[:8])!r})"

    def encode(self, tokens: Iterable[str]) -> np.ndarray:
        """Token ids.

        Args:
          tokens: the tokens (a str is read as its characters).

        Returns:
          ids <int32>[len(tokens)]; tokens not in the vocabulary map to 0 (`unk`).

        Raises:
          ValueError: with `unk=None`, for the first token not in the vocabulary (named with its position).
        """
        index = self._index
        tokens = _iterable(tokens, "tokens")
        if self._unk is not None:
            ids = [index.get(tok, 0) for tok in tokens]
        else:
            ids = []
            for i, tok in enumerate(tokens):
                j = index.get(tok)
                if j is None:
                    raise ValueError(
                        f"tokens[{i}] = {tok!r} is not in the vocabulary, which has no unknown token "
                        f"(unk=None); expected one of its {len(self)} tokens"
                    )
                ids.append(j)
        return np.asarray(ids, dtype=np.int32).reshape(-1)

    def decode(self, ids: Iterable[int] | np.ndarray) -> list[str]:
        """Tokens of ids (join them with "" for characters, " " for words).

        Args:
          ids: <int>[n] token ids in [0, len(self)).

        Returns:
          The list of n tokens.
        """
        arr = np.asarray(ids)
        if arr.ndim != 1:
            raise ValueError(f"ids must be 1-D, got shape {arr.shape}")
        if arr.size == 0:
            return []
        if arr.dtype.kind not in "iu":
            raise TypeError(f"ids must be integers, got dtype {arr.dtype}")
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi >= len(self):
            bad = lo if lo < 0 else hi
            raise ValueError(f"ids must be in [0, {len(self)}), got {bad}")
        toks = self._tokens
        return [toks[i] for i in arr.tolist()]

    # --- persistence

    def to_json(self) -> str:
        """JSON text of the vocabulary (format tag, version, `unk`, tokens in id order)."""
        payload = {"format": _FORMAT, "version": _VERSION, "unk": self._unk, "tokens": list(self._tokens)}
        return json.dumps(payload, ensure_ascii=False)

    @classmethod
    def from_json(cls, data: str) -> Vocabulary:
        """Inverse of `to_json`.

        Args:
          data: JSON text written by `to_json`.

        Returns:
          The Vocabulary.
        """
        obj = _arguments.tagged_json(data, _FORMAT, "Vocabulary.to_json")
        if obj.get("version") != _VERSION:
            raise ValueError(f"data must have version {_VERSION}, got {obj.get('version')!r}")
        tokens = obj.get("tokens")
        if not isinstance(tokens, list):
            raise ValueError(f"data['tokens'] must be a list, got {type(tokens).__name__}")
        unk = obj.get("unk")
        if unk is not None and not isinstance(unk, str):
            raise ValueError(f"data['unk'] must be a str or null, got {type(unk).__name__} {unk!r}")
        return cls(tokens, unk=unk)

    def save(self, path: str | os.PathLike) -> None:
        """Write `to_json()` to `path` atomically: a temporary file in the same folder, fsync'd, then
        `os.replace`d over `path`, so a crash never leaves a half-written vocabulary.

        Args:
          path: the destination file (its folder must exist).
        """
        path = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(self.to_json())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise

    @classmethod
    def load(cls, path: str | os.PathLike) -> Vocabulary:
        """Read a vocabulary written by `save`.

        Args:
          path: the file (`vocab.json` of a run).

        Returns:
          The Vocabulary.

        Raises:
          FileNotFoundError: `path` does not exist.
          ValueError: `path` is a folder, binary, not UTF-8, not JSON, or JSON of something else; the
            message names the file and what was expected.
        """
        if not isinstance(path, str | os.PathLike):
            raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__} {path!r}")
        path = os.fspath(path)
        expected = "expected a vocabulary written by Vocabulary.save (UTF-8 JSON text)"
        raw = corpora.read_file(path, expected=expected)
        nul = raw.find(b"\x00")
        if nul >= 0:
            raise ValueError(
                f"path: {path!r} holds binary data (a NUL byte at byte offset {nul}); {expected}"
            )
        try:
            data = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(
                f"path: {path!r} is not UTF-8 text (byte 0x{raw[e.start]:02x} at byte offset {e.start}); "
                f"{expected}"
            ) from None
        try:
            return cls.from_json(data)
        except (ValueError, TypeError) as e:
            raise type(e)(f"path: {path!r}: {e}") from None


def _iterable(values, name: str) -> Iterable:
    """`values` if it can be iterated (a str is read as its characters), else a TypeError naming `name`."""
    if isinstance(values, str):
        return list(values)
    return _arguments.iterable(name, values, "an iterable of str")
