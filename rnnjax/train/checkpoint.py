"""Training checkpoints with orbax-checkpoint: the full training state (params, optimiser state, TBPTT
carries) plus a JSON record (config, vocabulary, metrics) in one step folder, the last `keep_last` steps
and the best one by validation loss kept, the rest deleted.

Saving is synchronous and atomic: orbax writes each step to a temporary folder and renames it when
complete, and temporary folders left by a killed run are removed when the store is opened again, so the
folder never holds a half-written checkpoint. Each step is then sealed with `CHECKSUMS.json`, the SHA-256
of every file orbax wrote; every read verifies it, so a flipped byte, a truncated file, a missing file or
a step that was never sealed (killed between orbax's commit and the seal) is refused as
`CorruptCheckpoint` and never loaded. Only finite states are saved. In a multi-process run
(`rnnjax.train.distributed`) a store is private to the process that opens it: the run's writer, process 0,
saves; any process may read.

    store = Checkpoints(run / "checkpoints", keep_last=3)
    store.save(step, state, meta={"config": ...}, metrics={"valid_loss": 1.52})
    state, meta = store.restore(store.latest_step(), like=state)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies

from rnnjax.results import atomic_write_text

__all__ = ["CHECKSUMS", "METRIC", "Checkpoints", "CorruptCheckpoint", "find_checkpoints", "is_finite_tree"]

METRIC = "valid_loss"  # the metric "best" means: lowest wins
CHECKSUMS = "CHECKSUMS.json"  # the seal of a step folder: SHA-256 of every file in it


class CorruptCheckpoint(ValueError):
    """A checkpoint step whose files do not match their recorded checksums (or were never sealed)."""


def is_finite_tree(tree) -> bool:
    """Whether every floating-point leaf of `tree` is finite (no NaN, no ±inf)."""
    for leaf in jax.tree.leaves(jax.device_get(tree)):
        a = np.asarray(leaf)
        if np.issubdtype(a.dtype, np.inexact) and not np.all(np.isfinite(a)):
            return False
    return True


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verify_folder(folder: Path, step: int, directory: Path) -> None:
    """Raise `CorruptCheckpoint` unless every file of the step folder matches its recorded SHA-256."""
    where = f"checkpoint: step {step} in {str(directory)!r}"
    try:
        record = json.loads((folder / CHECKSUMS).read_text())
        sums = record["sha256"]
        if record["step"] != step or not isinstance(sums, dict) or not sums:
            raise ValueError("the checksum record is for another step or empty")
    except FileNotFoundError:
        raise CorruptCheckpoint(f"{where} is incomplete: it was never sealed with {CHECKSUMS}") from None
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise CorruptCheckpoint(f"{where} is corrupt: unreadable {CHECKSUMS} ({e})") from None
    present = _files(folder)
    for name, want in sums.items():
        if name not in present:
            raise CorruptCheckpoint(f"{where} is corrupt: {name} is missing")
        if _sha256(present[name]) != want:
            raise CorruptCheckpoint(f"{where} is corrupt: {name} does not match its checksum")
    extra = sorted(set(present) - set(sums))
    if extra:
        raise CorruptCheckpoint(f"{where} is corrupt: unexpected file {extra[0]}")


def _quarantine(directory: Path, step: int) -> Path:
    """Move step folder `step` to `directory/.corrupt/<step>[-k]` and return where it went."""
    target_dir = directory / ".corrupt"
    target_dir.mkdir(exist_ok=True)
    target, k = target_dir / str(step), 1
    while target.exists():
        target, k = target_dir / f"{step}-{k}", k + 1
    shutil.move(str(directory / str(step)), str(target))
    return target


@contextlib.contextmanager
def _quiet_orbax(level: int = logging.CRITICAL):
    """Inside, orbax's log records (it logs through absl's logger) below `level` are dropped: a failed
    write reaches the caller as an exception, said once; orbax would also log it, with its traceback."""
    logger = logging.getLogger("absl")
    previous = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(previous)


def _drop_echoes_of_failed_writes() -> None:
    """From now on (once per process), drop the echoes of a failed orbax write (e.g. on a full disk),
    which the caller's exception already says: tensorstore finishes the writes under way after orbax's
    event loop has closed, each report printing a traceback "Event loop is closed" (through
    `sys.unraisablehook`), and asyncio logs each failed write task nobody awaited. Others pass unchanged."""
    hook = sys.unraisablehook
    if getattr(hook, "rnnjax_drops_echoes", False):
        return

    def unraisablehook(report):
        if report.exc_type is RuntimeError and str(report.exc_value) == "Event loop is closed":
            return
        hook(report)

    unraisablehook.rnnjax_drops_echoes = True
    sys.unraisablehook = unraisablehook
    logging.getLogger("asyncio").addFilter(_not_an_orbax_task_left_failed)


def _not_an_orbax_task_left_failed(record: logging.LogRecord) -> bool:
    """False (drop the record) for asyncio's log of an orbax write task whose failure nobody awaited."""
    message = record.getMessage()
    return not (message.startswith("Task exception was never retrieved") and "orbax" in message)


def _files(folder: Path) -> dict[str, Path]:
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != CHECKSUMS)
    return {p.relative_to(folder).as_posix(): p for p in paths}


def find_checkpoints(path: str | os.PathLike) -> Path:
    """The checkpoint folder for `path`: a run folder holding `checkpoints/`, or that folder itself.

    Raises FileNotFoundError naming `path` if neither holds a checkpoint.
    """
    path = Path(path)
    for candidate in (path / "checkpoints", path):
        if candidate.is_dir() and any(p.name.isdigit() for p in candidate.iterdir()):
            return candidate
    raise FileNotFoundError(
        f"checkpoint: expected a run folder with a checkpoints/ subfolder or a checkpoints folder with step "
        f"folders (e.g. checkpoints/200), got {str(path)!r}, which has none"
    )


class Checkpoints:
    """A checkpoint folder: step subfolders `<step>/` with the state and a JSON `meta` record each.

    Args:
      directory: the folder (created if missing).
      keep_last: how many of the most recent checkpoints to keep (>= 1).
      keep_best: also keep the checkpoint with the lowest `metrics[METRIC]`, however old.
      writable: a store that saves (the one writer of the run, see `rnnjax.results.RunLock`): steps that
        fail verification are moved to `directory/.corrupt/`. False: a read-only view of the intact steps
        (for loading and sampling; nothing in the folder changes).
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        *,
        keep_last: int = 3,
        keep_best: bool = True,
        writable: bool = True,
    ):
        if isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 1:
            raise ValueError(f"keep_last: expected an int >= 1, got {keep_last!r}")
        if not isinstance(writable, bool):
            raise TypeError(f"writable: expected True or False, got {writable!r}")
        self.directory = Path(directory).absolute()
        self.writable = writable
        # Verify every step before orbax reads any of it (orbax parses each step's files when it opens).
        self._corrupt: dict[int, str] = {}
        if self.directory.is_dir():
            for folder in sorted(self.directory.iterdir()):
                if folder.is_dir() and folder.name.isdigit():
                    try:
                        _verify_folder(folder, int(folder.name), self.directory)
                    except CorruptCheckpoint as e:
                        self._corrupt[int(folder.name)] = str(e)
        self._view: Path | None = None
        if writable:  # corrupt steps move to checkpoints/.corrupt/, out of orbax's way, never deleted
            for step in self._corrupt:
                _quarantine(self.directory, step)
            root = self.directory
        else:  # a read-only view holding only the intact steps (nothing in the run folder changes)
            if not self.directory.is_dir():
                raise FileNotFoundError(f"checkpoint: no checkpoint folder {str(self.directory)!r}")
            self._view = Path(tempfile.mkdtemp(prefix="rnnjax-checkpoints-"))
            for folder in self.directory.iterdir():
                if folder.is_dir() and folder.name.isdigit() and int(folder.name) not in self._corrupt:
                    (self._view / folder.name).symlink_to(folder, target_is_directory=True)
            root = self._view
        keep: list[Any] = [policies.LatestN(n=keep_last)]
        if keep_best:
            # BestN keeps the last n after sorting by the metric; reverse=True sorts descending, so the
            # kept one is the lowest loss. Checkpoints saved without metrics are kept only by LatestN.
            keep.append(
                policies.BestN(
                    get_metric_fn=lambda m: m[METRIC],
                    reverse=True,
                    n=1,
                    keep_checkpoints_without_metrics=False,
                )
            )
        # In a multi-process run (`rnnjax.train.distributed`) a store belongs to the one process that opens
        # it (process 0 for the run's writer): orbax then synchronises with no other process, and wants the
        # folder made beforehand.
        alone = jax.process_count() > 1
        if alone and writable:
            self.directory.mkdir(parents=True, exist_ok=True)
        me = jax.process_index()
        options = ocp.CheckpointManagerOptions(
            preservation_policy=policies.AnyPreservationPolicy(keep),
            # best_fn is what makes orbax write the metrics to disk (so "best" survives a restart);
            # the preservation policy above decides what is deleted.
            best_fn=(lambda m: m[METRIC]) if keep_best else None,
            best_mode="min",
            enable_async_checkpointing=False,
            cleanup_tmp_directories=writable,
            create=writable and not alone,
            read_only=not writable,
            save_interval_steps=1 if writable else 0,
            multiprocessing_options=ocp.options.MultiprocessingOptions(
                primary_host=me, active_processes={me} if alone else None
            ),
        )
        if writable:
            self._manager = ocp.CheckpointManager(root, options=options)
        else:  # orbax logs two warnings about read-only managers that say nothing to the user
            with _quiet_orbax(logging.ERROR):
                self._manager = ocp.CheckpointManager(root, options=options)

    def steps(self) -> list[int]:
        """The saved steps, oldest first."""
        return sorted(self._manager.all_steps())

    def latest_step(self) -> int | None:
        """The most recent saved step, or None."""
        return self._manager.latest_step()

    def best_step(self) -> int | None:
        """The saved step with the lowest `metrics[METRIC]` (the earliest on ties), or None if none has it."""
        best = None
        for step in self.intact_steps():
            m = self._manager.metrics(step)
            if m is not None and METRIC in m and np.isfinite(m[METRIC]):
                if best is None or m[METRIC] < best[1]:
                    best = (step, m[METRIC])
        return None if best is None else best[0]

    def resolve(self, which: str | int) -> int:
        """The intact step meant by `which`: "latest" (the newest intact step), "best" (the intact step
        with the lowest `metrics[METRIC]`, else the newest) or a step number.

        Steps that failed verification are never chosen: "latest" and "best" say so in one warning naming
        each corrupt step left out and the step used; a step number that exists but is corrupt is refused
        as corrupt (`CorruptCheckpoint`, saying what is wrong), not as never saved.
        """
        problems, intact = self.problems(), self.intact_steps()
        number = isinstance(which, int | np.integer) and not isinstance(which, bool)
        if number and int(which) in problems:
            what = problems[int(which)].removeprefix("checkpoint: ")
            others = f"the intact steps are {intact}" if intact else "no step is intact"
            raise CorruptCheckpoint(f"step: checkpoint {what}; {others}")
        if not intact:
            if problems:
                where = f" in {str(self.directory)!r}"
                whys = "; ".join(w.removeprefix("checkpoint: ").replace(where, "") for w in problems.values())
                raise CorruptCheckpoint(f"checkpoint: no intact checkpoint{where}: {whys}")
            raise FileNotFoundError(f"checkpoint: no checkpoints in {str(self.directory)!r}")
        if which in ("latest", "best"):
            best = self.best_step() if which == "best" else None
            step = intact[-1] if best is None else best
            left_out = [why for s, why in sorted(problems.items()) if which == "best" or s > step]
            if left_out:
                kind = "the latest intact one" if best is None else "the best intact one"
                warnings.warn(f"{'; '.join(left_out)}; using step {step}, {kind}", UserWarning, stacklevel=2)
            return step
        if number and int(which) in intact:
            return int(which)
        raise ValueError(f"step: expected 'latest', 'best' or one of the saved steps {intact}, got {which!r}")

    def save(self, step: int, state, *, meta: dict, metrics: dict | None = None) -> None:
        """Save `state` (any pytree of arrays) and the JSON-able `meta` dict as `step`.

        `metrics` (e.g. {"valid_loss": ...}) decide which checkpoint is the best one. A state or metric that
        is not finite is refused (ValueError): only finite checkpoints exist.
        """
        host_state = jax.tree.map(np.asarray, jax.device_get(state))
        if not is_finite_tree(host_state):
            raise ValueError(f"state: refusing to save step {step}: it holds NaN or infinite values")
        for name, value in (metrics or {}).items():
            if not math.isfinite(value):
                raise ValueError(f"metrics: refusing to save step {step}: {name} is {value}")
        args = ocp.args.Composite(state=ocp.args.StandardSave(host_state), meta=ocp.args.JsonSave(meta))
        _drop_echoes_of_failed_writes()
        with _quiet_orbax():  # a failed write (e.g. a full disk) is the caller's one message
            saved = self._manager.save(int(step), args=args, metrics=metrics, force=True)
            if not saved:
                raise RuntimeError(f"checkpoint: orbax did not save step {step} in {str(self.directory)!r}")
            self._manager.wait_until_finished()
        folder = self.directory / str(int(step))
        sums = {name: _sha256(path) for name, path in _files(folder).items()}
        atomic_write_text(folder / CHECKSUMS, json.dumps({"step": int(step), "sha256": sums}, indent=1))

    def verify(self, step: int) -> None:
        """Raise `CorruptCheckpoint` naming the step and the first problem unless every file of `step`
        matches its recorded SHA-256 (and no recorded file is missing)."""
        if int(step) in self._corrupt:
            raise CorruptCheckpoint(self._corrupt[int(step)])
        _verify_folder(self.directory / str(int(step)), int(step), self.directory)

    def intact_steps(self) -> list[int]:
        """The saved steps that pass `verify`, oldest first."""
        intact = []
        for step in self.steps():
            try:
                self.verify(step)
            except CorruptCheckpoint:
                continue
            intact.append(step)
        return intact

    def problems(self) -> dict[int, str]:
        """`{step: what is wrong}` for every step that failed verification (when the store was opened, or
        now); in a writable store those found on opening were moved to `checkpoints/.corrupt/`."""
        out = dict(self._corrupt)
        for step in self.steps():
            try:
                self.verify(step)
            except CorruptCheckpoint as e:
                out[step] = str(e)
        return out

    def delete(self, step: int) -> None:
        """Remove a saved step (e.g. a corrupt one that a resumed run is about to write again)."""
        self._manager.delete(int(step))

    def _verify_or_explain(self, step: int) -> None:
        try:
            self.verify(step)
        except CorruptCheckpoint as e:
            others = [s for s in self.intact_steps() if s != int(step)]
            hint = f"; intact steps: {others}" if others else "; no other step is intact"
            raise CorruptCheckpoint(f"{e}{hint}") from None

    def read_meta(self, step: int) -> dict:
        """The `meta` record saved with `step` (verified first)."""
        self._verify_or_explain(step)
        return self._manager.restore(int(step), args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]

    def restore(self, step: int, like) -> tuple[Any, dict]:
        """(state, meta) saved at `step`; `like` is a pytree of the same structure, shapes and dtypes
        (e.g. a freshly initialised state), and the state comes back as host NumPy arrays in it."""
        self._verify_or_explain(step)
        target = jax.tree.map(lambda x: np.zeros(np.shape(x), np.asarray(x).dtype), jax.device_get(like))
        out = self._manager.restore(
            int(step),
            args=ocp.args.Composite(state=ocp.args.StandardRestore(target), meta=ocp.args.JsonRestore()),
        )
        state = jax.tree.unflatten(jax.tree.structure(like), jax.tree.leaves(out["state"]))
        return state, out["meta"]

    def close(self) -> None:
        self._manager.close()
        if self._view is not None:
            shutil.rmtree(self._view, ignore_errors=True)
            self._view = None

    def __enter__(self) -> Checkpoints:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
