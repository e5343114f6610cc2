"""Experiment 1: how gradient norms vanish or explode with lag, at initialisation, per cell, gain and init.

    python -m experiments.gradient_norms                          # the default sweep (run time: README)
    python -m experiments.gradient_norms --quick --run smoke      # ~8 s; results/gradient_norms/smoke/
    python -m experiments.gradient_norms --plot-only results/gradient_norms/<run>   # redraw from JSON

`--no-progress` hides the progress bar; bad input prints one line `error: ...` (`--debug`: traceback).

Sweep: cell ∈ {simple-linear, simple-tanh, lstm (forget bias 0), lstm (forget bias 1), gru} × recurrent gain
g ∈ {0.5, 0.9, 1.0, 1.1, 1.5, 2.0} × init ∈ {orthogonal, gaussian} × T ∈ {10, 30, 100, 300, 1000} × 8 seeds.
W_hh is g·Q (Q orthogonal per gate block) or g·G with G_ij ~ N(0, 1/H) (spectral radius ≈ g by the
circular law). The loss is on the last step only: L_T = ⟨u, h_T⟩ with u a random unit vector (the default)
or, with `--loss cross_entropy`, the softmax cross-entropy of a dense readout of h_T with a random label;
so ∂L_T/∂h_t measures how much of the error signal reaches t, T − t steps back. All of ∂L_T/∂c_t
(t = 1..T) and ∂L_T/∂W_hh come from one backward pass (`rnnjax.diagnostics`).

Expected: the linear RNN's log-norm falls by exactly log10 g per step (orthogonal init), the Pascanu et al.
(2013) bound (γ σ_max(W_hh))^lag with γ = 1; tanh decays at or below that bound and, for g > 1, saturation
stops the explosion (the norm still decays); LSTM with forget bias 1 keeps the signal longest. See the run's
summary.md for the measured decay rates.

Outputs in `results/gradient_norms/<run>/`: config.json, metrics.json (every plotted number),
norm_vs_lag_<init>.png, grad_whh_vs_T.png, decay_vs_gain.png, decay_heatmap.png, summary.md.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from experiments import _cli
from experiments._plots import colors, heatmap, nan_if_none, panels, quartile_band, save
from rnnjax import cells, diagnostics, readout, results
from rnnjax.train import parallel
from rnnjax.train.optimizers import check_positive

EXPERIMENT = "gradient_norms"
# The cell variants swept: name -> (kind, options of `cells.make`).
VARIANTS = {
    "simple-linear": ("simple", dict(activation="linear")),
    "simple-tanh": ("simple", dict(activation="tanh")),
    "lstm-fb0": ("lstm", dict(forget_bias=0.0)),
    "lstm-fb1": ("lstm", dict(forget_bias=1.0)),
    "gru": ("gru", {}),
}
INITS = ("orthogonal", "gaussian")


@dataclasses.dataclass(frozen=True)
class Config:
    """The sweep (gradient norms at initialisation). Expected run time on a 2-core CPU: about 62 s for the
    default sweep (README); --quick about 8 s."""

    cells: tuple[str, ...] = tuple(VARIANTS)
    gains: tuple[float, ...] = (0.5, 0.9, 1.0, 1.1, 1.5, 2.0)
    inits: tuple[str, ...] = INITS
    lengths: tuple[int, ...] = (10, 30, 100, 300, 1000)
    seeds: int = 8
    hidden_size: int = 64
    input_size: int = 8
    loss: str = "linear"  # "linear": L_T = <u, h_T>; "cross_entropy": softmax CE of a readout of h_T
    classes: int = 10  # readout size of the cross-entropy loss
    seed: int = 0
    float64: bool = False  # compute in float64 (later underflow, slower)
    quick: bool = (
        False  # a smoke run of seconds: 2 cells, 2 gains, orthogonal init, T = 10 and 50, 2 seeds, H = 16
    )
    progress: bool = True  # a progress bar over the cells
    run: str | None = None  # results/gradient_norms/<run>; default: a timestamp
    overwrite: bool = False  # replace an existing run of the same --run (without it, it is refused)
    plot_only: Path | None = None  # redraw the figures of an existing run from its metrics.json


QUICK = dict(
    cells=("simple-linear", "lstm-fb1"),
    gains=(0.9, 1.5),
    inits=("orthogonal",),
    lengths=(10, 50),
    seeds=2,
    hidden_size=16,
)


def validate(cfg: Config) -> Config:
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
    if not cfg.lengths or min(cfg.lengths) < 2:
        raise ValueError(f"lengths: expected sequence lengths >= 2, got {cfg.lengths}")
    if cfg.seeds < 1 or cfg.hidden_size < 1:
        raise ValueError(f"seeds, hidden_size: expected >= 1, got {cfg.seeds}, {cfg.hidden_size}")
    _cli.check_ints(cfg, "input_size")
    _cli.check_ints(cfg, "classes", minimum=2)
    _cli.check_ints(cfg, "seed", minimum=0)
    # One batch of trajectories per cell: ∂L/∂h_t <[gains, inits, lengths, seeds, T, H]>, float32 on the
    # device and float64 on the host.
    n = len(cfg.gains) * len(cfg.inits) * len(cfg.lengths) * cfg.seeds
    nbytes = 12.0 * n * max(cfg.lengths) * cfg.hidden_size
    parallel.check_memory(
        "hidden_size", cfg.hidden_size, nbytes, f"the hidden-state gradients of {n} trajectories"
    )
    return cfg


def sweep_cell(cfg: Config, cell_name: str) -> dict:
    """Every gain × init × T × seed of one cell, as one batch of trajectories in one compiled call.

    Each length T runs as a right-padded sequence of length max(T) with `lengths=T`, so one compilation
    serves all lengths (the padded steps cost compute, not accuracy: they leave the carry unchanged).
    Weights are drawn per seed (the same draws for every gain, init and length) and scaled on the host;
    the gradients are one `vmap` over the flattened batch. (A four-level vmap of the whole pipeline,
    initialisation and SVD included, wedged XLA:CPU's runtime in about half of our runs.)

    Returns a dict keyed by T of NumPy arrays indexed [gain, init, seed, ...]: "log10_norm_by_lag"
    log10 ‖∂L_T/∂h_t‖ at lag T − t <[..., T]>, "log10_grad_w_hh" log10 ‖∂L_T/∂W_hh‖_F, and "sigma_max"
    σ_max of W_hh (largest over gate blocks).
    """
    dtype = jnp.float64 if cfg.float64 else jnp.float32
    H, I, T_max = cfg.hidden_size, cfg.input_size, max(cfg.lengths)
    kind, options = VARIANTS[cell_name]
    cell = cells.make(kind, H, dtype=dtype, **options)

    def draw(key):
        k_cell, k_w, k_head, k_x, k_label = jax.random.split(key, 5)
        params = cell.init(k_cell, I)  # W_hh: orthogonal per gate block (the default preset)
        gauss = jax.random.normal(k_w, params.w_hh.shape, dtype) / jnp.sqrt(H)  # entries N(0, 1/H)
        xs = jax.random.normal(k_x, (T_max, I), dtype)
        u = jax.random.normal(k_head, (H,), dtype)
        head = readout.dense_init(k_head, H, cfg.classes, dtype=dtype)
        label = jax.random.randint(k_label, (), 0, cfg.classes)
        return params, gauss, xs, u / jnp.linalg.norm(u), head, label

    keys = jax.random.split(jax.random.key(cfg.seed), cfg.seeds)  # the same seeds for every cell and gain
    params, gauss, xs, u, head, label = jax.device_get(jax.jit(jax.vmap(draw))(keys))  # leading axis: seed

    # W_hh for every (gain, init, seed), and its σ_max (largest over gate blocks), on the host.
    gains = np.asarray(cfg.gains)[:, None, None, None, None]
    w = np.stack([gauss if name == "gaussian" else params.w_hh for name in cfg.inits])  # [init, seed, H, GH]
    w_hh = (gains * w[None]).astype(dtype)  # [gain, init, seed, H, G*H]
    w_blocks = np.stack(np.split(w_hh.astype(np.float64), len(cell.gates), axis=-1))
    sigma = np.linalg.norm(w_blocks, ord=2, axis=(-2, -1)).max(axis=0)  # [gain, init, seed]

    # Flatten (gain, init, T, seed) into one batch axis N.
    G, Ii, nT, S = len(cfg.gains), len(cfg.inits), len(cfg.lengths), cfg.seeds
    gi, ii, ti, si = (a.ravel() for a in np.meshgrid(*map(np.arange, (G, Ii, nT, S)), indexing="ij"))
    batch_params, xs, u, head, label = jax.tree_util.tree_map(lambda a: a[si], (params, xs, u, head, label))
    batch_params = batch_params._replace(w_hh=w_hh[gi, ii, si])

    def grads(p, xs_, length, u_, head_, label_):
        def loss_fn(ys):
            h_T = readout.last_valid(ys, length)
            if cfg.loss == "linear":  # L_T = <u, h_T>, u a random unit vector: ∂L_T/∂h_T = u exactly
                return h_T @ u_
            return readout.cross_entropy(readout.dense(head_, h_T), label_)  # random label

        _, g_params, g_carry = diagnostics.loss_and_hidden_state_grads(cell, p, xs_, loss_fn, lengths=length)
        return g_carry.h, g_params.w_hh

    g_h, g_w = jax.jit(jax.vmap(grads))(batch_params, xs, np.asarray(cfg.lengths)[ti], u, head, label)
    g_h = np.asarray(g_h, np.float64).reshape(G, Ii, nT, S, T_max, H)
    g_w = np.asarray(g_w, np.float64).reshape(G, Ii, nT, S, -1)
    return {
        T: dict(
            log10_norm_by_lag=diagnostics.log10_norm(g_h[:, :, t, :, :T])[..., ::-1],  # lag T-1-t
            log10_grad_w_hh=diagnostics.log10_norm(g_w[:, :, t]),
            sigma_max=sigma,
        )
        for t, T in enumerate(cfg.lengths)
    }


def _quartiles(w: np.ndarray) -> dict:
    """Median and quartiles (linearly interpolated) of `w` <[seed]>."""
    return dict(median=float(np.median(w)), q25=float(np.quantile(w, 0.25)), q75=float(np.quantile(w, 0.75)))


def summarise(cfg: Config, raw: dict) -> dict:
    """Per (cell, init, gain): curves by lag at the longest T (median and quartiles over seeds), decay-rate
    fits per T (`diagnostics.decay_stats`), ‖∂L/∂W_hh‖ per T (median and quartiles) and the median σ_max
    of W_hh."""
    T_max = max(cfg.lengths)
    out: dict = dict(T_max=T_max, curves={}, decay={}, grad_w_hh={}, sigma_max={})
    for name in cfg.cells:
        for section in ("curves", "decay", "grad_w_hh", "sigma_max"):
            out[section][name] = {init: {} for init in cfg.inits}
        for (gi, gain), (ii, init) in itertools.product(enumerate(cfg.gains), enumerate(cfg.inits)):
            at = {str(T): {k: a[gi, ii] for k, a in raw[name, T].items()} for T in cfg.lengths}  # [seed, ...]
            last, g = at[str(T_max)], str(gain)
            out["curves"][name][init][g] = diagnostics.log_norm_quartiles(last["log10_norm_by_lag"], axis=0)
            decay = {T: diagnostics.decay_stats(a["log10_norm_by_lag"]) for T, a in at.items()}
            out["decay"][name][init][g] = decay
            out["grad_w_hh"][name][init][g] = {T: _quartiles(a["log10_grad_w_hh"]) for T, a in at.items()}
            out["sigma_max"][name][init][g] = float(np.median(last["sigma_max"]))
    return out


# ---------------------------------------------------------------------------------------------
# Plots (from the saved metrics only)


def _slopes(m: dict, name: str, init: str, T: str) -> np.ndarray:
    """Mean decay rate per gain of one cell and init at length T, NaN where no point was finite."""
    return nan_if_none(v[T]["slope_mean"] for v in m["decay"][name][init].values())


def plot_norm_vs_lag(m: dict, init: str, path: Path) -> None:
    names = list(m["curves"])
    fig, axes = panels(1, len(names), 3.2, 3.4, sharey=True)
    for ax, name in zip(axes[0], names):
        gains = m["curves"][name][init]
        for color, (g, c) in zip(colors(len(gains)), gains.items()):
            quartile_band(ax, np.arange(len(c["median"])), c, color, label=f"g={g}")
        ax.set(title=name, xlabel="lag T − t (steps)")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("log10 ‖∂L_T/∂h_t‖")
    axes[0, -1].legend(fontsize=7, loc="lower left")
    fig.suptitle(f"Gradient norm vs lag at init, T={m['T_max']}, {init} W_hh (median, quartiles over seeds)")
    save(fig, path)


def plot_grad_whh(m: dict, path: Path) -> None:
    names = list(m["grad_w_hh"])
    inits = list(m["grad_w_hh"][names[0]])
    fig, axes = panels(len(inits), len(names), 3.2, 3.0, sharex=True)
    for row, init in enumerate(inits):
        for ax, name in zip(axes[row], names):
            gains = m["grad_w_hh"][name][init]
            for color, (g, per_T) in zip(colors(len(gains)), gains.items()):
                median = [v["median"] for v in per_T.values()]
                ax.plot([int(t) for t in per_T], median, "o-", color=color, ms=3, label=f"g={g}")
            ax.set_xscale("log")
            ax.set(title=f"{name}, {init}", xlabel="sequence length T")
            ax.grid(alpha=0.3)
        axes[row, 0].set_ylabel("log10 ‖∂L_T/∂W_hh‖")
    axes[0, -1].legend(fontsize=7)
    fig.suptitle("Norm of the recurrent-weight gradient vs sequence length (median over seeds)")
    save(fig, path)


def plot_decay_vs_gain(m: dict, path: Path) -> None:
    T = str(m["T_max"])
    names = list(m["decay"])
    inits = list(m["decay"][names[0]])
    fig, axes = panels(1, len(names), 3.2, 3.4, sharey=True)
    for ax, name in zip(axes[0], names):
        for init, marker, color in zip(inits, "os", ("C0", "C1")):
            gains = m["decay"][name][init]
            x = [float(g) for g in gains]
            err = np.nan_to_num(nan_if_none(v[T]["slope_std"] for v in gains.values()))
            y = _slopes(m, name, init, T)
            ax.errorbar(
                x, y, yerr=err, marker=marker, ms=4, capsize=2, color=color, label=f"measured, {init}"
            )
            if name.startswith("simple"):  # Pascanu bound: slope ≤ log10(γ σ_max), γ = 1 (tanh, linear)
                sig = [m["sigma_max"][name][init][g] for g in gains]
                ax.plot(x, np.log10(sig), "--", color=color, label=f"bound log10 σ_max, {init}")
        ax.axhline(0, color="k", lw=0.5)
        ax.set(title=name, xlabel="recurrent gain g")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("decay rate d log10‖∂L/∂h_t‖ / d lag")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(
        f"Per-step decay rate vs gain (T={T}; < 0 vanishing, > 0 exploding) with the Pascanu et al. bound"
    )
    save(fig, path)


def plot_heatmap(m: dict, path: Path) -> None:
    T = str(m["T_max"])
    names = list(m["decay"])
    inits = list(m["decay"][names[0]])
    gains = list(m["decay"][names[0]][inits[0]])
    fig, axes = panels(1, len(inits), 5.2, 3.8)
    for ax, init in zip(axes[0], inits):
        image = heatmap(ax, [_slopes(m, name, init, T) for name in names], gains, names)
        ax.set(xlabel="recurrent gain g", title=f"{init} W_hh")
        fig.colorbar(image, ax=ax, label="log10 change per step")
    fig.suptitle(f"Decay rate of ‖∂L_T/∂h_t‖ per step (T={T}; blue vanishing, red exploding)")
    save(fig, path)


def plot_all(run: Path) -> None:
    m = json.loads((run / "metrics.json").read_text())
    for init in next(iter(m["curves"].values())):
        plot_norm_vs_lag(m, init, run / f"norm_vs_lag_{init}.png")
    plot_grad_whh(m, run / "grad_whh_vs_T.png")
    plot_decay_vs_gain(m, run / "decay_vs_gain.png")
    plot_heatmap(m, run / "decay_heatmap.png")


def _rate(d: dict) -> str:
    """A summary-table entry: mean ± sd of the decay rate, and the seeds that under- or overflowed."""
    text = "n/a" if d["slope_mean"] is None else f"{d['slope_mean']:.4f} ± {d['slope_std']:.4f}"
    if d["seeds_with_underflow"]:
        text += f" (exact zero in {d['seeds_with_underflow']} seeds from lag {d['first_underflow_lag']})"
    if d["seeds_nonfinite"]:
        text += f" ({d['seeds_nonfinite']} seeds overflowed)"
    return text


def summary_table(m: dict) -> str:
    """The decay rates at the longest T as one Markdown table per init (cells by gains)."""
    T = str(m["T_max"])
    lines = [
        f"Decay rate of ‖∂L_T/∂h_t‖ per step of lag, log10 units (mean ± sd over seeds), T={T}.",
        "Negative: vanishing; positive: exploding; 'n/a': no finite points (overflow).",
        "",
    ]
    for init, gains in next(iter(m["decay"].values())).items():
        lines += [f"### {init} W_hh", "", "| cell | " + " | ".join(f"g={g}" for g in gains) + " |"]
        lines.append("|---" * (len(gains) + 1) + "|")
        for name, per_init in m["decay"].items():
            lines.append(f"| {name} | " + " | ".join(_rate(per_init[init][g][T]) for g in gains) + " |")
        lines.append("")
    return "\n".join(lines)


def main(cfg: Config) -> Path:
    """Run the sweep (or only redraw, with `plot_only`); returns the run folder."""
    if cfg.plot_only is not None:
        run = _cli.saved_run(cfg.plot_only, EXPERIMENT)
        plot_all(run)
        print(f"redrew figures in {run}")
        return run
    cfg = validate(cfg)
    if cfg.float64:
        jax.config.update("jax_enable_x64", True)
    out = _cli.new_run(EXPERIMENT, cfg)
    start = time.perf_counter()
    raw = {}
    for cell_name in tqdm(cfg.cells, desc="gradient_norms", unit="cell", disable=not cfg.progress):
        for T, arrays in sweep_cell(cfg, cell_name).items():
            raw[cell_name, T] = arrays
    metrics = summarise(cfg, raw)
    metrics["wall_time_s"] = time.perf_counter() - start
    metrics["devices"] = [str(d) for d in jax.devices()]
    results.write_json(out / "metrics.json", metrics)
    plot_all(out)
    table = summary_table(json.loads((out / "metrics.json").read_text()))
    results.atomic_write_text(out / "summary.md", f"# gradient_norms\n\n{table}\n")
    print(table)
    print(f"wrote {out} in {time.perf_counter() - start:.0f} s")
    return out


if __name__ == "__main__":
    _cli.run(Config, main)
