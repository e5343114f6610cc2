"""Plot helpers shared by the experiments: matplotlib on its Agg backend (files only, no display), a grid of
panels, a colour ramp for a swept parameter, a median line with its quartile band, an annotated diverging
heatmap, and saving a figure atomically (`rnnjax.results.save_figure`) before closing it.

Every helper draws from plain values, as read back from a run's saved metrics.json.
"""

from __future__ import annotations

import os

import matplotlib
import numpy as np

from rnnjax import results

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["colors", "heatmap", "nan_if_none", "panels", "plt", "quartile_band", "save"]


def panels(rows: int, cols: int, width: float, height: float, **subplots_kw):
    """`(fig, axes)` with `axes` <Axes>[rows, cols] (always 2-D), each panel `width` x `height` inches, in
    a constrained layout; `subplots_kw` (e.g. sharex, sharey) go to `plt.subplots`."""
    return plt.subplots(
        rows, cols, figsize=(width * cols, height * rows), squeeze=False, layout="constrained", **subplots_kw
    )


def colors(n: int) -> np.ndarray:
    """`n` colours <[n, 4]> (RGBA) along viridis, dark to light-green, for the values of a swept parameter
    (the yellow end is left out: it is hard to see on white)."""
    return plt.cm.viridis(np.linspace(0.0, 0.9, n))


def nan_if_none(values) -> np.ndarray:
    """<float64>[n] with None (how metrics.json stores NaN and ±inf) as NaN, which matplotlib leaves out."""
    return np.asarray([np.nan if v is None else v for v in values], np.float64)


def quartile_band(ax, x, stats: dict, color, label: str | None = None, alpha: float = 0.25) -> None:
    """Draw `stats["median"]` against `x` as a line and the band from `stats["q25"]` to `stats["q75"]`
    behind it, in one colour (e.g. the output of `rnnjax.diagnostics.log_norm_quartiles`)."""
    ax.plot(x, nan_if_none(stats["median"]), color=color, label=label)
    ax.fill_between(x, nan_if_none(stats["q25"]), nan_if_none(stats["q75"]), color=color, alpha=alpha)


def heatmap(ax, grid, xticks, yticks, *, fmt: str = "{:.3f}", cmap: str = "RdBu_r"):
    """Show `grid` <[rows, cols]> (NaN allowed) with a colour scale symmetric about zero, each cell
    annotated with its value (`fmt`) or "n/a" for NaN; returns the image, for `fig.colorbar`."""
    grid = np.asarray(grid, np.float64)
    lim = np.nanmax(np.abs(grid)) if np.isfinite(grid).any() else 1.0
    image = ax.imshow(grid, cmap=cmap, vmin=-lim, vmax=lim, aspect="auto")
    for (r, c), v in np.ndenumerate(grid):
        ax.text(c, r, "n/a" if np.isnan(v) else fmt.format(v), ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(xticks)), xticks)
    ax.set_yticks(range(len(yticks)), yticks)
    return image


def save(fig, path: str | os.PathLike) -> None:
    """Save `fig` as a PNG at `path` atomically, then close it (figures are not kept open between plots)."""
    results.save_figure(fig, path)
    plt.close(fig)
