"""The one training loop: `fit` runs a pure `train_step` and owns everything around it (progress bar,
`metrics.jsonl`, evaluation cadence, time limit, divergence stop, orbax checkpoints, exact resume).

Each problem (a synthetic task, a language model, a classifier) supplies only pure pieces:

    train_step(state, batch, key) -> (state, metrics)   # metrics: dict of scalars, "loss" required
    batches(step) -> batch                                # the batch of step `step` (0-based)
    evaluate(state) -> dict                               # optional; "loss" required

Because the batch and the key (`fold_in(key, step)`) are functions of the step number, and a checkpoint
holds the whole state, resuming from a checkpoint replays exactly the computation of an uninterrupted run.

    result = fit(step_fn, state, batches, steps=1000, evaluate=evaluate, run="results/x/run1")
    result.state, result.history["loss"], result.status   # "done", "stopped" or "diverged"

Ctrl-C (SIGINT) or SIGTERM (a cluster's preemption) during `fit` finishes the current step, checkpoints it
(with a run folder) and raises `Interrupted` (a `KeyboardInterrupt` carrying the `FitResult`), so
`resume=True` continues from exactly that step; a second Ctrl-C aborts at once.

In a multi-process run (`rnnjax.train.distributed`) every process calls `fit` alike and computes every step
(the step, its batches and `evaluate` are collectives over the run's devices); process 0 alone writes
(run folder lock, `metrics.jsonl`, checkpoints, `on_start`) and shows the progress bar, a resumed run
starts every process from process 0's checkpoint (broadcast, so no shared file system is needed), and the
decisions taken on process 0 (its checks of the folder, a save's success, the time limit) reach every
process, so all stop together.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import shutil
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from rnnjax.results import RunLock, atomic_write_text, disk_full_message
from rnnjax.train import distributed
from rnnjax.train.checkpoint import METRIC, Checkpoints

__all__ = ["DivergenceWarning", "FitResult", "Interrupted", "MetricsLog", "fit"]

# Steps between updates of the progress bar's loss display (each update costs a terminal write).
POSTFIX_EVERY = 25
# Metrics whose non-finite value means the run diverged.
WATCHED = ("loss", "grad_norm")


class FitResult(NamedTuple):
    """What `fit` returns.

    Attributes:
      state: the last good state, on the host (on divergence: the state before the non-finite step).
      history: dict of per-step lists, one per metric of `train_step` (e.g. "loss", "grad_norm"), for the
        steps run in this call (the diverging step included), plus "steps" (how many), "total_steps" (the
        run's target), "diverged", "message", "compile_seconds" and "train_seconds".
      status: "done", "stopped" (by `stop_after` or the time limit), "diverged" or, in the result carried
        by `Interrupted`, "interrupted".
      message: a human-readable account of how training ended.
      valid: the last evaluation record, or None.
      best_step: the checkpointed step with the lowest evaluation loss, or None.
      step: the number of updates done (the step the state is at).
      run: the run folder, or None.
    """

    state: Any
    history: dict
    status: str
    message: str
    valid: dict | None
    best_step: int | None
    step: int
    run: Path | None


class DivergenceWarning(RuntimeWarning):
    """`fit` stopped at a non-finite loss, gradient norm, state or evaluation (the warning's message is the
    `FitResult.message`; commands report it as their error instead)."""


class Interrupted(KeyboardInterrupt):
    """Training was stopped by a signal (SIGINT or SIGTERM) after a completed step.

    Raised by `fit` once the step in progress has finished and, with a run folder, been checkpointed, so
    `fit(..., resume=True)` continues from `result.step` exactly as an uninterrupted run would.

    Attributes:
      result: the `FitResult` up to the interrupted step (`status == "interrupted"`).
      signum: the signal received (`signal.SIGINT` or `signal.SIGTERM`).
      saved: whether a checkpoint of `result.step` was written.
      exit_status: 128 + signum, the shell's convention (130 for Ctrl-C, 143 for SIGTERM).
    """

    def __init__(self, result: FitResult, signum: int, saved: bool):
        self.result, self.signum, self.saved = result, int(signum), saved
        self.exit_status = 128 + int(signum)
        steps = result.history.get("total_steps", "?")
        where = f"saved in {str(result.run)!r}" if saved else "not saved (no run folder)"
        super().__init__(f"interrupted at step {result.step} of {steps}; {where}")


class _Signals:
    """While entered (in the main thread): the first SIGINT or SIGTERM is only recorded (`received`), so
    the loop can finish its step and save; a second SIGINT raises KeyboardInterrupt at once. The previous
    handlers come back on exit. A signal the process ignores stays ignored, and in another thread (where
    Python cannot set handlers) nothing changes."""

    def __init__(self, desc: str, show: bool):
        self.received: int | None = None
        self._previous: dict = {}
        self._desc, self._show = desc, show

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                if signal.getsignal(sig) is signal.SIG_IGN:
                    continue  # ignored by whoever started the process (e.g. a shell's background job)
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.received is not None:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            return
        self.received = signum
        if self._show:
            name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
            again = " (Ctrl-C again aborts without saving)" if signum == signal.SIGINT else ""
            sys.stderr.write(f"\n{self._desc}: {name} received; finishing this step and saving{again}\n")
            sys.stderr.flush()

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}


class MetricsLog:
    """`metrics.jsonl`: one JSON record per line, appended and flushed as written."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def truncate_after(self, step: int) -> None:
        """Drop records of steps after `step` (written by a run that is being resumed from `step`)."""
        if not self.path.exists():
            return
        lines = self.path.read_text().splitlines()
        keep = [line for line in lines if line.strip() and _step_of(line) <= step]
        atomic_write_text(self.path, "".join(line + "\n" for line in keep))

    def write(self, record: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()

    def read(self) -> list[dict]:
        """Every record, in order."""
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]


def _step_of(line: str) -> int:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return 1 << 62  # unreadable (e.g. cut by a crash): dropped on truncation


def _check_count(name: str, value, minimum: int = 1, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        expected = f"an int >= {minimum}" + (" or None" if allow_none else "")
        raise ValueError(f"{name}: expected {expected}, got {value!r}")
    return int(value)


def _prepare_run(run: Path, resume: bool, keep_last: int):
    """(checkpoint store, metrics log) for the locked folder `run`, refusing a folder that would be
    clobbered."""
    ckpt_dir = run / "checkpoints"
    has_ckpt = ckpt_dir.is_dir() and any(p.name.isdigit() for p in ckpt_dir.iterdir())
    if has_ckpt and not resume:
        raise ValueError(
            f"run: {str(run)!r} already holds checkpoints; pass resume=True (--resume) to continue it, "
            f"or use a new run folder"
        )
    if resume and not has_ckpt:
        raise ValueError(f"resume: {str(run)!r} holds no checkpoint to resume from")
    return Checkpoints(ckpt_dir, keep_last=keep_last), MetricsLog(run / "metrics.jsonl")


def _resume_step(store: Checkpoints) -> int:
    """The newest intact checkpoint; newer corrupt or unsealed ones are reported (the writable store has
    moved them out of the way, since the resumed run writes those steps again)."""
    problems = store.problems()
    intact = store.intact_steps()
    if not intact:
        raise ValueError(
            f"resume: no intact checkpoint in {str(store.directory)!r}: " + "; ".join(problems.values())
        )
    start = intact[-1]
    for step, why in problems.items():
        if step > start:
            warnings.warn(
                f"{why}; resuming from step {start} instead (step {step} moved to checkpoints/.corrupt/)",
                stacklevel=4,
            )
    return start


def _clean_temporary(folder: Path) -> None:
    """Remove orbax's temporary step folders (left by a failed save)."""
    for tmp in folder.glob("*.orbax-checkpoint-tmp*"):
        shutil.rmtree(tmp, ignore_errors=True)


def _state_finite(state) -> jax.Array:
    """<bool>[]: every floating-point leaf of `state` is finite (computed on the device)."""
    leaves = [x for x in jax.tree.leaves(state) if jnp.issubdtype(jnp.result_type(x), jnp.inexact)]
    return jnp.all(jnp.asarray([jnp.all(jnp.isfinite(x)) for x in leaves])) if leaves else jnp.bool_(True)


def fit(
    train_step: Callable,
    state,
    batches: Callable[[int], Any],
    *,
    steps: int,
    key: jax.Array | None = None,
    evaluate: Callable[[Any], dict] | None = None,
    eval_every: int | None = None,
    run: str | os.PathLike | None = None,
    resume: bool = False,
    save_every: int | None = None,
    keep_last: int = 3,
    meta: dict | None = None,
    check_resume: Callable[[dict], None] | None = None,
    log_every: int = 10,
    items_per_step: tuple[str, int] | None = None,
    time_limit: float | None = None,
    stop_after: int | None = None,
    progress: bool = True,
    desc: str = "train",
    on_step: Callable[[int, Any], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> FitResult:
    """Run `train_step` for `steps` updates from `state`.

    Each step calls `train_step(state, batches(step), fold_in(key, step))`, compiled once with `jax.jit`
    (a function already jitted, e.g. with shardings, is used as it is). If a watched metric ("loss",
    "grad_norm") is NaN or infinite, training stops there: the returned state is the one before that
    update, nothing is saved for that step, and the message names the last checkpoint.

    Args:
      train_step: `(state, batch, key) -> (state, metrics)`, pure; metrics a dict of scalars with "loss".
      state: the initial state (any pytree of arrays).
      batches: `step -> batch` for the 0-based step.
      steps: the total number of updates (a resumed run continues to this many).
      key: PRNG key of the run (dropout, resets); default `jax.random.key(0)`.
      evaluate: `state -> dict` with "loss", run every `eval_every` steps, at every checkpoint and at the
        end; its records go to `metrics.jsonl` (split "valid").
      eval_every: steps between evaluations (None: only at checkpoints and at the end).
      run: a folder for `metrics.jsonl` and `checkpoints/`; None keeps everything in memory.
      resume: continue from the latest checkpoint in `run`.
      save_every: steps between checkpoints (None: only at the end or when stopped); needs `run`.
      keep_last: checkpoints kept besides the best one.
      meta: JSON-able record saved with every checkpoint (e.g. the config and vocabulary).
      check_resume: `meta -> None` called with the checkpoint's meta before resuming; raises to refuse.
      log_every: steps per training record in `metrics.jsonl` (means over the window).
      items_per_step: e.g. `("tokens", batch * seq_len)` adds "tokens_per_second" to training records.
      time_limit: stop (and checkpoint) after the first step that ends this many seconds after the start.
      stop_after: stop (and checkpoint) after this step, as if interrupted.
      progress: show a tqdm progress bar.
      desc: the progress bar's label, also used in messages.
      on_step: `(step, state) -> None` called after each completed step (and its checkpoint); tests use
        it to inject faults.
      on_start: `(start_step) -> None` called once before the first step, after the run folder was checked
        (and, on resume, the checkpoint restored and accepted); e.g. to write the run's config files. In a
        multi-process run, on process 0 only.
    Returns:
      A `FitResult`.
    """
    steps = _check_count("steps", steps)
    log_every = _check_count("log_every", log_every)
    eval_every = _check_count("eval_every", eval_every, allow_none=True)
    save_every = _check_count("save_every", save_every, allow_none=True)
    stop_after = _check_count("stop_after", stop_after, 0, allow_none=True)
    if time_limit is not None and (
        isinstance(time_limit, bool) or not (isinstance(time_limit, int | float) and time_limit > 0)
    ):
        raise ValueError(f"time_limit: expected None or a positive number of seconds, got {time_limit!r}")
    if run is None and (resume or save_every is not None):
        raise ValueError("run: resume and save_every need a run folder, got run=None")
    loop_args = dict(
        steps=steps, evaluate=evaluate, eval_every=eval_every, save_every=save_every, meta=meta or {},
        log_every=log_every, items_per_step=items_per_step, time_limit=time_limit, stop_after=stop_after,
        progress=progress, desc=desc, on_step=on_step,
    )  # fmt: skip
    key = jax.random.key(0) if key is None else key
    run = None if run is None else Path(run)
    with contextlib.ExitStack() as stack:
        store, log, restored = None, None, None

        def open_run() -> int:  # the writer (process 0) alone: lock and check the folder, read the resume
            nonlocal store, log, restored
            start = 0
            if run is not None:
                if run.exists() and not run.is_dir():
                    raise ValueError(f"run: expected a folder, got {str(run)!r}, which is a file")
                stack.enter_context(RunLock(run))  # one writer per run folder, held for the whole run
                store, log = _prepare_run(run, resume, keep_last)
                stack.callback(store.close)
                if resume:
                    start = _resume_step(store)
                    restored, saved_meta = store.restore(start, like=jax.tree.map(_zeros_like, state))
                    if check_resume is not None:
                        check_resume(saved_meta)
                    log.truncate_after(start)
                    print(f"{desc.strip()}: resuming from step {start} of {steps}", flush=True)
                elif log.path.exists():
                    log.path.unlink()
            if on_start is not None:
                on_start(start)
            return start

        start = distributed.on_main(open_run, f"{desc}: opening the run folder")
        if resume and distributed.process_count() == 1:
            state = restored  # host arrays: the step's jit places them
        elif resume:  # every process continues from the writer's checkpoint, placed as `state` is
            host = restored if distributed.is_main() else jax.tree.map(_zeros_like, state)
            state = _placed_like(distributed.broadcast(host), state)
        return _loop(train_step, state, batches, key, start, store, log, run, **loop_args)


def _zeros_like(x) -> np.ndarray:
    """Host zeros of `x`'s shape and dtype (`x` may be split over devices this process cannot read)."""
    return np.zeros(np.shape(x), x.dtype if hasattr(x, "dtype") else np.asarray(x).dtype)


def _placed_like(host, like):
    """The arrays of `host` on the devices and with the shardings of the matching arrays of `like`."""
    return jax.tree.map(lambda h, x: jax.device_put(h, x.sharding) if isinstance(x, jax.Array) else h,
                        host, like)  # fmt: skip


def _loop(
    train_step, state, batches, key, start, store, log, run, *, steps, evaluate, eval_every, save_every, meta,
    log_every, items_per_step, time_limit, stop_after, progress, desc, on_step,
) -> FitResult:  # fmt: skip
    def checked_step(state, batch, key):  # the user's step, plus whether the new state is finite
        new_state, metrics = train_step(state, batch, key)
        return new_state, metrics, _state_finite(new_state)

    step_fn = jax.jit(checked_step)
    last = steps if stop_after is None else max(start, min(steps, stop_after))
    history: dict = {}
    window: dict[str, list[float]] = {}
    valid, status, message, done = None, "done", "", start
    compile_seconds = 0.0
    t_start = t_window = time.perf_counter()

    def write_log(entry: dict) -> None:  # on process 0; a failure there reaches every process
        if run is not None:
            distributed.on_main(lambda: log.write(entry), f"{desc}: writing metrics.jsonl")

    def record(split: str, values: dict) -> None:
        write_log({"step": done, "split": split, **values})

    def validate() -> dict:
        v = {k: float(x) for k, x in jax.device_get(evaluate(state)).items()}
        record("valid", v)
        return v

    main = distributed.is_main()  # the writer: files, progress bar and warnings (the others compute only)
    bar = tqdm(total=steps, initial=start, unit="step", desc=desc, disable=not (progress and main),
               dynamic_ncols=True)  # fmt: skip
    signals = _Signals(desc.strip(), show=main)
    interrupted = False
    with bar, signals:
        for step in range(start, last):
            t0 = time.perf_counter()
            new_state, metrics, finite = step_fn(state, batches(step), jax.random.fold_in(key, step))
            values = {k: float(v) for k, v in jax.device_get(metrics).items()}
            for name, v in values.items():
                history.setdefault(name, []).append(v)
            if step == start:
                compile_seconds = time.perf_counter() - t0  # the first call compiles
            bad = [f"{k} {values[k]}" for k in WATCHED if k in values and not math.isfinite(values[k])]
            if not bool(finite):
                bad.append("the updated parameters or optimiser state hold NaN or inf")
            if bad:
                status = "diverged"
                message = _divergence_message(desc, step + 1, ", ".join(bad), store)
                write_log({"step": step + 1, "split": "train", **{k: None for k in values}, "diverged": True})
                if main:
                    warnings.warn(message, DivergenceWarning, stacklevel=2)
                break
            state, done = new_state, step + 1
            for name, v in values.items():
                window.setdefault(name, []).append(v)
            if done == start + 1:  # keep compilation out of the throughput
                record("compile", {"seconds": compile_seconds})
                t_window = time.perf_counter()
            if done % log_every == 0 or done == last:
                elapsed = max(time.perf_counter() - t_window, 1e-9)
                n = len(window["loss"])
                means = {k: float(np.mean(v)) for k, v in window.items()}
                if items_per_step is not None:
                    means[f"{items_per_step[0]}_per_second"] = n * items_per_step[1] / elapsed
                record("train", means)
                window, t_window = {}, time.perf_counter()
            bar.update(1)
            if done % POSTFIX_EVERY == 0 or done == last:
                bar.set_postfix({k: f"{v:.4g}" for k, v in values.items() if k in WATCHED}, refresh=False)
            late = time_limit is not None and time.perf_counter() - t_start > time_limit
            out_of_time, interrupted = _stop_flags(late, signals.received is not None)
            stop = out_of_time or interrupted
            save = run is not None and (
                (save_every is not None and done % save_every == 0) or done == last or stop
            )
            if evaluate is not None and (
                save or done == last or stop or (eval_every is not None and done % eval_every == 0)
            ):
                valid = validate()
                t_window = time.perf_counter()  # evaluation time is not training throughput
                if not math.isfinite(valid["loss"]):  # only finite checkpoints: stop before saving it
                    status = "diverged"
                    message = _divergence_message(
                        desc, done, f"evaluation loss {valid['loss']}", store, returned="the one evaluated"
                    )
                    if main:
                        warnings.warn(message, DivergenceWarning, stacklevel=2)
                    break
            if save:
                score = valid["loss"] if valid is not None else values["loss"]
                host = distributed.to_host(state)  # every process takes part in gathering split arrays
                save_now = functools.partial(_save, store, done, host, meta, score)
                distributed.on_main(save_now, f"{desc}: saving step {done}")
            if on_step is not None:
                on_step(done, state)
            if stop:
                break
    train_seconds = time.perf_counter() - t_start
    if status == "done" and interrupted:
        status = "interrupted"
        saved = run is not None
        message = f"{desc.strip()}: interrupted at step {done} of {steps}" + ("; saved" if saved else "")
    elif status == "done":
        if done < steps:
            status = "stopped"
            why = "stop_after" if stop_after is not None and done >= stop_after else "the time limit"
            saved = " (checkpointed); continue with resume" if run is not None else ""
            message = f"{desc}: stopped by {why} after step {done} of {steps}{saved}"
        else:
            message = f"{desc}: finished {steps} steps"
        if valid is not None:
            message += f"; evaluation loss {valid['loss']:.4f}"
    history.update(
        steps=len(history.get("loss", [])),
        total_steps=steps,
        diverged=status == "diverged",
        message=message if status == "diverged" else None,
        compile_seconds=compile_seconds,
        train_seconds=train_seconds,
    )
    best = distributed.on_main(lambda: store.best_step()) if run is not None else None
    result = FitResult(distributed.to_host(state), history, status, message, valid, best, done, run)
    if status == "interrupted":
        raise Interrupted(result, signals.received or signal.SIGINT, saved=run is not None)
    return result


def _stop_flags(out_of_time: bool, interrupted: bool) -> tuple[bool, bool]:
    """The writer's (out of time, interrupted) on every process: a decision taken on a clock or a signal
    must be the same everywhere (one small broadcast per step in a multi-process run)."""
    if jax.process_count() == 1:
        return out_of_time, interrupted
    flags = distributed.broadcast(np.array([out_of_time, interrupted], np.int32))
    return bool(flags[0]), bool(flags[1])


def _divergence_message(
    desc: str, step: int, what: str, store: Checkpoints | None, returned: str = "the last finite one"
) -> str:
    good = store.intact_steps() if store is not None else []
    where = f"; the newest finite checkpoint is step {good[-1]} in {str(store.directory)!r}" if good else ""
    return (
        f"{desc}: stopped at step {step}: {what} (not finite). Nothing was saved for this step; the state "
        f"returned is {returned}{where}. Try a lower learning rate or gradient clipping."
    )


def _save(store: Checkpoints, step: int, state, meta: dict, score: float) -> None:
    """Save a checkpoint; a full disk gives one clear OSError and leaves no temporary folder."""
    try:
        store.save(step, state, meta=meta, metrics={METRIC: score})
    except Exception as error:
        message = disk_full_message(error, store.directory)
        if message is None:
            raise
        _clean_temporary(store.directory)
        raise OSError(28, message) from None
