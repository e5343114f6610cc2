"""The Lyapunov experiment end to end on its --quick sweep, checked against known answers: for the linear cell
with W_hh = g·Q every direction grows by exactly g per step, so λ_max/ln 10 (forward QR), the backward
gradient slope, the exact product-norm slope and log10 σ_max of W_hh all equal log10 g; the tanh cell obeys
the Pascanu et al. bound λ_max/ln 10 ≤ log10 σ_max; and the command line (flags, one-line errors)."""

import json
import math

import numpy as np
import pytest

from experiments import lyapunov
from rnnjax.command import cli as _cli

# float32 per-step rates averaged over >= 100 steps: rounding only (measured <= 2e-8 for the linear cell).
TOL_RATE_F32 = 1e-6
FIGURES = ("vs_gradient", "vs_gain", "spectrum")
FILES = ("config.json", "metrics.json", "summary.md", *(f"lyapunov_{n}.png" for n in FIGURES))


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One --quick run through the command-line entry (as `python -m experiments.lyapunov` runs it)."""
    root = tmp_path_factory.mktemp("lyap")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        _cli.run(lyapunov.Config, lyapunov.main, ["--quick", "--no-progress", "--run", "q"])
    return root / "results" / "lyapunov" / "q"


def test_quick_run_writes_every_output_and_the_config_it_ran(quick_run):
    for name in FILES:
        assert (quick_run / name).stat().st_size > 0, name
    cfg = json.loads((quick_run / "config.json").read_text())
    assert cfg["quick"] is True and cfg["progress"] is False and cfg["run"] == "q"
    for key, value in lyapunov.QUICK.items():
        assert cfg[key] == (list(value) if isinstance(value, tuple) else value), key
    summary = (quick_run / "summary.md").read_text()
    assert "| simple-linear | 0.8 | 1.0 |" in summary and "Lyapunov spectrum" in summary


def test_linear_cell_rate_is_log10_gain_by_every_measurement(quick_run):
    m = json.loads((quick_run / "metrics.json").read_text())
    linear = [p for p in m["points"] if p["cell"] == "simple-linear"]
    assert [p["gain"] for p in linear] == list(lyapunov.QUICK["gains"])
    for p in linear:
        want = math.log10(p["gain"])
        for key in ("lam10", "slope", "log10_sigma_max", "log10_spectral_radius"):  # per seed
            assert np.max(np.abs(np.asarray(p[key]) - want)) <= TOL_RATE_F32, (key, p)
        assert abs(p["exact_slope_seed0"] - want) <= TOL_RATE_F32
        assert np.max(p["frame_spread10"]) <= TOL_RATE_F32  # every frame grows alike
        assert min(p["fit_last_lag"]) == m["length"] - 1  # g^199 stays far inside the float32 window
    # at g = 1 the whole spectrum is log10 1 = 0, and so is the exact norm growth
    spec = m["spectrum"]["cells"]["simple-linear"]
    assert np.asarray(spec["exponents10"]).shape == (
        lyapunov.QUICK["seeds"],
        lyapunov.QUICK["spectrum_hidden_size"],
    )
    assert np.max(np.abs(spec["exponents10"])) <= TOL_RATE_F32
    assert np.max(np.abs(spec["exact_top10"])) <= TOL_RATE_F32


def test_metrics_agree_with_themselves_and_tanh_obeys_the_pascanu_bound(quick_run):
    m = json.loads((quick_run / "metrics.json").read_text())
    diffs = [abs(s - lam) for p in m["points"] for s, lam in zip(p["slope"], p["lam10"])]
    assert m["agreement"]["max_abs_diff"] == pytest.approx(max(diffs), abs=1e-15)
    assert m["agreement"]["median_abs_diff"] == pytest.approx(float(np.median(diffs)), abs=1e-15)
    seed0 = [abs(p["exact_slope_seed0"] - p["lam10"][0]) for p in m["points"]]
    assert m["agreement"]["seed0_exact_norm"]["max"] == pytest.approx(max(seed0), abs=1e-15)
    w = m["agreement"]["by_fit_window"]
    assert w["short"]["n"] + w["long"]["n"] == len(diffs)
    assert m["agreement"]["pascanu_min_margin"] >= -TOL_RATE_F32  # linear: 0 up to rounding; tanh: below
    assert m["warmup"] == int(0.2 * m["length"]) and m["fit_bounds"][0] == pytest.approx(-31.93, abs=0.01)
    for p in m["points"]:
        if p["cell"] == "simple-tanh":  # |tanh'| <= 1: ‖J_t‖ <= σ_max(W_hh) at every step
            assert np.all(np.asarray(p["lam10"]) <= np.asarray(p["log10_sigma_max"]) + TOL_RATE_F32)
            spectrum = np.asarray(m["spectrum"]["cells"]["simple-tanh"]["exponents10"])
            assert np.all(np.diff(spectrum, axis=1) <= 0)  # largest first


def test_plot_only_redraws_from_the_saved_metrics(quick_run, capsys):
    (quick_run / "lyapunov_spectrum.png").unlink()
    _cli.run(lyapunov.Config, lyapunov.main, ["--plot-only", str(quick_run)])
    assert (quick_run / "lyapunov_spectrum.png").stat().st_size > 0
    assert "redrew figures" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--cells", "lstm-fb2"], "error: cells: expected names from ['gru', 'lstm-fb0', "),
        (["--gains", "0.5", "-1"], "error: gains: expected a positive number, got -1.0"),
        (["--input-scales", "nan"], "error: input_scales: expected a positive number, got nan"),
        (["--seeds", "0"], "error: seeds: expected an int >= 1, got 0"),
        (["--frames", "0"], "error: frames: expected an int >= 1, got 0"),
        (["--length", "2"], "error: length: expected an int >= 3, got 2"),
        (
            ["--warmup", "199", "--length", "200"],
            "error: warmup: expected None or an int in [0, 198] (at least 2 measured steps",
        ),
        (
            ["--plot-only", "nowhere"],
            "error: plot_only: expected a run folder holding metrics.json, got 'nowhere'",
        ),
    ],
)
def test_cli_bad_value_prints_one_error_line(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        _cli.run(lyapunov.Config, lyapunov.main, [*argv, "--no-progress", "--run", "b"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1, err
    assert not (tmp_path / "results").exists()  # refused before anything is written
