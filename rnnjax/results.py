"""Experiment outputs: run folders under `results/<experiment>/<run>/` and atomic writes (temp file, then
rename), so an interrupted run never leaves a half-written JSON or PNG behind."""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["atomic_write_text", "run_dir", "save_figure", "to_jsonable", "write_json"]


def run_dir(experiment: str, run: str | None = None, root: str | os.PathLike = "results") -> Path:
    """Create and return `root/experiment/run` (run defaults to a UTC timestamp)."""
    run = run or datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
    path = Path(root) / experiment / run
    path.mkdir(parents=True, exist_ok=True)
    return path


def _atomic(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
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
