"""The figures and the summary table of `experiments.long_range`, drawn from a run's saved metrics only."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import numpy as np

from rnnjax import tasks
from rnnjax.command.plots import legend_below, nan_if_none, save, title_and_caption

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

CRITERION = f"held-out loss < {tasks.SUCCESS_RATIO} x the memoryless baseline"

COLORS = {
    "simple-tanh": "tab:blue", "lstm": "tab:orange", "gru": "tab:green", "orthogonal": "tab:red",
    "lru": "tab:purple", "mingru": "tab:brown", "minlstm": "tab:pink",
}  # fmt: skip
STYLES = {False: ":", True: "-"}  # no clip dotted, clip solid
SMOOTH = 25  # steps in the running mean of the loss curves


def _running_mean(values: list, window: int) -> np.ndarray:
    v = nan_if_none(values)
    if len(v) < window:
        return v
    kernel = np.ones(window) / window
    return np.convolve(v, kernel, mode="valid")


def _panels(runs: list[dict]) -> list[tuple[str, int]]:
    """The (task, T) of every panel, in the order run."""
    seen = []
    for r in runs:
        if (r["task"], r["seq_len"]) not in seen:
            seen.append((r["task"], r["seq_len"]))
    return seen


def _grid_axes(runs: list[dict]):
    keys = _panels(runs)
    cols = min(3, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(  # + 1.2 in for the legend and its caption under the panels
        rows, cols, figsize=(4.4 * cols, 3.2 * rows + 1.2), squeeze=False, layout="constrained"
    )
    for ax in axes.flat[len(keys) :]:
        ax.set_visible(False)
    return fig, axes, keys


def _finish(fig, axes, title: str, caption: str, path: Path) -> None:
    """The title, the first panel's legend under the grid headed by `caption`, and the figure saved and
    closed."""
    title_and_caption(fig, title)
    legend_below(fig, axes.flat[0], caption=caption)
    save(fig, path)


def _label(r: dict) -> str:
    return f"{r['cell']}{', clip' if r['clip'] else ', no clip'}"


def _k_of_n(ax, panel: list[dict]) -> None:
    """The panel's k/N per cell and clip setting, in its lower left corner."""
    text = "\n".join(f"{_label(r)}: {r['successes']}/{len(r['seeds'])} succeed" for r in panel)
    ax.text(0.02, 0.03, text, transform=ax.transAxes, fontsize=8, va="bottom", ha="left",
            bbox=dict(facecolor="white", alpha=0.7, lw=0))  # fmt: skip


def _unit(task_name: str) -> str:
    return "MSE" if task_name == "adding" else "nats"


def plot_loss(runs: list[dict], path: Path) -> None:
    fig, axes, keys = _grid_axes(runs)
    for ax, (task_name, seq_len) in zip(axes.flat, keys):
        panel = [r for r in runs if r["task"] == task_name and r["seq_len"] == seq_len]
        for r in panel:
            for k, loss in enumerate(r["loss"]):
                y = _running_mean(loss, SMOOTH)
                x = np.arange(len(y)) + (SMOOTH - 1 if len(loss) >= SMOOTH else 0)
                label = _label(r) if k == 0 else None
                ax.plot(
                    x, y, color=COLORS.get(r["cell"]), ls=STYLES[r["clip"]], lw=0.8, alpha=0.8, label=label
                )
        baseline = panel[0]["baseline"]
        ax.axhline(baseline, color="black", ls="--", lw=1, label="baseline (memoryless)")
        ax.axhline(0.1 * baseline, color="gray", ls="-.", lw=1, label="success: 0.1 x baseline")
        ax.set_yscale("log")
        _k_of_n(ax, panel)
        ax.set_title(f"{task_name}, T={seq_len}, {panel[0]['steps']} steps", fontsize=10)
        ax.set_ylabel(f"training loss (log), {_unit(task_name)}")
        ax.set_xlabel("training step")
    _finish(
        fig,
        axes,
        "Training loss of every seed: a curve that ends below the dash-dot line learned the task",
        f"Running mean over {SMOOTH} steps; solid: with gradient clipping, dotted: without. k/N: the seeds "
        f"with {CRITERION}.",
        path,
    )


def plot_grad_norm(runs: list[dict], cfg: dict, path: Path) -> None:
    fig, axes, keys = _grid_axes(runs)
    for ax, (task_name, seq_len) in zip(axes.flat, keys):
        for r in runs:
            if r["task"] == task_name and r["seq_len"] == seq_len:
                for k, g in enumerate(r["grad_norm"]):
                    label = _label(r) if k == 0 else None
                    ax.plot(
                        nan_if_none(g), color=COLORS.get(r["cell"]), ls=STYLES[r["clip"]], lw=0.5,
                        alpha=0.6, label=label,
                    )  # fmt: skip
        _k_of_n(ax, [r for r in runs if r["task"] == task_name and r["seq_len"] == seq_len])
        if True in cfg["clip"]:
            ax.axhline(cfg["clip_norm"], color="black", ls="--", lw=1, label="clip norm")
        ax.set_yscale("log")
        ax.set_title(f"{task_name}, T={seq_len}", fontsize=10)
        ax.set_ylabel("global gradient norm\nbefore clipping (log)")
        ax.set_xlabel("training step")
    _finish(
        fig,
        axes,
        "Gradient norm at every training step: spikes are exploding gradients",
        "Global L2 norm of the gradient before clipping, every seed; solid: with gradient clipping, dotted: "
        "without.",
        path,
    )


def plot_final_loss(runs: list[dict], cfg: dict, path: Path) -> None:
    """One panel per (task, T): every seed's held-out loss / baseline per cell and clip setting, the
    success line, and k/N above each group."""
    keys = _panels(runs)
    fig, axes = plt.subplots(
        1, len(keys), figsize=(3.3 * len(keys), 3.8), squeeze=False, sharey=True, layout="constrained"
    )
    groups = [(c, clip) for c in cfg["cells"] for clip in cfg["clip"]]
    for ax, (task_name, seq_len) in zip(axes[0], keys):
        for x, (cell_name, clip) in enumerate(groups):
            r = next(
                (r for r in runs if (r["task"], r["seq_len"], r["cell"], r["clip"]) ==
                 (task_name, seq_len, cell_name, clip)),
                None,
            )  # fmt: skip
            if r is None:
                continue
            ratio = nan_if_none(r["final_loss"]) / r["baseline"]
            jitter = np.linspace(-0.15, 0.15, len(ratio))
            for xi, yi, ok, div in zip(x + jitter, ratio, r["success"], r["diverged"]):
                marker = "x" if div else ("o" if ok else "s")
                ax.plot(xi, yi, marker, color=COLORS.get(cell_name), mfc="none" if not ok else None, ms=5)
            ax.annotate(
                f"{r['successes']}/{len(r['seeds'])}", (x, 1.0), xycoords=ax.get_xaxis_transform(),
                xytext=(0, 2), textcoords="offset points", ha="center", va="bottom", fontsize=8,
            )  # fmt: skip
        ax.axhline(1.0, color="black", ls="--", lw=1)
        ax.axhline(0.1, color="gray", ls="-.", lw=1)
        ax.set_yscale("log")
        ax.set_xticks(
            range(len(groups)),
            [f"{c}\n{'clip' if clip else 'no clip'}" for c, clip in groups],
            rotation=30,
        )
        steps = next(r["steps"] for r in runs if (r["task"], r["seq_len"]) == (task_name, seq_len))
        ax.set_title(f"{task_name}, T={seq_len}\n{steps} steps", fontsize=9, pad=14)
    axes[0, 0].set_ylabel("held-out loss / memoryless baseline (log)")
    title_and_caption(
        fig,
        "Which settings learn the task: every seed's final loss against the memoryless baseline",
        f"Filled o: success ({CRITERION}); open square: failure; x: diverged. k/N above each group; dashed: "
        "the baseline, dash-dot: the success line.",
    )
    save(fig, path)


def _fmt(x) -> str:
    return "NaN" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.2g}"


def summary_table(runs: list[dict]) -> str:
    columns = ["task", "T", "steps", "cell", "clip", "success k/N", "loss / baseline per seed", "diverged"]
    lines = ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    for r in runs:
        ratios = ", ".join(_fmt(None if f is None else f / r["baseline"]) for f in r["final_loss"])
        lines.append(
            f"| {r['task']} | {r['seq_len']} | {r['steps']} | {r['cell']} | {'yes' if r['clip'] else 'no'} | "
            f"**{r['successes']}/{len(r['seeds'])}** | {ratios} | {sum(r['diverged'])} |"
        )
    return "\n".join(lines)
