"""The gradient-norm experiment end to end on a tiny sweep, checked against a known answer: for a linear
RNN with W_hh = g·Q the fitted decay rate is exactly log10 g per step; and its command line (`--quick`,
`--no-progress`, `--run`, one-line errors)."""

import json

import numpy as np
import pytest

from experiments import _cli, gradient_norms

# float32 experiment, slope fitted from exact per-step ratios: float32 rounding only.
TOL_SLOPE_F32 = 1e-4


def test_tiny_sweep_writes_outputs_and_recovers_log_gain(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = gradient_norms.Config(
        cells=("simple-linear", "simple-tanh", "lstm-fb1"),
        gains=(0.5, 1.1),
        inits=("orthogonal", "gaussian"),
        lengths=(5, 12),
        seeds=2,
        hidden_size=6,
        input_size=3,
        run="t",
    )
    gradient_norms.main(cfg)
    run = tmp_path / "results" / "gradient_norms" / "t"
    for name in [
        "config.json",
        "metrics.json",
        "summary.md",
        "norm_vs_lag_orthogonal.png",
        "norm_vs_lag_gaussian.png",
        "grad_whh_vs_T.png",
        "decay_vs_gain.png",
        "decay_heatmap.png",
    ]:
        assert (run / name).stat().st_size > 0, name
    m = json.loads((run / "metrics.json").read_text())
    for g in (0.5, 1.1):
        for T in ("5", "12"):
            d = m["decay"]["simple-linear"]["orthogonal"][str(g)][T]
            assert abs(d["slope_mean"] - np.log10(g)) <= TOL_SLOPE_F32
    assert len(m["curves"]["lstm-fb1"]["gaussian"]["1.1"]["median"]) == 12
    assert "simple-linear" in (run / "summary.md").read_text()


def test_cli_flags_quick_no_progress_and_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["--quick", "--no-progress", "--run", "x", "--cells", "simple-linear"]
    _cli.run(gradient_norms.Config, gradient_norms.main, argv)
    run = tmp_path / "results" / "gradient_norms" / "x"
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["quick"] is True and cfg["progress"] is False and cfg["run"] == "x"
    assert cfg["cells"] == ["simple-linear"]  # a flag given on the command line wins over --quick
    for key, value in gradient_norms.QUICK.items():  # --quick replaced the rest of the sweep
        if key != "cells":
            assert cfg[key] == (list(value) if isinstance(value, tuple) else value), key
    assert (run / "decay_heatmap.png").stat().st_size > 0
    m = json.loads((run / "metrics.json").read_text())
    for g in gradient_norms.QUICK["gains"]:
        d = m["decay"]["simple-linear"]["orthogonal"][str(g)]["50"]
        assert abs(d["slope_mean"] - np.log10(g)) <= TOL_SLOPE_F32
    captured = capsys.readouterr()
    assert "gradient_norms:" not in captured.err  # no tqdm bar
    assert "| simple-linear |" in captured.out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--cells", "lstm-fb2"], "error: cells: expected names from ['gru', 'lstm-fb0', "),
        (
            ["--inits", "uniform"],
            "error: inits: expected names from ('orthogonal', 'gaussian'), got 'uniform'",
        ),
        (["--gains", "0.5", "-1"], "error: gains: expected positive numbers, got (0.5, -1.0)"),
        (["--loss", "mse"], "error: loss: expected 'linear' or 'cross_entropy', got 'mse'"),
        (
            ["--plot-only", "nowhere"],
            "error: plot_only: expected a run folder holding metrics.json, got 'nowhere'",
        ),
    ],
)
def test_cli_bad_value_prints_one_error_line(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        _cli.run(gradient_norms.Config, gradient_norms.main, [*argv, "--no-progress", "--run", "bad"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1, err
    assert not (tmp_path / "results").exists()  # refused before anything is written
