"""Synthetic long-range tasks for recurrent networks: the adding problem, copying memory and temporal order.

Each task is a `Task` value: a deterministic batch generator `sample(key, batch_size) -> (xs, targets)`
plus the loss that scores a network's per-step outputs against the targets, the loss of the best
memoryless predictor (`baseline`) and a success criterion. The time lag `seq_len` (T) sets how far
back the network has to carry information.

    task = tasks.make("adding", 100)
    xs, targets = task.sample(jax.random.key(0), 32)       # xs: <float32>[32, 100, 2]
    outputs = ...                                          # <float>[32, 100, task.output_size]
    loss = task.loss(outputs, targets)                     # <float>[]
    task.success(float(loss))                              # loss < task.success_ratio * task.baseline

Every task reads the network's outputs at *every* step, `<float>[batch, length, output_size]`; its
`loss` picks the steps that are scored (the last one for adding and temporal order, all for copying).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from rnnjax import _checks, readout

__all__ = [
    "SUCCESS_RATIO",
    "TARGET_MODES",
    "TASKS",
    "Task",
    "adding",
    "copy_memory",
    "make",
    "temporal_order",
    "temporal_order_windows",
]

# How the targets relate to the time steps.
TARGET_MODES = ("regression_last", "many_to_many", "many_to_one")

# A run counts as a success when its loss is below this fraction of the task's baseline. One tenth of
# the memoryless loss means the network has learned most of what only memory can give; for the adding
# problem it is the threshold "MSE < 0.0167" of Le et al. (2015, IRNN) and Arjovsky et al. (2016).
SUCCESS_RATIO = 0.1


class Task(NamedTuple):
    """A synthetic sequence task.

    Attributes:
      name: "adding", "copy" or "temporal_order".
      seq_len: T, the time lag the task was built with.
      length: number of time steps of `xs` (T, or T + 20 for copying memory).
      input_size: features per step of `xs`.
      output_size: outputs per step the network must produce (regression outputs or class logits).
      mode: "regression_last" (a real target read at the last step), "many_to_many" (a class per step)
        or "many_to_one" (a class read at the last step).
      sample: `(key, batch_size) -> (xs, targets)` with xs <float32>[batch, length, input_size]; the
        targets' shape and dtype depend on the task (see its constructor). Deterministic given the key,
        and traceable under `jit` (batch_size must be a Python int).
      loss: `(outputs, targets) -> <float>[]` with outputs <float>[batch, length, output_size].
      baseline: the loss of the best predictor that ignores what must be remembered (see the
        constructors); a network that has not learned the task sits at or above it.
      success_ratio: `success(loss)` is `loss < success_ratio * baseline`.
    """

    name: str
    seq_len: int
    length: int
    input_size: int
    output_size: int
    mode: str
    sample: Callable[[jax.Array, int], tuple[jax.Array, jax.Array]]
    loss: Callable[[jax.Array, jax.Array], jax.Array]
    baseline: float
    success_ratio: float = SUCCESS_RATIO

    def success(self, loss) -> bool:
        """Whether `loss` (a finite number) is below `success_ratio * baseline`; NaN and inf fail."""
        scalar_array = (
            hasattr(loss, "dtype") and jnp.shape(loss) == () and jnp.issubdtype(loss.dtype, jnp.number)
        )
        if isinstance(loss, bool) or not (isinstance(loss, numbers.Real) or scalar_array):
            raise TypeError(f"loss: expected a scalar number (the task's loss), got {loss!r}")
        loss = float(loss)
        return math.isfinite(loss) and loss < self.success_ratio * self.baseline


# --------------------------------------------------------------------------------------------
# Validation


def _check_seq_len(name: str, seq_len, minimum: int) -> int:
    if isinstance(seq_len, bool) or not isinstance(seq_len, int):
        raise TypeError(f"seq_len: {name} expected an int >= {minimum}, got {seq_len!r}")
    if seq_len < minimum:
        raise ValueError(f"seq_len: {name} expected an int >= {minimum}, got {seq_len}")
    return seq_len


def _check_sample_args(key, batch_size) -> int:
    """`sample`'s arguments: one PRNG key and a positive Python int batch size."""
    _checks.check_key("key", key)
    return _check_batch_size(batch_size)


def _check_targets(task_name: str, targets, batch: int, shape: tuple[int, ...], num_classes: int | None):
    """Targets for `batch` examples: floats of shape [batch, *shape], or class ids in [0, num_classes)."""
    if num_classes is None:
        targets = _checks.check_float_array("targets", targets)
    else:
        targets = _checks.check_indices("targets", targets, num_classes, "class ids")
    if targets.shape != (batch, *shape):
        raise ValueError(
            f"targets: {task_name} expected shape {(batch, *shape)} (one target per example of outputs), "
            f"got {targets.shape}"
        )
    return targets


def _check_batch_size(batch_size) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: expected a positive Python int, got {batch_size!r}")
    return batch_size


def _check_outputs(task_name: str, outputs, length: int, output_size: int) -> jax.Array:
    outputs = _checks.check_float_array("outputs", outputs)
    if outputs.ndim != 3 or outputs.shape[1:] != (length, output_size):
        raise ValueError(
            f"outputs: {task_name} expected shape [batch, {length}, {output_size}] "
            f"(one output vector per step), got {outputs.shape}"
        )
    return outputs


# --------------------------------------------------------------------------------------------
# Adding problem


def adding(seq_len: int) -> Task:
    """The adding problem (Hochreiter & Schmidhuber, 1997, experiment 4), in the form of Le et al. (2015)
    and Arjovsky et al. (2016).

    Each step carries two inputs: a value drawn from U[0, 1] and a marker that is 1 at exactly two
    steps, one drawn uniformly from the first half [0, T//2) and one from the second half [T//2, T),
    and 0 elsewhere. The target is the sum of the two marked values, read from output 0 at the last
    step; the loss is the mean squared error.

    Baseline: predicting the constant E[a + b] = 1 gives E[(a + b - 1)^2] = Var(a) + Var(b) = 2/12 = 1/6
    ≈ 0.1667, the lowest MSE of any predictor that ignores the markers' values. Success: MSE < 1/60.

    Args:
      seq_len: T >= 2, the number of steps.
    Returns:
      A `Task` whose `sample(key, batch)` gives xs <float32>[batch, T, 2] (channel 0 the values, channel 1
      the markers) and targets <float32>[batch]; `loss(outputs, targets)` takes outputs
      <float>[batch, T, 1].
    """
    T = _check_seq_len("adding", seq_len, 2)
    half = T // 2

    def sample(key, batch_size):
        batch_size = _check_sample_args(key, batch_size)
        k_values, k_first, k_second = jax.random.split(key, 3)
        values = jax.random.uniform(k_values, (batch_size, T), jnp.float32)
        first = jax.random.randint(k_first, (batch_size,), 0, half, dtype=jnp.int32)
        second = jax.random.randint(k_second, (batch_size,), half, T, dtype=jnp.int32)
        steps = jnp.arange(T, dtype=jnp.int32)
        markers = (steps == first[:, None]) | (steps == second[:, None])  # (B, T)
        xs = jnp.stack([values, markers.astype(jnp.float32)], axis=-1)  # (B, T, 2)
        targets = jnp.sum(jnp.where(markers, values, 0), axis=1)  # (B,)
        return xs, targets

    def loss(outputs, targets):
        outputs = _check_outputs("adding", outputs, T, 1)
        targets = _check_targets("adding", targets, outputs.shape[0], (), None)
        prediction = outputs[:, -1, 0]  # (B,)
        return jnp.mean((prediction - targets) ** 2)

    return Task("adding", T, T, 2, 1, "regression_last", sample, loss, 1.0 / 6.0)


# --------------------------------------------------------------------------------------------
# Copying memory

COPY_SYMBOLS = 8  # alphabet to copy: tokens 1..8
COPY_LENGTH = 10  # symbols to copy
COPY_BLANK = 0
COPY_DELIMITER = COPY_SYMBOLS + 1  # token 9


def copy_memory(seq_len: int) -> Task:
    """The copying memory problem (Hochreiter & Schmidhuber, 1997; in the form of Arjovsky, Shah &
    Bengio, 2016, "Unitary evolution recurrent neural networks").

    Tokens: 0 blank, 1..8 the symbols, 9 the delimiter. The input is 10 symbols drawn uniformly from
    1..8, then T - 1 blanks, the delimiter, and 10 more blanks (T + 20 steps in all). The target is
    blank for the first T + 10 steps and the 10 symbols, in order, at the last 10 steps. The loss is
    softmax cross-entropy over 9 classes (blank and the 8 symbols) averaged over all T + 20 steps.

    Baseline: predicting blank for T + 10 steps and a uniform guess over the 8 symbols at the last 10
    gives 10 ln 8 / (T + 20) (Arjovsky et al., 2016), e.g. 0.693 for T = 10 and 0.173 for T = 100.
    Success: cross-entropy < one tenth of that.

    Args:
      seq_len: T >= 1, the number of steps between the last symbol and the delimiter, plus one.
    Returns:
      A `Task` whose `sample(key, batch)` gives xs <float32>[batch, T + 20, 10] (one-hot tokens) and
      targets <int32>[batch, T + 20] in [0, 9); `loss(outputs, targets)` takes logits
      <float>[batch, T + 20, 9].
    """
    T = _check_seq_len("copy", seq_len, 1)
    length = T + 2 * COPY_LENGTH
    num_tokens = COPY_SYMBOLS + 2
    num_classes = COPY_SYMBOLS + 1

    def sample(key, batch_size):
        batch_size = _check_sample_args(key, batch_size)
        symbols = jax.random.randint(
            key, (batch_size, COPY_LENGTH), 1, COPY_SYMBOLS + 1, dtype=jnp.int32
        )  # (B, 10)
        blanks = jnp.full((batch_size, T - 1), COPY_BLANK, jnp.int32)
        delimiter = jnp.full((batch_size, 1), COPY_DELIMITER, jnp.int32)
        tail = jnp.full((batch_size, COPY_LENGTH), COPY_BLANK, jnp.int32)
        tokens = jnp.concatenate([symbols, blanks, delimiter, tail], axis=1)  # (B, T + 20)
        targets = jnp.concatenate(
            [jnp.full((batch_size, T + COPY_LENGTH), COPY_BLANK, jnp.int32), symbols], axis=1
        )  # (B, T + 20)
        return jax.nn.one_hot(tokens, num_tokens, dtype=jnp.float32), targets

    def loss(outputs, targets):
        outputs = _check_outputs("copy", outputs, length, num_classes)
        targets = _check_targets("copy", targets, outputs.shape[0], (length,), num_classes)
        return jnp.mean(readout.cross_entropy(outputs, targets))

    baseline = COPY_LENGTH * math.log(COPY_SYMBOLS) / length
    return Task("copy", T, length, num_tokens, num_classes, "many_to_many", sample, loss, baseline)


# --------------------------------------------------------------------------------------------
# Temporal order

# Tokens: 0..3 distractors a, b, c, d; 4 X; 5 Y; 6 start marker B; 7 end marker E.
ORDER_DISTRACTORS = 4
ORDER_X = 4
ORDER_START = 6
ORDER_END = 7


def temporal_order_windows(seq_len: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """The half-open ranges of steps that hold the first and second relevant symbol for length T.

    [T/10, 2T/10) and [5T/10, 6T/10) (rounded down, each at least one step wide), which for T = 100 are
    steps 10-19 and 50-59 as in Hochreiter & Schmidhuber (1997), experiment 6a.
    """
    T = _check_seq_len("temporal_order", seq_len, 10)
    lo1 = T // 10
    lo2 = 5 * T // 10
    return (lo1, max(lo1 + 1, 2 * T // 10)), (lo2, max(lo2 + 1, 6 * T // 10))


def temporal_order(seq_len: int) -> Task:
    """The temporal order problem (Hochreiter & Schmidhuber, 1997, experiment 6a; as used by Martens &
    Sutskever, 2011, and Pascanu, Mikolov & Bengio, 2013).

    Tokens: 0..3 distractors (a, b, c, d), 4 X, 5 Y, 6 start marker, 7 end marker. A sequence is the
    start marker, T - 2 steps of uniformly drawn distractors, and the end marker, except that two steps
    hold X or Y (each uniformly): one in [T/10, 2T/10), one in [5T/10, 6T/10) (see
    `temporal_order_windows`). The class is the order of the two relevant symbols, read at the last step:
    0 XX, 1 XY, 2 YX, 3 YY (= 2 [first is Y] + [second is Y]). The loss is softmax cross-entropy.

    Baseline: the four classes are equally likely and independent of the distractors, so the best
    memoryless prediction is uniform, with cross-entropy ln 4 ≈ 1.386. Success: cross-entropy
    < 0.1 ln 4 ≈ 0.139.

    Args:
      seq_len: T >= 10, the number of steps.
    Returns:
      A `Task` whose `sample(key, batch)` gives xs <float32>[batch, T, 8] (one-hot tokens) and targets
      <int32>[batch] in [0, 4); `loss(outputs, targets)` takes logits <float>[batch, T, 4].
    """
    T = _check_seq_len("temporal_order", seq_len, 10)
    (lo1, hi1), (lo2, hi2) = temporal_order_windows(T)
    num_tokens = ORDER_END + 1

    def sample(key, batch_size):
        batch_size = _check_sample_args(key, batch_size)
        k_noise, k_t1, k_t2, k_s1, k_s2 = jax.random.split(key, 5)
        tokens = jax.random.randint(k_noise, (batch_size, T), 0, ORDER_DISTRACTORS, dtype=jnp.int32)
        tokens = tokens.at[:, 0].set(ORDER_START).at[:, -1].set(ORDER_END)
        t1 = jax.random.randint(k_t1, (batch_size,), lo1, hi1, dtype=jnp.int32)
        t2 = jax.random.randint(k_t2, (batch_size,), lo2, hi2, dtype=jnp.int32)
        s1 = jax.random.randint(k_s1, (batch_size,), 0, 2, dtype=jnp.int32)  # 0 X, 1 Y
        s2 = jax.random.randint(k_s2, (batch_size,), 0, 2, dtype=jnp.int32)
        rows = jnp.arange(batch_size)
        tokens = tokens.at[rows, t1].set(ORDER_X + s1).at[rows, t2].set(ORDER_X + s2)
        return jax.nn.one_hot(tokens, num_tokens, dtype=jnp.float32), 2 * s1 + s2

    def loss(outputs, targets):
        outputs = _check_outputs("temporal_order", outputs, T, 4)
        targets = _check_targets("temporal_order", targets, outputs.shape[0], (), 4)
        return jnp.mean(readout.cross_entropy(outputs[:, -1], targets))

    return Task("temporal_order", T, T, num_tokens, 4, "many_to_one", sample, loss, math.log(4))


# --------------------------------------------------------------------------------------------

TASKS: dict[str, Callable[[int], Task]] = {
    "adding": adding,
    "copy": copy_memory,
    "temporal_order": temporal_order,
}


def make(name: str, seq_len: int) -> Task:
    """Build a task by name.

    Args:
      name: "adding", "copy" or "temporal_order".
      seq_len: T; at least 2 for adding, 1 for copy, 10 for temporal_order.
    Returns:
      The `Task`.
    """
    if not isinstance(name, str) or name not in TASKS:
        raise ValueError(f"name: expected one of {sorted(TASKS)}, got {name!r}")
    return TASKS[name](seq_len)
