"""Experiment 1: how gradient norms vanish or explode with lag, at initialisation, per cell, gain, input scale
and initialisation.

    python -m experiments.gradient_norms                          # the default sweep (run time: README)
    python -m experiments.gradient_norms --quick --run smoke      # seconds; results/gradient_norms/smoke/
    python -m experiments.gradient_norms --preset pytorch --hidden-size 128 --input-size 32 --gains 1
    python -m experiments.gradient_norms --cells simple-tanh orthogonal-linear orthogonal lru mingru minlstm \
        --gains 1 --inits orthogonal --lengths 100 1000 --seeds 4        # the long-memory kinds (docs)
    python -m experiments.gradient_norms --plot-only results/gradient_norms/<run>   # redraw from JSON

`--no-progress` hides the progress bar; bad input prints one line `error: ...` (`--debug`: traceback).

Sweep: cell ∈ {simple-linear, simple-tanh, simple-sigmoid, lstm (forget bias 0), lstm (forget bias 1), gru}
× recurrent gain g ∈ {0.5, 0.9, 1.0, 1.1, 1.5, 2.0} × init ∈ {orthogonal, gaussian} × input scale
s ∈ {0.01, 0.1, 1, 3} × T ∈ {10, 30, 100, 300, 1000} × 8 seeds. W_hh is g·Q (Q orthogonal per gate block)
or g·G with G_ij ~ N(0, 1/H); the inputs are x_t = s·z_t with z_t ~ N(0, I) drawn once per seed (the same
z for every s, g and init). `--cells` also takes the long-memory kinds, run at their own initialisation
(gain 1; `gradient_norms_sweep.OWN_INIT`): orthogonal-linear (expRNN with modReLU bias 0, i.e. linear),
orthogonal (modReLU), lru, mingru, minlstm; each is checked against the rate it predicts for itself
(log10 ρ(W) from `cell.recurrent_matrices`; for the min cells the geometric mean of the keep gate).

The loss is on the last step only: L_T = ⟨u, h_T⟩ with u a random unit vector (the default) or, with
`--loss cross_entropy`, the softmax cross-entropy of a dense readout of h_T with a random label; so
∂L_T/∂h_t measures how much of the error signal reaches t, T − t steps back. All of
∂L_T/∂h_t (t = 1..T) and ∂L_T/∂W_hh come from one backward pass (`rnnjax.diagnostics`), the sweep points
split over every device of the run (`parallel.sweep_map`).

`--preset pytorch` (or keras, flax) draws every parameter with that library's default initialisers
(`cells.make(..., preset=)`); W_hh is then the library's own draw times each gain (g = 1: the library's
default), and the init axis has that one entry, named after the preset (`--inits` is for the default preset).

Decay rates are least-squares slopes of log10 ‖∂L_T/∂h_t‖ against lag on a window clear of the float limits
(`diagnostics.fit_bounds`: from lag 0 to the last lag before the norm leaves [log10 smallest normal + 6,
log10 largest − 6]); the window and the lags fitted are in metrics.json and on the figures.
`--linear-float64` (on by default) also runs the linear cells (simple-linear, orthogonal-linear) in float64
on the same matrices (T = max, s = 1) to show what float32's exact zeros and rounding hide. The summary says
whether the backend that ran flushes float32 subnormals to zero (XLA:CPU does; NVIDIA GPUs keep gradual
underflow), which sets the lag of the first zero.

Expected: the linear RNN's log-norm falls by log10 ρ(W_hh) per step (log10 g for orthogonal W), within the
Pascanu et al. (2013) bound (γ σ_max(W_hh))^lag with γ = max|φ'| = 1; tanh decays at or below that bound
(more, the stronger the drive); the sigmoid cell has γ = 1/4 (Bengio, Simard & Frasconi 1994); LSTM with
forget bias 1 keeps the signal longest. See the run's summary.md for the measured rates.

Outputs in `results/gradient_norms/<run>/`: config.json, metrics.json (every plotted number),
norm_vs_lag_<init>.png, grad_whh_vs_T.png, decay_vs_gain.png, decay_heatmap.png, decay_vs_input_scale.png,
rate_vs_radius.png (the classic cells), norm_vs_lag_own.png and rate_vs_prediction.png (the long-memory
kinds), summary.md; the figures and the summary are drawn from metrics.json alone
(`experiments.gradient_norms_plots`, `experiments.gradient_norms_summary`); the sweep itself is
`experiments.gradient_norms_sweep`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from pathlib import Path

import jax
import numpy as np
from tqdm import tqdm

from experiments import gradient_norms_sweep as sweep
from experiments.gradient_norms_plots import LAYOUT, plot_all
from experiments.gradient_norms_summary import headline, summary
from experiments.gradient_norms_sweep import CELLS, INITS, OWN_INIT, VARIANTS
from rnnjax import diagnostics, initializers, results
from rnnjax.command import cli as _cli
from rnnjax.train import distributed, parallel
from rnnjax.train.optimizers import check_positive

EXPERIMENT = "gradient_norms"
PRESETS = tuple(initializers.PRESETS)


@dataclasses.dataclass(frozen=True)
class Config:
    """The sweep (gradient norms at initialisation). Expected run time on a 2-core CPU: about 4 min for the
    default sweep (measured 4 min 11 s wall, 89 s CPU, on a shared machine; README); --quick about 11 s."""

    cells: tuple[str, ...] = tuple(VARIANTS)  # and the long-memory kinds: --cells ... orthogonal-linear lru
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
    linear_float64: bool = True  # also the linear cells in float64 (same matrices, longest T, scale 1)
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
    for field, allowed in (("cells", sorted(CELLS)), ("inits", INITS)):
        if not getattr(cfg, field):
            raise ValueError(f"{field}: expected at least one name from {allowed}, got none")
        for name in getattr(cfg, field):
            if name not in allowed:
                raise ValueError(f"{field}: expected names from {allowed}, got {name!r}")
    own = [name for name in cfg.cells if name in OWN_INIT]
    if own and cfg.preset != "default":
        raise ValueError(
            f"cells: {own} run at their kind's own initialisation; --preset {cfg.preset} applies to the "
            f"classic cells {sorted(VARIANTS)} only"
        )
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
        for name in tqdm(cfg.cells, desc="gradient_norms", unit="cell", disable=not progress):
            d[name] = sweep.draws(cfg, name)
            raw[name] = sweep.sweep_cell(cfg, name, d=d[name])
        metrics = sweep.summarise(cfg, raw, dtype)
        T_max = max(cfg.lengths)
        metrics["predictions"] = {
            name: sweep.predictions(cfg, name, d[name], raw[name][T_max]["log10_norm_by_lag"][0, 0], dtype)
            for name in cfg.cells
            if name in OWN_INIT
        }
    if cfg.linear_float64 and not cfg.float64:  # the linear cells' exact rates, beyond float32's limits
        if "simple-linear" in cfg.cells:
            metrics["float64_linear"] = sweep.float64_rerun(cfg, "simple-linear", d["simple-linear"])
        if "orthogonal-linear" in cfg.cells:
            rerun = sweep.float64_rerun(cfg, "orthogonal-linear", d["orthogonal-linear"])
            metrics["predictions"]["orthogonal-linear"]["float64"] = rerun[sweep.OWN]["1.0"]
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
        backend=sweep.backend_facts(),
        wall_time_s=time.perf_counter() - start,
        devices=[str(d) for d in jax.devices()],
        processes=distributed.process_count(),
    )
    if not main_process:
        return out
    # One line (no indentation): the curves by lag hold ~10^6 numbers in the default sweep.
    _cli.finish_run(out, EXPERIMENT, metrics, plot_all, lambda m: summary(m, out), compact=True)
    print(headline(json.loads((out / "metrics.json").read_text()), out))
    print(f"wrote {out} in {time.perf_counter() - start:.0f} s")
    return out


if __name__ == "__main__":
    _cli.run(Config, main)
