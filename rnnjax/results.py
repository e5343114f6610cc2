"""Experiment outputs: run folders under `results/<experiment>/<run>/`, one writer per folder (an OS lock),
and atomic writes (temp file, then rename), so an interrupted run never leaves a half-written JSON or PNG
behind, and a full disk leaves no temporary file and one clear message."""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import json
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any

__all__ = [
    "RunLock",
    "atomic_write_text",
    "check_run_name",
    "disk_full_message",
    "save_figure",
    "to_jsonable",
    "write_json",
]

# A run name: letters, digits, '.', '_', '-' (not starting with '.'), so it is one folder under results/.
_RUN_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
# Permissions of result files (mkstemp creates 0600; results are meant to be read by others).
FILE_MODE = 0o644


def check_run_name(run) -> str:
    """`run` if it is a plain folder name (no path separators, no '..', not hidden), else a ValueError."""
    if not isinstance(run, str) or not _RUN_NAME.fullmatch(run):
        raise ValueError(
            f"run: expected a name of one folder under results/<experiment>/ (letters, digits, '.', '_', "
            f"'-'; no '/' or '..'), got {run!r}"
        )
    return run


class RunLock:
    """An exclusive OS lock (`fcntl.flock`) on `folder/.lock`, held while a run writes into `folder`.

    A second writer is refused at once with a ValueError naming the holder's PID; the lock goes away with
    the process, however it ends (SIGKILL included), so a dead run never blocks a later one. Within one
    process the lock is re-entrant (a command that owns its run folder trains in it through `fit`, which
    locks it again): it is released when the outermost holder exits.

        with RunLock(run_folder):
            ...  # the only writer of run_folder
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self._fd: int | None = None
        self._key: Path | None = None

    def __enter__(self) -> RunLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._key = self.folder.resolve()
        if self._key in _HELD:  # this process holds it already
            _HELD[self._key][1] += 1
            return self
        fd = os.open(self.folder / ".lock", os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise ValueError(
                f"run: {str(self.folder)!r} is in use by another process (PID {holder}); wait for it to "
                f"finish or choose another --run"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        _HELD[self._key] = [fd, 1]
        return self

    def __exit__(self, *exc) -> None:
        key, self._key = self._key, None
        held = _HELD.get(key) if key is not None else None
        if held is None:
            return
        held[1] -= 1
        if held[1] == 0:
            del _HELD[key]
            fcntl.flock(held[0], fcntl.LOCK_UN)
            os.close(held[0])


# The run folders this process holds locked: resolved path -> [file descriptor, holders].
_HELD: dict[Path, list[int]] = {}


def disk_full_message(error: BaseException, folder: str | os.PathLike) -> str | None:
    """The one-line message for an error caused by a full disk (ENOSPC / RESOURCE_EXHAUSTED), else None."""
    text = str(error)
    full = (isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)) or (
        "RESOURCE_EXHAUSTED" in text or "No space left" in text
    )
    if not full:
        return None
    return f"disk full: could not write into {str(folder)!r}; free some space there and run again"


def _atomic(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        message = disk_full_message(error, path.parent)
        if message is not None:
            raise OSError(errno.ENOSPC, message) from None
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` atomically."""
    _atomic(Path(path), lambda f: f.write(text.encode()))


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, NumPy/JAX scalars and arrays, tuples and paths -> plain JSON values.

    NaN and ±inf (not valid JSON) become null: record what they meant (e.g. an underflow count) beside them.
    """
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "tolist"):  # NumPy / JAX arrays and scalars
        return to_jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write `obj` as indented JSON, atomically."""
    atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2) + "\n")


def save_figure(fig, path: str | os.PathLike, dpi: int = 120) -> None:
    """Save a matplotlib figure as PNG, atomically."""
    _atomic(Path(path), lambda f: fig.savefig(f, format="png", dpi=dpi, bbox_inches="tight"))
