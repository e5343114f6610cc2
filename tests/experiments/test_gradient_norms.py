"""The gradient-norm experiment end to end on a tiny sweep, checked against a known answer: for a linear
RNN with W_hh = g·Q the fitted decay rate is exactly log10 g per step."""

import json

import numpy as np

from experiments import gradient_norms

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
