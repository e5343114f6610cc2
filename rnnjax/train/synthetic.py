"""Training a cell plus dense readout on an `rnnjax.tasks` task (synthetic long-range problems), recording
the loss and the global gradient norm *before clipping* at every step, so exploding-gradient spikes stay
visible.

    cell = rnnjax.cells.lstm(64)
    task = tasks.make("adding", 100)
    params, history = train.train(cell, task, steps=2000, learning_rate=1e-3, clip_norm=1.0, seed=0)
    history["loss"], history["grad_norm"]          # one float per step
    params.cell                                    # the cell's params (e.g. LSTMParams), for diagnostics

Randomness is split from one seed: `init_params(cell, task, seed)` are the parameters `train` starts from,
`batch(task, seed, step, batch_size)` is the batch it trains on at `step`, and `evaluate` draws from a
third stream that training never sees.
"""

from __future__ import annotations

import math
import numbers
import time
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from tqdm import tqdm

import rnnjax
from rnnjax import readout
from rnnjax.cells import Cell
from rnnjax.tasks import Task

__all__ = [
    "OPTIMIZERS",
    "Params",
    "TrainResult",
    "batch",
    "evaluate",
    "init_params",
    "loss_fn",
    "make_optimizer",
    "outputs",
    "train",
]

# Optimisers selectable by name; each is called with the learning rate.
OPTIMIZERS = {"adam": optax.adam, "sgd": optax.sgd, "rmsprop": optax.rmsprop}
DEFAULT_LEARNING_RATE = 1e-3
# Steps between updates of the progress bar's loss display (each update costs a terminal write).
POSTFIX_EVERY = 25


class Params(NamedTuple):
    """Everything `train` optimises."""

    cell: Any  # the cell's params: SimpleParams, LSTMParams or GRUParams (W_ih [I, G*H], W_hh [H, G*H], ...)
    readout: readout.DenseParams  # w [H, output_size], b [output_size]


class TrainResult(NamedTuple):
    """What `train` returns; unpacks as `params, history = train(...)`.

    Attributes:
      params: the final `Params` (after the last finite step; see `train`).
      history: dict with
        "loss": list of floats, the training loss of the batch at each step (before that step's update);
        "grad_norm": list of floats, the global L2 norm of the full gradient at each step, before
          clipping (`optax.tree.norm`, formerly `optax.global_norm`);
        "steps": number of steps recorded (= `steps` unless training diverged);
        "diverged": True if a loss or gradient norm became NaN or inf (the last recorded step is the
          first non-finite one);
        "message": None, or the reason training stopped early;
        "compile_seconds", "train_seconds": wall time of compiling the step and of the loop.
    """

    params: Params
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


def _check_positive_float(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise ValueError(f"{name}: expected a positive number, got {value!r}")
    return float(value)


def init_params(cell: Cell, task: Task, seed: int) -> Params:
    """The parameters `train(cell, task, seed=seed)` starts from.

    Args:
      cell: a `Cell`; its own initialiser and dtype are used.
      task: the task, which fixes the input size I and the readout's output size V.
      seed: int.
    Returns:
      `Params(cell=cell.init(k, I), readout=DenseParams(w <[H, V]>, b <[V]>))`, the readout in the
      cell's dtype.
    """
    _check_cell_task(cell, task)
    k_cell, k_head = jax.random.split(_keys(seed)[0])
    cell_params = cell.init(k_cell, task.input_size)
    dtype = jax.tree_util.tree_leaves(cell_params)[0].dtype
    head = readout.dense_init(k_head, cell.hidden_size, task.output_size, dtype=dtype)
    return Params(cell_params, head)


def batch(task: Task, seed: int, step: int, batch_size: int) -> tuple[jax.Array, jax.Array]:
    """The training batch `train(..., seed=seed, batch_size=batch_size)` uses at `step` (0-based).

    Returns:
      `task.sample(key, batch_size)`: xs <float32>[batch_size, task.length, task.input_size] and the
      task's targets.
    """
    return task.sample(jax.random.fold_in(_keys(seed)[1], step), batch_size)


def outputs(cell: Cell, params: Params, xs: jax.Array) -> jax.Array:
    """The network's outputs at every step: the readout applied to each hidden state.

    Args:
      cell: the `Cell`.
      params: `Params`.
      xs: <float>[batch, T, I].
    Returns:
      <float>[batch, T, V], regression outputs or class logits (see the task).
    """
    _, ys = rnnjax.unroll(cell, params.cell, xs)  # (B, T, H)
    return readout.dense(params.readout, ys)  # (B, T, V)


def loss_fn(cell: Cell, task: Task, params: Params, xs: jax.Array, targets: jax.Array) -> jax.Array:
    """`task.loss` of the network's outputs on one batch; returns <float>[]."""
    return task.loss(outputs(cell, params, xs), targets)


def evaluate(cell: Cell, task: Task, params: Params, *, seed: int, batch_size: int = 1024) -> float:
    """The loss on a fresh batch from the evaluation stream of `seed`, which training never sees.

    Args:
      cell, task, params: as in `train`.
      seed: int; the same seed as training gives batches disjoint from the training stream.
      batch_size: examples in the evaluation batch.
    Returns:
      The loss as a Python float.
    """
    _check_cell_task(cell, task)
    batch_size = _check_positive_int("batch_size", batch_size)
    xs, targets = task.sample(_keys(seed)[2], batch_size)
    return float(jax.jit(loss_fn, static_argnums=(0, 1))(cell, task, params, xs, targets))


def make_optimizer(
    optimizer: str | optax.GradientTransformation = "adam",
    learning_rate: float | None = None,
    clip_norm: float | None = None,
) -> optax.GradientTransformation:
    """The update rule of `train`: optionally `optax.clip_by_global_norm(clip_norm)`, then the optimiser.

    Args:
      optimizer: a name in `OPTIMIZERS` ("adam", "sgd", "rmsprop") or an `optax.GradientTransformation`
        (which then brings its own learning rate).
      learning_rate: for a named optimiser: a positive number or an optax schedule (a callable from
        step to rate, e.g. `optax.cosine_decay_schedule`); None means 1e-3. Must be None for a
        transformation.
      clip_norm: None (no clipping) or the largest global gradient norm passed on (Pascanu et al., 2013).
    Returns:
      An `optax.GradientTransformation`.
    """
    if isinstance(optimizer, str):
        if optimizer not in OPTIMIZERS:
            raise ValueError(
                f"optimizer: expected one of {sorted(OPTIMIZERS)} or an optax.GradientTransformation, "
                f"got {optimizer!r}"
            )
        lr = DEFAULT_LEARNING_RATE if learning_rate is None else learning_rate
        if not callable(lr):
            lr = _check_positive_float("learning_rate", lr)
        base = OPTIMIZERS[optimizer](lr)
    elif isinstance(optimizer, optax.GradientTransformation):
        if learning_rate is not None:
            raise ValueError(
                f"learning_rate: expected None with an optax.GradientTransformation (it has its own "
                f"learning rate), got {learning_rate!r}"
            )
        base = optimizer
    else:
        raise TypeError(
            f"optimizer: expected a name in {sorted(OPTIMIZERS)} or an optax.GradientTransformation, "
            f"got {type(optimizer).__name__}"
        )
    if clip_norm is None:
        return base
    return optax.chain(optax.clip_by_global_norm(_check_positive_float("clip_norm", clip_norm)), base)


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
    params: Params | None = None,
    progress: bool = True,
    desc: str | None = None,
) -> TrainResult:
    """Train a cell and dense readout on a task with optax, one fresh batch per step.

    Each step draws `batch(task, seed, step, batch_size)`, computes the loss and its gradient by
    backpropagation through time, records the loss and the gradient's global norm *before* clipping,
    and applies the (clipped) optimiser update; the step is compiled once with `jax.jit`. If the loss
    or the gradient norm becomes NaN or inf, training stops with a `RuntimeWarning`, the history ends
    with that step (flagged `diverged`), and the returned params are the ones that produced it (the last
    params not yet touched by a non-finite gradient).

    Args:
      cell: a `Cell` from `rnnjax.cells`.
      task: a `Task` from `rnnjax.tasks`.
      steps: number of optimisation steps.
      batch_size: examples per step.
      optimizer: a name in `OPTIMIZERS` or an `optax.GradientTransformation` (see `make_optimizer`).
      learning_rate: for a named optimiser (default 1e-3); None with a transformation.
      clip_norm: None, or clip the gradient to this global norm before the optimiser
        (`optax.clip_by_global_norm`).
      seed: int; fixes the initial params (`init_params`) and the batches (`batch`).
      params: start from these `Params` instead of `init_params(cell, task, seed)`.
      progress: show a tqdm progress bar with the loss.
      desc: label of the progress bar (default "<cell kind> <task name> T=<seq_len>").
    Returns:
      `TrainResult(params, history)`; `params.cell` holds the cell's params.
    """
    _check_cell_task(cell, task)
    steps = _check_positive_int("steps", steps)
    batch_size = _check_positive_int("batch_size", batch_size)
    tx = make_optimizer(optimizer, learning_rate, clip_norm)
    if params is None:
        params = init_params(cell, task, seed)
    elif not isinstance(params, Params):
        raise TypeError(f"params: expected rnnjax.train.Params(cell, readout), got {type(params).__name__}")
    _, k_data, _ = _keys(seed)
    opt_state = tx.init(params)

    def update(params, opt_state, step):
        xs, targets = task.sample(jax.random.fold_in(k_data, step), batch_size)
        loss, grads = jax.value_and_grad(loss_fn, argnums=2)(cell, task, params, xs, targets)
        grad_norm = optax.tree.norm(grads)  # before clipping: the spikes we want to see
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, grad_norm

    start = time.perf_counter()
    compiled = jax.jit(update).lower(params, opt_state, jnp.int32(0)).compile()
    compile_seconds = time.perf_counter() - start

    desc = desc or f"{cell.kind} {task.name} T={task.seq_len}"
    history: dict = dict(loss=[], grad_norm=[], steps=0, diverged=False, message=None)
    start = time.perf_counter()
    with tqdm(total=steps, desc=desc, unit="step", disable=not progress) as bar:
        for step in range(steps):
            new_params, new_opt_state, loss, grad_norm = compiled(params, opt_state, jnp.int32(step))
            loss, grad_norm = (float(v) for v in jax.device_get((loss, grad_norm)))
            history["loss"].append(loss)
            history["grad_norm"].append(grad_norm)
            if not (math.isfinite(loss) and math.isfinite(grad_norm)):
                history["diverged"] = True
                history["message"] = (
                    f"{desc}: stopped at step {step}: loss {loss}, gradient norm {grad_norm} "
                    f"(not finite); returning the params from before this step's update"
                )
                warnings.warn(history["message"], RuntimeWarning, stacklevel=2)
                break
            params, opt_state = new_params, new_opt_state
            bar.update(1)
            if (step + 1) % POSTFIX_EVERY == 0:
                bar.set_postfix(loss=f"{loss:.4g}", grad_norm=f"{grad_norm:.3g}", refresh=False)
    history["steps"] = len(history["loss"])
    history["compile_seconds"] = compile_seconds
    history["train_seconds"] = time.perf_counter() - start
    return TrainResult(params, history)
