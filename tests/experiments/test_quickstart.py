"""The quickstart end to end on a small setting, its task checked against its definition, and its gradient
check (jax.grad through the model vs the NumPy reference's hand-written BPTT) within float32 rounding."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from experiments import quickstart
from rnnjax.command import cli as _cli

# jax.grad in float32 (matmuls pinned to full float32) against the float64 reference: float32 rounding
# accumulated over the T steps of BPTT, relative to each gradient's largest entry.
TOL_GRAD_F32 = 1e-5


ROOT = Path(__file__).resolve().parents[2]


def test_first_symbol_task_labels_the_first_symbol_and_chance_is_its_baseline():
    task = quickstart.first_symbol(7, 5)
    xs, labels = task.sample(jax.random.key(0), 32)
    assert xs.shape == (32, 7, 5) and xs.dtype == np.float32 and labels.shape == (32,)
    np.testing.assert_array_equal(np.asarray(xs).sum(-1), 1.0)  # one-hot at every step
    np.testing.assert_array_equal(np.argmax(np.asarray(xs)[:, 0], -1), labels)
    # Uniform outputs score ln K, the task's baseline; the loss reads the last step only.
    outputs = np.zeros((32, 7, 5), np.float32)
    assert float(task.loss(outputs, labels)) == pytest.approx(math.log(5), abs=1e-6)
    assert task.baseline == math.log(5)
    outputs[np.arange(32), :-1, labels] = 100.0  # confident and right everywhere but the last step
    assert float(task.loss(outputs, labels)) == pytest.approx(math.log(5), abs=1e-6)


def test_gradient_check_agrees_with_the_reference():
    with jax.default_matmul_precision("float32"):
        assert quickstart.gradient_check(quickstart.first_symbol(6, 4)) <= TOL_GRAD_F32


def test_small_run_writes_the_run_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    small = dict(seq_len=5, hidden_size=8, batch_size=16, steps=20, cells=("simple-tanh", "gru"))
    cfg = quickstart.Config(**small, progress=False, run="t")
    m = quickstart.main(cfg)
    out = tmp_path / "results" / "quickstart" / "t"
    for name in ("config.json", "metrics.json", "loss.png", "summary.md"):
        assert (out / name).stat().st_size > 0
    saved = json.loads((out / "metrics.json").read_text())
    assert set(saved["cells"]) == {"simple-tanh", "gru"}
    for name, cell in saved["cells"].items():
        assert len(cell["loss"]) == len(cell["grad_norm"]) == cfg.steps
        assert 0.0 <= cell["test_accuracy"] <= 1.0 and np.isfinite(cell["test_loss"])
        assert cell["test_loss"] == pytest.approx(m["cells"][name]["test_loss"])
    assert saved["gradient_check_rel_error"] <= TOL_GRAD_F32
    assert "| gru |" in (out / "summary.md").read_text()


def test_command_reports_bad_input_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        _cli.run(quickstart.Config, quickstart.main, ["--cells", "rnn", "--quick", "--no-progress"])
    assert exit_info.value.code == 2
    expected = f"error: cells: expected names from {sorted(quickstart.CELLS)}, got ['rnn']\n"
    assert capsys.readouterr().err == expected
    assert not (tmp_path / "results").exists()  # refused before anything is written


def test_a_diverged_training_is_a_failed_run(tmp_path):
    # A process of its own: the suite runs JAX in float64, where this learning rate does not overflow
    argv = ["--quick", "--learning-rate", "1e30", "--cells", "gru", "--no-progress", "--run", "d"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "experiments.quickstart", *argv], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 1, done.stderr
    last = done.stderr.strip().splitlines()[-1]  # after the warning line of the diverged training
    assert last.startswith("error: 1 of 1 cells diverged (") and "try a lower --learning-rate" in last
    saved = json.loads((tmp_path / "results" / "quickstart" / "d" / "metrics.json").read_text())
    assert "not finite" in saved["cells"]["gru"]["diverged"]  # the results are still written
