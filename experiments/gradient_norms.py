"""Experiment 1: how gradient norms vanish or explode with lag, at initialisation, per cell, gain, input scale
and initialisation.

    python -m experiments.gradient_norms                          # the default sweep (run time: README)
    python -m experiments.gradient_norms --quick --run smoke      # seconds; results/gradient_norms/smoke/
    python -m experiments.gradient_norms --preset pytorch --hidden-size 128 --input-size 32 --gains 1
    python -m experiments.gradient_norms --plot-only results/gradient_norms/<run>   # redraw from JSON

`--no-progress` hides the progress bar; bad input prints one line `error: ...` (`--debug`: traceback).

Sweep: cell ∈ {simple-linear, simple-tanh, simple-sigmoid, lstm (forget bias 0), lstm (forget bias 1), gru}
× recurrent gain g ∈ {0.5, 0.9, 1.0, 1.1, 1.5, 2.0} × init ∈ {orthogonal, gaussian} × input scale
s ∈ {0.01, 0.1, 1, 3} × T ∈ {10, 30, 100, 300, 1000} × 8 seeds. W_hh is g·Q (Q orthogonal per gate block)
or g·G with G_ij ~ N(0, 1/H); the inputs are x_t = s·z_t with z_t ~ N(0, I) drawn once per seed (the same
z for every s, g and init). The loss is on the last step only: L_T = ⟨u, h_T⟩ with u a random unit vector
(the default) or, with `--loss cross_entropy`, the softmax cross-entropy of a dense readout of h_T with a
random label; so ∂L_T/∂h_t measures how much of the error signal reaches t, T − t steps back. All of
∂L_T/∂h_t (t = 1..T) and ∂L_T/∂W_hh come from one backward pass (`rnnjax.diagnostics`), the sweep points
split over every device of the run (`parallel.sweep_map`).

`--preset pytorch` (or keras, flax) draws every parameter with that library's default initialisers
(`cells.make(..., preset=)`); W_hh is then the library's own draw times each gain (g = 1: the library's
default), and the init axis has that one entry, named after the preset (`--inits` is for the default preset).

Decay rates are least-squares slopes of log10 ‖∂L_T/∂h_t‖ against lag on a window clear of the float limits
(`diagnostics.fit_bounds`: from lag 0 to the last lag before the norm leaves [log10 smallest normal + 6,
log10 largest − 6]); the window and the lags fitted are in metrics.json and on the figures.
`--linear-float64` (on by default) also runs the linear cell in float64 on the same matrices (T = max, s = 1)
to show what float32's exact zeros hide. The summary says whether the backend that ran flushes float32
subnormals to zero (XLA:CPU does; NVIDIA GPUs keep gradual underflow), which sets the lag of the first zero.

Expected: the linear RNN's log-norm falls by log10 ρ(W_hh) per step (log10 g for orthogonal W), within the
Pascanu et al. (2013) bound (γ σ_max(W_hh))^lag with γ = max|φ'| = 1; tanh decays at or below that bound
(more, the stronger the drive); the sigmoid cell has γ = 1/4 (Bengio, Simard & Frasconi 1994); LSTM with
forget bias 1 keeps the signal longest. See the run's summary.md for the measured rates.

Outputs in `results/gradient_norms/<run>/`: config.json, metrics.json (every plotted number),
norm_vs_lag_<init>.png, grad_whh_vs_T.png, decay_vs_gain.png, decay_heatmap.png, decay_vs_input_scale.png,
rate_vs_radius.png, summary.md; the figures and the summary are drawn from metrics.json alone
(`experiments.gradient_norms_plots`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from experiments.gradient_norms_plots import LAYOUT, plot_all, summary_text
from rnnjax import cells, diagnostics, initializers, readout, results
from rnnjax.command import cli as _cli
from rnnjax.train import distributed, parallel
from rnnjax.train.optimizers import check_positive

EXPERIMENT = "gradient_norms"
# The cell variants swept: name -> (kind, options of `cells.make`).
VARIANTS = {
    "simple-linear": ("simple", dict(activation="linear")),
    "simple-tanh": ("simple", dict(activation="tanh")),
    "simple-sigmoid": ("simple", dict(activation="sigmoid")),
    "lstm-fb0": ("lstm", dict(forget_bias=0.0)),
    "lstm-fb1": ("lstm", dict(forget_bias=1.0)),
    "gru": ("gru", {}),
}
INITS = ("orthogonal", "gaussian")
PRESETS = tuple(initializers.PRESETS)
# Curves by lag are stored to this many decimals of log10 (they are only drawn; the fits use every digit).
CURVE_DECIMALS = 4


@dataclasses.dataclass(frozen=True)
class Config:
    """The sweep (gradient norms at initialisation). Expected run time on a 2-core CPU: about 4 min for the
    default sweep (measured 4 min 11 s wall, 89 s CPU, on a shared machine; README); --quick about 11 s."""

    cells: tuple[str, ...] = tuple(VARIANTS)
    gains: tuple[float, ...] = (0.5, 0.9, 1.0, 1.1, 1.5, 2.0)
    inits: tuple[str, ...] = INITS
    input_scales: tuple[float, ...] = (0.01, 0.1, 1.0, 3.0)  # x_t = scale · N(0, I)
    lengths: tuple[int, ...] = (10, 30, 100, 300, 1000)
    seeds: int = 8
    hidden_size: int = 64
    input_size: int = 8
    preset: str = "default"  # initialisers of: default (rnnjax), pytorch, keras, flax (W_hh = gain · draw)
    loss: str = "linear"  # "linear": L_T = <u, h_T>; "cross_entropy": softmax CE of a readout of h_T
    classes: int = 10  # readout size of the cross-entropy loss
    seed: int = 0
    float64: bool = False  # compute in float64 (later underflow, slower)
    linear_float64: bool = True  # also the linear cell in float64 (same matrices, longest T, scale 1)
    quick: bool = False  # seconds: linear, tanh, LSTM, GRU; 2 gains, 2 scales, T = 10, 50, 2 seeds, H = 16
    progress: bool = True  # a progress bar over the cells
    run: str | None = None  # results/gradient_norms/<run>; default: a timestamp
    overwrite: bool = False  # replace an existing run of the same --run (without it, it is refused)
    plot_only: Path | None = None  # redraw the figures of an existing run from its metrics.json
    coordinator: str | None = None  # several processes: HOST:PORT of process 0 (docs/distributed.md)
    num_processes: int | None = None  # several processes: how many (each one runs this command)
    process_id: int | None = None  # several processes: this one's id, 0 .. num_processes - 1 (0 writes)
    coordinator_timeout: int = distributed.DEFAULT_TIMEOUT_S  # several processes: seconds to wait for all


# The options that may differ between the processes of one multi-process run.
PROCESS_OPTIONS = ("coordinator", "process_id", "progress", "coordinator_timeout")

QUICK = dict(
    cells=("simple-linear", "simple-tanh", "lstm-fb1", "gru"),
    gains=(0.9, 1.0),
    inits=("orthogonal",),
    input_scales=(0.1, 1.0),
    lengths=(10, 50),
    seeds=2,
    hidden_size=16,
)


def _distinct(name: str, values: tuple) -> None:
    if len(set(values)) != len(values):
        raise ValueError(f"{name}: expected distinct values, got {values}")


def validate(cfg: Config) -> Config:
    distributed.settings(cfg.coordinator, cfg.num_processes, cfg.process_id)  # refuses bad values
    _cli.check_ints(cfg, "coordinator_timeout")
    if cfg.preset not in PRESETS:
        raise ValueError(f"preset: expected one of {list(PRESETS)}, got {cfg.preset!r}")
    if cfg.preset != "default" and tuple(cfg.inits) != INITS:
        raise ValueError(
            f"inits: --preset {cfg.preset} draws W_hh with the library's own initialiser (times each gain); "
            f"--inits applies to --preset default only, got {cfg.inits}"
        )
    if cfg.quick:
        cfg = _cli.quick(cfg, QUICK)
    for field, allowed in (("cells", sorted(VARIANTS)), ("inits", INITS)):
        if not getattr(cfg, field):
            raise ValueError(f"{field}: expected at least one name from {allowed}, got none")
        for name in getattr(cfg, field):
            if name not in allowed:
                raise ValueError(f"{field}: expected names from {allowed}, got {name!r}")
    if cfg.loss not in ("linear", "cross_entropy"):
        raise ValueError(f"loss: expected 'linear' or 'cross_entropy', got {cfg.loss!r}")
    if not cfg.gains or min(cfg.gains) <= 0:
        raise ValueError(f"gains: expected positive numbers, got {cfg.gains}")
    for gain in cfg.gains:
        check_positive("gains", gain)  # NaN, inf and values float32 cannot hold
    if not cfg.input_scales or min(cfg.input_scales) <= 0:
        raise ValueError(f"input_scales: expected positive numbers, got {cfg.input_scales}")
    for scale in cfg.input_scales:
        check_positive("input_scales", scale)
    if not cfg.lengths or min(cfg.lengths) < 2:
        raise ValueError(f"lengths: expected sequence lengths >= 2, got {cfg.lengths}")
    for name in ("cells", "inits", "gains", "input_scales", "lengths"):
        _distinct(name, tuple(getattr(cfg, name)))
    if cfg.seeds < 1 or cfg.hidden_size < 1:
        raise ValueError(f"seeds, hidden_size: expected >= 1, got {cfg.seeds}, {cfg.hidden_size}")
    _cli.check_ints(cfg, "input_size")
    _cli.check_ints(cfg, "classes", minimum=2)
    _cli.check_ints(cfg, "seed", minimum=0)
    # The largest call: ∂L/∂h_t <[gains, inits, scales, seeds, T_max, H]>, float32 on the device and
    # float64 on the host.
    n = len(cfg.gains) * len(cfg.inits) * len(cfg.input_scales) * cfg.seeds
    nbytes = 12.0 * n * max(cfg.lengths) * cfg.hidden_size
    parallel.check_memory(
        "hidden_size", cfg.hidden_size, nbytes, f"the hidden-state gradients of {n} trajectories"
    )
    return cfg


def init_names(cfg: Config) -> tuple[str, ...]:
    """The init axis: `cfg.inits` for the default preset, else the preset's own W_hh, named after it."""
    return tuple(cfg.inits) if cfg.preset == "default" else (cfg.preset,)


def make_cell(cfg: Config, cell_name: str, dtype=None) -> cells.Cell:
    kind, options = VARIANTS[cell_name]
    dtype = dtype or (jnp.float64 if cfg.float64 else jnp.float32)
    return cells.make(kind, cfg.hidden_size, dtype=dtype, preset=cfg.preset, **options)


def draws(cfg: Config, cell: cells.Cell) -> dict:
    """Per seed (leading axis, the same seeds for every cell): the preset's params (JAX, key `seed`), and
    from NumPy's generator seeded (seed, i): G <[seed, H, G·H]> with entries N(0, 1/H), unit-scale inputs
    z <[seed, T_max, I]>, the unit vector u <[seed, H]>; with the cross-entropy loss also a readout head
    and a label."""
    H, I, T_max = cfg.hidden_size, cfg.input_size, max(cfg.lengths)
    dtype = np.dtype(cell.initial_carry().h.dtype)
    keys = jax.random.split(jax.random.key(cfg.seed), cfg.seeds)
    d = dict(params=jax.device_get(jax.jit(jax.vmap(lambda k: cell.init(k, I)))(keys)))
    gauss, z, u = [], [], []
    for i in range(cfg.seeds):
        rng = np.random.default_rng([cfg.seed, i])
        gauss.append(rng.standard_normal(d["params"].w_hh.shape[1:]) / np.sqrt(H))
        z.append(rng.standard_normal((T_max, I)))
        u.append(rng.standard_normal(H))
    u = np.asarray(u)
    d.update(
        gauss=np.asarray(gauss, dtype),
        z=np.asarray(z, dtype),
        u=(u / np.linalg.norm(u, axis=-1, keepdims=True)).astype(dtype),
    )
    if cfg.loss == "cross_entropy":
        head_keys = jax.random.split(jax.random.fold_in(jax.random.key(cfg.seed), 1), cfg.seeds)
        d["head"] = jax.device_get(
            jax.jit(jax.vmap(lambda k: readout.dense_init(k, H, cfg.classes, dtype=dtype)))(head_keys)
        )
        d["label"] = np.asarray(
            [np.random.default_rng([cfg.seed, i, 1]).integers(cfg.classes) for i in range(cfg.seeds)]
        )
    return d


def recurrent_matrices(cfg: Config, d: dict) -> np.ndarray:
    """W_hh <[gain, init, seed, H, G·H]>: gain × (the preset's W_hh, or G for "gaussian")."""
    w = np.stack([d["gauss"] if name == "gaussian" else d["params"].w_hh for name in init_names(cfg)])
    gains = np.asarray(cfg.gains)[:, None, None, None, None]
    return (gains * w[None]).astype(w.dtype)


def block_spectra(w_hh: np.ndarray, num_blocks: int) -> tuple[np.ndarray, np.ndarray]:
    """(σ_max, ρ) of W_hh <[..., H, G·H]>: the largest singular value and the largest |eigenvalue| of each
    (H, H) gate block, the largest over blocks, in float64, <[...]>."""
    blocks = np.stack(np.split(w_hh.astype(np.float64), num_blocks, axis=-1))
    sigma = np.linalg.norm(blocks, ord=2, axis=(-2, -1)).max(axis=0)
    rho = np.abs(np.linalg.eigvals(blocks)).max(axis=-1).max(axis=0)
    return sigma, rho


def gradient_fn(cfg: Config, cell: cells.Cell):
    """`point -> (∂L_T/∂h_t <[T, H]>, ∂L_T/∂W_hh)` for one sweep point (params, xs <[T, I]>, u, head,
    label), the loss on the last step."""

    def grads(point):
        def loss_fn(ys):  # ys <[T, H]>
            if cfg.loss == "linear":  # L_T = <u, h_T>, u a random unit vector: ∂L_T/∂h_T = u exactly
                return ys[-1] @ point["u"]
            return readout.cross_entropy(readout.dense(point["head"], ys[-1]), point["label"])

        _, g_params, g_carry = diagnostics.loss_and_hidden_state_grads(
            cell, point["params"], point["xs"], loss_fn
        )
        return g_carry.h, g_params.w_hh

    return grads


def sweep_points(cfg: Config, d: dict, w_hh: np.ndarray, T: int, scales=None, dtype=None) -> dict:
    """Every (gain, init, scale, seed) of length T flattened into one leading axis N (in that order): the
    params with their W_hh, xs = scale · z[:T] <[N, T, I]>, u, head and label."""
    scales = cfg.input_scales if scales is None else scales
    shape = (len(cfg.gains), w_hh.shape[1], len(scales), cfg.seeds)
    gi, ii, ci, si = (a.ravel() for a in np.meshgrid(*map(np.arange, shape), indexing="ij"))
    pick = jax.tree_util.tree_map(
        lambda a: a[si], {k: d[k] for k in ("params", "u", "head", "label") if k in d}
    )
    pick["params"] = pick["params"]._replace(w_hh=w_hh[gi, ii, si])
    pick["xs"] = np.asarray(scales, np.float64)[ci, None, None] * d["z"][si, :T]
    if dtype is not None:
        pick = jax.tree_util.tree_map(lambda a: a.astype(dtype) if a.dtype.kind == "f" else a, pick)
    else:
        pick["xs"] = pick["xs"].astype(d["z"].dtype)
    return pick


def sweep_cell(cfg: Config, cell_name: str, *, lengths=None, scales=None, dtype=None, d=None) -> dict:
    """Every gain × init × input scale × seed of one cell, one `parallel.sweep_map` call per length T.

    Weights and inputs are drawn per seed in the run's dtype (the same draws for every gain, init, scale and
    T; T uses the first T inputs) and scaled on the host. `dtype` (e.g. float64) recomputes the same draws
    in another precision. Returns a dict keyed by T of NumPy arrays indexed [gain, init, scale, seed, ...]:
    "log10_norm_by_lag" log10 ‖∂L_T/∂h_t‖ at lag T − t <[..., T]> and "log10_grad_w_hh"
    log10 ‖∂L_T/∂W_hh‖_F; and "sigma_max", "radius" <[gain, init, seed]>: σ_max and ρ of W_hh (largest
    over gate blocks).
    """
    lengths = cfg.lengths if lengths is None else lengths
    scales = cfg.input_scales if scales is None else scales
    cell = make_cell(cfg, cell_name)
    d = draws(cfg, cell) if d is None else d
    w_hh = recurrent_matrices(cfg, d)
    sigma, rho = block_spectra(w_hh, len(cell.gates))
    run_cell = cell if dtype is None else make_cell(cfg, cell_name, dtype)
    shape = (len(cfg.gains), w_hh.shape[1], len(scales), cfg.seeds)
    out = {}
    for T in lengths:  # (an overflowed float64 norm is +inf, which is what log10_norm reports)
        g_h, g_w = parallel.sweep_map(
            gradient_fn(cfg, run_cell), sweep_points(cfg, d, w_hh, T, scales, dtype)
        )
        with np.errstate(over="ignore"):
            log10_h = diagnostics.log10_norm(g_h).reshape(*shape, T)[..., ::-1]  # lag T-1-t
            log10_w = diagnostics.log10_norm(g_w.reshape(len(g_w), -1)).reshape(shape)
        out[T] = dict(
            log10_norm_by_lag=log10_h,
            log10_grad_w_hh=log10_w,
            sigma_max=sigma,
            radius=rho,
        )
    return out


def backend_facts() -> dict:
    """The backend that ran, and whether it flushes float32 subnormals to zero: a jitted multiply of the
    smallest normal float32 (1.18e-38) by 0.5 gives 0 where subnormals are flushed (XLA:CPU), 5.9e-39 where
    they are kept (gradual underflow, e.g. NVIDIA GPUs)."""
    tiny = np.float32(np.finfo(np.float32).tiny)
    halved = float(jax.jit(lambda x: x * np.float32(0.5))(tiny))
    return dict(
        platform=jax.default_backend(),
        device_kind=jax.devices()[0].device_kind,
        device_count=jax.device_count(),
        float32_smallest_normal=float(tiny),
        smallest_normal_times_half=halved,
        flushes_subnormals=halved == 0.0,
    )


def _quartiles(w: np.ndarray) -> dict:
    """Median and quartiles (linearly interpolated) of `w` <[seed]>."""
    return dict(median=float(np.median(w)), q25=float(np.quantile(w, 0.25)), q75=float(np.quantile(w, 0.75)))


def _smallest_finite(curves: np.ndarray) -> float | None:
    finite = curves[np.isfinite(curves)]
    return float(finite.min()) if finite.size else None


def summarise(cfg: Config, raw: dict, dtype) -> dict:
    """Per (cell, init, input scale, gain): curves by lag at the longest T (median and quartiles over
    seeds, and the smallest finite value), decay-rate fits per T on the window `fit_bounds(dtype)`
    (`diagnostics.decay_stats`), ‖∂L/∂W_hh‖ per T (median and quartiles); per (cell, init, gain) σ_max and
    ρ of every seed's W_hh."""
    T_max, bounds, inits = max(cfg.lengths), diagnostics.fit_bounds(dtype), init_names(cfg)
    out: dict = dict(curves={}, decay={}, grad_w_hh={}, sigma_max={}, spectral_radius={}, gamma={})
    for name in cfg.cells:
        for section in out:
            out[section][name] = {} if section == "gamma" else {init: {} for init in inits}
        out["gamma"][name] = make_cell(cfg, name).gamma  # the kind's γ = max |φ'| (None: no such bound)
        for (gi, gain), (ii, init) in itertools.product(enumerate(cfg.gains), enumerate(inits)):
            g = str(gain)
            out["sigma_max"][name][init][g] = raw[name][T_max]["sigma_max"][gi, ii]
            out["spectral_radius"][name][init][g] = raw[name][T_max]["radius"][gi, ii]
            for ci, scale in enumerate(cfg.input_scales):
                s = str(float(scale))
                at = {
                    str(T): {k: a[k][gi, ii, ci] for k in ("log10_norm_by_lag", "log10_grad_w_hh")}
                    for T, a in raw[name].items()
                }
                last = at[str(T_max)]["log10_norm_by_lag"]  # [seed, T_max]
                q = diagnostics.log_norm_quartiles(last, axis=0)
                curves = {k: np.round(q[k], CURVE_DECIMALS) for k in ("median", "q25", "q75")}
                curves["smallest_finite"] = _smallest_finite(last)
                out["curves"][name][init].setdefault(s, {})[g] = curves
                out["decay"][name][init].setdefault(s, {})[g] = {
                    T: diagnostics.decay_stats(a["log10_norm_by_lag"], bounds=bounds) for T, a in at.items()
                }
                out["grad_w_hh"][name][init].setdefault(s, {})[g] = {
                    T: _quartiles(a["log10_grad_w_hh"]) for T, a in at.items()
                }
    return out


def float64_linear(cfg: Config, d: dict | None = None) -> dict:
    """The linear cell on the run's own float32 matrices, recomputed in float64 at the longest T and input
    scale 1 (the linear cell's gradients do not depend on the inputs): per init and gain the decay fit on
    float64's window and the smallest finite norm. `d`: the float32 sweep's draws (default: drawn again)."""
    T_max = max(cfg.lengths)
    d = draws(cfg, make_cell(cfg, "simple-linear")) if d is None else d  # float32 draws, as in the sweep
    with jax.enable_x64(True):
        raw = sweep_cell(cfg, "simple-linear", lengths=(T_max,), scales=(1.0,), dtype=jnp.float64, d=d)[T_max]
    out = {}
    for (gi, gain), (ii, init) in itertools.product(enumerate(cfg.gains), enumerate(init_names(cfg))):
        curves = raw["log10_norm_by_lag"][gi, ii, 0]
        stats = diagnostics.decay_stats(curves, bounds=diagnostics.fit_bounds(np.float64))
        out.setdefault(init, {})[str(gain)] = dict(stats, smallest_finite=_smallest_finite(curves))
    return out


def main(cfg: Config) -> Path:
    """Run the sweep (or only redraw, with `plot_only`); returns the run folder."""
    if cfg.plot_only is not None:
        return _cli.redraw(cfg.plot_only, EXPERIMENT, plot_all)
    cfg = validate(cfg)
    if distributed.settings(cfg.coordinator, cfg.num_processes, cfg.process_id) is not None:
        distributed.initialize(
            cfg.coordinator, cfg.num_processes, cfg.process_id, timeout=cfg.coordinator_timeout
        )
    # Every process runs the same sweep (its points split over the devices of all of them by
    # `parallel.sweep_map`); process 0 alone writes the run folder.
    same = {k: v for k, v in results.to_jsonable(dataclasses.asdict(cfg)).items() if k not in PROCESS_OPTIONS}
    distributed.check_same(same, "settings")
    main_process = distributed.is_main()
    dtype = np.float64 if cfg.float64 else np.float32
    out = Path(distributed.on_main(lambda: str(_cli.new_run(EXPERIMENT, cfg)), "creating the run folder"))
    start = time.perf_counter()
    raw, d = {}, {}
    with jax.enable_x64(True) if cfg.float64 else contextlib.nullcontext():
        progress = cfg.progress and main_process
        for cell_name in tqdm(cfg.cells, desc="gradient_norms", unit="cell", disable=not progress):
            d[cell_name] = draws(cfg, make_cell(cfg, cell_name))
            raw[cell_name] = sweep_cell(cfg, cell_name, d=d[cell_name])
        metrics = summarise(cfg, raw, dtype)
    if cfg.linear_float64 and not cfg.float64:
        metrics["float64_linear"] = float64_linear(cfg, d.get("simple-linear"))
    bounds = diagnostics.fit_bounds(dtype)
    metrics.update(
        layout=LAYOUT,
        T_max=max(cfg.lengths),
        input_scales=[float(s) for s in cfg.input_scales],
        **{k: getattr(cfg, k) for k in ("seeds", "seed", "hidden_size", "input_size", "preset", "loss")},
        dtype=np.dtype(dtype).name,
        fit_window=dict(
            dtype=np.dtype(dtype).name,
            margin_decades=diagnostics.FIT_MARGIN_DECADES,
            low=bounds[0],
            high=bounds[1],
        ),
        backend=backend_facts(),
        wall_time_s=time.perf_counter() - start,
        devices=[str(d) for d in jax.devices()],
        processes=distributed.process_count(),
    )
    if not main_process:
        return out
    # One line (no indentation): the curves by lag hold ~10^6 numbers in the default sweep.
    _cli.finish_run(out, EXPERIMENT, metrics, plot_all, lambda m: _summary(m, out), compact=True)
    print(headline(json.loads((out / "metrics.json").read_text()), out))
    print(f"wrote {out} in {time.perf_counter() - start:.0f} s")
    return out


# The cells in the words of the headline, in its order.
PLAIN_NAMES = {
    "simple-tanh": "tanh RNN",
    "simple-sigmoid": "sigmoid RNN",
    "lstm-fb0": "LSTM, forget bias 0",
    "lstm-fb1": "LSTM, forget bias 1",
    "gru": "GRU",
    "simple-linear": "linear RNN",
}


def _closest(values, target: float) -> str:
    """The key of `values` (numbers as strings) closest to `target`."""
    return min(values, key=lambda v: abs(float(v) - target))


def _power(exponent: float) -> str:
    """x10^e in plain text, e rounded to what a reader needs (the factor it stands for)."""
    if abs(exponent) >= 10:
        return f"x10^{exponent:+.0f}"
    return f"x10^{exponent:+.1f}" if abs(exponent) >= 1 else f"x10^{exponent:+.2f}"


def headline(m: dict, out: Path) -> str:
    """The finding of a run in at most 20 lines, from its saved metrics: per cell, the decay rate of the
    gradient norm with lag at gain 1 and input drive 1 (the closest swept values), what it means after 100
    and 1,000 steps, and the linear cell's rate against its exact value log10 g; then where the figures and
    the full tables are."""
    T = str(m["T_max"])
    cells = [c for c in PLAIN_NAMES if c in m["decay"]]
    init = "orthogonal" if "orthogonal" in m["decay"][cells[0]] else next(iter(m["decay"][cells[0]]))
    s = _closest(m["decay"][cells[0]][init], 1.0)
    g = _closest(m["decay"][cells[0]][init][s], 1.0)
    lines = [
        "Why plain RNNs forget: the gradient reaching t from the loss at T shrinks (or grows) by a fixed "
        "factor per step of lag T - t (extrapolated at this rate).",
        f"At initialisation, gain g = {g}, input drive s = {s}, {init} W_hh; mean of {m['seeds']} seeds, "
        f"H = {m['hidden_size']}, T = {T}, {m['backend']['platform']} {m['dtype']}:",
        "",
        f"  {'cell':<21} {'per step':>11} {'after 100 steps':>16} {'after 1,000 steps':>18}",
    ]
    for c in cells:
        d = m["decay"][c][init][s][g][T]
        if d["slope_mean"] is None:
            lines.append(f"  {PLAIN_NAMES[c]:<21} {'n/a (no finite norm to fit)':>47}")
            continue
        r = d["slope_mean"]
        lines.append(f"  {PLAIN_NAMES[c]:<21} {_power(r):>11} {_power(100 * r):>16} {_power(1000 * r):>18}")
    if "simple-linear" in cells and init == "orthogonal" and m["preset"] == "default":
        by_gain = m["decay"]["simple-linear"][init][s]
        exact = [
            f"g = {gain}: {d[T]['slope_mean']:+.5f} (log10 g = {np.log10(float(gain)):+.5f})"
            for gain, d in by_gain.items()
            if d[T]["slope_mean"] is not None
        ]
        lines += ["", "Linear RNN, orthogonal W_hh = g Q: exactly log10 g per step; measured:"]
        lines += ["  " + "; ".join(exact[i : i + 2]) for i in range(0, len(exact), 2)]
    rated = {c: m["decay"][c][init][s][g][T]["slope_mean"] for c in cells}
    rated = {c: r for c, r in rated.items() if r is not None and c != "simple-linear"}
    if len(rated) > 1:
        slow, fast = max(rated, key=rated.get), min(rated, key=rated.get)
        lines += ["", f"Keeps the signal longest: {PLAIN_NAMES[slow]}; loses it fastest: {PLAIN_NAMES[fast]}"]
    lines += ["", f"Figures: {out}/*.png; every rate, window and seed count: {out / 'summary.md'}"]
    return "\n".join(lines)


def _summary(m: dict, out: Path) -> str:
    """summary.md: the headline, then every table (`gradient_norms_plots.summary_text`)."""
    return f"```\n{headline(m, out)}\n```\n\n{summary_text(m)}"


if __name__ == "__main__":
    _cli.run(Config, main)
