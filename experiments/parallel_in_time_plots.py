"""Figures and summary of `experiments.parallel_in_time`, drawn from a run's saved metrics.json only (so
`--plot-only` redraws exactly what a run measured)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from rnnjax.command.plots import legend_below, log_ticks, panels, save, title_and_caption

# What the figures read from a run's metrics.json.
METRICS_KEYS = ("lengths", "max_iters", "rows", "wall", "backend")
METHOD_NAMES = {"deer": "DEER", "quasi-deer": "quasi-DEER"}


def _cap(m: dict, T: int) -> int:
    return min(T, m["max_iters"])


def _counts(m: dict, row: dict, method: str) -> tuple[np.ndarray, np.ndarray]:
    """(iterations <[len(lengths)]>, censored <bool>): a censored run is drawn at its cap."""
    counts = row["iterations"][method]
    censored = np.array([c is None for c in counts])
    values = np.array([_cap(m, T) if c is None else c for c, T in zip(counts, m["lengths"])], np.float64)
    return values, censored


def _lambda_colour(lam: float, scale: float):
    return plt.cm.coolwarm(0.5 + 0.5 * np.clip(lam / scale, -1, 1))


def plot_iterations_vs_length(m: dict, path: Path) -> None:
    """Iterations against T, one line per network and seed, coloured by λ_max (blue < 0 < red); open
    markers where the run hit the cap (censored)."""
    scale = max(abs(r["lyapunov"]) for r in m["rows"]) or 1.0
    fig, axes = panels(1, len(METHOD_NAMES), 4.6, 3.8, sharey=True)
    for ax, (method, label) in zip(axes[0], METHOD_NAMES.items()):
        for row in m["rows"]:
            values, censored = _counts(m, row, method)
            colour = _lambda_colour(row["lyapunov"], scale)
            ax.plot(m["lengths"], values, "-", color=colour, lw=1.0, alpha=0.8)
            ax.scatter(np.array(m["lengths"])[~censored], values[~censored], s=14, color=colour, zorder=3)
            ax.scatter(np.array(m["lengths"])[censored], values[censored], s=22, facecolors="none",
                       edgecolors=colour, zorder=3)  # fmt: skip
        ax.plot(m["lengths"], [_cap(m, T) for T in m["lengths"]], "k:", lw=0.9, label="cap min(T, max_iters)")
        ax.set(xscale="log", yscale="log", xlabel="sequence length T (steps)", title=label)
        log_ticks(ax.xaxis, m["lengths"])
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("Newton iterations to converge")
    mappable = plt.cm.ScalarMappable(cmap="coolwarm", norm=plt.Normalize(-scale, scale))
    fig.colorbar(mappable, ax=axes[0, -1], label="λ_max (per step)")
    axes[0, 0].scatter([], [], facecolors="none", edgecolors="0.3", label="censored (hit the cap)")
    legend_below(fig, axes, f"{m['backend']}; float64; batch of {m['batch_size']} adding-task sequences")
    title_and_caption(fig, "Iterations stay flat in T where λ_max < 0 and grow with T where λ_max > 0")
    save(fig, path)


def plot_iterations_vs_lyapunov(m: dict, path: Path) -> None:
    """Iterations at the longest T against λ_max, per network kind; censored runs as open markers."""
    T = m["lengths"][-1]
    kinds = list(dict.fromkeys(r["network"].split()[0] for r in m["rows"]))
    fig, axes = panels(1, len(METHOD_NAMES), 4.6, 3.8, sharey=True)
    for ax, (method, label) in zip(axes[0], METHOD_NAMES.items()):
        for row in m["rows"]:
            values, censored = _counts(m, row, method)
            colour = f"C{kinds.index(row['network'].split()[0])}"
            face = "none" if censored[-1] else colour
            ax.scatter(row["lyapunov"], values[-1], s=22, facecolors=face, edgecolors=colour)
        ax.axvline(0, color="k", lw=0.8)
        ax.axhline(_cap(m, T), color="k", ls=":", lw=0.9)
        ax.set(yscale="log", xlabel="λ_max (per step, natural log)", title=f"{label}, T = {T}")
        ax.grid(alpha=0.3)
    for i, kind in enumerate(kinds):
        axes[0, 0].scatter([], [], color=f"C{i}", label=kind)
    axes[0, 0].set_ylabel("Newton iterations to converge")
    legend_below(fig, axes, "open markers: hit the cap (dotted) and fell back to the sequential scan")
    title_and_caption(fig, "The largest Lyapunov exponent decides whether parallel evaluation converges fast")
    save(fig, path)


def plot_wall_time(m: dict, path: Path) -> None:
    """Median seconds per call against T for every method and the sequential scan."""
    w = m["wall"]
    fig, axes = panels(1, 1, 5.6, 4.0)
    ax = axes[0, 0]
    for i, (contender, seconds) in enumerate(w["seconds"].items()):
        ax.plot(
            m["lengths"], seconds, "o-", color="k" if contender == "sequential" else f"C{i}", label=contender
        )
    ax.set(xscale="log", yscale="log", xlabel="sequence length T (steps)", ylabel="seconds per call (median)")
    log_ticks(ax.xaxis, m["lengths"])
    ax.grid(alpha=0.3)
    legend_below(
        fig, axes, f"{w['network']}, H = {m['hidden_size']}, batch {m['batch_size']}; {m['backend']}"
    )
    title_and_caption(fig, "Wall time of each Newton method against the sequential scan")
    save(fig, path)


def plot_all(out: Path) -> None:
    m = json.loads((Path(out) / "metrics.json").read_text())
    plot_iterations_vs_length(m, Path(out) / "iterations_vs_length.png")
    plot_iterations_vs_lyapunov(m, Path(out) / "iterations_vs_lyapunov.png")
    plot_wall_time(m, Path(out) / "wall_time.png")


def _fmt(counts, m: dict) -> str:
    return " ".join(f">{_cap(m, T)}" if c is None else str(c) for c, T in zip(counts, m["lengths"]))


def findings(m: dict) -> list[str]:
    """The plain-words result: iterations at the shortest and longest T, split by the sign of λ_max."""
    lines = []
    T0, T1 = m["lengths"][0], m["lengths"][-1]
    for method, label in METHOD_NAMES.items():
        for sign, rows in (("< 0", [r for r in m["rows"] if r["lyapunov"] < 0]),
                           ("> 0", [r for r in m["rows"] if r["lyapunov"] >= 0])):  # fmt: skip
            if not rows:
                continue
            first = [r["iterations"][method][0] for r in rows]
            last = [r["iterations"][method][-1] for r in rows]
            censored = sum(c is None for c in last)
            done = [c for c in last if c is not None]
            lines.append(
                f"{label}, λ_max {sign} ({len(rows)} network-seeds): at T = {T0} at most "
                f"{max((c or _cap(m, T0)) for c in first)} iterations; at T = {T1} "
                + (f"at most {max(done)}" if done else "none converged")
                + (f", {censored} hit the cap of {_cap(m, T1)}" if censored else "")
            )
    w = m["wall"]["seconds"]
    ratios = [s / q for s, q in zip(w["sequential"], w["deer"])]
    lines.append(
        f"Wall time ({m['backend']}): DEER / sequential = "
        + ", ".join(f"{1 / r:.2g}x at T={T}" for r, T in zip(ratios, m["lengths"]))
    )
    return lines


def summary_text(m: dict) -> str:
    lines = findings(m)
    lines += ["", "| network | seed | λ_max | " + " | ".join(f"DEER T={T}" for T in m["lengths"]) + " | "
              + " | ".join(f"quasi T={T}" for T in m["lengths"]) + " |"]  # fmt: skip
    lines.append("|" + "---|" * (3 + 2 * len(m["lengths"])))
    for r in m["rows"]:
        cells_ = [_fmt(r["iterations"][mth], m).split() for mth in METHOD_NAMES]
        lines.append(f"| {r['network']} | {r['seed']} | {r['lyapunov']:+.4f} | "
                     + " | ".join(cells_[0] + cells_[1]) + " |")  # fmt: skip
    w = m["wall"]
    lines += ["", f"Seconds per call ({w['network']}, median), {m['backend']}:", "",
              "| method | " + " | ".join(f"T={T}" for T in m["lengths"]) + " |",
              "|" + "---|" * (1 + len(m["lengths"]))]  # fmt: skip
    for contender, seconds in w["seconds"].items():
        its = w["iterations"][contender]
        lines.append(
            f"| {contender} | "
            + " | ".join(
                f"{s:.3g}" + ("" if contender == "sequential" else f" ({k} it)") for s, k in zip(seconds, its)
            )
            + " |"
        )
    return "\n".join(lines)
