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
"""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from rnnjax import models
from rnnjax.cells import Cell
from rnnjax.tasks import Task
from rnnjax.train.loop import fit
from rnnjax.train.optimizers import make_optimizer

__all__ = [
    "TrainResult",
    "TrainState",
    "batch",
    "evaluate",
    "init_params",
    "loss_fn",
    "make_model",
    "make_train_step",
    "outputs",
    "train",
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
