"""Named text corpora for character-level language models: a registry, a local cache and a verified download.

A corpus is looked up by name in the data directory (`$RNNJAX_DATA`, else `~/.cache/rnnjax`); if it is not
there it is downloaded once, stripped of the Project Gutenberg licence header and footer where the registry
says so, checked against its SHA-256 and written atomically. Standard library only (no jax).

Example:

    >>> from rnnjax.data import corpora
    >>> text = corpora.load("tinyshakespeare")      # downloads to ~/.cache/rnnjax on first use
    >>> len(text)
    1115394
    >>> corpora.path("alice")                       # PosixPath('.../alice_in_wonderland.txt')
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import NamedTuple

__all__ = [
    "REGISTRY",
    "CorpusChecksumError",
    "CorpusUnavailableError",
    "Source",
    "data_dir",
    "decode",
    "load",
    "read_file",
    "path",
    "strip_gutenberg",
]

ENV_VAR = "RNNJAX_DATA"
DEFAULT_DIR = "~/.cache/rnnjax"
TIMEOUT_S = 60.0  # per blocking socket operation of the download, not the whole transfer


class Source(NamedTuple):
    """Where a registered corpus comes from and how it is stored (its registry entry)."""

    name: str  # registry key, e.g. "alice"
    filename: str  # file name inside data_dir()
    url: str  # where the raw text is downloaded from
    sha256: str  # hex digest of the file *as stored* (after Gutenberg stripping, if any)
    gutenberg: bool  # strip the Project Gutenberg licence header/footer and normalise before storing
    description: str


REGISTRY: dict[str, Source] = {
    c.name: c
    for c in (
        Source(
            name="alice",
            filename="alice_in_wonderland.txt",
            url="https://www.gutenberg.org/cache/epub/11/pg11.txt",
            sha256="f17aa0bf7466424a8b357b688678666bad7a0148963ef349016a3098faa6bd1e",
            gutenberg=True,
            description="Lewis Carroll, Alice's Adventures in Wonderland (Project Gutenberg eBook #11), "
            "licence header and footer removed; public domain in the USA.",
        ),
        Source(
            name="tinyshakespeare",
            filename="tinyshakespeare.txt",
            url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
            sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
            gutenberg=False,
            description="40,000 lines of Shakespeare (1,115,394 bytes), char-rnn's standard char-level "
            "language-modelling file.",
        ),
    )
}


class CorpusUnavailableError(RuntimeError):
    """A registered corpus is not cached and cannot be (or may not be) downloaded."""


class CorpusChecksumError(RuntimeError):
    """A downloaded corpus does not have the registered SHA-256; nothing is written."""


# Gutenberg marker lines, e.g. "*** START OF THE PROJECT GUTENBERG EBOOK ALICE'S ADVENTURES IN WONDERLAND ***"
# (older files say "THIS PROJECT GUTENBERG EBOOK/ETEXT").
_START = re.compile(r"^\*{3}\s*START OF (?:THE|THIS) PROJECT GUTENBERG E(?:BOOK|TEXT)\b.*$", re.I | re.M)
_END = re.compile(r"^\*{3}\s*END OF (?:THE|THIS) PROJECT GUTENBERG E(?:BOOK|TEXT)\b.*$", re.I | re.M)


def data_dir() -> Path:
    """The folder corpora are cached in.

    Returns:
      `Path($RNNJAX_DATA)` if that variable is set and non-empty, else `~/.cache/rnnjax` (user expanded).
      The folder need not exist yet.
    """
    value = os.environ.get(ENV_VAR, "")
    return Path(value or DEFAULT_DIR).expanduser()


def strip_gutenberg(text: str) -> str:
    """Cut a Project Gutenberg plain-text file down to the book, in the stored (normalised) form.

    Keeps the text strictly between the `*** START OF THE PROJECT GUTENBERG EBOOK ... ***` line and the
    `*** END OF THE PROJECT GUTENBERG EBOOK ... ***` line, with line endings normalised to "\\n", a leading
    BOM removed, and leading/trailing whitespace (the blank lines around the markers) removed. The result
    has no trailing newline, matching the stored file in the shared data folder.

    Args:
      text: the whole downloaded file, decoded.

    Returns:
      The book's text.

    Raises:
      ValueError: if either marker line is missing or the END marker precedes the START marker.
    """
    if not isinstance(text, str):
        raise TypeError(f"text: expected the decoded file (a str), got {type(text).__name__}")
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    start, end = _START.search(text), _END.search(text)
    if start is None or end is None or end.start() < start.end():
        raise ValueError(
            "text: expected a Project Gutenberg file with a "
            "'*** START OF THE PROJECT GUTENBERG EBOOK ... ***' line followed by a "
            "'*** END OF THE PROJECT GUTENBERG EBOOK ... ***' line; got "
            f"start marker {'found' if start else 'missing'}, end marker {'found' if end else 'missing'}"
            + (" (end before start)" if start and end else "")
        )
    return text[start.end() : end.start()].strip()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _unavailable(corpus: Source, dest: Path, url: str, why: str) -> CorpusUnavailableError:
    return CorpusUnavailableError(
        f"corpus {corpus.name!r} is not available: {why}. Download it from {url} "
        + ("(strip the Project Gutenberg header and footer) " if corpus.gutenberg else "")
        + f"and save it as {dest}, or point the {ENV_VAR} environment variable at a folder that "
        f"contains {corpus.filename} (current data folder: {dest.parent})."
    )


def _download(corpus: Source, dest: Path, url: str) -> None:
    """Fetch `url`, normalise, verify the checksum, then write `dest` atomically."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            raw = response.read()
    except (urllib.error.URLError, TimeoutError, ConnectionError) as e:  # HTTPError is a URLError
        raise _unavailable(corpus, dest, url, f"download failed ({e})") from e

    if corpus.gutenberg:
        try:
            data = strip_gutenberg(raw.decode("utf-8")).encode("utf-8")
        except (UnicodeDecodeError, ValueError) as e:
            raise CorpusChecksumError(
                f"corpus {corpus.name!r}: the file downloaded from {url} is not a UTF-8 Project Gutenberg "
                f"text ({e}); nothing was written to {dest}"
            ) from e
    else:
        data = raw
    got = _sha256(data)
    if got != corpus.sha256:
        raise CorpusChecksumError(
            f"corpus {corpus.name!r}: SHA-256 mismatch for the file downloaded from {url}"
            + (" (after stripping the Gutenberg header/footer)" if corpus.gutenberg else "")
            + f": expected {corpus.sha256}, got {got}; nothing was written to {dest}. The source may have "
            f"changed; download it by hand and save it as {dest} to use it anyway."
        )

    dest.parent.mkdir(parents=True, exist_ok=True)
    # Temp file in the same folder so os.replace is an atomic rename: readers never see a partial file.
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def path(name_or_path: str | os.PathLike, *, download: bool = True, url: str | None = None) -> Path:
    """The local file of a corpus, downloading a registered one into `data_dir()` if needed.

    A registered name takes precedence over a file of the same name in the working directory. A cached file
    is returned without re-checking its checksum (so a hand-placed copy is used as-is); a downloaded one is
    verified before it is stored.

    Args:
      name_or_path: a registered name (see `REGISTRY`: "alice", "tinyshakespeare") or the path of an
        existing local text file, which is returned unchanged.
      download: whether a registered corpus missing from `data_dir()` may be downloaded.
      url: download from this url instead of the registry's (registered names only).

    Returns:
      The path of the text file.

    Raises:
      FileNotFoundError: `name_or_path` is neither a registered name nor an existing file.
      ValueError: `url` was given for something that is not a registered name.
      CorpusUnavailableError: a registered corpus is not cached and `download=False` or the download failed.
      CorpusChecksumError: the downloaded text does not have the registered SHA-256 (nothing is written).
    """
    if not isinstance(name_or_path, str | os.PathLike):
        raise TypeError(
            "name_or_path: expected a registered corpus name or a file path (a str or os.PathLike), got "
            f"{type(name_or_path).__name__} {name_or_path!r}"
        )
    if not isinstance(download, bool):
        raise TypeError(f"download: expected True or False, got {download!r} ({type(download).__name__})")
    if url is not None and not isinstance(url, str):
        raise TypeError(f"url: expected None or a str, got {type(url).__name__} {url!r}")
    key = os.fspath(name_or_path)
    corpus = REGISTRY.get(key) if isinstance(key, str) else None
    if corpus is None:
        if url is not None:
            raise ValueError(
                f"url: only applies to registered corpora {sorted(REGISTRY)}; got url={url!r} with "
                f"name_or_path={key!r}"
            )
        local = Path(key).expanduser()
        if local.is_file():
            return local
        raise FileNotFoundError(
            f"name_or_path: expected a registered corpus name (one of {', '.join(sorted(REGISTRY))}) or the "
            f"path of an existing file; got {key!r}"
            + (", which is a directory" if local.is_dir() else ", which does not exist")
        )

    dest = data_dir() / corpus.filename
    if dest.is_file():
        return dest
    source = url if url is not None else corpus.url
    if not download:
        raise _unavailable(corpus, dest, source, "it is not cached and download=False")
    _download(corpus, dest, source)
    return dest


def read_file(path: str | os.PathLike, *, expected: str) -> bytes:
    """The bytes of the file `path`, with a missing file or a folder refused in one line.

    Args:
      path: the file.
      expected: what the caller wants there, for the message (e.g. "expected a WhatsApp export .txt").

    Raises:
      FileNotFoundError: `path` does not exist; ValueError: it is a folder. Both name `path` and `expected`.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"path: {path!r} is a folder; {expected}")
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"path: no such file {path!r}; {expected}") from None


def _check_errors(errors) -> None:
    if errors not in ("strict", "replace"):
        raise ValueError(f"errors: expected 'strict' or 'replace', got {errors!r}")


def decode(data: bytes, where: str, *, errors: str = "strict") -> str:
    """The bytes of a text file decoded as UTF-8, with the checks every text reader shares.

    Args:
      data: the whole file, as read.
      where: how error messages name the file, e.g. "corpus 'chat.txt'".
      errors: "strict" (undecodable bytes raise) or "replace" (they become U+FFFD, only when asked).

    Returns:
      The text, a leading BOM removed; line endings are left as stored.

    Raises:
      ValueError: the data looks binary (holds a NUL byte) or (with errors="strict") is not valid UTF-8;
        the message starts with `where` and gives the byte offset in the file (BOM included).
    """
    _check_errors(errors)
    nul = data.find(b"\x00")
    if nul >= 0:
        raise ValueError(f"{where}: expected a text file, got binary data (a NUL byte at byte offset {nul})")
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[bom:].decode("utf-8", errors=errors)
    except UnicodeDecodeError as e:
        at = bom + e.start  # offset in the file, BOM included
        raise ValueError(
            f"{where}: expected UTF-8 text, got an undecodable byte 0x{data[at]:02x} at "
            f"byte offset {at} ({e.reason}); re-encode the file as UTF-8, or pass errors='replace' "
            f"(--decode-errors replace) to substitute U+FFFD"
        ) from None


def load(name_or_path: str | os.PathLike, *, errors: str = "strict", **kwargs) -> str:
    """The text of a corpus.

    Args:
      name_or_path: a registered name or a local file path, as for `path`.
      errors: "strict" (undecodable bytes raise) or "replace" (they become U+FFFD, only when asked).
      **kwargs: passed to `path` (`download=`, `url=`).

    Returns:
      The file decoded as UTF-8, a leading BOM removed; line endings are left as stored.

    Raises:
      ValueError: the file is empty, looks binary (holds NUL bytes), or (with errors="strict") is not
        valid UTF-8; the message names the file and, for bad bytes, the byte offset.
    """
    _check_errors(errors)
    file = path(name_or_path, **kwargs)
    data = file.read_bytes()
    if not data.strip():
        raise ValueError(f"corpus {str(file)!r}: the file is empty (or only whitespace); expected text")
    return decode(data, f"corpus {str(file)!r}", errors=errors)
