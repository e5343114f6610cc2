"""The commands `long_range` and `gradient_norms_training`: a quick run writes its outputs, bad input is one
line `error: ...`, and the trained-model gradient profile equals the cell-level computation."""

import json

import jax
import numpy as np
import pytest

from experiments import _cli, gradient_norms_training, long_range
from rnnjax import cells, diagnostics, readout, tasks
from rnnjax.train import synthetic

# The same float32 gradients computed through the model or through the cell: rounding only, in log10.
TOL_LOG10 = 1e-5


def test_long_range_quick_run_writes_its_outputs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["--quick", "--no-progress", "--run", "q", "--tasks", "adding"]
    _cli.run(long_range.Config, long_range.main, argv)
    out = tmp_path / "results" / "long_range" / "q"
    runs = json.loads((out / "metrics.json").read_text())["runs"]
    assert [r["cell"] for r in runs] == ["simple-tanh", "lstm", "gru"]
    assert all(len(r["loss"]) == r["steps"] == 60 for r in runs)
    assert (out / "summary.md").exists() and (out / "config.json").exists()


def test_bad_input_is_one_error_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for module, argv in [
        (long_range, ["--quick", "--cells", "transformer"]),
        (gradient_norms_training, ["--quick", "--cells", "transformer"]),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            _cli.run(module.Config, module.main, argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == ["error: cells: expected names from ['gru', 'lstm', 'simple-tanh'], got 'transformer'"]


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
