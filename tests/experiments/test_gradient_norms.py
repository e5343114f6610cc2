"""The gradient-norm experiment end to end on a small sweep, each finding checked a second, independent way:
the fit window is recorded and respected (float32's exact zeros never enter a slope, and the float64 rerun
of the same matrices has none); the linear cell's rate does not depend on the input drive; the tanh rate
lies between bounds computed from its own trajectory (NumPy reference forward pass), which close on the
linear rate at a small drive; the sigmoid cell's rate is at most log10(σ_max/4) (Bengio et al. 1994); the
Gaussian linear rate is the slope of a NumPy float64 power iteration and tends to log10 ρ (NumPy eigvals);
`parallel.sweep_map` gives the bits of a plain `jit(vmap)`; and the command line (`--quick`,
`--no-progress`, `--run`, one-line errors for every option)."""

import itertools
import json

import jax
import numpy as np
import pytest

from experiments import gradient_norms
from experiments import gradient_norms_sweep as gn_sweep
from rnnjax import diagnostics, reference
from rnnjax.command import cli as _cli
from rnnjax.train import parallel

# float32 experiment, slope fitted from exact per-step ratios: float32 rounding only.
TOL_SLOPE_F32 = 1e-4
# The float32 linear slope on the fit window (issue 14 asks 2e-5 at T = 1000; the last points before an
# exact zero bias an unwindowed fit by up to ~5e-4).
TOL_WINDOWED_F32 = 2e-5
# The float64 rerun multiplies the float32-rounded orthogonal Q (singular values 1 ± ~1e-7): its per-step
# log10 gain differs from log10 g by at most ~1e-7.
TOL_SLOPE_F64_Q32 = 1e-6
# The fitted slope of log10 ‖W^k u‖ over lags 0..T−1 (T = 60 or 200) still carries the transient of W's
# non-leading eigenvalues (O(1/T)); only the asymptotic rate is log10 ρ exactly.
TOL_RATE_RADIUS = 0.02
# At x ~ 0.01·N(0, 1) the tanh rate is within this much of the linear rate log10 g: measured up to 6.2e-4
# here (H = 16, T = 60), 1.4e-3 in issue 14 (H = 64, T = 1000); at x ~ N(0, 1) the gap is ~0.1.
TANH_NEAR_LINEAR = 2e-3
SCALES = (0.01, 1.0, 3.0)
CFG = gradient_norms.Config(
    cells=("simple-linear", "simple-tanh", "simple-sigmoid"),
    gains=(0.5, 1.0),
    inits=("orthogonal", "gaussian"),
    input_scales=SCALES,
    lengths=(60, 200),
    seeds=4,
    hidden_size=16,
    input_size=4,
    progress=False,
    run="t",
)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """The small sweep's run folder and its metrics."""
    folder = tmp_path_factory.mktemp("gn")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        run = gradient_norms.main(CFG)
        return run.resolve(), json.loads((run / "metrics.json").read_text())


def _decay(m, name, init, scale, gain, T):
    return m["decay"][name][init][str(float(scale))][str(float(gain))][str(T)]


def _matrices(name):
    """W_hh <[gain, init, seed, H, H]> (float64) and the draws of the sweep's cell `name`, drawn again."""
    d = gn_sweep.draws(CFG, name)
    return gn_sweep.recurrent_matrices(CFG, d).astype(np.float64), d


def _slope(y):
    return np.polyfit(np.arange(len(y)), y, 1)[0]


def test_sweep_writes_outputs_with_window_backend_and_drive(sweep):
    run, m = sweep
    for name in [
        "config.json",
        "metrics.json",
        "summary.md",
        "norm_vs_lag_orthogonal.png",
        "norm_vs_lag_gaussian.png",
        "grad_whh_vs_T.png",
        "decay_vs_gain.png",
        "decay_heatmap.png",
        "decay_vs_input_scale.png",
        "rate_vs_radius.png",
    ]:
        assert (run / name).stat().st_size > 0, name
    assert m["input_scales"] == list(SCALES) and m["dtype"] == "float32"
    flushed = float(jax.jit(lambda x: x * np.float32(0.5))(np.float32(np.finfo(np.float32).tiny))) == 0.0
    assert m["backend"]["flushes_subnormals"] is flushed
    summary = (run / "summary.md").read_text()
    assert ("flushes float32 subnormals" if flushed else "keeps float32 subnormals") in summary
    for scale in SCALES:
        assert f"### gaussian W_hh, x ~ {scale:g}·N(0,1)" in summary
    assert len(m["curves"]["simple-sigmoid"]["gaussian"]["3.0"]["1.0"]["median"]) == 200


def test_fit_window_recorded_and_respected(sweep):
    _, m = sweep
    low, high = diagnostics.fit_bounds(np.float32)
    w = m["fit_window"]
    assert (w["low"], w["high"], w["dtype"]) == (low, high, "float32")
    # Linear cell, orthogonal W, g = 0.5: 0.5^lag falls below float32's smallest normal near lag 126.
    d = _decay(m, "simple-linear", "orthogonal", 1.0, 0.5, 200)
    c = m["curves"]["simple-linear"]["orthogonal"]["1.0"]["0.5"]
    assert d["seeds_with_underflow"] == CFG.seeds and d["first_underflow_lag"] < 200
    last = d["fit_lags"][1]
    assert last < d["first_underflow_lag"] and c["median"][last] >= low and c["median"][last + 1] < low
    assert all(abs(s - np.log10(0.5)) <= TOL_WINDOWED_F32 for s in d["slopes"])
    # The float64 rerun of the same matrices: no exact zero within 200 lags, every lag fitted.
    ref = m["float64_linear"]["orthogonal"]["0.5"]
    assert ref["first_underflow_lag"] is None and ref["fit_lags"] == [199, 199]
    assert all(abs(s - np.log10(0.5)) <= TOL_SLOPE_F64_Q32 for s in ref["slopes"])
    assert ref["smallest_finite"] < np.log10(np.finfo(np.float32).tiny)  # below float32's range


def test_linear_rate_does_not_depend_on_input_scale(sweep):
    _, m = sweep
    for init in CFG.inits:
        for gain in CFG.gains:
            slopes = [np.asarray(_decay(m, "simple-linear", init, s, gain, 200)["slopes"]) for s in SCALES]
            for other in slopes[1:]:
                np.testing.assert_allclose(other, slopes[0], rtol=0, atol=TOL_SLOPE_F32)


def test_tanh_rate_between_bounds_of_its_own_trajectory(sweep):
    """Orthogonal W = gQ: ‖∂L/∂h_{t−1}‖ = g‖φ'(a_t) ⊙ ∂L/∂h_t‖, so each per-step change lies in
    [log10 g min_i φ'(a_t,i), log10 g max_i φ'(a_t,i)] with φ' = 1 − h² from a NumPy float64 forward pass;
    a least-squares slope is a positive-weighted mean of the per-step changes, so the fitted rate lies
    between the slopes of the two bounding profiles. At a drive of 0.01 the bounds close on log10 g."""
    _, m = sweep
    w_hh, d = _matrices("simple-tanh")
    T, init = 60, CFG.inits.index("orthogonal")
    checked = set()
    for (gi, gain), scale in itertools.product(enumerate(CFG.gains), SCALES):
        dec = _decay(m, "simple-tanh", "orthogonal", scale, gain, T)
        if dec["fit_lags"] != [T - 1, T - 1]:
            continue  # a seed left the window: its fit used fewer lags
        for seed, rate in enumerate(dec["slopes"]):
            params = {k: np.asarray(v[seed], np.float64) for k, v in d["params"]._asdict().items()}
            params["w_hh"] = w_hh[gi, init, seed]
            xs = scale * np.asarray(d["z"][seed, :T], np.float64)[None]
            _, hs = reference.forward("simple", params, xs, activation="tanh")
            dphi = 1.0 - hs[0, ::-1] ** 2  # [lag, H]: φ'(a_t) at t = T−1−lag
            steps = np.log10(gain) + np.log10(np.stack([dphi.min(-1), dphi.max(-1)]))[:, : T - 1]
            low, high = (_slope(np.concatenate([[0.0], np.cumsum(s)])) for s in steps)
            assert low - TOL_SLOPE_F32 <= rate <= high + TOL_SLOPE_F32, (gain, scale, seed, low, rate, high)
            assert high <= np.log10(gain) + TOL_SLOPE_F32  # never above the linear rate (Pascanu, γ = 1)
            if scale == 0.01:  # a small drive: tanh ≈ linear
                assert np.log10(gain) - rate < TANH_NEAR_LINEAR
            if scale == 1.0:  # the unit drive used to be the only one: it is far from linear
                assert np.log10(gain) - rate > 10 * TANH_NEAR_LINEAR
        checked.add((gain, scale))
    assert {(1.0, s) for s in SCALES} | {(0.5, 0.01), (0.5, 1.0)} <= checked


def test_sigmoid_rate_at_most_log10_sigma_max_over_4(sweep):
    _, m = sweep
    assert m["gamma"] == {"simple-linear": 1.0, "simple-tanh": 1.0, "simple-sigmoid": 0.25}
    w_hh, _ = _matrices("simple-sigmoid")
    sigma = np.linalg.svd(w_hh, compute_uv=False)[..., 0]  # [gain, init, seed]
    cases = itertools.product(enumerate(CFG.gains), enumerate(CFG.inits), SCALES, CFG.lengths)
    for (gi, gain), (ii, init), scale, T in cases:
        rates = np.asarray(_decay(m, "simple-sigmoid", init, scale, gain, T)["slopes"])
        assert np.all(rates <= np.log10(sigma[gi, ii] / 4) + TOL_SLOPE_F32), (gain, init, scale, T)


def test_gaussian_linear_rate_is_power_iteration_slope_and_tends_to_log10_radius(sweep):
    _, m = sweep
    w_hh, d = _matrices("simple-linear")
    ii = CFG.inits.index("gaussian")
    for gi, gain in enumerate(CFG.gains):
        T = 60 if gain < 1 else 200  # float32 underflows before lag 200 at g = 0.5
        dec = _decay(m, "simple-linear", "gaussian", 1.0, gain, T)
        rho = np.abs(np.linalg.eigvals(w_hh[gi, ii])).max(-1)  # [seed]
        np.testing.assert_allclose(
            m["spectral_radius"]["simple-linear"]["gaussian"][str(gain)], rho, rtol=1e-12
        )
        assert dec["fit_lags"] == [T - 1, T - 1]
        for seed, rate in enumerate(dec["slopes"]):
            v, y = np.asarray(d["u"][seed], np.float64), []
            for _ in range(T):  # ∂L/∂h_{t−1} = W_hh ∂L/∂h_t (column vectors), lag 0 first
                y.append(np.log10(np.linalg.norm(v)))
                v = w_hh[gi, ii, seed] @ v
            assert abs(rate - _slope(y)) <= TOL_SLOPE_F32, (gain, seed)
            assert abs(rate - np.log10(rho[seed])) <= TOL_RATE_RADIUS, (gain, seed, rate, rho[seed])


def test_sweep_map_gives_the_bits_of_jit_vmap():
    cfg = gradient_norms.Config(cells=("gru",), gains=(0.9, 1.1), lengths=(12,), seeds=3, hidden_size=4)
    cell = gn_sweep.make_cell(cfg, "gru")
    d = gn_sweep.draws(cfg, "gru")
    points = gn_sweep.sweep_points(cfg, d, gn_sweep.recurrent_matrices(cfg, d), 12, name="gru")
    fn = gn_sweep.gradient_fn(cfg, cell, "gru")
    for a, b in zip(parallel.sweep_map(fn, points), jax.device_get(jax.jit(jax.vmap(fn))(points))):
        assert a.dtype == b.dtype and np.array_equal(a, b)


def test_cli_flags_quick_no_progress_and_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["--quick", "--no-progress", "--run", "x", "--cells", "simple-linear", "simple-tanh"]
    _cli.run(gradient_norms.Config, gradient_norms.main, argv)
    run = tmp_path / "results" / "gradient_norms" / "x"
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["quick"] is True and cfg["progress"] is False and cfg["run"] == "x"
    assert cfg["cells"] == ["simple-linear", "simple-tanh"]  # a flag given on the command line wins
    for key, value in gradient_norms.QUICK.items():  # --quick replaced the rest of the sweep
        if key != "cells":
            assert cfg[key] == (list(value) if isinstance(value, tuple) else value), key
    assert (run / "decay_heatmap.png").stat().st_size > 0
    m = json.loads((run / "metrics.json").read_text())
    for g in gradient_norms.QUICK["gains"]:
        for s in gradient_norms.QUICK["input_scales"]:
            d = _decay(m, "simple-linear", "orthogonal", s, g, 50)
            assert abs(d["slope_mean"] - np.log10(g)) <= TOL_SLOPE_F32
    captured = capsys.readouterr()
    assert "gradient_norms:" not in captured.err  # no tqdm bar
    # The terminal leads with the finding (at most 20 lines), the tables are in summary.md
    head, _, tail = captured.out.partition("\nwrote ")
    assert head.startswith("Why plain RNNs forget") and head.count("\n") < 20 and "summary.md" in head
    assert "| simple-linear |" in (run / "summary.md").read_text() and "| simple-linear |" not in head
    # The headline's numbers are the saved fits at g = 1, s = 1: the tanh RNN's rate per step and after
    # 100 steps, and the linear cell's rate beside log10 g computed here
    tanh = _decay(m, "simple-tanh", "orthogonal", 1.0, 1.0, 50)["slope_mean"]
    row = next(line.split() for line in head.splitlines() if line.startswith("  tanh RNN"))
    assert row[2:4] == [f"x10^{tanh:+.2f}", f"x10^{100 * tanh:+.0f}" if abs(100 * tanh) >= 10
                        else f"x10^{100 * tanh:+.1f}"]  # fmt: skip
    for g in gradient_norms.QUICK["gains"]:
        slope = _decay(m, "simple-linear", "orthogonal", 1.0, g, 50)["slope_mean"]
        assert f"g = {g}: {slope:+.5f} (log10 g = {np.log10(g):+.5f})" in head
    _cli.run(gradient_norms.Config, gradient_norms.main, ["--plot-only", str(run)])  # redraw from JSON
    assert "redrew figures" in capsys.readouterr().out


def test_quick_shows_the_cells_the_story_is_about():
    assert {"simple-tanh", "lstm-fb1", "gru"} <= set(gradient_norms.QUICK["cells"])
    assert 1.0 in gradient_norms.QUICK["gains"] and 1.0 in gradient_norms.QUICK["input_scales"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--cells", "lstm-fb2"], "error: cells: expected names from ['gru', 'lru', 'lstm-fb0', "),
        (
            ["--cells", "gru", "lru", "--preset", "keras"],
            "error: cells: ['lru'] run at their kind's own initialisation; --preset keras applies to the "
            "classic cells ['gru', 'lstm-fb0', 'lstm-fb1', 'simple-linear', 'simple-sigmoid', 'simple-tanh'] "
            "only",
        ),
        (
            ["--inits", "uniform"],
            "error: inits: expected names from ('orthogonal', 'gaussian'), got 'uniform'",
        ),
        (["--gains", "0.5", "-1"], "error: gains: expected positive numbers, got (0.5, -1.0)"),
        (["--gains", "1", "1.0"], "error: gains: expected distinct values, got (1.0, 1.0)"),
        (["--loss", "mse"], "error: loss: expected 'linear' or 'cross_entropy', got 'mse'"),
        (["--input-scales"], "error: input_scales: expected positive numbers, got ()"),
        (["--input-scales", "0"], "error: input_scales: expected positive numbers, got (0.0,)"),
        (["--input-scales", "1", "-3"], "error: input_scales: expected positive numbers, got (1.0, -3.0)"),
        (["--input-scales", "nan"], "error: input_scales: expected a positive number, got nan"),
        (
            ["--input-scales", "1e39"],
            "error: input_scales: expected a positive number that float32 (the compute dtype) holds",
        ),
        (["--input-scales", "big"], "error: input_scales: expected numbers, got ['big']"),
        (["--input-scales", "1", "1"], "error: input_scales: expected distinct values, got (1.0, 1.0)"),
        (
            ["--preset", "torch"],
            "error: preset: expected one of ['default', 'keras', 'pytorch', 'flax'], got 'torch'",
        ),
        (
            ["--preset", "pytorch", "--inits", "gaussian"],
            "error: inits: --preset pytorch draws W_hh with the library's own initialiser (times each gain); "
            "--inits applies to --preset default only, got ('gaussian',)",
        ),
        (["--linear-float64", "no"], "error: Unrecognized options: no"),
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
