"""Experiment: the largest Lyapunov exponent of the forward dynamics against the measured per-step decay of
the backward gradient, per cell, gain and input scale; and the leading Lyapunov spectrum of each cell.

    python -m experiments.lyapunov                          # the default sweep (run time: README)
    python -m experiments.lyapunov --quick --run smoke      # a few seconds; results/lyapunov/smoke/
    python -m experiments.lyapunov --plot-only results/lyapunov/<run>   # redraw from metrics.json

`--no-progress` hides the progress bar; bad input prints one line `error: ...` (`--debug`: traceback).

Sweep: every cell variant of `experiments.gradient_norms` × recurrent gain g (W_hh = g·Q, Q orthogonal per
gate block) × input scale s (x_t ~ N(0, s²)) × seeds, one trajectory of `length` steps each. On the same
weights and the same trajectory, two independent measurements of how fast perturbations grow per step:

- forward: λ_max / ln 10 from `rnnjax.diagnostics.lyapunov` (QR re-orthonormalisation of J_t Q_t after
  a warm-up, averaged over random initial frames Q_0, whose spread is recorded);
- backward: the slope of log10 ‖∂L_T/∂h_t‖ against the lag T − t for L_T = ⟨u, h_T⟩ (u a random unit
  vector), fitted on the lags whose norms stay inside `diagnostics.fit_bounds(dtype)` (clear of the
  float limits).

The product of step Jacobians has one top growth rate whichever way it is applied, so the two should agree
up to finite-length effects. Beside them: σ_max and the spectral radius ρ of W_hh (`recurrent_spectrum`,
largest over gate blocks; for the simple cells λ_max/ln 10 ≤ log10 σ_max, the Pascanu et al. 2013 bound),
and, for the first seed at every point, the slope of the exact product norm log10 ‖∂c_{T-1}/∂c_t‖
(`jacobian_norms`, never underflows: a third estimate, over every lag). The spectrum part runs the cells at
g = 1, input scale 1 and a small hidden size with k = n exponents (n = H, or 2H for the LSTM's [h, c]),
with λ_1 checked against the exact norm growth log10 ‖J_{T-1} ⋯ J_1‖ / (T − 1).

Outputs in `results/lyapunov/<run>/`: config.json, metrics.json (every plotted number),
lyapunov_vs_gradient.png, lyapunov_vs_gain.png, lyapunov_spectrum.png, summary.md.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import shutil
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from experiments.gradient_norms import VARIANTS
from experiments.lyapunov_plots import plot_all, summary_table
from rnnjax import cells, diagnostics
from rnnjax.command import cli as _cli
from rnnjax.train import parallel
from rnnjax.train.optimizers import check_positive

EXPERIMENT = "lyapunov"
LN10 = math.log(10)


@dataclasses.dataclass(frozen=True)
class Config:
    """The sweep. Expected run time on a 2-core CPU: README (about 2 minutes); --quick a few seconds."""

    cells: tuple[str, ...] = tuple(VARIANTS)  # the cell variants of experiments.gradient_norms
    gains: tuple[float, ...] = (0.5, 0.8, 1.0, 1.2, 1.5, 2.0)  # W_hh = g·Q
    input_scales: tuple[float, ...] = (0.1, 1.0, 3.0)  # x_t ~ N(0, s²)
    seeds: int = 4
    hidden_size: int = 64
    input_size: int = 8
    length: int = 1000  # steps T of every trajectory
    warmup: int | None = None  # Lyapunov warm-up steps; None: diagnostics' default (20 % of length)
    frames: int = 4  # random initial frames Q_0 averaged per trajectory
    spectrum_hidden_size: int = 16  # the hidden size of the spectrum part (k = n exponents)
    seed: int = 0
    float64: bool = False  # compute in float64 (later underflow, slower)
    quick: bool = False  # a smoke run of seconds: 2 cells, 2 gains, one input scale, T = 200, H = 16
    progress: bool = True  # a progress bar over the cells
    run: str | None = None  # results/lyapunov/<run>; default: a timestamp
    overwrite: bool = False  # replace an existing run of the same --run (without it, it is refused)
    plot_only: Path | None = None  # redraw the figures of an existing run from its metrics.json


QUICK = dict(
    cells=("simple-linear", "simple-tanh"),
    gains=(0.8, 1.2),
    input_scales=(1.0,),
    seeds=2,
    hidden_size=16,
    length=200,
    spectrum_hidden_size=4,
)


def validate(cfg: Config) -> Config:
    if cfg.quick:
        cfg = _cli.quick(cfg, QUICK)
    if not cfg.cells:
        raise ValueError(f"cells: expected at least one name from {sorted(VARIANTS)}, got none")
    for name in cfg.cells:
        if name not in VARIANTS:
            raise ValueError(f"cells: expected names from {sorted(VARIANTS)}, got {name!r}")
    for field in ("gains", "input_scales"):
        values = getattr(cfg, field)
        if not values:
            raise ValueError(f"{field}: expected at least one positive number, got none")
        for value in values:
            check_positive(field, value)  # NaN, inf, <= 0 and values float32 cannot hold
    _cli.check_ints(cfg, "seeds", "hidden_size", "input_size", "frames", "spectrum_hidden_size")
    _cli.check_ints(cfg, "length", minimum=3)
    _cli.check_ints(cfg, "seed", minimum=0)
    if cfg.warmup is not None and (isinstance(cfg.warmup, bool) or not 0 <= cfg.warmup < cfg.length - 1):
        raise ValueError(
            f"warmup: expected None or an int in [0, {cfg.length - 2}] (at least 2 measured steps of "
            f"length={cfg.length}), got {cfg.warmup!r}"
        )
    check_size(cfg)
    return cfg


def check_size(cfg: Config) -> None:
    """Refuse (ValueError naming the field, `parallel.check_memory`) a sweep whose arrays cannot fit in
    memory, before anything is allocated: the largest of the cells' sweeps (they run one cell at a time)
    and the spectrum part. Counted, in the compute dtype: the weights of every seed, their per-point copies
    and the gain-scaled copies (<[N, G·H, I + H + 1]> each, N = gains·scales·seeds); per step of every
    point, the backward pass's residuals and ∂L/∂h_t (again in float64 on the host); the n×n matrices of the
    exact product norms (seed 0); and for the spectrum, the frames and Jacobian products of k = n vectors."""
    size = 8 if cfg.float64 else 4
    dtype = "float64" if cfg.float64 else "float32"
    G, S, R, T, H, I = (
        len(cfg.gains),
        len(cfg.input_scales),
        cfg.seeds,
        cfg.length,
        cfg.hidden_size,
        cfg.input_size,
    )
    N = G * S * R

    def facts(name: str, hidden: int) -> tuple[int, int]:  # gate blocks and carry size n, from the cell
        kind, options = VARIANTS[name]
        cell = cells.make(kind, hidden, **options)  # a cell is functions and facts: nothing is allocated
        return len(cell.gates), len(jax.eval_shape(cell.initial_carry)) * hidden

    for name in cfg.cells:
        blocks, n = facts(name, H)
        weights = (R + 2 * N) * blocks * (I * H + H * H + H) * size + 3 * G * S * n * n * size
        steps = N * T * ((blocks + 1) * H + 2 * n) * size + 8 * N * T * H
        field, value = ("hidden_size", H) if weights >= steps else ("length", T)
        parallel.check_memory(
            field,
            value,
            weights + steps,
            f"the {dtype} weights, step Jacobians and gradients of the {N} trajectories of {name} "
            f"({T} steps, hidden size {H})",
        )
        Hs = cfg.spectrum_hidden_size
        blocks, n = facts(name, Hs)
        per_seed = cfg.frames * (3 * n * n + T * n) + 3 * n * n + blocks * (I * Hs + Hs * Hs + Hs)
        spectrum = R * per_seed * size
        parallel.check_memory(
            "spectrum_hidden_size",
            Hs,
            spectrum,
            f"the {dtype} Lyapunov frames and Jacobians of {name}'s spectrum ({n} exponents, {R} seeds)",
        )


def unusable(cfg: Config, name: str, r: dict) -> str | None:
    """Why the sweep of cell `name` (`sweep_cell`'s `r`) gave nothing to compare at some gain and input
    scale, or None: every point needs a finite λ_max, backward slope and exact-norm slope for seed 0 (the
    agreement statistics, the summary and the figures are built on them). They are not finite when the
    float range is left within a step or two (tiny gains: the gradient underflows at once) or when step
    Jacobians are exactly zero (huge input scales saturate tanh)."""
    lam, slope, exact = r["lam10"][:, :, 0], r["slope"][:, :, 0], r["exact_slope"]
    bad = ~(np.isfinite(lam) & np.isfinite(slope) & np.isfinite(exact))  # [gain, scale]
    if not bad.any():
        return None
    points = ", ".join(
        f"(gain {cfg.gains[g]:g}, input scale {cfg.input_scales[s]:g})" for g, s in zip(*np.nonzero(bad))
    )
    dtype = "float64" if cfg.float64 else "float32"
    if not np.isfinite(lam[bad]).any():  # the rest follows from it
        why, hint = "λ_max is -inf: step Jacobians exactly zero (saturated units)", "smaller input scales"
    else:
        parts = [("the backward gradient", slope), ("the exact product norm", exact)]
        why = " and ".join(what for what, v in parts if not np.isfinite(v[bad]).all()) or "λ_max"
        why += f" left the {dtype} range within a step or two"
        hint = "gains and input scales nearer 1" + ("" if cfg.float64 else ", or --float64")
    return (
        f"gains, input_scales: expected values where {name} gives a finite λ_max, backward slope and "
        f"exact-norm slope, got none at {points}: {why}; leave those out or choose {hint}"
    )


def _discard(out: Path) -> None:
    """Remove the run folder `out` of a run that produced nothing, and its parents left empty."""
    shutil.rmtree(out, ignore_errors=True)
    for parent in (out.parent, out.parent.parent):
        try:
            parent.rmdir()
        except OSError:  # not empty (other runs), or already gone
            break


def _warmup(cfg: Config) -> int:
    """The warm-up steps used (the diagnostics' default when `cfg.warmup` is None)."""
    return int(diagnostics.WARMUP_FRACTION * cfg.length) if cfg.warmup is None else cfg.warmup


def _dtype(cfg: Config):
    return jnp.float64 if cfg.float64 else jnp.float32


def _draw(cell, cfg: Config, hidden: int, key):
    """Weights (gain 1), a standard-normal input trajectory <[T, I]>, a unit vector u <[H]> and a key for
    the Lyapunov frames, for one seed."""
    k_cell, k_x, k_u, k_frames = jax.random.split(key, 4)
    params = cell.init(k_cell, cfg.input_size)  # W_hh orthogonal per gate block (the default preset)
    xs = jax.random.normal(k_x, (cfg.length, cfg.input_size), _dtype(cfg))
    u = jax.random.normal(k_u, (hidden,), _dtype(cfg))
    return params, xs, u / jnp.linalg.norm(u), k_frames


def _spread(values):
    """max − min over the last axis (NaN where both are the same infinity, without a warning)."""
    with np.errstate(invalid="ignore"):
        return values.max(-1) - values.min(-1)


def sweep_cell(cfg: Config, name: str) -> dict:
    """Every gain × input scale × seed of one cell: λ_max (forward) and ∂L_T/∂h_t (backward) in one
    compiled, vmapped call; the exact product norms for seed 0; σ_max and ρ of W_hh on the host.

    Returns NumPy arrays indexed [gain, scale, seed, ...]: "lam10" λ_max/ln 10 (mean over frames),
    "frame_spread10" max − min over frames of λ_max/ln 10, "slope" the fitted backward slope, "fit_last_lag"
    and "first_underflow_lag" (-1: none) of that fit; [gain, scale]: "exact_slope" (seed 0); [gain, seed]:
    "sigma_max", "spectral_radius".
    """
    kind, options = VARIANTS[name]
    dtype, H = _dtype(cfg), cfg.hidden_size
    cell = cells.make(kind, H, dtype=dtype, **options)
    keys = jax.random.split(jax.random.key(cfg.seed), cfg.seeds)  # the same seeds for every cell
    params, xs, u, k_frames = jax.jit(jax.vmap(lambda k: _draw(cell, cfg, H, k)))(keys)
    G, S, R = len(cfg.gains), len(cfg.input_scales), cfg.seeds
    gi, si, ri = (a.ravel() for a in np.meshgrid(np.arange(G), np.arange(S), np.arange(R), indexing="ij"))
    gains = jnp.asarray(np.asarray(cfg.gains)[gi], dtype)
    scales = jnp.asarray(np.asarray(cfg.input_scales)[si], dtype)
    batch = jax.tree_util.tree_map(lambda a: a[ri], (params, xs, u, k_frames))
    warmup = _warmup(cfg)

    def one(p, xs_, u_, key, gain, scale):
        p = p._replace(w_hh=gain * p.w_hh)
        xs_ = scale * xs_
        lyap = diagnostics.lyapunov(cell, p, xs_, k=1, key=key, warmup=warmup, num_frames=cfg.frames)
        g_h = diagnostics.hidden_state_grads(cell, p, xs_, lambda ys: ys[-1] @ u_).h  # <[T, H]>
        return lyap.frame_exponents[:, 0], g_h

    frame_lam, g_h = jax.jit(jax.vmap(one))(*batch, gains, scales)
    frame_lam = np.asarray(frame_lam, np.float64).reshape(G, S, R, cfg.frames) / LN10
    log_norms = diagnostics.log10_norm(np.asarray(g_h, np.float64))[..., ::-1]  # lag 0 first, <[N, T]>
    bounds = diagnostics.fit_bounds(dtype)
    fits = [diagnostics.decay_rate(np.arange(cfg.length), y, bounds=bounds) for y in log_norms]

    def grid(values):
        return np.asarray(values, np.float64).reshape(G, S, R)

    # Third estimate, seed 0 only (n² work per step): slope of the exact log10 ‖∂c_{T-1}/∂c_t‖ over all lags.
    def exact_norms(p, xs_, gain, scale):
        return diagnostics.jacobian_norms(cell, p._replace(w_hh=gain * p.w_hh), scale * xs_)

    first = ri == 0
    seed0 = jax.tree_util.tree_map(lambda a: a[first], batch[:2])
    exact = jax.jit(jax.vmap(exact_norms))(*seed0, gains[first], scales[first])
    exact = np.asarray(exact, np.float64)[:, ::-1]  # lag 0 first, never -inf (renormalised products)
    exact_slope = [diagnostics.decay_rate(np.arange(cfg.length), y).slope for y in exact]

    # σ_max and ρ of W_hh, largest over gate blocks, per gain and seed (host, float64).
    spectra = np.zeros((G, R, 2))
    for (i, gain), r in itertools.product(enumerate(cfg.gains), range(R)):
        p_r = jax.tree_util.tree_map(lambda a, r=r: a[r], params)
        spec = diagnostics.recurrent_spectrum(cell, p_r._replace(w_hh=(gain * p_r.w_hh).astype(dtype)))
        spectra[i, r] = [max(b[k] for b in spec.values()) for k in ("sigma_max", "spectral_radius")]
    return dict(
        lam10=frame_lam.mean(-1),
        frame_spread10=_spread(frame_lam),
        slope=grid([f.slope for f in fits]),
        fit_last_lag=grid([-1 if f.last_fitted_lag is None else f.last_fitted_lag for f in fits]),
        first_underflow_lag=grid(
            [-1 if f.first_underflow_lag is None else f.first_underflow_lag for f in fits]
        ),
        exact_slope=np.asarray(exact_slope).reshape(G, S),
        sigma_max=spectra[..., 0],
        spectral_radius=spectra[..., 1],
    )


def spectrum_cell(cfg: Config, name: str) -> dict:
    """The leading Lyapunov spectrum (k = n, all of it) of one cell at g = 1 and input scale 1, hidden size
    `spectrum_hidden_size`, per seed; with λ_1 checked against the exact norm growth of the product.

    Returns NumPy arrays: "exponents10" <[seed, n]> λ_i/ln 10 (mean over frames), "spread10" <[seed, n]>
    (max − min over frames), "exact_top10" <[seed]> log10 ‖J_{T-1} ⋯ J_1‖ / (T − 1).
    """
    kind, options = VARIANTS[name]
    H = cfg.spectrum_hidden_size
    cell = cells.make(kind, H, dtype=_dtype(cfg), **options)
    n = len(cell.initial_carry()) * H
    keys = jax.random.split(jax.random.key(cfg.seed), cfg.seeds)
    warmup = _warmup(cfg)

    def one(key):
        params, xs, _, k_frames = _draw(cell, cfg, H, key)
        lyap = diagnostics.lyapunov(cell, params, xs, k=n, key=k_frames, warmup=warmup, num_frames=cfg.frames)
        exact = diagnostics.jacobian_norms(cell, params, xs)[0] / (cfg.length - 1)
        return lyap.frame_exponents, exact

    frames, exact = jax.jit(jax.vmap(one))(keys)
    frames = np.asarray(frames, np.float64) / LN10  # [seed, frame, n]
    return dict(
        exponents10=frames.mean(1),
        spread10=frames.max(1) - frames.min(1),
        exact_top10=np.asarray(exact, np.float64),
    )


# A backward fit on fewer lags than this is "short" in the agreement statistics.
SHORT_WINDOW = 100


def _median(values) -> float | None:
    return float(np.median(values)) if len(values) else None


def summarise(cfg: Config, raw: dict, spectra: dict) -> dict:
    """The metrics: one entry per (cell, gain, input scale) with its per-seed numbers, the agreement of
    λ_max/ln 10 with the backward slope (overall, per cell, the largest differences), and the spectra."""
    points, diffs = [], []
    for name in cfg.cells:
        r = raw[name]
        for (gi, gain), (si, scale) in itertools.product(enumerate(cfg.gains), enumerate(cfg.input_scales)):
            p = dict(cell=name, gain=gain, input_scale=scale)
            for key in ("lam10", "frame_spread10", "slope"):
                p[key] = r[key][gi, si].tolist()
            for key in ("fit_last_lag", "first_underflow_lag"):  # -1: none
                p[key] = r[key][gi, si].astype(int).tolist()
            p["exact_slope_seed0"] = float(r["exact_slope"][gi, si])
            p["log10_sigma_max"] = np.log10(r["sigma_max"][gi]).tolist()
            p["log10_spectral_radius"] = np.log10(r["spectral_radius"][gi]).tolist()
            p["diff"] = (r["slope"][gi, si] - r["lam10"][gi, si]).tolist()  # backward − forward, per seed
            points.append(p)
            diffs += [(abs(d), name, gain, scale, seed) for seed, d in enumerate(p["diff"])]
    finite = [d for d in diffs if np.isfinite(d[0])]
    by_cell = {
        name: dict(
            max=float(max(d[0] for d in finite if d[1] == name)),
            median=float(np.median([d[0] for d in finite if d[1] == name])),
        )
        for name in cfg.cells
    }
    worst = sorted(finite, reverse=True)[:10]
    # Where they disagree: split by the length of the backward fit window, and the window-free third
    # estimate (exact product norm over every lag, seed 0) against λ_max of the same trajectory.
    windows = {}
    for label, keep in (("short", lambda lag: lag < SHORT_WINDOW), ("long", lambda lag: lag >= SHORT_WINDOW)):
        sel = [abs(d) for p in points for d, lag in zip(p["diff"], p["fit_last_lag"]) if keep(lag)]
        sel = [d for d in sel if np.isfinite(d)]
        windows[label] = dict(n=len(sel), max=max(sel, default=None), median=_median(sel))
    seed0 = [
        (abs(p["slope"][0] - p["lam10"][0]), abs(p["exact_slope_seed0"] - p["lam10"][0])) for p in points
    ]
    seed0 = [pair for pair in seed0 if np.all(np.isfinite(pair))]
    # Pascanu et al. (2013): |φ'| <= 1 (tanh, linear) gives ‖J_t‖ <= σ_max(W_hh): λ_max/ln 10 <= log10 σ_max.
    margins = [
        s - lam
        for p in points
        if VARIANTS[p["cell"]][0] == "simple"
        and VARIANTS[p["cell"]][1].get("activation") in ("tanh", "linear")
        for s, lam in zip(p["log10_sigma_max"], p["lam10"])
    ]
    return dict(
        length=cfg.length,
        warmup=_warmup(cfg),
        frames=cfg.frames,
        fit_bounds=list(diagnostics.fit_bounds(_dtype(cfg))),
        dtype="float64" if cfg.float64 else "float32",
        points=points,
        agreement=dict(
            max_abs_diff=float(max(d[0] for d in finite)),
            median_abs_diff=float(np.median([d[0] for d in finite])),
            nonfinite=len(diffs) - len(finite),
            per_cell=by_cell,
            worst=[dict(abs_diff=d, cell=c, gain=g, input_scale=s, seed=k) for d, c, g, s, k in worst],
            short_window=SHORT_WINDOW,
            by_fit_window=windows,
            seed0_backward=dict(max=max(b for b, _ in seed0), median=_median([b for b, _ in seed0])),
            seed0_exact_norm=dict(max=max(e for _, e in seed0), median=_median([e for _, e in seed0])),
            pascanu_min_margin=min(margins, default=None),
        ),
        spectrum=dict(
            hidden_size=cfg.spectrum_hidden_size,
            cells={name: {k: v.tolist() for k, v in s.items()} for name, s in spectra.items()},
        ),
    )


def main(cfg: Config) -> Path:
    """Run the sweep (or only redraw, with `plot_only`); returns the run folder."""
    if cfg.plot_only is not None:
        return _cli.redraw(cfg.plot_only, EXPERIMENT, plot_all)
    cfg = validate(cfg)
    if cfg.float64:
        jax.config.update("jax_enable_x64", True)
    out = _cli.new_run(EXPERIMENT, cfg)
    start = time.perf_counter()
    raw, spectra = {}, {}
    for name in tqdm(cfg.cells, desc=EXPERIMENT, unit="cell", disable=not cfg.progress):
        raw[name] = sweep_cell(cfg, name)
        problem = unusable(cfg, name, raw[name])
        if problem is not None:  # known only once the cell has run: stop there, and leave no run behind
            _discard(out)
            raise ValueError(problem)
        spectra[name] = spectrum_cell(cfg, name)
    metrics = summarise(cfg, raw, spectra)
    metrics["wall_time_s"] = time.perf_counter() - start
    metrics["devices"] = [str(d) for d in jax.devices()]
    print(_cli.finish_run(out, EXPERIMENT, metrics, plot_all, summary_table))
    print(f"wrote {out} in {time.perf_counter() - start:.0f} s")
    return out


if __name__ == "__main__":
    _cli.run(Config, main)
