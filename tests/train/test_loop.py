"""`rnnjax.train.loop.fit`: the loop's state after N steps equals N explicit calls of the step (a plain
Python loop, the second way), resuming from a checkpoint reproduces an uninterrupted run bit for bit,
and divergence, time limits, `stop_after` and bad arguments end the run as documented."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnjax.train.loop import fit

W_TRUE = jnp.asarray([1.5, -2.0, 0.5])


def batches(step):
    """A regression batch that depends only on the step number."""
    x = jax.random.normal(jax.random.fold_in(jax.random.key(7), step), (16, 3))
    return x, x @ W_TRUE


def make_step(lr=0.1):
    def train_step(w, batch, key):
        x, y = batch
        noise = 1e-3 * jax.random.normal(key, w.shape)  # uses the key, so key handling is tested too

        def loss(w):
            return jnp.mean((x @ w - y) ** 2)

        value, grad = jax.value_and_grad(loss)(w)
        return w - lr * grad + noise, {"loss": value, "grad_norm": jnp.linalg.norm(grad)}

    return train_step


def by_hand(steps, lr=0.1):
    """The same computation as `fit` with a plain Python loop."""
    step_fn, w, losses, key = jax.jit(make_step(lr)), jnp.zeros(3), [], jax.random.key(0)
    for step in range(steps):
        w, m = step_fn(w, batches(step), jax.random.fold_in(key, step))
        losses.append(float(m["loss"]))
    return w, losses


def test_fit_equals_the_loop_written_out():
    result = fit(make_step(), jnp.zeros(3), batches, steps=25, progress=False)
    w, losses = by_hand(25)
    np.testing.assert_array_equal(result.state, w)
    assert result.history["loss"] == losses and result.history["steps"] == 25
    assert result.status == "done" and result.step == 25 and not result.history["diverged"]


def test_resume_reproduces_an_uninterrupted_run(tmp_path):
    def evaluate(w):
        return {"loss": jnp.sum((w - W_TRUE) ** 2)}

    kwargs = dict(steps=20, evaluate=evaluate, save_every=4, log_every=2, progress=False)
    full = fit(make_step(), jnp.zeros(3), batches, run=tmp_path / "full", **kwargs)
    part = fit(make_step(), jnp.zeros(3), batches, run=tmp_path / "cut", stop_after=9, **kwargs)
    assert part.status == "stopped" and part.step == 9 and "stop_after" in part.message
    again = fit(make_step(), jnp.zeros(3), batches, run=tmp_path / "cut", resume=True, **kwargs)
    assert again.status == "done" and again.step == 20
    np.testing.assert_array_equal(again.state, full.state)
    assert part.history["loss"] + again.history["loss"] == full.history["loss"]

    def records(run):
        lines = (tmp_path / run / "metrics.jsonl").read_text().splitlines()
        return {(r["step"], r["split"]): r for r in map(json.loads, lines) if r["split"] != "compile"}

    full_records, cut_records = records("full"), records("cut")
    # Every record of the uninterrupted run is in the resumed one, equal, except the training mean of the
    # first window after the resume, which covers only the steps run after it (step 10 alone).
    assert set(full_records) <= set(cut_records)
    for key, record in full_records.items():
        if key != (10, "train"):
            assert cut_records[key] == record, key
    assert full.best_step == 20  # the evaluation loss falls all the way


def test_resume_after_a_crash_in_the_middle_of_a_run(tmp_path):
    """A failure right after step 6 was checkpointed: the resumed run equals the uninterrupted one."""

    def crash(step, state):
        if step == 6:
            raise KeyboardInterrupt("simulated crash")

    with pytest.raises(KeyboardInterrupt):
        fit(make_step(), jnp.zeros(3), batches, steps=12, run=tmp_path, save_every=3, progress=False,
            on_step=crash)  # fmt: skip
    resumed = fit(make_step(), jnp.zeros(3), batches, steps=12, run=tmp_path, save_every=3, progress=False,
                  resume=True)  # fmt: skip
    np.testing.assert_array_equal(resumed.state, by_hand(12)[0])


def test_divergence_returns_the_state_before_the_bad_step(tmp_path):
    with pytest.warns(RuntimeWarning, match="not finite"):
        result = fit(make_step(lr=5.0), jnp.zeros(3), batches, steps=200, run=tmp_path, save_every=1,
                     progress=False)  # fmt: skip
    n = result.history["steps"]
    assert result.status == "diverged" and result.step == n - 1 < 199
    assert not math.isfinite(result.history["loss"][-1]) or not math.isfinite(result.history["grad_norm"][-1])
    w, _ = by_hand(n - 1, lr=5.0)
    np.testing.assert_array_equal(result.state, w)
    assert f"newest finite checkpoint is step {n - 1}" in result.message


def test_time_limit_stops_and_checkpoints(tmp_path):
    result = fit(make_step(), jnp.zeros(3), batches, steps=10_000, run=tmp_path, time_limit=1e-9,
                 progress=False)  # fmt: skip
    assert result.status == "stopped" and result.step == 1 and "time limit" in result.message
    assert (tmp_path / "checkpoints" / "1").is_dir()


def test_bad_arguments_are_refused(tmp_path):
    step, w = make_step(), jnp.zeros(3)
    with pytest.raises(ValueError, match="steps: expected an int >= 1, got 0"):
        fit(step, w, batches, steps=0)
    with pytest.raises(ValueError, match="time_limit: expected None or a positive number"):
        fit(step, w, batches, steps=1, time_limit=float("nan"))
    with pytest.raises(ValueError, match="time_limit: expected None or a positive number"):
        fit(step, w, batches, steps=1, time_limit=True)  # a bool is not a number of seconds
    with pytest.raises(ValueError, match="run: resume and save_every need a run folder"):
        fit(step, w, batches, steps=1, resume=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="run: expected a folder"):
        fit(step, w, batches, steps=1, run=tmp_path / "file")
    with pytest.raises(ValueError, match="resume: .* holds no checkpoint"):
        fit(step, w, batches, steps=1, run=tmp_path / "empty", resume=True)
    fit(step, w, batches, steps=2, run=tmp_path / "used", progress=False)
    with pytest.raises(ValueError, match="already holds checkpoints"):
        fit(step, w, batches, steps=2, run=tmp_path / "used", progress=False)
