"""Training on the synthetic long-range tasks of `rnnjax.tasks`: a cell plus a dense readout at every step
(`rnnjax.models.sequence_model`), trained by the one loop `rnnjax.train.fit`, recording the loss and the
global gradient norm *before clipping* at every step, so exploding-gradient spikes stay visible.

    cell = rnnjax.cells.lstm(64)
    task = tasks.make("adding", 100)
    params, history = synthetic.train(cell, task, steps=2000, learning_rate=1e-3, clip_norm=1.0, seed=0)
    history["loss"], history["grad_norm"]          # one float per step
    params["rnn"]["layer_0"]                       # the cell's params (e.g. LSTMParams), for diagnostics

Randomness is split from one seed: `init_params(cell, task, seed)` are the parameters `train` starts from,
`batch(task, seed, step, batch_size)` is the batch it trains on at `step`, and `evaluate` draws from a
third stream that training never sees.

Several seeds train at once with `train_seeds`: `jax.vmap` over a leading seed axis of the params, the
optimiser state and the batches, one compiled step for all of them (the seed axis split across devices
when there are several and they divide the seed count; on a single CPU device the seeds run in turn
inside that step, `jax.lax.map`, which measured faster there: `default_seed_axis`). Seed `s` of it
computes what `train(..., seed=s)` computes, to float rounding; a seed whose update turns non-finite stops
there alone (its params stay the last finite ones) while the others go on.

    params, histories = synthetic.train_seeds(cell, task, seeds=range(5), steps=2000, clip_norm=1.0)
    jax.tree.map(lambda w: w[3], params)          # seed 3's params; histories[3]["loss"]
    synthetic.evaluate_seeds(cell, task, params, seeds=range(5))   # <float64>[5] held-out losses
"""

from __future__ import annotations

import numbers
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rnnjax import models
from rnnjax.cells import Cell
from rnnjax.tasks import Task
from rnnjax.train.loop import MetricsLog, fit
from rnnjax.train.optimizers import make_optimizer
from rnnjax.train.parallel import batch_sharding, sweep_mesh

__all__ = [
    "SeedsResult",
    "SeedsState",
    "TrainResult",
    "TrainState",
    "batch",
    "SEED_AXES",
    "check_seeds",
    "default_seed_axis",
    "evaluate",
    "evaluate_seeds",
    "init_params",
    "init_params_seeds",
    "loss_fn",
    "make_model",
    "make_train_step",
    "make_seeds_step",
    "outputs",
    "seed_params",
    "train",
    "train_seeds",
]


class TrainState(NamedTuple):
    params: Any  # the model's params: {"rnn": {"layer_0": cell params}, "readout": DenseParams}
    opt_state: Any  # the optax state


class TrainResult(NamedTuple):
    """What `train` returns; unpacks as `params, history = train(...)`.

    Attributes:
      params: the final params (after the last finite step; see `train`).
      history: the `rnnjax.train.fit` history: "loss" and "grad_norm" (before clipping, `optax.tree.norm`)
        per step, "steps", "diverged", "message", "compile_seconds", "train_seconds".
    """

    params: Any
    history: dict


def _keys(seed: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Independent streams for initialisation, training batches and evaluation batches."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed: expected an int, got {seed!r}")
    k_init, k_data, k_eval = jax.random.split(jax.random.key(int(seed)), 3)
    return k_init, k_data, k_eval


def _check_cell_task(cell, task) -> None:
    if not isinstance(cell, Cell):
        raise TypeError(f"cell: expected an rnnjax.cells.Cell, got {type(cell).__name__}")
    if not isinstance(task, Task):
        raise TypeError(f"task: expected an rnnjax.tasks.Task, got {type(task).__name__}")


def _check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value!r}")
    return int(value)


def make_model(cell: Cell, task: Task) -> models.RNNModel:
    """`models.sequence_model(cell, task.output_size)`: the readout at every step."""
    _check_cell_task(cell, task)
    return models.sequence_model(cell, task.output_size)


def init_params(cell: Cell, task: Task, seed: int):
    """The parameters `train(cell, task, seed=seed)` starts from: `{"rnn": {"layer_0": cell.init(...)},
    "readout": DenseParams(w <[H, V]>, b <[V]>)}`, the readout in the cell's dtype."""
    model = make_model(cell, task)
    k_init = _keys(seed)[0]
    dtype = jax.tree_util.tree_leaves(jax.eval_shape(lambda k: cell.init(k, 1), k_init))[0].dtype
    return model.init(k_init, jnp.zeros((1, 1, task.input_size), dtype))["params"]


def batch(task: Task, seed: int, step: int, batch_size: int) -> tuple[jax.Array, jax.Array]:
    """The training batch `train(..., seed=seed, batch_size=batch_size)` uses at `step` (0-based):
    `task.sample(key, batch_size)`, xs <float32>[batch_size, task.length, task.input_size] and targets."""
    return task.sample(jax.random.fold_in(_keys(seed)[1], step), batch_size)


def outputs(cell: Cell, params, xs: jax.Array) -> jax.Array:
    """The network's outputs at every step <float>[batch, T, V] for xs <float>[batch, T, I]: regression
    outputs or class logits (see the task)."""
    model = models.sequence_model(cell, params["readout"].w.shape[-1])
    return model.apply({"params": params}, xs)[0]


def loss_fn(cell: Cell, task: Task, params, xs: jax.Array, targets: jax.Array) -> jax.Array:
    """`task.loss` of the network's outputs on one batch; returns <float>[]."""
    return task.loss(outputs(cell, params, xs), targets)


def evaluate(cell: Cell, task: Task, params, *, seed: int, batch_size: int = 1024) -> float:
    """The loss on a fresh batch from the evaluation stream of `seed`, which training never sees."""
    _check_cell_task(cell, task)
    batch_size = _check_positive_int("batch_size", batch_size)
    xs, targets = task.sample(_keys(seed)[2], batch_size)
    return float(jax.jit(loss_fn, static_argnums=(0, 1))(cell, task, params, xs, targets))


def make_train_step(cell: Cell, task: Task, tx: optax.GradientTransformation, *, seed: int, batch_size: int):
    """`train_step(state, step, key) -> (state, {"loss", "grad_norm"})`: the batch of `step` is
    `batch(task, seed, step, batch_size)`, drawn inside the compiled step; the gradient norm is taken
    before clipping (the spikes we want to see)."""
    k_data = _keys(seed)[1]

    def train_step(state: TrainState, step, key):
        del key  # the tasks need no randomness besides the batch
        xs, targets = task.sample(jax.random.fold_in(k_data, step), batch_size)
        loss, grads = jax.value_and_grad(lambda p: loss_fn(cell, task, p, xs, targets))(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        new = TrainState(optax.apply_updates(state.params, updates), opt_state)
        return new, {"loss": loss, "grad_norm": optax.tree.norm(grads)}

    return train_step


def train(
    cell: Cell,
    task: Task,
    *,
    steps: int,
    batch_size: int = 64,
    optimizer: str | optax.GradientTransformation = "adam",
    learning_rate: float | None = None,
    clip_norm: float | None = None,
    seed: int = 0,
    params=None,
    progress: bool = True,
    desc: str | None = None,
) -> TrainResult:
    """Train a cell and dense readout on a task with optax, one fresh batch per step (`rnnjax.train.fit`).

    Each step draws `batch(task, seed, step, batch_size)`, computes the loss and its gradient by
    backpropagation through time, records the loss and the gradient's global norm *before* clipping, and
    applies the (clipped) optimiser update. If the loss or the gradient norm becomes NaN or inf, training
    stops with a `RuntimeWarning`, the history ends with that step (flagged `diverged`), and the returned
    params are the ones that produced it.

    Args:
      cell: a `Cell` from `rnnjax.cells`.
      task: a `Task` from `rnnjax.tasks`.
      steps: number of optimisation steps.
      batch_size: examples per step.
      optimizer, learning_rate, clip_norm: see `rnnjax.train.make_optimizer`.
      seed: int; fixes the initial params (`init_params`) and the batches (`batch`).
      params: start from these params instead of `init_params(cell, task, seed)`.
      progress: show a progress bar with the loss.
      desc: label of the progress bar (default "<cell kind> <task name> T=<seq_len>").
    Returns:
      `TrainResult(params, history)`; `params["rnn"]["layer_0"]` holds the cell's params.
    """
    _check_cell_task(cell, task)
    steps = _check_positive_int("steps", steps)
    batch_size = _check_positive_int("batch_size", batch_size)
    tx = make_optimizer(optimizer, learning_rate, clip_norm)
    if params is None:
        params = init_params(cell, task, seed)
    elif not (isinstance(params, dict) and {"rnn", "readout"} <= set(params)):
        raise TypeError(
            f"params: expected the model's params {{'rnn': ..., 'readout': ...}} (see init_params), "
            f"got {type(params).__name__}"
        )
    result = fit(
        make_train_step(cell, task, tx, seed=seed, batch_size=batch_size),
        TrainState(params, tx.init(params)),
        jnp.int32,  # the batch of a step is drawn inside the compiled step from the step number
        steps=steps,
        log_every=steps,
        progress=progress,
        desc=desc or f"{cell.kind} {task.name} T={task.seq_len}",
    )
    return TrainResult(result.state.params, result.history)


# --------------------------------------------------------------------------------------------
# Several seeds at once


class SeedsState(NamedTuple):
    """The state of `train_seeds`: every leaf has a leading seed axis of length N."""

    params: Any  # the model's params, each leaf <[N, ...]>
    opt_state: Any  # the optax state, each leaf <[N, ...]>
    alive: jax.Array  # <bool>[N]: the seed has had no non-finite update yet


class SeedsResult(NamedTuple):
    """What `train_seeds` returns; unpacks as `params, histories = train_seeds(...)`.

    Attributes:
      params: the final params, every leaf with a leading seed axis (`seed_params(params, i)` is seed i's).
      histories: one dict per seed, as `train`'s history: "loss" and "grad_norm" per step (ending with the
        non-finite step if that seed diverged), "steps", "diverged", "message", and the run's shared
        "compile_seconds" and "train_seconds".
    """

    params: Any
    histories: list


def check_seeds(seeds) -> tuple[int, ...]:
    """`seeds` as a tuple of distinct ints >= 0 (at least one), else a ValueError naming `seeds`."""
    if isinstance(seeds, str | bytes) or not isinstance(seeds, Sequence | range | np.ndarray):
        raise ValueError(f"seeds: expected a sequence of distinct ints >= 0, got {seeds!r}")
    values = list(seeds)
    if (
        not values
        or any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 0 for s in values)
        or len(set(values)) != len(values)
    ):
        raise ValueError(f"seeds: expected a sequence of distinct ints >= 0 (at least one), got {seeds!r}")
    return tuple(int(s) for s in values)


def _stack(trees):
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


def seed_params(params, index: int):
    """The params of the `index`-th seed of `train_seeds`'s stacked `params`."""
    return jax.tree.map(lambda w: w[index], params)


def init_params_seeds(cell: Cell, task: Task, seeds) -> Any:
    """`init_params(cell, task, s)` for every seed `s`, stacked along a new leading axis."""
    return _stack([init_params(cell, task, s) for s in check_seeds(seeds)])


def _per_seed(ok: jax.Array, new, old):
    """`new` where `ok` <bool>[N] holds, else `old` (leaves with a leading seed axis)."""
    return jax.tree.map(lambda a, b: jnp.where(ok.reshape((-1,) + (1,) * (a.ndim - 1)), a, b), new, old)


def _finite_per_seed(tree) -> jax.Array:
    """<bool>[N]: every floating-point entry of seed i's slice of `tree` is finite."""
    checks = [
        jnp.all(jnp.isfinite(x).reshape(x.shape[0], -1), axis=1)
        for x in jax.tree.leaves(tree)
        if jnp.issubdtype(x.dtype, jnp.inexact)
    ]
    return jnp.all(jnp.stack(checks), axis=0)


SEED_AXES = ("vmap", "map")


def default_seed_axis(n: int) -> str:
    """How `train_seeds` runs `n` seeds by default: "vmap" on an accelerator or when the seeds are split
    across several devices; "map" (one seed after another inside the one compiled step) on a single CPU
    device, where XLA:CPU's batched matmuls measured 1.8-3.2x slower than the seeds in turn (5 seeds,
    adding T=100, H=64, batch 64, 2-core CPU: LSTM 472 vs 150 ms per step, GRU 265 vs 95, tanh 94 vs 53)."""
    devices = sweep_mesh().devices.size
    if jax.default_backend() != "cpu" or (devices > 1 and n % devices == 0):
        return "vmap"
    return "map"


def _check_seed_axis(seed_axis, n: int) -> str:
    if seed_axis is None:
        return default_seed_axis(n)
    if seed_axis not in SEED_AXES:
        raise ValueError(f"seed_axis: expected None or one of {SEED_AXES}, got {seed_axis!r}")
    return seed_axis


def make_seeds_step(
    cell: Cell,
    task: Task,
    tx: optax.GradientTransformation,
    *,
    seeds,
    batch_size: int,
    seed_axis: str | None = None,
):
    """`train_step(state, step, key) -> (state, metrics)` for a `SeedsState`: `make_train_step`'s step
    over the seed axis (`seed_axis` "vmap": `jax.vmap`; "map": `jax.lax.map`, the seeds in turn; None:
    `default_seed_axis`), seed i drawing `batch(task, seeds[i], step, batch_size)`.

    A seed whose loss, gradient norm or updated state is not finite keeps its previous params and
    optimiser state and is marked dead from then on. Metrics, all scalars (what `fit` takes): "loss" (mean
    over the seeds whose update was kept; NaN when none was, which stops `fit`), "grad_norm" (their
    largest), and per seed i "loss_i", "grad_norm_i" (NaN once dead) and "ok_i" (1.0 if its update was
    kept)."""
    seeds = check_seeds(seeds)
    seed_axis = _check_seed_axis(seed_axis, len(seeds))
    k_data = jnp.stack([_keys(s)[1] for s in seeds])  # <key>[N]

    def one(params, opt_state, k, step):
        xs, targets = task.sample(jax.random.fold_in(k, step), batch_size)
        loss, grads = jax.value_and_grad(lambda p: loss_fn(cell, task, p, xs, targets))(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, optax.tree.norm(grads)

    def train_step(state: SeedsState, step, key):
        del key
        if seed_axis == "map":
            params, opt_state, loss, grad_norm = jax.lax.map(
                lambda a: one(*a, step), (state.params, state.opt_state, k_data)
            )
        else:
            params, opt_state, loss, grad_norm = jax.vmap(one, in_axes=(0, 0, 0, None))(
                state.params, state.opt_state, k_data, step
            )
        ok = (
            state.alive & jnp.isfinite(loss) & jnp.isfinite(grad_norm) & _finite_per_seed((params, opt_state))
        )
        new = SeedsState(_per_seed(ok, params, state.params), _per_seed(ok, opt_state, state.opt_state), ok)
        nan = jnp.asarray(jnp.nan, loss.dtype)
        loss = jnp.where(state.alive, loss, nan)
        grad_norm = jnp.where(state.alive, grad_norm, nan)
        kept = jnp.sum(ok)
        metrics = {
            "loss": jnp.where(kept > 0, jnp.sum(jnp.where(ok, loss, 0)) / jnp.maximum(kept, 1), nan),
            "grad_norm": jnp.where(kept > 0, jnp.max(jnp.where(ok, grad_norm, -jnp.inf)), nan),
        }
        for i in range(len(seeds)):
            metrics |= {
                f"loss_{i}": loss[i],
                f"grad_norm_{i}": grad_norm[i],
                f"ok_{i}": ok[i].astype(loss.dtype),
            }
        return new, metrics

    return train_step


def _place(state: SeedsState) -> SeedsState:
    """The seed axis split across every device when there are several and they divide it."""
    mesh = sweep_mesh()
    n = state.alive.shape[0]
    if mesh.devices.size > 1 and n % mesh.devices.size == 0:
        return jax.device_put(state, batch_sharding(mesh))
    return state


def train_seeds(
    cell: Cell,
    task: Task,
    *,
    seeds,
    steps: int,
    batch_size: int = 64,
    optimizer: str | optax.GradientTransformation = "adam",
    learning_rate: float | None = None,
    clip_norm: float | None = None,
    params=None,
    seed_axis: str | None = None,
    progress: bool = True,
    desc: str | None = None,
    run: str | os.PathLike | None = None,
    resume: bool = False,
) -> SeedsResult:
    """`train` for every seed of `seeds` at once: one compiled step vmapped over a leading seed axis of the
    params, the optimiser state and the batches (`make_seeds_step`), split across devices when there are
    several and they divide the number of seeds (on one CPU device the seeds run in turn inside the step by
    default: `default_seed_axis`). Seed `s` computes what `train(cell, task, seed=s, ...)`
    computes, to float rounding. A seed that meets a non-finite loss, gradient norm or update stops alone
    (a `RuntimeWarning` names it; its history ends with that step, its params are the last finite ones);
    `fit` stops the whole run only when every seed has.

    Args:
      cell, task, steps, batch_size, optimizer, learning_rate, clip_norm, progress: as for `train`.
      seeds: distinct ints >= 0, one training each.
      params: stacked params to start from (leading axis len(seeds)); default `init_params_seeds`.
      seed_axis: "vmap", "map" or None (`default_seed_axis`); see `make_seeds_step`.
      desc: label of the progress bar.
      run: a folder for the training's `metrics.jsonl` (every step's values) and checkpoints (at the end
        and when interrupted, see `rnnjax.train.loop.Interrupted`); None keeps everything in memory.
      resume: continue the checkpoint in `run`; the histories then hold every step, the earlier ones
        read back from `metrics.jsonl`, so they equal an uninterrupted run's.
    Returns:
      `SeedsResult(params, histories)`.
    """
    _check_cell_task(cell, task)
    seeds = check_seeds(seeds)
    seed_axis = _check_seed_axis(seed_axis, len(seeds))
    steps = _check_positive_int("steps", steps)
    batch_size = _check_positive_int("batch_size", batch_size)
    tx = make_optimizer(optimizer, learning_rate, clip_norm)
    if params is None:
        params = init_params_seeds(cell, task, seeds)
    elif not (isinstance(params, dict) and {"rnn", "readout"} <= set(params)):
        raise TypeError(
            f"params: expected the model's stacked params {{'rnn': ..., 'readout': ...}} (see "
            f"init_params_seeds), got {type(params).__name__}"
        )
    else:
        shapes = {jnp.shape(w)[:1] for w in jax.tree.leaves(params)}
        if shapes != {(len(seeds),)}:
            raise ValueError(
                f"params: expected every leaf with a leading seed axis of {len(seeds)} (one per seed), got "
                f"leading axes {sorted(shapes)}"
            )
    n = len(seeds)
    state = _place(SeedsState(params, jax.vmap(tx.init)(params), jnp.ones(n, bool)))
    result = fit(
        make_seeds_step(cell, task, tx, seeds=seeds, batch_size=batch_size, seed_axis=seed_axis),
        state,
        jnp.int32,
        steps=steps,
        log_every=steps if run is None else 1,  # with a run folder, every step's values are kept
        run=run,
        resume=resume,
        progress=progress,
        desc=desc or f"{cell.kind} {task.name} T={task.seq_len} x{n} seeds",
    )
    h = result.history
    if run is not None and result.step > h["steps"]:  # resumed: the earlier steps come from the log
        h = _with_earlier_steps(h, MetricsLog(Path(run) / "metrics.jsonl"), result.step - h["steps"])
    histories = []
    for i, seed in enumerate(seeds):
        ok = h[f"ok_{i}"]
        dead = next((j for j, v in enumerate(ok) if v != 1.0), None)
        end = len(ok) if dead is None else dead + 1
        record = dict(loss=h[f"loss_{i}"][:end], grad_norm=h[f"grad_norm_{i}"][:end], steps=end)
        record["diverged"] = dead is not None
        record["message"] = None
        if dead is not None:
            record["message"] = (
                f"seed {seed}: stopped at step {end}: loss {record['loss'][-1]}, gradient norm "
                f"{record['grad_norm'][-1]} or the update not finite; its params are the last finite ones"
            )
            warnings.warn(record["message"], RuntimeWarning, stacklevel=2)
        record.update(compile_seconds=h["compile_seconds"], train_seconds=h["train_seconds"])
        histories.append(record)
    return SeedsResult(result.state.params, histories)


def _with_earlier_steps(history: dict, log: MetricsLog, start: int) -> dict:
    """`history` (steps start+1, ...) preceded by the per-step training records 1..start of `log` (written
    with `log_every=1`, so each record holds one step's values exactly)."""
    earlier = sorted((r for r in log.read() if r.get("split") == "train" and r["step"] <= start),
                     key=lambda r: r["step"])  # fmt: skip
    if [r["step"] for r in earlier] != list(range(1, start + 1)):
        raise ValueError(
            f"resume: {str(log.path)!r} does not hold one training record for each of steps 1..{start}"
        )
    out = dict(history)
    for name, values in history.items():
        if isinstance(values, list):
            out[name] = [r[name] for r in earlier] + values
    out["steps"] = start + history["steps"]
    return out


def evaluate_seeds(cell: Cell, task: Task, params, *, seeds, batch_size: int = 1024) -> np.ndarray:
    """`evaluate(cell, task, seed_params(params, i), seed=seeds[i])` for every seed, computed at once
    (vmapped); returns <float64>[len(seeds)]."""
    _check_cell_task(cell, task)
    seeds = check_seeds(seeds)
    batch_size = _check_positive_int("batch_size", batch_size)
    keys = jnp.stack([_keys(s)[2] for s in seeds])

    def one(p, k):
        xs, targets = task.sample(k, batch_size)
        return loss_fn(cell, task, p, xs, targets)

    return np.asarray(jax.jit(jax.vmap(one))(params, keys), np.float64)
