"""The figures of an `experiments.gradient_norms` run, drawn from its saved metrics.json only (so that
`--plot-only` can redraw them): `plot_all` draws norm_vs_lag_<init>.png (init "own": the kinds at their own
initialisation) and, for the classic cells, grad_whh_vs_T.png, decay_vs_gain.png, decay_heatmap.png,
decay_vs_input_scale.png and rate_vs_radius.png; with long-memory kinds, rate_vs_prediction.png. The text of
summary.md is `experiments.gradient_norms_summary`'s.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rnnjax.command.plots import (
    colors,
    heatmap,
    legend_below,
    log_ticks,
    nan_if_none,
    panel_grid,
    panels,
    quartile_band,
    save,
    title_and_caption,
)

LAYOUT = 2  # metrics.json layout: curves/decay keyed [cell][init][input scale][gain]
# The init key of the kinds run at their own initialisation (gain 1): no W_hh to replace.
OWN = "own"
# The drive of the figures that show one input scale: this one if swept, else the swept scale nearest it.
REFERENCE_SCALE = 1.0


# ---------------------------------------------------------------------------------------------
# Plots (from the saved metrics only)


def reference(m: dict) -> str:
    """The swept input scale nearest REFERENCE_SCALE (in log), as its metrics key."""
    scales = [float(s) for s in m["input_scales"]]
    return str(min(scales, key=lambda s: abs(np.log(s / REFERENCE_SCALE))))


def window_text(m: dict) -> str:
    w = m["fit_window"]
    return (
        f"slopes fitted from lag 0 to the last lag with log10 norm in [{w['low']:.1f}, {w['high']:.1f}] "
        f"({w['margin_decades']:g} decades inside {w['dtype']}'s range)"
    )


def drive(m: dict, s: str) -> str:
    return f"x ~ {float(s):g}·N(0,1)"


RATE = "decay rate (log10 per step)"  # d log10‖∂L_T/∂h_t‖ / d lag: < 0 vanishing, > 0 exploding


def classic(m: dict) -> list[str]:
    """The cells of the gain × init sweep (W_hh replaced), in run order."""
    return [name for name, per_init in m["decay"].items() if OWN not in per_init]


def _slopes(m: dict, name: str, init: str, s: str, T: str) -> np.ndarray:
    """Mean decay rate per gain of one cell, init and scale at length T, NaN where no point was fitted."""
    return nan_if_none(v[T]["slope_mean"] for v in m["decay"][name][init][s].values())


def plot_norm_vs_lag(m: dict, init: str, path: Path) -> None:
    names = [name for name, per_init in m["curves"].items() if init in per_init]
    scales = [str(float(s)) for s in m["input_scales"]]
    low = m["fit_window"]["low"]
    fig, axes = panels(len(scales), len(names), 3.2, 3.0, sharey=True, sharex=True)
    for row, s in enumerate(scales):
        for ax, name in zip(axes[row], names):
            gains = m["curves"][name][init][s]
            for color, (g, c) in zip(colors(len(gains)), gains.items()):
                label = None if init == OWN else f"g={g}"
                quartile_band(ax, np.arange(len(c["median"])), c, color, label=label)
                fit = m["decay"][name][init][s][g][str(m["T_max"])]["fit_lags"]
                if fit is not None:  # the end of the fitted window (largest over seeds)
                    ax.plot(fit[1], nan_if_none([c["median"][fit[1]]])[0], "|", color=color, ms=12, mew=2)
            ax.axhline(low, color="k", ls=":", lw=0.8)
            ax.set(title=f"{name}, {drive(m, s)}", xlabel="lag T − t (steps)")
            ax.grid(alpha=0.3)
        axes[row, 0].set_ylabel("log10 ‖∂L_T/∂c_t‖ (whole carry)" if init == OWN else "log10 ‖∂L_T/∂h_t‖")
    at = "each kind's own initialisation" if init == OWN else f"initialisation ({init} W_hh)"
    why = "its slope the decay rate" if init == OWN else "set by the gain g"
    title_and_caption(
        fig, f"Gradient norm against lag at {at}: a straight line is a constant decay rate per step, {why}"
    )
    legend_below(
        fig,
        axes[0, -1],
        caption=(
            f"Line: median over {m['seeds']} seeds, band: quartiles; T={m['T_max']}. |: the last lag of the "
            f"decay-rate fit; dotted: the fit window's floor (log10 norm {low:.1f}; summary.md)."
        ),
    )
    save(fig, path)


def plot_grad_whh(m: dict, path: Path) -> None:
    names, s = list(m["grad_w_hh"]), reference(m)
    inits = list(m["grad_w_hh"][names[0]])
    fig, axes = panels(len(inits), len(names), 3.2, 3.0, sharex=True)
    for row, init in enumerate(inits):
        for ax, name in zip(axes[row], names):
            gains = m["grad_w_hh"][name][init][s]
            for color, (g, per_T) in zip(colors(len(gains)), gains.items()):
                median = [v["median"] for v in per_T.values()]
                ax.plot([int(t) for t in per_T], median, "o-", color=color, ms=3, label=f"g={g}")
                log_ticks(ax.xaxis, [int(t) for t in per_T])
            ax.set(title=f"{name}, {init}", xlabel="sequence length T")
            ax.grid(alpha=0.3)
        axes[row, 0].set_ylabel("log10 ‖∂L_T/∂W_hh‖")
    title_and_caption(
        fig,
        "Recurrent-weight gradient against sequence length T: a rising line is an exploding gradient",
    )
    legend_below(
        fig,
        axes[0, -1],
        caption=f"Median over {m['seeds']} seeds; one line per recurrent gain g; inputs {drive(m, s)}.",
    )
    save(fig, path)


def plot_decay_vs_gain(m: dict, path: Path) -> None:
    T, s = str(m["T_max"]), reference(m)
    names = classic(m)
    inits = list(m["decay"][names[0]])
    fig, axes = panel_grid(len(names), 3.2, 3.0, sharey=True)
    for ax, name in zip(axes, names):
        for init, marker, color in zip(inits, "os", ("C0", "C1")):
            gains = m["decay"][name][init][s]
            x = [float(g) for g in gains]
            err = np.nan_to_num(nan_if_none(v[T]["slope_std"] for v in gains.values()))
            y = _slopes(m, name, init, s, T)
            ax.errorbar(
                x, y, yerr=err, marker=marker, ms=4, capsize=2, color=color, label=f"measured, {init}"
            )
            rho = [np.median(m["spectral_radius"][name][init][g]) for g in gains]
            ax.plot(x, np.log10(rho), ":", color=color, label=f"log10 ρ(W_hh), {init}")
            gamma = m["gamma"][name]
            if gamma is not None:  # Pascanu bound: slope ≤ log10(γ σ_max)
                sig = [np.median(m["sigma_max"][name][init][g]) for g in gains]
                ax.plot(
                    x, np.log10(gamma * np.asarray(sig)), "--", color=color, label=f"log10 γσ_max, {init}"
                )
        ax.axhline(0, color="k", lw=0.5)
        title = name if m["gamma"][name] is None else f"{name} (γ = {m['gamma'][name]:g})"
        ax.set(title=title, xlabel="recurrent gain g")
        ax.grid(alpha=0.3)
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel(RATE)
    title_and_caption(
        fig,
        "Gradient decay rate per step against the recurrent gain g: below 0 the gradient vanishes, above 0 "
        "it explodes",
    )
    legend_below(
        fig,
        axes,
        caption=(
            f"Mean ± sd over {m['seeds']} seeds at T={T}, inputs {drive(m, s)}. Dotted: log10 of the "
            "spectral radius ρ of W_hh; dashed: the Pascanu et al. bound log10 γσ_max (γ = max|φ'|). Fit "
            "window: summary.md."
        ),
    )
    save(fig, path)


def plot_heatmap(m: dict, path: Path) -> None:
    T = str(m["T_max"])
    names = classic(m)
    inits = list(m["decay"][names[0]])
    scales = [str(float(s)) for s in m["input_scales"]]
    gains = list(m["decay"][names[0]][inits[0]][scales[0]])
    # each panel sized to its grid: a column per gain, a row per cell, room for labels and the colour bar
    fig, axes = panels(len(scales), len(inits), 2.4 + 0.55 * len(gains), 1.4 + 0.4 * len(names))
    for row, s in enumerate(scales):
        for ax, init in zip(axes[row], inits):
            image = heatmap(ax, [_slopes(m, name, init, s, T) for name in names], gains, names)
            ax.set(xlabel="recurrent gain g", title=f"{init} W_hh, {drive(m, s)}")
            fig.colorbar(image, ax=ax, label="log10 per step")
    title_and_caption(
        fig,
        "Gradient decay rate per step for every cell and gain: blue vanishes, red explodes",
        f"Each number: the mean over {m['seeds']} seeds of the slope of log10 ‖∂L_T/∂h_t‖ per step of lag, "
        f"at T={T}; n/a: nothing inside the fit window (summary.md).",
    )
    save(fig, path)


def plot_decay_vs_scale(m: dict, path: Path) -> None:
    T = str(m["T_max"])
    names = classic(m)
    inits = list(m["decay"][names[0]])
    scales = [str(float(s)) for s in m["input_scales"]]
    gains = list(m["decay"][names[0]][inits[0]][scales[0]])
    fig, axes = panel_grid(len(gains), 3.2, 3.0, sharey=True)
    for ax, g in zip(axes, gains):
        for color, name in zip(_cell_colors(len(names)), names):
            for init, style in zip(inits, ("o-", "s--")):
                y = nan_if_none(m["decay"][name][init][s][g][T]["slope_mean"] for s in scales)
                label = f"{name}, {init}" if g == gains[0] else None
                ax.plot([float(s) for s in scales], y, style, color=color, ms=3, label=label)
        ax.axhline(0, color="k", lw=0.5)
        log_ticks(ax.xaxis, [float(s) for s in scales])
        ax.set(title=f"g = {g}", xlabel="input scale s (x ~ s·N(0,1))")
        ax.grid(alpha=0.3)
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel(RATE)
    title_and_caption(
        fig,
        "Gradient decay rate against the size of the inputs, one panel per gain: a flat line does not "
        "depend on the inputs",
    )
    legend_below(
        fig,
        axes,
        caption=f"Mean over {m['seeds']} seeds at T={T}; below 0 the gradient vanishes (window: summary.md)",
    )
    save(fig, path)


def _cell_colors(n: int) -> list[str]:
    """`n` distinct categorical colours (one per cell)."""
    return [f"C{i % 10}" for i in range(n)]


def plot_rate_vs_radius(m: dict, path: Path) -> None:
    T, s = str(m["T_max"]), reference(m)
    names = classic(m)
    inits = list(m["decay"][names[0]])
    fig, axes = panel_grid(len(names), 3.2, 3.0, sharey=True, sharex=True)
    for ax, name in zip(axes, names):
        for init, marker, color in zip(inits, "os", ("C0", "C1")):
            gains = m["decay"][name][init][s]
            x = np.log10(np.concatenate([m["spectral_radius"][name][init][g] for g in gains]))
            y = np.concatenate([nan_if_none(v[T]["slopes"]) for v in gains.values()])
            ax.plot(x, y, marker, color=color, ms=3, alpha=0.7, mfc="none", label=init)
        lim = np.array([-0.4, 0.4])
        ax.plot(lim, lim, "k-", lw=0.7, label="rate = log10 ρ")
        gamma = m["gamma"][name]
        if gamma is not None and gamma != 1:  # the sigmoid's slope at its centre, 1/4
            ax.plot(lim, lim + np.log10(gamma), "k--", lw=0.7, label=f"rate = log10 ρ + log10 {gamma:g}")
        ax.set(title=name, xlabel="log10 ρ(W_hh) of the seed's draw")
        ax.grid(alpha=0.3)
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel("measured decay rate (per seed)")
    title_and_caption(
        fig,
        "Each seed's gradient decay rate against the spectral radius ρ of its W_hh: on the solid line the "
        "gradient shrinks exactly like ρ^lag",
    )
    legend_below(
        fig,
        axes,
        caption=(
            f"One point per seed and gain, T={T}, inputs {drive(m, s)}; dashed: the line moved by log10 γ, "
            "the slope of a cell's nonlinearity at its centre. Fit window: summary.md."
        ),
    )
    save(fig, path)


# What each kind's prediction is, and which measured rate it is compared with (`gradient_norms_sweep`).
BASIS = {
    "radius": ("log10 ρ(W)", "rate on the last half of the fit window"),
    "gates": ("max over units of mean log10 keep", "rate on the whole fit window"),
}


def plot_predictions(m: dict, path: Path) -> None:
    preds, scales = m["predictions"], [str(float(s)) for s in m["input_scales"]]
    fig, axes = panel_grid(len(preds), 3.2, 3.0)
    for ax, (name, p) in zip(axes, preds.items()):
        xy = []
        for color, s in zip(colors(len(scales)), scales):
            x, y = nan_if_none(p["scales"][s]["predicted"]), nan_if_none(p["scales"][s][p["compared"]])
            ax.plot(x, y, "o", color=color, ms=4, mfc="none", label=f"x ~ {float(s):g}·N(0,1)")
            xy += [*x, *y]
        finite = np.asarray(xy)[np.isfinite(xy)]
        lo, hi = (finite.min(), finite.max()) if finite.size else (-1.0, 0.0)
        pad = max(0.1 * (hi - lo), 1e-3 * max(abs(lo), abs(hi)), 1e-9)
        lim = [lo - pad, hi + pad]
        ax.plot(lim, lim, "k-", lw=0.7, label="measured = predicted")
        bound = p["basis"] == "radius" and not p["linear"]
        title = f"{name} (upper bound)" if bound else name
        ax.set(xlim=lim, ylim=lim, title=title, xlabel=f"predicted: {BASIS[p['basis']][0]}")
        ax.ticklabel_format(useOffset=False)
        ax.grid(alpha=0.3)
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel("measured rate (log10 per step)")
    title_and_caption(
        fig,
        "Each long-memory kind's measured gradient decay rate against the rate it predicts for itself: on "
        "the line the prediction is exact",
    )
    legend_below(
        fig,
        axes,
        caption=(
            f"One point per seed and input drive, T={m['T_max']}, {m['dtype']}. Measured: the "
            f"{BASIS['radius'][1]} against log10 ρ(W) (LRU, orthogonal), the {BASIS['gates'][1]} against "
            "the gates (min cells). Tables: summary.md."
        ),
    )
    save(fig, path)


def plot_all(run: Path) -> None:
    m = json.loads((run / "metrics.json").read_text())
    if m.get("layout") != LAYOUT:
        raise ValueError(
            f"plot_only: expected a run of this version of gradient_norms (metrics layout {LAYOUT}), got "
            f"{str(run)!r}, written by an earlier version; run the sweep again"
        )
    for init in dict.fromkeys(init for per_init in m["curves"].values() for init in per_init):
        plot_norm_vs_lag(m, init, run / f"norm_vs_lag_{init}.png")
    if classic(m):
        plot_grad_whh(m, run / "grad_whh_vs_T.png")
        plot_decay_vs_gain(m, run / "decay_vs_gain.png")
        plot_heatmap(m, run / "decay_heatmap.png")
        plot_decay_vs_scale(m, run / "decay_vs_input_scale.png")
        plot_rate_vs_radius(m, run / "rate_vs_radius.png")
    if m.get("predictions"):
        plot_predictions(m, run / "rate_vs_prediction.png")
