"""The commands `long_range` and `gradient_norms_training`: a quick run writes its outputs with success as
k/N seeds, bad input is one line `error: ...`, the per-task grid, and the trained-model gradient profile
(per seed) equals the cell-level computation."""

import json
import re

import jax
import numpy as np
import pytest

from experiments import gradient_norms_training, long_range
from rnnjax import cells, diagnostics, readout, tasks
from rnnjax.command import cli as _cli
from rnnjax.train import synthetic

# The same float32 gradients computed through the model or through the cell: rounding only, in log10.
TOL_LOG10 = 1e-5

LR, GNT = long_range, gradient_norms_training


def test_long_range_quick_run_reports_k_of_n(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["--quick", "--no-progress", "--run", "q", "--cells", "gru", "--seeds", "3", "--steps", "20"]
    _cli.run(long_range.Config, long_range.main, argv)
    out = tmp_path / "results" / "long_range" / "q"
    (r,) = json.loads((out / "metrics.json").read_text())["runs"]
    assert (r["task"], r["seq_len"], r["cell"], r["seeds"]) == ("adding", 10, "gru", [0, 1, 2])
    assert len(r["loss"]) == len(r["grad_norm"]) == len(r["final_loss"]) == 3
    assert all(len(loss) == r["steps"] == 20 for loss in r["loss"])
    # k/N recounted from the saved final losses and the criterion (0.1 x baseline)
    k = sum(f < 0.1 * r["baseline"] for f in r["final_loss"])
    assert r["successes"] == k and f"| **{k}/3** |" in (out / "summary.md").read_text()
    # Every seed's final loss is its own evaluation stream's loss, which training never saw.
    assert len(set(r["final_loss"])) == 3
    for name in ("loss.png", "grad_norm.png", "final_loss.png"):
        (out / name).unlink()
    _cli.run(long_range.Config, long_range.main, ["--replot", str(out)])
    assert all((out / name).is_file() for name in ("loss.png", "grad_norm.png", "final_loss.png"))


def test_long_range_grid_takes_per_task_lengths_and_steps():
    cfg = long_range.Config(
        tasks=("copy", "adding"), seq_lens=(5,), task_seq_lens=("copy=3,4", "temporal_order=20"),
        steps=9, task_steps=("adding=7",),
    )  # fmt: skip
    assert long_range.grid(cfg) == [("copy", 3, 9), ("copy", 4, 9), ("adding", 5, 7)]


BAD = [
    (LR, ["--seeds", "0"], "seeds: expected an int >= 1, got 0"),
    (
        LR,
        ["--task-seq-lens", "adding=x"],
        "task_seq_lens: expected 'task=T1,T2,...' with ints, got 'adding=x'",
    ),
    (LR, ["--task-seq-lens", "nope=3"], "task_seq_lens: expected entries 'task=T1,T2,...' with a task from"),
    (LR, ["--task-seq-lens", "adding=1"], "task_seq_lens: adding expected an int >= 2, got 1"),
    (LR, ["--task-steps", "copy=0"], "task_steps: expected steps >= 1 for copy, got 0"),
    (
        LR,
        ["--task-steps", "copy=3", "copy=4"],
        "task_steps: expected each task at most once, got 'copy' twice",
    ),
    (LR, ["--quick", "--full"], "quick, full: expected at most one of them, got both"),
    (GNT, ["--seeds", "0"], "seeds: expected an int >= 1, got 0"),
    (GNT, ["--seeds", "-2"], "seeds: expected an int >= 1, got -2"),
]


@pytest.mark.parametrize("module, argv, message", BAD)
def test_bad_input_is_one_error_line(module, argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        _cli.run(module.Config, module.main, [*argv, "--no-progress"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: " + message), err
    assert not (tmp_path / "results").exists()


def test_gradient_norms_training_runs_every_seed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["--quick", "--no-progress", "--run", "q", "--cells", "gru", "--steps", "3", "--hidden-size", "4"]
    argv += ["--profile-batch", "4", "--seeds", "2", "--task", "temporal_order"]
    _cli.run(GNT.Config, GNT.main, argv)
    out = tmp_path / "results" / "gradient_norms_training" / "q"
    m = json.loads((out / "metrics.json").read_text())
    c = m["cells"]["gru"]
    assert m["seeds"] == [0, 1] and len(c["profile"]["init"]) == len(c["profile"]["trained"]) == 2
    assert [len(loss) for loss in c["loss"]] == [3, 3]
    assert c["successes"] == sum(f < 0.1 * m["baseline"] for f in c["final_loss"])
    # The init profile of seed 1 recomputed on its own (one seed, `profile`, not the stacked `profiles`).
    task, cell = tasks.temporal_order(10), cells.make("gru", 4)
    xs, targets = task.sample(jax.random.key(10_000), 4)
    alone = GNT.profile(cell, task, synthetic.init_params(cell, task, 1), xs, targets)
    want = diagnostics.decay_stats(alone, bounds=GNT.FIT_BOUNDS)["slope_mean"]
    assert abs(c["profile"]["init"][1]["slope_mean"] - want) <= TOL_LOG10
    (out / "profiles.png").unlink()
    _cli.run(GNT.Config, GNT.main, ["--plot-only", str(out)])
    assert (out / "profiles.png").is_file() and re.search(
        r"\| gru \| \*\*\d/2\*\* \|", (out / "summary.md").read_text()
    )


def test_profiles_of_stacked_seeds_equal_one_seed_at_a_time():
    task, cell = tasks.adding(8), cells.make("lstm", 5)
    stacked = synthetic.init_params_seeds(cell, task, (4, 2))
    xs, targets = task.sample(jax.random.key(1), 3)
    got = GNT.profiles(cell, task, stacked, xs, targets)
    for i in range(2):
        want = GNT.profile(cell, task, synthetic.seed_params(stacked, i), xs, targets)
        assert np.max(np.abs(got[i] - want)) <= TOL_LOG10
    assert np.max(np.abs(got[0] - got[1])) > 1e-2  # two different networks


@pytest.mark.parametrize("name, T", [("adding", 12), ("temporal_order", 40)])
def test_relevant_lags_hold_the_relevant_inputs(name, T):
    # The lags T - 1 - t of the marked steps, read from sampled inputs, fill exactly the named ranges.
    task = tasks.make(name, T)
    xs, _ = task.sample(jax.random.key(0), 4000)
    xs = np.asarray(xs)
    if name == "adding":
        marked = np.nonzero(xs[:, :, 1])[1].reshape(-1, 2)  # the two marker steps of each example
    else:
        symbol = np.isin(np.argmax(xs, -1), [tasks.ORDER_X, tasks.ORDER_X + 1])
        marked = np.nonzero(symbol)[1].reshape(-1, 2)
    ranges = list(GNT.relevant_lags(task).values())
    for k, (lo, hi) in enumerate(ranges):
        lags = T - 1 - marked[:, k]
        assert (lags.min(), lags.max()) == (lo, hi)
    assert GNT.relevant_lags(tasks.copy_memory(5)) == {}


def test_profile_of_the_model_equals_the_cell_level_gradients():
    task, cell = tasks.adding(12), cells.make("gru", 8)
    params = synthetic.init_params(cell, task, 0)
    xs, targets = task.sample(jax.random.key(1), 4)
    got = gradient_norms_training.profile(cell, task, params, xs, targets)

    def loss_fn(ys):
        return task.loss(readout.dense(params["readout"], ys), targets)

    grads = diagnostics.hidden_state_grads(cell, params["rnn"]["layer_0"], xs, loss_fn)
    want = diagnostics.log10_norm(np.asarray(grads.h, np.float64))[:, ::-1]
    assert got.shape == (4, 12) and np.all(np.isfinite(want))
    assert np.max(np.abs(got - want)) <= TOL_LOG10
