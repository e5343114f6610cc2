"""Experiment 1: how gradient norms vanish or explode with lag, at initialisation, per cell, gain and init.

    python -m experiments.gradient_norms            # default sweep; measured 62 s on a 2-core CPU
    python -m experiments.gradient_norms --quick    # seconds-long smoke run
    python -m experiments.gradient_norms --plot-only results/gradient_norms/<run>   # redraw from JSON

Sweep: cell ∈ {simple-linear, simple-tanh, lstm (forget bias 0), lstm (forget bias 1), gru} × recurrent gain
g ∈ {0.5, 0.9, 1.0, 1.1, 1.5, 2.0} × init ∈ {orthogonal, gaussian} × T ∈ {10, 30, 100, 300, 1000} × 8 seeds.
W_hh is g·Q (Q orthogonal per gate block) or g·G with G_ij ~ N(0, 1/H) (spectral radius ≈ g by the
circular law). The loss is a softmax cross-entropy of a dense readout of the last step only, L_T, with a
random label, so ∂L_T/∂h_t measures how much of the error signal reaches t, T − t steps back. All of
∂L_T/∂c_t (t = 1..T) and ∂L_T/∂W_hh come from one backward pass (`rnnjax.diagnostics`).

Expected: the linear RNN's log-norm falls by exactly log10 g per step (orthogonal init), the Pascanu et al.
(2013) bound (γ σ_max(W_hh))^lag with γ = 1; tanh decays at or below that bound and, for g > 1, saturation
stops the explosion (the norm still decays); LSTM with forget bias 1 keeps the signal longest. See the run's
summary.md for the measured decay rates.

Outputs in `results/gradient_norms/<run>/`: config.json, metrics.json (every plotted number),
norm_vs_lag_<init>.png, grad_whh_vs_T.png, decay_vs_gain.png, decay_heatmap.png, summary.md.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import tyro
from tqdm import tqdm

from rnnjax import cells, diagnostics, readout, results

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

CELLS = {
    "simple-linear": lambda h, dtype: cells.simple(h, "linear", dtype=dtype),
    "simple-tanh": lambda h, dtype: cells.simple(h, "tanh", dtype=dtype),
    "lstm-fb0": lambda h, dtype: cells.lstm(h, forget_bias=0.0, dtype=dtype),
    "lstm-fb1": lambda h, dtype: cells.lstm(h, forget_bias=1.0, dtype=dtype),
    "gru": lambda h, dtype: cells.gru(h, dtype=dtype),
}
INITS = ("orthogonal", "gaussian")


@dataclasses.dataclass(frozen=True)
class Config:
    cells: tuple[str, ...] = tuple(CELLS)
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
    quick: bool = False  # a seconds-long smoke run: 2 gains, 2 lengths, 2 seeds, H = 16
    run: str | None = None  # results/gradient_norms/<run>; default: a timestamp
    plot_only: Path | None = None  # redraw the figures of an existing run from its metrics.json


QUICK = dict(gains=(0.9, 1.5), lengths=(10, 50), seeds=2, hidden_size=16)


def validate(cfg: Config) -> Config:
    if cfg.quick:
        cfg = dataclasses.replace(cfg, **QUICK)
    for name in cfg.cells:
        if name not in CELLS:
            raise ValueError(f"cells: expected names from {sorted(CELLS)}, got {name!r}")
    for name in cfg.inits:
        if name not in INITS:
            raise ValueError(f"inits: expected names from {INITS}, got {name!r}")
    if cfg.loss not in ("linear", "cross_entropy"):
        raise ValueError(f"loss: expected 'linear' or 'cross_entropy', got {cfg.loss!r}")
    if not cfg.gains or min(cfg.gains) <= 0:
        raise ValueError(f"gains: expected positive numbers, got {cfg.gains}")
    if not cfg.lengths or min(cfg.lengths) < 2:
        raise ValueError(f"lengths: expected sequence lengths >= 2, got {cfg.lengths}")
    if cfg.seeds < 1 or cfg.hidden_size < 1:
        raise ValueError(f"seeds, hidden_size: expected >= 1, got {cfg.seeds}, {cfg.hidden_size}")
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
    cell = CELLS[cell_name](H, dtype)
    blocks = {"simple": 1, "lstm": 4, "gru": 3}[cell.kind]

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
    w_blocks = np.stack(np.split(w_hh.astype(np.float64), blocks, axis=-1))
    sigma = np.linalg.norm(w_blocks, ord=2, axis=(-2, -1)).max(axis=0)  # [gain, init, seed]

    # Flatten (gain, init, T, seed) into one batch axis N.
    G, Ii, nT, S = len(cfg.gains), len(cfg.inits), len(cfg.lengths), cfg.seeds
    gi, ii, ti, si = (a.ravel() for a in np.meshgrid(*map(np.arange, (G, Ii, nT, S)), indexing="ij"))
    batch_params = jax.tree_util.tree_map(lambda a: a[si], params)._replace(w_hh=w_hh[gi, ii, si])
    lengths = np.asarray(cfg.lengths)[ti]

    def grads(p, xs_, length, u_, head_, label_):
        if cfg.loss == "linear":  # L_T = <u, h_T>, u a random unit vector: ∂L_T/∂h_T = u exactly

            def loss_fn(ys):
                return readout.last_valid(ys, length) @ u_

        else:  # softmax cross-entropy of a dense readout of h_T, random label

            def loss_fn(ys):
                return readout.cross_entropy(readout.dense(head_, readout.last_valid(ys, length)), label_)

        _, g_params, g_carry = diagnostics.loss_and_hidden_state_grads(cell, p, xs_, loss_fn, lengths=length)
        return g_carry.h, g_params.w_hh

    batch_head = jax.tree_util.tree_map(lambda a: a[si], head)
    g_h, g_w = jax.jit(jax.vmap(grads))(batch_params, xs[si], lengths, u[si], batch_head, label[si])
    g_h = np.asarray(g_h, np.float64).reshape(G, Ii, nT, S, T_max, H)
    g_w = np.asarray(g_w, np.float64).reshape(G, Ii, nT, S, -1)
    out = {}
    for t_index, T in enumerate(cfg.lengths):
        out[T] = dict(
            log10_norm_by_lag=diagnostics.log10_norm(g_h[:, :, t_index, :, :T])[..., ::-1],  # lag T-1-t
            log10_grad_w_hh=diagnostics.log10_norm(g_w[:, :, t_index]),
            sigma_max=sigma,
        )
    return out


def summarise(cfg: Config, raw: dict) -> dict:
    """Per (cell, init, gain): curves by lag at the longest T (median and quartiles over seeds), decay-rate
    fits per T, and ‖∂L/∂W_hh‖ per T. Non-finite values are counted, never averaged in."""
    T_max = max(cfg.lengths)
    out: dict = dict(T_max=T_max, curves={}, decay={}, grad_w_hh={}, sigma_max={})
    for cell_name in cfg.cells:
        for section in ("curves", "decay", "grad_w_hh", "sigma_max"):
            out[section][cell_name] = {init: {} for init in cfg.inits}
        for gi, gain in enumerate(cfg.gains):
            for ii, init in enumerate(cfg.inits):
                g = str(gain)
                curve = raw[cell_name, T_max]["log10_norm_by_lag"][gi, ii]  # [seed, T_max]
                out["curves"][cell_name][init][g] = diagnostics.log_norm_quartiles(curve, axis=0)
                per_T, w_per_T = {}, {}
                for T in cfg.lengths:
                    curves = raw[cell_name, T]["log10_norm_by_lag"][gi, ii]
                    fits = [diagnostics.decay_rate(np.arange(T), c) for c in curves]
                    slopes = np.array([f.slope for f in fits])
                    under = [f.first_underflow_lag for f in fits if f.first_underflow_lag is not None]
                    per_T[str(T)] = dict(
                        slope_mean=float(np.nanmean(slopes)) if np.isfinite(slopes).any() else None,
                        slope_std=float(np.nanstd(slopes)) if np.isfinite(slopes).any() else None,
                        slopes=slopes,
                        seeds_with_underflow=len(under),
                        first_underflow_lag=min(under) if under else None,
                        seeds_nonfinite=int(np.sum(~np.all(np.isfinite(curves) | np.isneginf(curves), -1))),
                    )
                    w = raw[cell_name, T]["log10_grad_w_hh"][gi, ii]
                    w_per_T[str(T)] = dict(
                        median=float(np.median(w)),
                        q25=float(np.quantile(w, 0.25)),
                        q75=float(np.quantile(w, 0.75)),
                    )
                out["decay"][cell_name][init][g] = per_T
                out["grad_w_hh"][cell_name][init][g] = w_per_T
                out["sigma_max"][cell_name][init][g] = float(
                    np.median(raw[cell_name, T_max]["sigma_max"][gi, ii])
                )
    return out


# ---------------------------------------------------------------------------------------------
# Plots (from the saved metrics only)


def _colors(n):
    return plt.cm.viridis(np.linspace(0.0, 0.9, n))


def plot_norm_vs_lag(m: dict, init: str, path: Path) -> None:
    cell_names = list(m["curves"])
    fig, axes = plt.subplots(
        1,
        len(cell_names),
        figsize=(3.2 * len(cell_names), 3.4),
        sharey=True,
        squeeze=False,
        layout="constrained",
    )
    for ax, name in zip(axes[0], cell_names):
        gains = m["curves"][name][init]
        for color, (g, c) in zip(_colors(len(gains)), gains.items()):
            med = np.asarray(c["median"], float)
            lag = np.arange(len(med))
            ax.plot(lag, med, color=color, label=f"g={g}")
            ax.fill_between(
                lag, np.asarray(c["q25"], float), np.asarray(c["q75"], float), color=color, alpha=0.25
            )
        ax.set(title=name, xlabel="lag T − t (steps)")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("log10 ‖∂L_T/∂h_t‖")
    axes[0, -1].legend(fontsize=7, loc="lower left")
    fig.suptitle(f"Gradient norm vs lag at init, T={m['T_max']}, {init} W_hh (median, quartiles over seeds)")
    results.save_figure(fig, path)
    plt.close(fig)


def plot_grad_whh(m: dict, path: Path) -> None:
    cell_names = list(m["grad_w_hh"])
    inits = list(next(iter(m["grad_w_hh"].values())))
    fig, axes = plt.subplots(
        len(inits),
        len(cell_names),
        figsize=(3.2 * len(cell_names), 3.0 * len(inits)),
        sharex=True,
        squeeze=False,
        layout="constrained",
    )
    for row, init in enumerate(inits):
        for ax, name in zip(axes[row], cell_names):
            gains = m["grad_w_hh"][name][init]
            for color, (g, per_T) in zip(_colors(len(gains)), gains.items()):
                Ts = [int(t) for t in per_T]
                ax.plot(Ts, [per_T[str(t)]["median"] for t in Ts], "o-", color=color, ms=3, label=f"g={g}")
            ax.set_xscale("log")
            ax.set(title=f"{name}, {init}", xlabel="sequence length T")
            ax.grid(alpha=0.3)
        axes[row, 0].set_ylabel("log10 ‖∂L_T/∂W_hh‖")
    axes[0, -1].legend(fontsize=7)
    fig.suptitle("Norm of the recurrent-weight gradient vs sequence length (median over seeds)")
    results.save_figure(fig, path)
    plt.close(fig)


def plot_decay_vs_gain(m: dict, path: Path) -> None:
    T = str(m["T_max"])
    cell_names = list(m["decay"])
    inits = list(next(iter(m["decay"].values())))
    fig, axes = plt.subplots(
        1,
        len(cell_names),
        figsize=(3.2 * len(cell_names), 3.4),
        sharey=True,
        squeeze=False,
        layout="constrained",
    )
    for ax, name in zip(axes[0], cell_names):
        for init, marker, color in zip(inits, "os", ("C0", "C1")):
            gains = m["decay"][name][init]
            x = [float(g) for g in gains]
            y = [np.nan if v[T]["slope_mean"] is None else v[T]["slope_mean"] for v in gains.values()]
            err = [0 if v[T]["slope_std"] is None else v[T]["slope_std"] for v in gains.values()]
            ax.errorbar(
                x, y, yerr=err, marker=marker, ms=4, capsize=2, color=color, label=f"measured, {init}"
            )
            if name.startswith("simple"):  # Pascanu bound: slope ≤ log10(γ σ_max), γ = 1 (tanh, linear)
                sig = [m["sigma_max"][name][init][g] for g in gains]
                ax.plot(
                    x,
                    np.log10(sig),
                    "--",
                    color=color,
                    label=f"bound log10 σ_max, {init}",
                )
        ax.axhline(0, color="k", lw=0.5)
        ax.set(title=name, xlabel="recurrent gain g")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("decay rate d log10‖∂L/∂h_t‖ / d lag")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(
        f"Per-step decay rate vs gain (T={T}; < 0 vanishing, > 0 exploding) with the Pascanu et al. bound"
    )
    results.save_figure(fig, path)
    plt.close(fig)


def plot_heatmap(m: dict, path: Path) -> None:
    T = str(m["T_max"])
    cell_names = list(m["decay"])
    inits = list(next(iter(m["decay"].values())))
    gains = list(next(iter(next(iter(m["decay"].values())).values())))
    fig, axes = plt.subplots(
        1, len(inits), figsize=(5.2 * len(inits), 3.8), squeeze=False, layout="constrained"
    )
    for ax, init in zip(axes[0], inits):
        grid = np.array(
            [
                [
                    np.nan
                    if m["decay"][c][init][g][T]["slope_mean"] is None
                    else m["decay"][c][init][g][T]["slope_mean"]
                    for g in gains
                ]
                for c in cell_names
            ]
        )
        lim = np.nanmax(np.abs(grid)) if np.isfinite(grid).any() else 1.0
        im = ax.imshow(grid, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
        for (r, c), v in np.ndenumerate(grid):
            ax.text(c, r, "n/a" if np.isnan(v) else f"{v:.3f}", ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(gains)), gains)
        ax.set_yticks(range(len(cell_names)), cell_names)
        ax.set(xlabel="recurrent gain g", title=f"{init} W_hh")
        fig.colorbar(im, ax=ax, label="log10 change per step")
    fig.suptitle(f"Decay rate of ‖∂L_T/∂h_t‖ per step (T={T}; blue vanishing, red exploding)")
    results.save_figure(fig, path)
    plt.close(fig)


def plot_all(run: Path) -> None:
    m = json.loads((run / "metrics.json").read_text())
    for init in next(iter(m["curves"].values())):
        plot_norm_vs_lag(m, init, run / f"norm_vs_lag_{init}.png")
    plot_grad_whh(m, run / "grad_whh_vs_T.png")
    plot_decay_vs_gain(m, run / "decay_vs_gain.png")
    plot_heatmap(m, run / "decay_heatmap.png")


def summary_table(m: dict) -> str:
    T = str(m["T_max"])
    inits = list(next(iter(m["decay"].values())))
    lines = [
        f"Decay rate of ‖∂L_T/∂h_t‖ per step of lag, log10 units (mean ± sd over seeds), T={T}.",
        "Negative: vanishing; positive: exploding; 'n/a': no finite points (overflow).",
        "",
    ]
    for init in inits:
        gains = list(next(iter(m["decay"].values()))[init])
        lines += [
            f"### {init} W_hh",
            "",
            "| cell | " + " | ".join(f"g={g}" for g in gains) + " |",
            "|---" * (len(gains) + 1) + "|",
        ]
        for cell_name, per_init in m["decay"].items():
            row = []
            for g in gains:
                d = per_init[init][g][T]
                cellv = "n/a" if d["slope_mean"] is None else f"{d['slope_mean']:.4f} ± {d['slope_std']:.4f}"
                if d["seeds_with_underflow"]:
                    n, lag = d["seeds_with_underflow"], d["first_underflow_lag"]
                    cellv += f" (exact zero in {n} seeds from lag {lag})"
                if d["seeds_nonfinite"]:
                    cellv += f" ({d['seeds_nonfinite']} seeds overflowed)"
                row.append(cellv)
            lines.append(f"| {cell_name} | " + " | ".join(row) + " |")
        lines.append("")
    return "\n".join(lines)


def main(cfg: Config) -> None:
    if cfg.plot_only is not None:
        plot_all(Path(cfg.plot_only))
        print(f"redrew figures in {cfg.plot_only}")
        return
    cfg = validate(cfg)
    if cfg.float64:
        jax.config.update("jax_enable_x64", True)
    out = results.run_dir("gradient_norms", cfg.run)
    results.write_json(out / "config.json", cfg)
    start = time.perf_counter()
    raw = {}
    for cell_name in tqdm(cfg.cells, desc="gradient_norms", unit="cell"):
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


if __name__ == "__main__":
    main(tyro.cli(Config))
