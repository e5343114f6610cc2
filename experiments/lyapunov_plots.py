"""Figures and summary of `experiments.lyapunov`, drawn from a run's saved metrics.json only (so
`--plot-only` redraws exactly what a run measured)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnnjax.command import runs
from rnnjax.command.plots import (
    colors,
    legend_below,
    nan_if_none,
    panel_grid,
    panels,
    save,
    title_and_caption,
)

# ---------------------------------------------------------------------------------------------
# Plots (from the saved metrics only)

MARKERS = "o^sDvP*X"
# What the figures read from a run's metrics.json.
METRICS_KEYS = ("points", "agreement", "spectrum", "length", "warmup", "frames")


def plot_vs_gradient(m: dict, path: Path) -> None:
    """λ_max/ln 10 against the backward slope, one point per trajectory, coloured by cell, shaped by input
    scale, with the identity line; right: the difference against λ_max/ln 10."""
    names = list(dict.fromkeys(p["cell"] for p in m["points"]))
    scales = list(dict.fromkeys(p["input_scale"] for p in m["points"]))
    fig, axes = panels(1, 2, 5.0, 4.4)
    for p in m["points"]:
        color = f"C{names.index(p['cell'])}"
        marker = MARKERS[scales.index(p["input_scale"]) % len(MARKERS)]
        x, y = nan_if_none(p["lam10"]), nan_if_none(p["slope"])
        axes[0, 0].scatter(x, y, s=14, color=color, marker=marker, alpha=0.7, lw=0)
        axes[0, 1].scatter(x, y - x, s=14, color=color, marker=marker, alpha=0.7, lw=0)
    lim = [
        min(min(nan_if_none(p["lam10"]).min(), np.nanmin(nan_if_none(p["slope"]))) for p in m["points"]),
        max(max(nan_if_none(p["lam10"]).max(), np.nanmax(nan_if_none(p["slope"]))) for p in m["points"]),
    ]
    axes[0, 0].plot(lim, lim, "k--", lw=0.8, label="identity")
    for i, name in enumerate(names):
        axes[0, 0].scatter([], [], color=f"C{i}", label=name)
    for j, scale in enumerate(scales):
        axes[0, 0].scatter(
            [], [], color="gray", marker=MARKERS[j % len(MARKERS)], label=f"input scale {scale}"
        )
    axes[0, 0].set(
        xlabel="λ_max / ln 10 (log10 per step, forward QR)",
        ylabel="backward slope d log10‖∂L_T/∂h_t‖ / d lag (per step)",
    )
    axes[0, 1].axhline(0, color="k", lw=0.8)
    axes[0, 1].set(xlabel="λ_max / ln 10 (log10 per step)", ylabel="backward slope − λ_max / ln 10")
    for ax in axes[0]:
        ax.grid(alpha=0.3)
    a = m["agreement"]
    title_and_caption(
        fig,
        "Forward (largest Lyapunov exponent) and backward (gradient decay rate) measurements agree where "
        "points lie on the dashed line, and their difference (right) is near 0",
    )
    legend_below(
        fig,
        axes[0, 0],
        caption=(
            f"One point per trajectory; colour: cell, marker: input scale. |difference| max "
            f"{a['max_abs_diff']:.4f}, median {a['median_abs_diff']:.4f}. T={m['length']}, warm-up "
            f"{m['warmup']} steps, {m['frames']} random frames (summary.md)."
        ),
    )
    save(fig, path)


def plot_vs_gain(m: dict, path: Path) -> None:
    """Per cell: λ_max/ln 10 (mean over seeds) and the backward slope against the gain, one colour per
    input scale, with log10 σ_max and log10 ρ of W_hh."""
    names = list(dict.fromkeys(p["cell"] for p in m["points"]))
    scales = list(dict.fromkeys(p["input_scale"] for p in m["points"]))
    fig, axes = panel_grid(len(names), 3.4, 3.0, sharey=True, sharex=True)
    for ax, name in zip(axes, names):
        rows = [p for p in m["points"] if p["cell"] == name]
        for color, scale in zip(colors(len(scales)), scales):
            at = [p for p in rows if p["input_scale"] == scale]
            gains = [p["gain"] for p in at]
            ax.plot(
                gains,
                [np.nanmean(nan_if_none(p["lam10"])) for p in at],
                "o-",
                ms=3,
                color=color,
                label=f"λ_max/ln10, s={scale}",
            )
            ax.plot(
                gains,
                [np.nanmean(nan_if_none(p["slope"])) for p in at],
                "x",
                ms=6,
                color=color,
                label=f"backward slope, s={scale}",
            )
        at = [p for p in rows if p["input_scale"] == scales[0]]
        gains = [p["gain"] for p in at]
        ax.plot(gains, [np.mean(p["log10_sigma_max"]) for p in at], "k--", lw=1, label="log10 σ_max(W_hh)")
        ax.plot(gains, [np.mean(p["log10_spectral_radius"]) for p in at], "k:", lw=1, label="log10 ρ(W_hh)")
        ax.axhline(0, color="gray", lw=0.5)
        ax.set(title=name, xlabel="recurrent gain g")
        ax.grid(alpha=0.3)
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel("log10 growth per step")
    title_and_caption(
        fig,
        "Forward exponent and backward gradient rate against the gain, with the two matrix norms of W_hh "
        "that bound and approximate them",
    )
    legend_below(
        fig,
        axes,
        caption=(
            "Lines and crosses: mean over seeds per input scale s; dashed: log10 of the largest singular "
            "value σ_max of W_hh; dotted: log10 of its spectral radius ρ."
        ),
    )
    save(fig, path)


def plot_spectrum(m: dict, path: Path) -> None:
    """The leading Lyapunov spectrum of each cell at g = 1 (mean over seeds; error bars: the largest
    spread over frames of any seed; band: min–max over seeds)."""
    spectra = m["spectrum"]["cells"]
    fig, axes = panels(1, 1, 5.5, 3.6)
    ax = axes[0, 0]
    for i, (name, s) in enumerate(spectra.items()):
        e = np.asarray(s["exponents10"])  # [seed, n]
        idx = np.arange(1, e.shape[1] + 1)
        ax.errorbar(
            idx,
            e.mean(0),
            yerr=np.asarray(s["spread10"]).max(0),
            color=f"C{i}",
            marker="o",
            ms=3,
            capsize=2,
            label=name,
        )
        ax.fill_between(idx, e.min(0), e.max(0), color=f"C{i}", alpha=0.15)
        ax.plot([1], [np.mean(s["exact_top10"])], marker="*", ms=11, color=f"C{i}", mec="k")
    ax.set(xlabel="exponent index i", ylabel="λ_i / ln 10 (log10 per step)")
    ax.grid(alpha=0.3)
    title_and_caption(
        fig,
        "Lyapunov spectrum at gain 1: how fast each direction of the hidden state grows or shrinks per step",
    )
    legend_below(
        fig,
        ax,
        caption=(
            f"Input scale 1, H = {m['spectrum']['hidden_size']}; mean over seeds, band: min–max over seeds, "
            "bars: the largest spread over the random initial frames Q0; ★: the exact growth rate of ‖∏J‖."
        ),
    )
    save(fig, path)


def plot_all(run: Path) -> None:
    """The three figures of a run folder, from its metrics.json alone (`runs.read_json`: a file that does
    not parse, or lacks or mistypes a value the figures need, is refused as that file's error)."""
    path = run / "metrics.json"
    m = runs.read_json(path, METRICS_KEYS, what="the metrics.json of a lyapunov run")
    with runs.from_file(path):
        plot_vs_gradient(m, run / "lyapunov_vs_gradient.png")
        plot_vs_gain(m, run / "lyapunov_vs_gain.png")
        plot_spectrum(m, run / "lyapunov_spectrum.png")


def _fmt(values, digits: int = 4) -> str:
    a = nan_if_none(values)
    if not np.isfinite(a).any():
        return "n/a"
    return f"{np.nanmean(a):.{digits}f} ± {np.nanstd(a):.{digits}f}"


def _window_line(a: dict) -> str:
    """Where the two disagree: by fit window, and the window-free exact-norm slope (seed 0)."""
    w = a["by_fit_window"]
    text = "; ".join(
        f"{label} fit windows (last lag {'<' if label == 'short' else '>='} {a['short_window']}): "
        + (
            "none"
            if w[label]["n"] == 0
            else f"|diff| median {w[label]['median']:.4f}, max {w[label]['max']:.4f} over {w[label]['n']}"
        )
        for label in ("short", "long")
    )
    b, e = a["seed0_backward"], a["seed0_exact_norm"]
    text += (
        f". Seed 0, against λ_max/ln10: backward slope |diff| median {b['median']:.4f}, max {b['max']:.4f}; "
        f"exact-norm slope over every lag |diff| median {e['median']:.4f}, max {e['max']:.4f}."
    )
    if a["pascanu_min_margin"] is not None:
        text += (
            f" Pascanu bound (tanh, linear): min of log10 σ_max − λ_max/ln10 = {a['pascanu_min_margin']:.4f}"
            f" ({'holds' if a['pascanu_min_margin'] >= -1e-6 else 'VIOLATED'})."
        )
    return text


def summary_table(m: dict) -> str:
    """The measured table: per (cell, gain, input scale), λ_max/ln 10, the backward slope, their
    difference, the frame spread, the exact-norm slope (seed 0) and log10 σ_max, ρ of W_hh."""
    a = m["agreement"]
    lines = [
        f"T = {m['length']}, warm-up {m['warmup']} steps, {m['frames']} random frames Q0, {m['dtype']}; "
        f"backward fit window: log10 norms in [{m['fit_bounds'][0]:.2f}, {m['fit_bounds'][1]:.2f}].",
        "Units: log10 per step (mean ± sd over seeds). diff = backward slope − λ_max/ln10.",
        f"|diff| over all trajectories: max {a['max_abs_diff']:.4f}, median {a['median_abs_diff']:.4f}"
        + (f" ({a['nonfinite']} trajectories without a finite slope)" if a["nonfinite"] else ""),
        "",
        "| cell | |diff| max | |diff| median |",
        "|---|---|---|",
        *[f"| {c} | {v['max']:.4f} | {v['median']:.4f} |" for c, v in a["per_cell"].items()],
        "",
        _window_line(a),
        "",
        "Largest differences: "
        + "; ".join(
            f"{w['cell']} g={w['gain']} s={w['input_scale']} seed {w['seed']}: {w['abs_diff']:.4f}"
            for w in a["worst"][:6]
        ),
        "",
        "| cell | g | input scale | λ_max/ln10 | backward slope | diff | frame spread (max) | fit lags | "
        "exact-norm slope (seed 0) | log10 σ_max | log10 ρ |",
        "|---" * 11 + "|",
    ]
    for p in m["points"]:
        spread = nan_if_none(p["frame_spread10"])
        lines.append(
            f"| {p['cell']} | {p['gain']} | {p['input_scale']} | {_fmt(p['lam10'])} | {_fmt(p['slope'])} | "
            f"{_fmt(p['diff'])} | {np.nanmax(spread):.1e} | 0–{min(p['fit_last_lag'])}"
            f"{'' if max(p['first_underflow_lag']) < 0 else ' (zero reached)'} | "
            f"{p['exact_slope_seed0']:.4f} | {np.mean(p['log10_sigma_max']):.4f} | "
            f"{np.mean(p['log10_spectral_radius']):.4f} |"
        )
    lines += [
        "",
        f"### Lyapunov spectrum at g = 1, input scale 1, H = {m['spectrum']['hidden_size']}",
        "",
        "| cell | λ_1..λ_4 / ln10 (mean over seeds) | λ_n / ln10 | max spread over Q0 | "
        "exact ‖∏J‖ growth (log10/step) |",
        "|---|---|---|---|---|",
    ]
    for name, s in m["spectrum"]["cells"].items():
        e = np.asarray(s["exponents10"])
        lines.append(
            f"| {name} | {', '.join(f'{v:.4f}' for v in e.mean(0)[:4])} | {e.mean(0)[-1]:.4f} | "
            f"{np.max(s['spread10']):.1e} | {_fmt(s['exact_top10'])} |"
        )
    return "\n".join(lines)
