"""`rnnjax.tasks`: generators checked against their definitions decoded independently with NumPy, and
baselines computed a second way (Monte Carlo or an explicit predictor)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnjax import tasks

# Same float64 computation arranged differently (scan vs Python loop, optax vs by hand): rounding only.
TOL_SAME = 1e-12
# float32 sum of two values in [0, 1) vs the float64 sum of the same values: one rounding in [0, 2), at
# most half an ulp (2^-24); allow one ulp.
TOL_F32_SUM = 2.0**-23
# Monte-Carlo estimates: allowed distance from the exact value, in standard errors.
MC_SIGMAS = 5.0

KEY = jax.random.key(0)
BATCH = 256


def tokens_of(xs) -> np.ndarray:
    """Decode one-hot inputs <[B, L, K]> to tokens <int>[B, L], checking they are exactly one-hot."""
    xs = np.asarray(xs)
    assert set(np.unique(xs).tolist()) <= {0.0, 1.0}
    assert np.all(xs.sum(-1) == 1)
    return xs.argmax(-1)


# --------------------------------------------------------------------------------------------
# Shapes, dtypes, determinism


@pytest.mark.parametrize(
    "name, T, length, input_size, output_size, target_shape, target_dtype",
    [
        ("adding", 10, 10, 2, 1, (BATCH,), np.float32),
        ("adding", 7, 7, 2, 1, (BATCH,), np.float32),
        ("copy", 5, 25, 10, 9, (BATCH, 25), np.int32),
        ("copy", 1, 21, 10, 9, (BATCH, 21), np.int32),
        ("temporal_order", 10, 10, 8, 4, (BATCH,), np.int32),
        ("temporal_order", 37, 37, 8, 4, (BATCH,), np.int32),
    ],
)
def test_shapes_and_dtypes(name, T, length, input_size, output_size, target_shape, target_dtype):
    # conftest enables float64: the generators must still give float32 inputs and int32/float32 targets.
    task = tasks.make(name, T)
    assert (task.name, task.seq_len, task.length) == (name, T, length)
    assert (task.input_size, task.output_size) == (input_size, output_size)
    xs, targets = task.sample(KEY, BATCH)
    assert xs.shape == (BATCH, length, input_size) and xs.dtype == jnp.float32
    assert targets.shape == target_shape and targets.dtype == target_dtype


@pytest.mark.parametrize("name, T", [("adding", 12), ("copy", 6), ("temporal_order", 20)])
def test_deterministic_given_key(name, T):
    # (jit vs eager is covered by the replay test below: `train` samples under jit, the replay eagerly.)
    task = tasks.make(name, T)
    xs1, t1 = task.sample(KEY, 32)
    xs2, t2 = task.sample(KEY, 32)
    for a, b in ((xs1, xs2), (t1, t2)):
        np.testing.assert_array_equal(a, b)
    xs4, _ = task.sample(jax.random.key(1), 32)
    assert not np.array_equal(xs1, xs4)


# --------------------------------------------------------------------------------------------
# Structure, decoded with NumPy


@pytest.mark.parametrize("T", [2, 3, 31])
def test_adding_structure(T):
    xs, targets = tasks.adding(T).sample(KEY, 2048)
    values, markers = np.asarray(xs[..., 0], np.float64), np.asarray(xs[..., 1])
    assert np.all((values >= 0) & (values < 1))
    assert set(np.unique(markers).tolist()) <= {0.0, 1.0}
    half = T // 2
    assert np.all(markers[:, :half].sum(1) == 1), "exactly one marker in the first half"
    assert np.all(markers[:, half:].sum(1) == 1), "exactly one marker in the second half"
    expected = np.array([sum(v for v, m in zip(vs, ms) if m) for vs, ms in zip(values, markers)])
    np.testing.assert_allclose(np.asarray(targets, np.float64), expected, rtol=0, atol=TOL_F32_SUM)
    # Every position of each half is used (2048 draws over at most 16 positions).
    positions = set(np.argwhere(markers)[:, 1].tolist())
    assert positions == set(range(T))


@pytest.mark.parametrize("T", [1, 40])
def test_copy_structure(T):
    xs, targets = tasks.copy_memory(T).sample(KEY, 512)
    tokens, targets = tokens_of(xs), np.asarray(targets)
    L = T + 20
    assert tokens.shape == targets.shape == (512, L)
    symbols = tokens[:, :10]
    assert np.all((symbols >= 1) & (symbols <= 8))
    assert set(np.unique(symbols).tolist()) == set(range(1, 9))
    assert np.all(tokens[:, 10 : 10 + T - 1] == 0), "T - 1 blanks"
    assert np.all(tokens[:, 10 + T - 1] == 9), "then the delimiter"
    assert np.all(tokens[:, L - 10 :] == 0), "then 10 blanks"
    assert np.all(targets[:, : L - 10] == 0), "blank targets until the last 10 steps"
    np.testing.assert_array_equal(targets[:, L - 10 :], symbols)


@pytest.mark.parametrize("T", [10, 19, 100])
def test_temporal_order_structure(T):
    xs, labels = tasks.temporal_order(T).sample(KEY, 2048)
    tokens, labels = tokens_of(xs), np.asarray(labels)
    (lo1, hi1), (lo2, hi2) = tasks.temporal_order_windows(T)
    if T == 100:  # Hochreiter & Schmidhuber (1997), experiment 6a: steps 10-19 and 50-59
        assert ((lo1, hi1), (lo2, hi2)) == ((10, 20), (50, 60))
    for row, label in zip(tokens, labels):
        assert row[0] == 6 and row[-1] == 7, "start and end markers"
        relevant = [t for t in range(T) if row[t] in (4, 5)]
        assert len(relevant) == 2
        t1, t2 = relevant
        assert lo1 <= t1 < hi1 and lo2 <= t2 < hi2
        assert np.all(np.isin(np.delete(row, [0, t1, t2, T - 1]), [0, 1, 2, 3])), "distractors a..d"
        first_is_y, second_is_y = row[t1] == 5, row[t2] == 5
        assert label == {(0, 0): 0, (0, 1): 1, (1, 0): 2, (1, 1): 3}[(first_is_y, second_is_y)]


# --------------------------------------------------------------------------------------------
# Baselines, computed a second way


def test_adding_baseline_is_the_monte_carlo_mse_of_predicting_one():
    # (a + b - 1)^2 for a, b ~ U[0, 1]: mean 1/6 and variance E[u^4] - 1/36 = 1/15 - 1/36 = 7/180
    # (u = a + b - 1 is triangular on [-1, 1]).
    task = tasks.adding(10)
    n = 2**18
    _, targets = task.sample(KEY, n)
    ones = jnp.ones((n, task.length, 1), jnp.float64)
    mse = float(task.loss(ones, targets))
    assert task.baseline == 1 / 6
    assert abs(mse - task.baseline) < MC_SIGMAS * math.sqrt(7 / 180 / n)
    # And it is the best constant: MSE(c) = 1/6 + (c - 1)^2 on the same sample, minimised near c = 1.
    for c in (0.9, 1.1):
        assert float(task.loss(c * ones, targets)) > mse


@pytest.mark.parametrize("T", [1, 10, 100])
def test_copy_baseline_equals_loss_of_blanks_then_uniform(T):
    task = tasks.copy_memory(T)
    _, targets = task.sample(KEY, 16)
    L = T + 20
    # Logits <[16, L, 9]>: certain blank for T + 10 steps, then uniform over the 8 symbols.
    logits = np.zeros((16, L, 9))
    logits[:, : L - 10, 1:] = -np.inf
    logits[:, L - 10 :, 0] = -np.inf
    loss = float(task.loss(jnp.asarray(logits), targets))
    assert abs(loss - 10 * math.log(8) / (T + 20)) <= TOL_SAME
    assert abs(task.baseline - 10 * math.log(8) / (T + 20)) <= TOL_SAME


def test_temporal_order_baseline_is_uniform_prediction_and_classes_are_balanced():
    task = tasks.temporal_order(10)
    n = 2**16
    _, labels = task.sample(KEY, n)
    assert abs(float(task.loss(jnp.zeros((n, 10, 4), jnp.float64), labels)) - math.log(4)) <= TOL_SAME
    # The best memoryless prediction is the class frequencies; they are 1/4 each (binomial standard error).
    freq = np.bincount(np.asarray(labels), minlength=4) / n
    assert np.all(np.abs(freq - 0.25) < MC_SIGMAS * math.sqrt(0.25 * 0.75 / n))
    assert task.baseline == math.log(4)


def test_success_is_below_a_tenth_of_the_baseline():
    task = tasks.adding(10)
    assert task.success_ratio == 0.1
    assert task.success(0.0999 * task.baseline)
    assert not task.success(0.1 * task.baseline)
    assert not task.success(float("nan")) and not task.success(float("inf"))


# --------------------------------------------------------------------------------------------
# Bad input


def test_bad_task_arguments_raise():
    with pytest.raises(ValueError, match="name: expected one of"):
        tasks.make("adder", 10)
    with pytest.raises(ValueError, match=r"seq_len: temporal_order expected an int >= 10, got 9"):
        tasks.make("temporal_order", 9)
    with pytest.raises(ValueError, match=r"seq_len: adding expected an int >= 2, got 1"):
        tasks.adding(1)
    with pytest.raises(ValueError, match=r"seq_len: copy expected an int >= 1, got 0"):
        tasks.copy_memory(0)
    with pytest.raises(TypeError, match="seq_len"):
        tasks.make("copy", 10.0)
    with pytest.raises(ValueError, match="batch_size"):
        tasks.adding(5).sample(KEY, 0)
    with pytest.raises(ValueError, match=r"outputs: adding expected shape \[batch, 5, 1\]"):
        tasks.adding(5).loss(jnp.zeros((3, 5)), jnp.zeros(3))
    with pytest.raises(ValueError, match=r"outputs: copy expected shape \[batch, 21, 9\]"):
        tasks.copy_memory(1).loss(jnp.zeros((3, 21, 10)), jnp.zeros((3, 21), jnp.int32))
