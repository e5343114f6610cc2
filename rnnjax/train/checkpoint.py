"""Training checkpoints with orbax-checkpoint: the full training state (params, optimiser state, TBPTT
carries) plus a JSON record (config, vocabulary, metrics) in one step folder, the last `keep_last` steps
and the best one by validation loss kept, the rest deleted.

Saving is synchronous and atomic: orbax writes each step to a temporary folder and renames it when
complete, and temporary folders left by a killed run are removed when the store is opened again, so the
folder never holds a half-written checkpoint.

    store = Checkpoints(run / "checkpoints", keep_last=3)
    store.save(step, state, meta={"config": ...}, metrics={"valid_loss": 1.52})
    state, meta = store.restore(store.latest_step(), like=state)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies

__all__ = ["METRIC", "Checkpoints", "find_checkpoints"]

METRIC = "valid_loss"  # the metric "best" means: lowest wins


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
    """

    def __init__(self, directory: str | os.PathLike, *, keep_last: int = 3, keep_best: bool = True):
        if isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 1:
            raise ValueError(f"keep_last: expected an int >= 1, got {keep_last!r}")
        self.directory = Path(directory).absolute()
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
        options = ocp.CheckpointManagerOptions(
            preservation_policy=policies.AnyPreservationPolicy(keep),
            # best_fn is what makes orbax write the metrics to disk (so "best" survives a restart);
            # the preservation policy above decides what is deleted.
            best_fn=(lambda m: m[METRIC]) if keep_best else None,
            best_mode="min",
            enable_async_checkpointing=False,
            cleanup_tmp_directories=True,
            create=True,
        )
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def steps(self) -> list[int]:
        """The saved steps, oldest first."""
        return sorted(self._manager.all_steps())

    def latest_step(self) -> int | None:
        """The most recent saved step, or None."""
        return self._manager.latest_step()

    def best_step(self) -> int | None:
        """The saved step with the lowest `metrics[METRIC]` (the earliest on ties), or None if none has it."""
        best = None
        for step in self.steps():
            m = self._manager.metrics(step)
            if m is not None and METRIC in m and np.isfinite(m[METRIC]):
                if best is None or m[METRIC] < best[1]:
                    best = (step, m[METRIC])
        return None if best is None else best[0]

    def resolve(self, which: str | int) -> int:
        """The step meant by `which`: "latest", "best" (falls back to latest if no metrics) or an int."""
        steps = self.steps()
        if not steps:
            raise FileNotFoundError(f"checkpoint: no checkpoints in {str(self.directory)!r}")
        if which == "latest":
            return steps[-1]
        if which == "best":
            best = self.best_step()
            return steps[-1] if best is None else best
        if isinstance(which, int | np.integer) and not isinstance(which, bool) and int(which) in steps:
            return int(which)
        raise ValueError(f"step: expected 'latest', 'best' or one of the saved steps {steps}, got {which!r}")

    def save(self, step: int, state, *, meta: dict, metrics: dict | None = None) -> None:
        """Save `state` (any pytree of arrays) and the JSON-able `meta` dict as `step`.

        `metrics` (e.g. {"valid_loss": ...}) decide which checkpoint is the best one.
        """
        host_state = jax.tree.map(np.asarray, jax.device_get(state))
        saved = self._manager.save(
            int(step),
            args=ocp.args.Composite(state=ocp.args.StandardSave(host_state), meta=ocp.args.JsonSave(meta)),
            metrics=metrics,
            force=True,
        )
        if not saved:
            raise RuntimeError(f"checkpoint: orbax did not save step {step} in {str(self.directory)!r}")
        self._manager.wait_until_finished()

    def read_meta(self, step: int) -> dict:
        """The `meta` record saved with `step`."""
        return self._manager.restore(int(step), args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]

    def restore(self, step: int, like) -> tuple[Any, dict]:
        """(state, meta) saved at `step`; `like` is a pytree of the same structure, shapes and dtypes
        (e.g. a freshly initialised state), and the state comes back as host NumPy arrays in it."""
        target = jax.tree.map(lambda x: np.zeros(np.shape(x), np.asarray(x).dtype), jax.device_get(like))
        out = self._manager.restore(
            int(step),
            args=ocp.args.Composite(state=ocp.args.StandardRestore(target), meta=ocp.args.JsonRestore()),
        )
        state = jax.tree.unflatten(jax.tree.structure(like), jax.tree.leaves(out["state"]))
        return state, out["meta"]

    def close(self) -> None:
        self._manager.close()

    def __enter__(self) -> Checkpoints:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
