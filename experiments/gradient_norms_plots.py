"""The figures and the summary of an `experiments.gradient_norms` run, drawn and written from its saved
metrics.json only (so that `--plot-only` can redraw them): `plot_all` draws norm_vs_lag_<init>.png,
grad_whh_vs_T.png, decay_vs_gain.png, decay_heatmap.png, decay_vs_input_scale.png and rate_vs_radius.png;
`summary_text` is the text of summary.md.
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
# The drive of the figures that show one input scale: this one if swept, else the swept scale nearest it.
REFERENCE_SCALE = 1.0


# ---------------------------------------------------------------------------------------------
# Plots (from the saved metrics only)


def _reference(m: dict) -> str:
    """The swept input scale nearest REFERENCE_SCALE (in log), as its metrics key."""
    scales = [float(s) for s in m["input_scales"]]
    return str(min(scales, key=lambda s: abs(np.log(s / REFERENCE_SCALE))))


def _window(m: dict) -> str:
    w = m["fit_window"]
    return (
        f"slopes fitted from lag 0 to the last lag with log10 norm in [{w['low']:.1f}, {w['high']:.1f}] "
        f"({w['margin_decades']:g} decades inside {w['dtype']}'s range)"
    )


def _drive(m: dict, s: str) -> str:
    return f"x ~ {float(s):g}·N(0,1)"


RATE = "decay rate (log10 per step)"  # d log10‖∂L_T/∂h_t‖ / d lag: < 0 vanishing, > 0 exploding


def _slopes(m: dict, name: str, init: str, s: str, T: str) -> np.ndarray:
    """Mean decay rate per gain of one cell, init and scale at length T, NaN where no point was fitted."""
    return nan_if_none(v[T]["slope_mean"] for v in m["decay"][name][init][s].values())


def plot_norm_vs_lag(m: dict, init: str, path: Path) -> None:
    names, scales = list(m["curves"]), [str(float(s)) for s in m["input_scales"]]
    low = m["fit_window"]["low"]
    fig, axes = panels(len(scales), len(names), 3.2, 3.0, sharey=True, sharex=True)
    for row, s in enumerate(scales):
        for ax, name in zip(axes[row], names):
            gains = m["curves"][name][init][s]
            for color, (g, c) in zip(colors(len(gains)), gains.items()):
                quartile_band(ax, np.arange(len(c["median"])), c, color, label=f"g={g}")
                fit = m["decay"][name][init][s][g][str(m["T_max"])]["fit_lags"]
                if fit is not None:  # the end of the fitted window (largest over seeds)
                    ax.plot(fit[1], nan_if_none([c["median"][fit[1]]])[0], "|", color=color, ms=12, mew=2)
            ax.axhline(low, color="k", ls=":", lw=0.8)
            ax.set(title=f"{name}, {_drive(m, s)}", xlabel="lag T − t (steps)")
            ax.grid(alpha=0.3)
        axes[row, 0].set_ylabel("log10 ‖∂L_T/∂h_t‖")
    title_and_caption(
        fig,
        f"Gradient norm against lag at initialisation ({init} W_hh): a straight line is a constant decay "
        "rate per step, set by the gain g",
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
    names, s = list(m["grad_w_hh"]), _reference(m)
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
        caption=f"Median over {m['seeds']} seeds; one line per recurrent gain g; inputs {_drive(m, s)}.",
    )
    save(fig, path)


def plot_decay_vs_gain(m: dict, path: Path) -> None:
    T, s = str(m["T_max"]), _reference(m)
    names = list(m["decay"])
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
            f"Mean ± sd over {m['seeds']} seeds at T={T}, inputs {_drive(m, s)}. Dotted: log10 of the "
            "spectral radius ρ of W_hh; dashed: the Pascanu et al. bound log10 γσ_max (γ = max|φ'|). Fit "
            "window: summary.md."
        ),
    )
    save(fig, path)


def plot_heatmap(m: dict, path: Path) -> None:
    T = str(m["T_max"])
    names = list(m["decay"])
    inits = list(m["decay"][names[0]])
    scales = [str(float(s)) for s in m["input_scales"]]
    gains = list(m["decay"][names[0]][inits[0]][scales[0]])
    # each panel sized to its grid: a column per gain, a row per cell, room for labels and the colour bar
    fig, axes = panels(len(scales), len(inits), 2.4 + 0.55 * len(gains), 1.4 + 0.4 * len(names))
    for row, s in enumerate(scales):
        for ax, init in zip(axes[row], inits):
            image = heatmap(ax, [_slopes(m, name, init, s, T) for name in names], gains, names)
            ax.set(xlabel="recurrent gain g", title=f"{init} W_hh, {_drive(m, s)}")
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
    names = list(m["decay"])
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
    T, s = str(m["T_max"]), _reference(m)
    names = list(m["decay"])
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
            f"One point per seed and gain, T={T}, inputs {_drive(m, s)}; dashed: the line moved by log10 γ, "
            "the slope of a cell's nonlinearity at its centre. Fit window: summary.md."
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
    for init in next(iter(m["curves"].values())):
        plot_norm_vs_lag(m, init, run / f"norm_vs_lag_{init}.png")
    plot_grad_whh(m, run / "grad_whh_vs_T.png")
    plot_decay_vs_gain(m, run / "decay_vs_gain.png")
    plot_heatmap(m, run / "decay_heatmap.png")
    plot_decay_vs_scale(m, run / "decay_vs_input_scale.png")
    plot_rate_vs_radius(m, run / "rate_vs_radius.png")


# ---------------------------------------------------------------------------------------------
# Summary


def _rate(d: dict) -> str:
    """A summary-table entry: mean ± sd of the decay rate, the lags fitted, and the seeds that reached
    exactly zero or overflowed."""
    text = "n/a" if d["slope_mean"] is None else f"{d['slope_mean']:.4f} ± {d['slope_std']:.4f}"
    if d["fit_lags"] is not None:
        lo, hi = d["fit_lags"]
        text += f" [0–{hi}]" if lo == hi else f" [0–{lo}…{hi}]"
    if d["seeds_with_underflow"]:
        text += f" (zero in {d['seeds_with_underflow']} seeds from lag {d['first_underflow_lag']})"
    if d["seeds_nonfinite"]:
        text += f" ({d['seeds_nonfinite']} seeds overflowed)"
    return text


def _protocol(m: dict) -> str:
    return (
        f"{m['seeds']} seeds (key {m['seed']}), H={m['hidden_size']}, I={m['input_size']}, "
        f"preset {m['preset']}, "
        f"loss {'<u, h_T>' if m['loss'] == 'linear' else 'cross-entropy of a readout of h_T'}, inputs "
        f"x_t = s·z_t, z_t ~ N(0, I) i.i.d.; backend {m['backend']['platform']} "
        f"({m['backend']['device_kind']}), {m['dtype']}."
    )


def _underflow_lines(m: dict) -> list[str]:
    b = m["backend"]
    lines = [
        f"Fit window: {_window(m)} (`diagnostics.fit_bounds`, the same on every backend); the lags fitted "
        "are in brackets [0–min…max over seeds].",
        "",
    ]
    if b["flushes_subnormals"]:
        why = (
            f"this backend flushes float32 subnormals to zero (jit(x·0.5) at the smallest normal "
            f"{b['float32_smallest_normal']:.3g} gives 0.0), so a gradient entry that falls below "
            f"{b['float32_smallest_normal']:.3g} becomes exactly 0 and the norm reaches 0 soon after it "
            "falls below ~1e-38"
        )
    else:
        why = (
            "this backend keeps float32 subnormals (jit(x·0.5) at the smallest normal gives "
            f"{b['smallest_normal_times_half']:.3g}: gradual underflow), so the norm reaches 0 only below "
            "the smallest subnormal, ~1.4e-45"
        )
    lines.append(f"Exact zeros ('zero in k seeds from lag N' below): {why}.")
    if m["dtype"] == "float32" and "simple-linear" in m["decay"]:
        T, s = str(m["T_max"]), _reference(m)
        for init, gains in m["decay"]["simple-linear"].items():
            for g, d in gains[s].items():
                if d[T]["first_underflow_lag"] is not None:
                    lines.append(_zero_line(m, init, g, d[T], m["curves"]["simple-linear"][init][s][g]))
    return [*lines, ""]


def _zero_line(m: dict, init: str, g: str, d: dict, c: dict) -> str:
    """Where the linear cell's float32 norm reached exactly zero, its fit, and the float64 run beside it."""
    rho = np.mean(np.log10(m["spectral_radius"]["simple-linear"][init][g]))
    return (
        f"- linear cell, {init}, g={g}: float32 exactly zero from lag {d['first_underflow_lag']} (earliest "
        f"seed; smallest nonzero norm 10^{c['smallest_finite']:.2f}); fitted lags 0–{d['fit_lags'][0]}…"
        f"{d['fit_lags'][1]}, slope "
        f"{d['slope_mean']:.6f} (mean log10 ρ(W_hh) = {rho:.6f})" + _float64_note(m, init, g)
    )


def _float64_note(m: dict, init: str, g: str) -> str:
    ref = (m.get("float64_linear") or {}).get(init, {}).get(g)
    if ref is None:
        return ""
    zero = (
        "no exact zero"
        if ref["first_underflow_lag"] is None
        else f"zero from lag {ref['first_underflow_lag']}"
    )
    return (
        f"; float64 on the same matrices: slope {ref['slope_mean']:.6f}, {zero} within {m['T_max']} lags "
        f"(smallest norm 10^{ref['smallest_finite']:.1f})"
    )


def _radius_lines(m: dict) -> list[str]:
    """How closely each seed's linear-cell rate follows log10 ρ of its W_hh, per init and gain (reference
    scale; the float32 fit window, and the float64 rerun's full T where it ran)."""
    if "simple-linear" not in m["decay"]:
        return []
    T, s = str(m["T_max"]), _reference(m)
    lines = ["Spectral radius ρ (largest |eigenvalue|, per gate block, max over blocks), linear cell:"]
    for init, gains in m["decay"]["simple-linear"].items():
        parts, ratio = [], []
        for g, d in gains[s].items():
            log_rho = np.log10(m["spectral_radius"]["simple-linear"][init][g])
            dev = np.nanmax(np.abs(nan_if_none(d[T]["slopes"]) - log_rho))
            ratio += list(10**log_rho / float(g))
            part = f"g={g}: {dev:.2g} (lags 0–{d[T]['fit_lags'][0]}…{d[T]['fit_lags'][1]}"
            ref = (m.get("float64_linear") or {}).get(init, {}).get(g)
            if ref is not None and ref["slope_mean"] is not None:
                dev64 = np.nanmax(np.abs(nan_if_none(ref["slopes"]) - log_rho))
                part += f"; float64, lags 0–{ref['fit_lags'][1]}: {dev64:.2g}"
            parts.append(part + ")")
        lines.append(
            f"- {init} W: ρ/g median {np.median(ratio):.3f} (range {min(ratio):.3f}–{max(ratio):.3f}); "
            f"max over {m['seeds']} seeds of |rate − log10 ρ(W_hh)|: " + ", ".join(parts)
        )
    return [*lines, ""]


def summary_text(m: dict) -> str:
    """The summary: protocol, float limits and backend, ρ, then the decay rates at the longest T as one
    Markdown table per init and input scale (cells by gains)."""
    T = str(m["T_max"])
    lines = [f"Protocol: {_protocol(m)}", "", *_underflow_lines(m), *_radius_lines(m)]
    gammas = [f"{n} γ = {g:g}" for n, g in m["gamma"].items() if g is not None]
    if gammas:
        lines += [
            f"Pascanu bound rate ≤ log10(γ σ_max), γ = max|φ'| measured on the cell: {', '.join(gammas)}.",
            "",
        ]
    lines += [
        f"Decay rate of ‖∂L_T/∂h_t‖ per step of lag, log10 units (mean ± sd over seeds), T={T}.",
        "Negative: vanishing; positive: exploding; 'n/a': no point inside the window.",
        "",
    ]
    for init, per_scale in next(iter(m["decay"].values())).items():
        for s, gains in per_scale.items():
            lines += [
                f"### {init} W_hh, {_drive(m, s)}",
                "",
                "| cell | " + " | ".join(f"g={g}" for g in gains) + " |",
            ]
            lines.append("|---" * (len(gains) + 1) + "|")
            for name, per_init in m["decay"].items():
                row = " | ".join(_rate(per_init[init][s][g][T]) for g in gains)
                lines.append(f"| {name} | {row} |")
            lines.append("")
    return "\n".join(lines)
