"""`rnnjax.train.synthetic`: a short task learned by an LSTM, and the recorded gradient norms and clipped
updates replayed by hand (a Python loop over `cell.step`, optax replaced by explicit SGD arithmetic)."""

import math
import os
import subprocess
import sys
import textwrap
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import max_rel_err

import rnnjax
from rnnjax import tasks
from rnnjax.train import synthetic

# Same float64 computation arranged differently (scan vs Python loop, optax vs by hand): rounding only.
TOL_SAME = 1e-12

KEY = jax.random.key(0)


# --------------------------------------------------------------------------------------------
# Learnability: a short lag is learned by an LSTM in a few hundred steps


@pytest.mark.parametrize(
    "name, T, steps, learning_rate",
    [("temporal_order", 10, 150, 3e-3), ("adding", 10, 300, 1e-2)],
)
def test_lstm_learns_a_short_lag(name, T, steps, learning_rate):
    # Measured held-out loss / baseline: 0.004 (temporal order) and 0.011 (adding) at these settings;
    # success asks for < 0.1.
    task = tasks.make(name, T)
    cell = rnnjax.cells.lstm(32)
    params, history = synthetic.train(
        cell, task, steps=steps, learning_rate=learning_rate, clip_norm=1.0, seed=0, progress=False
    )
    assert not history["diverged"] and history["steps"] == steps
    assert task.success(synthetic.evaluate(cell, task, params, seed=0, batch_size=1024))


# --------------------------------------------------------------------------------------------
# The training loop, replayed by hand


def loss_by_hand(cell, params: Any, xs, targets):
    """Adding-problem loss with a Python loop over `cell.step` instead of `rnnjax.unroll` + `task.loss`."""
    carry = cell.initial_carry((xs.shape[0],), jnp.float64)
    for t in range(xs.shape[1]):
        carry, h = cell.step(params["rnn"]["layer_0"], carry, xs[:, t].astype(jnp.float64))
    prediction = h @ params["readout"].w[:, 0] + params["readout"].b[0]
    return jnp.mean((prediction - targets) ** 2)


@pytest.mark.parametrize("clip_norm", [None, 0.05])
def test_recorded_grad_norm_is_before_clipping_and_update_is_clipped(clip_norm):
    task = tasks.adding(6)
    cell = rnnjax.cells.gru(5, dtype=jnp.float64)
    lr, steps, seed, batch_size = 0.5, 3, 7, 8
    params, history = synthetic.train(
        cell,
        task,
        steps=steps,
        batch_size=batch_size,
        optimizer="sgd",
        learning_rate=lr,
        clip_norm=clip_norm,
        seed=seed,
        progress=False,
    )
    grad_by_hand = jax.jit(jax.grad(loss_by_hand, argnums=1), static_argnums=0)
    p = synthetic.init_params(cell, task, seed)
    for step in range(steps):
        xs, targets = synthetic.batch(task, seed, step, batch_size)
        grads = grad_by_hand(cell, p, xs, targets)
        leaves = jax.tree_util.tree_leaves(grads)
        norm = math.sqrt(sum(float(jnp.sum(g**2)) for g in leaves))
        assert abs(history["grad_norm"][step] - float(optax.tree.norm(grads))) <= TOL_SAME * norm
        assert abs(history["grad_norm"][step] - norm) <= TOL_SAME * norm
        scale = 1.0 if clip_norm is None else min(1.0, clip_norm / norm)
        if clip_norm is not None:
            assert norm > clip_norm, "the test needs clipping to be active"
        new_p = jax.tree.map(lambda w, g, s=scale: w - lr * s * g, p, grads)
        step_size = optax.tree.norm(jax.tree.map(jnp.subtract, new_p, p))
        assert abs(float(step_size) - lr * (norm if clip_norm is None else clip_norm)) <= TOL_SAME
        p = new_p
    assert max_rel_err(params, p) <= TOL_SAME
    assert isinstance(params["rnn"]["layer_0"], rnnjax.GRUParams) and params["readout"].w.shape == (5, 1)


def test_nan_stops_training_cleanly():
    # A linear Elman cell under SGD with an absurd learning rate overflows float32 within a few steps.
    task = tasks.adding(10)
    cell = rnnjax.cells.simple(8, "linear")
    with pytest.warns(RuntimeWarning, match="not finite"):
        params, history = synthetic.train(
            cell, task, steps=50, optimizer="sgd", learning_rate=1e8, seed=0, progress=False
        )
    stop = history["steps"] - 1
    assert history["diverged"] and 0 < stop < 49 and "step" in history["message"]
    assert len(history["loss"]) == len(history["grad_norm"]) == stop + 1
    assert all(math.isfinite(v) for v in history["loss"][:stop] + history["grad_norm"][:stop])
    assert not (math.isfinite(history["loss"][stop]) and math.isfinite(history["grad_norm"][stop]))
    assert all(bool(jnp.all(jnp.isfinite(w))) for w in jax.tree_util.tree_leaves(params))
    # The returned params are those before the non-finite step: `stop` steps of the same run.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again, h = synthetic.train(
            cell, task, steps=stop, optimizer="sgd", learning_rate=1e8, seed=0, progress=False
        )
    assert not h["diverged"] and h["loss"] == history["loss"][:stop]
    for a, b in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(again)):
        np.testing.assert_array_equal(a, b)


def test_init_params_follow_the_cell_and_task():
    task = tasks.copy_memory(5)
    for dtype in (jnp.float32, jnp.float64):
        params = synthetic.init_params(rnnjax.cells.lstm(6, dtype=dtype), task, 3)
        cell_params = params["rnn"]["layer_0"]
        assert isinstance(cell_params, rnnjax.LSTMParams) and cell_params.w_ih.shape == (10, 24)
        assert params["readout"].w.shape == (6, 9) and params["readout"].w.dtype == dtype
    assert synthetic.outputs(rnnjax.cells.lstm(6, dtype=dtype), params, task.sample(KEY, 2)[0]).shape == (
        2,
        25,
        9,
    )
    again = synthetic.init_params(rnnjax.cells.lstm(6, dtype=jnp.float64), task, 3)
    np.testing.assert_array_equal(params["rnn"]["layer_0"].w_hh, again["rnn"]["layer_0"].w_hh)


def test_bad_train_arguments_raise():
    cell, task = rnnjax.cells.simple(4), tasks.adding(4)
    with pytest.raises(TypeError, match="cell: expected an rnnjax.cells.Cell"):
        synthetic.train("lstm", task, steps=1)
    with pytest.raises(TypeError, match="task: expected an rnnjax.tasks.Task"):
        synthetic.train(cell, "adding", steps=1)
    with pytest.raises(ValueError, match="steps: expected a positive int, got 0"):
        synthetic.train(cell, task, steps=0)
    with pytest.raises(ValueError, match="optimizer: expected one of"):
        synthetic.train(cell, task, steps=1, optimizer="adagrad")
    with pytest.raises(ValueError, match="learning_rate: expected None"):
        synthetic.train(cell, task, steps=1, optimizer=optax.sgd(0.1), learning_rate=0.1)
    with pytest.raises(ValueError, match="learning_rate: expected a positive number, got -1"):
        synthetic.train(cell, task, steps=1, learning_rate=-1)
    with pytest.raises(ValueError, match="clip_norm: expected a positive number, got 0"):
        synthetic.train(cell, task, steps=1, clip_norm=0)
    with pytest.raises(ValueError, match=r"learning_rate: expected a positive number that float32 .* 1e\+39"):
        synthetic.train(cell, task, steps=1, learning_rate=1e39)  # inf in float32: every update inf/NaN
    with pytest.raises(TypeError, match=r"learning_rate: expected a positive number, got '3e-3' \(str\)"):
        synthetic.train(cell, task, steps=1, learning_rate="3e-3")
    with pytest.raises(TypeError, match=r"params: expected the model's params"):
        synthetic.train(cell, task, steps=1, params={"w": 1})


# --------------------------------------------------------------------------------------------
# Several seeds at once: each seed is the single-seed run


def _single_runs(cell, task, seeds, **kwargs):
    return [synthetic.train(cell, task, seed=s, progress=False, **kwargs) for s in seeds]


def test_train_seeds_equals_separate_single_seed_runs():
    # float64 so that the only difference, how the seeds are batched, is rounding at 1e-16.
    # The tanh cell runs its fused kernel (a custom_vjp), so this also checks that kernel under vmap/map.
    task, cell = tasks.adding(5), rnnjax.cells.simple(4, dtype=jnp.float64)
    seeds = (3, 0)
    kwargs = dict(steps=3, batch_size=4, learning_rate=0.05, clip_norm=0.5)
    singles = _single_runs(cell, task, seeds, **kwargs)
    want = [synthetic.evaluate(cell, task, p, seed=s, batch_size=8) for (p, _), s in zip(singles, seeds)]
    for seed_axis in ("vmap", "map"):
        params, histories = synthetic.train_seeds(
            cell, task, seeds=seeds, seed_axis=seed_axis, progress=False, **kwargs
        )
        for i, (p, h) in enumerate(singles):
            # 1. the final params, after 3 Adam steps with clipping
            assert max_rel_err(synthetic.seed_params(params, i), p) <= TOL_SAME
            # 2. the loss and gradient norm at every step
            assert histories[i]["steps"] == h["steps"] == 3 and not histories[i]["diverged"]
            np.testing.assert_allclose(histories[i]["loss"], h["loss"], rtol=TOL_SAME, atol=0)
            np.testing.assert_allclose(histories[i]["grad_norm"], h["grad_norm"], rtol=TOL_SAME, atol=0)
        got = synthetic.evaluate_seeds(cell, task, params, seeds=seeds, batch_size=8)
        np.testing.assert_allclose(got, want, rtol=TOL_SAME, atol=0)
    # The seeds really differ (else the comparison could not catch a mix-up of seeds).
    assert abs(histories[0]["loss"][0] - histories[1]["loss"][0]) > 1e-3


def test_a_diverging_seed_stops_alone():
    # Seed 1 starts from params scaled up 1e6: its forward pass overflows float32 at once, while seed 0
    # trains on. Each must equal its single-seed run from the same params (which stops with a warning).
    task, cell = tasks.adding(6), rnnjax.cells.simple(4, "linear")
    seeds, kwargs = (0, 1), dict(steps=4, optimizer="sgd", learning_rate=0.01, batch_size=4)
    starts = [synthetic.init_params(cell, task, 0), synthetic.init_params(cell, task, 1)]
    starts[1] = jax.tree.map(lambda w: w * 1e6, starts[1])
    with pytest.warns(RuntimeWarning, match="seed 1: stopped at step"):
        params, histories = synthetic.train_seeds(
            cell, task, seeds=seeds, params=synthetic._stack(starts), progress=False, **kwargs
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        singles = [
            synthetic.train(cell, task, seed=s, params=p, progress=False, **kwargs)
            for s, p in zip(seeds, starts)
        ]
    assert [h["diverged"] for h in histories] == [h["diverged"] for _, h in singles] == [False, True]
    for i, (p, h) in enumerate(singles):
        assert histories[i]["steps"] == h["steps"] and len(histories[i]["loss"]) == h["steps"]
        np.testing.assert_allclose(histories[i]["loss"], h["loss"], rtol=1e-6)
        assert max_rel_err(synthetic.seed_params(params, i), p) <= 1e-6
    assert histories[0]["steps"] == 4 > histories[1]["steps"]


def test_train_seeds_bad_arguments_raise():
    cell, task = rnnjax.cells.simple(3), tasks.adding(4)
    for seeds in [(), (1, 1), (-1,), (0.5,), "01", 3, (True,)]:
        with pytest.raises(ValueError, match=r"seeds: expected a sequence of distinct ints >= 0"):
            synthetic.train_seeds(cell, task, seeds=seeds, steps=1)
    with pytest.raises(ValueError, match=r"seed_axis: expected None or one of \('vmap', 'map'\), got 'pmap'"):
        synthetic.train_seeds(cell, task, seeds=(0,), steps=1, seed_axis="pmap")
    one = synthetic.init_params_seeds(cell, task, (0,))
    with pytest.raises(ValueError, match=r"params: expected every leaf with a leading seed axis of 2"):
        synthetic.train_seeds(cell, task, seeds=(0, 1), steps=1, params=one)
    with pytest.raises(ValueError, match="steps: expected a positive int, got 0"):
        synthetic.train_seeds(cell, task, seeds=(0,), steps=0)


def test_train_seeds_splits_the_seeds_over_several_devices():
    """Two host devices: the seed axis is split across them (vmap), and each seed still equals its
    single-seed run."""
    code = textwrap.dedent(
        """
        import jax, jax.numpy as jnp, numpy as np
        jax.config.update("jax_enable_x64", True)
        import rnnjax
        from rnnjax import tasks
        from rnnjax.train import synthetic
        assert jax.device_count() == 2 and synthetic.default_seed_axis(2) == "vmap"
        task, cell = tasks.adding(5), rnnjax.cells.simple(3, dtype=jnp.float64)
        init = synthetic.init_params_seeds(cell, task, (0, 1))
        state = synthetic._place(synthetic.SeedsState(init, init, jnp.ones(2, bool)))
        assert len(state.alive.sharding.device_set) == 2 and state.alive.sharding.shard_shape((2,)) == (1,)
        kw = dict(steps=3, batch_size=4, learning_rate=0.05, progress=False)
        params, _ = synthetic.train_seeds(cell, task, seeds=(0, 1), **kw)
        err = 0.0
        for i in range(2):
            p, _ = synthetic.train(cell, task, seed=i, **kw)
            for a, b in zip(jax.tree.leaves(synthetic.seed_params(params, i)), jax.tree.leaves(p)):
                err = max(err, float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b))))
        print(err)
        """
    )
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert float(done.stdout.strip().splitlines()[-1]) <= TOL_SAME
